// Package writer appends frames to a journal: the single writer of a journal
// directory. It maps the active segment read-write, writes each frame's body,
// and publishes it by storing its commit word last (format.md §4); the
// segment header's write cursor follows, off the readers' hot path.
//
// A Writer is confined to one goroutine at a time (like Chronicle's appender):
// Append, Stage, Publish, Sync and Close must not be called concurrently. Its
// own background goroutine only prefaults pages ahead of the cursor, prepares
// the next segment, runs interval group commit, syncs and unmaps sealed
// segments and rebuilds indexes a power cut left short; it never touches
// frame bytes.
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
	"github.com/mdjournal/mdjournal/internal/fsx"
	"github.com/mdjournal/mdjournal/internal/mmap"
	"github.com/mdjournal/mdjournal/internal/segfile"
	"github.com/mdjournal/mdjournal/internal/words"
	"github.com/mdjournal/mdjournal/journal"
	"github.com/mdjournal/mdjournal/wait"
)

// ErrLocked matches the error Open returns when another live process is the
// journal's writer; the error text names its PID.
var ErrLocked = flock.ErrLocked

// ErrFailed wraps the first failure that leaves the writer unable to keep
// its promises (an msync error, a segment deleted under it): after it every
// call returns the same error, DurableSeq never moves, and Close returns it
// too. A failed msync is never retried: pages are marked clean on failure,
// so a retry can falsely succeed.
var ErrFailed = errors.New("writer: failed")

// ErrTimeRegression is returned by Stage when Options.TimeOrder is
// RefuseRegression and a frame's timestamp is before the previous frame's.
var ErrTimeRegression = errors.New("writer: timestamp goes backwards")

// ErrDefinition is returned for an instrument_def the journal cannot hold:
// an invalid symbol or scale, a symbol that belongs to another id, or an id
// whose symbol would change.
var ErrDefinition = errors.New("writer: instrument definition refused")

// TimeOrder says what the writer does with a timestamp that goes backwards.
type TimeOrder uint8

const (
	// CountRegressions accepts the frame and counts it (Stats.TSRegressions).
	// Time seeks start at the first frame with ts ≥ T found by a forward
	// scan from the index entry before T (format.md §5).
	CountRegressions TimeOrder = iota
	// RefuseRegression refuses the frame with ErrTimeRegression: the journal's
	// timestamps never decrease, so time seeks are exact.
	RefuseRegression
)

// Options configure a Writer. The zero value is valid.
type Options struct {
	// SegmentSize is the capacity of new segment files (default 64 MiB,
	// minimum 256 KiB, maximum 1 GiB, rounded up to 4 KiB). Existing
	// segments keep theirs.
	SegmentSize int64
	// Durability is the msync policy (default None).
	Durability Durability
	// PretouchAhead is how many bytes beyond the cursor the background
	// goroutine keeps prefaulted. The default (0) is the whole segment: the
	// next segment is prefaulted in full while it is prepared, long before
	// the appender reaches it. The cost: a prefaulted page is a dirty page,
	// so on a slow stream the kernel may write the next segment's zeroes back
	// before the appender fills them; a few MiB here avoids that.
	PretouchAhead int64
	// Logf receives recovery notes (torn tails cut, lock taken over,
	// segments moved aside). Nil discards them.
	Logf func(format string, args ...any)
	// Observer, if set, sees every frame right after Stage wrote it, on the
	// appender's goroutine (so it must not block). The order-book snapshot
	// maintainer is one. The frame's Payload aliases the segment mapping and
	// is valid only during the call.
	Observer Observer
	// Perm is the mode of created data files: segments, indexes, .broken
	// files (default 0640: readable by the owner's group).
	Perm os.FileMode
	// CtlPerm is the mode of the control page journal.ctl (default 0640).
	// Readers announce futex waits by writing to it; readers that cannot
	// write it wait by polling (wait.Backoff). 0660 lets the owner's group
	// futex-wait; the writer then guards its control-page accesses, so a
	// group member truncating the file fails the writer with an error, never
	// a SIGBUS (format.md §6).
	CtlPerm os.FileMode
	// TimeOrder is what happens to a timestamp going backwards (default:
	// counted).
	TimeOrder TimeOrder
	// JournalID and FirstSeq apply only when Open creates a new journal: its
	// id (0: random) and the seq of its first frame (0 or 1: 1). A replica
	// of another journal (ship/mirror) takes the origin's id and starts at
	// the origin's first retained seq, then appends with Copy.
	JournalID uint64
	FirstSeq  uint64
	// NoRestate turns off re-stating the instrument definitions and trading
	// statuses at the start of every segment (format.md §3.4). Only a
	// replica that copies another journal's frames verbatim sets it.
	NoRestate bool
}

