package book

import (
	"errors"
	"fmt"

	"github.com/mdjournal/mdjournal/journal"
)

// DefaultCapacity is the number of levels per side New reserves when asked
// for 0: enough for a liquid US equity's full visible depth, so a book built
// from a day's feed does not grow its slices after the opening minutes.
const DefaultCapacity = 1024

// Stats counts what a Book did with the events it was given.
type Stats struct {
	Applied uint64 // events that were applied (including no-op ones such as hidden executions)
	// Clamped counts subtractions that would have taken a level below zero;
	// the level was removed instead.
	Clamped uint64
	// Missing counts subtractions at a price with no level (an order placed
	// before the feed was joined, or an inconsistent source). Nothing changes.
	Missing uint64
	// Saturated counts additions that would have overflowed int64.
	Saturated uint64
	// Rejected counts events refused with an error (bad side, negative qty,
	// short payload). The book is unchanged by them.
	Rejected uint64
	// Ignored counts frames of types that carry no book information
	// (heartbeat, raw, unknown): they still advance Seq and TS.
	Ignored uint64
}

// Book is one instrument's price-level book. The zero value is not usable;
// call New. A Book is not safe for concurrent use.
type Book struct {
	bid, ask ladder

	def    journal.InstrumentDef
	hasDef bool

	lastPrice journal.Price
	lastQty   int64
	trades    uint64

	seq uint64
	ts  int64

	stats Stats
}

// New returns an empty book with room for capacity levels per side
// (DefaultCapacity if capacity <= 0) so that steady-state applies do not
// allocate.
func New(capacity int) *Book {
	if capacity <= 0 {
		capacity = DefaultCapacity
	}
	return &Book{
		bid: ladder{lv: make([]entry, 0, capacity)},
		ask: ladder{ask: true, lv: make([]entry, 0, capacity)},
	}
}

// Reset empties the book and its counters, keeping the allocated capacity.
func (b *Book) Reset() {
	bid, ask := b.bid.lv[:0], b.ask.lv[:0]
	*b = Book{bid: ladder{lv: bid}, ask: ladder{ask: true, lv: ask}}
}

// ErrSide is returned for an event whose side is neither bid nor ask.
var ErrSide = errors.New("book: side is neither bid nor ask")

// ErrQty is returned for a negative quantity (or a non-positive one where a
// positive one is required).
var ErrQty = errors.New("book: invalid quantity")

func (b *Book) ladder(s journal.Side) *ladder {
	switch s {
	case journal.SideBid:
		return &b.bid
	case journal.SideAsk:
		return &b.ask
	}
	return nil
}

// SetLevel applies an L2 update: the level at (side, price) now holds qty in
// total; qty 0 removes it.
func (b *Book) SetLevel(side journal.Side, price journal.Price, qty int64) error {
	l := b.ladder(side)
	if l == nil {
		return b.reject(ErrSide)
	}
	if qty < 0 {
		return b.reject(ErrQty)
	}
	l.set(price, qty)
	b.stats.Applied++
	return nil
}

// ApplyLevel applies a decoded BookLevel payload.
func (b *Book) ApplyLevel(l *journal.BookLevel) error { return b.SetLevel(l.Side, l.Price, l.Qty) }

// ApplyOrder applies a decoded L3 payload of type typ (OrderAdd, OrderCancel,
// OrderDelete or OrderExecute). The order id is not used: the book is kept per
// level, so unknown ids are fine.
func (b *Book) ApplyOrder(typ journal.MsgType, o *journal.Order) error {
	l := b.ladder(o.Side)
	if l == nil {
		return b.reject(ErrSide)
	}
	if o.Qty < 0 {
		return b.reject(ErrQty)
	}
	switch typ {
	case journal.TypeOrderAdd:
		if o.Qty > 0 && l.add(o.Price, o.Qty) {
			b.stats.Saturated++
		}
	case journal.TypeOrderExecute:
		if o.Flags&journal.FlagHidden != 0 {
			break // hidden liquidity: a trade, but no visible level changes
		}
		fallthrough
	case journal.TypeOrderCancel, journal.TypeOrderDelete:
		if o.Qty == 0 {
			break
		}
		missing, clamped := l.sub(o.Price, o.Qty)
		if missing {
			b.stats.Missing++
		}
		if clamped {
			b.stats.Clamped++
		}
	default:
		return b.reject(fmt.Errorf("book: %s is not an order event", typ))
	}
	b.stats.Applied++
	return nil
}

