package journal

import (
	"errors"
	"testing"
)

func TestScanSegment(t *testing.T) {
	s := newTestSeg(MinSegmentSize, 10).quotes(100)
	m, offs := s.m, s.offs
	r := ScanSegment("s", m, SegmentHeaderSize, 9, int64(len(m)), nil)
	if r.Err != nil || r.Frames != 100 || r.LastSeq != 109 || r.End != s.end {
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
			PutFrame(b[offs[30]:], 1000, 0, TypeQuote, 0, 1, make([]byte, 32))
		}, ErrSequence, offs[30]},
		{"wrong payload size for type", func(b []byte) {
			PutFrame(b[offs[5]:], 15, 0, TypeBookLevel, 0, 1, make([]byte, 32))
		}, ErrBadLength, offs[5]},
		{"unknown type", func(b []byte) {
			PutFrame(b[offs[6]:], 16, 0, MsgType(999), 0, 1, make([]byte, 32))
		}, ErrBadHeader, offs[6]},
		{"unknown flag", func(b []byte) {
			PutFrame(b[offs[7]:], 17, 0, TypeQuote, 1<<9, 1, make([]byte, 32))
		}, ErrBadHeader, offs[7]},
	}
	for _, tc := range tests {
		c := s.clone()
		tc.damage(c)
		r := ScanSegment("s", c, SegmentHeaderSize, 9, int64(len(c)), nil)
		if r.Err == nil || !errors.Is(r.Err, tc.want) || r.Err.Offset != tc.at || r.End != tc.at {
			t.Errorf("%s: got %+v (err %v), want %v at %d", tc.name, r, r.Err, tc.want, tc.at)
		}
	}
}

func TestExamineTail(t *testing.T) {
	s := newTestSeg(MinSegmentSize, 1).quotes(50)
	m, offs, end := s.m, s.offs, s.end
	// Torn: a half-written frame after the last good one, zeroes after.
	c := s.clone()
	copy(c[end:], []byte{1, 2, 3, 4, 96, 0, 0, 0, 5})
	tail := ExamineTail(c, end, int64(len(c)), 50)
	if !tail.Torn() || tail.NonZeroEnd != end+9 {
		t.Fatalf("torn tail: %+v", tail)
	}
	// Mid-log: damage at frame 10, valid frames follow.
	c = s.clone()
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
	s := newTestSeg(MinSegmentSize, 1).quotes(3)
	if err := HeaderOf(s.m).Check("s", int64(len(s.m)), 1); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		damage func([]byte)
		size   int64
		number uint64
		want   error
	}{
		{"bad magic", func(b []byte) { b[0] = 'X' }, MinSegmentSize, 1, ErrBadMagic},
		{"old version", func(b []byte) { b[8] = 2 }, MinSegmentSize, 1, ErrVersion},
		{"header crc", func(b []byte) { b[40] ^= 1 }, MinSegmentSize, 1, ErrChecksum},
		{"epoch bit", func(b []byte) { b[56] ^= 1 }, MinSegmentSize, 1, ErrChecksum},
		{"file truncated", func([]byte) {}, MinSegmentSize - 4096, 1, ErrTruncated},
		{"name says another segment", func([]byte) {}, MinSegmentSize, 2, ErrBadHeader},
	} {
		c := s.clone()
		tc.damage(c)
		err := HeaderOf(c).Check("s", tc.size, tc.number)
		if !errors.Is(err, tc.want) || !errors.Is(err, ErrCorrupt) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
	}
	// A crafted header with a valid checksum claiming a huge capacity is
	// refused before anything is sized by it.
	c := s.clone()
	PutStaticFields(c, 0xfeed, 1, 1, 1, 1<<40, 1)
	if err := HeaderOf(c).Check("s", 1<<62, 1); !errors.Is(err, ErrBadHeader) {
		t.Fatalf("1 TiB capacity with a good checksum: %v", err)
	}
	// The cursor is a hint, checked apart.
	c = s.clone()
	binaryPutU64(c[SegOffCursor:], MinSegmentSize+8)
	if HeaderOf(c).CursorOK() || HeaderOf(c).Check("s", MinSegmentSize, 1) != nil {
		t.Fatal("cursor check")
	}
}

func binaryPutU64(b []byte, v uint64) {
	for i := 0; i < 8; i++ {
		b[i] = byte(v >> (8 * i))
	}
}

// The state records: every bit flip in the current record makes it invalid
// (so the older one is used), and a torn write of the newer one leaves the
// older current.
func TestStateRecords(t *testing.T) {
	s := newTestSeg(MinSegmentSize, 1).quotes(10).durable(0)
	h := HeaderOf(s.m)
	cur, slot, ok := h.State()
	if !ok || cur.Gen != 2 || slot != 1 || cur.DurableOffset != s.end || cur.DurableSeq != 10 {
		t.Fatalf("state %+v slot %d ok %v", cur, slot, ok)
	}
	for i := 0; i < StateSize*8; i++ {
		c := s.clone()
		c[SegOffStateB+i/8] ^= 1 << (i % 8)
		st, sl, ok := HeaderOf(c).State()
		if !ok || sl != 0 || st.Gen != 1 || st.DurableOffset != SegmentHeaderSize {
			t.Fatalf("flip of bit %d of record B: got %+v slot %d", i, st, sl)
		}
	}
	// Both damaged: no state.
	c := s.clone()
	c[SegOffStateA] ^= 1
	c[SegOffStateB] ^= 1
	if _, _, ok := HeaderOf(c).State(); ok || !HeaderOf(c).Prepared() {
		t.Fatal("both records damaged, yet a state")
	}
	// A prepared segment has none.
	p := make([]byte, MinSegmentSize)
	PutStaticHeader(p, 1, 2, 0, 0, MinSegmentSize, 0)
	if !HeaderOf(p).Prepared() {
		t.Fatal("a fresh segment is not prepared")
	}
}
