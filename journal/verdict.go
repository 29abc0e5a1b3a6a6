package journal

import "fmt"

// The damage verdict, format.md §8. Every opener of a segment — the writer's
// recovery, verify, recover and inspect — asks Assess what a segment holds
// and what may be done about it; none decides on its own. The rules:
//
//   - Bytes at or below the durable checkpoint of a trusted state record,
//     and every byte of a segment whose state says it was closed cleanly,
//     are never cut: anything wrong there is damage.
//   - Damage followed by a frame that could continue the segment is damage
//     (never a torn tail): cutting it would drop valid data.
//   - Only the last activated segment, with no live writer, can have a torn
//     tail: non-zero bytes past the last valid frame, past the checkpoint,
//     with nothing valid after them. Recovery saves them to .broken and
//     zeroes them.
//   - A sealed segment ends with its end marker followed by zeroes.

// VerdictKind classifies a segment.
type VerdictKind uint8

const (
	// Intact: every frame checks out and nothing needs to change (a sealed
	// predecessor that a crash mid-roll left unsealed says NeedsSeal).
	Intact VerdictKind = iota
	// TornTail: an unfinished write past the durable checkpoint of the last
	// segment; [CutFrom, CutTo) may be saved and zeroed.
	TornTail
	// Damage: refuse; only an operator cuts (recover --truncate-at).
	Damage
)

// String returns "intact", "torn_tail" or "damage".
func (k VerdictKind) String() string {
	switch k {
	case Intact:
		return "intact"
	case TornTail:
		return "torn_tail"
	}
	return "damage"
}

// Verdict is Assess's answer.
type Verdict struct {
	Kind    VerdictKind
	End     int64  // just past the last good frame (past the end marker when Sealed)
	LastSeq uint64 // seq of the last good data frame (first_seq-1 if none)
	Frames  int64  // data frames scanned (0 on the clean path, which does not scan)
	FirstTS int64
	LastTS  int64
	Sealed  bool // the segment ends with a valid end marker at End
	Scanned bool // false on the clean path: End and LastSeq come from the checkpoint
	// CutFrom and CutTo bound the bytes a TornTail recovery saves and
	// zeroes (CutFrom == CutTo: nothing to save, e.g. a cursor that claimed
	// bytes lost before they were durable).
	CutFrom, CutTo int64
	// Extend: the file is shorter than its capacity (above the checkpoint);
	// recovery extends it before it cuts.
	Extend bool
	// NeedsSeal: an unsealed segment followed by an active one (a crash
	// mid-roll); the writer seals it at End.
	NeedsSeal bool
	// StateStale: the end marker is written but the state record does not
	// say sealed yet (a crash between the two); the writer rewrites it.
	StateStale bool
	// CursorBad: the write cursor (a hint) is outside the segment or
	// unaligned; recovery resets it to End.
	CursorBad bool
	// LostPublished is how many bytes the cursor claimed beyond End: frames
	// that were published but not durable when power was lost.
	LostPublished int64
	// Err describes the damage (Damage) or the torn tail (TornTail).
	Err *CorruptionError
	// ValidAfter is the offset of the valid frame that makes damage mid-log
	// (-1 if none).
	ValidAfter int64
}

// AssessOptions say what the caller knows about a segment.
type AssessOptions struct {
	// Last: the last activated segment of the journal (the only one that
	// may be unsealed or have a torn tail).
	Last bool
	// Live: a writer (not the caller) holds the journal now. The scan stops
	// at the write cursor and nothing past it is judged.
	Live bool
	// Full: scan every frame even of a cleanly closed segment (verify,
	// inspect); the writer opens a clean segment without a scan.
	Full bool
	// Successor: another activated segment follows this one.
	Successor bool
	// IndexBefore returns the last sparse-index entry of this segment at an
	// offset below off (ok=false if none or no index). Only used as a hint:
	// every frame scanned from it is checked.
	IndexBefore func(off int64) (IndexEntry, bool)
	// Visit is called for every good data frame in order (only when the
	// segment is scanned, so set Full to see every frame).
	Visit func(*Frame)
}

