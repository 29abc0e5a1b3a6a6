package command

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/pflag"
	"golang.org/x/term"

	"github.com/mdjournal/mdjournal/booksnap"
	"github.com/mdjournal/mdjournal/journal"
	"github.com/mdjournal/mdjournal/lobster"
	"github.com/mdjournal/mdjournal/reader"
	"github.com/mdjournal/mdjournal/snapshot"
	"github.com/mdjournal/mdjournal/writer"
)

type importOptions struct {
	dir         string
	format      string
	symbol      string
	date        string
	orderbooks  []string
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
	fs.StringVar(&o.symbol, "symbol", "", "instrument symbol, 1..16 bytes (default: from the LOBSTER file name; one message file only)")
	fs.StringVar(&o.date, "date", "", "trading day YYYY-MM-DD (default: from the LOBSTER file name; LOBSTER times are seconds after its midnight, New York time)")
	fs.StringArrayVar(&o.orderbooks, "orderbook", nil, "LOBSTER orderbook file, once per message file in the same order (default: the file LOBSTER names beside each message file)")
	fs.IntVar(&o.levels, "levels", 0, "levels of the orderbook files (0 = from their column count)")
	fs.Uint32Var(&o.instrument, "instrument", 0, "instrument id (one message file only; default: the symbol's id in the journal, or the next free id)")
	fs.StringVar(&o.snapshot, "snapshot", "", "keep this order-book snapshot file up to date while importing")
	fs.IntVar(&o.depth, "depth", booksnap.DefaultDepth, "levels per side in the snapshot (with --snapshot)")
	fs.StringVar(&o.durability, "durability", "none", "none|async|interval:DUR[,BYTES]|sync")
	fs.StringVar(&o.segmentSize, "segment-size", "64MiB", "capacity of new segment files")
}

// importInput is one message file and what goes with it.
type importInput struct {
	msgPath, bookPath string
	symbol            string
	date              lobster.Date
	id                uint32
	msgFile, bookFile *os.File
	stream            *lobster.Stream
}

