package booksnap_test

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/mdjournal/mdjournal/book"
	"github.com/mdjournal/mdjournal/booksnap"
	"github.com/mdjournal/mdjournal/journal"
	"github.com/mdjournal/mdjournal/writer"
)

// Benchmarks (go test -bench . -run '^$' -count 10 ./booksnap/).
//
// BenchmarkObserve times the maintainer's per-frame work: apply one L3 frame
// to the full-depth book and publish the instrument's top 10 per side into
// its snapshot slot. Before the timed loop it times, in the same run and for
// the same b.N frames, the book apply alone (book.Book.ApplyFrame), and
// reports baseline-ns/op and x-baseline, so the publish's cost reads
// independently of the machine's speed.

func BenchmarkObserve(b *testing.B) {
	s := newStream(1 << 14)
	m, err := booksnap.Open(filepath.Join(b.TempDir(), "s.snap"), 10, 4, 1)
	if err != nil {
		b.Fatal(err)
	}
	defer m.Close()
	base := book.New(0)
	seq := uint64(0)
	for _, f := range append([]journal.Frame{s.def}, s.seed...) {
		seq++
		f.Seq = seq
		m.Observe(&f)
		base.ApplyFrame(&f)
	}
	frames := s.cycle
	// Baseline: the same frames through the book alone.
	start := time.Now()
	for i := range b.N {
		f := &frames[i%len(frames)]
		f.Seq = seq + uint64(i) + 1
		base.ApplyFrame(f)
	}
	baseNs := float64(time.Since(start).Nanoseconds()) / float64(b.N)
	seq += uint64(b.N)
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		f := &frames[i%len(frames)]
		f.Seq = seq + uint64(i) + 1
		m.Observe(f)
	}
	b.StopTimer()
	ns := float64(b.Elapsed().Nanoseconds()) / float64(b.N)
	b.ReportMetric(baseNs, "baseline-ns/op")
	b.ReportMetric(ns/baseNs, "x-baseline")
	if st := m.Stats(); st.Rejected != 0 {
		b.Fatalf("stats %+v", st)
	}
}

// BenchmarkAppend times writer.Append of the same L3 frames with the
// maintainer as Observer; its baseline is the same appends to a journal
// without one, in the same run: x-baseline is what keeping the snapshot
// costs the write path.
func BenchmarkAppend(b *testing.B) {
	s := newStream(1 << 14)
	tmp := b.TempDir()
	plain, err := writer.Open(filepath.Join(tmp, "plain"), writer.Options{SegmentSize: 1 << 30})
	if err != nil {
		b.Fatal(err)
	}
	defer plain.Close()
	w, m, err := booksnap.OpenWriter(filepath.Join(tmp, "obs"), writer.Options{SegmentSize: 1 << 30},
		booksnap.Config{Path: filepath.Join(tmp, "s.snap"), Depth: 10, Capacity: 4})
	if err != nil {
		b.Fatal(err)
	}
	defer m.Close()
	defer w.Close()
	head := append([]journal.Frame{s.def}, s.seed...)
	appendFrames(b, plain, head)
	appendFrames(b, w, head)
	frames := s.cycle
	start := time.Now()
	for i := range b.N {
		f := &frames[i%len(frames)]
		plain.Append(f.Type, f.Instrument, int64(i), f.Payload)
	}
	baseNs := float64(time.Since(start).Nanoseconds()) / float64(b.N)
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		f := &frames[i%len(frames)]
		w.Append(f.Type, f.Instrument, int64(i), f.Payload)
	}
	b.StopTimer()
	ns := float64(b.Elapsed().Nanoseconds()) / float64(b.N)
	b.ReportMetric(baseNs, "baseline-ns/op")
	b.ReportMetric(ns/baseNs, "x-baseline")
}

// nopObserver observes nothing and admits everything (it is no Admitter).
type nopObserver struct{}

func (nopObserver) Observe(*journal.Frame) {}

// admitOnly asks the maintainer's Admit and observes nothing.
type admitOnly struct{ m *booksnap.Maintainer }