// Assess judges an activated segment from its bytes. data is the segment
// image as far as the file goes (shorter than the capacity when the file was
// truncated); its header must have passed Header.Check with the file's real
// size replaced by the capacity (so a truncated file still gets here).
func Assess(name string, data []byte, o AssessOptions) Verdict {
	h := HeaderOf(data)
	first := h.FirstSeq()
	capacity := int64(h.Capacity())
	fileLen := min(int64(len(data)), capacity)
	cursor := int64(h.Cursor())
	v := Verdict{End: SegmentHeaderSize, LastSeq: first - 1, ValidAfter: -1}
	if !h.CursorOK() {
		v.CursorBad = true
	}
	damage := func(err *CorruptionError) Verdict {
		v.Kind, v.Err = Damage, err
		return v
	}

	st, _, stOK := h.State()
	if !stOK {
		return damage(Corrupt(name, SegOffStateA, ErrBadHeader,
			"both state records are damaged: the durability checkpoint is unknown, so no byte of this segment can be judged a torn tail (journalctl recover rewrites them if the frames end cleanly)"))
	}
	if err := h.CheckState(name, st); err != nil {
		return damage(err.(*CorruptionError))
	}
	dOff, dSeq := st.DurableOffset, st.DurableSeq
	if fileLen < dOff {
		return damage(Corrupt(name, fileLen, ErrTruncated,
			"file is %d bytes, below the durable checkpoint at offset %d (seq %d): durable frames are gone", fileLen, dOff, dSeq))
	}
	if st.Clean() && cursor != dOff {
		// A clean close leaves the cursor at the checkpoint: the hint is
		// wrong (the frames decide whether anything follows).
		v.CursorBad = true
	}
	if v.CursorBad {
		cursor = dOff // a hint that points nowhere says nothing
	}
	limit := fileLen
	if o.Live {
		limit = min(max(cursor, dOff), fileLen)
	}

	// The clean path: trust a cleanly closed segment's checkpoint after
	// checking the frames just before it; nothing may follow it.
	if st.Clean() && !o.Full && !o.Live && (dOff == capacity || (dOff+8 <= fileLen && allZero(data[dOff:dOff+8]))) {
		if r, ok := checkpointHolds(name, data, h, dOff, dSeq, o.IndexBefore); ok {
			v.End, v.LastSeq, v.Sealed = dOff, dSeq, r.Sealed
			return finishSealState(name, v, st, o)
		}
	}

	// Frames up to the checkpoint: from the index hint, else from the start.
	var pre ScanResult
	var ok bool
	if o.Full {
		pre = ScanSegment(name, data, SegmentHeaderSize, first-1, dOff, o.Visit)
		ok = pre.Err == nil && pre.End == dOff && pre.LastSeq == dSeq
	} else if pre, ok = checkpointHolds(name, data, h, dOff, dSeq, o.IndexBefore); !ok {
		pre, ok = checkpointHolds(name, data, h, dOff, dSeq, nil)
	}
	if !ok {
		reason := fmt.Sprintf("the frames end at offset %d (seq %d)", pre.End, pre.LastSeq)
		at, sent := pre.End, ErrMidLog
		if pre.Err != nil {
			reason, at, sent = pre.Err.Reason, pre.Err.Offset, pre.Err.Err
		}
		return damage(Corrupt(name, at, sent,
			"below the durable checkpoint (offset %d, seq %d): %s; durable frames are never cut (restore the segment, or cut explicitly with journalctl recover --truncate-at)",
			dOff, dSeq, reason))
	}
	v.Frames, v.FirstTS, v.LastTS = pre.Frames, pre.FirstTS, pre.LastTS
	v.Scanned = true

	// Past the checkpoint.
	res := pre
	if !pre.Sealed {
		res = ScanSegment(name, data, dOff, dSeq, limit, o.Visit)
		if res.Frames > 0 {
			if v.Frames == 0 {
				v.FirstTS = res.FirstTS
			}
			v.LastTS = res.LastTS
		}
		v.Frames += res.Frames
	}
	v.End, v.LastSeq, v.Sealed = res.End, res.LastSeq, res.Sealed

	if o.Live {
		if res.Err != nil {
			return damage(res.Err)
		}
		if res.End < min(cursor, fileLen) && !res.Sealed {
			return damage(Corrupt(name, res.End, ErrBadLength, "an empty commit word below the write cursor %d: published bytes were zeroed", cursor))
		}
		return finishSealState(name, v, st, o)
	}

	tail := ExamineTail(data, res.End, fileLen, res.LastSeq)
	if res.Sealed {
		if tail.NonZeroEnd > res.End {
			return damage(Corrupt(name, res.End, ErrMidLog, "%d non-zero bytes after the end marker of a sealed segment", tail.NonZeroEnd-res.End))
		}
		return finishSealState(name, v, st, o)
	}
	if res.Err == nil && tail.NonZeroEnd == res.End {
		// A clean end. Anything the cursor claimed past it was published
		// but not durable (lost to a power cut): never at or below the
		// checkpoint, as checked above.
		if cursor > res.End {
			if !o.Last || o.Successor {
				return damage(Corrupt(name, res.End, ErrTruncated, "the frames end at offset %d, the write cursor says %d", res.End, cursor))
			}
			v.Kind, v.CutFrom, v.CutTo = TornTail, res.End, res.End
			v.LostPublished = cursor - res.End
			v.Err = Corrupt(name, res.End, ErrTornTail, "the write cursor claims %d bytes past the last frame (offset %d): published but not durable, lost", cursor-res.End, res.End)
		}
		if fileLen < capacity {
			if !o.Last || o.Successor {
				return damage(Corrupt(name, fileLen, ErrTruncated, "file is %d bytes, capacity %d", fileLen, capacity))
			}
			v.Kind, v.Extend = TornTail, true
			v.CutFrom, v.CutTo = res.End, res.End
			v.Err = Corrupt(name, fileLen, ErrTruncated, "file truncated to %d bytes (capacity %d), past the durable checkpoint %d", fileLen, capacity, dOff)
		}
		return finishSealState(name, v, st, o)
	}
	// Non-zero bytes past the last good frame. The finding keeps the
	// scan's own reason (checksum, length, sequence) when there is one;
	// "mid_log" means the frames stopped at an empty commit word.
	what := "non-zero bytes after the last frame"
	if res.Err != nil {
		what = res.Err.Reason
	}
	switch {
	case tail.ValidAt >= 0:
		v.ValidAfter = tail.ValidAt
		return damage(Corrupt(name, res.End, errOr(res.Err),
			"%s, but a valid frame follows at offset %d: not a torn tail, refusing to cut (cut explicitly with journalctl recover --truncate-at)", what, tail.ValidAt))
	case st.Clean():
		return damage(Corrupt(name, res.End, errOr(res.Err), "%s in a cleanly closed segment: bytes past its end were written after the close", what))
	case !o.Last || o.Successor:
		return damage(Corrupt(name, res.End, errOr(res.Err), "%s in a segment that is not the last one", what))
	}
	v.Kind, v.CutFrom, v.CutTo = TornTail, res.End, tail.NonZeroEnd
	v.Extend = fileLen < capacity
	v.LostPublished = max(cursor-res.End, 0)
	v.Err = Corrupt(name, res.End, ErrTornTail, "torn tail: %s; %d bytes from here are unfinished", what, tail.NonZeroEnd-res.End)
	if v.Extend {
		v.Err = Corrupt(name, fileLen, ErrTruncated, "file truncated to %d bytes (capacity %d), past the durable checkpoint %d; the cut frame at offset %d is a torn tail",
			fileLen, capacity, dOff, res.End)
	}
	return v
}

