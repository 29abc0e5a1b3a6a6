package ring

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/mdjournal/mdjournal/journal"
	"github.com/mdjournal/mdjournal/wait"
)

// newPair creates a ring in a temp dir and attaches both sides in-process.
func newPair(t testing.TB, capacity int, s wait.Strategy) (*Ring, *Producer, *Consumer) {
	t.Helper()
	r, err := Create(filepath.Join(ringDir(t), "r"), capacity, Options{})
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

// lookalike returns n payload bytes whose every aligned 8-byte word is a
// valid-looking data record header (length 0..7, kind 1), tagged v: left
// behind in the data area by an earlier lap, such bytes would be read as
// records by a consumer that ever looked at a stale header word.
func lookalike(n int, v byte) []byte {
	b := make([]byte, n)
	for i := 0; i+8 <= n; i += 8 {
		binary.LittleEndian.PutUint64(b[i:], uint64(i/8%8)|KindData<<32)
	}
	if n > 0 {
		b[n-1] = v
	}
	return b
}

// waitFor polls cond (observable state) until it holds or d passes.
func waitFor(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestCreateCapacity(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []int{0, 32, 63, 100, 1<<20 + 8} {
		if _, err := Create(filepath.Join(dir, "x"), c, Options{}); err == nil {
			t.Errorf("Create(capacity %d) succeeded", c)
		}
	}
	r, err := Create(filepath.Join(dir, "min"), MinCapacity, Options{})
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
	if r.Generation() == 0 {
		t.Fatal("generation 0")
	}
	// No temporary file is left behind.
	if ents, _ := os.ReadDir(dir); len(ents) != 1 {
		t.Fatalf("dir holds %d entries, want 1", len(ents))
	}
}

// TestCreatePermissions: a ring file is 0600 unless asked otherwise, exactly
// (whatever the umask), and creation never replaces an existing file unless
// asked to.
func TestCreatePermissions(t *testing.T) {
	old := syscall.Umask(0o077)
	defer syscall.Umask(old)
	dir := t.TempDir()
	r, err := Create(filepath.Join(dir, "a"), 4096, Options{})
	if err != nil {
		t.Fatal(err)
	}
	r.Close()
	if st, _ := os.Stat(filepath.Join(dir, "a")); st.Mode().Perm() != 0o600 {
		t.Fatalf("default mode %v, want 0600", st.Mode().Perm())
	}
	r, err = Create(filepath.Join(dir, "b"), 4096, Options{Perm: 0o660})
	if err != nil {
		t.Fatal(err)
	}
	r.Close()
	if st, _ := os.Stat(filepath.Join(dir, "b")); st.Mode().Perm() != 0o660 {
		t.Fatalf("mode %v, want 0660 despite umask 077", st.Mode().Perm())
	}
	if _, err := Create(filepath.Join(dir, "b"), 4096, Options{}); !errors.Is(err, ErrLeftover) {
		t.Fatalf("Create over an existing unused ring: %v, want ErrLeftover", err)
	}
}

// TestOpenRefusesNonRegular: symbolic links are never followed, and a FIFO,
// directory or device is refused without blocking.
func TestOpenRefusesNonRegular(t *testing.T) {
	dir := t.TempDir()
	real := filepath.Join(dir, "real")
	r, err := Create(real, 4096, Options{})
	if err != nil {
		t.Fatal(err)
	}
	r.Close()
	link := filepath.Join(dir, "link")
	if err := os.Symlink(real, link); err != nil {
		t.Fatal(err)
	}
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{link, fifo, dir, "/dev/null"} {
		done := make(chan error, 1)
		go func() {
			r, err := Open(path)
			if err == nil {
				r.Close()
			}
			done <- err
		}()
		select {
		case err := <-done:
			if !errors.Is(err, ErrNotRegular) {
				t.Errorf("Open(%s): %v, want ErrNotRegular", path, err)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("Open(%s) blocked", path)
		}
		if _, err := NewConsumer(path, ConsumerOptions{AttachTimeout: -1}); !errors.Is(err, ErrNotRegular) {
			t.Errorf("NewConsumer(%s): %v, want ErrNotRegular", path, err)
		}
	}
	if _, err := NewProducer(link, 4096, ProducerOptions{Options: Options{Replace: true}}); !errors.Is(err, ErrNotRegular) {
		t.Errorf("NewProducer(symlink, Replace): %v, want ErrNotRegular", err)
	}
	if fi, err := os.Lstat(link); err != nil || fi.Mode()&os.ModeSymlink == 0 {
		t.Fatalf("the symlink was replaced: %v %v", fi, err)
	}
}

func TestDefaultDir(t *testing.T) {
	if _, err := os.Stat(DefaultDir); err != nil {
		t.Skip("no", DefaultDir)
	}
	name := "mdjournal-ring-test-" + time.Now().Format("150405.000000000")
	r, err := Create(name, 4096, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		r.Close()
		if err := r.Remove(); err != nil { // after Close, too
			t.Errorf("Remove: %v", err)
		}
		if _, err := os.Stat(filepath.Join(DefaultDir, name)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("ring file still there: %v", err)
		}
	}()
	if r.Path() != filepath.Join(DefaultDir, name) {
		t.Fatalf("path %s", r.Path())
	}
	r2, err := Open(name)
	if err != nil {
		t.Fatal(err)
	}
	if r2.Generation() != r.Generation() {
		t.Fatalf("generation %x, created %x", r2.Generation(), r.Generation())
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
	// Maximal records (32 bytes) alternate between index 0 and 32 with no
	// padding at all.
	for i := range 100 {
		x := fill(max, byte(i))
		mustWrite(t, p, x)
		mustRead(t, c, x)
	}
	if tail := r.h.tail(); tail != 100*32 {
		t.Fatalf("tail %d after 100 maximal records, want %d (padding where none is due?)", tail, 100*32)
	}
	// The producer keeps EndReserve bytes free: 56 of 64 are usable.
	a := fill(max, 1)
	mustWrite(t, p, a) // 32
	if err := p.TryWrite(a); err != ErrFull {
		t.Fatalf("second maximal record: %v, want ErrFull (32+32+8 > 64)", err)
	}
	mustWrite(t, p, fill(8, 2)) // 16: 48
	mustWrite(t, p, nil)        // 8: 56
	if err := p.TryWrite(nil); err != ErrFull {
		t.Fatalf("write into a full ring: %v, want ErrFull", err)
	}
	mustRead(t, c, a)
	mustRead(t, c, fill(8, 2))
	mustRead(t, c, []byte{})
	if _, ok := c.TryRead(); ok || c.Err() != nil {
		t.Fatalf("empty ring read: ok=%v err=%v", ok, c.Err())
	}
}

func TestRecordExactlyFitsEnd(t *testing.T) {
	r, p, c := newPair(t, 64, wait.Spin)
	mustWrite(t, p, fill(8, 0)) // [0,16)
	mustRead(t, c, fill(8, 0))
	mustWrite(t, p, fill(16, 1)) // [16,40)
	mustRead(t, c, fill(16, 1))
	c.TryRead()                  // empty: publishes head
	mustWrite(t, p, fill(13, 2)) // 8+13 -> 24 bytes, [40,64): ends exactly at the end
	if tail := r.h.tail(); tail != 64 {
		t.Fatalf("tail %d, want 64: a record ending at the boundary must not be padded", tail)
	}
	if w := binary.LittleEndian.Uint64(r.data[0:]); w != 0 {
		t.Fatalf("header word after the record (index 0 of the next lap) = %#x, want 0", w)
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
	mustRead(t, c, fill(8, 0))   // head 16 (a capacity/4 chunk: published)
	// 16 bytes left to the end; a 24-byte record needs 16 padding + 24 +
	// the 8-byte reserve = 48 more than the 48 used: 96 - 16 > 64.
	if err := p.TryWrite(fill(16, 2)); err != ErrFull {
		t.Fatalf("write needing the padding space: %v, want ErrFull", err)
	}
	mustRead(t, c, fill(24, 1)) // head 48: ring empty
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
	mustWrite(t, p, fill(0, 0))  // pos 88..96 (index 24..32)
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
// rings and checks every record and every position against a model. Every
// payload is made of words that look like valid record headers, so a
// consumer that ever read a stale header word left by an earlier lap would
// return a record the model does not expect.
func TestWrapModel(t *testing.T) {
	for _, capacity := range []int{64, 128, 256, 4096} {
		r, p, c := newPair(t, capacity, wait.Spin)
		rng := rand.New(rand.NewPCG(uint64(capacity), 1))
		var queue [][]byte
		var tail uint64 // model position: published
		var staged uint64
		max := r.MaxPayload()
		for step := range 20000 {
			if rng.IntN(2) == 0 {
				n := rng.IntN(max + 1)
				if rng.IntN(4) == 0 {
					n = max - rng.IntN(3)
				}
				b := lookalike(n, byte(step))
				size := align8(uint64(8 + n))
				pos := tail + staged
				if idx := pos & uint64(capacity-1); idx+size > uint64(capacity) {
					size += uint64(capacity) - idx
				}
				head := r.h.head() // what the consumer has published
				want := pos+size+EndReserve-head <= uint64(capacity)
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
				} else if c.Err() != nil {
					t.Fatal(c.Err())
				} else if tail != 0 && r.h.head() != tail {
					t.Fatalf("cap %d step %d: empty read but head %d != published %d", capacity, step, r.h.head(), tail)
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
		if _, ok := c.TryRead(); ok {
			t.Fatal("a record beyond the model")
		}
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
	if err != nil || len(b) != 100 || cap(b) != 100 {
		t.Fatalf("Claim: %d %d %v", len(b), cap(b), err)
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
		if _, ok := c.TryRead(); ok {
			t.Fatalf("staged record %d visible before Flush", i)
		}
	}
	p.Flush()
	for i := range 5 {
		mustRead(t, c, fill(4, byte(i)))
	}
}

// TestSideAttachOnce: each side of a generation attaches once. A second
// live attach is ErrBusy; after the first left (closed), ErrSideUsed: a new
// producer cannot append a second stream, a new consumer cannot get
// records a first one already had.
func TestSideAttachOnce(t *testing.T) {
	r, p, c := newPair(t, 4096, wait.Spin)
	if _, err := r.Producer(wait.Spin); !errors.Is(err, ErrBusy) {
		t.Fatalf("second producer: %v, want ErrBusy", err)
	}
	if _, err := r.Consumer(wait.Spin); !errors.Is(err, ErrBusy) {
		t.Fatalf("second consumer: %v, want ErrBusy", err)
	}
	mustWrite(t, p, []byte("one"))
	p.Close()
	if _, err := r.Producer(wait.Spin); !errors.Is(err, ErrSideUsed) {
		t.Fatalf("re-attach after close: %v, want ErrSideUsed", err)
	}
	mustRead(t, c, []byte("one"))
	c.Close()
	if _, err := r.Consumer(wait.Spin); !errors.Is(err, ErrSideUsed) {
		t.Fatalf("consumer re-attach after close: %v, want ErrSideUsed", err)
	}
	// Another mapping of the same file sees the same.
	r2, err := Open(r.Path())
	if err != nil {
		t.Fatal(err)
	}
	defer r2.Close()
	if _, err := r2.Consumer(wait.Spin); !errors.Is(err, ErrSideUsed) {
		t.Fatalf("consumer via a second mapping: %v, want ErrSideUsed", err)
	}
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

// TestEOFNeverHidesLoss: a closed producer whose final position is past
// what the consumer can read is damage, never a clean end.
func TestEOFNeverHidesLoss(t *testing.T) {
	r, p, c := newPair(t, 4096, wait.Spin)
	mustWrite(t, p, []byte("a"))
	p.Close()
	mustRead(t, c, []byte("a"))
	binary.LittleEndian.PutUint64(r.m[OffTail:], 16+64) // claims 64 more bytes were published
	if _, err := c.Read(); !errors.Is(err, ErrBadPosition) || err == io.EOF {
		t.Fatalf("Read with records missing: %v, want ErrBadPosition (not io.EOF)", err)
	}
}

// waiters returns a ring's announced-waiter count of one signal.
func waiters(r *Ring, off int) uint32 { return binary.LittleEndian.Uint32(r.m[off:]) }

func TestEOFWakesSleepingConsumer(t *testing.T) {
	r, p, c := newPair(t, 4096, wait.Futex)
	done := make(chan error, 1)
	go func() {
		_, err := c.Read()
		done <- err
	}()
	waitFor(t, 10*time.Second, "the consumer to sleep", func() bool { return waiters(r, OffDataWaiters) != 0 })
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
		if err := p.Write(make([]byte, 40)); !errors.Is(err, ErrPeerClosed) {
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

// streamInProcess streams n records between two goroutines through a small
// ring, checking order, length and content of each.
func streamInProcess(t *testing.T, p *Producer, c *Consumer, n int, batch bool) {
	t.Helper()
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
	i := 0
	check := func(b []byte) {
		if len(b) != max(i%500, 4) || binary.LittleEndian.Uint32(b) != uint32(i) {
			t.Fatalf("record %d: len %d seq %d", i, len(b), binary.LittleEndian.Uint32(b))
		}
		i++
	}
	for {
		var err error
		if batch {
			_, err = c.ReadBatch(64, check)
		} else {
			var b []byte
			if b, err = c.Read(); err == nil {
				check(b)
			}
		}
		if err == io.EOF {
			if i != n {
				t.Fatalf("EOF after %d records, want %d", i, n)
			}
			return
		}
		if err != nil {
			t.Fatal(err)
		}
	}
}

// TestStrategiesInProcess streams records between two goroutines with every
// strategy, through a ring small enough to be full and empty often, with
// per-record and batch reads.
func TestStrategiesInProcess(t *testing.T) {
	n := 50000
	if testing.Short() || raceEnabled {
		n = 10000
	}
	for _, s := range []wait.Strategy{wait.Spin, wait.Yield, wait.Backoff, wait.Futex} {
		for _, batch := range []bool{false, true} {
			_, p, c := newPair(t, 1024, s)
			streamInProcess(t, p, c, n, batch)
		}
	}
}

// TestFencedPublication runs the futex stream with both sides publishing
// through sequentially consistent stores (the path taken where membarrier
// is unavailable, and off amd64), so the fallback is exercised too.
func TestFencedPublication(t *testing.T) {
	n := 50000
	if testing.Short() || raceEnabled {
		n = 10000
	}
	r, p, c := newPair(t, 1024, wait.Futex)
	p.plain, c.plain = false, false
	for _, off := range []int{OffProducer, OffConsumer} {
		binary.LittleEndian.PutUint32(r.m[off+sideOffFlags:], 0)
	}
	streamInProcess(t, p, c, n, false)
}

func TestPlainPublishFlag(t *testing.T) {
	r, p, c := newPair(t, 4096, wait.Spin)
	if !plainStoresOK {
		t.Skip("plain publication only on amd64")
	}
	if !plainPublish() {
		t.Skip("membarrier(MEMBARRIER_CMD_REGISTER_GLOBAL_EXPEDITED) unavailable: the fenced path is used")
	}
	for _, s := range []side{p.me, c.me} {
		if s.flags()&SideFlagPlainPublish == 0 {
			t.Fatalf("%s side flags %#x: plain publication not advertised", s.name(), s.flags())
		}
	}
	_ = r
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
	waitFor(t, 10*time.Second, "the consumer to announce itself", func() bool { return waiters(r, OffDataWaiters) != 0 })
	mustWrite(t, p, []byte("y"))
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if seq() == before {
		t.Fatal("publishing to an announced waiter did not bump data_seq")
	}
	if w := waiters(r, OffDataWaiters); w != 0 {
		t.Fatalf("data_waiters %d after the waiter left", w)
	}
}

// TestBatchRelease: the consumer gives space back once per batch (and when
// it finds the ring empty), not per record.
func TestBatchRelease(t *testing.T) {
	r, p, c := newPair(t, 1<<16, wait.Spin)
	for i := range 10 {
		mustWrite(t, p, fill(20, byte(i))) // 32 bytes each
	}
	var heads []uint64
	n, err := c.TryReadBatch(100, func(b []byte) { heads = append(heads, r.h.head()) })
	if n != 10 || err != nil {
		t.Fatalf("TryReadBatch = %d, %v", n, err)
	}
	for i, h := range heads {
		if h != 0 {
			t.Fatalf("head %d while handling record %d of the batch: released before the batch ended", h, i)
		}
	}
	if h := r.h.head(); h != 320 {
		t.Fatalf("head %d after the batch, want 320", h)
	}
	// Per-record reads: Release is local until a chunk (capacity/4) or an
	// empty ring.
	mustWrite(t, p, fill(20, 1))
	mustRead(t, c, fill(20, 1))
	if h := r.h.head(); h != 320 {
		t.Fatalf("head %d right after Release, want 320 (released lazily)", h)
	}
	if _, ok := c.TryRead(); ok {
		t.Fatal("record from nowhere")
	}
	if h := r.h.head(); h != 352 {
		t.Fatalf("head %d after an empty read, want 352", h)
	}
}

// TestProducerCachesHead: the producer reads the consumer position only
// when its cached copy says the ring is full.
func TestProducerCachesHead(t *testing.T) {
	r, p, c := newPair(t, 4096, wait.Spin)
	mustWrite(t, p, fill(100, 1))
	mustRead(t, c, fill(100, 1))
	c.TryRead()
	binary.LittleEndian.PutUint64(r.m[OffHead:], 3) // damage the consumer position
	// The cached head (0) leaves room for (4096-8)/112 = 36 records, the
	// first already written: a producer loading head per record would
	// fail at once.
	n := 0
	var err error
	for err == nil {
		if err = p.TryWrite(fill(100, 2)); err == nil {
			n++
		}
	}
	if n != 35 || !errors.Is(err, ErrBadPosition) {
		t.Fatalf("%d writes, then %v; want 35 writes on the cached head, then ErrBadPosition from the damaged one", n, err)
	}
}

// TestWriteBatch: TryWriteBatch writes what fits and publishes it at once;
// WriteBatch writes everything, waiting for space.
func TestWriteBatch(t *testing.T) {
	r, p, c := newPair(t, 256, wait.Spin)
	recs := [][]byte{fill(24, 1), fill(24, 2), fill(24, 3), fill(24, 4), fill(24, 5), fill(24, 6), fill(24, 7), fill(24, 8)}
	// 256 - 8 reserve = 248 bytes: seven 32-byte records fit.
	n, err := p.TryWriteBatch(recs)
	if n != 7 || err != nil {
		t.Fatalf("TryWriteBatch = %d, %v; want 7, nil", n, err)
	}
	if r.h.tail() != 7*32 {
		t.Fatalf("tail %d after the batch", r.h.tail())
	}
	if n, err := p.TryWriteBatch(recs[7:]); n != 0 || err != ErrFull {
		t.Fatalf("TryWriteBatch into a full ring = %d, %v; want 0, ErrFull", n, err)
	}
	got := 0
	c.TryReadBatch(100, func(b []byte) {
		if !bytes.Equal(b, recs[got]) {
			t.Fatalf("record %d: %x", got, b)
		}
		got++
	})
	if got != 7 {
		t.Fatalf("read %d records", got)
	}
	// An oversized record stops the batch; those before it are published.
	n, err = p.TryWriteBatch([][]byte{fill(8, 1), make([]byte, r.MaxPayload()+1), fill(8, 2)})
	if n != 1 || !errors.Is(err, ErrTooLarge) {
		t.Fatalf("TryWriteBatch with an oversized record = %d, %v", n, err)
	}
	mustRead(t, c, fill(8, 1))
	// WriteBatch of many more records than fit, against a consumer.
	var many [][]byte
	for i := range 1000 {
		many = append(many, lookalike(i%100, byte(i)))
	}
	errc := make(chan error, 1)
	go func() { errc <- p.WriteBatch(many) }()
	for i := 0; i < len(many); {
		n, err := c.ReadBatch(50, func(b []byte) {
			if !bytes.Equal(b, many[i]) {
				panic(fmt.Sprintf("record %d: %x", i, b))
			}
			i++
		})
		if err != nil || n == 0 {
			t.Fatalf("ReadBatch: %d %v", n, err)
		}
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
}
