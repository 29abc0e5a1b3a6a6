package inspect

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/mdjournal/mdjournal/internal/archive"
	"github.com/mdjournal/mdjournal/journal"
	"github.com/mdjournal/mdjournal/ops/verify"
)

// File kinds, detected by magic (format.md §10: every file starts with an
// 8-byte magic), falling back to the file name when the magic is damaged so
// that a segment with a smashed header is still decoded as a segment.
const (
	KindSegment  = "segment"         // NNNN.seg, §2
	KindArchive  = "archive"         // NNNN.seg.zst, §14
	KindIndex    = "index"           // NNNN.idx, §5
	KindSnapshot = "snapshot"        // *.snap, §11
	KindRing     = "ring"            // §12
	KindControl  = "control"         // journal.ctl, §6
	KindPosition = "reader_position" // readers/NAME.pos, §13
	KindUnknown  = "unknown"
)

// FileReport is one file decoded field by field.
type FileReport struct {
	Kind     string     `json:"kind"`
	File     string     `json:"file"`
	Size     int64      `json:"size"`
	Detected string     `json:"detected_by"` // "magic" or "name" (magic damaged)
	Fields   []Field    `json:"fields"`
	Summary  []Field    `json:"summary,omitempty"` // derived facts (frames, unread bytes, ...)
	Frames   []FrameRow `json:"frames,omitempty"`
	Entries  []EntryRow `json:"entries,omitempty"`
	Chunks   []ChunkRow `json:"chunks,omitempty"`
	Slots    []SlotRow  `json:"slots,omitempty"`
	Problems []Problem  `json:"problems"`
	Note     string     `json:"note,omitempty"`
	data     []byte     // for hexdumps
	hex      bool
}

// Field is one decoded header field, as in the format.md tables.
type Field struct {
	Offset  int64  `json:"offset"`
	Size    int    `json:"size"`
	Name    string `json:"name"`
	Value   string `json:"value"`
	Meaning string `json:"meaning"`
	Check   string `json:"check,omitempty"` // "ok", or what is wrong with the value
}

// EntryRow is one sparse-index entry.
type EntryRow struct {
	I      uint64 `json:"i"`
	Offset int64  `json:"file_offset"` // where the entry is in the index file
	Seq    uint64 `json:"seq"`
	TS     string `json:"ts"`
	Frame  int64  `json:"frame_offset"`
}

// ChunkRow is one archive chunk-table entry.
type ChunkRow struct {
	I       int    `json:"i"`
	RawOff  int64  `json:"raw_offset"`
	RawLen  int    `json:"raw_len"`
	CompOff int64  `json:"comp_offset"`
	CompLen int    `json:"comp_len"`
	CRC     string `json:"raw_crc"`
}

// SlotRow is one written snapshot slot (read without the seqlock: this is
// a forensic copy of the bytes as they are).
type SlotRow struct {
	Slot      uint32 `json:"slot"`
	Offset    int64  `json:"offset"`
	Lock      uint64 `json:"lock"`
	Seq       uint64 `json:"seq"`
	TS        string `json:"ts"`
	Symbol    string `json:"symbol"`
	Scale     int32  `json:"price_scale"`
	Bids      uint32 `json:"bid_count"`
	Asks      uint32 `json:"ask_count"`
	BestBid   string `json:"best_bid"`
	BestAsk   string `json:"best_ask"`
	LastTrade string `json:"last_trade"`
}

