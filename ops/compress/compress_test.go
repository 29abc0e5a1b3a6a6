package compress_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"os"
	"testing"

	"github.com/mdjournal/mdjournal/internal/segfile"

	"github.com/klauspost/compress/zstd"

	"github.com/mdjournal/mdjournal/internal/archive"
	"github.com/mdjournal/mdjournal/journal"
	"github.com/mdjournal/mdjournal/ops/compress"
	"github.com/mdjournal/mdjournal/ops/verify"
	"github.com/mdjournal/mdjournal/reader"
	"github.com/mdjournal/mdjournal/writer"
)

// build writes n Raw frames of varying size (content derived from seq) in
// 256 KiB segments and returns their payloads by seq.
func build(t *testing.T, n int) (string, [][]byte) {
	dir := t.TempDir()
	w, err := writer.Open(dir, writer.Options{SegmentSize: journal.MinSegmentSize})
	if err != nil {
		t.Fatal(err)
	}
	want := make([][]byte, n+1)
	for i := 1; i <= n; i++ {
		p := bytes.Repeat([]byte{byte(i), byte(i >> 8)}, 4+i%60)
		want[i] = p
		if _, err := w.Append(journal.TypeRaw, uint32(i%3), int64(i)*1000, p); err != nil {
			t.Fatal(err)
		}
	}
	w.Close()
	return dir, want
}

func readFrom(t *testing.T, dir string, pos reader.Position, want [][]byte) uint64 {
	t.Helper()
	r, err := reader.Open(dir, reader.Options{From: pos})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var first, last uint64
	for {
		f, ok, err := r.TryNext()
		if err != nil {
			t.Fatal(err)
		}
		if !ok {
			break
		}
		if first == 0 {
			first = f.Seq
		}
		if last != 0 && f.Seq != last+1 || !bytes.Equal(f.Payload, want[f.Seq]) || f.TS != int64(f.Seq)*1000 {
			t.Fatalf("seq %d after %d: payload or ts differs", f.Seq, last)
		}
		last = f.Seq
	}
	if last != uint64(len(want)-1) {
		t.Fatalf("read up to %d, want %d", last, len(want)-1)
	}
	return first
}

func TestCompressedReadsLikeRaw(t *testing.T) {
	dir, want := build(t, 30000)
	nums, _ := segfile.Numbers(dir)
	var done int
	for _, n := range nums {
		r, err := compress.Compress(dir, n, zstd.SpeedDefault, 64<<10)
		if errors.Is(err, compress.ErrNotSealed) {
			continue // the active and the prepared segment
		}
		if err != nil {
			t.Fatal(err)
		}
		if r.Archived >= r.RawBytes || r.Chunks < 2 {
			t.Fatalf("segment %d: %d -> %d bytes in %d chunks", n, r.RawBytes, r.Archived, r.Chunks)
		}
		if _, err := os.Stat(journal.SegmentPath(dir, n)); !os.IsNotExist(err) {
			t.Fatalf("raw segment %d still there", n)
		}
		done++
	}
	if done < 3 {
		t.Fatalf("only %d sealed segments", done)
	}
	if got := readFrom(t, dir, reader.Start(), want); got != 1 {
		t.Fatalf("start: first %d", got)
	}
	for _, seq := range []uint64{2, 7777, 15001, 29999} {
		if got := readFrom(t, dir, reader.Seq(seq), want); got != seq {
			t.Fatalf("seq:%d started at %d", seq, got)
		}
		if got := readFrom(t, dir, reader.TimeNS(int64(seq)*1000-1), want); got != seq {
			t.Fatalf("time before %d started at %d", seq, got)
		}
	}
	rep, err := verify.Journal(dir, verify.Options{})
	if err != nil || !rep.OK() {
		t.Fatalf("verify: %v %+v", err, rep.Problems)
	}
	for _, s := range rep.Segments[:done] {
		if s.State != "compressed" {
			t.Fatalf("segment %d state %s", s.Number, s.State)
		}
	}
	// The writer appends after compressed predecessors.
	w, err := writer.Open(dir, writer.Options{SegmentSize: journal.MinSegmentSize})
	if err != nil {
		t.Fatal(err)
	}
	if w.LastSeq() != 30000 {
		t.Fatalf("writer resumed at %d", w.LastSeq())
	}
	w.Close()
}

