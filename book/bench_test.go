package book

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/mdjournal/mdjournal/journal"
)

// stream is a synthetic but realistic L3 flow: adds at a geometric distance
// from the best price (most activity at the top), and cancels, deletes and
// executions of levels that exist, sized no larger than what rests there, so
// replaying it never clamps. seed is the book the stream starts from.
type stream struct {
	seed   []journal.BookLevel
	frames []journal.Frame
}

func makeStream(n int) *stream {
	r := rand.New(rand.NewPCG(1, 2))
	b := New(0)
	s := &stream{}
	const mid = 1_000_000
	for i := 1; i <= 50; i++ {
		for _, l := range []journal.BookLevel{{Price: mid - int64(i)*100, Qty: 100, Side: bid}, {Price: mid + int64(i)*100, Qty: 100, Side: ask}} {
			s.seed = append(s.seed, l)
			b.ApplyLevel(&l)
		}
	}
	for len(s.frames) < n {
		side := journal.Side(1 + r.IntN(2))
		d := 0
		for d < 40 && r.IntN(3) != 0 { // P(depth d) ~ (2/3)^d
			d++
		}
		o := journal.Order{OrderID: uint64(len(s.frames)), Side: side}
		typ := journal.TypeOrderAdd
		lv, ok := b.At(side, d)
		best, _ := b.At(side, 0)
		if !ok || b.Depth(side) < 20 || r.IntN(2) == 0 {
			step := int64(d-1) * 100 // d == 0 improves the best by a tick
			if side == bid {
				o.Price = best.Price - step
			} else {
				o.Price = best.Price + step
			}
			o.Qty = int64(1 + r.IntN(300))
		} else {
			typ = []journal.MsgType{journal.TypeOrderCancel, journal.TypeOrderDelete, journal.TypeOrderExecute}[r.IntN(3)]
			o.Price, o.Qty = lv.Price, min(lv.Qty, int64(1+r.IntN(300)))
		}
		if err := b.ApplyOrder(typ, &o); err != nil {
			panic(err)
		}
		p := o.Encode(make([]byte, 32))
		s.frames = append(s.frames, journal.Frame{Seq: uint64(len(s.frames) + 1), Type: typ, Payload: p})
	}
	return s
}

func (s *stream) reset(b *Book) {
	b.Reset()
	for i := range s.seed {
		b.ApplyLevel(&s.seed[i])
	}
}

// baselineCopy20 is the same-run yardstick: copying 20 (price, qty) int64
// pairs, i.e. the memory traffic of publishing a 10-level top of both sides.
func baselineCopy20(n int) time.Duration {
	src := make([]Level, 20)
	dst := make([]Level, 20)
	for i := range src {
		src[i] = Level{int64(i), int64(i)}
	}
	start := time.Now()
	for i := 0; i < n; i++ {
		src[i%20].Qty = int64(i)
		copy(dst, src)
	}
	el := time.Since(start)
	if dst[0].Price != 0 {
		panic("unreachable: keeps the copy alive")
	}
	return el
}

func reportBaseline(b *testing.B, elapsed time.Duration) {
	base := baselineCopy20(b.N)
	b.ReportMetric(float64(base.Nanoseconds())/float64(b.N), "baseline-ns/op")
	if base > 0 {
		b.ReportMetric(float64(elapsed)/float64(base), "x-baseline")
	}
}

// BenchmarkApplyL3Top10 measures one L3 apply (from a frame, decoding
// included) plus publishing the 10-level top of both sides.
func BenchmarkApplyL3Top10(b *testing.B) {
	s := makeStream(1 << 16)
	bk := New(0)
	s.reset(bk)
	var bids, asks [10]Level
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	for i := 0; i < b.N; i++ {
		j := i & (len(s.frames) - 1)
		if j == 0 && i > 0 {
			s.reset(bk)
		}
		bk.ApplyFrame(&s.frames[j])
		bk.Top(bid, bids[:])
		bk.Top(ask, asks[:])
	}
	el := time.Since(start)
	b.StopTimer()
	if st := bk.Stats(); st.Clamped+st.Missing+st.Rejected != 0 {
		b.Fatalf("stream replay was not clean: %+v", st)
	}
	reportBaseline(b, el)
}

// BenchmarkTop10 measures copying a 10-level top of both sides.
func BenchmarkTop10(b *testing.B) {
	s := makeStream(1 << 12)
	bk := New(0)
	s.reset(bk)
	for i := range s.frames {
		bk.ApplyFrame(&s.frames[i])
	}
	var bids, asks [10]Level
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	for i := 0; i < b.N; i++ {
		bk.Top(bid, bids[:])
		bk.Top(ask, asks[:])
	}
	el := time.Since(start)
	b.StopTimer()
	reportBaseline(b, el)
}

// BenchmarkBaselineCopy20 is the baseline on its own, for the same run.
func BenchmarkBaselineCopy20(b *testing.B) {
	b.ReportAllocs()
	baselineCopy20(b.N)
}

func TestZeroAllocs(t *testing.T) {
	s := makeStream(1 << 12)
	bk := New(0)
	s.reset(bk)
	var dst [10]Level
	i := 0
	if a := testing.AllocsPerRun(len(s.frames)-1, func() {
		if err := bk.ApplyFrame(&s.frames[i]); err != nil {
			t.Fatal(err)
		}
		i++
	}); a != 0 {
		t.Errorf("ApplyFrame allocates %.2f per run", a)
	}
	if a := testing.AllocsPerRun(1000, func() { bk.Top(bid, dst[:]); bk.Top(ask, dst[:]) }); a != 0 {
		t.Errorf("Top allocates %.2f per run", a)
	}
	o := journal.Order{Price: 1_000_000, Qty: 1, Side: bid}
	if a := testing.AllocsPerRun(1000, func() {
		bk.ApplyOrder(journal.TypeOrderAdd, &o)
		bk.ApplyOrder(journal.TypeOrderDelete, &o)
	}); a != 0 {
		t.Errorf("ApplyOrder allocates %.2f per run", a)
	}
	s2 := NewBooks(0)
	f := s.frames[0]
	s2.ApplyFrame(&f)
	if a := testing.AllocsPerRun(1000, func() { s2.ApplyFrame(&f) }); a != 0 {
		t.Errorf("Books.ApplyFrame allocates %.2f per run", a)
	}
}
