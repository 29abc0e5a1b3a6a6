package writer

import (
	"time"

	"github.com/mdjournal/mdjournal/internal/mmap"
	"github.com/mdjournal/mdjournal/journal"
)

// background is the writer's helper goroutine. It keeps pages prefaulted
// ahead of the cursor, prepares the next segment before it is needed, runs
// Interval group commit, and syncs and unmaps sealed segments. The appender
// never waits for it (except at a roll that finds no prepared segment).
func (w *Writer) background() {
	defer close(w.bgDone)
	var tick <-chan time.Time
	if w.opts.Durability.Mode == Interval {
		t := time.NewTicker(w.opts.Durability.Interval)
		defer t.Stop()
		tick = t.C
	}
	synced := map[*wseg]int64{} // Interval: durable offset per segment
	for {
		select {
		case <-w.stop:
			for {
				select {
				case s := <-w.retire:
					w.retireSegment(s, synced)
				default:
					return
				}
			}
		case s := <-w.retire:
			w.retireSegment(s, synced)
		case <-w.kick:
			w.drainRetire(synced)
			w.pretouch()
			w.prepareNext()
			if tick != nil {
				w.groupCommit(w.active.Load(), synced)
			}
		case <-tick:
			w.drainRetire(synced) // older segments first: DurableSeq covers a prefix
			w.groupCommit(w.active.Load(), synced)
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
	cur := int64(s.hdr.Cursor())
	to := min(cur+w.opts.PretouchAhead, s.capacity)
	// In 4 MiB steps, so a roll (which changes the active segment) or Close
	// is noticed soon.
	for from := w.touchedTo.Load(); from < to && w.active.Load() == s; from = w.touchedTo.Load() {
		end := min(from&^4095+4<<20, to)
		mmap.PopulateWrite(s.m[from&^4095 : end])
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

// prepareNext creates segment active+1 (reserved, mapped, header written,
// first pages prefaulted) if it does not exist yet.
func (w *Writer) prepareNext() {
	// Held while creating: a roll that comes now waits for this segment
	// instead of racing to create the same file.
	w.prepMu.Lock()
	defer w.prepMu.Unlock()
	s := w.active.Load()
	if s.num+1 <= w.lastCreated {
		return // prepared already, or taken by a roll that has not switched yet
	}
	p, err := createSegment(w.dir, w.journalID, s.num+1, w.opts.SegmentSize, time.Now().UnixNano())
	if err != nil {
		w.opts.Logf("writer: preparing segment %d: %v (the roll will retry)", s.num+1, err)
		return
	}
	w.lastCreated = p.num
	mmap.PopulateWrite(p.m[:min(w.opts.PretouchAhead, p.capacity)])
	if w.prepared != nil {
		w.prepared.close()
	}
	w.prepared = p
}

// groupCommit (Interval policy) makes s durable up to its published cursor:
// MS_SYNC of the new data, then the checkpoint (offset and the seq of the
// last frame below it, found by walking frame lengths), then MS_SYNC of the
// header page.
func (w *Writer) groupCommit(s *wseg, synced map[*wseg]int64) {
	if s == nil || w.failed.Load() != nil {
		return
	}
	from, ok := synced[s]
	if !ok {
		from = int64(s.hdr.DurableOffset())
	}
	cur := int64(s.hdr.Cursor())
	if cur <= from {
		return
	}
	if err := mmap.Sync(s.m, int(from), int(cur-from), true); err != nil {
		w.fail(err)
		return
	}
	last := lastSeqBefore(s, from, cur)
	w.durMu.Lock()
	if uint64(cur) > s.hdr.DurableOffset() { // an explicit Sync may have gone further
		s.hdr.SetDurable(uint64(cur), last)
	}
	err := mmap.Sync(s.m, 0, journal.SegmentHeaderSize, true)
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

// lastSeqBefore walks the published frames in [from, cur) of s and returns the
// seq of the last data frame (the segment's durable seq if there is none).
// Published bytes are immutable, so no checksum is needed here.
func lastSeqBefore(s *wseg, from, cur int64) uint64 {
	last := s.hdr.DurableSeq()
	for off := from; off < cur; {
		f, n, st := journal.DecodeFrame(s.m[off:cur])
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

func (w *Writer) retireSegment(s *wseg, synced map[*wseg]int64) {
	switch w.opts.Durability.Mode {
	case Interval:
		w.groupCommit(s, synced)
	case None, Async:
		// Not synced here (the policy does not ask for it); Sync and Close
		// fsync it before they claim durability.
		w.unsyncedMu.Lock()
		w.unsynced = append(w.unsynced, s.num)
		w.unsyncedMu.Unlock()
	}
	delete(synced, s)
	s.close()
	w.pendingRetire.Add(-1)
}

// drainRetire retires every segment already handed over, without waiting.
func (w *Writer) drainRetire(synced map[*wseg]int64) {
	for {
		select {
		case s := <-w.retire:
			w.retireSegment(s, synced)
		default:
			return
		}
	}
}
