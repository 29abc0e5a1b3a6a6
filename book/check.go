package book

import (
	"fmt"

	"github.com/mdjournal/mdjournal/journal"
)

// Check verifies the book's invariants: bids strictly descending, asks
// strictly ascending, every qty positive. It is for tests and debugging (it is
// O(depth)); a correct builder never fails it, whatever events it was fed.
func (b *Book) Check() error {
	for _, side := range [2]journal.Side{journal.SideBid, journal.SideAsk} {
		l := b.ladder(side)
		for i, e := range l.lv {
			if e.qty <= 0 {
				return fmt.Errorf("book: %s level %d has qty %d", side, len(l.lv)-1-i, e.qty)
			}
			if i > 0 && l.lv[i-1].key >= e.key {
				return fmt.Errorf("book: %s levels %d and %d out of order (%d, %d)", side,
					len(l.lv)-i, len(l.lv)-1-i, l.price(l.lv[i-1].key), l.price(e.key))
			}
		}
	}
	return nil
}
