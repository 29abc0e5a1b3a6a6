package ship

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/mdjournal/mdjournal/booksnap"
	"github.com/mdjournal/mdjournal/journal"
	"github.com/mdjournal/mdjournal/reader"
	"github.com/mdjournal/mdjournal/writer"
)

// DefaultMaxPending is the default number of messages a mirror's consumer
// buffers.
const DefaultMaxPending = 8

// MirrorOptions configure a Mirror. Stream is required.
type MirrorOptions struct {
	Stream  string
	Subject string // default DefaultSubject(Stream)
	// Writer configures the replica's writer (segment size, durability,
	// permissions). The mirror sets JournalID and FirstSeq from the first
	// message when it creates the replica, and always NoRestate: the
	// origin's re-stated definitions arrive as frames.
	Writer writer.Options
	// Snapshot, if set, keeps an order-book snapshot file of the replica
	// (booksnap), so late joiners on the replica host start from it.
	Snapshot *booksnap.Config
	// MaxPending bounds the messages the consumer buffers (default
	// DefaultMaxPending): memory is about MaxPending times the shipper's
	// batch size.
	MaxPending int
	// StopAt makes Run return nil once the replica holds this seq (0: run
	// until the context is done).
	StopAt uint64
	// Retry is the first pause after a transient failure; it doubles to
	// 5 s. Default 100 ms.
	Retry time.Duration
	// Logf receives notes (resumes, transient failures). Nil discards them.
	Logf func(format string, args ...any)
}

// MirrorStats are counters since the Mirror was made.
type MirrorStats struct {
	Frames    uint64 // frames written to the replica
	Messages  uint64 // messages applied
	LastSeq   uint64 // the replica's last seq
	StreamSeq uint64 // stream seq of the last message applied
	Restarts  uint64 // consumer restarts after transient failures
}

// Mirror copies a shipped journal from a JetStream stream into a local
// replica journal with the same seqs, timestamps, types, flags, payloads
// and source trailers (writer.Copy). It checks every message's headers and
// every frame's CRC, content and seq continuity; a gap, a duplicate, a
// damaged message or another journal's message stops it with a *RangeError
// naming the seq range, never a skip. A restarted mirror resumes after the
// replica's last seq, whatever the stream's message boundaries.
type Mirror struct {
	dir  string
	js   jetstream.JetStream
	opts MirrorOptions

	w        *writer.Writer
	snap     *booksnap.Maintainer
	frames   []journal.Frame
	prevSeg  uint64
	resuming bool
	stats    struct {
		frames, messages, last, streamSeq, restarts atomic.Uint64
	}
}

// NewMirror returns a mirror of opts.Stream into the replica journal in dir
// (created at the first message if it does not exist).
func NewMirror(dir string, js jetstream.JetStream, opts MirrorOptions) (*Mirror, error) {
	if opts.Stream == "" {
		return nil, errors.New("ship: MirrorOptions.Stream is required")
	}
	if opts.Subject == "" {
		opts.Subject = DefaultSubject(opts.Stream)
	}
	if opts.MaxPending <= 0 {
		opts.MaxPending = DefaultMaxPending
	}
	if opts.Retry <= 0 {
		opts.Retry = 100 * time.Millisecond
	}
	if opts.Logf == nil {
		opts.Logf = func(string, ...any) {}
	}
	opts.Writer.NoRestate = true
	return &Mirror{dir: dir, js: js, opts: opts}, nil
}

// Stats returns the counters (safe from any goroutine).
func (m *Mirror) Stats() MirrorStats {
	return MirrorStats{Frames: m.stats.frames.Load(), Messages: m.stats.messages.Load(), LastSeq: m.stats.last.Load(),
		StreamSeq: m.stats.streamSeq.Load(), Restarts: m.stats.restarts.Load()}
}

// mirrorFatal marks an error of the replica or of the data: Run returns it.
type mirrorFatal struct{ err error }

func (e mirrorFatal) Error() string { return e.err.Error() }
func (e mirrorFatal) Unwrap() error { return e.err }

