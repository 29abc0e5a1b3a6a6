package journal

import (
	"encoding/binary"
	"hash/crc32"
)

// Frame layout, format.md §3. These constants are part of the on-disk format.
const (
	FrameHeaderSize = 32 // bytes before the payload
	FrameAlign      = 8  // every frame starts on an 8-byte boundary
	// MaxPayload is the largest payload of one frame (Raw included): 64 KiB
	// minus the header, so a whole frame never exceeds 64 KiB.
	MaxPayload   = 64<<10 - FrameHeaderSize
	MaxFrameSize = FrameHeaderSize + MaxPayload

	frameOffCRC   = 0
	frameOffSize  = 4
	frameOffSeq   = 8
	frameOffTS    = 16
	frameOffType  = 24
	frameOffFlags = 26
	frameOffInstr = 28
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// CRC32C returns the Castagnoli CRC of b (hardware-accelerated on amd64/arm64).
func CRC32C(b []byte) uint32 { return crc32.Checksum(b, castagnoli) }

// Align8 rounds n up to the frame alignment.
func Align8(n int) int { return (n + FrameAlign - 1) &^ (FrameAlign - 1) }

// FrameSpace is the number of segment bytes a frame with an n-byte payload
// occupies, padding included.
func FrameSpace(n int) int { return Align8(FrameHeaderSize + n) }

// frameCRC computes the checksum of a frame of the given size stored at b[0:size]:
// CRC-32C over [4,size), i.e. everything after the crc word, size word
// included. One contiguous range: a single hardware CRC pass (format.md §3).
func frameCRC(b []byte, size int) uint32 {
	return crc32.Update(0, castagnoli, b[frameOffSize:size])
}

// PutFrame encodes a complete frame (header, payload, checksum) into b, which
// must hold FrameSpace(len(payload)) bytes and be zero in its padding (the
// writer's fresh segment bytes are). It returns the bytes used.
func PutFrame(b []byte, seq uint64, ts int64, typ MsgType, instr uint32, payload []byte) int {
	size := FrameHeaderSize + len(payload)
	PutFrameHeader(b, size, seq, ts, typ, instr)
	copy(b[FrameHeaderSize:size], payload)
	SealFrame(b, size)
	return Align8(size)
}

// PutFrameHeader writes every header field except the checksum. A caller that
// fills the payload in place calls SealFrame afterwards.
func PutFrameHeader(b []byte, size int, seq uint64, ts int64, typ MsgType, instr uint32) {
	_ = b[FrameHeaderSize-1]
	binary.LittleEndian.PutUint32(b[frameOffSize:], uint32(size))
	binary.LittleEndian.PutUint64(b[frameOffSeq:], seq)
	binary.LittleEndian.PutUint64(b[frameOffTS:], uint64(ts))
	binary.LittleEndian.PutUint16(b[frameOffType:], uint16(typ))
	binary.LittleEndian.PutUint16(b[frameOffFlags:], 0)
	binary.LittleEndian.PutUint32(b[frameOffInstr:], instr)
}

// SealFrame stores the checksum of the size-byte frame at b.
func SealFrame(b []byte, size int) {
	binary.LittleEndian.PutUint32(b[frameOffCRC:], frameCRC(b, size))
}

// Frame is a decoded frame. Payload aliases the bytes it was decoded from (for
// a reader: the read-only mapping), so decoding allocates nothing; it is valid
// until the reader moves past the segment holding it.
type Frame struct {
	Seq        uint64
	TS         int64 // nanoseconds since the Unix epoch
	Type       MsgType
	Flags      uint16
	Instrument uint32
	Payload    []byte
	Segment    uint64 // segment number the frame was read from
	Offset     int64  // byte offset of the frame in that segment file
	CRC        uint32
}

// FrameStatus classifies what DecodeFrame found.
type FrameStatus uint8

const (
	FrameOK    FrameStatus = iota
	FrameEmpty             // size word is zero: nothing written here
	FrameBadLength
	FrameBadCRC
)

// DecodeFrame decodes and verifies the frame at b[0:], where b extends to the
// end of the readable region. It returns the frame, the bytes it occupies
// (padding included) and a status; on any status but FrameOK the frame must
// not be used.
func DecodeFrame(b []byte) (f Frame, n int, st FrameStatus) {
	n, st = DecodeFrameInto(b, &f)
	return f, n, st
}

// DecodeFrameInto is DecodeFrame writing into *f, for hot loops that must not
// copy a Frame through several returns. On any status but FrameOK, *f is
// left partly written and must not be used.
func DecodeFrameInto(b []byte, f *Frame) (n int, st FrameStatus) {
	if len(b) < FrameHeaderSize {
		if len(b) >= 8 && binary.LittleEndian.Uint64(b) == 0 {
			return 0, FrameEmpty
		}
		return 0, FrameBadLength
	}
	size := int(binary.LittleEndian.Uint32(b[frameOffSize:]))
	if size == 0 {
		if binary.LittleEndian.Uint32(b[frameOffCRC:]) != 0 {
			return 0, FrameBadLength // a checksum without a size: a torn or damaged header
		}
		return 0, FrameEmpty
	}
	if size < FrameHeaderSize || size > MaxFrameSize || Align8(size) > len(b) {
		return 0, FrameBadLength
	}
	crc := binary.LittleEndian.Uint32(b[frameOffCRC:])
	if frameCRC(b, size) != crc {
		return 0, FrameBadCRC
	}
	f.Seq = binary.LittleEndian.Uint64(b[frameOffSeq:])
	f.TS = int64(binary.LittleEndian.Uint64(b[frameOffTS:]))
	f.Type = MsgType(binary.LittleEndian.Uint16(b[frameOffType:]))
	f.Flags = binary.LittleEndian.Uint16(b[frameOffFlags:])
	f.Instrument = binary.LittleEndian.Uint32(b[frameOffInstr:])
	f.Payload = b[FrameHeaderSize:size:size]
	f.CRC = crc
	return Align8(size), FrameOK
}

// FrameSizeAt returns the raw size word of the frame at b (unchecked), for
// forensics.
func FrameSizeAt(b []byte) uint32 { return binary.LittleEndian.Uint32(b[frameOffSize:]) }
