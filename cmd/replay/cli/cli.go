// Package cli is the replay command line: flags, progress bar, the summary
// line with lateness percentiles (HdrHistogram), signals and exit codes.
// The library (package replay) carries none of these.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	hdr "github.com/HdrHistogram/hdrhistogram-go"
	"github.com/schollz/progressbar/v3"
	"github.com/spf13/pflag"
	"golang.org/x/term"

	"github.com/mdjournal/mdjournal/reader"
	"github.com/mdjournal/mdjournal/replay"
	"github.com/mdjournal/mdjournal/ring"
	"github.com/mdjournal/mdjournal/wait"
	"github.com/mdjournal/mdjournal/writer"
)

// Exit codes, as journalctl's: 0 ok, 1 a data problem or a dead peer,
// 2 a usage error.
const (
	ExitOK    = 0
	ExitData  = 1
	ExitUsage = 2
)

const usage = "replay --dir D --ring NAME [--ring-size SIZE] [--from start|seq:N|time:T] [--to seq:N|time:T]\n" +
	"              [--instrument SYM|ID,...] [--type trade,quote,...] [--speed max|1x|10x|0.5x]\n" +
	"              [--loop [--passes N] | --follow] [--tz ZONE] [--progress] [--wait spin|yield|backoff|futex]\n" +
	"              [--keep] [--linger D]"

type cliOptions struct {
	dir, ring, ringSize, from, to, speed, wait, tz string
	instruments, types                             []string
	loop, follow, progress, keep                   bool
	passes, cpu                                    int
	linger                                         time.Duration
}

func (o *cliOptions) AddFlags(fs *pflag.FlagSet) {
	fs.StringVar(&o.dir, "dir", "", "journal directory (raw and .seg.zst segments, sealed or live)")
	fs.StringVar(&o.ring, "ring", "", "ring file; a bare NAME means /dev/shm/NAME (created, or joined if a consumer waits on it)")
	fs.StringVar(&o.ringSize, "ring-size", "16MiB", "data area of a new ring: a power of two ≥ 256KiB")
	fs.StringVar(&o.from, "from", "start", "start|seq:N|time:RFC3339Nano")
	fs.StringVar(&o.to, "to", "", "stop after seq:N, or before the first frame past time:T (default: the published end)")
	fs.StringSliceVar(&o.instruments, "instrument", nil, "only these instruments: symbols or ids, comma-separated")
	fs.StringSliceVar(&o.types, "type", nil, "only these message types, comma-separated (instrument_def always passes)")
	fs.StringVar(&o.speed, "speed", "max", "max, or a factor of the recorded pace: 1x, 10x, 0.5x")
	fs.BoolVar(&o.loop, "loop", false, "start again from --from after --to (or the end)")
	fs.IntVar(&o.passes, "passes", 0, "with --loop: stop after N passes (0 = until interrupted)")
	fs.BoolVar(&o.follow, "follow", false, "after the last published frame, keep replaying live frames as the writer appends them (until --to or interrupted)")
	fs.StringVar(&o.tz, "tz", "", "zone of --from/--to times without an offset, e.g. America/New_York (default UTC); time:HH:MM[:SS] is that time on the journal's first day")
	fs.BoolVar(&o.progress, "progress", false, "progress bar on stderr (only when stderr is a terminal)")
	fs.StringVar(&o.wait, "wait", "backoff", "how to wait while the ring is full: spin|yield|backoff|futex")
	fs.IntVar(&o.cpu, "cpu", -1, "pin the replaying thread to this CPU (-1: not pinned)")
	fs.BoolVar(&o.keep, "keep", false, "leave the ring file in place at the end (default: remove the ring replay created once the consumer drained it)")
	fs.DurationVar(&o.linger, "linger", ring.DefaultLinger, "at the end, wait this long for the consumer to drain the ring; frames still unread then are an error (exit 1); 0 = do not wait nor check")
}

type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, a ...any) error { return &usageError{fmt.Sprintf(format, a...)} }

