package command

import (
	"fmt"
	"io"
	"os"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/pflag"
	"golang.org/x/term"

	"github.com/mdjournal/mdjournal/booksnap"
	"github.com/mdjournal/mdjournal/journal"
	"github.com/mdjournal/mdjournal/lobster"
	"github.com/mdjournal/mdjournal/snapshot"
	"github.com/mdjournal/mdjournal/writer"
)

type importOptions struct {
	dir         string
	format      string
	symbol      string
	date        string
	orderbook   string
	levels      int
	instrument  uint32
	snapshot    string
	depth       int
	durability  string
	segmentSize string
}

func (o *importOptions) AddFlags(fs *pflag.FlagSet) {
	fs.StringVar(&o.dir, "dir", "", "journal directory (created if missing; frames are appended)")
	fs.StringVar(&o.format, "format", "lobster", "input format: lobster")
	fs.StringVar(&o.symbol, "symbol", "", "instrument symbol (1..16 bytes)")
	fs.StringVar(&o.date, "date", "", "trading day YYYY-MM-DD (LOBSTER times are seconds after its midnight, New York time)")
	fs.StringVar(&o.orderbook, "orderbook", "", "LOBSTER orderbook file of the same day: seeds the opening book and the levels entering the view")
	fs.IntVar(&o.levels, "levels", 0, "levels of the orderbook file (0 = from its column count)")
	fs.Uint32Var(&o.instrument, "instrument", 1, "instrument id of every frame")
	fs.StringVar(&o.snapshot, "snapshot", "", "keep this order-book snapshot file up to date while importing")
	fs.IntVar(&o.depth, "depth", booksnap.DefaultDepth, "levels per side in the snapshot (with --snapshot)")
	fs.StringVar(&o.durability, "durability", "none", "none|async|interval:DUR[,BYTES]|sync")
	fs.StringVar(&o.segmentSize, "segment-size", "64MiB", "capacity of new segment files")
}

