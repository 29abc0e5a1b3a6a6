package lobster

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mdjournal/mdjournal/journal"
)

// rec is a decoded frame, for comparing with expectations written by hand.
type rec struct {
	typ   journal.MsgType
	ts    int64
	order journal.Order
	trade journal.Trade
	level journal.BookLevel
	state journal.TradingStatus
}

func decodeAll(t *testing.T, s *memSink) []rec {
	var out []rec
	for _, f := range s.frames(t) {
		r := rec{typ: f.Type, ts: f.TS}
		switch {
		case f.Type.IsOrder():
			r.order.Decode(f.Payload)
		case f.Type == journal.TypeTrade:
			r.trade.Decode(f.Payload)
		case f.Type == journal.TypeBookLevel:
			r.level.Decode(f.Payload)
		case f.Type == journal.TypeTradingStatus:
			r.state.Decode(f.Payload)
		}
		out = append(out, r)
	}
	return out
}

func writeFiles(t *testing.T, L int, msgs, rows string) (string, string) {
	dir := t.TempDir()
	m := filepath.Join(dir, "TEST_2012-06-21_34200000_57600000_message_"+string(rune('0'+L))+".csv")
	b := strings.Replace(m, "_message_", "_orderbook_", 1)
	if err := os.WriteFile(m, []byte(msgs), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(b, []byte(rows), 0o644); err != nil {
		t.Fatal(err)
	}
	return m, b
}

func TestImportMapping(t *testing.T) {
	const msgs = `34200.004241176,4,11,5,1000000,1
34200.5,4,12,6,1010000,-1
34201,5,0,7,1005000,1
34202,6,0,100,1004000,-1
34203,7,0,0,-1,-1
34204,1,13,8,990000,1
34205,2,13,3,990000,1
34206,3,13,5,990000,1
`
	mr, _ := NewMessageReader(strings.NewReader(msgs))
	var sink memSink
	st, err := Import(mr, nil, &sink, Options{Symbol: "AAPL", Date: Date{2012, 6, 21}, Instrument: 9})
	if err != nil {
		t.Fatal(err)
	}
	ny, err := time.LoadLocation("America/New_York")
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2012, 6, 21, 9, 30, 0, 4241176, ny).UnixNano()
	sec := func(s int) int64 { return time.Date(2012, 6, 21, 9, 30, s, 0, ny).UnixNano() }
	bid, ask := journal.SideBid, journal.SideAsk
	want := []rec{
		{typ: journal.TypeInstrumentDef, ts: t0},
		{typ: journal.TypeOrderExecute, ts: t0, order: journal.Order{OrderID: 11, Price: 1000000, Qty: 5, Side: bid}},
		{typ: journal.TypeTrade, ts: t0, trade: journal.Trade{Price: 1000000, Qty: 5, TradeID: 1, Aggressor: ask}},
		{typ: journal.TypeOrderExecute, ts: sec(0) + 5e8, order: journal.Order{OrderID: 12, Price: 1010000, Qty: 6, Side: ask}},
		{typ: journal.TypeTrade, ts: sec(0) + 5e8, trade: journal.Trade{Price: 1010000, Qty: 6, TradeID: 2, Aggressor: bid}},
		{typ: journal.TypeOrderExecute, ts: sec(1), order: journal.Order{Price: 1005000, Qty: 7, Side: bid, Flags: journal.FlagHidden}},
		{typ: journal.TypeTrade, ts: sec(1), trade: journal.Trade{Price: 1005000, Qty: 7, TradeID: 3, Aggressor: ask, Flags: journal.FlagHidden}},
		{typ: journal.TypeTrade, ts: sec(2), trade: journal.Trade{Price: 1004000, Qty: 100, TradeID: 4, Aggressor: journal.SideNone}},
		{typ: journal.TypeTradingStatus, ts: sec(3), state: journal.TradingStatus{Status: journal.StatusHalted}},
		{typ: journal.TypeOrderAdd, ts: sec(4), order: journal.Order{OrderID: 13, Price: 990000, Qty: 8, Side: bid}},
		{typ: journal.TypeOrderCancel, ts: sec(5), order: journal.Order{OrderID: 13, Price: 990000, Qty: 3, Side: bid}},
		{typ: journal.TypeOrderDelete, ts: sec(6), order: journal.Order{OrderID: 13, Price: 990000, Qty: 5, Side: bid}},
	}
	got := decodeAll(t, &sink)
	if len(got) != len(want) {
		t.Fatalf("%d frames, want %d: %+v", len(got), len(want), got)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("frame %d = %+v\nwant        %+v", i+1, got[i], want[i])
		}
	}
	f := sink.frames(t)[0]
	var d journal.InstrumentDef
	d.Decode(f.Payload)
	if d.SymbolString() != "AAPL" || d.PriceScale != 4 || d.TickSize != 100 || f.Instrument != 9 {
		t.Errorf("def = %+v instrument %d", d, f.Instrument)
	}
	if st.Messages != 8 || st.Halts != 1 || st.Trades != 4 || st.Frames != len(want) || st.ByType[TypeCross] != 1 {
		t.Errorf("stats = %+v", st)
	}
}

