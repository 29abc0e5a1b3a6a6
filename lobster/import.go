package lobster

import (
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/mdjournal/mdjournal/book"
	"github.com/mdjournal/mdjournal/journal"
)

// Sink receives the imported frames. The journal writer implements it; the
// payload is only valid during the call (the importer reuses its buffer).
type Sink interface {
	Append(typ journal.MsgType, instrument uint32, ts int64, payload []byte) (seq uint64, err error)
}

// Options say what the files are. Symbol and Date are required; FileName
// holds them for files named the LOBSTER way.
type Options struct {
	Symbol     string
	Date       Date   // trading day; times are seconds after its midnight
	Instrument uint32 // instrument id of every frame
	// Levels is the depth L of the files. 0 takes it from the orderbook's
	// column count. Only needed with an orderbook.
	Levels int
	// Location of the times; nil means America/New_York.
	Location *time.Location
}

// Price scale and tick of LOBSTER prices (dollars x 10000, one-cent ticks).
const (
	PriceScale = 4
	TickSize   = 100
)

// Stats describe one import.
type Stats struct {
	Messages int                  // message rows read
	ByType   [numMessageTypes]int // rows per LOBSTER type (index = type)
	Frames   int                  // frames appended
	Trades   int                  // Trade frames (types 4, 5, 6)
	Halts    int                  // type-7 rows (a TradingStatus frame each)
	Rows     int                  // orderbook rows read (0 without an orderbook)
	// RoundedTimes counts times with float noise past the nanosecond, rounded
	// to the nearest ns (see parseTime; 1 row in AMZN L=5). Only known when
	// the source is a *MessageReader.
	RoundedTimes int

	SeedLevels int // BookLevel frames of the opening book
	// Emptied counts messages that emptied one of the visible levels.
	Emptied int
	// EnteringLevels counts the BookLevel frames emitted right after such a
	// message, from that message's orderbook row: the level that entered the
	// top-L view (EnteringLevels - StaleLevels of them) and levels the rebuilt
	// book still held beyond the view but the row shows are gone (StaleLevels,
	// emitted with qty 0).
	EnteringLevels int
	StaleLevels    int
	// Inconsistent counts emptying messages after which the orderbook row
	// disagreed with the rebuilt book above the entering position: something
	// the message file should have explained did not add up. Such rows are
	// not patched from the orderbook. 0 on every sample file.
	Inconsistent int
}

// Import reads msgs (and, if rows is not nil, the orderbook rows that go
// with them, one per message) and appends frames to sink:
//
//  1. InstrumentDef (symbol, scale 4, tick 100), at the first message's time.
//  2. With an orderbook: the book before message 1 as BookLevel frames. Row 1
//     is the book after message 1, so the opening book is row 1 with message
//     1 undone (an add subtracted, a cancel/delete/execution added back). If
//     message 1 emptied a level, the opening book has that level plus all L of
//     row 1's levels on that side (one more than the view; harmless).
//  3. Per message, its frames (see the package doc), all stamped with the
//     message's time converted to Unix ns.
//  4. With an orderbook, after a message that emptied a visible level on one
//     side: BookLevel frames taken from that message's row for the level
//     entering the top-L view (row level L of that side), preceded by removals
//     of any level the rebuilt book still holds beyond the view that is better
//     than the entering one (it was pushed out of view earlier and has since
//     gone without the message file saying so). Nothing else is taken from
//     the orderbook.
//
// It returns at the first error, from the sources or the sink. Frames
// reach the sink as they are made: to import all or nothing, run the
// sources once through a sink that only counts (Discard) before the real
// run.
func Import(msgs MessageSource, rows OrderbookSource, sink Sink, opts Options) (Stats, error) {
	s, err := NewStream(msgs, rows, opts)
	if err != nil {
		return Stats{}, err
	}
	err = Merge([]*Stream{s}, sink)
	return s.Stats(), err
}

// Frame is one imported frame. Its Payload is valid until the next call to
// Next on the Stream that produced it.
type Frame struct {
	Type       journal.MsgType
	Instrument uint32
	TS         int64
	Payload    []byte
}

