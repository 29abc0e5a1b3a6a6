package ring

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/mdjournal/mdjournal/internal/clock"
	"github.com/mdjournal/mdjournal/internal/mmap"
	"github.com/mdjournal/mdjournal/wait"
)

// Benchmarks (format.md §12; numbers in the package doc's "Performance"):
//
//	go test -run '^$' -bench 'Stream|PingPong' -benchtime 5000000x ./ring/
//
// BenchmarkStream    one-way stream, producer and consumer goroutines pinned
//                    to CPUs 0 and 1; b.N messages; Mmsgs/s. raw is the floor:
//                    fixed slots, one position word per side, no framing.
// BenchmarkStreamXProc  the same with the consumer in another process.
// BenchmarkPingPong  one-way latency p50 (round trip / 2) of the ring against
//                    a raw cache-line ping-pong measured in the same run,
//                    interleaved; reports both and their ratio.
//
// CPU pinning: MDJ_RING_CPUS="P,C" (default "0,1"); pinning that fails is
// reported and the benchmark runs unpinned.

// benchCPUs returns the CPUs for the producer (or pinger) and the consumer.
func benchCPUs() (int, int) {
	p, c := 0, 1
	if v := os.Getenv("MDJ_RING_CPUS"); v != "" {
		a, b, _ := strings.Cut(v, ",")
		p, _ = strconv.Atoi(a)
		c, _ = strconv.Atoi(b)
	}
	return p, c
}

// pin locks the calling goroutine to its thread and the thread to cpu. It
// returns an undo function.
func pin(cpu int) (func(), error) {
	runtime.LockOSThread()
	var old unix.CPUSet
	unix.SchedGetaffinity(0, &old)
	var s unix.CPUSet
	s.Set(cpu)
	if err := unix.SchedSetaffinity(0, &s); err != nil {
		runtime.UnlockOSThread()
		return func() {}, err
	}
	return func() { unix.SchedSetaffinity(0, &old); runtime.UnlockOSThread() }, nil
}

func mpsReport(b *testing.B, n int) {
	if s := b.Elapsed().Seconds(); s > 0 {
		b.ReportMetric(float64(n)/s/1e6, "Mmsgs/s")
	}
}

// BenchmarkStream streams messages of 64 B and 1 KiB one way between two
// goroutines pinned to two CPUs, through (1) raw, the floor (see rawQueue),
// (2) the ring per record: TryWrite publishes each message, TryRead and
// Release take each (a fault guard per call), and (3) the ring per batch:
// TryWriteBatch publishes up to 16 messages at once, TryReadBatch takes up
// to 256 (one guard, one publication or head store per batch). The
// producer copies each message in; the consumer copies each payload out
// and checks its sequence number. The three run interleaved in 10 rounds
// of b.N/10 messages each, so machine noise hits them alike; it reports
// the median rate of each (M msgs/s) and the ring's ratios to the raw floor.
func BenchmarkStream(b *testing.B) {
	for _, size := range []int{64, 1024} {
		b.Run(strconv.Itoa(size), func(b *testing.B) { interleavedStream(b, size) })
	}
}

type streamJob struct {
	raw, batch bool
	n          int
}

