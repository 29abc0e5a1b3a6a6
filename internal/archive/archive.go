// Package archive reads and writes compressed segments (format.md §14):
// a sealed segment rewritten as independently decompressible zstd chunks,
// cut at frame boundaries, with a chunk table so a reader can seek to any
// frame without decompressing what comes before it. The segment's own
// header page is kept verbatim at the start of the file, so everything that
// reads segment headers (readers choosing where to start, inspect) works on
// archives unchanged, and the sparse index (.idx) stays valid because raw
// offsets are preserved.
package archive

import (
	"os"
	"sort"

	"github.com/klauspost/compress/zstd"

	"github.com/mdjournal/mdjournal/journal"
)

// Path returns the archive path of segment n in dir.
func Path(dir string, n uint64) string {
	return journal.SegmentPath(dir, n) + journal.ArchiveExt[len(journal.SegmentExt):]
}

// Chunk locates one compressed chunk (format.md §14).
type Chunk = journal.ChunkEntry

// Segment is an open archive.
type Segment struct {
	path    string
	f       *os.File
	page    []byte // the segment header page
	RawSize int64  // raw bytes represented: [0, RawSize) of the original segment
	Level   int
	Chunks  []Chunk
	dec     *zstd.Decoder
	comp    []byte
}

// Open reads and validates an archive's header and chunk table.
func Open(path string) (*Segment, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	s, err := OpenFile(f, path)
	if err != nil {
		f.Close()
		return nil, err
	}
	return s, nil
}

// OpenFile is Open on an already open file (compress reads back the
// archive it just wrote). The Segment owns f from then on.
func OpenFile(f *os.File, path string) (*Segment, error) {
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if st.Size() < journal.ArchiveDataOff {
		return nil, journal.Corrupt(path, st.Size(), journal.ErrTruncated, "archive is %d bytes, shorter than its headers", st.Size())
	}
	head := make([]byte, journal.ArchiveDataOff)
	if _, err := f.ReadAt(head, 0); err != nil {
		return nil, err
	}
	page := head[:journal.SegmentHeaderSize]
	h := journal.HeaderOf(page)
	if err := h.Check(path, int64(h.Capacity()), 0); err != nil {
		return nil, err
	}
	ah, err := journal.ParseArchiveHeader(path, head[journal.ArchiveHeaderOff:])
	if err != nil {
		return nil, err
	}
	s := &Segment{path: path, f: f, page: page, RawSize: ah.RawSize, Level: int(ah.Level)}
	n, table := ah.Chunks, ah.TableOffset
	// Bounds that keep a crafted archive from making a reader allocate
	// without limit: the raw image is at most MaxRawSize and at most
	// MaxRatio times the file (real segments compress 3-4x).
	if s.RawSize > journal.MaxArchiveRaw || s.RawSize > journal.MaxArchiveRatio*st.Size() {
		return nil, journal.Corrupt(path, journal.ArchiveHeaderOff+16, journal.ErrBadHeader, "raw size %d is implausible for a %d-byte archive", s.RawSize, st.Size())
	}
	if s.RawSize < journal.SegmentHeaderSize || s.RawSize > int64(h.Capacity()) || s.RawSize != int64(h.Cursor()) ||
		n > uint64(s.RawSize) || table < journal.ArchiveDataOff || table+int64(n)*journal.ChunkEntrySize != st.Size() {
		return nil, journal.Corrupt(path, journal.ArchiveHeaderOff, journal.ErrBadHeader, "archive header does not fit the file (raw size %d, %d chunks, table at %d, file %d bytes)",
			s.RawSize, n, table, st.Size())
	}
	tb := make([]byte, int64(n)*journal.ChunkEntrySize)
	if _, err := f.ReadAt(tb, table); err != nil {
		return nil, err
	}
	if crc := journal.CRC32C(tb); crc != ah.TableCRC {
		return nil, journal.Corrupt(path, table, journal.ErrChecksum, "chunk table checksum mismatch")
	}
	next := int64(journal.SegmentHeaderSize)
	for i := uint64(0); i < n; i++ {
		c := journal.ParseChunkEntry(tb[i*journal.ChunkEntrySize:])
		if c.RawOff != next || c.RawLen <= 0 || c.RawLen > journal.MaxChunk || c.RawOff+int64(c.RawLen) > s.RawSize || c.CompOff < journal.ArchiveDataOff || c.CompOff+int64(c.CompLen) > table {
			return nil, journal.Corrupt(path, table+int64(i)*journal.ChunkEntrySize, journal.ErrBadHeader, "chunk %d entry is inconsistent", i)
		}
		next += int64(c.RawLen)
		s.Chunks = append(s.Chunks, c)
	}
	if next != s.RawSize {
		return nil, journal.Corrupt(path, table, journal.ErrBadHeader, "chunks cover %d raw bytes, header says %d", next, s.RawSize)
	}
	return s, nil
}

