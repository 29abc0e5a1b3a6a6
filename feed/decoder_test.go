package feed

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mdjournal/mdjournal/internal/testutil"
	"github.com/mdjournal/mdjournal/itch"
	"github.com/mdjournal/mdjournal/journal"
	"github.com/mdjournal/mdjournal/writer"
)

// testDay is 2012-06-21 at midnight UTC: frame ts = 1340236800e9 + ITCH ts.
var testDay = itch.DayOf(time.Date(2012, 6, 21, 0, 0, 0, 0, time.UTC))

const midnight = int64(1340236800) * 1e9

func hdr(locate uint16, ts uint64) itch.Header { return itch.Header{Locate: locate, Timestamp: ts} }

func sym(s string) itch.Symbol {
	v, err := itch.ParseSymbol(s)
	if err != nil {
		panic(err)
	}
	return v
}

// show renders frames as text, decoding each payload with the journal's
// decoders, for comparison with hand-written expectations.
func show(fs []Frame) string {
	var s []string
	for _, f := range fs {
		x := fmt.Sprintf("%s i%d t%d", f.Type, f.Instrument, f.TS-midnight)
		switch f.Type {
		case journal.TypeOrderAdd, journal.TypeOrderCancel, journal.TypeOrderDelete, journal.TypeOrderExecute:
			var o journal.Order
			o.Decode(f.Payload)
			x += fmt.Sprintf(" id%d %s %d@%d f%d", o.OrderID, o.Side, o.Qty, o.Price, o.Flags)
		case journal.TypeTrade:
			var t journal.Trade
			t.Decode(f.Payload)
			x += fmt.Sprintf(" %d@%d #%d aggr %s f%d", t.Qty, t.Price, t.TradeID, t.Aggressor, t.Flags)
		case journal.TypeBookLevel:
			var l journal.BookLevel
			l.Decode(f.Payload)
			x += fmt.Sprintf(" %s %d@%d", l.Side, l.Qty, l.Price)
		case journal.TypeInstrumentDef:
			var d journal.InstrumentDef
			d.Decode(f.Payload)
			x += fmt.Sprintf(" %s tick %d scale %d", d.SymbolString(), d.TickSize, d.PriceScale)
		case journal.TypeTradingStatus:
			var st journal.TradingStatus
			st.Decode(f.Payload)
			x += fmt.Sprintf(" %s %q", journal.StatusName(st.Status), st.Reason[:])
		}
		s = append(s, x)
	}
	return strings.Join(s, " | ")
}

func enc(m itch.Msg) []byte { return m.AppendEncode(nil) }

