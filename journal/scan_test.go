package journal

import (
	"errors"
	"testing"
)

// buildSegment returns a segment image with n Quote frames from seq first,
// and the offsets of each frame.
func buildSegment(capacity int, first uint64, n int) ([]byte, []int64) {
	m := make([]byte, capacity)
	InitHeader(m, 0xfeed, 1, 1, uint64(capacity))
	h := HeaderOf(m)
	h.Activate(first, 1)
	off := int64(SegmentHeaderSize)
	var offs []int64
	var q Quote
	p := make([]byte, 32)
	for i := 0; i < n; i++ {
		q.BidPrice = int64(i)
		offs = append(offs, off)
		off += int64(PutFrame(m[off:], first+uint64(i), int64(i), TypeQuote, 1, q.Encode(p)))
	}
	h.SetCursor(uint64(off))
	return m, offs
}

func TestScanSegment(t *testing.T) {
	m, offs := buildSegment(MinSegmentSize, 10, 100)
	end := int64(HeaderOf(m).Cursor())
	r := ScanSegment("s", m, SegmentHeaderSize, 9, int64(len(m)), nil)
	if r.Err != nil || r.Frames != 100 || r.LastSeq != 109 || r.End != end {
		t.Fatalf("clean scan: %+v", r)
	}
	tests := []struct {
		name   string
		damage func([]byte)
		want   error
		at     int64
	}{
		{"flipped payload bit", func(b []byte) { b[offs[50]+40] ^= 0x10 }, ErrChecksum, offs[50]},
		{"bad length", func(b []byte) { b[offs[20]+4] = 3 }, ErrBadLength, offs[20]},
		{"sequence gap", func(b []byte) {
			PutFrame(b[offs[30]:], 1000, 0, TypeQuote, 1, make([]byte, 32))
		}, ErrSequence, offs[30]},
		{"wrong payload size for type", func(b []byte) {
			PutFrame(b[offs[5]:], 15, 0, TypeBookLevel, 1, make([]byte, 32))
		}, ErrBadLength, offs[5]},
		{"unknown type", func(b []byte) {
			PutFrame(b[offs[6]:], 16, 0, MsgType(999), 1, make([]byte, 32))
		}, ErrBadHeader, offs[6]},
	}
	for _, tc := range tests {
		c := append([]byte{}, m...)
		tc.damage(c)
		r := ScanSegment("s", c, SegmentHeaderSize, 9, int64(len(c)), nil)
		if r.Err == nil || !errors.Is(r.Err, tc.want) || r.Err.Offset != tc.at || r.End != tc.at {
			t.Errorf("%s: got %+v (err %v), want %v at %d", tc.name, r, r.Err, tc.want, tc.at)
		}
	}
}

func TestExamineTail(t *testing.T) {
	m, offs := buildSegment(MinSegmentSize, 1, 50)
	end := int64(HeaderOf(m).Cursor())
	// Torn: a half-written frame after the last good one, zeroes after.
	c := append([]byte{}, m...)
	copy(c[end:], []byte{1, 2, 3, 4, 96, 0, 0, 0, 5})
	tail := ExamineTail(c, end, int64(len(c)), 50)
	if !tail.Torn() || tail.NonZeroEnd != end+9 {
		t.Fatalf("torn tail: %+v", tail)
	}
	// Mid-log: damage at frame 10, valid frames follow.
	c = append([]byte{}, m...)
	c[offs[10]+33] ^= 1
	tail = ExamineTail(c, offs[10], int64(len(c)), 10)
	if tail.Torn() || tail.ValidAt != offs[11] {
		t.Fatalf("mid-log: %+v, want valid at %d", tail, offs[11])
	}
	// All zero.
	tail = ExamineTail(m, end, int64(len(m)), 50)
	if !tail.Torn() || tail.NonZeroEnd != end {
		t.Fatalf("zero tail: %+v", tail)
	}
}

func TestHeaderCheck(t *testing.T) {
	m, _ := buildSegment(MinSegmentSize, 1, 3)
	if err := HeaderOf(m).Check("s", int64(len(m))); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		damage func([]byte)
		size   int64
		want   error
	}{
		{"bad magic", func(b []byte) { b[0] = 'X' }, MinSegmentSize, ErrBadMagic},
		{"unknown version", func(b []byte) { b[8] = 99 }, MinSegmentSize, ErrVersion},
		{"header crc", func(b []byte) { b[40] ^= 1 }, MinSegmentSize, ErrChecksum},
		{"cursor past capacity", func(b []byte) { HeaderOf(b).SetCursor(MinSegmentSize + 8) }, MinSegmentSize, ErrCursorRange},
		{"cursor unaligned", func(b []byte) { HeaderOf(b).SetCursor(SegmentHeaderSize + 3) }, MinSegmentSize, ErrCursorRange},
		{"file truncated", func([]byte) {}, MinSegmentSize - 4096, ErrTruncated},
	} {
		c := append([]byte{}, m...)
		tc.damage(c)
		err := HeaderOf(c).Check("s", tc.size)
		if !errors.Is(err, tc.want) || !errors.Is(err, ErrCorrupt) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
	}
}
