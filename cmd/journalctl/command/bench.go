package command

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	hdr "github.com/HdrHistogram/hdrhistogram-go"
	"github.com/spf13/pflag"

	"github.com/mdjournal/mdjournal/internal/benchkit"
	"github.com/mdjournal/mdjournal/internal/clock"
	"github.com/mdjournal/mdjournal/internal/mmap"
	"github.com/mdjournal/mdjournal/journal"
	"github.com/mdjournal/mdjournal/reader"
	"github.com/mdjournal/mdjournal/wait"
	"github.com/mdjournal/mdjournal/writer"
)

func init() {
	register(verb{name: "bench", summary: "measure append and cross-process tail latency beside raw baselines", run: runBench})
	register(verb{name: "_bench-child", summary: "(internal) the other process of a bench", run: runBenchChild})
}

// selfCommand re-executes journalctl (tests may point it at a built binary).
var selfCommand = func() (string, error) { return os.Executable() }

func runBench(env *Env, args []string) error {
	if len(args) == 0 || strings.HasPrefix(args[0], "-") {
		return usagef("bench needs a kind: append, tail or open (journalctl bench KIND --help)")
	}
	switch args[0] {
	case "append":
		return benchAppend(env, args[1:])
	case "tail":
		return benchTail(env, args[1:])
	case "open":
		return benchOpen(env, args[1:])
	}
	return usagef("unknown bench %q (want append, tail or open)", args[0])
}

type benchAppendOptions struct {
	size       int
	count      int
	rounds     int
	durability string
	json       bool
}

func (o *benchAppendOptions) AddFlags(fs *pflag.FlagSet) {
	fs.IntVar(&o.size, "size", 64, "payload bytes per frame")
	fs.IntVar(&o.count, "count", 2_000_000, "frames per round (sync policy: count/1000)")
	fs.IntVar(&o.rounds, "rounds", 5, "rounds; the median round is reported")
	fs.StringVar(&o.durability, "durability", "none,async,interval:10ms,sync", "comma-separated policies")
	fs.BoolVar(&o.json, "json", false, "print JSON")
}

type appendResult struct {
	Name       string    `json:"name"`
	NsPerFrame float64   `json:"ns_per_frame"`
	FramesPerS float64   `json:"frames_per_s"`
	VsRaw      float64   `json:"ratio_to_raw"`
	RoundsNs   []float64 `json:"rounds_ns"`
}

func median(v []float64) float64 {
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	return s[len(s)/2]
}

