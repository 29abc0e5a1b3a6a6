package book_test

import (
	"fmt"

	"github.com/mdjournal/mdjournal/book"
	"github.com/mdjournal/mdjournal/journal"
)

// A consumer applies every frame of one instrument and reads the top of
// the book.
func Example() {
	b := book.New(0)
	adds := []journal.Order{
		{OrderID: 1, Price: 1_000_000, Qty: 100, Side: journal.SideBid},
		{OrderID: 2, Price: 1_000_100, Qty: 50, Side: journal.SideAsk},
		{OrderID: 3, Price: 999_900, Qty: 70, Side: journal.SideBid},
	}
	for i := range adds {
		b.ApplyOrder(journal.TypeOrderAdd, &adds[i])
	}
	exec := journal.Order{OrderID: 2, Price: 1_000_100, Qty: 50, Side: journal.SideAsk}
	b.ApplyOrder(journal.TypeOrderExecute, &exec) // the ask is taken out

	bid, _ := b.Best(journal.SideBid)
	_, hasAsk := b.Best(journal.SideAsk)
	fmt.Println("best bid", journal.FormatPrice(bid.Price, 4), "x", bid.Qty, "| bid levels", b.Depth(journal.SideBid), "| ask side empty:", !hasAsk)
	// Output: best bid 100.0000 x 100 | bid levels 2 | ask side empty: true
}
