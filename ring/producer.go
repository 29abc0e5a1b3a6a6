package ring

import (
	"encoding/binary"
	"os"
	"sync/atomic"
	"time"

	"github.com/mdjournal/mdjournal/wait"
)

// Producer is the writing side of a ring. It is not safe for concurrent use:
// a ring has exactly one producer thread.
type Producer struct {
	r        *Ring
	data     []byte
	capacity uint64
	mask     uint64
	maxPay   int

	tailp *uint64 // shared producer position
	headp *uint64 // shared consumer position

	tail      uint64 // local position: published plus staged records
	pub       uint64 // last value stored at tailp
	headCache uint64 // last consumer position read; refreshed only when short of space

	// pending claim
	claimed  bool
	claimIdx uint64 // data-area index of the claimed record's header
	claimLen uint32
	claimEnd uint64 // tail after committing the claim (padding included)

	idle     wait.Idler
	dataSig  wait.Signal // consumer sleeps on it
	space    wait.Signal // we sleep on it
	peer     side        // consumer side block
	deadline time.Time
	closed   bool
}

// Producer attaches this process as the ring's producer. s is the strategy
// blocking calls (Write, Claim) idle with when the ring is full. It fails
// with a *BusyError if a live process is attached as producer.
func (r *Ring) Producer(s wait.Strategy) (*Producer, error) {
	p := &Producer{
		r:        r,
		data:     r.data,
		capacity: r.capacity,
		mask:     r.capacity - 1,
		maxPay:   r.MaxPayload(),
		tailp:    r.h.u64(OffTail),
		headp:    r.h.u64(OffHead),
		idle:     wait.Idler{Strategy: s},
		dataSig:  r.dataSignal(),
		space:    r.spaceSignal(),
		peer:     side{r.h, OffConsumer},
	}
	if err := r.attach(OffProducer, "producer", OffSpaceWaiters, p); err != nil {
		return nil, err
	}
	p.tail = atomic.LoadUint64(p.tailp)
	p.pub = p.tail
	p.headCache = atomic.LoadUint64(p.headp)
	return p, nil
}

// MaxPayload is the largest record payload accepted.
func (p *Producer) MaxPayload() int { return p.maxPay }

// SetDeadline bounds blocking calls: once t has passed, a call that would
// wait returns os.ErrDeadlineExceeded. The zero time means no deadline.
func (p *Producer) SetDeadline(t time.Time) { p.deadline = t }

// TryClaim reserves room for an n-byte record and returns its payload, a
// view into the ring to fill in place; Commit (or CommitNoFlush) makes it
// visible. It returns ErrFull when the consumer has not freed enough space,
// ErrTooLarge when n > MaxPayload. Claiming again before committing
// abandons the earlier claim (nothing of it becomes visible).
func (p *Producer) TryClaim(n int) ([]byte, error) {
	if p.closed {
		return nil, ErrClosed
	}
	if n < 0 || n > p.maxPay {
		return nil, ErrTooLarge
	}
	size := align8(RecordHeaderSize + uint64(n))
	idx := p.tail & p.mask
	var pad uint64
	if idx+size > p.capacity {
		pad = p.capacity - idx // wrap: fill to the end, record starts at 0
	}
	end := p.tail + pad + size
	if end-p.headCache > p.capacity {
		p.headCache = atomic.LoadUint64(p.headp)
		if end-p.headCache > p.capacity {
			return nil, ErrFull
		}
	}
	if pad != 0 {
		// The padding record is in space we own; it becomes visible with
		// the record after it (one tail store covers both).
		binary.LittleEndian.PutUint64(p.data[idx:], uint64(pad-RecordHeaderSize)|KindPad<<32)
		idx = 0
	}
	p.claimed = true
	p.claimIdx = idx
	p.claimLen = uint32(n)
	p.claimEnd = end
	return p.data[idx+RecordHeaderSize : idx+RecordHeaderSize+uint64(n) : idx+RecordHeaderSize+uint64(n)], nil
}

// Claim is TryClaim that waits, with the producer's strategy, while the
// ring is full. It returns ErrPeerDead if the consumer's process dies,
// ErrPeerClosed if the consumer detached, os.ErrDeadlineExceeded past the
// deadline. Records staged with CommitNoFlush are published before waiting.
func (p *Producer) Claim(n int) ([]byte, error) {
	for {
		b, err := p.TryClaim(n)
		if err != ErrFull {
			return b, err
		}
		if err := p.waitSpace(n); err != nil {
			return nil, err
		}
	}
}

