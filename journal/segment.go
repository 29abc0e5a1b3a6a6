package journal

import (
	"encoding/binary"
	"sync/atomic"
	"unsafe"
)

// Segment header, format.md §2. These constants are part of the on-disk format.
const (
	// Version is the format version of segment, index, control, archive and
	// reader-position files. 1 existed only during development; 2 published
	// frames by a cursor store; 3 publishes each frame by its commit word,
	// keeps the header's mutable state in two checksummed records, and
	// carries a recovery epoch (format.md §10).
	Version = 3

	SegmentHeaderSize = 4096 // header page; frames start here
	SegmentMagic      = "MDJSEG\x00\x00"

	// Static fields: written when the segment is created and again when it
	// is activated; covered by header_crc.
	segOffMagic      = 0  // [8]byte
	segOffVersion    = 8  // uint32
	segOffHeaderSize = 12 // uint32
	segOffJournalID  = 16 // uint64
	segOffNumber     = 24 // uint64
	segOffFirstSeq   = 32 // uint64, 0 while prepared
	segOffCreated    = 40 // int64, Unix ns
	segOffCapacity   = 48 // uint64, file size in bytes
	segOffEpoch      = 56 // uint32, recovery epoch of the activating writer
	segOffHeaderCRC  = 60 // uint32, CRC-32C of bytes [0,60)
	segStaticEnd     = 60

	// SegOffCursor is the write cursor: a hint, at most the end of the
	// published frames (format.md §4). Atomic uint64 alone on its cache line
	// [64,128).
	SegOffCursor = 64

	// SegOffStateA and SegOffStateB are the two state records (format.md
	// §2.2), each StateSize bytes on its own cache line.
	SegOffStateA = 128
	SegOffStateB = 192
	StateSize    = 64

	// MinSegmentSize is the smallest allowed capacity: header page plus room for
	// several maximal frames and the end marker.
	MinSegmentSize = 256 << 10
	// MaxSegmentSize bounds a segment's capacity: a header claiming more is
	// damage, so no crafted header makes a tool reserve or map more.
	MaxSegmentSize = 1 << 30
	// DefaultSegmentSize is the capacity the writer uses unless told otherwise.
	DefaultSegmentSize = 64 << 20
	// EndMarkerSize is the space the end-of-segment marker frame takes; the
	// writer always keeps it free.
	EndMarkerSize = FrameHeaderSize
)

// State record layout (format.md §2.2).
const (
	stOffGen       = 0  // u64: record generation; the valid record with the larger one is current
	stOffDurOff    = 8  // u64: durable_offset
	stOffDurSeq    = 16 // u64: durable_seq
	stOffLastSeq   = 24 // u64: last_seq (sealed segments)
	stOffFlags     = 32 // u32
	stOffWriterPID = 36 // u32
	stOffCRC       = 60 // u32: CRC-32C of [0,60)
	stCRCEnd       = 60
)

// State flags (state record offset 32), format.md §2.2.
const (
	// StateSealed: the end marker is written; no more frames.
	StateSealed uint32 = 1 << 0
	// StateClean: the writer closed cleanly: everything up to the cursor is
	// durable (durable_offset == write_cursor) and nothing lies past it.
	StateClean uint32 = 1 << 1

	stateFlagsKnown = StateSealed | StateClean
)

// State is the mutable state of an activated segment: its durability
// checkpoint, whether it is sealed or was closed cleanly, and who wrote it.
type State struct {
	Gen           uint64 // record generation (≥ 1)
	DurableOffset int64  // every byte below it is on stable storage
	DurableSeq    uint64 // seq of the last frame below DurableOffset (first_seq-1 if none)
	LastSeq       uint64 // sealed segments: seq of the last data frame
	Flags         uint32 // StateSealed, StateClean
	WriterPID     uint32 // PID of the writer that last wrote the record
}

// Sealed reports StateSealed.
func (s State) Sealed() bool { return s.Flags&StateSealed != 0 }

// Clean reports StateClean.
func (s State) Clean() bool { return s.Flags&StateClean != 0 }