// Observer is told about each appended frame, in sequence order.
type Observer interface {
	Observe(f *journal.Frame)
}

// Admitter is an Observer that can refuse a frame before it is staged: the
// order-book snapshot maintainer refuses an instrument id it has no slot
// for, so no frame is ever silently left out of the snapshot. Stage returns
// Admit's error and the frame is not written.
type Admitter interface {
	Admit(typ journal.MsgType, instrument uint32) error
}

// Stats are counters of writer events since Open.
type Stats struct {
	Frames        uint64 // frames appended (re-stated frames included)
	Bytes         uint64 // segment bytes used by them, padding included
	Rolls         uint64 // segment switches
	RollStalls    uint64 // rolls that had to create the next segment synchronously
	Syncs         uint64 // MS_SYNC calls issued (data and header)
	Restated      uint64 // definitions and statuses re-stated at segment starts
	TSRegressions uint64 // frames whose timestamp went backwards (CountRegressions)
}

// Recovery says what Open found and did (format.md §8).
type Recovery struct {
	Epoch        uint32 // the writer's recovery epoch
	Clean        bool   // the last writer closed cleanly: nothing was scanned
	TornBytes    int64  // bytes cut from a torn tail (saved to .broken)
	BrokenFile   string // where they were saved
	Lost         int64  // bytes the cursor claimed that were gone (not durable when power was lost)
	MovedAside   []string
	Sealed       []uint64 // predecessors sealed (a crash mid-roll)
	LastSeq      uint64   // last seq recovered
	EpochStarted bool     // an unclean recovery started a new epoch in a new segment
}

// wseg is a segment the writer holds: mapped read-write, with its index and
// the in-memory copy of its state record.
type wseg struct {
	*segfile.Seg
	idx *segfile.Index
	st  journal.State
	// seal, under Interval, is the seal roll() left for the background
	// goroutine to write once the segment's frames and its successor's
	// activation are durable (format.md §4.3); nil otherwise. Guarded by
	// Writer.durMu.
	seal *sealInfo
}

// sealInfo is a seal not yet written: the end of the segment (past its end
// marker) and the seq of its last data frame.
type sealInfo struct {
	end  int64
	last uint64
}

func (s *wseg) close() error {
	return errors.Join(s.idx.Close(), s.Seg.Close())
}

type commit struct {
	off  int64
	word uint64
}

// maxPending bounds a batch held back until Publish: a larger batch becomes
// visible in parts, in order (format.md §4).
const maxPending = 256

