// Package reader tails a journal: from another process, read-only, live.
//
// A Reader maps segment files with O_RDONLY and PROT_READ, so nothing it does
// can damage the journal. It learns that the next frame is published from
// the frame itself: it loads the frame's commit word atomically and reads
// the frame only when the word is set (format.md §4), touching the segment
// header only to follow a roll. It verifies every frame's CRC-32C, content
// and that sequence numbers continue without a gap: a reader never returns a
// byte that failed its checksum. It follows the writer across segment rolls
// and unmaps segments behind it, so its memory does not grow with the
// journal. A file truncated under it gives a *journal.CorruptionError
// (journal.ErrTruncated), never a SIGBUS crash.
//
// Lifetime of a frame: Frame.Payload aliases the segment mapping (or, for a
// compressed segment, the reader's decompressed image). It stays valid until
// the reader leaves that segment: at the latest until the call to Next or
// TryNext after the one that returned the segment's last frame. Copy what
// you keep longer.
//
// A Reader is used by one goroutine; Interrupt may be called from any.
package reader

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mdjournal/mdjournal/internal/fsx"
	"github.com/mdjournal/mdjournal/internal/futex"
	"github.com/mdjournal/mdjournal/internal/mmap"
	"github.com/mdjournal/mdjournal/internal/segfile"
	"github.com/mdjournal/mdjournal/internal/words"
	"github.com/mdjournal/mdjournal/journal"
	"github.com/mdjournal/mdjournal/wait"
)

var (
	// ErrInterrupted is returned by Next after Interrupt.
	ErrInterrupted = errors.New("reader: interrupted")
	// ErrOutOfRange is returned by Open for a seq before the first retained frame.
	ErrOutOfRange = errors.New("reader: position out of range")
	// ErrNoJournal is returned by Open when dir holds no journal (and
	// Options.OpenTimeout passed without one appearing).
	ErrNoJournal = journal.ErrNotFound
)

// CommitMode says when a named reader's position is stored.
type CommitMode uint8

const (
	// AutoCommit stores the position as each frame is returned: a restarted
	// reader resumes after the last frame returned (at most once for the
	// frame in flight at a crash).
	AutoCommit CommitMode = iota
	// ExplicitCommit stores the position only when the application calls
	// Commit: a restarted reader resumes after the last committed frame, so
	// frames returned but not committed are delivered again (at least once).
	ExplicitCommit
)

// Options configure a Reader. The zero value reads from the start and waits
// with Backoff (it does not burn a core).
type Options struct {
	From Position      // default Start()
	Wait wait.Strategy // how Next idles at the end of data (default Backoff)
	// Name, if set, makes this a named reader (format.md §13): its position
	// is kept in DIR/readers/NAME.pos, and when that file already holds a
	// position, the reader resumes right after it and From is ignored. Only
	// one process at a time may use a name.
	Name   string
	Commit CommitMode // named readers: when the position is stored
	// AcceptReissue lets a named reader resume although sequence numbers it
	// had consumed were issued again after a power cut (ErrReissued
	// otherwise): it resumes at the first reissued seq.
	AcceptReissue bool
	// OpenTimeout makes Open wait up to this long for the journal to be
	// created (0: fail at once with ErrNoJournal).
	OpenTimeout time.Duration
}

// Reader reads frames in sequence order.
type Reader struct {
	dir  string
	opts Options

	ctlM   []byte
	ctlMu  sync.Mutex // Interrupt (any goroutine) against Close
	ctl    journal.Ctl
	sig    wait.Signal
	hasSig bool

	seg     *rseg
	off     int64
	lastSeq uint64
	epoch   uint32
	// Positioning by seq or time is lazy: frames before the target are read
	// (and verified) but not returned.
	skipSeq  uint64 // return nothing with seq < skipSeq
	skipTS   int64  // return nothing before the first frame with ts ≥ skipTS
	skipping bool

	catalog  *journal.Catalog
	preamble map[preambleKey][]byte // stored bytes of definitions/statuses read but not returned
	returned bool                   // a frame was returned: the preamble is complete
	firstSeq uint64                 // first seq of the first retained segment (at Open)
	// restatedStart: the segment positioned in starts with a re-stated
	// frame (a segment that re-states the catalogue, format.md §3.4).
	restatedStart bool
	idler         wait.Idler
	interrupted   atomic.Bool
	pos           *position // named readers only
	last          journal.Frame
}

