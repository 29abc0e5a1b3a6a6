package ring

import (
	"fmt"
	"os"
	"runtime/debug"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/mdjournal/mdjournal/internal/clock"
	"github.com/mdjournal/mdjournal/journal"
	"github.com/mdjournal/mdjournal/wait"
)

// beatEvery is how many publications pass between two looks at the clock
// for the active-path heartbeat (the keeper goroutine beats anyway; this
// keeps a side alive if the runtime cannot schedule it).
const beatEvery = 4096

// Producer is the writing side of a ring. It is not safe for concurrent use:
// a ring has exactly one producer thread.
type Producer struct {
	r        *Ring
	base     unsafe.Pointer // data area
	capacity uint64
	mask     uint64
	maxPay   int

	tailp *uint64 // shared producer position (for tools, end of stream, lap bound)
	headp *uint64 // shared consumer position

	pos       uint64 // local position: end of committed records (published or staged)
	pub       uint64 // end of published records
	headCache uint64 // last consumer position read; refreshed only when short of space

	// The first header word of the staged (committed, unpublished) records:
	// Flush stores it last, which publishes the whole batch at once.
	hold     bool
	holdIdx  uint64
	holdWord uint64

	// pending claim
	claimed  bool
	claimPad uint64 // data-area index of the padding record, if claimPad != claimRec
	claimRec uint64 // data-area index of the claimed record's header
	claimLen uint32
	claimEnd uint64 // position after the claimed record

	plain    bool // publish with plain stores (peer fences with membarrier)
	beats    uint32
	lastBeat int64

	idle     wait.Idler
	dataSig  wait.Signal // consumer sleeps on it
	space    wait.Signal // we sleep on it
	me, peer side
	timeout  time.Duration
	deadline time.Time
	closed   bool
	err      error // sticky: the ring was truncated under us or is damaged

	// set by NewProducer
	owned   bool // Close also closes the Ring
	created bool // this producer created the ring file
	keep    bool
	linger  time.Duration
}

// Producer attaches this process as the ring's producer. s is the strategy
// blocking calls (Write, Claim) idle with when the ring is full. It fails
// with a *BusyError if a live process is attached as producer, and with
// ErrSideUsed if a producer was attached to this generation before: a
// generation has one producer, so it cannot mix two streams.
func (r *Ring) Producer(s wait.Strategy) (*Producer, error) {
	p := &Producer{
		r:        r,
		base:     r.base,
		capacity: r.capacity,
		mask:     r.capacity - 1,
		maxPay:   r.MaxPayload(),
		tailp:    r.h.u64(OffTail),
		headp:    r.h.u64(OffHead),
		idle:     wait.Idler{Strategy: s},
		dataSig:  r.dataSignal(),
		space:    r.spaceSignal(),
		me:       side{r.h, OffProducer},
		peer:     side{r.h, OffConsumer},
		timeout:  DefaultPeerTimeout,
		beats:    beatEvery,
	}
	plain, err := r.attach(p.me, p.timeout, p)
	if err != nil {
		return nil, err
	}
	p.plain = plain
	err = r.guarded(func() error {
		p.pos = atomic.LoadUint64(p.tailp)
		p.headCache = atomic.LoadUint64(p.headp)
		return nil
	})
	p.pub = p.pos
	if err != nil {
		p.err = err
	}
	return p, nil
}

// MaxPayload is the largest record payload accepted.
func (p *Producer) MaxPayload() int { return p.maxPay }

// Path is the ring file's path.
func (p *Producer) Path() string { return p.r.path }

// Ring is the ring this producer is attached to.
func (p *Producer) Ring() *Ring { return p.r }

// Created reports whether NewProducer created the ring file (rather than
// joining a ring whose consumer was waiting for a producer).
func (p *Producer) Created() bool { return p.created }

// SetDeadline bounds blocking calls: once t has passed, a call that would
// wait returns os.ErrDeadlineExceeded. The zero time means no deadline.
func (p *Producer) SetDeadline(t time.Time) { p.deadline = t }

// SetPeerTimeout sets how old the consumer's heartbeat may be before it
// counts as dead (default DefaultPeerTimeout, at least MinPeerTimeout).
func (p *Producer) SetPeerTimeout(d time.Duration) { p.timeout = peerTimeout(d) }

// fault is the deferred half of the fault guard of every public call.
func (p *Producer) fault(errp *error, old bool) {
	debug.SetPanicOnFault(old)
	if e := recover(); e != nil {
		p.err = p.r.faultError(e, "producer")
		if errp != nil {
			*errp = p.err
		}
	}
}

