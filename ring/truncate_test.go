package ring

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mdjournal/mdjournal/journal"
	"github.com/mdjournal/mdjournal/wait"
)

// Defect 2 of the v1 ring: another process truncating the ring file killed
// both producer and consumer with SIGBUS. Each test here crashes the test
// binary (or its helpers) on the v1 code.

func truncatedErr(t *testing.T, what string, err error) {
	t.Helper()
	var ce *journal.CorruptionError
	if !errors.As(err, &ce) || !errors.Is(err, journal.ErrTruncated) || !errors.Is(err, ErrTruncated) {
		t.Fatalf("%s: %v (%T), want a *journal.CorruptionError wrapping journal.ErrTruncated", what, err, err)
	}
}

// TestTruncatedRingInProcess truncates a ring under both sides, to nothing
// and to a header without its data area, and checks every call of both
// sides returns ErrTruncated.
func TestTruncatedRingInProcess(t *testing.T) {
	for _, size := range []int64{0, HeaderSize, HeaderSize + 100} {
		t.Run(fmt.Sprint(size), func(t *testing.T) {
			r, p, c := newPair(t, 1<<16, wait.Spin)
			for i := range 10 {
				mustWrite(t, p, fill(100, byte(i)))
			}
			mustRead(t, c, fill(100, 0))
			if err := os.Truncate(r.Path(), size); err != nil {
				t.Fatal(err)
			}
			if _, ok := c.TryRead(); ok {
				t.Fatal("TryRead returned a record from a truncated ring")
			}
			truncatedErr(t, "Consumer.Err", c.Err())
			_, err := c.Read()
			truncatedErr(t, "Consumer.Read", err)
			_, err = c.ReadBatch(10, func([]byte) {})
			truncatedErr(t, "Consumer.ReadBatch", err)
			// Stores into the file's last, partial page do not fault (the
			// kernel keeps that page): the producer fails at the latest
			// when it reaches a page wholly past the end of the file.
			var werr error
			for i := 0; i < 100 && werr == nil; i++ {
				werr = p.TryWrite(fill(100, 1))
			}
			truncatedErr(t, "Producer.TryWrite", werr)
			truncatedErr(t, "Producer.Write", p.Write(fill(100, 1)))
			_, err = p.TryClaim(10)
			truncatedErr(t, "Producer.TryClaim", err)
			p.Flush() // must not fault either
			// Closing touches the mapping too: no fault, no hang.
			c.Close()
			p.Close()
		})
	}
}

// TestTruncatedUnderBlockedSides: a consumer blocked on an empty ring and
// a producer blocked on a full one both return ErrTruncated, in bounded
// time, when their files are truncated.
func TestTruncatedUnderBlockedSides(t *testing.T) {
	for _, s := range []wait.Strategy{wait.Futex, wait.Spin, wait.Backoff} {
		t.Run(s.String(), func(t *testing.T) {
			empty, _, c := newPair(t, 4096, s)
			full, p, _ := newPair(t, 4096, s)
			for p.TryWrite(make([]byte, 100)) == nil {
			}
			errs := make(chan error, 2)
			go func() { _, err := c.Read(); errs <- fmt.Errorf("consumer: %w", err) }()
			go func() { errs <- fmt.Errorf("producer: %w", p.Write(make([]byte, 100))) }()
			if s == wait.Futex {
				waitFor(t, 10*time.Second, "both sides to sleep", func() bool {
					return waiters(empty, OffDataWaiters) != 0 && waiters(full, OffSpaceWaiters) != 0
				})
			}
			os.Truncate(empty.Path(), 0)
			os.Truncate(full.Path(), 0)
			for range 2 {
				select {
				case err := <-errs:
					truncatedErr(t, "blocked side", err)
				case <-time.After(20 * time.Second):
					t.Fatal("a blocked side did not notice the truncation")
				}
			}
		})
	}
}

// TestReadBatchGuardsHandler: views read inside the ReadBatch handler are
// under the fault guard too.
func TestReadBatchGuardsHandler(t *testing.T) {
	r, p, c := newPair(t, 1<<16, wait.Spin)
	for range 4 {
		mustWrite(t, p, fill(1000, 3))
	}
	var sum int
	_, err := c.ReadBatch(4, func(b []byte) {
		os.Truncate(r.Path(), 0)
		for _, x := range b { // faults: the pages are gone
			sum += int(x)
		}
	})
	truncatedErr(t, "ReadBatch with the handler reading a truncated view", err)
}

// TestTruncatedCrossProcess streams between two helper processes and
// truncates the ring file under them: both must exit with a typed error
// (exit status 3 and "truncated" on stdout), not die of SIGBUS.
func TestTruncatedCrossProcess(t *testing.T) {
	path := filepath.Join(ringDir(t), "trunc")
	r, err := Create(path, 1<<16, Options{})
	if err != nil {
		t.Fatal(err)
	}
	r.Close()
	pc, pout := helperCmd(t, "trunc-producer", path, 0, 0, wait.Futex)
	cc, cout := helperCmd(t, "trunc-consumer", path, 0, 0, wait.Futex)
	readLine(t, pout, "streaming")
	readLine(t, cout, "streaming")
	if err := os.Truncate(path, 0); err != nil {
		t.Fatal(err)
	}
	for _, h := range []struct {
		name string
		out  interface{ ReadString(byte) (string, error) }
		wait func() error
	}{{"producer", pout, pc.Wait}, {"consumer", cout, cc.Wait}} {
		var lines []string
		for {
			line, err := h.out.ReadString('\n')
			lines = append(lines, strings.TrimSpace(line))
			if err != nil {
				break
			}
		}
		err := h.wait()
		var ee interface{ ExitCode() int }
		if !errors.As(err, &ee) || ee.ExitCode() != 3 {
			t.Fatalf("%s helper: %v (output %q), want exit status 3 after a typed truncation error", h.name, err, lines)
		}
		t.Logf("%s: %s", h.name, strings.Join(lines, " | "))
	}
}

func init() {
	helpers["trunc-producer"] = func() error {
		r, err := Open(os.Getenv("MDJ_RING_PATH"))
		if err != nil {
			return err
		}
		p, err := r.Producer(wait.Futex)
		if err != nil {
			return err
		}
		msg := make([]byte, 200)
		for i := 0; ; i++ {
			if err = p.Write(msg); err != nil {
				break
			}
			if i == 1000 {
				fmt.Println("streaming")
			}
		}
		return truncExit(err)
	}
	helpers["trunc-consumer"] = func() error {
		r, err := Open(os.Getenv("MDJ_RING_PATH"))
		if err != nil {
			return err
		}
		c, err := r.Consumer(wait.Futex)
		if err != nil {
			return err
		}
		n := 0
		for err == nil {
			_, err = c.ReadBatch(100, func(b []byte) {
				if n++; n == 1000 {
					fmt.Println("streaming")
				}
			})
		}
		return truncExit(err)
	}
}

// truncExit ends a truncation helper: status 3 for a typed truncation error.
func truncExit(err error) error {
	var ce *journal.CorruptionError
	if errors.As(err, &ce) && errors.Is(err, journal.ErrTruncated) {
		fmt.Println("truncated:", err)
		os.Exit(3)
	}
	return fmt.Errorf("not a truncation error: %w", err)
}
