package ring

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mdjournal/mdjournal/internal/clock"
	"github.com/mdjournal/mdjournal/wait"
)

// TestSessionsExactlyOnce is defect 1 of the v1 ring, tried as a user
// would: a producer process (like `replay --ring NAME`) and a consumer
// process (like `journalctl ring --name NAME`) run 12 times with the same
// ring name, in every start order, with leftovers of earlier runs lying
// around (a finished ring kept on purpose, a ring whose producer was
// killed, a ring whose consumer was killed). With v1 the consumer got 0
// records or the stream twice while both exited 0. Each consumer must get
// exactly its own round's records, each once, in order, then io.EOF; each
// producer's Close must confirm delivery; and no ring file may be left.
func TestSessionsExactlyOnce(t *testing.T) {
	dir := ringDir(t)
	path := filepath.Join(dir, "day")
	big := 20000 // more than the 64 KiB ring holds: the producer waits for the consumer
	if testing.Short() || raceEnabled {
		big = 3000 // still ~5 laps
	}
	for round := range 12 {
		n := big
		if round%2 == 1 {
			n = 50 // fits: the producer finishes first and lingers
		}
		// Leftovers from "earlier runs", made by real processes; each kind
		// once with the consumer started first, once otherwise.
		leftover := map[int]string{3: "finished", 4: "finished", 6: "producer killed", 7: "producer killed", 9: "consumer killed", 11: "consumer killed"}[round]
		switch leftover {
		case "finished": // a finished ring whose producer kept it and left
			pc, pout := sessionCmd(t, "session-producer", path, 100, 99, "MDJ_RING_KEEP=1", "MDJ_RING_LINGER=-1")
			readLine(t, pout, "produced ")
			if err := pc.Wait(); err != nil {
				t.Fatalf("leftover producer: %v", err)
			}
		case "producer killed": // a ring whose producer was killed mid-stream
			pc, pout := sessionCmd(t, "session-producer-hang", path, 100, 98)
			readLine(t, pout, "ready")
			pc.Signal(syscall.SIGKILL)
			pc.Wait()
		case "consumer killed": // a ring whose consumer was killed mid-stream (its producer then gave up)
			pc, pout := sessionCmd(t, "session-producer", path, 20000, 97, "MDJ_RING_KEEP=1")
			cc, cout := sessionCmd(t, "session-consumer-hang", path, 0, 97)
			readLine(t, cout, "ready")
			cc.Signal(syscall.SIGKILL)
			cc.Wait()
			readLine(t, pout, "producer error")
			pc.Wait()
		}
		if leftover != "" {
			if _, err := os.Stat(path); err != nil {
				t.Fatalf("round %d: no leftover to test with: %v", round, err)
			}
		}
		var pc, cc sessionProc
		switch round % 3 {
		case 0: // consumer first: it must wait for its generation
			cc = startSession(t, "session-consumer", path, n, round)
			readLine(t, cc.out, "waiting")
			pc = startSession(t, "session-producer", path, n, round)
		case 1: // producer first
			pc = startSession(t, "session-producer", path, n, round)
			readLine(t, pc.out, "attached")
			cc = startSession(t, "session-consumer", path, n, round)
		case 2: // both at once
			pc = startSession(t, "session-producer", path, n, round)
			cc = startSession(t, "session-consumer", path, n, round)
		}
		cres := readLine(t, cc.out, "consumed ")
		pres := readLine(t, pc.out, "produced ")
		if err := cc.cmd.Wait(); err != nil {
			t.Fatalf("round %d: consumer: %v", round, err)
		}
		if err := pc.cmd.Wait(); err != nil {
			t.Fatalf("round %d: producer: %v", round, err)
		}
		want := fmt.Sprintf("consumed %d of round %d", n, round)
		if !strings.HasPrefix(cres, want) {
			t.Fatalf("round %d: consumer says %q, want %q", round, cres, want)
		}
		// Same generation on both sides.
		if cg, pg := cres[strings.LastIndexByte(cres, ' ')+1:], pres[strings.LastIndexByte(pres, ' ')+1:]; cg != pg {
			t.Fatalf("round %d: consumer read generation %s, producer wrote %s", round, cg, pg)
		}
		if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("round %d: ring file left behind: %v", round, err)
		}
		t.Logf("round %d (leftover: %q): %s / %s", round, leftover, pres, cres)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Fatalf("files left in %s: %v", dir, ents)
	}
}

type sessionProc struct {
	cmd interface{ Wait() error }
	out *bufio.Reader
}

