package feed

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"

	"github.com/mdjournal/mdjournal/itch"
	"github.com/mdjournal/mdjournal/journal"
)

// DefaultTickSize is the tick size (in price units at scale 4: $0.01) of
// the instrument_def frame a Stock Directory message becomes. ITCH does not
// carry tick sizes; ExtDefinition does.
const DefaultTickSize = 100

// MaxFrames is the most frames one message becomes (an execution: the
// order_execute and its trade; a replace: the delete and the add).
const MaxFrames = 2

// Frame is one journal frame a message becomes. Payload is a view into the
// Decoder, valid until its next call.
type Frame struct {
	Type       journal.MsgType // the frame's message type
	Instrument uint32          // the stock locate
	TS         int64           // exchange time, Unix ns
	Payload    []byte          // the type's payload (a view into the Decoder)
}

// DecoderOptions configure a Decoder.
type DecoderOptions struct {
	// Day anchors ITCH timestamps (nanoseconds since midnight) to the
	// trading date: frame ts = Day.UnixNano(timestamp). NASDAQ's is
	// midnight in America/New_York.
	Day itch.Day
	// Orders is the number of resting orders to make room for before the
	// table has to grow (default 1<<16).
	Orders int
}

// DecoderCounters count what a Decoder did.
type DecoderCounters struct {
	Messages  uint64      // messages decoded (frames written or not)
	Frames    uint64      // frames returned
	ByType    [256]uint64 // messages per type byte (ITCH and extension)
	Ignored   uint64      // messages of a type that makes no frame (system event, Reg SHO, NOII, …, a repeated Stock Directory)
	Unknown   uint64      // cancels, deletes, executions and replaces of an order reference the decoder does not know (joined late, or after a gap): no frame
	Invalid   uint64      // well-formed messages with a value no frame can hold (a side other than B/S, an unknown trading state, a size above 2^63): no frame
	Malformed uint64      // messages that are not ITCH 5.0 or a valid extension (Decode returned an error)
}

// Decoder turns ITCH 5.0 messages (and the mdjournal extension messages)
// into journal frames. It keeps what an ITCH consumer must keep: every
// resting order by reference (instrument, side, price, remaining shares),
// so that cancels, deletes, executions and replaces, which name only the
// reference, become frames with side and price; and the instruments
// defined so far.
//
// Its state is exactly the fold of Apply over the frames it returned, in
// order: a restarted feed handler rebuilds it by applying the frames of its
// journal (Rebuild), and a publisher predicts it (Peek) to choose messages
// that decode to the frames it has.
//
// A Decoder is used by one goroutine. Decode allocates nothing, except
// when its order table grows and for a returned error.
type Decoder struct {
	day    itch.Day
	orders *orderTable
	defs   [][journal.SymbolLen]byte // by locate: symbol, all zero if undefined
	frames [MaxFrames]Frame
	pay    [MaxFrames][32]byte
	c      DecoderCounters

	// scratch decode targets, kept so that decoding allocates nothing
	add  itch.AddOrder
	addF itch.AddOrderMPID
	exe  itch.OrderExecuted
	exeP itch.OrderExecutedWithPrice
	can  itch.OrderCancel
	del  itch.OrderDelete
	rep  itch.OrderReplace
	trd  itch.Trade
	crs  itch.CrossTrade
	act  itch.StockTradingAction
	dir  itch.StockDirectory
}

// NewDecoder returns an empty Decoder.
func NewDecoder(o DecoderOptions) *Decoder {
	if o.Orders <= 0 {
		o.Orders = 1 << 16
	}
	return &Decoder{day: o.Day, orders: newOrderTable(o.Orders)}
}

// Day returns the trading day the decoder anchors timestamps to.
func (d *Decoder) Day() itch.Day { return d.day }

// Counters returns the counters.
func (d *Decoder) Counters() DecoderCounters { return d.c }

// Orders returns the number of resting orders the decoder knows.
func (d *Decoder) Orders() int { return d.orders.len() }

// Order returns what the decoder knows of the resting order ref: its
// instrument, side, price and remaining shares.
func (d *Decoder) Order(ref uint64) (instrument uint32, side journal.Side, price, qty int64, ok bool) {
	o := d.orders.get(ref)
	if o == nil {
		return 0, 0, 0, 0, false
	}
	return o.instr, o.side, o.price, o.qty, true
}

// Symbol returns the symbol defined for a stock locate (instrument id), if
// any.
func (d *Decoder) Symbol(locate uint16) (string, bool) {
	s := d.symbol(uint32(locate))
	return string(s), s != nil
}

