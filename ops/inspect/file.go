package inspect

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"

	"github.com/mdjournal/mdjournal/internal/archive"
	"github.com/mdjournal/mdjournal/internal/fsx"
	"github.com/mdjournal/mdjournal/journal"
	"github.com/mdjournal/mdjournal/ops/verify"
	"github.com/mdjournal/mdjournal/ring"
	"github.com/mdjournal/mdjournal/snapshot"
	"github.com/mdjournal/mdjournal/stats"
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
	KindStats    = "stats"           // STAGE.stats, §15
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

// MaxFileSize bounds what File reads into memory: the largest segment plus
// its header, or a snapshot of the largest capacity.
const MaxFileSize = 2 << 30

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
	case magic(snapshot.Magic):
		return KindSnapshot, "magic"
	case magic(ring.Magic):
		return KindRing, "magic"
	case magic(stats.Magic):
		return KindStats, "magic"
	case magic(journal.CtlMagic):
		return KindControl, "magic"
	case magic(journal.PosMagic):
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
	case strings.HasSuffix(base, stats.Ext):
		return KindStats, "name"
	}
	return KindUnknown, "none"
}

// File reads and decodes the file at path. Archives additionally get their
// chunks decompressed and frames checked (Decode alone cannot: it has only
// bytes).
func File(path string, opts Options) (*FileReport, error) {
	// The operator named this file: a symlink is followed, but what it
	// leads to must be a regular file (a FIFO would block the read forever,
	// a device would never end).
	real, err := filepath.EvalSymlinks(path)
	if err != nil {
		return nil, err
	}
	f, err := fsx.OpenRead(real)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if st.Size() > MaxFileSize {
		return nil, fmt.Errorf("%s is %d bytes: inspect reads files of at most %d bytes (a segment is at most 1 GiB)", path, st.Size(), int64(MaxFileSize))
	}
	data := make([]byte, st.Size())
	if _, err := io.ReadFull(f, data); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
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
		r.fields(data, journal.CtlLayout)
		r.checkMagic(data, journal.CtlMagic)
		r.checkVersion(data, 8, journal.Version)
	case KindPosition:
		r.fields(data, journal.PositionLayout)
		r.checkMagic(data, journal.PosMagic)
		r.checkVersion(data, 8, journal.Version)
	case KindStats:
		r.fields(data, stats.HeaderLayout)
		if r.checkMagic(data, stats.Magic) && r.checkVersion(data, 8, stats.Version) && len(data) < stats.FileSize {
			r.problem(int64(len(data)), "truncated", fmt.Sprintf("file is %d bytes, a stats file is %d", len(data), stats.FileSize), "the stage's next start rewrites it")
		}
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

// layoutFields renders the fields of a fixed layout found at base in data
// (journal.Layouts and snapshot.HeaderLayout: the one declaration of each
// layout). Reserved fields are shown only when they are not zero.
func layoutFields(data []byte, base int, l journal.Layout, prefix string) []Field {
	var out []Field
	for _, lf := range l.Fields {
		off := base + lf.Off
		f := Field{Offset: int64(off), Size: lf.Size, Name: prefix + lf.Name, Meaning: lf.Meaning}
		if off+lf.Size > len(data) {
			f.Value, f.Check = "(beyond end of file)", "missing"
			out = append(out, f)
			continue
		}
		b := data[off : off+lf.Size]
		if lf.Kind == journal.KindReserved {
			if !journal.AllZero(b) {
				f.Value, f.Check = fmt.Sprintf("%d non-zero bytes", lf.Size-bytes.Count(b, []byte{0})), "BAD: reserved bytes are zero"
				out = append(out, f)
			}
			continue
		}
		var u uint64
		switch lf.Size {
		case 1:
			u = uint64(b[0])
		case 2:
			u = uint64(le.Uint16(b))
		case 4:
			u = uint64(le.Uint32(b))
		case 8:
			u = le.Uint64(b)
		}
		switch lf.Kind {
		case journal.KindBytes:
			switch t := bytes.TrimRight(b, "\x00"); {
			case lf.Size <= 16:
				f.Value = quoteBytes(b)
			case len(t) > 0 && printableASCII(t): // a NUL-padded name
				f.Value = quoteBytes(t)
			default:
				f.Value = fmt.Sprintf("%d bytes", lf.Size)
			}
		case journal.KindU16, journal.KindU32, journal.KindU64:
			f.Value = fmt.Sprintf("%d", u)
		case journal.KindI64:
			f.Value = fmt.Sprintf("%d", int64(u))
		case journal.KindTime:
			f.Value = fmt.Sprintf("%d", int64(u))
			if t := TS(int64(u)); t != "" {
				f.Value += " (" + t + ")"
			}
		case journal.KindHex64:
			f.Value = fmt.Sprintf("0x%016x", u)
		case journal.KindCRC:
			f.Value = fmt.Sprintf("0x%08x", u)
		}
		out = append(out, f)
	}
	return out
}

func (r *FileReport) fields(data []byte, l journal.Layout) {
	r.Fields = append(r.Fields, layoutFields(data, 0, l, "")...)
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

func stateFlagNames(f uint32) string {
	var n []string
	for _, x := range []struct {
		bit  uint32
		name string
	}{{journal.StateSealed, "SEALED"}, {journal.StateClean, "CLEAN"}} {
		if f&x.bit != 0 {
			n = append(n, x.name)
			f &^= x.bit
		}
	}
	if f != 0 {
		n = append(n, fmt.Sprintf("unknown bits %#x", f))
	}
	if len(n) == 0 {
		return "(none)"
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

// segment decodes a raw segment, or the header part of an archive: the
// header field by field (both state records too), then its verdict
// (journal.Assess, the writer's and verify's own judge).
func (r *FileReport) segment(data []byte, opts Options, archived bool) {
	r.fields(data, journal.SegmentHeaderLayout)
	for i, off := range []int{journal.SegOffStateA, journal.SegOffStateB} {
		r.Fields = append(r.Fields, layoutFields(data, off, journal.StateLayout, []string{"state_a.", "state_b."}[i])...)
	}
	if archived {
		r.Fields = append(r.Fields, layoutFields(data, journal.ArchiveHeaderOff, journal.ArchiveHeaderLayout, "archive.")...)
	}
	if len(data) < journal.SegmentHeaderSize {
		r.problem(int64(len(data)), "truncated", fmt.Sprintf("file is %d bytes, shorter than the %d-byte header", len(data), journal.SegmentHeaderSize),
			"if it is the last segment, journalctl recover moves it aside; otherwise restore it from a backup")
		return
	}
	hb := make([]byte, journal.SegmentHeaderSize) // aligned private copy: Header uses atomic loads
	copy(hb, data)
	h := journal.HeaderOf(hb)
	okMagic := r.checkMagic(data, journal.SegmentMagic)
	okVer := r.checkVersion(data, 8, journal.Version)
	r.checkCRC(data, "header_crc", 60, 60)
	a, b, aOK, bOK := h.StateRecords()
	cur, slot, stOK := h.State()
	for i, rec := range []struct {
		st journal.State
		ok bool
	}{{a, aOK}, {b, bOK}} {
		name := []string{"state_a.", "state_b."}[i]
		switch {
		case rec.ok && stOK && slot == i:
			r.set(name+"crc", "ok (current)")
		case rec.ok:
			r.set(name+"crc", "ok (previous)")
		default:
			r.set(name+"crc", "not a valid record (prepared, torn or damaged)")
		}
		if rec.ok {
			r.set(name+"flags", stateFlagNames(rec.st.Flags))
		}
	}
	n := uint64(0)
	if base := filepath.Base(r.File); okMagic {
		if m, ok := journal.ParseSegmentName(strings.TrimSuffix(base, ".zst")); ok {
			n = m
		}
	}
	size := int64(len(data))
	if archived {
		size = int64(h.Capacity()) // Check compares capacity with the file: an archive is smaller by design
	}
	if err := h.Check(r.File, size, n); err != nil {
		if !errorsIs(err, journal.ErrBadMagic) && !errorsIs(err, journal.ErrVersion) { // those two are reported above
			hint := "the header is damaged: restore the segment from a backup"
			if errorsIs(err, journal.ErrTruncated) {
				hint = "the file is shorter than its capacity: past the durable checkpoint, the next writer open (or journalctl recover) extends it and saves the cut frame; below it, restore the segment"
			}
			r.corrupt(err, hint)
		}
	}
	if h.CursorOK() {
		r.set("write_cursor", "ok (a hint)")
	} else {
		r.set("write_cursor", "BAD: outside [4096, capacity] or unaligned (a hint: recovery resets it)")
	}
	if !okMagic || !okVer {
		r.Note = "header damaged: frames are decoded anyway, assuming the remaining fields are right"
	}
	if archived {
		r.Note = "compressed segment: frames are checked by journalctl inspect FILE (decompressing), not from bytes alone"
		return
	}
	if h.Prepared() {
		state := "prepared (reserved ahead of need; readers skip it)"
		if !journal.AllZero(data[journal.SegmentHeaderSize:]) {
			state = "not activated, but holds bytes: the next writer open moves it aside"
		}
		r.Summary = append(r.Summary, Field{Name: "state", Value: state})
		return
	}
	r.Summary = append(r.Summary, Field{Name: "epoch", Value: fmt.Sprintf("%d", h.Epoch())})
	if stOK {
		r.Summary = append(r.Summary, Field{Name: "clean", Value: fmt.Sprintf("%v", cur.Clean()),
			Meaning: "what the state record says: the last writer closed this segment cleanly"})
	}
	r.scanFrames(data, h, opts, archived)
}

func errorsIs(err, target error) bool {
	ce, ok := err.(*journal.CorruptionError)
	return ok && ce.Err == target
}

// scanFrames judges a segment image as the writer's recovery and verify do
// (journal.Assess, every frame read), listing frames if asked. A single
// file is judged as a last segment unless its state says sealed.
func (r *FileReport) scanFrames(data []byte, h journal.Header, opts Options, archived bool) {
	first := h.FirstSeq()
	st, _, _ := h.State()
	var frames []FrameRow
	base := filepath.Base(r.File)
	v := journal.Assess(r.File, data, journal.AssessOptions{Full: true, Last: !st.Sealed(), Archived: archived, Visit: func(f *journal.Frame) {
		if opts.Frames {
			frames = append(frames, FrameRow{File: base, Offset: f.Offset, Seq: f.Seq, TS: TS(f.TS), Type: f.Type.String(),
				Instr: f.Instrument, Flags: f.Flags, Size: int(f.Size), CRC: fmt.Sprintf("%08x", f.CRC)})
		}
	}})
	r.Frames = frames
	state := "active"
	if v.Sealed {
		state = "sealed"
	}
	r.Summary = append(r.Summary,
		Field{Name: "state", Value: state},
		Field{Name: "frames", Value: fmt.Sprintf("%d", v.Frames)},
		Field{Name: "seq", Value: fmt.Sprintf("%d..%d", first, v.LastSeq)},
		Field{Name: "first_ts", Value: TS(v.FirstTS)},
		Field{Name: "last_ts", Value: TS(v.LastTS)},
		Field{Name: "scan_end", Value: fmt.Sprintf("%d", v.End), Meaning: "offset just past the last valid frame (end marker included)"},
		Field{Name: "verdict", Value: v.Kind.String(), Meaning: "journal.Assess: what the writer's recovery, verify and recover decide"})
	if c := int64(h.Cursor()); c > v.End && h.CursorOK() {
		r.Summary = append(r.Summary, Field{Name: "cursor_past_frames", Value: fmt.Sprintf("%d bytes", c-v.End),
			Meaning: "the cursor claims more than the frames hold: published but not durable when power was lost"})
	} else if c < v.End && !v.Sealed {
		r.Summary = append(r.Summary, Field{Name: "frames_past_cursor", Value: fmt.Sprintf("%d bytes", v.End-c),
			Meaning: "published frames past the cursor (it is advanced after the commit words): recovery keeps them"})
	}
	switch v.Kind {
	case journal.TornTail:
		r.corrupt(v.Err, "past the durable checkpoint, nothing valid follows: the next writer open (or journalctl recover) saves the bytes to .broken and cuts them")
	case journal.Damage:
		hint := "never cut automatically: restore the segment from a backup"
		if v.ValidAfter >= 0 || v.Err.Offset >= journal.SegmentHeaderSize {
			hint += fmt.Sprintf(", or cut explicitly with journalctl recover --truncate-at %s:%d (the bytes are saved, later segments moved aside)", base, v.End)
		}
		r.corrupt(v.Err, hint)
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
	r.scanFrames(img, journal.HeaderOf(img), opts, true)
}

// index decodes a sparse index and checks that its entries ascend.
func (r *FileReport) index(data []byte, opts Options) {
	r.fields(data, journal.IndexHeaderLayout)
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
	r.fields(data, snapshot.HeaderLayout)
	if !r.checkMagic(data, snapshot.Magic) || !r.checkVersion(data, 8, snapshot.Version) {
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

// ring decodes a ring header, both side blocks, and judges it as
// ring.Open does (format.md §12).
func (r *FileReport) ring(data []byte) {
	r.Fields = append(r.Fields, layoutFields(data, 0, ring.HeaderLayout, "")...)
	r.Fields = append(r.Fields, layoutFields(data, ring.OffProducer, ring.SideLayout, "producer.")...)
	r.Fields = append(r.Fields, layoutFields(data, ring.OffConsumer, ring.SideLayout, "consumer.")...)
	if err := ring.CheckHeader(r.File, data); err != nil {
		off, kind := int64(0), verify.Kind(err)
		var ce *journal.CorruptionError
		if errors.As(err, &ce) {
			off = ce.Offset
		}
		for _, k := range []struct {
			err  error
			name string
		}{{ring.ErrBadMagic, "bad_magic"}, {ring.ErrVersion, "version"}, {ring.ErrChecksum, "checksum"}} {
			if errors.Is(err, k.err) {
				kind = k.name
			}
		}
		if kind == "other" {
			kind = "bad_header"
		}
		r.problem(off, kind, err.Error(), "re-create the ring (rings hold nothing durable): stop its processes and remove the file")
		return
	}
	c, tail, head := le.Uint64(data[16:]), le.Uint64(data[ring.OffTail:]), le.Uint64(data[ring.OffHead:])
	r.Summary = append(r.Summary, Field{Name: "unread", Value: fmt.Sprintf("%d bytes", tail-head)},
		Field{Name: "free", Value: fmt.Sprintf("%d bytes", c-(tail-head))})
}

func printableASCII(b []byte) bool {
	for _, c := range b {
		if c < 0x20 || c > 0x7e {
			return false
		}
	}
	return true
}
