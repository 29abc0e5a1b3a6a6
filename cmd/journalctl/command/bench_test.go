package command

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mdjournal/mdjournal/cmd/journalctl/internal/benchkit"
)

// The bench tests re-execute a journalctl binary built once in TestMain:
// selfCommand points at it, so `bench ipc` runs its children from it.
var benchBinary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "mdj-bench-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	bin := filepath.Join(dir, "journalctl")
	out, err := exec.Command("go", "build", "-o", bin, "github.com/mdjournal/mdjournal/cmd/journalctl").CombinedOutput()
	if err == nil {
		benchBinary = bin
		selfCommand = func() (string, error) { return bin, nil }
	} else {
		fmt.Fprintf(os.Stderr, "building journalctl for the bench tests failed (they will fail): %v\n%s", err, out)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func needBinary(t *testing.T) {
	t.Helper()
	if benchBinary == "" {
		t.Fatal("no journalctl binary (see TestMain's output)")
	}
}

// benchTemp gives the bench a private TMPDIR and checks, when the test
// ends, that nothing was left in it, nothing under /dev/shm and no POSIX
// message queue of this process.
func benchTemp(t *testing.T) string {
	t.Helper()
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	t.Cleanup(func() { checkClean(t, tmp, os.Getpid()) })
	return tmp
}

// checkClean fails the test if pid's bench left files in tmp, a directory
// under /dev/shm or a message queue (names of experiments 1..500 are tried:
// /dev/mqueue may not be mounted, so there is nothing to list).
func checkClean(t *testing.T, tmp string, pid int) {
	t.Helper()
	if ents, err := os.ReadDir(tmp); err != nil || len(ents) > 0 {
		var names []string
		for _, e := range ents {
			names = append(names, e.Name())
		}
		t.Errorf("left in TMPDIR: %v %v", names, err)
	}
	if m, _ := filepath.Glob(fmt.Sprintf("/dev/shm/mdj-bench-ipc-%d-*", pid)); len(m) > 0 {
		t.Errorf("left in /dev/shm: %v", m)
	}
	for i := 1; i <= 500; i++ {
		for _, dir := range []string{"p2c", "c2p"} {
			name := fmt.Sprintf("mdj-bench-%d-%d-%s", pid, i, dir)
			if benchkit.MQExists(name) {
				t.Errorf("message queue %s left behind", name)
				benchkit.MQUnlink(name)
			}
		}
	}
}

func TestBenchUsageErrorsExit2(t *testing.T) {
	for _, args := range [][]string{
		{"bench"},
		{"bench", "--json"},
		{"bench", "nosuch"},
		{"bench", "replay", "--frames", "10"},
		{"bench", "ipc", "--size", "8"},
		{"bench", "ipc", "--messages", "10"},
		{"bench", "ipc", "--messages", "many"},
		{"bench", "ipc", "--rounds", "0"},
		{"bench", "ipc", "--gap", "-1s"},
		{"bench", "ipc", "--cpus", "0"},
		{"bench", "ipc", "--cpus", "a,b"},
		{"bench", "ipc", "--transports", "raw,carrier-pigeon"},
		{"bench", "ipc", "--transports", "raw,pipe,raw"},
		{"bench", "ipc", "extra"},
		{"bench", "ipc", "--bogus"},
		{"bench", "append", "--durability", "sometimes"},
		{"bench", "append", "--count", "10"},
		{"bench", "snapshot", "--count", "1"},
		{"bench", "snapshot", "--rounds", "0"},
		{"bench", "tail", "--wait", "sleepy"},
	} {
		code, _, stderr := run(t, args...)
		if code != ExitUsage {
			t.Errorf("%q: exit %d, want 2", args, code)
		}
		if stderr == "" {
			t.Errorf("%q: no message on stderr", args)
		}
	}
}

func TestBenchSnapshotReplayAppend(t *testing.T) {
	benchTemp(t)
	for _, c := range []struct {
		args []string
		rows []string
	}{
		{[]string{"bench", "snapshot", "--count", "1000", "--rounds", "1"}, []string{"baseline", "snapshot Publish", "snapshot Read"}},
		{[]string{"bench", "replay", "--frames", "3000", "--rounds", "1"}, []string{"raw: reader loop (baseline)", "raw: replay", "zstd: reader loop", "zstd: replay"}},
		{[]string{"bench", "append", "--count", "2000", "--rounds", "1", "--durability", "none"}, []string{"raw 64-byte stores", "append none", "tidwall/wal NoSync", "tidwall/wal (fsync per write)", "faster than tidwall/wal NoSync"}},
	} {
		code, out, errs := run(t, c.args...)
		if code != 0 {
			t.Errorf("%q: exit %d\n%s\n%s", c.args, code, out, errs)
			continue
		}
		for _, r := range c.rows {
			if !strings.Contains(out, r) {
				t.Errorf("%q: no %q row in\n%s", c.args, r, out)
			}
		}
	}
}

func TestBenchIPCTable(t *testing.T) {
	needBinary(t)
	benchTemp(t)
	plot := filepath.Join(t.TempDir(), "ipc.svg")
	code, out, errs := run(t, "bench", "ipc", "--messages", "2000", "--rounds", "1", "--quiet", "--plot", plot)
	if code != 0 {
		t.Fatalf("exit %d\n%s\n%s", code, out, errs)
	}
	rows := map[string]bool{}
	for _, l := range strings.Split(out, "\n") {
		if f := strings.Fields(l); len(f) > 0 {
			rows[f[0]] = true
		}
	}
	for _, tr := range benchkit.Transports {
		if !rows[tr] {
			t.Errorf("no %s row in\n%s", tr, out)
		}
	}
	if strings.Contains(out, "failed:") {
		t.Errorf("a transport failed:\n%s", out)
	}
	for _, want := range []string{"p50", "p99.9", "1 KiB msg/s", "×floor", "design targets", "kernel"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	svg, err := os.ReadFile(plot)
	if err != nil || !bytes.HasPrefix(svg, []byte("<svg")) || !bytes.Contains(svg, []byte("journal")) || !bytes.HasSuffix(bytes.TrimSpace(svg), []byte("</svg>")) {
		t.Errorf("plot: %v %.200q", err, svg)
	}
}

func TestBenchIPCJSON(t *testing.T) {
	needBinary(t)
	benchTemp(t)
	code, out, errs := run(t, "bench", "ipc", "--messages", "2000", "--rounds", "1", "--quiet", "--json", "--transports", "raw,ring,journal,pipe,unix-stream,mq")
	if code != 0 {
		t.Fatalf("exit %d\n%s\n%s", code, out, errs)
	}
	var rep struct {
		Command string `json:"command"`
		Machine struct {
			CPU     string `json:"cpu"`
			Cores   int    `json:"cores"`
			Kernel  string `json:"kernel"`
			LoadAvg string `json:"loadavg"`
		} `json:"machine"`
		Messages   int `json:"messages"`
		Samples    int `json:"samples_per_round"`
		Rounds     int `json:"rounds"`
		Transports []struct {
			Transport string `json:"transport"`
			Latency   struct {
				Samples int64   `json:"samples"`
				P50     int64   `json:"p50_ns"`
				P99     int64   `json:"p99_ns"`
				P999    int64   `json:"p99_9_ns"`
				Max     int64   `json:"max_ns"`
				Curve   []int64 `json:"curve_ns"`
			} `json:"latency"`
			Stamp struct {
				P50 int64 `json:"p50_ns"`
			} `json:"stamp_one_way"`
			P50VsFloor *float64 `json:"p50_ratio_to_floor"`
			Throughput []struct {
				Size     int      `json:"size"`
				MsgsPerS float64  `json:"msgs_per_s"`
				MBPerS   float64  `json:"mb_per_s"`
				VsFloor  *float64 `json:"ratio_to_floor"`
			} `json:"throughput"`
			Error string `json:"error"`
		} `json:"transports"`
		Targets []struct {
			What string `json:"what"`
			Met  *bool  `json:"met"`
		} `json:"targets"`
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if rep.Messages != 2000 || rep.Samples != 500 || rep.Rounds != 1 || rep.Machine.Cores < 1 || rep.Machine.Kernel == "" || !strings.Contains(rep.Command, "bench ipc") {
		t.Errorf("header: %+v", rep)
	}
	if len(rep.Transports) != 6 || rep.Transports[0].Transport != "raw" || rep.Transports[5].Transport != "mq" {
		t.Fatalf("transports: %+v", rep.Transports)
	}
	for _, r := range rep.Transports {
		l := r.Latency
		if r.Error != "" || l.Samples != 500 || l.P50 <= 0 || l.P50 > l.P99 || l.P99 > l.P999 || l.P999 > l.Max || len(l.Curve) != len(benchkit.PlotQuantiles) || r.Stamp.P50 <= 0 || r.P50VsFloor == nil {
			t.Errorf("%s latency: %+v", r.Transport, r)
		}
		if len(r.Throughput) != 2 || r.Throughput[0].Size != 64 || r.Throughput[1].Size != 1024 {
			t.Fatalf("%s throughput: %+v", r.Transport, r.Throughput)
		}
		for _, tp := range r.Throughput {
			if tp.MsgsPerS <= 0 || tp.MBPerS <= 0 || tp.VsFloor == nil {
				t.Errorf("%s throughput: %+v", r.Transport, tp)
			}
		}
	}
	if len(rep.Targets) != 7 {
		t.Errorf("targets: %+v", rep.Targets)
	}
	for _, tg := range rep.Targets {
		if tg.What == "" || tg.Met == nil {
			t.Errorf("target %+v", tg)
		}
	}
}

// TestBenchIPCCancel: a cancelled Env.Ctx (what SIGINT/SIGTERM do) stops
// the run, with the child killed and nothing left behind. Whichever
// transport is running when the cancel lands exercises its abort path.
func TestBenchIPCCancel(t *testing.T) {
	needBinary(t)
	for _, tr := range []string{"raw", "journal", "ring", "pipe", "fifo", "unix-stream", "unix-dgram", "mq", "tcp"} {
		t.Run(tr, func(t *testing.T) {
			benchTemp(t)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			var out, errb bytes.Buffer
			done := make(chan int)
			go func() {
				done <- Run(&Env{Stdin: strings.NewReader(""), Stdout: &out, Stderr: &errb, Ctx: ctx},
					[]string{"bench", "ipc", "--messages", "20000000", "--samples", "100000000", "--transports", tr})
			}()
			// Cancel once the child has started.
			deadline := time.Now().Add(time.Minute)
			for !strings.Contains(childCommands(os.Getpid()), " ipc "+tr+" ") {
				if time.Now().After(deadline) {
					cancel()
					<-done
					t.Fatalf("the %s child never started: %s", tr, errb.String())
				}
				time.Sleep(5 * time.Millisecond)
			}
			time.Sleep(50 * time.Millisecond)
			cancel()
			select {
			case code := <-done:
				if code == 0 {
					t.Errorf("exit 0 after cancel")
				}
			case <-time.After(time.Minute):
				panic("bench ipc still running a minute after cancel: " + tr + "\n" + errb.String())
			}
			if c := childCommands(os.Getpid()); strings.Contains(c, benchkit.ChildVerb) {
				t.Errorf("child still there: %s", c)
			}
		})
	}
}

// TestBenchIPCSignals runs the built binary: SIGINT and SIGTERM clean up like
// a cancel; SIGKILL of the bench takes its child with it (Pdeathsig).
func TestBenchIPCSignals(t *testing.T) {
	needBinary(t)
	for _, sig := range []syscall.Signal{syscall.SIGINT, syscall.SIGTERM, syscall.SIGKILL} {
		t.Run(sig.String(), func(t *testing.T) {
			tmp := t.TempDir()
			cmd := exec.Command(benchBinary, "bench", "ipc", "--messages", "20000000", "--samples", "100000000", "--transports", "pipe", "--quiet")
			cmd.Env = append(os.Environ(), "TMPDIR="+tmp)
			var errb bytes.Buffer
			cmd.Stderr = &errb
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			pid := cmd.Process.Pid
			defer cmd.Process.Kill()
			var child int
			deadline := time.Now().Add(time.Minute)
			for child == 0 {
				if time.Now().After(deadline) {
					t.Fatalf("no child appeared: %s", errb.String())
				}
				time.Sleep(5 * time.Millisecond)
				for _, c := range children(pid) {
					if strings.Contains(cmdline(c), " ipc pipe ") {
						child = c
					}
				}
			}
			time.Sleep(50 * time.Millisecond)
			cmd.Process.Signal(sig)
			waited := make(chan error, 1)
			go func() { waited <- cmd.Wait() }()
			select {
			case <-waited:
			case <-time.After(time.Minute):
				t.Fatalf("bench still running a minute after %v", sig)
			}
			for deadline := time.Now().Add(30 * time.Second); alive(child); {
				if time.Now().After(deadline) {
					t.Fatalf("child %d outlived the bench (%v)", child, sig)
				}
				time.Sleep(10 * time.Millisecond)
			}
			if sig == syscall.SIGKILL {
				// The bench could not run its defers: only its scratch
				// directory may remain (names were unlinked on attach).
				os.RemoveAll(tmp)
				os.Mkdir(tmp, 0o700)
				for _, g := range []string{fmt.Sprintf("/dev/shm/mdj-bench-ipc-%d-*", pid)} {
					m, _ := filepath.Glob(g)
					for _, d := range m {
						os.RemoveAll(d)
					}
				}
			}
			checkClean(t, tmp, pid)
		})
	}
}

// children lists the processes whose parent is pid.
func children(pid int) []int {
	var out []int
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		c, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		s := string(b)
		f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
		if len(f) > 1 && f[1] == strconv.Itoa(pid) && f[0] != "Z" {
			out = append(out, c)
		}
	}
	return out
}

func cmdline(pid int) string {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	return " " + strings.ReplaceAll(string(b), "\x00", " ")
}

// childCommands is the command lines of pid's live children.
func childCommands(pid int) string {
	var s strings.Builder
	for _, c := range children(pid) {
		s.WriteString(cmdline(c))
		s.WriteString("\n")
	}
	return s.String()
}

// alive reports whether pid still runs a bench child (an orphan is
// re-parented, so the parent is not checked; a zombie or a reused pid
// running something else does not count).
func alive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	return len(f) > 0 && f[0] != "Z" && strings.Contains(cmdline(pid), benchkit.ChildVerb)
}