// Stream turns one LOBSTER day into frames, one message at a time (see
// Import for what each message becomes). Streams of several instruments are
// interleaved in time order by Merge.
type Stream struct {
	im       *importer
	msgs     MessageSource
	rows     OrderbookSource
	started  bool
	haveRows bool
	done     bool
	m        Message
}

// NewStream reads msgs and (if not nil) rows with opts.
func NewStream(msgs MessageSource, rows OrderbookSource, opts Options) (*Stream, error) {
	im, err := newImporter(opts)
	if err != nil {
		return nil, err
	}
	return &Stream{im: im, msgs: msgs, rows: rows}, nil
}

// Next returns the frames of the next message, all stamped with its time
// (the first call also returns the definition and the opening book before
// them). After the last message it checks that the orderbook has no row
// left and returns io.EOF. The frames are valid until the next call.
func (s *Stream) Next() ([]Frame, error) {
	if s.done {
		return nil, io.EOF
	}
	im := s.im
	im.group, im.arena = im.group[:0], im.arena[:0]
	err := s.msgs.Next(&s.m)
	if errors.Is(err, io.EOF) {
		s.done = true
		if s.rows != nil && s.started {
			var extra Row
			if err := s.rows.Next(&extra); !errors.Is(err, io.EOF) {
				if err == nil {
					return nil, fmt.Errorf("lobster: the orderbook has more rows than the %d messages", im.st.Messages)
				}
				return nil, fmt.Errorf("lobster: the orderbook after row %d: %w", im.st.Rows, err)
			}
		}
		if r, ok := s.msgs.(interface{ Rounded() int }); ok {
			im.st.RoundedTimes = r.Rounded()
		}
		return nil, io.EOF
	}
	if err != nil {
		s.done = true
		return nil, err
	}
	if !s.started {
		s.started = true
		if err := im.start(&s.m, s.rows); err != nil {
			s.done = true
			return nil, err
		}
	} else if s.rows != nil {
		if err := im.nextRow(s.rows); err != nil {
			s.done = true
			return nil, err
		}
	}
	// Message 1's row is the seed itself (row 1 with message 1 undone, so
	// any level it brought into view is already there): no entering level.
	if err := im.message(&s.m, s.haveRows); err != nil {
		s.done = true
		return nil, err
	}
	s.haveRows = s.rows != nil
	return im.group, nil
}

// Stats returns what the stream has read and made so far.
func (s *Stream) Stats() Stats { return s.im.st }

// Merge appends the frames of every stream to sink in time order: always
// the next message of the stream whose next message is earliest, the
// stream listed first on a tie (a stable k-way merge; each stream is in
// time order already). A message's frames stay together. It returns at the
// first error, naming the stream by its symbol.
func Merge(streams []*Stream, sink Sink) error {
	type head struct {
		frames []Frame
		ok     bool
	}
	heads := make([]head, len(streams))
	advance := func(i int) error {
		f, err := streams[i].Next()
		if errors.Is(err, io.EOF) {
			heads[i] = head{}
			return nil
		}
		if err != nil {
			return fmt.Errorf("%s: %w", streams[i].im.opts.Symbol, err)
		}
		heads[i] = head{f, true}
		return nil
	}
	for i := range streams {
		if err := advance(i); err != nil {
			return err
		}
	}
	for {
		// A linear scan: imports merge a handful of files, and a scan of
		// them costs less than a heap's bookkeeping.
		best := -1
		for i, h := range heads {
			if h.ok && (best < 0 || h.frames[0].TS < heads[best].frames[0].TS) {
				best = i
			}
		}
		if best < 0 {
			return nil
		}
		for _, f := range heads[best].frames {
			if _, err := sink.Append(f.Type, f.Instrument, f.TS, f.Payload); err != nil {
				return fmt.Errorf("lobster: sink: %w", err)
			}
		}
		if err := advance(best); err != nil {
			return err
		}
	}
}

// Discard is a Sink that keeps nothing and counts frames: a dry run.
type Discard struct{ Frames uint64 }

// Append counts the frame.
func (d *Discard) Append(journal.MsgType, uint32, int64, []byte) (uint64, error) {
	d.Frames++
	return d.Frames, nil
}

