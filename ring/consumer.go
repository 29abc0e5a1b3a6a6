package ring

import (
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/mdjournal/mdjournal/internal/clock"
	"github.com/mdjournal/mdjournal/journal"
	"github.com/mdjournal/mdjournal/wait"
)

// Consumer is the reading side of a ring. It is not safe for concurrent use.
type Consumer struct {
	r        *Ring
	base     unsafe.Pointer // data area
	capacity uint64
	mask     uint64
	maxPay   uint64

	tailp *uint64
	headp *uint64

	h       uint64 // local position: start of the next unread record
	next    uint64 // position after the record whose view is out
	pending bool   // a view is out (Release not yet called)
	pubHead uint64 // last value stored at headp
	chunk   uint64 // released bytes that force a head store (capacity/4)
	// tailLimit is the cached producer position plus capacity: a record
	// at or past it cannot be published (the producer never runs more than
	// a lap ahead of what it stored in tail), so reaching it reloads tail.
	tailLimit uint64

	plain    bool
	beats    uint32
	lastBeat int64

	err      error // sticky: damage or truncation
	idle     wait.Idler
	dataSig  wait.Signal // we sleep on it
	space    wait.Signal // the producer sleeps on it
	me, peer side
	timeout  time.Duration
	deadline time.Time
	closed   bool
	owned    bool // from NewConsumer: Close also closes the Ring
	polls    int
	pc       idleCheck
}

// Consumer attaches this process as the ring's consumer. s is the strategy
// Read idles with while the ring is empty. It fails with a *BusyError if a
// live process is attached as consumer, and with ErrSideUsed if a consumer
// was attached to this generation before: a generation is consumed once,
// from its first record, so no record is delivered twice.
func (r *Ring) Consumer(s wait.Strategy) (*Consumer, error) {
	c := &Consumer{
		r:        r,
		base:     r.base,
		capacity: r.capacity,
		mask:     r.capacity - 1,
		maxPay:   uint64(r.MaxPayload()),
		tailp:    r.h.u64(OffTail),
		headp:    r.h.u64(OffHead),
		chunk:    max(r.capacity/4, RecordAlign),
		idle:     wait.Idler{Strategy: s},
		dataSig:  r.dataSignal(),
		space:    r.spaceSignal(),
		me:       side{r.h, OffConsumer},
		peer:     side{r.h, OffProducer},
		timeout:  DefaultPeerTimeout,
		beats:    beatEvery,
	}
	plain, err := r.attach(c.me, c.timeout, c)
	if err != nil {
		return nil, err
	}
	c.plain = plain
	err = r.guarded(func() error {
		c.h = atomic.LoadUint64(c.headp) // 0: the side was free, so nothing was ever released
		c.pubHead = c.h
		c.tailLimit = atomic.LoadUint64(c.tailp) + c.capacity
		return nil
	})
	c.err = err
	return c, nil
}

// Path is the ring file's path.
func (c *Consumer) Path() string { return c.r.path }

// Ring is the ring this consumer is attached to.
func (c *Consumer) Ring() *Ring { return c.r }

// SetDeadline bounds the blocking reads: once t has passed, a read that
// would wait returns os.ErrDeadlineExceeded. The zero time means no deadline.
func (c *Consumer) SetDeadline(t time.Time) { c.deadline = t }

// SetPeerTimeout sets how old the producer's heartbeat may be before it
// counts as dead (default DefaultPeerTimeout, at least MinPeerTimeout).
func (c *Consumer) SetPeerTimeout(d time.Duration) { c.timeout = peerTimeout(d) }

func (c *Consumer) fault(errp *error, old bool) {
	debug.SetPanicOnFault(old)
	if e := recover(); e != nil {
		c.err = c.r.faultError(e, "consumer")
		if errp != nil {
			*errp = c.err
		}
	}
}

