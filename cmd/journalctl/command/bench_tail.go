package command

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	hdr "github.com/HdrHistogram/hdrhistogram-go"
	"github.com/spf13/pflag"

	"github.com/mdjournal/mdjournal/cmd/journalctl/internal/benchkit"
	"github.com/mdjournal/mdjournal/journal"
	"github.com/mdjournal/mdjournal/pin"
	"github.com/mdjournal/mdjournal/wait"
	"github.com/mdjournal/mdjournal/writer"
)

type benchTailOptions struct {
	samples int
	size    int
	gap     time.Duration
	rounds  int
	wait    string
	cpus    string
	json    bool
}

func (o *benchTailOptions) AddFlags(fs *pflag.FlagSet) {
	fs.IntVar(&o.samples, "samples", 100_000, "measured messages per round")
	fs.IntVar(&o.size, "size", 64, "payload bytes (≥ 8)")
	fs.DurationVar(&o.gap, "gap", 5*time.Microsecond, "pause between messages")
	fs.IntVar(&o.rounds, "rounds", 3, "rounds; baseline and journal alternate, histograms are merged")
	fs.StringVar(&o.wait, "wait", "spin", "reader wait strategy: spin|yield|backoff|futex")
	fs.StringVar(&o.cpus, "cpus", "", "pin producer and consumer: A,B (default: the first two CPUs available; none: unpinned)")
	fs.BoolVar(&o.json, "json", false, "print JSON")
}

// parseCPUs reads --cpus: "A,B" pins the two processes there; "" (the
// default) picks the first two CPUs this process may use; "none" runs
// them unpinned. Spinning processes are refused unpinned on fewer than
// two CPUs: they would take turns, and the benchmark would measure the
// scheduler's quantum (milliseconds), not the hand-off.
func parseCPUs(s string, spinning bool) (int, int, error) {
	if s == "none" {
		if spinning {
			if cpus, err := pin.Available(); err == nil && len(cpus) < 2 {
				return 0, 0, usagef("--cpus none with a spinning reader on %d CPU: the two would take turns; use --wait futex, or two CPUs", len(cpus))
			}
		}
		return -1, -1, nil
	}
	if s == "" {
		cpus, err := pin.Available()
		if err != nil || len(cpus) < 2 {
			if spinning {
				return 0, 0, usagef("one CPU available (%v): a spinning producer and consumer would take turns; use --wait futex", cpus)
			}
			return -1, -1, nil
		}
		return cpus[0], cpus[1], nil
	}
	a, b, ok := strings.Cut(s, ",")
	x, err1 := strconv.Atoi(a)
	y, err2 := strconv.Atoi(b)
	if !ok || err1 != nil || err2 != nil || x < 0 || y < 0 {
		return 0, 0, usagef("--cpus %q: want two CPU numbers, e.g. 0,1", s)
	}
	return x, y, nil
}

