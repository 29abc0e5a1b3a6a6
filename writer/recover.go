package writer

import (
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/mdjournal/mdjournal/internal/fsx"
	"github.com/mdjournal/mdjournal/internal/mmap"
	"github.com/mdjournal/mdjournal/internal/segfile"
	"github.com/mdjournal/mdjournal/journal"
)

// recoverJournal implements format.md §8 for the writer. Every segment that
// needs recovery is judged (journal.Assess) and every refusal is decided
// before anything is changed, so a refused open leaves the journal exactly
// as it was. Sealed segments are not rescanned, and a cleanly closed active
// segment is not scanned at all, so open time does not grow with the
// journal.
// afterListing, when set by a test, runs right after recovery listed the
// segments: where a prune beside the open may delete the oldest ones.
var afterListing func()

func (w *Writer) recoverJournal() error {
	ents, err := segfile.List(w.dir)
	if err != nil {
		return err
	}
	// Trailing segments that were never activated: a provably empty one
	// right after the last active segment is adopted as the next segment;
	// any other empty one is removed (it holds nothing); one that is not
	// empty is moved aside, never overwritten.
	var spares []*wseg
	var aside []uint64
	li := len(ents) - 1
	for ; li >= 0; li-- {
		e := ents[li]
		if e.Archived {
			break
		}
		s, err := segfile.OpenEntry(e, segfile.OpenOptions{Write: true, AllowShort: true})
		if err != nil {
			if errors.Is(err, journal.ErrCorrupt) && tornActivation(e) {
				// A crash tore the static fields while activating: the state
				// record (written after them) is not there and no frame is.
				w.opts.Logf("writer: removing segment %d: its activation was torn by a crash and it holds nothing (%v)", e.Num, err)
				removeSegment(w.dir, e.Num)
				continue
			}
			closeAll(spares)
			return err
		}
		h := s.Header()
		if !h.Prepared() {
			s.Close()
			break
		}
		if h.FirstSeq() != 0 && !segfile.ProvablyEmpty(s) {
			// Activated, with frames, but no valid state record: judged as
			// the last active segment below (both records damaged).
			s.Close()
			break
		}
		if !segfile.ProvablyEmpty(s) {
			s.Close()
			aside = append(aside, e.Num)
			continue
		}
		spares = append([]*wseg{{Seg: s}}, spares...)
	}
	if len(aside) > 0 {
		if err := w.moveAside(aside, "a segment that is not activated holds bytes (an activation lost to a power cut, or a crafted header): moved aside, never overwritten"); err != nil {
			closeAll(spares)
			return err
		}
	}
	if li < 0 {
		return w.newJournal(spares)
	}
	if ents[li].Archived {
		// The last segment is compressed, so sealed: continue after it.
		closeAll(spares)
		return w.continueAfterSealed(ents[li])
	}

	// Every raw segment that is not sealed is judged, not only the last
	// active one and the predecessor a crash mid-roll leaves unsealed: a
	// power cut under a policy that does not order rolls on disk can leave
	// any seal not durable (format.md §8.2).
	if afterListing != nil {
		afterListing()
	}
	var judge []int
	for k := 0; k <= li; k++ {
		// One journal id for all: a segment of another journal among ours
		// (copied in, or a crafted header) is refused, never adopted.
		h, _, _, err := segfile.ReadHeader(w.dir, ents[k].Num)
		if err != nil && k < li && (errors.Is(err, os.ErrNotExist) || errors.Is(err, journal.ErrMissing)) && segfile.PrunedSince(w.dir, ents[k].Num) {
			continue // a prune beside this open removed it (sealed, older): nothing to judge
		}
		if err != nil {
			closeAll(spares)
			return err
		}
		if h.Magic() == journal.SegmentMagic && h.StaticOK() {
			if w.journalID == 0 {
				w.journalID = h.JournalID()
			} else if id := h.JournalID(); id != w.journalID {
				closeAll(spares)
				return journal.Corrupt(ents[k].Path, 16, journal.ErrBadHeader, "journal id %#x differs from the journal's %#x (segment %d): files of two journals are mixed", id, w.journalID, ents[0].Num)
			}
		}
		if k == li || ents[k].Archived {
			continue
		}
		if st, _, ok := h.State(); ok && st.Sealed() {
			continue
		}
		judge = append(judge, k)
	}
	judge = append(judge, li)
	// sealedLast is the last seq a sealed (not judged) segment k records.
	sealedLast := func(k int) (uint64, bool) {
		h, _, _, err := segfile.ReadHeader(w.dir, ents[k].Num)
		if err != nil {
			return 0, false
		}
		st, _, ok := h.State()
		return st.LastSeq, ok && st.Sealed()
	}

	// Judge every segment before changing any.
	type judged struct {
		s *wseg
		k int
		v journal.Verdict
	}
	var js []judged
	closeJudged := func() {
		for _, j := range js {
			j.s.close()
		}
		closeAll(spares)
	}
	for _, k := range judge {
		var prevLast uint64
		if k > 0 && ents[k-1].Num+1 == ents[k].Num {
			if n := len(js); n > 0 && js[n-1].k == k-1 {
				prevLast = js[n-1].v.LastSeq
			} else if l, ok := sealedLast(k - 1); ok {
				prevLast = l
			}
		}
		seg, err := segfile.OpenEntry(ents[k], segfile.OpenOptions{Write: true, AllowShort: true})
		if err != nil {
			closeJudged()
			return err
		}
		s := &wseg{Seg: seg}
		js = append(js, judged{s: s, k: k})
		h := seg.Header()
		id, firstSeq := h.JournalID(), h.FirstSeq()
		if w.journalID == 0 {
			w.journalID = id
		} else if id != w.journalID {
			closeJudged()
			return journal.Corrupt(ents[k].Path, 16, journal.ErrBadHeader, "journal id %#x differs from the journal's %#x", id, w.journalID)
		}
		if prevLast != 0 && firstSeq != prevLast+1 {
			closeJudged()
			return journal.Corrupt(ents[k].Path, 32, journal.ErrSequence, "first seq %d does not follow the previous segment's last seq %d", firstSeq, prevLast)
		}
		if x, err := segfile.OpenIndex(w.dir, seg.Num, id, seg.Capacity, true); err == nil {
			s.idx = x
		}
		v := journal.Assess(seg.Path, seg.Data, journal.AssessOptions{Last: k == li, Successor: k < li, IndexBefore: s.idx.Before})
		if v.Kind == journal.Damage {
			closeJudged()
			return v.Err
		}
		js[len(js)-1].v = v
		// A sealed successor that was not judged must continue where this
		// segment's frames end: frames between are lost (damage).
		if k < li && k+1 < len(ents) && ents[k+1].Num == ents[k].Num+1 && (len(judge) == 0 || !contains(judge, k+1)) {
			h2, _, _, err := segfile.ReadHeader(w.dir, ents[k+1].Num)
			if err == nil && h2.FirstSeq() != v.LastSeq+1 {
				path := ents[k].Path
				closeJudged()
				return journal.Corrupt(path, v.End, journal.ErrSequence, "the frames end at seq %d, but the next segment starts at seq %d: frames are missing", v.LastSeq, h2.FirstSeq())
			}
		}
	}

	// Act.
	for n, j := range js {
		s, v := j.s, j.v
		last := n == len(js)-1
		st, _, _ := s.Header().State()
		s.st = st
		if v.Kind == journal.TornTail {
			if v.Extend {
				w.opts.Logf("writer: %v: extending to capacity and recovering", v.Err)
				if err := s.Extend(); err != nil {
					closeJudged()
					return err
				}
			}
			if v.CutTo > v.CutFrom {
				name, err := segfile.SaveBroken(s.Seg, v.CutFrom, v.CutTo, w.opts.Perm)
				if err != nil {
					closeJudged()
					return err
				}
				w.recovery.TornBytes += v.CutTo - v.CutFrom
				w.recovery.BrokenFile = name
				w.opts.Logf("writer: %s: torn tail of %d bytes at offset %d saved to %s and cleared", s.Path, v.CutTo-v.CutFrom, v.CutFrom, name)
			}
			if v.LostPublished > 0 {
				w.recovery.Lost += v.LostPublished
				w.opts.Logf("writer: %s: the cursor claimed %d bytes past the last frame (offset %d): published, not durable, lost", s.Path, v.LostPublished, v.End)
			}
		}
		end, sealed := v.End, v.Sealed
		clean := last && v.Kind == journal.Intact && !v.Scanned && st.Clean() && !v.NeedsSeal && !v.StateStale && !v.Sealed && !v.CursorBad
		if v.NeedsSeal {
			if end+journal.EndMarkerSize > s.Capacity {
				closeJudged()
				return journal.Corrupt(s.Path, end, journal.ErrBadHeader, "no room for the end marker at offset %d", end)
			}
			journal.PutFrame(s.Data[end:], v.LastSeq+1, v.LastTS, journal.TypeSegmentEnd, 0, 0, nil)
			end += journal.EndMarkerSize
			sealed = true
			w.recovery.Sealed = append(w.recovery.Sealed, s.Num)
		}
		if !clean {
			// The recovered end becomes the cursor and the durable
			// checkpoint: data synced first, then the state record, then
			// the header (format.md §8.6).
			s.SetCursor(end)
			if err := s.rebuildIndex(w, v); err != nil {
				closeJudged()
				return err
			}
			if err := s.Sync(0, int(end)); err != nil {
				closeJudged()
				return w.fail(err)
			}
			newSt := journal.State{DurableOffset: end, DurableSeq: v.LastSeq, WriterPID: w.pid}
			if sealed {
				newSt.Flags, newSt.LastSeq = journal.StateSealed, v.LastSeq
			}
			s.st = s.WriteState(newSt)
			if err := s.Sync(0, journal.SegmentHeaderSize); err != nil {
				closeJudged()
				return w.fail(err)
			}
		}
		if !last {
			s.close()
			continue
		}
		if s.idx == nil { // missing or unusable, and a clean segment skipped the rebuild above
			if err := s.rebuildIndex(w, v); err != nil {
				closeJudged()
				return err
			}
		}
		w.seg = s
		w.cursor, w.pubCursor, w.seq, w.pubSeq, w.lastTS = end, end, v.LastSeq, v.LastSeq, v.LastTS
		w.epoch = max(s.Header().Epoch(), 1)
		w.recovery.Clean = clean
		w.recovery.LastSeq = v.LastSeq
		if !clean {
			w.epoch++
			w.recovery.EpochStarted = true
		}
	}
	w.recovery.Epoch = w.epoch
	// The spare right after the active segment becomes the next one.
	for _, s := range spares {
		if w.prepared == nil && s.Num == w.seg.Num+1 && s.Header().JournalID() == w.journalID {
			x, err := segfile.OpenIndex(w.dir, s.Num, w.journalID, s.Capacity, true)
			if err != nil {
				if x, err = segfile.CreateIndex(w.dir, w.journalID, s.Num, s.Capacity, w.opts.Perm); err != nil {
					closeAll(spares)
					w.seg.close()
					return fmt.Errorf("writer: the index of the prepared segment %d: %w", s.Num, err)
				}
			}
			s.idx = x
			w.prepared = s
			continue
		}
		s.close()
		removeSegment(w.dir, s.Num)
	}
	return nil
}

