package reader

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/mdjournal/mdjournal/journal"
)

// ErrUnknownInstrument is returned when a selection names a symbol no
// instrument_def of the journal defines.
var ErrUnknownInstrument = errors.New("reader: unknown instrument")

// JournalCatalog returns every instrument the journal in dir defines, as of
// its last frame. The last segment re-states every definition in effect at
// its start (format.md §3.4), so reading it is enough, whatever was pruned.
// A journal written without re-statements (a replica's own writer does not
// add them: it copies the origin's) is read whole.
func JournalCatalog(dir string) (*journal.Catalog, error) {
	r, err := Open(dir, Options{From: End()})
	if err != nil {
		return nil, err
	}
	defer r.Close()
	if r.restatedStart || r.seg.hdr().FirstSeq() == r.firstSeq {
		return r.Catalog().Clone(), nil
	}
	all, err := Open(dir, Options{})
	if err != nil {
		return nil, err
	}
	defer all.Close()
	var f journal.Frame
	for {
		ok, err := all.tryNext(&f)
		if err != nil {
			return nil, err
		}
		if !ok {
			return all.Catalog().Clone(), nil
		}
	}
}

// Bound is an inclusive upper limit of a range, by seq or by time.
type Bound struct {
	Seq uint64 // stop after this seq (0: not by seq)
	TS  int64  // stop before the first frame with ts > TS (used when Seq is 0)
	Set bool
}

// Past reports whether f lies beyond the bound.
func (b *Bound) Past(f *journal.Frame) bool {
	if !b.Set {
		return false
	}
	if b.Seq != 0 {
		return f.Seq > b.Seq
	}
	return f.TS > b.TS
}

// BoundOf turns a seq:N or time:T position into a bound; false for start
// and end.
func BoundOf(p Position) (Bound, bool) {
	switch p.kind {
	case posSeq:
		return Bound{Seq: p.seq, Set: true}, true
	case posTime:
		return Bound{TS: p.ts, Set: true}, true
	}
	return Bound{}, false
}

// Filter selects frames by instrument and message type. The zero value (or
// nil) passes everything. Definitions and trading statuses of selected
// instruments always pass (a consumer needs them to name instruments and
// scale prices), whatever the type selection.
type Filter struct {
	ids   map[uint32]bool // selected instruments (nil: all)
	types uint64          // bit t set: type t selected (0: all)
	since int64           // frames stamped before it do not pass (Since)
	hasTS bool
}

// Since makes the filter drop frames stamped before ts (definitions and
// trading statuses excepted). A reader opened at Time(ts) starts at the
// first frame at or after ts; on a journal whose time goes back, frames
// after that position may be older, and this drops them, so that a time
// range over selected instruments is exact per instrument (format.md §5).
func (ft *Filter) Since(ts int64) { ft.since, ft.hasTS = ts, true }

// NewFilter builds a filter. instruments are decimal ids or symbols,
// resolved against cat (JournalCatalog); a symbol the catalogue does not
// know is ErrUnknownInstrument, never an empty selection.
func NewFilter(cat *journal.Catalog, instruments []string, types []journal.MsgType) (*Filter, error) {
	ft := &Filter{}
	for _, t := range types {
		if t >= 64 || !t.Known() || t == journal.TypeSegmentEnd {
			return nil, fmt.Errorf("reader: message type %s cannot be selected", t)
		}
		ft.types |= 1 << t
	}
	for _, s := range instruments {
		s = strings.TrimSpace(s)
		if ft.ids == nil {
			ft.ids = map[uint32]bool{}
		}
		if id, err := strconv.ParseUint(s, 10, 32); err == nil {
			ft.ids[uint32(id)] = true
			continue
		}
		if err := journal.CheckSymbol(s); err != nil {
			return nil, fmt.Errorf("reader: instrument %q: want an id or a symbol: %v", s, err)
		}
		in, ok := cat.BySymbol(s)
		if !ok {
			return nil, fmt.Errorf("%w: %q is defined by no instrument_def in the journal", ErrUnknownInstrument, s)
		}
		ft.ids[in.ID] = true
	}
	return ft, nil
}

// Pass reports whether f is selected. It allocates nothing.
func (ft *Filter) Pass(f *journal.Frame) bool {
	if ft == nil {
		return true
	}
	if ft.ids != nil && !ft.ids[f.Instrument] {
		return false
	}
	if f.Type == journal.TypeInstrumentDef || f.Type == journal.TypeTradingStatus {
		return true
	}
	if ft.hasTS && f.TS < ft.since {
		return false
	}
	return ft.types == 0 || (f.Type < 64 && ft.types&(1<<f.Type) != 0)
}

// ParseTypes reads a comma-separated list of message type names.
func ParseTypes(s string) ([]journal.MsgType, error) {
	var ts []journal.MsgType
	for _, name := range strings.Split(s, ",") {
		t, err := journal.ParseMsgType(strings.TrimSpace(name))
		if err != nil {
			return nil, err
		}
		ts = append(ts, t)
	}
	return ts, nil
}

// TimeSyntax documents the time positions ParsePositionIn accepts.
const TimeSyntax = "time:RFC3339 (2012-06-21T14:30:00Z), time:2012-06-21T10:30:00 (in --tz), or time:10:30[:00.5] (on the journal's trading date, in --tz)"

// ParsePositionIn reads a position like ParsePosition, plus times without a
// zone: time:YYYY-MM-DDTHH:MM[:SS[.frac]] is in loc, and time:HH:MM[:SS[.frac]]
// is that time of day on the trading date, in loc. tradingDate returns the
// date (in loc) the journal's first frame falls on; it is called only for a
// bare time of day.
func ParsePositionIn(s string, loc *time.Location, tradingDate func() (time.Time, error)) (Position, error) {
	v, ok := strings.CutPrefix(s, "time:")
	if !ok {
		return ParsePosition(s)
	}
	if loc == nil {
		loc = time.UTC
	}
	if t, err := time.Parse(time.RFC3339Nano, v); err == nil {
		return Time(t), nil
	}
	for _, layout := range []string{"2006-01-02T15:04:05.999999999", "2006-01-02T15:04"} {
		if t, err := time.ParseInLocation(layout, v, loc); err == nil {
			return Time(t), nil
		}
	}
	for _, layout := range []string{"15:04:05.999999999", "15:04"} {
		if clock, err := time.Parse(layout, v); err == nil {
			if tradingDate == nil {
				return Position{}, fmt.Errorf("bad position %q: a time of day needs a journal to date it", s)
			}
			d, err := tradingDate()
			if err != nil {
				return Position{}, fmt.Errorf("position %q: %v", s, err)
			}
			d = d.In(loc)
			t := time.Date(d.Year(), d.Month(), d.Day(), clock.Hour(), clock.Minute(), clock.Second(), clock.Nanosecond(), loc)
			return Time(t), nil
		}
	}
	return Position{}, fmt.Errorf("bad position %q: want %s", s, TimeSyntax)
}

// FirstTime returns the timestamp of the journal's first frame.
func FirstTime(dir string) (time.Time, error) {
	r, err := Open(dir, Options{})
	if err != nil {
		return time.Time{}, err
	}
	defer r.Close()
	f, ok, err := r.TryNext()
	if err != nil {
		return time.Time{}, err
	}
	if !ok {
		return time.Time{}, errors.New("the journal has no frame to take a trading date from")
	}
	return f.Time(), nil
}
