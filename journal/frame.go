package journal

import (
	"encoding/binary"
	"hash/crc32"
)

// Frame layout, format.md §3. These constants are part of the on-disk format.
const (
	FrameHeaderSize = 32 // bytes before the payload
	FrameAlign      = 8  // every frame starts on an 8-byte boundary
	// MaxPayload is the largest payload of one frame (Raw included, source
	// trailer included): 64 KiB minus the header, so a whole frame never
	// exceeds 64 KiB.
	MaxPayload   = 64<<10 - FrameHeaderSize
	MaxFrameSize = FrameHeaderSize + MaxPayload

	frameOffCRC   = 0 // u32 ┐ the commit word: one atomic u64 at offset 0,
	frameOffSize  = 4 // u32 ┘ stored last (format.md §4)
	frameOffSeq   = 8
	frameOffTS    = 16
	frameOffType  = 24
	frameOffFlags = 26
	frameOffInstr = 28

	// SourceTrailerSize is the size of the source trailer that follows the
	// payload of a frame flagged FrameSource: receive time (i64 Unix ns) and
	// the source's own sequence number (u64), format.md §3.3.
	SourceTrailerSize = 16
)

// Frame flags (frame header offset 26), format.md §3.3.
const (
	// FrameRestated marks a frame that repeats state already in the journal
	// (an instrument definition or trading status re-stated at the start of
	// a segment, so that every segment describes its instruments). A
	// consumer that keeps a catalogue applies it like the original; one that
	// counts events skips it.
	FrameRestated uint16 = 1 << 0
	// FrameSource marks a frame whose payload is followed by a 16-byte
	// source trailer: recv_ts i64 (Unix ns, when the feed handler received
	// the message) and source_seq u64 (the feed's sequence number).
	FrameSource uint16 = 1 << 1

	frameFlagsKnown = FrameRestated | FrameSource
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// CRC32C returns the Castagnoli CRC of b (hardware-accelerated on amd64/arm64).
func CRC32C(b []byte) uint32 { return crc32.Checksum(b, castagnoli) }

// Align8 rounds n up to the frame alignment.
func Align8(n int) int { return (n + FrameAlign - 1) &^ (FrameAlign - 1) }

// FrameSpace is the number of segment bytes a frame with an n-byte payload
// occupies, padding included.
func FrameSpace(n int) int { return Align8(FrameHeaderSize + n) }

// FrameCRC is the checksum of a frame of the given size stored at b[0:size]:
// CRC-32C over bytes [8,size) with the size as the initial value in the
// zlib "update" convention (crc32.Update(size, castagnoli, b[8:size])). The
// size word is bound into the checksum without a second pass, so the whole
// frame but the commit word is covered by one hardware CRC run, and the
// commit word (crc | size<<32) can be stored last (format.md §3, §4).
func FrameCRC(b []byte, size int) uint32 {
	return crc32.Update(uint32(size), castagnoli, b[frameOffSeq:size])
}

// CommitWord is the u64 that publishes a frame: crc in the low 32 bits,
// size in the high 32 bits (little-endian bytes [0,8) of the frame). It is
// never 0 for a real frame (size ≥ 32).
func CommitWord(crc uint32, size int) uint64 { return uint64(crc) | uint64(size)<<32 }

// PutFrame encodes a complete frame (header, payload, checksum, commit word)
// into b, which must hold FrameSpace(len(payload)) bytes and be zero in its
// padding (fresh segment bytes are). It returns the bytes used. It is for
// buffers nobody reads concurrently; the writer stages a frame with
// PutFrameBody and publishes its commit word with an atomic store.
func PutFrame(b []byte, seq uint64, ts int64, typ MsgType, flags uint16, instr uint32, payload []byte) int {
	w := PutFrameBody(b, seq, ts, typ, flags, instr, payload)
	binary.LittleEndian.PutUint64(b[frameOffCRC:], w)
	return FrameSpace(len(payload))
}

// PutFrameBody writes everything of a frame but its commit word (bytes
// [8, FrameSpace)) and returns the commit word to store at b[0:8] to
// publish it. b's padding must already be zero.
func PutFrameBody(b []byte, seq uint64, ts int64, typ MsgType, flags uint16, instr uint32, payload []byte) uint64 {
	size := FrameHeaderSize + len(payload)
	_ = b[size-1]
	binary.LittleEndian.PutUint64(b[frameOffSeq:], seq)
	binary.LittleEndian.PutUint64(b[frameOffTS:], uint64(ts))
	binary.LittleEndian.PutUint16(b[frameOffType:], uint16(typ))
	binary.LittleEndian.PutUint16(b[frameOffFlags:], flags)
	binary.LittleEndian.PutUint32(b[frameOffInstr:], instr)
	copy(b[FrameHeaderSize:size], payload)
	return CommitWord(FrameCRC(b, size), size)
}

// PutFrameBodySource is PutFrameBody for a frame flagged FrameSource: the
// 16-byte source trailer (recvTS, sourceSeq) follows the payload and is
// covered by the checksum. flags must include FrameSource.
func PutFrameBodySource(b []byte, seq uint64, ts int64, typ MsgType, flags uint16, instr uint32, payload []byte, recvTS int64, sourceSeq uint64) uint64 {
	end := FrameHeaderSize + len(payload)
	size := end + SourceTrailerSize
	_ = b[size-1]
	binary.LittleEndian.PutUint64(b[frameOffSeq:], seq)
	binary.LittleEndian.PutUint64(b[frameOffTS:], uint64(ts))
	binary.LittleEndian.PutUint16(b[frameOffType:], uint16(typ))
	binary.LittleEndian.PutUint16(b[frameOffFlags:], flags|FrameSource)
	binary.LittleEndian.PutUint32(b[frameOffInstr:], instr)
	copy(b[FrameHeaderSize:end], payload)
	binary.LittleEndian.PutUint64(b[end:], uint64(recvTS))
	binary.LittleEndian.PutUint64(b[end+8:], sourceSeq)
	return CommitWord(FrameCRC(b, size), size)
}

// Frame is a decoded frame. Payload aliases the bytes it was decoded from (for
// a reader: the read-only mapping), so decoding allocates nothing; it is valid
// until the reader moves past the segment holding it.
type Frame struct {
	Seq        uint64
	TS         int64 // event time, nanoseconds since the Unix epoch
	Type       MsgType
	Flags      uint16 // FrameRestated, FrameSource
	Instrument uint32
	// Payload is the type's payload, without the source trailer.
	Payload []byte
	// RecvTS and SourceSeq are the source trailer (Flags&FrameSource), else 0.
	RecvTS    int64
	SourceSeq uint64
	Segment   uint64 // segment number the frame was read from
	Offset    int64  // byte offset of the frame in that segment file
	CRC       uint32
	Size      uint32 // header + payload + trailer, without padding
}

// Restated reports whether f repeats state stated earlier (FrameRestated).
func (f *Frame) Restated() bool { return f.Flags&FrameRestated != 0 }

// FrameStatus classifies what DecodeFrame found.
type FrameStatus uint8

// What DecodeFrame can find at an offset.
const (
	FrameOK        FrameStatus = iota // a whole frame whose checksum holds
	FrameEmpty                        // the commit word is zero: nothing published here
	FrameBadLength                    // the size is impossible (or a checksum without a size)
	FrameBadCRC                       // the checksum does not match
)

// DecodeFrame decodes and verifies the frame at b[0:], where b extends to the
// end of the readable region. It returns the frame, the bytes it occupies
// (padding included) and a status; on any status but FrameOK the frame must
// not be used. Content rules (type, payload size, flags) are checked by
// CheckContent.
func DecodeFrame(b []byte) (f Frame, n int, st FrameStatus) {
	n, st = DecodeFrameInto(b, &f)
	return f, n, st
}

// DecodeFrameInto is DecodeFrame writing into *f, for hot loops that must not
// copy a Frame through several returns. On any status but FrameOK, *f is
// left partly written and must not be used.
func DecodeFrameInto(b []byte, f *Frame) (n int, st FrameStatus) {
	if len(b) < 8 {
		return 0, FrameBadLength
	}
	return DecodeCommitted(b, binary.LittleEndian.Uint64(b), f)
}

// DecodeCommitted decodes the frame at b whose commit word w the caller
// loaded itself (a tailing reader loads it atomically, then decodes).
func DecodeCommitted(b []byte, w uint64, f *Frame) (n int, st FrameStatus) {
	size := int(w >> 32)
	crc := uint32(w)
	if size == 0 {
		if crc != 0 {
			return 0, FrameBadLength // a checksum without a size: damage
		}
		return 0, FrameEmpty
	}
	if size < FrameHeaderSize || size > MaxFrameSize || Align8(size) > len(b) {
		return 0, FrameBadLength
	}
	if FrameCRC(b, size) != crc {
		return 0, FrameBadCRC
	}
	f.Seq = binary.LittleEndian.Uint64(b[frameOffSeq:])
	f.TS = int64(binary.LittleEndian.Uint64(b[frameOffTS:]))
	f.Type = MsgType(binary.LittleEndian.Uint16(b[frameOffType:]))
	f.Flags = binary.LittleEndian.Uint16(b[frameOffFlags:])
	f.Instrument = binary.LittleEndian.Uint32(b[frameOffInstr:])
	end := size
	f.RecvTS, f.SourceSeq = 0, 0
	if f.Flags&FrameSource != 0 && size >= FrameHeaderSize+SourceTrailerSize {
		end = size - SourceTrailerSize
		f.RecvTS = int64(binary.LittleEndian.Uint64(b[end:]))
		f.SourceSeq = binary.LittleEndian.Uint64(b[end+8:])
	}
	f.Payload = b[FrameHeaderSize:end:end]
	f.CRC = crc
	f.Size = uint32(size)
	return Align8(size), FrameOK
}

// CheckContent applies the content rules of format.md §3 to a frame whose
// checksum is good: a known type, no unknown flag, a source trailer that
// fits, and the payload size fixed for its type. It returns the sentinel
// (ErrBadHeader or ErrBadLength) and a reason, or nil.
func CheckContent(f *Frame) (reason string, sentinel error) {
	if !f.Type.Known() {
		return "unknown message type " + f.Type.String(), ErrBadHeader
	}
	if f.Flags&^frameFlagsKnown != 0 {
		return "unknown frame flags " + hex16(f.Flags), ErrBadHeader
	}
	if f.Flags&FrameSource != 0 && int(f.Size) < FrameHeaderSize+SourceTrailerSize {
		return "frame flagged with a source trailer is too short for it", ErrBadLength
	}
	if ps := f.Type.PayloadSize(); ps >= 0 && len(f.Payload) != ps {
		return f.Type.String() + " payload is " + itoa(len(f.Payload)) + " bytes, want " + itoa(ps), ErrBadLength
	}
	if f.Flags&FrameRestated != 0 && f.Type != TypeInstrumentDef && f.Type != TypeTradingStatus {
		return "only instrument_def and trading_status frames are re-stated", ErrBadHeader
	}
	return "", nil
}

// FrameSizeAt returns the raw size word of the frame at b (unchecked), for
// forensics.
func FrameSizeAt(b []byte) uint32 { return binary.LittleEndian.Uint32(b[frameOffSize:]) }

// FrameCRCAt returns the raw crc word of the frame at b (unchecked).
func FrameCRCAt(b []byte) uint32 { return binary.LittleEndian.Uint32(b[frameOffCRC:]) }

func hex16(v uint16) string {
	const digits = "0123456789abcdef"
	return "0x" + string([]byte{digits[v>>12&15], digits[v>>8&15], digits[v>>4&15], digits[v&15]})
}

// StoredLen is the number of bytes frame f occupies in its segment (and in
// a ring record or a shipped batch): header, payload, trailer, padding.
func StoredLen(f *Frame) int { return Align8(int(f.Size)) }

// PutStored writes decoded frame f into b exactly as it is stored: header,
// payload, source trailer, zero padding and its stored checksum (verified
// when f was decoded, so it is copied, not recomputed). b must hold
// StoredLen(f) bytes. It returns the bytes written.
func PutStored(b []byte, f *Frame) int {
	size := int(f.Size)
	n := Align8(size)
	b = b[:n:n]
	binary.LittleEndian.PutUint64(b[frameOffSeq:], f.Seq)
	binary.LittleEndian.PutUint64(b[frameOffTS:], uint64(f.TS))
	binary.LittleEndian.PutUint16(b[frameOffType:], uint16(f.Type))
	binary.LittleEndian.PutUint16(b[frameOffFlags:], f.Flags)
	binary.LittleEndian.PutUint32(b[frameOffInstr:], f.Instrument)
	end := FrameHeaderSize + copy(b[FrameHeaderSize:], f.Payload)
	if f.Flags&FrameSource != 0 && end+SourceTrailerSize <= size {
		binary.LittleEndian.PutUint64(b[end:], uint64(f.RecvTS))
		binary.LittleEndian.PutUint64(b[end+8:], f.SourceSeq)
	}
	clear(b[size:])
	binary.LittleEndian.PutUint64(b[frameOffCRC:], CommitWord(f.CRC, size))
	return n
}
