package journal

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// MsgType identifies a frame's payload layout, format.md §3.2. Values are part
// of the on-disk format.
type MsgType uint16

// The message types (format.md §3.2 gives each payload's layout).
const (
	TypeInvalid       MsgType = 0  // never written: a zero type is damage
	TypeSegmentEnd    MsgType = 1  // control: end-of-segment marker, no payload
	TypeHeartbeat     MsgType = 2  // liveness, no payload
	TypeInstrumentDef MsgType = 3  // symbol, price scale and tick of an instrument id
	TypeTrade         MsgType = 4  // a print: price, qty, trade id, aggressor
	TypeQuote         MsgType = 5  // top of book: bid and ask price and qty
	TypeBookLevel     MsgType = 6  // aggregate qty at one price level (0 removes it)
	TypeOrderAdd      MsgType = 7  // L3: an order rests on the book
	TypeOrderCancel   MsgType = 8  // L3: part of an order is cancelled
	TypeOrderDelete   MsgType = 9  // L3: an order leaves the book
	TypeOrderExecute  MsgType = 10 // L3: an order is (partly) executed
	TypeRaw           MsgType = 11 // opaque bytes, up to MaxPayload
	TypeTradingStatus MsgType = 12 // trading halted, paused, quotation only, trading
	TypeGap           MsgType = 13 // source messages a feed handler could not recover
	TypeOrderRequest  MsgType = 14 // an order a trading engine asks for (pipeline)
	TypeRiskDecision  MsgType = 15 // a risk manager's decision on an order request (pipeline)
	typeCount                 = 16
)

// typeNames are the names the tools print and ParseMsgType reads.
var typeNames = [typeCount]string{"invalid", "segment_end", "heartbeat", "instrument_def", "trade", "quote",
	"book_level", "order_add", "order_cancel", "order_delete", "order_execute", "raw",
	"trading_status", "gap", "order_request", "risk_decision"}

// String returns the type's name as the tools print it ("quote",
// "order_add"), or "type(N)" for an unknown value.
func (t MsgType) String() string {
	if int(t) < len(typeNames) {
		return typeNames[t]
	}
	return "type_" + strconv.Itoa(int(t))
}

// ParseMsgType reads a type name as printed by String (used by CLI filters).
func ParseMsgType(s string) (MsgType, error) {
	for i, n := range typeNames {
		if n == s && i > int(TypeSegmentEnd) {
			return MsgType(i), nil
		}
	}
	return 0, fmt.Errorf("unknown message type %q", s)
}

// PayloadSize is the fixed payload size of each type (format.md §3.2); -1 for
// Raw, whose payload is 0..MaxPayload opaque bytes.
func (t MsgType) PayloadSize() int {
	switch t {
	case TypeSegmentEnd, TypeHeartbeat:
		return 0
	case TypeInstrumentDef, TypeTrade, TypeQuote:
		return 32
	case TypeBookLevel:
		return 24
	case TypeOrderAdd, TypeOrderCancel, TypeOrderDelete, TypeOrderExecute:
		return 32
	case TypeTradingStatus:
		return 16
	case TypeGap:
		return 32
	case TypeOrderRequest, TypeRiskDecision:
		return 64
	case TypeRaw:
		return -1
	}
	return -2
}

// Known reports whether t is a type of this format version.
func (t MsgType) Known() bool { return t > TypeInvalid && t < typeCount }

// IsOrder reports whether t is one of the L3 order events.
func (t MsgType) IsOrder() bool { return t >= TypeOrderAdd && t <= TypeOrderExecute }

// Side of a book entry or an order; for a Trade, the aggressor.
type Side uint8

// The sides.
const (
	SideNone Side = 0 // no side: a trade with no known aggressor
	SideBid  Side = 1 // buy
	SideAsk  Side = 2 // sell
)

// String returns "bid", "ask" or "none".
func (s Side) String() string {
	switch s {
	case SideBid:
		return "bid"
	case SideAsk:
		return "ask"
	}
	return "none"
}

// Payload flags (Trade.Flags, Order.Flags).
const (
	// FlagHidden marks an execution against hidden (non-displayed) liquidity:
	// it is a trade but changes no visible book level.
	FlagHidden uint8 = 1 << 0
)

