package moldudp64

import (
	"errors"
	"math"
	"math/bits"
	"time"

	"github.com/mdjournal/mdjournal/internal/clock"
)

// EventKind says what an Event reports.
type EventKind uint8

// The events a Sequencer reports to its Handler.
const (
	// EventMessage: message Seq, in sequence order, exactly once. Msg is a
	// view valid only during the call.
	EventMessage EventKind = iota + 1
	// EventGap: messages Seq..Last (inclusive) could not be recovered within
	// the bounds and will never be delivered. Delivery goes on at Last+1.
	EventGap
	// EventEndOfSession: every message of the session before Seq (the
	// end-of-session packet's sequence number) was delivered or reported
	// in a gap. Nothing follows.
	EventEndOfSession
	// EventSessionChange: a packet of another session (Session) arrived. It
	// and the rest of that session are ignored; reported once per session
	// name. A caller that wants to follow it starts a new Sequencer.
	EventSessionChange
)

// String names the kind.
func (k EventKind) String() string {
	switch k {
	case EventMessage:
		return "message"
	case EventGap:
		return "gap"
	case EventEndOfSession:
		return "end_of_session"
	case EventSessionChange:
		return "session_change"
	}
	return "invalid"
}

// Event is what a Handler receives. The Sequencer reuses one Event: a
// Handler must copy what it keeps.
type Event struct {
	Kind    EventKind
	Session Session
	Seq     uint64 // message: its sequence number; gap: first lost; end of session: one past the last
	Last    uint64 // gap: last lost (inclusive)
	Msg     []byte // message bytes, valid during the call only
	// RecvTime is the receive time the caller gave for the packet that
	// carried the message (Unix ns from the kernel's SO_TIMESTAMPNS, or 0).
	RecvTime   int64
	Retransmit bool // the message came from a re-request answer
}

// Handler receives the Sequencer's events. An error stops the Sequencer:
// the call that delivered the event returns it, and so does every later
// call (the message that failed counts as not delivered).
type Handler func(e *Event) error

// Requester sends a re-request for count messages from first. The answers
// come back as packets the caller gives to PushRetransmit.
type Requester interface {
	Request(s Session, first uint64, count uint16) error
}

// SequencerOptions configure a Sequencer; zero values take the defaults.
type SequencerOptions struct {
	// Session to follow; zero: the session of the first valid packet.
	Session Session
	// Next is the first sequence number to deliver. 0: the first message of
	// the first valid packet (a late joiner that does not want the past).
	// A restarted consumer passes its last sequence number + 1: everything
	// from there to the live stream is re-requested (or reported as a gap).
	Next uint64

	// MaxBufferedMessages bounds the messages held while an earlier one is
	// missing; it is rounded up to a power of two (default 65536). It is
	// also the window: only messages below Next+MaxBufferedMessages are
	// held or re-requested.
	MaxBufferedMessages int
	// MaxBufferedBytes bounds their total size (default 16 MiB).
	MaxBufferedBytes int

	// Requester asks for missing messages; nil: no re-requests, gaps are
	// only filled by late (reordered) packets.
	Requester Requester
	// RequestDelay is how long a gap may stay open before its first
	// re-request: room for reordering (default 1 ms).
	RequestDelay time.Duration
	// RetryInterval is the wait after a round of requests before the next
	// one (default 10 ms); it doubles each round up to MaxRetryInterval
	// (default 200 ms) and starts over when a missing message arrives.
	RetryInterval    time.Duration
	MaxRetryInterval time.Duration
	// MaxAttempts is the number of request rounds for the missing message
	// at the head before it is declared lost (default 8).
	MaxAttempts int
	// MaxRequestCount caps the messages asked for by one request (default
	// 1024; keep it at or below the server's limit), MaxRequestsPerRound the
	// request packets sent per round (default 16).
	MaxRequestCount     int
	MaxRequestsPerRound int
	// GapTimeout is the longest a missing message may be waited for, from
	// when the gap was first seen (default 2 s with a Requester, 100 ms
	// without).
	GapTimeout time.Duration

	// Clock returns monotonic nanoseconds (default CLOCK_MONOTONIC); tests
	// may drive time by hand.
	Clock func() int64
	// OnMalformed, if set, is called with each packet that fails to parse
	// (ignored and counted either way).
	OnMalformed func(pkt []byte, err error)
}

