package pipeline

import (
	"compress/gzip"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/mdjournal/mdjournal/journal"
	"github.com/mdjournal/mdjournal/lobster"
	"github.com/mdjournal/mdjournal/synth"
)

// Sink receives a source's frames in order (the feed stage is one). The
// payload is valid only during the call.
type Sink interface {
	Append(typ journal.MsgType, instrument uint32, ts int64, payload []byte) (seq uint64, err error)
}

// Source is a built-in market-data source: Emit pushes every frame, in
// order, into sink and returns when the source is exhausted or sink fails.
// The same source always emits the same frames: the feed relies on it to
// resume after a restart by skipping the frames it already wrote.
type Source interface {
	Emit(sink Sink) error
	// Name says what the source is, for logs.
	Name() string
}

// LOBSTERSource is the LOBSTER day in dir: per symbol, the message file of
// the deepest orderbook file beside it (for example AAPL level 1, AMZN 5,
// GOOG 10), .csv or .csv.gz, merged in time order, instrument ids 1..n in
// symbol order. Gzip trailers are checked as the files are read.
func LOBSTERSource(dir string) (Source, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	best := map[string]lobster.FileName{}
	paths := map[string]string{}
	for _, e := range ents {
		p := filepath.Join(dir, e.Name())
		if !strings.Contains(e.Name(), "_message_") {
			continue
		}
		fn, err := lobster.ParseFileName(p)
		if err != nil {
			continue
		}
		ob, err := lobster.OrderbookName(p)
		if err != nil {
			continue
		}
		if _, err := os.Stat(ob); err != nil {
			continue
		}
		if cur, ok := best[fn.Symbol]; !ok || fn.Levels > cur.Levels {
			best[fn.Symbol], paths[fn.Symbol] = fn, p
		}
	}
	if len(best) == 0 {
		return nil, fmt.Errorf("%s: no LOBSTER message/orderbook pair", dir)
	}
	syms := make([]string, 0, len(best))
	for s := range best {
		syms = append(syms, s)
	}
	sort.Strings(syms)
	src := &lobsterSource{dir: dir}
	for _, s := range syms {
		src.files = append(src.files, lobsterFile{msg: paths[s], name: best[s]})
	}
	return src, nil
}

type lobsterFile struct {
	msg  string
	name lobster.FileName
}

type lobsterSource struct {
	dir   string
	files []lobsterFile
}

func (s *lobsterSource) Name() string {
	var b strings.Builder
	for i, f := range s.files {
		if i > 0 {
			b.WriteString(",")
		}
		fmt.Fprintf(&b, "%s(%d)", f.name.Symbol, f.name.Levels)
	}
	return "lobster " + s.dir + " " + b.String()
}

// openMaybeGzip opens path, through gzip when it ends in .gz.
func openMaybeGzip(path string) (io.Reader, func() error, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, err
	}
	if !strings.HasSuffix(path, ".gz") {
		return f, f.Close, nil
	}
	z, err := gzip.NewReader(f)
	if err != nil {
		f.Close()
		return nil, nil, fmt.Errorf("%s: %w", path, err)
	}
	return z, func() error { z.Close(); return f.Close() }, nil
}

func (s *lobsterSource) Emit(sink Sink) error {
	var streams []*lobster.Stream
	for i, f := range s.files {
		mr, mclose, err := openMaybeGzip(f.msg)
		if err != nil {
			return err
		}
		defer mclose()
		ob, _ := lobster.OrderbookName(f.msg)
		br, bclose, err := openMaybeGzip(ob)
		if err != nil {
			return err
		}
		defer bclose()
		msgs, err := lobster.NewMessageReader(mr)
		if err != nil {
			return fmt.Errorf("%s: %w", f.msg, err)
		}
		rows, err := lobster.NewOrderbookReader(br, f.name.Levels)
		if err != nil {
			return fmt.Errorf("%s: %w", ob, err)
		}
		st, err := lobster.NewStream(msgs, rows, lobster.Options{Symbol: f.name.Symbol, Date: f.name.Date,
			Instrument: uint32(i + 1), Levels: f.name.Levels})
		if err != nil {
			return fmt.Errorf("%s: %w", f.msg, err)
		}
		streams = append(streams, st)
	}
	return lobster.Merge(streams, sink)
}

// SynthSource is package synth's deterministic stream: instruments
// instruments, frames frames, event times start + i*step.
func SynthSource(seed uint64, instruments, frames int, start time.Time, step time.Duration) Source {
	return &synthSource{seed: seed, n: instruments, frames: frames, start: start.UnixNano(), step: int64(step)}
}

type synthSource struct {
	seed        uint64
	n, frames   int
	start, step int64
}

func (s *synthSource) Name() string {
	return fmt.Sprintf("synth seed %d, %d instruments, %d frames", s.seed, s.n, s.frames)
}

func (s *synthSource) Emit(sink Sink) error {
	g := synth.New(s.seed, s.n)
	for i := 0; i < s.frames; i++ {
		typ, instr, p := g.Next()
		if _, err := sink.Append(typ, instr, s.start+int64(i)*s.step, p); err != nil {
			return err
		}
	}
	return nil
}
