package benchkit

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"

	hdr "github.com/HdrHistogram/hdrhistogram-go"
	"golang.org/x/sys/unix"
)

// ChildVerb is the hidden journalctl verb that runs the child side.
const ChildVerb = "_bench-child"

// ChildMain is the child process of one IPC experiment: args are Spec.Args.
// It attaches, prints READY, echoes or sinks, and prints one ChildResult
// JSON line. It dies with its parent (Pdeathsig), so it never outlives it.
func ChildMain(args []string, stdout io.Writer) error {
	s, extra, err := ParseSpec(args)
	if err != nil {
		return err
	}
	if err := Pin(s.CPU); err != nil {
		return err
	}
	c, err := ChildConn(s, extra)
	if err != nil {
		return fmt.Errorf("%s: attach: %w", s.Transport, err)
	}
	defer c.Close()
	fmt.Fprintln(stdout, "READY")
	var r ChildResult
	if s.Mode == PingPong {
		r, err = Echo(c, s)
	} else {
		r, err = Sink(c, s)
	}
	if err != nil {
		return fmt.Errorf("%s: %w", s.Transport, err)
	}
	b, _ := json.Marshal(r)
	fmt.Fprintln(stdout, string(b))
	return nil
}

// Outcome is what one experiment measured.
type Outcome struct {
	RTT   *hdr.Histogram // ping-pong: round trip / 2
	Stamp *hdr.Histogram // ping-pong: child's now − stamp
	NS    int64          // throughput: parent start → child's last message
}

// tailBuffer keeps the last 4 KiB written to it (a child's stderr).
type tailBuffer struct {
	mu sync.Mutex
	b  []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	t.b = append(t.b, p...)
	if len(t.b) > 4096 {
		t.b = t.b[len(t.b)-4096:]
	}
	t.mu.Unlock()
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return strings.TrimSpace(string(t.b))
}

// RunOne runs one experiment: the parent side in the calling goroutine (pin
// it first), the child as `self _bench-child ipc ...`. Whatever happens —
// success, error, ctx cancelled (SIGINT/SIGTERM), the child dying — the
// child is reaped and every name the transport created is removed before
// RunOne returns. If this process is killed outright, Pdeathsig kills the
// child, and the names were already unlinked once both sides attached.
func RunOne(ctx context.Context, self string, s Spec, d Dirs) (Outcome, error) {
	var out Outcome
	var aborted atomic.Bool
	p, err := NewParent(s, d, &aborted)
	if err != nil {
		return out, err
	}
	defer p.Close()
	cmd := exec.Command(self, append([]string{ChildVerb, "ipc"}, s.Args(p.Args)...)...)
	cmd.ExtraFiles = p.Files
	stderr := &tailBuffer{}
	cmd.Stderr = stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return out, err
	}
	if err := cmd.Start(); err != nil {
		return out, err
	}
	ready, result, gone := make(chan string, 1), make(chan string, 1), make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 1<<20), 64<<20)
		n := 0
		for sc.Scan() {
			if n++; n == 1 {
				ready <- sc.Text()
			} else {
				result <- sc.Text()
				return
			}
		}
		close(gone) // stdout closed without a result: the child failed or died
	}()
	abort := func() {
		if aborted.CompareAndSwap(false, true) {
			cmd.Process.Kill()
			p.Abort()
		}
	}
	finished := make(chan struct{})
	watcher := make(chan struct{})
	go func() {
		defer close(watcher)
		select {
		case <-ctx.Done():
			abort()
		case <-gone:
			abort()
		case <-finished:
		}
	}()
	fail := func(err error) (Outcome, error) {
		abort()
		close(finished)
		<-watcher
		cmd.Wait()
		if ctx.Err() != nil {
			return out, ctx.Err()
		}
		if msg := stderr.String(); msg != "" {
			return out, fmt.Errorf("%s: %w (child: %s)", s.Transport, err, msg)
		}
		return out, fmt.Errorf("%s: %w", s.Transport, err)
	}
	select {
	case l := <-ready:
		if l != "READY" {
			return fail(fmt.Errorf("child said %q", l))
		}
	case <-gone:
		return fail(errors.New("child exited before READY"))
	case <-ctx.Done():
		return fail(ctx.Err())
	}
	c, err := p.Attach()
	if err != nil {
		return fail(err)
	}
	var start int64
	if s.Mode == PingPong {
		out.RTT, err = Ping(c, s, &aborted)
	} else {
		start, err = Source(c, s)
	}
	if err != nil {
		return fail(err)
	}
	var line string
	select {
	case line = <-result:
	case <-gone:
		return fail(errors.New("child exited without a result"))
	case <-ctx.Done():
		return fail(ctx.Err())
	}
	close(finished)
	<-watcher
	if err := cmd.Wait(); err != nil {
		return out, fmt.Errorf("%s: child: %w (%s)", s.Transport, err, stderr.String())
	}
	var r ChildResult
	if err := json.Unmarshal([]byte(line), &r); err != nil {
		return out, fmt.Errorf("%s: child result %q: %w", s.Transport, line, err)
	}
	if s.Mode == PingPong {
		out.Stamp, err = DecodeHistogram(r.Stamp)
		return out, err
	}
	if want := ExpectedCRC(s.Size, s.Count); r.Count != s.Count || r.CRC != want {
		return out, fmt.Errorf("%s: child received %d messages, crc %08x; sent %d, crc %08x", s.Transport, r.Count, r.CRC, s.Count, want)
	}
	out.NS = r.EndNS - start
	return out, nil
}

