package snapshot

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"runtime/debug"
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/mdjournal/mdjournal/internal/fsx"
	"github.com/mdjournal/mdjournal/internal/mmap"
	"github.com/mdjournal/mdjournal/journal"
)

// DefaultStallTimeout is how long Read waits on a slot whose seqlock counter
// stays odd before it returns ErrStalled.
const DefaultStallTimeout = time.Second

// Book is a caller-owned copy of one slot. Reuse one Book across Read calls:
// once its Bids and Asks have capacity Depth, Read allocates nothing.
type Book struct {
	Instrument uint32                  // the slot's instrument id
	PriceScale int32                   // decimal digits of the prices (from the instrument's definition)
	Symbol     [journal.SymbolLen]byte // NUL-padded symbol (from the instrument's definition)
	Seq        uint64                  // journal seq of the last message reflected; 0 = slot never written
	TS         int64                   // exchange timestamp of that message, Unix ns
	Bids       []Level                 // best (highest) first, at most Depth
	Asks       []Level                 // best (lowest) first, at most Depth
	LastTrade  Trade                   // zero if none
}

// SymbolString returns the symbol without its NUL padding.
func (b *Book) SymbolString() string {
	if i := bytes.IndexByte(b.Symbol[:], 0); i >= 0 {
		return string(b.Symbol[:i])
	}
	return string(b.Symbol[:])
}

// Reader is a read-only mapping of a snapshot file (O_RDONLY, PROT_READ).
// Any number of Readers in any number of processes may read while the writer
// publishes. A Reader's methods may be called from several goroutines at once;
// Close must not race with them.
type Reader struct {
	m
	// StallTimeout bounds how long Read waits for a slot whose counter stays
	// odd (writer died mid-publish) before returning ErrStalled.
	StallTimeout time.Duration
}

// Open maps a snapshot file read-only and validates its header. It follows
// a symlink (a reader may be pointed at the file through one) but opens with
// O_NONBLOCK, so a FIFO at path never blocks it, and refuses anything but a
// regular file (journal.ErrNotRegular). A damaged header (bad magic,
// version, checksum, depth or capacity that do not fit the file) is a
// *journal.CorruptionError.
func Open(path string) (*Reader, error) {
	f, err := openRead(path)
	if err != nil {
		return nil, err
	}
	l, err := readHeader(path, f)
	if err != nil {
		f.Close()
		return nil, err
	}
	b, err := mmap.Map(f, int(l.fileSize), false)
	if err != nil {
		f.Close()
		return nil, err
	}
	return &Reader{m: newM(path, f, b, l), StallTimeout: DefaultStallTimeout}, nil
}

// openRead opens path read-only, following a symlink, never blocking (a
// FIFO without a writer would block a plain open forever), and refuses
// anything but a regular file.
func openRead(path string) (*os.File, error) {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: path, Err: err}
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		unix.Close(fd)
		return nil, &os.PathError{Op: "fstat", Path: path, Err: err}
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		unix.Close(fd)
		kind := "special file"
		switch st.Mode & unix.S_IFMT {
		case unix.S_IFIFO:
			kind = "FIFO"
		case unix.S_IFDIR:
			kind = "directory"
		case unix.S_IFCHR, unix.S_IFBLK:
			kind = "device"
		case unix.S_IFSOCK:
			kind = "socket"
		}
		return nil, &fsx.NotRegularError{Path: path, What: kind}
	}
	if fl, err := unix.FcntlInt(uintptr(fd), unix.F_GETFL, 0); err == nil {
		unix.FcntlInt(uintptr(fd), unix.F_SETFL, fl&^unix.O_NONBLOCK)
	}
	return os.NewFile(uintptr(fd), path), nil
}

// readHeader reads the header page with pread (not through a mapping, so a
// short file is an error, never a fault) and validates it.
func readHeader(name string, f *os.File) (layout, error) {
	st, err := f.Stat()
	if err != nil {
		return layout{}, err
	}
	hdr := make([]byte, HeaderSize)
	n, err := f.ReadAt(hdr, 0)
	if err != nil && err != io.EOF {
		return layout{}, err
	}
	return parseHeader(name, hdr[:n], st.Size())
}

// Close unmaps the file. Views taken from r must not be used afterwards.
func (r *Reader) Close() error {
	if r.mem == nil {
		return journal.ErrClosed
	}
	return r.unmap()
}