// Open opens the journal in dir for reading at opts.From.
func Open(dir string, opts Options) (*Reader, error) {
	r := &Reader{dir: dir, opts: opts, idler: wait.Idler{Strategy: opts.Wait}, catalog: journal.NewCatalog()}
	if err := r.waitForJournal(); err != nil {
		return nil, err
	}
	r.openCtl()
	from := opts.From
	if opts.Name != "" {
		p, err := openPosition(dir, opts.Name, r.journalID())
		if err != nil {
			r.Close()
			return nil, err
		}
		r.pos = p
		if p.seq() > 0 {
			from = Seq(p.seq() + 1)
			if err := r.checkReissue(p); err != nil {
				var re *ReissuedError
				if !errors.As(err, &re) || !opts.AcceptReissue {
					r.Close()
					return nil, err
				}
				from = Seq(re.From)
			}
		}
	}
	if err := r.positionGuarded(from); err != nil {
		r.Close()
		return nil, err
	}
	return r, nil
}

// waitForJournal waits up to OpenTimeout for an activated segment.
func (r *Reader) waitForJournal() error {
	deadline := time.Now().Add(r.opts.OpenTimeout)
	var idle wait.Idler
	for {
		ns, err := segfile.Numbers(r.dir)
		if err == nil && len(ns) > 0 {
			h, _, _, herr := segfile.ReadHeader(r.dir, ns[0])
			if herr == nil && !h.Prepared() {
				return nil
			}
			// Segments appear complete (created under a temporary name):
			// one that cannot be read is damage, named, not "no journal".
			if herr != nil && !errors.Is(herr, os.ErrNotExist) {
				return herr
			}
		}
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
		if !time.Now().Before(deadline) {
			return fmt.Errorf("%w: %s", ErrNoJournal, r.dir)
		}
		idle.Idle()
	}
}

// positionGuarded runs position under the same SIGBUS guard as Next: it
// reads mapped frames too (index checks, skipping to the end).
func (r *Reader) positionGuarded(p Position) (err error) {
	defer r.catchFault(debug.SetPanicOnFault(true), &err)
	return r.position(p)
}

func (r *Reader) journalID() uint64 {
	if r.ctlM != nil {
		return r.ctl.JournalID()
	}
	if ns, err := segfile.Numbers(r.dir); err == nil && len(ns) > 0 {
		if h, _, _, err := segfile.ReadHeader(r.dir, ns[0]); err == nil {
			return h.JournalID()
		}
	}
	return 0
}

// openCtl maps the control page to wait on its futex word. It is optional:
// without it (no writer yet, an incomplete page, or no write access to
// announce a waiter) a Futex reader waits with Backoff instead.
func (r *Reader) openCtl() {
	path := filepath.Join(r.dir, journal.CtlFile)
	f, err := fsx.Open(path, os.O_RDWR, 0)
	writable := err == nil
	if err != nil {
		if f, err = fsx.OpenRead(path); err != nil {
			r.degrade()
			return
		}
	}
	defer f.Close()
	if st, err := f.Stat(); err != nil || st.Size() < journal.CtlSize {
		r.degrade()
		return
	}
	m, err := mmap.Map(f, journal.CtlSize, writable)
	if err != nil {
		r.degrade()
		return
	}
	r.ctlM, r.ctl = m, journal.CtlOf(m)
	if writable && r.ctl.Magic() == journal.CtlMagic {
		r.sig, r.hasSig = wait.SignalAt(words.U32(m, journal.CtlOffNotify), words.U32(m, journal.CtlOffWaiters)), true
		return
	}
	r.degrade()
}

func (r *Reader) degrade() {
	if r.idler.Strategy == wait.Futex {
		r.idler.Strategy = wait.Backoff
	}
}

// WaitStrategy is the strategy Next uses: Options.Wait, or Backoff when
// Futex was asked for but the control page cannot be written (format.md §6).
func (r *Reader) WaitStrategy() wait.Strategy { return r.idler.Strategy }

