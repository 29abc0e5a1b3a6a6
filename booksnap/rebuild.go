package booksnap

import (
	"errors"
	"fmt"
	"slices"

	"github.com/mdjournal/mdjournal/book"
	"github.com/mdjournal/mdjournal/journal"
	"github.com/mdjournal/mdjournal/reader"
	"github.com/mdjournal/mdjournal/snapshot"
)

// Source says where the books Start rebuilt came from.
type Source string

// Sources of a rebuild.
const (
	// FromJournal: the journal holds every frame from seq 1; the books were
	// replayed from it and are exact.
	FromJournal Source = "journal"
	// FromSnapshot: the journal's first segments were pruned (its first
	// retained frame is seq F > 1), and the snapshot file (same journal,
	// intact, last_applied L ≥ F−1, no slot past the journal's end) bridged
	// the gap: each book was seeded from its slot (seq S) and then given
	// the retained frames of its instrument after S. A book whose slot was
	// not full (fewer than the file's depth levels on each side) is exact;
	// one whose slot was full lacks the levels below it (Incomplete).
	FromSnapshot Source = "snapshot"
	// FromRetained: the journal was pruned and no snapshot bridged the
	// gap; with Config.AllowIncomplete the books were built from the
	// retained frames alone (every segment starts with the instrument
	// definitions in effect, format.md §3.4, so every instrument is known),
	// and every book is Incomplete: it lacks whatever the pruned frames put
	// in it and later frames did not change.
	FromRetained Source = "retained"
)

// Rebuild says how Start (CatchUp) rebuilt the books.
type Rebuild struct {
	// Source says where the books came from.
	Source Source
	// FirstSeq is the journal's first retained frame (1 if nothing was
	// pruned; 0 if the journal is empty).
	FirstSeq uint64
	// UpTo is the last seq applied: the writer's last seq.
	UpTo uint64
	// SnapshotSeq is, for FromSnapshot, the file's last_applied the books
	// continued from.
	SnapshotSeq uint64
	// Replaced says why the snapshot file was replaced by a new one ("" if
	// it was kept, or created where there was none).
	Replaced string
	// Incomplete lists the books that may not be their instrument's whole
	// book (only with Config.AllowIncomplete: otherwise Start refuses).
	Incomplete []Incomplete
}

// Incomplete names a book that may lack levels.
type Incomplete struct {
	Instrument uint32 // instrument id
	Symbol     string // its symbol, if a definition is known
	Reason     string // why its book may lack levels
}

// Rebuild returns how the last Start or CatchUp rebuilt the books.
func (m *Maintainer) Rebuild() Rebuild { return m.rebuild }

// ErrPruned matches *PrunedError.
var ErrPruned = errors.New("booksnap: the journal's first segments were pruned: the books cannot be rebuilt exactly")

// PrunedError is Start refusing to rebuild the books from a journal whose
// first segments were pruned. It says what the snapshot file lacks and what
// would let the maintainer start.
type PrunedError struct {
	Dir      string // the journal
	Snapshot string // the snapshot file
	// FirstSeq is the journal's first retained frame.
	FirstSeq uint64
	// Why the snapshot file cannot bridge the gap, or which of its books it
	// cannot give whole.
	Why string
	// Incomplete lists the books that would be incomplete.
	Incomplete []Incomplete
}

// Error says what is missing and what would let the maintainer start.
func (e *PrunedError) Error() string {
	s := fmt.Sprintf("booksnap: the journal in %s retains frames from seq %d (earlier segments were pruned) and %s", e.Dir, e.FirstSeq, e.Why)
	if len(e.Incomplete) > 0 {
		s += fmt.Sprintf("; the books of instruments %s would be incomplete", listIncomplete(e.Incomplete))
	}
	return s + fmt.Sprintf(". To start: restore the pruned segments (raw or .seg.zst), or give the maintainer a snapshot of this journal closed cleanly at a seq ≥ %d with a Depth above every book's depth, or set Config.AllowIncomplete to accept the incomplete books", e.FirstSeq-1)
}

// Unwrap returns ErrPruned.
func (e *PrunedError) Unwrap() error { return ErrPruned }

// CatchUp rebuilds every book from the journal in dir up to seq upTo (the
// writer's LastSeq), republishes every slot and sets the snapshot's
// last-applied seq to upTo. Until then readers keep seeing the snapshot's
// previous content. Where the books come from (Rebuild):
//
//   - a journal that still holds seq 1 is replayed from it (FromJournal);
//   - a pruned journal continues from the snapshot file if it bridges the
//     gap (FromSnapshot): refused unless every book it seeds is whole, or
//     Config.AllowIncomplete;
//   - otherwise a pruned journal is refused (*PrunedError), or, with
//     Config.AllowIncomplete, rebuilt from its retained frames
//     (FromRetained).
//
// The file is kept and republished in place if it fits (same journal, depth
// and capacity, intact, not ahead of the journal); otherwise a new file is
// built beside it and renamed over it once complete. A book frame of an id
// beyond Capacity in the journal is a *CapacityError. On any error the file
// is left as it was (or not created) and closed: Snapshot returns nil.
func (m *Maintainer) CatchUp(dir string, upTo uint64) error {
	if !m.started {
		return errors.New("booksnap: CatchUp before Start or Open")
	}
	if m.snap == nil {
		if err := m.openExisting(); err != nil {
			return err
		}
	}
	err := m.catchUp(dir, upTo)
	if err != nil && m.snap != nil {
		m.snap.Close()
		m.snap = nil
	}
	return err
}

