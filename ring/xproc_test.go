package ring

import (
	"bufio"
	"bytes"
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
	"syscall"
	"testing"
	"time"

	"github.com/mdjournal/mdjournal/wait"
)

// Cross-process tests re-execute the test binary as helper processes
// (TestHelperProcess), so producer and consumer run in separate address
// spaces and share nothing but the ring file.
const helperEnv = "MDJ_RING_HELPER"

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// gen produces the deterministic message stream both sides agree on:
// message i is 8..4096 bytes, starting with i (little-endian uint64),
// followed by pool bytes from a random offset.
type gen struct {
	rng  *rand.Rand
	pool []byte
}

const (
	genMin = 8
	genMax = 4096
)

func newGen(seed uint64) *gen {
	g := &gen{rng: rand.New(rand.NewPCG(seed, 0x6d646a)), pool: make([]byte, 8192+genMax)}
	for i := range g.pool {
		g.pool[i] = byte(g.rng.Uint32())
	}
	return g
}

// next returns the length of message i and fills dst[:n] with it.
func (g *gen) size() int { return genMin + g.rng.IntN(genMax-genMin+1) }

func (g *gen) fill(dst []byte, i uint64) {
	binary.LittleEndian.PutUint64(dst, i)
	off := g.rng.IntN(8192)
	copy(dst[8:], g.pool[off:])
}

// TestHelperProcess is not a test: it is the body of a helper process.
func TestHelperProcess(t *testing.T) {
	role := os.Getenv(helperEnv)
	if role == "" {
		t.Skip("helper process body; run by the cross-process tests")
	}
	err := helper(role)
	if err != nil {
		fmt.Fprintln(os.Stderr, "helper", role, "error:", err)
		os.Exit(2)
	}
	os.Exit(0)
}

func helper(role string) error {
	if h, ok := helpers[role]; ok {
		return h()
	}
	path := os.Getenv("MDJ_RING_PATH")
	n, _ := strconv.ParseUint(os.Getenv("MDJ_RING_N"), 10, 64)
	seed, _ := strconv.ParseUint(os.Getenv("MDJ_RING_SEED"), 10, 64)
	s, err := wait.Parse(os.Getenv("MDJ_RING_STRATEGY"))
	if err != nil {
		return err
	}
	r, err := Open(path)
	if err != nil {
		return err
	}
	defer r.Close()
	switch role {
	case "echo": // consume path, produce every record back on MDJ_RING_PATH2
		c, err := r.Consumer(s)
		if err != nil {
			return err
		}
		r2, err := Open(os.Getenv("MDJ_RING_PATH2"))
		if err != nil {
			return err
		}
		defer r2.Close()
		p, err := r2.Producer(s)
		if err != nil {
			return err
		}
		for {
			b, err := c.Read()
			if err == io.EOF {
				return p.Close()
			}
			if err != nil {
				return err
			}
			if err := p.Write(b); err != nil {
				return err
			}
			c.Release()
		}
	case "producer", "producer-hang":
		p, err := r.Producer(s)
		if err != nil {
			return err
		}
		g := newGen(seed)
		buf := make([]byte, genMax)
		crc := uint32(0)
		for i := uint64(0); i < n; i++ {
			size := g.size()
			if i%2 == 0 { // zero-copy claim
				b, err := p.Claim(size)
				if err != nil {
					return fmt.Errorf("claim %d: %w", i, err)
				}
				g.fill(b, i)
				crc = crc32.Update(crc, castagnoli, b)
				if err := p.Commit(); err != nil {
					return err
				}
			} else {
				b := buf[:size]
				g.fill(b, i)
				crc = crc32.Update(crc, castagnoli, b)
				if err := p.Write(b); err != nil {
					return fmt.Errorf("write %d: %w", i, err)
				}
			}
		}
		if role == "producer-hang" {
			fmt.Println("ready")
			time.Sleep(time.Hour) // wait to be killed
		}
		fmt.Printf("result n=%d crc=%08x\n", n, crc)
		return p.Close()
	case "consumer", "consumer-hang":
		c, err := r.Consumer(s)
		if err != nil {
			return err
		}
		slow := os.Getenv("MDJ_RING_SLOW") != ""
		g := newGen(seed)
		want := make([]byte, genMax)
		crc := uint32(0)
		var i uint64
		for ; role == "consumer" || i < n; i++ {
			b, err := c.Read()
			if err == io.EOF && role == "consumer" {
				break
			}
			if err != nil {
				return fmt.Errorf("read %d: %w", i, err)
			}
			w := want[:g.size()]
			g.fill(w, i)
			if !bytes.Equal(b, w) {
				return fmt.Errorf("message %d: got %d bytes (seq %d), want %d bytes", i, len(b), binary.LittleEndian.Uint64(b), len(w))
			}
			crc = crc32.Update(crc, castagnoli, b)
			c.Release()
			if slow && i%64 == 0 {
				time.Sleep(100 * time.Microsecond)
			}
		}
		if role == "consumer-hang" {
			fmt.Println("ready")
			time.Sleep(time.Hour)
		}
		fmt.Printf("result n=%d crc=%08x\n", i, crc)
		return c.Close()
	}
	return fmt.Errorf("unknown role %q", role)
}