// TryClaim reserves room for an n-byte record and returns its payload, a
// view into the ring to fill in place; Commit (or CommitNoFlush) makes it
// visible. It returns ErrFull when the consumer has not freed enough space,
// ErrTooLarge when n > MaxPayload. Claiming again before committing
// abandons the earlier claim (nothing of it becomes visible).
func (p *Producer) TryClaim(n int) (b []byte, err error) {
	defer p.fault(&err, debug.SetPanicOnFault(true))
	b, err = p.tryClaim(n)
	return b, p.sticky(err)
}

// sticky prefers the sticky fault error over err.
func (p *Producer) sticky(err error) error {
	if p.err != nil {
		return p.err
	}
	return err
}

func (p *Producer) tryClaim(n int) ([]byte, error) {
	if p.err != nil {
		return nil, p.err
	}
	if p.closed {
		return nil, ErrClosed
	}
	if n < 0 || n > p.maxPay {
		return nil, ErrTooLarge
	}
	size := align8(RecordHeaderSize + uint64(n))
	idx := p.pos & p.mask
	rec := idx
	var pad uint64
	if idx+size > p.capacity {
		pad = p.capacity - idx // wrap: fill to the end, record starts at 0
		rec = 0
	}
	end := p.pos + pad + size
	if end+EndReserve-p.headCache > p.capacity {
		if !p.loadHead() || end+EndReserve-p.headCache > p.capacity {
			return nil, ErrFull
		}
	}
	// Keep the header word after this record zero: the consumer, having
	// read this record, spins there, and it may hold an older lap's bytes.
	storePlain(unsafe.Add(p.base, end&p.mask), 0)
	p.claimed = true
	p.claimPad = idx
	p.claimRec = rec
	p.claimLen = uint32(n)
	p.claimEnd = end
	return unsafe.Slice((*byte)(unsafe.Add(p.base, rec+RecordHeaderSize)), n), nil
}

// loadHead refreshes the cached consumer position and validates it.
func (p *Producer) loadHead() bool {
	h := atomic.LoadUint64(p.headp)
	if h%RecordAlign != 0 || h > p.pub || p.pub-h > p.capacity {
		p.err = journal.Corrupt(p.r.path, OffHead, ErrBadPosition,
			"consumer position %d, producer published up to %d: not within capacity %d behind", h, p.pub, p.capacity)
		return false
	}
	p.headCache = h
	return true
}

// Claim is TryClaim that waits, with the producer's strategy, while the
// ring is full. It returns ErrPeerDead if the consumer's process dies,
// ErrPeerClosed if the consumer detached, os.ErrDeadlineExceeded past the
// deadline. Records staged with CommitNoFlush are published before waiting.
func (p *Producer) Claim(n int) (b []byte, err error) {
	defer p.fault(&err, debug.SetPanicOnFault(true))
	for {
		b, err = p.tryClaim(n)
		if err != ErrFull {
			return b, p.sticky(err)
		}
		if err = p.waitSpace(n); err != nil {
			return nil, p.sticky(err)
		}
	}
}

// CommitNoFlush completes the pending claim without publishing it: the
// record becomes visible with the next Commit, Flush or publishing write,
// together with every record staged before it.
func (p *Producer) CommitNoFlush() (err error) {
	defer p.fault(&err, debug.SetPanicOnFault(true))
	return p.sticky(p.commit())
}

func (p *Producer) commit() error {
	if !p.claimed {
		return ErrNoClaim
	}
	w := uint64(p.claimLen) | KindData<<32
	first, firstWord := p.claimRec, w
	if p.claimPad != p.claimRec {
		// The record at index 0 goes first; the padding header before it
		// publishes both.
		storePlain(unsafe.Add(p.base, p.claimRec), w)
		first, firstWord = p.claimPad, uint64(p.capacity-p.claimPad-RecordHeaderSize)|KindPad<<32
	}
	if !p.hold {
		p.hold, p.holdIdx, p.holdWord = true, first, firstWord
	} else {
		// Behind the held header: invisible until Flush stores that.
		storePlain(unsafe.Add(p.base, first), firstWord)
	}
	p.pos = p.claimEnd
	p.claimed = false
	return nil
}

// Commit completes the pending claim and publishes it (and any staged
// records) to the consumer.
func (p *Producer) Commit() (err error) {
	defer p.fault(&err, debug.SetPanicOnFault(true))
	if err := p.commit(); err != nil {
		return p.sticky(err)
	}
	p.flush()
	return p.err
}

