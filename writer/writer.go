// Package writer appends frames to a journal: the single writer of a journal
// directory. It maps the active segment read-write, stores each frame, and
// publishes with one atomic store of the segment's write cursor (format.md §4).
//
// A Writer is confined to one goroutine at a time (like Chronicle's appender):
// Append, Stage, Publish, Sync and Close must not be called concurrently. Its
// own background goroutine only prefaults pages ahead of the cursor, prepares
// the next segment, runs interval group commit and retires sealed segments;
// it never touches frame bytes.
package writer

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mdjournal/mdjournal/internal/flock"
	"github.com/mdjournal/mdjournal/internal/mmap"
	"github.com/mdjournal/mdjournal/journal"
	"github.com/mdjournal/mdjournal/wait"
)

// ErrLocked matches the error Open returns when another live process is the
// journal's writer; the error text names its PID.
var ErrLocked = flock.ErrLocked

// ErrFailed wraps the first msync error: after it the writer refuses all
// further appends, because retrying a failed msync can falsely succeed
// (pages are marked clean on failure).
var ErrFailed = errors.New("writer: failed")

// Options configure a Writer. The zero value is valid.
type Options struct {
	// SegmentSize is the capacity of new segment files (default 64 MiB,
	// minimum 256 KiB, rounded up to 4 KiB). Existing segments keep theirs.
	SegmentSize int64
	// Durability is the msync policy (default None).
	Durability Durability
	// PretouchAhead is how many bytes beyond the cursor the background
	// goroutine keeps prefaulted. The default (0) is the whole segment: the
	// next segment is prefaulted in full while it is prepared, long before
	// the appender reaches it. Prefaulting a few MiB at a time right ahead
	// of a fast appender measured 2-3x slower appends on 2 cores (the
	// kernel zeroing fresh pages beside it, and the appender catching up
	// with the prefault). The cost: a prefaulted page is a dirty page, so on
	// a slow stream the kernel may write the next segment's zeroes back
	// before the appender fills them (at most one extra write of each
	// segment); a few MiB here avoids that.
	PretouchAhead int64
	// Logf receives recovery notes (torn tails cut, lock taken over). Nil
	// discards them.
	Logf func(format string, args ...any)
	// Clock returns the time stamped on end-of-segment markers (default
	// time.Now().UnixNano()).
	Clock func() int64
	// Observer, if set, sees every frame right after Stage wrote it, on the
	// appender's goroutine (so it must not block). The order-book snapshot
	// maintainer is one. The frame's Payload aliases the segment mapping and
	// is valid only during the call.
	Observer Observer
}

// Observer is told about each appended frame, in sequence order.
type Observer interface {
	Observe(f *journal.Frame)
}

// Stats are counters of writer events since Open.
type Stats struct {
	Frames     uint64 // frames appended
	Bytes      uint64 // segment bytes used by them, padding included
	Rolls      uint64 // segment switches
	RollStalls uint64 // rolls that had to create the next segment synchronously
	Syncs      uint64 // MS_SYNC calls issued (data and header)
}

// Writer is the single appender of a journal.
type Writer struct {
	dir       string
	opts      Options
	lock      *flock.Lock
	pid       uint32
	journalID uint64

	ctlF *os.File
	ctlM []byte
	ctl  journal.Ctl
	sig  wait.Signal

	seg       *wseg
	cursor    int64  // end of staged frames in seg
	pubCursor int64  // end of published frames in seg
	seq       uint64 // last staged seq
	pubSeq    uint64 // last published seq
	lastTS    int64

	active    atomic.Pointer[wseg]
	touchedTo atomic.Int64 // pretouched up to here in the active segment
	kickAt    int64        // next cursor at which to wake the background goroutine
	kick      chan struct{}
	stop      chan struct{}
	bgDone    chan struct{}
	retire    chan *wseg

	prepMu      sync.Mutex
	prepared    *wseg
	lastCreated uint64 // highest segment number created (under prepMu)

	syncedOff  int64      // Sync mode: durable offset in seg (appender-owned)
	durMu      sync.Mutex // serialises checkpoint updates (appender Sync vs background group commit)
	durableSeq atomic.Uint64
	// Segments handed to the background goroutine by a roll and not yet
	// retired, and (None, Async) retired segments not yet made durable:
	// Sync and Close fsync those before they claim a durable seq.
	pendingRetire atomic.Int64
	unsyncedMu    sync.Mutex
	unsynced      []uint64
	failed        atomic.Pointer[error]
	stats         Stats
	closed        bool
	obsFrame      journal.Frame
}

