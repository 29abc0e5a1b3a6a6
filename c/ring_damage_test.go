package ctest

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mdjournal/mdjournal/journal"
	"github.com/mdjournal/mdjournal/ring"
	"github.com/mdjournal/mdjournal/wait"
)

func align8(n int) int { return (n + 7) &^ 7 }

func readAt(t *testing.T, path string, off int64, n int) []byte {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b := make([]byte, n)
	if _, err := f.ReadAt(b, off); err != nil {
		t.Fatal(err)
	}
	return b
}

// fixRingCRC recomputes the header CRC after a crafted change to [0,44).
func fixRingCRC(t *testing.T, path string) {
	h := readAt(t, path, 0, 44)
	var c [4]byte
	binary.LittleEndian.PutUint32(c[:], crc32c(h))
	patchFile(t, path, 44, c[:])
}

func put32(v uint32) []byte { b := make([]byte, 4); binary.LittleEndian.PutUint32(b, v); return b }
func put64(v uint64) []byte { b := make([]byte, 8); binary.LittleEndian.PutUint64(b, v); return b }

// TestRingHeaderDamage: for each damage of §12 "Validation on open" the C
// consumer's open fails with the kind named after the Go sentinel and the
// same offset as Go's ring.Open on the same file, never touching the data.
func TestRingHeaderDamage(t *testing.T) {
	bin := needRing(t)
	const capacity = 4096
	cases := []struct {
		name   string
		damage func(p string)
		kind   string
		goErr  error
	}{
		{"magic", func(p string) { patchFile(t, p, 0, []byte("X")) }, "bad_magic", ring.ErrBadMagic},
		{"version1", func(p string) { patchFile(t, p, 8, put32(1)) }, "version", ring.ErrVersion},
		{"header-size", func(p string) { patchFile(t, p, 12, put32(2048)); fixRingCRC(t, p) }, "bad_header", ring.ErrBadHeader},
		{"capacity", func(p string) { patchFile(t, p, 16, put64(100)); fixRingCRC(t, p) }, "bad_capacity", ring.ErrBadCapacity},
		{"checksum", func(p string) { patchFile(t, p, 24, []byte{0x55}) }, "checksum", ring.ErrChecksum},
		{"generation0", func(p string) { patchFile(t, p, 32, put64(0)); fixRingCRC(t, p) }, "bad_header", ring.ErrBadHeader},
		{"short-data", func(p string) { os.Truncate(p, 4096+100) }, "truncated", ring.ErrTruncated},
		{"short-header", func(p string) { os.Truncate(p, 1000) }, "truncated", ring.ErrTruncated},
		{"tail-misaligned", func(p string) { patchFile(t, p, 128, put64(4)) }, "bad_position", ring.ErrBadPosition},
		{"head-past-tail", func(p string) { patchFile(t, p, 256, put64(8)) }, "bad_position", ring.ErrBadPosition},
		{"tail-a-lap-ahead", func(p string) { patchFile(t, p, 128, put64(capacity)) }, "bad_position", ring.ErrBadPosition},
		{"producer-state", func(p string) { patchFile(t, p, 644, put32(7)) }, "bad_header", ring.ErrBadHeader},
		{"consumer-state", func(p string) { patchFile(t, p, 772, put32(4)) }, "bad_header", ring.ErrBadHeader},
		{"free-consumer-head", func(p string) { patchFile(t, p, 128, put64(16)); patchFile(t, p, 256, put64(8)) }, "bad_position", ring.ErrBadPosition},
		{"free-producer-tail", func(p string) { patchFile(t, p, 128, put64(16)) }, "bad_position", ring.ErrBadPosition},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			path := filepath.Join(ringDir(t), "r")
			r, err := ring.Create(path, capacity, ring.Options{})
			if err != nil {
				t.Fatal(err)
			}
			r.Close()
			c.damage(path)
			_, err = ring.Open(path)
			var ce *journal.CorruptionError
			if !errors.As(err, &ce) || !errors.Is(err, c.goErr) {
				t.Fatalf("Go ring.Open: %v, want a CorruptionError wrapping %v", err, c.goErr)
			}
			res := run(t, 10*time.Second, bin, "-attach", "-1", "open", path)
			kind, off, _ := cError(t, res.stdout)
			if res.code != 1 || kind != c.kind || off != ce.Offset || !strings.Contains(string(res.stdout), path) {
				t.Errorf("C: exit %d %q; want %s at offset %d in %s (Go: %v)", res.code, res.stdout, c.kind, ce.Offset, path, err)
			}
		})
	}
	t.Run("not-regular", func(t *testing.T) {
		dir := ringDir(t)
		target := filepath.Join(dir, "target")
		r, err := ring.Create(target, capacity, ring.Options{})
		if err != nil {
			t.Fatal(err)
		}
		r.Close()
		link := filepath.Join(dir, "link")
		os.Symlink(target, link)
		fifo := filepath.Join(dir, "fifo")
		syscall.Mkfifo(fifo, 0o600)
		for _, p := range []string{link, fifo, dir} {
			res := run(t, 10*time.Second, bin, "-attach", "-1", "open", p)
			if kind, _, _ := cError(t, res.stdout); res.code != 1 || kind != "not_regular" {
				t.Errorf("%s: exit %d %q, want not_regular", p, res.code, res.stdout)
			}
		}
	})
}

