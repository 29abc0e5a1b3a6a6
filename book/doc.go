// Package book rebuilds a price-level order book from mdjournal messages.
//
// A Book holds one instrument's full depth, per price level (not per order):
// every L3 event (OrderAdd, OrderCancel, OrderDelete, OrderExecute) carries its
// side, price and quantity, so the builder never needs to have seen the order
// being cancelled. That is what lets a consumer join a feed mid-session or
// replay a depth-limited source such as LOBSTER, whose files refer to orders
// placed before the file starts.
//
// Event semantics:
//
//	BookLevel     sets the aggregate quantity at (side, price); 0 removes the level.
//	OrderAdd      adds qty at (side, price), creating the level if needed.
//	OrderCancel   subtracts the cancelled qty.
//	OrderDelete   subtracts the qty that was still resting.
//	OrderExecute  subtracts the executed qty; with FlagHidden it changes nothing
//	              (hidden liquidity was never on the visible book).
//	Quote         replaces the top of each side: levels better than the quoted
//	              price are removed and the quoted level is set to the quoted
//	              qty; levels behind it are kept. A zero quoted qty means that
//	              side is empty, so the whole side is cleared.
//	Trade         records the last trade price and qty; no book change.
//
// A subtraction that would take a level below zero (or names a price with no
// level at all) never panics: the level is removed (clamped to zero) and the
// event is counted in Stats, because a feed joined mid-session or a lossy
// source can legitimately do that, and the counter is what tells an operator
// how much to trust the book. Crossed books are allowed: a feed may show one
// transiently between an aggressive add and its executions.
//
// Levels are kept in one sorted slice per side with the best price at the end
// of the slice, so the common case (a change at or near the top) finds its
// level after a few comparisons and inserts or removes it by moving only the
// few entries above it. Apply and Top allocate nothing once the slices have the
// capacity the book needs; New pre-sizes them.
package book