// Flush publishes every committed record: one store of the first staged
// record's header word (the consumer spins on it), one store of tail, then
// a wake-up of the consumer if (and only if) it announced itself waiting.
func (p *Producer) Flush() {
	defer p.fault(nil, debug.SetPanicOnFault(true))
	p.flush()
}

func (p *Producer) flush() {
	if !p.hold || p.err != nil {
		return
	}
	hp := unsafe.Add(p.base, p.holdIdx)
	if p.plain {
		storePlain(hp, p.holdWord)
	} else {
		atomic.StoreUint64((*uint64)(hp), p.holdWord) // sequentially consistent: orders the waiter load below
	}
	storePlain(unsafe.Pointer(p.tailp), p.pos)
	p.hold = false
	p.pub = p.pos
	p.dataSig.Wake()
	if p.beats--; p.beats == 0 {
		p.beats = beatEvery
		p.activeBeat()
	}
}

// activeBeat refreshes our heartbeat from the active path, at most every
// HeartbeatInterval/2 of clock time.
func (p *Producer) activeBeat() {
	if now := clock.Nanotime(); now-p.lastBeat >= int64(HeartbeatInterval/2) {
		p.lastBeat = now
		p.me.beat(now)
	}
}

// TryAppend copies rec into the ring as one record without publishing it
// (see Flush). It returns ErrFull, ErrTooLarge, ErrClaimPending or ErrClosed.
func (p *Producer) TryAppend(rec []byte) (err error) {
	defer p.fault(&err, debug.SetPanicOnFault(true))
	return p.sticky(p.tryAppend(rec))
}

func (p *Producer) tryAppend(rec []byte) error {
	if p.claimed {
		return ErrClaimPending
	}
	b, err := p.tryClaim(len(rec))
	if err != nil {
		return err
	}
	// Copy the part of the payload beyond the header's cache line first,
	// then the part in it: the consumer spins on the header word, so its
	// line is stolen back and forth least if all stores to it come last.
	k := min(len(b), int(cacheLine-1-(p.claimRec+RecordHeaderSize-1)%cacheLine))
	copy(b[k:], rec[k:])
	copy(b[:k], rec)
	return p.commit()
}

// cacheLine is the size of the lines the consumer's spinning steals.
const cacheLine = 64

// TryWrite copies rec into the ring as one record and publishes it. It
// never blocks: it returns ErrFull when there is no room now.
func (p *Producer) TryWrite(rec []byte) (err error) {
	defer p.fault(&err, debug.SetPanicOnFault(true))
	if p.writeFast(rec) {
		return nil
	}
	if err := p.tryAppend(rec); err != nil {
		return p.sticky(err)
	}
	p.flush()
	return p.err
}

// writeFast is TryWrite's common case in one function: nothing staged or
// claimed, no padding needed, room by the cached head. It reports false
// (having done nothing) otherwise. The caller holds the fault guard.
func (p *Producer) writeFast(rec []byte) bool {
	size := align8(RecordHeaderSize + uint64(len(rec)))
	idx := p.pos & p.mask
	end := p.pos + size
	if p.hold || p.claimed || p.closed || p.err != nil || len(rec) > p.maxPay ||
		idx+size > p.capacity || end+EndReserve-p.headCache > p.capacity {
		return false
	}
	storePlain(unsafe.Add(p.base, end&p.mask), 0) // the next header word
	b := unsafe.Slice((*byte)(unsafe.Add(p.base, idx+RecordHeaderSize)), len(rec))
	k := min(len(b), int(cacheLine-1-(idx+RecordHeaderSize-1)%cacheLine))
	copy(b[k:], rec[k:]) // the header's cache line last (see tryAppend)
	copy(b[:k], rec)
	w := uint64(len(rec)) | KindData<<32
	hp := unsafe.Add(p.base, idx)
	if p.plain {
		storePlain(hp, w)
	} else {
		atomic.StoreUint64((*uint64)(hp), w)
	}
	storePlain(unsafe.Pointer(p.tailp), end)
	p.pos, p.pub = end, end
	p.dataSig.Wake()
	if p.beats--; p.beats == 0 {
		p.beats = beatEvery
		p.activeBeat()
	}
	return true
}

// Write is TryWrite that waits while the ring is full (see Claim for errors).
func (p *Producer) Write(rec []byte) (err error) {
	defer p.fault(&err, debug.SetPanicOnFault(true))
	if p.writeFast(rec) {
		return nil
	}
	for {
		err = p.tryAppend(rec)
		if err == nil {
			p.flush()
			return p.err
		}
		if err != ErrFull {
			return p.sticky(err)
		}
		if err = p.waitSpace(len(rec)); err != nil {
			return p.sticky(err)
		}
	}
}

