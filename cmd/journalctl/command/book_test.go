package command

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// lobsterRow is one LOBSTER message time and the orderbook row after it,
// read straight from the CSV files (independently of package lobster).
type lobsterRow struct {
	ts         int64 // Unix ns
	exact      bool  // the time had at most 9 decimals
	bids, asks []bookLevelJSON
}

// readLobster parses the message times and orderbook rows of an excerpt.
// Times are seconds after midnight New York time; 2012-06-21 is in EDT
// (UTC-4), so midnight is 04:00 UTC. Prices are dollars x 10000.
func readLobster(t *testing.T, msgPath, bookPath string) []lobsterRow {
	t.Helper()
	midnight := time.Date(2012, 6, 21, 4, 0, 0, 0, time.UTC).UnixNano()
	lines := func(p string) []string {
		f, err := os.Open(p)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		var out []string
		for s := bufio.NewScanner(f); s.Scan(); {
			if l := strings.TrimSpace(s.Text()); l != "" {
				out = append(out, l)
			}
		}
		return out
	}
	msgs, books := lines(msgPath), lines(bookPath)
	if len(msgs) != len(books) || len(msgs) == 0 {
		t.Fatalf("%d messages, %d orderbook rows", len(msgs), len(books))
	}
	price := func(s string) string {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n < 0 {
			t.Fatalf("price %q", s)
		}
		return fmt.Sprintf("%d.%04d", n/10000, n%10000)
	}
	rows := make([]lobsterRow, len(msgs))
	for i := range msgs {
		tm := strings.Split(msgs[i], ",")[0]
		sec, frac, _ := strings.Cut(tm, ".")
		s, err := strconv.ParseInt(sec, 10, 64)
		if err != nil {
			t.Fatalf("time %q", tm)
		}
		rows[i].exact = len(frac) <= 9
		frac = (frac + "000000000")[:9]
		ns, _ := strconv.ParseInt(frac, 10, 64)
		rows[i].ts = midnight + s*1e9 + ns
		c := strings.Split(books[i], ",")
		for l := 0; l+3 < len(c); l += 4 { // ask price, ask size, bid price, bid size
			if c[l+1] != "0" {
				q, _ := strconv.ParseInt(c[l+1], 10, 64)
				rows[i].asks = append(rows[i].asks, bookLevelJSON{price(c[l]), q})
			}
			if c[l+3] != "0" {
				q, _ := strconv.ParseInt(c[l+3], 10, 64)
				rows[i].bids = append(rows[i].bids, bookLevelJSON{price(c[l+2]), q})
			}
		}
	}
	return rows
}

func bookAt(t *testing.T, args ...string) bookJSON {
	t.Helper()
	code, out, errs := run(t, append([]string{"book"}, args...)...)
	if code != 0 {
		t.Fatalf("book %q: exit %d %s", args, code, errs)
	}
	var b bookJSON
	dec := json.NewDecoder(strings.NewReader(out))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&b); err != nil {
		t.Fatalf("book %q: %v\n%s", args, err, out)
	}
	if dec.More() {
		t.Fatalf("book --json printed more than one object:\n%s", out)
	}
	return b
}