// TestDecoderMessages decodes a hand-built sequence of every message kind
// the decoder turns into frames and compares with frames written by hand.
func TestDecoderMessages(t *testing.T) {
	d := NewDecoder(DecoderOptions{Day: testDay})
	steps := []struct {
		msg  []byte
		want string
	}{
		{enc(&itch.SystemEvent{Header: hdr(0, 5), EventCode: 'O'}), ""},
		{enc(&itch.StockDirectory{Header: hdr(7, 10), Stock: sym("AAPL")}), "instrument_def i7 t10 AAPL tick 100 scale 4"},
		{enc(&itch.StockDirectory{Header: hdr(7, 11), Stock: sym("AAPL")}), ""}, // a repeat
		{enc(&itch.StockTradingAction{Header: hdr(7, 12), Stock: sym("AAPL"), TradingState: 'T', Reason: [4]byte{'T', '1', ' ', ' '}}),
			`trading_status i7 t12 trading "T1\x00\x00"`},
		{enc(&itch.AddOrder{Header: hdr(7, 100), OrderRef: 1, Side: 'B', Shares: 300, Stock: sym("AAPL"), Price: 5850000}),
			"order_add i7 t100 id1 bid 300@5850000 f0"},
		{enc(&itch.AddOrderMPID{Header: hdr(7, 101), OrderRef: 2, Side: 'S', Shares: 200, Stock: sym("AAPL"), Price: 5851000, Attribution: [4]byte{'G', 'S', 'C', 'O'}}),
			"order_add i7 t101 id2 ask 200@5851000 f0"},
		{enc(&itch.OrderExecuted{Header: hdr(7, 102), OrderRef: 1, Shares: 100, Match: 9}),
			"order_execute i7 t102 id1 bid 100@5850000 f0 | trade i7 t102 100@5850000 #9 aggr ask f0"},
		{enc(&itch.OrderExecutedWithPrice{Header: hdr(7, 103), OrderRef: 2, Shares: 50, Match: 10, Printable: 'Y', Price: 5850500}),
			"order_execute i7 t103 id2 ask 50@5851000 f0 | trade i7 t103 50@5850500 #10 aggr bid f0"},
		{enc(&itch.OrderExecutedWithPrice{Header: hdr(7, 104), OrderRef: 2, Shares: 10, Match: 11, Printable: 'N', Price: 5850500}),
			"order_execute i7 t104 id2 ask 10@5851000 f0"},
		{enc(&itch.OrderCancel{Header: hdr(7, 105), OrderRef: 1, Canceled: 40}), "order_cancel i7 t105 id1 bid 40@5850000 f0"},
		// order 1 has 300-100-40 = 160 left; the replace deletes them and adds order 3 on its side
		{enc(&itch.OrderReplace{Header: hdr(7, 106), OrigOrderRef: 1, NewOrderRef: 3, Shares: 500, Price: 5849900}),
			"order_delete i7 t106 id1 bid 160@5850000 f0 | order_add i7 t106 id3 bid 500@5849900 f0"},
		{enc(&itch.OrderDelete{Header: hdr(7, 107), OrderRef: 2}), "order_delete i7 t107 id2 ask 140@5851000 f0"},
		{enc(&itch.OrderDelete{Header: hdr(7, 108), OrderRef: 2}), ""}, // gone: unknown
		{enc(&itch.OrderCancel{Header: hdr(7, 108), OrderRef: 1}), ""}, // replaced: unknown
		{enc(&itch.Trade{Header: hdr(7, 109), OrderRef: 0, Side: 'S', Shares: 25, Stock: sym("AAPL"), Price: 5850100, Match: 12}),
			"order_execute i7 t109 id0 ask 25@5850100 f1 | trade i7 t109 25@5850100 #12 aggr bid f1"},
		{enc(&itch.CrossTrade{Header: hdr(7, 110), Shares: 1000, Stock: sym("AAPL"), Price: 5850000, Match: 13, CrossType: 'C'}),
			"trade i7 t110 1000@5850000 #13 aggr none f0"},
		{enc(&itch.OrderExecuted{Header: hdr(7, 111), OrderRef: 3, Shares: 500, Match: 14}),
			"order_execute i7 t111 id3 bid 500@5849900 f0 | trade i7 t111 500@5849900 #14 aggr ask f0"},
		{enc(&itch.OrderCancel{Header: hdr(7, 112), OrderRef: 3, Canceled: 1}), ""},                                     // fully executed: gone
		{enc(&itch.AddOrder{Header: hdr(7, 113), OrderRef: 4, Side: 'X', Shares: 1, Stock: sym("AAPL"), Price: 1}), ""}, // invalid side
		{enc(&itch.RegSHORestriction{Header: hdr(7, 114), Stock: sym("AAPL"), Action: '0'}), ""},
		{enc(&itch.BrokenTrade{Header: hdr(7, 115), Match: 13}), ""},
		{enc(&itch.StockTradingAction{Header: hdr(7, 116), Stock: sym("AAPL"), TradingState: 'Z'}), ""}, // invalid state
	}
	for i, s := range steps {
		peek, err := d.Peek(s.msg)
		if err != nil {
			t.Fatalf("step %d: peek: %v", i, err)
		}
		p := show(peek)
		got, err := d.Decode(s.msg)
		if err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
		if g := show(got); g != s.want || p != s.want {
			t.Fatalf("step %d (%c):\n got  %s\n peek %s\n want %s", i, s.msg[0], g, p, s.want)
		}
	}
	c := d.Counters()
	if c.Messages != uint64(len(steps)) || c.Unknown != 3 || c.Invalid != 2 || c.Ignored != 4 || c.Frames != 18 || d.Orders() != 0 {
		t.Fatalf("counters %+v, %d orders", c, d.Orders())
	}
}