// seed is one slot of the old file a FromSnapshot rebuild starts from.
type seed struct {
	slot snapshot.Book
	full bool // Depth levels on a side: levels below are unknown
}

func (m *Maintainer) catchUp(dir string, upTo uint64) error {
	old := m.snap
	for _, b := range m.books {
		if b != nil {
			b.Reset()
		}
	}
	clear(m.tradeTS)
	m.rebuild = Rebuild{UpTo: upTo, Source: FromJournal}
	misfit := m.misfit(old)
	// Read the old file's slots: to know whether it is ahead of the journal,
	// and to seed the books if the journal was pruned.
	var seeds map[uint32]*seed
	ahead := ""
	if old != nil && old.JournalID() == m.journalID && old.Intact() {
		seeds = map[uint32]*seed{}
		if old.LastApplied() > upTo {
			ahead = fmt.Sprintf("its last_applied %d is past the journal's last seq %d (it mirrored frames a crash then lost)", old.LastApplied(), upTo)
		}
		for i := range uint32(old.Capacity()) {
			s := &seed{}
			if err := old.Read(i, &s.slot); err != nil {
				return fmt.Errorf("booksnap: %w", err)
			}
			if s.slot.Seq == 0 {
				continue
			}
			if s.slot.Seq > upTo && ahead == "" {
				ahead = fmt.Sprintf("its slot %d has seq %d, past the journal's last seq %d (it mirrored frames a crash then lost)", i, s.slot.Seq, upTo)
			}
			s.full = len(s.slot.Bids) == old.Depth() || len(s.slot.Asks) == old.Depth()
			seeds[i] = s
		}
	}
	if misfit == "" && ahead != "" {
		misfit = ahead
	}
	if upTo > 0 {
		if err := m.replay(dir, upTo, old, seeds, ahead); err != nil {
			return err
		}
	}
	rb := &m.rebuild
	if len(rb.Incomplete) > 0 && !m.cfg.AllowIncomplete {
		why := fmt.Sprintf("snapshot %s holds only the top %d levels of some books", m.cfg.Path, old.Depth())
		return &PrunedError{Dir: dir, Snapshot: m.cfg.Path, FirstSeq: rb.FirstSeq, Why: why, Incomplete: rb.Incomplete}
	}
	for _, x := range rb.Incomplete {
		m.cfg.Logf("booksnap: instrument %d %s: book may be incomplete: %s", x.Instrument, x.Symbol, x.Reason)
	}
	publishAll := func(w *snapshot.Writer) {
		for id, b := range m.books {
			if b == nil || b.Seq() == 0 {
				continue
			}
			if d, ok := b.Def(); ok {
				w.SetInstrument(uint32(id), d.Symbol, d.PriceScale)
			}
			m.publishTo(w, uint32(id), b)
		}
		w.Advance(upTo)
	}
	if old == nil || misfit != "" {
		return m.replace(misfit, publishAll)
	}
	publishAll(old)
	return nil
}

// replay applies the journal's frames up to upTo to the books, seeding them
// from the old file's slots first if the journal was pruned and the file
// bridges the gap.
func (m *Maintainer) replay(dir string, upTo uint64, old *snapshot.Writer, seeds map[uint32]*seed, ahead string) error {
	r, err := reader.Open(dir, reader.Options{From: reader.Start()})
	if err != nil {
		return fmt.Errorf("booksnap: catch-up: %w", err)
	}
	defer r.Close()
	rb := &m.rebuild
	var skip []uint64 // FromSnapshot: per instrument, the slot's seq
	for r.LastSeq() < upTo {
		f, ok, err := r.TryNext()
		if err != nil {
			return fmt.Errorf("booksnap: catch-up: %w", err)
		}
		if !ok {
			return fmt.Errorf("booksnap: catch-up: journal %s ends at seq %d, before %d", dir, r.LastSeq(), upTo)
		}
		if rb.FirstSeq == 0 {
			rb.FirstSeq = f.Seq
			rb.Source = FromJournal
			if f.Seq > 1 {
				if why := m.bridges(old, ahead, f.Seq); why != "" {
					if !m.cfg.AllowIncomplete {
						return &PrunedError{Dir: dir, Snapshot: m.cfg.Path, FirstSeq: f.Seq, Why: why}
					}
					rb.Source = FromRetained
				} else {
					rb.Source, rb.SnapshotSeq = FromSnapshot, old.LastApplied()
					if skip, err = m.seed(old, seeds); err != nil {
						return err
					}
				}
			}
		}
		m.stats.Replayed++
		if book.Affects(f.Type) && f.Instrument >= uint32(len(m.books)) {
			return &CapacityError{Path: m.cfg.Path, Instrument: f.Instrument, Capacity: m.cfg.Capacity, Seq: f.Seq}
		}
		if skip != nil && book.Affects(f.Type) && f.Seq <= skip[f.Instrument] {
			// Already in the slot the book was seeded from. A definition
			// still restores what the slot does not keep (the tick size),
			// without moving the book's seq.
			if f.Type == journal.TypeInstrumentDef {
				var d journal.InstrumentDef
				if d.Decode(f.Payload) == nil {
					m.book(f.Instrument).ApplyDef(&d)
				}
			}
			continue
		}
		m.apply(&f)
	}
	if rb.Source == FromRetained {
		for id, b := range m.books {
			if b != nil {
				rb.Incomplete = append(rb.Incomplete, Incomplete{Instrument: uint32(id), Symbol: m.symbolOf(uint32(id)),
					Reason: fmt.Sprintf("built from the retained frames only (from seq %d): what pruned frames put in the book and later ones did not change is missing", rb.FirstSeq)})
			}
		}
	}
	return nil
}