// TestBookMatchesLobsterOrderbook rebuilds the book after chosen messages
// and compares it with the orderbook row the exchange data publisher wrote
// for that message.
func TestBookMatchesLobsterOrderbook(t *testing.T) {
	dir, _, data := importAMZN(t)
	rows := readLobster(t, filepath.Join(data, amznMsg5), filepath.Join(data, amznBook5))
	checked := 0
	for _, k := range []int{0, 1, 2, 10, 99, 500, 777, 1234, 1500, 1998, len(rows) - 1} {
		// time:T includes every frame stamped at or before T, so the book
		// is the row's only if the next message is later.
		for k < len(rows)-1 && (rows[k+1].ts == rows[k].ts || !rows[k].exact) {
			k++
		}
		r := rows[k]
		at := "time:" + time.Unix(0, r.ts).UTC().Format(time.RFC3339Nano)
		got := bookAt(t, "--dir", dir, "--instrument", "AMZN", "--at", at, "--depth", "5", "--json")
		if got.Instrument != 7 || got.Symbol != "AMZN" {
			t.Fatalf("message %d: instrument %d %q", k+1, got.Instrument, got.Symbol)
		}
		if got.TS != time.Unix(0, r.ts).UTC().Format(time.RFC3339Nano) {
			t.Errorf("message %d: ts %s, want the message's time %s", k+1, got.TS, at)
		}
		if fmt.Sprint(got.Bids) != fmt.Sprint(r.bids) || fmt.Sprint(got.Asks) != fmt.Sprint(r.asks) {
			t.Errorf("message %d (%s): book\n bids %v\n asks %v\nLOBSTER row\n bids %v\n asks %v", k+1, at, got.Bids, got.Asks, r.bids, r.asks)
		}
		// The same point named by seq (and by id) gives the same book.
		again := bookAt(t, "--dir", dir, "--instrument", "7", "--at", fmt.Sprintf("seq:%d", got.Seq), "--depth", "5", "--json")
		if fmt.Sprint(again) != fmt.Sprint(got) {
			t.Errorf("message %d: --at seq:%d gives %v, time gives %v", k+1, got.Seq, again, got)
		}
		checked++
	}
	if checked < 5 {
		t.Fatalf("only %d points checked", checked)
	}
	// Without --at: the end, i.e. the last row.
	end := bookAt(t, "--dir", dir, "--instrument", "AMZN", "--depth", "5", "--json")
	if last := rows[len(rows)-1]; fmt.Sprint(end.Bids) != fmt.Sprint(last.bids) || fmt.Sprint(end.Asks) != fmt.Sprint(last.asks) {
		t.Errorf("end: %v %v, last row %v %v", end.Bids, end.Asks, last.bids, last.asks)
	}
	// --depth 0 prints every level, at least the 5 of the view.
	all := bookAt(t, "--dir", dir, "--instrument", "AMZN", "--depth", "0", "--json")
	if len(all.Bids) < len(end.Bids) || len(all.Asks) < len(end.Asks) || fmt.Sprint(all.Bids[:len(end.Bids)]) != fmt.Sprint(end.Bids) {
		t.Errorf("--depth 0: %d/%d levels", len(all.Bids), len(all.Asks))
	}
}

func TestBookText(t *testing.T) {
	dir, _, data := importAMZN(t)
	rows := readLobster(t, filepath.Join(data, amznMsg5), filepath.Join(data, amznBook5))
	last := rows[len(rows)-1]
	code, out, _ := run(t, "book", "--dir", dir, "--instrument", "AMZN", "--depth", "3")
	if code != 0 {
		t.Fatalf("exit %d", code)
	}
	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
	if !strings.HasPrefix(lines[0], "AMZN  instrument 7  seq ") || !strings.Contains(lines[1], "BID PRICE") {
		t.Fatalf("header:\n%s", out)
	}
	// Row 1 of the ladder is the best bid and the best ask, and every ladder
	// row has its separator in the same column.
	if !strings.Contains(lines[2], last.bids[0].Price) || !strings.Contains(lines[2], last.asks[0].Price) {
		t.Errorf("best level row %q, want %v / %v", lines[2], last.bids[0], last.asks[0])
	}
	col := strings.Index(lines[1], "|")
	for _, l := range lines[1:5] {
		if strings.Index(l, "|") != col {
			t.Errorf("ladder not aligned:\n%s", out)
			break
		}
	}
}

func TestBookErrors(t *testing.T) {
	dir, _, _ := importAMZN(t)
	for _, args := range [][]string{
		{"book", "--instrument", "AMZN"},
		{"book", "--dir", dir},
		{"book", "--dir", dir, "--instrument", "AMZN", "--at", "yesterday"},
		{"book", "--dir", dir, "--instrument", "AMZN", "--at", "start"},
		{"book", "--dir", dir, "--instrument", "AMZN", "--at", "seq:0"},
		{"book", "--dir", dir, "--instrument", "AMZN", "--depth", "-1"},
		{"book", "--dir", dir, "--instrument", "AMZN", "extra"},
	} {
		if code, _, stderr := run(t, args...); code != ExitUsage || stderr == "" {
			t.Errorf("%q: exit %d, want 2", args[1:], code)
		}
	}
	for _, args := range [][]string{
		{"book", "--dir", dir, "--instrument", "MSFT"},
		{"book", "--dir", dir, "--instrument", "8"},
		{"book", "--dir", dir, "--instrument", "AMZN", "--at", "seq:999999"},
		{"book", "--dir", dir, "--instrument", "AMZN", "--at", "time:2012-06-21T00:00:00Z"},
		{"book", "--dir", t.TempDir(), "--instrument", "AMZN"},
	} {
		if code, _, stderr := run(t, args...); code != ExitData || stderr == "" {
			t.Errorf("%q: exit %d stderr %q, want 1 with a message", args[1:], code, stderr)
		}
	}
}
