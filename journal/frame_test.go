package journal

import (
	"bytes"
	"errors"
	"hash/crc32"
	"testing"
)

func TestFrameRoundTrip(t *testing.T) {
	for _, n := range []int{0, 1, 7, 8, 24, 32, 100, MaxPayload} {
		p := bytes.Repeat([]byte{0xA5}, n)
		b := make([]byte, FrameSpace(n)+8)
		used := PutFrame(b, 42, -5, TypeRaw, 7, p)
		if used != FrameSpace(n) || used%FrameAlign != 0 {
			t.Fatalf("n=%d: used %d, want %d (8-aligned)", n, used, FrameSpace(n))
		}
		f, m, st := DecodeFrame(b)
		if st != FrameOK || m != used {
			t.Fatalf("n=%d: status %v, n %d", n, st, m)
		}
		if f.Seq != 42 || f.TS != -5 || f.Type != TypeRaw || f.Instrument != 7 || !bytes.Equal(f.Payload, p) {
			t.Fatalf("n=%d: decoded %+v", n, f)
		}
	}
}

// The checksum is CRC-32C over bytes [4,size): recompute it independently
// with the standard library.
func TestFrameChecksumCoverage(t *testing.T) {
	b := make([]byte, 64)
	PutFrame(b, 1, 2, TypeQuote, 3, bytes.Repeat([]byte{1}, 32))
	covered := b[4:64]
	want := crc32.Checksum(covered, crc32.MakeTable(crc32.Castagnoli))
	if got := uint32(b[0]) | uint32(b[1])<<8 | uint32(b[2])<<16 | uint32(b[3])<<24; got != want {
		t.Fatalf("stored crc %#x, independent crc %#x", got, want)
	}
}

// Every single-bit flip anywhere in a frame's header or payload is caught.
func TestFrameEveryBitFlipDetected(t *testing.T) {
	var q Quote
	q.BidPrice, q.AskPrice = 5853300, 5853400
	b := make([]byte, FrameSpace(32))
	PutFrame(b, 9, 10, TypeQuote, 1, q.Encode(make([]byte, 32)))
	for i := 0; i < FrameHeaderSize+32; i++ {
		for bit := 0; bit < 8; bit++ {
			c := append([]byte{}, b...)
			c[i] ^= 1 << bit
			if _, _, st := DecodeFrame(c); st == FrameOK {
				t.Fatalf("flip of byte %d bit %d not detected", i, bit)
			}
		}
	}
}

func TestDecodeFrameEdges(t *testing.T) {
	for _, tc := range []struct {
		name string
		b    []byte
		want FrameStatus
	}{
		{"empty slice", nil, FrameBadLength},
		{"zero size word", make([]byte, 64), FrameEmpty},
		{"short zero tail", make([]byte, 8), FrameEmpty},
		{"crc without size", append([]byte{1, 0, 0, 0}, make([]byte, 60)...), FrameBadLength},
		{"size below header", append([]byte{0, 0, 0, 0, 8, 0, 0, 0}, make([]byte, 56)...), FrameBadLength},
		{"size past buffer", append([]byte{0, 0, 0, 0, 200, 0, 0, 0}, make([]byte, 56)...), FrameBadLength},
		{"size above max", append([]byte{0, 0, 0, 0, 0, 0, 0, 1}, make([]byte, 56)...), FrameBadLength},
		{"good size bad crc", append([]byte{0, 0, 0, 0, 32, 0, 0, 0}, make([]byte, 56)...), FrameBadCRC},
	} {
		if _, _, st := DecodeFrame(tc.b); st != tc.want {
			t.Errorf("%s: status %d, want %d", tc.name, st, tc.want)
		}
	}
}

func TestPayloadCodecs(t *testing.T) {
	buf := make([]byte, 32)
	var d, d2 InstrumentDef
	d.SetSymbol("AAPL")
	d.PriceScale, d.TickSize = 4, 100
	d2.Decode(d.Encode(buf))
	if d2.SymbolString() != "AAPL" || d2.PriceScale != 4 || d2.TickSize != 100 {
		t.Fatalf("instrument def %+v", d2)
	}
	tr := Trade{Price: -1, Qty: 2, TradeID: 3, Aggressor: SideAsk, Flags: FlagHidden}
	var tr2 Trade
	tr2.Decode(tr.Encode(buf))
	if tr2 != tr {
		t.Fatalf("trade %+v != %+v", tr2, tr)
	}
	o := Order{OrderID: 1 << 60, Price: 5853300, Qty: 18, Side: SideBid}
	var o2 Order
	o2.Decode(o.Encode(buf))
	if o2 != o {
		t.Fatalf("order %+v != %+v", o2, o)
	}
	l := BookLevel{Price: 1, Qty: 0, Side: SideAsk}
	var l2 BookLevel
	l2.Decode(l.Encode(buf))
	if l2 != l {
		t.Fatalf("level %+v", l2)
	}
	if err := tr2.Decode(buf[:31]); err == nil {
		t.Fatal("short payload accepted")
	}
}

func TestFormatPrice(t *testing.T) {
	for _, tc := range []struct {
		p     int64
		scale int32
		want  string
	}{
		{5853300, 4, "585.3300"}, {1, 4, "0.0001"}, {-1, 4, "-0.0001"}, {0, 2, "0.00"}, {123, 0, "123"},
		{-9999999999, 4, "-999999.9999"}, {-9223372036854775808, 2, "-92233720368547758.08"},
	} {
		if got := FormatPrice(tc.p, tc.scale); got != tc.want {
			t.Errorf("FormatPrice(%d,%d) = %q, want %q", tc.p, tc.scale, got, tc.want)
		}
	}
}

func TestCorruptionErrorMatching(t *testing.T) {
	var err error = Corrupt("x.seg", 4096, ErrChecksum, "bad")
	if !errors.Is(err, ErrCorrupt) || !errors.Is(err, ErrChecksum) || errors.Is(err, ErrTornTail) {
		t.Fatal("errors.Is matching wrong")
	}
	var ce *CorruptionError
	if !errors.As(err, &ce) || ce.File != "x.seg" || ce.Offset != 4096 {
		t.Fatal("errors.As wrong")
	}
	if err.Error() != "x.seg: offset 4096: bad" {
		t.Fatalf("message %q", err.Error())
	}
}

func TestParseSegmentName(t *testing.T) {
	n, ok := ParseSegmentName(SegmentName(123))
	if !ok || n != 123 {
		t.Fatal("round trip")
	}
	for _, bad := range []string{"123.seg", "00000000000000000000.seg", "0000000000000000000x.seg", "00000000000000000001.idx"} {
		if _, ok := ParseSegmentName(bad); ok {
			t.Errorf("%q accepted", bad)
		}
	}
}