// liveRing is a Go ring with an attached producer (the Ring's keeper
// beats for it) that writes generator records.
type liveRing struct {
	r    *ring.Ring
	p    *ring.Producer
	rng  *rand.Rand
	seed uint64
	next uint64
	pos  int // bytes published, padding included
	cap  int
}

func newLiveRing(t *testing.T, path string, capacity int, seed uint64) *liveRing {
	t.Helper()
	r, err := ring.Create(path, capacity, ring.Options{})
	if err != nil {
		t.Fatal(err)
	}
	p, err := r.Producer(wait.Futex)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close(); r.Close() })
	return &liveRing{r: r, p: p, rng: rand.New(rand.NewPCG(seed, 1)), seed: seed, cap: capacity}
}

// write publishes k records; it returns the file offset of the first one's
// header (no wrap: the tests keep within one lap).
func (l *liveRing) write(t *testing.T, k int) []int64 {
	t.Helper()
	var offs []int64
	for range k {
		n := recLen(l.seed, l.next)
		b, err := l.p.Claim(n)
		if err != nil {
			t.Fatal(err)
		}
		goFill(b, l.rng, l.next)
		if err := l.p.Commit(); err != nil {
			t.Fatal(err)
		}
		offs = append(offs, int64(4096+l.pos%l.cap))
		l.pos += align8(8 + n)
		l.next++
	}
	return offs
}

// awaitHead waits (bounded) until the consumer's released position in the
// file reaches pos: observable state, no sleep as synchronisation.
func awaitHead(t *testing.T, path string, pos uint64) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for binary.LittleEndian.Uint64(readAt(t, path, 256, 8)) != pos {
		if time.Now().After(deadline) {
			t.Fatalf("consumer never released up to %d (head %d)", pos, binary.LittleEndian.Uint64(readAt(t, path, 256, 8)))
		}
		time.Sleep(time.Millisecond)
	}
}

// TestRingBadRecord: a record header damaged after publication (kind 9)
// stops the C consumer with MDJ_ERR_BAD_RECORD at that header's file
// offset, after it delivered the records before it.
func TestRingBadRecord(t *testing.T) {
	path := filepath.Join(ringDir(t), "r")
	seed := uint64(5)
	l := newLiveRing(t, path, 1<<16, seed)
	offs := l.write(t, 5)
	patchFile(t, path, offs[2]+4, put32(9))
	cp := startRing(t, "-attach", "10000", "consume", path, "5", fmt.Sprint(seed))
	out, code := cp.finish(t)
	if !strings.HasPrefix(out, "attached\nrecords=2\n") {
		t.Fatalf("C consumer: %q; want the two records before the damage delivered", out)
	}
	kind, off, _ := cError(t, []byte(strings.TrimPrefix(out, "attached\nrecords=2\n")))
	if code != 1 || kind != "bad_record" || off != offs[2] {
		t.Errorf("C consumer: exit %d %q; want bad_record at %d", code, out, offs[2])
	}
}

