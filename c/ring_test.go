package ctest

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/mdjournal/mdjournal/ring"
	"github.com/mdjournal/mdjournal/wait"
)

var (
	ringOnce sync.Once
	ringBin  string
	ringErr  error
)

// needRing builds tests/ring.c against the shared implementation object.
func needRing(t testing.TB) string {
	t.Helper()
	tl := needTools(t)
	ringOnce.Do(func() {
		ringBin = filepath.Join(work, "bin", "ring")
		ringErr = compile(ringBin, "gcc", cFlags, filepath.Join(cDir, "tests/ring.c"), tl.impl)
	})
	if ringErr != nil {
		t.Fatal(ringErr)
	}
	return ringBin
}

var (
	ringCxxOnce sync.Once
	ringCxxBin  string
	ringCxxErr  error
)

// needRingCxx builds tests/ring.c and the implementation as C++17 (g++):
// the same programs, so the C++ build is proven at run time too.
func needRingCxx(t testing.TB) string {
	t.Helper()
	needCompilers(t)
	ringCxxOnce.Do(func() {
		ringCxxBin = filepath.Join(work, "bin", "ring_cxx")
		ringCxxErr = compile(ringCxxBin, "g++", append([]string{"-x", "c++"}, cxxFlags...),
			filepath.Join(cDir, "tests/ring.c"), filepath.Join(cDir, "tests/impl.c"))
	})
	if ringCxxErr != nil {
		t.Fatal(ringCxxErr)
	}
	return ringCxxBin
}

// ringDir is a fresh directory on tmpfs (rings are shared memory; a disk
// file system would add write-back to every lap).
func ringDir(t testing.TB) string {
	t.Helper()
	base := "/dev/shm"
	if st, err := os.Stat(base); err != nil || !st.IsDir() {
		base = ""
	}
	d, err := os.MkdirTemp(base, "mdj-cring-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(d) })
	return d
}

// The record generator, mirrored from tests/ring.c: record i's length comes
// from splitmix64(seed ^ i·FNV prime); bytes [0,4) hold the CRC-32C of
// [4,len), [4,12) the index i, the rest is random (here from math/rand, in
// C from xorshift: the receiver checks only length, index and CRC).
func splitmix64(x uint64) uint64 {
	x += 0x9E3779B97F4A7C15
	x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9
	x = (x ^ (x >> 27)) * 0x94D049BB133111EB
	return x ^ (x >> 31)
}

const ringMaxLen = 4096 // tests/ring.c's default -maxlen

func recLen(seed, i uint64) int {
	r := splitmix64(seed ^ (i * 0x100000001B3))
	if r>>56 < 4 {
		return 12 + int(r%(ringMaxLen-12+1))
	}
	return 12 + int(r%256)
}

// checkRec verifies one received record; it returns the CRC it carries.
func checkRec(b []byte, seed, i uint64) (uint32, error) {
	if want := recLen(seed, i); len(b) != want {
		return 0, fmt.Errorf("record %d: length %d, want %d", i, len(b), want)
	}
	if idx := binary.LittleEndian.Uint64(b[4:]); idx != i {
		return 0, fmt.Errorf("record %d: carries index %d (lost, repeated or reordered)", i, idx)
	}
	crc := binary.LittleEndian.Uint32(b)
	if got := crc32.Checksum(b[4:], castagnoli); got != crc {
		return 0, fmt.Errorf("record %d: CRC-32C %08x, payload has %08x", i, crc, got)
	}
	return crc, nil
}

// goFill writes record i into b (len(b) == recLen) and returns its CRC.
// The payload is an xorshift64 stream seeded from rng (cheap: the 10 M
// record streams are bounded by the generator, not the ring).
func goFill(b []byte, rng *rand.Rand, i uint64) uint32 {
	binary.LittleEndian.PutUint64(b[4:], i)
	x := rng.Uint64() | 1
	j := 12
	for ; j+8 <= len(b); j += 8 {
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
		binary.LittleEndian.PutUint64(b[j:], x)
	}
	for ; j < len(b); j++ {
		b[j] = byte(x)
		x >>= 8
	}
	crc := crc32.Checksum(b[4:], castagnoli)
	binary.LittleEndian.PutUint32(b, crc)
	return crc
}

// ringCount is the length of the long interop streams: 10 M records, 1 M
// with -short, or MDJ_CRING_RECORDS.
func ringCount(t *testing.T) uint64 {
	if s := os.Getenv("MDJ_CRING_RECORDS"); s != "" {
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil || n < 10 {
			t.Fatalf("MDJ_CRING_RECORDS=%q: want a count >= 10", s)
		}
		return n
	}
	if testing.Short() {
		return 1_000_000
	}
	return 10_000_000
}

// cProc is a running tests/ring.c process.
type cProc struct {
	cmd   *exec.Cmd
	out   *bufio.Reader
	stdin io.WriteCloser
}

func startRing(t *testing.T, args ...string) *cProc {
	t.Helper()
	return startBin(t, needRing(t), args...)
}

func startBin(t *testing.T, bin string, args ...string) *cProc {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Stderr = os.Stderr
	in, _ := cmd.StdinPipe()
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	return &cProc{cmd: cmd, out: bufio.NewReader(out), stdin: in}
}

func (p *cProc) line(t *testing.T) string {
	t.Helper()
	l, err := p.out.ReadString('\n')
	if err != nil {
		t.Fatalf("C ring process: %v after %q", err, l)
	}
	return strings.TrimSuffix(l, "\n")
}

// finish reads the remaining output and waits; it returns the output and
// the exit code (-1 for a signal, which must never happen).
func (p *cProc) finish(t *testing.T) (string, int) {
	t.Helper()
	rest, _ := io.ReadAll(p.out)
	err := p.cmd.Wait()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		ws := ee.Sys().(syscall.WaitStatus)
		if ws.Signaled() {
			t.Fatalf("C ring process killed by %v (output %q)", ws.Signal(), rest)
		}
		return string(rest), ws.ExitStatus()
	} else if err != nil {
		t.Fatal(err)
	}
	return string(rest), 0
}