// ApplyQuote replaces the top of each side with the quote: on each side with
// a positive quoted qty, levels strictly better than the quoted price are
// removed and the quoted level is set to the quoted qty; levels behind it are
// kept (a BBO feed says nothing about them). A side quoted with qty 0 is empty,
// so it is cleared entirely.
func (b *Book) ApplyQuote(q *journal.Quote) error {
	if q.BidQty < 0 || q.AskQty < 0 {
		return b.reject(ErrQty)
	}
	quoteSide(&b.bid, q.BidPrice, q.BidQty)
	quoteSide(&b.ask, q.AskPrice, q.AskQty)
	b.stats.Applied++
	return nil
}

func quoteSide(l *ladder, p journal.Price, qty int64) {
	if qty == 0 {
		l.lv = l.lv[:0]
		return
	}
	l.trimBetter(p)
	l.set(p, qty)
}

// ApplyTrade records the last trade; the book itself does not change (the
// executions that consumed liquidity arrive as OrderExecute events).
func (b *Book) ApplyTrade(t *journal.Trade) error {
	b.lastPrice, b.lastQty = t.Price, t.Qty
	b.trades++
	b.stats.Applied++
	return nil
}

// ApplyDef records the instrument definition (symbol, scale, tick).
func (b *Book) ApplyDef(d *journal.InstrumentDef) {
	b.def, b.hasDef = *d, true
}

func (b *Book) reject(err error) error {
	b.stats.Rejected++
	return err
}

// Top copies the best levels of side into dst, best first, and returns how
// many it copied (at most len(dst)). It does not allocate.
func (b *Book) Top(side journal.Side, dst []Level) int {
	l := b.ladder(side)
	if l == nil {
		return 0
	}
	return l.top(dst)
}

// Best returns the best level of side, if any.
func (b *Book) Best(side journal.Side) (Level, bool) { return b.At(side, 0) }

// At returns the level at depth d of side (0 = best).
func (b *Book) At(side journal.Side, d int) (Level, bool) {
	l := b.ladder(side)
	if l == nil {
		return Level{}, false
	}
	return l.at(d)
}

// QtyAt returns the quantity resting at (side, price); 0 if there is no level.
func (b *Book) QtyAt(side journal.Side, price journal.Price) int64 {
	l := b.ladder(side)
	if l == nil {
		return 0
	}
	return l.qtyAt(price)
}

// Depth returns the number of levels on side.
func (b *Book) Depth(side journal.Side) int {
	l := b.ladder(side)
	if l == nil {
		return 0
	}
	return len(l.lv)
}

// LastTrade returns the last trade's price and qty and the number of trades
// seen (0 means no trade yet, and price and qty are then 0).
func (b *Book) LastTrade() (price journal.Price, qty int64, trades uint64) {
	return b.lastPrice, b.lastQty, b.trades
}

// Def returns the instrument definition, if an InstrumentDef has been applied.
func (b *Book) Def() (journal.InstrumentDef, bool) { return b.def, b.hasDef }

// Seq returns the sequence number of the last frame applied with ApplyFrame.
func (b *Book) Seq() uint64 { return b.seq }

// TS returns the timestamp (Unix ns) of the last frame applied with ApplyFrame.
func (b *Book) TS() int64 { return b.ts }

// Stats returns the counters.
func (b *Book) Stats() Stats { return b.stats }

// Affects reports whether frames of type t change what a Book holds (its
// levels, definition or last trade): definitions, trades, quotes, book
// levels and the L3 order events. The snapshot maintainer and its checker
// skip every other type.
func Affects(t journal.MsgType) bool {
	switch t {
	case journal.TypeInstrumentDef, journal.TypeTrade, journal.TypeQuote, journal.TypeBookLevel:
		return true
	}
	return t.IsOrder()
}