// TestRingTruncatedUnderConsumer: the ring file is truncated to its header
// while a C consumer waits for data; the consumer reports
// MDJ_ERR_TRUNCATED with the file and an offset in the lost data area (the
// faulting one, or the file size from its idle-path fstat), never SIGBUS.
func TestRingTruncatedUnderConsumer(t *testing.T) {
	path := filepath.Join(ringDir(t), "r")
	seed := uint64(6)
	l := newLiveRing(t, path, 1<<16, seed)
	l.write(t, 3)
	cp := startRing(t, "-attach", "10000", "consume", path, "100", fmt.Sprint(seed))
	if s := cp.line(t); s != "attached" {
		t.Fatal(s)
	}
	awaitHead(t, path, uint64(l.pos))
	if err := os.Truncate(path, 4096); err != nil {
		t.Fatal(err)
	}
	out, code := cp.finish(t) // a signal fails the test here
	if !strings.HasPrefix(out, "records=3\n") {
		t.Fatalf("C consumer: %q; want the three records delivered", out)
	}
	kind, off, _ := cError(t, []byte(strings.TrimPrefix(out, "records=3\n")))
	fault := int64(4096 + l.pos)
	if code != 1 || kind != "truncated" || (off != fault && off != 4096) || !strings.Contains(out, path) {
		t.Errorf("C consumer: exit %d %q; want truncated at %d (fault) or 4096 (file size)", code, out, fault)
	}
}

// TestRingTruncatedUnderProducer: the file is truncated while a C producer
// is paused mid-stream; its next claim faults on the next-header word and
// is reported as MDJ_ERR_TRUNCATED at exactly that word's offset.
func TestRingTruncatedUnderProducer(t *testing.T) {
	path := filepath.Join(ringDir(t), "r")
	seed := uint64(7)
	const k = 3
	cp := startRing(t, "-wait", "futex", "-pause", fmt.Sprint(k), "-cap", "65536", "produce", path, "10", fmt.Sprint(seed))
	if s := cp.line(t); s != "attached created=1" {
		t.Fatal(s)
	}
	if s := cp.line(t); s != "paused" {
		t.Fatal(s)
	}
	pos := 0
	for i := range uint64(k + 1) {
		pos += align8(8 + recLen(seed, i))
	}
	if err := os.Truncate(path, 4096); err != nil {
		t.Fatal(err)
	}
	io.WriteString(cp.stdin, "go\n")
	out, code := cp.finish(t)
	kind, off, _ := cError(t, []byte(out))
	if code != 1 || kind != "truncated" || off != int64(4096+pos) {
		t.Errorf("C producer: exit %d %q; want truncated at %d", code, out, 4096+pos)
	}
}

