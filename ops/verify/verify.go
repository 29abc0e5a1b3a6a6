// Package verify checks a whole journal directory offline: every segment
// header and state record, every frame's length, checksum, content and
// sequence number, sequence continuity and epochs across segments, the
// order of rolls, the sparse indexes against the data, and what lies past
// each segment's frames. Each segment's verdict comes from journal.Assess,
// the same function the writer's recovery and recover use, so verify never
// disagrees with them. It backs `journalctl verify` and `journalctl
// inspect`, and it never panics on any input: every finding is a
// *journal.CorruptionError naming file, offset and reason.
package verify

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime/debug"

	"github.com/mdjournal/mdjournal/internal/flock"
	"github.com/mdjournal/mdjournal/internal/segfile"
	"github.com/mdjournal/mdjournal/journal"
)

// Severity of a finding.
type Severity string

const (
	// Damage is data loss or corruption that no automatic repair may cut:
	// bad frames at or below a durable checkpoint, damage in a sealed
	// segment or followed by valid data, gaps, missing segments, bad
	// headers, mixed journals.
	Damage Severity = "damage"
	// Torn is what a crash leaves and the next writer open (or journalctl
	// recover) repairs without losing a durable frame: a torn tail past the
	// checkpoint of the last segment, a roll cut in the middle, an
	// unactivated segment holding bytes (moved aside, never overwritten).
	Torn Severity = "torn"
	// Index is a sparse index that disagrees with its segment (derived data:
	// rebuilt by the next writer open or by recover).
	Index Severity = "index"
)

// State of a segment in a report.
type State string

// Segment states.
const (
	StateActive     State = "active"
	StateSealed     State = "sealed"
	StateCompressed State = "compressed"
	StatePrepared   State = "prepared"
	StateDamaged    State = "damaged"
	// StatePruned: deleted (with every segment before it) by a prune that
	// ran while verify read the journal; not a finding.
	StatePruned State = "pruned"
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
	State     State
	FirstSeq  uint64
	LastSeq   uint64
	Frames    int64
	FirstTS   int64
	LastTS    int64
	Used      int64 // bytes of frames (past the end marker when sealed)
	Capacity  int64
	WriterPID uint32
	Durable   uint64 // durable seq checkpoint
	Epoch     uint32
	Clean     bool // the state record says closed cleanly
	Cursor    int64
	// Verdict is the segment's verdict (journal.Assess).
	Verdict journal.Verdict
	// stateLast is the state record's last_seq of a sealed segment: where
	// the next segment must continue even when damage stopped the scan early
	// (so one damaged frame is not reported twice, once as a gap).
	stateLast uint64
}

// Report is the result of verifying a journal.
type Report struct {
	Dir        string
	JournalID  uint64
	Segments   []Segment
	Frames     int64
	FirstSeq   uint64
	LastSeq    uint64
	Epoch      uint32
	WriterPID  int  // the lock holder (0 if none)
	WriterLive bool // the lock is held now
	Problems   []Problem
}

// OK reports whether nothing was found.
func (r *Report) OK() bool { return len(r.Problems) == 0 }

func (r *Report) add(sev Severity, err error) {
	var ce *journal.CorruptionError
	if !errors.As(err, &ce) {
		ce = &journal.CorruptionError{File: r.Dir, Reason: err.Error(), Err: journal.ErrBadHeader}
		if errors.Is(err, journal.ErrNotRegular) {
			ce.Err = journal.ErrNotRegular
		}
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
		{ErrSnapshot, "snapshot_mismatch"}, {journal.ErrNotRegular, "not_regular"}, {ErrRollOrder, "roll_order"},
	} {
		if errors.Is(err, k.err) {
			return k.name
		}
	}
	return "other"
}

// ErrRollOrder: the journal ends with a sealed segment whose successor is
// not activated (an activation lost to a power cut under a policy that does
// not order rolls on disk, or damage).
var ErrRollOrder = errors.New("verify: a sealed segment without an activated successor")