// TryWriteBatch copies as many of recs as fit now into the ring, in order,
// and publishes them together: one header store, one tail store, one
// wake-up check and one fault guard for the batch, which makes it the
// producer's fast path (per-record calls pay the guard each). It never
// blocks and returns how many records it wrote; err is nil if at least one
// was written and only lack of space stopped it, ErrFull if none fitted,
// else the error for recs[n] (ErrTooLarge, ErrClaimPending, ErrClosed,
// damage).
func (p *Producer) TryWriteBatch(recs [][]byte) (n int, err error) {
	defer p.fault(&err, debug.SetPanicOnFault(true))
	for n < len(recs) {
		if err = p.tryAppend(recs[n]); err != nil {
			break
		}
		n++
	}
	p.flush()
	if err == ErrFull && n > 0 {
		err = nil
	}
	return n, p.sticky(err)
}

// WriteBatch writes every record of recs, in order, waiting for space with
// the producer's strategy like Write; records are published in groups, as
// many at once as fit. On an error the records before the failing one are
// published.
func (p *Producer) WriteBatch(recs [][]byte) (err error) {
	defer p.fault(&err, debug.SetPanicOnFault(true))
	for i := 0; i < len(recs); {
		err = p.tryAppend(recs[i])
		if err == nil {
			i++
			continue
		}
		if err != ErrFull {
			p.flush()
			return p.sticky(err)
		}
		if err = p.waitSpace(len(recs[i])); err != nil { // publishes what is staged first
			return p.sticky(err)
		}
	}
	p.flush()
	return p.err
}

// waitSpace idles until an n-byte record probably fits, or an error.
func (p *Producer) waitSpace(n int) error {
	p.flush() // the consumer cannot free space for records it cannot see
	size := align8(RecordHeaderSize + uint64(n))
	idx := p.pos & p.mask
	end := p.pos + size
	if idx+size > p.capacity {
		end += p.capacity - idx
	}
	return p.idleUntil(func() bool { return p.fits(end) }, func() error { return p.check(end) })
}

// idleUntil is the producer's wait loop: it idles with the strategy until
// ready() holds, running check() (deadline, consumer, truncation) while
// idle and returning its error. With the futex strategy it sleeps on the
// space signal; the consumer wakes it when it releases space or detaches.
func (p *Producer) idleUntil(ready func() bool, check func() error) error {
	p.idle.Reset()
	var pc idleCheck
	for i := 1; ; i++ {
		if ready() {
			return nil
		}
		if p.idle.ShouldBlock() {
			tok := p.space.Announce()
			d := blockFor(p.deadline)
			if p.peer.flags()&SideFlagPlainPublish != 0 && !heavyBarrier() {
				d = min(d, time.Millisecond) // no barrier: bound a missed wake-up
			}
			if st := p.peer.state(); !ready() && st != StateClosed && st != StateRetired {
				p.space.Block(tok, d) // a consumer still to come does not wake us: d bounds it
			}
			p.space.Done()
			if err := check(); err != nil {
				return err
			}
			continue
		}
		p.idle.Idle()
		if pc.due(i) || (i%16 == 0 && !p.deadline.IsZero()) {
			if err := check(); err != nil {
				return err
			}
		}
	}
}

// fits reports whether the consumer has freed the ring up to end+EndReserve-capacity.
func (p *Producer) fits(end uint64) bool {
	return p.loadHead() && end+EndReserve-p.headCache <= p.capacity
}

// check runs on idle paths only: sticky errors, truncation, deadline, our
// heartbeat, the consumer's state. Each verdict about the consumer is
// re-checked against the ring, so space it freed before leaving is used.
func (p *Producer) check(end uint64) error {
	if p.err != nil {
		return p.err
	}
	if p.closed {
		return ErrClosed
	}
	if err := p.r.truncated(); err != nil {
		p.err = err
		return err
	}
	if !p.deadline.IsZero() && time.Now().After(p.deadline) {
		return os.ErrDeadlineExceeded
	}
	p.me.beat(clock.Nanotime())
	switch st := p.peer.state(); st {
	case StateClosed, StateRetired:
		if !p.fits(end) {
			return fmt.Errorf("%w: consumer PID %d detached", ErrPeerClosed, p.peer.pid())
		}
	case StateAttached:
		// A consumer stores its closed state before it stops beating: the
		// second state load tells a departure from a death.
		if pr := presentSide(p.peer, p.timeout); !pr.present && p.peer.state() == StateAttached && !p.fits(end) {
			return fmt.Errorf("%w: consumer %s", ErrPeerDead, pr.why)
		}
	}
	return p.err
}

