package publish

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sort"
	"time"

	"github.com/mdjournal/mdjournal/itch"
	"github.com/mdjournal/mdjournal/journal"
	"github.com/mdjournal/mdjournal/lobster"
	"github.com/mdjournal/mdjournal/reader"
)

// Instrument is an instrument a source defines: announced with a Stock
// Directory message before any other message.
type Instrument struct {
	ID  uint32                // instrument id = stock locate
	Def journal.InstrumentDef // its definition (price scale 4)
}

// FrameFunc receives a source's frames in order; payload is valid only
// during the call.
type FrameFunc func(typ journal.MsgType, instrument uint32, ts int64, payload []byte) error

// Source is what a Publisher publishes: a journal or LOBSTER files.
type Source interface {
	// Instruments returns the instruments to announce first, in id order.
	Instruments() ([]Instrument, error)
	// Frames calls fn with every frame, in order, until the end of the
	// source, an error from fn, or ctx is done. Re-stated frames are left
	// out.
	Frames(ctx context.Context, fn FrameFunc) error
}

// JournalSource publishes the frames of the journal in Dir from its first
// retained frame to its published end at the time the pass reaches it.
type JournalSource struct {
	Dir string // the journal directory
}

// Instruments returns the journal's catalogue (the latest definition of
// each instrument).
func (s JournalSource) Instruments() ([]Instrument, error) {
	cat, err := reader.JournalCatalog(s.Dir)
	if err != nil {
		return nil, err
	}
	var out []Instrument
	for _, in := range cat.All() {
		var d journal.InstrumentDef
		if err := d.SetSymbol(in.Symbol); err != nil {
			return nil, fmt.Errorf("publish: instrument %d: %w", in.ID, err)
		}
		d.TickSize, d.PriceScale = in.TickSize, in.PriceScale
		out = append(out, Instrument{ID: in.ID, Def: d})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

// Frames reads the journal from its start.
func (s JournalSource) Frames(ctx context.Context, fn FrameFunc) error {
	r, err := reader.Open(s.Dir, reader.Options{})
	if err != nil {
		return err
	}
	defer r.Close()
	for n := 0; ; n++ {
		if n&1023 == 0 && ctx.Err() != nil {
			return ctx.Err()
		}
		f, ok, err := r.TryNext()
		if err != nil {
			return err
		}
		if !ok {
			return nil
		}
		if f.Restated() {
			continue
		}
		if err := fn(f.Type, f.Instrument, f.TS, f.Payload); err != nil {
			return err
		}
	}
}

// LOBSTERFile is one LOBSTER day of one instrument: a message file and,
// optionally, its orderbook file (see package lobster: without it, levels
// that enter the visible depth cannot be known).
type LOBSTERFile struct {
	Message   string // the message file (.csv or .csv.gz)
	Orderbook string // its orderbook file ("": none)
	// Symbol, Date and Levels default to what the message file's LOBSTER
	// name says.
	Symbol string       // the instrument's symbol
	Date   lobster.Date // the trading day
	Levels int          // the orderbook's depth
	// Instrument is its id (default: its position in the list, from 1).
	Instrument uint32
}

// LOBSTERSource publishes LOBSTER files as `journalctl import` would
// import them (package lobster), merged in time order.
type LOBSTERSource struct {
	Files []LOBSTERFile // one per instrument; ids default to their positions from 1
}

func (s LOBSTERSource) resolved() ([]LOBSTERFile, error) {
	out := make([]LOBSTERFile, len(s.Files))
	for i, f := range s.Files {
		if f.Symbol == "" || f.Date.IsZero() || (f.Orderbook != "" && f.Levels == 0) {
			n, err := lobster.ParseFileName(f.Message)
			if err != nil {
				return nil, fmt.Errorf("%w (or give the symbol, date and levels)", err)
			}
			if f.Symbol == "" {
				f.Symbol = n.Symbol
			}
			if f.Date.IsZero() {
				f.Date = n.Date
			}
			if f.Levels == 0 {
				f.Levels = n.Levels
			}
		}
		if f.Instrument == 0 {
			f.Instrument = uint32(i + 1)
		}
		out[i] = f
	}
	return out, nil
}

// Instruments returns each file's symbol and id (tick 100, scale 4).
func (s LOBSTERSource) Instruments() ([]Instrument, error) {
	files, err := s.resolved()
	if err != nil {
		return nil, err
	}
	var out []Instrument
	for _, f := range files {
		var d journal.InstrumentDef
		if err := d.SetSymbol(f.Symbol); err != nil {
			return nil, err
		}
		d.TickSize, d.PriceScale = lobster.TickSize, lobster.PriceScale
		out = append(out, Instrument{ID: f.Instrument, Def: d})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

type sinkFunc struct {
	ctx context.Context
	fn  FrameFunc
	n   uint64
}

// Append hands one frame to the FrameFunc (lobster.Sink).
func (s *sinkFunc) Append(typ journal.MsgType, instr uint32, ts int64, payload []byte) (uint64, error) {
	s.n++
	if s.n&1023 == 0 && s.ctx.Err() != nil {
		return 0, s.ctx.Err()
	}
	return s.n, s.fn(typ, instr, ts, payload)
}

// Frames imports the files and hands over their frames in time order.
func (s LOBSTERSource) Frames(ctx context.Context, fn FrameFunc) error {
	files, err := s.resolved()
	if err != nil {
		return err
	}
	var streams []*lobster.Stream
	for _, f := range files {
		mf, err := os.Open(f.Message)
		if err != nil {
			return err
		}
		defer mf.Close()
		mr, err := lobster.NewMessageReader(mf)
		if err != nil {
			return fmt.Errorf("%s: %w", f.Message, err)
		}
		var rows lobster.OrderbookSource
		if f.Orderbook != "" {
			bf, err := os.Open(f.Orderbook)
			if err != nil {
				return err
			}
			defer bf.Close()
			br, err := lobster.NewOrderbookReader(bf, f.Levels)
			if err != nil {
				return fmt.Errorf("%s: %w", f.Orderbook, err)
			}
			rows = br
		}
		st, err := lobster.NewStream(mr, rows, lobster.Options{Symbol: f.Symbol, Date: f.Date, Instrument: f.Instrument, Levels: f.Levels})
		if err != nil {
			return err
		}
		streams = append(streams, st)
	}
	err = lobster.Merge(streams, &sinkFunc{ctx: ctx, fn: fn})
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return ctx.Err()
	}
	return err
}

// NewYorkDay returns the trading day (midnight, America/New_York) of a
// Unix-ns timestamp: NASDAQ's ITCH timestamps count from it.
func NewYorkDay(ts int64) itch.Day {
	loc, err := itch.NewYork()
	if err != nil {
		loc = time.UTC
	}
	return itch.DayOf(time.Unix(0, ts).In(loc))
}