// activeSegments lists segment numbers with their first seq and epoch,
// skipping trailing prepared (never activated) ones.
func (r *Reader) activeSegments() ([]uint64, []uint64, error) {
	es, err := segfile.List(r.dir)
	if err != nil {
		return nil, nil, err
	}
	var ns, firsts []uint64
	var unstated *journal.CorruptionError // activated (first_seq set) but no valid state record
	var firstID uint64
	var badStatic error // a static header that does not check out (an activation being written, or damage)
	for _, e := range es {
		h, _, size, err := segfile.ReadHeader(r.dir, e.Num)
		if err != nil {
			return nil, nil, err
		}
		if h.Magic() != journal.SegmentMagic {
			return nil, nil, journal.Corrupt(e.Path, 0, journal.ErrBadMagic, "bad segment magic %q", h.Magic())
		}
		if !h.StaticOK() {
			// The writer rewrites the static fields of the segment it
			// activates (§4.3): a trailing one may be read torn. Followed
			// by an activated segment, or with a valid state record (which
			// activation writes only after the static fields), it is
			// damage, named here — its fields (the journal id) must not
			// judge the others.
			err := h.Check(e.Path, max(size, min(int64(h.Capacity()), journal.MaxSegmentSize)), e.Num)
			if _, _, ok := h.State(); ok { // journal.ActivatedEvidence's rule, read with atomic loads (a live writer's page)
				return nil, nil, err
			}
			if badStatic == nil {
				badStatic = err
			}
			continue
		}
		if badStatic != nil && !h.Prepared() {
			return nil, nil, badStatic
		}
		if h.Prepared() {
			if h.FirstSeq() != 0 && unstated == nil {
				unstated = journal.Corrupt(e.Path, journal.SegOffStateA, journal.ErrBadHeader,
					"segment %d is activated (first seq %d) but both state records are damaged", e.Num, h.FirstSeq())
			}
			continue
		}
		if unstated != nil {
			// A later segment is activated: the one without a state record
			// is not an activation in progress but damage (as verify says).
			return nil, nil, unstated
		}
		// Every activated segment belongs to one journal: a reader that
		// starts inside a foreign segment would hand out another journal's
		// frames under this journal's seqs (a roll checks the id too).
		if id := h.JournalID(); len(ns) == 0 {
			firstID = id
		} else if id != firstID {
			return nil, nil, journal.Corrupt(e.Path, 16, journal.ErrBadHeader,
				"journal id %#x, segment %d's is %#x: files of two journals are mixed", id, ns[0], firstID)
		}
		ns, firsts = append(ns, e.Num), append(firsts, h.FirstSeq())
	}
	if len(ns) == 0 {
		return nil, nil, fmt.Errorf("%w: %s", journal.ErrNotFound, r.dir)
	}
	for i := 1; i < len(ns); i++ {
		if ns[i] != ns[i-1]+1 {
			return nil, nil, journal.Corrupt(journal.SegmentPath(r.dir, ns[i-1]+1), 0, journal.ErrMissing,
				"segment %d is missing between %d and %d", ns[i-1]+1, ns[i-1], ns[i])
		}
	}
	return ns, firsts, nil
}

func (r *Reader) position(p Position) error {
	ns, firsts, err := r.activeSegments()
	if err != nil {
		return err
	}
	pick := 0
	switch p.kind {
	case posEnd:
		pick = len(ns) - 1
	case posSeq:
		if p.seq < firsts[0] {
			return fmt.Errorf("%w: seq %d is before the first retained frame %d", ErrOutOfRange, p.seq, firsts[0])
		}
		for i := range ns {
			if firsts[i] <= p.seq {
				pick = i
			}
		}
	case posTime:
		// The first segment, in seq order, that may hold a frame at or
		// after the target: one with an index entry that reaches it, or
		// whose successor starts at or after it (the frames after its last
		// entry may), else the last. On a time-ordered journal that is the
		// segment a binary search would find; on one whose time goes back
		// (two days or symbols imported one after the other) it is the
		// first occurrence in seq order, never a later one (format.md §5).
		pick = len(ns) - 1
		for i := range ns {
			reach, err := reaches(r.dir, ns[i], p.ts)
			if err != nil {
				return err
			}
			if !reach && i+1 < len(ns) {
				ts, ok, err := firstTS(r.dir, ns[i+1])
				if err != nil {
					return err
				}
				reach = ok && ts >= p.ts
			}
			if reach {
				pick = i
				break
			}
		}
	}
	s, err := openSeg(r.dir, ns[pick], true)
	if err != nil {
		return err
	}
	r.seg = s
	r.firstSeq = firsts[0]
	if s.ensure(journal.SegmentHeaderSize) == nil && s.limit() >= journal.SegmentHeaderSize+journal.FrameHeaderSize {
		fl := s.data()[journal.SegmentHeaderSize+26]
		r.restatedStart = uint16(fl)&journal.FrameRestated != 0
	}
	r.off, r.lastSeq = s.start()
	r.epoch = s.hdr().Epoch()
	target, prev := int64(-1), uint64(0)
	switch p.kind {
	case posEnd:
		if s.idx != nil {
			target, prev = s.fromEntry(s.idx.View().SearchSeq(^uint64(0)))
		}
	case posSeq:
		if s.idx != nil {
			target, prev = s.fromEntry(s.idx.View().SearchSeq(p.seq))
		}
		r.skipSeq, r.skipping = p.seq, true
	case posTime:
		if s.idx != nil {
			target, prev = s.fromEntry(s.idx.View().SearchTime(p.ts))
		}
		r.skipTS, r.skipSeq, r.skipping = p.ts, 0, true
	}
	if target > journal.SegmentHeaderSize {
		// Learn the instruments from the part of the segment jumped over
		// (it starts with every definition re-stated), then jump. If the
		// walk does not land on the entry, the index is wrong: read from
		// the segment start instead (every frame checked on the way).
		if ok, err := r.learnCatalog(target); err != nil {
			return err
		} else if ok {
			r.off, r.lastSeq = target, prev
		} else {
			r.catalog = journal.NewCatalog()
			r.off, r.lastSeq = s.start()
		}
	}
	if p.kind == posEnd {
		return r.skipToEnd()
	}
	return nil
}