// PutState encodes s into b[:StateSize], checksum included. Writing it into a
// mapped header is the writer's job (internal/segfile): it writes the record
// slot that is not current, so a torn write leaves the current one intact.
func PutState(b []byte, s State) {
	b = b[:StateSize]
	clear(b)
	binary.LittleEndian.PutUint64(b[stOffGen:], s.Gen)
	binary.LittleEndian.PutUint64(b[stOffDurOff:], uint64(s.DurableOffset))
	binary.LittleEndian.PutUint64(b[stOffDurSeq:], s.DurableSeq)
	binary.LittleEndian.PutUint64(b[stOffLastSeq:], s.LastSeq)
	binary.LittleEndian.PutUint32(b[stOffFlags:], s.Flags)
	binary.LittleEndian.PutUint32(b[stOffWriterPID:], s.WriterPID)
	binary.LittleEndian.PutUint32(b[stOffCRC:], CRC32C(b[:stCRCEnd]))
}

// ParseState decodes one state record; ok is false unless its checksum
// holds, its generation is non-zero and it uses no unknown flag.
func ParseState(b []byte) (s State, ok bool) {
	if len(b) < StateSize {
		return State{}, false
	}
	if CRC32C(b[:stCRCEnd]) != binary.LittleEndian.Uint32(b[stOffCRC:]) {
		return State{}, false
	}
	s = State{
		Gen:           binary.LittleEndian.Uint64(b[stOffGen:]),
		DurableOffset: int64(binary.LittleEndian.Uint64(b[stOffDurOff:])),
		DurableSeq:    binary.LittleEndian.Uint64(b[stOffDurSeq:]),
		LastSeq:       binary.LittleEndian.Uint64(b[stOffLastSeq:]),
		Flags:         binary.LittleEndian.Uint32(b[stOffFlags:]),
		WriterPID:     binary.LittleEndian.Uint32(b[stOffWriterPID:]),
	}
	return s, s.Gen != 0 && s.Flags&^stateFlagsKnown == 0
}

// Header is a read-only view of a segment header page, mapped or read into
// memory. Mutable words are loaded atomically (the mapping is page-aligned,
// so they are 8-byte aligned). Writing headers is not part of this view.
type Header struct{ b []byte }

// HeaderOf returns a view of the header at the start of a segment image. m
// must hold at least SegmentHeaderSize bytes.
func HeaderOf(m []byte) Header { return Header{b: m[:SegmentHeaderSize:SegmentHeaderSize]} }

// Bytes returns the header page the view reads.
func (h Header) Bytes() []byte { return h.b }

func (h Header) u64(off int) *uint64 { return (*uint64)(unsafe.Add(unsafe.Pointer(&h.b[0]), off)) }

// Magic is the 8-byte magic ("MDJSEG\0\0").
func (h Header) Magic() string { return string(h.b[segOffMagic : segOffMagic+8]) }

// Version is the format version.
func (h Header) Version() uint32 { return binary.LittleEndian.Uint32(h.b[segOffVersion:]) }

// HeaderSize is the offset of the first frame (4096).
func (h Header) HeaderSize() uint32 { return binary.LittleEndian.Uint32(h.b[segOffHeaderSize:]) }

// JournalID is the journal identity shared by every file of one journal.
func (h Header) JournalID() uint64 { return binary.LittleEndian.Uint64(h.b[segOffJournalID:]) }

// Number is the segment number (also in the file name).
func (h Header) Number() uint64 { return binary.LittleEndian.Uint64(h.b[segOffNumber:]) }

// FirstSeq is the seq of the segment's first frame; 0 while prepared.
func (h Header) FirstSeq() uint64 { return binary.LittleEndian.Uint64(h.b[segOffFirstSeq:]) }

// Created is the file's creation time in Unix ns.
func (h Header) Created() int64 { return int64(binary.LittleEndian.Uint64(h.b[segOffCreated:])) }

// Capacity is the segment's size in bytes.
func (h Header) Capacity() uint64 { return binary.LittleEndian.Uint64(h.b[segOffCapacity:]) }