func interleavedStream(b *testing.B, size int) {
	const rounds = 10
	per := max(b.N/rounds, 1)
	// raw floor: fixed slots in a 1 MiB shared mapping
	m, err := shmMap(b, 1<<20+256)
	if err != nil {
		b.Fatal(err)
	}
	raw := rawQueue{tailp: (*uint64)(unsafe.Pointer(&m[0])), headp: (*uint64)(unsafe.Pointer(&m[128])), data: m[256:], size: size}
	raw.slots = uint64(len(raw.data) / size)
	_, p, c := newPair(b, 1<<20, wait.Spin)
	pc, cc := benchCPUs()
	jobs := make(chan streamJob)
	done := make(chan struct{})
	go func() {
		undo, err := pin(pc)
		defer undo()
		if err != nil {
			b.Logf("producer not pinned: %v", err)
		}
		msg := make([]byte, size)
		var batch [16][]byte
		for i := range batch {
			batch[i] = make([]byte, size)
		}
		seq := uint64(0)
		for j := range jobs {
			switch {
			case j.raw:
				raw.produce(j.n, msg)
			case !j.batch:
				for i := 0; i < j.n; i++ {
					binary.LittleEndian.PutUint64(msg, seq)
					seq++
					for p.TryWrite(msg) != nil {
					}
				}
			default:
				for i := 0; i < j.n; {
					k := min(len(batch), j.n-i)
					for x := range k {
						binary.LittleEndian.PutUint64(batch[x], seq+uint64(x))
					}
					w, _ := p.TryWriteBatch(batch[:k])
					seq += uint64(w)
					i += w
				}
			}
			done <- struct{}{}
		}
	}()
	undo, err := pin(cc)
	defer undo()
	if err != nil {
		b.Logf("consumer not pinned: %v", err)
	}
	out := make([]byte, size)
	next := uint64(0)
	bad := 0
	handle := func(v []byte) {
		copy(out, v)
		if binary.LittleEndian.Uint64(out) != next {
			bad++
		}
		next++
	}
	var rates [3][]float64
	b.SetBytes(int64(size))
	b.ReportAllocs()
	b.ResetTimer()
	for range rounds {
		for kind := range 3 {
			t0 := clock.Nanotime()
			jobs <- streamJob{raw: kind == 0, batch: kind == 2, n: per}
			switch kind {
			case 0:
				bad += raw.consume(per, out)
			case 1:
				for i := 0; i < per; i++ {
					v, ok := c.TryRead()
					for !ok {
						v, ok = c.TryRead()
					}
					handle(v)
					c.Release()
				}
			case 2:
				for got := 0; got < per; {
					k, _ := c.TryReadBatch(256, handle)
					got += k
				}
			}
			el := clock.Nanotime() - t0
			<-done
			rates[kind] = append(rates[kind], float64(per)/float64(el)*1e3)
		}
	}
	b.StopTimer()
	close(jobs)
	if bad != 0 {
		b.Fatalf("%d messages out of order", bad)
	}
	med := func(s []float64) float64 { slices.Sort(s); return s[len(s)/2] }
	r, rec, bat := med(rates[0]), med(rates[1]), med(rates[2])
	b.ReportMetric(r, "raw-Mmsgs/s")
	b.ReportMetric(rec, "record-Mmsgs/s")
	b.ReportMetric(bat, "batch-Mmsgs/s")
	b.ReportMetric(rec/r, "record/raw")
	b.ReportMetric(bat/r, "batch/raw")
}

// rawQueue is the throughput floor: fixed size-byte slots in a 1 MiB
// shared mapping with one position word per side, each cached by the
// other side, plain stores, the consumer releasing every 64 slots. No
// framing, no validation, no wrap handling: the least a shared-memory
// queue can do per message, with the same copy in and copy out.
type rawQueue struct {
	tailp, headp *uint64
	data         []byte
	size         int
	slots        uint64
	pos          uint64 // producer's
	headCache    uint64
	cpos         uint64 // consumer's
	tailCache    uint64
}

func (q *rawQueue) produce(n int, msg []byte) {
	for range n {
		i := q.pos
		for i-q.headCache >= q.slots {
			q.headCache = atomic.LoadUint64(q.headp)
		}
		binary.LittleEndian.PutUint64(msg, i)
		copy(q.data[(i%q.slots)*uint64(q.size):], msg)
		q.pos++
		storePlain(unsafe.Pointer(q.tailp), q.pos)
	}
}

func (q *rawQueue) consume(n int, out []byte) (bad int) {
	for range n {
		i := q.cpos
		for i >= q.tailCache {
			q.tailCache = atomic.LoadUint64(q.tailp)
		}
		copy(out, q.data[(i%q.slots)*uint64(q.size):][:q.size])
		if binary.LittleEndian.Uint64(out) != i {
			bad++
		}
		q.cpos++
		if q.cpos%64 == 0 {
			storePlain(unsafe.Pointer(q.headp), q.cpos)
		}
	}
	storePlain(unsafe.Pointer(q.headp), q.cpos)
	return bad
}

// shmMap maps a fresh shared file (tmpfs when available) of n bytes.
func shmMap(b *testing.B, n int) ([]byte, error) {
	f, err := os.CreateTemp(ringDir(b), "raw")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if err := f.Truncate(int64(n)); err != nil {
		return nil, err
	}
	m, err := mmap.Map(f, n, true)
	if err != nil {
		return nil, err
	}
	mmap.PopulateWrite(m)
	mmap.TouchWrite(m)
	b.Cleanup(func() { mmap.Unmap(m) })
	return m, nil
}

