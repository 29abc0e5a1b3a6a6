package writer

import (
	"fmt"
	"time"

	"github.com/mdjournal/mdjournal/internal/fsx"
	"github.com/mdjournal/mdjournal/internal/segfile"
	"github.com/mdjournal/mdjournal/journal"
)

// roll seals the active segment and switches to the prepared one
// (format.md §4.3). Order matters for readers and for recovery:
//
//  1. the staged frames of the old segment are committed;
//  2. under Sync, the old segment's frames are made durable before the next
//     segment's header can be;
//  3. the next segment is activated (first_seq, epoch, first state record)
//     — under Sync its header is made durable now, under Interval the
//     background goroutine makes it durable before the old segment's seal;
//  4. the end marker is written into the old segment and published, and the
//     old segment's state says sealed;
//  5. the definitions and statuses in effect are re-stated as the first
//     frames of the new segment (format.md §3.4).
//
// A reader that sees the end marker always finds an activated successor.
func (w *Writer) roll() error {
	old := w.seg
	w.commitPending()
	w.durMu.Lock() // the background group commit writes old.st
	oldSealed := old.st.Sealed()
	w.durMu.Unlock()
	if w.opts.Durability.Mode == Sync && w.cursor > w.syncedOff && !oldSealed {
		if err := w.syncRange(old, int(w.syncedOff), int(w.cursor-w.syncedOff)); err != nil {
			return err
		}
	}
	next, err := w.takePrepared()
	if err != nil {
		return w.fail(fmt.Errorf("roll: %w", err))
	}
	firstSeq := w.seq + 1
	next.st = next.Activate(firstSeq, w.epoch, w.pid)
	if w.opts.Durability.Mode == Sync {
		if err := w.syncRange(next, 0, journal.SegmentHeaderSize); err != nil {
			return err
		}
	}
	if !oldSealed {
		end := w.cursor
		word := journal.PutFrameBody(old.Data[end:], firstSeq, w.lastTS, journal.TypeSegmentEnd, 0, 0, nil)
		old.StoreCommit(end, word)
		end += journal.EndMarkerSize
		old.SetCursor(end)
		old.idx.Publish()
		w.pubCursor, w.cursor = end, end
		if w.opts.Durability.Mode == Interval {
			// The seal is written by the background goroutine after the
			// frames and the successor's activation are durable: a seal
			// never reaches the disk before either (format.md §4.3).
			w.durMu.Lock()
			old.seal = &sealInfo{end: end, last: w.seq}
			w.durMu.Unlock()
		} else {
			w.writeState(old, func(st *journal.State) { st.Flags |= journal.StateSealed; st.LastSeq = w.seq })
		}
	}
	w.pubSeq = w.seq
	if w.opts.Durability.Mode == Sync {
		if err := w.syncPublished(); err != nil {
			return err
		}
	}
	w.seg = next
	w.cursor, w.pubCursor, w.syncedOff = journal.SegmentHeaderSize, journal.SegmentHeaderSize, journal.SegmentHeaderSize
	if w.ctlM != nil {
		if err := w.setActiveSegment(next.Num); err != nil {
			return err
		}
	}
	// Counted before the switch is visible: the background goroutine
	// checks pendingRetire after loading the active segment, so it never
	// makes the new segment's frames durable before the old one is retired.
	w.pendingRetire.Add(1)
	w.active.Store(next)
	w.touchedTo.Store(min(w.opts.PretouchAhead, next.Capacity))
	w.kickAt = journal.SegmentHeaderSize
	if w.ctlM != nil {
		if err := w.wake(); err != nil {
			return err
		}
	}
	w.stats.Rolls++
	w.retire <- retired{old: old, next: next} // the background goroutine syncs (Interval) and unmaps it
	w.kickNow()
	w.restate()
	return nil
}

// restate writes the catalogue (definitions, then statuses) as the first
// frames of a new segment, flagged FrameRestated, stamped with the last
// frame's time. They are staged: they become visible with the batch that
// caused the roll.
func (w *Writer) restate() {
	if w.opts.NoRestate {
		return
	}
	defs, defIDs, statuses, statusIDs := w.catalog.Restatement()
	var buf [32]byte
	for i := range defs {
		w.put(journal.TypeInstrumentDef, journal.FrameRestated, defIDs[i], w.lastTS, defs[i].Encode(buf[:]), 0, 0, int64(journal.FrameSpace(32)))
		w.stats.Restated++
	}
	for i := range statuses {
		w.put(journal.TypeTradingStatus, journal.FrameRestated, statusIDs[i], w.lastTS, statuses[i].Encode(buf[:]), 0, 0, int64(journal.FrameSpace(16)))
		w.stats.Restated++
	}
}

// takePrepared returns segment active+1, prepared by the background
// goroutine (waiting if it is being created right now) or, failing that,
// created here (a roll stall). A prepared segment that was deleted or
// replaced under the writer is refused: frames written to an unlinked file
// would exist nowhere.
func (w *Writer) takePrepared() (*wseg, error) {
	w.prepMu.Lock()
	defer w.prepMu.Unlock()
	p := w.prepared
	w.prepared = nil
	if p != nil && p.Num == w.seg.Num+1 {
		if err := fsx.SameFile(p.File(), p.Path); err != nil {
			p.close()
			return nil, fmt.Errorf("the prepared segment: %w", err)
		}
		return p, nil
	}
	if p != nil {
		p.close()
	}
	w.stats.RollStalls++
	s, x, err := segfile.Create(w.dir, w.journalID, w.seg.Num+1, w.opts.SegmentSize, time.Now().UnixNano(), w.opts.Perm)
	if err != nil {
		return nil, err
	}
	w.lastCreated = s.Num
	return &wseg{Seg: s, idx: x}, nil
}
