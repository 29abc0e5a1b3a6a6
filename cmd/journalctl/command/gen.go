package command

import (
	"fmt"
	"strconv"
	"time"

	"github.com/spf13/pflag"

	"github.com/mdjournal/mdjournal/synth"
	"github.com/mdjournal/mdjournal/writer"
)

type genOptions struct {
	dir         string
	count       int64
	instruments int
	rate        string
	seed        uint64
	durability  string
	segmentSize string
	clock       string
	batch       int
}

func (o *genOptions) AddFlags(fs *pflag.FlagSet) {
	fs.StringVar(&o.dir, "dir", "", "journal directory (created if missing)")
	fs.Int64Var(&o.count, "count", 1_000_000, "frames to append (instrument definitions included)")
	fs.IntVar(&o.instruments, "instruments", 8, "number of synthetic instruments")
	fs.StringVar(&o.rate, "rate", "max", "frames per second, or max")
	fs.Uint64Var(&o.seed, "seed", 1, "random seed: the same seed gives the same frames")
	fs.StringVar(&o.durability, "durability", "none", "none|async|interval:DUR[,BYTES]|sync")
	fs.StringVar(&o.segmentSize, "segment-size", "64MiB", "capacity of new segment files")
	fs.StringVar(&o.clock, "clock", "wall", "frame timestamps: wall (time of append) or synthetic (1 µs apart from 2026-01-02T14:30:00Z)")
	fs.IntVar(&o.batch, "batch", 1, "frames staged per publish")
}

func runGen(env *Env, args []string) error {
	var o genOptions
	fs := flagSet(env, "gen", "--dir D --count N [--instruments K] [--rate max|N] [--seed S] [--durability P] [--segment-size SIZE]", o.AddFlags)
	if err := parseDirVerb(fs, args, &o.dir); err != nil {
		return err
	}
	if o.count < 0 || o.instruments < 1 || o.instruments > 1<<20 || o.batch < 1 {
		return usagef("--count must be ≥ 0, --instruments in 1..1048576, --batch ≥ 1")
	}
	var rate float64
	if o.rate != "max" {
		r, err := strconv.ParseFloat(o.rate, 64)
		if err != nil || !(r >= 0.001 && r <= 1e9) { // NaN fails both comparisons
			return usagef("--rate %q: want max or a number of frames per second from 0.001 to 1e9", o.rate)
		}
		rate = r
	}
	dur, err := writer.ParseDurability(o.durability)
	if err != nil {
		return usagef("%v", err)
	}
	segSize, err := segmentSizeFlag(o.segmentSize)
	if err != nil {
		return err
	}
	synthetic := false
	switch o.clock {
	case "wall":
	case "synthetic":
		synthetic = true
	default:
		return usagef("--clock %q: want wall or synthetic", o.clock)
	}
	w, err := writer.Open(o.dir, writer.Options{SegmentSize: segSize, Durability: dur,
		Logf: func(f string, a ...any) { fmt.Fprintf(env.Stderr, f+"\n", a...) }})
	if err != nil {
		return err
	}
	g := synth.New(o.seed, o.instruments)
	start := time.Now()
	startBytes := w.Stats().Bytes
	synthTS := time.Date(2026, 1, 2, 14, 30, 0, 0, time.UTC).UnixNano()
	var n int64
	for n = 0; n < o.count; n++ {
		if n&1023 == 0 && env.Ctx.Err() != nil {
			break
		}
		if rate > 0 {
			due := start.Add(time.Duration(float64(n) / rate * float64(time.Second)))
			if d := time.Until(due); d > 0 {
				w.Publish()
				time.Sleep(d)
			}
		}
		typ, id, p := g.Next()
		ts := time.Now().UnixNano()
		if synthetic {
			ts = synthTS + n*1000
		}
		if _, err := w.Stage(typ, id, ts, p); err != nil {
			w.Close()
			return err
		}
		if (n+1)%int64(o.batch) == 0 {
			if err := w.Publish(); err != nil {
				w.Close()
				return err
			}
		}
	}
	if err := w.Publish(); err != nil {
		w.Close()
		return err
	}
	secs := time.Since(start).Seconds()
	bytes := w.Stats().Bytes - startBytes
	last := w.LastSeq()
	if err := w.Close(); err != nil {
		return err
	}
	fmt.Fprintf(env.Stdout, "frames=%d bytes=%d seconds=%.3f frames/s=%.0f last_seq=%d durability=%s\n",
		n, bytes, secs, float64(n)/secs, last, dur)
	return nil
}
