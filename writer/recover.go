package writer

import (
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/mdjournal/mdjournal/internal/mmap"
	"github.com/mdjournal/mdjournal/journal"
)

// recoverJournal implements format.md §8 for the writer: find the last active
// segment, make sure every segment before it that is not sealed gets
// recovered and sealed, recover the last one, and adopt (or create) the
// prepared successor. Sealed segments are not rescanned, and a cleanly closed
// active segment is not scanned at all, so open time does not grow with the
// journal.
func (w *Writer) recoverJournal(segs []uint64) error {
	// Trailing prepared (never activated) segments: keep the first as the
	// prepared successor, drop the others.
	var spare []*wseg
	i := len(segs) - 1
	for ; i >= 0; i-- {
		if _, archived := journal.SegmentFile(w.dir, segs[i]); archived {
			closeAll(spare)
			return fmt.Errorf("writer: the last segment %d of %s is compressed; a writer appends only after a raw active segment", segs[i], w.dir)
		}
		s, err := openSegment(w.dir, segs[i])
		if err != nil && !errors.Is(err, journal.ErrTruncated) {
			if errors.Is(err, journal.ErrCorrupt) && neverActivated(w.dir, segs[i]) {
				// A prepared segment whose header a crash tore (between
				// first_seq and header_crc in Activate): it holds no frame,
				// since ACTIVE is set last. Drop it; it is made again.
				w.opts.Logf("writer: removing never-activated segment %d with a damaged header: %v", segs[i], err)
				os.Remove(journal.SegmentPath(w.dir, segs[i]))
				os.Remove(journal.IndexPath(w.dir, segs[i]))
				continue
			}
			closeAll(spare)
			return err
		}
		if s.m != nil && !s.hdr.Active() {
			spare = append(spare, s)
			continue
		}
		s.close()
		break
	}
	if i < 0 {
		// No active segment: a new journal.
		w.journalID = newJournalID()
		if len(spare) > 0 {
			w.journalID = spare[len(spare)-1].hdr.JournalID()
		}
		closeAll(spare)
		for _, n := range segs {
			os.Remove(journal.SegmentPath(w.dir, n))
			os.Remove(journal.IndexPath(w.dir, n))
		}
		s, err := createSegment(w.dir, w.journalID, 1, w.opts.SegmentSize, time.Now().UnixNano())
		if err != nil {
			return err
		}
		s.hdr.Activate(1, w.pid)
		w.seg, w.cursor, w.pubCursor = s, journal.SegmentHeaderSize, journal.SegmentHeaderSize
		return mmap.Sync(s.m, 0, journal.SegmentHeaderSize, true)
	}
	// Walk back over unsealed predecessors of the last active segment.
	j := i
	for j > 0 {
		sealed, err := segmentSealed(w.dir, segs[j-1])
		if err != nil {
			closeAll(spare)
			return err
		}
		if sealed {
			break
		}
		j--
	}
	var prevLast uint64
	if j > 0 && segs[j-1]+1 == segs[j] {
		// The sealed predecessor's last seq: the first recovered segment
		// must continue it. (A missing segment in between is damage that
		// verify reports; it does not stop the writer.)
		prevLast = sealedLastSeq(w.dir, segs[j-1])
	}
	for k := j; k <= i; k++ {
		var nextFirst uint64
		if k < i {
			nextFirst = firstSeqOf(w.dir, segs[k+1])
		}
		s, last, err := w.recoverSegment(segs[k], prevLast, nextFirst, k < i)
		if err != nil {
			closeAll(spare)
			return err
		}
		prevLast = last
		if k < i {
			s.close()
			continue
		}
		w.seg = s
	}
	if w.journalID == 0 {
		w.journalID = w.seg.hdr.JournalID()
	}
	// Adopt the spare that directly follows, if any.
	for _, s := range spare {
		if s.num == w.seg.num+1 && s.hdr.JournalID() == w.journalID && w.prepared == nil {
			if err := s.openIndex(w.dir, w.journalID); err != nil {
				s.createIndex(w.dir, w.journalID)
			}
			w.prepared = s
			continue
		}
		s.close()
	}
	return nil
}

func closeAll(ss []*wseg) {
	for _, s := range ss {
		s.close()
	}
}

func segmentSealed(dir string, num uint64) (bool, error) {
	if _, archived := journal.SegmentFile(dir, num); archived {
		return true, nil // only sealed segments are ever compressed
	}
	s, err := openSegment(dir, num)
	if err != nil {
		return false, err
	}
	defer s.close()
	return s.hdr.Sealed(), nil
}

