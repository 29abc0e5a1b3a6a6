package feed

import (
	"math/rand/v2"
	"testing"
)

// TestOrderTableAgainstMap runs random puts, deletes and updates on the
// order table and on a Go map side by side and compares every lookup: the
// backward-shift deletion must keep every entry reachable, including runs
// that wrap around the end of the slot array and across growth.
func TestOrderTableAgainstMap(t *testing.T) {
	for _, keys := range []uint64{50, 3000, 1 << 40} {
		rng := rand.New(rand.NewPCG(keys, 9))
		tab := newOrderTable(16)
		ref := map[uint64]int64{}
		steps := 200_000
		if testing.Short() {
			steps = 40_000
		}
		for i := 0; i < steps; i++ {
			k := rng.Uint64N(keys)
			switch rng.IntN(4) {
			case 0, 1:
				q := rng.Int64N(1000) + 1
				tab.put(order{ref: k, qty: q, price: int64(k) * 3})
				ref[k] = q
			case 2:
				tab.del(k)
				delete(ref, k)
			case 3:
				if o := tab.get(k); o != nil {
					o.qty++
					ref[k]++
				}
			}
			if i%997 == 0 {
				for k, q := range ref {
					o := tab.get(k)
					if o == nil || o.qty != q || o.price != int64(k)*3 {
						t.Fatalf("keys<%d step %d: order %d is %+v, want qty %d", keys, i, k, o, q)
					}
				}
			}
			if tab.len() != len(ref) {
				t.Fatalf("step %d: %d orders, map has %d", i, tab.len(), len(ref))
			}
		}
		for k := uint64(0); k < min(keys, 5000); k++ {
			_, in := ref[k]
			if (tab.get(k) != nil) != in {
				t.Fatalf("keys<%d: order %d present %v, map says %v", keys, k, tab.get(k) != nil, in)
			}
		}
	}
}

// TestOrderTableWrap fills the slots that hash to the end of the array so
// that probe runs wrap to the start, then deletes from the middle of the
// runs.
func TestOrderTableWrap(t *testing.T) {
	tab := newOrderTable(1024) // 2048 slots
	var keys []uint64
	for k := uint64(1); len(keys) < 40; k++ {
		if tab.home(k) >= tab.mask-8 {
			keys = append(keys, k)
			tab.put(order{ref: k, qty: int64(k)})
		}
	}
	for i, k := range keys {
		if i%3 == 1 {
			tab.del(k)
		}
	}
	for i, k := range keys {
		o := tab.get(k)
		if i%3 == 1 {
			if o != nil {
				t.Fatalf("deleted order %d still found", k)
			}
			continue
		}
		if o == nil || o.qty != int64(k) {
			t.Fatalf("order %d lost after deletions (%+v)", k, o)
		}
	}
}

// TestOrderTableShortRuns: dense consecutive references (an exchange's
// order numbers) must not form long runs of occupied slots, which every
// deletion and every lookup of a missing reference scans. 300,000 orders
// numbered upward in 1 Mi slots, half of them deleted at random: the run
// of occupied slots after an entry averages a few slots (an identity-like
// hash gives runs as long as the references are dense: about a thousand).
func TestOrderTableShortRuns(t *testing.T) {
	tab := newOrderTable(1 << 19)
	rng := rand.New(rand.NewPCG(7, 7))
	const n = 300_000
	for ref := uint64(1); ref <= n; ref++ {
		tab.put(order{ref: ref})
	}
	for ref := uint64(1); ref <= n; ref++ {
		if rng.IntN(2) == 0 {
			tab.del(ref)
		}
	}
	var total, count, longest uint64
	for i := range tab.slots {
		if !tab.slots[i].used {
			continue
		}
		run := uint64(0)
		for j := (uint64(i) + 1) & tab.mask; tab.slots[j].used; j = (j + 1) & tab.mask {
			run++
		}
		total += run
		count++
		longest = max(longest, run)
	}
	if mean := float64(total) / float64(count); mean > 8 || longest > 200 {
		t.Fatalf("%d orders in %d slots: runs after an entry average %.1f slots, longest %d", tab.len(), len(tab.slots), mean, longest)
	}
}
