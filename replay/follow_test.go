package replay_test

import (
	"context"
	"errors"
	"io"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mdjournal/mdjournal/journal"
	"github.com/mdjournal/mdjournal/replay"
	"github.com/mdjournal/mdjournal/ring"
	"github.com/mdjournal/mdjournal/wait"
	"github.com/mdjournal/mdjournal/writer"
)

// countingConsumer drains the ring at path, keeping the seqs and a live
// count the test can wait on.
type countingConsumer struct {
	n    atomic.Int64
	mu   sync.Mutex
	seqs []uint64
	done chan error
}

func consume(path string) *countingConsumer {
	c := &countingConsumer{done: make(chan error, 1)}
	go func() {
		cons, err := ring.NewConsumer(path, ring.ConsumerOptions{Wait: wait.Backoff})
		if err != nil {
			c.done <- err
			return
		}
		defer cons.Close()
		for {
			rec, err := cons.Read()
			if err != nil {
				if err == io.EOF {
					err = nil
				}
				c.done <- err
				return
			}
			f, err := replay.DecodeRecord(rec)
			if err != nil {
				c.done <- err
				return
			}
			c.mu.Lock()
			c.seqs = append(c.seqs, f.Seq)
			c.mu.Unlock()
			c.n.Add(1)
			cons.Release()
		}
	}()
	return c
}

func (c *countingConsumer) waitFor(t *testing.T, n int64) {
	t.Helper()
	for deadline := time.Now().Add(60 * time.Second); c.n.Load() < n; runtime.Gosched() {
		if time.Now().After(deadline) {
			t.Fatalf("the consumer has %d frames after 60 s, want %d", c.n.Load(), n)
		}
	}
}

// Follow replays the archive, then the frames a live writer appends after
// the replay caught up, with no gap and no repeat (Aeron's replay merge).
func TestFollowContinuesLive(t *testing.T) {
	dir := t.TempDir()
	makeJournal(t, dir, 5000)
	compressSealed(t, dir)
	r, err := replay.New(replay.Options{Dir: dir, Ring: ringPath(t), RingSize: replay.MinRingSize, Follow: true})
	if err != nil {
		t.Fatal(err)
	}
	c := consume(r.RingPath())
	ctx, cancel := context.WithCancel(context.Background())
	type result struct {
		st  replay.Stats
		err error
	}
	res := make(chan result, 1)
	go func() { st, err := r.Run(ctx); res <- result{st, err} }()
	c.waitFor(t, 5000) // caught up with the archive

	w, err := writer.Open(dir, writer.Options{SegmentSize: journal.MinSegmentSize, NoRestate: true})
	if err != nil {
		t.Fatal(err)
	}
	for i := 5001; i <= 6000; i++ {
		if _, err := w.Append(journal.TypeHeartbeat, 0, synthTS0+int64(i)*1000, nil); err != nil {
			t.Fatal(err)
		}
	}
	c.waitFor(t, 6000) // the live frames arrived
	cancel()
	out := <-res
	r.Close()
	w.Close()
	if out.err != nil || out.st.Ended != replay.EndedInterrupted {
		t.Fatalf("Run: %v, ended %q", out.err, out.st.Ended)
	}
	if err := <-c.done; err != nil {
		t.Fatal(err)
	}
	wantRange(t, c.seqs, 1, 6000)
}

// Follow and Loop exclude each other.
func TestFollowLoopRefused(t *testing.T) {
	_, err := replay.New(replay.Options{Dir: t.TempDir(), Ring: ringPath(t), Follow: true, Loop: true})
	if err == nil {
		t.Fatal("Follow with Loop accepted")
	}
}

// Progress.Total counts what the pass will send, filters and --to applied,
// before it starts: it equals what the consumer receives.
func TestProgressTotalCountsSelectedFrames(t *testing.T) {
	dir := t.TempDir()
	makeJournal(t, dir, 12000)
	var total atomic.Uint64
	calls := 0
	opts := replay.Options{Dir: dir, Ring: ringPath(t), RingSize: replay.MinRingSize,
		Instruments: []string{"2"}, Types: []journal.MsgType{journal.TypeTrade, journal.TypeQuote},
		To:       replay.Bound{Seq: 9000, Set: true},
		Progress: func(p replay.Progress) { calls++; total.Store(p.Total) }}
	r, err := replay.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	c := consume(r.RingPath())
	st, err := r.Run(context.Background())
	r.Close()
	if err != nil {
		t.Fatal(err)
	}
	if err := <-c.done; err != nil && !errors.Is(err, io.EOF) {
		t.Fatal(err)
	}
	if calls == 0 { // the first report comes after 1024 frames read; the range has 9000
		t.Fatal("Progress was never called")
	}
	if got := uint64(len(c.seqs)); total.Load() != got || st.Frames != got {
		t.Fatalf("Progress.Total %d, consumer received %d, stats %d", total.Load(), got, st.Frames)
	}
}