// Journal verifies the journal in dir.
func Journal(dir string, opts Options) (*Report, error) {
	ents, err := segfile.List(dir)
	rep := &Report{Dir: dir}
	if err != nil {
		var nr interface{ Unwrap() error }
		if errors.As(err, &nr) && errors.Is(err, journal.ErrNotRegular) {
			rep.add(Damage, err)
			return rep, nil
		}
		return nil, err
	}
	if len(ents) == 0 {
		return nil, fmt.Errorf("%w: %s has no segment files", journal.ErrNotFound, dir)
	}
	if pid, held, err := flock.Holder(filepath.Join(dir, journal.LockFile)); err == nil {
		rep.WriterPID, rep.WriterLive = pid, held && !opts.OwnLock
	}
	// The last activated segment: the only one that may be unsealed or have
	// a torn tail; trailing segments after it must be prepared.
	lastActive := -1
	for i, e := range ents {
		if h, _, _, err := segfile.ReadHeader(dir, e.Num); err == nil && h.Magic() == journal.SegmentMagic && !h.Prepared() {
			lastActive = i
		}
	}
	var prevLast uint64
	var prevNum uint64
	var prevEpoch uint32
	var prevSealed bool
	for i, e := range ents {
		if i > 0 && e.Num != prevNum+1 {
			rep.add(Damage, journal.Corrupt(journal.SegmentPath(dir, prevNum+1), 0, journal.ErrMissing,
				"segment %d is missing (have %d and %d)", prevNum+1, prevNum, e.Num))
			prevLast = 0
		}
		prevNum = e.Num
		// Under a live writer the tail moves while verify reads: the last
		// activated segment, and any activated since the listing, are
		// judged only up to their write cursor.
		live := rep.WriterLive && i >= lastActive && !e.Archived
		var named uint64 // the first seq the previous segment's end marker names
		if prevSealed && prevLast != 0 {
			named = prevLast + 1
		}
		seg := rep.segment(e, i == lastActive || live, i < lastActive, i > lastActive, live, named, opts)
		rep.Segments = append(rep.Segments, seg)
		if seg.State == StatePruned {
			prevLast, prevSealed = 0, false // the next retained segment starts the run again
			continue
		}
		if seg.State == StatePrepared {
			if i == lastActive+1 && prevSealed && !seg.Verdict.Sealed && seg.Frames > 0 {
				rep.add(Torn, journal.Corrupt(seg.Path, journal.SegmentHeaderSize, ErrRollOrder,
					"the previous segment is sealed but this one's activation never reached the disk; its bytes are moved aside by the next writer open"))
			}
			continue
		}
		if rep.JournalID == 0 {
			rep.JournalID = segJournalID(dir, e.Num)
		} else if id := segJournalID(dir, e.Num); id != 0 && id != rep.JournalID {
			rep.add(Damage, journal.Corrupt(seg.Path, 16, journal.ErrBadHeader, "journal id %#x, but the journal's first segment has %#x: files of two journals are mixed", id, rep.JournalID))
		}
		if prevLast != 0 && seg.FirstSeq > prevLast+1 && live && !prevSealed {
			// The predecessor was read live, before the writer appended its
			// last frames and rolled: its sealed state now says where it ended.
			if h, _, _, err := segfile.ReadHeader(dir, e.Num-1); err == nil {
				if st, _, ok := h.State(); ok && st.Sealed() && st.LastSeq >= prevLast {
					prevLast = st.LastSeq
				}
			}
		}
		if prevLast != 0 && seg.FirstSeq != 0 && seg.FirstSeq != prevLast+1 && seg.State != StateDamaged {
			rep.add(Damage, journal.Corrupt(seg.Path, 32, journal.ErrSequence, "first seq %d does not follow the previous segment's last seq %d", seg.FirstSeq, prevLast))
		}
		if seg.Epoch != 0 && seg.Epoch < prevEpoch {
			rep.add(Damage, journal.Corrupt(seg.Path, 56, journal.ErrBadHeader, "epoch %d goes back from the previous segment's %d", seg.Epoch, prevEpoch))
		}
		prevEpoch = max(prevEpoch, seg.Epoch)
		if seg.Frames > 0 || seg.State == StateSealed || seg.State == StateCompressed {
			if rep.FirstSeq == 0 {
				rep.FirstSeq = seg.FirstSeq
			}
			if seg.LastSeq >= seg.FirstSeq {
				rep.LastSeq = seg.LastSeq
			}
		}
		rep.Frames += seg.Frames
		prevLast = seg.LastSeq
		if seg.State == StateDamaged {
			prevLast = seg.stateLast // 0 (no check) unless the state says where it ended
		}
		prevSealed = seg.Verdict.Sealed
	}
	rep.Epoch = prevEpoch
	return rep, nil
}

// segJournalID is segment n's journal id, or 0 when its header cannot be
// trusted (bad magic or checksum): a damaged header is reported as such,
// and must not make every other segment look foreign.
func segJournalID(dir string, n uint64) uint64 {
	h, _, _, err := segfile.ReadHeader(dir, n)
	if err != nil || h.Magic() != journal.SegmentMagic || !h.StaticOK() {
		return 0
	}
	return h.JournalID()
}