// HeaderPage returns the original segment header page (read-only use).
func (s *Segment) HeaderPage() []byte { return s.page }

// Path returns the archive file path.
func (s *Segment) Path() string { return s.path }

// ChunkFor returns the index of the chunk holding raw offset off, or -1.
func (s *Segment) ChunkFor(off int64) int {
	i := sort.Search(len(s.Chunks), func(i int) bool { return s.Chunks[i].RawOff+int64(s.Chunks[i].RawLen) > off })
	if i == len(s.Chunks) || off < s.Chunks[i].RawOff {
		return -1
	}
	return i
}

// Load decompresses chunk i into dst[RawOff:RawOff+RawLen] (dst spans the
// whole raw segment) and verifies its checksum.
func (s *Segment) Load(i int, dst []byte) error {
	c := s.Chunks[i]
	if cap(s.comp) < c.CompLen {
		s.comp = make([]byte, c.CompLen)
	}
	comp := s.comp[:c.CompLen]
	if _, err := s.f.ReadAt(comp, c.CompOff); err != nil {
		return journal.Corrupt(s.path, c.CompOff, journal.ErrTruncated, "reading chunk %d: %v", i, err)
	}
	if s.dec == nil {
		d, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxMemory(64<<20))
		if err != nil {
			return err
		}
		s.dec = d
	}
	out := dst[c.RawOff : c.RawOff : c.RawOff+int64(c.RawLen)]
	got, err := s.dec.DecodeAll(comp, out)
	if err != nil {
		return journal.Corrupt(s.path, c.CompOff, journal.ErrChecksum, "chunk %d does not decompress: %v", i, err)
	}
	if len(got) != c.RawLen || &got[0] != &dst[c.RawOff] {
		return journal.Corrupt(s.path, c.CompOff, journal.ErrBadLength, "chunk %d decompresses to %d bytes, table says %d", i, len(got), c.RawLen)
	}
	if crc := journal.CRC32C(got); crc != c.CRC {
		return journal.Corrupt(s.path, c.CompOff, journal.ErrChecksum, "chunk %d raw checksum mismatch", i)
	}
	return nil
}

// ReadAll returns the raw segment image [0, RawSize).
func (s *Segment) ReadAll() ([]byte, error) {
	img := make([]byte, s.RawSize)
	copy(img, s.page)
	for i := range s.Chunks {
		if err := s.Load(i, img); err != nil {
			return nil, err
		}
	}
	return img, nil
}

// Close releases the file and decoder.
func (s *Segment) Close() error {
	if s.dec != nil {
		s.dec.Close()
	}
	return s.f.Close()
}

// CloseDecoder releases the zstd decoder but not the file (compress keeps
// writing through it after the round trip).
func (s *Segment) CloseDecoder() {
	if s.dec != nil {
		s.dec.Close()
		s.dec = nil
	}
}