func (admitOnly) Observe(*journal.Frame) {}
func (a admitOnly) Admit(typ journal.MsgType, instrument uint32) error {
	return a.m.Admit(typ, instrument)
}

// BenchmarkAdmit times writer.Append with an Observer that is an Admitter
// calling the maintainer's Admit (and observes nothing); its baseline is
// the same appends, in the same run, with an Observer that is no Admitter:
// x-baseline is what asking Admit costs the write path per frame.
func BenchmarkAdmit(b *testing.B) {
	s := newStream(1 << 14)
	tmp := b.TempDir()
	m, err := booksnap.Open(filepath.Join(tmp, "s.snap"), 10, 4, 1)
	if err != nil {
		b.Fatal(err)
	}
	defer m.Close()
	plain, err := writer.Open(filepath.Join(tmp, "plain"), writer.Options{SegmentSize: 1 << 30, Observer: nopObserver{}})
	if err != nil {
		b.Fatal(err)
	}
	defer plain.Close()
	w, err := writer.Open(filepath.Join(tmp, "admit"), writer.Options{SegmentSize: 1 << 30, Observer: admitOnly{m}})
	if err != nil {
		b.Fatal(err)
	}
	defer w.Close()
	head := append([]journal.Frame{s.def}, s.seed...)
	appendFrames(b, plain, head)
	appendFrames(b, w, head)
	frames := s.cycle
	start := time.Now()
	for i := range b.N {
		f := &frames[i%len(frames)]
		plain.Append(f.Type, f.Instrument, int64(i), f.Payload)
	}
	baseNs := float64(time.Since(start).Nanoseconds()) / float64(b.N)
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		f := &frames[i%len(frames)]
		if _, err := w.Append(f.Type, f.Instrument, int64(i), f.Payload); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	ns := float64(b.Elapsed().Nanoseconds()) / float64(b.N)
	b.ReportMetric(baseNs, "baseline-ns/op")
	b.ReportMetric(ns/baseNs, "x-baseline")
}

// nopAdmitter admits everything without looking.
type nopAdmitter struct{}

//go:noinline
func (nopAdmitter) Admit(journal.MsgType, uint32) error { return nil }

var (
	admitSink error
	// admitters are called through these variables, as Stage calls its
	// Observer's Admit: the compiler cannot devirtualize them.
	nopAdm, mAdm writer.Admitter
)

// BenchmarkAdmitCall times the maintainer's Admit called through the
// writer.Admitter interface, as Stage calls it, over the stream's frame
// types and ids; its baseline is the same interface call to an Admitter
// that admits everything without looking, in the same run: the difference
// is the check itself.
func BenchmarkAdmitCall(b *testing.B) {
	s := newStream(4096)
	m, err := booksnap.Open(filepath.Join(b.TempDir(), "s.snap"), 10, 4, 1)
	if err != nil {
		b.Fatal(err)
	}
	defer m.Close()
	type ti struct {
		typ journal.MsgType
		id  uint32
	}
	in := make([]ti, 4096) // 32 KiB: in L1/L2, so the loop measures the calls
	for i := range in {
		f := &s.cycle[i%len(s.cycle)]
		in[i] = ti{f.Type, f.Instrument}
	}
	nopAdm, mAdm = nopAdmitter{}, m
	call := func(a *writer.Admitter, n int) {
		for i := range n {
			x := in[i&4095]
			if err := (*a).Admit(x.typ, x.id); err != nil {
				admitSink = err
			}
		}
	}
	start := time.Now()
	call(&nopAdm, b.N)
	baseNs := float64(time.Since(start).Nanoseconds()) / float64(b.N)
	b.ReportAllocs()
	b.ResetTimer()
	call(&mAdm, b.N)
	b.StopTimer()
	ns := float64(b.Elapsed().Nanoseconds()) / float64(b.N)
	b.ReportMetric(baseNs, "baseline-ns/op")
	b.ReportMetric(ns/baseNs, "x-baseline")
	if admitSink != nil {
		b.Fatal(admitSink)
	}
}