func benchTail(env *Env, args []string) error {
	var o benchTailOptions
	fs := flagSet(env, "bench tail", "[--samples N] [--size B] [--gap DUR] [--rounds R] [--wait S] [--cpus A,B] [--json]", o.AddFlags)
	if err := parse(fs, args); err != nil {
		return err
	}
	if o.samples < 100 || o.size < 8 || o.size > journal.MaxPayload || o.gap < 0 || o.rounds < 1 {
		return usagef("--samples ≥ 100, --size 8..%d, --gap ≥ 0, --rounds ≥ 1", journal.MaxPayload)
	}
	if _, err := wait.Parse(o.wait); err != nil {
		return usagef("--wait: %v", err)
	}
	cpuA, cpuB, err := parseCPUs(o.cpus, o.wait == "spin")
	if err != nil {
		return err
	}
	self, err := selfCommand()
	if err != nil {
		return err
	}
	tmp, err := os.MkdirTemp("", "mdj-bench-tail-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	p := benchkit.TailParams{Samples: o.samples, Size: o.size, GapNS: o.gap.Nanoseconds()}
	if err := benchkit.Pin(cpuA); err != nil {
		return err
	}
	rawH, jrnH := benchkit.NewHistogram(), benchkit.NewHistogram()
	var rawP50, jrnP50 []float64
	for r := 0; r < o.rounds; r++ {
		rawPath := filepath.Join(tmp, "raw.page")
		if err := benchkit.RawFile(rawPath); err != nil {
			return err
		}
		var h *hdr.Histogram
		_, err := runChild(self, []string{"raw", rawPath}, o, cpuB, func() (err error) { h, err = benchkit.RawPingPong(rawPath, p); return err })
		if err != nil {
			return fmt.Errorf("raw baseline: %w", err)
		}
		rawH.Merge(h)
		rawP50 = append(rawP50, float64(h.ValueAtQuantile(50)))
		dir := filepath.Join(tmp, fmt.Sprintf("journal-%d", r))
		w, err := writer.Open(dir, writer.Options{})
		if err != nil {
			return err
		}
		if err := w.Prefault(); err != nil { // no first-store faults in what is timed
			w.Close()
			return err
		}
		h, err = runChild(self, []string{"journal", dir}, o, cpuB, func() error { return benchkit.JournalProduce(w, p) })
		w.Close()
		if err != nil {
			return fmt.Errorf("journal: %w", err)
		}
		jrnH.Merge(h)
		jrnP50 = append(jrnP50, float64(h.ValueAtQuantile(50)))
	}
	raw := benchkit.Summarize("raw cache-line ping-pong, RTT/2 (baseline)", rawH)
	jrn := benchkit.Summarize("journal tail ("+o.wait+")", jrnH)
	ratio := median(jrnP50) / median(rawP50)
	if o.json {
		return json.NewEncoder(env.Stdout).Encode(map[string]any{"baseline": raw, "journal": jrn, "p50_ratio_median_of_rounds": ratio,
			"samples_per_round": o.samples, "rounds": o.rounds, "gap_ns": o.gap.Nanoseconds(), "size": o.size,
			"cpus": []int{cpuA, cpuB}})
	}
	if cpuA >= 0 {
		fmt.Fprintf(env.Stdout, "pinned: writer on CPU %d, reader on CPU %d\n", cpuA, cpuB)
	} else {
		fmt.Fprintln(env.Stdout, "not pinned (--cpus none): the scheduler may move and interleave the two processes")
	}
	tw := tabwriter.NewWriter(env.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "one-way latency, %d B, %d×%d samples\tp50\tp90\tp99\tp99.9\tmax\tp50 vs raw\t\n", o.size, o.rounds, o.samples)
	for _, l := range []benchkit.Latency{raw, jrn} {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t\n", l.Name, ns(l.P50), ns(l.P90), ns(l.P99), ns(l.P999), ns(l.Max), benchkit.Ratio(l.P50, raw.P50))
	}
	tw.Flush()
	fmt.Fprintf(env.Stdout, "median over rounds of the per-round p50 ratio journal/raw: %.2fx\n", ratio)
	return nil
}

// runChild starts the consumer process, waits for READY, runs produce, and
// returns the histogram the child printed.
func runChild(self string, what []string, o benchTailOptions, cpu int, produce func() error) (*hdr.Histogram, error) {
	args := append([]string{"_bench-child", "tail"}, what...)
	args = append(args, strconv.Itoa(o.samples), strconv.Itoa(o.size), o.wait, strconv.Itoa(cpu))
	cmd := exec.Command(self, args...)
	cmd.Stderr = os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL} // never outlive the bench
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	defer cmd.Process.Kill()
	sc := bufio.NewScanner(out)
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	if !sc.Scan() || sc.Text() != "READY" {
		cmd.Wait()
		return nil, fmt.Errorf("consumer process did not start: %q", sc.Text())
	}
	if err := produce(); err != nil {
		return nil, err
	}
	if !sc.Scan() {
		cmd.Wait()
		return nil, fmt.Errorf("consumer process ended without a result")
	}
	if sc.Text() == "{}" { // the echo side of a ping-pong reports nothing
		return nil, cmd.Wait()
	}
	h, err := benchkit.DecodeHistogram(sc.Text())
	if err != nil {
		return nil, err
	}
	return h, cmd.Wait()
}
