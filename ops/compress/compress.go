// Package compress rewrites sealed segments as seekable zstd archives
// (format.md §14): independently decompressible chunks cut at frame
// boundaries, with a chunk table, so a reader can seek to any frame without
// decompressing what comes before it. Raw offsets are preserved, so the
// segment's index stays valid. Readers, verify and the writer's recovery
// read archives transparently (internal/segfile).
package compress

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"

	"github.com/klauspost/compress/zstd"

	"github.com/mdjournal/mdjournal/internal/archive"
	"github.com/mdjournal/mdjournal/internal/fsx"
	"github.com/mdjournal/mdjournal/internal/segfile"
	"github.com/mdjournal/mdjournal/journal"
	"github.com/mdjournal/mdjournal/ops/maint"
)

// Result reports one compressed segment.
type Result struct {
	Segment  uint64
	RawBytes int64 // bytes of the segment that hold data (its frames and end marker)
	FileRaw  int64 // size of the raw segment file (its reserved capacity)
	Archived int64 // size of the archive file
	Chunks   int
	Frames   int64
}

// Options tune All.
type Options struct {
	Level zstd.EncoderLevel // default zstd.SpeedDefault
	Chunk int               // raw bytes per chunk (default journal.DefaultChunk)
	// Stop, if set, is checked between segments: All returns what it did so
	// far when it reports true (an interrupted command).
	Stop func() bool
	// Perm is the mode of archives (default 0640).
	Perm os.FileMode
}

// All compresses every sealed raw segment of dir, oldest first, holding the
// maintenance lock (no prune or recover runs meanwhile).
func All(dir string, o Options) ([]Result, error) {
	ml, err := maint.Lock(dir, "compress")
	if err != nil {
		return nil, err
	}
	defer ml.Release()
	ents, err := segfile.List(dir)
	if err != nil {
		return nil, err
	}
	results := []Result{}
	for _, e := range ents {
		if e.Archived {
			continue
		}
		h, _, _, err := segfile.ReadHeader(dir, e.Num)
		if err != nil {
			continue
		}
		if st, _, ok := h.State(); !ok || !st.Sealed() {
			continue
		}
		if o.Stop != nil && o.Stop() {
			break
		}
		r, err := compressOne(dir, e.Num, o)
		if err != nil {
			return results, err
		}
		results = append(results, r)
	}
	return results, nil
}

// Compress rewrites sealed segment n of dir as NNNN.seg.zst and removes the
// raw segment, holding the maintenance lock, in this order: judge every
// frame of the raw segment (its verdict must be intact and sealed: a damaged
// segment is refused, never archived); write the archive under a temporary
// name and fsync it; read it back and compare with the raw bytes; rename it
// into place and fsync the directory; only then delete the raw segment and
// fsync the directory. A crash at any point leaves the raw segment, an
// archive, or both (readers prefer the raw one); a leftover .seg.zst.tmp is
// removed by the next maintenance command.
func Compress(dir string, n uint64, level zstd.EncoderLevel, chunkTarget int) (Result, error) {
	ml, err := maint.Lock(dir, "compress")
	if err != nil {
		return Result{}, err
	}
	defer ml.Release()
	return compressOne(dir, n, Options{Level: level, Chunk: chunkTarget})
}

func compressOne(dir string, n uint64, o Options) (Result, error) {
	if o.Chunk <= 0 {
		o.Chunk = journal.DefaultChunk
	}
	if o.Level == 0 {
		o.Level = zstd.SpeedDefault
	}
	if o.Perm == 0 {
		o.Perm = fsx.DataPerm
	}
	rawPath := journal.SegmentPath(dir, n)
	s, err := segfile.Open(dir, n, segfile.OpenOptions{})
	if err != nil {
		return Result{}, err
	}
	defer s.Close()
	if s.Archived {
		return Result{}, fmt.Errorf("%s: already compressed", s.Path)
	}
	m := s.Data
	h := s.Header()
	st, _, ok := h.State()
	if !ok || !st.Sealed() {
		return Result{}, fmt.Errorf("%s: %w", rawPath, ErrNotSealed)
	}
	// Cut chunks at frame boundaries while judging every frame.
	var cuts []int64
	start := int64(journal.SegmentHeaderSize)
	v := journal.Assess(rawPath, m, journal.AssessOptions{Full: true, Successor: true, Visit: func(fr *journal.Frame) {
		if fr.Offset-start >= int64(o.Chunk) {
			cuts = append(cuts, fr.Offset)
			start = fr.Offset
		}
	}})
	if v.Kind != journal.Intact || !v.Sealed {
		if v.Err != nil {
			return Result{}, v.Err
		}
		return Result{}, journal.Corrupt(rawPath, v.End, journal.ErrBadHeader, "sealed segment does not end with its end marker")
	}
	end := v.End
	cuts = append(cuts, end)

	enc, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(o.Level), zstd.WithEncoderConcurrency(1), zstd.WithEncoderCRC(false))
	if err != nil {
		return Result{}, err
	}
	defer enc.Close()
	path := journal.ArchivePath(dir, n)
	tmp := path + journal.TmpExt
	out, err := fsx.CreateTemp(tmp, o.Perm)
	if err != nil {
		return Result{}, err
	}
	fail := func(err error) (Result, error) {
		out.Close()
		os.Remove(tmp)
		return Result{}, err
	}
	// The header page, with the cursor at the end of the frames (the cursor
	// is a hint; an archive's raw size is exact).
	page := append([]byte(nil), m[:journal.SegmentHeaderSize]...)
	binary.LittleEndian.PutUint64(page[journal.SegOffCursor:], uint64(end))
	if _, err := out.Write(page); err != nil {
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
	journal.PutArchiveHeader(ah[:], journal.ArchiveHeader{ChunkTarget: uint32(o.Chunk), RawSize: end,
		Chunks: uint64(len(cuts)), TableOffset: off, Level: uint32(o.Level), TableCRC: journal.CRC32C(table)})
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
	if !bytes.Equal(img[:journal.SegmentHeaderSize], page) || !bytes.Equal(img[journal.SegmentHeaderSize:], m[journal.SegmentHeaderSize:end]) {
		return fail(errors.New("archive round trip: decompressed bytes differ from the segment"))
	}
	size := off + int64(len(table))
	if err := out.Close(); err != nil {
		os.Remove(tmp)
		return Result{}, err
	}
	if err := fsx.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return Result{}, err
	}
	if err := fsx.RemoveRegular(rawPath); err != nil {
		return Result{}, err
	}
	return Result{Segment: n, RawBytes: end, FileRaw: s.FileSize, Archived: size, Chunks: len(cuts), Frames: v.Frames}, fsx.SyncDir(dir)
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
