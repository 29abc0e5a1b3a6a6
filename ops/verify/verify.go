// Package verify checks a whole journal directory offline: every segment
// header, every frame's length, checksum, payload size and sequence number,
// sequence continuity across segments, the sparse indexes against the data,
// and what lies past each write cursor. It backs `journalctl verify` and
// `journalctl inspect`, and it never panics on any input: every finding is a
// *journal.CorruptionError naming file, offset and reason.
package verify

import (
	"errors"
	"fmt"
	"os"
	"runtime/debug"

	"github.com/mdjournal/mdjournal/internal/archive"
	"github.com/mdjournal/mdjournal/internal/flock"
	"github.com/mdjournal/mdjournal/internal/mmap"
	"github.com/mdjournal/mdjournal/journal"

	"path/filepath"
)

// Severity of a finding.
type Severity string

const (
	// Damage is data loss or corruption that no automatic repair may cut:
	// bad frames below a cursor, damage in a sealed segment, gaps, missing
	// segments, bad headers.
	Damage Severity = "damage"
	// Torn is an unfinished write at the end of the active segment of a
	// journal with no live writer: the next writer Open (or journalctl
	// recover) saves it to SEGMENT.broken and cuts it.
	Torn Severity = "torn"
	// Index is a sparse index that disagrees with its segment (derived data:
	// rebuilt by recover).
	Index Severity = "index"
)

// Problem is one finding.
type Problem struct {
	Severity Severity
	Err      *journal.CorruptionError
}

// Segment summarises one segment file.
type Segment struct {
	Path      string
	Number    uint64
	State     string // active, sealed, prepared, damaged
	FirstSeq  uint64
	LastSeq   uint64
	Frames    int64
	FirstTS   int64
	LastTS    int64
	Used      int64 // bytes below the write cursor
	Capacity  int64
	WriterPID uint32
	Durable   uint64 // durable seq checkpoint
	// headerLast is the header's last_seq of a sealed segment: where the
	// next segment must continue even when damage stopped the scan early
	// (so one damaged frame is not reported twice, once as a gap).
	headerLast uint64
	// Visit data is gathered only when a visitor is set on Options.
}

// Report is the result of verifying a journal.
type Report struct {
	Dir        string
	JournalID  uint64
	Segments   []Segment
	Frames     int64
	FirstSeq   uint64
	LastSeq    uint64
	WriterPID  int  // PID in the lock file (0 if none)
	WriterLive bool // the lock is held now
	Problems   []Problem
}

// OK reports whether nothing was found.
func (r *Report) OK() bool { return len(r.Problems) == 0 }

func (r *Report) add(sev Severity, err error) {
	var ce *journal.CorruptionError
	if !errors.As(err, &ce) {
		ce = &journal.CorruptionError{File: r.Dir, Reason: err.Error(), Err: journal.ErrBadHeader}
	}
	r.Problems = append(r.Problems, Problem{Severity: sev, Err: ce})
}

// Options tune Journal.
type Options struct {
	// Visit, if set, is called for every valid data frame in order. The
	// frame's Segment and Offset say where it lies (inspect lists frames and
	// locates gaps with them).
	Visit func(f *journal.Frame)
	// OwnLock says the caller holds the writer lock itself (journalctl
	// recover does, so no writer starts while it repairs): the lock then
	// does not count as a live writer, and torn tails are classified as such.
	OwnLock bool
}

// visit wraps Visit so that each frame carries its segment number: the
// scanner only knows offsets.
func (o Options) visit(n uint64) func(*journal.Frame) {
	if o.Visit == nil {
		return nil
	}
	return func(f *journal.Frame) {
		f.Segment = n
		o.Visit(f)
	}
}

// Kind names a corruption sentinel with a stable identifier, used in every
// JSON output (verify, inspect, recover) so scripts can match on it.
func Kind(err error) string {
	for _, k := range []struct {
		err  error
		name string
	}{
		{journal.ErrBadMagic, "bad_magic"}, {journal.ErrVersion, "version"}, {journal.ErrBadHeader, "bad_header"},
		{journal.ErrChecksum, "checksum"}, {journal.ErrBadLength, "bad_length"}, {journal.ErrCursorRange, "cursor_range"},
		{journal.ErrSequence, "sequence"}, {journal.ErrMissing, "missing"}, {journal.ErrTruncated, "truncated"},
		{journal.ErrMidLog, "mid_log"}, {journal.ErrTornTail, "torn_tail"}, {journal.ErrIndexMismatch, "index_mismatch"},
		{ErrSnapshot, "snapshot_mismatch"},
	} {
		if errors.Is(err, k.err) {
			return k.name
		}
	}
	return "other"
}

