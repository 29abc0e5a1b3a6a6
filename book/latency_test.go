package book

import (
	"slices"
	"testing"
	"time"
)

// BenchmarkApplyL3Latency reports the median and p99 of single L3 applies plus
// a 10-level top of both sides, each timed on its own. The cost of reading the
// clock is measured the same way and subtracted (reported as clock-p50-ns), so
// the percentiles are approximate to a few ns.
func BenchmarkApplyL3Latency(b *testing.B) {
	s := makeStream(1 << 16)
	bk := New(0)
	var bids, asks [10]Level
	lat := make([]int64, len(s.frames))
	clock := make([]int64, len(s.frames))
	b.ResetTimer()
	for n := 0; n < b.N; n++ {
		s.reset(bk)
		for i := range s.frames {
			t0 := time.Now()
			bk.ApplyFrame(&s.frames[i])
			bk.Top(bid, bids[:])
			bk.Top(ask, asks[:])
			lat[i] = int64(time.Since(t0))
		}
		for i := range clock {
			t0 := time.Now()
			clock[i] = int64(time.Since(t0))
		}
	}
	b.StopTimer()
	slices.Sort(lat)
	slices.Sort(clock)
	c := clock[len(clock)/2]
	b.ReportMetric(float64(lat[len(lat)/2]-c), "p50-ns")
	b.ReportMetric(float64(lat[len(lat)*99/100]-c), "p99-ns")
	b.ReportMetric(float64(c), "clock-p50-ns")
}
