package pipeline_test

import (
	"bufio"
	"io"
	"net/http"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/mdjournal/mdjournal/pipeline"
)

// scrape runs journalctl serve --metrics on 127.0.0.1 over the pipeline's
// journals and stats files, fetches /metrics once and parses it.
func scrape(t *testing.T, d pipeline.Dirs) func(name string, labels map[string]string) (float64, bool) {
	t.Helper()
	cmd := exec.Command(jcBin, "serve", "--metrics", "127.0.0.1:0", "--dir", d.MD(), "--dir", d.Orders(), "--dir", d.Risk(), "--stats", d.Stats())
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		t.Fatalf("serve: %v", err)
	}
	go io.Copy(io.Discard, out)
	url := strings.TrimSpace(strings.TrimPrefix(line, "serving metrics on "))
	if !strings.HasPrefix(url, "http://127.0.0.1:") {
		t.Fatalf("serve printed %q", line)
	}
	cl := http.Client{Timeout: 20 * time.Second}
	resp, err := cl.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("exposition does not parse: %v", err)
	}
	return func(name string, labels map[string]string) (float64, bool) {
		f := fams[name]
		if f == nil {
			return 0, false
		}
	next:
		for _, m := range f.Metric {
			for _, l := range m.Label {
				if want, ok := labels[l.GetName()]; ok && want != l.GetValue() {
					continue next
				}
			}
			if m.Gauge != nil {
				return m.GetGauge().GetValue(), true
			}
			if m.Histogram != nil {
				return float64(m.GetHistogram().GetSampleCount()), true
			}
			return 0, true
		}
		return 0, false
	}
}

// TestMetricsShowStages runs a short pipeline and scrapes journalctl serve
// --metrics: the three journals' last seqs, the engine's named reader lag
// (0 at the end), and every stage's counters and latency histograms are
// there, equal to what the journals hold.
func TestMetricsShowStages(t *testing.T) {
	d, ringPath := setup(t)
	runUninterrupted(t, d, ringPath, []string{"-synth", "5000", "-seed", "5"}, []string{"-join", "start"})
	os, ds := orders(t, d.Orders()), decisions(t, d.Risk())
	checkExactlyOnce(t, os, ds)
	get := scrape(t, d)
	want := []struct {
		name   string
		labels map[string]string
		v      float64
	}{
		{"mdjournal_last_seq", map[string]string{"journal": d.Orders()}, float64(len(os))},
		{"mdjournal_last_seq", map[string]string{"journal": d.Risk()}, float64(len(ds))},
		{"mdjournal_reader_lag_frames", map[string]string{"journal": d.MD(), "reader": "engine"}, 0},
		{"mdjournal_stage_value", map[string]string{"stage": "feed", "name": "frames"}, float64(checkSourceOnce(t, d.MD()))},
		{"mdjournal_stage_value", map[string]string{"stage": "engine", "name": "orders"}, float64(len(os))},
		{"mdjournal_stage_value", map[string]string{"stage": "risk", "name": "orders"}, float64(len(ds))},
		{"mdjournal_stage_latency_seconds", map[string]string{"stage": "risk", "name": "read_to_risk_decided_ns"}, float64(len(ds))},
	}
	for _, w := range want {
		v, ok := get(w.name, w.labels)
		if !ok || v != w.v {
			t.Errorf("%s%v = %v (present %v), want %v", w.name, w.labels, v, ok, w.v)
		}
	}
}
