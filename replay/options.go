package replay

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/mdjournal/mdjournal/internal/clock"
	"github.com/mdjournal/mdjournal/journal"
	"github.com/mdjournal/mdjournal/reader"
	"github.com/mdjournal/mdjournal/wait"
)

// DefaultRingSize is the data area of a ring replay creates: large enough to
// absorb a consumer's hiccups (about 230 000 frames of 64 bytes), small
// enough to stay in the page cache of /dev/shm.
const DefaultRingSize = 16 << 20

// MinRingSize is the smallest ring that accepts every valid frame: a record
// may use at most half the ring, and a frame may be 64 KiB.
const MinRingSize = 256 << 10

// DefaultFlushEvery is how many records an unpaced replay stages per
// publication: one tail store and wake check per batch instead of per frame.
const DefaultFlushEvery = 64

// Options say what to replay, where, and how fast. Dir and Ring are required.
type Options struct {
	Dir  string // journal directory
	Ring string // ring file path; a bare name means /dev/shm/NAME
	// RingSize is the data area of a ring that replay creates (default
	// DefaultRingSize; a power of two ≥ MinRingSize). A ring whose consumer
	// is already attached and waiting for a producer is joined as it is
	// (format.md §12 "Generations"); a leftover ring (no live peer, or a
	// finished generation) is replaced by a new generation, so a consumer
	// never reads an earlier run's records; a ring with a live producer is
	// refused (ring.ErrBusy).
	RingSize int
	// KeepRing leaves the ring file in place at Close. By default a ring
	// replay created is removed at Close, once the consumer drained it,
	// detached or died, waiting at most Linger (ring.ProducerOptions).
	KeepRing bool
	// Linger bounds how long Close (and the end of Run) waits for the
	// consumer to drain the ring replay created: 0 means ring.DefaultLinger
	// (30 s), a negative value does not wait. Records still unread then are
	// reported as ring.ErrUndelivered.
	Linger time.Duration

	From reader.Position // default reader.Start()
	To   Bound           // zero: to the end of the published journal

	// Instruments selects frames by instrument: decimal ids, or symbols
	// resolved against the journal's catalogue (reader.JournalCatalog); a
	// symbol no definition names is an error (reader.ErrUnknownInstrument),
	// never an empty replay. Empty: all.
	Instruments []string
	// Types selects frames by message type. Definitions and trading
	// statuses of selected instruments always pass: a consumer needs them to
	// name the instruments and scale the prices. Empty: all types.
	Types []journal.MsgType

	// Speed multiplies the journal's pace (1 = as recorded, 10 = ten times
	// faster); 0 means as fast as the consumer drains the ring.
	Speed float64
	// Loop starts again from From after To (or the end); MaxPasses > 0
	// bounds the passes (the default, 0, loops until ctx is done).
	Loop      bool
	MaxPasses int
	// Follow keeps replaying after the last published frame: live frames
	// as the writer appends them (Aeron's replay merge), until To, the
	// consumer leaving, or ctx. Not with Loop.
	Follow bool
	// Wait is how the producer idles while the ring is full.
	Wait wait.Strategy
	// FlushEvery is the publication batch of unpaced replay (default
	// DefaultFlushEvery). Paced records are published one by one.
	FlushEvery int

	// Progress, if set, is called from the replaying goroutine about ten
	// times a second (never on the per-frame path).
	Progress func(Progress)
	// Lateness, if set, receives every paced frame's release time minus its
	// due time, in nanoseconds, on the replaying goroutine (it must not
	// block or allocate: cmd/replay records into a histogram).
	Lateness func(ns int64)
	// Pin binds the replaying goroutine to CPU (package pin) for the run:
	// no migration, no CPU shared with another pinned loop.
	Pin bool
	CPU int
	// Clock is the pacing time source; nil means CLOCK_MONOTONIC and
	// time.Sleep. Tests inject a fake one.
	Clock Clock
}

// Progress is what a progress display needs.
type Progress struct {
	Pass   int    // 1-based pass number
	Frames uint64 // frames written so far, all passes
	// Total is how many frames this pass will send (the selected frames of
	// the range, counted before it starts), 0 when unknown (Follow).
	Total    uint64
	Sent     uint64 // frames sent in this pass
	Seq      uint64 // seq of the last frame read in this pass
	FirstSeq uint64 // seq of the first frame of this pass
	EndSeq   uint64 // last seq of the range: To's seq, else the journal's last published seq when the pass began
}

// Bound is an inclusive upper limit of a replay range, by seq or by time.
type Bound = reader.Bound

// ParseBound reads seq:N or time:RFC3339Nano ("" is no bound).
func ParseBound(s string) (Bound, error) {
	if s == "" {
		return Bound{}, nil
	}
	p, err := reader.ParsePosition(s)
	if err != nil {
		return Bound{}, err
	}
	if b, ok := reader.BoundOf(p); ok {
		return b, nil
	}
	return Bound{}, fmt.Errorf("bad bound %q: want seq:N or time:RFC3339Nano", s)
}

// ParseSpeed reads max (returns 0) or a positive factor with an optional
// trailing x: 1x, 10x, 0.5x.
func ParseSpeed(s string) (float64, error) {
	if s == "max" {
		return 0, nil
	}
	v, err := strconv.ParseFloat(strings.TrimSuffix(s, "x"), 64)
	if err != nil || !(v > 0) || math.IsInf(v, 0) {
		return 0, fmt.Errorf("bad speed %q: want max or a positive factor such as 1x, 10x, 0.5x", s)
	}
	return v, nil
}

// ParseTypes reads a comma-separated list of message type names.
func ParseTypes(s string) ([]journal.MsgType, error) { return reader.ParseTypes(s) }

// Clock is the time source of pacing.
type Clock interface {
	Now() int64 // monotonic nanoseconds
	Sleep(d time.Duration)
}

type monoClock struct{}

func (monoClock) Now() int64 { return clock.Nanotime() }

// Sleep blocks the calling OS thread in clock_nanosleep rather than going
// through the Go scheduler's timers: Run locks its goroutine to a thread and
// sets that thread's timer slack to 1 ns, so a paced wake-up is as precise
// as the kernel's (measured: p50 lateness 1.4 us without, see replay docs).
func (monoClock) Sleep(d time.Duration) {
	ts := unix.NsecToTimespec(int64(d))
	for unix.Nanosleep(&ts, &ts) == unix.EINTR {
	}
}