// Replaced reports whether path no longer names the file r maps: a builder
// rebuilt the snapshot and renamed a new file into place (Prepare,
// Install), or the file was removed. r keeps reading the old file, whose
// content no longer changes; reopen to follow the builder. An error other
// than the file being gone is returned as is.
func (r *Reader) Replaced() (bool, error) {
	if r.mem == nil {
		return false, journal.ErrClosed
	}
	var a, b unix.Stat_t
	if err := unix.Fstat(int(r.f.Fd()), &a); err != nil {
		return false, &os.PathError{Op: "fstat", Path: r.name, Err: err}
	}
	if err := unix.Stat(r.name, &b); err != nil {
		if errors.Is(err, unix.ENOENT) {
			return true, nil
		}
		return false, &os.PathError{Op: "stat", Path: r.name, Err: err}
	}
	return a.Dev != b.Dev || a.Ino != b.Ino, nil
}

// Lookup finds the slot whose symbol is symbol, reading every written slot's
// symbol field under its seqlock (a linear scan of Capacity slots: about a
// microsecond per thousand slots). ok is false if no slot has it. A symbol
// belongs to one instrument id (the journal writer refuses a second), so
// the first match is the only one. err is a *journal.CorruptionError if the
// file was truncated under the reader, or wraps ErrStalled if a slot that
// could be the one stayed mid-publish for StallTimeout.
func (r *Reader) Lookup(symbol string) (id uint32, ok bool, err error) {
	if r.mem == nil {
		return 0, false, journal.ErrClosed
	}
	if symbol == "" || len(symbol) > journal.SymbolLen {
		return 0, false, nil
	}
	var want [journal.SymbolLen]byte
	copy(want[:], symbol)
	old := debug.SetPanicOnFault(true)
	defer func() {
		debug.SetPanicOnFault(old)
		if rec := recover(); rec != nil {
			id, ok, err = 0, false, r.fault(rec)
		}
	}()
	var stalled error
	for i := uint32(0); i < r.capacity; i++ {
		s, err := r.symbolOf(i)
		if err != nil {
			stalled = err
			continue
		}
		if s == want {
			return i, true, nil
		}
	}
	return 0, false, stalled
}

// symbolOf copies slot i's symbol under the seqlock (zero for a slot never
// written).
func (r *Reader) symbolOf(i uint32) (s [journal.SymbolLen]byte, err error) {
	p := r.slot(i)
	lk := u64(p, slotOffLock)
	var w waiter
	for {
		c1 := atomic.LoadUint64(lk)
		if c1 == 0 {
			return s, nil
		}
		if c1&1 != 0 {
			if err := w.wait(r.name, r.StallTimeout, c1); err != nil {
				return s, err
			}
			continue
		}
		for k := range slotSymbolWords {
			*(*uint64)(unsafe.Pointer(&s[8*k])) = atomic.LoadUint64(u64(p, slotOffSymbol+uintptr(8*k)))
		}
		if atomic.LoadUint64(lk) == c1 {
			return s, nil
		}
		if err := w.wait(r.name, r.StallTimeout, c1); err != nil {
			return s, err
		}
	}
}

// Read copies instrument instr's slot into dst, retrying until the copy is
// consistent (the slot's seqlock counter was even and unchanged across the
// copy), so dst is never torn. dst.Seq is the journal sequence number the copy
// reflects (0: the slot was never written). Read allocates nothing once
// dst.Bids and dst.Asks have capacity Depth.
//
// A file truncated under the reader is reported as a *journal.CorruptionError
// (journal.ErrTruncated), not a SIGBUS crash: the copy runs with
// debug.SetPanicOnFault and recovers the fault.
func (r *Reader) Read(instr uint32, dst *Book) error {
	if r.mem == nil {
		return journal.ErrClosed
	}
	return r.readGuarded(instr, dst, r.StallTimeout)
}

// readGuarded is read under the truncation guard.
func (x *m) readGuarded(instr uint32, dst *Book, stall time.Duration) (err error) {
	if instr >= x.capacity {
		return ErrInstrument
	}
	old := debug.SetPanicOnFault(true)
	defer func() {
		debug.SetPanicOnFault(old)
		if rec := recover(); rec != nil {
			err = x.fault(rec)
		}
	}()
	return x.read(instr, dst, stall)
}