// finishSealState checks the seal against the state record and the
// segment's place: a sealed state needs the marker (and its last seq), an
// unsealed segment with a successor needs sealing.
func finishSealState(name string, v Verdict, st State, o AssessOptions) Verdict {
	switch {
	case st.Sealed() && !v.Sealed:
		v.Kind = Damage
		v.Err = Corrupt(name, v.End, ErrBadHeader, "the state record says sealed but no end marker ends the frames (they end at offset %d)", v.End)
	case st.Sealed() && st.LastSeq != v.LastSeq:
		v.Kind = Damage
		v.Err = Corrupt(name, SegOffStateA, ErrBadHeader, "the state record says the last seq is %d, the frames end at %d", st.LastSeq, v.LastSeq)
	case v.Sealed && !st.Sealed():
		v.StateStale = true
	case !v.Sealed && o.Successor:
		v.NeedsSeal = true
	}
	return v
}

// checkpointHolds scans from the index entry before off (or from the segment
// start when hint is nil or has none) to off: the frames must end exactly at
// off with seq as the last data seq. A checkpoint is a claim about durable
// bytes; one the frames contradict is damage, never silently ignored.
func checkpointHolds(name string, data []byte, h Header, off int64, seq uint64, hint func(int64) (IndexEntry, bool)) (ScanResult, bool) {
	first := h.FirstSeq()
	from, prev := int64(SegmentHeaderSize), first-1
	if hint != nil {
		if e, ok := hint(off); ok && e.Offset >= SegmentHeaderSize && e.Offset < off && e.Seq >= first && e.Seq <= seq {
			from, prev = e.Offset, e.Seq-1
		}
	}
	r := ScanSegment(name, data, from, prev, off, nil)
	return r, r.Err == nil && r.End == off && r.LastSeq == seq
}

func errOr(err *CorruptionError) error {
	if err != nil {
		return err.Err
	}
	return ErrMidLog
}