// Detect names the kind of a file from its first bytes, or from its name if
// the magic is not one of ours.
func Detect(name string, data []byte) (kind, by string) {
	magic := func(m string) bool { return len(data) >= len(m) && string(data[:len(m)]) == m }
	switch {
	case magic(journal.SegmentMagic):
		if len(data) >= journal.ArchiveHeaderOff+8 && string(data[journal.ArchiveHeaderOff:journal.ArchiveHeaderOff+8]) == journal.ArchiveMagic {
			return KindArchive, "magic"
		}
		return KindSegment, "magic"
	case magic(journal.IndexMagic):
		return KindIndex, "magic"
	case magic("MDJSNAP\x00"):
		return KindSnapshot, "magic"
	case magic("MDJRING\x00"):
		return KindRing, "magic"
	case magic(journal.CtlMagic):
		return KindControl, "magic"
	case magic("MDJPOS\x00\x00"):
		return KindPosition, "magic"
	}
	base := filepath.Base(name)
	switch {
	case strings.HasSuffix(base, journal.ArchiveExt):
		return KindArchive, "name"
	case strings.HasSuffix(base, journal.SegmentExt):
		return KindSegment, "name"
	case strings.HasSuffix(base, journal.IndexExt):
		return KindIndex, "name"
	case strings.HasSuffix(base, ".snap"):
		return KindSnapshot, "name"
	case base == journal.CtlFile:
		return KindControl, "name"
	case strings.HasSuffix(base, ".pos"):
		return KindPosition, "name"
	}
	return KindUnknown, "none"
}

// File reads and decodes the file at path. Archives additionally get their
// chunks decompressed and frames checked (Decode alone cannot: it has only
// bytes).
func File(path string, opts Options) (*FileReport, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	r := Decode(path, data, opts)
	if r.Kind == KindArchive && len(r.Problems) == 0 {
		r.archiveFrames(path, opts)
	}
	r.data = nil
	return r, nil
}

// Decode decodes a file held in memory. It never panics, whatever the bytes.
func Decode(name string, data []byte, opts Options) (r *FileReport) {
	r = &FileReport{File: name, Size: int64(len(data)), Problems: []Problem{}, data: data, hex: opts.Hex}
	defer func() {
		if e := recover(); e != nil { // a bug, not the input's fault: report, never crash
			r.problem(0, "other", fmt.Sprintf("internal error decoding this file: %v", e), "please report this as a bug")
		}
		r.data = nil
	}()
	r.Kind, r.Detected = Detect(name, data)
	switch r.Kind {
	case KindSegment:
		r.segment(data, opts, false)
	case KindArchive:
		r.segment(data, opts, true)
	case KindIndex:
		r.index(data, opts)
	case KindSnapshot:
		r.snapshot(data)
	case KindRing:
		r.ring(data)
	case KindControl:
		r.fields(data, ctlSpec)
		r.checkMagic(data, journal.CtlMagic)
		r.checkVersion(data, 8, journal.Version)
	case KindPosition:
		r.fields(data, posSpec)
		r.checkMagic(data, "MDJPOS\x00\x00")
		r.checkVersion(data, 8, journal.Version)
	default:
		r.Note = "not an mdjournal file (no known magic or name); first bytes shown"
		r.Summary = append(r.Summary, Field{Name: "head", Value: "\n" + HexBytes(data[:min(len(data), 128)], 0, 0)})
	}
	return r
}

func (r *FileReport) problem(off int64, kind, reason, hint string) {
	p := Problem{Severity: string(verify.Damage), File: r.File, Offset: off, Kind: kind, Reason: reason, Hint: hint}
	if r.hex {
		p.Hex = HexBytes(r.data, off, HexContext)
	}
	r.Problems = append(r.Problems, p)
}

func (r *FileReport) corrupt(err error, hint string) {
	if ce, ok := err.(*journal.CorruptionError); ok {
		r.problem(ce.Offset, verify.Kind(ce), ce.Reason, hint)
		return
	}
	if err != nil {
		r.problem(0, "other", err.Error(), hint)
	}
}

// spec describes one header field: where, how to render it, what it means.
type spec struct {
	off, size int
	name      string
	how       byte // 'm' magic, 'u' unsigned, 'i' signed, 't' time ns, 'x' hex, 'f' segment flags, 's' string
	meaning   string
}

func (r *FileReport) fields(data []byte, specs []spec) {
	for _, s := range specs {
		r.Fields = append(r.Fields, field(data, s))
	}
}

