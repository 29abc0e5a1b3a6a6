package pipeline_test

import (
	"fmt"

	"github.com/mdjournal/mdjournal/book"
	"github.com/mdjournal/mdjournal/journal"
	"github.com/mdjournal/mdjournal/pipeline"
)

// The strategy buys at the ask when the best bid's size dominates the best
// ask's, up to its position limit, at most MaxOrderQty at a time.
func ExampleStrategy_Decide() {
	b := book.New(0)
	b.SetLevel(journal.SideBid, 1_000_000, 1000) // $100.00 × 1000
	b.SetLevel(journal.SideAsk, 1_000_100, 100)  // $100.01 × 100
	s := pipeline.DefaultStrategy()
	for _, pos := range []int64{0, 250, 300} {
		side, price, qty, ok := s.Decide(b, pos)
		fmt.Println(pos, side, qty, price, ok)
	}
	// Output:
	// 0 bid 100 1000100 true
	// 250 bid 50 1000100 true
	// 300 none 0 0 false
}