func TestImportSeed(t *testing.T) {
	bid, ask := journal.SideBid, journal.SideAsk
	for _, tc := range []struct {
		name, msg1, row1 string
		want             []journal.BookLevel // best first, bids then asks
	}{
		{"add at a new level is taken out", "1,1,1,5,100,1", "103,4,100,5,104,1,99,2",
			[]journal.BookLevel{{Price: 99, Qty: 2, Side: bid}, {Price: 103, Qty: 4, Side: ask}, {Price: 104, Qty: 1, Side: ask}}},
		{"add joining a level is subtracted", "1,1,1,5,100,1", "103,4,100,7,104,1,99,2",
			[]journal.BookLevel{{Price: 100, Qty: 2, Side: bid}, {Price: 99, Qty: 2, Side: bid}, {Price: 103, Qty: 4, Side: ask}, {Price: 104, Qty: 1, Side: ask}}},
		{"delete that emptied a level is put back", "1,3,1,6,102,-1", "103,4,100,7,104,1,99,2",
			[]journal.BookLevel{{Price: 100, Qty: 7, Side: bid}, {Price: 99, Qty: 2, Side: bid}, {Price: 102, Qty: 6, Side: ask}, {Price: 103, Qty: 4, Side: ask}, {Price: 104, Qty: 1, Side: ask}}},
		{"partial execution is added back", "1,4,1,3,103,-1", "103,4,100,7,9999999999,0,-9999999999,0",
			[]journal.BookLevel{{Price: 100, Qty: 7, Side: bid}, {Price: 103, Qty: 7, Side: ask}}},
		{"hidden execution changes nothing", "1,5,0,3,101,-1", "103,4,100,7,9999999999,0,-9999999999,0",
			[]journal.BookLevel{{Price: 100, Qty: 7, Side: bid}, {Price: 103, Qty: 4, Side: ask}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, b := writeFiles(t, 2, tc.msg1+"\n", tc.row1+"\n")
			var sink memSink
			st, err := ImportFiles(m, b, &sink, Options{})
			if err != nil {
				t.Fatal(err)
			}
			var got []journal.BookLevel
			for _, r := range decodeAll(t, &sink) {
				if r.typ == journal.TypeBookLevel {
					got = append(got, r.level)
				}
			}
			if len(got) != len(tc.want) || st.SeedLevels != len(tc.want) || st.EnteringLevels != 0 {
				t.Fatalf("seed = %+v (stats %+v), want %+v", got, st, tc.want)
			}
			for i := range got {
				if got[i] != tc.want[i] {
					t.Errorf("seed level %d = %+v, want %+v", i, got[i], tc.want[i])
				}
			}
		})
	}
}

func TestImportEnteringLevels(t *testing.T) {
	bid, ask := journal.SideBid, journal.SideAsk
	// L=1. The seed is bid 100x5 / ask 103x5. Message 2 pushes bid 100 out of
	// view (the importer's book keeps it); it then vanishes unseen, so when
	// message 3 empties 101 the row shows 99 entering: 100 must be removed as
	// stale and 99 set. Message 4 empties the ask side entirely (filler row):
	// nothing enters. Message 5 changes a level without emptying it.
	const msgs = `1,1,1,5,100,1
2,1,2,3,101,1
3,3,2,3,101,1
4,4,3,5,103,-1
5,2,4,2,99,1
`
	const rows = `103,5,100,10
103,5,101,3
103,5,99,7
9999999999,0,99,7
9999999999,0,99,5
`
	m, b := writeFiles(t, 1, msgs, rows)
	var sink memSink
	st, err := ImportFiles(m, b, &sink, Options{})
	if err != nil {
		t.Fatal(err)
	}
	var lv []journal.BookLevel
	for _, r := range decodeAll(t, &sink) {
		if r.typ == journal.TypeBookLevel {
			lv = append(lv, r.level)
		}
	}
	want := []journal.BookLevel{
		{Price: 100, Qty: 5, Side: bid}, {Price: 103, Qty: 5, Side: ask}, // seed
		{Price: 100, Qty: 0, Side: bid}, {Price: 99, Qty: 7, Side: bid}, // after message 3
	}
	if len(lv) != len(want) {
		t.Fatalf("book levels %+v, want %+v", lv, want)
	}
	for i := range want {
		if lv[i] != want[i] {
			t.Errorf("level frame %d = %+v, want %+v", i, lv[i], want[i])
		}
	}
	if st.Emptied != 2 || st.EnteringLevels != 2 || st.StaleLevels != 1 || st.Inconsistent != 0 {
		t.Errorf("stats = %+v", st)
	}
	r := rebuild(t, sink.frames(t), b, 1)
	if r.matched != 5 || r.misplaced != 0 {
		t.Errorf("rebuild: %+v", r)
	}
}