// goProduce writes n generated records through a Go producer; it returns
// the record count, byte count and CRC digest of what it sent.
func goProduce(t *testing.T, path string, n, seed uint64, capacity int, staged bool) (bytes uint64, digest uint32, err error) {
	p, err := ring.NewProducer(path, capacity, ring.ProducerOptions{
		Options: ring.Options{Replace: true}, Wait: wait.Futex, Linger: 30 * time.Second})
	if err != nil {
		return 0, 0, err
	}
	rng := rand.New(rand.NewPCG(seed, 99))
	var c [4]byte
	for i := range n {
		l := recLen(seed, i)
		b, err := p.Claim(l)
		if err != nil {
			p.Close()
			return 0, 0, fmt.Errorf("record %d: %w", i, err)
		}
		crc := goFill(b, rng, i)
		if staged && i%8 != 7 {
			err = p.CommitNoFlush()
		} else {
			err = p.Commit()
		}
		if err != nil {
			p.Close()
			return 0, 0, fmt.Errorf("record %d: %w", i, err)
		}
		binary.LittleEndian.PutUint32(c[:], crc)
		digest = crc32.Update(digest, castagnoli, c[:])
		bytes += uint64(l)
	}
	return bytes, digest, p.Close()
}

// TestRingGoToC streams records of random sizes (seeded; 12 B to 4 KiB
// through a 1 MiB ring, or 64 KiB for the smaller run: thousands of laps
// and padding records) from a
// Go producer (ring.NewProducer) to a C consumer process (mdjournal.h).
// The C side checks every record's CRC-32C, index (nothing lost, repeated
// or reordered) and length, reaches the end of the stream only through
// MDJ_ERR_EOF, and reports count, bytes and a digest of the CRCs, which
// must equal what the Go side sent. The Go producer's Close returns nil
// only once the C consumer drained the ring (linger). Subtests: the C
// consumer's batch reader idling with back-off against a Go producer that
// sleeps on the space futex (10 M records, 1 M with -short), and its
// single-record reader, built as C++17, sleeping on the data futex against
// staged (8-per-flush) Go publication.
func TestRingGoToC(t *testing.T) {
	for _, c := range []struct {
		name   string
		n      uint64
		cargs  []string
		staged bool
		cxx    bool
		cap    int
	}{
		{"batch-backoff", ringCount(t), []string{"-batch", "-wait", "backoff"}, false, false, 1 << 20},
		{"cxx-read-futex-staged", ringCount(t) / 10, []string{"-wait", "futex"}, true, true, 1 << 16},
	} {
		t.Run(c.name, func(t *testing.T) {
			path := filepath.Join(ringDir(t), "feed")
			seed := uint64(0xC0FFEE) + c.n
			bin := needRing(t)
			if c.cxx {
				bin = needRingCxx(t)
			}
			cp := startBin(t, bin, append(append([]string{}, c.cargs...), "-attach", "30000", "consume", path, fmt.Sprint(c.n), fmt.Sprint(seed))...)
			start := time.Now()
			bytes, digest, err := goProduce(t, path, c.n, seed, c.cap, c.staged)
			el := time.Since(start)
			out, code := cp.finish(t)
			if err != nil {
				t.Fatalf("Go producer: %v (C: %s)", err, out)
			}
			want := fmt.Sprintf("attached\nrecords=%d bytes=%d digest=%08x\n", c.n, bytes, digest)
			if code != 0 || out != want {
				t.Fatalf("C consumer: exit %d\n%s\nwant\n%s", code, out, want)
			}
			if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("the Go producer that created the ring must remove it at Close: %v", err)
			}
			t.Logf("%d records, %d bytes, Go → C in %v (%.1f M records/s)", c.n, bytes, el.Round(time.Millisecond), float64(c.n)/el.Seconds()/1e6)
		})
	}
}

