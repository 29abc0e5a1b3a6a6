package replay

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"time"

	"golang.org/x/sys/unix"

	"github.com/mdjournal/mdjournal/journal"
	"github.com/mdjournal/mdjournal/pin"
	"github.com/mdjournal/mdjournal/reader"
	"github.com/mdjournal/mdjournal/ring"
)

// How a replay ended (Stats.Ended).
const (
	EndedRange       = "end"             // the end of the range (To or the published end), last pass done
	EndedInterrupted = "interrupted"     // ctx was done
	EndedPeerClosed  = "consumer_closed" // the consumer detached and the ring is full
)

// Stats summarise a replay.
type Stats struct {
	Frames  uint64        // frames written into the ring
	Bytes   uint64        // record bytes written
	Skipped uint64        // frames read but filtered out
	Passes  int           // passes completed (a pass cut short is not counted)
	Elapsed time.Duration // wall time of Run
	Ended   string        // EndedRange, EndedInterrupted or EndedPeerClosed
	// Preamble is how many definition and status frames were sent ahead of
	// the range (those in effect at its start, which a consumer needs).
	Preamble uint64

	// Paced replays only.
	Speed float64 // requested factor (0: max)
	// Span is the journal time the released frames covered, divided by
	// Speed and summed over passes: how long a perfect replay would take.
	Span time.Duration
	// Paced frames released, and the largest lateness (release time minus
	// due time) among them. The whole distribution goes to
	// Options.Lateness, if set.
	PacedFrames uint64
	MaxLateness time.Duration
}

// Rate is the achieved rate in frames per second.
func (s *Stats) Rate() float64 { return float64(s.Frames) / max(s.Elapsed.Seconds(), 1e-9) }

// RequestedRate is the rate the journal's timestamps ask for at Speed:
// frames divided by Span (0 for an unpaced replay or an empty span).
func (s *Stats) RequestedRate() float64 {
	if s.Speed == 0 || s.Span <= 0 {
		return 0
	}
	return float64(s.Frames) / s.Span.Seconds()
}

// Replayer is one replay: a journal range and the ring it fills, attached
// as the ring's producer. New attaches; Run replays; Close detaches.
type Replayer struct {
	opts    Options
	path    string
	prod    *ring.Producer
	created bool
	// replaced is the leftover ring attach replaced, if any.
	replaced *ring.LeftoverError
	ft       *reader.Filter
	clk      Clock
	paced    bool
	pc       pacer
	stats    Stats
	batch    int

	ctx context.Context
}

// New validates opts, opens (or creates) the ring and attaches as its
// producer. A consumer may attach once New returned.
func New(opts Options) (*Replayer, error) {
	if opts.Dir == "" {
		return nil, errors.New("replay: no journal directory")
	}
	if opts.Ring == "" {
		return nil, errors.New("replay: no ring")
	}
	if opts.RingSize == 0 {
		opts.RingSize = DefaultRingSize
	}
	if c := opts.RingSize; c < MinRingSize || c > ring.MaxCapacity || c&(c-1) != 0 {
		return nil, fmt.Errorf("replay: ring size %d is not a power of two in [%d, %d]", c, MinRingSize, uint64(ring.MaxCapacity))
	}
	if opts.Follow && opts.Loop {
		return nil, errors.New("replay: Follow and Loop exclude each other")
	}
	if opts.Speed < 0 {
		return nil, fmt.Errorf("replay: speed %g: want > 0, or 0 for max", opts.Speed)
	}
	if opts.FlushEvery <= 0 {
		opts.FlushEvery = DefaultFlushEvery
	}
	if _, err := os.Stat(filepath.Join(opts.Dir)); err != nil {
		return nil, err
	}
	var cat *journal.Catalog
	if len(opts.Instruments) > 0 {
		var err error
		if cat, err = reader.JournalCatalog(opts.Dir); err != nil {
			return nil, fmt.Errorf("replay: %w", err)
		}
	}
	ft, err := reader.NewFilter(cat, opts.Instruments, opts.Types)
	if err != nil {
		return nil, fmt.Errorf("replay: %w", err)
	}
	if ts, ok := opts.From.TimeValue(); ok {
		ft.Since(ts) // a time range is exact per instrument (format.md §5)
	}
	r := &Replayer{opts: opts, ft: ft, clk: opts.Clock, paced: opts.Speed > 0, batch: opts.FlushEvery}
	if r.clk == nil {
		r.clk = monoClock{}
	}
	r.pc = pacer{clk: r.clk, speed: opts.Speed, overshoot: int64(initialOvershoot)}
	r.stats.Speed = opts.Speed
	if err := r.attach(); err != nil {
		return nil, err
	}
	return r, nil
}

