package snapshot

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/mdjournal/mdjournal/internal/flock"
	"github.com/mdjournal/mdjournal/internal/fsx"
	"github.com/mdjournal/mdjournal/internal/mmap"
	"github.com/mdjournal/mdjournal/journal"
)

// Errors that are not data damage.
var (
	// ErrInstrument is returned for an instrument id ≥ the file's capacity.
	ErrInstrument = errors.New("snapshot: instrument id out of range")
	// ErrStalled is returned by Reader.Read when a slot's seqlock counter
	// stayed odd (a publish in progress) for longer than the stall timeout:
	// the writer died, or was stopped, in the middle of a publish.
	ErrStalled = errors.New("snapshot: writer stalled in the middle of a publish")
	// ErrLocked is returned (wrapped in *LockedError) when another process
	// holds the snapshot's writer lock.
	ErrLocked = errors.New("snapshot: file is open for writing by another process")
	// ErrExposed is returned when a snapshot file or its lock file can be
	// opened or changed by other users: a lock file anyone else can open can
	// be held by them to block every writer, and a snapshot file anyone else
	// can write can be truncated under the writer's mapping. mdjournal never
	// creates such files; finding one means it was planted or re-moded.
	ErrExposed = errors.New("snapshot: file is open to other users")
)

// DefaultPerm is the mode of a snapshot file when Options.Perm is 0: the
// owner writes, the owner's group reads. The writer lock file (LockPath) is
// always 0600.
const DefaultPerm os.FileMode = fsx.DataPerm

// LockedError says who holds a snapshot's writer lock (found in
// /proc/locks, never by taking a lock). It wraps ErrLocked.
type LockedError struct {
	Path   string // the lock file, LockPath(snapshot path)
	PID    int    // the holder; 0 if /proc/locks does not name it
	Shared bool   // the holder took a shared lock: not a writer, but it blocks writers
}

// Error names the lock file, the holder and its kind of lock.
func (e *LockedError) Error() string {
	switch {
	case e.PID == 0:
		return fmt.Sprintf("snapshot: %s is locked by a process that /proc/locks does not name", e.Path)
	case e.Shared:
		return fmt.Sprintf("snapshot: %s is held with a shared lock by PID %d: that process is not a snapshot writer, but it blocks writers until it lets go", e.Path, e.PID)
	}
	return fmt.Sprintf("snapshot: %s is locked by PID %d, another snapshot writer", e.Path, e.PID)
}

// Unwrap returns ErrLocked.
func (e *LockedError) Unwrap() error { return ErrLocked }

// LockPath is the writer lock file of the snapshot file at path: path +
// ".lock". It is created mode 0600 and is never removed.
func LockPath(path string) string { return path + ".lock" }

// tempPath is the name a new file is built under before it is linked or
// renamed into place. Only the lock holder uses it.
func tempPath(path string) string { return path + ".tmp" }

// Options configure Create and Prepare.
type Options struct {
	Depth     int    // price levels per side, 1..MaxDepth
	Capacity  int    // number of slots: instrument ids 0..Capacity-1, 1..MaxCapacity
	JournalID uint64 // journal.Header.JournalID of the journal the snapshot mirrors
	// Perm is the file's mode (DefaultPerm, 0640, if 0). Read bits for the
	// group and others are allowed; write bits for them are refused
	// (ErrExposed): whoever can write the file can truncate it under the
	// writer's mapping.
	Perm os.FileMode
}

