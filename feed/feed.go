//go:build linux

package feed

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/mdjournal/mdjournal/internal/clock"
	"github.com/mdjournal/mdjournal/itch"
	"github.com/mdjournal/mdjournal/journal"
	"github.com/mdjournal/mdjournal/moldudp64"
	"github.com/mdjournal/mdjournal/reader"
	"github.com/mdjournal/mdjournal/writer"
)

// Options configure a Feed. Listen and Day are required.
type Options struct {
	// Listen is the local IPv4 address the live feed arrives at (port 0
	// picks one, see LocalAddr). For multicast it is the group's port on
	// the group address or 0.0.0.0.
	Listen netip.AddrPort
	// Group, if valid, is an IPv4 multicast group to join on the interface
	// with index Interface (0: the kernel's choice).
	Group     netip.Addr // multicast group to join (invalid: unicast)
	Interface int        // interface index for the group (0: the kernel's choice)
	// Rerequest is the MoldUDP64 re-request server. Zero: no re-requests;
	// a gap is then filled only by late (reordered) packets and otherwise
	// written as a gap frame after GapTimeout.
	Rerequest netip.AddrPort
	// Session to follow; zero: the session of the first packet.
	Session moldudp64.Session
	// Day anchors ITCH timestamps to the trading date (DecoderOptions.Day).
	Day itch.Day
	// GapTimeout bounds how long a missing message is waited for from
	// when the gap is seen (default 5 s with Rerequest, 100 ms without);
	// after it the gap is written as a gap frame and reported.
	GapTimeout time.Duration
	// MaxAttempts is the number of re-request rounds for the oldest missing
	// message before it is declared lost (default 8).
	MaxAttempts int
	// RequestDelay is how long a gap may stay open before it is first
	// re-requested: room for reordering (default 1 ms).
	RequestDelay time.Duration
	// Batch is the number of packets read per recvmmsg (default 64);
	// RecvBuffer the socket receive buffer in bytes (default 32 MiB).
	Batch      int // packets per recvmmsg
	RecvBuffer int // SO_RCVBUF in bytes
	// Orders sizes the order table (DecoderOptions.Orders).
	Orders int
	// Spin makes Poll busy-poll the sockets instead of sleeping in ppoll:
	// lower latency, one core busy.
	Spin bool
	// FirstSeq is the first sequence number of a journal that holds no
	// message yet (default 1: everything from the start of the session is
	// re-requested if the feed joins late).
	FirstSeq uint64
	// Logf receives gap reports and other notes (nil: discarded).
	Logf func(format string, args ...any)
}

// Gap is a range of MoldUDP64 messages that could not be recovered. It was
// written to the journal as a gap frame (Seq).
type Gap struct {
	First, Last uint64 // inclusive
	Seq         uint64 // the gap frame's seq in the journal
}

// Resume says where a Feed continues its journal.
type Resume struct {
	// Next is the first MoldUDP64 sequence number the Feed delivers.
	Next uint64
	// Skip is the number of frames of message Next already in the journal
	// (a message that became several frames may have been cut by a crash
	// between them; its remaining frames are written when it arrives
	// again).
	Skip int
	// Frames is the number of frames read to rebuild the decoder's state.
	Frames uint64
	// Orders is the number of resting orders known after the rebuild.
	Orders int
}

// Stats count what a Feed did.
type Stats struct {
	Packets      uint64             // packets read (live and re-request answers)
	Answers      uint64             // packets from the re-request server
	Stray        uint64             // packets on the re-request socket from another address, ignored
	Truncated    uint64             // packets longer than the read buffer, ignored
	Frames       uint64             // frames staged
	Gaps         uint64             // gap frames written
	Lost         uint64             // messages in them
	Refused      uint64             // instrument definitions the writer refused (logged)
	Sessions     uint64             // packets of another session seen (logged once per session)
	Sequencer    moldudp64.Counters // the Sequencer's counters (messages, duplicates, re-requests, recovered, …)
	Decoder      DecoderCounters    // the Decoder's counters (unknown orders, malformed, …)
	EndOfSession bool               // the end of the session was delivered
}

