package book

import (
	"errors"
	"slices"
	"testing"

	"github.com/mdjournal/mdjournal/journal"
)

const (
	bid = journal.SideBid
	ask = journal.SideAsk
)

// ev is one test event: a type and the fields its payload needs.
type ev struct {
	typ   journal.MsgType
	side  journal.Side
	price int64
	qty   int64
	flags uint8
	// quote fields
	bp, bq, ap, aq int64
}

func add(s journal.Side, p, q int64) ev {
	return ev{typ: journal.TypeOrderAdd, side: s, price: p, qty: q}
}
func cxl(s journal.Side, p, q int64) ev {
	return ev{typ: journal.TypeOrderCancel, side: s, price: p, qty: q}
}
func del(s journal.Side, p, q int64) ev {
	return ev{typ: journal.TypeOrderDelete, side: s, price: p, qty: q}
}
func exe(s journal.Side, p, q int64) ev {
	return ev{typ: journal.TypeOrderExecute, side: s, price: p, qty: q}
}
func hid(s journal.Side, p, q int64) ev {
	return ev{typ: journal.TypeOrderExecute, side: s, price: p, qty: q, flags: journal.FlagHidden}
}
func lvl(s journal.Side, p, q int64) ev {
	return ev{typ: journal.TypeBookLevel, side: s, price: p, qty: q}
}
func quo(bp, bq, ap, aq int64) ev {
	return ev{typ: journal.TypeQuote, bp: bp, bq: bq, ap: ap, aq: aq}
}
func trd(p, q int64) ev { return ev{typ: journal.TypeTrade, price: p, qty: q} }

// encode builds the wire payload, so tests go through ApplyPayload's decoding.
func (e ev) encode() []byte {
	b := make([]byte, 32)
	switch {
	case e.typ.IsOrder():
		o := journal.Order{OrderID: 7, Price: e.price, Qty: e.qty, Side: e.side, Flags: e.flags}
		return o.Encode(b)
	case e.typ == journal.TypeBookLevel:
		l := journal.BookLevel{Price: e.price, Qty: e.qty, Side: e.side}
		return l.Encode(b)
	case e.typ == journal.TypeQuote:
		q := journal.Quote{BidPrice: e.bp, BidQty: e.bq, AskPrice: e.ap, AskQty: e.aq}
		return q.Encode(b)
	case e.typ == journal.TypeTrade:
		t := journal.Trade{Price: e.price, Qty: e.qty, Aggressor: e.side}
		return t.Encode(b)
	}
	return nil
}

func levels(pq ...int64) []Level {
	out := make([]Level, 0, len(pq)/2)
	for i := 0; i+1 < len(pq); i += 2 {
		out = append(out, Level{pq[i], pq[i+1]})
	}
	return out
}

func top(b *Book, s journal.Side) []Level {
	dst := make([]Level, 64)
	return dst[:b.Top(s, dst)]
}

