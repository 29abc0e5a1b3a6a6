package stats_test

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/mdjournal/mdjournal/internal/testutil"
	"github.com/mdjournal/mdjournal/journal"
	"github.com/mdjournal/mdjournal/stats"
)

func TestMain(m *testing.M) {
	if testutil.Role() == "publisher" {
		publisher()
		return
	}
	os.Exit(m.Run())
}

// publisher is a separate process: it publishes known values, says
// "ready", and waits to be killed.
func publisher() {
	p, err := stats.Create(os.Getenv("MDJ_DIR"), "engine", 0)
	if err != nil {
		fmt.Println("error:", err)
		os.Exit(1)
	}
	c, _ := p.Counter("orders")
	h, _ := p.Histogram("decision_ns")
	c.Add(41)
	c.Add(1)
	for v := int64(1); v <= 1000; v++ {
		h.Record(v)
	}
	fmt.Println("ready")
	bufio.NewReader(os.Stdin).ReadString('\n')
	p.Close()
}

// Buckets: exact below 32, then 16 per power of two; every value lies in
// its bucket and a bucket is at most 1/16 of its lower bound wide.
func TestBuckets(t *testing.T) {
	for _, c := range []struct {
		v      uint64
		bucket int
	}{
		{0, 0}, {31, 31}, {32, 32}, {33, 32}, {34, 33}, {63, 47}, {64, 48}, {1000, 6*16 + 1000>>5 - 16},
		{1 << 63, 960}, {1<<64 - 1, 975},
	} {
		if b := stats.BucketOf(c.v); b != c.bucket {
			t.Errorf("BucketOf(%d) = %d, want %d", c.v, b, c.bucket)
		}
	}
	for _, v := range []uint64{0, 5, 31, 32, 99, 1000, 123456, 1 << 40, 1<<62 + 12345, 1<<64 - 1} {
		lo, hi := stats.BucketBounds(stats.BucketOf(v))
		if v < lo || v > hi || (lo >= 32 && hi-lo+1 > lo/16) {
			t.Errorf("value %d in bucket [%d,%d]", v, lo, hi)
		}
	}
}

// Another process's counters and histograms are read live, and its death
// shows (no heartbeat).
func TestCrossProcess(t *testing.T) {
	dir := t.TempDir()
	cmd := testutil.Command(t, "TestMain", "publisher", "MDJ_DIR="+dir)
	in, _ := cmd.StdinPipe()
	out, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { in.Close(); cmd.Process.Kill(); cmd.Wait() }()
	if l, err := bufio.NewReader(out).ReadString('\n'); err != nil || strings.TrimSpace(l) != "ready" {
		t.Fatalf("publisher: %q %v", l, err)
	}
	paths, _ := stats.List(dir)
	if len(paths) != 1 {
		t.Fatalf("stats files: %v", paths)
	}
	s, err := stats.Read(paths[0])
	if err != nil {
		t.Fatal(err)
	}
	if s.Stage != "engine" || int(s.PID) != cmd.Process.Pid || !s.Alive(time.Now()) {
		t.Fatalf("header: %+v", s)
	}
	if len(s.Counters) != 1 || s.Counters[0] != (stats.CounterValue{Label: "orders", Value: 42}) {
		t.Fatalf("counters %+v", s.Counters)
	}
	h := s.Histograms[0]
	if h.Label != "decision_ns" || h.Count != 1000 || h.Max != 1000 {
		t.Fatalf("histogram %s count %d max %d", h.Label, h.Count, h.Max)
	}
	// The median of 1..1000 is 500: its bucket [496,511] answers 511, the
	// 99th percentile (990) is in [960,991], the maximum is exact.
	if q := h.Quantile(0.5); q != 511 {
		t.Errorf("p50 %d", q)
	}
	if q := h.Quantile(0.99); q != 991 {
		t.Errorf("p99 %d", q)
	}
	if q := h.Quantile(1); q != 1000 {
		t.Errorf("p100 %d", q)
	}
	// A second owner is refused while the first lives.
	if _, err := stats.Create(dir, "engine", 0); err == nil || !strings.Contains(err.Error(), fmt.Sprint(cmd.Process.Pid)) {
		t.Fatalf("second Create: %v", err)
	}
	cmd.Process.Kill()
	cmd.Wait()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		s, err := stats.Read(paths[0])
		if err != nil {
			t.Fatal(err)
		}
		if !s.Alive(time.Now()) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("a killed publisher still looks alive after 10 s")
		}
	}
	// Its stage can be taken over now.
	p, err := stats.Create(dir, "engine", 0)
	if err != nil {
		t.Fatal(err)
	}
	p.Close()
}

func TestHotPathAllocatesNothing(t *testing.T) {
	p, err := stats.Create(t.TempDir(), "x", 0)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	c, _ := p.Counter("c")
	h, _ := p.Histogram("h")
	v := int64(0)
	if n := testing.AllocsPerRun(1000, func() { c.Add(1); v += 977; h.Record(v) }); n != 0 {
		t.Fatalf("%v allocations", n)
	}
}

func TestDamage(t *testing.T) {
	dir := t.TempDir()
	p, err := stats.Create(dir, "x", 0)
	if err != nil {
		t.Fatal(err)
	}
	p.Close()
	path := stats.Path(dir, "x")
	if err := os.Truncate(path, 5000); err != nil {
		t.Fatal(err)
	}
	if _, err := stats.Read(path); !errors.Is(err, journal.ErrTruncated) {
		t.Fatalf("truncated: %v", err)
	}
	os.WriteFile(path, make([]byte, stats.FileSize), 0o640)
	if _, err := stats.Read(path); !errors.Is(err, journal.ErrBadMagic) {
		t.Fatalf("zeros: %v", err)
	}
	if _, err := stats.Create(dir, "../escape", 0); err == nil {
		t.Fatal("a stage name with a path was accepted")
	}
	if _, err := p.Counter(strings.Repeat("x", 49)); err == nil {
		t.Fatal("a 49-byte label was accepted")
	}
}
