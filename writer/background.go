package writer

import (
	"os"
	"syscall"
	"time"

	"github.com/mdjournal/mdjournal/internal/fsx"
	"github.com/mdjournal/mdjournal/internal/mmap"
	"github.com/mdjournal/mdjournal/internal/segfile"
	"github.com/mdjournal/mdjournal/journal"
)

// background is the writer's helper goroutine. It keeps pages prefaulted
// ahead of the cursor, prepares the next segment before it is needed, runs
// Interval group commit, syncs and unmaps sealed segments, checks that the
// active segment is still the file of its name, and rebuilds sealed
// segments' indexes that a power cut left short. The appender never waits
// for it (except at a roll that finds no prepared segment).
func (w *Writer) background() {
	defer close(w.bgDone)
	var tick <-chan time.Time
	if w.opts.Durability.Mode == Interval {
		t := time.NewTicker(w.opts.Durability.Interval)
		defer t.Stop()
		tick = t.C
	}
	check := time.NewTicker(time.Second)
	defer check.Stop()
	synced := map[*wseg]int64{} // Interval: durable offset per segment
	w.repairIndexes()
	for {
		select {
		case <-w.stop:
			for {
				select {
				case r := <-w.retire:
					w.retireSegment(r, synced)
				default:
					return
				}
			}
		case r := <-w.retire:
			w.retireSegment(r, synced)
		case <-w.kick:
			w.drainRetire(synced)
			w.pretouch()
			w.prepareNext()
			if tick != nil {
				w.commitActive(synced)
			}
		case <-tick:
			w.drainRetire(synced) // older segments first: DurableSeq covers a prefix
			w.commitActive(synced)
		case <-check.C:
			if s := w.active.Load(); s != nil && w.failed.Load() == nil {
				if err := fsx.SameFile(s.File(), s.Path); err != nil {
					w.fail(err)
				}
			}
		}
	}
}

// pretouch prefaults the active segment up to PretouchAhead past the
// published cursor without changing its contents (MADV_POPULATE_WRITE), so
// the appender takes no page fault.
func (w *Writer) pretouch() {
	s := w.active.Load()
	if s == nil {
		return
	}
	cur := int64(s.Header().Cursor())
	to := min(cur+w.opts.PretouchAhead, s.Capacity)
	// In 4 MiB steps, so a roll (which changes the active segment) or Close
	// is noticed soon.
	for from := w.touchedTo.Load(); from < to && w.active.Load() == s; from = w.touchedTo.Load() {
		end := min(from&^4095+4<<20, to)
		mmap.PopulateWrite(s.Data[from&^4095 : end])
		// Store into each page too (see mmap.TouchWrite) — only well
		// ahead of the cursor, unless the appender itself is the caller
		// (Prefault): the touch never changes a byte, but it must not
		// race the appender's stores into the frames it is writing.
		lo := from &^ 4095
		if !w.touchAll.Load() {
			lo = max(lo, (int64(s.Header().Cursor())+touchMargin)&^4095)
		}
		if lo < end {
			mmap.TouchWrite(s.Data[lo:end])
		}
		if !w.touchedTo.CompareAndSwap(from, end) {
			return // a roll reset it for the next segment
		}
		select {
		case <-w.stop:
			return
		default:
		}
	}
}

// Prefault maps the active segment's pages ahead of the cursor now, on the
// caller's goroutine: the pages the background goroutine keeps prefaulted
// (PretouchAhead past the cursor; by default the rest of the segment), each
// stored into once (see mmap.TouchWrite), and it prepares the next segment
// the same way. The writer does this in the background anyway, from Open
// on; call Prefault before a stretch whose very first frames must take no
// page fault and share no CPU with that work — at the start of a session
// right after Open, or before timing a benchmark.
func (w *Writer) Prefault() error {
	if err := w.usable(); err != nil {
		return err
	}
	s := w.active.Load()
	if s == nil {
		return nil
	}
	to := min(int64(s.Header().Cursor())+w.opts.PretouchAhead, s.Capacity)
	// pretouch gives up a step whenever the background goroutine took it;
	// one of the two advances touchedTo each time, so this ends. Steps the
	// background goroutine takes meanwhile touch only past its margin; the
	// pages below are touched here.
	w.touchAll.Store(true)
	for w.active.Load() == s && w.touchedTo.Load() < to {
		w.pretouch()
	}
	w.touchAll.Store(false)
	if cur := int64(s.Header().Cursor()); w.active.Load() == s {
		mmap.TouchWrite(s.Data[cur&^4095 : min(cur+touchMargin, s.Capacity)])
	}
	// And the next segment, so that no heavy background work is left to
	// compete with the stretch that follows (prepareNext serialises with
	// the background goroutine's own call under prepMu).
	w.prepareNext()
	return nil
}