func contains(xs []int, x int) bool {
	for _, y := range xs {
		if y == x {
			return true
		}
	}
	return false
}

// rebuildIndex makes the index agree with the recovered frames: entries
// below the checkpoint are kept (they were checked by the verdict's scan
// or are covered by the clean close), the rest rebuilt from the frames.
func (s *wseg) rebuildIndex(w *Writer, v journal.Verdict) error {
	id := w.journalIDOf(s)
	if s.idx == nil {
		if err := segfile.RebuildIndex(w.dir, s.Num, id, s.Data, v.End, w.opts.Perm); err != nil {
			return err
		}
		x, err := segfile.OpenIndex(w.dir, s.Num, id, s.Capacity, true)
		if err != nil {
			return err
		}
		s.idx = x
		return nil
	}
	st, _, _ := s.Header().State()
	from, prev := int64(journal.SegmentHeaderSize), s.Header().FirstSeq()-1
	if e, ok := s.idx.Before(min(st.DurableOffset, v.End)); ok && v.Scanned {
		// Keep the entries below the last one before the checkpoint, and
		// place the rest by the stride rule exactly as the appender would.
		from, prev = e.Offset, e.Seq-1
	}
	s.idx.TruncateAt(from)
	journal.ScanSegment(s.Path, s.Data, from, prev, v.End, func(f *journal.Frame) { s.idx.Add(f.Offset, f.Seq, f.TS) })
	s.idx.Publish()
	return s.idx.Sync()
}