func TestImportInconsistentRowNotPatched(t *testing.T) {
	// L=2: message 2 empties bid 101; the row then claims level 1 is 100x9,
	// but the book (seeded with 100x5) says 100x5: nothing the message file
	// explains, so it is counted and left alone, not copied.
	const msgs = "1,1,1,1,101,1\n2,3,1,1,101,1\n"
	const rows = "103,5,101,1,104,1,100,5\n103,5,100,9,104,1,99,1\n"
	m, b := writeFiles(t, 2, msgs, rows)
	var sink memSink
	st, err := ImportFiles(m, b, &sink, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if st.Inconsistent != 1 || st.EnteringLevels != 0 {
		t.Errorf("stats = %+v", st)
	}
	if r := rebuild(t, sink.frames(t), b, 2); r.matched != 1 {
		t.Errorf("rebuild matched %d rows, want only row 1", r.matched)
	}
}

type failSink struct{ n int }

func (s *failSink) Append(journal.MsgType, uint32, int64, []byte) (uint64, error) {
	if s.n--; s.n < 0 {
		return 0, errors.New("disk full")
	}
	return 1, nil
}

func TestImportErrors(t *testing.T) {
	opts := Options{Symbol: "X", Date: Date{2012, 6, 21}}
	run := func(msgs, rows string, o Options, sink Sink) error {
		mr, _ := NewMessageReader(strings.NewReader(msgs))
		var src OrderbookSource
		if rows != "" {
			src, _ = NewOrderbookReader(strings.NewReader(rows), 0)
		}
		_, err := Import(mr, src, sink, o)
		return err
	}
	two := "1,1,1,1,100,1\n2,1,2,1,100,1\n"
	for name, err := range map[string]error{
		"fewer rows":  run(two, "101,1,100,1\n", opts, &memSink{}),
		"more rows":   run(two, "101,1,100,1\n101,1,100,2\n101,1,100,3\n", opts, &memSink{}),
		"levels":      run(two, "101,1,100,1\n101,1,100,2\n", Options{Symbol: "X", Date: opts.Date, Levels: 5}, &memSink{}),
		"no date":     run(two, "", Options{Symbol: "X"}, &memSink{}),
		"no symbol":   run(two, "", Options{Date: opts.Date}, &memSink{}),
		"long symbol": run(two, "", Options{Symbol: strings.Repeat("X", 17), Date: opts.Date}, &memSink{}),
		"sink":        run(two, "", opts, &failSink{n: 2}),
		"bad message": run(two+"x\n", "", opts, &memSink{}),
	} {
		if err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	if err := run(two, "101,1,100,1\n101,1,100,2\n", opts, &memSink{}); err != nil {
		t.Errorf("control case failed: %v", err)
	}
}

// dropSink forwards everything but BookLevel frames after the first L3 frame,
// i.e. it throws the entering levels away.
type dropSink struct {
	memSink
	seenL3 bool
}

func (s *dropSink) Append(typ journal.MsgType, instr uint32, ts int64, p []byte) (uint64, error) {
	s.seenL3 = s.seenL3 || typ.IsOrder()
	if s.seenL3 && typ == journal.TypeBookLevel {
		return 0, nil
	}
	return s.memSink.Append(typ, instr, ts, p)
}

// TestEnteringLevelsAreNeeded shows that the validation can fail: without the
// entering-level frames the rebuilt book drifts from the publisher's.
func TestEnteringLevelsAreNeeded(t *testing.T) {
	dir := filepath.Join(dataDir(t), "head2000")
	for _, name := range []string{"AAPL_2012-06-21_34200000_57600000_%s_1.csv", "GOOG_2012-06-21_34200000_57600000_%s_10.csv"} {
		m := filepath.Join(dir, strings.Replace(name, "%s", "message", 1))
		b := filepath.Join(dir, strings.Replace(name, "%s", "orderbook", 1))
		n, err := ParseFileName(m)
		if err != nil {
			t.Fatal(err)
		}
		var full memSink
		if _, err := ImportFiles(m, b, &full, Options{}); err != nil {
			t.Skip(err)
		}
		if r := rebuild(t, full.frames(t), b, n.Levels); r.matched != r.rows || r.rows != 2000 {
			t.Errorf("%s: full import matched %d of %d rows", name, r.matched, r.rows)
		}
		var drop dropSink
		if _, err := ImportFiles(m, b, &drop, Options{}); err != nil {
			t.Fatal(err)
		}
		if r := rebuild(t, drop.frames(t), b, n.Levels); r.matched == r.rows {
			t.Errorf("%s: without entering levels all %d rows still match: the comparison is blind", name, r.rows)
		}
	}
}

// LOBSTER's halt rows (type 7) carry the state in the price column: -1
// halted, 0 quoting resumes, 1 trading resumes; anything else is refused.
func TestImportTradingStatus(t *testing.T) {
	msgs := "34200,7,0,0,-1,-1\n34201,7,0,0,0,-1\n34202,7,0,0,1,-1\n"
	mr, _ := NewMessageReader(strings.NewReader(msgs))
	var sink memSink
	if _, err := Import(mr, nil, &sink, Options{Symbol: "X", Date: Date{2012, 6, 21}}); err != nil {
		t.Fatal(err)
	}
	got := decodeAll(t, &sink)
	want := []uint8{journal.StatusHalted, journal.StatusQuotationOnly, journal.StatusTrading}
	if len(got) != 1+len(want) {
		t.Fatalf("%d frames: %+v", len(got), got)
	}
	for i, w := range want {
		if g := got[1+i]; g.typ != journal.TypeTradingStatus || g.state.Status != w {
			t.Errorf("halt row %d: %+v, want status %s", i+1, g, journal.StatusName(w))
		}
	}
	mr, _ = NewMessageReader(strings.NewReader("34200,7,0,0,5,-1\n"))
	if _, err := Import(mr, nil, &memSink{}, Options{Symbol: "X", Date: Date{2012, 6, 21}}); err == nil || !strings.Contains(err.Error(), "indicator 5") {
		t.Fatalf("halt indicator 5: %v", err)
	}
}

// Merge interleaves streams by time, a message's frames together, the
// stream listed first on a tie.
func TestMergeStable(t *testing.T) {
	a := "34200,1,1,10,100,1\n34202,1,2,10,100,1\n34204,1,3,10,100,1\n"
	b := "34201,1,7,20,200,-1\n34202,1,8,20,200,-1\n34205,6,0,5,200,-1\n"
	stream := func(msgs, sym string, id uint32) *Stream {
		mr, _ := NewMessageReader(strings.NewReader(msgs))
		s, err := NewStream(mr, nil, Options{Symbol: sym, Date: Date{2012, 6, 21}, Instrument: id})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	var sink memSink
	sa, sb := stream(a, "A", 1), stream(b, "B", 2)
	if err := Merge([]*Stream{sa, sb}, &sink); err != nil {
		t.Fatal(err)
	}
	// (instrument, type, order id or trade qty) in the expected order.
	type key struct {
		instr uint32
		typ   journal.MsgType
		id    uint64
	}
	want := []key{
		{1, journal.TypeInstrumentDef, 0}, {1, journal.TypeOrderAdd, 1}, // 34200
		{2, journal.TypeInstrumentDef, 0}, {2, journal.TypeOrderAdd, 7}, // 34201
		{1, journal.TypeOrderAdd, 2}, {2, journal.TypeOrderAdd, 8}, // 34202: A first on the tie
		{1, journal.TypeOrderAdd, 3}, // 34204
		{2, journal.TypeTrade, 5},    // 34205
	}
	frames := sink.frames(t)
	if len(frames) != len(want) {
		t.Fatalf("%d frames, want %d", len(frames), len(want))
	}
	var prev int64
	for i, f := range frames {
		k := key{instr: f.Instrument, typ: f.Type}
		switch {
		case f.Type.IsOrder():
			var o journal.Order
			o.Decode(f.Payload)
			k.id = o.OrderID
		case f.Type == journal.TypeTrade:
			var tr journal.Trade
			tr.Decode(f.Payload)
			k.id = uint64(tr.Qty)
		}
		if k != want[i] || f.TS < prev {
			t.Errorf("frame %d: %+v at %d, want %+v (time order)", i, k, f.TS, want[i])
		}
		prev = f.TS
	}
	if sa.Stats().Messages != 3 || sb.Stats().Trades != 1 {
		t.Errorf("stats %+v %+v", sa.Stats(), sb.Stats())
	}
}