func field(data []byte, s spec) Field {
	f := Field{Offset: int64(s.off), Size: s.size, Name: s.name, Meaning: s.meaning}
	if s.off+s.size > len(data) {
		f.Value, f.Check = "(beyond end of file)", "missing"
		return f
	}
	b := data[s.off : s.off+s.size]
	var u uint64
	switch s.size {
	case 1:
		u = uint64(b[0])
	case 2:
		u = uint64(le.Uint16(b))
	case 4:
		u = uint64(le.Uint32(b))
	case 8:
		u = le.Uint64(b)
	}
	switch s.how {
	case 'm', 's':
		f.Value = quoteBytes(b)
	case 'u':
		f.Value = fmt.Sprintf("%d", u)
	case 'i':
		f.Value = fmt.Sprintf("%d", int64(u))
	case 't':
		f.Value = fmt.Sprintf("%d", int64(u))
		if t := TS(int64(u)); t != "" {
			f.Value += " (" + t + ")"
		}
	case 'x':
		f.Value = fmt.Sprintf("0x%0*x", s.size*2, u)
	case 'f':
		f.Value = fmt.Sprintf("%#x %s", u, flagNames(uint32(u)))
	}
	return f
}

func quoteBytes(b []byte) string {
	var sb strings.Builder
	sb.WriteByte('"')
	for _, c := range b {
		switch {
		case c == 0:
			sb.WriteString(`\0`)
		case c >= 0x20 && c < 0x7f && c != '"' && c != '\\':
			sb.WriteByte(c)
		default:
			fmt.Fprintf(&sb, `\x%02x`, c)
		}
	}
	sb.WriteByte('"')
	return sb.String()
}

func flagNames(f uint32) string {
	var n []string
	for _, x := range []struct {
		bit  uint32
		name string
	}{{journal.FlagActive, "ACTIVE"}, {journal.FlagSealed, "SEALED"}, {journal.FlagClean, "CLEAN"}} {
		if f&x.bit != 0 {
			n = append(n, x.name)
			f &^= x.bit
		}
	}
	if f != 0 {
		n = append(n, fmt.Sprintf("unknown bits %#x", f))
	}
	if len(n) == 0 {
		return "(none: prepared)"
	}
	return strings.Join(n, "|")
}

func (r *FileReport) set(name, check string) {
	for i := range r.Fields {
		if r.Fields[i].Name == name && r.Fields[i].Check == "" {
			r.Fields[i].Check = check
			return
		}
	}
}

func (r *FileReport) checkMagic(data []byte, magic string) bool {
	if len(data) < 8 || string(data[:8]) != magic {
		r.set("magic", "BAD: want "+quoteBytes([]byte(magic)))
		r.problem(0, "bad_magic", fmt.Sprintf("magic is %s, want %s", quoteBytes(data[:min(8, len(data))]), quoteBytes([]byte(magic))),
			"not this kind of file, or its first page is overwritten: compare with a healthy file of the same kind")
		return false
	}
	r.set("magic", "ok")
	return true
}

func (r *FileReport) checkVersion(data []byte, off int, want uint32) bool {
	if len(data) < off+4 {
		return false
	}
	if v := le.Uint32(data[off:]); v != want {
		r.set("version", fmt.Sprintf("BAD: this build reads %d", want))
		r.problem(int64(off), "version", fmt.Sprintf("format version %d, this build reads %d", v, want),
			"written by another mdjournal version, or damaged; there is no in-place upgrade (format.md §10)")
		return false
	}
	r.set("version", "ok")
	return true
}

func (r *FileReport) checkCRC(data []byte, name string, off, end int) bool {
	if len(data) < end || len(data) < off+4 {
		return false
	}
	got, want := journal.CRC32C(data[:end]), le.Uint32(data[off:])
	if got != want {
		r.set(name, fmt.Sprintf("BAD: computed %#08x", got))
		return false
	}
	r.set(name, "ok")
	return true
}

var segSpec = []spec{
	{0, 8, "magic", 'm', `"MDJSEG\0\0"`},
	{8, 4, "version", 'u', "format version = 2"},
	{12, 4, "header_size", 'u', "4096: frames start here"},
	{16, 8, "journal_id", 'x', "random identity shared by every file of one journal"},
	{24, 8, "segment_number", 'u', "equals the number in the file name"},
	{32, 8, "first_seq", 'u', "seq of the first frame; 0 while prepared"},
	{40, 8, "created", 't', "Unix ns when the file was created"},
	{48, 8, "capacity", 'u', "file size in bytes; multiple of 4096, ≥ 262144"},
	{56, 4, "header_crc", 'x', "CRC-32C of bytes [0,56)"},
	{64, 8, "write_cursor", 'u', "offset just past the last published frame (atomic)"},
	{128, 4, "flags", 'f', "bit 0 ACTIVE, bit 1 SEALED, bit 2 CLEAN"},
	{132, 4, "writer_pid", 'u', "PID of the writer that last opened the segment"},
	{136, 8, "durable_offset", 'u', "every byte below it is on stable storage"},
	{144, 8, "durable_seq", 'u', "seq of the last frame below durable_offset"},
	{152, 8, "last_seq", 'u', "seq of the last data frame, set when sealed"},
}

