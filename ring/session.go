package ring

import (
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/mdjournal/mdjournal/internal/clock"
	"github.com/mdjournal/mdjournal/wait"
)

// DefaultAttachTimeout is how long NewConsumer waits, by default, for a
// ring with a producer to appear at its path.
const DefaultAttachTimeout = 10 * time.Second

// DefaultLinger is how long, by default, the Close of a producer that
// created its ring waits for the consumer to drain it before removing it.
const DefaultLinger = 30 * time.Second

// ProducerOptions tune NewProducer. The zero value is valid.
type ProducerOptions struct {
	// Options apply when NewProducer creates a new generation: file mode,
	// prefaulting, huge pages, and Replace, which lets it replace a
	// leftover ring at the path (without it a leftover is refused with a
	// *LeftoverError).
	Options
	// Wait is the strategy blocking calls idle with when the ring is full.
	Wait wait.Strategy
	// PeerTimeout: how old the consumer's heartbeat may be before it
	// counts as dead (0: DefaultPeerTimeout).
	PeerTimeout time.Duration
	// Linger bounds how long Close waits for the consumer to drain the
	// ring, detach or die before the file is removed (0: DefaultLinger;
	// negative: do not wait). Only a producer that created the ring lingers.
	Linger time.Duration
	// Keep leaves the ring file in place at Close (for inspection). By
	// default a producer that created the ring removes it at Close.
	Keep bool
}

// NewProducer attaches this process as the producer of the ring at path (a
// bare name lives in DefaultDir), following format.md §12 "Generations":
//
//   - no file at path: a new generation of capacity bytes is created with
//     the producer already attached, and linked into place;
//   - a ring whose producer side is free and whose consumer is waiting
//     (attached and alive): the producer joins it (its capacity is the
//     existing one);
//   - a ring with a live producer: *BusyError;
//   - a leftover (no live peer — nobody attached, a dead producer, a
//     consumer gone without a producer — or a finished generation, or
//     sealed): replaced by a new generation if opts.Replace, else
//     *LeftoverError;
//   - anything that is not a valid ring file (symbolic link, FIFO, damaged
//     header, format version 1): its error; it is never replaced.
//
// Close of the returned producer ends the stream (the consumer gets io.EOF
// after the last record); if it created the ring it lingers until the
// consumer drained it, then removes the file (see ProducerOptions).
func NewProducer(path string, capacity int, opts ProducerOptions) (*Producer, error) {
	path = resolve(path)
	if err := checkCapacity(path, capacity); err != nil {
		return nil, err
	}
	timeout := peerTimeout(opts.PeerTimeout)
	deadline := time.Now().Add(5 * time.Second)
	setup := func(p *Producer, created bool) *Producer {
		p.owned, p.created, p.keep = true, created, opts.Keep
		p.linger = opts.Linger
		if p.linger == 0 {
			p.linger = DefaultLinger
		}
		p.SetPeerTimeout(timeout)
		return p
	}
	for {
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("ring %s: %w: the path kept changing under the producer", path, os.ErrDeadlineExceeded)
		}
		f, err := openFile(path)
		switch {
		case err == nil:
			r, err := mapFile(f, path)
			if err != nil {
				f.Close()
				return nil, err
			}
			var v verdict
			if err := r.guarded(func() error { v = r.verdict(timeout); return nil }); err != nil {
				r.Close()
				return nil, err
			}
			switch v.kind {
			case vJoinable:
				p, err := r.Producer(opts.Wait)
				if err == nil {
					return setup(p, false), nil
				}
				r.Close()
				if errors.Is(err, ErrBusy) || errors.Is(err, ErrSideUsed) {
					continue // taken meanwhile: look again
				}
				return nil, err
			case vLive:
				r.Close()
				return nil, v.err
			case vLeftover:
				r.Close()
				if !opts.Replace {
					return nil, &LeftoverError{Path: path, Generation: r.gen, Reason: v.why}
				}
			}
		case !errors.Is(err, os.ErrNotExist):
			return nil, err
		}
		// Build a new generation with the producer attached, then make it
		// appear at path.
		t, err := newTemp(path, capacity, &opts.Options)
		if err != nil {
			return nil, err
		}
		p, err := t.r.Producer(opts.Wait)
		if err == nil {
			err = publish(t, path, opts.Replace, roleProducer, timeout)
		}
		if err != nil {
			t.r.Close()
			os.Remove(t.name)
			if err == errJoin {
				continue
			}
			return nil, err
		}
		return setup(p, true), nil
	}
}

// ConsumerOptions tune NewConsumer. The zero value is valid.
type ConsumerOptions struct {
	// Wait is the strategy Read idles with while the ring is empty.
	Wait wait.Strategy
	// PeerTimeout: how old the producer's heartbeat may be before it
	// counts as dead (0: DefaultPeerTimeout).
	PeerTimeout time.Duration
	// AttachTimeout bounds how long NewConsumer waits for a ring with a
	// producer (0: DefaultAttachTimeout; negative: look once, do not wait).
	AttachTimeout time.Duration
}