// Journal verifies the journal in dir.
func Journal(dir string, opts Options) (*Report, error) {
	nums, err := journal.ListSegments(dir)
	if err != nil {
		return nil, err
	}
	if len(nums) == 0 {
		return nil, fmt.Errorf("%w: %s has no segment files", journal.ErrNotFound, dir)
	}
	rep := &Report{Dir: dir}
	if pid, held, err := flock.Holder(filepath.Join(dir, journal.LockFile)); err == nil {
		rep.WriterPID, rep.WriterLive = pid, held && !opts.OwnLock
	}
	var prevLast uint64
	var prevNum uint64
	for i, n := range nums {
		if i > 0 && n != prevNum+1 {
			rep.add(Damage, journal.Corrupt(journal.SegmentPath(dir, prevNum+1), 0, journal.ErrMissing,
				"segment %d is missing (have %d and %d)", prevNum+1, prevNum, n))
			prevLast = 0
		}
		prevNum = n
		seg := rep.segment(dir, n, prevLast, i == len(nums)-1 || nextIsPrepared(dir, nums, i), opts)
		rep.Segments = append(rep.Segments, seg)
		if seg.State == "prepared" {
			continue
		}
		if seg.Frames > 0 || seg.State == "sealed" {
			if rep.FirstSeq == 0 {
				rep.FirstSeq = seg.FirstSeq
			}
			rep.LastSeq = seg.LastSeq
		}
		if rep.JournalID == 0 {
			rep.JournalID = segJournalID(dir, n)
		}
		rep.Frames += seg.Frames
		prevLast = seg.LastSeq
		if seg.State == "damaged" {
			prevLast = seg.headerLast // 0 (no check) unless the header says where it ended
		}
	}
	return rep, nil
}

func nextIsPrepared(dir string, nums []uint64, i int) bool {
	for _, n := range nums[i+1:] {
		h, err := journal.ReadHeader(dir, n)
		if err != nil || h.Active() {
			return false
		}
	}
	return true
}

func segJournalID(dir string, n uint64) uint64 {
	h, err := journal.ReadHeader(dir, n)
	if err != nil {
		return 0
	}
	return h.JournalID()
}

