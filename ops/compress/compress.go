package compress

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/klauspost/compress/zstd"

	"github.com/mdjournal/mdjournal/internal/archive"
	"github.com/mdjournal/mdjournal/internal/mmap"
	"github.com/mdjournal/mdjournal/journal"
)

// Result reports one compressed segment.
type Result struct {
	Segment  uint64
	RawBytes int64 // bytes of the segment that hold data (its cursor)
	FileRaw  int64 // size of the raw segment file (its reserved capacity)
	Archived int64 // size of the archive file
	Chunks   int
	Frames   int64
}

// Compress rewrites sealed segment n of dir as NNNN.seg.zst (format.md §14)
// and removes the raw segment, in this order: verify every frame of the raw
// segment (a damaged segment is refused, never archived); write the archive
// under a temporary name and fsync it; read it back through Open/Load and
// compare with the raw bytes; rename it into place and fsync the directory;
// only then delete the raw segment. A crash at any point leaves the raw
// segment, an archive, or both (readers prefer the raw one).
func Compress(dir string, n uint64, level zstd.EncoderLevel, chunkTarget int) (Result, error) {
	if chunkTarget <= 0 {
		chunkTarget = journal.DefaultChunk
	}
	rawPath := journal.SegmentPath(dir, n)
	f, err := os.Open(rawPath)
	if err != nil {
		return Result{}, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return Result{}, err
	}
	if st.Size() < journal.SegmentHeaderSize {
		return Result{}, journal.Corrupt(rawPath, st.Size(), journal.ErrTruncated, "file is %d bytes", st.Size())
	}
	m, err := mmap.Map(f, int(st.Size()), false)
	if err != nil {
		return Result{}, err
	}
	defer mmap.Unmap(m)
	h := journal.HeaderOf(m)
	if err := h.Check(rawPath, st.Size()); err != nil {
		return Result{}, err
	}
	if !h.Sealed() {
		return Result{}, fmt.Errorf("%s: %w", rawPath, ErrNotSealed)
	}
	cursor := int64(h.Cursor())
	// Cut chunks at frame boundaries while verifying every frame.
	var cuts []int64
	start := int64(journal.SegmentHeaderSize)
	res := journal.ScanSegment(rawPath, m, journal.SegmentHeaderSize, h.FirstSeq()-1, cursor, func(fr *journal.Frame) {
		if fr.Offset-start >= int64(chunkTarget) {
			cuts = append(cuts, fr.Offset)
			start = fr.Offset
		}
	})
	if res.Err != nil {
		return Result{}, res.Err
	}
	if !res.Sealed || res.End != cursor {
		return Result{}, journal.Corrupt(rawPath, res.End, journal.ErrBadHeader, "sealed segment does not end with its end marker at the cursor %d", cursor)
	}
	cuts = append(cuts, cursor)

	enc, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(level), zstd.WithEncoderConcurrency(1), zstd.WithEncoderCRC(false))
	if err != nil {
		return Result{}, err
	}
	defer enc.Close()
	path := archive.Path(dir, n)
	tmp := path + ".tmp"
	out, err := os.OpenFile(tmp, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return Result{}, err
	}
	fail := func(err error) (Result, error) {
		out.Close()
		os.Remove(tmp)
		return Result{}, err
	}
	if _, err := out.Write(m[:journal.SegmentHeaderSize]); err != nil {
		return fail(err)
	}
	if _, err := out.Write(make([]byte, journal.ArchiveHeaderSize)); err != nil { // rewritten at the end
		return fail(err)
	}
	off := int64(journal.ArchiveDataOff)
	table := make([]byte, 0, len(cuts)*journal.ChunkEntrySize)
	var comp []byte
	prev := int64(journal.SegmentHeaderSize)
	for _, cut := range cuts {
		raw := m[prev:cut]
		comp = enc.EncodeAll(raw, comp[:0])
		if _, err := out.Write(comp); err != nil {
			return fail(err)
		}
		var e [journal.ChunkEntrySize]byte
		journal.PutChunkEntry(e[:], journal.ChunkEntry{RawOff: prev, RawLen: len(raw), CompOff: off, CompLen: len(comp), CRC: journal.CRC32C(raw)})
		table = append(table, e[:]...)
		off += int64(len(comp))
		prev = cut
	}
	if _, err := out.Write(table); err != nil {
		return fail(err)
	}
	var ah [journal.ArchiveHeaderSize]byte
	journal.PutArchiveHeader(ah[:], journal.ArchiveHeader{ChunkTarget: uint32(chunkTarget), RawSize: cursor,
		Chunks: uint64(len(cuts)), TableOffset: off, Level: uint32(level), TableCRC: journal.CRC32C(table)})
	if _, err := out.WriteAt(ah[:], journal.ArchiveHeaderOff); err != nil {
		return fail(err)
	}
	if err := out.Sync(); err != nil {
		return fail(err)
	}
	// Round trip before anything is removed.
	back, err := archive.OpenFile(out, tmp)
	if err != nil {
		return fail(fmt.Errorf("archive round trip: %w", err))
	}
	img, err := back.ReadAll()
	back.CloseDecoder()
	if err != nil {
		return fail(fmt.Errorf("archive round trip: %w", err))
	}
	if !bytes.Equal(img, m[:cursor]) {
		return fail(errors.New("archive round trip: decompressed bytes differ from the segment"))
	}
	size := off + int64(len(table))
	if err := out.Close(); err != nil {
		os.Remove(tmp)
		return Result{}, err
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return Result{}, err
	}
	if err := syncDir(dir); err != nil {
		return Result{}, err
	}
	if err := os.Remove(rawPath); err != nil {
		return Result{}, err
	}
	return Result{Segment: n, RawBytes: cursor, FileRaw: st.Size(), Archived: size, Chunks: len(cuts), Frames: res.Frames}, syncDir(dir)
}

func syncDir(dir string) error {
	d, err := os.Open(filepath.Clean(dir))
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// ErrNotSealed: only sealed segments are compressed (the writer may still
// append to the others).
var ErrNotSealed = errors.New("compress: only sealed segments are compressed")

// Level names accepted by ParseLevel.
func ParseLevel(s string) (zstd.EncoderLevel, error) {
	switch s {
	case "fastest":
		return zstd.SpeedFastest, nil
	case "default", "":
		return zstd.SpeedDefault, nil
	case "better":
		return zstd.SpeedBetterCompression, nil
	case "best":
		return zstd.SpeedBestCompression, nil
	}
	return 0, fmt.Errorf("unknown level %q (want fastest, default, better or best)", s)
}