// Feed is a NASDAQ TotalView-ITCH 5.0 over MoldUDP64 feed handler that
// writes a journal: it receives the feed in batches (recvmmsg), puts every
// message in sequence order exactly once (re-requesting gaps, see
// moldudp64.Sequencer), decodes it (Decoder) and stages its frames with the
// exchange time as ts and a source trailer holding the kernel receive time
// and the message's sequence number (writer.StageSource); staged frames
// are published after every batch. A gap that cannot be filled within
// GapTimeout is written as a gap frame (journal.Gap) and logged.
//
// New resumes a journal the Feed (or a killed one) wrote: it rebuilds the
// decoder's state from the journal's frames and continues at the last
// message it holds (see Resume).
//
// A Feed is driven by one goroutine (Run or Poll); Close from another.
type Feed struct {
	o     Options
	w     *writer.Writer
	dec   *Decoder
	seq   *moldudp64.Sequencer
	conn  *moldudp64.Conn
	rc    *moldudp64.RequestClient
	batch *moldudp64.Batch
	fds   []unix.PollFd

	resume   Resume
	skipSeq  uint64
	skipN    int
	readTime int64 // wall clock of the current read: receive time when the kernel gives none
	staged   bool
	stop     atomic.Bool
	ended    bool
	gaps     []Gap
	logged   uint64 // malformed messages logged
	st       Stats
	gapBuf   [32]byte
	pend     pendingGap
}

type pendingGap struct {
	ok          bool
	first, last uint64
	session     moldudp64.Session
}

// maxGapList bounds Gaps(): the count is in Stats either way.
const maxGapList = 4096

// New opens the sockets and prepares a Feed that appends to w, resuming
// after what w's journal holds. The caller keeps w (and closes it after
// the Feed).
func New(w *writer.Writer, o Options) (*Feed, error) {
	if !o.Listen.IsValid() {
		return nil, errors.New("feed: Options.Listen is required")
	}
	if o.Batch <= 0 {
		o.Batch = 64
	}
	if o.RecvBuffer <= 0 {
		o.RecvBuffer = 32 << 20
	}
	if o.GapTimeout <= 0 {
		o.GapTimeout = 100 * time.Millisecond
		if o.Rerequest.IsValid() {
			o.GapTimeout = 5 * time.Second
		}
	}
	if o.FirstSeq == 0 {
		o.FirstSeq = 1
	}
	if o.Logf == nil {
		o.Logf = func(string, ...any) {}
	}
	f := &Feed{o: o, w: w, dec: NewDecoder(DecoderOptions{Day: o.Day, Orders: o.Orders})}
	if err := w.Publish(); err != nil {
		return nil, err
	}
	res, err := rebuild(w.Dir(), f.dec, o.FirstSeq)
	if err != nil {
		return nil, err
	}
	f.resume, f.skipSeq, f.skipN = res, res.Next, res.Skip

	group := o.Group.IsValid()
	f.conn, err = moldudp64.Listen(o.Listen, moldudp64.ConnOptions{RecvBuffer: o.RecvBuffer, Timestamps: true, ReuseAddr: group})
	if err != nil {
		return nil, err
	}
	if group {
		if err := f.conn.JoinGroup(o.Group, o.Interface); err != nil {
			f.conn.Close()
			return nil, err
		}
	}
	so := moldudp64.SequencerOptions{Session: o.Session, Next: res.Next, GapTimeout: o.GapTimeout,
		RequestDelay: o.RequestDelay, MaxAttempts: o.MaxAttempts}
	if o.Rerequest.IsValid() {
		local := netip.AddrPortFrom(netip.IPv4Unspecified(), 0)
		if ip := o.Listen.Addr(); !ip.IsMulticast() && !ip.IsUnspecified() {
			local = netip.AddrPortFrom(ip, 0)
		}
		c, err := moldudp64.Listen(local, moldudp64.ConnOptions{RecvBuffer: o.RecvBuffer, Timestamps: true})
		if err != nil {
			f.conn.Close()
			return nil, err
		}
		f.rc = moldudp64.NewRequestClient(c, o.Rerequest)
		so.Requester = f.rc
	}
	f.seq, err = moldudp64.NewSequencer(f.handle, so)
	if err != nil {
		f.Close()
		return nil, err
	}
	f.batch = moldudp64.NewBatch(o.Batch, 2048)
	f.fds = append(f.fds, unix.PollFd{Fd: int32(f.conn.Fd()), Events: unix.POLLIN})
	if f.rc != nil {
		f.fds = append(f.fds, unix.PollFd{Fd: int32(f.rc.Conn().Fd()), Events: unix.POLLIN})
	}
	return f, nil
}

