package ring

import (
	"encoding/binary"
	"io"
	"os"
	"sync/atomic"
	"time"

	"github.com/mdjournal/mdjournal/journal"
	"github.com/mdjournal/mdjournal/wait"
)

// Consumer is the reading side of a ring. It is not safe for concurrent use.
type Consumer struct {
	r        *Ring
	data     []byte
	capacity uint64
	mask     uint64
	maxPay   uint64

	tailp *uint64
	headp *uint64

	head      uint64 // local position: start of the next unread record
	next      uint64 // position after the record whose view is out
	pending   bool   // a view is out (Release not yet called)
	tailCache uint64 // last producer position read; refreshed only when caught up

	err      error // sticky corruption error
	idle     wait.Idler
	dataSig  wait.Signal // we sleep on it
	space    wait.Signal // the producer sleeps on it
	peer     side        // producer side block
	deadline time.Time
	closed   bool
}

// Consumer attaches this process as the ring's consumer. s is the strategy
// Read idles with while the ring is empty. It fails with a *BusyError if a
// live process is attached as consumer. A new consumer starts at the
// consumer position recorded in the ring: records a dead predecessor read
// but did not Release are delivered again.
func (r *Ring) Consumer(s wait.Strategy) (*Consumer, error) {
	c := &Consumer{
		r:        r,
		data:     r.data,
		capacity: r.capacity,
		mask:     r.capacity - 1,
		maxPay:   uint64(r.MaxPayload()),
		tailp:    r.h.u64(OffTail),
		headp:    r.h.u64(OffHead),
		idle:     wait.Idler{Strategy: s},
		dataSig:  r.dataSignal(),
		space:    r.spaceSignal(),
		peer:     side{r.h, OffProducer},
	}
	if err := r.attach(OffConsumer, "consumer", OffDataWaiters, c); err != nil {
		return nil, err
	}
	c.head = atomic.LoadUint64(c.headp)
	c.tailCache = c.head
	return c, nil
}

// SetDeadline bounds Read: once t has passed, a Read that would wait returns
// os.ErrDeadlineExceeded. The zero time means no deadline.
func (c *Consumer) SetDeadline(t time.Time) { c.deadline = t }

// TryRead returns the next record's payload as a view into the ring, valid
// until Release (or the next TryRead/Read, which release it implicitly).
// It never blocks and makes no system call. It returns false when nothing
// is readable now; Err then tells whether that is final (io.EOF, damage,
// a dead producer) or just an empty ring (nil).
func (c *Consumer) TryRead() ([]byte, bool) {
	if c.pending {
		c.Release()
	}
	if c.err != nil || c.closed {
		return nil, false
	}
	for {
		h := c.head
		if h == c.tailCache {
			t := atomic.LoadUint64(c.tailp) // acquire: records below t are complete
			if t == h {
				return nil, false
			}
			if t-h > c.capacity || t%RecordAlign != 0 {
				c.err = journal.Corrupt(c.r.path, OffTail, ErrBadPosition,
					"producer position %d, consumer at %d: not within capacity %d ahead", t, h, c.capacity)
				return nil, false
			}
			c.tailCache = t
		}
		idx := h & c.mask
		w := binary.LittleEndian.Uint64(c.data[idx:])
		n, kind := w&0xffffffff, w>>32
		switch kind {
		case KindData:
			size := align8(RecordHeaderSize + n)
			if n > c.maxPay || idx+size > c.capacity || size > c.tailCache-h {
				c.badRecord(idx, h, n, kind)
				return nil, false
			}
			c.next = h + size
			c.pending = true
			return c.data[idx+RecordHeaderSize : idx+RecordHeaderSize+n : idx+RecordHeaderSize+n], true
		case KindPad:
			if n+RecordHeaderSize != c.capacity-idx || c.capacity-idx > c.tailCache-h {
				c.badRecord(idx, h, n, kind)
				return nil, false
			}
			c.head = h + c.capacity - idx // skipped locally; released with the next record
		default:
			c.badRecord(idx, h, n, kind)
			return nil, false
		}
	}
}