// symbol returns the symbol of locate without its NUL padding (a view), or
// nil if it is not defined.
func (d *Decoder) symbol(locate uint32) []byte {
	if int(locate) >= len(d.defs) || d.defs[locate][0] == 0 {
		return nil
	}
	s := d.defs[locate][:]
	if i := bytes.IndexByte(s, 0); i >= 0 {
		s = s[:i]
	}
	return s
}

// outcome says why a message made no frame.
type outcome uint8

const (
	outFrames outcome = iota
	outIgnored
	outUnknown
	outInvalid
)

// Decode turns msg into frames (at most MaxFrames; none for messages that
// carry nothing a journal keeps) and updates the decoder's state. The
// frames are views valid until the next call. It fails with an *itch.Error
// (wrapping itch.ErrUnknownType, ErrShort, ErrLength) for a message that is
// not ITCH 5.0, or an error matching ErrExtension for a malformed
// extension message; the state is then unchanged.
func (d *Decoder) Decode(msg []byte) ([]Frame, error) {
	frames, out, err := d.derive(msg)
	if err != nil {
		d.c.Malformed++
		return nil, err
	}
	d.c.Messages++
	d.c.ByType[msg[0]]++
	switch out {
	case outIgnored:
		d.c.Ignored++
	case outUnknown:
		d.c.Unknown++
	case outInvalid:
		d.c.Invalid++
	}
	for i := range frames {
		d.Apply(frames[i].Type, frames[i].Instrument, frames[i].Payload)
	}
	d.c.Frames += uint64(len(frames))
	return frames, nil
}

// Peek returns the frames Decode would return for msg, without changing
// the decoder's state or counters. A publisher uses it to check that a
// message decodes to exactly the frames it means.
func (d *Decoder) Peek(msg []byte) ([]Frame, error) {
	frames, _, err := d.derive(msg)
	return frames, err
}

// Apply updates the state as decoding a message that became this frame
// did: an instrument_def defines its instrument's symbol; an order_add
// makes its order known (replacing one with the same id); an order_cancel
// or a displayed order_execute takes its qty off the known order (which
// goes when nothing remains); an order_delete removes it. Everything else
// changes nothing. Feeding Apply every frame of a journal the decoder wrote
// rebuilds the state it had (see Rebuild).
func (d *Decoder) Apply(typ journal.MsgType, instrument uint32, payload []byte) {
	switch typ {
	case journal.TypeInstrumentDef:
		if instrument > math.MaxUint16 || len(payload) < 16 {
			return
		}
		if int(instrument) >= len(d.defs) {
			d.defs = append(d.defs, make([][journal.SymbolLen]byte, max(int(instrument)+1, 256)-len(d.defs))...)
		}
		copy(d.defs[instrument][:], payload[:16])
	case journal.TypeOrderAdd, journal.TypeOrderCancel, journal.TypeOrderDelete, journal.TypeOrderExecute:
		if len(payload) < 26 {
			return
		}
		ref := binary.LittleEndian.Uint64(payload[0:])
		qty := int64(binary.LittleEndian.Uint64(payload[16:]))
		switch typ {
		case journal.TypeOrderAdd:
			d.orders.put(order{ref: ref, price: int64(binary.LittleEndian.Uint64(payload[8:])), qty: qty,
				instr: instrument, side: journal.Side(payload[24])})
		case journal.TypeOrderDelete:
			d.orders.del(ref)
		case journal.TypeOrderExecute:
			if payload[25]&journal.FlagHidden != 0 {
				return // non-displayed: no resting order changes
			}
			fallthrough
		case journal.TypeOrderCancel:
			if o := d.orders.get(ref); o != nil {
				if o.qty -= qty; o.qty <= 0 {
					d.orders.del(ref)
				}
			}
		}
	}
}

// Reset forgets every order and definition (a new session).
func (d *Decoder) Reset() {
	d.orders.reset()
	clear(d.defs)
}

func side(b byte) (journal.Side, bool) {
	switch b {
	case 'B':
		return journal.SideBid, true
	case 'S':
		return journal.SideAsk, true
	}
	return journal.SideNone, false
}

func other(s journal.Side) journal.Side {
	if s == journal.SideBid {
		return journal.SideAsk
	}
	return journal.SideBid
}

func (d *Decoder) ts(msg []byte) int64 {
	return d.day.UnixNano(uint64(msg[5])<<40 | uint64(msg[6])<<32 | uint64(msg[7])<<24 | uint64(msg[8])<<16 | uint64(msg[9])<<8 | uint64(msg[10]))
}

// frame sets frame i (type, instrument, ts) and returns its payload buffer.
func (d *Decoder) frame(i int, typ journal.MsgType, instr uint32, ts int64) []byte {
	d.frames[i] = Frame{Type: typ, Instrument: instr, TS: ts}
	return d.pay[i][:]
}