func startSession(t *testing.T, role, path string, n, round int) sessionProc {
	t.Helper()
	cmd, out := sessionCmd(t, role, path, n, round)
	return sessionProc{cmd, out}
}

func sessionCmd(t *testing.T, role, path string, n, round int, extra ...string) (interface {
	Wait() error
	Signal(os.Signal) error
}, *bufio.Reader) {
	t.Helper()
	cmd, out := helperCmd(t, role, path, uint64(n), uint64(round), wait.Futex, extra...)
	return procOf{cmd.Wait, cmd.Process}, out
}

type procOf struct {
	wait func() error
	*os.Process
}

func (p procOf) Wait() error { return p.wait() }

// sessionRecord is record i of a round: round and i, then i%200 filler bytes.
func sessionRecord(b []byte, round uint32, i int) []byte {
	b = b[:8+i%200]
	binary.LittleEndian.PutUint32(b, round)
	binary.LittleEndian.PutUint32(b[4:], uint32(i))
	for j := 8; j < len(b); j++ {
		b[j] = byte(i + j)
	}
	return b
}

func init() {
	env := func() (path string, n int, round uint32) {
		n, _ = strconv.Atoi(os.Getenv("MDJ_RING_N"))
		r, _ := strconv.Atoi(os.Getenv("MDJ_RING_SEED"))
		return os.Getenv("MDJ_RING_PATH"), n, uint32(r)
	}
	producer := func(hang bool) func() error {
		return func() error {
			path, n, round := env()
			opts := ProducerOptions{Options: Options{Replace: true}, Wait: wait.Futex, Keep: os.Getenv("MDJ_RING_KEEP") != ""}
			if l, err := strconv.Atoi(os.Getenv("MDJ_RING_LINGER")); err == nil {
				opts.Linger = time.Duration(l) * time.Millisecond
			}
			p, err := NewProducer(path, 64<<10, opts)
			if err != nil {
				return err
			}
			fmt.Printf("attached created=%v\n", p.Created())
			buf := make([]byte, 256)
			for i := range n {
				if err := p.Write(sessionRecord(buf, round, i)); err != nil {
					fmt.Printf("producer error %v\n", err)
					return nil
				}
			}
			if hang {
				fmt.Println("ready")
				select {}
			}
			gen := p.Ring().Generation()
			if err := p.Close(); err != nil {
				return err
			}
			fmt.Printf("produced %d of round %d generation %016x\n", n, round, gen)
			return nil
		}
	}
	consumer := func(hang bool) func() error {
		return func() error {
			path, _, round := env()
			fmt.Println("waiting")
			c, err := NewConsumer(path, ConsumerOptions{Wait: wait.Futex, AttachTimeout: 30 * time.Second})
			if err != nil {
				return err
			}
			defer c.Close()
			if hang {
				if _, err := c.Read(); err != nil {
					return err
				}
				fmt.Println("ready")
				select {}
			}
			buf := make([]byte, 256)
			i := 0
			for {
				b, err := c.Read()
				if err == io.EOF {
					break
				}
				if err != nil {
					return fmt.Errorf("after %d records: %w", i, err)
				}
				if want := sessionRecord(buf, round, i); string(b) != string(want) {
					return fmt.Errorf("record %d: got round %d seq %d (%d bytes), want round %d seq %d (%d bytes)",
						i, binary.LittleEndian.Uint32(b), binary.LittleEndian.Uint32(b[4:]), len(b), round, i, len(want))
				}
				i++
			}
			fmt.Printf("consumed %d of round %d generation %016x\n", i, round, c.Ring().Generation())
			return nil
		}
	}
	helpers["session-producer"] = producer(false)
	helpers["session-producer-hang"] = producer(true)
	helpers["session-consumer"] = consumer(false)
	helpers["session-consumer-hang"] = consumer(true)
}

func sessionPath(t *testing.T) string { return filepath.Join(ringDir(t), "s") }

// finishedLeftover leaves a finished generation at path whose producer has
// left (closed without lingering), records unread.
func finishedLeftover(t *testing.T, path string) uint64 {
	t.Helper()
	r, err := Create(path, 4096, Options{})
	if err != nil {
		t.Fatal(err)
	}
	p, err := r.Producer(wait.Spin)
	if err != nil {
		t.Fatal(err)
	}
	mustWrite(t, p, []byte("old"))
	p.Close()
	g := r.Generation()
	r.Close()
	return g
}