// BenchmarkStreamXProc streams b.N messages from this process (pinned to
// the first CPU) to a consumer process (pinned to the second) that copies
// and checks every message, reading with ReadBatch. The producer publishes
// each message (record: TryWrite) or up to 16 at once (batch:
// TryWriteBatch). The clock runs from the first write to the producer's
// Close returning, which waits until the consumer has drained the ring.
func BenchmarkStreamXProc(b *testing.B) {
	for _, mode := range []string{"record", "batch"} {
		for _, size := range []int{64, 1024} {
			b.Run(fmt.Sprintf("%s/%d", mode, size), func(b *testing.B) { xprocStream(b, size, mode == "batch") })
		}
	}
}

func xprocStream(b *testing.B, size int, batch bool) {
	path := filepath.Join(ringDir(b), "xproc")
	p, err := NewProducer(path, 1<<20, ProducerOptions{Wait: wait.Spin})
	if err != nil {
		b.Fatal(err)
	}
	pc, cc := benchCPUs()
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperProcess$", "-test.count=1")
	cmd.Env = append(os.Environ(), helperEnv+"=bench-consumer", "MDJ_RING_PATH="+path,
		"MDJ_RING_N="+strconv.Itoa(b.N), "MDJ_RING_SIZE="+strconv.Itoa(size), "MDJ_RING_CPU="+strconv.Itoa(cc))
	cmd.Stderr = os.Stderr
	out, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	defer cmd.Wait()
	rd := bufio.NewReader(out)
	if line, err := rd.ReadString('\n'); !strings.HasPrefix(line, "attached") {
		b.Fatalf("consumer: %q %v", line, err)
	}
	undo, err := pin(pc)
	defer undo()
	if err != nil {
		b.Logf("not pinned: %v", err)
	}
	msgs := make([][]byte, 16)
	for i := range msgs {
		msgs[i] = make([]byte, size)
	}
	b.SetBytes(int64(size))
	b.ResetTimer()
	for i := 0; i < b.N; {
		if !batch {
			binary.LittleEndian.PutUint64(msgs[0], uint64(i))
			for p.TryWrite(msgs[0]) != nil {
			}
			i++
			continue
		}
		k := min(len(msgs), b.N-i)
		for x := range k {
			binary.LittleEndian.PutUint64(msgs[x], uint64(i+x))
		}
		w, _ := p.TryWriteBatch(msgs[:k])
		i += w
	}
	if err := p.Close(); err != nil { // lingers until drained
		b.Fatal(err)
	}
	b.StopTimer()
	line, _ := rd.ReadString('\n')
	if want := fmt.Sprintf("consumed %d", b.N); !strings.HasPrefix(line, want) {
		b.Fatalf("consumer says %q, want %q", line, want)
	}
	mpsReport(b, b.N)
}

func init() {
	helpers["bench-consumer"] = func() error {
		cpu, _ := strconv.Atoi(os.Getenv("MDJ_RING_CPU"))
		undo, _ := pin(cpu)
		defer undo()
		n, _ := strconv.Atoi(os.Getenv("MDJ_RING_N"))
		size, _ := strconv.Atoi(os.Getenv("MDJ_RING_SIZE"))
		c, err := NewConsumer(os.Getenv("MDJ_RING_PATH"), ConsumerOptions{Wait: wait.Spin})
		if err != nil {
			return err
		}
		defer c.Close()
		fmt.Println("attached")
		out := make([]byte, size)
		next := uint64(0)
		handle := func(v []byte) {
			copy(out, v)
			if binary.LittleEndian.Uint64(out) != next || len(v) != size {
				panic(fmt.Sprintf("message %d: seq %d len %d", next, binary.LittleEndian.Uint64(out), len(v)))
			}
			next++
		}
		for {
			if _, err := c.ReadBatch(256, handle); err == io.EOF {
				break
			} else if err != nil {
				return err
			}
		}
		if int(next) != n {
			return fmt.Errorf("consumed %d, want %d", next, n)
		}
		fmt.Printf("consumed %d\n", next)
		return nil
	}
}

