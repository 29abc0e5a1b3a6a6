package ring

import (
	"io"
	"os"
	"os/exec"
	"path/filepath"
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

// BenchmarkCrossProcessRTT64 bounces a 64-byte record off an echo process
// (ring there, ring back, both spinning) and reports half the round trip as
// the one-way latency. Both processes spin, so it needs two idle cores to
// mean anything.
func BenchmarkCrossProcessRTT64(b *testing.B) {
	for _, s := range []wait.Strategy{wait.Spin, wait.Futex} {
		b.Run(s.String(), func(b *testing.B) {
			dir := b.TempDir()
			there, back := filepath.Join(dir, "there"), filepath.Join(dir, "back")
			rt, err := Create(there, 64<<10, nil)
			if err != nil {
				b.Fatal(err)
			}
			defer rt.Close()
			rb, err := Create(back, 64<<10, nil)
			if err != nil {
				b.Fatal(err)
			}
			defer rb.Close()
			p, err := rt.Producer(s)
			if err != nil {
				b.Fatal(err)
			}
			c, err := rb.Consumer(s)
			if err != nil {
				b.Fatal(err)
			}
			cmd := exec.Command(os.Args[0], "-test.run=^TestHelperProcess$", "-test.count=1")
			cmd.Env = append(os.Environ(), helperEnv+"=echo", "MDJ_RING_PATH="+there,
				"MDJ_RING_PATH2="+back, "MDJ_RING_STRATEGY="+s.String())
			cmd.Stderr = os.Stderr
			if err := cmd.Start(); err != nil {
				b.Fatal(err)
			}
			defer cmd.Wait()
			msg := make([]byte, 64)
			// warm up: also waits for the echo process to attach
			for i := 0; i < 1000; i++ {
				p.Write(msg)
				if _, err := c.Read(); err != nil {
					b.Fatal(err)
				}
			}
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				msg[0] = byte(i)
				p.Write(msg)
				v, err := c.Read()
				if err != nil || v[0] != byte(i) {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/2, "ns/one-way")
			p.Close()
			if _, err := c.Read(); err != io.EOF {
				b.Fatalf("after close: %v", err)
			}
		})
	}
}
