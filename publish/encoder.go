package publish

import (
	"bytes"
	"errors"
	"fmt"
	"math"

	"github.com/mdjournal/mdjournal/feed"
	"github.com/mdjournal/mdjournal/itch"
	"github.com/mdjournal/mdjournal/journal"
)

// ErrUnpublishable matches a frame or definition the encoder cannot turn
// into ITCH: an instrument id that is not a stock locate (1..65535), a
// price scale other than 4, a timestamp outside the trading day's 2^48 ns,
// a trading state ITCH has no letter for.
var ErrUnpublishable = errors.New("publish: cannot be expressed in ITCH 5.0")

// Emit receives each encoded message with the timestamp (Unix ns) of the
// frame it came from. msg is valid only during the call.
type Emit func(msg []byte, ts int64) error

// EncoderStats count what an Encoder did.
type EncoderStats struct {
	Frames     uint64      // frames given to Append
	Messages   uint64      // messages emitted
	ByType     [256]uint64 // messages per type byte (ITCH letters, extension letters)
	Extension  uint64      // extension messages among them
	Directory  uint64      // Stock Directory messages
	Repeated   uint64      // definitions (and re-stated frames) already sent, skipped
	Skipped    [32]uint64  // frames of types ITCH has no message for, by journal type (quote, raw, heartbeat, gap, …), skipped
	SkippedAll uint64      // their total
}

// Encoder turns journal frames into ITCH 5.0 messages, choosing for each
// frame (or pair of frames) the standard message that decodes, in a
// feed.Decoder, to exactly that frame — and an mdjournal extension message
// where none does (see the package doc). It keeps a feed.Decoder as the
// mirror of the receiving side's state and decodes every message it emits:
// a message whose frames differ from the ones it was made from is a bug,
// reported as an error, never sent.
//
// Append implements lobster.Sink. An OrderExecute or OrderDelete frame is
// held until the next frame (it may pair with it into one message); Flush
// emits a held frame. Used by one goroutine.
type Encoder struct {
	emit  Emit
	dec   *feed.Decoder
	day   itch.Day
	dayOK bool
	loc   dayLocator
	sent  map[uint32]journal.InstrumentDef // definitions sent, by id
	buf   []byte
	pend  pending
	st    EncoderStats
}

type pending struct {
	ok      bool
	typ     journal.MsgType
	instr   uint32
	ts      int64
	payload [32]byte
}

// dayLocator finds the trading day of a timestamp.
type dayLocator func(ts int64) itch.Day

// NewEncoder returns an Encoder emitting to emit. day anchors ITCH
// timestamps; if locate is not nil, the day is instead found from the
// first timestamp encoded (locate(ts)).
func NewEncoder(emit Emit, day itch.Day, locate func(ts int64) itch.Day) *Encoder {
	e := &Encoder{emit: emit, day: day, dayOK: locate == nil, loc: locate, sent: map[uint32]journal.InstrumentDef{},
		buf: make([]byte, 0, 64)}
	e.dec = feed.NewDecoder(feed.DecoderOptions{Day: day})
	return e
}

// Day returns the trading day timestamps are anchored to (valid once a
// message was encoded).
func (e *Encoder) Day() itch.Day { return e.day }

// Stats returns the counters.
func (e *Encoder) Stats() EncoderStats { return e.st }

func (e *Encoder) header(instr uint32, ts int64) (itch.Header, error) {
	if !e.dayOK {
		e.day, e.dayOK = e.loc(ts), true
		e.dec = feed.NewDecoder(feed.DecoderOptions{Day: e.day})
	}
	if instr == 0 || instr > math.MaxUint16 {
		return itch.Header{}, fmt.Errorf("%w: instrument id %d is not a stock locate code (1..65535)", ErrUnpublishable, instr)
	}
	t, err := e.day.Timestamp(ts)
	if err != nil {
		return itch.Header{}, fmt.Errorf("%w: %v", ErrUnpublishable, err)
	}
	return itch.Header{Locate: uint16(instr), Timestamp: t}, nil
}

