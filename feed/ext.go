package feed

import (
	"encoding/binary"
	"errors"

	"github.com/mdjournal/mdjournal/itch"
	"github.com/mdjournal/mdjournal/journal"
)

// The mdjournal vendor extension: four message types that ITCH 5.0 does not
// use, each with the standard 11-byte ITCH header (type, stock locate,
// tracking number, 6-byte timestamp) and big-endian fields. A publisher
// sends one only where no standard message decodes to the frame it has
// (see the package doc); a standard ITCH consumer skips them by their
// MoldUDP64 block length. Prices are int64 fixed point with the
// instrument's scale (4), quantities int64, sides and flags the journal's
// values (format.md §3.2).
const (
	// ExtLevel ('l', 28 bytes) is a book_level frame: side u8 at 11, price
	// i64 at 12, qty i64 at 20 (the level's new aggregate; 0 removes it).
	ExtLevel itch.Type = 'l'
	// ExtOrder ('o', 38 bytes) is an L3 order frame given in full: journal
	// message type u8 at 11 (7 order_add, 8 order_cancel, 9 order_delete,
	// 10 order_execute), order id u64 at 12, price i64 at 20, qty i64 at
	// 28, side u8 at 36, flags u8 at 37.
	ExtOrder itch.Type = 'o'
	// ExtTrade ('t', 37 bytes) is a trade frame given in full: price i64 at
	// 11, qty i64 at 19, trade id u64 at 27, aggressor side u8 at 35,
	// flags u8 at 36.
	ExtTrade itch.Type = 't'
	// ExtDefinition ('r', 35 bytes) is an instrument_def frame given in
	// full, for a definition a Stock Directory cannot carry (a tick size
	// other than DefaultTickSize, a symbol longer than 8 bytes): symbol 16
	// bytes NUL-padded at 11, tick size i64 at 27 (price scale 4). The
	// publisher sends it right before the instrument's Stock Directory,
	// which then adds no second definition.
	ExtDefinition itch.Type = 'r'
)

// Extension message lengths, header included.
const (
	ExtLevelLen      = 28
	ExtOrderLen      = 38
	ExtTradeLen      = 37
	ExtDefinitionLen = 35
)

// ExtLen returns the length of an extension message of type t, or 0 if t
// is not one.
func ExtLen(t itch.Type) int {
	switch t {
	case ExtLevel:
		return ExtLevelLen
	case ExtOrder:
		return ExtOrderLen
	case ExtTrade:
		return ExtTradeLen
	case ExtDefinition:
		return ExtDefinitionLen
	}
	return 0
}

func putHeader(b []byte, t itch.Type, h itch.Header) {
	b[0] = byte(t)
	binary.BigEndian.PutUint16(b[1:], h.Locate)
	binary.BigEndian.PutUint16(b[3:], h.Tracking)
	ts := h.Timestamp
	b[5], b[6], b[7], b[8], b[9], b[10] = byte(ts>>40), byte(ts>>32), byte(ts>>24), byte(ts>>16), byte(ts>>8), byte(ts)
}

func grow(dst []byte, n int) ([]byte, []byte) {
	l := len(dst)
	if cap(dst)-l < n {
		nd := make([]byte, l, 2*cap(dst)+n)
		copy(nd, dst)
		dst = nd
	}
	dst = dst[:l+n]
	return dst, dst[l:]
}

// AppendExtLevel appends an ExtLevel message to dst.
func AppendExtLevel(dst []byte, h itch.Header, l *journal.BookLevel) []byte {
	dst, b := grow(dst, ExtLevelLen)
	putHeader(b, ExtLevel, h)
	b[11] = byte(l.Side)
	binary.BigEndian.PutUint64(b[12:], uint64(l.Price))
	binary.BigEndian.PutUint64(b[20:], uint64(l.Qty))
	return dst
}

// AppendExtOrder appends an ExtOrder message to dst: the order frame of
// type typ (an L3 order type) with payload o.
func AppendExtOrder(dst []byte, h itch.Header, typ journal.MsgType, o *journal.Order) []byte {
	dst, b := grow(dst, ExtOrderLen)
	putHeader(b, ExtOrder, h)
	b[11] = byte(typ)
	binary.BigEndian.PutUint64(b[12:], o.OrderID)
	binary.BigEndian.PutUint64(b[20:], uint64(o.Price))
	binary.BigEndian.PutUint64(b[28:], uint64(o.Qty))
	b[36] = byte(o.Side)
	b[37] = o.Flags
	return dst
}

// AppendExtTrade appends an ExtTrade message to dst.
func AppendExtTrade(dst []byte, h itch.Header, t *journal.Trade) []byte {
	dst, b := grow(dst, ExtTradeLen)
	putHeader(b, ExtTrade, h)
	binary.BigEndian.PutUint64(b[11:], uint64(t.Price))
	binary.BigEndian.PutUint64(b[19:], uint64(t.Qty))
	binary.BigEndian.PutUint64(b[27:], t.TradeID)
	b[35] = byte(t.Aggressor)
	b[36] = t.Flags
	return dst
}

// AppendExtDefinition appends an ExtDefinition message to dst (the
// definition's price scale must be itch.PriceScale; it is not sent).
func AppendExtDefinition(dst []byte, h itch.Header, d *journal.InstrumentDef) []byte {
	dst, b := grow(dst, ExtDefinitionLen)
	putHeader(b, ExtDefinition, h)
	copy(b[11:27], d.Symbol[:])
	binary.BigEndian.PutUint64(b[27:], uint64(d.TickSize))
	return dst
}

// ErrExtension matches an extension message that cannot be decoded: a
// wrong length for its type, or an order type byte that is not an L3
// order type.
var ErrExtension = errors.New("feed: malformed mdjournal extension message")
