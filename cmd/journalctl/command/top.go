package command

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"text/tabwriter"
	"time"

	"github.com/spf13/pflag"
	"golang.org/x/term"

	"github.com/mdjournal/mdjournal/stats"
)

type topOptions struct {
	dir      string
	interval time.Duration
	samples  int
	json     bool
}

func (o *topOptions) AddFlags(fs *pflag.FlagSet) {
	fs.StringVar(&o.dir, "stats", "", "directory of the stages' stats files (each stage's --stats)")
	fs.DurationVar(&o.interval, "interval", time.Second, "refresh period; rates and per-interval percentiles are over it")
	fs.IntVar(&o.samples, "samples", 0, "stop after N refreshes (0 = until interrupted; 1 = print once, cumulative)")
	fs.BoolVar(&o.json, "json", false, "one JSON object per stage and refresh")
}

// topStage is what top prints of one stage.
type topStage struct {
	Stage      string       `json:"stage"`
	PID        uint32       `json:"pid"`
	State      string       `json:"state"` // alive, exited (closed cleanly), dead (no heartbeat)
	File       string       `json:"file"`
	Counters   []topCounter `json:"counters"`
	Histograms []topHist    `json:"histograms"`
	Error      string       `json:"error,omitempty"`
}

type topCounter struct {
	Label  string  `json:"label"`
	Value  uint64  `json:"value"`
	PerSec float64 `json:"per_sec"`
}

// topHist's percentiles are over the last interval when values arrived in
// it, else over the stage's life (Window says which).
type topHist struct {
	Label  string  `json:"label"`
	Count  uint64  `json:"count"`
	PerSec float64 `json:"per_sec"`
	Window string  `json:"window"` // "interval" or "cumulative"
	P50    uint64  `json:"p50"`
	P99    uint64  `json:"p99"`
	P999   uint64  `json:"p999"`
	Max    uint64  `json:"max"`
}

// runTop shows every stage of a pipeline live, like AeronStat: counters
// with their rates, latency histograms with percentiles.
func runTop(env *Env, args []string) error {
	var o topOptions
	fs := flagSet(env, "top", "--stats DIR [--interval 1s] [--samples N] [--json]", o.AddFlags)
	if err := parse(fs, args); err != nil {
		return err
	}
	if err := noArgs(fs); err != nil {
		return err
	}
	if o.dir == "" {
		return usagef("--stats DIR is required")
	}
	if o.interval < 10*time.Millisecond {
		return usagef("--interval %s: want at least 10ms", o.interval)
	}
	if o.samples < 0 {
		return usagef("--samples %d: want ≥ 0", o.samples)
	}
	if st, err := os.Stat(o.dir); err != nil || !st.IsDir() {
		return fmt.Errorf("--stats %s: not a directory (%v)", o.dir, err)
	}
	clearScreen := false
	if f, ok := env.Stdout.(*os.File); ok && !o.json && o.samples != 1 && term.IsTerminal(int(f.Fd())) {
		clearScreen = true
	}
	prev := map[string]*stats.Snapshot{}
	prevAt := time.Now()
	for n := 0; o.samples == 0 || n < o.samples; n++ {
		if n > 0 {
			select {
			case <-env.Ctx.Done():
				return nil
			case <-time.After(o.interval):
			}
		}
		now := time.Now()
		paths, err := stats.List(o.dir)
		if err != nil {
			return err
		}
		var rows []topStage
		cur := map[string]*stats.Snapshot{}
		for _, p := range paths {
			s, err := stats.Read(p)
			if err != nil {
				rows = append(rows, topStage{File: filepath.Base(p), State: "unreadable", Error: err.Error()})
				continue
			}
			cur[p] = s
			rows = append(rows, topRow(p, s, prev[p], now.Sub(prevAt).Seconds(), now))
		}
		prev, prevAt = cur, now
		var out bytes.Buffer
		if o.json {
			enc := json.NewEncoder(&out) // one object per line
			for _, r := range rows {
				enc.Encode(r)
			}
		} else {
			if clearScreen {
				out.WriteString("\x1b[H\x1b[2J")
			}
			printTop(&out, o.dir, now, rows)
		}
		if _, err := env.Stdout.Write(out.Bytes()); err != nil {
			return err
		}
	}
	return nil
}

func topRow(path string, s, prev *stats.Snapshot, secs float64, now time.Time) topStage {
	r := topStage{Stage: s.Stage, PID: s.PID, File: filepath.Base(path), Counters: []topCounter{}, Histograms: []topHist{}}
	switch {
	case s.Alive(now):
		r.State = "alive"
	case s.PID == 0:
		r.State = "exited"
	default:
		r.State = "dead" // no heartbeat for a second: killed or hung
	}
	if prev != nil && prev.PID != s.PID {
		prev = nil // another process of the stage: its values started over
	}
	for i, c := range s.Counters {
		tc := topCounter{Label: c.Label, Value: c.Value}
		if prev != nil && i < len(prev.Counters) && secs > 0 && c.Value >= prev.Counters[i].Value {
			tc.PerSec = float64(c.Value-prev.Counters[i].Value) / secs
		}
		r.Counters = append(r.Counters, tc)
	}
	for i := range s.Histograms {
		h := &s.Histograms[i]
		th := topHist{Label: h.Label, Count: h.Count, Window: "cumulative"}
		win := h
		if prev != nil && i < len(prev.Histograms) && h.Count > prev.Histograms[i].Count {
			d := h.Sub(&prev.Histograms[i])
			win, th.Window = &d, "interval"
			if secs > 0 {
				th.PerSec = float64(d.Count) / secs
			}
		}
		th.P50, th.P99, th.P999, th.Max = win.Quantile(0.5), win.Quantile(0.99), win.Quantile(0.999), h.Max
		r.Histograms = append(r.Histograms, th)
	}
	return r
}

func printTop(w io.Writer, dir string, now time.Time, rows []topStage) {
	fmt.Fprintf(w, "mdjournal top — %s — %s\n", dir, now.UTC().Format(time.RFC3339))
	if len(rows) == 0 {
		fmt.Fprintln(w, "(no stats files yet)")
		return
	}
	for _, r := range rows {
		if r.Error != "" {
			fmt.Fprintf(w, "\n%s: %s\n", r.File, r.Error)
			continue
		}
		fmt.Fprintf(w, "\n%s  pid %d  %s\n", r.Stage, r.PID, r.State)
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
		for _, c := range r.Counters {
			fmt.Fprintf(tw, "  %s\t%d\t%.0f/s\t\n", c.Label, c.Value, c.PerSec)
		}
		if len(r.Histograms) > 0 {
			fmt.Fprintf(tw, "  latency (ns)\tcount\trate\tp50\tp99\tp99.9\tmax\t\n")
		}
		for _, h := range r.Histograms {
			fmt.Fprintf(tw, "  %s (%s)\t%d\t%.0f/s\t%d\t%d\t%d\t%d\t\n", h.Label, h.Window, h.Count, h.PerSec, h.P50, h.P99, h.P999, h.Max)
		}
		tw.Flush()
	}
}