// attach attaches replay as the ring's producer (ring.NewProducer): a new
// generation, or the one a waiting consumer created. A leftover ring is
// replaced, and remembered (Replaced) so the command line can say so.
func (r *Replayer) attach() error {
	po := ring.ProducerOptions{
		Wait:   r.opts.Wait,
		Keep:   r.opts.KeepRing,
		Linger: r.opts.Linger,
	}
	p, err := ring.NewProducer(r.opts.Ring, r.opts.RingSize, po)
	var le *ring.LeftoverError
	if errors.As(err, &le) {
		r.replaced = le
		po.Replace = true
		p, err = ring.NewProducer(r.opts.Ring, r.opts.RingSize, po)
	}
	if err != nil {
		return err
	}
	r.prod, r.path, r.created = p, p.Path(), p.Created()
	return nil
}

// Replaced returns the leftover ring New replaced with a new generation
// (a finished or abandoned ring of an earlier run at the same path), or
// nil if there was none.
func (r *Replayer) Replaced() *ring.LeftoverError { return r.replaced }

// RingPath is the ring file being filled.
func (r *Replayer) RingPath() string { return r.path }

// Created reports whether New created the ring (rather than joining a
// consumer already waiting on an existing one).
func (r *Replayer) Created() bool { return r.created }

// Close ends the stream (the consumer reads what remains, then gets io.EOF)
// and, if replay created the ring and KeepRing is not set, removes the ring
// file once the consumer drained it (bounded by Linger).
func (r *Replayer) Close() error {
	if r.prod == nil {
		return nil
	}
	err := r.prod.Close()
	r.prod = nil
	return err
}

// Run replays until the range ends (every pass with Loop), ctx is done, or
// an error. It closes the producer side at the end, so the consumer sees
// io.EOF after the last record. Errors: ring.ErrPeerDead when the consumer
// died (reported once the ring is full), journal damage from the reader,
// ring.ErrTooLarge for a frame larger than the ring accepts.
func (r *Replayer) Run(ctx context.Context) (Stats, error) {
	r.ctx = ctx
	if r.opts.Pin {
		p, err := pin.Thread(r.opts.CPU)
		if err != nil {
			return r.stats, fmt.Errorf("replay: %w", err)
		}
		defer p.Release()
	}
	if r.paced {
		// Pacing sleeps in clock_nanosleep on this thread (monoClock.Sleep);
		// 1 ns timer slack instead of the default 50 us makes the kernel
		// wake it on time.
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		unix.Prctl(unix.PR_SET_TIMERSLACK, 1, 0, 0, 0)
	}
	err := r.run()
	if cerr := r.prod.Close(); err == nil {
		err = cerr // ring.ErrUndelivered: the consumer left records unread
	}
	return r.stats, err
}

// Run is New, Run and Close.
func Run(ctx context.Context, opts Options) (Stats, error) {
	r, err := New(opts)
	if err != nil {
		return Stats{}, err
	}
	defer r.Close()
	return r.Run(ctx)
}

func (r *Replayer) run() error {
	start := r.clk.Now()
	defer func() { r.stats.Elapsed = time.Duration(r.clk.Now() - start) }()
	from := r.opts.From
	for pass := 1; ; pass++ {
		before := r.stats.Frames
		err := r.pass(pass, from)
		if errors.Is(err, ring.ErrPeerClosed) {
			r.stats.Ended = EndedPeerClosed
			return nil
		}
		if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
			r.stats.Ended = EndedInterrupted
			return nil
		}
		if err != nil {
			return err
		}
		r.stats.Passes = pass
		r.stats.Ended = EndedRange
		// A pass that released nothing would loop without end.
		if !r.opts.Loop || r.stats.Frames == before || (r.opts.MaxPasses > 0 && pass >= r.opts.MaxPasses) {
			return nil
		}
	}
}

// progressEvery is how many frames pass between two looks at the clock for
// progress and cancellation.
const progressEvery = 1024

func (r *Replayer) pass(n int, from reader.Position) error {
	rd, err := reader.Open(r.opts.Dir, reader.Options{From: from})
	if err != nil {
		return err
	}
	defer rd.Close()
	prog := Progress{Pass: n, EndSeq: r.opts.To.Seq}
	if r.opts.Progress != nil && prog.EndSeq == 0 {
		prog.EndSeq = lastSeq(r.opts.Dir)
	}
	if r.opts.Progress != nil && !r.opts.Follow {
		if prog.Total, err = r.count(from); err != nil {
			return err
		}
	}
	passStart := r.stats.Frames
	r.pc.reset()
	var firstTS, lastTS int64
	first := true
	nextProgress := r.clk.Now()
	p := r.prod
	defer func() {
		p.Flush()
		if !first && r.paced {
			r.stats.Span += time.Duration(float64(lastTS-firstTS) / r.opts.Speed)
		}
	}()
	var i uint64
	for {
		i++
		if i%progressEvery == 0 {
			if err := r.ctx.Err(); err != nil {
				return err
			}
			if r.opts.Progress != nil {
				if now := r.clk.Now(); now >= nextProgress {
					nextProgress = now + int64(100*time.Millisecond)
					prog.Frames, prog.Sent = r.stats.Frames, r.stats.Frames-passStart
					r.opts.Progress(prog)
				}
			}
		}
		f, ok, err := rd.TryNext()
		if err != nil {
			return err
		}
		if !ok && r.opts.Follow {
			// Caught up: what is staged reaches the consumer, then the
			// writer's next frame is waited for.
			p.Flush()
			if f, err = rd.NextContext(r.ctx); err != nil {
				return err
			}
			ok = true
		}
		if !ok || (r.opts.To.Seq != 0 && r.opts.To.Past(&f)) {
			return nil
		}
		if prog.FirstSeq == 0 {
			prog.FirstSeq = f.Seq
			// The definitions and statuses in effect at the start, before
			// its first frame: a consumer learns every instrument it will
			// see, whatever --from is (format.md §3.4).
			for _, d := range rd.Preamble() {
				if r.ft.Pass(&d) {
					if err := r.emitNow(&d); err != nil {
						return err
					}
					r.stats.Preamble++
				}
			}
		}
		prog.Seq = f.Seq
		if !r.ft.Pass(&f) {
			r.stats.Skipped++
			continue
		}
		if r.opts.To.Past(&f) { // a time bound stops at the first selected frame past it (format.md §5)
			return nil
		}
		if err := r.emit(&f); err != nil {
			return err
		}
		if first {
			first, firstTS = false, f.TS
		}
		lastTS = f.TS
	}
}