// SystemEvent emits an ITCH System Event ('O' start of messages, 'C' end
// of messages, …) at ts. It carries no frame.
func (e *Encoder) SystemEvent(code byte, ts int64) error {
	if !e.dayOK {
		e.day, e.dayOK = e.loc(ts), true
		e.dec = feed.NewDecoder(feed.DecoderOptions{Day: e.day})
	}
	t, err := e.day.Timestamp(ts)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrUnpublishable, err)
	}
	m := itch.SystemEvent{Header: itch.Header{Timestamp: t}, EventCode: code}
	e.buf = m.AppendEncode(e.buf[:0])
	return e.send(nil, ts)
}

// Define emits the instrument's Stock Directory message at ts, preceded by
// an ExtDefinition when the definition has a tick size other than
// feed.DefaultTickSize or a symbol longer than 8 bytes. A later
// instrument_def frame equal to it is not sent again.
func (e *Encoder) Define(id uint32, d journal.InstrumentDef, ts int64) error {
	if d.PriceScale != itch.PriceScale {
		return fmt.Errorf("%w: instrument %d (%s) has price scale %d; ITCH prices have %d decimals", ErrUnpublishable,
			id, d.SymbolString(), d.PriceScale, itch.PriceScale)
	}
	h, err := e.header(id, ts)
	if err != nil {
		return err
	}
	var frames [1]feed.Frame
	frames[0] = feed.Frame{Type: journal.TypeInstrumentDef, Instrument: id, TS: ts, Payload: d.Encode(nil)}
	sym := d.SymbolString()
	var dir itch.StockDirectory
	dir.Header = h
	dir.Stock, err = itch.ParseSymbol(sym[:min(len(sym), itch.SymbolLen)])
	if err != nil {
		return fmt.Errorf("%w: instrument %d: %v", ErrUnpublishable, id, err)
	}
	dir.MarketCategory, dir.FinancialStatus, dir.RoundLotSize, dir.RoundLotsOnly = 'Q', 'N', 100, 'N'
	dir.IssueClassification, dir.IssueSubType, dir.Authenticity = 'C', [2]byte{'Z', ' '}, 'P'
	dir.ShortSaleThreshold, dir.IPOFlag, dir.LULDRefPriceTier, dir.ETPFlag, dir.InverseIndicator = 'N', 'N', '1', 'N', 'N'
	if d.TickSize != feed.DefaultTickSize || len(sym) > itch.SymbolLen {
		e.buf = feed.AppendExtDefinition(e.buf[:0], h, &d)
		if err := e.send(frames[:], ts); err != nil {
			return err
		}
		e.buf = dir.AppendEncode(e.buf[:0])
		if err := e.send(nil, ts); err != nil {
			return err
		}
	} else {
		e.buf = dir.AppendEncode(e.buf[:0])
		if err := e.send(frames[:], ts); err != nil {
			return err
		}
	}
	e.st.Directory++
	e.sent[id] = d
	return nil
}

// send decodes e.buf in the mirror, checks that it becomes exactly want,
// and emits it.
func (e *Encoder) send(want []feed.Frame, ts int64) error {
	got, err := e.dec.Decode(e.buf)
	if err != nil {
		return fmt.Errorf("publish: internal error: message % x does not decode: %w", e.buf, err)
	}
	if !sameFrames(got, want) {
		return fmt.Errorf("publish: internal error: message % x decodes to %s, not %s", e.buf, describe(got), describe(want))
	}
	e.st.Messages++
	e.st.ByType[e.buf[0]]++
	if feed.ExtLen(itch.Type(e.buf[0])) != 0 {
		e.st.Extension++
	}
	return e.emit(e.buf, ts)
}

func sameFrames(a, b []feed.Frame) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].Type != b[i].Type || a[i].Instrument != b[i].Instrument || a[i].TS != b[i].TS || !bytes.Equal(a[i].Payload, b[i].Payload) {
			return false
		}
	}
	return true
}

