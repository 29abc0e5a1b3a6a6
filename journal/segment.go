package journal

import (
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"unsafe"
)

// Segment header, format.md §2. These constants are part of the on-disk format.
const (
	// Version is the format version of segment, index and control files.
	// Version 1 existed only during development (crc at frame offset 4,
	// checksum over two ranges); 2 is the first released layout.
	Version = 2

	SegmentHeaderSize = 4096 // header page; frames start here
	SegmentMagic      = "MDJSEG\x00\x00"

	// Static fields, written once when the segment is activated and covered by
	// the header CRC.
	segOffMagic      = 0  // [8]byte
	segOffVersion    = 8  // uint32
	segOffHeaderSize = 12 // uint32
	segOffJournalID  = 16 // uint64
	segOffNumber     = 24 // uint64
	segOffFirstSeq   = 32 // uint64, 0 while prepared
	segOffCreated    = 40 // int64, Unix ns
	segOffCapacity   = 48 // uint64, file size in bytes
	segOffHeaderCRC  = 56 // uint32, CRC-32C of bytes [0,56)
	segStaticEnd     = 56

	// SegOffCursor is the write cursor: byte offset (from the start of the
	// file) just past the last published frame. Atomic uint64 alone on its
	// cache line [64,128).
	SegOffCursor = 64

	// Mutable state line [128,192).
	segOffFlags      = 128 // uint32 atomic
	segOffWriterPID  = 132 // uint32
	segOffDurableOff = 136 // uint64 atomic: bytes below this are on stable storage
	segOffDurableSeq = 144 // uint64 atomic: last seq below DurableOff
	segOffLastSeq    = 152 // uint64: last frame seq, set when sealed

	// MinSegmentSize is the smallest allowed capacity: header page plus room for
	// several maximal frames and the end marker.
	MinSegmentSize = 256 << 10
	// DefaultSegmentSize is the capacity the writer uses unless told otherwise.
	DefaultSegmentSize = 64 << 20
	// EndMarkerSize is the space the end-of-segment marker frame takes; the
	// writer always keeps it free.
	EndMarkerSize = FrameHeaderSize
)

// Segment flags (header offset 128), format.md §2.2.
const (
	FlagActive = 1 << 0 // activated: first_seq is valid, frames may follow
	FlagSealed = 1 << 1 // end marker written; no more frames
	FlagClean  = 1 << 2 // the writer closed cleanly: cursor == durable offset, no scan needed
)

// Header is a view of a mapped segment header page. Its methods read and write
// the mapping directly; atomic fields use sync/atomic on 8-byte-aligned words
// derived from the mapping's base address (the mapping is page-aligned).
type Header struct{ b []byte }

// HeaderOf returns a view of the header at the start of a mapped segment.
func HeaderOf(m []byte) Header { return Header{b: m[:SegmentHeaderSize:SegmentHeaderSize]} }

func (h Header) u64(off int) *uint64 { return (*uint64)(unsafe.Add(unsafe.Pointer(&h.b[0]), off)) }
func (h Header) u32(off int) *uint32 { return (*uint32)(unsafe.Add(unsafe.Pointer(&h.b[0]), off)) }

func (h Header) Magic() string      { return string(h.b[segOffMagic : segOffMagic+8]) }
func (h Header) Version() uint32    { return binary.LittleEndian.Uint32(h.b[segOffVersion:]) }
func (h Header) HeaderSize() uint32 { return binary.LittleEndian.Uint32(h.b[segOffHeaderSize:]) }
func (h Header) JournalID() uint64  { return binary.LittleEndian.Uint64(h.b[segOffJournalID:]) }
func (h Header) Number() uint64     { return binary.LittleEndian.Uint64(h.b[segOffNumber:]) }
func (h Header) FirstSeq() uint64   { return binary.LittleEndian.Uint64(h.b[segOffFirstSeq:]) }
func (h Header) Created() int64     { return int64(binary.LittleEndian.Uint64(h.b[segOffCreated:])) }
func (h Header) Capacity() uint64   { return binary.LittleEndian.Uint64(h.b[segOffCapacity:]) }
func (h Header) HeaderCRC() uint32  { return binary.LittleEndian.Uint32(h.b[segOffHeaderCRC:]) }
func (h Header) WriterPID() uint32  { return atomic.LoadUint32(h.u32(segOffWriterPID)) }
func (h Header) LastSeq() uint64    { return atomic.LoadUint64(h.u64(segOffLastSeq)) }

