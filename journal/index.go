package journal

import (
	"encoding/binary"
	"sync/atomic"
	"unsafe"
)

// Sparse index file, format.md §5. These constants are part of the on-disk format.
const (
	IndexMagic       = "MDJIDX\x00\x00"
	IndexHeaderSize  = 128
	IndexEntrySize   = 24
	IndexStride      = 4096 // a frame is indexed when it starts ≥ this many bytes after the previous indexed frame
	idxOffMagic      = 0    // [8]byte
	idxOffVersion    = 8    // uint32
	idxOffStride     = 12   // uint32
	idxOffJournalID  = 16   // uint64
	idxOffSegment    = 24   // uint64
	idxOffCapacity   = 32   // uint64: entry slots
	idxOffHeaderCRC  = 40   // uint32: CRC-32C of [0,40)
	idxStaticEnd     = 40
	IdxOffCount      = 64 // uint64 atomic: published entries, alone on its cache line
	idxEntryOffSeq   = 0
	idxEntryOffTS    = 8
	idxEntryOffFrame = 16
)

// IndexEntry locates one frame: its sequence number, timestamp and byte offset
// in the segment file.
type IndexEntry struct {
	Seq    uint64
	TS     int64
	Offset int64
}

// IndexCapacity is the number of entry slots an index for a segment of the
// given capacity needs: the first frame plus one per stride.
func IndexCapacity(segCapacity uint64) uint64 {
	return (segCapacity-SegmentHeaderSize)/IndexStride + 1
}

// IndexFileSize is the byte size of an index with n slots, rounded up to 4 KiB.
func IndexFileSize(n uint64) int64 {
	sz := int64(IndexHeaderSize) + int64(n)*IndexEntrySize
	return (sz + 4095) &^ 4095
}

// Index is a read-only view of a mapped index file.
type Index struct{ b []byte }

// IndexOf wraps a mapping of an index file.
func IndexOf(m []byte) Index { return Index{b: m} }

// PutIndexHeader encodes a fresh index header with no entries into
// m[:IndexHeaderSize].
func PutIndexHeader(m []byte, journalID, segment, capacity uint64) {
	clear(m[:IndexHeaderSize])
	copy(m[idxOffMagic:], IndexMagic)
	binary.LittleEndian.PutUint32(m[idxOffVersion:], Version)
	binary.LittleEndian.PutUint32(m[idxOffStride:], IndexStride)
	binary.LittleEndian.PutUint64(m[idxOffJournalID:], journalID)
	binary.LittleEndian.PutUint64(m[idxOffSegment:], segment)
	binary.LittleEndian.PutUint64(m[idxOffCapacity:], capacity)
	binary.LittleEndian.PutUint32(m[idxOffHeaderCRC:], CRC32C(m[:idxStaticEnd]))
}

func (x Index) countPtr() *uint64 { return (*uint64)(unsafe.Add(unsafe.Pointer(&x.b[0]), IdxOffCount)) }

// Magic is the index file magic ("MDJIDX\0\0").
func (x Index) Magic() string { return string(x.b[idxOffMagic : idxOffMagic+8]) }

// Version is the format version.
func (x Index) Version() uint32 { return binary.LittleEndian.Uint32(x.b[idxOffVersion:]) }

// Stride is the indexing stride in bytes (4096).
func (x Index) Stride() uint32 { return binary.LittleEndian.Uint32(x.b[idxOffStride:]) }

// JournalID is the journal the index belongs to.
func (x Index) JournalID() uint64 { return binary.LittleEndian.Uint64(x.b[idxOffJournalID:]) }

// Segment is the segment number the index belongs to.
func (x Index) Segment() uint64 { return binary.LittleEndian.Uint64(x.b[idxOffSegment:]) }

// Capacity is the number of entry slots.
func (x Index) Capacity() uint64 { return binary.LittleEndian.Uint64(x.b[idxOffCapacity:]) }

// HeaderCRC is the stored checksum of the static fields.
func (x Index) HeaderCRC() uint32 { return binary.LittleEndian.Uint32(x.b[idxOffHeaderCRC:]) }