var archSpec = []spec{
	{4096, 8, "archive.magic", 'm', `"MDJZST\0\0"`},
	{4104, 4, "archive.version", 'u', "journal format version (2)"},
	{4108, 4, "archive.chunk_target", 'u', "raw bytes per chunk the writer aimed at"},
	{4112, 8, "archive.raw_size", 'u', "raw bytes [0, raw_size) represented = the segment's cursor"},
	{4120, 8, "archive.chunk_count", 'u', "chunks in the table"},
	{4128, 8, "archive.table_offset", 'u', "file offset of the chunk table (it ends the file)"},
	{4136, 4, "archive.level", 'u', "zstd encoder level (1 fastest … 4 best)"},
	{4140, 4, "archive.table_crc", 'x', "CRC-32C of the whole chunk table"},
	{4144, 4, "archive.header_crc", 'x', "CRC-32C of archive header bytes [0,48)"},
}

var idxSpec = []spec{
	{0, 8, "magic", 'm', `"MDJIDX\0\0"`},
	{8, 4, "version", 'u', "u32 = 2"},
	{12, 4, "stride", 'u', "u32 = 4096: a frame is indexed every ≥ stride bytes"},
	{16, 8, "journal_id", 'x', "as the segment"},
	{24, 8, "segment", 'u', "segment number"},
	{32, 8, "capacity", 'u', "entry slots = (segment capacity − 4096) / 4096 + 1"},
	{40, 4, "header_crc", 'x', "CRC-32C of [0,40)"},
	{64, 8, "count", 'u', "published entries (atomic)"},
}

var ctlSpec = []spec{
	{0, 8, "magic", 'm', `"MDJCTL\0\0"`},
	{8, 4, "version", 'u', "u32 = 2"},
	{16, 8, "journal_id", 'x', "journal identity"},
	{24, 8, "created", 't', "Unix ns"},
	{64, 4, "notify", 'u', "futex word, incremented by the writer on wake"},
	{68, 4, "waiters", 'u', "announced sleepers (stays high if a reader was SIGKILLed while waiting)"},
	{128, 8, "active_segment", 'u', "number of the active segment"},
	{136, 4, "writer_pid", 'u', "PID of the open writer, 0 after a clean close"},
}

var posSpec = []spec{
	{0, 8, "magic", 'm', `"MDJPOS\0\0"`},
	{8, 4, "version", 'u', "the journal format version"},
	{12, 4, "pid", 'u', "PID of the reader that last opened it"},
	{16, 8, "journal_id", 'x', "the journal it belongs to"},
	{64, 8, "seq", 'u', "seq of the last frame the reader returned; 0 = none yet"},
	{72, 8, "ts", 't', "that frame's timestamp (for lag in time)"},
}

var snapSpec = []spec{
	{0, 8, "magic", 'm', `"MDJSNAP\0"`},
	{8, 4, "version", 'u', "snapshot format version, 1"},
	{12, 4, "header_size", 'u', "4096"},
	{16, 8, "journal_id", 'x', "journal this snapshot mirrors"},
	{24, 4, "depth", 'u', "N, price levels kept per side, 1..256"},
	{28, 4, "slot_size", 'u', "S = roundup(96 + 32·N, 64)"},
	{32, 4, "capacity", 'u', "number of slots, 1..2^20"},
	{40, 8, "created", 't', "creation time, Unix ns"},
	{48, 8, "file_size", 'u', "roundup(4096 + capacity·S, 4096)"},
	{56, 4, "header_crc", 'x', "CRC-32C of bytes [0,56)"},
	{64, 8, "last_applied", 'u', "every journal seq ≤ it is in every slot (atomic)"},
	{128, 4, "writer_pid", 'u', "PID holding the file for writing, 0 after a clean close"},
}