// fault turns a recovered memory fault inside the mapping into a
// CorruptionError; any other panic is re-raised.
func (x *m) fault(rec any) error {
	fe, ok := rec.(interface{ Addr() uintptr })
	if !ok {
		panic(rec)
	}
	off := int64(fe.Addr()) - int64(uintptr(x.base))
	if off < 0 || off >= int64(len(x.mem)) {
		panic(rec) // not a fault on the mapping: a bug, not a truncated file
	}
	size := int64(-1)
	if st, err := x.f.Stat(); err == nil {
		size = st.Size()
	}
	return journal.Corrupt(x.name, off, journal.ErrTruncated,
		"memory fault reading the mapping: file is now %d bytes, mapped %d (truncated under the reader)", size, x.l.fileSize)
}

// read is Read without the fault guard.
func (x *m) read(instr uint32, dst *Book, stall time.Duration) error {
	p := x.slot(instr)
	lk := u64(p, slotOffLock)
	depth := x.depth
	if uint32(cap(dst.Bids)) < depth {
		dst.Bids = make([]Level, 0, depth)
	}
	if uint32(cap(dst.Asks)) < depth {
		dst.Asks = make([]Level, 0, depth)
	}
	levels := unsafe.Add(p, slotOffLevels)
	var w waiter
	for {
		c1 := atomic.LoadUint64(lk)
		if c1&1 != 0 {
			if err := w.wait(x.name, stall, c1); err != nil {
				return err
			}
			continue
		}
		counts := atomic.LoadUint64(u64(p, slotOffCounts))
		nb, na := uint32(counts), uint32(counts>>32)
		bad := nb > depth || na > depth
		nb, na = min(nb, depth), min(na, depth)

		dst.Seq = atomic.LoadUint64(u64(p, slotOffSeq))
		dst.TS = atomic.LoadInt64(i64(p, slotOffTS))
		idScale := atomic.LoadUint64(u64(p, slotOffInstr))
		dst.Instrument, dst.PriceScale = uint32(idScale), int32(uint32(idScale>>32))
		for i := range slotSymbolWords {
			v := atomic.LoadUint64(u64(p, slotOffSymbol+uintptr(8*i)))
			*(*uint64)(unsafe.Pointer(&dst.Symbol[8*i])) = v
		}
		dst.LastTrade.Price = atomic.LoadInt64(i64(p, slotOffTradePx))
		dst.LastTrade.Qty = atomic.LoadInt64(i64(p, slotOffTradeQty))
		dst.LastTrade.TS = atomic.LoadInt64(i64(p, slotOffTradeTS))
		bids, asks := dst.Bids[:nb], dst.Asks[:na]
		loadLevels(bids, levels)
		loadLevels(asks, unsafe.Add(levels, uintptr(depth)*levelSize))
		if atomic.LoadUint64(lk) != c1 {
			if err := w.wait(x.name, stall, c1); err != nil {
				return err
			}
			continue
		}
		dst.Bids, dst.Asks = bids, asks
		if bad {
			off := int64(HeaderSize) + int64(instr)*int64(x.slotSize) + slotOffCounts
			return journal.Corrupt(x.name, off, journal.ErrBadHeader,
				"slot %d: level counts %d/%d exceed depth %d", instr, counts&0xffffffff, counts>>32, depth)
		}
		return nil
	}
}

// loadLevels copies len(dst) levels from the mapping at src, one atomic
// 8-byte load per word (a plain MOV on amd64; ordered loads elsewhere).
func loadLevels(dst []Level, src unsafe.Pointer) {
	for i := range dst {
		w := (*[levelWordsPerLvl]int64)(src)
		dst[i] = Level{Price: atomic.LoadInt64(&w[0]), Qty: atomic.LoadInt64(&w[1])}
		src = unsafe.Add(src, levelSize)
	}
}

// waiter backs off a reader that found a slot being written: spin a little,
// then yield, and give up with ErrStalled if the counter stays at the same
// odd value for the stall timeout.
type waiter struct {
	n       int
	stuckAt uint64
	since   time.Time
}

const (
	spinTries  = 64   // retries before yielding the processor
	clockEvery = 1024 // retries between clock reads
)

func (w *waiter) wait(name string, stall time.Duration, c uint64) error {
	w.n++
	if w.n < spinTries {
		return nil
	}
	runtime.Gosched()
	if w.n%clockEvery != 0 {
		return nil
	}
	if c&1 == 0 || c != w.stuckAt {
		w.stuckAt, w.since = c, time.Now()
		return nil
	}
	if time.Since(w.since) >= stall {
		return fmt.Errorf("%s: slot counter %d: %w", name, c, ErrStalled)
	}
	return nil
}

