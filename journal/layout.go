package journal

// Layout tables: every fixed structure of format.md declared once, as a
// list of fields built from the offset constants the code uses. inspect
// renders files from these tables, and a test reads format.md's offset
// tables and checks them against them, so the document, the constants and
// the bytes cannot drift apart.

// FieldKind says how a field is rendered.
type FieldKind uint8

const (
	KindBytes    FieldKind = iota // raw bytes (magic, ASCII), shown quoted
	KindU16                       // unsigned little-endian
	KindU32                       // unsigned little-endian
	KindU64                       // unsigned little-endian
	KindI64                       // signed little-endian
	KindTime                      // i64 Unix nanoseconds
	KindHex64                     // u64 shown in hex (identities)
	KindCRC                       // u32 checksum, shown in hex
	KindReserved                  // must be zero
)

// Field is one field of a fixed layout.
type Field struct {
	Off     int
	Size    int
	Name    string // as in format.md
	Kind    FieldKind
	Atomic  bool   // loaded and stored atomically while shared
	Meaning string // one line, as in format.md
}

// Layout is a fixed structure of the format.
type Layout struct {
	Name    string // e.g. "segment header"
	Section string // format.md section, e.g. "§2.1"
	Size    int    // bytes the fields cover (the table ends here)
	Fields  []Field
}

// Layouts is every fixed layout of the journal format, in format.md order.
var Layouts = []Layout{SegmentHeaderLayout, StateLayout, FrameHeaderLayout, SourceTrailerLayout, IndexHeaderLayout, IndexEntryLayout,
	CtlLayout, PositionLayout, ArchiveHeaderLayout, ChunkEntryLayout}

// SegmentHeaderLayout is format.md §2.1.
var SegmentHeaderLayout = Layout{Name: "segment header", Section: "§2.1", Size: SegmentHeaderSize, Fields: []Field{
	{segOffMagic, 8, "magic", KindBytes, false, `"MDJSEG\0\0"`},
	{segOffVersion, 4, "version", KindU32, false, "format version"},
	{segOffHeaderSize, 4, "header_size", KindU32, false, "4096: frames start here"},
	{segOffJournalID, 8, "journal_id", KindHex64, false, "identity shared by every file of one journal"},
	{segOffNumber, 8, "segment_number", KindU64, false, "equals the number in the file name"},
	{segOffFirstSeq, 8, "first_seq", KindU64, false, "seq of the first frame; 0 while prepared"},
	{segOffCreated, 8, "created", KindTime, false, "when the file was created"},
	{segOffCapacity, 8, "capacity", KindU64, false, "file size in bytes"},
	{segOffEpoch, 4, "epoch", KindU32, false, "recovery epoch of the activating writer; 0 while prepared"},
	{segOffHeaderCRC, 4, "header_crc", KindCRC, false, "CRC-32C of bytes [0,60)"},
	{SegOffCursor, 8, "write_cursor", KindU64, true, "hint: at most the end of the published frames"},
	{SegOffCursor + 8, 56, "padding", KindReserved, false, "keeps the cursor's cache line private"},
	{SegOffStateA, StateSize, "state_a", KindBytes, false, "state record A (§2.2)"},
	{SegOffStateB, StateSize, "state_b", KindBytes, false, "state record B (§2.2)"},
	{SegOffStateB + StateSize, SegmentHeaderSize - SegOffStateB - StateSize, "reserved", KindReserved, false, "zero"},
}}

// StateLayout is format.md §2.2 (offsets within a record).
var StateLayout = Layout{Name: "state record", Section: "§2.2", Size: StateSize, Fields: []Field{
	{stOffGen, 8, "gen", KindU64, false, "record generation; the valid record with the larger gen is current"},
	{stOffDurOff, 8, "durable_offset", KindU64, false, "every byte below it is on stable storage"},
	{stOffDurSeq, 8, "durable_seq", KindU64, false, "seq of the last frame below durable_offset"},
	{stOffLastSeq, 8, "last_seq", KindU64, false, "sealed: seq of the last data frame"},
	{stOffFlags, 4, "flags", KindU32, false, "bit 0 SEALED, bit 1 CLEAN"},
	{stOffWriterPID, 4, "writer_pid", KindU32, false, "PID of the writer that wrote the record"},
	{stOffWriterPID + 4, stOffCRC - stOffWriterPID - 4, "reserved", KindReserved, false, "zero"},
	{stOffCRC, 4, "crc", KindCRC, false, "CRC-32C of bytes [0,60) of the record"},
}}

