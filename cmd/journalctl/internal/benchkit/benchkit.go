// Package benchkit holds the measuring pieces shared by `journalctl bench`:
// latency histograms (HdrHistogram), CPU pinning, pacing, and the two sides
// of each cross-process latency experiment. Every experiment reports its
// result beside a raw baseline measured the same way in the same run.
package benchkit

import (
	"encoding/json"
	"fmt"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	hdr "github.com/HdrHistogram/hdrhistogram-go"

	"github.com/mdjournal/mdjournal/internal/clock"
	"github.com/mdjournal/mdjournal/pin"
)

// Latency summarises a latency histogram in nanoseconds.
type Latency struct {
	Name    string  `json:"name"`
	Samples int64   `json:"samples"`
	Min     int64   `json:"min_ns"`
	P50     int64   `json:"p50_ns"`
	P90     int64   `json:"p90_ns"`
	P99     int64   `json:"p99_ns"`
	P999    int64   `json:"p99_9_ns"`
	Max     int64   `json:"max_ns"`
	Mean    float64 `json:"mean_ns"`
	// Percentiles for plotting: value at each of PlotQuantiles.
	Curve []int64 `json:"curve_ns,omitempty"`
}

// PlotQuantiles are the percentiles a latency curve is sampled at.
var PlotQuantiles = []float64{1, 10, 25, 50, 75, 90, 95, 99, 99.5, 99.9, 99.95, 99.99, 100}

// NewHistogram tracks 1 ns .. 10 s with 3 significant digits.
func NewHistogram() *hdr.Histogram { return hdr.New(1, int64(10*time.Second), 3) }

// Summarize turns a histogram into a Latency.
func Summarize(name string, h *hdr.Histogram) Latency {
	l := Latency{Name: name, Samples: h.TotalCount(), Min: h.Min(), P50: h.ValueAtQuantile(50), P90: h.ValueAtQuantile(90),
		P99: h.ValueAtQuantile(99), P999: h.ValueAtQuantile(99.9), Max: h.Max(), Mean: h.Mean()}
	for _, q := range PlotQuantiles {
		l.Curve = append(l.Curve, h.ValueAtQuantile(q))
	}
	return l
}

// EncodeHistogram serialises a histogram as one JSON line: child processes
// hand their whole histogram to the parent, which merges rounds.
func EncodeHistogram(h *hdr.Histogram) string {
	b, _ := json.Marshal(h.Export())
	return string(b)
}

// DecodeHistogram parses EncodeHistogram's output.
func DecodeHistogram(s string) (*hdr.Histogram, error) {
	var snap hdr.Snapshot
	if err := json.Unmarshal([]byte(s), &snap); err != nil {
		return nil, err
	}
	return hdr.Import(&snap), nil
}

// Pin binds the calling goroutine to cpu (package pin; cpu < 0: no
// pinning). Unpin, on the same goroutine, undoes it. Several goroutines may
// be pinned at once (a benchmark's sender and receiver): each binding is
// kept by the OS thread it locked.
func Pin(cpu int) error {
	if cpu < 0 {
		return nil
	}
	p, err := pin.Thread(cpu) // locks the goroutine to its thread
	if err != nil {
		return err
	}
	pinMu.Lock()
	pinned[unix.Gettid()] = p
	pinMu.Unlock()
	return nil
}

// pinned holds the bindings Pin made, by thread id.
var (
	pinMu  sync.Mutex
	pinned = map[int]*pin.Pinned{}
)

// Unpin restores what Pin(cpu) changed on this goroutine, so a caller that
// keeps running (a test) is not left on one CPU.
func Unpin(cpu int) {
	if cpu < 0 {
		return
	}
	tid := unix.Gettid()
	pinMu.Lock()
	p := pinned[tid]
	delete(pinned, tid)
	pinMu.Unlock()
	if p != nil {
		p.Release()
	}
}

// SpinUntil busy-waits until the monotonic clock reaches t (pacing without
// the scheduler's sleep granularity).
func SpinUntil(t int64) {
	for clock.Nanotime() < t {
	}
}

// Ratio formats a/b as "1.23x".
func Ratio(a, b int64) string {
	if b <= 0 {
		return "n/a"
	}
	return fmt.Sprintf("%.2fx", float64(a)/float64(b))
}