// touchMargin is how far ahead of the published cursor the background
// goroutine starts storing into pages (mmap.TouchWrite): farther than the
// appender can stage and write while one 4 MiB step is touched.
const touchMargin = 16 << 20

// prepareNext creates segment active+1 (reserved, mapped, header written,
// first pages prefaulted) if it does not exist yet.
func (w *Writer) prepareNext() {
	// Held while creating: a roll that comes now waits for this segment
	// instead of racing to create the same file.
	w.prepMu.Lock()
	defer w.prepMu.Unlock()
	s := w.active.Load()
	if s.Num+1 <= w.lastCreated {
		return // prepared already, or taken by a roll that has not switched yet
	}
	seg, x, err := segfile.Create(w.dir, w.journalID, s.Num+1, w.opts.SegmentSize, time.Now().UnixNano(), w.opts.Perm)
	if err != nil {
		w.opts.Logf("writer: preparing segment %d: %v (the roll will retry)", s.Num+1, err)
		return
	}
	w.lastCreated = seg.Num
	mmap.PopulateWrite(seg.Data[:min(w.opts.PretouchAhead, seg.Capacity)])
	mmap.TouchWrite(seg.Data[:min(w.opts.PretouchAhead, seg.Capacity)]) // nobody writes it before it is handed over
	if w.prepared != nil {
		w.prepared.close()
	}
	w.prepared = &wseg{Seg: seg, idx: x}
}

// commitActive group-commits the active segment, unless a roll has handed
// an older segment over that is not retired yet: the older one's frames
// and seal must reach the disk first (the next tick, after the drain).
func (w *Writer) commitActive(synced map[*wseg]int64) {
	s := w.active.Load() // loaded before pendingRetire: see roll
	if w.pendingRetire.Load() != 0 {
		w.drainRetire(synced)
		return
	}
	w.groupCommit(s, synced)
}

// groupCommit (Interval policy) makes s durable up to its published cursor:
// MS_SYNC of the new data, then the checkpoint in a new state record
// (offset and the seq of the last frame below it, found by walking frame
// lengths), then MS_SYNC of the header page.
func (w *Writer) groupCommit(s *wseg, synced map[*wseg]int64) {
	if s == nil || w.failed.Load() != nil {
		return
	}
	from, ok := synced[s]
	if !ok {
		w.durMu.Lock()
		from = s.st.DurableOffset
		w.durMu.Unlock()
	}
	cur := int64(s.Header().Cursor())
	if cur <= from {
		return
	}
	w.syncs.Add(1)
	if err := s.Sync(int(from), int(cur-from)); err != nil {
		w.fail(err)
		return
	}
	w.durMu.Lock()
	last := lastSeqBefore(s, from, cur, s.st.DurableSeq)
	if cur > s.st.DurableOffset { // an explicit Sync may have gone further
		st := s.st
		st.DurableOffset, st.DurableSeq = cur, last
		s.st = s.WriteState(st)
	}
	err := s.Sync(0, journal.SegmentHeaderSize)
	w.durMu.Unlock()
	if err != nil {
		w.fail(err)
		return
	}
	synced[s] = cur
	if w.pendingRetire.Load() == 0 { // every older segment is synced too
		w.raiseDurable(last)
	}
}

// lastSeqBefore walks the published frames in [from, cur) of s and returns
// the seq of the last data frame (last if there is none). Published bytes
// are immutable, so no checksum is needed here.
func lastSeqBefore(s *wseg, from, cur int64, last uint64) uint64 {
	var f journal.Frame
	for off := from; off < cur; {
		n, st := journal.DecodeFrameInto(s.Data[off:cur], &f)
		if st != journal.FrameOK {
			break
		}
		if f.Type != journal.TypeSegmentEnd {
			last = f.Seq
		}
		off += int64(n)
	}
	return last
}