// Seeking decompresses only the chunk holding the target: damage in an
// earlier chunk does not stop a seek past it, and is reported when read.
func TestSeekSkipsEarlierChunksAndDamageIsTyped(t *testing.T) {
	dir, want := build(t, 6000)
	if _, err := compress.Compress(dir, 1, zstd.SpeedFastest, 64<<10); err != nil {
		t.Fatal(err)
	}
	path := archive.Path(dir, 1)
	a, err := archive.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	c0 := a.Chunks[0]
	last := a.Chunks[len(a.Chunks)-1]
	a.Close()
	f, _ := os.OpenFile(path, os.O_RDWR, 0)
	f.WriteAt([]byte{0xff, 0xff, 0xff, 0xff}, c0.CompOff+int64(c0.CompLen)/2)
	f.Close()

	// A seek into the last chunk of segment 1 works.
	r, err := reader.Open(dir, reader.Options{From: reader.Seq(3900)})
	if err != nil {
		t.Fatal(err)
	}
	fr, ok, err := r.TryNext()
	if err != nil || !ok || fr.Seq != 3900 || !bytes.Equal(fr.Payload, want[3900]) {
		t.Fatalf("seek past damage: %d %v %v (last chunk starts at %d)", fr.Seq, ok, err, last.RawOff)
	}
	r.Close()
	// Reading from the start hits the damaged chunk: a typed error naming the archive.
	r, _ = reader.Open(dir, reader.Options{})
	defer r.Close()
	_, _, err = r.TryNext()
	var ce *journal.CorruptionError
	if !errors.As(err, &ce) || ce.File != path || ce.Offset != c0.CompOff {
		t.Fatalf("damaged chunk: %v", err)
	}
	rep, _ := verify.Journal(dir, verify.Options{})
	if rep.OK() || rep.Problems[0].Err.File != path {
		t.Fatalf("verify missed the damaged archive: %+v", rep.Problems)
	}
}

func TestCompressRefuses(t *testing.T) {
	dir, _ := build(t, 6000)
	// The active segment is not sealed.
	nums, _ := segfile.Numbers(dir)
	active := uint64(0)
	for _, n := range nums {
		h, _, _, _ := segfile.ReadHeader(dir, n)
		if st, _, ok := h.State(); ok && !h.Prepared() && !st.Sealed() {
			active = n
		}
	}
	if _, err := compress.Compress(dir, active, zstd.SpeedFastest, 0); active == 0 || !errors.Is(err, compress.ErrNotSealed) {
		t.Fatalf("compressing the active segment %d: %v", active, err)
	}
	// A damaged sealed segment is refused and left as it is.
	f, _ := os.OpenFile(journal.SegmentPath(dir, 1), os.O_RDWR, 0)
	f.WriteAt([]byte{0xee}, 4096+1000)
	f.Close()
	_, err := compress.Compress(dir, 1, zstd.SpeedFastest, 0)
	if !errors.Is(err, journal.ErrCorrupt) {
		t.Fatalf("damaged segment: %v", err)
	}
	if _, err := os.Stat(journal.SegmentPath(dir, 1)); err != nil {
		t.Fatal("raw segment removed after a refused compression")
	}
	if _, err := os.Stat(archive.Path(dir, 1)); !os.IsNotExist(err) {
		t.Fatal("archive left behind")
	}
}

func TestArchiveHeaderDamage(t *testing.T) {
	dir, _ := build(t, 6000)
	compress.Compress(dir, 1, zstd.SpeedFastest, 64<<10)
	path := archive.Path(dir, 1)
	orig, _ := os.ReadFile(path)
	for _, tc := range []struct {
		name string
		off  int64
		want error
	}{
		{"archive magic", journal.ArchiveHeaderOff, journal.ErrBadMagic},
		{"archive header crc", journal.ArchiveHeaderOff + 20, journal.ErrChecksum},
		{"chunk table", int64(len(orig)) - 10, journal.ErrChecksum},
		{"segment header page", 0, journal.ErrBadMagic},
	} {
		b := append([]byte{}, orig...)
		b[tc.off] ^= 0x5a
		os.WriteFile(path, b, 0o644)
		_, err := archive.Open(path)
		if !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
	}
	os.WriteFile(path, orig[:100], 0o644)
	if _, err := archive.Open(path); !errors.Is(err, journal.ErrTruncated) {
		t.Errorf("truncated: %v", err)
	}
}

// A crafted archive claiming a huge raw image is refused at Open instead of
// making a reader allocate it.
func TestImplausibleRawSizeRefused(t *testing.T) {
	dir, _ := build(t, 6000)
	compress.Compress(dir, 1, zstd.SpeedFastest, 64<<10)
	path := archive.Path(dir, 1)
	b, _ := os.ReadFile(path)
	a := b[journal.ArchiveHeaderOff:]
	binary.LittleEndian.PutUint64(a[16:], 1<<40) // raw_size
	binary.LittleEndian.PutUint32(a[48:], journal.CRC32C(a[:48]))
	os.WriteFile(path, b, 0o644)
	if _, err := archive.Open(path); !errors.Is(err, journal.ErrBadHeader) {
		t.Fatalf("got %v", err)
	}
}
