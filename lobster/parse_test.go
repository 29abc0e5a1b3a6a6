package lobster

import (
	"bytes"
	"compress/gzip"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/mdjournal/mdjournal/book"
)

func TestParseInt(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int64
		ok   bool
	}{
		{"0", 0, true}, {"5853300", 5853300, true}, {"-1", -1, true}, {"-9999999999", -9999999999, true},
		{"9223372036854775807", 1<<63 - 1, true}, {"9223372036854775808", 0, false},
		{"", 0, false}, {"-", 0, false}, {"1.5", 0, false}, {"1e3", 0, false}, {" 1", 0, false},
	} {
		got, err := parseInt([]byte(tc.in))
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("parseInt(%q) = %d, %v", tc.in, got, err)
		}
	}
}

func TestParseTime(t *testing.T) {
	for _, tc := range []struct {
		in      string
		want    int64
		rounded bool
		ok      bool
	}{
		{"34200.004241176", 34200_004241176, false, true},
		{"34200.00424117", 34200_004241170, false, true}, // trailing zero dropped by the writer
		{"34200.5", 34200_500000000, false, true},
		{"34200", 34200_000000000, false, true},
		{"34200.", 34200_000000000, false, true},
		{"43002.632812672004", 43002_632812672, true, true}, // AMZN L=5 line 67823
		{"1.0000000005", 1_000000001, true, true},           // half rounds up
		{"1.9999999996", 2_000000000, true, true},           // carry into the seconds
		{"1.0000000004999", 1_000000000, true, true},
		{"-1.5", 0, false, false}, {".5", 0, false, false}, {"1.5x", 0, false, false}, {"1.0000000000x", 0, false, false},
	} {
		got, r, err := parseTime([]byte(tc.in))
		if (err == nil) != tc.ok || got != tc.want || r != tc.rounded {
			t.Errorf("parseTime(%q) = %d, %v, %v; want %d, %v", tc.in, got, r, err, tc.want, tc.rounded)
		}
	}
}

func gz(s string) []byte {
	var b bytes.Buffer
	w := gzip.NewWriter(&b)
	w.Write([]byte(s))
	w.Close()
	return b.Bytes()
}

func readMessages(t *testing.T, data []byte) ([]Message, error) {
	t.Helper()
	mr, err := NewMessageReader(bytes.NewReader(data))
	if err != nil {
		return nil, err
	}
	var out []Message
	for {
		var m Message
		if err := mr.Next(&m); errors.Is(err, io.EOF) {
			return out, nil
		} else if err != nil {
			return out, err
		}
		out = append(out, m)
	}
}