// BenchmarkPingPong measures one-way latency (round trip / 2) of a 24-byte
// message (a 32-byte record: header and payload in one cache line) bounced
// between two pinned goroutines through two rings (Write, blocking Read
// with the Spin strategy), against the raw floor: one cache line per
// direction, spun on. Raw and ring samples are interleaved in rounds in
// the same run; b.N samples of each. It reports the p50 of each and the
// ratio ring/raw.
func BenchmarkPingPong(b *testing.B) {
	const rounds = 10
	per := max(b.N/rounds, 1)
	raw := make([]int64, 0, per*rounds)
	rng := make([]int64, 0, per*rounds)
	// raw: two lines of a shared mapping
	m, err := shmMap(b, 4096)
	if err != nil {
		b.Fatal(err)
	}
	ping := (*uint64)(unsafe.Pointer(&m[0]))
	pong := (*uint64)(unsafe.Pointer(&m[128]))
	// ring: there and back
	_, pThere, cThere := newPair(b, 1<<16, wait.Spin)
	_, pBack, cBack := newPair(b, 1<<16, wait.Spin)
	pc, cc := benchCPUs()
	type job struct {
		raw bool
		n   int
	}
	jobs := make(chan job)
	done := make(chan struct{})
	go func() { // the echo side
		undo, _ := pin(cc)
		defer undo()
		var seq uint64
		for j := range jobs {
			for i := 0; i < j.n; i++ {
				if j.raw {
					seq++
					for atomic.LoadUint64(ping) != seq {
					}
					storePlain(unsafe.Pointer(pong), seq)
					continue
				}
				v, err := cThere.Read()
				if err != nil {
					panic(err)
				}
				if err := pBack.Write(v); err != nil {
					panic(err)
				}
				cThere.Release()
			}
			done <- struct{}{}
		}
	}()
	undo, err := pin(pc)
	defer undo()
	if err != nil {
		b.Logf("not pinned: %v", err)
	}
	msg := make([]byte, 24)
	var seq uint64
	b.ResetTimer()
	for range rounds {
		jobs <- job{raw: true, n: per}
		for i := 0; i < per; i++ {
			seq++
			t0 := clock.Nanotime()
			storePlain(unsafe.Pointer(ping), seq)
			for atomic.LoadUint64(pong) != seq {
			}
			raw = append(raw, clock.Nanotime()-t0)
		}
		<-done
		jobs <- job{raw: false, n: per}
		for i := 0; i < per; i++ {
			binary.LittleEndian.PutUint64(msg, uint64(i))
			t0 := clock.Nanotime()
			if err := pThere.Write(msg); err != nil {
				b.Fatal(err)
			}
			v, err := cBack.Read()
			t1 := clock.Nanotime()
			if err != nil || binary.LittleEndian.Uint64(v) != uint64(i) {
				b.Fatalf("pong %d: %v", i, err)
			}
			cBack.Release()
			rng = append(rng, t1-t0)
		}
		<-done
	}
	b.StopTimer()
	close(jobs)
	p50 := func(s []int64) float64 { slices.Sort(s); return float64(s[len(s)/2]) / 2 }
	p99 := func(s []int64) float64 { return float64(s[len(s)*99/100]) / 2 }
	rp, gp := p50(raw), p50(rng)
	b.ReportMetric(rp, "raw-p50-ns")
	b.ReportMetric(gp, "ring-p50-ns")
	b.ReportMetric(p99(raw), "raw-p99-ns")
	b.ReportMetric(p99(rng), "ring-p99-ns")
	b.ReportMetric(gp/rp, "ring/raw-p50")
}

// BenchmarkSingle writes and reads each record in one goroutine: the
// ring's own instruction cost per message, without cross-core traffic,
// per record (every call under the fault guard) and per batch of 64 (one
// guard per batch on the consumer side).
func BenchmarkSingle(b *testing.B) {
	for _, size := range []int{64, 1024} {
		b.Run(fmt.Sprintf("record/%d", size), func(b *testing.B) {
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
			_ = sink
		})
		b.Run(fmt.Sprintf("batch/%d", size), func(b *testing.B) {
			_, p, c := newPair(b, 1<<20, wait.Spin)
			msg := make([]byte, size)
			b.SetBytes(int64(size))
			b.ReportAllocs()
			var sink byte
			h := func(v []byte) { sink ^= v[0] }
			for i := 0; i < b.N; i += 64 {
				for range 64 {
					if p.TryWrite(msg) != nil {
						b.Fatal("full")
					}
				}
				c.TryReadBatch(64, h)
			}
			_ = sink
		})
	}
}

// BenchmarkFaultGuard measures what the SIGBUS guard costs per call: the
// same empty-ring poll with and without it.
func BenchmarkFaultGuard(b *testing.B) {
	_, _, c := newPair(b, 4096, wait.Spin)
	b.Run("unguarded", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			c.tryRead()
		}
	})
	b.Run("guarded", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			c.TryRead()
		}
	})
}
