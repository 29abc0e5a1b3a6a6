package journal

import (
	"bytes"
	"testing"
)

// FuzzDecodeFrame: any bytes decode without panicking, and whatever decodes
// as OK is rebuilt byte for byte by PutStored (so nothing is invented).
func FuzzDecodeFrame(f *testing.F) {
	good := make([]byte, FrameSpace(32))
	PutFrame(good, 1, 2, TypeQuote, 0, 3, make([]byte, 32))
	f.Add(good)
	src := make([]byte, FrameSpace(32+SourceTrailerSize))
	w := PutFrameBodySource(src, 1, 2, TypeTrade, 0, 3, make([]byte, 32), 4, 5)
	src[0], src[1], src[2], src[3], src[4], src[5], src[6], src[7] = byte(w), byte(w>>8), byte(w>>16), byte(w>>24), byte(w>>32), byte(w>>40), byte(w>>48), byte(w>>56)
	f.Add(src)
	f.Add(make([]byte, 40))
	f.Add([]byte{0, 0, 0, 0, 32, 0, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		fr, n, st := DecodeFrame(b)
		if st != FrameOK {
			return
		}
		if n > len(b) || n%FrameAlign != 0 || n != StoredLen(&fr) {
			t.Fatalf("n=%d len=%d", n, len(b))
		}
		c := make([]byte, n)
		PutStored(c, &fr)
		if !bytes.Equal(c[:fr.Size], b[:fr.Size]) {
			t.Fatalf("rebuilt frame differs")
		}
	})
}

// FuzzHeaderCheck: any header page is either accepted with sane fields or
// rejected with a CorruptionError; never a panic.
func FuzzHeaderCheck(f *testing.F) {
	s := newTestSeg(MinSegmentSize, 1).quotes(1)
	f.Add(append([]byte{}, s.m[:SegmentHeaderSize]...), int64(MinSegmentSize))
	f.Add(make([]byte, SegmentHeaderSize), int64(0))
	f.Fuzz(func(t *testing.T, hdr []byte, size int64) {
		page := make([]byte, SegmentHeaderSize)
		copy(page, hdr)
		h := HeaderOf(page)
		err := h.Check("fuzz", size, 0)
		if err != nil {
			if _, ok := err.(*CorruptionError); !ok {
				t.Fatalf("untyped error %v", err)
			}
			return
		}
		if int64(h.Capacity()) > size || h.Capacity() < MinSegmentSize || h.Capacity() > MaxSegmentSize {
			t.Fatalf("accepted insane header: capacity %d size %d", h.Capacity(), size)
		}
		h.State() // never panics
	})
}

// FuzzAssess: a damaged segment image is judged without panicking; a torn
// tail is never cut at or below the checkpoint of a valid state record, and
// every frame visited has a good checksum and contiguous seq.
func FuzzAssess(f *testing.F) {
	s := newTestSeg(MinSegmentSize, 1).quotes(40)
	s.state(State{DurableOffset: s.offs[20], DurableSeq: 20})
	body := append([]byte{}, s.m[:SegmentHeaderSize+40*64]...)
	f.Add(body, uint16(100), byte(0xff), true)
	f.Add(body, uint16(4096+5), byte(0), false)
	f.Add(body, uint16(140), byte(1), true)
	f.Fuzz(func(t *testing.T, body []byte, at uint16, x byte, last bool) {
		img := make([]byte, MinSegmentSize)
		copy(img, body)
		if len(body) > 0 {
			img[int(at)%len(body)] ^= x
		}
		h := HeaderOf(img)
		if h.Check("fuzz", MinSegmentSize, 0) != nil || h.Prepared() {
			return
		}
		prev := h.FirstSeq() - 1
		v := Assess("fuzz", img, AssessOptions{Last: last, Full: true, Visit: func(fr *Frame) {
			if fr.Seq != prev+1 {
				t.Fatalf("visited seq %d after %d", fr.Seq, prev)
			}
			prev = fr.Seq
		}})
		if v.Kind == TornTail {
			st, _, ok := h.State()
			if !ok || v.CutFrom < st.DurableOffset || st.Clean() || !last {
				t.Fatalf("torn tail cut at %d, checkpoint %d, clean %v, last %v", v.CutFrom, st.DurableOffset, st.Clean(), last)
			}
		}
		if v.End > int64(len(img)) || v.End%FrameAlign != 0 {
			t.Fatalf("verdict end %d", v.End)
		}
	})
}
