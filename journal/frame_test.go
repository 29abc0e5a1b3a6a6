package journal

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"strings"
	"testing"
)

func TestFrameRoundTrip(t *testing.T) {
	for _, n := range []int{0, 1, 7, 8, 24, 32, 100, MaxPayload} {
		p := bytes.Repeat([]byte{0xA5}, n)
		b := make([]byte, FrameSpace(n)+8)
		used := PutFrame(b, 42, -5, TypeRaw, 0, 7, p)
		if used != FrameSpace(n) || used%FrameAlign != 0 {
			t.Fatalf("n=%d: used %d, want %d (8-aligned)", n, used, FrameSpace(n))
		}
		f, m, st := DecodeFrame(b)
		if st != FrameOK || m != used {
			t.Fatalf("n=%d: status %v, n %d", n, st, m)
		}
		if f.Seq != 42 || f.TS != -5 || f.Type != TypeRaw || f.Instrument != 7 || !bytes.Equal(f.Payload, p) || int(f.Size) != FrameHeaderSize+n {
			t.Fatalf("n=%d: decoded %+v", n, f)
		}
	}
}

// The checksum is CRC-32C over bytes [8,size) with the size as the initial
// value; the commit word is crc | size<<32. Recomputed here with the
// standard library, byte layout written out by hand.
func TestFrameChecksumAndCommitWord(t *testing.T) {
	b := make([]byte, 64)
	PutFrame(b, 1, 2, TypeQuote, 0, 3, bytes.Repeat([]byte{1}, 32))
	want := crc32.Update(64, crc32.MakeTable(crc32.Castagnoli), b[8:64])
	if got := binary.LittleEndian.Uint32(b[0:]); got != want {
		t.Fatalf("stored crc %#x, independent crc %#x", got, want)
	}
	if size := binary.LittleEndian.Uint32(b[4:]); size != 64 {
		t.Fatalf("size word %d", size)
	}
	if w := binary.LittleEndian.Uint64(b[0:]); w != uint64(want)|64<<32 {
		t.Fatalf("commit word %#x", w)
	}
	// The body alone publishes nothing: the commit word stays zero.
	c := make([]byte, 64)
	w := PutFrameBody(c, 1, 2, TypeQuote, 0, 3, bytes.Repeat([]byte{1}, 32))
	if binary.LittleEndian.Uint64(c) != 0 || w != binary.LittleEndian.Uint64(b) {
		t.Fatal("PutFrameBody wrote the commit word or returned another one")
	}
	if _, _, st := DecodeFrame(c); st != FrameEmpty {
		t.Fatalf("an uncommitted body decodes as %v, want empty", st)
	}
}

// Every single-bit flip anywhere in a frame, commit word included, is caught.
func TestFrameEveryBitFlipDetected(t *testing.T) {
	var q Quote
	q.BidPrice, q.AskPrice = 5853300, 5853400
	b := make([]byte, FrameSpace(32+SourceTrailerSize))
	w := PutFrameBodySource(b, 9, 10, TypeQuote, 0, 1, q.Encode(nil), 77, 88)
	binary.LittleEndian.PutUint64(b, w)
	for i := 0; i < FrameHeaderSize+32+SourceTrailerSize; i++ {
		for bit := 0; bit < 8; bit++ {
			c := append([]byte{}, b...)
			c[i] ^= 1 << bit
			if f, _, st := DecodeFrame(c); st == FrameOK && f.Seq == 9 && f.TS == 10 && f.RecvTS == 77 && f.SourceSeq == 88 && bytes.Equal(f.Payload, b[32:64]) {
				t.Fatalf("flip of byte %d bit %d not detected", i, bit)
			} else if st == FrameOK {
				t.Fatalf("flip of byte %d bit %d decodes as another valid frame", i, bit)
			}
		}
	}
}

func TestSourceTrailer(t *testing.T) {
	b := make([]byte, FrameSpace(32+SourceTrailerSize))
	w := PutFrameBodySource(b, 5, 6, TypeTrade, 0, 2, make([]byte, 32), -1, 1<<40)
	binary.LittleEndian.PutUint64(b, w)
	f, n, st := DecodeFrame(b)
	if st != FrameOK || n != len(b) || len(f.Payload) != 32 || f.RecvTS != -1 || f.SourceSeq != 1<<40 || f.Flags != FrameSource {
		t.Fatalf("trailer frame: %v %d %+v", st, n, f)
	}
	if _, sent := CheckContent(&f); sent != nil {
		t.Fatalf("content: %v", sent)
	}
	// PutStored rebuilds the stored bytes exactly.
	c := make([]byte, StoredLen(&f))
	PutStored(c, &f)
	if !bytes.Equal(b, c) {
		t.Fatal("PutStored differs from the stored frame")
	}
}