// Open opens (creating if needed) the journal in dir for writing. It takes
// the single-writer lock, recovers the tail of the journal (format.md §8)
// and prepares the next segment.
func Open(dir string, opts Options) (*Writer, error) {
	if opts.SegmentSize == 0 {
		opts.SegmentSize = journal.DefaultSegmentSize
	}
	if opts.SegmentSize < journal.MinSegmentSize {
		return nil, fmt.Errorf("writer: segment size %d below minimum %d", opts.SegmentSize, journal.MinSegmentSize)
	}
	opts.SegmentSize = (opts.SegmentSize + 4095) &^ 4095
	if opts.PretouchAhead <= 0 {
		opts.PretouchAhead = 1 << 40 // the whole segment
	}
	if opts.Logf == nil {
		opts.Logf = func(string, ...any) {}
	}
	if opts.Clock == nil {
		opts.Clock = func() int64 { return time.Now().UnixNano() }
	}
	if opts.Durability.Mode == Interval && opts.Durability.Interval <= 0 {
		opts.Durability.Interval = defaultSyncInterval
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	lock, err := flock.Acquire(filepath.Join(dir, journal.LockFile))
	if err != nil {
		var held *flock.HeldError
		if errors.As(err, &held) {
			return nil, fmt.Errorf("writer: journal %s already has a writer (PID %d): %w", dir, held.PID, err)
		}
		return nil, fmt.Errorf("writer: lock %s: %w", dir, err)
	}
	w := &Writer{dir: dir, opts: opts, lock: lock, pid: uint32(os.Getpid()),
		kick: make(chan struct{}, 1), stop: make(chan struct{}), bgDone: make(chan struct{}),
		retire: make(chan *wseg, 64)}
	if lock.StalePID != 0 && lock.StalePID != os.Getpid() {
		opts.Logf("writer: took over the lock of PID %d, which is gone", lock.StalePID)
	}
	if err := w.openJournal(); err != nil {
		w.closeFiles()
		lock.Release()
		return nil, err
	}
	go w.background()
	return w, nil
}

func (w *Writer) openJournal() error {
	removeTemps(w.dir)
	segs, err := journal.ListSegments(w.dir)
	if err != nil {
		return err
	}
	if err := w.recoverJournal(segs); err != nil {
		return err
	}
	if err := w.openCtl(); err != nil {
		return err
	}
	if w.seg.hdr.Sealed() {
		// The last segment was sealed (a crash right after a roll's seal):
		// continue in its successor.
		if err := w.roll(); err != nil {
			return err
		}
	}
	// Not clean from now on, and say so on disk before any new frame: a crash
	// must not leave a stale "clean" flag that makes the next open trust the cursor.
	h := w.seg.hdr
	h.SetFlags(h.Flags() &^ journal.FlagClean)
	h.SetWriterPID(w.pid)
	if err := w.syncRange(w.seg, 0, journal.SegmentHeaderSize); err != nil {
		return err
	}
	w.active.Store(w.seg)
	w.lastCreated = w.seg.num
	if w.prepared != nil {
		w.lastCreated = w.prepared.num
	}
	w.syncedOff = int64(h.DurableOffset())
	w.durableSeq.Store(h.DurableSeq())
	// The first few MiB now, the rest from the background goroutine.
	end := min(w.cursor+min(w.opts.PretouchAhead, 4<<20), w.seg.capacity)
	mmap.PopulateWrite(w.seg.m[w.cursor&^4095 : end])
	w.touchedTo.Store(end)
	w.kickAt = w.cursor + min(w.opts.PretouchAhead/2, 1<<20)
	w.kickNow()
	return nil
}

func (w *Writer) openCtl() error {
	path := filepath.Join(w.dir, journal.CtlFile)
	if _, err := os.Stat(path); os.IsNotExist(err) {
		// Create it complete under a temporary name, then rename: a reader
		// must never map a control file shorter than its page.
		tmp := path + ".tmp"
		f, err := os.OpenFile(tmp, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o666)
		if err != nil {
			return err
		}
		f.Chmod(0o666) // readers announce themselves as futex waiters in it
		err = mmap.Reserve(f, journal.CtlSize)
		if err == nil {
			var page [journal.CtlSize]byte
			journal.InitCtl(page[:], w.journalID, time.Now().UnixNano())
			_, err = f.WriteAt(page[:], 0)
		}
		f.Close()
		if err == nil {
			err = os.Rename(tmp, path)
		}
		if err != nil {
			os.Remove(tmp)
			return err
		}
	}
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	if err := mmap.Reserve(f, journal.CtlSize); err != nil {
		f.Close()
		return err
	}
	m, err := mmap.Map(f, journal.CtlSize, true)
	if err != nil {
		f.Close()
		return err
	}
	c := journal.CtlOf(m)
	if c.Magic() != journal.CtlMagic || c.Version() != journal.Version || c.JournalID() != w.journalID {
		clear(m)
		journal.InitCtl(m, w.journalID, time.Now().UnixNano())
	}
	c.SetActiveSegment(w.seg.num)
	c.SetWriterPID(w.pid)
	w.ctlF, w.ctlM, w.ctl, w.sig = f, m, c, wait.SignalAt(c.NotifyWord(), c.WaitersWord())
	return nil
}

func newJournalID() uint64 {
	var b [8]byte
	rand.Read(b[:])
	id := binary.LittleEndian.Uint64(b[:])
	if id == 0 {
		id = 1
	}
	return id
}

func removeTemps(dir string) {
	for _, pat := range []string{"*.seg.tmp", "*.idx.tmp", journal.CtlFile + ".tmp"} {
		ms, _ := filepath.Glob(filepath.Join(dir, pat))
		for _, m := range ms {
			os.Remove(m)
		}
	}
}

// Dir returns the journal directory.
func (w *Writer) Dir() string { return w.dir }

// JournalID returns the journal's random identity, shared by all its files.
func (w *Writer) JournalID() uint64 { return w.journalID }

// LastSeq returns the sequence number of the last staged frame (0 if none).
func (w *Writer) LastSeq() uint64 { return w.seq }

// PublishedSeq returns the sequence number of the last frame readers can see.
func (w *Writer) PublishedSeq() uint64 { return w.pubSeq }

// DurableSeq returns the last sequence number known to be on stable storage
// (MS_SYNC completed for it and every frame before it).
func (w *Writer) DurableSeq() uint64 { return w.durableSeq.Load() }

// Stats returns event counters.
func (w *Writer) Stats() Stats { return w.stats }

// Append writes one frame and publishes it (and any staged frames). It
// allocates nothing. The payload must have the size fixed for typ
// (format.md §3.2), or at most journal.MaxPayload bytes for Raw.
func (w *Writer) Append(typ journal.MsgType, instr uint32, ts int64, payload []byte) (uint64, error) {
	seq, err := w.Stage(typ, instr, ts, payload)
	if err != nil {
		return 0, err
	}
	return seq, w.Publish()
}

// Stage writes one frame without publishing it: readers see it at the next
// Publish (or Append). Staging a batch and publishing once amortises the
// cursor store, the wake-up check and the durability action.
func (w *Writer) Stage(typ journal.MsgType, instr uint32, ts int64, payload []byte) (uint64, error) {
	if w.closed {
		return 0, journal.ErrClosed
	}
	if p := w.failed.Load(); p != nil {
		return 0, *p
	}
	if ps := typ.PayloadSize(); (ps != len(payload) && (ps != -1 || len(payload) > journal.MaxPayload)) || typ == journal.TypeSegmentEnd {
		return 0, w.payloadError(typ, len(payload))
	}
	space := int64(journal.FrameSpace(len(payload)))
	if w.cursor+space+journal.EndMarkerSize > w.seg.capacity {
		if err := w.roll(); err != nil {
			return 0, err
		}
	}
	off := w.cursor
	w.seq++
	journal.PutFrame(w.seg.m[off:off+space], w.seq, ts, typ, instr, payload)
	w.seg.maybeIndex(off, w.seq, ts)
	if w.opts.Observer != nil {
		hsize := journal.FrameHeaderSize
		w.obsFrame = journal.Frame{Seq: w.seq, TS: ts, Type: typ, Instrument: instr,
			Payload: w.seg.m[off+int64(hsize) : off+int64(hsize+len(payload))], Segment: w.seg.num, Offset: off}
		w.opts.Observer.Observe(&w.obsFrame) // a field, not a literal: passing it to an interface must not allocate
	}
	w.cursor = off + space
	w.lastTS = ts
	w.stats.Frames++
	w.stats.Bytes += uint64(space)
	return w.seq, nil
}

func (w *Writer) payloadError(typ journal.MsgType, n int) error {
	switch ps := typ.PayloadSize(); {
	case ps == -2 || typ == journal.TypeSegmentEnd:
		return fmt.Errorf("writer: cannot append message type %d", typ)
	case ps == -1:
		return fmt.Errorf("%w: %d-byte payload, max %d", journal.ErrFrameTooLarge, n, journal.MaxPayload)
	default:
		return fmt.Errorf("writer: %s payload must be %d bytes, got %d", typ, ps, n)
	}
}

// Publish makes every staged frame visible to readers with one atomic store
// of the write cursor, wakes futex waiters if any announced themselves, and
// applies the durability policy.
func (w *Writer) Publish() error {
	if w.cursor == w.pubCursor {
		return nil
	}
	seg := w.seg
	from := w.pubCursor
	seg.hdr.SetCursor(uint64(w.cursor))
	w.pubCursor = w.cursor
	w.pubSeq = w.seq
	w.sig.Wake()
	switch w.opts.Durability.Mode {
	case Async:
		if err := mmap.Sync(seg.m, int(from), int(w.cursor-from), false); err != nil {
			return w.fail(err)
		}
	case Sync:
		if err := w.syncPublished(); err != nil {
			return err
		}
	}
	if w.cursor >= w.kickAt {
		w.kickAt = w.cursor + min(w.opts.PretouchAhead/2, syncBytesOr(w.opts.Durability, w.opts.PretouchAhead/2))
		w.kickNow()
	}
	return nil
}

func syncBytesOr(d Durability, def int64) int64 {
	if d.Mode == Interval && d.Bytes > 0 {
		return d.Bytes
	}
	return def
}

func (w *Writer) kickNow() {
	select {
	case w.kick <- struct{}{}:
	default:
	}
}

// syncPublished makes the active segment durable up to pubCursor: data
// first, then the checkpoint and the header page (format.md §9).
func (w *Writer) syncPublished() error {
	seg := w.seg
	if w.pubCursor <= w.syncedOff {
		return nil
	}
	if err := w.syncRange(seg, int(w.syncedOff), int(w.pubCursor-w.syncedOff)); err != nil {
		return err
	}
	// The checkpoint is a pair (offset, seq): the background group commit
	// (Interval) writes it too, and an interleaving of the two would record
	// one's offset with the other's seq.
	w.durMu.Lock()
	if uint64(w.pubCursor) > seg.hdr.DurableOffset() {
		seg.hdr.SetDurable(uint64(w.pubCursor), w.seq)
	}
	err := w.syncRange(seg, 0, journal.SegmentHeaderSize)
	w.durMu.Unlock()
	if err != nil {
		return err
	}
	w.syncedOff = w.pubCursor
	w.raiseDurable(w.seq)
	return nil
}

// raiseDurable moves DurableSeq forward (never back: the appender and the
// background group commit both call it).
func (w *Writer) raiseDurable(seq uint64) {
	for {
		cur := w.durableSeq.Load()
		if seq <= cur || w.durableSeq.CompareAndSwap(cur, seq) {
			return
		}
	}
}

// syncRetired makes every segment sealed before the active one durable: it
// waits for the background goroutine to retire the ones rolls handed it, then
// fsyncs those retired without a sync (policies None and Async). Only then
// may the active segment's sync claim a durable seq.
func (w *Writer) syncRetired() error {
	for w.pendingRetire.Load() != 0 {
		time.Sleep(50 * time.Microsecond)
	}
	w.unsyncedMu.Lock()
	list := w.unsynced
	w.unsynced = nil
	w.unsyncedMu.Unlock()
	for _, n := range list {
		f, err := os.OpenFile(journal.SegmentPath(w.dir, n), os.O_RDWR, 0)
		if err != nil {
			return w.fail(fmt.Errorf("sync sealed segment %d: %w", n, err))
		}
		err = f.Sync()
		f.Close()
		w.stats.Syncs++
		if err != nil {
			return w.fail(fmt.Errorf("fsync %s: %w", f.Name(), err))
		}
	}
	return nil
}

func (w *Writer) syncRange(s *wseg, off, n int) error {
	w.stats.Syncs++
	if err := mmap.Sync(s.m, off, n, true); err != nil {
		return w.fail(fmt.Errorf("msync %s: %w", s.path, err))
	}
	return nil
}

func (w *Writer) fail(err error) error {
	err = fmt.Errorf("%w: %w", ErrFailed, err)
	w.failed.CompareAndSwap(nil, &err)
	return *w.failed.Load()
}

// Sync makes every published frame durable now, whatever the policy.
func (w *Writer) Sync() error {
	if err := w.Publish(); err != nil {
		return err
	}
	if err := w.syncRetired(); err != nil {
		return err
	}
	return w.syncPublished()
}

// roll seals the active segment and switches to the prepared one
// (format.md §4.3). Order matters for readers: the next segment is
// activated before the old one is sealed, so a reader that sees the seal
// always finds an active successor.
func (w *Writer) roll() error {
	old := w.seg
	if w.opts.Durability.Mode == Sync && w.cursor > w.syncedOff {
		// Frames staged in the old segment become durable before the next
		// segment's header (first_seq) can reach the disk: otherwise a power
		// loss could leave a successor that starts after a gap.
		if err := w.syncRange(old, int(w.syncedOff), int(w.cursor-w.syncedOff)); err != nil {
			return err
		}
	}
	next, err := w.takePrepared()
	if err != nil {
		return w.fail(fmt.Errorf("roll: %w", err))
	}
	firstSeq := w.seq + 1
	next.hdr.Activate(firstSeq, w.pid)
	if w.opts.Durability.Mode == Sync {
		if err := w.syncRange(next, 0, journal.SegmentHeaderSize); err != nil {
			return err
		}
	}
	if !old.hdr.Sealed() { // sealed already when Open resumes after a crash mid-roll
		n := journal.PutFrame(old.m[w.cursor:], firstSeq, w.opts.Clock(), journal.TypeSegmentEnd, 0, nil)
		end := w.cursor + int64(n)
		old.hdr.SetLastSeq(w.seq)
		old.hdr.SetCursor(uint64(end))
		old.hdr.SetFlags(journal.FlagActive | journal.FlagSealed)
		w.pubCursor, w.cursor = end, end
	}
	w.pubSeq = w.seq
	if w.opts.Durability.Mode == Sync {
		if err := w.syncPublished(); err != nil {
			return err
		}
	}
	w.seg = next
	w.cursor, w.pubCursor, w.syncedOff = journal.SegmentHeaderSize, journal.SegmentHeaderSize, journal.SegmentHeaderSize
	w.ctl.SetActiveSegment(next.num)
	w.active.Store(next)
	w.touchedTo.Store(min(w.opts.PretouchAhead, next.capacity))
	w.kickAt = journal.SegmentHeaderSize
	w.sig.Wake()
	w.stats.Rolls++
	w.pendingRetire.Add(1)
	w.retire <- old // the background goroutine syncs (Interval) and unmaps it
	w.kickNow()
	return nil
}

// takePrepared returns segment active+1, prepared by the background
// goroutine (waiting if it is being created right now) or, failing that,
// created here (a roll stall).
func (w *Writer) takePrepared() (*wseg, error) {
	w.prepMu.Lock()
	defer w.prepMu.Unlock()
	p := w.prepared
	w.prepared = nil
	if p != nil && p.num == w.seg.num+1 {
		return p, nil
	}
	if p != nil {
		p.close()
	}
	w.stats.RollStalls++
	p, err := createSegment(w.dir, w.journalID, w.seg.num+1, w.opts.SegmentSize, time.Now().UnixNano())
	if err == nil {
		w.lastCreated = p.num
	}
	return p, err
}

// Close publishes staged frames, makes everything durable (whatever the
// policy), marks the active segment clean so the next Open needs no scan,
// and releases the lock.
func (w *Writer) Close() error {
	if w.closed {
		return nil
	}
	err := w.Publish()
	close(w.stop)
	<-w.bgDone
	w.closed = true
	if err == nil && w.failed.Load() == nil {
		if err = w.syncRetired(); err == nil {
			err = w.syncPublished()
		}
		if err == nil && w.seg.idxM != nil {
			// The index too, so the clean open that follows finds it whole.
			err = mmap.Sync(w.seg.idxM, 0, len(w.seg.idxM), true)
		}
		if err == nil {
			h := w.seg.hdr
			h.SetFlags(h.Flags() | journal.FlagClean)
			err = w.syncRange(w.seg, 0, journal.SegmentHeaderSize)
		}
	}
	w.ctl.SetWriterPID(0)
	w.sig.Wake()
	err = errors.Join(err, w.closeFiles())
	w.lock.Release()
	return err
}

func (w *Writer) closeFiles() error {
	var errs []error
	if w.seg != nil {
		errs = append(errs, w.seg.close())
	}
	w.prepMu.Lock()
	if w.prepared != nil {
		errs = append(errs, w.prepared.close())
		w.prepared = nil
	}
	w.prepMu.Unlock()
	if w.ctlM != nil {
		mmap.Unmap(w.ctlM)
		w.ctlM = nil
	}
	if w.ctlF != nil {
		w.ctlF.Close()
	}
	return errors.Join(errs...)
}