func TestApply(t *testing.T) {
	tests := []struct {
		name          string
		events        []ev
		bids, asks    []Level
		clamp, miss   uint64
		lastP, lastQ  int64
		wantRejectErr bool
	}{
		{name: "add creates levels sorted best first",
			events: []ev{add(bid, 100, 5), add(bid, 102, 1), add(bid, 101, 2), add(ask, 105, 3), add(ask, 103, 4), add(ask, 104, 1)},
			bids:   levels(102, 1, 101, 2, 100, 5), asks: levels(103, 4, 104, 1, 105, 3)},
		{name: "add joins an existing level",
			events: []ev{add(bid, 100, 5), add(bid, 100, 7)},
			bids:   levels(100, 12)},
		{name: "cancel is partial",
			events: []ev{add(ask, 100, 5), cxl(ask, 100, 2)},
			asks:   levels(100, 3)},
		{name: "delete removes the level when it reaches zero",
			events: []ev{add(ask, 100, 5), add(ask, 101, 1), del(ask, 100, 5)},
			asks:   levels(101, 1)},
		{name: "execute reduces the level",
			events: []ev{add(bid, 100, 5), exe(bid, 100, 3)},
			bids:   levels(100, 2)},
		{name: "hidden execute changes nothing",
			events: []ev{add(bid, 100, 5), hid(bid, 100, 3), hid(ask, 99, 3)},
			bids:   levels(100, 5)},
		{name: "execute more than resting clamps and counts",
			events: []ev{add(bid, 100, 5), add(bid, 99, 1), exe(bid, 100, 8)},
			bids:   levels(99, 1), clamp: 1},
		{name: "delete of unknown price is counted, book unchanged",
			events: []ev{add(bid, 100, 5), del(bid, 98, 5), cxl(ask, 98, 1)},
			bids:   levels(100, 5), miss: 2},
		{name: "level emptied then re-added",
			events: []ev{add(ask, 100, 5), add(ask, 101, 2), exe(ask, 100, 5), add(ask, 100, 9)},
			asks:   levels(100, 9, 101, 2)},
		{name: "crossed book is allowed",
			events: []ev{add(bid, 100, 5), add(ask, 101, 5), add(bid, 102, 1)},
			bids:   levels(102, 1, 100, 5), asks: levels(101, 5)},
		{name: "book level sets absolute qty and zero removes",
			events: []ev{add(bid, 100, 5), lvl(bid, 100, 2), lvl(bid, 99, 4), lvl(ask, 110, 1), lvl(ask, 110, 0), lvl(ask, 111, 0)},
			bids:   levels(100, 2, 99, 4)},
		{name: "quote trims better levels, keeps worse ones",
			events: []ev{add(bid, 100, 1), add(bid, 99, 1), add(bid, 98, 1), add(ask, 101, 1), add(ask, 102, 1),
				quo(99, 7, 103, 2)},
			bids: levels(99, 7, 98, 1), asks: levels(103, 2)},
		{name: "quote inserts a better level",
			events: []ev{add(bid, 100, 1), add(ask, 105, 1), quo(101, 3, 104, 4)},
			bids:   levels(101, 3, 100, 1), asks: levels(104, 4, 105, 1)},
		{name: "quote with zero qty clears the side",
			events: []ev{add(bid, 100, 1), add(bid, 99, 1), add(ask, 105, 1), quo(0, 0, 105, 6)},
			asks:   levels(105, 6)},
		{name: "trade records last and leaves the book",
			events: []ev{add(ask, 100, 5), trd(100, 3), trd(101, 2)},
			asks:   levels(100, 5), lastP: 101, lastQ: 2},
		{name: "negative prices order correctly",
			events: []ev{add(bid, -5, 1), add(bid, -1, 1), add(ask, -3, 1), add(ask, -7, 1)},
			bids:   levels(-1, 1, -5, 1), asks: levels(-7, 1, -3, 1)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := New(4) // small, so growth paths are exercised too
			for i, e := range tc.events {
				if err := b.ApplyPayload(e.typ, e.encode()); err != nil {
					t.Fatalf("event %d: %v", i, err)
				}
			}
			if got := top(b, bid); !slices.Equal(got, tc.bids) {
				t.Errorf("bids = %v, want %v", got, tc.bids)
			}
			if got := top(b, ask); !slices.Equal(got, tc.asks) {
				t.Errorf("asks = %v, want %v", got, tc.asks)
			}
			st := b.Stats()
			if st.Clamped != tc.clamp || st.Missing != tc.miss {
				t.Errorf("clamped, missing = %d, %d; want %d, %d", st.Clamped, st.Missing, tc.clamp, tc.miss)
			}
			if st.Applied != uint64(len(tc.events)) {
				t.Errorf("applied = %d, want %d", st.Applied, len(tc.events))
			}
			if p, q, _ := b.LastTrade(); p != tc.lastP || q != tc.lastQ {
				t.Errorf("last trade = %d x %d, want %d x %d", p, q, tc.lastP, tc.lastQ)
			}
			if err := b.Check(); err != nil {
				t.Error(err)
			}
		})
	}
}

func TestReject(t *testing.T) {
	b := New(0)
	if err := b.ApplyOrder(journal.TypeOrderAdd, &journal.Order{Price: 1, Qty: 1, Side: 3}); !errors.Is(err, ErrSide) {
		t.Errorf("bad side: err = %v", err)
	}
	if err := b.SetLevel(bid, 1, -1); !errors.Is(err, ErrQty) {
		t.Errorf("negative level qty: err = %v", err)
	}
	if err := b.ApplyOrder(journal.TypeTrade, &journal.Order{Price: 1, Qty: 1, Side: bid}); err == nil {
		t.Error("non-order type accepted by ApplyOrder")
	}
	if err := b.ApplyPayload(journal.TypeOrderAdd, make([]byte, 10)); err == nil {
		t.Error("short payload accepted")
	}
	if st := b.Stats(); st.Rejected != 4 || st.Applied != 0 {
		t.Errorf("stats = %+v", st)
	}
	if b.Depth(bid)+b.Depth(ask) != 0 {
		t.Error("rejected events changed the book")
	}
}