// retireSegment finishes a sealed segment. Under Interval and Sync the
// successor's activation is made durable before the seal can be (so a
// durable seal always has an activated successor on disk), then the sealed
// segment's frames, index and state. Under None and Async nothing is synced
// now; the files stay open by descriptor until Sync or Close fsyncs them.
func (w *Writer) retireSegment(r retired, synced map[*wseg]int64) {
	s := r.old
	switch w.opts.Durability.Mode {
	case Interval:
		// The frames and end marker, then the successor's activation, then
		// the seal (format.md §4.3): a cut leaves either an unsealed last
		// segment, or a marker whose successor is activated — never a seal
		// without its marker or without an activated successor, nor a
		// segment that is not the last with a torn tail.
		w.groupCommit(s, synced)
		if w.failed.Load() == nil {
			w.syncs.Add(1)
			if err := r.next.Sync(0, journal.SegmentHeaderSize); err != nil {
				w.fail(err)
			}
		}
		w.durMu.Lock()
		seal := s.seal
		s.seal = nil
		w.durMu.Unlock()
		if seal != nil && w.failed.Load() == nil {
			w.durMu.Lock()
			st := s.st
			st.DurableOffset, st.DurableSeq = seal.end, seal.last
			st.Flags |= journal.StateSealed
			st.LastSeq = seal.last
			s.st = s.WriteState(st)
			w.durMu.Unlock()
			w.syncs.Add(1)
			if err := s.Sync(0, journal.SegmentHeaderSize); err != nil {
				w.fail(err)
			}
		}
		if w.failed.Load() == nil {
			if err := s.idx.Sync(); err != nil {
				w.fail(err)
			}
			w.durMu.Lock()
			d := s.st.DurableSeq
			w.durMu.Unlock()
			w.raiseDurable(d) // older segments were retired (and made durable) before this one
		}
	case Sync:
		if w.failed.Load() == nil {
			w.syncs.Add(1)
			if err := r.next.Sync(0, journal.SegmentHeaderSize); err != nil {
				w.fail(err)
			}
		}
		w.groupCommit(s, synced)
		if w.failed.Load() == nil {
			if err := s.idx.Sync(); err != nil {
				w.fail(err)
			}
		}
	case None, Async:
		if d, err := dupFile(s.File()); err != nil {
			w.fail(err)
		} else {
			w.keepForSync(d)
		}
		// The index and the successor's header: best effort by name (the
		// index is derived data; the successor is the active segment, which
		// Sync and Close sync themselves).
		if f, err := fsx.OpenRead(s.idx.Path); err == nil {
			w.keepForSync(f)
		}
	}
	delete(synced, s)
	s.close()
	w.pendingRetire.Add(-1)
}

// keepForSync keeps an open descriptor for a later fsync: compress or prune
// may rename or delete the file meanwhile, and the writer must not depend
// on names to make what it sealed durable (format.md §9).
func (w *Writer) keepForSync(f *os.File) {
	w.unsyncedMu.Lock()
	w.unsynced = append(w.unsynced, f)
	w.unsyncedMu.Unlock()
}

// dupFile duplicates f's descriptor (the segment's own is closed with it).
func dupFile(f *os.File) (*os.File, error) {
	fd, err := syscall.Dup(int(f.Fd()))
	if err != nil {
		return nil, &os.PathError{Op: "dup", Path: f.Name(), Err: err}
	}
	syscall.CloseOnExec(fd)
	return os.NewFile(uintptr(fd), f.Name()), nil
}

// drainRetire retires every segment already handed over, without waiting.
func (w *Writer) drainRetire(synced map[*wseg]int64) {
	for {
		select {
		case r := <-w.retire:
			w.retireSegment(r, synced)
		default:
			return
		}
	}
}

// repairIndexes rebuilds the index of every sealed segment whose index is
// missing or does not check out (a power cut can leave one short): indexes
// are derived data, and one left broken would be reported forever.
func (w *Writer) repairIndexes() {
	ents, err := segfile.List(w.dir)
	if err != nil {
		return
	}
	// Not interrupted by Close: a writer that opens and closes at once must
	// leave the indexes repaired too (Close waits; checking an intact index
	// costs an open and a header check).
	for _, e := range ents {
		if e.Num >= w.active.Load().Num {
			return
		}
		h, _, _, err := segfile.ReadHeader(w.dir, e.Num)
		if err != nil || h.Prepared() {
			continue
		}
		x, err := segfile.OpenIndex(w.dir, e.Num, h.JournalID(), int64(h.Capacity()), false)
		if err == nil {
			x.Close()
			continue
		}
		seg, err := segfile.OpenEntry(e, segfile.OpenOptions{LoadArchive: true})
		if err != nil {
			continue
		}
		if v := journal.Assess(seg.Path, seg.Data, journal.AssessOptions{Full: true}); v.Kind == journal.Intact && v.Sealed {
			if err := segfile.RebuildIndex(w.dir, e.Num, h.JournalID(), seg.Data, v.End, w.opts.Perm); err == nil {
				w.opts.Logf("writer: rebuilt the index of segment %d", e.Num)
			}
		}
		seg.Close()
	}
}