// CursorPtr is the atomic write cursor word.
func (h Header) CursorPtr() *uint64 { return h.u64(SegOffCursor) }

// Cursor loads the write cursor.
func (h Header) Cursor() uint64 { return atomic.LoadUint64(h.u64(SegOffCursor)) }

// SetCursor publishes every frame below c (one atomic 8-byte store).
func (h Header) SetCursor(c uint64) { atomic.StoreUint64(h.u64(SegOffCursor), c) }

func (h Header) Flags() uint32           { return atomic.LoadUint32(h.u32(segOffFlags)) }
func (h Header) SetFlags(f uint32)       { atomic.StoreUint32(h.u32(segOffFlags), f) }
func (h Header) DurableOffset() uint64   { return atomic.LoadUint64(h.u64(segOffDurableOff)) }
func (h Header) DurableSeq() uint64      { return atomic.LoadUint64(h.u64(segOffDurableSeq)) }
func (h Header) SetWriterPID(pid uint32) { atomic.StoreUint32(h.u32(segOffWriterPID), pid) }
func (h Header) SetLastSeq(s uint64)     { atomic.StoreUint64(h.u64(segOffLastSeq), s) }
func (h Header) Sealed() bool            { return h.Flags()&FlagSealed != 0 }
func (h Header) Active() bool            { return h.Flags()&FlagActive != 0 }
func (h Header) SetDurable(off, seq uint64) {
	// Seq first, then offset: a store torn by a crash leaves (old offset,
	// new seq), which recovery detects (the first frame after the offset
	// does not follow the seq) and answers with a full scan. The other order
	// would leave (new offset, old seq), undetectable when nothing follows
	// the offset: the writer would then reuse sequence numbers.
	atomic.StoreUint64(h.u64(segOffDurableSeq), seq)
	atomic.StoreUint64(h.u64(segOffDurableOff), off)
}

// InitHeader writes the static fields of a new (prepared) segment. firstSeq
// is 0 until Activate.
func InitHeader(m []byte, journalID, number uint64, created int64, capacity uint64) {
	h := m[:SegmentHeaderSize]
	clear(h)
	copy(h[segOffMagic:], SegmentMagic)
	binary.LittleEndian.PutUint32(h[segOffVersion:], Version)
	binary.LittleEndian.PutUint32(h[segOffHeaderSize:], SegmentHeaderSize)
	binary.LittleEndian.PutUint64(h[segOffJournalID:], journalID)
	binary.LittleEndian.PutUint64(h[segOffNumber:], number)
	binary.LittleEndian.PutUint64(h[segOffCreated:], uint64(created))
	binary.LittleEndian.PutUint64(h[segOffCapacity:], capacity)
	binary.LittleEndian.PutUint64(h[SegOffCursor:], SegmentHeaderSize)
	binary.LittleEndian.PutUint64(h[segOffDurableOff:], SegmentHeaderSize)
	binary.LittleEndian.PutUint32(h[segOffHeaderCRC:], CRC32C(h[:segStaticEnd]))
}

// Activate makes a prepared segment the active one: it stores first_seq,
// re-seals the header CRC, then sets FlagActive. durableSeq is firstSeq-1.
func (h Header) Activate(firstSeq uint64, pid uint32) {
	binary.LittleEndian.PutUint64(h.b[segOffFirstSeq:], firstSeq)
	binary.LittleEndian.PutUint32(h.b[segOffHeaderCRC:], CRC32C(h.b[:segStaticEnd]))
	h.SetWriterPID(pid)
	h.SetDurable(SegmentHeaderSize, firstSeq-1)
	h.SetFlags(FlagActive)
}

