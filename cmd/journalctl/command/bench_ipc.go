package command

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/pflag"

	"github.com/mdjournal/mdjournal/cmd/journalctl/internal/benchkit"
)

type benchIPCOptions struct {
	messages   int
	samples    int
	size       int
	gap        time.Duration
	rounds     int
	cpus       string
	transports string
	json       bool
	plot       string
	quiet      bool
}

func (o *benchIPCOptions) AddFlags(fs *pflag.FlagSet) {
	fs.IntVar(&o.messages, "messages", 100_000, "messages per throughput stream (64 B and 1 KiB)")
	fs.IntVar(&o.samples, "samples", 0, "measured ping-pongs per transport per round (default messages/4)")
	fs.IntVar(&o.size, "size", 64, "ping-pong message bytes (≥ 16)")
	fs.DurationVar(&o.gap, "gap", 2*time.Microsecond, "pause between pings")
	fs.IntVar(&o.rounds, "rounds", 3, "rounds; all transports run once per round, interleaved")
	fs.StringVar(&o.cpus, "cpus", "", "pin the two processes: A,B (default: the first two CPUs available; none: unpinned)")
	fs.StringVar(&o.transports, "transports", strings.Join(benchkit.Transports, ","), "comma-separated subset (ratios need raw, the floor)")
	fs.BoolVar(&o.json, "json", false, "print the report as one JSON object")
	fs.StringVar(&o.plot, "plot", "", "write an SVG latency-percentile chart to this file")
	fs.BoolVar(&o.quiet, "quiet", false, "no progress lines on stderr")
}

// ipcTarget is one of the design targets (README, Benchmarks), evaluated
// on this run.
type ipcTarget struct {
	What  string  `json:"what"`
	Value float64 `json:"value"`
	Want  string  `json:"want"`
	Met   bool    `json:"met"`
}

type ipcJSON struct {
	Command string `json:"command"`
	*benchkit.IPCReport
	Targets []ipcTarget `json:"targets"`
}

func benchIPC(env *Env, args []string) error {
	var o benchIPCOptions
	fs := flagSet(env, "bench ipc", "[--messages N] [--size B] [--cpus A,B] [--rounds R] [--transports T,...] [--json] [--plot FILE.svg]", o.AddFlags)
	if err := parse(fs, args); err != nil {
		return err
	}
	if err := noArgs(fs); err != nil {
		return err
	}
	if o.samples == 0 {
		o.samples = max(o.messages/4, 100)
	}
	if o.messages < 100 || o.samples < 100 || o.size < benchkit.MinMessage || o.size > 8192 || o.gap < 0 || o.rounds < 1 {
		return usagef("--messages ≥ 100, --samples ≥ 100, --size %d..8192, --gap ≥ 0, --rounds ≥ 1", benchkit.MinMessage)
	}
	cpuA, cpuB, err := parseCPUs(o.cpus, true)
	if err != nil {
		return err
	}
	want := map[string]bool{}
	for _, t := range strings.Split(o.transports, ",") {
		t = strings.TrimSpace(t)
		if !benchkit.KnownTransport(t) {
			return usagef("--transports: unknown %q (want some of %s)", t, strings.Join(benchkit.Transports, ","))
		}
		if want[t] {
			return usagef("--transports: %s twice", t)
		}
		want[t] = true
	}
	var ts []string // in table order: raw, the floor, first
	for _, t := range benchkit.Transports {
		if want[t] {
			ts = append(ts, t)
		}
	}
	self, err := selfCommand()
	if err != nil {
		return err
	}
	var progress io.Writer
	if !o.quiet {
		progress = env.Stderr
	}
	rep, err := benchkit.RunIPC(env.Ctx, benchkit.IPCOptions{Self: self, Transports: ts, Messages: o.messages, Samples: o.samples,
		Size: o.size, GapNS: o.gap.Nanoseconds(), Rounds: o.rounds, CPUParent: cpuA, CPUChild: cpuB, Progress: progress})
	if err != nil {
		return err
	}
	targets := ipcTargets(rep)
	if o.plot != "" {
		var series []benchkit.Latency
		for _, r := range rep.Rows {
			if r.Error == "" {
				series = append(series, r.Latency)
			}
		}
		f, err := os.Create(o.plot)
		if err != nil {
			return err
		}
		title := fmt.Sprintf("IPC one-way latency, %d B ping-pong RTT/2 — %s, %d cores", rep.Size, rep.Machine.CPU, rep.Machine.Cores)
		if err := benchkit.PlotLatency(f, title, series); err != nil {
			f.Close()
			return err
		}
		if err := f.Close(); err != nil {
			return err
		}
	}
	failed := false
	for _, r := range rep.Rows {
		failed = failed || r.Error != ""
	}
	if o.json {
		if err := json.NewEncoder(env.Stdout).Encode(ipcJSON{Command: "journalctl bench ipc " + strings.Join(args, " "), IPCReport: rep, Targets: targets}); err != nil {
			return err
		}
	} else {
		printIPC(env.Stdout, rep, targets)
	}
	if failed {
		fmt.Fprintln(env.Stderr, "journalctl bench: some transports failed (see their rows)")
		return errDataProblem
	}
	return nil
}

