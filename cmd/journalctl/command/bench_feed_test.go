package command

import (
	"encoding/json"
	"strings"
	"testing"
)

// TestBenchFeed runs `bench feed` small: both tables are printed with the
// floor and the feed, and --json carries positive numbers for both parts.
func TestBenchFeed(t *testing.T) {
	code, out, errs := run(t, "bench", "feed", "--packets", "50", "--rounds", "1", "--samples", "300", "--gap", "50us", "--live", "1000")
	if code != 0 {
		t.Fatalf("exit %d: %s %s", code, out, errs)
	}
	for _, want := range []string{"recvmmsg into a buffer, dropped (floor)", "feed: recvmmsg → sequence → decode → journal", "UDP one-way floor", "feed: send → frame published", "p50 ratio"} {
		if !strings.Contains(out, want) {
			t.Fatalf("no %q in:\n%s", want, out)
		}
	}
	code, out, errs = run(t, "bench", "feed", "--packets", "50", "--rounds", "1", "--samples", "300", "--gap", "50us", "--live", "1000", "--json")
	var v struct {
		Throughput struct {
			Floor float64 `json:"floor_ns_per_msg"`
			Feed  float64 `json:"feed_ns_per_msg"`
		} `json:"throughput"`
		Latency struct {
			Floor struct {
				P50     int64 `json:"p50_ns"`
				Samples int64 `json:"samples"`
			} `json:"floor_send_to_recv"`
			Feed struct {
				P50     int64 `json:"p50_ns"`
				Samples int64 `json:"samples"`
			} `json:"feed_send_to_published"`
		} `json:"latency"`
	}
	if code != 0 || json.Unmarshal([]byte(out), &v) != nil {
		t.Fatalf("exit %d: %s %s", code, out, errs)
	}
	if v.Throughput.Floor <= 0 || v.Throughput.Feed <= 0 || v.Latency.Floor.P50 <= 0 || v.Latency.Feed.P50 <= 0 ||
		v.Latency.Floor.Samples != v.Latency.Feed.Samples || v.Latency.Feed.Samples == 0 {
		t.Fatalf("%+v", v)
	}
	if code, _, _ := run(t, "bench", "feed", "--packets", "1"); code != ExitUsage {
		t.Fatalf("--packets 1: exit %d, want 2", code)
	}
}