// FrameHeaderLayout is format.md §3.
var FrameHeaderLayout = Layout{Name: "frame header", Section: "§3", Size: FrameHeaderSize, Fields: []Field{
	{frameOffCRC, 4, "crc", KindCRC, true, "commit word, low half: CRC-32C of [8,size), initial value size"},
	{frameOffSize, 4, "size", KindU32, true, "commit word, high half: header + payload + trailer bytes"},
	{frameOffSeq, 8, "seq", KindU64, false, "sequence number"},
	{frameOffTS, 8, "ts", KindTime, false, "event time, Unix ns"},
	{frameOffType, 2, "type", KindU16, false, "message type (§3.2)"},
	{frameOffFlags, 2, "flags", KindU16, false, "bit 0 RESTATED, bit 1 SOURCE"},
	{frameOffInstr, 4, "instrument", KindU32, false, "instrument id (0 where not applicable)"},
}}

// SourceTrailerLayout is format.md §3.3 (offsets from the end of the payload).
var SourceTrailerLayout = Layout{Name: "source trailer", Section: "§3.3", Size: SourceTrailerSize, Fields: []Field{
	{0, 8, "recv_ts", KindTime, false, "when the feed handler received the message"},
	{8, 8, "source_seq", KindU64, false, "the feed's own sequence number"},
}}

// IndexHeaderLayout is format.md §5.
var IndexHeaderLayout = Layout{Name: "index header", Section: "§5", Size: IndexHeaderSize, Fields: []Field{
	{idxOffMagic, 8, "magic", KindBytes, false, `"MDJIDX\0\0"`},
	{idxOffVersion, 4, "version", KindU32, false, "format version"},
	{idxOffStride, 4, "stride", KindU32, false, "4096"},
	{idxOffJournalID, 8, "journal_id", KindHex64, false, "as the segment"},
	{idxOffSegment, 8, "segment", KindU64, false, "segment number"},
	{idxOffCapacity, 8, "capacity", KindU64, false, "entry slots"},
	{idxOffHeaderCRC, 4, "header_crc", KindCRC, false, "CRC-32C of [0,40)"},
	{idxOffHeaderCRC + 4, IdxOffCount - idxOffHeaderCRC - 4, "reserved", KindReserved, false, "zero"},
	{IdxOffCount, 8, "count", KindU64, true, "published entries"},
	{IdxOffCount + 8, IndexHeaderSize - IdxOffCount - 8, "padding", KindReserved, false, "zero"},
}}

// The state record's reserved bytes and the header's reserved pages are
// declared as fields too (KindReserved), so a layout's fields tile it: the
// layout test checks there is no gap and no overlap.

// IndexEntryLayout is format.md §5 (one entry).
var IndexEntryLayout = Layout{Name: "index entry", Section: "§5", Size: IndexEntrySize, Fields: []Field{
	{idxEntryOffSeq, 8, "seq", KindU64, false, "seq of the indexed frame"},
	{idxEntryOffTS, 8, "ts", KindTime, false, "its timestamp"},
	{idxEntryOffFrame, 8, "offset", KindU64, false, "its byte offset in the segment file"},
}}

// CtlLayout is format.md §6.
var CtlLayout = Layout{Name: "control page", Section: "§6", Size: CtlSize, Fields: []Field{
	{ctlOffMagic, 8, "magic", KindBytes, false, `"MDJCTL\0\0"`},
	{ctlOffVersion, 4, "version", KindU32, false, "format version"},
	{ctlOffVersion + 4, 4, "reserved", KindReserved, false, "zero"},
	{ctlOffJournalID, 8, "journal_id", KindHex64, false, "the journal"},
	{ctlOffCreated, 8, "created", KindTime, false, "when the page was made"},
	{ctlOffCreated + 8, CtlOffNotify - ctlOffCreated - 8, "reserved", KindReserved, false, "zero"},
	{CtlOffNotify, 4, "notify", KindU32, true, "futex word, bumped by the writer on wake"},
	{CtlOffWaiters, 4, "waiters", KindU32, true, "announced sleepers"},
	{CtlOffWaiters + 4, CtlOffActive - CtlOffWaiters - 4, "padding", KindReserved, false, "zero"},
	{CtlOffActive, 8, "active_segment", KindU64, true, "number of the active segment"},
	{CtlOffWriterPID, 4, "writer_pid", KindU32, true, "PID of the open writer, 0 after a clean close"},
	{CtlOffWriterPID + 4, CtlSize - CtlOffWriterPID - 4, "reserved", KindReserved, false, "zero"},
}}

