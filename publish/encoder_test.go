package publish

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/mdjournal/mdjournal/feed"
	"github.com/mdjournal/mdjournal/itch"
	"github.com/mdjournal/mdjournal/journal"
)

var testDay = itch.DayOf(time.Date(2012, 6, 21, 0, 0, 0, 0, time.UTC))

const midnight = int64(1340236800) * 1e9

// rec records emitted messages.
type rec struct {
	msgs [][]byte
	ts   []int64
}

func (r *rec) emit(m []byte, ts int64) error {
	r.msgs = append(r.msgs, bytes.Clone(m))
	r.ts = append(r.ts, ts)
	return nil
}

func (r *rec) letters() string {
	var s []string
	for _, m := range r.msgs {
		s = append(s, string(m[0]))
	}
	return strings.Join(s, " ")
}

func order(id uint64, px, qty int64, side journal.Side, flags uint8) []byte {
	o := journal.Order{OrderID: id, Price: px, Qty: qty, Side: side, Flags: flags}
	return o.Encode(nil)
}

func trade(px, qty int64, id uint64, aggr journal.Side, flags uint8) []byte {
	t := journal.Trade{Price: px, Qty: qty, TradeID: id, Aggressor: aggr, Flags: flags}
	return t.Encode(nil)
}

func def(symbol string, tick int64, scale int32) journal.InstrumentDef {
	var d journal.InstrumentDef
	if err := d.SetSymbol(symbol); err != nil {
		panic(err)
	}
	d.TickSize, d.PriceScale = tick, scale
	return d
}

// TestEncoderChoices feeds hand-made frames and checks which message each
// becomes: the standard ITCH message where one gives back the frame, the
// extension where none does.
func TestEncoderChoices(t *testing.T) {
	var r rec
	e := NewEncoder(r.emit, testDay, nil)
	bid, ask := journal.SideBid, journal.SideAsk
	ts := midnight + 34200e9
	d1, d2 := def("AAPL", 100, 4), def("AMZN", 1, 4)
	steps := []struct {
		typ  journal.MsgType
		id   uint32
		pl   []byte
		want string // letters emitted by this step (the held frame of the step before included)
	}{
		{journal.TypeInstrumentDef, 1, d1.Encode(nil), "R"},
		{journal.TypeInstrumentDef, 2, d2.Encode(nil), "r R"},
		{journal.TypeInstrumentDef, 1, d1.Encode(nil), ""}, // sent already
		{journal.TypeTradingStatus, 1, (&journal.TradingStatus{Status: journal.StatusHalted, Reason: [4]byte{'L', 'U', 'D', 'P'}}).Encode(nil), "H"},
		{journal.TypeBookLevel, 1, (&journal.BookLevel{Price: 5000, Qty: 300, Side: bid}).Encode(nil), "l"},
		{journal.TypeOrderAdd, 1, order(10, 5000, 300, bid, 0), "A"},
		{journal.TypeOrderAdd, 1, order(11, 5100, 1<<33, ask, 0), "o"},  // more shares than ITCH's 32 bits
		{journal.TypeOrderExecute, 1, order(10, 5000, 100, bid, 0), ""}, // held: a trade may follow
		{journal.TypeTrade, 1, trade(5000, 100, 1, ask, 0), "E"},
		{journal.TypeOrderExecute, 1, order(10, 5000, 50, bid, 0), ""},
		{journal.TypeTrade, 1, trade(5001, 50, 2, ask, 0), "C"}, // executed at another price
		{journal.TypeOrderCancel, 1, order(10, 5000, 10, bid, 0), "X"},
		{journal.TypeOrderCancel, 1, order(99, 5000, 10, bid, 0), "o"}, // an order the stream never added
		{journal.TypeOrderCancel, 1, order(10, 4000, 10, bid, 0), "o"}, // another price than the order's
		{journal.TypeOrderExecute, 1, order(0, 5050, 7, ask, journal.FlagHidden), ""},
		{journal.TypeTrade, 1, trade(5050, 7, 3, bid, journal.FlagHidden), "P"},
		{journal.TypeOrderExecute, 1, order(99, 5000, 5, bid, 0), ""},
		{journal.TypeTrade, 1, trade(5000, 5, 4, ask, 0), "o t"}, // unknown order: both in full
		{journal.TypeTrade, 1, trade(5000, 1000, 5, journal.SideNone, 0), "Q"},
		{journal.TypeQuote, 1, (&journal.Quote{BidPrice: 1, BidQty: 1, AskPrice: 2, AskQty: 1}).Encode(nil), ""}, // no ITCH message: skipped
		{journal.TypeOrderDelete, 1, order(10, 5000, 130, bid, 0), ""},                                           // order 10: 300-100-50-10-10 = 130 left
		{journal.TypeOrderAdd, 1, order(12, 4900, 200, bid, 0), "U"},
		{journal.TypeOrderDelete, 1, order(12, 4900, 150, bid, 0), ""}, // not what rests
		{journal.TypeOrderExecute, 1, order(11, 5100, 1, ask, 0), "o"},
	}
	for i, s := range steps {
		before := len(r.msgs)
		if _, err := e.Append(s.typ, s.id, ts, s.pl); err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
		got := (&rec{msgs: r.msgs[before:]}).letters()
		if got != s.want {
			t.Fatalf("step %d (%s): emitted %q, want %q", i, s.typ, got, s.want)
		}
	}
	if err := e.Flush(); err != nil { // the held execution, alone: 'C' not printable
		t.Fatal(err)
	}
	if last := r.msgs[len(r.msgs)-1]; last[0] != 'C' || last[31] != 'N' {
		t.Fatalf("flushed %q", last)
	}
	st := e.Stats()
	if st.Skipped[journal.TypeQuote] != 1 || st.SkippedAll != 1 || st.Repeated != 1 || st.Directory != 2 {
		t.Fatalf("stats %+v", st)
	}
	for i, m := range r.msgs {
		if m[0] != 'r' && m[0] != 'R' && itch.Message(m).Timestamp() != uint64(r.ts[i]-midnight) {
			t.Fatalf("message %d (%c): ITCH time %d, frame time %d", i, m[0], itch.Message(m).Timestamp(), r.ts[i]-midnight)
		}
	}
}