// rebuild reads the journal in dir and applies its frames to dec, holding
// back the frames of the last message (they are written again, in part or
// not at all, when it is delivered again).
func rebuild(dir string, dec *Decoder, first uint64) (Resume, error) {
	res := Resume{Next: first}
	r, err := reader.Open(dir, reader.Options{})
	if err != nil {
		return res, fmt.Errorf("feed: reading the journal to resume: %w", err)
	}
	defer r.Close()
	type held struct {
		typ     journal.MsgType
		instr   uint32
		payload [32]byte
		n       int
	}
	var group []held
	var groupSeq uint64
	flush := func() {
		for i := range group {
			dec.Apply(group[i].typ, group[i].instr, group[i].payload[:group[i].n])
		}
		group = group[:0]
	}
	for {
		fr, ok, err := r.TryNext()
		if err != nil {
			return res, fmt.Errorf("feed: reading the journal to resume: %w", err)
		}
		if !ok {
			break
		}
		res.Frames++
		if fr.Flags&journal.FrameSource == 0 { // re-stated definitions, frames of other writers
			dec.Apply(fr.Type, fr.Instrument, fr.Payload)
			continue
		}
		if len(group) == 0 || fr.SourceSeq != groupSeq {
			flush()
			groupSeq = fr.SourceSeq
		}
		h := held{typ: fr.Type, instr: fr.Instrument, n: min(len(fr.Payload), 32)}
		copy(h.payload[:], fr.Payload)
		group = append(group, h)
	}
	switch {
	case len(group) == 0:
	case len(group) == 1 && group[0].typ == journal.TypeGap:
		flush()
		res.Next = groupSeq + 1 // a gap frame's source_seq is its last lost message
	default:
		res.Next, res.Skip = groupSeq, len(group)
	}
	res.Orders = dec.Orders()
	return res, nil
}

// Resume returns where the Feed continues its journal.
func (f *Feed) Resume() Resume { return f.resume }

// LocalAddr returns the address the live feed socket is bound to.
func (f *Feed) LocalAddr() netip.AddrPort { return f.conn.LocalAddr() }

// Decoder returns the Feed's decoder.
func (f *Feed) Decoder() *Decoder { return f.dec }

// Next returns the sequence number of the next message to deliver: every
// message before it was written (or written as a gap).
func (f *Feed) Next() uint64 { return f.seq.Next() }

// Ended reports whether the session's end was delivered.
func (f *Feed) Ended() bool { return f.ended }

// Gaps returns the gaps written so far (at most the first 4096).
func (f *Feed) Gaps() []Gap { return f.gaps }

// Stats returns the counters.
func (f *Feed) Stats() Stats {
	s := f.st
	s.Sequencer = f.seq.Counters()
	s.Decoder = f.dec.Counters()
	s.EndOfSession = f.ended
	return s
}