// Counters count what a Sequencer saw and did.
type Counters struct {
	Packets        uint64 // packets pushed
	Malformed      uint64 // packets that failed to parse, ignored
	Heartbeats     uint64 // heartbeat packets
	ForeignSession uint64 // packets of another session, ignored
	Messages       uint64 // messages delivered to the handler
	Duplicates     uint64 // messages seen again (already delivered or held), after their gap was reported, or past the end of session
	OutOfOrder     uint64 // messages held because an earlier one was missing
	Overflow       uint64 // messages not held because the buffer was full (re-requested later, or reported)
	Gaps           uint64 // gap events
	Lost           uint64 // messages inside reported gaps
	Requests       uint64 // re-request packets sent
	RequestErrors  uint64 // re-requests the Requester failed to send
	Recovered      uint64 // delivered messages that came from re-request answers
}

type slot struct {
	seq     uint64
	used    bool
	retrans bool
	recv    int64 // caller's receive time
	at      int64 // monotonic arrival time
	data    []byte
}

// Sequencer turns MoldUDP64 packets that arrive in any order, with
// duplicates and losses, into each message exactly once in sequence order.
//
// Messages after a missing one are held (within MaxBufferedMessages and
// MaxBufferedBytes). A gap is re-requested after RequestDelay, in rounds
// with exponential backoff; when the missing message has not arrived after
// MaxAttempts rounds or GapTimeout, the Sequencer never skips silently: it
// reports EventGap with the exact range, then goes on. Messages beyond the
// bounds are dropped and re-requested later when a Requester is set; without
// one, the oldest gap is reported at once to make room.
//
// A Sequencer is not safe for concurrent use: one goroutine calls Push,
// PushRetransmit and Tick (Receiver does). It allocates nothing in steady
// state: held messages are copied into per-slot buffers that are reused.
type Sequencer struct {
	h   Handler
	o   SequencerOptions
	now func() int64
	err error // sticky handler error

	session     Session
	haveSession bool
	foreign     Session // last foreign session reported
	started     bool
	next        uint64 // next sequence number to deliver
	high        uint64 // one past the highest sequence number known to exist
	highAt      int64  // when high last grew
	eos         uint64
	eosSeen     bool
	ended       bool

	slots    []slot
	mask     uint64
	window   uint64
	held     int
	heldB    int
	maxBytes int

	// recovery state of the gap at next
	gapOpen     bool
	gapAt       uint64
	gapSince    int64
	attempts    int
	interval    int64
	nextRound   int64
	requestedTo uint64
	delivered   bool // a message was delivered since the last maintain

	ev Event
	c  Counters
}