// Check validates the static header fields against the file they came from.
// fileSize is the file's actual size.
func (h Header) Check(name string, fileSize int64) error {
	if h.Magic() != SegmentMagic {
		return Corrupt(name, segOffMagic, ErrBadMagic, "bad segment magic %q", h.Magic())
	}
	if v := h.Version(); v != Version {
		return Corrupt(name, segOffVersion, ErrVersion, "segment format version %d, this build reads %d", v, Version)
	}
	if crc := CRC32C(h.b[:segStaticEnd]); crc != h.HeaderCRC() {
		return Corrupt(name, segOffHeaderCRC, ErrChecksum, "header checksum %#08x, computed %#08x", h.HeaderCRC(), crc)
	}
	if h.HeaderSize() != SegmentHeaderSize {
		return Corrupt(name, segOffHeaderSize, ErrBadHeader, "header size %d, want %d", h.HeaderSize(), SegmentHeaderSize)
	}
	c := h.Capacity()
	if c < MinSegmentSize || c%SegmentHeaderSize != 0 || c > 1<<40 {
		return Corrupt(name, segOffCapacity, ErrBadHeader, "capacity %d is not a valid segment size", c)
	}
	if int64(c) > fileSize {
		return Corrupt(name, fileSize, ErrTruncated, "file is %d bytes, header says capacity %d", fileSize, c)
	}
	if cur := h.Cursor(); cur < SegmentHeaderSize || cur > c || cur%FrameAlign != 0 {
		return Corrupt(name, SegOffCursor, ErrCursorRange, "write cursor %d outside [%d,%d] or unaligned", cur, SegmentHeaderSize, c)
	}
	if h.Active() && h.FirstSeq() == 0 {
		return Corrupt(name, segOffFirstSeq, ErrBadHeader, "active segment has first_seq 0")
	}
	return nil
}

// Naming, format.md §1.
const (
	SegmentExt = ".seg"
	ArchiveExt = ".seg.zst" // a sealed segment compressed (format.md §14)
	IndexExt   = ".idx"
	BrokenExt  = ".broken"
	LockFile   = "journal.lock"
	CtlFile    = "journal.ctl"
)

// SegmentName is the file name of segment n: 20 decimal digits, so names sort
// in segment order.
func SegmentName(n uint64) string { return fmt.Sprintf("%020d%s", n, SegmentExt) }

// IndexName is the file name of segment n's sparse index.
func IndexName(n uint64) string { return fmt.Sprintf("%020d%s", n, IndexExt) }

// ParseSegmentName returns the number of a segment file name.
func ParseSegmentName(name string) (uint64, bool) {
	base, ok := strings.CutSuffix(name, SegmentExt)
	if !ok || len(base) != 20 {
		return 0, false
	}
	n, err := strconv.ParseUint(base, 10, 64)
	return n, err == nil && n > 0
}

// ParseArchiveName returns the number of a compressed segment file name.
func ParseArchiveName(name string) (uint64, bool) {
	base, ok := strings.CutSuffix(name, ".zst")
	if !ok {
		return 0, false
	}
	return ParseSegmentName(base)
}

// ListSegments returns the segment numbers in dir, ascending, whether the
// segment is raw (.seg) or compressed (.seg.zst).
func ListSegments(dir string) ([]uint64, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	seen := map[uint64]bool{}
	var out []uint64
	for _, e := range ents {
		if !e.Type().IsRegular() {
			continue
		}
		n, ok := ParseSegmentName(e.Name())
		if !ok {
			n, ok = ParseArchiveName(e.Name())
		}
		if ok && !seen[n] {
			seen[n] = true
			out = append(out, n)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out, nil
}

// SegmentFile returns the file holding segment n: the raw segment if it
// exists (during compression both exist and the raw one is authoritative),
// else the archive. archived says which.
func SegmentFile(dir string, n uint64) (path string, archived bool) {
	p := SegmentPath(dir, n)
	if _, err := os.Stat(p); err == nil {
		return p, false
	}
	if _, err := os.Stat(p + ".zst"); err == nil {
		return p + ".zst", true
	}
	return p, false
}

// SegmentPath joins dir and SegmentName(n).
func SegmentPath(dir string, n uint64) string { return filepath.Join(dir, SegmentName(n)) }

// IndexPath joins dir and IndexName(n).
func IndexPath(dir string, n uint64) string { return filepath.Join(dir, IndexName(n)) }

// ReadHeader reads segment n's header page (raw or archived: an archive
// starts with the same page) without mapping the file and without checking
// it: for tools that only need a field or two (flags, first or last seq,
// journal id), including of segments that fail their check. Use
// Header.Check before trusting it.
func ReadHeader(dir string, n uint64) (Header, error) {
	path, _ := SegmentFile(dir, n)
	f, err := os.Open(path)
	if err != nil {
		return Header{}, err
	}
	defer f.Close()
	b := make([]byte, SegmentHeaderSize)
	if _, err := f.ReadAt(b, 0); err != nil {
		return Header{}, Corrupt(path, 0, ErrTruncated, "cannot read the %d-byte header: %v", SegmentHeaderSize, err)
	}
	return HeaderOf(b), nil
}
