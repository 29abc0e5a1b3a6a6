package snapshot

import (
	"fmt"
)

// The stress invariant: every field of a book published with counter k is a
// function of k, and the last trade's quantity is a checksum of the rest, so a
// reader holding a copy can tell whether it came from one publish (consistent)
// or mixes two (torn).

const invDepth = 10

// invBook fills bids and asks (capacity invDepth) for counter k and returns
// the slices to publish plus the book's other fields.
func invBook(k uint64, bids, asks []Level) (b, a []Level, ts int64, tr Trade) {
	nb := int(k % (invDepth + 1))
	na := int((k / 3) % (invDepth + 1))
	b, a = bids[:nb], asks[:na]
	for i := range b {
		b[i] = Level{Price: int64(k)*1000 - int64(i), Qty: int64(k) ^ int64(i)<<40}
	}
	for i := range a {
		a[i] = Level{Price: int64(k)*1000 + 1 + int64(i), Qty: int64(k) + 7*int64(i)}
	}
	ts = int64(k)*3 + 1
	tr = Trade{Price: int64(k) * 1000, TS: ts}
	tr.Qty = invSum(k, ts, b, a, tr.Price, tr.TS)
	return b, a, ts, tr
}

// invSum is an FNV-1a style checksum over a book's fields.
func invSum(seq uint64, ts int64, b, a []Level, px, tts int64) int64 {
	h := uint64(14695981039346656037)
	mix := func(v uint64) {
		h ^= v
		h *= 1099511628211
	}
	mix(seq)
	mix(uint64(ts))
	mix(uint64(len(b)))
	mix(uint64(len(a)))
	for _, l := range b {
		mix(uint64(l.Price))
		mix(uint64(l.Qty))
	}
	for _, l := range a {
		mix(uint64(l.Price))
		mix(uint64(l.Qty))
	}
	mix(uint64(px))
	mix(uint64(tts))
	return int64(h >> 1)
}

// checkInv reports whether bk is exactly the book published for counter
// bk.Seq (for instrument instr). A never-written slot (Seq 0) is accepted.
func checkInv(bk *Book, instr uint32) error {
	k := bk.Seq
	if k == 0 {
		return nil
	}
	if bk.Instrument != instr {
		return fmt.Errorf("seq %d: instrument %d, want %d", k, bk.Instrument, instr)
	}
	var wb, wa [invDepth]Level
	b, a, ts, tr := invBook(k, wb[:], wa[:])
	if bk.TS != ts {
		return fmt.Errorf("seq %d: ts %d, want %d", k, bk.TS, ts)
	}
	if len(bk.Bids) != len(b) || len(bk.Asks) != len(a) {
		return fmt.Errorf("seq %d: %d bids / %d asks, want %d / %d", k, len(bk.Bids), len(bk.Asks), len(b), len(a))
	}
	for i := range b {
		if bk.Bids[i] != b[i] {
			return fmt.Errorf("seq %d: bid %d = %+v, want %+v", k, i, bk.Bids[i], b[i])
		}
	}
	for i := range a {
		if bk.Asks[i] != a[i] {
			return fmt.Errorf("seq %d: ask %d = %+v, want %+v", k, i, bk.Asks[i], a[i])
		}
	}
	if bk.LastTrade != tr {
		return fmt.Errorf("seq %d: last trade %+v, want %+v", k, bk.LastTrade, tr)
	}
	if s := invSum(bk.Seq, bk.TS, bk.Bids, bk.Asks, bk.LastTrade.Price, bk.LastTrade.TS); s != bk.LastTrade.Qty {
		return fmt.Errorf("seq %d: checksum %d, want %d", k, bk.LastTrade.Qty, s)
	}
	return nil
}