// NewConsumer attaches this process as the consumer of a ring generation at
// path (a bare name lives in DefaultDir), following format.md §12
// "Generations". It waits, up to opts.AttachTimeout, until the path names
// a ring it may consume — consumer side never used, producer attached and
// alive, or still to come — attaches, and then waits for the producer to
// attach. It never attaches to a leftover: a finished generation whose
// producer has left, a generation whose producer died or whose consumer
// side was used. While it waits for a producer, a replacement of the ring
// file is followed (nothing was read from the old one). It fails at once on
// a file that is not a valid ring, or with *BusyError if a live consumer is
// attached; at the timeout it returns an error matching ErrNoProducer and
// os.ErrDeadlineExceeded that says what it found.
//
// The consumer reads the generation from its first record; Close detaches
// and unmaps.
func NewConsumer(path string, opts ConsumerOptions) (*Consumer, error) {
	path = resolve(path)
	timeout := peerTimeout(opts.PeerTimeout)
	limit := opts.AttachTimeout
	if limit == 0 {
		limit = DefaultAttachTimeout
	}
	deadline := time.Now().Add(max(limit, 0))
	sleep := time.Millisecond
	for {
		c, why, err := tryConsumer(path, opts.Wait, timeout, deadline)
		if err != nil || c != nil {
			return c, err
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("ring %s: %w: %s (waited %v): %w", path, ErrNoProducer, why, max(limit, 0), os.ErrDeadlineExceeded)
		}
		time.Sleep(min(sleep, time.Until(deadline)+time.Millisecond))
		sleep = min(sleep*2, 20*time.Millisecond)
	}
}

// tryConsumer makes one attempt: a consumer, or why not (c == nil, err ==
// nil: keep waiting), or a final error.
func tryConsumer(path string, s wait.Strategy, timeout time.Duration, deadline time.Time) (*Consumer, string, error) {
	f, err := openFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, "no ring file", nil
	}
	if err != nil {
		return nil, "", err
	}
	r, err := mapFile(f, path)
	if err != nil {
		f.Close()
		return nil, "", err
	}
	var ok bool
	var why string
	if err := r.guarded(func() error {
		ok, why, err = r.consumerJoinable(timeout)
		return err
	}); err != nil {
		r.Close()
		return nil, "", err
	}
	if !ok {
		r.Close()
		return nil, why, nil
	}
	c, err := r.Consumer(s)
	if err != nil {
		r.Close()
		if errors.Is(err, ErrSideUsed) {
			return nil, err.Error(), nil
		}
		return nil, "", err
	}
	c.owned = true
	c.SetPeerTimeout(timeout)
	// Attached. Wait for the producer if it has not come yet.
	sleep := 100 * time.Microsecond
	for {
		var p side
		var st uint32
		if err := r.guarded(func() error {
			p = side{r.h, OffProducer}
			st = p.state()
			return nil
		}); err != nil {
			c.Close()
			return nil, "", err
		}
		if st == StateAttached || st == StateClosed {
			return c, "", nil
		}
		if st == StateRetired || !sameFile(path, r.f) {
			c.Close()
			return nil, "the ring was replaced while waiting for its producer", nil
		}
		if time.Now().After(deadline) {
			c.Close()
			return nil, "a ring with no producer attached", nil
		}
		r.guarded(func() error { c.me.beat(clock.Nanotime()); return nil })
		time.Sleep(sleep)
		sleep = min(sleep*2, 5*time.Millisecond)
	}
}

// consumerJoinable decides whether a new consumer may attach to this
// generation: consumer side never used, producer free (to come) or present.
func (r *Ring) consumerJoinable(timeout time.Duration) (bool, string, error) {
	p, c := side{r.h, OffProducer}, side{r.h, OffConsumer}
	switch cp, cs := c.pid(), c.state(); {
	case cp == SealedPID || cs == StateRetired:
		return false, "a ring being replaced (consumer side sealed)", nil
	case cs == StateClosed:
		return false, fmt.Sprintf("a leftover ring already consumed (consumer PID %d detached)", cp), nil
	case cp != 0 || cs == StateAttached:
		if pr := presentSide(c, timeout); pr.present {
			return false, "", &BusyError{Path: r.path, Side: "consumer", PID: int(cp)}
		} else {
			return false, "a leftover ring (consumer " + pr.why + ")", nil
		}
	}
	switch pp, ps := p.pid(), p.state(); {
	case pp == SealedPID || ps == StateRetired:
		return false, "a ring being replaced (producer side sealed)", nil
	case pp == 0 && ps == StateFree:
		return true, "", nil
	default:
		if pr := presentSide(p, timeout); pr.present {
			return true, "", nil
		} else if ps == StateClosed {
			return false, fmt.Sprintf("a leftover finished ring (producer %s)", pr.why), nil
		} else {
			return false, "a leftover ring (producer " + pr.why + ")", nil
		}
	}
}