// TestRingPeerKilled: kill -9 of a C producer mid-stream: the Go consumer
// gets every record it published, then ring.ErrPeerDead (not io.EOF) — the
// C side block (PID, start time, PID namespace, heartbeat) is judged by Go.
// Then kill -9 of a C consumer: the Go producer, once the ring is full, gets
// ring.ErrPeerDead instead of waiting forever.
func TestRingPeerKilled(t *testing.T) {
	t.Run("c-producer", func(t *testing.T) {
		path := filepath.Join(ringDir(t), "r")
		seed := uint64(8)
		const k = 50
		sum := 0
		for i := range uint64(k + 1) {
			sum += align8(8 + recLen(seed, i))
		}
		if sum > 1<<16-8 {
			t.Fatalf("the first %d records (%d bytes) must fit the ring: nobody reads before the pause", k, sum)
		}
		cp := startRing(t, "-pause", fmt.Sprint(k), "-cap", "65536", "produce", path, "100000", fmt.Sprint(seed))
		if s := cp.line(t); s != "attached created=1" {
			t.Fatal(s)
		}
		cons, err := ring.NewConsumer(path, ring.ConsumerOptions{Wait: wait.Futex, AttachTimeout: 10 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		defer cons.Close()
		if s := cp.line(t); s != "paused" {
			t.Fatal(s)
		}
		cp.cmd.Process.Kill()
		cp.cmd.Wait()
		cons.SetDeadline(time.Now().Add(20 * time.Second))
		n := uint64(0)
		for {
			b, err := cons.Read()
			if err != nil {
				if !errors.Is(err, ring.ErrPeerDead) || n != k {
					t.Fatalf("after %d records: %v; want ring.ErrPeerDead after %d", n, err, k)
				}
				break
			}
			if _, err := checkRec(b, seed, n); err != nil {
				t.Fatal(err)
			}
			n++
			cons.Release()
		}
	})
	t.Run("c-consumer", func(t *testing.T) {
		path := filepath.Join(ringDir(t), "r")
		seed := uint64(9)
		cp := startRing(t, "-attach", "10000", "consume", path, "1000000", fmt.Sprint(seed))
		p, err := ring.NewProducer(path, 1<<16, ring.ProducerOptions{Wait: wait.Futex, Linger: -1})
		if err != nil {
			t.Fatal(err)
		}
		defer p.Close()
		if s := cp.line(t); s != "attached" {
			t.Fatal(s)
		}
		rng := rand.New(rand.NewPCG(seed, 2))
		var i uint64
		write := func() error {
			b, err := p.Claim(recLen(seed, i))
			if err != nil {
				return err
			}
			goFill(b, rng, i)
			i++
			return p.Commit()
		}
		for range 100 {
			if err := write(); err != nil {
				t.Fatal(err)
			}
		}
		cp.cmd.Process.Kill()
		cp.cmd.Wait()
		p.SetDeadline(time.Now().Add(20 * time.Second))
		for {
			if err := write(); err != nil {
				if !errors.Is(err, ring.ErrPeerDead) {
					t.Fatalf("Go producer after the C consumer's kill -9: %v, want ring.ErrPeerDead", err)
				}
				break
			}
		}
	})
}

// TestRingGenerations: the C sides follow §12 "Generations" as Go does:
// a C producer refuses a ring with a live Go producer (busy, producer side
// block 640) and a leftover unless told to replace it; a second consumer is
// busy (768); a C producer joins a Go consumer waiting on a generation with
// no producer yet (created=0) and the stream then runs to io.EOF.
func TestRingGenerations(t *testing.T) {
	bin := needRing(t)
	dir := ringDir(t)
	path := filepath.Join(dir, "r")
	p, err := ring.NewProducer(path, 1<<12, ring.ProducerOptions{Wait: wait.Futex, Linger: -1, Keep: true})
	if err != nil {
		t.Fatal(err)
	}
	res := run(t, 10*time.Second, bin, "produce", path, "1", "1")
	if kind, off, code := cError(t, res.stdout); code != -27 || off != 640 {
		t.Errorf("C producer on a live Go producer's ring: %q (%s), want MDJ_ERR_BUSY at 640", res.stdout, kind)
	}
	cp := startRing(t, "-attach", "10000", "consume", path, "0", "1")
	if s := cp.line(t); s != "attached" {
		t.Fatal(s)
	}
	res = run(t, 10*time.Second, bin, "-attach", "-1", "open", path)
	if _, off, code := cError(t, res.stdout); code != -27 || off != 768 {
		t.Errorf("second C consumer: %q, want MDJ_ERR_BUSY at 768", res.stdout)
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if out, code := cp.finish(t); code != 0 || out != "records=0 bytes=0 digest=00000000\n" {
		t.Fatalf("C consumer of an empty stream: exit %d %q", code, out)
	}
	// Now a finished leftover (Keep).
	res = run(t, 10*time.Second, bin, "produce", path, "1", "1")
	if _, _, code := cError(t, res.stdout); code != -28 {
		t.Errorf("C producer on a leftover: %q, want MDJ_ERR_LEFTOVER", res.stdout)
	}
	res = run(t, 10*time.Second, bin, "-replace", "-linger", "-1", "produce", path, "1", "1")
	if res.code != 0 || !strings.HasPrefix(string(res.stdout), "attached created=1\n") {
		t.Errorf("C producer replacing a leftover: exit %d %q", res.code, res.stdout)
	}

	// Join: a Go consumer waits on a generation without a producer.
	jpath := filepath.Join(dir, "join")
	r, err := ring.Create(jpath, 1<<16, ring.Options{})
	if err != nil {
		t.Fatal(err)
	}
	r.Close()
	seed := uint64(11)
	type attached struct {
		c   *ring.Consumer
		err error
	}
	ch := make(chan attached, 1)
	go func() {
		c, err := ring.NewConsumer(jpath, ring.ConsumerOptions{Wait: wait.Futex, AttachTimeout: 20 * time.Second})
		ch <- attached{c, err}
	}()
	// The consumer has claimed its side (PID word at 768) and now waits for
	// a producer: observable in the file.
	deadline := time.Now().Add(10 * time.Second)
	for binary.LittleEndian.Uint32(readAt(t, jpath, 768, 4)) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the Go consumer never claimed its side")
		}
		time.Sleep(time.Millisecond)
	}
	cj := startRing(t, "produce", jpath, "5000", fmt.Sprint(seed))
	if s := cj.line(t); s != "attached created=0" {
		t.Fatalf("C producer joining a waiting consumer: %q", s)
	}
	a := <-ch
	if a.err != nil {
		t.Fatal(a.err)
	}
	cons := a.c
	defer cons.Close()
	cons.SetDeadline(time.Now().Add(20 * time.Second))
	n := uint64(0)
	for {
		b, err := cons.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("after %d: %v", n, err)
		}
		if _, err := checkRec(b, seed, n); err != nil {
			t.Fatal(err)
		}
		n++
		cons.Release()
	}
	if out, code := cj.finish(t); n != 5000 || code != 0 || out != "closed records=5000\n" {
		t.Fatalf("join: %d records; C exit %d %q", n, code, out)
	}
	if _, err := os.Stat(jpath); err != nil {
		t.Errorf("a joining C producer did not create the file and must not remove it: %v", err)
	}
}

