// Package reader tails a journal: from another process, read-only, live.
//
// A Reader maps segment files with O_RDONLY and PROT_READ, so nothing it does
// can damage the journal. It loads the active segment's write cursor
// atomically and reads only frames below it (format.md §4), verifying every
// frame's CRC-32C and that sequence numbers continue without a gap: a reader
// never returns a byte that failed its checksum. It follows the writer across
// segment rolls and unmaps segments behind it, so its memory does not grow
// with the journal. A segment file truncated under it gives a
// *journal.CorruptionError (journal.ErrTruncated), not a SIGBUS crash.
//
// A Reader is used by one goroutine; Interrupt may be called from any.
package reader

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"sort"
	"sync/atomic"

	"github.com/mdjournal/mdjournal/internal/futex"
	"github.com/mdjournal/mdjournal/internal/mmap"
	"github.com/mdjournal/mdjournal/journal"
	"github.com/mdjournal/mdjournal/wait"
)

var (
	// ErrInterrupted is returned by Next after Interrupt.
	ErrInterrupted = errors.New("reader: interrupted")
	// ErrOutOfRange is returned by Open for a seq before the first retained frame.
	ErrOutOfRange = errors.New("reader: position out of range")
)

// Options configure a Reader.
type Options struct {
	From Position      // default Start()
	Wait wait.Strategy // how Next idles at the end of data (default Spin)
	// Name, if set, makes this a named reader (format.md §13): the seq of
	// each frame returned is stored in DIR/readers/NAME.pos, and when that
	// file already holds a position, the reader resumes right after it and
	// From is ignored.
	Name string
}

// Reader reads frames in sequence order.
type Reader struct {
	dir  string
	opts Options

	ctlM   []byte
	ctl    journal.Ctl
	sig    wait.Signal
	hasSig bool

	seg     *rseg
	off     int64
	lastSeq uint64
	// Positioning by seq or time is lazy: frames before the target are read
	// (and verified) but not returned.
	skipSeq  uint64 // return nothing with seq < skipSeq
	skipTS   int64  // return nothing before the first frame with ts ≥ skipTS
	skipping bool

	idler       wait.Idler
	interrupted atomic.Bool
	pos         *position // named readers only
}

// Open opens the journal in dir for reading at opts.From.
func Open(dir string, opts Options) (*Reader, error) {
	r := &Reader{dir: dir, opts: opts, idler: wait.Idler{Strategy: opts.Wait}}
	if err := r.openCtl(); err != nil {
		return nil, err
	}
	from := opts.From
	if opts.Name != "" {
		p, last, err := openPosition(dir, opts.Name, r.journalID())
		if err != nil {
			r.Close()
			return nil, err
		}
		r.pos = p
		if last > 0 {
			from = Seq(last + 1)
		}
	}
	if err := r.positionGuarded(from); err != nil {
		r.Close()
		return nil, err
	}
	return r, nil
}

// positionGuarded runs position under the same SIGBUS guard as Next: it reads
// mapped frames too (index checks, skipping to the end).
func (r *Reader) positionGuarded(p Position) (err error) {
	defer r.catchFault(debug.SetPanicOnFault(true), &err)
	return r.position(p)
}

func (r *Reader) journalID() uint64 {
	if r.ctlM != nil {
		return r.ctl.JournalID()
	}
	return 0
}

func (r *Reader) openCtl() error {
	path := filepath.Join(r.dir, journal.CtlFile)
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	writable := err == nil
	if err != nil {
		f, err = os.Open(path)
	}
	if err != nil {
		if r.opts.Wait == wait.Futex {
			return fmt.Errorf("reader: futex wait needs %s: %w", path, err)
		}
		return nil // no writer has opened this journal; polling works without it
	}
	defer f.Close()
	if st, err := f.Stat(); err != nil || st.Size() < journal.CtlSize {
		// Written by a writer older than atomic creation, mid-creation:
		// mapping it would fault. Poll without it.
		if r.opts.Wait == wait.Futex {
			return fmt.Errorf("reader: futex wait needs %s, which is incomplete", path)
		}
		return nil
	}
	m, err := mmap.Map(f, journal.CtlSize, writable)
	if err != nil {
		return err
	}
	r.ctlM, r.ctl = m, journal.CtlOf(m)
	if writable && r.ctl.Magic() == journal.CtlMagic {
		r.sig, r.hasSig = wait.SignalAt(r.ctl.NotifyWord(), r.ctl.WaitersWord()), true
	} else if r.opts.Wait == wait.Futex {
		return fmt.Errorf("reader: futex wait needs write access to %s (to announce itself as a waiter)", path)
	}
	return nil
}

