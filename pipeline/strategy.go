package pipeline

import (
	"github.com/mdjournal/mdjournal/book"
	"github.com/mdjournal/mdjournal/journal"
)

// MaxInstruments bounds instrument ids (0..MaxInstruments-1) in every
// stage: the feed's snapshot has this many slots, and the engine and risk
// keep per-instrument state in arrays of this size. A frame or order of a
// larger id is refused (never silently mapped elsewhere).
const MaxInstruments = 1024

// Strategy is the engine's documented strategy: top-of-book imbalance with
// a target position.
//
// After every book-changing frame (order add/cancel/delete/execute, book
// level, quote) of an instrument whose book has both sides and is not
// crossed, it computes the imbalance of the best levels in basis points,
//
//	imb = 10000 × (bidQty − askQty) / (bidQty + askQty)
//
// and a target position: +MaxPosition when imb ≥ ThresholdBP (buyers
// dominate: the price is more likely to tick up), −MaxPosition when
// imb ≤ −ThresholdBP, else the current position (hold). When the target
// differs from the position it emits one order toward it of at most
// MaxOrderQty, priced to cross: a buy at the best ask, a sell at the best
// bid. The position is the sum of the engine's own orders (it assumes
// fills; a real engine would read fills and risk decisions instead, at the
// cost of decisions that depend on timing). The decision is a pure
// function of the book and the position: the same journal always gives the
// same orders.
type Strategy struct {
	ID          uint32 // OrderRequest.Strategy
	ThresholdBP int64  // 1..10000
	MaxPosition int64  // > 0
	MaxOrderQty int64  // > 0
}

// DefaultStrategy is the strategy the example runs.
func DefaultStrategy() Strategy {
	return Strategy{ID: 1, ThresholdBP: 6000, MaxPosition: 300, MaxOrderQty: 100}
}

// Decide returns the order the strategy wants after the book changed, given
// the instrument's position; ok is false when it wants none. It allocates
// nothing.
func (s *Strategy) Decide(b *book.Book, pos int64) (side journal.Side, price journal.Price, qty int64, ok bool) {
	bid, okb := b.Best(journal.SideBid)
	ask, oka := b.Best(journal.SideAsk)
	if !okb || !oka || bid.Price >= ask.Price || bid.Qty <= 0 || ask.Qty <= 0 {
		return 0, 0, 0, false
	}
	imb := 10000 * (bid.Qty - ask.Qty) / (bid.Qty + ask.Qty)
	target := pos
	switch {
	case imb >= s.ThresholdBP:
		target = s.MaxPosition
	case imb <= -s.ThresholdBP:
		target = -s.MaxPosition
	}
	d := target - pos
	switch {
	case d > 0:
		return journal.SideBid, ask.Price, min(d, s.MaxOrderQty), true
	case d < 0:
		return journal.SideAsk, bid.Price, min(-d, s.MaxOrderQty), true
	}
	return 0, 0, 0, false
}

// decisionFrame reports whether a frame of type t can move the strategy.
func decisionFrame(t journal.MsgType) bool {
	return t.IsOrder() || t == journal.TypeBookLevel || t == journal.TypeQuote
}

// signed returns qty with the sign of side (bid +, ask −).
func signed(side journal.Side, qty int64) int64 {
	if side == journal.SideAsk {
		return -qty
	}
	return qty
}
