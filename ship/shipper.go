package ship

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/mdjournal/mdjournal/journal"
	"github.com/mdjournal/mdjournal/reader"
	"github.com/mdjournal/mdjournal/wait"
)

// Defaults of Options.
const (
	DefaultBatchBytes  = 512 << 10
	DefaultMaxInFlight = 8
	DefaultAckTimeout  = 10 * time.Second
	DefaultCommitEvery = 250 * time.Millisecond
	// headerBudget is what a message's headers may take beside its frames.
	headerBudget = 1 << 10
)

// Options configure a Shipper. Stream is required.
type Options struct {
	Stream  string
	Subject string // default DefaultSubject(Stream)
	// Name is the origin's named reader (format.md §13) the shipper follows
	// with; default "ship-" + Stream. Its position, committed only once the
	// stream acknowledged everything up to it, shows the shipper's lag
	// (journalctl stat) and tells a restarted shipper what the stream had
	// acknowledged (ErrLost when the stream no longer holds it).
	Name string
	// BatchBytes bounds the frames of one message (default
	// DefaultBatchBytes; at least journal.MaxFrameSize, so any frame fits).
	BatchBytes int
	// Linger is how long a batch waits for more frames once it has one
	// (0: send what is there as soon as the reader has nothing more).
	Linger time.Duration
	// MaxInFlight bounds the messages published and not yet acknowledged
	// (default DefaultMaxInFlight): memory is (MaxInFlight+1)·BatchBytes.
	MaxInFlight int
	// AckTimeout is how long the shipper waits for one acknowledgement
	// before it re-reads the stream's state and resumes from it (default
	// DefaultAckTimeout).
	AckTimeout time.Duration
	// CommitEvery is how often, under continuous load, the shipper waits
	// for every acknowledgement to commit the named reader's position
	// (default DefaultCommitEvery; an idle shipper commits at once).
	CommitEvery time.Duration
	// From is the first seq shipped to an empty stream (0: the origin's
	// first retained frame). A stream that holds frames decides.
	From uint64
	// Wait is how the named reader idles at the end of the journal.
	Wait wait.Strategy
	// OpenTimeout is how long to wait for the origin journal to be
	// created (0: it must exist).
	OpenTimeout time.Duration
	// Retry is the first pause after a transient failure (a server down,
	// a timeout); it doubles to 5 s. Default 100 ms.
	Retry time.Duration
	// Logf receives notes (resumes, transient failures). Nil discards
	// them. Nothing logged carries a credential.
	Logf func(format string, args ...any)
}

// ShipStats are counters since the Shipper was made.
type ShipStats struct {
	Frames    uint64 // frames acknowledged by the stream
	Messages  uint64 // messages acknowledged
	Bytes     uint64 // frame bytes acknowledged
	AckedSeq  uint64 // last journal seq the stream acknowledged (or held at start)
	StreamSeq uint64 // stream seq of the last acknowledged message
	Resyncs   uint64 // times the shipper re-read the stream's state after a failure
}

// Shipper follows a journal and publishes its frames, verbatim, to a
// JetStream stream (see the package comment for the protocol).
type Shipper struct {
	dir   string
	js    jetstream.JetStream
	opts  Options
	stats struct {
		frames, messages, bytes, acked, streamSeq, resyncs atomic.Uint64
	}
}

// NewShipper returns a shipper of the journal in dir. The stream must exist
// (EnsureStream).
func NewShipper(dir string, js jetstream.JetStream, opts Options) (*Shipper, error) {
	if opts.Stream == "" {
		return nil, errors.New("ship: Options.Stream is required")
	}
	if opts.Subject == "" {
		opts.Subject = DefaultSubject(opts.Stream)
	}
	if opts.Name == "" {
		opts.Name = "ship-" + opts.Stream
	}
	if !reader.ValidName(opts.Name) {
		return nil, fmt.Errorf("ship: reader name %q: letters, digits, '.', '_' and '-', at most 64", opts.Name)
	}
	if opts.BatchBytes == 0 {
		opts.BatchBytes = DefaultBatchBytes
	}
	if opts.BatchBytes < journal.MaxFrameSize {
		return nil, fmt.Errorf("ship: batch bytes %d below the largest frame (%d)", opts.BatchBytes, journal.MaxFrameSize)
	}
	if opts.MaxInFlight <= 0 {
		opts.MaxInFlight = DefaultMaxInFlight
	}
	if opts.AckTimeout <= 0 {
		opts.AckTimeout = DefaultAckTimeout
	}
	if opts.CommitEvery <= 0 {
		opts.CommitEvery = DefaultCommitEvery
	}
	if opts.Retry <= 0 {
		opts.Retry = 100 * time.Millisecond
	}
	if opts.Logf == nil {
		opts.Logf = func(string, ...any) {}
	}
	return &Shipper{dir: dir, js: js, opts: opts}, nil
}