// TryRead returns the next record's payload as a view into the ring, valid
// until Release (or the next read, which releases it implicitly). It never
// blocks and makes no system call. It returns false when nothing is
// readable now; Err then tells whether that is final (io.EOF, damage, a
// dead producer) or just an empty ring (nil). The view is read by the
// caller outside the package's fault guard: if the file may be truncated
// under you, read records inside ReadBatch's handler instead.
func (c *Consumer) TryRead() (b []byte, ok bool) {
	defer c.fault(nil, debug.SetPanicOnFault(true))
	return c.tryRead()
}

func (c *Consumer) tryRead() ([]byte, bool) {
	if c.pending {
		c.release()
	}
	if c.err != nil || c.closed {
		return nil, false
	}
	for {
		h := c.h
		idx := h & c.mask
		w := atomic.LoadUint64((*uint64)(unsafe.Add(c.base, idx))) // acquire: the payload before it is complete
		if w == 0 {
			c.publishHead() // caught up: give the space back now
			return nil, false
		}
		if h >= c.tailLimit && !c.loadTail(idx) {
			return nil, false
		}
		n, kind := w&0xffffffff, w>>32
		switch kind {
		case KindData:
			size := align8(RecordHeaderSize + n)
			if n > c.maxPay || idx+size > c.capacity {
				c.badRecord(idx, h, n, kind)
				return nil, false
			}
			c.next = h + size
			c.pending = true
			return unsafe.Slice((*byte)(unsafe.Add(c.base, idx+RecordHeaderSize)), n), true
		case KindPad:
			if n+RecordHeaderSize != c.capacity-idx {
				c.badRecord(idx, h, n, kind)
				return nil, false
			}
			c.h = h + c.capacity - idx // skipped locally; released with the next record
		default:
			c.badRecord(idx, h, n, kind)
			return nil, false
		}
	}
}

// loadTail refreshes tailLimit (once per lap) and checks that the header
// found at position c.h can be a published record.
func (c *Consumer) loadTail(idx uint64) bool {
	t := atomic.LoadUint64(c.tailp)
	if t%RecordAlign != 0 {
		c.err = journal.Corrupt(c.r.path, OffTail, ErrBadPosition, "producer position %d not %d-byte aligned", t, RecordAlign)
		return false
	}
	c.tailLimit = t + c.capacity
	if c.h >= c.tailLimit {
		c.err = journal.Corrupt(c.r.path, int64(HeaderSize+idx), ErrBadRecord,
			"record header at position %d, a lap or more past the producer position %d: not a published record", c.h, t)
		return false
	}
	return true
}

func (c *Consumer) badRecord(idx, pos, n, kind uint64) {
	c.err = journal.Corrupt(c.r.path, int64(HeaderSize+idx), ErrBadRecord,
		"record at position %d: length %d kind %d invalid (capacity %d, max payload %d)",
		pos, n, kind, c.capacity, c.maxPay)
}

// release ends the outstanding view locally; the space goes back to the
// producer with the next head store (once per chunk, batch, or when the
// ring is found empty).
func (c *Consumer) release() {
	c.pending = false
	c.h = c.next
	if c.h-c.pubHead >= c.chunk {
		c.publishHead()
	}
}

// publishHead stores the consumer position (one store) and wakes the
// producer if (and only if) it announced itself waiting for space.
func (c *Consumer) publishHead() {
	if c.h == c.pubHead {
		return
	}
	c.pubHead = c.h
	if c.plain {
		storePlain(unsafe.Pointer(c.headp), c.h)
	} else {
		atomic.StoreUint64(c.headp, c.h)
	}
	c.space.Wake()
	if c.beats--; c.beats == 0 {
		c.beats = beatEvery
		if now := clock.Nanotime(); now-c.lastBeat >= int64(HeartbeatInterval/2) {
			c.lastBeat = now
			c.me.beat(now)
		}
	}
}

// Release gives the record last returned back: its view must not be used
// afterwards. The space returns to the producer in batches (see
// publishHead). Release without an outstanding view does nothing.
func (c *Consumer) Release() {
	if !c.pending {
		return
	}
	c.pending = false
	c.h = c.next
	if c.h-c.pubHead >= c.chunk {
		c.guardedPublishHead() // the only access to the mapping here
	}
}

func (c *Consumer) guardedPublishHead() {
	defer c.fault(nil, debug.SetPanicOnFault(true))
	c.publishHead()
}

