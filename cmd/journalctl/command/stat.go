package command

import (
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/spf13/pflag"

	"github.com/mdjournal/mdjournal/ops/inspect"
)

type statOptions struct {
	dir      string
	watch    bool
	interval time.Duration
	samples  int
	json     bool
}

func (o *statOptions) AddFlags(fs *pflag.FlagSet) {
	fs.StringVar(&o.dir, "dir", "", "journal directory")
	fs.BoolVar(&o.watch, "watch", false, "sample every --interval and show wall-clock rates (frames/s, bytes/s) between samples, until interrupted")
	fs.DurationVar(&o.interval, "interval", time.Second, "time between samples with --watch")
	fs.IntVar(&o.samples, "samples", 0, "with --watch, stop after this many reports (0 = until interrupted)")
	fs.BoolVar(&o.json, "json", false, "print JSON (one object per report)")
}

func runStat(env *Env, args []string) error {
	var o statOptions
	fs := flagSet(env, "stat", "--dir D [--watch [--interval 1s] [--samples N]] [--json]", o.AddFlags)
	if err := parseDirVerb(fs, args, &o.dir); err != nil {
		return err
	}
	if o.interval <= 0 {
		return usagef("--interval must be positive")
	}
	if o.samples < 0 {
		return usagef("--samples must be ≥ 0")
	}
	if (fs.Changed("samples") || fs.Changed("interval")) && !o.watch {
		return usagef("--interval and --samples need --watch")
	}
	prev, err := inspect.Stat(o.dir)
	if err != nil {
		return fmt.Errorf("%w (is %s a journal directory?)", err, o.dir)
	}
	if !o.watch {
		return emitStat(env.Stdout, prev, o.json)
	}
	at := time.Now()
	for n := 0; o.samples == 0 || n < o.samples; n++ {
		select {
		case <-env.Ctx.Done():
			return nil
		case <-time.After(o.interval):
		}
		cur, err := inspect.Stat(o.dir)
		if err != nil {
			return err
		}
		now := time.Now()
		cur.WithRates(prev, now.Sub(at).Seconds())
		if !o.json {
			fmt.Fprintf(env.Stdout, "--- %s\n", now.UTC().Format(time.RFC3339))
		}
		if err := emitStat(env.Stdout, cur, o.json); err != nil {
			return err
		}
		prev, at = cur, now
	}
	return nil
}

func emitStat(w io.Writer, s *inspect.StatReport, asJSON bool) error {
	if asJSON {
		return writeJSON(w, s)
	}
	src := "last minute of event time"
	if s.RateSource == "wall_clock" {
		src = "wall clock, between samples"
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "journal\t%s (id %s)\n", s.Dir, s.JournalID)
	fmt.Fprintf(tw, "cursor\tsegment %d, offset %d (%s)\n", s.ActiveSegment, s.Cursor, kib(s.Cursor))
	fmt.Fprintf(tw, "last frame\tseq %d at %s\n", s.LastSeq, dash(s.LastTS))
	fmt.Fprintf(tw, "retained\tseq %d..%d, durable to seq %d\n", s.FirstSeq, s.LastSeq, s.DurableSeq)
	fmt.Fprintf(tw, "rate\t%.1f frames/s, %s/s (%s)\n", s.FramesPerSec, kib(int64(s.BytesPerSec)), src)
	fmt.Fprintf(tw, "disk\t%s apparent, %s allocated; log data %s\n", kib(s.DiskBytes), kib(s.DiskAllocated), kib(s.LogBytes))
	fmt.Fprintf(tw, "segments\t%d raw, %d compressed, %d prepared\n", s.SegmentsRaw, s.SegmentsZst, s.SegmentsPrep)
	switch {
	case s.WriterLive:
		fmt.Fprintf(tw, "writer\tPID %d (live)\n", s.WriterPID)
	case s.WriterPID != 0:
		fmt.Fprintf(tw, "writer\tnone live (lock file names PID %d: crashed)\n", s.WriterPID)
	default:
		fmt.Fprintf(tw, "writer\tnone\n")
	}
	tw.Flush()
	if len(s.Readers) > 0 {
		fmt.Fprintln(w, "named readers:")
		printReaders(w, s.Readers)
	}
	return nil
}