// TestNewConsumerSkipsLeftovers: a consumer never attaches to a leftover
// (finished and left, dead producer, consumed); it waits for a new
// generation, and says what it found if none comes.
func TestNewConsumerSkipsLeftovers(t *testing.T) {
	for _, tc := range []struct {
		name string
		make func(t *testing.T, path string)
		why  string
	}{
		{"finished, producer left", func(t *testing.T, path string) { finishedLeftover(t, path) }, "leftover finished ring"},
		{"producer dead", func(t *testing.T, path string) {
			r, _ := Create(path, 4096, Options{})
			forgeSide(r, OffProducer, 1<<22+5, StateAttached, clock.Nanotime()-int64(time.Hour), self.pidns)
			r.Close()
		}, "heartbeat"},
		{"already consumed", func(t *testing.T, path string) {
			r, p, c := func() (*Ring, *Producer, *Consumer) {
				r, _ := Create(path, 4096, Options{})
				p, _ := r.Producer(wait.Spin)
				c, _ := r.Consumer(wait.Spin)
				return r, p, c
			}()
			mustWrite(t, p, []byte("x"))
			c.Close()
			r.Close()
		}, "already consumed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := sessionPath(t)
			tc.make(t, path)
			_, err := NewConsumer(path, ConsumerOptions{AttachTimeout: 150 * time.Millisecond})
			if !errors.Is(err, ErrNoProducer) || !errors.Is(err, os.ErrDeadlineExceeded) || !strings.Contains(err.Error(), tc.why) {
				t.Fatalf("NewConsumer on a leftover: %v, want ErrNoProducer + deadline saying %q", err, tc.why)
			}
			// A consumer waiting on the leftover gets the new generation.
			got := make(chan string, 1)
			go func() {
				c, err := NewConsumer(path, ConsumerOptions{AttachTimeout: 20 * time.Second})
				if err != nil {
					got <- err.Error()
					return
				}
				defer c.Close()
				var s []string
				for {
					b, err := c.Read()
					if err != nil {
						got <- strings.Join(s, ",") + " " + fmt.Sprint(err)
						return
					}
					s = append(s, string(b))
				}
			}()
			p, err := NewProducer(path, 4096, ProducerOptions{Options: Options{Replace: true}})
			if err != nil {
				t.Fatal(err)
			}
			p.Write([]byte("new1"))
			p.Write([]byte("new2"))
			if err := p.Close(); err != nil {
				t.Fatalf("producer Close: %v", err)
			}
			if g := <-got; g != "new1,new2 EOF" {
				t.Fatalf("consumer got %q, want the new generation only: \"new1,new2 EOF\"", g)
			}
		})
	}
}

func TestNewConsumerNoRing(t *testing.T) {
	path := sessionPath(t)
	start := time.Now()
	_, err := NewConsumer(path, ConsumerOptions{AttachTimeout: 100 * time.Millisecond})
	if !errors.Is(err, ErrNoProducer) || !errors.Is(err, os.ErrDeadlineExceeded) || !strings.Contains(err.Error(), "no ring file") {
		t.Fatalf("NewConsumer without a ring: %v", err)
	}
	if el := time.Since(start); el < 100*time.Millisecond || el > 10*time.Second {
		t.Fatalf("gave up after %v, want the 100ms attach timeout", el)
	}
	if _, err := NewConsumer(path, ConsumerOptions{AttachTimeout: -1}); !errors.Is(err, ErrNoProducer) {
		t.Fatalf("NewConsumer, no waiting: %v", err)
	}
}

// TestNewProducerJoinsWaitingConsumer: a consumer attached to a ring that
// has no producer yet is joined, not replaced.
func TestNewProducerJoinsWaitingConsumer(t *testing.T) {
	path := sessionPath(t)
	r, err := Create(path, 4096, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	got := make(chan string, 1)
	go func() {
		c, err := NewConsumer(path, ConsumerOptions{AttachTimeout: 20 * time.Second})
		if err != nil {
			got <- err.Error()
			return
		}
		defer c.Close()
		b, err := c.Read()
		got <- fmt.Sprintf("%s %v", b, err)
	}()
	waitFor(t, 10*time.Second, "the consumer to attach", func() bool { return (side{r.h, OffConsumer}).state() == StateAttached })
	p, err := NewProducer(path, 1<<16, ProducerOptions{Options: Options{Replace: true}})
	if err != nil {
		t.Fatal(err)
	}
	if p.Created() || p.Ring().Generation() != r.Generation() || p.Ring().Capacity() != 4096 {
		t.Fatalf("NewProducer created=%v generation %x capacity %d: want to join generation %x (4096)", p.Created(), p.Ring().Generation(), p.Ring().Capacity(), r.Generation())
	}
	p.Write([]byte("hello"))
	if g := <-got; g != "hello <nil>" {
		t.Fatalf("consumer got %q", g)
	}
	p.Close()
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("a joining producer removed a ring it did not create: %v", err)
	}
}