// parseCLI turns a command line into Options; every problem is a usageError.
func parseCLI(args []string, stdout io.Writer) (replay.Options, *cliOptions, error) {
	var o cliOptions
	fs := pflag.NewFlagSet("replay", pflag.ContinueOnError)
	fs.SetOutput(stdout) // pflag (ContinueOnError) writes only the --help text
	fs.SortFlags = false
	o.AddFlags(fs)
	fs.Usage = func() {
		fmt.Fprintf(stdout, "Usage: %s\n\n", usage)
		fs.PrintDefaults()
		fmt.Fprintln(stdout, "\nThe consumer (journalctl ring --name NAME) may start before or after replay: each run is a new ring\n"+
			"generation, delivered exactly once; a ring left by an earlier run is replaced (said on stderr).")
		fmt.Fprintln(stdout, "\nExit codes: 0 ok (every frame consumed, or the consumer left early), 1 data problem, dead consumer\n"+
			"or frames not consumed within --linger, 2 usage error.")
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return replay.Options{}, nil, err
		}
		return replay.Options{}, nil, usagef("%v", err)
	}
	if fs.NArg() > 0 {
		return replay.Options{}, nil, usagef("unexpected argument %q", fs.Arg(0))
	}
	if strings.TrimSpace(o.dir) == "" {
		return replay.Options{}, nil, usagef("--dir is required")
	}
	if strings.TrimSpace(o.ring) == "" {
		return replay.Options{}, nil, usagef("--ring is required")
	}
	if o.follow && o.loop {
		return replay.Options{}, nil, usagef("--follow and --loop exclude each other")
	}
	if o.linger < 0 {
		return replay.Options{}, nil, usagef("--linger %v: want ≥ 0", o.linger)
	}
	opts := replay.Options{Dir: o.dir, Ring: o.ring, Loop: o.loop, MaxPasses: o.passes, Follow: o.follow, Pin: o.cpu >= 0, CPU: o.cpu,
		KeepRing: o.keep, Linger: o.linger}
	if o.linger == 0 {
		opts.Linger = -1 // replay.Options: negative is "do not wait"
	}
	loc := time.UTC
	if o.tz != "" {
		l, err := time.LoadLocation(o.tz)
		if err != nil {
			return replay.Options{}, nil, usagef("--tz %q: %v", o.tz, err)
		}
		loc = l
	}
	firstDay := func() (time.Time, error) { return reader.FirstTime(o.dir) }
	size, err := writer.ParseSize(o.ringSize)
	if err != nil || size < replay.MinRingSize || size > ring.MaxCapacity || size&(size-1) != 0 {
		return replay.Options{}, nil, usagef("--ring-size %q: want a power of two from 256KiB to 4GiB", o.ringSize)
	}
	opts.RingSize = int(size)
	if opts.From, err = reader.ParsePositionIn(o.from, loc, firstDay); err != nil {
		return replay.Options{}, nil, usagef("--from: %v", err)
	}
	if opts.From.String() == "end" {
		return replay.Options{}, nil, usagef("--from end: nothing to replay (want start, seq:N or time:T)")
	}
	if o.to != "" {
		p, err := reader.ParsePositionIn(o.to, loc, firstDay)
		b, ok := reader.BoundOf(p)
		if err != nil || !ok {
			return replay.Options{}, nil, usagef("--to %q: want seq:N or time:T (%s)", o.to, reader.TimeSyntax)
		}
		opts.To = b
	}
	if seq, ok := opts.From.SeqValue(); ok && opts.To.Seq != 0 && opts.To.Seq < seq {
		return replay.Options{}, nil, usagef("--to seq:%d is before --from seq:%d", opts.To.Seq, seq)
	}
	for _, s := range o.instruments {
		if s = strings.TrimSpace(s); s == "" || len(s) > 16 {
			return replay.Options{}, nil, usagef("--instrument %q: want a symbol of 1..16 bytes or an id", s)
		}
		opts.Instruments = append(opts.Instruments, s)
	}
	if len(o.types) > 0 {
		if opts.Types, err = replay.ParseTypes(strings.Join(o.types, ",")); err != nil {
			return replay.Options{}, nil, usagef("--type: %v", err)
		}
	}
	if opts.Speed, err = replay.ParseSpeed(o.speed); err != nil {
		return replay.Options{}, nil, usagef("--speed: %v", err)
	}
	if o.passes < 0 || (o.passes > 0 && !o.loop) {
		return replay.Options{}, nil, usagef("--passes %d: want ≥ 1, and only with --loop", o.passes)
	}
	if opts.Wait, err = wait.Parse(o.wait); err != nil {
		return replay.Options{}, nil, usagef("--wait: %v", err)
	}
	return opts, &o, nil
}

// Main runs the replay command line and returns its exit code. SIGINT and
// SIGTERM stop the replay cleanly (the consumer still gets io.EOF).
func Main(args []string, stdout, stderr io.Writer) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		stop() // a second signal ends the process at once, even while lingering
	}()
	return Run(ctx, args, stdout, stderr)
}