// TestRingCToGo streams records the other way: a C producer process
// (mdj_ring_producer_open creates the generation, mdj_ring_claim/commit
// fill it in place, close lingers until drained and removes the file) to a
// Go consumer (ring.NewConsumer, waiting for it), which checks every
// record's length, index and CRC-32C and must end with io.EOF after exactly
// n records. Subtests: single-record publication on futex waits (10 M, 1 M
// with -short); staged publication (8 records per flush) with back-off
// from the C++17 build.
func TestRingCToGo(t *testing.T) {
	for _, c := range []struct {
		name  string
		n     uint64
		cargs []string
		wait  wait.Strategy
		cxx   bool
		cap   int
	}{
		{"futex", ringCount(t), []string{"-wait", "futex"}, wait.Futex, false, 1 << 20},
		{"cxx-staged-backoff", ringCount(t) / 10, []string{"-wait", "backoff", "-batch"}, wait.Backoff, true, 1 << 16},
	} {
		t.Run(c.name, func(t *testing.T) {
			path := filepath.Join(ringDir(t), "feed")
			seed := uint64(0xBEEF) + c.n
			type result struct {
				n, bytes uint64
				digest   uint32
				err      error
			}
			res := make(chan result, 1)
			go func() {
				var r result
				cons, err := ring.NewConsumer(path, ring.ConsumerOptions{Wait: c.wait, AttachTimeout: 30 * time.Second})
				if err != nil {
					r.err = err
					res <- r
					return
				}
				defer cons.Close()
				var c4 [4]byte
				for r.err == nil {
					_, err := cons.ReadBatch(256, func(b []byte) {
						if r.err != nil {
							return
						}
						crc, err := checkRec(b, seed, r.n)
						if err != nil {
							r.err = err
							return
						}
						binary.LittleEndian.PutUint32(c4[:], crc)
						r.digest = crc32.Update(r.digest, castagnoli, c4[:])
						r.bytes += uint64(len(b))
						r.n++
					})
					if err == io.EOF {
						break
					}
					if err != nil && r.err == nil {
						r.err = err
					}
				}
				res <- r
			}()
			start := time.Now()
			bin := needRing(t)
			if c.cxx {
				bin = needRingCxx(t)
			}
			cp := startBin(t, bin, append(append([]string{}, c.cargs...), "-cap", fmt.Sprint(c.cap), "produce", path, fmt.Sprint(c.n), fmt.Sprint(seed))...)
			r := <-res
			el := time.Since(start)
			out, code := cp.finish(t)
			if r.err != nil {
				t.Fatalf("Go consumer after %d records: %v (C: %q)", r.n, r.err, out)
			}
			if r.n != c.n {
				t.Fatalf("Go consumer: io.EOF after %d records, want %d", r.n, c.n)
			}
			if want := fmt.Sprintf("attached created=1\nclosed records=%d\n", c.n); code != 0 || out != want {
				t.Fatalf("C producer: exit %d %q, want %q", code, out, want)
			}
			if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("the C producer that created the ring must remove it at close: %v", err)
			}
			t.Logf("%d records, %d bytes, C → Go in %v (%.1f M records/s)", r.n, r.bytes, el.Round(time.Millisecond), float64(r.n)/el.Seconds()/1e6)
		})
	}
}