// NewSequencer returns a Sequencer that reports to h.
func NewSequencer(h Handler, o SequencerOptions) (*Sequencer, error) {
	if h == nil {
		return nil, errors.New("moldudp64: nil handler")
	}
	if o.MaxBufferedMessages <= 0 {
		o.MaxBufferedMessages = 65536
	}
	if o.MaxBufferedMessages > 1<<24 {
		return nil, errors.New("moldudp64: MaxBufferedMessages above 2^24")
	}
	if o.MaxBufferedBytes <= 0 {
		o.MaxBufferedBytes = 16 << 20
	}
	if o.RequestDelay <= 0 {
		o.RequestDelay = time.Millisecond
	}
	if o.RetryInterval <= 0 {
		o.RetryInterval = 10 * time.Millisecond
	}
	if o.MaxRetryInterval < o.RetryInterval {
		o.MaxRetryInterval = max(200*time.Millisecond, o.RetryInterval)
	}
	if o.MaxAttempts <= 0 {
		o.MaxAttempts = 8
	}
	if o.MaxRequestCount <= 0 || o.MaxRequestCount > MaxCount {
		o.MaxRequestCount = min(max(o.MaxRequestCount, 1024), MaxCount)
	}
	if o.MaxRequestsPerRound <= 0 {
		o.MaxRequestsPerRound = 16
	}
	if o.GapTimeout <= 0 {
		o.GapTimeout = 100 * time.Millisecond
		if o.Requester != nil {
			o.GapTimeout = 2 * time.Second
		}
	}
	if o.Clock == nil {
		o.Clock = clock.Nanotime
	}
	n := 1 << bits.Len(uint(o.MaxBufferedMessages-1))
	s := &Sequencer{h: h, o: o, now: o.Clock, slots: make([]slot, n), mask: uint64(n - 1), window: uint64(n),
		maxBytes: o.MaxBufferedBytes, session: o.Session, haveSession: o.Session != Session{}}
	if o.Next != 0 {
		s.started, s.next, s.high = true, o.Next, o.Next
	}
	return s, nil
}

// Push gives the Sequencer one packet from the live feed; recvTime is
// passed on to the message events (Unix ns, 0 if unknown). It returns only
// a handler error: malformed packets are counted and ignored.
func (s *Sequencer) Push(pkt []byte, recvTime int64) error { return s.push(pkt, recvTime, false) }

// PushRetransmit is Push for a packet answering a re-request.
func (s *Sequencer) PushRetransmit(pkt []byte, recvTime int64) error {
	return s.push(pkt, recvTime, true)
}

// Tick runs the timers: re-requests due and gaps that timed out. Call it
// when no packet arrived for a while (Receiver does, by NextDeadline).
func (s *Sequencer) Tick() error {
	if s.err != nil {
		return s.err
	}
	return s.maintain(s.now())
}

// Next returns the sequence number of the next message to deliver (0
// before the first packet when Options.Next was 0).
func (s *Sequencer) Next() uint64 { return s.next }

// Session returns the session followed (zero before the first packet when
// none was configured).
func (s *Sequencer) Session() Session { return s.session }

// Ended reports whether EventEndOfSession was delivered.
func (s *Sequencer) Ended() bool { return s.ended }

// Held returns the number of out-of-order messages held now.
func (s *Sequencer) Held() int { return s.held }

// Counters returns the counters.
func (s *Sequencer) Counters() Counters { return s.c }

// Err returns the handler error that stopped the Sequencer, if any.
func (s *Sequencer) Err() error { return s.err }

// NextDeadline returns the monotonic time by which Tick should be called
// (a re-request or a gap timeout is due), or math.MaxInt64 if no timer runs.
func (s *Sequencer) NextDeadline() int64 {
	if !s.gapOpen || s.ended || s.err != nil {
		return math.MaxInt64
	}
	d := s.gapSince + int64(s.o.GapTimeout)
	if s.o.Requester != nil {
		d = min(d, s.nextRound)
	}
	return d
}

func (s *Sequencer) push(pkt []byte, recv int64, retrans bool) error {
	if s.err != nil {
		return s.err
	}
	s.c.Packets++
	p, err := ParsePacket(pkt)
	if err != nil {
		s.c.Malformed++
		if s.o.OnMalformed != nil {
			s.o.OnMalformed(pkt, err)
		}
		return nil
	}
	if !s.haveSession {
		s.session, s.haveSession = p.Session, true
	} else if p.Session != s.session {
		s.c.ForeignSession++
		if p.Session != s.foreign {
			s.foreign = p.Session
			s.ev = Event{Kind: EventSessionChange, Session: p.Session}
			return s.emit()
		}
		return nil
	}
	now := s.now()
	if s.ended {
		s.c.Duplicates += uint64(p.Messages())
		return nil
	}
	if !s.started {
		s.started, s.next, s.high = true, p.Seq, p.Seq
	}
	switch {
	case p.IsHeartbeat():
		s.c.Heartbeats++
	case p.IsEndOfSession():
		if !s.eosSeen { // the first one fixes the end; repeats carry the same
			s.eos, s.eosSeen = p.Seq, true
		}
	default:
		it := p.Iter()
		for seq, msg, ok := it.Next(); ok; seq, msg, ok = it.Next() {
			if err := s.accept(seq, msg, recv, now, retrans); err != nil {
				return err
			}
		}
	}
	if end := p.NextSeq(); end > s.high {
		s.high, s.highAt = end, now
	}
	return s.maintain(now)
}

