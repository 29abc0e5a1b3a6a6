package reader_test

import (
	"testing"

	"github.com/mdjournal/mdjournal/journal"
	"github.com/mdjournal/mdjournal/pin"
	"github.com/mdjournal/mdjournal/reader"
	"github.com/mdjournal/mdjournal/wait"
	"github.com/mdjournal/mdjournal/writer"
)

// BenchmarkStream64 streams b.N frames of 64-byte payloads from a writer
// goroutine (Append, durability none) to a reader goroutine spinning on
// TryNext (every frame's CRC checked) — the journal row of bench ipc's
// throughput, in one process, for profiling. Both are pinned to the first
// two available CPUs when there are two. Reports frames/s.
func BenchmarkStream64(b *testing.B) {
	dir := b.TempDir()
	w, err := writer.Open(dir, writer.Options{SegmentSize: 256 << 20})
	if err != nil {
		b.Fatal(err)
	}
	defer w.Close()
	r, err := reader.Open(dir, reader.Options{From: reader.Start(), Wait: wait.Spin})
	if err != nil {
		b.Fatal(err)
	}
	defer r.Close()
	cpus, _ := pin.Available()
	pinTo := func(i int) func() {
		if len(cpus) < 2 {
			return func() {}
		}
		p, err := pin.Thread(cpus[i])
		if err != nil {
			b.Fatal(err)
		}
		return p.Release
	}
	n := b.N
	done := make(chan error, 1)
	b.ResetTimer()
	go func() {
		defer pinTo(1)()
		for got := 0; got < n; {
			f, ok, err := r.TryNext()
			if err != nil {
				done <- err
				return
			}
			if ok && f.Type == journal.TypeRaw {
				got++
			}
		}
		done <- nil
	}()
	func() {
		defer pinTo(0)()
		p := make([]byte, 64)
		for i := 0; i < n; i++ {
			p[0] = byte(i)
			if _, err := w.Append(journal.TypeRaw, 1, int64(i), p); err != nil {
				b.Fatal(err)
			}
		}
	}()
	if err := <-done; err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "frames/s")
}