// segment verifies one segment file.
// named, when not 0, is the first seq the sealed predecessor's end marker
// gives this segment: a segment with that first seq was activated (§4.3).
func (rep *Report) segment(e segfile.Entry, last, successor, trailing, live bool, named uint64, opts Options) (seg Segment) {
	seg = Segment{Path: e.Path, Number: e.Num, State: StateDamaged}
	s, err := segfile.OpenEntry(e, segfile.OpenOptions{AllowShort: true, LoadArchive: true})
	if err != nil {
		if (errors.Is(err, journal.ErrMissing) || errors.Is(err, os.ErrNotExist)) && segfile.PrunedSince(filepath.Dir(e.Path), e.Num) {
			seg.State = StatePruned
			return seg
		}
		rep.add(Damage, err)
		return seg
	}
	defer s.Close()
	defer func(old bool) {
		debug.SetPanicOnFault(old)
		if r := recover(); r != nil {
			rep.add(Damage, journal.Corrupt(e.Path, 0, journal.ErrTruncated, "file changed under verify: %v", r))
			seg.State = StateDamaged
		}
	}(debug.SetPanicOnFault(true))

	h := s.Header()
	seg.Capacity, seg.FirstSeq, seg.Epoch, seg.Cursor = s.Capacity, h.FirstSeq(), h.Epoch(), int64(h.Cursor())
	if st, _, ok := h.State(); ok {
		seg.WriterPID, seg.Durable, seg.Clean = st.WriterPID, st.DurableSeq, st.Clean()
		if st.Sealed() {
			seg.stateLast = st.LastSeq
		}
	}
	prepared := h.Prepared()
	if trailing && !prepared {
		// Prepared when listed, activated now: a writer started since
		// (verify takes no lock). It is the last segment, and live if the
		// writer still holds the journal.
		last = true
		if _, held, err := flock.Holder(filepath.Join(filepath.Dir(e.Path), journal.LockFile)); err == nil && held && !opts.OwnLock {
			live = true
		}
	}
	empty := prepared && segfile.ProvablyEmpty(s)
	if prepared && !empty {
		// Bytes seen in a segment that looked prepared: a writer activates
		// a segment (its header) before it writes the first frame, so a
		// header read after the bytes tells a roll in progress from a
		// segment that was never activated.
		prepared = h.Prepared()
	}
	if prepared && named != 0 && h.FirstSeq() == named {
		// Activated — the sealed predecessor's end marker names its first
		// seq — but neither state record is valid: damaged state, never an
		// activation in progress (§2.2; the reader and the writer refuse it).
		rep.add(Damage, journal.Corrupt(e.Path, journal.SegOffStateA, journal.ErrBadHeader,
			"the end marker says segment %d starts at seq %d, but it has no valid state record", e.Num, named))
		return seg
	}
	if prepared {
		if !trailing {
			rep.add(Damage, journal.Corrupt(e.Path, journal.SegOffStateA, journal.ErrBadHeader, "segment %d is not activated (no valid state record) but a later segment is", e.Num))
			return seg
		}
		seg.State = StatePrepared
		if !empty {
			seg.Frames = 1 // holds bytes
			if int64(h.Cursor()) != journal.SegmentHeaderSize || !journal.AllZero(s.Data[journal.SegmentHeaderSize:]) {
				rep.add(Torn, journal.Corrupt(e.Path, journal.SegmentHeaderSize, ErrRollOrder,
					"segment %d is not activated but holds bytes (an activation lost to a power cut, or a crafted header): the next writer open moves it aside", e.Num))
			}
		}
		return seg
	}
	var x *segfile.Index
	if !e.Archived {
		x, _ = segfile.OpenIndex(filepath.Dir(e.Path), e.Num, h.JournalID(), s.Capacity, false)
		defer x.Close()
	} else if xi, err := segfile.OpenIndex(filepath.Dir(e.Path), e.Num, h.JournalID(), s.Capacity, false); err == nil {
		x = xi
		defer x.Close()
	}
	// The index count is loaded before the cursor (format.md §5): every
	// entry below it then lies below the cursor Assess reads.
	var count uint64
	if x != nil {
		count = x.View().Count()
	}
	v := journal.Assess(e.Path, s.Data, journal.AssessOptions{Last: last, Successor: successor, Live: live,
		Full: true, Visit: visit(opts, e.Num), Archived: s.Archived})
	seg.Verdict = v
	seg.Frames, seg.LastSeq, seg.FirstTS, seg.LastTS, seg.Used = v.Frames, v.LastSeq, v.FirstTS, v.LastTS, v.End
	switch v.Kind {
	case journal.Damage:
		rep.add(Damage, v.Err)
	case journal.TornTail:
		rep.add(Torn, v.Err)
	}
	if v.CursorBad && v.Kind != journal.Damage {
		rep.add(Torn, journal.Corrupt(e.Path, journal.SegOffCursor, journal.ErrCursorRange,
			"write cursor %d is outside [%d,%d] or unaligned: a hint only (the frames end at %d); recover resets it", seg.Cursor, journal.SegmentHeaderSize, s.Capacity, v.End))
	}
	if v.NeedsSeal {
		rep.add(Torn, journal.Corrupt(e.Path, v.End, journal.ErrTornTail, "segment %d is not sealed but the next segment is active (a crash in the middle of a roll): the next writer open seals it", e.Num))
	}
	// A live writer writes the end marker, activates the successor, then
	// records the seal: a stale state under a live writer is a roll in
	// progress (and any older one was recorded when that writer opened).
	if v.StateStale && !rep.WriterLive {
		rep.add(Torn, journal.Corrupt(e.Path, journal.SegOffStateA, journal.ErrTornTail, "the end marker is written but the state record does not say sealed yet (a crash in the middle of a roll): the next writer open records it"))
	}
	if v.Kind != journal.Damage {
		switch {
		case e.Archived:
			seg.State = StateCompressed
		case v.Sealed:
			seg.State = StateSealed
		default:
			seg.State = StateActive
		}
	}
	if e.Archived && !v.Sealed && v.Kind != journal.Damage {
		rep.add(Damage, journal.Corrupt(e.Path, v.End, journal.ErrBadHeader, "archived segment does not end with its end marker"))
		seg.State = StateDamaged
	}
	// Entries are checked against the frames where they point, up to the
	// end of the frames or the cursor (frames after damage still count).
	limit := v.End
	if h.CursorOK() && !rep.WriterLive {
		limit = max(limit, int64(h.Cursor()))
	}
	rep.checkIndex(e, h, s.Data[:min(limit, int64(len(s.Data)))], x, count)
	return seg
}