// helpers holds the helper roles defined by other test files.
var helpers = map[string]func() error{}

// helperCmd starts a helper process; its stdout is returned as a line reader.
func helperCmd(t *testing.T, role, path string, n uint64, seed uint64, s wait.Strategy, extra ...string) (*exec.Cmd, *bufio.Reader) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperProcess$", "-test.count=1")
	cmd.Env = append(os.Environ(),
		helperEnv+"="+role,
		"MDJ_RING_PATH="+path,
		"MDJ_RING_N="+strconv.FormatUint(n, 10),
		"MDJ_RING_SEED="+strconv.FormatUint(seed, 10),
		"MDJ_RING_STRATEGY="+s.String(),
	)
	cmd.Env = append(cmd.Env, extra...)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			cmd.Wait()
		}
	})
	return cmd, bufio.NewReader(out)
}

func readLine(t *testing.T, r *bufio.Reader, prefix string) string {
	t.Helper()
	for {
		line, err := r.ReadString('\n')
		if strings.HasPrefix(line, prefix) {
			return strings.TrimSpace(line)
		}
		if err != nil {
			t.Fatalf("helper output ended before %q: %v", prefix, err)
		}
	}
}

func ringDir(t testing.TB) string {
	if st, err := os.Stat(DefaultDir); err == nil && st.IsDir() {
		d, err := os.MkdirTemp(DefaultDir, "mdjring-test")
		if err == nil {
			t.Cleanup(func() { os.RemoveAll(d) })
			return d
		}
	}
	return t.TempDir()
}

// messages is the count for the cross-process stream: MDJ_RING_MESSAGES
// overrides; the default given, 100 k at most in -short or -race runs.
func messages(def uint64) uint64 {
	if v, err := strconv.ParseUint(os.Getenv("MDJ_RING_MESSAGES"), 10, 64); err == nil && v > 0 {
		return v
	}
	if testing.Short() || raceEnabled {
		return min(def, 100_000)
	}
	return def
}

// runStream runs a producer process and a consumer process over one ring
// and compares message counts and running CRC-32C of every byte; the
// consumer also checks every message byte for byte as it goes.
func runStream(t *testing.T, n uint64, capacity int, ps, cs wait.Strategy, extra ...string) {
	t.Helper()
	runStreamAt(t, filepath.Join(ringDir(t), "stream"), Options{}, n, capacity, ps, cs, extra...)
}

func runStreamAt(t *testing.T, path string, opts Options, n uint64, capacity int, ps, cs wait.Strategy, extra ...string) {
	t.Helper()
	r, err := Create(path, capacity, opts)
	if err != nil {
		t.Fatal(err)
	}
	r.Close()
	seed := uint64(time.Now().UnixNano())
	start := time.Now()
	pc, pout := helperCmd(t, "producer", path, n, seed, ps)
	cc, cout := helperCmd(t, "consumer", path, n, seed, cs, extra...)
	pres := readLine(t, pout, "result ")
	cres := readLine(t, cout, "result ")
	if err := pc.Wait(); err != nil {
		t.Fatalf("producer: %v", err)
	}
	if err := cc.Wait(); err != nil {
		t.Fatalf("consumer: %v", err)
	}
	el := time.Since(start)
	want := fmt.Sprintf("result n=%d ", n)
	if !strings.HasPrefix(pres, want) || pres != cres {
		t.Fatalf("producer says %q, consumer says %q (seed %d)", pres, cres, seed)
	}
	t.Logf("%d messages (8 B..4 KiB), producer %v / consumer %v, ring %d B: %v (%.2f M msgs/s), %s",
		n, ps, cs, capacity, el.Round(time.Millisecond), float64(n)/el.Seconds()/1e6, cres)
}

func TestCrossProcessStream(t *testing.T) {
	n := messages(500_000)
	t.Run("futex", func(t *testing.T) { runStream(t, n, 64<<10, wait.Futex, wait.Futex) })
	t.Run("spin-backoff", func(t *testing.T) { runStream(t, n/10, 16<<10, wait.Spin, wait.Backoff) })
	t.Run("yield", func(t *testing.T) { runStream(t, n/10, 1<<20, wait.Yield, wait.Yield) })
}

// TestCrossProcessSlowConsumer: the consumer sleeps regularly, so the
// producer runs into a full ring and must wait (back-pressure); nothing may
// be lost or reordered.
func TestCrossProcessSlowConsumer(t *testing.T) {
	n := messages(100_000) / 2
	runStream(t, n, 16<<10, wait.Futex, wait.Futex, "MDJ_RING_SLOW=1")
}