func TestTopShortDst(t *testing.T) {
	b := New(0)
	for p := int64(1); p <= 5; p++ {
		b.SetLevel(ask, p, p*10)
	}
	dst := make([]Level, 3)
	if n := b.Top(ask, dst); n != 3 || !slices.Equal(dst, levels(1, 10, 2, 20, 3, 30)) {
		t.Errorf("Top = %d %v", n, dst)
	}
	if n := b.Top(journal.SideNone, dst); n != 0 {
		t.Errorf("Top(none) = %d", n)
	}
	if l, ok := b.At(ask, 4); !ok || l != (Level{5, 50}) {
		t.Errorf("At(4) = %v %v", l, ok)
	}
	if _, ok := b.At(ask, 5); ok {
		t.Error("At past depth reported a level")
	}
	if q := b.QtyAt(ask, 3); q != 30 {
		t.Errorf("QtyAt = %d", q)
	}
}

func frame(seq uint64, ts int64, instr uint32, e ev) journal.Frame {
	return journal.Frame{Seq: seq, TS: ts, Type: e.typ, Instrument: instr, Payload: e.encode()}
}

func TestApplyFrameAndBooks(t *testing.T) {
	s := NewBooks(8)
	var d journal.InstrumentDef
	d.SetSymbol("AAPL")
	d.TickSize, d.PriceScale = 100, 4
	def := journal.Frame{Seq: 1, TS: 10, Type: journal.TypeInstrumentDef, Instrument: 3, Payload: d.Encode(make([]byte, 32))}
	frames := []journal.Frame{
		def,
		frame(2, 11, 3, add(bid, 100, 5)),
		frame(3, 12, 4, add(ask, 200, 1)),
		{Seq: 4, TS: 13, Type: journal.TypeHeartbeat, Instrument: 9},
		{Seq: 5, TS: 14, Type: journal.TypeHeartbeat, Instrument: 3},
	}
	for i := range frames {
		if err := s.ApplyFrame(&frames[i]); err != nil {
			t.Fatal(err)
		}
	}
	if s.Len() != 2 {
		t.Fatalf("books = %d, want 2 (heartbeat must not create one)", s.Len())
	}
	b3, _ := s.Get(3)
	if got, ok := b3.Def(); !ok || got.SymbolString() != "AAPL" || got.PriceScale != 4 {
		t.Errorf("def = %+v %v", got, ok)
	}
	if b3.Seq() != 5 || b3.TS() != 14 {
		t.Errorf("book 3 at seq %d ts %d, want 5 14", b3.Seq(), b3.TS())
	}
	if l, ok := b3.Best(bid); !ok || l != (Level{100, 5}) {
		t.Errorf("book 3 best bid = %v", l)
	}
	b4, _ := s.Get(4)
	if l, ok := b4.Best(ask); !ok || l != (Level{200, 1}) || b4.Depth(bid) != 0 {
		t.Errorf("book 4 best ask = %v", l)
	}
	bad := journal.Frame{Seq: 6, Type: journal.TypeBookLevel, Instrument: 3, Payload: make([]byte, 3)}
	if err := s.ApplyFrame(&bad); err == nil || b3.Seq() != 5 {
		t.Errorf("short frame: err %v, seq %d", err, b3.Seq())
	}
}

func TestReset(t *testing.T) {
	b := New(2)
	b.SetLevel(bid, 1, 1)
	b.SetLevel(ask, 2, 1)
	b.Reset()
	if b.Depth(bid)+b.Depth(ask) != 0 || b.Stats() != (Stats{}) {
		t.Error("reset left state")
	}
	b.SetLevel(ask, 2, 1)
	b.SetLevel(ask, 1, 1)
	if l, _ := b.Best(ask); l.Price != 1 {
		t.Errorf("ask side lost its ordering after Reset: best %v", l)
	}
}
