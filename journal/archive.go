package journal

import "encoding/binary"

// Compressed segment layout, format.md §14. A compressed segment file is the
// sealed segment's header page (copied verbatim), an archive header, the
// zstd chunks and a chunk table. These constants are part of the format.
const (
	ArchiveMagic      = "MDJZST\x00\x00"
	ArchiveHeaderOff  = SegmentHeaderSize // the archive header follows the copied header page
	ArchiveHeaderSize = 64
	ArchiveDataOff    = ArchiveHeaderOff + ArchiveHeaderSize // first chunk
	ChunkEntrySize    = 32
	// DefaultChunk is the raw bytes per chunk compress aims at (chunks end
	// on frame boundaries).
	DefaultChunk = 1 << 20
	// MaxChunk bounds one chunk's raw length: the largest chunk target
	// compress accepts plus one maximal frame.
	MaxChunk = 64<<20 + MaxFrameSize
	// MaxArchiveRaw and MaxArchiveRatio bound what an archive may claim to
	// hold, so a crafted file cannot make a reader allocate without limit.
	MaxArchiveRaw   = 1 << 32
	MaxArchiveRatio = 1024

	arcOffMagic       = 0
	arcOffVersion     = 8
	arcOffChunkTarget = 12
	arcOffRawSize     = 16
	arcOffChunks      = 24
	arcOffTable       = 32
	arcOffLevel       = 40
	arcOffTableCRC    = 44
	arcOffCRC         = 48 // CRC-32C of archive header bytes [0,48)

	chunkOffRaw     = 0  // u64 raw offset of the chunk's first frame
	chunkOffRawLen  = 8  // u32
	chunkOffCompLen = 12 // u32
	chunkOffComp    = 16 // u64 file offset of the zstd frame
	chunkOffCRC     = 24 // u32 CRC-32C of the raw chunk bytes
)

// ArchiveHeader is the 64-byte header of a compressed segment (format.md §14).
type ArchiveHeader struct {
	ChunkTarget uint32 // raw bytes per chunk the writer aimed at
	RawSize     int64  // raw bytes [0, RawSize) of the segment are represented
	Chunks      uint64 // chunk table entries
	TableOffset int64  // file offset of the chunk table, which ends the file
	Level       uint32 // zstd encoder level
	TableCRC    uint32 // CRC-32C of the whole chunk table
}

// PutArchiveHeader encodes h into b[:ArchiveHeaderSize], checksum included.
func PutArchiveHeader(b []byte, h ArchiveHeader) {
	b = b[:ArchiveHeaderSize]
	clear(b)
	copy(b[arcOffMagic:], ArchiveMagic)
	binary.LittleEndian.PutUint32(b[arcOffVersion:], Version)
	binary.LittleEndian.PutUint32(b[arcOffChunkTarget:], h.ChunkTarget)
	binary.LittleEndian.PutUint64(b[arcOffRawSize:], uint64(h.RawSize))
	binary.LittleEndian.PutUint64(b[arcOffChunks:], h.Chunks)
	binary.LittleEndian.PutUint64(b[arcOffTable:], uint64(h.TableOffset))
	binary.LittleEndian.PutUint32(b[arcOffLevel:], h.Level)
	binary.LittleEndian.PutUint32(b[arcOffTableCRC:], h.TableCRC)
	binary.LittleEndian.PutUint32(b[arcOffCRC:], CRC32C(b[:arcOffCRC]))
}

// ParseArchiveHeader decodes and checks the archive header at b (the bytes
// at file offset ArchiveHeaderOff of file name): magic, version and checksum.
// Offsets in errors are file offsets.
func ParseArchiveHeader(name string, b []byte) (ArchiveHeader, error) {
	if len(b) < ArchiveHeaderSize {
		return ArchiveHeader{}, Corrupt(name, ArchiveHeaderOff, ErrTruncated, "archive header is %d bytes", len(b))
	}
	if string(b[:8]) != ArchiveMagic {
		return ArchiveHeader{}, Corrupt(name, ArchiveHeaderOff, ErrBadMagic, "bad archive magic %q", b[:8])
	}
	if v := binary.LittleEndian.Uint32(b[arcOffVersion:]); v != Version {
		return ArchiveHeader{}, Corrupt(name, ArchiveHeaderOff+arcOffVersion, ErrVersion, "archive version %d, this build reads %d", v, Version)
	}
	if crc := CRC32C(b[:arcOffCRC]); crc != binary.LittleEndian.Uint32(b[arcOffCRC:]) {
		return ArchiveHeader{}, Corrupt(name, ArchiveHeaderOff+arcOffCRC, ErrChecksum, "archive header checksum mismatch")
	}
	return ArchiveHeader{
		ChunkTarget: binary.LittleEndian.Uint32(b[arcOffChunkTarget:]),
		RawSize:     int64(binary.LittleEndian.Uint64(b[arcOffRawSize:])),
		Chunks:      binary.LittleEndian.Uint64(b[arcOffChunks:]),
		TableOffset: int64(binary.LittleEndian.Uint64(b[arcOffTable:])),
		Level:       binary.LittleEndian.Uint32(b[arcOffLevel:]),
		TableCRC:    binary.LittleEndian.Uint32(b[arcOffTableCRC:]),
	}, nil
}

// ChunkEntry is one chunk table entry (format.md §14).
type ChunkEntry struct {
	RawOff  int64  // raw offset of the chunk's first frame
	RawLen  int    // raw bytes
	CompOff int64  // file offset of the zstd frame
	CompLen int    // compressed bytes
	CRC     uint32 // CRC-32C of the raw bytes
}

// PutChunkEntry encodes e into b[:ChunkEntrySize].
func PutChunkEntry(b []byte, e ChunkEntry) {
	b = b[:ChunkEntrySize]
	clear(b)
	binary.LittleEndian.PutUint64(b[chunkOffRaw:], uint64(e.RawOff))
	binary.LittleEndian.PutUint32(b[chunkOffRawLen:], uint32(e.RawLen))
	binary.LittleEndian.PutUint32(b[chunkOffCompLen:], uint32(e.CompLen))
	binary.LittleEndian.PutUint64(b[chunkOffComp:], uint64(e.CompOff))
	binary.LittleEndian.PutUint32(b[chunkOffCRC:], e.CRC)
}

// ParseChunkEntry decodes b[:ChunkEntrySize] (unchecked: the caller checks
// the entries against each other and the file).
func ParseChunkEntry(b []byte) ChunkEntry {
	b = b[:ChunkEntrySize]
	return ChunkEntry{
		RawOff:  int64(binary.LittleEndian.Uint64(b[chunkOffRaw:])),
		RawLen:  int(binary.LittleEndian.Uint32(b[chunkOffRawLen:])),
		CompLen: int(binary.LittleEndian.Uint32(b[chunkOffCompLen:])),
		CompOff: int64(binary.LittleEndian.Uint64(b[chunkOffComp:])),
		CRC:     binary.LittleEndian.Uint32(b[chunkOffCRC:]),
	}
}