var ringSpec = []spec{
	{0, 8, "magic", 'm', `"MDJRING\0"`},
	{8, 4, "version", 'u', "1"},
	{12, 4, "header_size", 'u', "4096: offset of the data area"},
	{16, 8, "capacity", 'u', "data area bytes, power of two in [64, 2^32]"},
	{24, 8, "created", 't', "creation time, Unix ns"},
	{32, 4, "header_crc", 'x', "CRC-32C of bytes [0,32)"},
	{128, 8, "tail", 'u', "producer position: bytes ever published"},
	{256, 8, "head", 'u', "consumer position: bytes ever released"},
	{384, 4, "data_seq", 'u', "futex word the consumer sleeps on"},
	{388, 4, "data_waiters", 'u', "announced consumer sleepers"},
	{512, 4, "space_seq", 'u', "futex word the producer sleeps on"},
	{516, 4, "space_waiters", 'u', "announced producer sleepers"},
	{640, 4, "producer_pid", 'u', "PID of the last producer to attach"},
	{644, 4, "producer_state", 'u', "0 none, 1 attached, 2 closed"},
	{648, 8, "producer_start", 'u', "producer start time (/proc/PID/stat field 22)"},
	{768, 4, "consumer_pid", 'u', "PID of the last consumer to attach"},
	{772, 4, "consumer_state", 'u', "0 none, 1 attached, 2 closed"},
	{776, 8, "consumer_start", 'u', "consumer start time"},
}

// segment decodes a raw segment, or the header part of an archive.
func (r *FileReport) segment(data []byte, opts Options, archived bool) {
	r.fields(data, segSpec)
	if archived {
		r.fields(data, archSpec)
	}
	if len(data) < journal.SegmentHeaderSize {
		r.problem(int64(len(data)), "truncated", fmt.Sprintf("file is %d bytes, shorter than the %d-byte header", len(data), journal.SegmentHeaderSize),
			"restore the segment from a backup; if it is the active one, journalctl recover extends it")
		return
	}
	hb := make([]byte, journal.SegmentHeaderSize) // aligned private copy: Header uses atomic loads
	copy(hb, data)
	h := journal.HeaderOf(hb)
	okMagic := r.checkMagic(data, journal.SegmentMagic)
	okVer := r.checkVersion(data, 8, journal.Version)
	r.checkCRC(data, "header_crc", 56, 56)
	if base := filepath.Base(r.File); okMagic {
		if n, ok := journal.ParseSegmentName(strings.TrimSuffix(base, ".zst")); ok && n != h.Number() {
			r.set("segment_number", fmt.Sprintf("BAD: the file name says %d", n))
		}
	}
	size := int64(len(data))
	if archived {
		size = int64(h.Capacity()) // Check compares capacity with the file: an archive is smaller by design
	}
	if err := h.Check(r.File, size); err != nil {
		if !errorsIs(err, journal.ErrBadMagic) && !errorsIs(err, journal.ErrVersion) { // those two are reported above
			hint := "the header is damaged: restore the segment from a backup"
			switch {
			case errorsIs(err, journal.ErrCursorRange):
				hint = "the cursor is only a hint: journalctl recover resets it from the frames when they are intact"
				r.set("write_cursor", "BAD: outside [4096, capacity] or unaligned")
			case errorsIs(err, journal.ErrTruncated):
				hint = "the file is shorter than its capacity: journalctl recover extends an active segment and cuts the torn frame; a sealed one must be restored"
			}
			r.corrupt(err, hint)
		}
	} else {
		r.set("write_cursor", "ok")
	}
	if !okMagic || !okVer {
		r.Note = "header damaged: frames are decoded anyway, assuming the remaining fields are right"
	}
	if archived {
		r.Note = "compressed segment: frames are checked by journalctl inspect FILE (decompressing), not from bytes alone"
		return
	}
	if !h.Active() || h.FirstSeq() == 0 {
		r.Summary = append(r.Summary, Field{Name: "state", Value: "prepared (reserved ahead of need; readers skip it)"})
		return
	}
	r.scanFrames(data, h, opts)
}

