package verify

import (
	"errors"
	"fmt"

	"github.com/mdjournal/mdjournal/book"
	"github.com/mdjournal/mdjournal/journal"
	"github.com/mdjournal/mdjournal/reader"
	"github.com/mdjournal/mdjournal/snapshot"
)

// ErrSnapshot is the sentinel of every snapshot finding: the snapshot file
// (format.md §11) disagrees with the journal it claims to mirror.
var ErrSnapshot = errors.New("verify: snapshot disagrees with the journal")

// SnapshotSev marks findings about a snapshot file. A snapshot is derived
// data: the fix is to let the maintainer rebuild it (restart the importer or
// booksnap writer with the same --snapshot, or delete the file), never to
// touch the journal.
const SnapshotSev Severity = "snapshot"

// SnapshotReport is the result of checking a snapshot against a journal.
type SnapshotReport struct {
	Path        string
	JournalID   uint64
	LastApplied uint64
	Depth       int
	Capacity    int
	Slots       int // slots holding a book (seq > 0)
	Checked     int // slots compared with the rebuilt book
	Problems    []Problem
}

func (s *SnapshotReport) add(off int64, format string, args ...any) {
	s.Problems = append(s.Problems, Problem{Severity: SnapshotSev,
		Err: journal.Corrupt(s.Path, off, ErrSnapshot, format, args...)})
}

// Snapshot checks the snapshot file at path against the journal in dir,
// whose verify report is rep: the journal id must match, last_applied must
// not pass the journal's last seq, and every written slot must equal the book
// rebuilt from the journal (book.Books) at that slot's seq — its top Depth
// levels per side and its last trade. Slots must also not be stale: every
// book-changing frame of an instrument up to last_applied must be reflected
// (slot seq ≥ the book's seq at last_applied).
func Snapshot(dir, path string, rep *Report) (*SnapshotReport, error) {
	out := &SnapshotReport{Path: path}
	r, err := snapshot.Open(path)
	if err != nil {
		var ce *journal.CorruptionError
		if errors.As(err, &ce) {
			out.Problems = append(out.Problems, Problem{Severity: SnapshotSev, Err: ce})
			return out, nil
		}
		return nil, err
	}
	defer r.Close()
	out.JournalID, out.LastApplied, out.Depth, out.Capacity = r.JournalID(), r.LastApplied(), r.Depth(), r.Capacity()
	if rep.JournalID != 0 && r.JournalID() != rep.JournalID {
		out.add(16, "snapshot is of journal %016x, the journal in %s is %016x: it mirrors another journal (delete it; the maintainer recreates it)",
			r.JournalID(), dir, rep.JournalID)
		return out, nil
	}
	if out.LastApplied > rep.LastSeq {
		out.add(snapshot.HdrOffLastApplied, "last_applied %d is past the journal's last seq %d: the snapshot saw frames the journal lost (restart the maintainer to rebuild it)",
			out.LastApplied, rep.LastSeq)
	}
	slotSize := int64(snapshot.SlotSize(out.Depth))
	slotOff := func(i uint32) int64 { return snapshot.HeaderSize + int64(i)*slotSize }
	slots := map[uint32]*snapshot.Book{}
	var upTo uint64 = out.LastApplied
	for i := 0; i < out.Capacity; i++ {
		b := &snapshot.Book{}
		if err := r.Read(uint32(i), b); err != nil {
			var ce *journal.CorruptionError
			if errors.As(err, &ce) {
				out.Problems = append(out.Problems, Problem{Severity: SnapshotSev, Err: ce})
				continue
			}
			out.add(slotOff(uint32(i)), "slot %d unreadable: %v", i, err)
			continue
		}
		if b.Seq == 0 {
			continue
		}
		out.Slots++
		slots[uint32(i)] = b
		if b.Seq > rep.LastSeq {
			out.add(slotOff(uint32(i))+8, "slot %d (%s) has seq %d, past the journal's last seq %d", i, b.SymbolString(), b.Seq, rep.LastSeq)
			continue
		}
		upTo = max(upTo, b.Seq)
	}
	upTo = min(upTo, rep.LastSeq)
	if upTo == 0 {
		return out, nil
	}
	jr, err := reader.Open(dir, reader.Options{From: reader.Start()})
	if err != nil {
		if errors.Is(err, reader.ErrOutOfRange) {
			out.add(0, "cannot rebuild books: %v", err)
			return out, nil
		}
		return nil, err
	}
	defer jr.Close()
	books := book.NewBooks(0)
	compared := map[uint32]bool{}
	bids := make([]book.Level, out.Depth)
	asks := make([]book.Level, out.Depth)
	for jr.LastSeq() < upTo {
		f, ok, err := jr.TryNext()
		if err != nil {
			out.add(0, "cannot rebuild books past seq %d: %v (run journalctl verify --dir %s)", jr.LastSeq(), err, dir)
			break
		}
		if !ok {
			break
		}
		if !book.Affects(f.Type) {
			if f.Seq == out.LastApplied {
				checkStale(out, books, slots, slotOff)
			}
			continue
		}
		books.ApplyFrame(&f) // a refused frame leaves the book's seq alone, as in the maintainer
		if s, ok := slots[f.Instrument]; ok && s.Seq == f.Seq {
			b, _ := books.Get(f.Instrument)
			compared[f.Instrument] = true
			out.Checked++
			compareSlot(out, f.Instrument, slotOff(f.Instrument), s, b, bids, asks)
		}
		if f.Seq == out.LastApplied {
			checkStale(out, books, slots, slotOff)
		}
	}
	for id, s := range slots {
		if !compared[id] && s.Seq <= upTo && s.Seq <= jr.LastSeq() {
			out.add(slotOff(id)+8, "slot %d (%s) has seq %d, which is not a frame that changes instrument %d's book", id, s.SymbolString(), s.Seq, id)
		}
	}
	return out, nil
}