func printIPC(w io.Writer, rep *benchkit.IPCReport, targets []ipcTarget) {
	m := rep.Machine
	fmt.Fprintf(w, "%s, %d cores, kernel %s, load average %s; cpus %v\n", m.CPU, m.Cores, m.Kernel, m.LoadAvg, cpusText(rep.CPUs))
	fmt.Fprintf(w, "latency: %d B ping-pong, one-way = RTT/2, %d rounds × %d samples (+%d warm-up), %v gap; throughput: %d-message one-way stream, median of %d rounds\n\n",
		rep.Size, rep.Rounds, rep.Samples, rep.Warmup, time.Duration(rep.GapNS), rep.Messages, rep.Rounds)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprint(tw, "transport\tp50\tp99\tp99.9\tmax\tp50 ×floor\tstamp p50\t64 B msg/s\tMB/s\t×floor\t1 KiB msg/s\tMB/s\t×floor\t\n")
	for _, r := range rep.Rows {
		if r.Error != "" {
			fmt.Fprintf(tw, "%s\tfailed: %s\t\t\t\t\t\t\t\t\t\t\t\t\n", r.Transport, r.Error)
			continue
		}
		l := r.Latency
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%.2fx\t%s\t", r.Transport, ns(l.P50), ns(l.P99), ns(l.P999), ns(l.Max), r.P50VsFloor, ns(r.Stamp.P50))
		for _, t := range r.Throughput {
			fmt.Fprintf(tw, "%s\t%.0f\t%.3fx\t", rate(t.MsgsPerS), t.MBPerS, t.VsFloor)
		}
		fmt.Fprint(tw, "\n")
	}
	tw.Flush()
	if len(targets) > 0 {
		fmt.Fprintln(w, "\ndesign targets:")
		for _, t := range targets {
			mark := "NOT MET"
			if t.Met {
				mark = "met"
			}
			fmt.Fprintf(w, "  %-48s %8.2fx  (want %s)  %s\n", t.What, t.Value, t.Want, mark)
		}
	}
}

func cpusText(c []int) string {
	if len(c) == 0 {
		return "not pinned"
	}
	return fmt.Sprintf("%d,%d", c[0], c[1])
}

func rate(v float64) string {
	switch {
	case v >= 1e6:
		return fmt.Sprintf("%.2fM", v/1e6)
	case v >= 1e3:
		return fmt.Sprintf("%.1fk", v/1e3)
	}
	return fmt.Sprintf("%.0f", v)
}

// ipcTargets evaluates the targets on the rows that ran.
func ipcTargets(rep *benchkit.IPCReport) []ipcTarget {
	row := map[string]benchkit.IPCRow{}
	for _, r := range rep.Rows {
		if r.Error == "" {
			row[r.Transport] = r
		}
	}
	var out []ipcTarget
	p50 := func(t string) float64 { return float64(row[t].Latency.P50) }
	has := func(ts ...string) bool {
		for _, t := range ts {
			if _, ok := row[t]; !ok {
				return false
			}
		}
		return true
	}
	for _, t := range []string{"journal", "ring"} {
		if has("raw", t) && p50("raw") > 0 {
			v := p50(t) / p50("raw")
			out = append(out, ipcTarget{What: t + " p50 / raw floor p50", Value: v, Want: "≤ 1.5x", Met: v <= 1.5})
		}
		for _, k := range []string{"pipe", "unix-stream"} {
			if has(t, k) && p50(t) > 0 {
				v := p50(k) / p50(t)
				out = append(out, ipcTarget{What: k + " p50 / " + t + " p50", Value: v, Want: "≥ 20x", Met: v >= 20})
			}
		}
	}
	if has("ring", "unix-stream") {
		a, b := row["ring"].Throughput, row["unix-stream"].Throughput
		if len(a) == 2 && len(b) == 2 && b[1].MsgsPerS > 0 {
			v := a[1].MsgsPerS / b[1].MsgsPerS
			out = append(out, ipcTarget{What: "ring / unix-stream throughput at 1 KiB", Value: v, Want: "≥ 10x", Met: v >= 10})
		}
	}
	return out
}