func (o *Options) check() error {
	if o.Depth < 1 || o.Depth > MaxDepth {
		return fmt.Errorf("snapshot: depth %d outside [1,%d]", o.Depth, MaxDepth)
	}
	if o.Capacity < 1 || o.Capacity > MaxCapacity {
		return fmt.Errorf("snapshot: capacity %d outside [1,%d]", o.Capacity, MaxCapacity)
	}
	if o.Perm == 0 {
		o.Perm = DefaultPerm
	}
	if o.Perm&^os.ModePerm != 0 {
		return fmt.Errorf("snapshot: mode %v is not a permission mode", o.Perm)
	}
	if o.Perm&0o022 != 0 {
		return fmt.Errorf("%w: mode %#o lets the group or others write the file (and truncate it under the writer)", ErrExposed, uint32(o.Perm))
	}
	if o.Perm&0o600 != 0o600 {
		return fmt.Errorf("snapshot: mode %#o does not let the owner read and write the file", uint32(o.Perm))
	}
	return nil
}

// Writer is the single writer of a snapshot file. Its methods are not safe
// for concurrent use; at most one Writer per file exists system-wide: it
// holds an exclusive flock on LockPath(path) from open to Close.
type Writer struct {
	m
	lock *flock.Lock
	// last is the value last stored in the header's last_applied word;
	// math.MaxUint64 pins it (the file is not intact: see Intact).
	last    uint64
	tmp     string // a prepared file not installed yet: its temporary name
	intact  bool
	prevPID uint32
	emptied []uint32
}

// m is the mapping shared by Writer and Reader.
type m struct {
	name     string
	f        *os.File
	mem      []byte
	base     unsafe.Pointer
	l        layout
	depth    uint32
	capacity uint32
	slotSize uintptr
}

func (x *m) slot(instr uint32) unsafe.Pointer {
	return unsafe.Add(x.base, HeaderSize+uintptr(instr)*x.slotSize)
}

// Path is the file's name as given to Create, Prepare, OpenWriter or Open.
func (x *m) Path() string { return x.name }

// Depth is N, the number of price levels kept per side.
func (x *m) Depth() int { return x.l.depth }

// Capacity is the number of slots (valid instrument ids are 0..Capacity-1).
func (x *m) Capacity() int { return x.l.capacity }

// JournalID identifies the journal this snapshot mirrors.
func (x *m) JournalID() uint64 { return x.l.journalID }

// Created is the file's creation time, Unix ns.
func (x *m) Created() int64 { return x.l.created }

// LastApplied is the header's last-applied journal sequence number: every
// journal message with a sequence number ≤ it is reflected in every slot
// (see the late-joiner procedure in the package documentation).
func (x *m) LastApplied() uint64 { return atomic.LoadUint64(u64(x.base, HdrOffLastApplied)) }

// WriterPID is the PID recorded by the process that has the file open for
// writing; 0 if none, and then the last writer closed cleanly: every slot
// was synced to disk before the 0 was stored and synced.
func (x *m) WriterPID() uint32 { return atomic.LoadUint32(u32(x.base, hdrOffWriterPID)) }

func (x *m) unmap() error {
	err := mmap.Unmap(x.mem)
	x.mem, x.base, x.capacity = nil, nil, 0
	if cerr := x.f.Close(); err == nil {
		err = cerr
	}
	return err
}

// acquire takes the writer lock of the snapshot at path, refusing a lock
// file that other users could open (and so hold).
func acquire(path string) (*flock.Lock, error) {
	lp := LockPath(path)
	l, err := flock.Acquire(lp, fsx.LockPerm)
	if err != nil {
		var held *flock.HeldError
		if errors.As(err, &held) {
			return nil, &LockedError{Path: lp, PID: held.PID, Shared: held.Shared}
		}
		if errors.Is(err, flock.ErrExposed) {
			return nil, fmt.Errorf("%w: %v", ErrExposed, err)
		}
		return nil, fmt.Errorf("snapshot: writer lock: %w", err)
	}
	return l, nil
}