// Count is the number of published entries (never more than Capacity).
func (x Index) Count() uint64 {
	n := atomic.LoadUint64(x.countPtr())
	if c := x.Capacity(); n > c {
		n = c
	}
	return n
}

// Entry returns entry i (i < Count()).
func (x Index) Entry(i uint64) IndexEntry {
	o := IndexHeaderSize + int(i)*IndexEntrySize
	return IndexEntry{
		Seq:    binary.LittleEndian.Uint64(x.b[o+idxEntryOffSeq:]),
		TS:     int64(binary.LittleEndian.Uint64(x.b[o+idxEntryOffTS:])),
		Offset: int64(binary.LittleEndian.Uint64(x.b[o+idxEntryOffFrame:])),
	}
}

// IndexEntryOffset is the file offset of entry i.
func IndexEntryOffset(i uint64) int64 { return IndexHeaderSize + int64(i)*IndexEntrySize }

// PutIndexEntry encodes e into b[:IndexEntrySize] (b is the entry's slot;
// it becomes visible when the count passes it, format.md §5).
func PutIndexEntry(b []byte, e IndexEntry) {
	b = b[:IndexEntrySize]
	binary.LittleEndian.PutUint64(b[idxEntryOffSeq:], e.Seq)
	binary.LittleEndian.PutUint64(b[idxEntryOffTS:], uint64(e.TS))
	binary.LittleEndian.PutUint64(b[idxEntryOffFrame:], uint64(e.Offset))
}

// Check validates the index header. segment and journalID are what the
// segment file says.
func (x Index) Check(name string, journalID, segment uint64) error {
	if len(x.b) < IndexHeaderSize || x.Magic() != IndexMagic {
		return Corrupt(name, 0, ErrBadMagic, "bad index magic")
	}
	if x.Version() != Version {
		return Corrupt(name, idxOffVersion, ErrVersion, "index format version %d, this build reads %d%s", x.Version(), Version, versionHint(x.Version()))
	}
	if crc := CRC32C(x.b[:idxStaticEnd]); crc != x.HeaderCRC() {
		return Corrupt(name, idxOffHeaderCRC, ErrChecksum, "index header checksum %#08x, computed %#08x", x.HeaderCRC(), crc)
	}
	if x.Segment() != segment || x.JournalID() != journalID {
		return Corrupt(name, idxOffJournalID, ErrIndexMismatch, "index is for journal %#x segment %d, not %#x segment %d",
			x.JournalID(), x.Segment(), journalID, segment)
	}
	if IndexFileSize(x.Capacity()) > int64(len(x.b)) || x.Stride() != IndexStride {
		return Corrupt(name, idxOffCapacity, ErrBadHeader, "index capacity %d / stride %d do not fit a %d-byte file",
			x.Capacity(), x.Stride(), len(x.b))
	}
	return nil
}

// SearchSeq returns the last entry with Seq ≤ seq (ok=false if none).
func (x Index) SearchSeq(seq uint64) (IndexEntry, bool) {
	lo, hi := uint64(0), x.Count() // find first entry with Seq > seq
	for lo < hi {
		m := (lo + hi) / 2
		if x.Entry(m).Seq <= seq {
			lo = m + 1
		} else {
			hi = m
		}
	}
	if lo == 0 {
		return IndexEntry{}, false
	}
	return x.Entry(lo - 1), true
}

// SearchTime returns the entry before the first entry (in seq order) with
// TS ≥ ts — the last entry if none reaches ts — and ok=false when the first
// entry already does. A forward scan from it reaches the first frame with
// TS ≥ ts. The search is linear, not binary: on a journal whose time goes
// back (format.md §5, "Seeking") the first occurrence in seq order is the
// one found, never a later one; on a time-ordered journal both agree.
func (x Index) SearchTime(ts int64) (IndexEntry, bool) {
	n := x.Count()
	i := uint64(0)
	for i < n && x.Entry(i).TS < ts {
		i++
	}
	if i == 0 {
		return IndexEntry{}, false
	}
	return x.Entry(i - 1), true
}

// Reaches reports whether an entry has TS ≥ ts.
func (x Index) Reaches(ts int64) bool {
	for i, n := uint64(0), x.Count(); i < n; i++ {
		if x.Entry(i).TS >= ts {
			return true
		}
	}
	return false
}
