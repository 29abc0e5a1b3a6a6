package writer_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/mdjournal/mdjournal/internal/mmap"
	"github.com/mdjournal/mdjournal/journal"
	"github.com/mdjournal/mdjournal/writer"
)

// BenchmarkRawStore64 is the baseline for BenchmarkAppend64: plain 64-byte
// stores, back to back, into a prefaulted shared file mapping of the same
// size as a segment (wrapping at its end). No header, no checksum, no
// publish: the floor for "put 64 bytes in a mapped file".
func BenchmarkRawStore64(b *testing.B) {
	const size = 64 << 20
	f, err := os.Create(filepath.Join(b.TempDir(), "raw"))
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	if err := mmap.Reserve(f, size); err != nil {
		b.Fatal(err)
	}
	m, err := mmap.Map(f, size, true)
	if err != nil {
		b.Fatal(err)
	}
	defer mmap.Unmap(m)
	mmap.PopulateWrite(m)
	mmap.TouchWrite(m) // PopulateWrite alone leaves a lazily backed page's first store slow
	var payload [64]byte
	for i := range payload {
		payload[i] = byte(i)
	}
	off := 0
	b.SetBytes(64)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if off+64 > size {
			off = 0
		}
		copy(m[off:off+64], payload[:])
		off += 64
	}
}

// BenchmarkAppend64 appends Raw frames with 64-byte payloads (96 bytes on
// disk: 32-byte header) under each durability policy; one publish per frame
// unless the name says batch16.
func BenchmarkAppend64(b *testing.B) {
	for _, pol := range []string{"none", "async", "interval:10ms", "sync"} {
		for _, batch := range []int{1, 16} {
			name := pol
			if batch > 1 {
				name += "/batch16"
			}
			b.Run(name, func(b *testing.B) {
				d, _ := writer.ParseDurability(pol)
				w, err := writer.Open(b.TempDir(), writer.Options{Durability: d})
				if err != nil {
					b.Fatal(err)
				}
				defer w.Close()
				var payload [64]byte
				b.SetBytes(64)
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					if _, err := w.Stage(journal.TypeRaw, 1, int64(i), payload[:]); err != nil {
						b.Fatal(err)
					}
					if (i+1)%batch == 0 {
						if err := w.Publish(); err != nil {
							b.Fatal(err)
						}
					}
				}
				w.Publish()
				b.StopTimer()
				st := w.Stats()
				b.ReportMetric(float64(st.RollStalls), "roll-stalls")
			})
		}
	}
}