// learnCatalog walks the frames from the current position to target
// (a frame start from the index) applying definitions and statuses, each
// checked by its CRC; other frames are stepped over by their size (they are
// not returned, and the frame at target is checked when it is read). It
// reports whether the walk landed exactly on target.
func (r *Reader) learnCatalog(target int64) (bool, error) {
	s := r.seg
	var f journal.Frame
	off := r.off
	for off < target {
		if err := s.ensure(off); err != nil {
			return false, err
		}
		data, limit := s.data(), s.limit()
		if off+journal.FrameHeaderSize > limit {
			return false, nil
		}
		sz := int64(journal.FrameSizeAt(data[off:]))
		if sz < journal.FrameHeaderSize || sz > journal.MaxFrameSize {
			return false, nil
		}
		if typ := journal.MsgType(uint16(data[off+24]) | uint16(data[off+25])<<8); typ == journal.TypeInstrumentDef || typ == journal.TypeTradingStatus {
			if _, st := journal.DecodeFrameInto(data[off:limit], &f); st != journal.FrameOK {
				return false, journal.Corrupt(s.path(), off, journal.ErrChecksum, "instrument definition frame checksum mismatch")
			}
			r.catalog.Apply(&f)
			r.keepPreamble(&f, data[off:off+int64(journal.StoredLen(&f))])
		}
		off += int64(journal.Align8(int(sz)))
	}
	return off == target, nil
}

type preambleKey struct {
	id  uint32
	typ journal.MsgType
}

// keepPreamble remembers the latest definition or status frame of an
// instrument read while positioning (not returned to the caller).
func (r *Reader) keepPreamble(f *journal.Frame, stored []byte) {
	if r.returned {
		return
	}
	if r.preamble == nil {
		r.preamble = map[preambleKey][]byte{}
	}
	r.preamble[preambleKey{f.Instrument, f.Type}] = append([]byte(nil), stored...)
}

// Preamble returns, as decoded frames (copies, stored exactly as in the
// journal, with their own seqs), the latest instrument definition and
// trading status of every instrument that the reader read while it moved
// to its starting position but did not return: what a consumer starting
// there needs to know the instruments (replay sends them first). Definitions
// come before statuses, each by instrument id. Empty when reading from the
// start.
func (r *Reader) Preamble() []journal.Frame {
	keys := make([]preambleKey, 0, len(r.preamble))
	for k := range r.preamble {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if keys[i].typ != keys[j].typ {
			return keys[i].typ == journal.TypeInstrumentDef
		}
		return keys[i].id < keys[j].id
	})
	out := make([]journal.Frame, 0, len(keys))
	for _, k := range keys {
		f, _, st := journal.DecodeFrame(r.preamble[k])
		if st == journal.FrameOK {
			out = append(out, f)
		}
	}
	return out
}

