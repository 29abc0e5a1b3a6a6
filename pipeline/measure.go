package pipeline

import (
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/mdjournal/mdjournal/stats"
)

// Hop is one measured hop of the pipeline: a histogram of a stage's stats
// file.
type Hop struct {
	Name      string // what the hop spans
	Stage     string // the stats file (stage) holding it
	Histogram string // its label
}

// Hops are the hops PrintHops reports, in pipeline order. Timestamps:
// "read" is when the feed read the frame from its source (the frame's
// source trailer), "seen" when the engine read it from the journal,
// "decided" when the engine decided (OrderRequest.Decided), "pushed" when
// the order was in the ring, "received" when risk read it
// (RiskDecision.Received), "risk decided" when risk decided.
var Hops = []Hop{
	{"source read -> frame published (feed)", "feed", "read_to_publish_ns"},
	{"source read -> engine read (journal hop, every frame)", "engine", "read_to_seen_ns"},
	{"engine read -> engine decided (book + strategy)", "engine", "seen_to_decided_ns"},
	{"engine decided -> pushed (orders journal + ring)", "engine", "decided_to_pushed_ns"},
	{"engine decided -> risk received (ring hop)", "risk", "decided_to_received_ns"},
	{"risk received -> risk decided (checks + audit journal)", "risk", "received_to_decided_ns"},
	{"END TO END: source read -> risk decided", "risk", "read_to_risk_decided_ns"},
}

// PrintHops writes one table of the hops' count, p50, p99, p99.9 and max
// (ns; each percentile at most 6.25% above the true value, the stats
// histograms' bucket width) from the stats files in dir.
func PrintHops(w io.Writer, dir string) error {
	snaps := map[string]*stats.Snapshot{}
	for _, h := range Hops {
		if _, ok := snaps[h.Stage]; ok {
			continue
		}
		s, err := stats.Read(stats.Path(dir, h.Stage))
		if err != nil {
			return fmt.Errorf("stage %s: %w", h.Stage, err)
		}
		snaps[h.Stage] = s
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "hop\tcount\tp50 ns\tp99 ns\tp99.9 ns\tmax ns\t\n")
	for _, h := range Hops {
		var hv *stats.HistogramValue
		for i := range snaps[h.Stage].Histograms {
			if snaps[h.Stage].Histograms[i].Label == h.Histogram {
				hv = &snaps[h.Stage].Histograms[i]
			}
		}
		if hv == nil {
			return fmt.Errorf("stage %s has no histogram %s", h.Stage, h.Histogram)
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%d\t\n", h.Name, hv.Count, hv.Quantile(0.5), hv.Quantile(0.99), hv.Quantile(0.999), hv.Max)
	}
	return tw.Flush()
}