func (d *Decoder) order(i int, typ journal.MsgType, instr uint32, ts int64, o journal.Order) {
	b := d.frame(i, typ, instr, ts)
	d.frames[i].Payload = o.Encode(b)
}

func (d *Decoder) trade(i int, instr uint32, ts int64, t journal.Trade) {
	b := d.frame(i, journal.TypeTrade, instr, ts)
	d.frames[i].Payload = t.Encode(b)
}

// derive computes msg's frames from the current state without changing it.
func (d *Decoder) derive(msg []byte) ([]Frame, outcome, error) {
	if len(msg) == 0 {
		_, err := itch.Parse(msg)
		return nil, 0, err
	}
	t := itch.Type(msg[0])
	if n := ExtLen(t); n != 0 {
		return d.deriveExt(msg, t, n)
	}
	if _, err := itch.Parse(msg); err != nil {
		return nil, 0, err
	}
	locate := uint32(binary.BigEndian.Uint16(msg[1:]))
	ts := d.ts(msg)
	switch t {
	case itch.TypeAddOrder, itch.TypeAddOrderMPID:
		var ref uint64
		var sd byte
		var shares uint32
		var price itch.Price4
		if t == itch.TypeAddOrder {
			d.add.Decode(msg)
			ref, sd, shares, price = d.add.OrderRef, d.add.Side, d.add.Shares, d.add.Price
		} else {
			d.addF.Decode(msg)
			ref, sd, shares, price = d.addF.OrderRef, d.addF.Side, d.addF.Shares, d.addF.Price
		}
		s, ok := side(sd)
		if !ok {
			return nil, outInvalid, nil
		}
		d.order(0, journal.TypeOrderAdd, locate, ts, journal.Order{OrderID: ref, Price: price.Int64(), Qty: int64(shares), Side: s})
		return d.frames[:1], outFrames, nil
	case itch.TypeOrderExecuted:
		d.exe.Decode(msg)
		o := d.orders.get(d.exe.OrderRef)
		if o == nil {
			return nil, outUnknown, nil
		}
		q := int64(d.exe.Shares)
		d.order(0, journal.TypeOrderExecute, locate, ts, journal.Order{OrderID: o.ref, Price: o.price, Qty: q, Side: o.side})
		d.trade(1, locate, ts, journal.Trade{Price: o.price, Qty: q, TradeID: d.exe.Match, Aggressor: other(o.side)})
		return d.frames[:2], outFrames, nil
	case itch.TypeOrderExecutedWithPrice:
		d.exeP.Decode(msg)
		o := d.orders.get(d.exeP.OrderRef)
		if o == nil {
			return nil, outUnknown, nil
		}
		q := int64(d.exeP.Shares)
		d.order(0, journal.TypeOrderExecute, locate, ts, journal.Order{OrderID: o.ref, Price: o.price, Qty: q, Side: o.side})
		if d.exeP.Printable != 'Y' {
			return d.frames[:1], outFrames, nil // not printable: the volume was printed elsewhere (a cross)
		}
		d.trade(1, locate, ts, journal.Trade{Price: d.exeP.Price.Int64(), Qty: q, TradeID: d.exeP.Match, Aggressor: other(o.side)})
		return d.frames[:2], outFrames, nil
	case itch.TypeOrderCancel:
		d.can.Decode(msg)
		o := d.orders.get(d.can.OrderRef)
		if o == nil {
			return nil, outUnknown, nil
		}
		d.order(0, journal.TypeOrderCancel, locate, ts, journal.Order{OrderID: o.ref, Price: o.price, Qty: int64(d.can.Canceled), Side: o.side})
		return d.frames[:1], outFrames, nil
	case itch.TypeOrderDelete:
		d.del.Decode(msg)
		o := d.orders.get(d.del.OrderRef)
		if o == nil {
			return nil, outUnknown, nil
		}
		d.order(0, journal.TypeOrderDelete, locate, ts, journal.Order{OrderID: o.ref, Price: o.price, Qty: o.qty, Side: o.side})
		return d.frames[:1], outFrames, nil
	case itch.TypeOrderReplace:
		d.rep.Decode(msg)
		o := d.orders.get(d.rep.OrigOrderRef)
		if o == nil {
			return nil, outUnknown, nil
		}
		d.order(0, journal.TypeOrderDelete, locate, ts, journal.Order{OrderID: o.ref, Price: o.price, Qty: o.qty, Side: o.side})
		d.order(1, journal.TypeOrderAdd, locate, ts, journal.Order{OrderID: d.rep.NewOrderRef, Price: d.rep.Price.Int64(), Qty: int64(d.rep.Shares), Side: o.side})
		return d.frames[:2], outFrames, nil
	case itch.TypeTrade:
		d.trd.Decode(msg)
		s, ok := side(d.trd.Side)
		if !ok {
			return nil, outInvalid, nil
		}
		p, q := d.trd.Price.Int64(), int64(d.trd.Shares)
		d.order(0, journal.TypeOrderExecute, locate, ts, journal.Order{OrderID: d.trd.OrderRef, Price: p, Qty: q, Side: s, Flags: journal.FlagHidden})
		d.trade(1, locate, ts, journal.Trade{Price: p, Qty: q, TradeID: d.trd.Match, Aggressor: other(s), Flags: journal.FlagHidden})
		return d.frames[:2], outFrames, nil
	case itch.TypeCrossTrade:
		d.crs.Decode(msg)
		if d.crs.Shares > math.MaxInt64 {
			return nil, outInvalid, nil
		}
		d.trade(0, locate, ts, journal.Trade{Price: d.crs.Price.Int64(), Qty: int64(d.crs.Shares), TradeID: d.crs.Match})
		return d.frames[:1], outFrames, nil
	case itch.TypeStockTradingAction:
		d.act.Decode(msg)
		var st journal.TradingStatus
		switch d.act.TradingState {
		case 'H':
			st.Status = journal.StatusHalted
		case 'P':
			st.Status = journal.StatusPaused
		case 'Q':
			st.Status = journal.StatusQuotationOnly
		case 'T':
			st.Status = journal.StatusTrading
		default:
			return nil, outInvalid, nil
		}
		st.Reason = d.act.Reason
		for i := len(st.Reason) - 1; i >= 0 && st.Reason[i] == ' '; i-- {
			st.Reason[i] = 0 // ITCH pads with spaces, the journal with NULs
		}
		b := d.frame(0, journal.TypeTradingStatus, locate, ts)
		d.frames[0].Payload = st.Encode(b)
		return d.frames[:1], outFrames, nil
	case itch.TypeStockDirectory:
		d.dir.Decode(msg)
		sym := bytes.TrimRight(d.dir.Stock[:], " ")
		if have := d.symbol(locate); have != nil {
			// Defined already: a repeat, or the Stock Directory that follows
			// an ExtDefinition (which carries the first 8 bytes of a longer
			// symbol).
			if bytes.Equal(have, sym) || (len(have) > itch.SymbolLen && bytes.Equal(have[:itch.SymbolLen], sym)) {
				return nil, outIgnored, nil
			}
		}
		var def journal.InstrumentDef
		copy(def.Symbol[:], sym)
		def.TickSize, def.PriceScale = DefaultTickSize, itch.PriceScale
		b := d.frame(0, journal.TypeInstrumentDef, locate, ts)
		d.frames[0].Payload = def.Encode(b)
		return d.frames[:1], outFrames, nil
	}
	return nil, outIgnored, nil
}