func runImport(env *Env, args []string) error {
	var o importOptions
	fs := flagSet(env, "import", "--dir D [--format lobster] MESSAGE.csv[.gz]... [--orderbook ORDERBOOK.csv[.gz]]... [--symbol SYM] [--date YYYY-MM-DD] [--instrument ID] [--snapshot FILE --depth N]", o.AddFlags)
	if err := parse(fs, args); err != nil {
		return err
	}
	if err := requireDir(o.dir); err != nil {
		return err
	}
	if fs.NArg() == 0 {
		return usagef("at least one MESSAGE file is required")
	}
	if o.format != "lobster" {
		return usagef("--format %q: the only format is lobster", o.format)
	}
	many := fs.NArg() > 1
	if many && fs.Changed("symbol") {
		return usagef("--symbol names one message file's instrument; with %d files the symbols come from their LOBSTER names", fs.NArg())
	}
	if many && fs.Changed("instrument") {
		return usagef("--instrument sets one message file's id; with %d files each symbol gets its own", fs.NArg())
	}
	if fs.Changed("symbol") && (o.symbol == "" || len(o.symbol) > journal.SymbolLen) {
		return usagef("--symbol %q: want 1..%d bytes", o.symbol, journal.SymbolLen)
	}
	if fs.Changed("instrument") && o.instrument == 0 {
		return usagef("--instrument 0: ids start at 1")
	}
	var date lobster.Date
	if o.date != "" {
		d, err := lobster.ParseDate(o.date)
		if err != nil {
			return usagef("--date %q: want YYYY-MM-DD", o.date)
		}
		date = d
	}
	if len(o.orderbooks) > 0 && len(o.orderbooks) != fs.NArg() {
		return usagef("%d --orderbook files for %d message files: give one per message file, in the same order, or none", len(o.orderbooks), fs.NArg())
	}
	if o.levels < 0 || o.levels > lobster.MaxLevels {
		return usagef("--levels %d: want 0 (from the file) to %d", o.levels, lobster.MaxLevels)
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
	segSize, err := segmentSizeFlag(o.segmentSize)
	if err != nil {
		return err
	}

	// What each file is: symbol and date from the flags or the LOBSTER
	// name (a contradiction is refused), the orderbook named or found.
	inputs := make([]*importInput, fs.NArg())
	for i, path := range fs.Args() {
		in := &importInput{msgPath: path, symbol: o.symbol, date: date, id: o.instrument}
		name, nerr := lobster.ParseFileName(path)
		switch {
		case nerr == nil && name.Kind != "message":
			return usagef("%s is an orderbook file: give the message file (its orderbook is found beside it)", path)
		case nerr != nil && (in.symbol == "" || in.date.IsZero()):
			return usagef("%v: give --symbol and --date", nerr)
		case nerr == nil:
			if in.symbol == "" {
				in.symbol = name.Symbol
			}
			if in.date.IsZero() {
				in.date = name.Date
			} else if in.date != name.Date {
				return usagef("--date %s contradicts %s, which is named for %s", in.date, filepath.Base(path), name.Date)
			}
		}
		if len(in.symbol) > journal.SymbolLen {
			return usagef("%s: symbol %q is longer than %d bytes: give --symbol", path, in.symbol, journal.SymbolLen)
		}
		if len(o.orderbooks) > 0 {
			in.bookPath = o.orderbooks[i]
		} else if ob, err := lobster.OrderbookName(path); err == nil {
			if _, err := os.Stat(ob); err == nil {
				in.bookPath = ob
			}
		}
		if in.bookPath == "" {
			fmt.Fprintf(env.Stderr, "journalctl import: warning: no orderbook file for %s: levels that enter the visible depth when one empties cannot be known, so deeper book levels will be missing\n", path)
		}
		inputs[i] = in
	}

	// Open the inputs before the journal: a missing file must not leave an
	// empty journal behind.
	for _, in := range inputs {
		if in.msgFile, err = os.Open(in.msgPath); err != nil {
			return err // *PathError names the file
		}
		defer in.msgFile.Close()
		if in.bookPath != "" {
			if in.bookFile, err = os.Open(in.bookPath); err != nil {
				return err
			}
			defer in.bookFile.Close()
		}
	}

	// Pass 1: read every input to its end (gzip checksums, row counts, the
	// orderbook's last row) without touching the journal, so a bad input
	// leaves the journal exactly as it was.
	check := &spanSink{}
	if err := importPass(env, inputs, o.levels, check, "checking"); err != nil {
		return fmt.Errorf("%w (nothing was written to the journal)", err)
	}
	if err := env.Ctx.Err(); err != nil {
		return fmt.Errorf("interrupted while checking the input: %w (nothing was written)", err)
	}

	// Instrument ids: a symbol the journal knows keeps its id, a new one
	// takes the next free id; a symbol never takes another's id.
	// (Read-only: a refused import leaves every byte of the journal as it
	// was.)
	cat, err := reader.JournalCatalog(o.dir)
	if errors.Is(err, reader.ErrNoJournal) {
		cat, err = journal.NewCatalog(), nil
	}
	if err != nil {
		return err
	}
	if err := assignIDs(inputs, cat); err != nil {
		return err
	}
	// A day already in the journal is not imported twice (a re-run after
	// a success, or after a failure that left part of it).
	if err := refuseDuplicates(o.dir, inputs, check, cat); err != nil {
		return err
	}

	wopts := writer.Options{SegmentSize: segSize, Durability: dur,
		Logf: func(f string, a ...any) { fmt.Fprintf(env.Stderr, f+"\n", a...) }}
	var w *writer.Writer
	var m *booksnap.Maintainer
	if o.snapshot != "" {
		// Every id the journal holds and every id imported gets a slot.
		capacity := booksnap.DefaultCapacity
		for _, in := range inputs {
			capacity = max(capacity, int(in.id)+1)
		}
		for _, in := range cat.All() {
			capacity = max(capacity, int(in.ID)+1)
		}
		if capacity > snapshot.MaxCapacity {
			return fmt.Errorf("instrument id %d does not fit a snapshot (ids below %d)", capacity-1, snapshot.MaxCapacity)
		}
		w, m, err = booksnap.OpenWriter(o.dir, wopts, booksnap.Config{Path: o.snapshot, Depth: o.depth, Capacity: capacity})
	} else {
		w, err = writer.Open(o.dir, wopts)
	}
	if err != nil {
		return err
	}
	// Another writer may have added definitions since the catalogue was
	// read: the ids must still hold.
	if err := checkIDs(inputs, w.Catalog()); err != nil {
		w.Close()
		if m != nil {
			m.Close()
		}
		return err
	}
	// Pass 2: the same inputs, into the journal.
	first := w.LastSeq() + 1
	sink := &batchSink{w: w, env: env}
	start := time.Now()
	for _, in := range inputs {
		for _, f := range []*os.File{in.msgFile, in.bookFile} {
			if f != nil {
				if _, err := f.Seek(0, io.SeekStart); err != nil {
					w.Close()
					return err
				}
			}
		}
	}
	err = importPass(env, inputs, o.levels, sink, "importing")
	if err == nil {
		err = w.Publish()
	}
	secs := time.Since(start).Seconds()
	last := w.LastSeq()
	if cerr := w.Close(); err == nil {
		err = cerr
	}
	if m != nil {
		if cerr := m.Close(); err == nil {
			err = cerr
		}
	}
	if err != nil {
		if last >= first {
			return fmt.Errorf("%w: seq %d..%d of this import were committed and stay in the journal (a published sequence number is never withdrawn); a re-run is refused as a duplicate", err, first, last)
		}
		return err
	}
	var total lobster.Stats
	for _, in := range inputs {
		st := in.stream.Stats()
		if many {
			fmt.Fprintf(env.Stdout, "symbol=%s instrument=%d messages=%d frames=%d halts=%d entering_levels=%d file=%s\n",
				in.symbol, in.id, st.Messages, st.Frames, st.Halts, st.EnteringLevels, in.msgPath)
		}
		total.Messages += st.Messages
		total.Frames += st.Frames
		total.EnteringLevels += st.EnteringLevels
	}
	fmt.Fprintf(env.Stdout, "messages=%d frames=%d entering_levels=%d seconds=%.3f msgs/s=%.0f first_seq=%d last_seq=%d\n",
		total.Messages, total.Frames, total.EnteringLevels, secs, float64(total.Messages)/max(secs, 1e-9), first, last)
	return nil
}

// importPass reads every input from its start and merges them into sink.
// The checking pass gives input i the instrument id i+1 (the ids are not
// assigned yet; spanSink tells the inputs apart by it).
func importPass(env *Env, inputs []*importInput, levels int, sink lobster.Sink, what string) error {
	_, checking := sink.(*spanSink)
	var size int64
	for _, in := range inputs {
		if st, err := in.msgFile.Stat(); err == nil {
			size += st.Size()
		}
	}
	bar := newProgress(env, size, what)
	streams := make([]*lobster.Stream, len(inputs))
	for i, in := range inputs {
		var src io.Reader = in.msgFile
		if bar != nil {
			src = io.TeeReader(in.msgFile, bar)
		}
		mr, err := lobster.NewMessageReader(src)
		if err != nil {
			return fmt.Errorf("%s: %w", in.msgPath, err)
		}
		var rows lobster.OrderbookSource
		if in.bookFile != nil {
			br, err := lobster.NewOrderbookReader(in.bookFile, levels)
			if err != nil {
				return fmt.Errorf("%s: %w", in.bookPath, err)
			}
			rows = namedRows{in.bookPath, br}
		}
		id := in.id
		if checking {
			id = uint32(i + 1)
		}
		s, err := lobster.NewStream(namedMessages{in.msgPath, mr}, rows, lobster.Options{Symbol: in.symbol, Date: in.date, Instrument: id, Levels: levels})
		if err != nil {
			return fmt.Errorf("%s: %w", in.msgPath, err)
		}
		in.stream, streams[i] = s, s
	}
	err := lobster.Merge(streams, sink)
	if bar != nil {
		bar.Finish()
		fmt.Fprintln(env.Stderr)
	}
	return err
}

// assignIDs gives every input its instrument id from the journal's
// catalogue: an explicit id must not belong to another symbol, and the
// symbol must not already have another id; without one, a known symbol
// keeps its id and a new symbol takes the next free one.
func assignIDs(inputs []*importInput, cat *journal.Catalog) error {
	next := uint32(1)
	for _, in := range cat.All() {
		next = max(next, in.ID+1)
	}
	taken := map[string]uint32{}
	for _, in := range inputs {
		known, ok := cat.BySymbol(in.symbol)
		switch {
		case in.id != 0:
			if other, ok := cat.Lookup(in.id); ok && other.Symbol != "" && other.Symbol != in.symbol {
				return fmt.Errorf("--instrument %d is %s in this journal, not %s", in.id, other.Symbol, in.symbol)
			}
			if ok && known.ID != in.id {
				return fmt.Errorf("%s is instrument %d in this journal, not %d", in.symbol, known.ID, in.id)
			}
		case ok:
			in.id = known.ID
		case taken[in.symbol] != 0:
			in.id = taken[in.symbol]
		default:
			in.id = next
			next++
		}
		taken[in.symbol] = in.id
	}
	return nil
}

// checkIDs fails if an input's id has meanwhile become another symbol's.
func checkIDs(inputs []*importInput, cat *journal.Catalog) error {
	for _, in := range inputs {
		if other, ok := cat.Lookup(in.id); ok && other.Symbol != "" && other.Symbol != in.symbol {
			return fmt.Errorf("instrument %d became %s while this import was checked; nothing was written: run it again", in.id, other.Symbol)
		}
	}
	return nil
}

// spanSink is the checking pass's sink: it keeps the time span of every
// input (frames carry the input's index + 1 as their instrument in that
// pass).
type spanSink struct {
	first, last map[uint32]int64
}

func (s *spanSink) Append(_ journal.MsgType, instr uint32, ts int64, _ []byte) (uint64, error) {
	if s.first == nil {
		s.first, s.last = map[uint32]int64{}, map[uint32]int64{}
	}
	if _, ok := s.first[instr]; !ok {
		s.first[instr] = ts
	}
	s.last[instr] = ts
	return 0, nil
}

// refuseDuplicates fails if the journal already holds a frame of an
// input's instrument (other than a re-stated definition) within the time
// span of that input.
func refuseDuplicates(dir string, inputs []*importInput, spans *spanSink, cat *journal.Catalog) error {
	type span struct {
		first, last int64
		in          *importInput
	}
	check := map[uint32][]span{}
	for i, in := range inputs {
		if _, known := cat.Lookup(in.id); !known {
			continue
		}
		k := uint32(i + 1)
		if first, ok := spans.first[k]; ok {
			check[in.id] = append(check[in.id], span{first, spans.last[k], in})
		}
	}
	if len(check) == 0 {
		return nil
	}
	r, err := reader.Open(dir, reader.Options{})
	if err != nil {
		return err
	}
	defer r.Close()
	for {
		f, ok, err := r.TryNext()
		if err != nil {
			return err
		}
		if !ok {
			return nil
		}
		if f.Flags&journal.FrameRestated != 0 {
			continue
		}
		for _, sp := range check[f.Instrument] {
			if f.TS >= sp.first && f.TS <= sp.last {
				return fmt.Errorf("the journal already holds %s frames within the span of %s (seq %d at %s): the day looks imported already; nothing was written",
					sp.in.symbol, sp.in.msgPath, f.Seq, time.Unix(0, f.TS).UTC().Format(time.RFC3339Nano))
			}
		}
	}
}

// namedMessages and namedRows put the file name on a source's errors.
type namedMessages struct {
	path string
	src  lobster.MessageSource
}

func (n namedMessages) Next(m *lobster.Message) error { return named(n.path, n.src.Next(m)) }

// Rounded passes the reader's count of rounded times through.
func (n namedMessages) Rounded() int {
	if r, ok := n.src.(interface{ Rounded() int }); ok {
		return r.Rounded()
	}
	return 0
}

type namedRows struct {
	path string
	src  lobster.OrderbookSource
}

func (n namedRows) Next(r *lobster.Row) error { return named(n.path, n.src.Next(r)) }

func named(path string, err error) error {
	if err == nil || errors.Is(err, io.EOF) {
		return err
	}
	return fmt.Errorf("%s: %w", path, err)
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
func newProgress(env *Env, size int64, what string) *progressbar.ProgressBar {
	errf, ok := env.Stderr.(*os.File)
	if !ok || !term.IsTerminal(int(errf.Fd())) {
		return nil
	}
	return progressbar.NewOptions64(size,
		progressbar.OptionSetWriter(errf),
		progressbar.OptionSetDescription(what),
		progressbar.OptionShowBytes(true),
		progressbar.OptionThrottle(100*time.Millisecond),
		progressbar.OptionSetPredictTime(true),
		progressbar.OptionFullWidth())
}