// segment verifies one segment file. last says whether it is the last active
// segment (the only one allowed to be unsealed).
func (rep *Report) segment(dir string, n uint64, prevLast uint64, last bool, opts Options) (seg Segment) {
	path, archived := journal.SegmentFile(dir, n)
	seg = Segment{Path: path, Number: n, State: "damaged"}
	if archived {
		return rep.archivedSegment(dir, n, path, prevLast, opts)
	}
	f, err := os.Open(path)
	if err != nil {
		rep.add(Damage, journal.Corrupt(path, 0, journal.ErrMissing, "cannot open: %v", err))
		return seg
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		rep.add(Damage, err)
		return seg
	}
	size := st.Size()
	if size < journal.SegmentHeaderSize {
		rep.add(Damage, journal.Corrupt(path, size, journal.ErrTruncated, "file is %d bytes, shorter than the %d-byte header", size, journal.SegmentHeaderSize))
		return seg
	}
	m, err := mmap.Map(f, int(size), false)
	if err != nil {
		rep.add(Damage, err)
		return seg
	}
	defer mmap.Unmap(m)
	defer func(old bool) {
		debug.SetPanicOnFault(old)
		if e := recover(); e != nil {
			rep.add(Damage, journal.Corrupt(path, 0, journal.ErrTruncated, "file changed under verify: %v", e))
		}
	}(debug.SetPanicOnFault(true))

	h := journal.HeaderOf(m)
	seg.Capacity = int64(h.Capacity())
	seg.WriterPID = h.WriterPID()
	seg.Durable = h.DurableSeq()
	if err := h.Check(path, size); err != nil {
		var ce *journal.CorruptionError
		if !errors.As(err, &ce) || !errors.Is(err, journal.ErrTruncated) {
			rep.add(Damage, err)
			return seg
		}
		// Truncated: verify what is there, then report the cut.
		rep.add(severityForCut(h, last, rep.WriterLive), err)
		seg.Capacity = size
	}
	if !h.Active() {
		seg.State = "prepared"
		return seg
	}
	seg.FirstSeq = h.FirstSeq()
	if h.Sealed() {
		seg.headerLast = h.LastSeq()
	}
	if prevLast != 0 && seg.FirstSeq != prevLast+1 {
		rep.add(Damage, journal.Corrupt(path, 32, journal.ErrSequence, "first seq %d does not follow the previous segment's last seq %d", seg.FirstSeq, prevLast))
	}
	cursor := min(int64(h.Cursor()), seg.Capacity)
	res := journal.ScanSegment(path, m, journal.SegmentHeaderSize, seg.FirstSeq-1, cursor, opts.visit(n))
	seg.Frames, seg.LastSeq, seg.FirstTS, seg.LastTS, seg.Used = res.Frames, res.LastSeq, res.FirstTS, res.LastTS, cursor
	sealed := h.Sealed()
	if res.Err == nil && !res.Sealed && res.End < cursor {
		// A zero length word below the cursor: published bytes were zeroed.
		res.Err = journal.Corrupt(path, res.End, journal.ErrBadLength, "zeroed bytes below the write cursor %d (frame length 0)", cursor)
	}
	switch {
	case res.Err != nil:
		// Damage below the cursor: published bytes are bad. Torn only if this
		// is the active tail, nothing valid follows, and no writer is live.
		// Torn only past the durability checkpoint: bytes the writer had
		// made durable cannot be an unfinished write.
		tail := journal.ExamineTail(m, res.End, seg.Capacity, res.LastSeq)
		if !sealed && last && tail.Torn() && !rep.WriterLive && res.End >= int64(h.DurableOffset()) {
			rep.add(Torn, journal.Corrupt(path, res.End, journal.ErrTornTail,
				"torn tail: %s; %d bytes from here are unfinished (journalctl recover saves and cuts them)", res.Err.Reason, tail.NonZeroEnd-res.End))
		} else {
			rep.add(Damage, res.Err)
		}
	case sealed && !res.Sealed:
		rep.add(Damage, journal.Corrupt(path, res.End, journal.ErrBadHeader, "segment is flagged sealed but has no end marker before its cursor %d", cursor))
	case res.Sealed && res.End != cursor:
		rep.add(Damage, journal.Corrupt(path, res.End, journal.ErrMidLog, "%d bytes after the end marker below the cursor", cursor-res.End))
	case !sealed && !last:
		rep.add(Damage, journal.Corrupt(path, journal.SegOffCursor, journal.ErrBadHeader, "segment %d is not sealed but a later segment is active", n))
	}
	if res.Err == nil && !rep.WriterLive && !sealed {
		// Past the cursor of an idle journal: valid unpublished frames are
		// fine (recovery keeps them); other bytes are a torn tail.
		after := journal.ScanSegment(path, m, cursor, res.LastSeq, seg.Capacity, nil)
		tail := journal.ExamineTail(m, after.End, seg.Capacity, after.LastSeq)
		if tail.NonZeroEnd > after.End {
			sev, sent, what := Torn, journal.ErrTornTail, "torn tail"
			if !tail.Torn() {
				sev, sent, what = Damage, journal.ErrMidLog, fmt.Sprintf("damage followed by a valid frame at offset %d", tail.ValidAt)
			}
			rep.add(sev, journal.Corrupt(path, after.End, sent, "%s past the write cursor %d: %d bytes", what, cursor, tail.NonZeroEnd-after.End))
		}
	}
	if sealed && res.Err == nil {
		if zEnd := journal.ExamineTail(m, cursor, seg.Capacity, res.LastSeq).NonZeroEnd; zEnd > cursor {
			rep.add(Damage, journal.Corrupt(path, cursor, journal.ErrMidLog, "%d non-zero bytes after the end of a sealed segment", zEnd-cursor))
		}
	}
	switch {
	case sealed:
		seg.State = "sealed"
	default:
		seg.State = "active"
	}
	for _, p := range rep.Problems {
		if p.Err.File == path && p.Severity == Damage {
			seg.State = "damaged"
		}
	}
	rep.checkIndex(dir, n, h, m[:cursor])
	return seg
}

func severityForCut(h journal.Header, last, live bool) Severity {
	if last && !h.Sealed() && !live {
		return Torn
	}
	return Damage
}

// checkIndex compares the sparse index with the data (like kafka-dump-log's
// index sanity check): each entry must point at a valid frame with the same
// seq and timestamp, entries must ascend, and the count must fit.
func (rep *Report) checkIndex(dir string, n uint64, h journal.Header, data []byte) {
	path := journal.IndexPath(dir, n)
	f, err := os.Open(path)
	if err != nil {
		rep.add(Index, journal.Corrupt(path, 0, journal.ErrIndexMismatch, "index missing (%v); recover rebuilds it", err))
		return
	}
	defer f.Close()
	st, _ := f.Stat()
	if st.Size() < journal.IndexHeaderSize {
		rep.add(Index, journal.Corrupt(path, 0, journal.ErrTruncated, "index is %d bytes", st.Size()))
		return
	}
	m, err := mmap.Map(f, int(st.Size()), false)
	if err != nil {
		rep.add(Index, err)
		return
	}
	defer mmap.Unmap(m)
	x := journal.IndexOf(m)
	if err := x.Check(path, h.JournalID(), n); err != nil {
		rep.add(Index, err)
		return
	}
	var prev journal.IndexEntry
	for i := uint64(0); i < x.Count(); i++ {
		e := x.Entry(i)
		off := int64(journal.IndexHeaderSize) + int64(i)*journal.IndexEntrySize
		if i > 0 && (e.Seq <= prev.Seq || e.Offset <= prev.Offset) {
			rep.add(Index, journal.Corrupt(path, off, journal.ErrIndexMismatch, "entry %d (seq %d, offset %d) does not ascend after seq %d, offset %d", i, e.Seq, e.Offset, prev.Seq, prev.Offset))
			return
		}
		if e.Offset < journal.SegmentHeaderSize || e.Offset >= int64(len(data)) {
			rep.add(Index, journal.Corrupt(path, off, journal.ErrIndexMismatch, "entry %d points at offset %d, outside the segment's data [%d,%d)", i, e.Offset, journal.SegmentHeaderSize, len(data)))
			return
		}
		fr, _, st := journal.DecodeFrame(data[e.Offset:])
		if st != journal.FrameOK || fr.Seq != e.Seq || fr.TS != e.TS {
			rep.add(Index, journal.Corrupt(path, off, journal.ErrIndexMismatch, "entry %d says seq %d ts %d at offset %d; the segment has seq %d ts %d there", i, e.Seq, e.TS, e.Offset, fr.Seq, fr.TS))
			return
		}
		prev = e
	}
}

// archivedSegment verifies a compressed segment: archive header and chunk
// table, every chunk's checksum, then every frame of the raw image exactly
// as for a sealed raw segment, and its index.
func (rep *Report) archivedSegment(dir string, n uint64, path string, prevLast uint64, opts Options) Segment {
	seg := Segment{Path: path, Number: n, State: "damaged"}
	a, err := archive.Open(path)
	if err != nil {
		rep.add(Damage, err)
		return seg
	}
	defer a.Close()
	img, err := a.ReadAll()
	if err != nil {
		rep.add(Damage, err)
		return seg
	}
	h := journal.HeaderOf(img)
	seg.Capacity, seg.WriterPID, seg.Durable = int64(h.Capacity()), h.WriterPID(), h.DurableSeq()
	seg.FirstSeq = h.FirstSeq()
	if prevLast != 0 && seg.FirstSeq != prevLast+1 {
		rep.add(Damage, journal.Corrupt(path, 32, journal.ErrSequence, "first seq %d does not follow the previous segment's last seq %d", seg.FirstSeq, prevLast))
	}
	res := journal.ScanSegment(path, img, journal.SegmentHeaderSize, seg.FirstSeq-1, int64(len(img)), opts.visit(n))
	seg.Frames, seg.LastSeq, seg.FirstTS, seg.LastTS, seg.Used = res.Frames, res.LastSeq, res.FirstTS, res.LastTS, int64(len(img))
	switch {
	case res.Err != nil:
		rep.add(Damage, res.Err)
	case !res.Sealed || res.End != int64(len(img)):
		rep.add(Damage, journal.Corrupt(path, res.End, journal.ErrBadHeader, "archived segment does not end with its end marker"))
	default:
		seg.State = "compressed"
	}
	rep.checkIndex(dir, n, h, img)
	return seg
}