func visit(o Options, n uint64) func(*journal.Frame) {
	if o.Visit == nil {
		return nil
	}
	return func(f *journal.Frame) {
		f.Segment = n
		o.Visit(f)
	}
}

// checkIndex compares the sparse index with the data (like kafka-dump-log's
// index sanity check): each entry must point at a valid frame with the same
// seq and timestamp, entries must ascend, and the count must fit. Entries
// at or past the end of the frames are damage (the count is published after
// the frames it indexes).
func (rep *Report) checkIndex(e segfile.Entry, h journal.Header, data []byte, x *segfile.Index, count uint64) {
	path := journal.IndexPath(filepath.Dir(e.Path), e.Num)
	if x == nil {
		_, err := segfile.OpenIndex(filepath.Dir(e.Path), e.Num, h.JournalID(), int64(h.Capacity()), false)
		if err == nil {
			return
		}
		if errors.Is(err, os.ErrNotExist) && segfile.PrunedSince(filepath.Dir(e.Path), e.Num) {
			return // pruned with its segment while verify read it
		}
		var ce *journal.CorruptionError
		if !errors.As(err, &ce) {
			err = journal.Corrupt(path, 0, journal.ErrIndexMismatch, "index unusable (%v); the next writer open or recover rebuilds it", err)
		}
		rep.add(Index, err)
		return
	}
	v := x.View()
	var prev journal.IndexEntry
	for i := uint64(0); i < count; i++ {
		en := v.Entry(i)
		off := journal.IndexEntryOffset(i)
		if i > 0 && (en.Seq <= prev.Seq || en.Offset <= prev.Offset) {
			rep.add(Index, journal.Corrupt(path, off, journal.ErrIndexMismatch, "entry %d (seq %d, offset %d) does not ascend after seq %d, offset %d", i, en.Seq, en.Offset, prev.Seq, prev.Offset))
			return
		}
		if en.Offset < journal.SegmentHeaderSize || en.Offset >= int64(len(data)) {
			rep.add(Index, journal.Corrupt(path, off, journal.ErrIndexMismatch, "entry %d points at offset %d, outside the segment's frames [%d,%d)", i, en.Offset, journal.SegmentHeaderSize, len(data)))
			return
		}
		fr, _, st := journal.DecodeFrame(data[en.Offset:])
		if st != journal.FrameOK || fr.Seq != en.Seq || fr.TS != en.TS || fr.Type == journal.TypeSegmentEnd {
			rep.add(Index, journal.Corrupt(path, off, journal.ErrIndexMismatch, "entry %d says seq %d ts %d at offset %d; the segment has seq %d ts %d there", i, en.Seq, en.TS, en.Offset, fr.Seq, fr.TS))
			return
		}
		prev = en
	}
}
