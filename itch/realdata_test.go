package itch

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/mdjournal/mdjournal/internal/testutil"
)

// readSample returns the real NASDAQ fragment (1000 messages, NASDAQ file
// framing), checking it is the file SOURCE.md describes.
func readSample(t testing.TB) []byte {
	t.Helper()
	dir := testutil.SharedData(t, "nasdaq-itch50-head1000")
	b, err := os.ReadFile(filepath.Join(dir, "sample.itch"))
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(b)
	if got := hex.EncodeToString(sum[:]); got != "6eb643216cb4f0a1960457ca95d88a9fad167f5152841dd94c460dcddf58063b" || len(b) != 40874 {
		t.Fatalf("sample.itch is not the documented file: %d bytes, sha256 %s", len(b), got)
	}
	return b
}

// TestRealSample: every one of the 1000 real messages parses and decodes,
// re-encodes byte for byte, the framing re-encodes to the identical file, the
// type counts are SOURCE.md's, and the stock directory yields 993 locates.
func TestRealSample(t *testing.T) {
	file := readSample(t)
	r := NewReader(bytes.NewReader(file))
	counts := map[Type]int{}
	var dir Directory
	var out []byte
	var sd StockDirectory
	n := 0
	for {
		m, err := r.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("message %d: %v", n, err)
		}
		n++
		counts[m.Type()]++
		d := NewMsg(m.Type())
		if err := d.Decode(m); err != nil {
			t.Fatalf("message %d: %v", n, err)
		}
		enc := d.AppendEncode(nil)
		if !bytes.Equal(enc, m) {
			t.Fatalf("message %d (%v) re-encodes differently:\n% x\n% x", n, m.Type(), enc, []byte(m))
		}
		out = AppendFrame(out, enc)
		if m.Type() == TypeStockDirectory {
			if err := sd.Decode(m); err != nil {
				t.Fatal(err)
			}
			dir.Add(&sd)
		}
	}
	if n != 1000 || r.Offset() != int64(len(file)) {
		t.Fatalf("%d messages, offset %d of %d", n, r.Offset(), len(file))
	}
	if !bytes.Equal(out, file) {
		t.Fatal("re-framed messages differ from the file")
	}
	want := map[Type]int{'S': 1, 'R': 993, 'H': 3, 'Y': 3}
	if len(counts) != len(want) {
		t.Fatalf("types %v", counts)
	}
	for ty, c := range want {
		if counts[ty] != c {
			t.Errorf("%v: %d messages, SOURCE.md says %d", ty, counts[ty], c)
		}
	}
	if dir.Len() != 993 {
		t.Fatalf("directory has %d locates", dir.Len())
	}
	for locate, sym := range map[uint16]string{1: "A", 2: "AA", 3: "AAAU"} { // from SOURCE.md
		if s, ok := dir.Symbol(locate); !ok || s.String() != sym {
			t.Errorf("locate %d = %q, %v; want %q", locate, s, ok, sym)
		}
		if l, ok := dir.Locate(s8((sym + "        ")[:8])); !ok || l != locate {
			t.Errorf("Locate(%q) = %d, %v", sym, l, ok)
		}
	}
	if _, ok := dir.Symbol(0); ok {
		t.Error("locate 0 is not a stock")
	}
	if _, ok := dir.Symbol(65535); ok {
		t.Error("locate 65535 is not in the fragment")
	}
}

// TestRealFirstMessages checks fields of the first two messages against the
// bytes read by hand from the file (od -t x1): S 'O' at 11072057543747 ns,
// then the directory entry of Agilent (locate 1, "A", NYSE, common stock).
func TestRealFirstMessages(t *testing.T) {
	r := NewReader(bytes.NewReader(readSample(t)))
	m, err := r.Next()
	if err != nil {
		t.Fatal(err)
	}
	var s SystemEvent
	if err := s.Decode(m); err != nil || s.EventCode != 'O' || s.Timestamp != 11072057543747 || s.Locate != 0 {
		t.Fatalf("%+v %v", s, err)
	}
	if m, err = r.Next(); err != nil {
		t.Fatal(err)
	}
	var d StockDirectory
	if err := d.Decode(m); err != nil {
		t.Fatal(err)
	}
	want := StockDirectory{Header: Header{Locate: 1, Timestamp: 0x0a53a2887058}, Stock: s8("A       "), MarketCategory: 'N',
		FinancialStatus: ' ', RoundLotSize: 100, RoundLotsOnly: 'N', IssueClassification: 'C', IssueSubType: [2]byte{'Z', ' '},
		Authenticity: 'P', ShortSaleThreshold: 'N', IPOFlag: ' ', LULDRefPriceTier: '1', ETPFlag: 'N', ETPLeverageFactor: 0, InverseIndicator: 'N'}
	if d != want {
		t.Fatalf("\n%+v\nwant\n%+v", d, want)
	}
}

func TestReaderErrors(t *testing.T) {
	good := unhex(t, "000c 53 "+hdr+" 51")
	var e *Error
	// Cut inside the length prefix and inside the body: ErrTruncated with
	// the frame's offset, and sticky.
	for cut := 1; cut < len(good); cut++ {
		file := append(append([]byte{}, good...), good[:cut]...)
		r := NewReader(bytes.NewReader(file))
		if _, err := r.Next(); err != nil {
			t.Fatal(err)
		}
		_, err := r.Next()
		if !errors.As(err, &e) || e.Err != ErrTruncated || e.Offset != int64(len(good)) || e.Have != cut {
			t.Fatalf("cut %d: %v", cut, err)
		}
		if _, err2 := r.Next(); err2 != err {
			t.Fatalf("cut %d: not sticky: %v", cut, err2)
		}
	}
	// A complete frame with an unknown type, then one with the wrong length
	// for its type: errors at the file offset of the bad byte, and the reader
	// goes on.
	file := append(append([]byte{}, good...), unhex(t, "0003 7a0000")...)
	file = append(file, unhex(t, "000d 53 "+hdr+" 5100")...)
	file = append(file, good...)
	r := NewReader(bytes.NewReader(file))
	if _, err := r.Next(); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Next(); !errors.As(err, &e) || e.Err != ErrUnknownType || e.Offset != 14+2 {
		t.Fatalf("unknown type: %v", err)
	}
	if _, err := r.Next(); !errors.As(err, &e) || e.Err != ErrLength || e.Offset != 14+5+2+12 {
		t.Fatalf("long S: %v", err)
	}
	if m, err := r.Next(); err != nil || m.Type() != TypeSystemEvent {
		t.Fatalf("after bad frames: %v", err)
	}
	if _, err := r.Next(); err != io.EOF {
		t.Fatalf("end: %v", err)
	}
	// An empty input is a clean end; a zero-length frame is a short message.
	if _, err := NewReader(bytes.NewReader(nil)).Next(); err != io.EOF {
		t.Fatal(err)
	}
	if _, err := NewReader(bytes.NewReader([]byte{0, 0})).Next(); !errors.Is(err, ErrShort) {
		t.Fatal(err)
	}
}

// TestReaderPassesIOErrors: an I/O error that is not the end is returned as is.
func TestReaderPassesIOErrors(t *testing.T) {
	boom := errors.New("boom")
	r := NewReader(io.MultiReader(bytes.NewReader([]byte{0}), errReader{boom}))
	if _, err := r.Next(); err != boom {
		t.Fatalf("%v", err)
	}
}

type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }
