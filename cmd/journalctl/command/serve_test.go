package command

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/mdjournal/mdjournal/journal"
	"github.com/mdjournal/mdjournal/reader"
	"github.com/mdjournal/mdjournal/stats"
	"github.com/mdjournal/mdjournal/writer"
)

// serve answers a real Prometheus scrape over loopback with the journal's
// state, a named reader's lag and a stage's counters and histogram, in the
// exposition format Prometheus parses.
func TestServeMetrics(t *testing.T) {
	dir := t.TempDir()
	w, err := writer.Open(dir, writer.Options{SegmentSize: 256 << 10})
	if err != nil {
		t.Fatal(err)
	}
	for i := int64(1); i <= 100; i++ {
		w.Append(journal.TypeHeartbeat, 0, i, nil)
	}
	r, err := reader.Open(dir, reader.Options{Name: "risk"})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 40; i++ {
		r.TryNext()
	}
	r.Close()
	sdir := t.TempDir()
	p, err := stats.Create(sdir, "engine", 0)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	c, _ := p.Counter("orders")
	c.Add(5)
	h, _ := p.Histogram("decision_ns")
	h.Record(100)  // below 128 ns
	h.Record(1000) // below 1024 ns

	pr, pw := io.Pipe()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int, 1)
	go func() {
		var errb strings.Builder
		done <- Run(&Env{Stdin: strings.NewReader(""), Stdout: pw, Stderr: &errb, Ctx: ctx},
			[]string{"serve", "--metrics", "127.0.0.1:0", "--dir", dir, "--stats", sdir})
		pw.Close()
	}()
	line, err := bufio.NewReader(pr).ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	url := strings.TrimSpace(strings.TrimPrefix(line, "serving metrics on "))
	go io.Copy(io.Discard, pr)
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatalf("the exposition does not parse: %v", err)
	}
	gauge := func(name string, labels map[string]string) float64 {
		t.Helper()
		f := fams[name]
		if f == nil {
			t.Fatalf("no %s", name)
		}
	next:
		for _, m := range f.Metric {
			for _, l := range m.Label {
				if want, ok := labels[l.GetName()]; ok && want != l.GetValue() {
					continue next
				}
			}
			return m.GetGauge().GetValue()
		}
		t.Fatalf("no %s%v", name, labels)
		return 0
	}
	if v := gauge("mdjournal_last_seq", map[string]string{"journal": dir}); v != 100 {
		t.Errorf("last seq %v", v)
	}
	if v := gauge("mdjournal_writer_up", nil); v != 1 {
		t.Errorf("writer up %v", v)
	}
	if v := gauge("mdjournal_reader_lag_frames", map[string]string{"reader": "risk"}); v != 60 {
		t.Errorf("lag %v, want 60", v)
	}
	if v := gauge("mdjournal_stage_value", map[string]string{"stage": "engine", "name": "orders"}); v != 5 {
		t.Errorf("orders %v", v)
	}
	hf := fams["mdjournal_stage_latency_seconds"]
	if hf == nil || len(hf.Metric) != 1 {
		t.Fatalf("histogram family: %v", hf)
	}
	hist := hf.Metric[0].GetHistogram()
	le := map[float64]uint64{}
	for _, b := range hist.Bucket {
		le[b.GetUpperBound()] = b.GetCumulativeCount()
	}
	if hist.GetSampleCount() != 2 || le[64e-9] != 0 || le[128e-9] != 1 || le[512e-9] != 1 || le[1024e-9] != 2 {
		t.Errorf("histogram count %d buckets %v", hist.GetSampleCount(), le)
	}
	cancel()
	select {
	case code := <-done:
		if code != 0 {
			t.Fatalf("serve exited %d", code)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("serve did not stop after its context was cancelled")
	}
	w.Close()
}