// TestNewProducerLeftover: a leftover is refused unless Replace; then it is
// replaced by a new generation and sealed, so no late process attaches to
// it; a live producer's ring is never replaced.
func TestNewProducerLeftover(t *testing.T) {
	path := sessionPath(t)
	oldGen := finishedLeftover(t, path)
	_, err := NewProducer(path, 4096, ProducerOptions{})
	var le *LeftoverError
	if !errors.As(err, &le) || !errors.Is(err, ErrLeftover) || le.Generation != oldGen || !strings.Contains(le.Reason, "finished") {
		t.Fatalf("NewProducer over a leftover: %v, want *LeftoverError naming generation %x", err, oldGen)
	}
	old, err := Open(path) // a process still holding the old generation
	if err != nil {
		t.Fatal(err)
	}
	defer old.Close()
	p, err := NewProducer(path, 4096, ProducerOptions{Options: Options{Replace: true}})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if !p.Created() || p.Ring().Generation() == oldGen {
		t.Fatal("Replace did not create a new generation")
	}
	if _, err := old.Consumer(wait.Spin); !errors.Is(err, ErrSideUsed) {
		t.Fatalf("consumer on the replaced generation: %v, want ErrSideUsed (sealed)", err)
	}
	if _, err := NewProducer(path, 4096, ProducerOptions{Options: Options{Replace: true}}); !errors.Is(err, ErrBusy) {
		t.Fatalf("NewProducer over a live producer's ring: %v, want ErrBusy", err)
	}
	if _, err := Create(path, 4096, Options{Replace: true}); !errors.Is(err, ErrBusy) {
		t.Fatalf("Create over a live producer's ring: %v, want ErrBusy", err)
	}
}

