package export

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/mdjournal/mdjournal/journal"
	"github.com/mdjournal/mdjournal/reader"
)

// Format is an output format.
type Format uint8

// Formats.
const (
	Parquet Format = iota + 1
	CSV
)

// ErrFormat is returned by ParseFormat for an unknown name.
var ErrFormat = errors.New("export: unknown format (want parquet or csv)")

// ParseFormat reads "parquet" or "csv".
func ParseFormat(s string) (Format, error) {
	switch s {
	case "parquet":
		return Parquet, nil
	case "csv":
		return CSV, nil
	}
	return 0, fmt.Errorf("%w: %q", ErrFormat, s)
}

func (f Format) String() string {
	switch f {
	case Parquet:
		return "parquet"
	case CSV:
		return "csv"
	}
	return fmt.Sprintf("format_%d", uint8(f))
}

// Sink receives frames as rows: *ParquetWriter and *CSVWriter.
type Sink interface {
	// WriteFrame appends f as one row; cat is the catalogue in effect for f.
	WriteFrame(f *journal.Frame, cat *journal.Catalog) error
	// Close finishes the output (it does not close the underlying writer).
	Close() error
}

// New returns a Sink of format f writing to out.
func New(f Format, out io.Writer, popts ParquetOptions, copts CSVOptions) (Sink, error) {
	switch f {
	case Parquet:
		return NewParquet(out, popts)
	case CSV:
		return NewCSV(out, copts), nil
	}
	return nil, fmt.Errorf("%w: %v", ErrFormat, f)
}

// Filter selects the frames Run exports. The zero value selects every
// frame from the reader's position to the end of the published data.
type Filter struct {
	// ToSeq, if not 0, stops after the frame with this seq.
	ToSeq uint64
	// ToTime, if not zero, stops before the first frame whose timestamp is
	// after it (like journalctl dump --to time:T).
	ToTime time.Time
	// Instruments and Symbols, if either is not empty, keep only frames of
	// these instrument ids or of instruments whose symbol (in the reader's
	// catalogue when the frame is read) is one of these.
	Instruments []uint32
	Symbols     []string
	// Types, if not empty, keeps only frames of these types.
	Types []journal.MsgType
	// SkipRestated drops the definitions and statuses re-stated at segment
	// starts (restated = true); by default they are rows.
	SkipRestated bool
}

// match reports whether f is selected (the bounds aside).
func (fl *Filter) match(f *journal.Frame, cat *journal.Catalog) bool {
	if fl.SkipRestated && f.Restated() {
		return false
	}
	if len(fl.Types) > 0 {
		ok := false
		for _, t := range fl.Types {
			if f.Type == t {
				ok = true
				break
			}
		}
		if !ok {
			return false
		}
	}
	if len(fl.Instruments) == 0 && len(fl.Symbols) == 0 {
		return true
	}
	for _, id := range fl.Instruments {
		if f.Instrument == id {
			return true
		}
	}
	if len(fl.Symbols) > 0 && f.Instrument != 0 {
		sym := cat.Symbol(f.Instrument)
		for _, s := range fl.Symbols {
			if sym == s {
				return true
			}
		}
	}
	return false
}

// Options configure Run.
type Options struct {
	Filter
	// Progress, if set, is called every ProgressEvery frames read and once
	// at the end, with the seq of the last frame read and the rows written.
	Progress func(lastSeq uint64, rows int64)
	// ProgressEvery is how many frames Run reads between Progress calls
	// and checks of its context (default DefaultProgressEvery).
	ProgressEvery int64
}

// DefaultProgressEvery is the default Options.ProgressEvery.
const DefaultProgressEvery = 1 << 16

// Stats say what Run did.
type Stats struct {
	Frames   int64  // frames read (in the range, selected or not)
	Rows     int64  // rows written
	FirstSeq uint64 // seq of the first row (0 when none)
	LastSeq  uint64 // seq of the last row (0 when none)
}

// Run reads frames from r until the end of the data published when it gets
// there (or past Filter.ToSeq / ToTime) and writes the selected ones to s.
// It does not close s: on success the caller closes it; on error the
// output is incomplete. It returns ctx.Err() if ctx is done first (checked
// every Options.ProgressEvery frames), and the reader's error (a
// *journal.CorruptionError for damage) as is.
func Run(ctx context.Context, r *reader.Reader, s Sink, opts Options) (Stats, error) {
	var st Stats
	toTS, hasTo := int64(0), !opts.ToTime.IsZero()
	if hasTo {
		toTS = opts.ToTime.UnixNano()
	}
	report := func() {
		if opts.Progress != nil {
			opts.Progress(r.LastSeq(), st.Rows)
		}
	}
	every := opts.ProgressEvery
	if every <= 0 {
		every = DefaultProgressEvery
	}
	var f journal.Frame // one variable: &f goes to an interface and escapes
	for {
		if st.Frames%every == 0 && st.Frames > 0 {
			if err := ctx.Err(); err != nil {
				return st, err
			}
			report()
		}
		var ok bool
		var err error
		f, ok, err = r.TryNext()
		if err != nil {
			return st, err
		}
		if !ok || opts.ToSeq != 0 && f.Seq > opts.ToSeq || hasTo && f.TS > toTS {
			break
		}
		st.Frames++
		cat := r.Catalog()
		if !opts.match(&f, cat) {
			continue
		}
		if err := s.WriteFrame(&f, cat); err != nil {
			return st, err
		}
		if st.Rows == 0 {
			st.FirstSeq = f.Seq
		}
		st.Rows++
		st.LastSeq = f.Seq
	}
	if err := ctx.Err(); err != nil {
		return st, err
	}
	report()
	return st, nil
}