// IPCOptions configure RunIPC.
type IPCOptions struct {
	Self       string   // the journalctl binary to re-execute
	Transports []string // default Transports
	Messages   int      // throughput: messages per stream
	Samples    int      // latency: measured ping-pongs per round
	Size       int      // latency: message bytes
	GapNS      int64    // latency: pause between pings
	Rounds     int      // every transport once per round, interleaved
	CPUParent  int      // -1: not pinned
	CPUChild   int
	Progress   io.Writer // one line per experiment; nil: none
}

// ThroughputSizes are the message sizes of the throughput streams.
var ThroughputSizes = []int{64, 1024}

// Throughput is one transport's stream rate at one message size.
type Throughput struct {
	Size        int       `json:"size"`
	MsgsPerS    float64   `json:"msgs_per_s"` // median over rounds
	MBPerS      float64   `json:"mb_per_s"`   // payload bytes, 10^6
	VsFloor     float64   `json:"ratio_to_floor"`
	RoundsMsgsS []float64 `json:"rounds_msgs_per_s"`
}

// IPCRow is one transport's line of the table.
type IPCRow struct {
	Transport  string       `json:"transport"`
	Latency    Latency      `json:"latency"`       // ping-pong RTT/2
	Stamp      Latency      `json:"stamp_one_way"` // child-side now − stamp, same pings
	P50VsFloor float64      `json:"p50_ratio_to_floor"`
	P99VsFloor float64      `json:"p99_ratio_to_floor"`
	Throughput []Throughput `json:"throughput"`
	Error      string       `json:"error,omitempty"`
}

// IPCReport is the whole comparison.
type IPCReport struct {
	Machine  Machine  `json:"machine"`
	Messages int      `json:"messages"`
	Samples  int      `json:"samples_per_round"`
	Warmup   int      `json:"warmup_per_round"`
	Size     int      `json:"latency_size"`
	GapNS    int64    `json:"gap_ns"`
	Rounds   int      `json:"rounds"`
	CPUs     []int    `json:"cpus,omitempty"`
	Rows     []IPCRow `json:"transports"`
}

// Warmup is how many unmeasured pings precede the samples of a round.
func (o IPCOptions) Warmup() int { return min(max(o.Samples/10, 1000), 20000) }