// Writer is the single appender of a journal.
type Writer struct {
	dir       string
	opts      Options
	lock      *flock.Lock
	pid       uint32
	journalID uint64
	epoch     uint32
	recovery  Recovery

	ctlF       *os.File
	ctlM       []byte
	ctl        journal.Ctl
	sig        wait.Signal
	ctlGuarded bool

	admit Admitter // opts.Observer, if it is one

	seg       *wseg
	cursor    int64  // end of staged frames in seg
	pubCursor int64  // end of published frames in seg
	seq       uint64 // last staged seq
	pubSeq    uint64 // last published seq
	lastTS    int64
	pend      [maxPending]commit
	npend     int
	catalog   *journal.Catalog
	// needRestate: a new segment was started outside a roll (after a
	// compressed last segment); the catalogue is re-stated once it is known.
	needRestate bool

	active    atomic.Pointer[wseg]
	touchedTo atomic.Int64 // pretouched up to here in the active segment
	touchAll  atomic.Bool  // Prefault is running: the appender is not writing, every page may be touched
	kickAt    int64        // next cursor at which to wake the background goroutine
	kick      chan struct{}
	stop      chan struct{}
	bgDone    chan struct{}
	retire    chan retired

	prepMu      sync.Mutex
	prepared    *wseg
	lastCreated uint64 // highest segment number created (under prepMu)

	syncedOff  int64      // Sync mode: durable offset in seg (appender-owned)
	durMu      sync.Mutex // serialises state-record writes (appender vs background group commit)
	durableSeq atomic.Uint64
	// Segments handed to the background goroutine by a roll and not yet
	// retired; and (None, Async) retired segments not yet made durable,
	// kept open by descriptor so that compress or prune renaming or deleting
	// them cannot make Sync or Close fail (format.md §9).
	pendingRetire atomic.Int64
	unsyncedMu    sync.Mutex
	unsynced      []*os.File
	failed        atomic.Pointer[error]
	stats         Stats
	syncs         atomic.Uint64 // Stats.Syncs: counted by the appender and the background goroutine
	closed        bool
	obsFrame      journal.Frame
}

// retired is a sealed segment on its way to the background goroutine, with
// the successor whose activation must be durable before the seal is.
type retired struct {
	old, next *wseg
}

// Open opens (creating if needed) the journal in dir for writing. It takes
// the single-writer lock, recovers the tail of the journal (format.md §8)
// and prepares the next segment.
func Open(dir string, opts Options) (*Writer, error) {
	if opts.SegmentSize == 0 {
		opts.SegmentSize = journal.DefaultSegmentSize
	}
	if opts.SegmentSize < journal.MinSegmentSize || opts.SegmentSize > journal.MaxSegmentSize {
		return nil, fmt.Errorf("writer: segment size %d outside [%d, %d]", opts.SegmentSize, journal.MinSegmentSize, journal.MaxSegmentSize)
	}
	opts.SegmentSize = (opts.SegmentSize + 4095) &^ 4095
	if opts.PretouchAhead <= 0 {
		opts.PretouchAhead = 1 << 40 // the whole segment
	}
	if opts.Logf == nil {
		opts.Logf = func(string, ...any) {}
	}
	if opts.Perm == 0 {
		opts.Perm = fsx.DataPerm
	}
	if opts.CtlPerm == 0 {
		opts.CtlPerm = fsx.DataPerm
	}
	if opts.Durability.Mode == Interval && opts.Durability.Interval <= 0 {
		opts.Durability.Interval = defaultSyncInterval
	}
	if err := fsx.MkdirAll(dir, fsx.DirPerm); err != nil {
		return nil, err
	}
	lock, err := flock.Acquire(filepath.Join(dir, journal.LockFile), 0)
	if err != nil {
		var held *flock.HeldError
		if errors.As(err, &held) {
			return nil, fmt.Errorf("writer: journal %s already has a writer: %w", dir, err)
		}
		return nil, fmt.Errorf("writer: lock %s: %w", dir, err)
	}
	w := &Writer{dir: dir, opts: opts, lock: lock, pid: uint32(os.Getpid()),
		kick: make(chan struct{}, 1), stop: make(chan struct{}), bgDone: make(chan struct{}),
		retire: make(chan retired, 64), catalog: journal.NewCatalog()}
	w.admit, _ = opts.Observer.(Admitter)
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
	segfile.RemoveTemps(w.dir)
	if err := w.recoverJournal(); err != nil {
		return err
	}
	if err := w.openCtl(); err != nil {
		return err
	}
	if err := w.loadCatalog(); err != nil {
		return err
	}
	if w.needRestate {
		w.restate()
	}
	if w.recovery.EpochStarted {
		// An unclean shutdown: frames readers saw may have been lost with
		// the page cache, so everything from here is a new epoch, in a new
		// segment (format.md §8.4).
		if err := w.roll(); err != nil {
			return err
		}
	} else {
		// Not clean from now on, and say so on disk before any new frame: a
		// crash must not leave a stale "clean" flag that makes the next open
		// trust the cursor.
		if err := w.writeState(w.seg, func(st *journal.State) { st.Flags &^= journal.StateClean; st.WriterPID = w.pid }); err != nil {
			return err
		}
		if err := w.syncRange(w.seg, 0, journal.SegmentHeaderSize); err != nil {
			return err
		}
	}
	w.active.Store(w.seg)
	w.lastCreated = max(w.lastCreated, w.seg.Num)
	if w.prepared != nil {
		w.lastCreated = max(w.lastCreated, w.prepared.Num)
	}
	w.syncedOff = w.seg.st.DurableOffset
	w.durableSeq.Store(w.seg.st.DurableSeq)
	// The first few MiB now, the rest from the background goroutine.
	end := min(w.cursor+min(w.opts.PretouchAhead, 4<<20), w.seg.Capacity)
	mmap.PopulateWrite(w.seg.Data[w.cursor&^4095 : end])
	mmap.TouchWrite(w.seg.Data[w.cursor&^4095 : end]) // the appender is this goroutine, not writing yet
	w.touchedTo.Store(end)
	w.kickAt = w.cursor + min(w.opts.PretouchAhead/2, 1<<20)
	w.kickNow()
	return nil
}