// reaches reports whether an index entry of segment n has a timestamp at
// or after ts (false without an index).
func reaches(dir string, n uint64, ts int64) (bool, error) {
	s, err := openSeg(dir, n, false)
	if err != nil {
		return false, err
	}
	defer s.close()
	return s.idx != nil && s.idx.View().Reaches(ts), nil
}

func firstTS(dir string, n uint64) (int64, bool, error) {
	s, err := openSeg(dir, n, false)
	if err != nil {
		return 0, false, err
	}
	defer s.close()
	if s.idx != nil && s.idx.View().Count() > 0 {
		return s.idx.View().Entry(0).TS, true, nil
	}
	if err := s.ensure(journal.SegmentHeaderSize); err != nil {
		return 0, false, err
	}
	f, _, st := journal.DecodeFrame(s.data()[journal.SegmentHeaderSize:s.limit()])
	return f.TS, st == journal.FrameOK && f.Type != journal.TypeSegmentEnd, nil
}

// skipToEnd moves past every frame published now (verifying them).
func (r *Reader) skipToEnd() error {
	var f journal.Frame
	for {
		ok, err := r.tryNext(&f)
		if err != nil || !ok {
			return err
		}
		if f.Type == journal.TypeInstrumentDef || f.Type == journal.TypeTradingStatus {
			r.keepPreamble(&f, r.seg.data()[f.Offset:f.Offset+int64(journal.StoredLen(&f))])
		}
	}
}

// LastSeq is the sequence number of the last frame returned (or, before the
// first, of the frame before the starting position).
func (r *Reader) LastSeq() uint64 { return r.lastSeq }

// Epoch is the recovery epoch of the segment the reader is in (format.md
// §8.4).
func (r *Reader) Epoch() uint32 { return r.epoch }

// Segment returns the current segment number and the offset of the next frame.
func (r *Reader) Segment() (uint64, int64) { return r.seg.num, r.off }

// Catalog returns the instruments as of the last frame read: every
// definition and trading status the reader has passed, including those
// re-stated at the start of each segment, so it is complete from any
// starting position. The catalogue is the reader's own: it changes as the
// reader reads (Clone it to keep a copy).
func (r *Reader) Catalog() *journal.Catalog { return r.catalog }

// TryNext returns the next frame if one is published, without waiting; ok
// is false (and f zero) when there is none yet. See the package comment
// for how long f.Payload stays valid.
func (r *Reader) TryNext() (f journal.Frame, ok bool, err error) {
	defer r.catchFault(debug.SetPanicOnFault(true), &err)
	ok, err = r.tryNextFiltered(&f)
	if ok {
		r.record(&f)
	} else {
		f = journal.Frame{}
	}
	return f, ok, err
}

// Next returns the next frame, waiting for it with the configured strategy.
// It returns ErrInterrupted after Interrupt. It allocates nothing.
func (r *Reader) Next() (f journal.Frame, err error) {
	return r.next(context.Background())
}

// NextContext is Next that also returns ctx.Err() once ctx is done.
func (r *Reader) NextContext(ctx context.Context) (journal.Frame, error) {
	return r.next(ctx)
}

func (r *Reader) next(ctx context.Context) (f journal.Frame, err error) {
	defer r.catchFault(debug.SetPanicOnFault(true), &err)
	done := ctx.Done() // nil for context.Background: never checked
	for {
		ok, err := r.tryNextFiltered(&f)
		if err != nil {
			return journal.Frame{}, err
		}
		if ok {
			r.idler.Reset()
			r.record(&f)
			return f, nil
		}
		if r.interrupted.Load() {
			return journal.Frame{}, ErrInterrupted
		}
		if done != nil {
			select {
			case <-done:
				return journal.Frame{}, ctx.Err()
			default:
			}
		}
		if r.hasSig && r.idler.ShouldBlock() {
			r.block(ctx)
			continue
		}
		r.idler.Idle()
	}
}

// futexTimeout bounds one futex sleep, in ns (settable so that a test can
// make the wake-up the only way out).
var futexTimeout atomic.Int64

func init() { futexTimeout.Store(int64(wait.FutexTimeout)) }

// beforeBlock, when set by a test, runs between block's last re-check and
// its futex sleep: the window an Interrupt or a cancelled context must not
// be lost in.
var beforeBlock func(*Reader)