type importer struct {
	opts  Options
	base  int64 // Unix ns of the trading day's midnight
	buf   [32]byte
	st    Stats
	view  *book.Book // the book as rebuilt from the frames emitted so far
	trade uint64
	row   Row
	top   []book.Level
	group []Frame // the frames of the current message
	arena []byte  // their payloads
}

func newImporter(opts Options) (*importer, error) {
	if opts.Symbol == "" || len(opts.Symbol) > journal.SymbolLen {
		return nil, fmt.Errorf("lobster: symbol %q must be 1..%d bytes", opts.Symbol, journal.SymbolLen)
	}
	if opts.Date.IsZero() {
		return nil, errors.New("lobster: Options.Date is required")
	}
	loc, err := location(opts.Location)
	if err != nil {
		return nil, err
	}
	return &importer{opts: opts, base: midnight(opts.Date, loc), view: book.New(0)}, nil
}

func (im *importer) emit(typ journal.MsgType, ts int64, payload []byte) error {
	at := len(im.arena)
	im.arena = append(im.arena, payload...)
	im.group = append(im.group, Frame{Type: typ, Instrument: im.opts.Instrument, TS: ts, Payload: im.arena[at:len(im.arena):len(im.arena)]})
	im.st.Frames++
	return nil
}

// level emits a BookLevel frame and applies it to the view.
func (im *importer) level(ts int64, side journal.Side, p journal.Price, qty int64) error {
	l := journal.BookLevel{Price: p, Qty: qty, Side: side}
	im.view.ApplyLevel(&l)
	return im.emit(journal.TypeBookLevel, ts, l.Encode(im.buf[:]))
}

// start emits what precedes the first message m: the definition and, with
// an orderbook, the opening book.
func (im *importer) start(m *Message, rows OrderbookSource) error {
	ts := im.base + m.Time
	var d journal.InstrumentDef
	d.SetSymbol(im.opts.Symbol)
	d.TickSize, d.PriceScale = TickSize, PriceScale
	if err := im.emit(journal.TypeInstrumentDef, ts, d.Encode(im.buf[:])); err != nil {
		return err
	}
	if rows == nil {
		return nil
	}
	if err := im.nextRow(rows); err != nil {
		return err
	}
	if im.opts.Levels != 0 && im.opts.Levels != im.row.Levels() {
		return fmt.Errorf("lobster: orderbook has %d levels, options say %d", im.row.Levels(), im.opts.Levels)
	}
	im.top = make([]book.Level, im.row.Levels()+1)
	return im.seed(m, ts)
}

func (im *importer) nextRow(rows OrderbookSource) error {
	err := rows.Next(&im.row)
	if errors.Is(err, io.EOF) {
		return fmt.Errorf("lobster: orderbook ends after %d rows, before the messages", im.st.Rows)
	}
	if err == nil {
		im.st.Rows++
	}
	return err
}

func side(dir int) journal.Side {
	if dir == 1 {
		return journal.SideBid
	}
	return journal.SideAsk
}

// seed emits the book before message m (the first): row 1 with m undone.
func (im *importer) seed(m *Message, ts int64) error {
	pre := book.New(0)
	for i := range im.row.Ask {
		if a := im.row.Ask[i]; a.Qty > 0 {
			pre.SetLevel(journal.SideAsk, a.Price, a.Qty)
		}
		if b := im.row.Bid[i]; b.Qty > 0 {
			pre.SetLevel(journal.SideBid, b.Price, b.Qty)
		}
	}
	o := journal.Order{Price: m.Price, Qty: m.Size, Side: side(m.Direction)}
	switch m.Type {
	case TypeSubmit: // undo an add: take it away
		pre.ApplyOrder(journal.TypeOrderDelete, &o)
	case TypeCancel, TypeDelete, TypeExecute: // undo a removal: put it back
		pre.ApplyOrder(journal.TypeOrderAdd, &o)
	}
	for _, s := range [2]journal.Side{journal.SideBid, journal.SideAsk} {
		for d := 0; ; d++ {
			l, ok := pre.At(s, d)
			if !ok {
				break
			}
			if err := im.level(ts, s, l.Price, l.Qty); err != nil {
				return err
			}
			im.st.SeedLevels++
		}
	}
	return nil
}