// Epoch is the recovery epoch of the writer that activated the segment
// (format.md §8.4).
func (h Header) Epoch() uint32 { return binary.LittleEndian.Uint32(h.b[segOffEpoch:]) }

// HeaderCRC is the stored checksum of the static fields.
func (h Header) HeaderCRC() uint32 { return binary.LittleEndian.Uint32(h.b[segOffHeaderCRC:]) }

// StaticOK reports whether the static fields' checksum holds.
func (h Header) StaticOK() bool { return CRC32C(h.b[:segStaticEnd]) == h.HeaderCRC() }

// Cursor loads the write cursor (atomic).
func (h Header) Cursor() uint64 { return atomic.LoadUint64(h.u64(SegOffCursor)) }

// StateRecords decodes both state records (format.md §2.2).
func (h Header) StateRecords() (a, b State, aOK, bOK bool) {
	var buf [2 * StateSize]byte
	for i := 0; i < 2*StateSize; i += 8 { // atomic 8-byte loads: a live writer may be writing one
		binary.LittleEndian.PutUint64(buf[i:], atomic.LoadUint64(h.u64(SegOffStateA+i)))
	}
	a, aOK = ParseState(buf[:StateSize])
	b, bOK = ParseState(buf[StateSize:])
	return
}

// State returns the current state record: the valid one with the larger
// generation. ok is false when neither record is valid (a prepared segment,
// or both records damaged). slot is 0 for record A, 1 for B.
func (h Header) State() (s State, slot int, ok bool) {
	a, b, aOK, bOK := h.StateRecords()
	switch {
	case aOK && (!bOK || a.Gen >= b.Gen):
		return a, 0, true
	case bOK:
		return b, 1, true
	}
	return State{}, 0, false
}

// Prepared reports whether the segment was never activated: first_seq is 0
// or no state record is valid. Readers skip trailing prepared segments.
func (h Header) Prepared() bool {
	_, _, ok := h.State()
	return h.FirstSeq() == 0 || !ok
}

// ActivatedEvidence reports whether the first bytes of a segment file (its
// header page, or all of a file shorter than that) prove that the segment
// was activated: its static header checks out with a non-zero first_seq
// (activation writes it into a full-size file only), or a valid state
// record survives (activation writes one only after the static fields,
// §4.3). A file shorter than its header page with this evidence is a
// truncated activated segment, and a static header that fails its checksum
// beside a valid state record is damage, not an activation being written
// (format.md §4, §8.2).
func ActivatedEvidence(prefix []byte) bool {
	var page [SegmentHeaderSize]byte
	copy(page[:], prefix)
	h := HeaderOf(page[:])
	if len(prefix) >= SegOffCursor && h.Magic() == SegmentMagic && h.StaticOK() && h.FirstSeq() != 0 {
		return true
	}
	_, _, ok := h.State()
	return ok
}

// PutStaticHeader encodes the static fields of a segment header into
// b[:SegmentHeaderSize] (the rest of the page is zeroed, the cursor set to
// 4096): a prepared segment when firstSeq is 0, an activated one otherwise.
func PutStaticHeader(b []byte, journalID, number, firstSeq uint64, created int64, capacity uint64, epoch uint32) {
	h := b[:SegmentHeaderSize]
	clear(h)
	PutStaticFields(h, journalID, number, firstSeq, created, capacity, epoch)
	binary.LittleEndian.PutUint64(h[SegOffCursor:], SegmentHeaderSize)
}

// PutStaticFields encodes only the static fields [0,64) (activation rewrites
// them with first_seq and epoch set, leaving the rest of the page alone).
func PutStaticFields(b []byte, journalID, number, firstSeq uint64, created int64, capacity uint64, epoch uint32) {
	h := b[:SegOffCursor]
	clear(h)
	copy(h[segOffMagic:], SegmentMagic)
	binary.LittleEndian.PutUint32(h[segOffVersion:], Version)
	binary.LittleEndian.PutUint32(h[segOffHeaderSize:], SegmentHeaderSize)
	binary.LittleEndian.PutUint64(h[segOffJournalID:], journalID)
	binary.LittleEndian.PutUint64(h[segOffNumber:], number)
	binary.LittleEndian.PutUint64(h[segOffFirstSeq:], firstSeq)
	binary.LittleEndian.PutUint64(h[segOffCreated:], uint64(created))
	binary.LittleEndian.PutUint64(h[segOffCapacity:], capacity)
	binary.LittleEndian.PutUint32(h[segOffEpoch:], epoch)
	binary.LittleEndian.PutUint32(h[segOffHeaderCRC:], CRC32C(h[:segStaticEnd]))
}