// Close publishes staged records (a pending claim is dropped) and detaches
// cleanly: the consumer reads what remains, then gets io.EOF. For a
// producer from Ring.Producer that is all; the ring stays mapped until
// Ring.Close. A producer from NewProducer that created the ring file then
// lingers (ProducerOptions.Linger) until the consumer has drained the ring,
// detached or died, removes the file (unless Keep) and closes the ring: it
// returns ErrUndelivered if records were never consumed, ErrPeerDead if the
// consumer died before draining them.
func (p *Producer) Close() error {
	r := p.r
	r.mu.Lock()
	if r.closed || p.closed {
		r.mu.Unlock()
		return nil
	}
	lingering := p.owned && p.created && p.linger >= 0
	p.detach()
	if !lingering {
		r.guarded(func() error { r.stopBeating(p.me); return nil })
	}
	err := p.err
	r.mu.Unlock()
	if !p.owned {
		return err
	}
	if lingering {
		if err == nil {
			err = p.lingerFor(p.linger)
		}
		r.mu.Lock()
		r.guarded(func() error { r.stopBeating(p.me); return nil })
		r.mu.Unlock()
	}
	if p.created && !p.keep {
		if _, rerr := removeIfSame(r.path, r.f, time.Now().Add(2*time.Second)); rerr != nil && err == nil {
			err = rerr
		}
	}
	if cerr := r.Close(); err == nil {
		err = cerr
	}
	return err
}

// detach marks the producer closed (r.mu held): publish, tail, state
// closed, wake the consumer.
func (p *Producer) detach() {
	if p.closed {
		return
	}
	p.claimed = false
	if err := p.r.guarded(func() error {
		p.flush()
		atomic.StoreUint64(p.tailp, p.pub)
		p.me.setState(StateClosed) // sequentially consistent: orders the waiter load in Wake
		p.dataSig.Wake()           // a sleeping consumer sees the close at once
		return nil
	}); err != nil && p.err == nil {
		p.err = err
	}
	p.closed = true
}

// lingerFor waits up to d for the consumer to drain what was published,
// detach or die (format.md §12 "Generations": the producer's linger). It
// polls: lingering is not latency critical.
func (p *Producer) lingerFor(d time.Duration) (err error) {
	defer p.fault(&err, debug.SetPanicOnFault(true))
	deadline := time.Now().Add(d)
	tail := p.pub
	sleep := 100 * time.Microsecond
	var next time.Time
	for {
		h := atomic.LoadUint64(p.headp)
		st := p.peer.state()
		if h == tail || st == StateClosed {
			return nil
		}
		if st == StateRetired {
			return fmt.Errorf("%s: %w: %d bytes published, the ring file was replaced before a consumer attached", p.r.path, ErrUndelivered, tail)
		}
		if err := p.r.truncated(); err != nil {
			return err
		}
		now := time.Now()
		if now.After(next) {
			next = now.Add(peerCheckInterval)
			if st == StateAttached || p.peer.pid() != 0 {
				if pr := presentSide(p.peer, p.timeout); !pr.present {
					// It may have drained and detached since our loads: a
					// consumer publishes head and its closed state before
					// it stops beating, so these loads see them.
					h, st = atomic.LoadUint64(p.headp), p.peer.state()
					if h == tail || st == StateClosed {
						return nil
					}
					return fmt.Errorf("%s: %w: consumer %s with %d bytes unread", p.r.path, ErrPeerDead, pr.why, tail-h)
				}
			} else if !sameFile(p.r.path, p.r.f) {
				return fmt.Errorf("%s: %w: %d bytes published, the ring file was replaced before a consumer attached", p.r.path, ErrUndelivered, tail)
			}
		}
		if now.After(deadline) {
			if st == StateFree {
				return fmt.Errorf("%s: %w: %d bytes published, no consumer attached within %v", p.r.path, ErrUndelivered, tail, d)
			}
			return fmt.Errorf("%s: %w: the consumer still had %d bytes unread after %v", p.r.path, ErrUndelivered, tail-h, d)
		}
		time.Sleep(sleep)
		sleep = min(sleep*2, 5*time.Millisecond)
	}
}