// RunIPC runs every transport Rounds times, interleaved (round 1 of all,
// then round 2 ...) so a noisy neighbour hits all alike; latency histograms
// are merged over rounds and throughput is the median round. A transport
// that fails gets its error in its row and the run goes on; a cancelled ctx
// stops everything.
func RunIPC(ctx context.Context, o IPCOptions) (*IPCReport, error) {
	if len(o.Transports) == 0 {
		o.Transports = Transports
	}
	rep := &IPCReport{Machine: MachineInfo(), Messages: o.Messages, Samples: o.Samples, Warmup: o.Warmup(), Size: o.Size, GapNS: o.GapNS, Rounds: o.Rounds}
	if o.CPUParent >= 0 {
		rep.CPUs = []int{o.CPUParent, o.CPUChild}
	}
	scratch, err := os.MkdirTemp("", "mdj-bench-ipc-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(scratch)
	shm := scratch
	if st, err := os.Stat("/dev/shm"); err == nil && st.IsDir() {
		if d, err := os.MkdirTemp("/dev/shm", ShmPrefix()); err == nil {
			shm = d
			defer os.RemoveAll(shm)
		}
	}
	if err := Pin(o.CPUParent); err != nil {
		return nil, err
	}
	defer Unpin(o.CPUParent)
	type acc struct {
		rtt, stamp *hdr.Histogram
		tput       [][]float64
		err        error
	}
	accs := make([]acc, len(o.Transports))
	for i := range accs {
		accs[i] = acc{rtt: NewHistogram(), stamp: NewHistogram(), tput: make([][]float64, len(ThroughputSizes))}
	}
	seq := 0
	one := func(s Spec) (Outcome, error) {
		seq++
		d := Dirs{MQ: fmt.Sprintf("%s%d-", MQPrefix(), seq)}
		var err error
		if d.Scratch, err = os.MkdirTemp(scratch, "x"); err != nil {
			return Outcome{}, err
		}
		defer os.RemoveAll(d.Scratch)
		if d.Shm, err = os.MkdirTemp(shm, "x"); err != nil {
			return Outcome{}, err
		}
		defer os.RemoveAll(d.Shm)
		return RunOne(ctx, o.Self, s, d)
	}
	for r := 0; r < o.Rounds; r++ {
		for i, t := range o.Transports {
			a := &accs[i]
			if a.err != nil {
				continue
			}
			s := Spec{Transport: t, Mode: PingPong, Size: o.Size, Warm: o.Warmup(), Count: o.Samples, GapNS: o.GapNS, CPU: o.CPUChild}
			res, err := one(s)
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			if err != nil {
				a.err = err
				continue
			}
			a.rtt.Merge(res.RTT)
			a.stamp.Merge(res.Stamp)
			if o.Progress != nil {
				fmt.Fprintf(o.Progress, "round %d %-12s ping-pong p50 %dns", r+1, t, res.RTT.ValueAtQuantile(50))
			}
			for k, size := range ThroughputSizes {
				s := Spec{Transport: t, Mode: Stream, Size: size, Count: o.Messages, CPU: o.CPUChild}
				res, err := one(s)
				if ctx.Err() != nil {
					return nil, ctx.Err()
				}
				if err != nil {
					a.err = err
					break
				}
				rate := float64(o.Messages) / (float64(res.NS) / 1e9)
				a.tput[k] = append(a.tput[k], rate)
				if o.Progress != nil {
					fmt.Fprintf(o.Progress, "  %dB %.3gM msg/s", size, rate/1e6)
				}
			}
			if o.Progress != nil {
				fmt.Fprintln(o.Progress)
			}
		}
	}
	for i, t := range o.Transports {
		a := accs[i]
		row := IPCRow{Transport: t}
		if a.err != nil {
			row.Error = a.err.Error()
		} else {
			row.Latency = Summarize(t, a.rtt)
			row.Stamp = Summarize(t+" (stamp)", a.stamp)
			for k, size := range ThroughputSizes {
				m := Median(a.tput[k])
				row.Throughput = append(row.Throughput, Throughput{Size: size, MsgsPerS: m, MBPerS: m * float64(size) / 1e6, RoundsMsgsS: a.tput[k]})
			}
		}
		rep.Rows = append(rep.Rows, row)
	}
	// Ratios to the floor (the first row, raw, when it ran).
	if f := rep.Rows[0]; f.Transport == "raw" && f.Error == "" {
		for i := range rep.Rows {
			r := &rep.Rows[i]
			if r.Error != "" {
				continue
			}
			r.P50VsFloor = ratio(r.Latency.P50, f.Latency.P50)
			r.P99VsFloor = ratio(r.Latency.P99, f.Latency.P99)
			for k := range r.Throughput {
				if f.Throughput[k].MsgsPerS > 0 {
					r.Throughput[k].VsFloor = r.Throughput[k].MsgsPerS / f.Throughput[k].MsgsPerS
				}
			}
		}
	}
	return rep, nil
}

func ratio(a, b int64) float64 {
	if b <= 0 {
		return 0
	}
	return float64(a) / float64(b)
}

// Median of v (0 for none).
func Median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// MQPrefix is the name prefix of every message queue this process creates.
func MQPrefix() string { return fmt.Sprintf("mdj-bench-%d-", os.Getpid()) }

// ShmPrefix is the prefix of this process's directory under /dev/shm.
func ShmPrefix() string { return fmt.Sprintf("mdj-bench-ipc-%d-", os.Getpid()) }

// Machine describes where a benchmark ran.
type Machine struct {
	CPU     string `json:"cpu"`
	Cores   int    `json:"cores"`
	Kernel  string `json:"kernel"`
	LoadAvg string `json:"loadavg"`
}

// MachineInfo reads /proc/cpuinfo, uname and /proc/loadavg.
func MachineInfo() Machine {
	var m Machine
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			k, v, ok := strings.Cut(l, ":")
			if !ok {
				continue
			}
			switch strings.TrimSpace(k) {
			case "model name":
				m.CPU = strings.TrimSpace(v)
			case "processor":
				m.Cores++
			}
		}
	}
	var u unix.Utsname
	if unix.Uname(&u) == nil {
		m.Kernel = string(bytes.TrimRight(u.Release[:], "\x00"))
	}
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		f := strings.Fields(string(b))
		if len(f) >= 3 {
			m.LoadAvg = strings.Join(f[:3], " ")
		}
	}
	return m
}