func errorsIs(err, target error) bool {
	ce, ok := err.(*journal.CorruptionError)
	return ok && ce.Err == target
}

// scanFrames walks the frames of a segment image like verify does, listing
// them if asked, and reports where and why the scan stops early.
func (r *FileReport) scanFrames(data []byte, h journal.Header, opts Options) {
	capacity := min(int64(h.Capacity()), int64(len(data)))
	if capacity < journal.SegmentHeaderSize {
		capacity = int64(len(data))
	}
	cursor := int64(h.Cursor())
	if cursor < journal.SegmentHeaderSize || cursor > capacity {
		cursor = capacity // cursor unusable: scan everything that is there
	}
	first := h.FirstSeq()
	var frames []FrameRow
	base := filepath.Base(r.File)
	res := journal.ScanSegment(r.File, data, journal.SegmentHeaderSize, first-1, capacity, func(f *journal.Frame) {
		if opts.Frames {
			frames = append(frames, FrameRow{File: base, Offset: f.Offset, Seq: f.Seq, TS: TS(f.TS), Type: f.Type.String(),
				Instr: f.Instrument, Size: journal.FrameHeaderSize + len(f.Payload), CRC: fmt.Sprintf("%08x", f.CRC)})
		}
	})
	r.Frames = frames
	state := "active"
	if h.Sealed() {
		state = "sealed"
	}
	r.Summary = append(r.Summary,
		Field{Name: "state", Value: state},
		Field{Name: "frames", Value: fmt.Sprintf("%d", res.Frames)},
		Field{Name: "seq", Value: fmt.Sprintf("%d..%d", first, res.LastSeq)},
		Field{Name: "first_ts", Value: TS(res.FirstTS)},
		Field{Name: "last_ts", Value: TS(res.LastTS)},
		Field{Name: "scan_end", Value: fmt.Sprintf("%d", res.End), Meaning: "offset just past the last valid frame (end marker included)"})
	if res.Err != nil {
		tail := journal.ExamineTail(data, res.End, capacity, res.LastSeq)
		hint := fmt.Sprintf("frames before offset %d are intact; ", res.End)
		if tail.Torn() && !h.Sealed() {
			hint += "nothing valid follows: a torn tail, which journalctl recover saves to .broken and cuts"
		} else if tail.ValidAt >= 0 {
			hint += fmt.Sprintf("a valid frame follows at offset %d: mid-log damage, never cut automatically (journalctl recover --truncate-at %s:%d saves and cuts it)", tail.ValidAt, base, res.End)
		} else {
			hint += fmt.Sprintf("in a sealed segment nothing is cut automatically (journalctl recover --truncate-at %s:%d)", base, res.End)
		}
		r.corrupt(res.Err, hint)
		return
	}
	end := res.End
	if end < cursor && !res.Sealed {
		r.problem(end, "bad_length", fmt.Sprintf("zeroed bytes below the write cursor %d (frame length 0)", cursor),
			fmt.Sprintf("published frames were zeroed: restore from a backup, or cut with journalctl recover --truncate-at %s:%d", base, end))
		return
	}
	if h.Sealed() && !res.Sealed {
		r.problem(end, "bad_header", "segment is flagged sealed but has no end marker", "see journalctl verify")
	}
	if end > int64(h.Cursor()) && !h.Sealed() {
		r.Summary = append(r.Summary, Field{Name: "unpublished", Value: fmt.Sprintf("%d bytes", end-int64(h.Cursor())),
			Meaning: "complete frames past the cursor: a writer died before publishing them; recovery keeps them"})
	}
	if tail := journal.ExamineTail(data, end, capacity, res.LastSeq); tail.NonZeroEnd > end {
		if tail.Torn() && !h.Sealed() {
			r.problem(end, "torn_tail", fmt.Sprintf("torn tail: %d non-zero bytes after the last valid frame", tail.NonZeroEnd-end),
				"journalctl recover saves them to .broken and cuts them (the next writer open does too)")
		} else {
			r.problem(end, "mid_log", fmt.Sprintf("%d non-zero bytes after the end of the data (valid frame at %d)", tail.NonZeroEnd-end, tail.ValidAt),
				"not a torn tail: never cut automatically")
		}
	}
}

