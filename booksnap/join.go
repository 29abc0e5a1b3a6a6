package booksnap

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/mdjournal/mdjournal/book"
	"github.com/mdjournal/mdjournal/internal/segfile"
	"github.com/mdjournal/mdjournal/journal"
	"github.com/mdjournal/mdjournal/reader"
	"github.com/mdjournal/mdjournal/snapshot"
)

// Loaded is a book seeded from one snapshot slot.
type Loaded struct {
	// Book is seeded from the slot: its levels, definition and last trade.
	Book *book.Book
	// Seq is the slot's seq S: the book reflects every frame of its
	// instrument with seq ≤ S. Tail the journal from S+1. 0 means the slot
	// was never written (tail from the start).
	Seq uint64
	TS  int64 // timestamp of frame S
	// Complete is true when both sides had fewer than the file's Depth
	// levels, so the seeded book is the instrument's whole book, not just
	// its top.
	Complete bool
	// Slot is the raw copy of the slot the book was seeded from.
	Slot snapshot.Book
	// JournalID is the id of the journal the snapshot mirrors.
	JournalID uint64
}

// Load reads instrument instr's slot of the snapshot file at path and seeds
// a book with it: its levels, its symbol and scale (as an InstrumentDef with
// tick 0, which the file does not keep) and its last trade.
func Load(path string, instr uint32) (*Loaded, error) {
	r, err := snapshot.Open(path)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	return LoadFrom(r, instr)
}

// LoadFrom is Load from an open snapshot reader.
func LoadFrom(r *snapshot.Reader, instr uint32) (*Loaded, error) {
	l := &Loaded{JournalID: r.JournalID()}
	if err := r.Read(instr, &l.Slot); err != nil {
		return nil, err
	}
	s := &l.Slot
	b := book.New(0)
	if s.Seq != 0 {
		if s.Symbol != ([journal.SymbolLen]byte{}) {
			b.ApplyDef(&journal.InstrumentDef{Symbol: s.Symbol, PriceScale: s.PriceScale})
		}
		for _, lv := range s.Bids {
			b.SetLevel(journal.SideBid, lv.Price, lv.Qty)
		}
		for _, lv := range s.Asks {
			b.SetLevel(journal.SideAsk, lv.Price, lv.Qty)
		}
		if s.LastTrade != (snapshot.Trade{}) {
			b.ApplyTrade(&journal.Trade{Price: s.LastTrade.Price, Qty: s.LastTrade.Qty})
		}
	}
	l.Book, l.Seq, l.TS = b, s.Seq, s.TS
	l.Complete = len(s.Bids) < r.Depth() && len(s.Asks) < r.Depth()
	return l, nil
}

// Joiner is a late joiner: a book seeded from the snapshot and a reader
// tailing the journal from the frame after the slot's seq.
type Joiner struct {
	Loaded
	Instrument uint32 // the instrument whose book the joiner keeps
	r          *reader.Reader
}

// Join loads instr's slot from the snapshot at snapPath and opens the journal
// in dir from seq S+1 with the reader package (opts.From is overridden;
// opts.Wait is kept), which reads compressed (.seg.zst) segments as well as
// raw ones. It fails if the snapshot mirrors another journal, or if the
// journal no longer holds seq S+1 (pruned: reader.ErrOutOfRange).
func Join(snapPath, dir string, instr uint32, opts reader.Options) (*Joiner, error) {
	l, err := Load(snapPath, instr)
	if err != nil {
		return nil, err
	}
	opts.From = reader.Start()
	if l.Seq > 0 {
		opts.From = reader.Seq(l.Seq + 1)
	}
	r, err := openReader(dir, opts)
	if err != nil {
		if errors.Is(err, reader.ErrOutOfRange) {
			return nil, fmt.Errorf("booksnap: slot %d of snapshot %s reflects the journal up to seq %d, and the journal in %s no longer holds seq %d: %w",
				instr, snapPath, l.Seq, dir, l.Seq+1, err)
		}
		return nil, err
	}
	num, _ := r.Segment()
	id, err := journalIDOf(dir, num)
	if err != nil {
		r.Close()
		return nil, err
	}
	if id != l.JournalID {
		r.Close()
		return nil, fmt.Errorf("booksnap: snapshot %s mirrors journal %#x, %s is journal %#x", snapPath, l.JournalID, dir, id)
	}
	return &Joiner{Loaded: *l, Instrument: instr, r: r}, nil
}

// raceRetries bounds the retries of an open that lost a race with
// compression: compress renames NNNN.seg.zst into place and only then
// deletes NNNN.seg, so a raw segment listed a moment ago can be gone when it
// is opened, its archive in its place. Each retry lists the files again.
const raceRetries = 8

// openReader is reader.Open, retried when a raw segment it listed vanished
// before it opened it (compressed meanwhile).
func openReader(dir string, opts reader.Options) (*reader.Reader, error) {
	for i := 0; ; i++ {
		r, err := reader.Open(dir, opts)
		if err == nil || i == raceRetries || !vanished(err) {
			return r, err
		}
	}
}

// journalIDOf reads the journal id from segment n's header (raw or
// compressed: an archive starts with the same header page), retried like
// openReader.
func journalIDOf(dir string, n uint64) (uint64, error) {
	for i := 0; ; i++ {
		h, e, _, err := segfile.ReadHeader(dir, n)
		if err != nil {
			if i < raceRetries && vanished(err) {
				continue
			}
			return 0, err
		}
		if h.Magic() != journal.SegmentMagic {
			return 0, journal.Corrupt(e.Path, 0, journal.ErrBadMagic, "bad segment magic")
		}
		return h.JournalID(), nil
	}
}

// vanished reports an open of a raw segment that is no longer there.
func vanished(err error) bool {
	var pe *os.PathError
	return errors.As(err, &pe) && errors.Is(err, os.ErrNotExist) && strings.HasSuffix(pe.Path, journal.SegmentExt)
}

// Next returns the next frame of the journal (any instrument), waiting for it
// with the reader's strategy, after applying it to the book if it is a book
// frame of the joiner's instrument.
func (j *Joiner) Next() (journal.Frame, error) {
	f, err := j.r.Next()
	if err == nil {
		j.apply(&f)
	}
	return f, err
}

// TryNext is Next without waiting.
func (j *Joiner) TryNext() (journal.Frame, bool, error) {
	f, ok, err := j.r.TryNext()
	if ok && err == nil {
		j.apply(&f)
	}
	return f, ok, err
}

// apply uses the maintainer's rule, so Seq moves exactly as the slot's would.
// A frame the book refuses is skipped: the maintainer skipped it too.
func (j *Joiner) apply(f *journal.Frame) {
	if f.Instrument != j.Instrument || !book.Affects(f.Type) {
		return
	}
	if j.Book.ApplyFrame(f) == nil {
		j.Seq, j.TS = f.Seq, f.TS
	}
}

// Reader returns the joiner's journal reader (for Interrupt).
func (j *Joiner) Reader() *reader.Reader { return j.r }

// Close closes the reader.
func (j *Joiner) Close() error {
	if j.r == nil {
		return errors.New("booksnap: joiner closed")
	}
	err := j.r.Close()
	j.r = nil
	return err
}