// View returns a zero-copy accessor of instrument instr's slot. Its getters
// read the mapping directly (atomic loads); a caller using it must follow the
// seqlock contract:
//
//	for {
//		c := v.Begin()          // waits for an even counter
//		px := v.Bid(0).Price    // read what you need
//		if v.Valid(c) { break } // unchanged: px is consistent
//	}
//
// Values read between Begin and a Valid that returns false may be torn and
// must be discarded. Unlike Read, a View has no truncation guard: a caller
// that must survive a file truncated under it sets debug.SetPanicOnFault.
// A View must not be used after the Reader is closed.
func (r *Reader) View(instr uint32) (View, error) {
	if instr >= r.capacity {
		if r.mem == nil {
			return View{}, journal.ErrClosed
		}
		return View{}, ErrInstrument
	}
	return View{p: r.slot(instr), depth: r.depth}, nil
}

// View is a zero-copy accessor of one mapped slot; see Reader.View.
type View struct {
	p     unsafe.Pointer
	depth uint32
}

// Begin waits (spinning, then yielding) until the slot is not being written
// and returns the counter value to pass to Valid.
func (v View) Begin() uint64 {
	for i := 0; ; i++ {
		c := atomic.LoadUint64(u64(v.p, slotOffLock))
		if c&1 == 0 {
			return c
		}
		if i >= spinTries {
			runtime.Gosched()
		}
	}
}

// TryBegin returns the counter and true if the slot is not being written.
func (v View) TryBegin() (uint64, bool) {
	c := atomic.LoadUint64(u64(v.p, slotOffLock))
	return c, c&1 == 0
}

// Valid reports whether the slot is unchanged since Begin returned c, i.e.
// whether everything read in between is consistent.
func (v View) Valid(c uint64) bool { return atomic.LoadUint64(u64(v.p, slotOffLock)) == c }

// Depth is the number of levels per side the slot holds.
func (v View) Depth() int { return int(v.depth) }

// Seq is the journal seq of the last message the slot reflects.
func (v View) Seq() uint64 { return atomic.LoadUint64(u64(v.p, slotOffSeq)) }

// TS is the exchange timestamp of that message.
func (v View) TS() int64 { return atomic.LoadInt64(i64(v.p, slotOffTS)) }

// Instrument is the slot's instrument id (0 in a never-written slot).
func (v View) Instrument() uint32 { return atomic.LoadUint32(u32(v.p, slotOffInstr)) }

// PriceScale is the instrument's price scale.
func (v View) PriceScale() int32 { return int32(atomic.LoadUint32(u32(v.p, slotOffScale))) }

// Symbol is the NUL-padded symbol.
func (v View) Symbol() (s [journal.SymbolLen]byte) {
	for i := range slotSymbolWords {
		*(*uint64)(unsafe.Pointer(&s[8*i])) = atomic.LoadUint64(u64(v.p, slotOffSymbol+uintptr(8*i)))
	}
	return s
}

// BidCount is the number of bid levels, clamped to Depth (a torn read may
// otherwise see any value).
func (v View) BidCount() int { return int(min(atomic.LoadUint32(u32(v.p, slotOffBidCount)), v.depth)) }

// AskCount is the number of ask levels, clamped to Depth.
func (v View) AskCount() int { return int(min(atomic.LoadUint32(u32(v.p, slotOffAskCount)), v.depth)) }

// Bid returns bid level i (0 = best). i is reduced modulo Depth so that a
// torn count can never index outside the slot.
func (v View) Bid(i int) Level { return v.level(uint32(i) % v.depth) }

// Ask returns ask level i (0 = best), i reduced modulo Depth.
func (v View) Ask(i int) Level { return v.level(v.depth + uint32(i)%v.depth) }

func (v View) level(j uint32) Level {
	q := unsafe.Add(v.p, slotOffLevels+uintptr(j)*levelSize)
	return Level{Price: atomic.LoadInt64((*int64)(q)), Qty: atomic.LoadInt64((*int64)(unsafe.Add(q, 8)))}
}

// LastTrade is the slot's last trade.
func (v View) LastTrade() Trade {
	return Trade{
		Price: atomic.LoadInt64(i64(v.p, slotOffTradePx)),
		Qty:   atomic.LoadInt64(i64(v.p, slotOffTradeQty)),
		TS:    atomic.LoadInt64(i64(v.p, slotOffTradeTS)),
	}
}
