package replay

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/mdjournal/mdjournal/internal/segfile"

	"github.com/klauspost/compress/zstd"

	"github.com/mdjournal/mdjournal/ops/compress"
	"github.com/mdjournal/mdjournal/reader"
	"github.com/mdjournal/mdjournal/ring"
	"github.com/mdjournal/mdjournal/synth"
	"github.com/mdjournal/mdjournal/wait"
	"github.com/mdjournal/mdjournal/writer"
)

// benchFrames is the journal replayed per pass: 1 M synthetic frames (about
// 62 MB of records) in 8 MiB segments, so the zstd variant has many
// archived segments.
const benchFrames = 1 << 20

func benchJournal(b *testing.B, compressed bool) string {
	b.Helper()
	dir := b.TempDir()
	w, err := writer.Open(dir, writer.Options{SegmentSize: 8 << 20, NoRestate: true}) // exactly benchFrames frames
	if err != nil {
		b.Fatal(err)
	}
	g := synth.New(1, 16)
	for i := range benchFrames {
		typ, id, p := g.Next()
		if _, err := w.Stage(typ, id, int64(i)*1000, p); err != nil {
			b.Fatal(err)
		}
		if i%256 == 255 {
			w.Publish()
		}
	}
	if err := w.Close(); err != nil {
		b.Fatal(err)
	}
	if compressed {
		nums, _ := segfile.Numbers(dir)
		for _, n := range nums {
			if _, err := compress.Compress(dir, n, zstd.SpeedDefault, 0); err != nil && !errors.Is(err, compress.ErrNotSealed) {
				b.Fatal(err)
			}
		}
	}
	return dir
}

// BenchmarkReplay measures --speed max replay into a ring on /dev/shm
// drained by a consumer goroutine (which reads each record's seq word and
// releases it), from raw and from zstd segments, beside a same-run baseline:
// a plain reader.TryNext loop over the same journal, no ring. One op is one
// pass over the journal; frames/s and ns/frame are the figures to compare.
func BenchmarkReplay(b *testing.B) {
	for _, src := range []struct {
		name       string
		compressed bool
	}{{"raw", false}, {"zstd", true}} {
		dir := benchJournal(b, src.compressed)
		b.Run(src.name+"/reader-baseline", func(b *testing.B) {
			start := time.Now()
			var n uint64
			for range b.N {
				rd, err := reader.Open(dir, reader.Options{})
				if err != nil {
					b.Fatal(err)
				}
				for {
					f, ok, err := rd.TryNext()
					if err != nil {
						b.Fatal(err)
					}
					if !ok {
						break
					}
					n += f.Seq & 1 // use the frame
				}
				rd.Close()
			}
			report(b, uint64(b.N)*benchFrames, time.Since(start))
		})
		b.Run(src.name+"/replay-ring", func(b *testing.B) {
			path := filepath.Join(ring.DefaultDir, fmt.Sprintf("mdj-replay-bench-%d", os.Getpid()))
			defer os.Remove(path)
			r, err := New(Options{Dir: dir, Ring: path, Loop: true, MaxPasses: b.N, Wait: wait.Spin})
			if err != nil {
				b.Fatal(err)
			}
			defer r.Close()
			// The replay is attached: the consumer joins at once.
			c, err := ring.NewConsumer(path, ring.ConsumerOptions{Wait: wait.Spin})
			if err != nil {
				b.Fatal(err)
			}
			defer c.Close()
			got := make(chan uint64, 1)
			go func() {
				var n, sum uint64
				for {
					rec, err := c.Read()
					if err == io.EOF {
						break
					}
					if err != nil {
						break
					}
					sum += binary.LittleEndian.Uint64(rec[8:])
					c.Release()
					n++
				}
				got <- n
			}()
			b.ResetTimer()
			start := time.Now()
			st, err := r.Run(context.Background())
			if err != nil {
				b.Fatal(err)
			}
			n := <-got
			el := time.Since(start) // until the consumer drained the last record
			if n != st.Frames || n != uint64(b.N)*benchFrames {
				b.Fatalf("consumed %d, replayed %d, want %d", n, st.Frames, b.N*benchFrames)
			}
			report(b, n, el)
		})
	}
}

func report(b *testing.B, frames uint64, el time.Duration) {
	b.ReportMetric(float64(frames)/el.Seconds(), "frames/s")
	b.ReportMetric(float64(el.Nanoseconds())/float64(frames), "ns/frame")
	b.ReportMetric(0, "ns/op")
}
