package journal

import "encoding/binary"

// ScanResult describes a forward scan over a segment's frames (format.md §8).
type ScanResult struct {
	Start   int64  // where the scan began
	End     int64  // offset just past the last good frame (past the end marker when Sealed)
	LastSeq uint64 // seq of the last good data frame (prevSeq if none)
	Frames  int64  // good data frames seen (end marker not counted)
	FirstTS int64  // timestamp of the first good data frame seen (0 if none)
	LastTS  int64
	Sealed  bool // the scan ended at a valid end-of-segment marker
	// Err is nil when the scan ended cleanly: at zeroes, at limit, or at an end
	// marker. Otherwise it describes the first bad frame, at offset End.
	Err *CorruptionError
}

// ScanSegment walks frames in data (a whole segment mapping) from offset start
// up to limit, checking each frame's length, checksum, payload size and that
// sequence numbers continue from prevSeq without a gap. visit, if non-nil, is
// called for each good data frame. It never panics on any input.
func ScanSegment(name string, data []byte, start int64, prevSeq uint64, limit int64, visit func(*Frame)) ScanResult {
	if limit > int64(len(data)) {
		limit = int64(len(data))
	}
	r := ScanResult{Start: start, End: start, LastSeq: prevSeq}
	off := start
	for off < limit {
		f, n, st := DecodeFrame(data[off:limit])
		switch st {
		case FrameEmpty:
			return r
		case FrameBadLength:
			r.Err = Corrupt(name, off, ErrBadLength, "frame length %d is invalid (min %d, max %d, %d bytes left)",
				frameSizeWord(data, off, limit), FrameHeaderSize, MaxFrameSize, limit-off)
			return r
		case FrameBadCRC:
			r.Err = Corrupt(name, off, ErrChecksum, "frame checksum mismatch (stored %#08x)",
				binary.LittleEndian.Uint32(data[off+frameOffCRC:]))
			return r
		}
		if f.Seq != r.LastSeq+1 {
			r.Err = Corrupt(name, off, ErrSequence, "frame seq %d, expected %d", f.Seq, r.LastSeq+1)
			return r
		}
		if !f.Type.Known() {
			r.Err = Corrupt(name, off, ErrBadHeader, "unknown message type %d", f.Type)
			return r
		}
		if ps := f.Type.PayloadSize(); ps >= 0 && len(f.Payload) != ps {
			r.Err = Corrupt(name, off, ErrBadLength, "%s payload is %d bytes, want %d", f.Type, len(f.Payload), ps)
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
	return r
}

func frameSizeWord(data []byte, off, limit int64) int64 {
	if limit-off < 8 {
		return -1
	}
	return int64(FrameSizeAt(data[off:]))
}

// Tail describes the bytes after the point where a scan stopped.
type Tail struct {
	From       int64 // where the scan stopped
	NonZeroEnd int64 // offset just past the last non-zero byte in [From, limit); From if none
	// ValidAt is the offset of the first frame after From that decodes with a
	// good checksum and a sequence number above the scan's last one, or -1.
	// A valid frame after damage means the damage is not a torn tail.
	ValidAt int64
}

// Torn reports whether the stop point is a torn (or zeroed) tail: nothing
// valid follows it. Only such a tail may be cut automatically.
func (t Tail) Torn() bool { return t.ValidAt < 0 }

// tailSeqWindow bounds how far past the last good seq a frame found after
// damage may be numbered and still count as this segment's data.
const tailSeqWindow = 1 << 20

// ExamineTail looks at data[from:limit] after a scan stopped at from.
func ExamineTail(data []byte, from, limit int64, lastSeq uint64) Tail {
	if limit > int64(len(data)) {
		limit = int64(len(data))
	}
	t := Tail{From: from, NonZeroEnd: from, ValidAt: -1}
	// Last non-zero byte, scanning 8-byte words from the end.
	end := limit
	for end > from {
		w := end - 8
		if w < from {
			w = from
		}
		if !allZero(data[w:end]) {
			for end > w && data[end-1] == 0 {
				end--
			}
			break
		}
		end = w
	}
	t.NonZeroEnd = end
	for off := (from + FrameAlign) &^ (FrameAlign - 1); off+FrameHeaderSize <= end; off += FrameAlign {
		sz := FrameSizeAt(data[off:])
		if sz < FrameHeaderSize || sz > MaxFrameSize {
			continue
		}
		// Only a frame that could continue this segment counts (its seq
		// within the next tailSeqWindow), and it is filtered on the seq field
		// before any checksum is computed: bytes inside a torn Raw payload
		// that happen to look like a frame of another journal are not
		// "valid data following", and a 64 MiB tail is not checksummed at
		// every 8-byte offset.
		if seq := binary.LittleEndian.Uint64(data[off+frameOffSeq:]); seq <= lastSeq || seq > lastSeq+tailSeqWindow {
			continue
		}
		f, _, st := DecodeFrame(data[off:limit])
		if st == FrameOK && f.Seq > lastSeq {
			t.ValidAt = off
			break
		}
	}
	return t
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}