// Stats returns the counters (safe from any goroutine).
func (s *Shipper) Stats() ShipStats {
	return ShipStats{Frames: s.stats.frames.Load(), Messages: s.stats.messages.Load(), Bytes: s.stats.bytes.Load(),
		AckedSeq: s.stats.acked.Load(), StreamSeq: s.stats.streamSeq.Load(), Resyncs: s.stats.resyncs.Load()}
}

// fatal reports whether err must stop the shipper rather than make it
// re-read the stream and resume.
func fatal(err error) bool {
	var re *RangeError
	var ce *journal.CorruptionError
	return errors.As(err, &re) || errors.As(err, &ce) || errors.Is(err, ErrStreamConfig) ||
		errors.Is(err, reader.ErrNameInUse) || errors.Is(err, reader.ErrReissued) || errors.Is(err, reader.ErrOutOfRange) ||
		errors.Is(err, journal.ErrNotFound)
}

// Run ships until ctx is done (then it returns nil) or an integrity finding
// stops it (a *RangeError: ErrReissued, ErrLost, ErrForeign) or the stream
// cannot be shipped to (ErrStreamConfig). Transient failures — the server
// down, a timeout, a refused publish — make it re-read the stream's state
// and resume from what the stream holds.
func (s *Shipper) Run(ctx context.Context) error {
	pause := s.opts.Retry
	for {
		progressed, err := s.session(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if err == nil || fatal(err) {
			return err
		}
		if progressed {
			pause = s.opts.Retry
		}
		s.stats.resyncs.Add(1)
		s.opts.Logf("ship: %v; re-reading the stream's state in %v", err, pause)
		t := time.NewTimer(pause)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
		pause = min(2*pause, 5*time.Second)
	}
}

// flight is a published message waiting for its acknowledgement.
type flight struct {
	fut         jetstream.PubAckFuture
	first, last uint64
	streamSeq   uint64 // the stream seq it must be stored at
	bytes       int
	buf         int // index of its buffer
}

// session is one run of the shipper from the stream's state: it returns on
// the first failure. Buffers are never reused across sessions: a message
// abandoned by a failed session may still be referenced by the client.
type session struct {
	s      *Shipper
	r      *reader.Reader
	st     jetstream.Stream
	jid    uint64
	bufs   [][]byte
	free   []int
	window []flight
	timer  *time.Timer

	streamSeq  uint64 // last stream seq published (or found)
	lastID     string // msg id of that message ("" when not ours)
	acked      uint64 // last journal seq acknowledged
	read       uint64 // last journal seq read from the origin
	committed  uint64
	lastCommit time.Time

	carry    []byte // a frame read but not yet placed in a batch
	carrySeq uint64
	carrySeg uint64
	carryEp  uint32
	hasCarry bool
	progress bool
}

func (s *Shipper) session(ctx context.Context) (bool, error) {
	st, err := s.js.Stream(ctx, s.opts.Stream)
	if err != nil {
		return false, err
	}
	t, err := readTail(ctx, st)
	if err != nil {
		return false, err
	}
	jid, segs, err := readOrigin(s.dir)
	for wait := time.Now().Add(s.opts.OpenTimeout); errors.Is(err, journal.ErrNotFound) && time.Now().Before(wait); {
		select {
		case <-ctx.Done():
			return false, ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
		jid, segs, err = readOrigin(s.dir)
	}
	if err != nil {
		return false, fmt.Errorf("ship: origin %s: %w", s.dir, err)
	}
	ss := &session{s: s, st: st, jid: jid, streamSeq: t.lastSeq, timer: time.NewTimer(time.Hour)}
	ss.timer.Stop()
	defer ss.close()
	from := reader.Start()
	if s.opts.From > 0 {
		from = reader.Seq(s.opts.From)
	}
	if t.has {
		if err := ss.checkTail(t, segs); err != nil {
			return false, err
		}
		ss.lastID, ss.acked = t.msgID, t.meta.Last
		from = reader.Seq(t.meta.Last + 1)
		s.stats.acked.Store(t.meta.Last)
		s.stats.streamSeq.Store(t.lastSeq)
	}
	if err := ss.openReader(from, t); err != nil {
		return false, err
	}
	s.opts.Logf("ship: %s → stream %s: resuming after seq %d (stream seq %d)", s.dir, s.opts.Stream, ss.acked, ss.streamSeq)
	ss.bufs = make([][]byte, s.opts.MaxInFlight+1)
	for i := range ss.bufs {
		ss.bufs[i] = make([]byte, 0, s.opts.BatchBytes)
		ss.free = append(ss.free, i)
	}
	ss.carry = make([]byte, 0, journal.MaxFrameSize)
	err = ss.loop(ctx)
	if ctx.Err() != nil {
		ss.drain()
	}
	return ss.progress, err
}

// checkTail refuses to continue a stream whose last message is not this
// origin's, or whose frames the origin has since issued again or no
// longer holds identically: never ship other content under a seq already
// shipped.
func (ss *session) checkTail(t tail, segs []originSeg) error {
	m := t.meta
	if m.JournalID != ss.jid {
		return rangeErr(ErrForeign, m.First, m.Last, t.lastSeq, "the stream's last message is journal %016x's, the origin %s is journal %016x", m.JournalID, ss.s.dir, ss.jid)
	}
	if from, ep, ok := reissuedAfter(segs, m.Last, m.Epoch); ok {
		return rangeErr(ErrReissued, from, m.Last, t.lastSeq,
			"shipped in epoch %d, but the origin's epoch %d starts at seq %d: a power cut lost frames the stream holds and the origin issued their seqs again", m.Epoch, ep, from)
	}
	meta := Meta{JournalID: m.JournalID, First: m.First, Last: m.Last, Epoch: m.Epoch, Segment: m.Segment}
	frames, err := DecodeFrames(meta, t.data, nil)
	if err != nil {
		var re *RangeError
		if errors.As(err, &re) {
			re.StreamSeq = t.lastSeq
		}
		return err
	}
	first := m.First
	if segs[0].first > first {
		first = segs[0].first // pruned: compare what the origin still holds
	}
	if first > m.Last {
		return nil
	}
	r, err := reader.Open(ss.s.dir, reader.Options{From: reader.Seq(first)})
	if err != nil {
		return err
	}
	defer r.Close()
	buf := make([]byte, journal.MaxFrameSize)
	for _, sf := range frames {
		if sf.Seq < first {
			continue
		}
		f, ok, err := r.TryNext()
		if err != nil {
			return err
		}
		if !ok {
			return rangeErr(ErrReissued, sf.Seq, m.Last, t.lastSeq, "the stream holds seqs up to %d, the origin only up to %d", m.Last, sf.Seq-1)
		}
		n := journal.PutStored(buf, &f)
		if !bytes.Equal(buf[:n], t.data[sf.Offset:sf.Offset+int64(n)]) {
			return rangeErr(ErrReissued, f.Seq, m.Last, t.lastSeq, "seq %d in the stream differs from the origin's", f.Seq)
		}
	}
	return nil
}

// openReader opens the named reader just after what the stream holds. Its
// stored position P was committed only after the stream acknowledged P: a
// stream that now ends before P lost acknowledged messages (ErrLost).
func (ss *session) openReader(from reader.Position, t tail) error {
	s := ss.s
	var pos uint64
	named, err := reader.ListNamed(s.dir)
	if err != nil {
		return err
	}
	for _, n := range named {
		if n.Name == s.opts.Name {
			pos = n.Seq
		}
	}
	if pos > ss.acked {
		return rangeErr(ErrLost, ss.acked+1, pos, t.lastSeq,
			"the stream acknowledged seqs up to %d (reader %s's committed position) but now holds only up to %d; to ship them again, remove %s",
			pos, s.opts.Name, ss.acked, reader.PosPath(s.dir, s.opts.Name))
	}
	r, err := reader.Open(s.dir, reader.Options{From: from, Name: s.opts.Name, Commit: reader.ExplicitCommit, Wait: s.opts.Wait})
	if err != nil {
		var re *reader.ReissuedError
		if errors.As(err, &re) {
			return rangeErr(ErrReissued, re.From, re.Seq, t.lastSeq, "%v", err)
		}
		return err
	}
	ss.r = r
	ss.committed = pos
	ss.read = pos
	if pos == 0 {
		if v, ok := from.SeqValue(); ok && v > 0 {
			ss.read = v - 1
		}
	}
	// A position behind the stream: read the frames the stream already
	// holds (they were acknowledged, the position was not yet committed).
	for ss.read < ss.acked {
		f, ok, err := r.TryNext()
		if err != nil {
			return err
		}
		if !ok {
			return rangeErr(ErrReissued, ss.read+1, ss.acked, t.lastSeq, "the stream holds seqs up to %d, the origin only up to %d", ss.acked, ss.read)
		}
		ss.read = f.Seq
	}
	if ss.read > 0 && ss.read == ss.acked && ss.committed < ss.acked && t.has {
		if err := r.Commit(); err != nil {
			return err
		}
		ss.committed = ss.acked
	}
	ss.lastCommit = time.Now()
	return nil
}

func (ss *session) close() {
	if ss.r != nil {
		ss.r.Close()
	}
}

// loop builds, publishes and settles batches until a failure or ctx is
// done.
func (ss *session) loop(ctx context.Context) error {
	o := &ss.s.opts
	maxBytes := o.BatchBytes
	if info := ss.st.CachedInfo(); info != nil && info.Config.MaxMsgSize > 0 && int(info.Config.MaxMsgSize)-headerBudget < maxBytes {
		if maxBytes = int(info.Config.MaxMsgSize) - headerBudget; maxBytes < journal.MaxFrameSize {
			return fmt.Errorf("%w: stream %s's max message size %d cannot hold a %d-byte frame and its headers", ErrStreamConfig, o.Stream, info.Config.MaxMsgSize, journal.MaxFrameSize)
		}
	}
	for {
		if err := ss.settle(false); err != nil {
			return err
		}
		// The first frame of a batch: from the carry, or the next frame,
		// waiting for it when there is none (after committing, if idle).
		if !ss.hasCarry {
			f, ok, err := ss.r.TryNext()
			if err != nil {
				return err
			}
			if !ok {
				if err := ss.commitIdle(); err != nil {
					return err
				}
				if f, err = ss.r.NextContext(ctx); err != nil {
					return err
				}
			}
			ss.stash(&f)
		}
		if len(ss.free) == 0 {
			if err := ss.settleOne(); err != nil {
				return err
			}
		}
		bi := ss.free[len(ss.free)-1]
		ss.free = ss.free[:len(ss.free)-1]
		buf := append(ss.bufs[bi][:0], ss.carry...)
		first, last, seg, ep := ss.carrySeq, ss.carrySeq, ss.carrySeg, ss.carryEp
		ss.hasCarry = false
		commitDue := time.Since(ss.lastCommit) >= o.CommitEvery
		var lingerCtx context.Context
		var cancel context.CancelFunc
		for {
			if commitDue && len(buf)+journal.MaxFrameSize > maxBytes {
				break // end without a carry, so the position can be committed
			}
			f, ok, err := ss.r.TryNext()
			if err != nil {
				if cancel != nil {
					cancel()
				}
				return err
			}
			if !ok {
				if o.Linger <= 0 {
					break
				}
				if lingerCtx == nil {
					lingerCtx, cancel = context.WithTimeout(ctx, o.Linger)
				}
				if f, err = ss.r.NextContext(lingerCtx); err != nil {
					if lingerCtx.Err() != nil && ctx.Err() == nil {
						break
					}
					cancel()
					return err
				}
			}
			ep2 := ss.r.Epoch()
			if f.Segment != seg || len(buf)+journal.StoredLen(&f) > maxBytes {
				ss.stash(&f)
				break
			}
			n := len(buf)
			buf = buf[:n+journal.StoredLen(&f)]
			journal.PutStored(buf[n:], &f)
			last, ep = f.Seq, ep2
			ss.read = f.Seq
		}
		if cancel != nil {
			cancel()
		}
		ss.bufs[bi] = buf
		if err := ss.publish(bi, Meta{JournalID: ss.jid, First: first, Last: last, Epoch: ep, Segment: seg}); err != nil {
			return err
		}
		if commitDue {
			if err := ss.commitIdle(); err != nil {
				return err
			}
		}
	}
}

// stash keeps frame f (the reader's, valid until it moves on) as the next
// batch's first frame.
func (ss *session) stash(f *journal.Frame) {
	ss.carry = ss.carry[:journal.StoredLen(f)]
	journal.PutStored(ss.carry, f)
	ss.carrySeq, ss.carrySeg, ss.carryEp, ss.hasCarry = f.Seq, f.Segment, ss.r.Epoch(), true
	ss.read = f.Seq
}

// publish sends buffer bi as the message m, expecting the stream to store
// it right after the last message published.
func (ss *session) publish(bi int, m Meta) error {
	h := m.Header()
	id := MsgID(m.JournalID, m.First, m.Last, ss.streamSeq+1)
	h[headerMsgID] = []string{id}
	h[headerExpectStream] = []string{ss.s.opts.Stream}
	h[headerExpectSeq] = []string{strconv.FormatUint(ss.streamSeq, 10)}
	if ss.lastID != "" {
		h[headerExpectMsgID] = []string{ss.lastID}
	}
	msg := &nats.Msg{Subject: ss.s.opts.Subject, Data: ss.bufs[bi], Header: h}
	for len(ss.window) >= ss.s.opts.MaxInFlight {
		if err := ss.settleOne(); err != nil {
			return err
		}
	}
	fut, err := ss.s.js.PublishMsgAsync(msg, jetstream.WithRetryAttempts(0))
	if err != nil {
		return fmt.Errorf("publishing seqs %d..%d: %w", m.First, m.Last, err)
	}
	ss.streamSeq++
	ss.lastID = id
	ss.window = append(ss.window, flight{fut: fut, first: m.First, last: m.Last, streamSeq: ss.streamSeq, bytes: len(ss.bufs[bi]), buf: bi})
	return nil
}

// settle takes the acknowledgements that have arrived, oldest first,
// without waiting (wait=false) or until none is outstanding (wait=true).
func (ss *session) settle(wait bool) error {
	for len(ss.window) > 0 {
		fl := &ss.window[0]
		select {
		case ack := <-fl.fut.Ok():
			if err := ss.acked1(fl, ack); err != nil {
				return err
			}
		case err := <-fl.fut.Err():
			return fmt.Errorf("seqs %d..%d not stored: %w", fl.first, fl.last, err)
		default:
			if !wait {
				return nil
			}
			if err := ss.settleOne(); err != nil {
				return err
			}
		}
	}
	return nil
}

// settleOne waits for the oldest outstanding acknowledgement.
func (ss *session) settleOne() error {
	fl := &ss.window[0]
	ss.timer.Reset(ss.s.opts.AckTimeout)
	defer ss.timer.Stop()
	select {
	case ack := <-fl.fut.Ok():
		return ss.acked1(fl, ack)
	case err := <-fl.fut.Err():
		return fmt.Errorf("seqs %d..%d not stored: %w", fl.first, fl.last, err)
	case <-ss.timer.C:
		return fmt.Errorf("seqs %d..%d: no acknowledgement within %v", fl.first, fl.last, ss.s.opts.AckTimeout)
	}
}

// acked1 takes the oldest flight's acknowledgement: the stream must have
// stored it at the expected stream seq (a duplicate was not stored by
// this publish).
func (ss *session) acked1(fl *flight, ack *jetstream.PubAck) error {
	if ack.Duplicate || ack.Sequence != fl.streamSeq || ack.Stream != ss.s.opts.Stream {
		return fmt.Errorf("seqs %d..%d: stream %s answered seq %d (duplicate %v), expected stream seq %d", fl.first, fl.last, ack.Stream, ack.Sequence, ack.Duplicate, fl.streamSeq)
	}
	st := &ss.s.stats
	st.frames.Add(fl.last - fl.first + 1)
	st.messages.Add(1)
	st.bytes.Add(uint64(fl.bytes))
	st.acked.Store(fl.last)
	st.streamSeq.Store(fl.streamSeq)
	ss.acked = fl.last
	ss.progress = true
	ss.free = append(ss.free, fl.buf)
	ss.window[0] = flight{}
	ss.window = ss.window[1:]
	return nil
}

// commitIdle waits for every acknowledgement and commits the named
// reader's position there, when every frame read has been shipped.
func (ss *session) commitIdle() error {
	if err := ss.settle(true); err != nil {
		return err
	}
	ss.lastCommit = time.Now()
	if ss.hasCarry || ss.acked != ss.read || ss.committed == ss.acked || ss.r.LastSeq() != ss.acked {
		return nil
	}
	if err := ss.r.Commit(); err != nil {
		return err
	}
	ss.committed = ss.acked
	return nil
}

// drain waits (bounded) for the outstanding acknowledgements and commits,
// on a clean stop.
func (ss *session) drain() {
	if ss.r == nil {
		return
	}
	if ss.settle(true) == nil && !ss.hasCarry && ss.acked == ss.read && ss.r.LastSeq() == ss.acked && ss.committed != ss.acked && ss.acked > 0 {
		ss.r.Commit()
	}
}