// Run mirrors until ctx is done (it returns nil), StopAt is reached (nil),
// or a finding or replica failure stops it: a *RangeError (ErrGap,
// ErrDuplicate, ErrDamaged, ErrForeign) or the replica writer's error.
// Transient failures (the server down, a consumer reset) restart the
// consumer after the replica's last seq. The replica is closed when Run
// returns.
func (m *Mirror) Run(ctx context.Context) (err error) {
	defer func() { err = errors.Join(err, m.closeReplica()) }()
	if err := m.openReplica(); err != nil && !errors.Is(err, journal.ErrNotFound) {
		return err
	}
	pause := m.opts.Retry
	for {
		applied, err := m.session(ctx)
		if ctx.Err() != nil || err == nil {
			return nil
		}
		var mf mirrorFatal
		if errors.As(err, &mf) {
			return mf.err
		}
		if applied {
			pause = m.opts.Retry
		}
		m.stats.restarts.Add(1)
		m.opts.Logf("mirror: %v; resuming after seq %d in %v", err, m.lastSeq(), pause)
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

func (m *Mirror) lastSeq() uint64 {
	if m.w == nil {
		return 0
	}
	return m.w.LastSeq()
}

func (m *Mirror) done() bool {
	return m.opts.StopAt > 0 && m.w != nil && m.w.LastSeq() >= m.opts.StopAt
}

// session consumes from the message holding the replica's next seq until a
// failure; applied says whether it applied a message.
func (m *Mirror) session(ctx context.Context) (applied bool, err error) {
	if m.done() {
		return false, nil
	}
	st, err := m.js.Stream(ctx, m.opts.Stream)
	if err != nil {
		return false, err
	}
	var start uint64 = 1
	if m.w != nil {
		if start, err = locate(ctx, st, m.opts.Subject, m.w.LastSeq()+1); err != nil {
			var re *RangeError
			if errors.As(err, &re) {
				return false, mirrorFatal{err}
			}
			return false, err
		}
	} else if info := st.CachedInfo(); info != nil && info.State.FirstSeq > 0 {
		start = info.State.FirstSeq
	}
	cons, err := m.js.OrderedConsumer(ctx, m.opts.Stream, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{m.opts.Subject},
		DeliverPolicy:  jetstream.DeliverByStartSequencePolicy,
		OptStartSeq:    start,
	})
	if err != nil {
		return false, err
	}
	it, err := cons.Messages(jetstream.PullMaxMessages(m.opts.MaxPending))
	if err != nil {
		return false, err
	}
	defer it.Stop()
	m.resuming = true
	m.opts.Logf("mirror: stream %s → %s: resuming after seq %d from stream seq %d", m.opts.Stream, m.dir, m.lastSeq(), start)
	for {
		msg, err := it.Next(jetstream.NextContext(ctx))
		if err != nil {
			return applied, err
		}
		if err := m.apply(msg); err != nil {
			return applied, mirrorFatal{err}
		}
		applied = true
		if m.done() {
			return true, nil
		}
	}
}

// apply checks one message and copies its new frames into the replica.
func (m *Mirror) apply(msg jetstream.Msg) error {
	md, err := msg.Metadata()
	if err != nil {
		return err
	}
	sseq := md.Sequence.Stream
	next := m.lastSeq() + 1
	meta, err := ParseMeta(msg.Headers())
	if err != nil {
		return rangeErr(ErrDamaged, next, next, sseq, "headers: %v", err)
	}
	if m.w == nil {
		if err := m.createReplica(meta); err != nil {
			return err
		}
		next = meta.First
	}
	if meta.JournalID != m.w.JournalID() {
		return rangeErr(ErrForeign, meta.First, meta.Last, sseq, "message of journal %016x, the replica is journal %016x", meta.JournalID, m.w.JournalID())
	}
	frames, err := DecodeFrames(meta, msg.Data(), m.frames)
	m.frames = frames
	if err != nil {
		var re *RangeError
		if errors.As(err, &re) {
			re.StreamSeq = sseq
		}
		return err
	}
	switch {
	case meta.First > next:
		return rangeErr(ErrGap, next, meta.First-1, sseq, "the replica ends at seq %d, the next message starts at %d", next-1, meta.First)
	case meta.First < next && !m.resuming:
		return rangeErr(ErrDuplicate, meta.First, min(meta.Last, next-1), sseq, "the replica already holds up to seq %d", next-1)
	case meta.First < next:
		// The message a restarted mirror resumes in: what the replica holds
		// of it must be identical.
		if err := m.sameAsReplica(meta, msg.Data(), frames, next-1, sseq); err != nil {
			return err
		}
	}
	m.resuming = false
	if meta.Last >= next {
		if m.prevSeg != 0 && meta.Segment != m.prevSeg {
			if err := m.w.Roll(); err != nil { // keep the origin's segment boundaries
				return err
			}
		}
		for i := range frames {
			if frames[i].Seq >= next {
				if err := m.w.Copy(&frames[i]); err != nil {
					return err
				}
			}
		}
		if err := m.w.Publish(); err != nil {
			return err
		}
		m.stats.frames.Add(meta.Last - next + 1)
	}
	m.prevSeg = meta.Segment
	m.stats.messages.Add(1)
	m.stats.last.Store(m.w.LastSeq())
	m.stats.streamSeq.Store(sseq)
	return nil
}

// sameAsReplica compares the frames of a message up to seq upTo with the
// replica's.
func (m *Mirror) sameAsReplica(meta Meta, data []byte, frames []journal.Frame, upTo, sseq uint64) error {
	_, segs, err := readOrigin(m.dir)
	if err != nil {
		return err
	}
	from := max(meta.First, segs[0].first)
	if from > upTo {
		return nil
	}
	r, err := reader.Open(m.dir, reader.Options{From: reader.Seq(from)})
	if err != nil {
		return err
	}
	defer r.Close()
	buf := make([]byte, journal.MaxFrameSize)
	for i := range frames {
		sf := &frames[i]
		if sf.Seq < from || sf.Seq > upTo {
			continue
		}
		f, ok, err := r.TryNext()
		if err != nil {
			return err
		}
		if !ok || f.Seq != sf.Seq {
			return fmt.Errorf("mirror: replica %s does not hold seq %d it reported as its last", m.dir, upTo)
		}
		n := journal.PutStored(buf, &f)
		if !bytes.Equal(buf[:n], data[sf.Offset:sf.Offset+int64(n)]) {
			return rangeErr(ErrDamaged, sf.Seq, sf.Seq, sseq, "seq %d in the stream differs from the replica's copy", sf.Seq)
		}
	}
	return nil
}

// openReplica opens an existing replica; journal.ErrNotFound if there is
// none yet.
func (m *Mirror) openReplica() error {
	if _, _, err := readOrigin(m.dir); err != nil {
		return err
	}
	return m.openWriter(m.opts.Writer)
}

func (m *Mirror) createReplica(meta Meta) error {
	o := m.opts.Writer
	o.JournalID, o.FirstSeq = meta.JournalID, meta.First
	if err := m.openWriter(o); err != nil {
		return err
	}
	m.opts.Logf("mirror: created replica %s of journal %016x at seq %d", m.dir, meta.JournalID, meta.First)
	return nil
}

func (m *Mirror) openWriter(o writer.Options) error {
	if m.opts.Snapshot == nil {
		w, err := writer.Open(m.dir, o)
		if err != nil {
			return err
		}
		m.w = w
	} else {
		w, snap, err := booksnap.OpenWriter(m.dir, o, *m.opts.Snapshot)
		if err != nil {
			return err
		}
		m.w, m.snap = w, snap
	}
	m.stats.last.Store(m.w.LastSeq())
	return nil
}

func (m *Mirror) closeReplica() error {
	var err error
	if m.w != nil {
		err = m.w.Close()
		m.w = nil
	}
	if m.snap != nil {
		err = errors.Join(err, m.snap.Close())
		m.snap = nil
	}
	return err
}
