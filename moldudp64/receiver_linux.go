//go:build linux

package moldudp64

import (
	"context"
	"time"

	"golang.org/x/sys/unix"

	"github.com/mdjournal/mdjournal/internal/clock"
)

// ReceiverCounters count what a Receiver read.
type ReceiverCounters struct {
	Reads     uint64 // recvmmsg calls that returned packets
	Packets   uint64 // packets read (live and answers)
	Answers   uint64 // packets read from the re-request socket
	Stray     uint64 // packets on the re-request socket not from the server, ignored
	Truncated uint64 // packets longer than the Batch's size, ignored
	Waits     uint64 // times it blocked in ppoll
}

// Receiver reads a live feed socket and, if set, a RequestClient's socket
// (the answers), with recvmmsg into one reused Batch, and pushes every
// packet to a Sequencer with its kernel receive time. One goroutine drives
// it with Poll or Run; nothing is allocated per packet.
type Receiver struct {
	feed  *Conn
	rc    *RequestClient
	seq   *Sequencer
	batch *Batch
	fds   []unix.PollFd
	c     ReceiverCounters
}

// NewReceiver ties the feed socket, an optional RequestClient (whose
// Sequencer Requester it should be) and the Sequencer together. batch nil
// means NewBatch(64, 2048).
func NewReceiver(feed *Conn, rc *RequestClient, seq *Sequencer, batch *Batch) *Receiver {
	if batch == nil {
		batch = NewBatch(0, 0)
	}
	r := &Receiver{feed: feed, rc: rc, seq: seq, batch: batch}
	r.fds = append(r.fds, unix.PollFd{Fd: int32(feed.fd), Events: unix.POLLIN})
	if rc != nil {
		r.fds = append(r.fds, unix.PollFd{Fd: int32(rc.conn.fd), Events: unix.POLLIN})
	}
	return r
}

// Sequencer returns the Receiver's Sequencer.
func (r *Receiver) Sequencer() *Sequencer { return r.seq }

// Counters returns the counters.
func (r *Receiver) Counters() ReceiverCounters { return r.c }

// Poll reads and pushes every packet already waiting; if there was none it
// waits for one up to timeout (less if a Sequencer timer is due sooner),
// then reads again. It runs the Sequencer's timers and returns the number
// of packets pushed and any handler or socket error.
func (r *Receiver) Poll(timeout time.Duration) (int, error) {
	n, err := r.drain()
	if err != nil {
		return n, err
	}
	if n == 0 && !r.seq.Ended() {
		now := clock.Nanotime()
		wait := int64(timeout)
		if d := r.seq.NextDeadline() - now; d < wait {
			wait = max(d, 0)
		}
		if wait > 0 {
			r.c.Waits++
			ok, err := pollFds(r.fds, time.Duration(wait))
			if err != nil {
				return 0, err
			}
			if ok {
				if n, err = r.drain(); err != nil {
					return n, err
				}
			}
		}
	}
	return n, r.seq.Tick()
}

// Run polls until the session ends (nil), ctx is done (its error) or a
// handler or socket error.
func (r *Receiver) Run(ctx context.Context) error {
	for !r.seq.Ended() {
		if err := ctx.Err(); err != nil {
			return err
		}
		if _, err := r.Poll(50 * time.Millisecond); err != nil {
			return err
		}
	}
	return nil
}

// drain reads both sockets until neither has a packet waiting (or 64 rounds
// passed, so timers still run under a flood).
func (r *Receiver) drain() (int, error) {
	total := 0
	for round := 0; round < 64; round++ {
		n, err := r.read(r.feed, false)
		if err != nil {
			return total, err
		}
		total += n
		m := 0
		if r.rc != nil {
			if m, err = r.read(r.rc.conn, true); err != nil {
				return total, err
			}
			total += m
		}
		if n < r.batch.Cap() && m < r.batch.Cap() {
			break
		}
	}
	return total, nil
}

func (r *Receiver) read(c *Conn, answers bool) (int, error) {
	n, err := c.Read(r.batch)
	if err != nil || n == 0 {
		return 0, err
	}
	r.c.Reads++
	r.c.Packets += uint64(n)
	for i := 0; i < n; i++ {
		if r.batch.Truncated(i) {
			r.c.Truncated++
			continue
		}
		p, t := r.batch.Packet(i), r.batch.Time(i)
		if answers {
			r.c.Answers++
			if r.batch.From(i) != r.rc.server {
				r.c.Stray++
				continue
			}
			err = r.seq.PushRetransmit(p, t)
		} else {
			err = r.seq.Push(p, t)
		}
		if err != nil {
			return n, err
		}
	}
	return n, nil
}