func runImport(env *Env, args []string) error {
	var o importOptions
	fs := flagSet(env, "import", "--dir D --format lobster --symbol SYM --date YYYY-MM-DD MESSAGE.csv[.gz] [--orderbook ORDERBOOK.csv[.gz]] [--snapshot FILE --depth N] [--instrument ID]", o.AddFlags)
	if err := parse(fs, args); err != nil {
		return err
	}
	if err := requireDir(o.dir); err != nil {
		return err
	}
	switch {
	case fs.NArg() == 0:
		return usagef("the MESSAGE file is required")
	case fs.NArg() > 1:
		return usagef("one MESSAGE file at a time, got %d arguments", fs.NArg())
	}
	if o.format != "lobster" {
		return usagef("--format %q: the only format is lobster", o.format)
	}
	if o.symbol == "" || len(o.symbol) > journal.SymbolLen {
		return usagef("--symbol is required (1..%d bytes)", journal.SymbolLen)
	}
	if o.date == "" {
		return usagef("--date YYYY-MM-DD is required")
	}
	date, err := lobster.ParseDate(o.date)
	if err != nil {
		return usagef("--date %q: want YYYY-MM-DD", o.date)
	}
	if o.levels < 0 {
		return usagef("--levels %d: want ≥ 0", o.levels)
	}
	if fs.Changed("depth") && o.snapshot == "" {
		return usagef("--depth needs --snapshot")
	}
	if o.depth < 1 || o.depth > snapshot.MaxDepth {
		return usagef("--depth %d: want 1..%d", o.depth, snapshot.MaxDepth)
	}
	if o.snapshot != "" && o.instrument >= snapshot.MaxCapacity {
		return usagef("--instrument %d: a snapshot holds ids below %d", o.instrument, snapshot.MaxCapacity)
	}
	dur, err := writer.ParseDurability(o.durability)
	if err != nil {
		return usagef("%v", err)
	}
	segSize, err := writer.ParseSize(o.segmentSize)
	if err != nil {
		return usagef("--segment-size: %v", err)
	}

	// Open the inputs before the journal: a missing file must not leave an
	// empty journal behind.
	msgPath := fs.Arg(0)
	mf, err := os.Open(msgPath)
	if err != nil {
		return err // *PathError names the file
	}
	defer mf.Close()
	var bookFile *os.File
	if o.orderbook != "" {
		if bookFile, err = os.Open(o.orderbook); err != nil {
			return err
		}
		defer bookFile.Close()
	}
	var progress io.Reader = mf
	bar := newProgress(env, mf)
	if bar != nil {
		progress = io.TeeReader(mf, bar)
	}
	msgs, err := lobster.NewMessageReader(progress)
	if err != nil {
		return fmt.Errorf("%s: %w", msgPath, err)
	}
	var rows lobster.OrderbookSource
	if bookFile != nil {
		br, err := lobster.NewOrderbookReader(bookFile, o.levels)
		if err != nil {
			return fmt.Errorf("%s: %w", o.orderbook, err)
		}
		rows = br
	}

	wopts := writer.Options{SegmentSize: segSize, Durability: dur,
		Logf: func(f string, a ...any) { fmt.Fprintf(env.Stderr, f+"\n", a...) }}
	var w *writer.Writer
	var m *booksnap.Maintainer
	if o.snapshot != "" {
		w, m, err = booksnap.OpenWriter(o.dir, wopts, booksnap.Config{Path: o.snapshot, Depth: o.depth,
			Capacity: max(booksnap.DefaultCapacity, int(o.instrument)+1)})
	} else {
		w, err = writer.Open(o.dir, wopts)
	}
	if err != nil {
		return err
	}
	first := w.LastSeq() + 1
	sink := &batchSink{w: w, env: env}
	start := time.Now()
	st, err := lobster.Import(msgs, rows, sink, lobster.Options{Symbol: o.symbol, Date: date, Instrument: o.instrument, Levels: o.levels})
	if err == nil {
		err = w.Publish()
	}
	secs := time.Since(start).Seconds()
	last := w.LastSeq()
	if bar != nil {
		bar.Finish()
		fmt.Fprintln(env.Stderr)
	}
	if cerr := w.Close(); err == nil {
		err = cerr
	}
	if m != nil {
		if cerr := m.Close(); err == nil {
			err = cerr
		}
	}
	if err != nil {
		return fmt.Errorf("%s: after %d messages (%d frames written, seq %d..%d): %w", msgPath, st.Messages, st.Frames, first, last, err)
	}
	fmt.Fprintf(env.Stdout, "messages=%d frames=%d entering_levels=%d seconds=%.3f msgs/s=%.0f first_seq=%d last_seq=%d\n",
		st.Messages, st.Frames, st.EnteringLevels, secs, float64(st.Messages)/max(secs, 1e-9), first, last)
	return nil
}

// batchSink stages frames and publishes every publishEvery of them: one
// cursor store per batch instead of per frame. It also stops the import
// when the command is interrupted.
type batchSink struct {
	w   *writer.Writer
	env *Env
	n   int
}

const publishEvery = 256

func (s *batchSink) Append(typ journal.MsgType, instr uint32, ts int64, p []byte) (uint64, error) {
	seq, err := s.w.Stage(typ, instr, ts, p)
	if err != nil {
		return 0, err
	}
	if s.n++; s.n%publishEvery == 0 {
		if err := s.w.Publish(); err != nil {
			return 0, err
		}
		if err := s.env.Ctx.Err(); err != nil {
			return 0, fmt.Errorf("interrupted: %w", err)
		}
	}
	return seq, nil
}

// newProgress returns a progress bar over f's bytes on stderr, or nil when
// stderr is not a terminal (a log file or a test buffer gets no bar, only
// the summary line on stdout). progressbar itself does not check.
func newProgress(env *Env, f *os.File) *progressbar.ProgressBar {
	errf, ok := env.Stderr.(*os.File)
	if !ok || !term.IsTerminal(int(errf.Fd())) {
		return nil
	}
	st, err := f.Stat()
	if err != nil {
		return nil
	}
	return progressbar.NewOptions64(st.Size(),
		progressbar.OptionSetWriter(errf),
		progressbar.OptionSetDescription("importing "+st.Name()),
		progressbar.OptionShowBytes(true),
		progressbar.OptionThrottle(100*time.Millisecond),
		progressbar.OptionSetPredictTime(true),
		progressbar.OptionFullWidth())
}