// TestRingSanitized runs the ring sides built with AddressSanitizer and
// UBSan (tests/ring.c and the implementation, -fsanitize=address,undefined,
// no recovery): a sanitized C producer to a sanitized C consumer, and a Go
// producer to a sanitized C consumer, 200 000 records each through a 64 KiB
// ring. Any report aborts the C process and fails the test.
func TestRingSanitized(t *testing.T) {
	needCompilers(t)
	if testing.Short() {
		t.Skip("SKIPPED in -short mode: the sanitizer build is slow; run go test ./c/ without -short")
	}
	bin := filepath.Join(work, "bin", "ring_san")
	if err := os.MkdirAll(filepath.Dir(bin), 0o755); err != nil {
		t.Fatal(err)
	}
	san := []string{"-std=c11", "-Wall", "-Wextra", "-O1", "-g", "-fsanitize=address,undefined", "-fno-sanitize-recover=all"}
	if err := compile(bin, "gcc", san, filepath.Join(cDir, "tests/ring.c"), filepath.Join(cDir, "tests/impl.c")); err != nil {
		t.Skipf("SKIPPED, NOT RUN: the toolchain cannot build with the sanitizers: %v", err) // the unit tests skip the same way (c_test.go)
	}
	const n = 200_000
	t.Run("c-to-c", func(t *testing.T) {
		path := filepath.Join(ringDir(t), "feed")
		cons := startBin(t, bin, "-attach", "30000", "consume", path, fmt.Sprint(n), "21")
		prod := startBin(t, bin, "-cap", "65536", "produce", path, fmt.Sprint(n), "21")
		pout, pcode := prod.finish(t)
		cout, ccode := cons.finish(t)
		if pcode != 0 || ccode != 0 || !strings.HasPrefix(cout, fmt.Sprintf("attached\nrecords=%d ", n)) {
			t.Fatalf("producer: exit %d %q; consumer: exit %d %q", pcode, pout, ccode, cout)
		}
	})
	t.Run("go-to-c", func(t *testing.T) {
		path := filepath.Join(ringDir(t), "feed")
		cons := startBin(t, bin, "-batch", "-attach", "30000", "consume", path, fmt.Sprint(n), "22")
		bytes, digest, err := goProduce(t, path, n, 22, 1<<16, false)
		out, code := cons.finish(t)
		if err != nil {
			t.Fatal(err)
		}
		if want := fmt.Sprintf("attached\nrecords=%d bytes=%d digest=%08x\n", n, bytes, digest); code != 0 || out != want {
			t.Fatalf("C consumer: exit %d %q, want %q", code, out, want)
		}
	})
}
