package stats_test

import (
	"fmt"
	"log"
	"os"
	"time"

	"github.com/mdjournal/mdjournal/stats"
)

// A stage publishes counters and a latency histogram; a monitor in any
// other process reads them (journalctl top does this for a directory).
func Example() {
	dir, _ := os.MkdirTemp("", "stats")
	defer os.RemoveAll(dir)
	p, err := stats.Create(dir, "risk", 0)
	if err != nil {
		log.Fatal(err)
	}
	decided, _ := p.Counter("orders_decided")
	latency, _ := p.Histogram("decision_ns")
	for _, ns := range []int64{180, 210, 250, 4000} {
		decided.Add(1)
		latency.Record(ns)
	}

	s, err := stats.Read(stats.Path(dir, "risk"))
	if err != nil {
		log.Fatal(err)
	}
	h := s.Histograms[0]
	fmt.Println(s.Stage, s.Alive(time.Now()), s.Counters[0].Label, s.Counters[0].Value)
	fmt.Println(h.Label, "p50 ≤", h.Quantile(0.5), "max", h.Max)
	p.Close()
	// Output:
	// risk true orders_decided 4
	// decision_ns p50 ≤ 215 max 4000
}
