package ring

import (
	"runtime"
	"testing"

	"github.com/mdjournal/mdjournal/wait"
)

// benchRing streams b.N records of size bytes from a producer goroutine to
// the benchmark goroutine (consumer) through a 1 MiB ring, with spinning
// sides. The producer copies each message in, the consumer copies each view
// out (so every byte really crosses cores): two copies per message against
// memcpy's one. batch > 1 publishes and releases once per batch records.
func benchRing(b *testing.B, size int, batch int) { benchRing2(b, size, batch, batch) }

func benchRing2(b *testing.B, size int, batch, cbatch int) {
	_, p, c := newPair(b, 1<<20, wait.Spin)
	msg := make([]byte, size)
	n := b.N
	b.SetBytes(int64(size))
	b.ReportAllocs()
	b.ResetTimer()
	go func() {
		for i := 0; i < n; i++ {
			msg[0] = byte(i)
			for p.TryAppend(msg) != nil {
				p.Flush()
			}
			if (i+1)%batch == 0 {
				p.Flush()
			}
		}
		p.Flush()
	}()
	var sink byte
	out := make([]byte, size)
	for i := 0; i < n; i++ {
		v, ok := c.TryRead()
		for !ok {
			v, ok = c.TryRead()
		}
		copy(out, v)
		sink ^= out[0]
		if cbatch == 1 || (i+1)%cbatch == 0 {
			c.Release()
		}
	}
	c.Release()
	b.StopTimer()
	report(b)
	_ = sink
}

func report(b *testing.B) {
	s := b.Elapsed().Seconds()
	if s > 0 {
		b.ReportMetric(float64(b.N)/s/1e6, "Mmsgs/s")
	}
}

func BenchmarkRing64(b *testing.B)      { benchRing(b, 64, 1) }
func BenchmarkRing1K(b *testing.B)      { benchRing(b, 1024, 1) }
func BenchmarkRingBatch64(b *testing.B) { benchRing(b, 64, 32) }
func BenchmarkRingBatch1K(b *testing.B) { benchRing(b, 1024, 32) }

// benchMemcpy is the baseline: copying size bytes per message through a
// buffer of the ring's size (1 MiB), the same working set the ring touches.
func benchMemcpy(b *testing.B, size int) {
	src := make([]byte, size)
	dst := make([]byte, 1<<20)
	b.SetBytes(int64(size))
	b.ReportAllocs()
	off := 0
	for i := 0; i < b.N; i++ {
		src[0] = byte(i)
		copy(dst[off:off+size], src)
		off += size
		if off+size > len(dst) {
			off = 0
		}
	}
	runtime.KeepAlive(dst)
	report(b)
}

func BenchmarkRingPB64(b *testing.B) { benchRing2(b, 64, 32, 1) }
func BenchmarkRingCB64(b *testing.B) { benchRing2(b, 64, 1, 32) }

func BenchmarkMemcpy64(b *testing.B) { benchMemcpy(b, 64) }
func BenchmarkMemcpy1K(b *testing.B) { benchMemcpy(b, 1024) }

// benchSingle writes and reads each record in one goroutine: the ring's own
// instruction cost per message, without any cross-core cache traffic.
func benchSingle(b *testing.B, size int) {
	_, p, c := newPair(b, 1<<20, wait.Spin)
	msg := make([]byte, size)
	b.SetBytes(int64(size))
	b.ReportAllocs()
	var sink byte
	for i := 0; i < b.N; i++ {
		if p.TryWrite(msg) != nil {
			b.Fatal("full")
		}
		v, _ := c.TryRead()
		sink ^= v[0]
		c.Release()
	}
	report(b)
	_ = sink
}

func BenchmarkRingSingle64(b *testing.B) { benchSingle(b, 64) }
func BenchmarkRingSingle1K(b *testing.B) { benchSingle(b, 1024) }