// TestProducerLinger: Close of a producer that created its ring waits for
// the consumer to drain it, then removes the file; without a consumer it
// gives up after Linger with ErrUndelivered; Keep keeps the file.
func TestProducerLinger(t *testing.T) {
	t.Run("drained", func(t *testing.T) {
		path := sessionPath(t)
		p, err := NewProducer(path, 4096, ProducerOptions{})
		if err != nil {
			t.Fatal(err)
		}
		p.Write([]byte("a"))
		p.Write([]byte("b"))
		closed := make(chan error, 1)
		go func() { closed <- p.Close() }()
		c, err := NewConsumer(path, ConsumerOptions{})
		if err != nil {
			t.Fatal(err)
		}
		for _, want := range []string{"a", "b"} {
			if b, err := c.Read(); err != nil || string(b) != want {
				t.Fatalf("read %q %v, want %q", b, err, want)
			}
		}
		if _, err := c.Read(); err != io.EOF {
			t.Fatalf("end: %v", err)
		}
		if err := <-closed; err != nil {
			t.Fatalf("producer Close after the drain: %v", err)
		}
		if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("ring file after Close: %v", err)
		}
		c.Close()
	})
	t.Run("no consumer", func(t *testing.T) {
		path := sessionPath(t)
		p, err := NewProducer(path, 4096, ProducerOptions{Linger: 100 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		p.Write([]byte("a"))
		if err := p.Close(); !errors.Is(err, ErrUndelivered) {
			t.Fatalf("Close with nobody reading: %v, want ErrUndelivered", err)
		}
		if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("ring file after Close: %v", err)
		}
	})
	t.Run("nothing published", func(t *testing.T) {
		p, err := NewProducer(sessionPath(t), 4096, ProducerOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if err := p.Close(); err != nil {
			t.Fatalf("Close of an empty stream: %v", err)
		}
	})
	t.Run("keep", func(t *testing.T) {
		path := sessionPath(t)
		p, err := NewProducer(path, 4096, ProducerOptions{Keep: true, Linger: -1})
		if err != nil {
			t.Fatal(err)
		}
		p.Write([]byte("a"))
		if err := p.Close(); err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(path); err != nil {
			t.Fatalf("Keep: %v", err)
		}
	})
	t.Run("consumer dies", func(t *testing.T) {
		path := sessionPath(t)
		p, err := NewProducer(path, 4096, ProducerOptions{})
		if err != nil {
			t.Fatal(err)
		}
		p.Write([]byte("a"))
		forgeSide(p.r, OffConsumer, 1<<22+9, StateAttached, clock.Nanotime(), self.pidns) // a consumer PID that is gone
		if err := p.Close(); !errors.Is(err, ErrPeerDead) {
			t.Fatalf("Close with a dead consumer: %v, want ErrPeerDead", err)
		}
	})
	t.Run("replaced while lingering", func(t *testing.T) {
		path := sessionPath(t)
		p, err := NewProducer(path, 4096, ProducerOptions{Linger: 20 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		p.Write([]byte("a"))
		closed := make(chan error, 1)
		go func() { closed <- p.Close() }()
		waitFor(t, 10*time.Second, "the producer to close", func() bool { return p.me.state() == StateClosed })
		// A finished generation is a leftover: a new producer may replace it.
		p2, err := NewProducer(path, 4096, ProducerOptions{Options: Options{Replace: true}, Linger: -1})
		if err != nil {
			t.Fatal(err)
		}
		defer p2.Close()
		if err := <-closed; !errors.Is(err, ErrUndelivered) {
			t.Fatalf("lingering producer whose ring was replaced: %v, want ErrUndelivered", err)
		}
		r, err := Open(path)
		if err != nil {
			t.Fatalf("the replacement was removed by the old producer: %v", err)
		}
		if r.Generation() != p2.Ring().Generation() {
			t.Fatal("the path names another generation")
		}
		r.Close()
	})
}

// TestRemoveOnlyOwnGeneration: Ring.Remove never removes a newer
// generation that replaced the file.
func TestRemoveOnlyOwnGeneration(t *testing.T) {
	path := sessionPath(t)
	finishedLeftover(t, path)
	old, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer old.Close()
	r, err := Create(path, 4096, Options{Replace: true})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if err := old.Remove(); err == nil {
		t.Fatal("Remove of a replaced generation succeeded")
	}
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("the newer generation was removed: %v", err)
	}
	if err := r.Remove(); err != nil {
		t.Fatal(err)
	}
}

// TestConsumerFollowsReplacement: a consumer attached to a ring that has no
// producer yet follows the path when the ring is replaced (it has read
// nothing), and reads the new generation.
func TestConsumerFollowsReplacement(t *testing.T) {
	path := sessionPath(t)
	a, err := Create(path, 4096, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	type result struct {
		gen uint64
		rec string
		err error
	}
	got := make(chan result, 1)
	go func() {
		c, err := NewConsumer(path, ConsumerOptions{AttachTimeout: 20 * time.Second})
		if err != nil {
			got <- result{err: err}
			return
		}
		defer c.Close()
		b, err := c.Read()
		got <- result{c.Ring().Generation(), string(b), err}
	}()
	waitFor(t, 10*time.Second, "the consumer to attach to the first ring", func() bool { return (side{a.h, OffConsumer}).state() == StateAttached })
	b, err := Create(path, 4096, Options{Replace: true})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if s := (side{a.h, OffProducer}); s.state() != StateRetired {
		t.Fatalf("the replaced ring's free producer side is in state %d, want sealed", s.state())
	}
	waitFor(t, 10*time.Second, "the consumer to move to the new ring", func() bool { return (side{b.h, OffConsumer}).state() == StateAttached })
	if st := (side{a.h, OffConsumer}).state(); st != StateClosed {
		t.Fatalf("the consumer left the replaced ring in state %d, want closed", st)
	}
	p, err := b.Producer(wait.Spin)
	if err != nil {
		t.Fatal(err)
	}
	p.Write([]byte("from the new generation"))
	r := <-got
	if r.err != nil || r.gen != b.Generation() || r.rec != "from the new generation" {
		t.Fatalf("consumer: generation %x record %q err %v; want generation %x", r.gen, r.rec, r.err, b.Generation())
	}
}

func TestNewConsumerBusy(t *testing.T) {
	path := sessionPath(t)
	p, err := NewProducer(path, 4096, ProducerOptions{Linger: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	c, err := NewConsumer(path, ConsumerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var be *BusyError
	if _, err := NewConsumer(path, ConsumerOptions{AttachTimeout: -1}); !errors.As(err, &be) || be.Side != "consumer" {
		t.Fatalf("second consumer: %v, want *BusyError for the consumer side", err)
	}
}