// recoverSegment scans segment num from its durable checkpoint (format.md
// §8.2), cuts a torn tail after saving it to SEGMENT.broken, refuses damage
// that valid data follows, rebuilds the index entries past the checkpoint,
// and leaves the writer positioned at the end. With seal=true (a predecessor
// that was never sealed) it also writes the end marker. prevLast is the last
// seq of the previous segment (0 if unknown) and is checked against this
// segment's first seq.
func (w *Writer) recoverSegment(num uint64, prevLast, nextFirst uint64, seal bool) (*wseg, uint64, error) {
	s, err := openSegment(w.dir, num)
	if errors.Is(err, journal.ErrTruncated) && s != nil {
		// A short active segment: extend it back to capacity; the cut frame
		// then reads as a torn tail.
		w.opts.Logf("writer: %v: extending to capacity and recovering", err)
		if err := mmap.Reserve(s.f, s.capacity); err != nil {
			s.f.Close()
			return nil, 0, err
		}
		f := s.f
		if s, err = mapOpened(f, num, s.path, s.capacity); err != nil {
			return nil, 0, err
		}
		if err := s.hdr.Check(s.path, s.capacity); err != nil {
			s.close()
			return nil, 0, err
		}
	} else if err != nil {
		return nil, 0, err
	}
	h := s.hdr
	if w.journalID == 0 {
		w.journalID = h.JournalID()
	} else if h.JournalID() != w.journalID {
		s.close()
		return nil, 0, journal.Corrupt(s.path, 16, journal.ErrBadHeader, "journal id %#x differs from the journal's %#x", h.JournalID(), w.journalID)
	}
	first := h.FirstSeq()
	if prevLast != 0 && first != prevLast+1 {
		s.close()
		return nil, 0, journal.Corrupt(s.path, 32, journal.ErrSequence, "first seq %d does not follow the previous segment's last seq %d", first, prevLast)
	}
	indexOK := s.openIndex(w.dir, w.journalID) == nil
	if !indexOK {
		if err := s.createIndex(w.dir, w.journalID); err != nil {
			s.close()
			return nil, 0, err
		}
	}

	cursor := int64(h.Cursor())
	durOff, durSeq := int64(h.DurableOffset()), h.DurableSeq()
	if h.Flags()&journal.FlagClean != 0 && !h.Sealed() && durOff == cursor && durSeq >= first-1 && indexOK && !seal &&
		(durOff == journal.SegmentHeaderSize || checkpointHolds(s, durOff, durSeq)) {
		// Clean close: cursor and checkpoint agree; trust them (no scan).
		w.cursor, w.pubCursor, w.seq, w.pubSeq = cursor, cursor, durSeq, durSeq
		return s, durSeq, nil
	}
	start, prev := durOff, durSeq
	if !indexOK || start < journal.SegmentHeaderSize || start > s.capacity || start%journal.FrameAlign != 0 || prev < first-1 {
		if indexOK {
			w.opts.Logf("writer: %s: checkpoint (%d, seq %d) unusable; scanning from the start", s.path, durOff, durSeq)
		}
		start, prev = journal.SegmentHeaderSize, first-1
	}
	visit := func(f *journal.Frame) { s.maybeIndex(f.Offset, f.Seq, f.TS) }
	if start != journal.SegmentHeaderSize && !checkpointHolds(s, start, prev) {
		w.opts.Logf("writer: %s: checkpoint (%d, seq %d) does not match the frames before it; scanning from the start", s.path, start, prev)
		start, prev = journal.SegmentHeaderSize, first-1
	}
	s.truncateIndexAt(start)
	res := journal.ScanSegment(s.path, s.m, start, prev, s.capacity, visit)
	if res.Err != nil && res.End == start && start != journal.SegmentHeaderSize {
		// The very first frame after the checkpoint does not fit it: the
		// checkpoint, not the data, is suspect. Never let a bad hint brick
		// the journal: scan the whole segment instead.
		w.opts.Logf("writer: %s: checkpoint (%d, seq %d) disagrees with the data (%s); scanning from the start", s.path, start, prev, res.Err.Reason)
		start, prev = journal.SegmentHeaderSize, first-1
		s.truncateIndexAt(start)
		res = journal.ScanSegment(s.path, s.m, start, prev, s.capacity, visit)
	}
	if seal && nextFirst != 0 && res.LastSeq+1 != nextFirst {
		// Checked before anything is cut or sealed: a refusal must leave the
		// journal exactly as it was.
		s.close()
		return nil, 0, journal.Corrupt(s.path, res.End, journal.ErrSequence,
			"the frames end at seq %d but the next segment starts at %d: %d frames are missing (a power loss before they were durable?)",
			res.LastSeq, nextFirst, int64(nextFirst)-int64(res.LastSeq)-1)
	}
	if !res.Sealed {
		tail := journal.ExamineTail(s.m, res.End, s.capacity, res.LastSeq)
		if res.Err != nil || tail.NonZeroEnd > res.End {
			if !tail.Torn() {
				s.close()
				reason := "damaged bytes"
				if res.Err != nil {
					reason = res.Err.Reason
				}
				return nil, 0, journal.Corrupt(s.path, res.End, journal.ErrMidLog,
					"%s, but a valid frame follows at offset %d: not a torn tail, refusing to cut (see journalctl verify; cut explicitly with journalctl recover --truncate-at)",
					reason, tail.ValidAt)
			}
			if err := saveBroken(s, res.End, tail.NonZeroEnd); err != nil {
				s.close()
				return nil, 0, err
			}
			w.opts.Logf("writer: %s: torn tail of %d bytes at offset %d saved to %s.broken and cleared",
				s.path, tail.NonZeroEnd-res.End, res.End, s.path)
		}
	}
	if cursor > res.End {
		w.opts.Logf("writer: %s: header cursor %d is past the last valid frame at %d: %d published bytes were not durable",
			s.path, cursor, res.End, cursor-res.End)
	}
	end := res.End
	if !res.Sealed && seal {
		n := journal.PutFrame(s.m[end:], res.LastSeq+1, w.opts.Clock(), journal.TypeSegmentEnd, 0, nil)
		end += int64(n)
		res.Sealed = true
	}
	h.SetCursor(uint64(end))
	if res.Sealed {
		h.SetLastSeq(res.LastSeq)
		h.SetFlags(journal.FlagActive | journal.FlagSealed)
	}
	if err := mmap.Sync(s.m, 0, int(s.capacity), true); err != nil {
		s.close()
		return nil, 0, err
	}
	h.SetDurable(uint64(end), res.LastSeq)
	if err := mmap.Sync(s.m, 0, journal.SegmentHeaderSize, true); err != nil {
		s.close()
		return nil, 0, err
	}
	w.cursor, w.pubCursor, w.seq, w.pubSeq = end, end, res.LastSeq, res.LastSeq
	return s, res.LastSeq, nil
}