// accept delivers, holds or drops one message.
func (s *Sequencer) accept(seq uint64, msg []byte, recv, now int64, retrans bool) error {
	overflowed := false
	for {
		if s.eosSeen && seq >= s.eos { // past the announced end: not of the session
			s.c.Duplicates++
			return nil
		}
		if seq < s.next {
			s.c.Duplicates++
			return nil
		}
		if seq == s.next {
			if err := s.deliver(seq, msg, recv, retrans); err != nil {
				return err
			}
			return s.drain()
		}
		if seq-s.next < s.window && s.heldB+len(msg) <= s.maxBytes {
			sl := &s.slots[seq&s.mask]
			if sl.used {
				s.c.Duplicates++
				return nil
			}
			sl.seq, sl.used, sl.retrans, sl.recv, sl.at = seq, true, retrans, recv, now
			sl.data = append(sl.data[:0], msg...)
			s.held++
			s.heldB += len(msg)
			s.c.OutOfOrder++
			return nil
		}
		if seq-s.next < s.window && s.slots[seq&s.mask].used {
			s.c.Duplicates++
			return nil
		}
		// Beyond the bounds. With a Requester the message can be asked for
		// again later: drop it. Without, make room by reporting the oldest
		// gap, then try again.
		if !overflowed {
			s.c.Overflow++
			overflowed = true
		}
		if s.o.Requester != nil {
			return nil
		}
		target := seq
		if seq-s.next >= s.window {
			target = seq - s.window + 1
		}
		if f, ok := s.firstHeld(); ok {
			target = min(target, f)
		}
		if err := s.skipTo(target); err != nil {
			return err
		}
		if err := s.drain(); err != nil {
			return err
		}
	}
}

func (s *Sequencer) deliver(seq uint64, msg []byte, recv int64, retrans bool) error {
	s.ev = Event{Kind: EventMessage, Session: s.session, Seq: seq, Msg: msg, RecvTime: recv, Retransmit: retrans}
	if err := s.emit(); err != nil {
		return err
	}
	s.next = seq + 1
	s.c.Messages++
	if retrans {
		s.c.Recovered++
	}
	s.delivered = true
	return nil
}

// drain delivers the held messages that now follow in order.
func (s *Sequencer) drain() error {
	for s.held > 0 {
		sl := &s.slots[s.next&s.mask]
		if !sl.used || sl.seq != s.next {
			return nil
		}
		if err := s.deliver(sl.seq, sl.data, sl.recv, sl.retrans); err != nil {
			return err
		}
		sl.used = false
		s.held--
		s.heldB -= len(sl.data)
	}
	return nil
}

// firstHeld returns the lowest sequence number held.
func (s *Sequencer) firstHeld() (uint64, bool) {
	if s.held == 0 {
		return 0, false
	}
	for q := s.next + 1; q-s.next < s.window; q++ {
		if sl := &s.slots[q&s.mask]; sl.used && sl.seq == q {
			return q, true
		}
	}
	return 0, false
}