func (d *Decoder) deriveExt(msg []byte, t itch.Type, n int) ([]Frame, outcome, error) {
	if len(msg) != n {
		return nil, 0, fmt.Errorf("%w: type %q is %d bytes, this one %d", ErrExtension, byte(t), n, len(msg))
	}
	locate := uint32(binary.BigEndian.Uint16(msg[1:]))
	ts := d.ts(msg)
	be := binary.BigEndian
	switch t {
	case ExtLevel:
		l := journal.BookLevel{Side: journal.Side(msg[11]), Price: int64(be.Uint64(msg[12:])), Qty: int64(be.Uint64(msg[20:]))}
		b := d.frame(0, journal.TypeBookLevel, locate, ts)
		d.frames[0].Payload = l.Encode(b)
	case ExtOrder:
		typ := journal.MsgType(msg[11])
		if !typ.IsOrder() {
			return nil, 0, fmt.Errorf("%w: order message of journal type %d", ErrExtension, msg[11])
		}
		d.order(0, typ, locate, ts, journal.Order{OrderID: be.Uint64(msg[12:]), Price: int64(be.Uint64(msg[20:])),
			Qty: int64(be.Uint64(msg[28:])), Side: journal.Side(msg[36]), Flags: msg[37]})
	case ExtTrade:
		d.trade(0, locate, ts, journal.Trade{Price: int64(be.Uint64(msg[11:])), Qty: int64(be.Uint64(msg[19:])),
			TradeID: be.Uint64(msg[27:]), Aggressor: journal.Side(msg[35]), Flags: msg[36]})
	case ExtDefinition:
		var def journal.InstrumentDef
		copy(def.Symbol[:], msg[11:27])
		def.TickSize, def.PriceScale = int64(be.Uint64(msg[27:])), itch.PriceScale
		b := d.frame(0, journal.TypeInstrumentDef, locate, ts)
		d.frames[0].Payload = def.Encode(b)
	}
	return d.frames[:1], outFrames, nil
}