// emitNow writes f into the ring and publishes it at once, unpaced (the
// preamble: its frames are older than the range).
func (r *Replayer) emitNow(f *journal.Frame) error {
	n := RecordLen(f)
	b, err := r.prod.TryClaim(n)
	if err == ring.ErrFull {
		b, err = r.claimWait(n)
	}
	if err != nil {
		return err
	}
	PutRecord(b, f)
	r.prod.CommitNoFlush()
	r.prod.Flush()
	r.stats.Frames++
	r.stats.Bytes += uint64(n)
	return nil
}

// emit writes f into the ring and publishes it: in batches when unpaced,
// at its due time when paced. It allocates nothing.
func (r *Replayer) emit(f *journal.Frame) error {
	p := r.prod
	n := RecordLen(f)
	b, err := p.TryClaim(n)
	if err == ring.ErrFull {
		b, err = r.claimWait(n)
	}
	if err != nil {
		if err == ring.ErrTooLarge {
			return fmt.Errorf("replay: frame seq %d (%d bytes) is larger than the ring's maximum record (%d bytes): use a larger ring", f.Seq, n, p.MaxPayload())
		}
		return err
	}
	PutRecord(b, f)
	p.CommitNoFlush()
	r.stats.Frames++
	r.stats.Bytes += uint64(n)
	if !r.paced {
		if r.stats.Frames%uint64(r.batch) == 0 {
			p.Flush()
		}
		return nil
	}
	due := r.pc.due(f.TS)
	if err := r.pc.waitUntil(r.ctx, due); err != nil {
		return err
	}
	p.Flush()
	late := r.clk.Now() - due
	r.stats.PacedFrames++
	if d := time.Duration(late); d > r.stats.MaxLateness {
		r.stats.MaxLateness = d
	}
	if r.opts.Lateness != nil {
		r.opts.Lateness(late)
	}
	return nil
}

// claimWait is Claim that also returns when ctx is done: the producer's
// blocking wait is cut into slices bounded by a deadline, and ctx is checked
// between them. ErrPeerDead / ErrPeerClosed come from the ring.
func (r *Replayer) claimWait(n int) ([]byte, error) {
	p := r.prod
	defer p.SetDeadline(time.Time{})
	for {
		if err := r.ctx.Err(); err != nil {
			return nil, err
		}
		p.SetDeadline(time.Now().Add(100 * time.Millisecond))
		b, err := p.Claim(n)
		if !errors.Is(err, os.ErrDeadlineExceeded) {
			return b, err
		}
	}
}

// lastSeq is the journal's last published seq now (0 if unknown), for
// progress display only.
// count reads the range once and returns how many frames a pass from
// from will send: the preamble's selected definitions and the selected
// frames up to To.
func (r *Replayer) count(from reader.Position) (uint64, error) {
	rd, err := reader.Open(r.opts.Dir, reader.Options{From: from})
	if err != nil {
		return 0, err
	}
	defer rd.Close()
	var n uint64
	started := false
	for i := 0; ; i++ {
		if i&4095 == 0 {
			if err := r.ctx.Err(); err != nil {
				return 0, err
			}
		}
		f, ok, err := rd.TryNext()
		if err != nil {
			return 0, err
		}
		if !ok || (r.opts.To.Seq != 0 && r.opts.To.Past(&f)) {
			return n, nil
		}
		if !started {
			started = true
			for _, d := range rd.Preamble() {
				if r.ft.Pass(&d) {
					n++
				}
			}
		}
		if !r.ft.Pass(&f) {
			continue
		}
		if r.opts.To.Past(&f) {
			return n, nil
		}
		n++
	}
}

func lastSeq(dir string) uint64 {
	rd, err := reader.Open(dir, reader.Options{From: reader.End()})
	if err != nil {
		return 0
	}
	defer rd.Close()
	return rd.LastSeq()
}

// IsPeerDead reports whether err means the consumer's process died.
func IsPeerDead(err error) bool { return errors.Is(err, ring.ErrPeerDead) }