// activeSegments lists segment numbers with their first seq, skipping
// prepared (never activated) ones.
func (r *Reader) activeSegments() ([]uint64, []uint64, error) {
	nums, err := journal.ListSegments(r.dir)
	if err != nil {
		return nil, nil, err
	}
	var ns, firsts []uint64
	for _, n := range nums {
		p, err := peek(r.dir, n)
		if err != nil {
			return nil, nil, err
		}
		if !p.active {
			continue
		}
		ns, firsts = append(ns, n), append(firsts, p.firstSeq)
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
		// The last segment whose first frame is before the target: a
		// binary search over the segments' first timestamps (taken to be
		// non-decreasing, like the frames').
		var probeErr error
		pick = sort.Search(len(ns), func(i int) bool {
			if probeErr != nil {
				return true
			}
			s, err := probeSeg(r.dir, ns[i])
			if err != nil {
				probeErr = err
				return true
			}
			ts, ok := firstTS(s)
			s.close()
			return !ok || ts >= p.ts
		}) - 1
		if probeErr != nil {
			return probeErr
		}
		pick = max(pick, 0)
	}
	s, err := openSeg(r.dir, ns[pick])
	if err != nil {
		return err
	}
	r.seg = s
	r.off, r.lastSeq = s.start()
	switch p.kind {
	case posEnd:
		if s.hasIdx {
			r.off, r.lastSeq = s.fromEntry(s.idx.SearchSeq(^uint64(0)))
		}
		return r.skipToCursor()
	case posSeq:
		if s.hasIdx {
			r.off, r.lastSeq = s.fromEntry(s.idx.SearchSeq(p.seq))
		}
		r.skipSeq, r.skipping = p.seq, true
	case posTime:
		if s.hasIdx {
			r.off, r.lastSeq = s.fromEntry(s.idx.SearchTime(p.ts))
		}
		r.skipTS, r.skipSeq, r.skipping = p.ts, 0, true
	}
	return nil
}

func firstTS(s *rseg) (int64, bool) {
	if s.hasIdx && s.idx.Count() > 0 {
		return s.idx.Entry(0).TS, true
	}
	if s.seekLoad(journal.SegmentHeaderSize) != nil {
		return 0, false
	}
	f, _, st := journal.DecodeFrame(s.m[journal.SegmentHeaderSize:s.limit()])
	return f.TS, st == journal.FrameOK && f.Type != journal.TypeSegmentEnd
}

// skipToCursor moves past every frame published now (verifying them).
func (r *Reader) skipToCursor() error {
	var f journal.Frame
	for {
		ok, err := r.tryNext(&f)
		if err != nil || !ok {
			return err
		}
	}
}

// LastSeq is the sequence number of the last frame returned (or, before the
// first, of the frame before the starting position).
func (r *Reader) LastSeq() uint64 { return r.lastSeq }

// Segment returns the current segment number and the offset of the next frame.
func (r *Reader) Segment() (uint64, int64) { return r.seg.num, r.off }

// TryNext returns the next frame if one is published, without waiting. The
// frame's Payload aliases the read-only mapping and stays valid until the
// reader leaves its segment (at the latest, the next call after a roll).
func (r *Reader) TryNext() (f journal.Frame, ok bool, err error) {
	defer r.catchFault(debug.SetPanicOnFault(true), &err)
	ok, err = r.tryNextFiltered(&f)
	if ok {
		r.record(&f)
	}
	return f, ok, err
}

// Next returns the next frame, waiting for it with the configured strategy.
// It returns ErrInterrupted after Interrupt. It allocates nothing.
func (r *Reader) Next() (f journal.Frame, err error) {
	defer r.catchFault(debug.SetPanicOnFault(true), &err)
	for {
		ok, err := r.tryNextFiltered(&f)
		if err != nil {
			return f, err
		}
		if ok {
			r.idler.Reset()
			r.record(&f)
			return f, nil
		}
		if r.interrupted.Load() {
			return f, ErrInterrupted
		}
		if r.hasSig && r.idler.ShouldBlock() {
			tok := r.sig.Announce()
			if int64(r.seg.hdr.Cursor()) <= r.off && !r.interrupted.Load() {
				r.sig.Block(tok, wait.FutexTimeout)
			}
			r.sig.Done()
			continue
		}
		r.idler.Idle()
	}
}