// private refuses a file owned by another user or whose mode grants the
// group or others any of the bits in mask.
func private(path string, st *unix.Stat_t, mask uint32, what string) error {
	if uid := uint32(os.Geteuid()); st.Uid != uid {
		return fmt.Errorf("%w: %s is owned by uid %d, not this process's uid %d: its owner can %s; remove it if it is not yours",
			ErrExposed, path, st.Uid, uid, what)
	}
	if st.Mode&mask != 0 {
		return fmt.Errorf("%w: %s is mode %#o: users other than its owner can %s; remove it (mdjournal recreates it)",
			ErrExposed, path, st.Mode&0o7777, what)
	}
	return nil
}

// Create makes a new snapshot file at path with every slot empty and links
// it into place. It fails (os.ErrExist) if path exists; a symlink, FIFO,
// device or directory at path is journal.ErrNotRegular. The file is built
// under a temporary name and linked into place complete, so a reader never
// sees a half-written header.
func Create(path string, o Options) (*Writer, error) {
	w, err := prepare(path, o, false)
	if err != nil {
		return nil, err
	}
	if err := w.install(false); err != nil {
		w.Close()
		return nil, err
	}
	return w, nil
}

// Prepare takes path's writer lock and makes a new snapshot file with every
// slot empty under a temporary name (path + ".tmp"); Publish into it, then
// Install it to replace whatever file is at path in one atomic rename.
// Readers of the old file keep reading it until they reopen
// (Reader.Replaced), and new readers never see the new file before it is
// complete. Close without Install removes it and leaves path alone.
func Prepare(path string, o Options) (*Writer, error) { return prepare(path, o, true) }

func prepare(path string, o Options, replace bool) (*Writer, error) {
	if err := o.check(); err != nil {
		return nil, err
	}
	lock, err := acquire(path)
	if err != nil {
		return nil, err
	}
	w, err := prepareLocked(path, o, lock, replace)
	if err != nil {
		lock.Release()
		return nil, err
	}
	return w, nil
}

func prepareLocked(path string, o Options, lock *flock.Lock, replace bool) (*Writer, error) {
	switch kind, _, err := fsx.Lstat(path); {
	case err != nil:
		return nil, err
	case kind == "regular" && !replace:
		return nil, &os.PathError{Op: "create", Path: path, Err: os.ErrExist}
	case kind != "regular" && kind != "missing":
		return nil, &fsx.NotRegularError{Path: path, What: kind}
	}
	l := layout{
		journalID: o.JournalID,
		depth:     o.Depth,
		slotSize:  SlotSize(o.Depth),
		capacity:  o.Capacity,
		created:   time.Now().UnixNano(),
		fileSize:  FileSize(o.Depth, o.Capacity),
	}
	tmp := tempPath(path)
	// CreateTemp removes a leftover regular file (or symlink: unlink never
	// follows) of that name and creates with O_EXCL|O_NOFOLLOW: a planted
	// symlink's target is never opened.
	f, err := fsx.CreateTemp(tmp, o.Perm)
	if err != nil {
		return nil, err
	}
	fail := func(err error) (*Writer, error) {
		f.Close()
		fsx.RemoveRegular(tmp)
		return nil, err
	}
	// Reserve every block: a store into an unallocated block of a shared
	// mapping is a SIGBUS, fallocate fails cleanly instead.
	if err := mmap.Reserve(f, l.fileSize); err != nil {
		return fail(err)
	}
	hdr := make([]byte, HeaderSize)
	writeHeader(hdr, l)
	// The writer's PID is in the header from the start, and synced with it:
	// a file the writer never closed cleanly never reads as clean.
	binary.LittleEndian.PutUint32(hdr[hdrOffWriterPID:], uint32(os.Getpid()))
	if _, err := f.WriteAt(hdr, 0); err != nil {
		return fail(err)
	}
	if err := f.Sync(); err != nil {
		return fail(err)
	}
	b, err := mapWritable(tmp, f, l)
	if err != nil {
		return fail(err)
	}
	return &Writer{m: newM(path, f, b, l), lock: lock, tmp: tmp, intact: true}, nil
}