// archiveFrames decompresses an archive and checks its frames.
func (r *FileReport) archiveFrames(path string, opts Options) {
	a, err := archive.Open(path)
	if err != nil {
		r.corrupt(err, "the archive is damaged: restore it from a backup (the raw segment was deleted after verification)")
		return
	}
	defer a.Close()
	for i, c := range a.Chunks {
		r.Chunks = append(r.Chunks, ChunkRow{I: i, RawOff: c.RawOff, RawLen: c.RawLen, CompOff: c.CompOff, CompLen: c.CompLen, CRC: fmt.Sprintf("%08x", c.CRC)})
	}
	img, err := a.ReadAll()
	if err != nil {
		r.corrupt(err, "a chunk is damaged: restore the archive from a backup")
		return
	}
	r.Note = ""
	r.hex = false // offsets are raw-image offsets: a hexdump of the compressed file would mislead
	h := journal.HeaderOf(img)
	r.scanFrames(img, h, opts)
}

// index decodes a sparse index and checks that its entries ascend.
func (r *FileReport) index(data []byte, opts Options) {
	r.fields(data, idxSpec)
	if len(data) < journal.IndexHeaderSize {
		r.problem(int64(len(data)), "truncated", fmt.Sprintf("index is %d bytes, shorter than its %d-byte header", len(data), journal.IndexHeaderSize),
			"indexes are derived data: journalctl recover rebuilds it")
		return
	}
	if !r.checkMagic(data, journal.IndexMagic) || !r.checkVersion(data, 8, journal.Version) {
		return
	}
	r.checkCRC(data, "header_crc", 40, 40)
	capacity, count := le.Uint64(data[32:]), le.Uint64(data[64:])
	fit := uint64(len(data)-journal.IndexHeaderSize) / journal.IndexEntrySize
	if count > capacity || count > fit {
		r.set("count", fmt.Sprintf("BAD: capacity %d, the file holds %d", capacity, fit))
		r.problem(64, "index_mismatch", fmt.Sprintf("count %d exceeds capacity %d or the file (%d entries fit)", count, capacity, fit),
			"journalctl recover rebuilds the index")
		count = min(count, capacity, fit)
	}
	var prev EntryRow
	for i := uint64(0); i < count; i++ {
		o := int64(journal.IndexHeaderSize) + int64(i)*journal.IndexEntrySize
		e := EntryRow{I: i, Offset: o, Seq: le.Uint64(data[o:]), TS: TS(int64(le.Uint64(data[o+8:]))), Frame: int64(le.Uint64(data[o+16:]))}
		if i > 0 && (e.Seq <= prev.Seq || e.Frame <= prev.Frame) {
			r.problem(o, "index_mismatch", fmt.Sprintf("entry %d (seq %d, offset %d) does not ascend after seq %d, offset %d", i, e.Seq, e.Frame, prev.Seq, prev.Frame),
				"journalctl recover rebuilds the index")
		}
		if opts.Frames {
			r.Entries = append(r.Entries, e)
		}
		prev = e
	}
	r.Summary = append(r.Summary, Field{Name: "entries", Value: fmt.Sprintf("%d of %d slots", count, capacity)})
}