// Interrupt makes a blocked (or the next) Next return ErrInterrupted.
func (r *Reader) Interrupt() {
	r.interrupted.Store(true)
	if r.hasSig {
		futex.Wake(r.ctl.NotifyWord(), 1<<30) // spurious wake-ups are harmless
	}
}

func (r *Reader) catchFault(old bool, err *error) {
	debug.SetPanicOnFault(old)
	if e := recover(); e != nil {
		if re, ok := e.(runtime.Error); ok {
			path := r.dir
			if r.seg != nil {
				path = r.seg.path
			}
			*err = journal.Corrupt(path, r.off, journal.ErrTruncated, "file truncated under the reader (%v)", re)
			return
		}
		panic(e)
	}
}

// tryNextFiltered and tryNext fill *f rather than return a Frame: copying
// the 80-byte struct through three returns measured ~15 ns per frame.
func (r *Reader) tryNextFiltered(f *journal.Frame) (bool, error) {
	for {
		ok, err := r.tryNext(f)
		if !ok || err != nil || !r.skipping {
			return ok, err
		}
		if f.Seq >= r.skipSeq && f.TS >= r.skipTS {
			r.skipping = false
			return true, nil
		}
	}
}

// record persists a named reader's position; a single branch otherwise.
func (r *Reader) record(f *journal.Frame) {
	if r.pos != nil {
		r.pos.store(f.Seq, f.TS)
	}
}

func (r *Reader) tryNext(f *journal.Frame) (bool, error) {
	for {
		s := r.seg
		cur := s.limit()
		if r.off >= cur {
			if more, err := s.more(); more || err != nil {
				if err != nil {
					return false, err
				}
				continue
			}
			return false, nil
		}
		if cur > s.capacity {
			return false, journal.Corrupt(s.path, journal.SegOffCursor, journal.ErrCursorRange, "write cursor %d past capacity %d", cur, s.capacity)
		}
		n, st := journal.DecodeFrameInto(s.m[r.off:cur], f)
		switch st {
		case journal.FrameOK:
		case journal.FrameBadCRC:
			return false, journal.Corrupt(s.path, r.off, journal.ErrChecksum, "frame checksum mismatch below the write cursor")
		default:
			return false, journal.Corrupt(s.path, r.off, journal.ErrBadLength, "bad frame length %d below the write cursor %d", journal.FrameSizeAt(s.m[r.off:]), cur)
		}
		if f.Seq != r.lastSeq+1 {
			return false, journal.Corrupt(s.path, r.off, journal.ErrSequence, "frame seq %d, expected %d", f.Seq, r.lastSeq+1)
		}
		// The same content checks as recovery (format.md §3): a frame with a
		// good checksum but an unknown type or the wrong payload size for
		// its type is damage too.
		if ps := f.Type.PayloadSize(); ps != len(f.Payload) && (ps != -1 || !f.Type.Known()) {
			if !f.Type.Known() {
				return false, journal.Corrupt(s.path, r.off, journal.ErrBadHeader, "unknown message type %d", f.Type)
			}
			return false, journal.Corrupt(s.path, r.off, journal.ErrBadLength, "%s payload is %d bytes, want %d", f.Type, len(f.Payload), ps)
		}
		if f.Type == journal.TypeSegmentEnd {
			if err := r.advance(); err != nil {
				return false, err
			}
			continue
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
	next, err := openSeg(r.dir, r.seg.num+1)
	if err != nil {
		return err
	}
	if fs, active := next.hdr.FirstSeq(), next.hdr.Active(); fs != r.lastSeq+1 || !active {
		next.close() // read the header before: close unmaps it
		return journal.Corrupt(next.path, 32, journal.ErrSequence, "first seq %d does not follow %d (active=%v)", fs, r.lastSeq, active)
	}
	r.seg.close()
	r.seg = next
	r.off = journal.SegmentHeaderSize
	return nil
}

// Close unmaps everything.
func (r *Reader) Close() error {
	r.pos.close()
	r.pos = nil
	if r.seg != nil {
		r.seg.close()
		r.seg = nil
	}
	if r.ctlM != nil {
		mmap.Unmap(r.ctlM)
		r.ctlM = nil
	}
	return nil
}