var l3Type = [numMessageTypes]journal.MsgType{
	TypeSubmit: journal.TypeOrderAdd, TypeCancel: journal.TypeOrderCancel, TypeDelete: journal.TypeOrderDelete,
	TypeExecute: journal.TypeOrderExecute, TypeExecHidden: journal.TypeOrderExecute,
}

// message emits the frames of one message and, if it emptied a visible level
// and there is an orderbook, the entering level.
func (im *importer) message(m *Message, haveRows bool) error {
	im.st.Messages++
	im.st.ByType[m.Type]++
	ts := im.base + m.Time
	s := side(m.Direction)
	switch m.Type {
	case TypeHalt:
		im.st.Halts++
		var st journal.TradingStatus
		switch m.Price {
		case -1:
			st.Status = journal.StatusHalted
		case 0:
			st.Status = journal.StatusQuotationOnly
		case 1:
			st.Status = journal.StatusTrading
		default:
			return fmt.Errorf("lobster: message %d: trading halt indicator %d, want -1 (halt), 0 (quoting resumes) or 1 (trading resumes)", im.st.Messages, m.Price)
		}
		return im.emit(journal.TypeTradingStatus, ts, st.Encode(im.buf[:]))
	case TypeCross:
		return im.emitTrade(ts, m, journal.SideNone, 0)
	}
	o := journal.Order{Price: m.Price, Qty: m.Size, Side: s}
	if m.OrderID > 0 {
		o.OrderID = uint64(m.OrderID)
	}
	if m.Type == TypeExecHidden {
		o.Flags = journal.FlagHidden
	}
	typ := l3Type[m.Type]
	before := im.view.QtyAt(s, m.Price)
	if err := im.view.ApplyOrder(typ, &o); err != nil {
		return fmt.Errorf("lobster: message %d: %w", im.st.Messages, err)
	}
	if err := im.emit(typ, ts, o.Encode(im.buf[:])); err != nil {
		return err
	}
	if m.Type == TypeExecute || m.Type == TypeExecHidden {
		aggr := journal.SideBid // a resting sell order was hit by a buyer
		if s == journal.SideBid {
			aggr = journal.SideAsk
		}
		if err := im.emitTrade(ts, m, aggr, o.Flags); err != nil {
			return err
		}
	}
	if before > 0 && im.view.QtyAt(s, m.Price) == 0 {
		im.st.Emptied++
		if haveRows {
			return im.enter(ts, s)
		}
	}
	return nil
}

func (im *importer) emitTrade(ts int64, m *Message, aggr journal.Side, flags uint8) error {
	im.trade++
	im.st.Trades++
	t := journal.Trade{Price: m.Price, Qty: m.Size, TradeID: im.trade, Aggressor: aggr, Flags: flags}
	return im.emit(journal.TypeTrade, ts, t.Encode(im.buf[:]))
}

// enter brings side s of the view in line with the current row beyond the
// positions the message file accounts for: the level at depth L-1 (the one
// that just came into view) and any stale level in the way.
func (im *importer) enter(ts int64, s journal.Side) error {
	want := im.row.Side(s == journal.SideBid)
	L := len(want)
	n := im.view.Top(s, im.top[:L-1])
	for i, w := range want[:L-1] {
		if (w.Qty == 0 && i < n) || (w.Qty > 0 && (i >= n || im.top[i] != w)) {
			im.st.Inconsistent++
			return nil
		}
	}
	in := want[L-1]
	better := func(p journal.Price) bool {
		if in.Qty == 0 {
			return true // the row shows nothing there: every deeper level is stale
		}
		if s == journal.SideBid {
			return p > in.Price
		}
		return p < in.Price
	}
	for {
		l, ok := im.view.At(s, L-1)
		if !ok || !better(l.Price) {
			break
		}
		if err := im.level(ts, s, l.Price, 0); err != nil {
			return err
		}
		im.st.EnteringLevels++
		im.st.StaleLevels++
	}
	if in.Qty > 0 {
		if err := im.level(ts, s, in.Price, in.Qty); err != nil {
			return err
		}
		im.st.EnteringLevels++
	}
	return nil
}