func (w *Writer) openCtl() error {
	path := filepath.Join(w.dir, journal.CtlFile)
	kind, _, err := fsx.Lstat(path)
	if err != nil {
		return err
	}
	if kind == "missing" {
		if err := w.createCtl(path); err != nil {
			return err
		}
	}
	f, err := fsx.Open(path, os.O_RDWR, 0)
	if err != nil {
		return fmt.Errorf("writer: control page: %w", err)
	}
	st, err := f.Stat()
	if err != nil || st.Size() < journal.CtlSize {
		f.Close()
		// Short (an old or damaged file): make a new one; readers that have
		// the old one mapped keep polling it until they reopen.
		if err := w.createCtl(path); err != nil {
			return err
		}
		return w.openCtl()
	}
	m, err := mmap.Map(f, journal.CtlSize, true)
	if err != nil {
		f.Close()
		return err
	}
	c := journal.CtlOf(m)
	if c.Magic() != journal.CtlMagic || c.Version() != journal.Version || c.JournalID() != w.journalID {
		clear(m)
		journal.PutCtlHeader(m, w.journalID, time.Now().UnixNano())
	}
	atomic.StoreUint64(words.U64(m, journal.CtlOffActive), w.seg.Num)
	atomic.StoreUint32(words.U32(m, journal.CtlOffWriterPID), w.pid)
	// Another user (or group) that can write the page can also truncate it:
	// then every access is guarded, so a truncation fails the writer with an
	// error instead of killing it with SIGBUS.
	w.ctlGuarded = st.Mode().Perm()&0o022 != 0 || int(statUID(st)) != os.Geteuid()
	w.ctlF, w.ctlM, w.ctl, w.sig = f, m, c, wait.SignalAt(words.U32(m, journal.CtlOffNotify), words.U32(m, journal.CtlOffWaiters))
	return nil
}