// Install puts a prepared file in place: it renames it over path, replacing
// the regular file there (if any), and fsyncs the directory. A symlink,
// FIFO, device or directory at path is refused (journal.ErrNotRegular). On
// error the prepared file is still the Writer's and still unseen.
func (w *Writer) Install() error {
	if w.mem == nil {
		return journal.ErrClosed
	}
	if w.tmp == "" {
		return fmt.Errorf("snapshot: %s is already in place", w.name)
	}
	return w.install(true)
}

func (w *Writer) install(replace bool) error {
	if kind, _, err := fsx.Lstat(w.name); err != nil {
		return err
	} else if kind != "regular" && kind != "missing" {
		return &fsx.NotRegularError{Path: w.name, What: kind}
	}
	var err error
	if replace {
		// rename(2) replaces path itself, never what a symlink there points at.
		err = fsx.Rename(w.tmp, w.name)
	} else {
		err = fsx.LinkNew(w.tmp, w.name) // fails if path exists
	}
	if err != nil {
		return err
	}
	w.tmp = ""
	return nil
}

// OpenWriter opens an existing snapshot file for writing (for a book builder
// that restarts). It takes the writer lock (LockPath), opens the file
// without following a symlink and without blocking on a FIFO (a non-regular
// file is journal.ErrNotRegular), refuses a file other users could truncate
// (ErrExposed), validates the header like Open, and records its PID in the
// header, synced, before it changes anything else.
//
// It then judges whether the file is intact (Intact): the last writer
// closed it cleanly, or died without closing it since the system booted (so
// the page cache holds all its stores), and no slot was left mid-publish.
// Slots left odd (torn) by a writer that died mid-publish are emptied (read
// as never written, Seq 0) and listed by Emptied. A file that is not intact
// has its last_applied lowered to 0 and pinned there for the Writer's life:
// it then claims nothing about which journal messages its slots reflect.
func OpenWriter(path string) (*Writer, error) {
	lock, err := acquire(path)
	if err != nil {
		return nil, err
	}
	w, err := openWriterLocked(path, lock)
	if err != nil {
		lock.Release()
		return nil, err
	}
	return w, nil
}

func openWriterLocked(path string, lock *flock.Lock) (*Writer, error) {
	f, err := fsx.Open(path, os.O_RDWR, 0)
	if err != nil {
		return nil, err
	}
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		f.Close()
		return nil, &os.PathError{Op: "fstat", Path: path, Err: err}
	}
	if err := private(path, &st, 0o022, "truncate it under the writer's mapping"); err != nil {
		f.Close()
		return nil, err
	}
	// Judged before the mapping: mapping writable updates the file's mtime.
	sinceBoot := modifiedSinceBoot(&st)
	l, err := readHeader(path, f)
	if err != nil {
		f.Close()
		return nil, err
	}
	b, err := mapWritable(path, f, l)
	if err != nil {
		f.Close()
		return nil, err
	}
	w := &Writer{m: newM(path, f, b, l), lock: lock}
	w.prevPID = w.WriterPID()
	for i := uint32(0); i < w.capacity; i++ {
		if atomic.LoadUint64(u64(w.slot(i), slotOffLock))&1 != 0 {
			w.emptied = append(w.emptied, i)
		}
	}
	w.intact = (w.prevPID == 0 || sinceBoot) && len(w.emptied) == 0
	w.last = w.LastApplied()
	if !w.intact {
		w.last = math.MaxUint64 // pinned: Publish and Advance leave last_applied at 0
		atomic.StoreUint64(u64(w.base, HdrOffLastApplied), 0)
	}
	// The PID (and a lowered last_applied) reach the disk before any slot
	// changes: after a power cut the file never reads as closed cleanly
	// while holding stores of this writer.
	atomic.StoreUint32(u32(w.base, hdrOffWriterPID), uint32(os.Getpid()))
	if err := mmap.Sync(w.mem, 0, HeaderSize, true); err != nil {
		w.unmap()
		return nil, fmt.Errorf("snapshot: sync %s: %w", path, err)
	}
	for _, i := range w.emptied {
		p := w.slot(i)
		lk := u64(p, slotOffLock)
		c := atomic.LoadUint64(lk)
		clear(unsafe.Slice((*byte)(unsafe.Add(p, 8)), w.slotSize-8))
		atomic.StoreUint64(lk, c+1)
	}
	return w, nil
}