func (w *Writer) journalIDOf(s *wseg) uint64 {
	if w.journalID != 0 {
		return w.journalID
	}
	return s.Header().JournalID()
}

// newJournal starts a journal with no activated segment: segment 1, seq 1,
// epoch 1 (the journal id of a leftover prepared segment is kept).
func (w *Writer) newJournal(spares []*wseg) error {
	w.journalID = newJournalID()
	if len(spares) > 0 {
		w.journalID = spares[0].Header().JournalID()
	}
	if w.opts.JournalID != 0 {
		w.journalID = w.opts.JournalID
	}
	first := max(w.opts.FirstSeq, 1)
	for _, s := range spares {
		s.close()
		removeSegment(w.dir, s.Num)
	}
	seg, x, err := segfile.Create(w.dir, w.journalID, 1, w.opts.SegmentSize, time.Now().UnixNano(), w.opts.Perm)
	if err != nil {
		return err
	}
	s := &wseg{Seg: seg, idx: x}
	w.epoch = 1
	s.st = seg.Activate(first, w.epoch, w.pid)
	w.seq, w.pubSeq = first-1, first-1
	w.seg, w.cursor, w.pubCursor = s, journal.SegmentHeaderSize, journal.SegmentHeaderSize
	w.recovery = Recovery{Epoch: 1, Clean: true}
	return w.syncRange(s, 0, journal.SegmentHeaderSize)
}