func describe(fs []feed.Frame) string {
	s := "["
	for i, f := range fs {
		if i > 0 {
			s += " "
		}
		s += fmt.Sprintf("%s/%d@%d:% x", f.Type, f.Instrument, f.TS, f.Payload)
	}
	return s + "]"
}

// fits tries candidate message msg (in e.buf): if the mirror decodes it to
// exactly want, it is emitted and fits returns true.
func (e *Encoder) fits(want []feed.Frame, ts int64) (bool, error) {
	got, err := e.dec.Peek(e.buf)
	if err != nil || !sameFrames(got, want) {
		return false, nil
	}
	return true, e.send(want, ts)
}

// Append encodes one frame (lobster.Sink). The returned count is the
// number of frames appended so far.
func (e *Encoder) Append(typ journal.MsgType, instr uint32, ts int64, payload []byte) (uint64, error) {
	e.st.Frames++
	if e.pend.ok {
		p := e.pend
		e.pend.ok = false
		paired, err := e.pair(&p, typ, instr, ts, payload)
		if err != nil || paired {
			return e.st.Frames, err
		}
		if err := e.one(p.typ, p.instr, p.ts, p.payload[:]); err != nil {
			return e.st.Frames, err
		}
	}
	if (typ == journal.TypeOrderExecute || typ == journal.TypeOrderDelete) && len(payload) == 32 {
		e.pend = pending{ok: true, typ: typ, instr: instr, ts: ts}
		copy(e.pend.payload[:], payload)
		return e.st.Frames, nil
	}
	return e.st.Frames, e.one(typ, instr, ts, payload)
}

// AppendFrame encodes a frame read from a journal: re-stated frames are
// skipped (they repeat what was sent).
func (e *Encoder) AppendFrame(f *journal.Frame) error {
	if f.Restated() {
		e.st.Frames++
		e.st.Repeated++
		return nil
	}
	_, err := e.Append(f.Type, f.Instrument, f.TS, f.Payload)
	return err
}

// Flush emits a held frame.
func (e *Encoder) Flush() error {
	if !e.pend.ok {
		return nil
	}
	p := e.pend
	e.pend.ok = false
	return e.one(p.typ, p.instr, p.ts, p.payload[:])
}

// pair tries to send the held frame p together with the next frame as one
// standard message: an execution and its trade as 'E', 'C' or 'P'; a
// delete and an add as a replace 'U'.
func (e *Encoder) pair(p *pending, typ journal.MsgType, instr uint32, ts int64, payload []byte) (bool, error) {
	if instr != p.instr || ts != p.ts {
		return false, nil
	}
	var o journal.Order
	o.Decode(p.payload[:])
	want := [2]feed.Frame{{Type: p.typ, Instrument: instr, TS: ts, Payload: p.payload[:]}, {Type: typ, Instrument: instr, TS: ts, Payload: payload}}
	h, err := e.header(instr, ts)
	if err != nil {
		return false, err
	}
	switch {
	case p.typ == journal.TypeOrderExecute && typ == journal.TypeTrade:
		var t journal.Trade
		t.Decode(payload)
		if t.Qty != o.Qty || t.Qty < 0 || t.Qty > math.MaxUint32 {
			return false, nil
		}
		if o.Flags&journal.FlagHidden != 0 {
			sd, ok := itchSide(o.Side)
			px, err := itch.Price4FromInt64(o.Price)
			if !ok || err != nil {
				return false, nil
			}
			m := itch.Trade{Header: h, OrderRef: o.OrderID, Side: sd, Shares: uint32(o.Qty), Price: px, Match: t.TradeID}
			m.Stock, _ = e.stock(instr)
			e.buf = m.AppendEncode(e.buf[:0])
			return e.fits(want[:], ts)
		}
		m := itch.OrderExecuted{Header: h, OrderRef: o.OrderID, Shares: uint32(o.Qty), Match: t.TradeID}
		e.buf = m.AppendEncode(e.buf[:0])
		if ok, err := e.fits(want[:], ts); ok || err != nil {
			return ok, err
		}
		px, err := itch.Price4FromInt64(t.Price)
		if err != nil {
			return false, nil
		}
		c := itch.OrderExecutedWithPrice{Header: h, OrderRef: o.OrderID, Shares: uint32(o.Qty), Match: t.TradeID, Printable: 'Y', Price: px}
		e.buf = c.AppendEncode(e.buf[:0])
		return e.fits(want[:], ts)
	case p.typ == journal.TypeOrderDelete && typ == journal.TypeOrderAdd:
		var a journal.Order
		a.Decode(payload)
		px, err := itch.Price4FromInt64(a.Price)
		if err != nil || a.Qty < 0 || a.Qty > math.MaxUint32 {
			return false, nil
		}
		if _, _, _, _, known := e.dec.Order(a.OrderID); known && a.OrderID != o.OrderID {
			return false, nil // the new reference is in use: an add replaces it, a replace would not say so
		}
		m := itch.OrderReplace{Header: h, OrigOrderRef: o.OrderID, NewOrderRef: a.OrderID, Shares: uint32(a.Qty), Price: px}
		e.buf = m.AppendEncode(e.buf[:0])
		return e.fits(want[:], ts)
	}
	return false, nil
}

