package ring

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/mdjournal/mdjournal/journal"
	"github.com/mdjournal/mdjournal/wait"
)

// newPair creates a ring in a temp dir and attaches both sides in-process.
func newPair(t testing.TB, capacity int, s wait.Strategy) (*Ring, *Producer, *Consumer) {
	t.Helper()
	r, err := Create(filepath.Join(t.TempDir(), "r"), capacity, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	p, err := r.Producer(s)
	if err != nil {
		t.Fatal(err)
	}
	c, err := r.Consumer(s)
	if err != nil {
		t.Fatal(err)
	}
	return r, p, c
}

func mustWrite(t *testing.T, p *Producer, b []byte) {
	t.Helper()
	if err := p.TryWrite(b); err != nil {
		t.Fatalf("TryWrite(%d bytes): %v", len(b), err)
	}
}

func mustRead(t *testing.T, c *Consumer, want []byte) {
	t.Helper()
	got, ok := c.TryRead()
	if !ok {
		t.Fatalf("TryRead: nothing (err %v), want %d bytes", c.Err(), len(want))
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("TryRead = %x, want %x", got, want)
	}
	c.Release()
}

func fill(n int, v byte) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = v + byte(i)
	}
	return b
}

func TestCreateCapacity(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []int{0, 32, 63, 100, 1<<20 + 8} {
		if _, err := Create(filepath.Join(dir, "x"), c, nil); err == nil {
			t.Errorf("Create(capacity %d) succeeded", c)
		}
	}
	r, err := Create(filepath.Join(dir, "min"), MinCapacity, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if r.MaxPayload() != 24 {
		t.Fatalf("MaxPayload of a %d-byte ring = %d, want 24", MinCapacity, r.MaxPayload())
	}
	st, err := os.Stat(r.Path())
	if err != nil || st.Size() != HeaderSize+MinCapacity {
		t.Fatalf("file size %v, %v", st, err)
	}
	// No temporary file is left behind.
	if ents, _ := os.ReadDir(dir); len(ents) != 1 {
		t.Fatalf("dir holds %d entries, want 1", len(ents))
	}
}

func TestDefaultDir(t *testing.T) {
	if _, err := os.Stat(DefaultDir); err != nil {
		t.Skip("no", DefaultDir)
	}
	name := "mdjournal-ring-test-" + time.Now().Format("150405.000000000")
	r, err := Create(name, 4096, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Remove()
	defer r.Close()
	if r.Path() != filepath.Join(DefaultDir, name) {
		t.Fatalf("path %s", r.Path())
	}
	r2, err := Open(name)
	if err != nil {
		t.Fatal(err)
	}
	r2.Close()
}

func TestMinimalCapacity(t *testing.T) {
	r, p, c := newPair(t, MinCapacity, wait.Spin)
	max := r.MaxPayload()
	if err := p.TryWrite(make([]byte, max+1)); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("oversize write: %v, want ErrTooLarge", err)
	}
	if err := p.Write(make([]byte, max+1)); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("oversize blocking write: %v, want ErrTooLarge", err)
	}
	if _, err := p.TryClaim(max + 1); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("oversize claim: %v", err)
	}
	// Two maximal records fill the ring exactly.
	a, b := fill(max, 1), fill(max, 100)
	mustWrite(t, p, a)
	mustWrite(t, p, b)
	if err := p.TryWrite(nil); err != ErrFull {
		t.Fatalf("write into a full ring: %v, want ErrFull", err)
	}
	mustRead(t, c, a)
	mustRead(t, c, b)
	if _, ok := c.TryRead(); ok || c.Err() != nil {
		t.Fatalf("empty ring read: ok=%v err=%v", ok, c.Err())
	}
	// Many rounds of maximal records wrap with no padding at all.
	for i := range 100 {
		x := fill(max, byte(i))
		mustWrite(t, p, x)
		mustRead(t, c, x)
	}
	if tail := r.h.tail(); tail != 102*32 {
		t.Fatalf("tail %d after 102 maximal records, want %d (padding where none is due?)", tail, 102*32)
	}
}

func TestRecordExactlyFitsEnd(t *testing.T) {
	r, p, c := newPair(t, 64, wait.Spin)
	mustWrite(t, p, fill(8, 0)) // [0,16)
	mustRead(t, c, fill(8, 0))
	mustWrite(t, p, fill(16, 1)) // [16,40)
	mustRead(t, c, fill(16, 1))
	mustWrite(t, p, fill(13, 2)) // 8+13 -> 24 bytes, [40,64): ends exactly at the end
	if tail := r.h.tail(); tail != 64 {
		t.Fatalf("tail %d, want 64: a record ending at the boundary must not be padded", tail)
	}
	mustRead(t, c, fill(13, 2))
	mustWrite(t, p, fill(3, 3)) // starts at index 0 again
	if w := binary.LittleEndian.Uint64(r.data[0:]); w != 3|KindData<<32 {
		t.Fatalf("record header at index 0 = %#x", w)
	}
	mustRead(t, c, fill(3, 3))
}

