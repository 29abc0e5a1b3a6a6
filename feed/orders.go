package feed

import (
	"math/bits"

	"github.com/mdjournal/mdjournal/journal"
)

// order is a resting order as a feed handler knows it: what an order
// reference carries for the messages that name only the reference.
type order struct {
	ref   uint64
	price int64
	qty   int64 // remaining displayed shares
	instr uint32
	side  journal.Side
	used  bool
}

// orderTable maps order reference numbers to orders: open addressing with
// linear probing and backward-shift deletion (no tombstones), so a day of
// adds and deletes never degrades it and nothing is allocated until it has
// to grow past half full.
type orderTable struct {
	slots []order
	mask  uint64
	bits  uint
	n     int
}

func newOrderTable(capacity int) *orderTable {
	t := &orderTable{}
	t.init(max(capacity, 1024))
	return t
}

// init sizes the table for capacity orders at most half full.
func (t *orderTable) init(capacity int) {
	size := 1 << bits.Len(uint(2*capacity-1))
	t.slots = make([]order, size)
	t.mask = uint64(size - 1)
	t.bits = uint(bits.Len(uint(size - 1)))
	t.n = 0
}

// home is the slot a reference hashes to. Eight consecutive references
// share a block of eight adjacent slots (256 bytes), and blocks are
// scattered over the table by Fibonacci hashing. Exchanges number orders
// upward and most events name recent orders, so the hot orders sit in few
// cache lines; scattering the blocks keeps the runs of occupied slots short
// (an identity-like hash makes them as long as the references are dense,
// and deletions scan them).
func (t *orderTable) home(ref uint64) uint64 {
	block := ((ref >> 3) * 0x9E3779B97F4A7C15) >> (64 - t.bits + 3)
	return (block<<3 | ref&7) & t.mask
}

// get returns the order with reference ref, or nil.
func (t *orderTable) get(ref uint64) *order {
	for i := t.home(ref); ; i = (i + 1) & t.mask {
		s := &t.slots[i]
		if !s.used {
			return nil
		}
		if s.ref == ref {
			return s
		}
	}
}

// put inserts or replaces the order o.ref.
func (t *orderTable) put(o order) {
	if 2*(t.n+1) > len(t.slots) {
		t.grow()
	}
	o.used = true
	for i := t.home(o.ref); ; i = (i + 1) & t.mask {
		s := &t.slots[i]
		if !s.used {
			*s = o
			t.n++
			return
		}
		if s.ref == o.ref {
			*s = o
			return
		}
	}
}

// del removes the order ref if present, shifting later entries of its
// probe run back so that every entry stays reachable from its home slot.
func (t *orderTable) del(ref uint64) {
	i := t.home(ref)
	for {
		s := &t.slots[i]
		if !s.used {
			return
		}
		if s.ref == ref {
			break
		}
		i = (i + 1) & t.mask
	}
	for j := (i + 1) & t.mask; ; j = (j + 1) & t.mask {
		s := &t.slots[j]
		if !s.used {
			break
		}
		h := t.home(s.ref)
		// s may move to i if its home is not in (i, j] (cyclically).
		if (j > i && (h <= i || h > j)) || (j < i && h <= i && h > j) {
			t.slots[i] = *s
			i = j
		}
	}
	t.slots[i] = order{}
	t.n--
}

func (t *orderTable) grow() {
	old := t.slots
	t.init(len(old)) // twice the slots: capacity len(old) at half full
	for i := range old {
		if old[i].used {
			t.put(old[i])
		}
	}
}

// len returns the number of orders held.
func (t *orderTable) len() int { return t.n }

// reset forgets every order, keeping the memory.
func (t *orderTable) reset() {
	clear(t.slots)
	t.n = 0
}