// Read is TryRead that waits, with the consumer's strategy, for a record.
// It returns io.EOF once the producer closed and every record was read,
// ErrPeerDead once the producer's process died and every record it
// published was read, a *journal.CorruptionError on damage (ErrTruncated
// if the file was truncated), and os.ErrDeadlineExceeded past the deadline.
func (c *Consumer) Read() (b []byte, err error) {
	defer c.fault(&err, debug.SetPanicOnFault(true))
	for {
		if b, ok := c.tryRead(); ok {
			return b, nil
		}
		if c.err != nil {
			return nil, c.err
		}
		if err := c.waitRecord(); err != nil {
			return nil, err
		}
	}
}

// TryReadBatch hands up to limit published records to fn, in order, and
// returns how many: a zero-copy view each, valid only during its fn call.
// It never blocks. It releases the whole batch with one head store. fn runs
// inside the fault guard, so even a view read there cannot raise SIGBUS if
// the file is truncated. An error (damage, truncation, io.EOF, ErrPeerDead)
// is returned only with n == 0 except for damage found after some records.
func (c *Consumer) TryReadBatch(limit int, fn func(rec []byte)) (n int, err error) {
	defer c.fault(&err, debug.SetPanicOnFault(true))
	if c.closed {
		return 0, ErrClosed
	}
	n = c.batch(limit, fn)
	if c.err != nil {
		return n, c.err
	}
	if n == 0 {
		// Cheap end checks on every empty poll; the producer's liveness
		// (which may read /proc) only every peerCheckInterval of polling.
		c.polls++
		return 0, c.endErr(c.pc.due(c.polls))
	}
	return n, nil
}

// ReadBatch is TryReadBatch that first waits, with the consumer's
// strategy, for at least one record (errors as Read).
func (c *Consumer) ReadBatch(limit int, fn func(rec []byte)) (n int, err error) {
	defer c.fault(&err, debug.SetPanicOnFault(true))
	for {
		if n = c.batch(limit, fn); n > 0 || c.err != nil {
			return n, c.err
		}
		if err := c.waitRecord(); err != nil {
			return 0, err
		}
	}
}

func (c *Consumer) batch(limit int, fn func(rec []byte)) int {
	if c.pending {
		c.pending = false
		c.h = c.next
	}
	if c.err != nil || c.closed {
		return 0
	}
	n := 0
	for n < limit {
		h := c.h
		idx := h & c.mask
		w := atomic.LoadUint64((*uint64)(unsafe.Add(c.base, idx))) // acquire
		if w == 0 {
			break
		}
		if h >= c.tailLimit && !c.loadTail(idx) {
			break
		}
		ln, kind := w&0xffffffff, w>>32
		if kind == KindData {
			size := align8(RecordHeaderSize + ln)
			if ln > c.maxPay || idx+size > c.capacity {
				c.badRecord(idx, h, ln, kind)
				break
			}
			c.h = h + size // consumed even if fn panics
			fn(unsafe.Slice((*byte)(unsafe.Add(c.base, idx+RecordHeaderSize)), ln))
			n++
			continue
		}
		if kind == KindPad && ln+RecordHeaderSize == c.capacity-idx {
			c.h = h + c.capacity - idx
			continue
		}
		c.badRecord(idx, h, ln, kind)
		break
	}
	c.publishHead()
	return n
}

// waitRecord idles until a record is readable at c.h or an error.
func (c *Consumer) waitRecord() error {
	if c.err != nil {
		return c.err
	}
	if c.closed {
		return ErrClosed
	}
	c.publishHead()
	c.idle.Reset()
	var pc idleCheck
	for i := 1; ; i++ {
		if c.ready() {
			return nil
		}
		if c.idle.ShouldBlock() {
			tok := c.dataSig.Announce()
			d := blockFor(c.deadline)
			if c.peer.flags()&SideFlagPlainPublish != 0 && !heavyBarrier() {
				d = min(d, time.Millisecond) // no barrier: bound a missed wake-up
			}
			if !c.ready() && c.peer.state() != StateClosed {
				c.dataSig.Block(tok, d)
			}
			c.dataSig.Done()
			if err := c.check(); err != nil {
				return err
			}
			continue
		}
		c.idle.Idle()
		if pc.due(i) || (i%16 == 0 && !c.deadline.IsZero()) {
			if err := c.check(); err != nil {
				return err
			}
		}
	}
}