func TestPaddingRecord(t *testing.T) {
	r, p, c := newPair(t, 64, wait.Spin)
	mustWrite(t, p, fill(8, 0))  // [0,16)
	mustWrite(t, p, fill(24, 1)) // [16,48)
	mustRead(t, c, fill(8, 0))   // head 16: 32 bytes free
	// 16 bytes left to the end; a 24-byte record fits in the 32 free bytes
	// but needs 16 padding + 24 = 40: not yet.
	if err := p.TryWrite(fill(16, 2)); err != ErrFull {
		t.Fatalf("write needing the padding space: %v, want ErrFull", err)
	}
	mustRead(t, c, fill(24, 1)) // head 48: ring empty, 64 free
	mustWrite(t, p, fill(16, 2))
	if tail := r.h.tail(); tail != 48+16+24 {
		t.Fatalf("tail %d, want %d (16 padding + 24 record)", tail, 48+16+24)
	}
	if w := binary.LittleEndian.Uint64(r.data[48:]); w != 8|KindPad<<32 {
		t.Fatalf("padding header %#x, want length 8 kind %d", w, KindPad)
	}
	mustRead(t, c, fill(16, 2))
	if head := r.h.head(); head != 88 {
		t.Fatalf("head %d after reading past the padding, want 88", head)
	}
	// Smallest padding: 8 bytes (a bare header) before the end.
	mustWrite(t, p, fill(0, 0))  // [24,32) of the second lap: pos 88..96
	mustWrite(t, p, fill(16, 9)) // pos 96..120 (index 32..56)
	mustRead(t, c, nil)
	mustRead(t, c, fill(16, 9))
	mustWrite(t, p, fill(1, 7)) // index 56: 16 bytes would cross, pad 8
	if w := binary.LittleEndian.Uint64(r.data[56:]); w != 0|KindPad<<32 {
		t.Fatalf("8-byte padding header %#x", w)
	}
	mustRead(t, c, fill(1, 7))
}

// TestWrapModel drives random sizes, batches and partial reads through small
// rings and checks every record and every position against a model.
func TestWrapModel(t *testing.T) {
	for _, capacity := range []int{64, 128, 256, 4096} {
		r, p, c := newPair(t, capacity, wait.Spin)
		rng := rand.New(rand.NewPCG(uint64(capacity), 1))
		var queue [][]byte
		var tail, head uint64 // model positions
		var staged uint64
		max := r.MaxPayload()
		for step := range 20000 {
			if rng.IntN(2) == 0 {
				n := rng.IntN(max + 1)
				if rng.IntN(4) == 0 {
					n = max - rng.IntN(3)
				}
				b := fill(n, byte(step))
				size := align8(uint64(8 + n))
				pos := tail + staged
				if idx := pos & uint64(capacity-1); idx+size > uint64(capacity) {
					size += uint64(capacity) - idx
				}
				want := pos+size-head <= uint64(capacity)
				var err error
				batch := rng.IntN(3) == 0
				if batch {
					err = p.TryAppend(b)
				} else {
					err = p.TryWrite(b)
				}
				if want != (err == nil) || (err != nil && err != ErrFull) {
					t.Fatalf("cap %d step %d: write %d bytes at pos %d head %d: %v, model says fits=%v", capacity, step, n, pos, head, err, want)
				}
				if err == nil {
					queue = append(queue, b)
					staged += size
					if !batch {
						tail += staged
						staged = 0
					}
				}
			} else {
				if rng.IntN(5) == 0 {
					p.Flush()
					tail += staged
					staged = 0
				}
				got, ok := c.TryRead()
				if ok {
					if len(queue) == 0 || !bytes.Equal(got, queue[0]) {
						t.Fatalf("cap %d step %d: read %x, want %x", capacity, step, got, queue[:min(1, len(queue))])
					}
					queue = queue[1:]
					c.Release()
					head = r.h.head()
				} else if c.Err() != nil {
					t.Fatal(c.Err())
				}
				if got := r.h.tail(); got != tail {
					t.Fatalf("cap %d step %d: tail %d, model %d", capacity, step, got, tail)
				}
			}
		}
		p.Flush()
		for len(queue) > 0 {
			got, ok := c.TryRead()
			if !ok || !bytes.Equal(got, queue[0]) {
				t.Fatalf("drain: %x %v", got, ok)
			}
			queue = queue[1:]
		}
		c.Release()
		if r.h.head() != r.h.tail() {
			t.Fatalf("drained but head %d != tail %d", r.h.head(), r.h.tail())
		}
	}
}