// block sleeps on the control page's futex word until the writer publishes,
// an interrupt, ctx is done, or the futex timeout (a writer killed between
// its publish and its wake).
func (r *Reader) block(ctx context.Context) {
	var stop func() bool
	if ctx.Done() != nil {
		stop = context.AfterFunc(ctx, r.wakeLocked) // runs on its own goroutine, maybe after Close
	}
	tok := r.sig.Announce()
	if !r.seg.published(r.off) && !r.interrupted.Load() && ctx.Err() == nil {
		if beforeBlock != nil {
			beforeBlock(r)
		}
		r.sig.Block(tok, time.Duration(futexTimeout.Load()))
	}
	r.sig.Done()
	if stop != nil {
		stop()
	}
}

// wakeSelf ends this reader's futex sleep: like the writer's wake it bumps
// the notify word before FUTEX_WAKE, so a sleeper that re-checked just
// before the interrupt was flagged still finds the word changed and does
// not sleep (format.md §6). Other sleepers wake spuriously, which is
// harmless.
func (r *Reader) wakeSelf() {
	seq := words.U32(r.ctlM, journal.CtlOffNotify)
	atomic.AddUint32(seq, 1)
	futex.Wake(seq, 1<<30)
}

// wakeLocked is wakeSelf under ctlMu, for callers that may race with Close
// unmapping the control page (a context's AfterFunc).
func (r *Reader) wakeLocked() {
	r.ctlMu.Lock()
	if r.ctlM != nil {
		r.wakeSelf()
	}
	r.ctlMu.Unlock()
}

// Interrupt makes a blocked (or the next) Next return ErrInterrupted.
func (r *Reader) Interrupt() {
	r.interrupted.Store(true)
	if r.hasSig {
		r.wakeLocked() // Close may be unmapping the control page
	}
}

func (r *Reader) catchFault(old bool, err *error) {
	debug.SetPanicOnFault(old)
	if e := recover(); e != nil {
		if re, ok := e.(runtime.Error); ok {
			path := r.dir
			if r.seg != nil {
				path = r.seg.path()
			}
			*err = journal.Corrupt(path, r.off, journal.ErrTruncated, "file truncated under the reader (%v)", re)
			return
		}
		panic(e)
	}
}

// tryNextFiltered and tryNext fill *f rather than return a Frame: copying
// the struct through three returns measured ~15 ns per frame.
func (r *Reader) tryNextFiltered(f *journal.Frame) (bool, error) {
	for {
		ok, err := r.tryNext(f)
		if !ok || err != nil || !r.skipping {
			if ok {
				r.returned = true
			}
			return ok, err
		}
		if f.Seq >= r.skipSeq && f.TS >= r.skipTS {
			r.skipping = false
			r.returned = true
			return true, nil
		}
		if f.Type == journal.TypeInstrumentDef || f.Type == journal.TypeTradingStatus {
			r.keepPreamble(f, r.seg.data()[f.Offset:f.Offset+int64(journal.StoredLen(f))])
		}
	}
}

// record keeps the last frame for Commit and persists an auto-committing
// named reader's position; a single branch otherwise.
func (r *Reader) record(f *journal.Frame) {
	if r.pos != nil {
		r.last.Seq, r.last.TS = f.Seq, f.TS
		if r.opts.Commit == AutoCommit {
			r.pos.store(f.Seq, f.TS, r.epoch)
		}
	}
}

// Commit stores a named reader's position at the last frame returned
// (ExplicitCommit; with AutoCommit it is already stored). A restarted reader
// resumes after it.
func (r *Reader) Commit() (err error) {
	defer r.catchFault(debug.SetPanicOnFault(true), &err)
	if r.pos == nil {
		return errors.New("reader: Commit needs a named reader (Options.Name)")
	}
	if r.last.Seq != 0 {
		r.pos.store(r.last.Seq, r.last.TS, r.epoch)
	}
	return nil
}

