package command

import (
	"fmt"
	"os"
	"strings"

	"github.com/spf13/pflag"

	"github.com/mdjournal/mdjournal/internal/clock"
	"github.com/mdjournal/mdjournal/journal"
	"github.com/mdjournal/mdjournal/reader"
	"github.com/mdjournal/mdjournal/writer"
)

// benchOpen times opening an existing, cleanly closed journal: the writer
// (lock, recovery check, prepare) and a reader positioned at the end.
func benchOpen(env *Env, args []string) error {
	var dir string
	var rounds int
	fs := flagSet(env, "bench open", "--dir D [--rounds N]", func(fs *pflag.FlagSet) {
		fs.StringVar(&dir, "dir", "", "an existing journal")
		fs.IntVar(&rounds, "rounds", 11, "rounds; the median is reported")
	})
	if err := parse(fs, args); err != nil {
		return err
	}
	if err := requireDir(dir); err != nil {
		return err
	}
	if rounds < 1 {
		return usagef("--rounds ≥ 1")
	}
	var wOpen, rOpen []float64
	var size int64
	var segs int
	for i := 0; i < rounds; i++ {
		t0 := clock.Nanotime()
		w, err := writer.Open(dir, writer.Options{})
		if err != nil {
			return err
		}
		t1 := clock.Nanotime()
		if err := w.Close(); err != nil {
			return err
		}
		t2 := clock.Nanotime()
		r, err := reader.Open(dir, reader.Options{From: reader.End()})
		if err != nil {
			return err
		}
		t3 := clock.Nanotime()
		r.Close()
		wOpen = append(wOpen, float64(t1-t0)/1e6)
		rOpen = append(rOpen, float64(t3-t2)/1e6)
	}
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		if strings.HasSuffix(e.Name(), journal.SegmentExt) {
			segs++
			if info, err := e.Info(); err == nil {
				size += info.Size()
			}
		}
	}
	fmt.Fprintf(env.Stdout, "journal %s: %d segments, %.2f GiB\nwriter open (clean): median %.2f ms of %d\nreader open at end: median %.2f ms of %d\n",
		dir, segs, float64(size)/(1<<30), median(wOpen), rounds, median(rOpen), rounds)
	return nil
}