func itchSide(s journal.Side) (byte, bool) {
	switch s {
	case journal.SideBid:
		return 'B', true
	case journal.SideAsk:
		return 'S', true
	}
	return 0, false
}

// stock returns the ITCH symbol of an instrument that was defined.
func (e *Encoder) stock(instr uint32) (itch.Symbol, bool) {
	d, ok := e.sent[instr]
	if !ok {
		return itch.Symbol{'?', ' ', ' ', ' ', ' ', ' ', ' ', ' '}, false
	}
	s := d.SymbolString()
	sym, _ := itch.ParseSymbol(s[:min(len(s), itch.SymbolLen)])
	return sym, true
}

// one encodes a single frame: the standard message if one decodes to it,
// else the extension message.
func (e *Encoder) one(typ journal.MsgType, instr uint32, ts int64, payload []byte) error {
	want := [1]feed.Frame{{Type: typ, Instrument: instr, TS: ts, Payload: payload}}
	switch typ {
	case journal.TypeInstrumentDef:
		var d journal.InstrumentDef
		d.Decode(payload)
		if prev, ok := e.sent[instr]; ok && prev == d {
			e.st.Repeated++
			return nil
		}
		if _, ok := e.sent[instr]; ok { // a changed definition: the extension says it exactly
			if d.PriceScale != itch.PriceScale {
				return fmt.Errorf("%w: instrument %d (%s) has price scale %d", ErrUnpublishable, instr, d.SymbolString(), d.PriceScale)
			}
			h, err := e.header(instr, ts)
			if err != nil {
				return err
			}
			e.buf = feed.AppendExtDefinition(e.buf[:0], h, &d)
			if err := e.send(want[:], ts); err != nil {
				return err
			}
			e.sent[instr] = d
			return nil
		}
		return e.Define(instr, d, ts)
	case journal.TypeTradingStatus:
		h, err := e.header(instr, ts)
		if err != nil {
			return err
		}
		var s journal.TradingStatus
		s.Decode(payload)
		m := itch.StockTradingAction{Header: h, Reason: s.Reason}
		m.Stock, _ = e.stock(instr)
		for i := range m.Reason {
			if m.Reason[i] == 0 {
				m.Reason[i] = ' '
			}
		}
		switch s.Status {
		case journal.StatusHalted:
			m.TradingState = 'H'
		case journal.StatusPaused:
			m.TradingState = 'P'
		case journal.StatusQuotationOnly:
			m.TradingState = 'Q'
		case journal.StatusTrading:
			m.TradingState = 'T'
		default:
			return fmt.Errorf("%w: trading status %d of instrument %d", ErrUnpublishable, s.Status, instr)
		}
		e.buf = m.AppendEncode(e.buf[:0])
		if ok, err := e.fits(want[:], ts); ok || err != nil {
			return err
		}
		return fmt.Errorf("%w: trading status reason %q of instrument %d does not survive ITCH's space padding", ErrUnpublishable, s.Reason[:], instr)
	case journal.TypeBookLevel:
		h, err := e.header(instr, ts)
		if err != nil {
			return err
		}
		var l journal.BookLevel
		l.Decode(payload)
		e.buf = feed.AppendExtLevel(e.buf[:0], h, &l)
		return e.send(want[:], ts)
	case journal.TypeOrderAdd, journal.TypeOrderCancel, journal.TypeOrderDelete, journal.TypeOrderExecute:
		h, err := e.header(instr, ts)
		if err != nil {
			return err
		}
		var o journal.Order
		o.Decode(payload)
		if ok, err := e.standardOrder(typ, h, &o, want[:], ts); ok || err != nil {
			return err
		}
		e.buf = feed.AppendExtOrder(e.buf[:0], h, typ, &o)
		return e.send(want[:], ts)
	case journal.TypeTrade:
		h, err := e.header(instr, ts)
		if err != nil {
			return err
		}
		var t journal.Trade
		t.Decode(payload)
		if px, err := itch.Price4FromInt64(t.Price); err == nil && t.Qty >= 0 && t.Aggressor == journal.SideNone && t.Flags == 0 {
			m := itch.CrossTrade{Header: h, Shares: uint64(t.Qty), Price: px, Match: t.TradeID, CrossType: 'I'}
			m.Stock, _ = e.stock(instr)
			e.buf = m.AppendEncode(e.buf[:0])
			if ok, err := e.fits(want[:], ts); ok || err != nil {
				return err
			}
		}
		e.buf = feed.AppendExtTrade(e.buf[:0], h, &t)
		return e.send(want[:], ts)
	}
	if int(typ) < len(e.st.Skipped) {
		e.st.Skipped[typ]++
	}
	e.st.SkippedAll++
	return nil
}