// TestRingLong is the 50-million-message run; MDJ_LONG=1 enables it
// (MDJ_RING_MESSAGES overrides the count).
func TestRingLong(t *testing.T) {
	if os.Getenv("MDJ_LONG") != "1" {
		t.Skip("set MDJ_LONG=1 to stream 50 M messages between two processes")
	}
	n := uint64(50_000_000)
	if v, err := strconv.ParseUint(os.Getenv("MDJ_RING_MESSAGES"), 10, 64); err == nil && v > 0 {
		n = v
	}
	runStream(t, n, 1<<20, wait.Futex, wait.Futex)
}

// bound is how long a survivor may take to notice a dead peer before the
// test fails: generous, because the check itself runs every 100 ms at most.
const bound = 20 * time.Second

func TestCrossProcessProducerKilled(t *testing.T) {
	for _, s := range []wait.Strategy{wait.Futex, wait.Spin, wait.Backoff} {
		t.Run(s.String(), func(t *testing.T) {
			path := filepath.Join(ringDir(t), "dead-producer")
			r, err := Create(path, 1<<20, Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			c, err := r.Consumer(s)
			if err != nil {
				t.Fatal(err)
			}
			const n = 100
			seed := uint64(1)
			pc, pout := helperCmd(t, "producer-hang", path, n, seed, s)
			readLine(t, pout, "ready")
			// Everything published before the death is delivered.
			g := newGen(seed)
			for i := uint64(0); i < n; i++ {
				b, err := c.Read()
				if err != nil {
					t.Fatalf("read %d: %v", i, err)
				}
				if len(b) != g.size() || binary.LittleEndian.Uint64(b) != i {
					t.Fatalf("message %d wrong", i)
				}
				g.rng.IntN(8192)
			}
			done := make(chan error, 1)
			var took time.Duration
			go func() {
				_, err := c.Read() // blocks: the producer is alive and silent
				done <- err
			}()
			time.Sleep(20 * time.Millisecond)
			if err := pc.Process.Signal(syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			killed := time.Now()
			// Not reaped yet: the dead producer is a zombie, which must
			// count as dead too.
			select {
			case err := <-done:
				took = time.Since(killed)
				if !errors.Is(err, ErrPeerDead) {
					t.Fatalf("Read after the producer was killed: %v, want ErrPeerDead", err)
				}
			case <-time.After(bound):
				t.Fatalf("consumer still blocked %v after the producer was killed", bound)
			}
			pc.Wait()
			t.Logf("consumer saw the death after %v", took)
			if err := c.Err(); !errors.Is(err, ErrPeerDead) {
				t.Fatalf("Err: %v", err)
			}
			// The generation is over: no second producer joins it, the
			// file is a leftover that a new producer refuses or replaces.
			if _, err := r.Producer(s); !errors.Is(err, ErrSideUsed) {
				t.Fatalf("second producer on the generation: %v, want ErrSideUsed", err)
			}
			if _, err := NewProducer(path, 1<<20, ProducerOptions{}); !errors.Is(err, ErrLeftover) {
				t.Fatalf("NewProducer over the leftover: %v, want ErrLeftover", err)
			}
			p, err := NewProducer(path, 1<<20, ProducerOptions{Options: Options{Replace: true}, Linger: -1})
			if err != nil {
				t.Fatalf("NewProducer replacing the leftover: %v", err)
			}
			defer p.Close()
			if p.Ring().Generation() == r.Generation() {
				t.Fatal("the replacement has the leftover's generation")
			}
			if _, err := c.Read(); !errors.Is(err, ErrPeerDead) {
				t.Fatalf("the old generation's consumer after the replacement: %v, want ErrPeerDead still", err)
			}
		})
	}
}

func TestCrossProcessConsumerKilled(t *testing.T) {
	for _, s := range []wait.Strategy{wait.Futex, wait.Spin, wait.Backoff} {
		t.Run(s.String(), func(t *testing.T) {
			path := filepath.Join(ringDir(t), "dead-consumer")
			r, err := Create(path, 64<<10, Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			p, err := r.Producer(s)
			if err != nil {
				t.Fatal(err)
			}
			const n = 10
			seed := uint64(2)
			cc, cout := helperCmd(t, "consumer-hang", path, n, seed, s)
			g := newGen(seed)
			for i := uint64(0); i < n; i++ {
				b, err := p.Claim(g.size())
				if err != nil {
					t.Fatal(err)
				}
				g.fill(b, i)
				p.Commit()
			}
			readLine(t, cout, "ready")
			for p.TryWrite(make([]byte, 1000)) == nil {
			}
			done := make(chan error, 1)
			go func() { done <- p.Write(make([]byte, 1000)) }()
			time.Sleep(20 * time.Millisecond)
			cc.Process.Signal(syscall.SIGKILL)
			killed := time.Now()
			select {
			case err := <-done:
				if !errors.Is(err, ErrPeerDead) {
					t.Fatalf("Write after the consumer was killed: %v, want ErrPeerDead", err)
				}
				t.Logf("producer saw the death after %v", time.Since(killed))
			case <-time.After(bound):
				t.Fatalf("producer still blocked %v after the consumer was killed", bound)
			}
			cc.Wait()
		})
	}
}