func benchAppend(env *Env, args []string) error {
	var o benchAppendOptions
	fs := flagSet(env, "bench append", "[--size B] [--count N] [--rounds R] [--durability P,...] [--json]", o.AddFlags)
	if err := parse(fs, args); err != nil {
		return err
	}
	if o.size < 0 || o.size > journal.MaxPayload || o.count < 1000 || o.rounds < 1 {
		return usagef("--size 0..%d, --count ≥ 1000, --rounds ≥ 1", journal.MaxPayload)
	}
	var pols []writer.Durability
	for _, p := range strings.Split(o.durability, ",") {
		d, err := writer.ParseDurability(strings.TrimSpace(p))
		if err != nil {
			return usagef("--durability: %v", err)
		}
		pols = append(pols, d)
	}
	tmp, err := os.MkdirTemp("", "mdj-bench-append-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	raw := make([]float64, 0, o.rounds)
	res := make([][]float64, len(pols))
	for r := 0; r < o.rounds; r++ {
		// Interleave baseline and policies in every round so machine noise
		// hits them alike.
		ns, err := rawStoreRound(tmp, o.size, o.count)
		if err != nil {
			return err
		}
		raw = append(raw, ns)
		for i, d := range pols {
			n := o.count
			if d.Mode == writer.Sync {
				n = max(o.count/1000, 200)
			}
			ns, err := appendRound(filepath.Join(tmp, fmt.Sprintf("j%d-%d", r, i)), d, o.size, n)
			if err != nil {
				return err
			}
			res[i] = append(res[i], ns)
		}
	}
	rawMed := median(raw)
	out := []appendResult{{Name: fmt.Sprintf("raw %d-byte stores (baseline)", o.size), NsPerFrame: rawMed, FramesPerS: 1e9 / rawMed, VsRaw: 1, RoundsNs: raw}}
	for i, d := range pols {
		m := median(res[i])
		out = append(out, appendResult{Name: "append " + d.String(), NsPerFrame: m, FramesPerS: 1e9 / m, VsRaw: m / rawMed, RoundsNs: res[i]})
	}
	if o.json {
		return json.NewEncoder(env.Stdout).Encode(out)
	}
	tw := tabwriter.NewWriter(env.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "\tns/frame (median of %d)\tframes/s\tvs raw\t\n", o.rounds)
	for _, r := range out {
		fmt.Fprintf(tw, "%s\t%.1f\t%.3gM\t%.2fx\t\n", r.Name, r.NsPerFrame, r.FramesPerS/1e6, r.VsRaw)
	}
	return tw.Flush()
}

// rawStoreRound: size-byte stores into a prefaulted 64 MiB shared mapping.
func rawStoreRound(tmp string, size, count int) (float64, error) {
	const region = 64 << 20
	f, err := os.Create(filepath.Join(tmp, "raw"))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	if err := mmap.Reserve(f, region); err != nil {
		return 0, err
	}
	m, err := mmap.Map(f, region, true)
	if err != nil {
		return 0, err
	}
	defer mmap.Unmap(m)
	mmap.PopulateWrite(m)
	payload := make([]byte, size)
	off := 0
	start := clock.Nanotime()
	for i := 0; i < count; i++ {
		if off+size > region {
			off = 0
		}
		copy(m[off:off+size], payload)
		off += size
	}
	return float64(clock.Nanotime()-start) / float64(count), nil
}

func appendRound(dir string, d writer.Durability, size, count int) (float64, error) {
	w, err := writer.Open(dir, writer.Options{Durability: d})
	if err != nil {
		return 0, err
	}
	payload := make([]byte, size)
	start := clock.Nanotime()
	for i := 0; i < count; i++ {
		if _, err := w.Append(journal.TypeRaw, 1, int64(i), payload); err != nil {
			w.Close()
			return 0, err
		}
	}
	ns := float64(clock.Nanotime()-start) / float64(count)
	err = w.Close()
	os.RemoveAll(dir)
	return ns, err
}

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
	fs.StringVar(&o.cpus, "cpus", "", "pin producer and consumer: A,B")
	fs.BoolVar(&o.json, "json", false, "print JSON")
}

func parseCPUs(s string) (int, int, error) {
	if s == "" {
		return -1, -1, nil
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
	cpuA, cpuB, err := parseCPUs(o.cpus)
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
		time.Sleep(100 * time.Millisecond) // let the writer's background goroutine prefault and prepare
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
			"samples_per_round": o.samples, "rounds": o.rounds, "gap_ns": o.gap.Nanoseconds(), "size": o.size})
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

func ns(v int64) string {
	if v >= 10_000 {
		return fmt.Sprintf("%.1fµs", float64(v)/1000)
	}
	return fmt.Sprintf("%dns", v)
}

// runChild starts the consumer process, waits for READY, runs produce, and
// returns the histogram the child printed.
func runChild(self string, what []string, o benchTailOptions, cpu int, produce func() error) (*hdr.Histogram, error) {
	args := append([]string{"_bench-child", "tail"}, what...)
	args = append(args, strconv.Itoa(o.samples), strconv.Itoa(o.size), o.wait, strconv.Itoa(cpu))
	cmd := exec.Command(self, args...)
	cmd.Stderr = os.Stderr
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

// runBenchChild: _bench-child tail raw|journal PATH SAMPLES SIZE WAIT CPU
func runBenchChild(env *Env, args []string) error {
	if len(args) != 7 || args[0] != "tail" {
		return usagef("internal command")
	}
	samples, _ := strconv.Atoi(args[3])
	size, _ := strconv.Atoi(args[4])
	ws, _ := wait.Parse(args[5])
	cpu, _ := strconv.Atoi(args[6])
	if err := benchkit.Pin(cpu); err != nil {
		return err
	}
	p := benchkit.TailParams{Samples: samples, Size: size}
	ready := func() { fmt.Fprintln(env.Stdout, "READY") }
	var h *hdr.Histogram
	var err error
	switch args[1] {
	case "raw":
		if err := benchkit.RawEcho(args[2], p, ready); err != nil {
			return err
		}
		fmt.Fprintln(env.Stdout, "{}")
		return nil
	default:
		h, err = benchkit.JournalConsume(args[2], p, ws, ready)
	}
	if err != nil {
		return err
	}
	fmt.Fprintln(env.Stdout, benchkit.EncodeHistogram(h))
	return nil
}

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