// Run is Main with the caller's context (tests cancel it).
func Run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	opts, o, err := parseCLI(args, stdout)
	var ue *usageError
	switch {
	case errors.Is(err, pflag.ErrHelp):
		return ExitOK
	case errors.As(err, &ue):
		fmt.Fprintf(stderr, "replay: %s\nRun 'replay --help' for usage.\n", ue.msg)
		return ExitUsage
	}
	late := hdr.New(1, int64(time.Hour), 3)
	opts.Lateness = func(ns int64) { late.RecordValue(max(ns, 1)) }
	var bar *progressbar.ProgressBar
	if o.progress {
		bar = newBar(stderr)
		if bar != nil {
			opts.Progress = func(p replay.Progress) {
				switch {
				case p.Total > 0: // what this pass will send, counted before it
					bar.ChangeMax64(int64(p.Total))
					bar.Describe(fmt.Sprintf("replay pass %d", p.Pass))
					bar.Set64(int64(p.Sent))
				case p.EndSeq >= p.FirstSeq && p.FirstSeq > 0: // --follow: the journal's end as it was
					bar.ChangeMax64(int64(p.EndSeq - p.FirstSeq + 1))
					bar.Describe(fmt.Sprintf("replay pass %d, %d frames", p.Pass, p.Frames))
					bar.Set64(int64(p.Seq - p.FirstSeq + 1))
				}
			}
		}
	}
	r, err := replay.New(opts)
	if err != nil {
		fmt.Fprintf(stderr, "replay: %v\n", err)
		return ExitData
	}
	if le := r.Replaced(); le != nil {
		fmt.Fprintf(stderr, "replay: replaced a leftover ring at %s (generation %016x: %s); a consumer never reads it\n", le.Path, le.Generation, le.Reason)
	}
	// An interrupt ends the stream; the consumer still drains the ring
	// (Run lingers up to --linger): say so, as it may take a while.
	finished, said := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(said)
		select {
		case <-ctx.Done():
			if opts.Linger > 0 {
				fmt.Fprintf(stderr, "replay: interrupted: stream ended; waiting up to %v for the consumer to drain the ring (interrupt again to quit now)\n", opts.Linger)
			}
		case <-finished:
		}
	}()
	st, err := r.Run(ctx)
	close(finished)
	<-said
	r.Close()
	if bar != nil {
		bar.Finish()
		fmt.Fprintln(stderr)
	}
	fmt.Fprintln(stdout, Summary(&st, late))
	switch {
	case err == nil:
		return ExitOK
	case replay.IsPeerDead(err):
		fmt.Fprintf(stderr, "replay: the consumer died (ring %s): %v; %d frames written\n", r.RingPath(), err, st.Frames)
	case errors.Is(err, ring.ErrUndelivered):
		fmt.Fprintf(stderr, "replay: %v; %d frames written (start the consumer, e.g. journalctl ring --name %s, or raise --linger)\n", err, st.Frames, r.RingPath())
	default:
		fmt.Fprintf(stderr, "replay: %v\n", err)
	}
	return ExitData
}

// newBar returns a progress bar on stderr, or nil when stderr is not a
// terminal (a log file or a test buffer gets only the summary on stdout).
func newBar(stderr io.Writer) *progressbar.ProgressBar {
	f, ok := stderr.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return nil
	}
	return progressbar.NewOptions64(-1,
		progressbar.OptionSetWriter(f),
		progressbar.OptionSetDescription("replay"),
		progressbar.OptionShowCount(),
		progressbar.OptionShowIts(),
		progressbar.OptionSetItsString("seq"),
		progressbar.OptionThrottle(100*time.Millisecond),
		progressbar.OptionSetPredictTime(true),
		progressbar.OptionFullWidth())
}

// Summary is the one-line report the replay command prints; late holds the
// paced frames' lateness (nil or empty for an unpaced replay).
func Summary(s *replay.Stats, late *hdr.Histogram) string {
	var b strings.Builder
	fmt.Fprintf(&b, "frames=%d bytes=%d skipped=%d passes=%d seconds=%.3f rate=%.0f/s", s.Frames, s.Bytes, s.Skipped, s.Passes, s.Elapsed.Seconds(), s.Rate())
	if s.Speed == 0 {
		b.WriteString(" speed=max")
	} else {
		fmt.Fprintf(&b, " speed=%gx", s.Speed)
		if rr := s.RequestedRate(); rr > 0 {
			fmt.Fprintf(&b, " requested=%.0f/s achieved/requested=%.3f", rr, s.Rate()/rr)
		}
		if late != nil && late.TotalCount() > 0 {
			us := func(v int64) float64 { return float64(v) / 1e3 }
			fmt.Fprintf(&b, " late_p50=%.1fus late_p99=%.1fus late_p999=%.1fus late_max=%.1fus within_10us=%.2f%%",
				us(late.ValueAtQuantile(50)), us(late.ValueAtQuantile(99)), us(late.ValueAtQuantile(99.9)), us(late.Max()), 100*Within(late, 10*time.Microsecond))
		}
	}
	fmt.Fprintf(&b, " ended=%s", s.Ended)
	if s.Preamble > 0 {
		fmt.Fprintf(&b, " preamble=%d", s.Preamble)
	}
	return b.String()
}

// Within is the fraction of recorded lateness values at most d (1 when
// nothing was recorded).
func Within(h *hdr.Histogram, d time.Duration) float64 {
	if h == nil || h.TotalCount() == 0 {
		return 1
	}
	var n int64
	for _, b := range h.Distribution() {
		if b.To <= int64(d) {
			n += b.Count
		}
	}
	return float64(n) / float64(h.TotalCount())
}