func TestMessageReader(t *testing.T) {
	const text = "34200.004241176,1,16113575,18,5853300,1\n34200.201743336,5,0,100,5859100,-1\n\n34201,7,0,0,-1,-1" // no final LF
	want := []Message{
		{Time: 34200_004241176, Type: 1, OrderID: 16113575, Size: 18, Price: 5853300, Direction: 1},
		{Time: 34200_201743336, Type: 5, OrderID: 0, Size: 100, Price: 5859100, Direction: -1},
		{Time: 34201_000000000, Type: 7, OrderID: 0, Size: 0, Price: -1, Direction: -1},
	}
	for name, data := range map[string][]byte{"plain": []byte(text), "gzip": gz(text), "crlf": []byte(strings.ReplaceAll(text, "\n", "\r\n"))} {
		got, err := readMessages(t, data)
		if err != nil || !slices.Equal(got, want) {
			t.Errorf("%s: got %+v, %v", name, got, err)
		}
	}
	for _, bad := range []string{
		"34200.1,1,1,1,1\n",       // 5 columns
		"34200.1,1,1,1,1,1,1\n",   // 7 columns
		"34200.1,8,1,1,1,1\n",     // type 8
		"34200.1,1,1,1,1,0\n",     // direction 0
		"34200.1,1,1,-5,1,1\n",    // negative size
		"34200.1,1,1,1,58.53,1\n", // float price
		"x,1,1,1,1,1\n",           // time
	} {
		if _, err := readMessages(t, []byte(bad)); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
	if _, err := readMessages(t, []byte{0x1f, 0x8b, 1, 2, 3}); err == nil {
		t.Error("corrupt gzip: no error")
	}
	if got, err := readMessages(t, nil); err != nil || len(got) != 0 {
		t.Errorf("empty input: %v %v", got, err)
	}
}

func TestOrderbookReader(t *testing.T) {
	const text = "5859400,200,5853300,18,9999999999,0,-9999999999,0\n5859100,18,5853300,18,5859400,200,5853200,5\n"
	or, err := NewOrderbookReader(bytes.NewReader(gz(text)), 0)
	if err != nil {
		t.Fatal(err)
	}
	var r Row
	if err := or.Next(&r); err != nil {
		t.Fatal(err)
	}
	if or.Levels() != 2 || !slices.Equal(r.Ask, []book.Level{lv(5859400, 200), lv(DummyAskPrice, 0)}) ||
		!slices.Equal(r.Bid, []book.Level{lv(5853300, 18), lv(DummyBidPrice, 0)}) {
		t.Errorf("row 1 = %+v (levels %d)", r, or.Levels())
	}
	if err := or.Next(&r); err != nil || r.Bid[1] != lv(5853200, 5) || r.Ask[1] != lv(5859400, 200) {
		t.Errorf("row 2 = %+v, %v", r, err)
	}
	if err := or.Next(&r); !errors.Is(err, io.EOF) {
		t.Errorf("after last row: %v", err)
	}
	for _, tc := range []struct {
		text   string
		levels int
	}{{"1,2,3\n", 0}, {"1,2,3,4\n", 2}, {"1,2,3,4,5,6,7,8\n", 1}, {"1,-2,3,4\n", 1}, {"1,2,3,x\n", 1}} {
		or, _ := NewOrderbookReader(strings.NewReader(tc.text), tc.levels)
		if err := or.Next(&r); err == nil {
			t.Errorf("%q at %d levels: no error", tc.text, tc.levels)
		}
	}
}

// TestSpotChecks reads the publisher's sample cut and checks the lines quoted
// in SOURCE.md, so the parser is checked against text, not against itself.
func TestSpotChecks(t *testing.T) {
	dir := filepath.Join(dataDir(t), "head2000")
	f, err := os.Open(filepath.Join(dir, "AAPL_2012-06-21_34200000_57600000_orderbook_1.csv"))
	if err != nil {
		t.Skip(err)
	}
	defer f.Close()
	or, err := NewOrderbookReader(f, 1)
	if err != nil {
		t.Fatal(err)
	}
	want := map[int]Row{
		1:   {Ask: []book.Level{lv(5859400, 200)}, Bid: []book.Level{lv(5853300, 18)}},
		101: {Ask: []book.Level{lv(5857700, 18)}, Bid: []book.Level{lv(5854400, 167)}},
		102: {Ask: []book.Level{lv(5857700, 18)}, Bid: []book.Level{lv(5854700, 100)}},
		107: {Ask: []book.Level{lv(5856800, 18)}, Bid: []book.Level{lv(5854400, 167)}},
		108: {Ask: []book.Level{lv(5856900, 16)}, Bid: []book.Level{lv(5854400, 167)}},
	}
	var r Row
	for i := 1; i <= 108; i++ {
		if err := or.Next(&r); err != nil {
			t.Fatal(err)
		}
		if w, ok := want[i]; ok && (!slices.Equal(r.Ask, w.Ask) || !slices.Equal(r.Bid, w.Bid)) {
			t.Errorf("book line %d = %+v, want %+v", i, r, w)
		}
	}
	mf, err := os.Open(filepath.Join(dir, "AAPL_2012-06-21_34200000_57600000_message_1.csv"))
	if err != nil {
		t.Fatal(err)
	}
	defer mf.Close()
	mr, _ := NewMessageReader(mf)
	var m Message
	for mr.Line() < 102 {
		if err := mr.Next(&m); err != nil {
			t.Fatal(err)
		}
	}
	if (m != Message{Time: 34202_579213337, Type: 1, OrderID: 16488533, Size: 100, Price: 5854700, Direction: 1}) {
		t.Errorf("message line 102 = %+v", m)
	}
}

func TestParseFileName(t *testing.T) {
	n, err := ParseFileName("/x/AAPL_2012-06-21_34200000_57600000_orderbook_10.csv.gz")
	want := FileName{Symbol: "AAPL", Date: Date{2012, 6, 21}, StartMS: 34200000, EndMS: 57600000, Kind: "orderbook", Levels: 10}
	if err != nil || n != want {
		t.Errorf("got %+v, %v", n, err)
	}
	if n, err := ParseFileName("BRK_A_2012-06-21_1_2_message_5.csv"); err != nil || n.Symbol != "BRK_A" || n.Levels != 5 {
		t.Errorf("underscore ticker: %+v, %v", n, err)
	}
	for _, bad := range []string{"AAPL.csv", "AAPL_2012-13-01_1_2_message_1.csv", "AAPL_2012-06-21_1_2_trades_1.csv", "AAPL_2012-06-21_1_2_message_0.csv"} {
		if _, err := ParseFileName(bad); err == nil {
			t.Errorf("%s: no error", bad)
		}
	}
}

func lv(p, q int64) book.Level { return book.Level{Price: p, Qty: q} }

func TestOrderbookName(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"d/AAPL_2012-06-21_34200000_57600000_message_10.csv", "d/AAPL_2012-06-21_34200000_57600000_orderbook_10.csv"},
		{"BRK_A_2012-06-21_34200000_57600000_message_1.csv.gz", "BRK_A_2012-06-21_34200000_57600000_orderbook_1.csv.gz"},
		{"d/AAPL_2012-06-21_34200000_57600000_orderbook_10.csv", ""},
		{"messages.csv", ""},
	} {
		got, err := OrderbookName(c.in)
		if got != c.want || (err == nil) != (c.want != "") {
			t.Errorf("OrderbookName(%q) = %q, %v; want %q", c.in, got, err, c.want)
		}
	}
}