// Run polls until the session ends (nil), ctx is done (ctx.Err()) or an
// error (a journal write, a socket). Staged frames are published before it
// returns.
func (f *Feed) Run(ctx context.Context) error {
	done := make(chan struct{})
	defer close(done)
	go func() {
		select {
		case <-ctx.Done():
			f.stop.Store(true)
		case <-done:
		}
	}()
	for !f.ended {
		if f.stop.Load() {
			return errors.Join(ctx.Err(), f.flushGap(), f.publish())
		}
		if _, err := f.Poll(50 * time.Millisecond); err != nil {
			return err
		}
	}
	return f.publish()
}

// Poll reads every packet waiting on the feed and re-request sockets,
// puts their messages in order into the journal and publishes them; if
// none was waiting it waits up to timeout (less when a re-request or a gap
// timeout is due; not at all with Options.Spin) and reads again. It returns
// the number of packets read.
func (f *Feed) Poll(timeout time.Duration) (int, error) {
	n, err := f.drain()
	if err != nil {
		return n, err
	}
	if n == 0 && !f.ended && !f.o.Spin {
		wait := int64(timeout)
		if d := f.seq.NextDeadline() - clock.Nanotime(); d < wait {
			wait = max(d, 0)
		}
		if wait > 0 {
			ok, err := ppoll(f.fds, wait)
			if err != nil {
				return 0, err
			}
			if ok {
				if n, err = f.drain(); err != nil {
					return n, err
				}
			}
		}
	}
	if err := f.seq.Tick(); err != nil {
		return n, err
	}
	if n == 0 {
		if err := f.flushGap(); err != nil {
			return n, err
		}
	}
	return n, f.publish()
}

func ppoll(fds []unix.PollFd, ns int64) (bool, error) {
	ts := unix.NsecToTimespec(ns)
	for {
		n, err := unix.Ppoll(fds, &ts, nil)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return false, fmt.Errorf("feed: ppoll: %w", err)
		}
		return n > 0, nil
	}
}

// drain reads both sockets until neither has a packet waiting (at most 64
// rounds, so timers still run under a flood), publishing after each round.
func (f *Feed) drain() (int, error) {
	total := 0
	for round := 0; round < 64; round++ {
		n, err := f.read(f.conn, false)
		if err != nil {
			return total, err
		}
		total += n
		m := 0
		if f.rc != nil {
			if m, err = f.read(f.rc.Conn(), true); err != nil {
				return total, err
			}
			total += m
		}
		if err := f.publish(); err != nil {
			return total, err
		}
		if n < f.batch.Cap() && m < f.batch.Cap() {
			break
		}
	}
	return total, nil
}

