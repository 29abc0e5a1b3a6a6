package journal

import (
	"testing"
)

// FuzzDecodeFrame: any bytes decode without panicking, and whatever decodes
// as OK re-encodes to the same bytes (so nothing is invented).
func FuzzDecodeFrame(f *testing.F) {
	good := make([]byte, FrameSpace(32))
	PutFrame(good, 1, 2, TypeQuote, 3, make([]byte, 32))
	f.Add(good)
	f.Add(make([]byte, 40))
	f.Add([]byte{0, 0, 0, 0, 32, 0, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		fr, n, st := DecodeFrame(b)
		if st != FrameOK {
			return
		}
		if n > len(b) || n%FrameAlign != 0 {
			t.Fatalf("n=%d len=%d", n, len(b))
		}
		c := make([]byte, n)
		PutFrame(c, fr.Seq, fr.TS, fr.Type, fr.Instrument, fr.Payload)
		// flags are not written by PutFrame: compare all but the flags field
		c[frameOffFlags], c[frameOffFlags+1] = b[frameOffFlags], b[frameOffFlags+1]
		SealFrame(c, FrameHeaderSize+len(fr.Payload))
		for i := 0; i < FrameHeaderSize+len(fr.Payload); i++ {
			if c[i] != b[i] {
				t.Fatalf("re-encoded frame differs at byte %d", i)
			}
		}
	})
}

// FuzzHeaderCheck: any header page is either accepted with sane fields or
// rejected with a CorruptionError; never a panic.
func FuzzHeaderCheck(f *testing.F) {
	m, _ := buildSegment(MinSegmentSize, 1, 1)
	f.Add(append([]byte{}, m[:SegmentHeaderSize]...), int64(MinSegmentSize))
	f.Add(make([]byte, SegmentHeaderSize), int64(0))
	f.Fuzz(func(t *testing.T, hdr []byte, size int64) {
		page := make([]byte, SegmentHeaderSize)
		copy(page, hdr)
		h := HeaderOf(page)
		err := h.Check("fuzz", size)
		if err != nil {
			if _, ok := err.(*CorruptionError); !ok {
				t.Fatalf("untyped error %v", err)
			}
			return
		}
		if h.Cursor() > h.Capacity() || int64(h.Capacity()) > size || h.Capacity() < MinSegmentSize {
			t.Fatalf("accepted insane header: cursor %d capacity %d size %d", h.Cursor(), h.Capacity(), size)
		}
	})
}

// FuzzRecoveryScan: a damaged segment image is scanned and its tail examined
// without panicking; the scan never reports a frame past a bad one, and
// every frame it visits has a good checksum and contiguous seq.
func FuzzRecoveryScan(f *testing.F) {
	m, _ := buildSegment(MinSegmentSize, 1, 40)
	body := append([]byte{}, m[SegmentHeaderSize:SegmentHeaderSize+40*64]...)
	f.Add(body, uint16(100), byte(0xff))
	f.Add(body, uint16(0), byte(0))
	f.Fuzz(func(t *testing.T, body []byte, at uint16, x byte) {
		img := make([]byte, MinSegmentSize)
		copy(img, m[:SegmentHeaderSize])
		copy(img[SegmentHeaderSize:], body)
		if len(body) > 0 {
			img[SegmentHeaderSize+int(at)%len(body)] ^= x
		}
		prev := uint64(0)
		r := ScanSegment("fuzz", img, SegmentHeaderSize, 0, int64(len(img)), func(fr *Frame) {
			if fr.Seq != prev+1 {
				t.Fatalf("visited seq %d after %d", fr.Seq, prev)
			}
			prev = fr.Seq
		})
		if r.LastSeq != prev || r.End > int64(len(img)) || r.End%FrameAlign != 0 {
			t.Fatalf("scan result %+v, last visited %d", r, prev)
		}
		tail := ExamineTail(img, r.End, int64(len(img)), r.LastSeq)
		if tail.ValidAt >= 0 && tail.ValidAt <= r.End {
			t.Fatalf("valid frame reported at %d, not after %d", tail.ValidAt, r.End)
		}
	})
}