// init runs the Go producer helper process of TestRingGoProducerKilled
// when the test binary is re-executed with MDJ_CRING_HELPER set (before
// TestMain: the helper needs none of its set-up and is killed with SIGKILL,
// so it must own nothing to clean up).
func init() {
	spec := os.Getenv("MDJ_CRING_HELPER")
	if spec == "" {
		return
	}
	var path string
	var n, seed uint64
	if _, err := fmt.Sscanf(spec, "%s %d %d", &path, &n, &seed); err != nil {
		fmt.Println("bad spec", err)
		os.Exit(2)
	}
	p, err := ring.NewProducer(path, 1<<16, ring.ProducerOptions{Wait: wait.Futex})
	if err != nil {
		fmt.Println(err)
		os.Exit(2)
	}
	rng := rand.New(rand.NewPCG(seed, 3))
	for i := range n {
		b, err := p.Claim(recLen(seed, i))
		if err != nil {
			fmt.Println(err)
			os.Exit(2)
		}
		goFill(b, rng, i)
		if err := p.Commit(); err != nil {
			fmt.Println(err)
			os.Exit(2)
		}
	}
	fmt.Println("written")
	io.Copy(io.Discard, os.Stdin) // until killed
	os.Exit(0)
}

// TestRingGoProducerKilled: a Go producer process publishes n records and
// is killed with SIGKILL; the C consumer delivers all n, then reports
// MDJ_ERR_PEER_DEAD (the producer's PID is gone: kill(pid, 0), /proc) —
// never MDJ_ERR_EOF, never a hang.
func TestRingGoProducerKilled(t *testing.T) {
	path := filepath.Join(ringDir(t), "r")
	const n, seed = 2000, 12
	cp := startRing(t, "-attach", "20000", "consume", path, "1000000", fmt.Sprint(seed))
	h := exec.Command(os.Args[0])
	h.Env = append(os.Environ(), fmt.Sprintf("MDJ_CRING_HELPER=%s %d %d", path, n, seed))
	stdin, _ := h.StdinPipe()
	defer stdin.Close()
	out, _ := h.StdoutPipe()
	if err := h.Start(); err != nil {
		t.Fatal(err)
	}
	defer h.Process.Kill()
	if s := cp.line(t); s != "attached" {
		t.Fatal(s)
	}
	br := bufio.NewReader(out)
	for {
		l, err := br.ReadString('\n')
		if err != nil {
			t.Fatalf("Go producer helper: %v", err)
		}
		if l == "written\n" {
			break
		}
	}
	awaitHead(t, path, binary.LittleEndian.Uint64(readAt(t, path, 128, 8)))
	h.Process.Kill()
	h.Wait()
	start := time.Now()
	res, code := cp.finish(t)
	want := fmt.Sprintf("records=%d\n", n)
	if !strings.HasPrefix(res, want) {
		t.Fatalf("C consumer: %q, want %q first", res, want)
	}
	if _, _, c := cError(t, []byte(strings.TrimPrefix(res, want))); code != 1 || c != -25 {
		t.Errorf("C consumer: exit %d %q; want MDJ_ERR_PEER_DEAD (-25)", code, res)
	}
	t.Logf("C consumer reported the dead producer %v after its reaping: %s", time.Since(start).Round(time.Millisecond), strings.TrimSpace(res))
}