// checkStale runs at last_applied: every instrument's book must be in its
// slot by then.
func checkStale(out *SnapshotReport, books *book.Books, slots map[uint32]*snapshot.Book, slotOff func(uint32) int64) {
	books.Each(func(id uint32, b *book.Book) {
		if int(id) >= out.Capacity || b.Seq() == 0 {
			return
		}
		s := slots[id]
		var seq uint64
		if s != nil {
			seq = s.Seq
		}
		if seq < b.Seq() {
			out.add(slotOff(id)+8, "slot %d is stale: seq %d, but instrument %d changed at seq %d ≤ last_applied %d", id, seq, id, b.Seq(), out.LastApplied)
		}
	})
}

func compareSlot(out *SnapshotReport, id uint32, off int64, s *snapshot.Book, b *book.Book, bids, asks []book.Level) {
	if b == nil {
		out.add(off, "slot %d (%s) seq %d: the journal builds no book for instrument %d", id, s.SymbolString(), s.Seq, id)
		return
	}
	nb, na := b.Top(journal.SideBid, bids), b.Top(journal.SideAsk, asks)
	scale := s.PriceScale
	if d, ok := b.Def(); ok {
		scale = d.PriceScale
		if d.SymbolString() != s.SymbolString() || d.PriceScale != s.PriceScale {
			out.add(off+24, "slot %d: symbol %q scale %d, the journal defines %q scale %d", id, s.SymbolString(), s.PriceScale, d.SymbolString(), d.PriceScale)
		}
	}
	if d := diffLevels("bid", s.Bids, bids[:nb], scale); d != "" {
		out.add(off+96, "slot %d (%s) at seq %d: %s", id, s.SymbolString(), s.Seq, d)
	}
	if d := diffLevels("ask", s.Asks, asks[:na], scale); d != "" {
		out.add(off+96+16*int64(out.Depth), "slot %d (%s) at seq %d: %s", id, s.SymbolString(), s.Seq, d)
	}
	if px, qty, n := b.LastTrade(); n > 0 && (px != s.LastTrade.Price || qty != s.LastTrade.Qty) {
		out.add(off+56, "slot %d (%s) at seq %d: last trade %s x %d, the journal says %s x %d", id, s.SymbolString(), s.Seq,
			journal.FormatPrice(s.LastTrade.Price, scale), s.LastTrade.Qty, journal.FormatPrice(px, scale), qty)
	}
}

func diffLevels(side string, got []snapshot.Level, want []book.Level, scale int32) string {
	if len(got) != len(want) {
		return fmt.Sprintf("%d %s levels, the rebuilt book has %d", len(got), side, len(want))
	}
	for i := range got {
		if got[i].Price != want[i].Price || got[i].Qty != want[i].Qty {
			return fmt.Sprintf("%s level %d is %s x %d, the rebuilt book has %s x %d", side, i,
				journal.FormatPrice(got[i].Price, scale), got[i].Qty, journal.FormatPrice(want[i].Price, scale), want[i].Qty)
		}
	}
	return ""
}
