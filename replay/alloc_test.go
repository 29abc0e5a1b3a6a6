package replay

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/mdjournal/mdjournal/journal"
	"github.com/mdjournal/mdjournal/reader"
	"github.com/mdjournal/mdjournal/ring"
	"github.com/mdjournal/mdjournal/synth"
	"github.com/mdjournal/mdjournal/wait"
	"github.com/mdjournal/mdjournal/writer"
)

// writeSynth writes n synthetic frames (1 µs apart) into one segment.
func writeSynth(t testing.TB, dir string, n int) {
	w, err := writer.Open(dir, writer.Options{})
	if err != nil {
		t.Fatal(err)
	}
	g := synth.New(3, 8)
	for i := range n {
		typ, id, p := g.Next()
		if _, err := w.Stage(typ, id, int64(i)*1000, p); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
}

// The per-frame path — reader.TryNext, filter, Claim, PutRecord, Commit,
// and for paced replay the wait and the histogram — allocates nothing.
func TestHotPathAllocatesNothing(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are not meaningful under the race detector")
	}
	dir := t.TempDir()
	writeSynth(t, dir, 30000)
	for _, c := range []struct {
		name string
		opts Options
	}{
		{"max", Options{}},
		{"filtered", Options{Instruments: []string{"SYN0002", "5"}, Types: []journal.MsgType{journal.TypeTrade, journal.TypeQuote}}},
		{"paced", Options{Speed: 1e9, Clock: &fakeClock{step: 1000}}},
	} {
		t.Run(c.name, func(t *testing.T) {
			o := c.opts
			// A 16 MiB ring holds all 30000 frames: no consumer needed, and
			// Close need not linger for one.
			o.Dir, o.Ring, o.Linger = dir, filepath.Join(t.TempDir(), "ring"), -1
			r, err := New(o)
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			r.ctx = context.Background()
			rd, err := reader.Open(dir, reader.Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer rd.Close()
			var emitted int
			allocs := testing.AllocsPerRun(20000, func() {
				f, ok, err := rd.TryNext()
				if err != nil || !ok {
					t.Fatalf("TryNext: %v %v", ok, err)
				}
				if r.ft.Pass(&f) {
					if err := r.emit(&f); err != nil {
						t.Fatal(err)
					}
					emitted++
				}
			})
			if allocs != 0 {
				t.Fatalf("%.2f allocations per frame", allocs)
			}
			if emitted < 2000 {
				t.Fatalf("only %d frames emitted", emitted)
			}
		})
	}
}

// A paced replay through Run with an injected clock: every frame released
// on time, the span is the journal's span divided by the speed.
func TestPacedRunInjectedClock(t *testing.T) {
	dir := t.TempDir()
	writeSynth(t, dir, 2000)
	// Frames are 1 µs apart, due 100 ns apart at 10x; a clock reading
	// costs 10 fake ns, so the replay keeps up.
	clk := &fakeClock{step: 10}
	var samples, within int
	r, err := New(Options{Dir: dir, Ring: filepath.Join(t.TempDir(), "ring"), Speed: 10, Clock: clk,
		Lateness: func(ns int64) {
			samples++
			if ns <= 10_000 {
				within++
			}
		}})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	// A consumer drains the ring, as a user's would: Run returns once it
	// has read every frame.
	consumed := make(chan int, 1)
	go func() {
		n := 0
		defer func() { consumed <- n }()
		c, err := ring.NewConsumer(r.RingPath(), ring.ConsumerOptions{Wait: wait.Backoff})
		if err != nil {
			return
		}
		defer c.Close()
		for {
			if _, err := c.Read(); err != nil {
				return
			}
			c.Release()
			n++
		}
	}()
	st, err := r.Run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if n := <-consumed; n != 2000 {
		t.Fatalf("the consumer read %d frames, want 2000", n)
	}
	if st.Frames != 2000 || st.PacedFrames != 2000 || samples != 2000 {
		t.Fatalf("frames %d, paced %d, lateness samples %d", st.Frames, st.PacedFrames, samples)
	}
	if st.Span != time.Duration(1999*1000/10) {
		t.Fatalf("span %v, want %v", st.Span, time.Duration(1999*1000/10))
	}
	if mx := st.MaxLateness; mx > 50 {
		t.Fatalf("max lateness %v with an exact clock", mx)
	}
	if within != samples {
		t.Fatalf("within 10us: %d of %d", within, samples)
	}
	if rr := st.RequestedRate(); rr < 9.9e6 || rr > 1.01e7 {
		t.Fatalf("requested rate %.0f, want 10M/s (1 µs frames at 10x)", rr)
	}
}