// TestRingBeatThread: a C producer that stops touching the ring (paused in
// fgets after 10 records) stays alive to a Go consumer with a 1 s peer
// timeout when it runs the beat thread (the consumer's 2.5 s deadline
// passes: os.ErrDeadlineExceeded), and is judged dead without it
// (ring.ErrPeerDead before that deadline) — the §12 rule "beat every
// 100 ms while attached, including while busy elsewhere".
func TestRingBeatThread(t *testing.T) {
	for _, c := range []struct {
		name    string
		args    []string
		wantErr error
	}{
		{"with-thread", []string{"-beatthread"}, os.ErrDeadlineExceeded},
		{"without", nil, ring.ErrPeerDead},
	} {
		t.Run(c.name, func(t *testing.T) {
			path := filepath.Join(ringDir(t), "r")
			seed := uint64(13)
			cp := startRing(t, append(append([]string{}, c.args...), "-pause", "10", "-cap", "65536", "produce", path, "20", fmt.Sprint(seed))...)
			if s := cp.line(t); s != "attached created=1" {
				t.Fatal(s)
			}
			cons, err := ring.NewConsumer(path, ring.ConsumerOptions{Wait: wait.Futex, AttachTimeout: 10 * time.Second, PeerTimeout: time.Second})
			if err != nil {
				t.Fatal(err)
			}
			defer cons.Close()
			if s := cp.line(t); s != "paused" {
				t.Fatal(s)
			}
			cons.SetDeadline(time.Now().Add(2500 * time.Millisecond))
			n := uint64(0)
			for {
				b, err := cons.Read()
				if err != nil {
					if n != 10 || !errors.Is(err, c.wantErr) {
						t.Fatalf("after %d records: %v, want %v after 10", n, err, c.wantErr)
					}
					break
				}
				if _, err := checkRec(b, seed, n); err != nil {
					t.Fatal(err)
				}
				n++
				cons.Release()
			}
		})
	}
}

// TestRingNoAlloc: tests/ringnoalloc.c (malloc interposed) is both sides
// of a ring in one process and a snapshot reader: a million claims,
// commits (single and staged), reads (single and batch), an empty-ring
// futex wait with its idle checks, heartbeats, and 10 000 snapshot copies
// and lookups allocate nothing after the warm-up.
func TestRingNoAlloc(t *testing.T) {
	tl := needTools(t)
	bin := filepath.Join(work, "bin", "ringnoalloc")
	if err := compile(bin, "gcc", cFlags, filepath.Join(cDir, "tests/ringnoalloc.c"), tl.impl); err != nil {
		t.Fatal(err)
	}
	spath, w := newSnap(t)
	publishAt(t, w, 2, 5)
	defer w.Close()
	r := run(t, time.Minute, bin, filepath.Join(ringDir(t), "r"), spath, "2", "SPY")
	if r.code != 0 || !strings.HasSuffix(string(r.stdout), ", 0 allocations\n") {
		t.Fatalf("exit %d: %s%s", r.code, r.stdout, r.stderr)
	}
	t.Logf("%s", r.stdout)
}
