package export

import (
	"context"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/mdjournal/mdjournal/reader"
	"github.com/mdjournal/mdjournal/synth"
	"github.com/mdjournal/mdjournal/writer"
)

// benchFrames is the size of the benchmark journal (synth: quotes, trades
// and book levels of 8 instruments, scale 4).
const benchFrames = 1_000_000

// cpuTime is the process's user + system CPU time: on a shared machine
// the wall clock also counts other processes' turns, the CPU time does not
// (it does count this process's GC and background goroutines).
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkExport exports a 1M-frame journal to a byte counter, beside the
// baseline measured in the same run: the reader reading the same frames
// and discarding them. Each iteration is one whole export; rows/s and
// ns/row are wall-clock figures, cpu-ns/row the CPU time the process spent
// per row (the figure to compare on a busy machine).
//
//	go test ./export -run '^$' -bench Export -benchtime 3x -count 5
func BenchmarkExport(b *testing.B) {
	dir := filepath.Join(b.TempDir(), "j")
	w, err := writer.Open(dir, writer.Options{})
	if err != nil {
		b.Fatal(err)
	}
	g := synth.New(1, 8)
	ts := base
	for range benchFrames {
		typ, id, p := g.Next()
		ts += 1000
		if _, err := w.Stage(typ, id, ts, p); err != nil {
			b.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		b.Fatal(err)
	}
	var out countingWriter
	out.discard = true
	run := func(b *testing.B, sink func() Sink) {
		b.ReportAllocs()
		var rows int64
		cpu0, out0 := cpuTime(), out.n
		for b.Loop() {
			r, err := reader.Open(dir, reader.Options{})
			if err != nil {
				b.Fatal(err)
			}
			if sink == nil { // the baseline
				for {
					f, ok, err := r.TryNext()
					if err != nil {
						b.Fatal(err)
					}
					if !ok {
						break
					}
					rows += int64(f.Seq) & 1 // keep f alive
					rows++
				}
				rows -= benchFrames / 2
			} else {
				s := sink()
				st, err := Run(context.Background(), r, s, Options{})
				if err != nil {
					b.Fatal(err)
				}
				if err := s.Close(); err != nil {
					b.Fatal(err)
				}
				rows += st.Rows
			}
			r.Close()
		}
		cpu := cpuTime() - cpu0
		b.ReportMetric(float64(rows)/b.Elapsed().Seconds(), "rows/s")
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(rows), "ns/row")
		b.ReportMetric(float64(cpu.Nanoseconds())/float64(rows), "cpu-ns/row")
		if sink != nil {
			b.ReportMetric(float64(out.n-out0)/float64(rows), "bytes/row")
		}
	}
	b.Run("read-baseline", func(b *testing.B) { run(b, nil) })
	for _, c := range []Compression{Zstd, Snappy, Uncompressed} {
		b.Run("parquet-"+string(c), func(b *testing.B) {
			run(b, func() Sink {
				pw, err := NewParquet(&out, ParquetOptions{Compression: c})
				if err != nil {
					b.Fatal(err)
				}
				return pw
			})
		})
	}
	b.Run("csv", func(b *testing.B) { run(b, func() Sink { return NewCSV(&out, CSVOptions{}) }) })
}
