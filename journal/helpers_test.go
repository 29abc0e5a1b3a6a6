package journal

import "encoding/binary"

// testSeg is an in-memory segment image built the way the writer builds
// one, for the verdict and scan tests.
type testSeg struct {
	m    []byte
	offs []int64 // offset of each frame appended
	end  int64   // offset past the last frame
	seq  uint64  // last seq appended
	ts   int64
}

// newTestSeg returns an activated segment (first seq first, epoch 1) whose
// state record says checkpoint (4096, first-1), not clean, not sealed.
func newTestSeg(capacity int, first uint64) *testSeg {
	m := make([]byte, capacity)
	PutStaticHeader(m, 0xfeed, 1, first, 1, uint64(capacity), 1)
	s := &testSeg{m: m, end: SegmentHeaderSize, seq: first - 1}
	s.state(State{DurableOffset: SegmentHeaderSize, DurableSeq: first - 1, WriterPID: 7})
	return s
}

// state writes st as the next state record, in the slot that is not current
// (as the writer does), with the next generation.
func (s *testSeg) state(st State) {
	h := HeaderOf(s.m)
	cur, slot, ok := h.State()
	st.Gen = 1
	off := SegOffStateA
	if ok {
		st.Gen = cur.Gen + 1
		if slot == 0 {
			off = SegOffStateB
		}
	}
	PutState(s.m[off:off+StateSize], st)
}

func (s *testSeg) setCursor(c int64) { binary.LittleEndian.PutUint64(s.m[SegOffCursor:], uint64(c)) }

// quotes appends n quote frames and moves the cursor past them.
func (s *testSeg) quotes(n int) *testSeg {
	var q Quote
	p := make([]byte, 32)
	for i := 0; i < n; i++ {
		s.seq++
		s.ts += 1000
		q.BidPrice = int64(s.seq)
		s.offs = append(s.offs, s.end)
		s.end += int64(PutFrame(s.m[s.end:], s.seq, s.ts, TypeQuote, 0, 1, q.Encode(p)))
	}
	s.setCursor(s.end)
	return s
}

// seal writes the end marker and a sealed state record.
func (s *testSeg) seal() *testSeg {
	s.end += int64(PutFrame(s.m[s.end:], s.seq+1, s.ts, TypeSegmentEnd, 0, 0, nil))
	s.setCursor(s.end)
	s.state(State{DurableOffset: s.end, DurableSeq: s.seq, LastSeq: s.seq, Flags: StateSealed})
	return s
}

// durable records a checkpoint at the current end.
func (s *testSeg) durable(flags uint32) *testSeg {
	s.state(State{DurableOffset: s.end, DurableSeq: s.seq, Flags: flags})
	return s
}

func (s *testSeg) clone() []byte { return append([]byte(nil), s.m...) }
