package journal

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// TestWriteFuzzCorpus regenerates the seed corpora under testdata/fuzz from
// real segment images (MDJ_WRITE_CORPUS=1 go test -run TestWriteFuzzCorpus
// ./journal). The committed files are what `go test` replays as seeds.
func TestWriteFuzzCorpus(t *testing.T) {
	if os.Getenv("MDJ_WRITE_CORPUS") != "1" {
		t.Skip("set MDJ_WRITE_CORPUS=1 to regenerate testdata/fuzz")
	}
	m, offs := buildSegment(MinSegmentSize, 1, 40)
	write := func(target, name string, vals ...any) {
		dir := filepath.Join("testdata", "fuzz", target)
		os.MkdirAll(dir, 0o755)
		s := "go test fuzz v1\n"
		for _, v := range vals {
			switch x := v.(type) {
			case []byte:
				s += fmt.Sprintf("[]byte(%q)\n", x)
			case int64:
				s += fmt.Sprintf("int64(%d)\n", x)
			case uint16:
				s += fmt.Sprintf("uint16(%d)\n", x)
			case byte:
				s += fmt.Sprintf("byte(%d)\n", x)
			}
		}
		if err := os.WriteFile(filepath.Join(dir, name), []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	frame := m[offs[3]:offs[4]]
	write("FuzzDecodeFrame", "good-quote", append([]byte{}, frame...))
	torn := append([]byte{}, frame[:40]...)
	write("FuzzDecodeFrame", "torn-quote", torn)
	flipped := append([]byte{}, frame...)
	flipped[50] ^= 4
	write("FuzzDecodeFrame", "flipped-payload", flipped)
	hdr := append([]byte{}, m[:SegmentHeaderSize]...)
	write("FuzzHeaderCheck", "good-header", hdr, int64(MinSegmentSize))
	bad := append([]byte{}, hdr...)
	bad[8] = 9
	write("FuzzHeaderCheck", "bad-version", bad, int64(MinSegmentSize))
	short := append([]byte{}, hdr...)
	write("FuzzHeaderCheck", "truncated-file", short, int64(MinSegmentSize-4096))
	body := append([]byte{}, m[SegmentHeaderSize:SegmentHeaderSize+40*64]...)
	write("FuzzRecoveryScan", "clean", body, uint16(0), byte(0))
	write("FuzzRecoveryScan", "mid-bit-flip", body, uint16(64*20+40), byte(1))
	write("FuzzRecoveryScan", "zeroed-size", body, uint16(64*30+4), byte(64))
}