// Price is a fixed-point price: the real price is Price / 10^PriceScale of the
// instrument. Prices are never floats.
type Price = int64

// SymbolLen is the size of the NUL-padded symbol field of InstrumentDef.
const SymbolLen = 16

// InstrumentDef announces an instrument (the frame's instrument field is its
// id). Layout (32 bytes): symbol [16]byte NUL-padded ASCII at 0, tick_size int64
// at 16 (in price units), price_scale int32 at 24 (decimal digits), reserved
// uint32 at 28.
type InstrumentDef struct {
	Symbol     [SymbolLen]byte
	TickSize   int64
	PriceScale int32
}

// SymbolString returns the symbol without its NUL padding.
func (d *InstrumentDef) SymbolString() string {
	if i := bytes.IndexByte(d.Symbol[:], 0); i >= 0 {
		return string(d.Symbol[:i])
	}
	return string(d.Symbol[:])
}

// SetSymbol stores s. A symbol is 1 to 16 bytes of printable ASCII
// (0x21..0x7E: letters, digits and punctuation, no space); anything else is
// refused, never truncated, because two long symbols truncated to the same
// 16 bytes would silently become one instrument. A 21-character OCC option
// symbol does not fit: give such instruments short ids in a separate
// reference table and put that key here.
func (d *InstrumentDef) SetSymbol(s string) error {
	if err := CheckSymbol(s); err != nil {
		return err
	}
	d.Symbol = [SymbolLen]byte{}
	copy(d.Symbol[:], s)
	return nil
}

// CheckSymbol validates a symbol for SetSymbol.
func CheckSymbol(s string) error {
	if len(s) == 0 || len(s) > SymbolLen {
		return fmt.Errorf("journal: symbol %q: want 1 to %d bytes", s, SymbolLen)
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x21 || c > 0x7e {
			return fmt.Errorf("journal: symbol %q: byte %d is %#02x; symbols are printable ASCII without spaces", s, i, c)
		}
	}
	return nil
}

// MaxPriceScale is the largest valid price scale: an int64 holds 18 full
// decimal digits. The writer refuses an instrument_def beyond it.
const MaxPriceScale = 18

// Validate checks a definition before it is written: a valid symbol, a
// price scale in [0, MaxPriceScale] and a non-negative tick size.
func (d *InstrumentDef) Validate() error {
	if err := CheckSymbol(d.SymbolString()); err != nil {
		return err
	}
	if d.PriceScale < 0 || d.PriceScale > MaxPriceScale {
		return fmt.Errorf("journal: price scale %d outside [0,%d]", d.PriceScale, MaxPriceScale)
	}
	if d.TickSize < 0 {
		return fmt.Errorf("journal: tick size %d is negative", d.TickSize)
	}
	return nil
}

// sized returns b[:n], or a new n-byte slice when b is too short: every
// Encode writes into the caller's buffer when it can (no allocation) and
// never panics when it cannot.
func sized(b []byte, n int) []byte {
	if cap(b) < n {
		return make([]byte, n)
	}
	return b[:n]
}

// Encode writes the 32-byte payload into b (see sized) and returns it.
func (d *InstrumentDef) Encode(b []byte) []byte {
	b = sized(b, 32)
	copy(b[0:16], d.Symbol[:])
	binary.LittleEndian.PutUint64(b[16:], uint64(d.TickSize))
	binary.LittleEndian.PutUint32(b[24:], uint32(d.PriceScale))
	binary.LittleEndian.PutUint32(b[28:], 0)
	return b
}

// Decode reads a 32-byte payload.
func (d *InstrumentDef) Decode(b []byte) error {
	if len(b) < 32 {
		return errShort(TypeInstrumentDef, len(b))
	}
	copy(d.Symbol[:], b[0:16])
	d.TickSize = int64(binary.LittleEndian.Uint64(b[16:]))
	d.PriceScale = int32(binary.LittleEndian.Uint32(b[24:]))
	return nil
}

// Trade is a print. Layout (32 bytes): price int64 at 0, qty int64 at 8,
// trade_id uint64 at 16, aggressor Side uint8 at 24, flags uint8 at 25,
// reserved [6]byte at 26.
type Trade struct {
	Price     Price
	Qty       int64
	TradeID   uint64
	Aggressor Side
	Flags     uint8
}

// Encode writes the 32-byte payload into b (see sized) and returns it.
func (t *Trade) Encode(b []byte) []byte {
	b = sized(b, 32)
	binary.LittleEndian.PutUint64(b[0:], uint64(t.Price))
	binary.LittleEndian.PutUint64(b[8:], uint64(t.Qty))
	binary.LittleEndian.PutUint64(b[16:], t.TradeID)
	binary.LittleEndian.PutUint64(b[24:], uint64(t.Aggressor)|uint64(t.Flags)<<8)
	return b
}

// Decode reads a 32-byte payload.
func (t *Trade) Decode(b []byte) error {
	if len(b) < 32 {
		return errShort(TypeTrade, len(b))
	}
	t.Price = int64(binary.LittleEndian.Uint64(b[0:]))
	t.Qty = int64(binary.LittleEndian.Uint64(b[8:]))
	t.TradeID = binary.LittleEndian.Uint64(b[16:])
	t.Aggressor = Side(b[24])
	t.Flags = b[25]
	return nil
}

// Quote is the best bid and offer. Layout (32 bytes): bid_price, bid_qty,
// ask_price, ask_qty, each int64, at 0, 8, 16, 24. A zero quantity means the
// side is empty.
type Quote struct {
	BidPrice Price
	BidQty   int64
	AskPrice Price
	AskQty   int64
}

// Encode writes the 32-byte payload into b (see sized) and returns it.
func (q *Quote) Encode(b []byte) []byte {
	b = sized(b, 32)
	binary.LittleEndian.PutUint64(b[0:], uint64(q.BidPrice))
	binary.LittleEndian.PutUint64(b[8:], uint64(q.BidQty))
	binary.LittleEndian.PutUint64(b[16:], uint64(q.AskPrice))
	binary.LittleEndian.PutUint64(b[24:], uint64(q.AskQty))
	return b
}

// Decode reads a 32-byte payload.
func (q *Quote) Decode(b []byte) error {
	if len(b) < 32 {
		return errShort(TypeQuote, len(b))
	}
	q.BidPrice = int64(binary.LittleEndian.Uint64(b[0:]))
	q.BidQty = int64(binary.LittleEndian.Uint64(b[8:]))
	q.AskPrice = int64(binary.LittleEndian.Uint64(b[16:]))
	q.AskQty = int64(binary.LittleEndian.Uint64(b[24:]))
	return nil
}

// BookLevel sets the aggregate quantity at one price level (L2). Layout (24
// bytes): price int64 at 0, qty int64 at 8 (the new total; 0 removes the
// level), side Side uint8 at 16, reserved [7]byte at 17.
type BookLevel struct {
	Price Price
	Qty   int64
	Side  Side
}

// Encode writes the 24-byte payload into b (see sized) and returns it.
func (l *BookLevel) Encode(b []byte) []byte {
	b = sized(b, 24)
	binary.LittleEndian.PutUint64(b[0:], uint64(l.Price))
	binary.LittleEndian.PutUint64(b[8:], uint64(l.Qty))
	binary.LittleEndian.PutUint64(b[16:], uint64(l.Side))
	return b
}

// Decode reads a 24-byte payload.
func (l *BookLevel) Decode(b []byte) error {
	if len(b) < 24 {
		return errShort(TypeBookLevel, len(b))
	}
	l.Price = int64(binary.LittleEndian.Uint64(b[0:]))
	l.Qty = int64(binary.LittleEndian.Uint64(b[8:]))
	l.Side = Side(b[16])
	return nil
}

// Order is the payload of the four L3 events (OrderAdd, OrderCancel,
// OrderDelete, OrderExecute). Layout (32 bytes): order_id uint64 at 0, price
// int64 at 8, qty int64 at 16, side Side uint8 at 24, flags uint8 at 25,
// reserved [6]byte at 26.
//
// qty means: for OrderAdd the displayed size; for OrderCancel the size
// cancelled (a partial cancel); for OrderDelete the size that was still resting
// and is removed; for OrderExecute the size executed. Every event carries side
// and price so a book can be kept per level without knowing the order id (feeds
// are often joined mid-session).
type Order struct {
	OrderID uint64
	Price   Price
	Qty     int64
	Side    Side
	Flags   uint8
}

