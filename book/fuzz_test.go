package book

import (
	"cmp"
	"maps"
	"slices"
	"testing"

	"github.com/mdjournal/mdjournal/journal"
)

// model is a deliberately naive reference book (a map per side) with the same
// documented semantics, so the fuzzer checks contents, not just invariants.
type model map[journal.Side]map[int64]int64

func (m model) sub(s journal.Side, p, q int64) {
	if v, ok := m[s][p]; ok {
		if v-q > 0 {
			m[s][p] = v - q
		} else {
			delete(m[s], p)
		}
	}
}

func (m model) apply(e ev) {
	switch e.typ {
	case journal.TypeOrderAdd:
		if e.qty > 0 {
			m[e.side][e.price] += e.qty
		}
	case journal.TypeOrderCancel, journal.TypeOrderDelete:
		m.sub(e.side, e.price, e.qty)
	case journal.TypeOrderExecute:
		if e.flags&journal.FlagHidden == 0 {
			m.sub(e.side, e.price, e.qty)
		}
	case journal.TypeBookLevel:
		if e.qty == 0 {
			delete(m[e.side], e.price)
		} else {
			m[e.side][e.price] = e.qty
		}
	case journal.TypeQuote:
		m.quote(bid, e.bp, e.bq, func(p int64) bool { return p > e.bp })
		m.quote(ask, e.ap, e.aq, func(p int64) bool { return p < e.ap })
	}
}

func (m model) quote(s journal.Side, p, q int64, better func(int64) bool) {
	if q == 0 {
		clear(m[s])
		return
	}
	maps.DeleteFunc(m[s], func(k, _ int64) bool { return better(k) })
	m[s][p] = q
}

func (m model) levels(s journal.Side) []Level {
	out := []Level{}
	for p, q := range m[s] {
		out = append(out, Level{p, q})
	}
	slices.SortFunc(out, func(a, b Level) int {
		if s == bid {
			return cmp.Compare(b.Price, a.Price)
		}
		return cmp.Compare(a.Price, b.Price)
	})
	return out
}

var fuzzTypes = [...]journal.MsgType{journal.TypeOrderAdd, journal.TypeOrderAdd, journal.TypeOrderCancel,
	journal.TypeOrderDelete, journal.TypeOrderExecute, journal.TypeBookLevel, journal.TypeQuote, journal.TypeTrade}

// decodeEvents turns fuzz bytes into events, 4 bytes each: type, side+flags,
// price offset (a narrow range so events collide on levels), qty.
func decodeEvents(data []byte) []ev {
	var out []ev
	for ; len(data) >= 4; data = data[4:] {
		e := ev{typ: fuzzTypes[data[0]%8], side: journal.Side(1 + data[1]&1), price: 1000 + int64(data[2]%32) - 16, qty: int64(data[3] % 16)}
		if data[1]&2 != 0 {
			e.flags = journal.FlagHidden
		}
		if e.typ == journal.TypeQuote {
			e.bp, e.bq, e.ap, e.aq = e.price, e.qty, e.price+int64(data[0]>>3)-8, int64(data[1]>>4)
		}
		out = append(out, e)
	}
	return out
}

func FuzzApply(f *testing.F) {
	f.Add([]byte{0, 0, 10, 5, 0, 1, 12, 5, 4, 0, 10, 9, 3, 1, 12, 5})
	f.Add([]byte{0, 0, 1, 1, 0, 0, 2, 1, 0, 0, 3, 1, 6, 0, 2, 4, 5, 1, 9, 0})
	f.Add([]byte{1, 0, 31, 15, 1, 0, 0, 15, 2, 0, 31, 3, 4, 2, 31, 15, 4, 0, 31, 15})
	f.Fuzz(func(t *testing.T, data []byte) {
		b := New(2)
		m := model{bid: {}, ask: {}}
		for i, e := range decodeEvents(data) {
			if err := b.ApplyPayload(e.typ, e.encode()); err != nil {
				t.Fatalf("event %d %+v: %v", i, e, err)
			}
			m.apply(e)
			if err := b.Check(); err != nil {
				t.Fatalf("after event %d %+v: %v", i, e, err)
			}
			for _, s := range []journal.Side{bid, ask} {
				if got, want := top(b, s), m.levels(s); len(want) <= 64 && !slices.Equal(got, want) {
					t.Fatalf("after event %d %+v: %s = %v, model %v", i, e, s, got, want)
				}
			}
		}
	})
}
