// Package pipeline_test runs the example pipeline's stages as real
// processes (built with go build into a temporary directory), kills them
// with SIGKILL and checks what their journals say.
package pipeline_test

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/mdjournal/mdjournal/journal"
	"github.com/mdjournal/mdjournal/pipeline"
	"github.com/mdjournal/mdjournal/reader"
)

var plBin, jcBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "mdj-pipeline-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	_, here, _, _ := runtime.Caller(0)
	root := filepath.Join(filepath.Dir(here), "..", "..")
	plBin, jcBin = filepath.Join(dir, "pipeline"), filepath.Join(dir, "journalctl")
	for bin, pkg := range map[string]string{plBin: "./examples/pipeline", jcBin: "./cmd/journalctl"} {
		cmd := exec.Command("go", "build", "-o", bin, pkg)
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "go build %s: %v\n%s", pkg, err, out)
			os.RemoveAll(dir)
			os.Exit(1)
		}
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// setup returns a pipeline directory and a ring path in a per-test
// directory on tmpfs, both removed at cleanup.
func setup(t *testing.T) (pipeline.Dirs, string) {
	t.Helper()
	var b [6]byte
	rand.Read(b[:])
	shm := filepath.Join("/dev/shm", "mdj-pipeline-test-"+hex.EncodeToString(b[:]))
	if err := os.Mkdir(shm, 0o700); err != nil {
		t.Fatalf("tmpfs directory for the ring: %v", err)
	}
	t.Cleanup(func() { os.RemoveAll(shm) })
	return pipeline.Dirs{Root: t.TempDir()}, filepath.Join(shm, "orders.ring")
}

// syncBuf is a goroutine-safe buffer for a child's stderr.
type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// proc is one running stage.
type proc struct {
	name string
	cmd  *exec.Cmd
	out  *syncBuf
	done chan struct{}
	err  error
}

func start(t *testing.T, log *syncBuf, name string, args ...string) *proc {
	t.Helper()
	p := &proc{name: name, cmd: exec.Command(plBin, args...), out: log, done: make(chan struct{})}
	p.cmd.Stdout, p.cmd.Stderr = log, log
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	go func() { p.err = p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() { p.kill() })
	return p
}

// kill sends SIGKILL and reaps the process (so its PID is gone, not a
// zombie, when this returns).
func (p *proc) kill() {
	p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
}

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// wait waits up to d for the process to exit and returns its error.
func (p *proc) wait(t *testing.T, d time.Duration) error {
	t.Helper()
	select {
	case <-p.done:
		return p.err
	case <-time.After(d):
		p.kill()
		t.Fatalf("%s still running after %v; output:\n%s", p.name, d, p.out)
		return nil
	}
}

func exitCode(err error) int {
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode()
	}
	if err == nil {
		return 0
	}
	return -1
}

// decision is a risk decision without its wall-clock timestamps.
type decision struct {
	Seq, TriggerSeq, OrderID uint64
	TS                       int64
	Instr                    uint32
	Price, Qty               int64
	Side                     journal.Side
	Verdict                  uint8
	Reason                   uint16
	Strategy                 uint32
}

// order is an order request without its wall-clock timestamps.
type order struct {
	Seq, OrderID, TriggerSeq uint64
	TS, TriggerTS            int64
	Instr                    uint32
	Price, Qty               int64
	Side                     journal.Side
}

// frames returns every frame of the journal in dir (copied).
func frames(t *testing.T, dir string) []journal.Frame {
	t.Helper()
	r, err := reader.Open(dir, reader.Options{})
	if errors.Is(err, reader.ErrNoJournal) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var out []journal.Frame
	for {
		f, ok, err := r.TryNext()
		if err != nil {
			t.Fatal(err)
		}
		if !ok {
			return out
		}
		f.Payload = bytes.Clone(f.Payload)
		out = append(out, f)
	}
}

func decisions(t *testing.T, dir string) []decision {
	t.Helper()
	var out []decision
	for _, f := range frames(t, dir) {
		if f.Type != journal.TypeRiskDecision {
			t.Fatalf("risk journal frame %d is %v", f.Seq, f.Type)
		}
		var d journal.RiskDecision
		if err := d.Decode(f.Payload); err != nil {
			t.Fatal(err)
		}
		out = append(out, decision{f.Seq, d.TriggerSeq, d.OrderID, f.TS, f.Instrument, d.Price, d.Qty, d.Side, d.Verdict, d.Reason, d.Strategy})
	}
	return out
}

func orders(t *testing.T, dir string) []order {
	t.Helper()
	var out []order
	for _, f := range frames(t, dir) {
		if f.Type != journal.TypeOrderRequest {
			t.Fatalf("orders journal frame %d is %v", f.Seq, f.Type)
		}
		var o journal.OrderRequest
		if err := o.Decode(f.Payload); err != nil {
			t.Fatal(err)
		}
		out = append(out, order{f.Seq, o.OrderID, o.TriggerSeq, f.TS, o.TriggerTS, f.Instrument, o.Price, o.Qty, o.Side})
	}
	return out
}

// lastSeq returns the last published seq of the journal in dir (0 if none).
func lastSeq(dir string) uint64 {
	r, err := reader.Open(dir, reader.Options{From: reader.End()})
	if err != nil {
		return 0
	}
	defer r.Close()
	return r.LastSeq()
}

// waitUntil polls cond every millisecond (an observable state of another
// process) until true or d passes.
func waitUntil(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(time.Millisecond)
	}
}

// checkExactlyOnce checks that the risk journal decides orders 1..n once
// each, in order, and that each decision matches its order request.
func checkExactlyOnce(t *testing.T, os []order, ds []decision) {
	t.Helper()
	if len(ds) != len(os) {
		t.Fatalf("%d orders, %d decisions", len(os), len(ds))
	}
	for i, d := range ds {
		o := os[i]
		if d.OrderID != uint64(i+1) || o.OrderID != uint64(i+1) || o.Seq != o.OrderID {
			t.Fatalf("decision %d is for order %d (order %d at seq %d)", i+1, d.OrderID, o.OrderID, o.Seq)
		}
		if d.TriggerSeq != o.TriggerSeq || d.Price != o.Price || d.Qty != o.Qty || d.Side != o.Side || d.Instr != o.Instr {
			t.Fatalf("decision %+v does not match order %+v", d, o)
		}
		if d.Verdict == journal.RiskAccepted && d.Reason != 0 || d.Verdict == journal.RiskRejected && d.Reason == 0 ||
			d.Verdict != journal.RiskAccepted && d.Verdict != journal.RiskRejected {
			t.Fatalf("decision %+v: verdict/reason inconsistent", d)
		}
	}
}