// skipTo reports every missing message below target as lost and delivers
// the held ones among them, leaving next == target.
func (s *Sequencer) skipTo(target uint64) error {
	for s.next < target {
		sl := &s.slots[s.next&s.mask]
		if sl.used && sl.seq == s.next {
			if err := s.drain(); err != nil {
				return err
			}
			continue
		}
		end := target
		if f, ok := s.firstHeld(); ok && f < end {
			end = f
		}
		s.ev = Event{Kind: EventGap, Session: s.session, Seq: s.next, Last: end - 1}
		if err := s.emit(); err != nil {
			return err
		}
		s.c.Gaps++
		s.c.Lost += end - s.next
		s.next = end
	}
	return nil
}

// holeSince returns a lower bound of how long the gap at next has been
// known: when the first message after it arrived, or when high last grew.
func (s *Sequencer) holeSince(now int64) int64 {
	if f, ok := s.firstHeld(); ok && f < s.high {
		return s.slots[f&s.mask].at
	}
	if s.highAt != 0 {
		return min(s.highAt, now)
	}
	return now
}

// maintain runs after every packet and tick: end of session, re-requests
// due, and gaps that may be declared lost.
func (s *Sequencer) maintain(now int64) error {
	if !s.started || s.ended {
		return nil
	}
	for {
		if s.eosSeen && s.next >= s.eos {
			s.ended, s.gapOpen = true, false
			s.ev = Event{Kind: EventEndOfSession, Session: s.session, Seq: s.eos}
			return s.emit()
		}
		if s.next >= s.high {
			s.gapOpen, s.delivered = false, false
			return nil
		}
		if !s.gapOpen {
			s.gapOpen, s.gapAt, s.gapSince = true, s.next, s.holeSince(now)
			s.attempts, s.interval = 0, int64(s.o.RetryInterval)
			s.nextRound, s.requestedTo = now+int64(s.o.RequestDelay), 0
		} else if s.next != s.gapAt {
			s.gapAt, s.gapSince = s.next, s.holeSince(now)
			if s.delivered {
				s.attempts, s.interval = 0, int64(s.o.RetryInterval)
				if s.next >= s.requestedTo {
					s.nextRound = min(s.nextRound, now)
				}
			} else {
				// progress by a reported gap: the next hole was asked for in
				// the same rounds; give it one more.
				s.attempts = min(s.attempts, s.o.MaxAttempts-1)
			}
		}
		s.delivered = false
		lost := now-s.gapSince >= int64(s.o.GapTimeout) ||
			(s.o.Requester != nil && s.attempts >= s.o.MaxAttempts && now >= s.nextRound)
		if lost {
			end := s.high
			if f, ok := s.firstHeld(); ok && f < end {
				end = f
			}
			if err := s.skipTo(end); err != nil {
				return err
			}
			if err := s.drain(); err != nil {
				return err
			}
			s.delivered = false // progress by a report, not by recovery
			continue
		}
		if s.o.Requester != nil && now >= s.nextRound && s.attempts < s.o.MaxAttempts {
			s.requestRound()
			s.attempts++
			s.nextRound = now + s.interval
			s.interval = min(2*s.interval, int64(s.o.MaxRetryInterval))
		}
		return nil
	}
}

// requestRound asks for every missing range inside the window.
func (s *Sequencer) requestRound() {
	limit := min(s.high, s.next+s.window)
	if s.eosSeen {
		limit = min(limit, s.eos)
	}
	sent := 0
	for q := s.next; q < limit && sent < s.o.MaxRequestsPerRound; {
		if sl := &s.slots[q&s.mask]; sl.used && sl.seq == q {
			q++
			continue
		}
		end := q + 1
		for end < limit && end-q < uint64(s.o.MaxRequestCount) {
			if sl := &s.slots[end&s.mask]; sl.used && sl.seq == end {
				break
			}
			end++
		}
		if err := s.o.Requester.Request(s.session, q, uint16(end-q)); err != nil {
			s.c.RequestErrors++
		} else {
			s.c.Requests++
		}
		sent++
		s.requestedTo = end
		q = end
	}
}

func (s *Sequencer) emit() error {
	if err := s.h(&s.ev); err != nil {
		s.err = err
		return err
	}
	return nil
}