func TestCheckContent(t *testing.T) {
	for _, tc := range []struct {
		name  string
		typ   MsgType
		flags uint16
		n     int
		want  error
	}{
		{"quote", TypeQuote, 0, 32, nil},
		{"raw any size", TypeRaw, 0, 5, nil},
		{"restated def", TypeInstrumentDef, FrameRestated, 32, nil},
		{"restated status", TypeTradingStatus, FrameRestated, 16, nil},
		{"short quote", TypeQuote, 0, 31, ErrBadLength},
		{"unknown type", MsgType(999), 0, 32, ErrBadHeader},
		{"invalid type 0", TypeInvalid, 0, 0, ErrBadHeader},
		{"unknown flag", TypeQuote, 1 << 7, 32, ErrBadHeader},
		{"restated trade", TypeTrade, FrameRestated, 32, ErrBadHeader},
	} {
		b := make([]byte, FrameSpace(tc.n))
		PutFrame(b, 1, 1, tc.typ, tc.flags, 1, make([]byte, tc.n))
		f, _, st := DecodeFrame(b)
		if st != FrameOK {
			t.Fatalf("%s: %v", tc.name, st)
		}
		if _, sent := CheckContent(&f); sent != tc.want {
			t.Errorf("%s: %v, want %v", tc.name, sent, tc.want)
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
		{"zero commit word", make([]byte, 64), FrameEmpty},
		{"short zero tail", make([]byte, 8), FrameEmpty},
		{"crc without size", append([]byte{1, 0, 0, 0}, make([]byte, 60)...), FrameBadLength},
		{"size below header", append([]byte{0, 0, 0, 0, 8, 0, 0, 0}, make([]byte, 56)...), FrameBadLength},
		{"size past buffer", append([]byte{0, 0, 0, 0, 200, 0, 0, 0}, make([]byte, 56)...), FrameBadLength},
		{"size above max", append([]byte{0, 0, 0, 0, 0, 0, 0, 1}, make([]byte, 56)...), FrameBadLength},
		{"good size bad crc", append([]byte{1, 0, 0, 0, 32, 0, 0, 0}, make([]byte, 56)...), FrameBadCRC},
	} {
		if _, _, st := DecodeFrame(tc.b); st != tc.want {
			t.Errorf("%s: status %d, want %d", tc.name, st, tc.want)
		}
	}
}

func TestPayloadCodecs(t *testing.T) {
	var d, d2 InstrumentDef
	if err := d.SetSymbol("AAPL"); err != nil {
		t.Fatal(err)
	}
	d.PriceScale, d.TickSize = 4, 100
	d2.Decode(d.Encode(nil))
	if d2.SymbolString() != "AAPL" || d2.PriceScale != 4 || d2.TickSize != 100 {
		t.Fatalf("instrument def %+v", d2)
	}
	buf := make([]byte, 64)
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
	ts := TradingStatus{Status: StatusHalted, Reason: [4]byte{'L', 'U', 'D', 'P'}}
	var ts2 TradingStatus
	ts2.Decode(ts.Encode(buf))
	if ts2 != ts || ts2.ReasonString() != "LUDP" {
		t.Fatalf("status %+v", ts2)
	}
	g := Gap{First: 10, Count: 5}
	copy(g.Source[:], "SESSION001")
	var g2 Gap
	g2.Decode(g.Encode(buf))
	if g2 != g || g2.SourceString() != "SESSION001" {
		t.Fatalf("gap %+v", g2)
	}
	or := OrderRequest{OrderID: 9, Price: 1, Qty: 2, Side: SideAsk, Flags: 1, Strategy: 3, TriggerSeq: 4, TriggerTS: 5, Seen: 6, Decided: 7}
	var or2 OrderRequest
	or2.Decode(or.Encode(buf))
	if or2 != or {
		t.Fatalf("order request %+v", or2)
	}
	rd := RiskDecision{OrderID: 9, Price: 1, Qty: 2, Side: SideBid, Verdict: RiskRejected, Reason: 513, Strategy: 3, TriggerSeq: 4, Requested: 5, Received: 6, Decided: 7}
	var rd2 RiskDecision
	rd2.Decode(rd.Encode(buf))
	if rd2 != rd {
		t.Fatalf("risk decision %+v", rd2)
	}
	if err := tr2.Decode(buf[:31]); err == nil {
		t.Fatal("short payload accepted")
	}
}

// Encode into a short buffer never panics: it returns a new slice.
func TestEncodeShortBuffer(t *testing.T) {
	q := Quote{BidPrice: 1}
	short := make([]byte, 3)
	if b := q.Encode(short); len(b) != 32 || &b[0] == &short[0] {
		t.Fatalf("Encode into a 3-byte buffer: %d bytes", len(b))
	}
	var rr RiskDecision
	if b := rr.Encode(nil); len(b) != 64 {
		t.Fatal("Encode(nil)")
	}
}

func TestSymbols(t *testing.T) {
	var d InstrumentDef
	for _, bad := range []string{"", "SEVENTEEN_CHARS_X", "HAS SPACE", "tab\t", "caf\xc3\xa9"} {
		if err := d.SetSymbol(bad); err == nil {
			t.Errorf("symbol %q accepted", bad)
		}
	}
	for _, good := range []string{"A", "BRK.B", "ES-Z6", "SIXTEEN_CHARS_XY"} {
		if err := d.SetSymbol(good); err != nil || d.SymbolString() != good {
			t.Errorf("symbol %q: %v", good, err)
		}
	}
	d.PriceScale = MaxPriceScale + 1
	if d.Validate() == nil {
		t.Fatal("scale 19 accepted")
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
		{1, 18, "0.000000000000000001"}, {5, 50000, "5e-50000"}, {5, 1<<31 - 1, "5e-2147483647"},
	} {
		if got := FormatPrice(tc.p, tc.scale); got != tc.want {
			t.Errorf("FormatPrice(%d,%d) = %q, want %q", tc.p, tc.scale, got, tc.want)
		}
	}
}

func TestParsePrice(t *testing.T) {
	for _, tc := range []struct {
		s     string
		scale int32
		want  int64
		err   bool
	}{
		{"585.33", 4, 5853300, false}, {"585.3300", 4, 5853300, false}, {"-0.0001", 4, -1, false}, {"12", 2, 1200, false},
		{".5", 1, 5, false}, {"+7.", 1, 70, false}, {"1.00001", 4, 0, true}, {"1.00010", 4, 10001, false},
		{"abc", 4, 0, true}, {"", 4, 0, true}, {"-", 4, 0, true}, {"1.2.3", 4, 0, true},
		{"92233720368547758.07", 2, 9223372036854775807, false}, {"92233720368547758.08", 2, 0, true},
		{"-92233720368547758.08", 2, -9223372036854775808, false}, {"1", 19, 0, true},
	} {
		got, err := ParsePrice(tc.s, tc.scale)
		if (err != nil) != tc.err || !tc.err && got != tc.want {
			t.Errorf("ParsePrice(%q,%d) = %d, %v; want %d, err=%v", tc.s, tc.scale, got, err, tc.want, tc.err)
		}
	}
	// Round trip with FormatPrice over a spread of values.
	for _, p := range []int64{0, 1, -1, 99, 5853300, -5853300, 1 << 62} {
		if back, err := ParsePrice(FormatPrice(p, 4), 4); err != nil || back != p {
			t.Errorf("round trip %d: %d %v", p, back, err)
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

func TestNames(t *testing.T) {
	n, ok := ParseSegmentName(SegmentName(123))
	if !ok || n != 123 {
		t.Fatal("round trip")
	}
	if n, ok := ParseArchiveName(ArchiveName(7)); !ok || n != 7 {
		t.Fatal("archive name")
	}
	if n, ok := ParseIndexName(IndexName(9)); !ok || n != 9 {
		t.Fatal("index name")
	}
	for _, bad := range []string{"123.seg", "00000000000000000000.seg", "0000000000000000000x.seg", "00000000000000000001.idx",
		"+0000000000000000001.seg", "00000000000000000001.seg.zst.tmp"} {
		if _, ok := ParseSegmentName(bad); ok {
			t.Errorf("%q accepted", bad)
		}
	}
	if !strings.HasSuffix(ArchiveName(1), ArchiveExt) {
		t.Fatal("archive ext")
	}
}