func TestClaimCommit(t *testing.T) {
	_, p, c := newPair(t, 4096, wait.Spin)
	if err := p.Commit(); err != ErrNoClaim {
		t.Fatalf("Commit without claim: %v", err)
	}
	b, err := p.Claim(100)
	if err != nil || len(b) != 100 {
		t.Fatalf("Claim: %d %v", len(b), err)
	}
	copy(b, fill(100, 5))
	if err := p.TryWrite([]byte("x")); err != ErrClaimPending {
		t.Fatalf("write during claim: %v", err)
	}
	if _, ok := c.TryRead(); ok {
		t.Fatal("claimed record visible before Commit")
	}
	if err := p.Commit(); err != nil {
		t.Fatal(err)
	}
	mustRead(t, c, fill(100, 5))
	// An abandoned claim never becomes visible.
	b, _ = p.Claim(10)
	copy(b, "abandoned!")
	b, _ = p.Claim(3)
	copy(b, "yes")
	p.Commit()
	mustRead(t, c, []byte("yes"))
	// Batch: staged records appear together on Flush.
	for i := range 5 {
		b, _ := p.TryClaim(4)
		copy(b, fill(4, byte(i)))
		p.CommitNoFlush()
	}
	if _, ok := c.TryRead(); ok {
		t.Fatal("staged record visible before Flush")
	}
	p.Flush()
	for i := range 5 {
		mustRead(t, c, fill(4, byte(i)))
	}
}

func TestBusyAndReattach(t *testing.T) {
	r, p, c := newPair(t, 4096, wait.Spin)
	if _, err := r.Producer(wait.Spin); !errors.Is(err, ErrBusy) {
		t.Fatalf("second producer: %v, want ErrBusy", err)
	}
	if _, err := r.Consumer(wait.Spin); !errors.Is(err, ErrBusy) {
		t.Fatalf("second consumer: %v, want ErrBusy", err)
	}
	mustWrite(t, p, []byte("one"))
	p.Close()
	p2, err := r.Producer(wait.Spin)
	if err != nil {
		t.Fatalf("re-attach after close: %v", err)
	}
	mustWrite(t, p2, []byte("two"))
	mustRead(t, c, []byte("one"))
	mustRead(t, c, []byte("two"))
}

func TestProducerCloseEOF(t *testing.T) {
	_, p, c := newPair(t, 4096, wait.Futex)
	for i := range 10 {
		if err := p.Write(fill(i*10, byte(i))); err != nil {
			t.Fatal(err)
		}
	}
	b, _ := p.Claim(10) // never committed: dropped by Close
	copy(b, "uncommitted")
	p.Close()
	if err := p.TryWrite([]byte("x")); err != ErrClosed {
		t.Fatalf("write after close: %v", err)
	}
	for i := range 10 {
		got, err := c.Read()
		if err != nil || !bytes.Equal(got, fill(i*10, byte(i))) {
			t.Fatalf("record %d: %x %v", i, got, err)
		}
	}
	if _, err := c.Read(); err != io.EOF {
		t.Fatalf("Read after drain: %v, want io.EOF", err)
	}
	if err := c.Err(); err != io.EOF {
		t.Fatalf("Err after drain: %v, want io.EOF", err)
	}
}

func TestEOFWakesSleepingConsumer(t *testing.T) {
	_, p, c := newPair(t, 4096, wait.Futex)
	done := make(chan error, 1)
	go func() {
		_, err := c.Read()
		done <- err
	}()
	time.Sleep(50 * time.Millisecond) // let it reach FUTEX_WAIT
	p.Close()
	select {
	case err := <-done:
		if err != io.EOF {
			t.Fatalf("Read: %v, want io.EOF", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("consumer not woken by close")
	}
}

func TestConsumerClosePeerClosed(t *testing.T) {
	for _, s := range []wait.Strategy{wait.Spin, wait.Yield, wait.Backoff, wait.Futex} {
		_, p, c := newPair(t, 256, s)
		for p.TryWrite(make([]byte, 40)) == nil {
		}
		c.Close()
		if err := p.Write(make([]byte, 40)); err != ErrPeerClosed {
			t.Fatalf("%v: Write into full ring with closed consumer: %v, want ErrPeerClosed", s, err)
		}
	}
}

func TestDeadline(t *testing.T) {
	for _, s := range []wait.Strategy{wait.Spin, wait.Yield, wait.Backoff, wait.Futex} {
		_, p, c := newPair(t, 256, s)
		c.SetDeadline(time.Now().Add(20 * time.Millisecond))
		if _, err := c.Read(); !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("%v: Read on empty ring: %v", s, err)
		}
		for p.TryWrite(make([]byte, 40)) == nil {
		}
		p.SetDeadline(time.Now().Add(20 * time.Millisecond))
		if err := p.Write(make([]byte, 40)); !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("%v: Write into full ring: %v", s, err)
		}
	}
}