// Encode writes the 32-byte payload into b (see sized) and returns it.
func (o *Order) Encode(b []byte) []byte {
	b = sized(b, 32)
	binary.LittleEndian.PutUint64(b[0:], o.OrderID)
	binary.LittleEndian.PutUint64(b[8:], uint64(o.Price))
	binary.LittleEndian.PutUint64(b[16:], uint64(o.Qty))
	binary.LittleEndian.PutUint64(b[24:], uint64(o.Side)|uint64(o.Flags)<<8)
	return b
}

// Decode reads a 32-byte payload.
func (o *Order) Decode(b []byte) error {
	if len(b) < 32 {
		return errShort(TypeOrderAdd, len(b))
	}
	o.OrderID = binary.LittleEndian.Uint64(b[0:])
	o.Price = int64(binary.LittleEndian.Uint64(b[8:]))
	o.Qty = int64(binary.LittleEndian.Uint64(b[16:]))
	o.Side = Side(b[24])
	o.Flags = b[25]
	return nil
}

func errShort(t MsgType, n int) error {
	return fmt.Errorf("journal: %s payload is %d bytes, want %d", t, n, t.PayloadSize())
}

// FormatPrice renders a fixed-point price with scale decimal digits, e.g.
// FormatPrice(5853300, 4) == "585.3300". It is exact (no floats) and takes
// bounded time for any input: a scale beyond MaxPriceScale+1 (invalid data)
// is rendered as the raw integer with an exponent, "5853300e-50000".
func FormatPrice(p Price, scale int32) string {
	if scale <= 0 {
		return strconv.FormatInt(p, 10)
	}
	if scale > MaxPriceScale+1 {
		return strconv.FormatInt(p, 10) + "e-" + strconv.Itoa(int(scale))
	}
	neg := p < 0
	u := uint64(p)
	if neg {
		u = -u
	}
	s := strconv.FormatUint(u, 10)
	if pad := int(scale) + 1 - len(s); pad > 0 {
		s = strings.Repeat("0", pad) + s
	}
	s = s[:len(s)-int(scale)] + "." + s[len(s)-int(scale):]
	if neg {
		s = "-" + s
	}
	return s
}

// ParsePrice reads a decimal price ("585.33", "-0.0001", "12") into fixed
// point with scale digits, exactly: more fractional digits than scale, a
// value beyond int64, or anything but an optional sign, digits and one
// point is an error.
func ParsePrice(s string, scale int32) (Price, error) {
	if scale < 0 || scale > MaxPriceScale {
		return 0, fmt.Errorf("journal: price scale %d outside [0,%d]", scale, MaxPriceScale)
	}
	in := s
	neg := false
	if s != "" && (s[0] == '-' || s[0] == '+') {
		neg, s = s[0] == '-', s[1:]
	}
	ip, fp, hasPoint := strings.Cut(s, ".")
	if ip == "" && fp == "" || hasPoint && fp == "" && ip == "" {
		return 0, fmt.Errorf("journal: bad price %q", in)
	}
	if len(fp) > int(scale) {
		if strings.TrimRight(fp[scale:], "0") != "" {
			return 0, fmt.Errorf("journal: price %q has more than %d decimal places", in, scale)
		}
		fp = fp[:scale]
	}
	digits := ip + fp + strings.Repeat("0", int(scale)-len(fp))
	var u uint64
	for i := 0; i < len(digits); i++ {
		c := digits[i]
		if c < '0' || c > '9' {
			return 0, fmt.Errorf("journal: bad price %q", in)
		}
		if u > (math.MaxUint64-9)/10 {
			return 0, fmt.Errorf("journal: price %q is out of range", in)
		}
		u = u*10 + uint64(c-'0')
	}
	if neg {
		if u > 1<<63 {
			return 0, fmt.Errorf("journal: price %q is out of range", in)
		}
		return Price(-int64(u-1) - 1), nil
	}
	if u > math.MaxInt64 {
		return 0, fmt.Errorf("journal: price %q is out of range", in)
	}
	return Price(u), nil
}

// PriceFloat converts a fixed-point price to a float64 for analytics
// (charts, statistics). It is not exact: never use it to decide, compare or
// store prices; use Price and FormatPrice for that.
func PriceFloat(p Price, scale int32) float64 {
	return float64(p) / math.Pow10(int(min(max(scale, 0), MaxPriceScale+1)))
}