// TestDecoderExtension decodes each extension message into the frame it
// carries, and an ExtDefinition makes the Stock Directory that follows add
// nothing.
func TestDecoderExtension(t *testing.T) {
	d := NewDecoder(DecoderOptions{Day: testDay})
	var def journal.InstrumentDef
	def.SetSymbol("BRK.A-LONGSYM")
	def.TickSize, def.PriceScale = 1, 4
	steps := []struct {
		msg  []byte
		want string
	}{
		{AppendExtDefinition(nil, hdr(9, 1), &def), "instrument_def i9 t1 BRK.A-LONGSYM tick 1 scale 4"},
		{enc(&itch.StockDirectory{Header: hdr(9, 1), Stock: sym("BRK.A-LO")}), ""},
		{AppendExtLevel(nil, hdr(9, 2), &journal.BookLevel{Side: journal.SideAsk, Price: 1 << 40, Qty: 1 << 35}), "book_level i9 t2 ask 34359738368@1099511627776"},
		{AppendExtOrder(nil, hdr(9, 3), journal.TypeOrderAdd, &journal.Order{OrderID: 77, Price: -5, Qty: 1 << 33, Side: journal.SideBid, Flags: 0}),
			"order_add i9 t3 id77 bid 8589934592@-5 f0"},
		// the extension add made order 77 known: a standard cancel of it works
		{enc(&itch.OrderCancel{Header: hdr(9, 4), OrderRef: 77, Canceled: 2}), "order_cancel i9 t4 id77 bid 2@-5 f0"},
		{AppendExtOrder(nil, hdr(9, 5), journal.TypeOrderCancel, &journal.Order{OrderID: 78, Price: 10, Qty: 3, Side: journal.SideAsk}),
			"order_cancel i9 t5 id78 ask 3@10 f0"},
		{AppendExtTrade(nil, hdr(9, 6), &journal.Trade{Price: 123, Qty: 4, TradeID: 99, Aggressor: journal.SideBid, Flags: 1}),
			"trade i9 t6 4@123 #99 aggr bid f1"},
	}
	for i, s := range steps {
		got, err := d.Decode(s.msg)
		if err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
		if g := show(got); g != s.want {
			t.Fatalf("step %d (%c):\n got  %s\n want %s", i, s.msg[0], g, s.want)
		}
	}
	if sy, ok := d.Symbol(9); !ok || sy != "BRK.A-LONGSYM" {
		t.Fatalf("symbol of 9: %q %v", sy, ok)
	}
	// A Stock Directory naming another symbol for the locate is a new
	// definition (the writer refuses it).
	got, _ := d.Decode(enc(&itch.StockDirectory{Header: hdr(9, 7), Stock: sym("OTHER")}))
	if show(got) != "instrument_def i9 t7 OTHER tick 100 scale 4" {
		t.Fatalf("redefinition: %s", show(got))
	}
}

// TestDecoderMalformed: bytes that are not a message fail with the
// package's errors and change nothing.
func TestDecoderMalformed(t *testing.T) {
	d := NewDecoder(DecoderOptions{Day: testDay})
	add := enc(&itch.AddOrder{Header: hdr(1, 1), OrderRef: 5, Side: 'B', Shares: 1, Price: 1})
	if _, err := d.Decode(add); err != nil {
		t.Fatal(err)
	}
	level := AppendExtLevel(nil, hdr(1, 1), &journal.BookLevel{Side: 1, Price: 1, Qty: 1})
	badOrder := AppendExtOrder(nil, hdr(1, 1), journal.TypeOrderAdd, &journal.Order{OrderID: 6})
	badOrder[11] = byte(journal.TypeTrade)
	cases := []struct {
		msg  []byte
		want error
	}{
		{nil, itch.ErrShort},
		{[]byte{'Z', 1, 2}, itch.ErrUnknownType},
		{add[:20], itch.ErrShort},
		{append(bytes.Clone(add), 0), itch.ErrLength},
		{level[:27], ErrExtension},
		{append(bytes.Clone(level), 0), ErrExtension},
		{badOrder, ErrExtension},
		{enc(&itch.OrderDelete{Header: hdr(1, 1), OrderRef: 5})[:18], itch.ErrShort},
	}
	for i, c := range cases {
		if _, err := d.Peek(c.msg); !errors.Is(err, c.want) {
			t.Fatalf("case %d: peek error %v, want %v", i, err, c.want)
		}
		if _, err := d.Decode(c.msg); !errors.Is(err, c.want) {
			t.Fatalf("case %d: error %v, want %v", i, err, c.want)
		}
	}
	if _, _, _, q, ok := d.Order(5); !ok || q != 1 || d.Counters().Malformed != uint64(len(cases)) {
		t.Fatalf("order 5: %v %d; counters %+v", ok, q, d.Counters())
	}
}

