package command

import (
	"encoding/json"
	"strings"
	"sync"
	"testing"

	"github.com/mdjournal/mdjournal/stats"
)

// top reads every stage's stats file: counters with their rates, latency
// percentiles over the last interval, the stage's state.
func TestTop(t *testing.T) {
	dir := t.TempDir()
	p, err := stats.Create(dir, "engine", 0)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := p.Counter("orders")
	h, _ := p.Histogram("decision_ns")
	c.Add(7)
	h.Record(100)
	h.Record(3000)

	code, out, errs := run(t, "top", "--stats", dir, "--samples", "1", "--json")
	if code != 0 {
		t.Fatalf("exit %d %s", code, errs)
	}
	var r topStage
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if r.Stage != "engine" || r.State != "alive" || len(r.Counters) != 1 || r.Counters[0].Value != 7 ||
		len(r.Histograms) != 1 || r.Histograms[0].Count != 2 || r.Histograms[0].Max != 3000 || r.Histograms[0].P50 != 103 { // 100 is in bucket [100,103]
		t.Fatalf("%+v", r)
	}

	// Values that keep arriving: the second refresh has rates and
	// percentiles over the interval.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
				c.Add(1)
				h.Record(500)
			}
		}
	}()
	code, out, _ = run(t, "top", "--stats", dir, "--samples", "2", "--interval", "50ms", "--json")
	close(stop)
	wg.Wait()
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if code != 0 || len(lines) != 2 {
		t.Fatalf("exit %d, %d lines", code, len(lines))
	}
	json.Unmarshal([]byte(lines[1]), &r)
	if r.Counters[0].PerSec <= 0 || r.Histograms[0].Window != "interval" || r.Histograms[0].P50 != 511 { // 500 is in [496,511]
		t.Fatalf("second refresh: %+v", r)
	}
	p.Close()
	code, out, _ = run(t, "top", "--stats", dir, "--samples", "1")
	if code != 0 || !strings.Contains(out, "engine  pid 0  exited") || !strings.Contains(out, "decision_ns") {
		t.Fatalf("text after close: exit %d\n%s", code, out)
	}
	if code, _, _ := run(t, "top", "--stats", dir, "--interval", "1ms"); code != ExitUsage {
		t.Fatalf("--interval 1ms: exit %d", code)
	}
}
