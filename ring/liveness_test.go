package ring

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/mdjournal/mdjournal/internal/clock"
	"github.com/mdjournal/mdjournal/wait"
)

// forgeSide writes a side block as another process would have left it.
func forgeSide(r *Ring, off int, pid, state uint32, heartbeat int64, pidns uint64) {
	le := binary.LittleEndian
	le.PutUint32(r.m[off+sideOffPID:], pid)
	le.PutUint32(r.m[off+sideOffState:], state)
	le.PutUint64(r.m[off+sideOffStart:], 0)
	le.PutUint64(r.m[off+sideOffHeartbeat:], uint64(heartbeat))
	le.PutUint64(r.m[off+sideOffPIDNS:], pidns)
}

// otherNS is a PID namespace inode that is not ours.
func otherNS() uint64 { return self.pidns + 1 }

func TestPresentSide(t *testing.T) {
	r, err := Create(filepath.Join(ringDir(t), "r"), 4096, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	s := side{r.h, OffProducer}
	now := clock.Nanotime()
	const to = 2 * time.Second
	cases := []struct {
		name    string
		pid     uint32
		hb      int64
		ns      uint64
		present bool
	}{
		{"us, fresh", self.pid, now, self.pidns, true},
		{"us, stale heartbeat", self.pid, now - int64(3*time.Second), self.pidns, false},
		{"not beating", self.pid, 0, self.pidns, false},
		{"heartbeat far in the future", self.pid, now + int64(time.Hour), self.pidns, false},
		{"gone PID in our namespace, fresh heartbeat", 1<<22 + 7, now, self.pidns, false},
		{"gone PID in another namespace, fresh heartbeat", 1<<22 + 7, now, otherNS(), true},
		{"live PID 1 in another namespace, stale heartbeat", 1, now - int64(time.Minute), otherNS(), false},
		{"live PID 1 in our namespace, stale heartbeat", 1, now - int64(time.Minute), self.pidns, false},
		{"unknown namespace, fresh heartbeat", 1<<22 + 7, now, 0, true},
	}
	for _, tc := range cases {
		forgeSide(r, OffProducer, tc.pid, StateAttached, tc.hb, tc.ns)
		if p := presentSide(s, to); p.present != tc.present {
			t.Errorf("%s: present=%v (%s), want %v", tc.name, p.present, p.why, tc.present)
		}
	}
	if self.procOK && self.start != 0 {
		forgeSide(r, OffProducer, self.pid, StateAttached, now, self.pidns)
		binary.LittleEndian.PutUint64(r.m[OffProducer+sideOffStart:], self.start+1)
		if p := presentSide(s, to); p.present {
			t.Error("our PID with another start time (a reused PID) counts as present")
		}
	}
}

// TestUnknownProducerNeverBlocksForever is defect 3 of the v1 ring: a ring
// claiming a producer whose PID is not ours to check (here PID 1, alive in
// our namespace, recorded from another PID namespace) made a consumer wait
// forever. Now its heartbeat decides: once older than the peer timeout,
// Read returns ErrPeerDead.
func TestUnknownProducerNeverBlocksForever(t *testing.T) {
	for _, tc := range []struct {
		name string
		ns   uint64
		hb   func() int64
	}{
		{"other namespace, heartbeat stops now", otherNS(), clock.Nanotime},
		{"other namespace, never beat", otherNS(), func() int64 { return 0 }},
		{"our namespace, live PID, stale heartbeat", self.pidns, func() int64 { return clock.Nanotime() - int64(time.Hour) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, err := Create(filepath.Join(ringDir(t), "r"), 4096, Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			forgeSide(r, OffProducer, 1, StateAttached, tc.hb(), tc.ns)
			c, err := r.Consumer(wait.Futex)
			if err != nil {
				t.Fatal(err)
			}
			c.SetPeerTimeout(MinPeerTimeout)
			start := time.Now()
			done := make(chan error, 1)
			go func() { _, err := c.Read(); done <- err }()
			select {
			case err := <-done:
				if !errors.Is(err, ErrPeerDead) {
					t.Fatalf("Read: %v, want ErrPeerDead", err)
				}
				t.Logf("ErrPeerDead after %v: %v", time.Since(start).Round(time.Millisecond), err)
			case <-time.After(20 * time.Second):
				t.Fatal("consumer still waiting 20 s after the producer's heartbeat stopped")
			}
			// Nor does a new consumer wait for such a ring: it is a leftover.
			c.Close()
			_, err = NewConsumer(r.Path(), ConsumerOptions{AttachTimeout: -1, PeerTimeout: MinPeerTimeout})
			if !errors.Is(err, ErrNoProducer) {
				t.Fatalf("NewConsumer on the ring of a dead producer: %v, want ErrNoProducer", err)
			}
		})
	}
}

// TestSilentProducerStaysAlive: a producer that makes no call for longer
// than the peer timeout (a paced replay between two far-apart records) is
// kept alive by its heartbeat goroutine.
func TestSilentProducerStaysAlive(t *testing.T) {
	_, p, c := newPair(t, 4096, wait.Futex)
	const timeout = 3 * MinPeerTimeout / 2 // margin for a loaded machine delaying the heartbeat goroutine
	c.SetPeerTimeout(timeout)
	c.SetDeadline(time.Now().Add(2*timeout + HeartbeatInterval))
	if _, err := c.Read(); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("Read while the producer is silent: %v, want the deadline (not ErrPeerDead)", err)
	}
	c.SetDeadline(time.Time{})
	mustWrite(t, p, []byte("late"))
	if b, err := c.Read(); err != nil || string(b) != "late" {
		t.Fatalf("late record: %q %v", b, err)
	}
}

// TestCrossNamespaceProducerKilled runs the producer in a new PID
// namespace (it is PID 1 there, and PID 1 here is another, live process),
// kills it with SIGKILL, and checks the consumer reads what was published
// and then gets ErrPeerDead from the heartbeat — a PID-only check would
// wait forever.
func TestCrossNamespaceProducerKilled(t *testing.T) {
	path := filepath.Join(ringDir(t), "ns")
	r, err := Create(path, 1<<16, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	c, err := r.Consumer(wait.Futex)
	if err != nil {
		t.Fatal(err)
	}
	c.SetPeerTimeout(MinPeerTimeout)
	const n = 50
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperProcess$", "-test.count=1")
	cmd.Env = append(os.Environ(), helperEnv+"=ns-producer", "MDJ_RING_PATH="+path, "MDJ_RING_N="+strconv.Itoa(n))
	cmd.Stderr = os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWPID}
	out, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Skipf("SKIP (loud): cannot start a process in a new PID namespace (%v): the cross-namespace case is not tested here", err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	line := make([]byte, 64)
	if k, _ := out.Read(line); k == 0 {
		t.Fatal("helper said nothing")
	} else {
		t.Logf("helper: %s", line[:k])
	}
	p := side{r.h, OffProducer}
	if p.pidns() == self.pidns || p.pidns() == 0 {
		t.Fatalf("producer recorded PID namespace %d, ours is %d: not a cross-namespace setup", p.pidns(), self.pidns)
	}
	for i := range n {
		b, err := c.Read()
		if err != nil || len(b) != 8 || binary.LittleEndian.Uint64(b) != uint64(i) {
			t.Fatalf("record %d: %x %v", i, b, err)
		}
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	done := make(chan error, 1)
	go func() { _, err := c.Read(); done <- err }()
	select {
	case err := <-done:
		if !errors.Is(err, ErrPeerDead) {
			t.Fatalf("Read after killing the namespaced producer (PID %d there): %v, want ErrPeerDead", p.pid(), err)
		}
		t.Logf("ErrPeerDead %v after the kill: %v", time.Since(killed).Round(time.Millisecond), err)
	case <-time.After(30 * time.Second):
		t.Fatalf("consumer still waiting 30 s after the namespaced producer (PID %d there) was killed", p.pid())
	}
}

func init() {
	helpers["ns-producer"] = func() error {
		r, err := Open(os.Getenv("MDJ_RING_PATH"))
		if err != nil {
			return err
		}
		p, err := r.Producer(wait.Futex)
		if err != nil {
			return err
		}
		n, _ := strconv.Atoi(os.Getenv("MDJ_RING_N"))
		var b [8]byte
		for i := range n {
			binary.LittleEndian.PutUint64(b[:], uint64(i))
			if err := p.Write(b[:]); err != nil {
				return err
			}
		}
		fmt.Printf("ready: pid %d in its namespace\n", os.Getpid())
		select {} // wait to be killed
	}
}