// continueAfterSealed opens a journal whose last segment is compressed (so
// sealed): the writer continues in a new segment, in a new epoch.
func (w *Writer) continueAfterSealed(e segfile.Entry) error {
	seg, err := segfile.OpenEntry(e, segfile.OpenOptions{LoadArchive: true})
	if err != nil {
		return err
	}
	h := seg.Header()
	st, _, ok := h.State()
	if !ok || !st.Sealed() {
		seg.Close()
		return journal.Corrupt(seg.Path, journal.SegOffStateA, journal.ErrBadHeader, "a compressed segment that is not sealed")
	}
	w.journalID = h.JournalID()
	w.seq, w.pubSeq = st.LastSeq, st.LastSeq
	w.epoch = max(h.Epoch(), 1) + 1
	w.recovery = Recovery{Epoch: w.epoch, LastSeq: st.LastSeq, EpochStarted: true}
	// The catalogue comes from the archive (it re-states every definition).
	journal.ScanSegment(seg.Path, seg.Data, journal.SegmentHeaderSize, h.FirstSeq()-1, int64(len(seg.Data)), func(f *journal.Frame) {
		w.catalog.Apply(f)
		w.lastTS = f.TS
	})
	seg.Close()
	next, x, err := segfile.Create(w.dir, w.journalID, e.Num+1, w.opts.SegmentSize, time.Now().UnixNano(), w.opts.Perm)
	if err != nil {
		return err
	}
	s := &wseg{Seg: next, idx: x}
	s.st = next.Activate(w.seq+1, w.epoch, w.pid)
	w.seg, w.cursor, w.pubCursor = s, journal.SegmentHeaderSize, journal.SegmentHeaderSize
	w.recovery.EpochStarted = false // already in its own segment
	w.needRestate = true
	return w.syncRange(s, 0, journal.SegmentHeaderSize)
}

// loadCatalog learns the instruments from the active segment (which
// re-states every definition at its start): a walk over the frames that
// checksums only definitions and statuses.
func (w *Writer) loadCatalog() error {
	s := w.seg
	data := s.Data[:w.cursor]
	var f journal.Frame
	for off := int64(journal.SegmentHeaderSize); off+journal.FrameHeaderSize <= int64(len(data)); {
		sz := int64(journal.FrameSizeAt(data[off:]))
		if sz < journal.FrameHeaderSize {
			break
		}
		typ := journal.MsgType(uint16(data[off+24]) | uint16(data[off+25])<<8)
		if typ == journal.TypeInstrumentDef || typ == journal.TypeTradingStatus {
			if _, st := journal.DecodeFrameInto(data[off:], &f); st == journal.FrameOK {
				w.catalog.Apply(&f)
			}
		}
		off += int64(journal.Align8(int(sz)))
	}
	return nil
}

// tornActivation reports whether a segment whose header fails its check is
// a prepared segment whose activation a crash tore: no valid state record
// and not one non-zero byte of data.
func tornActivation(e segfile.Entry) bool {
	f, err := fsx.OpenRead(e.Path)
	if err != nil {
		return false
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil || st.Size() < journal.SegmentHeaderSize || st.Size() > journal.MaxSegmentSize {
		return false
	}
	m, err := mmap.Map(f, int(st.Size()), false)
	if err != nil {
		return false
	}
	defer mmap.Unmap(m)
	h := journal.HeaderOf(m)
	_, _, ok := h.State()
	return !ok && h.Cursor() == journal.SegmentHeaderSize && journal.AllZero(m[journal.SegmentHeaderSize:])
}

func (w *Writer) moveAside(nums []uint64, why string) error {
	var names []string
	for _, n := range nums {
		names = append(names, journal.SegmentName(n), journal.IndexName(n))
	}
	sub, err := segfile.MoveAside(w.dir, names, time.Now())
	if err != nil {
		return fmt.Errorf("writer: moving segments %v aside: %w", nums, err)
	}
	for _, n := range nums {
		w.recovery.MovedAside = append(w.recovery.MovedAside, fmt.Sprintf("%s/%s", sub, journal.SegmentName(n)))
	}
	w.opts.Logf("writer: segments %v: %s (now in %s)", nums, why, sub)
	return nil
}

// removeSegment deletes a segment that holds nothing (and its index).
func removeSegment(dir string, n uint64) {
	fsx.RemoveRegular(journal.SegmentPath(dir, n))
	fsx.RemoveRegular(journal.IndexPath(dir, n))
	fsx.SyncDir(dir)
}

func closeAll(ss []*wseg) {
	for _, s := range ss {
		s.close()
	}
}
