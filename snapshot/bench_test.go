package snapshot

import (
	"testing"
	"time"
)

// Benchmarks (go test -bench . -run ^$ ./snapshot/). Each Read benchmark
// first times a plain copy of the same book from ordinary Go memory (the
// baseline) for b.N iterations in the same run, and reports
// baseline-ns/op and x-baseline (Read time / baseline time).

// plainSlot is a slot's content as an ordinary Go struct.
type plainSlot struct {
	Seq        uint64
	TS         int64
	Instrument uint32
	PriceScale int32
	Symbol     [16]byte
	NB, NA     uint32
	Trade      Trade
	Bids, Asks [invDepth]Level
}

var sinkBook Book

func fullBook(k uint64) (b, a []Level, ts int64, tr Trade) {
	var bb, ab [invDepth]Level
	k = k - k%(invDepth+1) + invDepth // nb = 10
	for (k/3)%(invDepth+1) != invDepth {
		k += invDepth + 1 // na = 10 too
	}
	return invBook(k, bb[:], ab[:])
}

func BenchmarkPublish10(b *testing.B) {
	w, _ := create(b, invDepth, 8)
	bids, asks, ts, tr := fullBook(1)
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		w.Publish(stressSlot, uint64(i), ts, bids, asks, tr)
	}
}

// baseline copies a plainSlot into dst n times and returns ns per copy.
func baseline(n int, src *plainSlot, dst *Book) float64 {
	start := time.Now()
	for range n {
		s := src
		dst.Seq, dst.TS, dst.Instrument, dst.PriceScale, dst.Symbol = s.Seq, s.TS, s.Instrument, s.PriceScale, s.Symbol
		dst.LastTrade = s.Trade
		dst.Bids = dst.Bids[:s.NB]
		copy(dst.Bids, s.Bids[:s.NB])
		dst.Asks = dst.Asks[:s.NA]
		copy(dst.Asks, s.Asks[:s.NA])
	}
	return float64(time.Since(start).Nanoseconds()) / float64(n)
}

func benchRead(b *testing.B, read func(r *Reader, dst *Book) error) {
	w, path := create(b, invDepth, 8)
	bids, asks, ts, tr := fullBook(1)
	w.Publish(stressSlot, 1, ts, bids, asks, tr)
	r := open(b, path)
	src := &plainSlot{Seq: 1, TS: ts, Instrument: stressSlot, NB: invDepth, NA: invDepth, Trade: tr}
	copy(src.Bids[:], bids)
	copy(src.Asks[:], asks)
	dst := &sinkBook
	dst.Bids, dst.Asks = make([]Level, invDepth), make([]Level, invDepth)
	if err := read(r, dst); err != nil || len(dst.Bids) != invDepth || len(dst.Asks) != invDepth {
		b.Fatal(err, len(dst.Bids), len(dst.Asks))
	}
	base := baseline(max(b.N, 1000), src, dst)
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if err := read(r, dst); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	ns := float64(b.Elapsed().Nanoseconds()) / float64(b.N)
	b.ReportMetric(base, "baseline-ns/op")
	b.ReportMetric(ns/base, "x-baseline")
}

// BenchmarkRead10 is Reader.Read of a full 10-level book, uncontended: the
// seqlock loop with atomic loads and the SIGBUS guard.
func BenchmarkRead10(b *testing.B) {
	benchRead(b, func(r *Reader, dst *Book) error { return r.Read(stressSlot, dst) })
}

// BenchmarkRead10NoFaultGuard is the same copy without SetPanicOnFault and
// the deferred recover, to price the truncation guard.
func BenchmarkRead10NoFaultGuard(b *testing.B) {
	benchRead(b, func(r *Reader, dst *Book) error { return r.read(stressSlot, dst, r.StallTimeout) })
}

// BenchmarkView10BestBidAsk reads the top of book through a View.
func BenchmarkView10BestBidAsk(b *testing.B) {
	w, path := create(b, invDepth, 8)
	bids, asks, ts, tr := fullBook(1)
	w.Publish(stressSlot, 1, ts, bids, asks, tr)
	r := open(b, path)
	v, _ := r.View(stressSlot)
	var bid, ask Level
	b.ReportAllocs()
	for b.Loop() {
		for {
			c := v.Begin()
			bid, ask = v.Bid(0), v.Ask(0)
			if v.Valid(c) {
				break
			}
		}
	}
	if bid != bids[0] || ask != asks[0] {
		b.Fatal(bid, ask)
	}
}