// TestDecoderApplyRebuilds: a decoder rebuilt by applying the frames
// another decoder returned knows the same orders (what a restarted feed
// relies on).
func TestDecoderApplyRebuilds(t *testing.T) {
	a := NewDecoder(DecoderOptions{Day: testDay})
	b := NewDecoder(DecoderOptions{Day: testDay})
	var msgs [][]byte
	for i := uint64(1); i <= 3000; i++ {
		msgs = append(msgs, enc(&itch.AddOrder{Header: hdr(uint16(1+i%3), i), OrderRef: i, Side: "BS"[i%2], Shares: uint32(100 + i%7), Price: itch.Price4(1000 + i%13)}))
		switch i % 5 {
		case 1:
			msgs = append(msgs, enc(&itch.OrderCancel{Header: hdr(1, i), OrderRef: i - 1, Canceled: 3}))
		case 2:
			msgs = append(msgs, enc(&itch.OrderExecuted{Header: hdr(1, i), OrderRef: i / 2, Shares: 200, Match: i}))
		case 3:
			msgs = append(msgs, enc(&itch.OrderDelete{Header: hdr(1, i), OrderRef: i - 3}))
		case 4:
			msgs = append(msgs, enc(&itch.OrderReplace{Header: hdr(1, i), OrigOrderRef: i - 2, NewOrderRef: i + 1_000_000, Shares: 7, Price: 99}))
		}
	}
	for _, m := range msgs {
		fs, err := a.Decode(m)
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range fs {
			b.Apply(f.Type, f.Instrument, f.Payload)
		}
	}
	if a.Orders() != b.Orders() || a.Orders() == 0 {
		t.Fatalf("%d orders decoded, %d rebuilt", a.Orders(), b.Orders())
	}
	for ref := uint64(0); ref < 1_004_000; ref++ {
		i1, s1, p1, q1, ok1 := a.Order(ref)
		i2, s2, p2, q2, ok2 := b.Order(ref)
		if i1 != i2 || s1 != s2 || p1 != p2 || q1 != q2 || ok1 != ok2 {
			t.Fatalf("order %d: decoded %v %v %v %v %v, rebuilt %v %v %v %v %v", ref, i1, s1, p1, q1, ok1, i2, s2, p2, q2, ok2)
		}
	}
}

// TestRealITCH decodes the real NASDAQ fragment (1000 messages: system
// event, 993 stock directories, 3 trading actions, 3 Reg SHO) and writes
// its frames to a journal: 993 instruments with their symbols (id = stock
// locate), 3 trading statuses, nothing refused.
func TestRealITCH(t *testing.T) {
	dir := testutil.SharedData(t, "nasdaq-itch50-head1000")
	file, err := os.ReadFile(filepath.Join(dir, "sample.itch"))
	if err != nil {
		t.Fatal(err)
	}
	w, err := writer.Open(t.TempDir(), writer.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	d := NewDecoder(DecoderOptions{Day: testDay})
	r := itch.NewReader(bytes.NewReader(file))
	statuses := 0
	for {
		m, err := r.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		fs, err := d.Decode(m)
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range fs {
			if f.Type == journal.TypeTradingStatus {
				statuses++
			}
			if _, err := w.Append(f.Type, f.Instrument, f.TS, f.Payload); err != nil {
				t.Fatalf("message at %d: %v", r.Offset(), err)
			}
		}
	}
	cat := w.Catalog()
	if cat.Len() != 993 || statuses != 3 {
		t.Fatalf("%d instruments, %d statuses", cat.Len(), statuses)
	}
	for id, want := range map[uint32]string{1: "A", 2: "AA", 3: "AAAU"} {
		if got := cat.Symbol(id); got != want {
			t.Errorf("locate %d is %q, want %q", id, got, want)
		}
	}
	c := d.Counters()
	if c.Messages != 1000 || c.Frames != 996 || c.Ignored != 4 || c.ByType['R'] != 993 {
		t.Fatalf("counters %+v", c)
	}
}