// TestEncoderRefuses: what ITCH cannot carry at all is an error naming it.
func TestEncoderRefuses(t *testing.T) {
	var r rec
	e := NewEncoder(r.emit, testDay, nil)
	for _, c := range []struct {
		name string
		run  func() error
	}{
		{"scale", func() error { return e.Define(1, def("X", 1, 2), midnight) }},
		{"locate 0", func() error { _, err := e.Append(journal.TypeOrderAdd, 0, midnight, order(1, 1, 1, 1, 0)); return err }},
		{"locate 70000", func() error {
			_, err := e.Append(journal.TypeBookLevel, 70000, midnight, (&journal.BookLevel{Side: 1}).Encode(nil))
			return err
		}},
		{"before midnight", func() error {
			_, err := e.Append(journal.TypeOrderAdd, 1, midnight-1, order(1, 1, 1, 1, 0))
			return err
		}},
		{"status", func() error {
			_, err := e.Append(journal.TypeTradingStatus, 1, midnight, (&journal.TradingStatus{Status: 9}).Encode(nil))
			return err
		}},
	} {
		if err := c.run(); !errors.Is(err, ErrUnpublishable) {
			t.Errorf("%s: %v, want ErrUnpublishable", c.name, err)
		}
	}
	if len(r.msgs) != 0 {
		t.Fatalf("%d messages emitted", len(r.msgs))
	}
}