// createCtl writes a complete control page under a temporary name and
// renames it into place: a reader never maps a page shorter than 4096.
func (w *Writer) createCtl(path string) error {
	tmp := path + journal.TmpExt
	f, err := fsx.CreateTemp(tmp, w.opts.CtlPerm)
	if err != nil {
		return err
	}
	err = mmap.Reserve(f, journal.CtlSize)
	if err == nil {
		var page [journal.CtlSize]byte
		journal.PutCtlHeader(page[:], w.journalID, time.Now().UnixNano())
		_, err = f.WriteAt(page[:], 0)
	}
	if err == nil {
		err = f.Sync()
	}
	f.Close()
	if err == nil {
		err = fsx.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
	}
	return err
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

// Dir returns the journal directory.
func (w *Writer) Dir() string { return w.dir }

// JournalID returns the journal's random identity, shared by all its files.
func (w *Writer) JournalID() uint64 { return w.journalID }

// Epoch returns the writer's recovery epoch (format.md §8.4).
func (w *Writer) Epoch() uint32 { return w.epoch }

// Recovery says what Open found and did.
func (w *Writer) Recovery() Recovery { return w.recovery }

// LastSeq returns the sequence number of the last staged frame (0 if none).
func (w *Writer) LastSeq() uint64 { return w.seq }

// LastTime returns the timestamp of the last staged frame (0 if none): an
// importer of history checks against it that it does not go back in time.
func (w *Writer) LastTime() int64 { return w.lastTS }

// PublishedSeq returns the sequence number of the last frame readers can see.
func (w *Writer) PublishedSeq() uint64 { return w.pubSeq }

// DurableSeq returns the last sequence number known to be on stable storage
// (MS_SYNC completed for it and every frame before it).
func (w *Writer) DurableSeq() uint64 { return w.durableSeq.Load() }

// Stats returns event counters.
func (w *Writer) Stats() Stats {
	s := w.stats
	s.Syncs = w.syncs.Load()
	return s
}

// Catalog returns a copy of the instruments the journal defines (as of the
// last staged frame).
func (w *Writer) Catalog() *journal.Catalog { return w.catalog.Clone() }

// Err returns the error that failed the writer, or nil.
func (w *Writer) Err() error {
	if p := w.failed.Load(); p != nil {
		return *p
	}
	return nil
}

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

// AppendSource is Append for a frame with a source trailer: when the feed
// handler received it (recvTS, Unix ns) and the feed's own sequence number
// (format.md §3.3).
func (w *Writer) AppendSource(typ journal.MsgType, instr uint32, ts int64, payload []byte, recvTS int64, sourceSeq uint64) (uint64, error) {
	seq, err := w.StageSource(typ, instr, ts, payload, recvTS, sourceSeq)
	if err != nil {
		return 0, err
	}
	return seq, w.Publish()
}

// Stage writes one frame without publishing it: readers see it at the next
// Publish (or Append). Staging a batch and publishing once amortises the
// cursor store, the wake-up check and the durability action.
func (w *Writer) Stage(typ journal.MsgType, instr uint32, ts int64, payload []byte) (uint64, error) {
	return w.stage(typ, 0, instr, ts, payload, 0, 0)
}

// StageSource is Stage with a source trailer (see AppendSource).
func (w *Writer) StageSource(typ journal.MsgType, instr uint32, ts int64, payload []byte, recvTS int64, sourceSeq uint64) (uint64, error) {
	return w.stage(typ, journal.FrameSource, instr, ts, payload, recvTS, sourceSeq)
}

func (w *Writer) usable() error {
	if w.closed {
		return journal.ErrClosed
	}
	if p := w.failed.Load(); p != nil {
		return *p
	}
	return nil
}

func (w *Writer) stage(typ journal.MsgType, flags uint16, instr uint32, ts int64, payload []byte, recvTS int64, sourceSeq uint64) (uint64, error) {
	if err := w.usable(); err != nil {
		return 0, err
	}
	n := len(payload)
	if flags&journal.FrameSource != 0 {
		n += journal.SourceTrailerSize
	}
	if ps := typ.PayloadSize(); (ps != len(payload) && (ps != -1 || n > journal.MaxPayload)) || typ == journal.TypeSegmentEnd {
		return 0, w.payloadError(typ, len(payload))
	}
	if ts < w.lastTS && w.seq > 0 {
		if w.opts.TimeOrder == RefuseRegression {
			return 0, fmt.Errorf("%w: %d is before the previous frame's %d", ErrTimeRegression, ts, w.lastTS)
		}
		w.stats.TSRegressions++
	}
	if typ == journal.TypeInstrumentDef || typ == journal.TypeTradingStatus {
		if err := w.checkDefinition(typ, instr, payload); err != nil {
			return 0, err
		}
	}
	if w.admit != nil {
		if err := w.admit.Admit(typ, instr); err != nil {
			return 0, err
		}
	}
	space := int64(journal.FrameSpace(n))
	if w.cursor+space+journal.EndMarkerSize > w.seg.Capacity {
		if err := w.roll(); err != nil {
			return 0, err
		}
	}
	return w.put(typ, flags, instr, ts, payload, recvTS, sourceSeq, space), nil
}

// put writes a frame that fits at the cursor and queues its commit word.
func (w *Writer) put(typ journal.MsgType, flags uint16, instr uint32, ts int64, payload []byte, recvTS int64, sourceSeq uint64, space int64) uint64 {
	off := w.cursor
	w.seq++
	b := w.seg.Data[off : off+space]
	var word uint64
	if flags&journal.FrameSource != 0 {
		word = journal.PutFrameBodySource(b, w.seq, ts, typ, flags, instr, payload, recvTS, sourceSeq)
	} else {
		word = journal.PutFrameBody(b, w.seq, ts, typ, flags, instr, payload)
	}
	if w.npend == maxPending {
		w.commitPending()
	}
	w.pend[w.npend] = commit{off, word}
	w.npend++
	w.seg.idx.Add(off, w.seq, ts)
	if typ == journal.TypeInstrumentDef || typ == journal.TypeTradingStatus {
		w.obsFrame = journal.Frame{Seq: w.seq, TS: ts, Type: typ, Flags: flags, Instrument: instr, Payload: payload}
		w.catalog.Apply(&w.obsFrame)
	}
	if w.opts.Observer != nil {
		hsize := int64(journal.FrameHeaderSize)
		w.obsFrame = journal.Frame{Seq: w.seq, TS: ts, Type: typ, Flags: flags, Instrument: instr,
			Payload: w.seg.Data[off+hsize : off+hsize+int64(len(payload))], RecvTS: recvTS, SourceSeq: sourceSeq,
			Segment: w.seg.Num, Offset: off}
		w.opts.Observer.Observe(&w.obsFrame) // a field, not a literal: passing it to an interface must not allocate
	}
	w.cursor = off + space
	w.lastTS = ts
	w.stats.Frames++
	w.stats.Bytes += uint64(space)
	return w.seq
}

// Copy stages a frame taken from another journal verbatim — its seq,
// timestamp, type, flags (re-stated, source trailer), instrument, payload
// and trailer — for a replica. f.Seq must be LastSeq()+1: a replica never
// skips or repeats a seq. Definitions are checked as Stage checks them. A
// replica's writer sets NoRestate (re-stated frames come from the origin,
// with their own seqs); Publish makes copied frames visible like staged ones.
func (w *Writer) Copy(f *journal.Frame) error {
	if err := w.usable(); err != nil {
		return err
	}
	if f.Seq != w.seq+1 {
		return fmt.Errorf("writer: copied frame has seq %d, the next seq is %d", f.Seq, w.seq+1)
	}
	if f.Flags&^(journal.FrameRestated|journal.FrameSource) != 0 {
		return fmt.Errorf("writer: copied frame %d has unknown flags %#x", f.Seq, f.Flags)
	}
	if reason, _ := journal.CheckContent(f); reason != "" {
		return fmt.Errorf("writer: copied frame %d: %s", f.Seq, reason)
	}
	_, err := w.stage(f.Type, f.Flags, f.Instrument, f.TS, f.Payload, f.RecvTS, f.SourceSeq)
	return err
}

// Roll seals the active segment now and continues in the next one (a
// replica can keep its origin's segment boundaries). Staged frames are
// published first.
func (w *Writer) Roll() error {
	if err := w.Publish(); err != nil {
		return err
	}
	if w.cursor == journal.SegmentHeaderSize {
		return nil // nothing in it: rolling would leave an empty sealed segment
	}
	if err := w.roll(); err != nil {
		return err
	}
	return w.Publish()
}

// checkDefinition refuses what would make the journal lie about its
// instruments: an invalid definition, a symbol that belongs to another id,
// a change of an id's symbol, an unknown trading state.
func (w *Writer) checkDefinition(typ journal.MsgType, instr uint32, payload []byte) error {
	if typ == journal.TypeTradingStatus {
		var s journal.TradingStatus
		if s.Decode(payload); s.Status < journal.StatusHalted || s.Status > journal.StatusTrading {
			return fmt.Errorf("%w: trading status %d of instrument %d is not a known state", ErrDefinition, s.Status, instr)
		}
		return nil
	}
	var d journal.InstrumentDef
	d.Decode(payload)
	if err := d.Validate(); err != nil {
		return fmt.Errorf("%w: instrument %d: %v", ErrDefinition, instr, err)
	}
	sym := d.SymbolString()
	if other, ok := w.catalog.BySymbol(sym); ok && other.ID != instr {
		return fmt.Errorf("%w: symbol %q is instrument %d already, not %d", ErrDefinition, sym, other.ID, instr)
	}
	if cur, ok := w.catalog.Lookup(instr); ok && cur.Symbol != "" && cur.Symbol != sym {
		return fmt.Errorf("%w: instrument %d is %q; a definition naming it %q is refused (use a new id)", ErrDefinition, instr, cur.Symbol, sym)
	}
	if _, ok := w.catalog.Lookup(instr); !ok && !w.opts.NoRestate {
		// Every segment re-states every definition: they must fit in half a
		// segment whatever happens.
		if need := int64(w.catalog.Len()+1) * int64(journal.FrameSpace(32)+journal.FrameSpace(16)); need > w.seg.Capacity/2 {
			return fmt.Errorf("%w: %d instruments need %d bytes of re-statement per segment; use segments over %d bytes",
				ErrDefinition, w.catalog.Len()+1, need, 2*need)
		}
	}
	return nil
}

func (w *Writer) payloadError(typ journal.MsgType, n int) error {
	switch ps := typ.PayloadSize(); {
	case ps == -2 || typ == journal.TypeSegmentEnd:
		return fmt.Errorf("writer: cannot append message type %d", typ)
	case ps == -1:
		return fmt.Errorf("%w: %d-byte payload (and trailer), max %d", journal.ErrFrameTooLarge, n, journal.MaxPayload)
	default:
		return fmt.Errorf("writer: %s payload must be %d bytes, got %d", typ, ps, n)
	}
}

// commitPending stores the commit words of the staged frames, in order:
// from here on readers spinning on them see them (format.md §4).
func (w *Writer) commitPending() {
	for i := 0; i < w.npend; i++ {
		w.seg.StoreCommit(w.pend[i].off, w.pend[i].word)
	}
	w.npend = 0
}

// Publish makes every staged frame visible to readers (their commit words,
// in order), then advances the header's write cursor and the index count,
// wakes futex waiters if any announced themselves, and applies the
// durability policy.
func (w *Writer) Publish() error {
	if w.cursor == w.pubCursor {
		return w.usable()
	}
	if err := w.usable(); err != nil {
		return err
	}
	seg := w.seg
	from := w.pubCursor
	w.commitPending()
	seg.SetCursor(w.cursor) // seq-cst: orders the commit words before the waiters load in wake
	seg.idx.Publish()
	w.pubCursor = w.cursor
	w.pubSeq = w.seq
	if err := w.wake(); err != nil {
		return err
	}
	switch w.opts.Durability.Mode {
	case Async:
		if err := mmap.Sync(seg.Data, int(from), int(w.cursor-from), false); err != nil {
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

// wake wakes announced futex waiters. When others can write (and so
// truncate) the control page, the access is guarded and a truncation fails
// the writer instead of killing it.
func (w *Writer) wake() error {
	if !w.ctlGuarded {
		w.sig.Wake()
		return nil
	}
	return w.guardedWake()
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

// writeState updates segment s's state record (under durMu: the appender
// and the background group commit both write it).
func (w *Writer) writeState(s *wseg, change func(*journal.State)) error {
	w.durMu.Lock()
	defer w.durMu.Unlock()
	st := s.st
	change(&st)
	s.st = s.WriteState(st)
	return nil
}

// syncPublished makes the active segment durable up to pubCursor: data
// first, then the checkpoint in a new state record, then the header page
// (format.md §9).
func (w *Writer) syncPublished() error {
	seg := w.seg
	if w.pubCursor <= w.syncedOff {
		return nil
	}
	if err := w.syncRange(seg, int(w.syncedOff), int(w.pubCursor-w.syncedOff)); err != nil {
		return err
	}
	w.durMu.Lock()
	if w.pubCursor > seg.st.DurableOffset {
		st := seg.st
		st.DurableOffset, st.DurableSeq = w.pubCursor, w.pubSeq
		seg.st = seg.WriteState(st)
	}
	err := w.syncRange(seg, 0, journal.SegmentHeaderSize)
	w.durMu.Unlock()
	if err != nil {
		return err
	}
	w.syncedOff = w.pubCursor
	w.raiseDurable(w.pubSeq)
	return nil
}

// raiseDurable moves DurableSeq forward (never back, and never after a
// failure: the appender and the background group commit both call it).
func (w *Writer) raiseDurable(seq uint64) {
	for w.failed.Load() == nil {
		cur := w.durableSeq.Load()
		if seq <= cur || w.durableSeq.CompareAndSwap(cur, seq) {
			return
		}
	}
}

// syncRetired makes every segment sealed before the active one durable: it
// waits for the background goroutine to retire the ones rolls handed it, then
// fsyncs, by descriptor, those retired without a sync (policies None and
// Async). Only then may the active segment's sync claim a durable seq.
func (w *Writer) syncRetired() error {
	for w.pendingRetire.Load() != 0 {
		if err := w.usable(); err != nil {
			return err
		}
		time.Sleep(50 * time.Microsecond)
	}
	w.unsyncedMu.Lock()
	list := w.unsynced
	w.unsynced = nil
	w.unsyncedMu.Unlock()
	var ferr error
	for _, f := range list {
		if ferr == nil {
			w.syncs.Add(1)
			if err := f.Sync(); err != nil {
				ferr = w.fail(fmt.Errorf("fsync %s: %w", f.Name(), err))
			}
		}
		f.Close()
	}
	return ferr
}

func (w *Writer) syncRange(s *wseg, off, n int) error {
	w.syncs.Add(1)
	if err := s.Sync(off, n); err != nil {
		return w.fail(err)
	}
	return nil
}

// fail records the first failure; every later call returns it.
func (w *Writer) fail(err error) error {
	if !errors.Is(err, ErrFailed) {
		err = fmt.Errorf("%w: %w", ErrFailed, err)
	}
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

// Close publishes staged frames, makes everything durable (whatever the
// policy), marks the active segment clean so the next Open needs no scan,
// and releases the lock. A writer that failed returns its failure.
func (w *Writer) Close() error {
	if w.closed {
		return w.Err()
	}
	err := w.Publish()
	close(w.stop)
	<-w.bgDone
	w.closed = true
	if err == nil && w.failed.Load() == nil {
		if err = w.syncRetired(); err == nil {
			err = w.syncPublished()
		}
		if err == nil {
			err = w.seg.idx.Sync()
		}
		if err == nil {
			err = w.writeState(w.seg, func(st *journal.State) {
				st.DurableOffset, st.DurableSeq = w.pubCursor, w.pubSeq
				st.Flags |= journal.StateClean
			})
		}
		if err == nil {
			err = w.syncRange(w.seg, 0, journal.SegmentHeaderSize)
		}
	}
	if w.ctlM != nil && w.ctlGuardOK() {
		atomic.StoreUint32(words.U32(w.ctlM, journal.CtlOffWriterPID), 0)
		w.wake()
	}
	err = errors.Join(err, w.closeFiles())
	w.lock.Release()
	if f := w.failed.Load(); f != nil && err == nil {
		err = *f
	}
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
	w.unsyncedMu.Lock()
	for _, f := range w.unsynced {
		f.Close()
	}
	w.unsynced = nil
	w.unsyncedMu.Unlock()
	if w.ctlM != nil {
		mmap.Unmap(w.ctlM)
		w.ctlM = nil
	}
	if w.ctlF != nil {
		w.ctlF.Close()
	}
	return errors.Join(errs...)
}