func (r *Reader) tryNext(f *journal.Frame) (bool, error) {
	for {
		s := r.seg
		if err := s.ensure(r.off); err != nil {
			return false, err
		}
		limit := s.limit()
		if r.off+8 > limit {
			if s.archived() {
				return false, journal.Corrupt(s.path(), r.off, journal.ErrBadLength, "compressed segment ends without its end marker")
			}
			return false, journal.Corrupt(s.path(), r.off, journal.ErrCursorRange, "no end marker before the end of the segment (capacity %d)", limit)
		}
		data := s.data()
		w := segfile.LoadCommit(data, r.off)
		if w == 0 {
			if s.archived() {
				return false, journal.Corrupt(s.path(), r.off, journal.ErrBadLength, "compressed segment ends without its end marker")
			}
			return false, nil
		}
		n, st := journal.DecodeCommitted(data[r.off:limit], w, f)
		switch st {
		case journal.FrameOK:
		case journal.FrameBadCRC:
			return false, journal.Corrupt(s.path(), r.off, journal.ErrChecksum, "frame checksum mismatch")
		default:
			return false, journal.Corrupt(s.path(), r.off, journal.ErrBadLength, "bad frame length %d", w>>32)
		}
		if f.Seq != r.lastSeq+1 {
			return false, journal.Corrupt(s.path(), r.off, journal.ErrSequence, "frame seq %d, expected %d", f.Seq, r.lastSeq+1)
		}
		// The same content rules as recovery and verify (format.md §3).
		if f.Type.PayloadSize() != len(f.Payload) || f.Flags != 0 {
			if reason, sent := journal.CheckContent(f); sent != nil {
				return false, journal.Corrupt(s.path(), r.off, sent, "%s", reason)
			}
		}
		if f.Type == journal.TypeSegmentEnd {
			if err := r.advance(); err != nil {
				return false, err
			}
			continue
		}
		if f.Type == journal.TypeInstrumentDef || f.Type == journal.TypeTradingStatus {
			r.catalog.Apply(f)
		}
		f.Segment, f.Offset = s.num, r.off
		r.off += int64(n)
		r.lastSeq = f.Seq
		return true, nil
	}
}

// advance moves from a sealed segment to its successor, which the writer
// activated before sealing (format.md §4.3), and unmaps the old one.
func (r *Reader) advance() error {
	next, err := openSeg(r.dir, r.seg.num+1, true)
	if err != nil {
		return err
	}
	h := next.hdr()
	fs, epoch, prepared, id := h.FirstSeq(), h.Epoch(), h.Prepared(), h.JournalID() // read before any close: h points into the mapping
	if fs == r.lastSeq+1 && prepared {
		next.close()
		return journal.Corrupt(journal.SegmentPath(r.dir, r.seg.num+1), journal.SegOffStateA, journal.ErrBadHeader,
			"the end marker says segment %d starts at seq %d, but it has no valid state record", r.seg.num+1, fs)
	}
	if fs != r.lastSeq+1 {
		next.close()
		return journal.Corrupt(journal.SegmentPath(r.dir, r.seg.num+1), 32, journal.ErrSequence, "first seq %d does not follow %d", fs, r.lastSeq)
	}
	if cur := r.seg.hdr().JournalID(); id != cur {
		next.close()
		return journal.Corrupt(journal.SegmentPath(r.dir, r.seg.num+1), 16, journal.ErrBadHeader, "journal id %#x, the previous segment's is %#x: files of two journals are mixed", id, cur)
	}
	if epoch < r.epoch {
		next.close()
		return journal.Corrupt(journal.SegmentPath(r.dir, r.seg.num+1), 56, journal.ErrBadHeader, "epoch %d goes back from %d", epoch, r.epoch)
	}
	// A named reader that resumed before the writer recovered from a power
	// cut: the new epoch re-issues seqs from fs, and if the position is at
	// or past fs, what it consumed there may differ from what follows
	// (format.md §8.4). The same check Open makes.
	if p := r.pos; p != nil && epoch > r.epoch {
		if seq, ep := p.seq(), atomic.LoadUint32(p.epoch); ep != 0 && epoch > ep && fs <= seq {
			if !r.opts.AcceptReissue {
				next.close()
				return &ReissuedError{Name: p.name, Seq: seq, Epoch: ep, From: fs, NewEpoch: epoch, File: journal.SegmentPath(r.dir, r.seg.num+1)}
			}
			r.skipping = false // deliver the re-issued frames from fs
		}
	}
	r.seg.close()
	r.seg = next
	r.epoch = epoch
	r.off = journal.SegmentHeaderSize
	return nil
}

// Close unmaps everything. A named reader's position file is synced
// (MS_ASYNC) and released for another process to use.
func (r *Reader) Close() error {
	r.pos.close()
	r.pos = nil
	if r.seg != nil {
		r.seg.close()
		r.seg = nil
	}
	r.ctlMu.Lock()
	if r.ctlM != nil {
		mmap.Unmap(r.ctlM)
		r.ctlM = nil
	}
	r.ctlMu.Unlock()
	return nil
}
