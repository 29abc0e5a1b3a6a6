package snapshot

import (
	"errors"
	"fmt"
	"os"
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

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
	// ErrLocked is returned when another process holds the file for writing.
	ErrLocked = errors.New("snapshot: file is open for writing by another process")
)

// Options configure Create.
type Options struct {
	Depth     int    // price levels per side, 1..MaxDepth
	Capacity  int    // number of slots: instrument ids 0..Capacity-1, 1..MaxCapacity
	JournalID uint64 // journal.Header.JournalID of the journal the snapshot mirrors
}

// Writer is the single writer of a snapshot file. Its methods are not safe
// for concurrent use; at most one Writer per file exists system-wide (an
// exclusive flock on the file enforces it).
type Writer struct {
	m
	last uint64 // last value stored in the header's last-applied word
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

// Path is the file's name as given to Create or Open.
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
// writing, 0 if none (or it closed cleanly).
func (x *m) WriterPID() uint32 { return atomic.LoadUint32(u32(x.base, hdrOffWriterPID)) }

func (x *m) close() error {
	if x.mem == nil {
		return journal.ErrClosed
	}
	err := mmap.Unmap(x.mem)
	x.mem, x.base, x.capacity = nil, nil, 0
	if cerr := x.f.Close(); err == nil {
		err = cerr
	}
	return err
}

// Create makes a new snapshot file at path with every slot empty. It fails
// if path exists. The file is built under a temporary name and linked into
// place complete, so a reader never sees a half-written header.
func Create(path string, o Options) (*Writer, error) {
	if o.Depth < 1 || o.Depth > MaxDepth {
		return nil, fmt.Errorf("snapshot: depth %d outside [1,%d]", o.Depth, MaxDepth)
	}
	if o.Capacity < 1 || o.Capacity > MaxCapacity {
		return nil, fmt.Errorf("snapshot: capacity %d outside [1,%d]", o.Capacity, MaxCapacity)
	}
	l := layout{
		journalID: o.JournalID,
		depth:     o.Depth,
		slotSize:  SlotSize(o.Depth),
		capacity:  o.Capacity,
		created:   time.Now().UnixNano(),
		fileSize:  FileSize(o.Depth, o.Capacity),
	}
	tmp := fmt.Sprintf("%s.tmp.%d", path, os.Getpid())
	f, err := os.OpenFile(tmp, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return nil, err
	}
	fail := func(err error) (*Writer, error) {
		f.Close()
		os.Remove(tmp)
		return nil, err
	}
	if err := lockFile(f, path); err != nil {
		return fail(err)
	}
	// Reserve every block: a store into an unallocated block of a shared
	// mapping is a SIGBUS, fallocate fails cleanly instead.
	if err := mmap.Reserve(f, l.fileSize); err != nil {
		return fail(err)
	}
	hdr := make([]byte, HeaderSize)
	writeHeader(hdr, l)
	if _, err := f.WriteAt(hdr, 0); err != nil {
		return fail(err)
	}
	if err := f.Sync(); err != nil {
		return fail(err)
	}
	if err := os.Link(tmp, path); err != nil {
		return fail(err)
	}
	os.Remove(tmp)
	w, err := mapWriter(path, f, l)
	if err != nil {
		f.Close()
		return nil, err
	}
	return w, nil
}

// OpenWriter opens an existing snapshot file for writing (for a book builder
// that restarts). It validates the header like Open, takes the writer lock,
// and empties any slot left odd (torn) by a writer that died mid-publish:
// such a slot reads as never written (Seq 0) until it is published again.
func OpenWriter(path string) (*Writer, error) {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return nil, err
	}
	l, err := readHeader(path, f)
	if err != nil {
		f.Close()
		return nil, err
	}
	if err := lockFile(f, path); err != nil {
		f.Close()
		return nil, err
	}
	w, err := mapWriter(path, f, l)
	if err != nil {
		f.Close()
		return nil, err
	}
	for i := uint32(0); i < w.capacity; i++ {
		p := w.slot(i)
		lk := u64(p, slotOffLock)
		if c := atomic.LoadUint64(lk); c&1 != 0 {
			clear(unsafe.Slice((*byte)(unsafe.Add(p, 8)), w.slotSize-8))
			atomic.StoreUint64(lk, c+1)
		}
	}
	w.last = w.LastApplied()
	return w, nil
}

func lockFile(f *os.File, name string) error {
	for {
		err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		if err == unix.EINTR {
			continue
		}
		if errors.Is(err, unix.EWOULDBLOCK) {
			return fmt.Errorf("%s: %w", name, ErrLocked)
		}
		if err != nil {
			return fmt.Errorf("flock %s: %w", name, err)
		}
		return nil
	}
}

func mapWriter(name string, f *os.File, l layout) (*Writer, error) {
	b, err := mmap.Map(f, int(l.fileSize), true)
	if err != nil {
		return nil, err
	}
	if err := mmap.PopulateWrite(b); err != nil {
		mmap.Unmap(b)
		return nil, fmt.Errorf("prefault %s: %w", name, err)
	}
	w := &Writer{m: newM(name, f, b, l)}
	atomic.StoreUint32(u32(w.base, hdrOffWriterPID), uint32(os.Getpid()))
	return w, nil
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

// Sync makes the file durable (msync MS_SYNC). The snapshot can always be
// rebuilt from the journal, so syncing is optional; it bounds how much a
// restarted builder must replay.
func (w *Writer) Sync() error {
	if w.mem == nil {
		return journal.ErrClosed
	}
	return mmap.Sync(w.mem, 0, len(w.mem), true)
}

// Close clears the writer PID, unmaps the file and releases the writer lock.
// It does not sync.
func (w *Writer) Close() error {
	if w.mem != nil {
		atomic.StoreUint32(u32(w.base, hdrOffWriterPID), 0)
	}
	return w.close()
}