// ArchiveHeaderLayout is format.md §14 (offsets from ArchiveHeaderOff).
var ArchiveHeaderLayout = Layout{Name: "archive header", Section: "§14", Size: ArchiveHeaderSize, Fields: []Field{
	{arcOffMagic, 8, "magic", KindBytes, false, `"MDJZST\0\0"`},
	{arcOffVersion, 4, "version", KindU32, false, "format version"},
	{arcOffChunkTarget, 4, "chunk_target", KindU32, false, "raw bytes per chunk aimed at"},
	{arcOffRawSize, 8, "raw_size", KindU64, false, "raw bytes [0,raw_size) represented"},
	{arcOffChunks, 8, "chunk_count", KindU64, false, "chunk table entries"},
	{arcOffTable, 8, "table_offset", KindU64, false, "file offset of the chunk table"},
	{arcOffLevel, 4, "level", KindU32, false, "zstd encoder level"},
	{arcOffTableCRC, 4, "table_crc", KindCRC, false, "CRC-32C of the chunk table"},
	{arcOffCRC, 4, "header_crc", KindCRC, false, "CRC-32C of [0,48)"},
	{arcOffCRC + 4, ArchiveHeaderSize - arcOffCRC - 4, "reserved", KindReserved, false, "zero"},
}}

// ChunkEntryLayout is format.md §14 (one chunk table entry).
var ChunkEntryLayout = Layout{Name: "chunk entry", Section: "§14", Size: ChunkEntrySize, Fields: []Field{
	{chunkOffRaw, 8, "raw_offset", KindU64, false, "raw offset of the chunk's first frame"},
	{chunkOffRawLen, 4, "raw_len", KindU32, false, "raw bytes"},
	{chunkOffCompLen, 4, "comp_len", KindU32, false, "compressed bytes"},
	{chunkOffComp, 8, "comp_offset", KindU64, false, "file offset of the zstd frame"},
	{chunkOffCRC, 4, "raw_crc", KindCRC, false, "CRC-32C of the raw bytes"},
	{chunkOffCRC + 4, ChunkEntrySize - chunkOffCRC - 4, "reserved", KindReserved, false, "zero"},
}}

// Reader position file, format.md §13.
const (
	PosMagic      = "MDJPOS\x00\x00"
	PosSize       = 4096
	PosExt        = ".pos"
	posOffMagic   = 0
	PosOffVersion = 8
	PosOffPID     = 12
	PosOffJournal = 16
	PosOffCreated = 24
	PosOffSeq     = 64 // u64 atomic, alone on its cache line
	PosOffTS      = 72
	PosOffEpoch   = 80
)

// PositionLayout is format.md §13.
var PositionLayout = Layout{Name: "reader position", Section: "§13", Size: PosSize, Fields: []Field{
	{posOffMagic, 8, "magic", KindBytes, false, `"MDJPOS\0\0"`},
	{PosOffVersion, 4, "version", KindU32, false, "format version"},
	{PosOffPID, 4, "pid", KindU32, false, "PID of the reader that last opened it"},
	{PosOffJournal, 8, "journal_id", KindHex64, false, "the journal it belongs to"},
	{PosOffCreated, 8, "created", KindTime, false, "when the file was made"},
	{PosOffCreated + 8, PosOffSeq - PosOffCreated - 8, "reserved", KindReserved, false, "zero"},
	{PosOffSeq, 8, "seq", KindU64, true, "seq of the last frame consumed; 0 = none"},
	{PosOffTS, 8, "ts", KindTime, true, "that frame's timestamp"},
	{PosOffEpoch, 4, "epoch", KindU32, true, "recovery epoch of that frame's segment"},
	{PosOffEpoch + 4, PosSize - PosOffEpoch - 4, "reserved", KindReserved, false, "zero"},
}}
