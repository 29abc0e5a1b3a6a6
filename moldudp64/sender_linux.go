//go:build linux

package moldudp64

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"time"

	"github.com/mdjournal/mdjournal/internal/clock"
)

// ErrSessionEnded: Add after EndSession.
var ErrSessionEnded = errors.New("moldudp64: session ended")

// SenderOptions configure a Sender.
type SenderOptions struct {
	Session Session // required
	// FirstSeq is the first message's sequence number (default 1).
	FirstSeq uint64
	// MaxPayload is the largest packet (default DefaultMaxPayload).
	MaxPayload int
	// HeartbeatInterval: Tick sends a heartbeat (after EndSession: the
	// end-of-session packet again) when nothing was sent for this long
	// (default 1 s).
	HeartbeatInterval time.Duration
	// Store, if set, records every message for a re-request Server.
	Store *MemStore

	// Test hooks for fidelity tests, drawn from a PCG seeded with Seed:
	// DropRate is the probability that a data packet is not sent (it stays
	// in the Store); ReorderRate that it is held back and sent after the
	// next data packet (or by the next Tick or EndSession). Heartbeats and
	// end-of-session packets are never dropped.
	DropRate, ReorderRate float64
	Seed                  uint64

	// Clock returns monotonic nanoseconds (default CLOCK_MONOTONIC).
	Clock func() int64
}

// SenderCounters count what a Sender did.
type SenderCounters struct {
	Messages     uint64 // messages added
	Packets      uint64 // data packets sent (the held-back ones when sent)
	Heartbeats   uint64
	EndOfSession uint64 // end-of-session packets sent
	Dropped      uint64 // data packets the drop hook did not send
	Reordered    uint64 // data packets the reorder hook held back
}

// Sender is the exchange side of a MoldUDP64 feed: it packs messages into
// packets of at most MaxPayload bytes, numbers them, sends them to a
// (multicast or unicast) address, sends heartbeats when idle and ends the
// session. Used by one goroutine.
type Sender struct {
	conn    *Conn
	dst     netip.AddrPort
	o       SenderOptions
	b       Builder
	rng     *rand.Rand
	held    []byte
	holding bool
	last    int64 // when a packet was last sent
	ended   bool
	ctl     [HeaderLen]byte
	c       SenderCounters
}

// NewSender returns a Sender writing to dst through conn.
func NewSender(conn *Conn, dst netip.AddrPort, o SenderOptions) (*Sender, error) {
	if (o.Session == Session{}) {
		return nil, errors.New("moldudp64: sender needs a session")
	}
	if o.FirstSeq == 0 {
		o.FirstSeq = 1
	}
	if o.MaxPayload <= 0 {
		o.MaxPayload = DefaultMaxPayload
	}
	if o.MaxPayload < HeaderLen+BlockLen+1 {
		return nil, errors.New("moldudp64: sender MaxPayload too small for any message")
	}
	if o.HeartbeatInterval <= 0 {
		o.HeartbeatInterval = time.Second
	}
	if o.Clock == nil {
		o.Clock = clock.Nanotime
	}
	if o.DropRate < 0 || o.ReorderRate < 0 || o.DropRate+o.ReorderRate > 1 {
		return nil, fmt.Errorf("moldudp64: drop rate %v and reorder rate %v are not probabilities", o.DropRate, o.ReorderRate)
	}
	if o.Store != nil && o.Store.Next() != o.FirstSeq {
		return nil, fmt.Errorf("moldudp64: store expects message %d, sender starts at %d", o.Store.Next(), o.FirstSeq)
	}
	s := &Sender{conn: conn, dst: dst, o: o, rng: rand.New(rand.NewPCG(o.Seed, 0x6d6f6c64)), held: make([]byte, 0, o.MaxPayload)}
	s.b.Reset(o.Session, o.FirstSeq, o.MaxPayload)
	s.last = o.Clock()
	return s, nil
}

// Next returns the sequence number the next message will get.
func (s *Sender) Next() uint64 { return s.b.NextSeq() }

// Counters returns the counters.
func (s *Sender) Counters() SenderCounters { return s.c }

// Add appends a message to the current packet, sending the packet first if
// the message does not fit, and returns the message's sequence number.
func (s *Sender) Add(msg []byte) (uint64, error) {
	if s.ended {
		return 0, ErrSessionEnded
	}
	err := s.b.Add(msg)
	if err == ErrPacketFull { // Builder returns the bare sentinel
		if err := s.sendData(); err != nil {
			return 0, err
		}
		err = s.b.Add(msg)
	}
	if err != nil {
		return 0, err
	}
	seq := s.b.NextSeq() - 1
	if s.o.Store != nil {
		if err := s.o.Store.Append(seq, msg); err != nil {
			return 0, err
		}
	}
	s.c.Messages++
	return seq, nil
}

// Flush sends the current packet if it holds any message.
func (s *Sender) Flush() error {
	if s.b.Count() == 0 {
		return nil
	}
	return s.sendData()
}

// Tick flushes, sends a held-back packet, and sends a heartbeat (after
// EndSession: the end-of-session packet) if nothing was sent for
// HeartbeatInterval. Call it periodically.
func (s *Sender) Tick() error {
	if err := s.Flush(); err != nil {
		return err
	}
	if err := s.release(); err != nil {
		return err
	}
	if s.o.Clock()-s.last < int64(s.o.HeartbeatInterval) {
		return nil
	}
	if s.ended {
		return s.sendEnd()
	}
	if err := s.write(AppendHeartbeat(s.ctl[:0], s.o.Session, s.b.NextSeq())); err != nil {
		return err
	}
	s.c.Heartbeats++
	return nil
}

// EndSession flushes, sends any held-back packet and the end-of-session
// packet. Tick repeats the latter.
func (s *Sender) EndSession() error {
	if err := s.Flush(); err != nil {
		return err
	}
	if err := s.release(); err != nil {
		return err
	}
	s.ended = true
	return s.sendEnd()
}

func (s *Sender) sendEnd() error {
	if err := s.write(AppendEndOfSession(s.ctl[:0], s.o.Session, s.b.NextSeq())); err != nil {
		return err
	}
	s.c.EndOfSession++
	return nil
}

// sendData sends the current packet through the test hooks and starts the
// next one.
func (s *Sender) sendData() error {
	p := s.b.Bytes()
	next := s.b.NextSeq()
	defer s.b.Reset(s.o.Session, next, s.o.MaxPayload)
	if s.o.DropRate > 0 || s.o.ReorderRate > 0 {
		r := s.rng.Float64()
		switch {
		case r < s.o.DropRate:
			s.c.Dropped++
			return nil
		case r < s.o.DropRate+s.o.ReorderRate && !s.holding:
			s.held = append(s.held[:0], p...)
			s.holding = true
			s.c.Reordered++
			return nil
		}
	}
	if err := s.write(p); err != nil {
		return err
	}
	s.c.Packets++
	return s.release()
}

func (s *Sender) release() error {
	if !s.holding {
		return nil
	}
	s.holding = false
	if err := s.write(s.held); err != nil {
		return err
	}
	s.c.Packets++
	return nil
}

func (s *Sender) write(p []byte) error {
	if err := s.conn.WriteTo(p, s.dst); err != nil {
		return err
	}
	s.last = s.o.Clock()
	return nil
}
