package journal

import (
	"encoding/binary"
	"strconv"
)

// ScanResult describes a forward scan over a segment's frames (format.md §8).
type ScanResult struct {
	Start   int64  // where the scan began
	End     int64  // offset just past the last good frame (past the end marker when Sealed)
	LastSeq uint64 // seq of the last good data frame (prevSeq if none)
	Frames  int64  // good data frames seen (end marker not counted)
	FirstTS int64  // timestamp of the first good data frame seen (0 if none)
	LastTS  int64
	Sealed  bool // the scan ended at a valid end-of-segment marker
	// Err is nil when the scan ended cleanly: at an empty commit word, at
	// limit, or at an end marker. Otherwise it describes the first bad
	// frame, at offset End.
	Err *CorruptionError
}

// ScanSegment walks frames in data (a whole segment image) from offset start
// up to limit, checking each frame's length, checksum, content rules
// (CheckContent) and that sequence numbers continue from prevSeq without a
// gap. visit, if non-nil, is called for each good data frame (Segment is
// left for the caller to set). It never panics on any input.
func ScanSegment(name string, data []byte, start int64, prevSeq uint64, limit int64, visit func(*Frame)) ScanResult {
	if limit > int64(len(data)) {
		limit = int64(len(data))
	}
	r := ScanResult{Start: start, End: start, LastSeq: prevSeq}
	if start < 0 || start > limit {
		return r
	}
	off := start
	var f Frame
	for off+8 <= limit {
		n, st := DecodeFrameInto(data[off:limit], &f)
		switch st {
		case FrameEmpty:
			return r
		case FrameBadLength:
			r.Err = Corrupt(name, off, ErrBadLength, "frame length %d is invalid (min %d, max %d, %d bytes left)",
				FrameSizeAt(data[off:]), FrameHeaderSize, MaxFrameSize, limit-off)
			return r
		case FrameBadCRC:
			r.Err = Corrupt(name, off, ErrChecksum, "frame checksum mismatch (stored %#08x)", FrameCRCAt(data[off:]))
			return r
		}
		if f.Seq != r.LastSeq+1 {
			r.Err = Corrupt(name, off, ErrSequence, "frame seq %d, expected %d", f.Seq, r.LastSeq+1)
			return r
		}
		if reason, sent := CheckContent(&f); sent != nil {
			r.Err = Corrupt(name, off, sent, "%s", reason)
			return r
		}
		if f.Type == TypeSegmentEnd {
			r.End = off + int64(n)
			r.Sealed = true
			return r
		}
		f.Offset = off
		if visit != nil {
			visit(&f)
		}
		if r.Frames == 0 {
			r.FirstTS = f.TS
		}
		r.LastTS = f.TS
		r.Frames++
		r.LastSeq = f.Seq
		off += int64(n)
		r.End = off
	}
	if off < limit && !allZero(data[off:limit]) {
		// Fewer than 8 bytes left before the limit and they are not zero.
		r.Err = Corrupt(name, off, ErrBadLength, "%d stray bytes before the end", limit-off)
	}
	return r
}

// Tail describes the bytes after the point where a scan stopped.
type Tail struct {
	From       int64 // where the scan stopped
	NonZeroEnd int64 // offset just past the last non-zero byte in [From, limit); From if none
	// ValidAt is the offset of the first frame after From that decodes with a
	// good checksum and a sequence number that could continue the segment,
	// or -1. A valid frame after damage means the damage is not a torn tail.
	ValidAt int64
}

// Torn reports whether nothing valid follows the stop point.
func (t Tail) Torn() bool { return t.ValidAt < 0 }

// tailSeqWindow bounds how far past the last good seq a frame found after
// damage may be numbered and still count as this segment's data.
const tailSeqWindow = 1 << 20

// ExamineTail looks at data[from:limit] after a scan stopped at from.
func ExamineTail(data []byte, from, limit int64, lastSeq uint64) Tail {
	if limit > int64(len(data)) {
		limit = int64(len(data))
	}
	if from > limit {
		from = limit
	}
	t := Tail{From: from, NonZeroEnd: from, ValidAt: -1}
	end := limit
	for end > from {
		w := max(end-4096, from)
		if !allZero(data[w:end]) {
			for end > w && data[end-1] == 0 {
				end--
			}
			break
		}
		end = w
	}
	t.NonZeroEnd = end
	var f Frame
	for off := (from + FrameAlign) &^ (FrameAlign - 1); off+FrameHeaderSize <= end; off += FrameAlign {
		sz := FrameSizeAt(data[off:])
		if sz < FrameHeaderSize || sz > MaxFrameSize {
			continue
		}
		// Only a frame that could continue this segment counts (its seq
		// within the next tailSeqWindow), filtered on the seq field before
		// any checksum is computed: bytes inside a torn Raw payload that
		// happen to look like a frame of another journal are not "valid data
		// following", and a 64 MiB tail is not checksummed at every offset.
		if seq := binary.LittleEndian.Uint64(data[off+frameOffSeq:]); seq <= lastSeq || seq > lastSeq+tailSeqWindow {
			continue
		}
		if _, st := DecodeFrameInto(data[off:limit], &f); st == FrameOK {
			t.ValidAt = off
			break
		}
	}
	return t
}

// AllZero reports whether b holds only zero bytes.
func AllZero(b []byte) bool { return allZero(b) }

func allZero(b []byte) bool {
	for len(b) >= 8 {
		if binary.LittleEndian.Uint64(b) != 0 {
			return false
		}
		b = b[8:]
	}
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

func itoa(n int) string { return strconv.Itoa(n) }