// TestStrategiesInProcess streams records between two goroutines with every
// strategy, through a ring small enough to be full and empty often.
func TestStrategiesInProcess(t *testing.T) {
	n := 200000
	if testing.Short() || raceEnabled {
		n = 20000
	}
	for _, s := range []wait.Strategy{wait.Spin, wait.Yield, wait.Backoff, wait.Futex} {
		_, p, c := newPair(t, 1024, s)
		go func() {
			var buf [500]byte
			for i := range n {
				l := i % len(buf)
				binary.LittleEndian.PutUint32(buf[:], uint32(i))
				if err := p.Write(buf[:max(l, 4)]); err != nil {
					panic(err)
				}
			}
			p.Close()
		}()
		for i := 0; ; i++ {
			b, err := c.Read()
			if err == io.EOF {
				if i != n {
					t.Fatalf("%v: EOF after %d records, want %d", s, i, n)
				}
				break
			}
			if err != nil {
				t.Fatalf("%v: %v", s, err)
			}
			if len(b) != max(i%500, 4) || binary.LittleEndian.Uint32(b) != uint32(i) {
				t.Fatalf("%v: record %d: len %d seq %d", s, i, len(b), binary.LittleEndian.Uint32(b))
			}
		}
	}
}

func corruptionOf(t *testing.T, err error, sentinel error) *journal.CorruptionError {
	t.Helper()
	var ce *journal.CorruptionError
	if !errors.As(err, &ce) || !errors.Is(err, sentinel) || !errors.Is(err, journal.ErrCorrupt) {
		t.Fatalf("error %v (%T), want a CorruptionError wrapping %v", err, err, sentinel)
	}
	return ce
}

// TestWakeOnlyWhenWaiting: publishing must not touch the futex word while
// the consumer has not announced itself, and must bump it when it has.
func TestWakeOnlyWhenWaiting(t *testing.T) {
	r, p, c := newPair(t, 4096, wait.Futex)
	seq := func() uint32 { return binary.LittleEndian.Uint32(r.m[OffDataSeq:]) }
	before := seq()
	for range 100 {
		mustWrite(t, p, []byte("x"))
		mustRead(t, c, []byte("x"))
	}
	if seq() != before {
		t.Fatalf("data_seq moved %d -> %d with no waiter: a wake-up per publish", before, seq())
	}
	done := make(chan error, 1)
	go func() {
		_, err := c.Read()
		done <- err
	}()
	// Wait until the consumer announced itself.
	for binary.LittleEndian.Uint32(r.m[OffDataWaiters:]) == 0 {
		time.Sleep(time.Millisecond)
	}
	mustWrite(t, p, []byte("y"))
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if seq() == before {
		t.Fatal("publishing to an announced waiter did not bump data_seq")
	}
	if w := binary.LittleEndian.Uint32(r.m[OffDataWaiters:]); w != 0 {
		t.Fatalf("data_waiters %d after the waiter left", w)
	}
}

func TestAlive(t *testing.T) {
	me := uint32(os.Getpid())
	if !alive(me, selfStart) || !alive(me, 0) {
		t.Fatal("this process is not alive")
	}
	if selfStart != 0 && alive(me, selfStart+1) {
		t.Fatal("a PID with another start time (a reused PID) counts as alive")
	}
	if alive(0, 0) || alive(1<<22+12345, 0) {
		t.Fatal("a PID that cannot exist counts as alive")
	}
}

// TestDeadPeerStaleSide: a side block left "attached" by a process that no
// longer exists neither blocks a new attach nor counts as a live peer.
func TestDeadPeerStaleSide(t *testing.T) {
	r, p, _ := newPair(t, 256, wait.Backoff)
	// Forge the consumer side: attached, PID of ours but a start time that
	// is not ours (a PID reused by this very process).
	binary.LittleEndian.PutUint64(r.m[OffConsumer+sideOffStart:], selfStart+1)
	for p.TryWrite(make([]byte, 40)) == nil {
	}
	if err := p.Write(make([]byte, 40)); !errors.Is(err, ErrPeerDead) {
		t.Fatalf("Write with a stale consumer side: %v, want ErrPeerDead", err)
	}
	if _, err := r.Consumer(wait.Spin); errors.Is(err, ErrBusy) {
		t.Fatal("stale consumer side refused a new consumer")
	}
}