// CommitNoFlush completes the pending claim without publishing it: the
// record becomes visible with the next Commit, Flush or publishing write.
// Use it to publish a batch with one position store.
func (p *Producer) CommitNoFlush() error {
	if !p.claimed {
		return ErrNoClaim
	}
	binary.LittleEndian.PutUint64(p.data[p.claimIdx:], uint64(p.claimLen)|KindData<<32)
	p.tail = p.claimEnd
	p.claimed = false
	return nil
}

// Commit completes the pending claim and publishes it (and any staged
// records) to the consumer.
func (p *Producer) Commit() error {
	if err := p.CommitNoFlush(); err != nil {
		return err
	}
	p.Flush()
	return nil
}

// Flush publishes every committed record: one atomic store of the producer
// position, then a wake-up of the consumer if (and only if) it announced
// itself waiting.
func (p *Producer) Flush() {
	if p.pub != p.tail {
		p.pub = p.tail
		atomic.StoreUint64(p.tailp, p.tail)
		p.dataSig.Wake()
	}
}

// TryAppend copies rec into the ring as one record without publishing it
// (see Flush). It returns ErrFull, ErrTooLarge, ErrClaimPending or ErrClosed.
func (p *Producer) TryAppend(rec []byte) error {
	if p.claimed {
		return ErrClaimPending
	}
	b, err := p.TryClaim(len(rec))
	if err != nil {
		return err
	}
	copy(b, rec)
	return p.CommitNoFlush()
}

// TryWrite copies rec into the ring as one record and publishes it. It
// never blocks: it returns ErrFull when there is no room now.
func (p *Producer) TryWrite(rec []byte) error {
	if err := p.TryAppend(rec); err != nil {
		return err
	}
	p.Flush()
	return nil
}

// Write is TryWrite that waits while the ring is full (see Claim for errors).
func (p *Producer) Write(rec []byte) error {
	for {
		err := p.TryWrite(rec)
		if err != ErrFull {
			return err
		}
		if err := p.waitSpace(len(rec)); err != nil {
			return err
		}
	}
}

// waitSpace idles until an n-byte record probably fits, or an error.
func (p *Producer) waitSpace(n int) error {
	p.Flush() // the consumer cannot free space for records it cannot see
	size := align8(RecordHeaderSize + uint64(n))
	idx := p.tail & p.mask
	end := p.tail + size
	if idx+size > p.capacity {
		end += p.capacity - idx
	}
	p.idle.Reset()
	var pc idleCheck
	for i := 1; ; i++ {
		if p.fits(end) {
			return nil
		}
		if p.idle.ShouldBlock() {
			tok := p.space.Announce()
			if !p.fits(end) {
				p.space.Block(tok, blockFor(p.deadline))
			}
			p.space.Done()
			if err := p.check(end); err != nil {
				return err
			}
			continue
		}
		p.idle.Idle()
		if pc.due(i) || (i%16 == 0 && !p.deadline.IsZero()) {
			if err := p.check(end); err != nil {
				return err
			}
		}
	}
}

// fits reports whether the consumer has freed the ring up to end-capacity.
func (p *Producer) fits(end uint64) bool { return end-atomic.LoadUint64(p.headp) <= p.capacity }

// check runs on idle paths only: deadline, own close, consumer liveness.
// Each verdict about the consumer is re-checked against the ring, so space
// it freed before closing or dying is still used.
func (p *Producer) check(end uint64) error {
	if p.closed {
		return ErrClosed
	}
	if !p.deadline.IsZero() && time.Now().After(p.deadline) {
		return os.ErrDeadlineExceeded
	}
	switch p.peer.state() {
	case StateClosed:
		if !p.fits(end) {
			return ErrPeerClosed
		}
	case StateAttached:
		if !alive(p.peer.pid(), p.peer.start()) && !p.fits(end) {
			return ErrPeerDead
		}
	}
	return nil
}

// Close publishes staged records and detaches cleanly: the consumer reads
// what remains, then gets io.EOF. The ring stays mapped until Ring.Close.
func (p *Producer) Close() error {
	p.r.mu.Lock()
	defer p.r.mu.Unlock()
	if p.r.closed {
		return nil
	}
	p.detach()
	return nil
}

func (p *Producer) detach() {
	if p.closed {
		return
	}
	p.claimed = false
	p.Flush()
	side{p.r.h, OffProducer}.setState(StateClosed)
	p.closed = true
	p.dataSig.Wake() // a sleeping consumer sees the close at once
}