// standardOrder tries the standard message for a single order frame.
func (e *Encoder) standardOrder(typ journal.MsgType, h itch.Header, o *journal.Order, want []feed.Frame, ts int64) (bool, error) {
	if o.Qty < 0 || o.Qty > math.MaxUint32 {
		return false, nil
	}
	switch typ {
	case journal.TypeOrderAdd:
		sd, ok := itchSide(o.Side)
		px, err := itch.Price4FromInt64(o.Price)
		if !ok || err != nil || o.Flags != 0 {
			return false, nil
		}
		m := itch.AddOrder{Header: h, OrderRef: o.OrderID, Side: sd, Shares: uint32(o.Qty), Price: px}
		m.Stock, _ = e.stock(uint32(h.Locate))
		e.buf = m.AppendEncode(e.buf[:0])
	case journal.TypeOrderCancel:
		m := itch.OrderCancel{Header: h, OrderRef: o.OrderID, Canceled: uint32(o.Qty)}
		e.buf = m.AppendEncode(e.buf[:0])
	case journal.TypeOrderDelete:
		m := itch.OrderDelete{Header: h, OrderRef: o.OrderID}
		e.buf = m.AppendEncode(e.buf[:0])
	case journal.TypeOrderExecute:
		// An execution without its trade: 'C' not printable (the volume
		// was printed elsewhere).
		px, err := itch.Price4FromInt64(o.Price)
		if err != nil {
			return false, nil
		}
		m := itch.OrderExecutedWithPrice{Header: h, OrderRef: o.OrderID, Shares: uint32(o.Qty), Printable: 'N', Price: px}
		e.buf = m.AppendEncode(e.buf[:0])
	default:
		return false, nil
	}
	return e.fits(want, ts)
}