func (f *Feed) read(c *moldudp64.Conn, answers bool) (int, error) {
	n, err := c.Read(f.batch)
	if err != nil || n == 0 {
		return 0, err
	}
	f.readTime = time.Now().UnixNano()
	f.st.Packets += uint64(n)
	for i := 0; i < n; i++ {
		if f.batch.Truncated(i) {
			f.st.Truncated++
			continue
		}
		p, t := f.batch.Packet(i), f.batch.Time(i)
		if t == 0 {
			t = f.readTime
		}
		if answers {
			f.st.Answers++
			if f.batch.From(i) != f.rc.Server() {
				f.st.Stray++
				continue
			}
			err = f.seq.PushRetransmit(p, t)
		} else {
			err = f.seq.Push(p, t)
		}
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

// Push hands the Feed one packet as if it had arrived on the live socket
// at recvTime (Unix ns; 0: now) and stages what it delivers; Flush
// publishes. Tests and benchmarks drive the decode and append path with it.
func (f *Feed) Push(pkt []byte, recvTime int64) error {
	if recvTime == 0 {
		recvTime = time.Now().UnixNano()
	}
	f.readTime = recvTime
	return f.seq.Push(pkt, recvTime)
}

// Flush writes a pending gap frame and publishes the staged frames.
func (f *Feed) Flush() error {
	if err := f.flushGap(); err != nil {
		return err
	}
	return f.publish()
}

func (f *Feed) publish() error {
	if !f.staged {
		return nil
	}
	f.staged = false
	return f.w.Publish()
}

// handle is the Sequencer's handler: every message in order exactly once,
// gaps, the end of the session.
func (f *Feed) handle(e *moldudp64.Event) error {
	switch e.Kind {
	case moldudp64.EventMessage:
		if err := f.flushGap(); err != nil {
			return err
		}
		frames, err := f.dec.Decode(e.Msg)
		if err != nil {
			if f.logged < 100 {
				f.logged++
				f.o.Logf("message %d: %v (no frame; counted)", e.Seq, err)
			}
			return nil
		}
		skip := 0
		if e.Seq == f.skipSeq && f.skipN > 0 {
			skip, f.skipN = min(f.skipN, len(frames)), 0
		}
		recv := e.RecvTime
		if recv == 0 {
			recv = f.readTime
		}
		for i := skip; i < len(frames); i++ {
			fr := &frames[i]
			if _, err := f.w.StageSource(fr.Type, fr.Instrument, fr.TS, fr.Payload, recv, e.Seq); err != nil {
				if errors.Is(err, writer.ErrDefinition) {
					f.st.Refused++
					f.o.Logf("message %d: %v", e.Seq, err)
					continue
				}
				return err
			}
			f.st.Frames++
			f.staged = true
		}
	case moldudp64.EventGap:
		// Adjacent gap events (the Sequencer makes room one message at a
		// time when its buffer overflows) become one gap frame, written
		// before the next message or when the feed goes idle.
		if f.pend.ok && e.Seq == f.pend.last+1 && e.Session == f.pend.session {
			f.pend.last = e.Last
			return nil
		}
		if err := f.flushGap(); err != nil {
			return err
		}
		f.pend = pendingGap{ok: true, first: e.Seq, last: e.Last, session: e.Session}
	case moldudp64.EventEndOfSession:
		if err := f.flushGap(); err != nil {
			return err
		}
		f.ended = true
		f.o.Logf("end of session %q at message %d", e.Session.String(), e.Seq)
	case moldudp64.EventSessionChange:
		f.st.Sessions++
		f.o.Logf("packets of another session %q ignored (following %q)", e.Session.String(), f.seq.Session().String())
	}
	return nil
}

// flushGap writes the pending gap as a gap frame and reports it.
func (f *Feed) flushGap() error {
	if !f.pend.ok {
		return nil
	}
	p := f.pend
	f.pend.ok = false
	g := journal.Gap{First: p.first, Count: p.last - p.first + 1}
	copy(g.Source[:], p.session.String())
	ts := f.w.LastTime()
	if f.w.LastSeq() == 0 {
		ts = f.o.Day.Midnight()
	}
	recv := f.readTime
	if recv == 0 {
		recv = time.Now().UnixNano()
	}
	seq, err := f.w.StageSource(journal.TypeGap, 0, ts, g.Encode(f.gapBuf[:]), recv, p.last)
	if err != nil {
		return err
	}
	f.staged = true
	f.st.Gaps++
	f.st.Lost += g.Count
	if len(f.gaps) < maxGapList {
		f.gaps = append(f.gaps, Gap{First: p.first, Last: p.last, Seq: seq})
	}
	f.o.Logf("GAP: session %q messages %d..%d (%d) could not be recovered; written as gap frame seq %d",
		p.session.String(), p.first, p.last, g.Count, seq)
	return nil
}

// Close closes the sockets (not the writer). Call it after Run returned.
func (f *Feed) Close() error {
	var errs []error
	if f.conn != nil {
		errs = append(errs, f.conn.Close())
	}
	if f.rc != nil {
		errs = append(errs, f.rc.Conn().Close())
	}
	return errors.Join(errs...)
}