// saveBroken copies s.m[from:to] to SEGMENT.broken (SEGMENT.broken.N if that
// exists), syncs it, then zeroes the range in the segment.
func saveBroken(s *wseg, from, to int64) error {
	name := s.path + journal.BrokenExt
	for i := 1; ; i++ {
		if _, err := os.Stat(name); os.IsNotExist(err) {
			break
		}
		name = fmt.Sprintf("%s%s.%d", s.path, journal.BrokenExt, i)
	}
	f, err := os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	if _, err := f.Write(s.m[from:to]); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	clear(s.m[from:to])
	return mmap.Sync(s.m, int(from), int(to-from), true)
}

// checkpointHolds checks a durability checkpoint against the data before it:
// scanning from the last index entry below off must end exactly at off with
// seq as the last frame. A checkpoint is a hint; one that the frames
// contradict (a torn store, a bug) must not be trusted, or the writer could
// reuse sequence numbers after it.
func checkpointHolds(s *wseg, off int64, seq uint64) bool {
	from, prev := int64(journal.SegmentHeaderSize), s.hdr.FirstSeq()-1
	for i := s.idxCount; i > 0; i-- {
		if e := s.idx.Entry(i - 1); e.Offset < off {
			from, prev = e.Offset, e.Seq-1
			break
		}
	}
	r := journal.ScanSegment(s.path, s.m, from, prev, off, nil)
	return r.Err == nil && r.End == off && r.LastSeq == seq
}

// neverActivated reports whether segment n's FlagActive is clear (its
// header need not check out).
func neverActivated(dir string, n uint64) bool {
	h, err := journal.ReadHeader(dir, n)
	return err == nil && !h.Active()
}

// sealedLastSeq and firstSeqOf read one field of segment n's header page
// (format.md §2.1) without checking it; 0 if unreadable.
func sealedLastSeq(dir string, n uint64) uint64 {
	h, err := journal.ReadHeader(dir, n)
	if err != nil {
		return 0
	}
	return h.LastSeq()
}

func firstSeqOf(dir string, n uint64) uint64 {
	h, err := journal.ReadHeader(dir, n)
	if err != nil {
		return 0
	}
	return h.FirstSeq()
}