// TestEncoderRoundTrip encodes random frame streams — orders known and
// unknown, partial and full executions with and without their trades,
// hidden executions, replaces, sizes beyond 32 bits, negative prices,
// levels, crosses, statuses — and decodes every message with a separate
// feed.Decoder (the receiver's): it must give back exactly the frames,
// in order.
func TestEncoderRoundTrip(t *testing.T) {
	seeds := uint64(20)
	if testing.Short() {
		seeds = 5
	}
	for seed := uint64(1); seed <= seeds; seed++ {
		rng := rand.New(rand.NewPCG(seed, 1))
		var r rec
		e := NewEncoder(r.emit, testDay, nil)
		type fr struct {
			typ journal.MsgType
			id  uint32
			ts  int64
			pl  []byte
		}
		var in []fr
		add := func(typ journal.MsgType, id uint32, ts int64, pl []byte) {
			in = append(in, fr{typ, id, ts, pl})
			if _, err := e.Append(typ, id, ts, pl); err != nil {
				t.Fatalf("seed %d frame %d: %v", seed, len(in), err)
			}
		}
		for id := uint32(1); id <= 3; id++ {
			d := def("S"+string(rune('A'+id)), int64(1+rng.IntN(2)*99), 4)
			add(journal.TypeInstrumentDef, id, midnight, d.Encode(nil))
		}
		type live struct {
			px, qty int64
			side    journal.Side
			id      uint32
		}
		orders := map[uint64]*live{}
		var ids []uint64
		ts := midnight + 1000
		for n := 0; n < 3000; n++ {
			ts += int64(rng.IntN(3))
			instr := uint32(1 + rng.IntN(3))
			side := journal.Side(1 + rng.IntN(2))
			px := int64(10000 + rng.IntN(50))
			if rng.IntN(50) == 0 {
				px = -px
			}
			qty := int64(1 + rng.IntN(500))
			if rng.IntN(100) == 0 {
				qty = 1 << 34
			}
			pick := func() (uint64, *live) {
				if len(ids) == 0 || rng.IntN(10) == 0 {
					return uint64(1_000_000 + rng.IntN(1000)), &live{px: px, qty: qty, side: side, id: instr} // never added
				}
				k := ids[rng.IntN(len(ids))]
				if o, ok := orders[k]; ok {
					return k, o
				}
				return k, &live{px: px, qty: qty, side: side, id: instr}
			}
			switch rng.IntN(11) {
			case 0, 1, 2:
				ref := uint64(n + 1)
				orders[ref] = &live{px, qty, side, instr}
				ids = append(ids, ref)
				add(journal.TypeOrderAdd, instr, ts, order(ref, px, qty, side, 0))
			case 3:
				ref, o := pick()
				q := min(o.qty, int64(1+rng.IntN(100)))
				o.qty -= q
				add(journal.TypeOrderCancel, o.id, ts, order(ref, o.px, q, o.side, 0))
			case 4:
				ref, o := pick()
				delete(orders, ref)
				add(journal.TypeOrderDelete, o.id, ts, order(ref, o.px, o.qty, o.side, 0))
				if rng.IntN(2) == 0 { // sometimes a replace
					nref := uint64(2_000_000 + n)
					orders[nref] = &live{px + 1, qty, o.side, o.id}
					ids = append(ids, nref)
					add(journal.TypeOrderAdd, o.id, ts, order(nref, px+1, qty, o.side, 0))
				}
			case 5, 6:
				ref, o := pick()
				q := min(o.qty, int64(1+rng.IntN(100)))
				o.qty -= q
				add(journal.TypeOrderExecute, o.id, ts, order(ref, o.px, q, o.side, 0))
				if rng.IntN(5) != 0 {
					tp := o.px
					if rng.IntN(5) == 0 {
						tp++
					}
					add(journal.TypeTrade, o.id, ts, trade(tp, q, uint64(n), 3-o.side, 0))
				}
			case 7:
				add(journal.TypeOrderExecute, instr, ts, order(0, px, qty, side, journal.FlagHidden))
				add(journal.TypeTrade, instr, ts, trade(px, qty, uint64(n), 3-side, journal.FlagHidden))
			case 8:
				add(journal.TypeBookLevel, instr, ts, (&journal.BookLevel{Price: px, Qty: qty * int64(rng.IntN(2)), Side: side}).Encode(nil))
			case 9:
				add(journal.TypeTrade, instr, ts, trade(px, qty, uint64(n), journal.Side(rng.IntN(3)), uint8(rng.IntN(2))))
			case 10:
				add(journal.TypeTradingStatus, instr, ts, (&journal.TradingStatus{Status: uint8(1 + rng.IntN(4))}).Encode(nil))
			}
		}
		if err := e.Flush(); err != nil {
			t.Fatal(err)
		}
		// The receiver.
		d := feed.NewDecoder(feed.DecoderOptions{Day: testDay})
		var out []fr
		for _, m := range r.msgs {
			fs, err := d.Decode(m)
			if err != nil {
				t.Fatalf("seed %d: message %q: %v", seed, m, err)
			}
			for _, f := range fs {
				out = append(out, fr{f.Type, f.Instrument, f.TS, bytes.Clone(f.Payload)})
			}
		}
		if len(out) != len(in) {
			t.Fatalf("seed %d: %d frames in, %d out", seed, len(in), len(out))
		}
		for i := range in {
			a, b := in[i], out[i]
			if a.typ != b.typ || a.id != b.id || a.ts != b.ts || !bytes.Equal(a.pl, b.pl) {
				t.Fatalf("seed %d frame %d: in %s/%d/%d % x, out %s/%d/%d % x", seed, i, a.typ, a.id, a.ts, a.pl, b.typ, b.id, b.ts, b.pl)
			}
		}
		if seed == 1 {
			st := e.Stats()
			t.Logf("seed 1: %d frames → %d messages, %d of them extension", len(in), st.Messages, st.Extension)
		}
	}
}