func (c *Consumer) badRecord(idx, pos, n, kind uint64) {
	c.err = journal.Corrupt(c.r.path, int64(HeaderSize+idx), ErrBadRecord,
		"record at position %d: length %d kind %d invalid (capacity %d, max payload %d, %d bytes published after it)",
		pos, n, kind, c.capacity, c.maxPay, c.tailCache-pos)
}

// Release gives the space of the record last returned back to the producer:
// one atomic store of the consumer position, then a wake-up of the producer
// if (and only if) it announced itself waiting. The view must not be used
// afterwards. Release without an outstanding view does nothing.
func (c *Consumer) Release() {
	if !c.pending {
		return
	}
	c.pending = false
	c.head = c.next
	atomic.StoreUint64(c.headp, c.head)
	c.space.Wake()
}

// Read is TryRead that waits, with the consumer's strategy, for a record.
// It returns io.EOF once the producer closed and every record was read,
// ErrPeerDead once the producer's process died and every record it
// published was read, a *journal.CorruptionError on damage, and
// os.ErrDeadlineExceeded past the deadline.
func (c *Consumer) Read() ([]byte, error) {
	if b, ok := c.TryRead(); ok {
		return b, nil
	}
	c.idle.Reset()
	var pc idleCheck
	for i := 1; ; i++ {
		if c.err != nil {
			return nil, c.err
		}
		if c.closed {
			return nil, ErrClosed
		}
		if c.idle.ShouldBlock() {
			tok := c.dataSig.Announce()
			if atomic.LoadUint64(c.tailp) == c.head && c.peer.state() != StateClosed {
				c.dataSig.Block(tok, blockFor(c.deadline))
			}
			c.dataSig.Done()
			if err := c.check(); err != nil {
				return nil, err
			}
		} else {
			c.idle.Idle()
			if pc.due(i) || (i%16 == 0 && !c.deadline.IsZero()) {
				if err := c.check(); err != nil {
					return nil, err
				}
			}
		}
		if b, ok := c.TryRead(); ok {
			return b, nil
		}
	}
}

// Err reports why TryRead returned false: nil if the ring is merely empty,
// io.EOF if the producer closed and the ring is drained, ErrPeerDead if the
// producer died and the ring is drained, or the damage found. It makes a
// system call (liveness check), so poll it only when idle.
func (c *Consumer) Err() error {
	if c.err != nil {
		return c.err
	}
	if c.closed {
		return ErrClosed
	}
	return c.peerErr()
}

// check runs on idle paths only.
func (c *Consumer) check() error {
	if !c.deadline.IsZero() && time.Now().After(c.deadline) {
		return os.ErrDeadlineExceeded
	}
	return c.peerErr()
}

// peerErr returns io.EOF or ErrPeerDead if the producer closed or died and
// nothing more is published. The producer stores its last position before
// its state, so a position loaded after seeing the state is final.
func (c *Consumer) peerErr() error {
	var err error
	switch c.peer.state() {
	case StateClosed:
		err = io.EOF
	case StateAttached:
		if alive(c.peer.pid(), c.peer.start()) {
			return nil
		}
		err = ErrPeerDead
	default:
		return nil
	}
	if c.pending || atomic.LoadUint64(c.tailp) != c.head {
		return nil // still records to read first
	}
	return err
}

// Close releases any outstanding view and detaches cleanly.
func (c *Consumer) Close() error {
	c.r.mu.Lock()
	defer c.r.mu.Unlock()
	if c.r.closed {
		return nil
	}
	c.detach()
	return nil
}

func (c *Consumer) detach() {
	if c.closed {
		return
	}
	c.Release()
	side{c.r.h, OffConsumer}.setState(StateClosed)
	c.closed = true
	c.space.Wake()
}