// Intact reports whether the file's content can be trusted as a whole: it
// was created by this Writer, or OpenWriter found it closed cleanly, or
// left by a writer that died since the system booted (its stores are all in
// the page cache), with no slot torn. A file that is not intact may hold
// slots from before and after a power cut, or a slot emptied by OpenWriter:
// its last_applied stays 0 and a builder should rebuild it with Prepare.
func (w *Writer) Intact() bool { return w.intact }

// PreviousPID is the writer_pid OpenWriter found: 0 if the last writer
// closed the file cleanly, else the PID of a writer that did not (0 for a
// file made by Create or Prepare).
func (w *Writer) PreviousPID() uint32 { return w.prevPID }

// Emptied lists the slots OpenWriter found mid-publish (their writer died
// between the two counter stores) and emptied. The books of those
// instruments are lost: they read as never written until published again.
func (w *Writer) Emptied() []uint32 { return w.emptied }

// modifiedSinceBoot reports whether the file was modified after the system
// booted. If it was, every store into its mapping since is in the page cache
// (a process crash loses none); if not, a power cut may have lost some. Any
// doubt (no /proc/stat) answers false.
func modifiedSinceBoot(st *unix.Stat_t) bool {
	f, err := os.Open("/proc/stat")
	if err != nil {
		return false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "btime "); ok {
			bt, err := strconv.ParseInt(strings.TrimSpace(rest), 10, 64)
			// btime has a one-second resolution: a file written in the
			// second the system booted counts as older.
			return err == nil && st.Mtim.Sec > bt
		}
	}
	return false
}

func mapWritable(name string, f *os.File, l layout) ([]byte, error) {
	b, err := mmap.Map(f, int(l.fileSize), true)
	if err != nil {
		return nil, err
	}
	if err := mmap.PopulateWrite(b); err != nil {
		mmap.Unmap(b)
		return nil, fmt.Errorf("prefault %s: %w", name, err)
	}
	return b, nil
}

func newM(name string, f *os.File, b []byte, l layout) m {
	return m{
		name:     name,
		f:        f,
		mem:      b,
		base:     unsafe.Pointer(&b[0]),
		l:        l,
		depth:    uint32(l.depth),
		capacity: uint32(l.capacity),
		slotSize: uintptr(l.slotSize),
	}
}