// Check validates the static header fields against the file they came from
// (not the cursor: see CursorOK):
// fileSize is the file's actual size, number the segment number its name
// says (0: not checked). It never trusts a field it has not checked: the
// capacity is bounded before anything compares with it.
func (h Header) Check(name string, fileSize int64, number uint64) error {
	if h.Magic() != SegmentMagic {
		return Corrupt(name, segOffMagic, ErrBadMagic, "bad segment magic %q", h.Magic())
	}
	if v := h.Version(); v != Version {
		return Corrupt(name, segOffVersion, ErrVersion, "segment format version %d, this build reads %d%s", v, Version, versionHint(v))
	}
	if !h.StaticOK() {
		return Corrupt(name, segOffHeaderCRC, ErrChecksum, "header checksum %#08x, computed %#08x", h.HeaderCRC(), CRC32C(h.b[:segStaticEnd]))
	}
	if h.HeaderSize() != SegmentHeaderSize {
		return Corrupt(name, segOffHeaderSize, ErrBadHeader, "header size %d, want %d", h.HeaderSize(), SegmentHeaderSize)
	}
	c := h.Capacity()
	if c < MinSegmentSize || c > MaxSegmentSize || c%SegmentHeaderSize != 0 {
		return Corrupt(name, segOffCapacity, ErrBadHeader, "capacity %d is not a valid segment size (%d..%d, a multiple of 4096)", c, MinSegmentSize, MaxSegmentSize)
	}
	if number != 0 && h.Number() != number {
		return Corrupt(name, segOffNumber, ErrBadHeader, "header says segment %d, the file name says %d", h.Number(), number)
	}
	if int64(c) > fileSize {
		return Corrupt(name, fileSize, ErrTruncated, "file is %d bytes, header says capacity %d", fileSize, c)
	}
	return nil
}

// CursorOK reports whether the write cursor lies inside the segment and is
// aligned. The cursor is a hint (format.md §4): readers never need it, and
// recovery resets a bad one from the frames; Assess and verify report it.
func (h Header) CursorOK() bool {
	cur, c := h.Cursor(), h.Capacity()
	return cur >= SegmentHeaderSize && cur <= c && cur%FrameAlign == 0
}

// CheckState validates the current state record of an activated segment
// against its static fields: offsets inside the segment and aligned,
// durable_seq not below first_seq-1. ok=false (no valid record) is reported
// by the caller, which knows whether the segment may be prepared.
func (h Header) CheckState(name string, s State) error {
	c := int64(h.Capacity())
	if s.DurableOffset < SegmentHeaderSize || s.DurableOffset > c || s.DurableOffset%FrameAlign != 0 {
		return Corrupt(name, SegOffStateA, ErrBadHeader, "state record: durable offset %d outside [%d,%d] or unaligned", s.DurableOffset, SegmentHeaderSize, c)
	}
	if first := h.FirstSeq(); s.DurableSeq < first-1 {
		return Corrupt(name, SegOffStateA, ErrBadHeader, "state record: durable seq %d below the first seq %d", s.DurableSeq, first)
	}
	if s.Sealed() && s.LastSeq < h.FirstSeq()-1 {
		return Corrupt(name, SegOffStateA, ErrBadHeader, "state record: sealed with last seq %d below the first seq %d", s.LastSeq, h.FirstSeq())
	}
	return nil
}

func versionHint(v uint32) string {
	if v > 0 && v < Version {
		return " (a journal written by an older mdjournal: this build does not convert it; read it with the release that wrote it)"
	}
	return ""
}