// snapshot decodes a snapshot header and its written slots.
func (r *FileReport) snapshot(data []byte) {
	r.fields(data, snapSpec)
	if !r.checkMagic(data, "MDJSNAP\x00") || !r.checkVersion(data, 8, 1) {
		return
	}
	if len(data) < 4096 {
		r.problem(int64(len(data)), "truncated", "file is shorter than the 4096-byte header", "snapshots are derived data: delete it; the maintainer recreates it")
		return
	}
	r.checkCRC(data, "header_crc", 56, 56)
	depth, slotSize, capacity := le.Uint32(data[24:]), le.Uint32(data[28:]), le.Uint32(data[32:])
	if depth < 1 || depth > 256 || slotSize != uint32((96+32*int(depth)+63)&^63) || capacity < 1 || capacity > 1<<20 {
		r.problem(24, "bad_header", fmt.Sprintf("depth %d, slot size %d, capacity %d do not fit together", depth, slotSize, capacity),
			"snapshots are derived data: delete it; the maintainer recreates it")
		return
	}
	used := 0
	for i := uint32(0); i < capacity; i++ {
		o := int64(4096) + int64(i)*int64(slotSize)
		if o+int64(slotSize) > int64(len(data)) {
			r.problem(int64(len(data)), "truncated", fmt.Sprintf("file ends inside slot %d", i), "delete it; the maintainer recreates it")
			break
		}
		s := data[o : o+int64(slotSize)]
		lock := le.Uint64(s)
		if lock == 0 {
			continue
		}
		used++
		scale := int32(le.Uint32(s[28:]))
		row := SlotRow{Slot: i, Offset: o, Lock: lock, Seq: le.Uint64(s[8:]), TS: TS(int64(le.Uint64(s[16:]))),
			Symbol: string(bytes.TrimRight(s[32:48], "\x00")), Scale: scale, Bids: le.Uint32(s[48:]), Asks: le.Uint32(s[52:])}
		if row.Bids > 0 && row.Bids <= depth {
			row.BestBid = fmt.Sprintf("%s x %d", journal.FormatPrice(int64(le.Uint64(s[96:])), scale), int64(le.Uint64(s[104:])))
		}
		if row.Asks > 0 && row.Asks <= depth {
			a := 96 + 16*int(depth)
			row.BestAsk = fmt.Sprintf("%s x %d", journal.FormatPrice(int64(le.Uint64(s[a:])), scale), int64(le.Uint64(s[a+8:])))
		}
		if q := int64(le.Uint64(s[64:])); q != 0 {
			row.LastTrade = fmt.Sprintf("%s x %d at %s", journal.FormatPrice(int64(le.Uint64(s[56:])), scale), q, TS(int64(le.Uint64(s[72:]))))
		}
		if lock%2 == 1 {
			r.problem(o, "other", fmt.Sprintf("slot %d seqlock is odd (%d): a writer died mid-publish", i, lock), "the next snapshot writer open empties it; rebuild from the journal")
		}
		if row.Bids > depth || row.Asks > depth {
			r.problem(o+48, "bad_header", fmt.Sprintf("slot %d counts %d/%d exceed depth %d", i, row.Bids, row.Asks, depth), "delete the snapshot; it is rebuilt from the journal")
		}
		r.Slots = append(r.Slots, row)
	}
	r.Summary = append(r.Summary, Field{Name: "slots_written", Value: fmt.Sprintf("%d of %d", used, capacity)})
}

// ring decodes a ring header and its positions (format.md §12 validation).
func (r *FileReport) ring(data []byte) {
	r.fields(data, ringSpec)
	if !r.checkMagic(data, "MDJRING\x00") || !r.checkVersion(data, 8, 1) {
		return
	}
	if len(data) < 4096 {
		r.problem(int64(len(data)), "truncated", "file is shorter than the 4096-byte header", "re-create the ring (rings hold nothing durable)")
		return
	}
	r.checkCRC(data, "header_crc", 32, 32)
	c, tail, head := le.Uint64(data[16:]), le.Uint64(data[128:]), le.Uint64(data[256:])
	if c < 64 || c > 1<<32 || c&(c-1) != 0 {
		r.problem(16, "bad_header", fmt.Sprintf("capacity %d is not a power of two in [64, 2^32]", c), "re-create the ring")
		return
	}
	if int64(len(data)) < 4096+int64(c) {
		r.problem(int64(len(data)), "truncated", fmt.Sprintf("file is %d bytes, header + capacity need %d", len(data), 4096+c), "re-create the ring")
	}
	if tail%8 != 0 || head%8 != 0 || head > tail || tail-head > c {
		r.problem(256, "bad_header", fmt.Sprintf("positions head %d, tail %d are not within one capacity (%d) with 8-byte alignment", head, tail, c), "re-create the ring")
		return
	}
	r.Summary = append(r.Summary, Field{Name: "unread", Value: fmt.Sprintf("%d bytes", tail-head)},
		Field{Name: "free", Value: fmt.Sprintf("%d bytes", c-(tail-head))})
}