// ready reports whether a header word is published at c.h.
func (c *Consumer) ready() bool {
	return atomic.LoadUint64((*uint64)(unsafe.Add(c.base, c.h&c.mask))) != 0
}

// Err reports why TryRead returned false: nil if the ring is merely empty,
// io.EOF if the producer closed and the ring is drained, ErrPeerDead if the
// producer died and the ring is drained, or the damage found. It may make
// system calls (liveness check), so poll it only when idle.
func (c *Consumer) Err() (err error) {
	defer c.fault(&err, debug.SetPanicOnFault(true))
	if c.err != nil {
		return c.err
	}
	if c.closed {
		return ErrClosed
	}
	if err := c.r.truncated(); err != nil {
		return err
	}
	return c.endErr(true)
}

// check runs on idle paths only.
func (c *Consumer) check() error {
	if c.err != nil {
		return c.err
	}
	if err := c.r.truncated(); err != nil {
		c.err = err
		return err
	}
	if !c.deadline.IsZero() && time.Now().After(c.deadline) {
		return os.ErrDeadlineExceeded
	}
	c.me.beat(clock.Nanotime())
	if g := c.r.h.generation(); g != c.r.gen {
		c.err = journal.Corrupt(c.r.path, offGeneration, ErrBadHeader, "generation changed under the consumer: %016x, attached to %016x", g, c.r.gen)
		return c.err
	}
	return c.endErr(true)
}

// endErr returns io.EOF or ErrPeerDead if the producer closed or died and
// nothing more is published at our position. The producer publishes its
// records and stores tail before its closed state, so after seeing the
// state, an unpublished header at our position is final. live says
// whether to check the producer's liveness (idle paths only).
func (c *Consumer) endErr(live bool) error {
	if c.pending {
		return nil // a view is out: not drained
	}
	st := c.peer.state()
	if st == StateAttached {
		if !live {
			return nil
		}
		pr := presentSide(c.peer, c.timeout)
		if pr.present {
			return nil
		}
		// Gone, unless it closed meanwhile: a producer stores its closed
		// state before it stops beating, so this load sees it.
		if st = c.peer.state(); st == StateAttached {
			if c.ready() {
				return nil // still records to read first
			}
			return fmt.Errorf("%w: producer %s", ErrPeerDead, pr.why)
		}
	}
	switch st {
	case StateClosed:
		if c.ready() {
			return nil // still records to read first
		}
		if t := atomic.LoadUint64(c.tailp); t != c.h {
			c.err = journal.Corrupt(c.r.path, OffTail, ErrBadPosition,
				"producer closed at position %d, but the consumer at %d finds no record there: records lost", t, c.h)
			return c.err
		}
		return io.EOF
	case StateRetired:
		if c.ready() {
			return nil
		}
		return fmt.Errorf("%w: producer side sealed: no producer will attach", ErrPeerDead)
	}
	return nil // free: no producer yet
}

// Close releases any outstanding view and detaches cleanly: the producer
// gets ErrPeerClosed instead of waiting for space. A consumer from
// NewConsumer also closes its ring.
func (c *Consumer) Close() error {
	c.r.mu.Lock()
	if c.r.closed || c.closed {
		c.r.mu.Unlock()
		return nil
	}
	c.detach()
	c.r.guarded(func() error { c.r.stopBeating(c.me); return nil })
	c.r.mu.Unlock()
	if c.owned {
		return c.r.Close()
	}
	return nil
}

func (c *Consumer) detach() {
	if c.closed {
		return
	}
	c.r.guarded(func() error {
		if c.pending {
			c.pending = false
			c.h = c.next
		}
		c.publishHead()
		c.me.setState(StateClosed)
		c.space.Wake()
		return nil
	})
	c.closed = true
}