// Publish stores one instrument's book into its slot and then advances the
// header's last-applied sequence number to seq (if larger). seq is the journal
// sequence number of the last message the book reflects, ts that message's
// exchange timestamp. Levels beyond Depth are dropped: the slot holds the top
// Depth levels of each side, best first. It allocates nothing.
//
// Seqlock protocol (format.md §11): the slot's counter is incremented to
// an odd value with an atomic read-modify-write (a full barrier on amd64;
// acquire+release on arm64, so no later store can become visible before it),
// the fields are written with plain stores, and the counter is stored even
// (counter+2 overall) with an atomic release store.
func (w *Writer) Publish(instr uint32, seq uint64, ts int64, bids, asks []Level, last Trade) error {
	if instr >= w.capacity {
		return ErrInstrument
	}
	if len(bids) > int(w.depth) {
		bids = bids[:w.depth]
	}
	if len(asks) > int(w.depth) {
		asks = asks[:w.depth]
	}
	p := w.slot(instr)
	lk := u64(p, slotOffLock)
	c := atomic.AddUint64(lk, 1) // odd: readers now retry
	*u64(p, slotOffSeq) = seq
	*i64(p, slotOffTS) = ts
	*u32(p, slotOffInstr) = instr
	oldBids, oldAsks := *u32(p, slotOffBidCount), *u32(p, slotOffAskCount)
	*u64(p, slotOffCounts) = uint64(len(bids)) | uint64(len(asks))<<32
	*i64(p, slotOffTradePx) = last.Price
	*i64(p, slotOffTradeQty) = last.Qty
	*i64(p, slotOffTradeTS) = last.TS
	lv := unsafe.Slice((*Level)(unsafe.Add(p, slotOffLevels)), 2*w.depth)
	b, a := lv[:w.depth], lv[w.depth:]
	copy(b, bids)
	copy(a, asks)
	// Zero the levels the previous book used and this one does not, so the
	// file holds no stale levels (dumps stay readable).
	if n := int(min(oldBids, w.depth)); n > len(bids) {
		clear(b[len(bids):n])
	}
	if n := int(min(oldAsks, w.depth)); n > len(asks) {
		clear(a[len(asks):n])
	}
	atomic.StoreUint64(lk, c+1) // even: published
	if seq > w.last {
		w.last = seq
		atomic.StoreUint64(u64(w.base, HdrOffLastApplied), seq)
	}
	return nil
}

// SetInstrument stores an instrument's symbol (NUL-padded, as in
// journal.InstrumentDef) and price scale into its slot, under the seqlock.
// It leaves the book and the sequence number alone.
func (w *Writer) SetInstrument(instr uint32, symbol [journal.SymbolLen]byte, scale int32) error {
	if instr >= w.capacity {
		return ErrInstrument
	}
	p := w.slot(instr)
	lk := u64(p, slotOffLock)
	c := atomic.AddUint64(lk, 1)
	*u32(p, slotOffInstr) = instr
	*(*int32)(unsafe.Add(p, slotOffScale)) = scale
	*(*[journal.SymbolLen]byte)(unsafe.Add(p, slotOffSymbol)) = symbol
	atomic.StoreUint64(lk, c+1)
	return nil
}

// Advance stores seq as the header's last-applied sequence number (if larger
// than the current one) without touching a slot: the book builder calls it
// for journal messages that change no book (heartbeats, other instruments'
// raw messages), so late joiners need not replay them.
func (w *Writer) Advance(seq uint64) {
	if seq > w.last {
		w.last = seq
		atomic.StoreUint64(u64(w.base, HdrOffLastApplied), seq)
	}
}

// Read copies the writer's own slot of instr into dst (see Reader.Read): a
// restarting builder reads the books it left.
func (w *Writer) Read(instr uint32, dst *Book) error {
	if w.mem == nil {
		return journal.ErrClosed
	}
	return w.readGuarded(instr, dst, DefaultStallTimeout)
}

// Sync makes the file durable (msync MS_SYNC). Close syncs too; syncing
// earlier bounds what a power cut can make a restarted builder rebuild.
func (w *Writer) Sync() error {
	if w.mem == nil {
		return journal.ErrClosed
	}
	return mmap.Sync(w.mem, 0, len(w.mem), true)
}

// Close ends the writer. An installed file is synced (msync MS_SYNC), then
// its writer_pid is cleared and synced, which marks it closed cleanly: its
// slots on disk are exactly what the writer left. A prepared file never
// installed is removed. The writer lock is released last.
func (w *Writer) Close() error {
	if w.mem == nil {
		return journal.ErrClosed
	}
	var err error
	if w.tmp != "" {
		err = fsx.RemoveRegular(w.tmp)
	} else if err = w.Sync(); err == nil {
		atomic.StoreUint32(u32(w.base, hdrOffWriterPID), 0)
		err = mmap.Sync(w.mem, 0, HeaderSize, true)
	}
	if uerr := w.unmap(); err == nil {
		err = uerr
	}
	if lerr := w.lock.Release(); err == nil {
		err = lerr
	}
	return err
}