// bridges says why the old file cannot seed a rebuild of a journal whose
// first retained frame is first ("" if it can).
func (m *Maintainer) bridges(old *snapshot.Writer, ahead string, first uint64) string {
	switch {
	case m.damaged != "":
		return fmt.Sprintf("snapshot %s is %s", m.cfg.Path, m.damaged)
	case old == nil:
		return fmt.Sprintf("there is no snapshot %s to continue from", m.cfg.Path)
	case old.JournalID() != m.journalID:
		return fmt.Sprintf("snapshot %s mirrors another journal (%016x, not %016x)", m.cfg.Path, old.JournalID(), m.journalID)
	case !old.Intact():
		return fmt.Sprintf("snapshot %s cannot be trusted: %s", m.cfg.Path, untrusted(old))
	case ahead != "":
		return fmt.Sprintf("snapshot %s cannot be trusted: %s", m.cfg.Path, ahead)
	case old.LastApplied()+1 < first:
		return fmt.Sprintf("snapshot %s was last applied at seq %d: frames %d..%d are in neither", m.cfg.Path, old.LastApplied(), old.LastApplied()+1, first-1)
	}
	return ""
}

// seed fills the books from the old file's slots and returns, by instrument
// id, the seq each slot reflects (frames up to it are already applied).
func (m *Maintainer) seed(old *snapshot.Writer, seeds map[uint32]*seed) ([]uint64, error) {
	skip := make([]uint64, len(m.books))
	ids := make([]uint32, 0, len(seeds))
	for id := range seeds {
		ids = append(ids, id)
	}
	slices.Sort(ids) // Incomplete in id order
	for _, id := range ids {
		s := seeds[id]
		sl := &s.slot
		if id >= uint32(len(m.books)) {
			return nil, &CapacityError{Path: m.cfg.Path, Instrument: id, Capacity: m.cfg.Capacity, Seq: sl.Seq}
		}
		b := m.book(id)
		for _, lv := range sl.Bids {
			b.SetLevel(journal.SideBid, lv.Price, lv.Qty)
		}
		for _, lv := range sl.Asks {
			b.SetLevel(journal.SideAsk, lv.Price, lv.Qty)
		}
		if sl.LastTrade != (snapshot.Trade{}) {
			b.ApplyTrade(&journal.Trade{Price: sl.LastTrade.Price, Qty: sl.LastTrade.Qty})
			m.tradeTS[id] = sl.LastTrade.TS
		}
		// The book's seq and time become the slot's: a frame applied with
		// ApplyFrame sets them. A definition (the slot keeps the symbol and
		// scale, not the tick size) if the slot has one, else a heartbeat,
		// which the book ignores.
		f := journal.Frame{Seq: sl.Seq, TS: sl.TS, Type: journal.TypeHeartbeat, Instrument: id}
		if sl.Symbol != ([journal.SymbolLen]byte{}) {
			d := journal.InstrumentDef{Symbol: sl.Symbol, PriceScale: sl.PriceScale}
			f.Type, f.Payload = journal.TypeInstrumentDef, d.Encode(make([]byte, journal.TypeInstrumentDef.PayloadSize()))
		}
		if err := b.ApplyFrame(&f); err != nil {
			return nil, fmt.Errorf("booksnap: seeding instrument %d from slot %d: %w", id, id, err)
		}
		skip[id] = sl.Seq
		if s.full {
			m.rebuild.Incomplete = append(m.rebuild.Incomplete, Incomplete{Instrument: id, Symbol: sl.SymbolString(),
				Reason: fmt.Sprintf("seeded from its snapshot slot at seq %d, which held the file's full depth (%d levels) on a side: the levels below are unknown", sl.Seq, old.Depth())})
		}
	}
	return skip, nil
}
