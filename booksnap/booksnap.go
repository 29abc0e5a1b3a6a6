package booksnap

import (
	"errors"
	"fmt"
	"os"
	"unsafe"

	"github.com/mdjournal/mdjournal/book"
	"github.com/mdjournal/mdjournal/journal"
	"github.com/mdjournal/mdjournal/reader"
	"github.com/mdjournal/mdjournal/snapshot"
	"github.com/mdjournal/mdjournal/writer"
)

// Defaults for Config fields left zero.
const (
	DefaultDepth    = 10
	DefaultCapacity = 1024
)

// Config says where the snapshot lives and what it holds.
type Config struct {
	Path string // snapshot file
	// Depth is the number of price levels per side kept in the file
	// (DefaultDepth if 0; 1..snapshot.MaxDepth).
	Depth int
	// Capacity is the number of slots: instrument ids 0..Capacity-1
	// (DefaultCapacity if 0). Frames of larger ids are not mirrored.
	Capacity int
	// BookCapacity is the number of levels per side each in-memory book
	// reserves (book.DefaultCapacity if 0), so applies do not allocate.
	BookCapacity int
}

func (c *Config) fill() error {
	if c.Path == "" {
		return errors.New("booksnap: snapshot path is required")
	}
	if c.Depth == 0 {
		c.Depth = DefaultDepth
	}
	if c.Capacity == 0 {
		c.Capacity = DefaultCapacity
	}
	if c.Depth < 1 || c.Depth > snapshot.MaxDepth {
		return fmt.Errorf("booksnap: depth %d outside [1,%d]", c.Depth, snapshot.MaxDepth)
	}
	if c.Capacity < 1 || c.Capacity > snapshot.MaxCapacity {
		return fmt.Errorf("booksnap: capacity %d outside [1,%d]", c.Capacity, snapshot.MaxCapacity)
	}
	return nil
}

// Stats count what the maintainer did.
type Stats struct {
	Frames     uint64 // frames observed
	Published  uint64 // slot publishes
	Rejected   uint64 // book frames the book refused (bad side, negative qty): slot unchanged
	OutOfRange uint64 // book frames of instrument ids ≥ Capacity: not mirrored
	Early      uint64 // frames observed before Start (CatchUp replays them)
	Replayed   uint64 // frames read from the journal by CatchUp
	Recreated  uint64 // times the snapshot file was deleted and created afresh
}

// Maintainer mirrors every book into a snapshot file. Its methods run on
// the writer's appender goroutine (or, before the writer starts appending,
// on the goroutine that opens it); it is not safe for concurrent use.
type Maintainer struct {
	cfg       Config
	journalID uint64
	snap      *snapshot.Writer

	books   []*book.Book // by instrument id, created on first use
	tradeTS []int64      // last trade's timestamp by instrument id (book keeps no time)

	// Scratch for Top. sbids/sasks are the same memory seen as
	// snapshot.Level, so publishing copies the levels once, into the slot.
	bids, asks   []book.Level
	sbids, sasks []snapshot.Level

	stats Stats
}

func newMaintainer(cfg Config) (*Maintainer, error) {
	if err := cfg.fill(); err != nil {
		return nil, err
	}
	m := &Maintainer{
		cfg:     cfg,
		books:   make([]*book.Book, cfg.Capacity),
		tradeTS: make([]int64, cfg.Capacity),
		bids:    make([]book.Level, cfg.Depth),
		asks:    make([]book.Level, cfg.Depth),
	}
	// book.Level and snapshot.Level have the same underlying struct type,
	// so the pointer conversion is legal; the views let Top write straight
	// into what Publish copies (a per-level conversion loop cost ~25 ns).
	m.sbids = unsafe.Slice((*snapshot.Level)(&m.bids[0]), cfg.Depth)
	m.sasks = unsafe.Slice((*snapshot.Level)(&m.asks[0]), cfg.Depth)
	return m, nil
}

// Open opens the snapshot file at path for writing, creating it if needed (or
// recreating it if its depth, capacity or journal id differ), for the journal
// with id journalID. The in-memory books start empty: call CatchUp before
// observing frames of a journal that already holds some.
func Open(path string, depth, capacity int, journalID uint64) (*Maintainer, error) {
	m, err := newMaintainer(Config{Path: path, Depth: depth, Capacity: capacity})
	if err != nil {
		return nil, err
	}
	if err := m.open(journalID); err != nil {
		return nil, err
	}
	return m, nil
}

// WriterOptions returns opts with a new Maintainer as its Observer (chained
// after any Observer opts already had) and that Maintainer, whose snapshot
// file is not open yet: call Start with the writer once writer.Open returned.
// It exists because the maintainer needs the writer's journal id and last seq,
// which only an open writer knows.
func WriterOptions(opts writer.Options, cfg Config) (writer.Options, *Maintainer, error) {
	m, err := newMaintainer(cfg)
	if err != nil {
		return opts, nil, err
	}
	if opts.Observer != nil {
		opts.Observer = tee{opts.Observer, m}
	} else {
		opts.Observer = m
	}
	return opts, m, nil
}

// tee calls two observers in turn.
type tee struct{ a, b writer.Observer }

func (t tee) Observe(f *journal.Frame) {
	t.a.Observe(f)
	t.b.Observe(f)
}

// OpenWriter opens the journal in dir for writing with the snapshot
// maintained: WriterOptions, writer.Open, then Start. Close the writer first,
// then the maintainer.
func OpenWriter(dir string, opts writer.Options, cfg Config) (*writer.Writer, *Maintainer, error) {
	opts, m, err := WriterOptions(opts, cfg)
	if err != nil {
		return nil, nil, err
	}
	w, err := writer.Open(dir, opts)
	if err != nil {
		return nil, nil, err
	}
	if err := m.Start(w); err != nil {
		w.Close()
		return nil, nil, err
	}
	return w, m, nil
}

// Start opens the snapshot file for w's journal and catches up with every
// frame w's journal already holds (a writer restart), so the books continue
// from the journal's state. Call it before the first Append; frames appended
// earlier are covered only once published.
func (m *Maintainer) Start(w *writer.Writer) error {
	if w.LastSeq() != w.PublishedSeq() {
		return fmt.Errorf("booksnap: writer has staged frames %d..%d not yet published: start the maintainer before appending", w.PublishedSeq()+1, w.LastSeq())
	}
	if m.snap == nil {
		if err := m.open(w.JournalID()); err != nil {
			return err
		}
	}
	return m.CatchUp(w.Dir(), w.LastSeq())
}

// open maps the snapshot file for writing, recreating it if it does not fit.
func (m *Maintainer) open(journalID uint64) error {
	m.journalID = journalID
	w, err := snapshot.OpenWriter(m.cfg.Path)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return m.create()
	case err != nil:
		return err
	}
	if w.Depth() != m.cfg.Depth || w.Capacity() != m.cfg.Capacity || w.JournalID() != journalID {
		w.Close()
		return m.recreate()
	}
	m.snap = w
	return nil
}

func (m *Maintainer) create() error {
	w, err := snapshot.Create(m.cfg.Path, snapshot.Options{Depth: m.cfg.Depth, Capacity: m.cfg.Capacity, JournalID: m.journalID})
	if err != nil {
		return fmt.Errorf("booksnap: %w", err)
	}
	m.snap = w
	return nil
}

// recreate deletes the file and creates an empty one. Readers that have the
// old file mapped keep reading its (stale but consistent) content; new
// readers open the new file.
func (m *Maintainer) recreate() error {
	if m.snap != nil {
		m.snap.Close()
		m.snap = nil
	}
	if err := os.Remove(m.cfg.Path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("booksnap: %w", err)
	}
	m.stats.Recreated++
	return m.create()
}

// ErrPruned is returned by CatchUp when the journal no longer starts at seq 1:
// the books cannot be rebuilt from what it retains.
var ErrPruned = errors.New("booksnap: journal does not start at seq 1")

// CatchUp rebuilds every book from the journal in dir, frames 1..upTo (the
// writer's LastSeq), then republishes every slot and sets the snapshot's
// last-applied seq to upTo. Until then readers keep seeing the snapshot's
// previous content. If the snapshot claims a seq beyond upTo (it saw frames
// a crash then lost) it is recreated first.
func (m *Maintainer) CatchUp(dir string, upTo uint64) error {
	if m.snap == nil {
		return errors.New("booksnap: CatchUp before the snapshot is open")
	}
	if m.snap.LastApplied() > upTo {
		if err := m.recreate(); err != nil {
			return err
		}
	}
	for _, b := range m.books {
		if b != nil {
			b.Reset()
		}
	}
	clear(m.tradeTS)
	if upTo > 0 {
		if err := m.replay(dir, upTo); err != nil {
			return err
		}
	}
	for id, b := range m.books {
		if b == nil || b.Seq() == 0 {
			continue
		}
		m.setDef(uint32(id), b)
		m.publish(uint32(id), b)
	}
	m.snap.Advance(upTo)
	return nil
}

func (m *Maintainer) replay(dir string, upTo uint64) error {
	r, err := reader.Open(dir, reader.Options{From: reader.Start()})
	if err != nil {
		return fmt.Errorf("booksnap: catch-up: %w", err)
	}
	defer r.Close()
	for r.LastSeq() < upTo {
		f, ok, err := r.TryNext()
		if err != nil {
			return fmt.Errorf("booksnap: catch-up: %w", err)
		}
		if !ok {
			return fmt.Errorf("booksnap: catch-up: journal %s ends at seq %d, before %d", dir, r.LastSeq(), upTo)
		}
		if m.stats.Replayed == 0 && f.Seq != 1 {
			return fmt.Errorf("%w (first retained frame is seq %d)", ErrPruned, f.Seq)
		}
		m.stats.Replayed++
		m.apply(&f)
	}
	return nil
}

// Observe implements writer.Observer: apply f to its book and publish the
// book's top into the snapshot. It allocates nothing once the instrument's
// book exists. Problems (a frame the book refuses, an id beyond Capacity) are
// counted in Stats, never returned: the journal must not stop because its
// mirror cannot show a frame.
func (m *Maintainer) Observe(f *journal.Frame) {
	m.stats.Frames++
	if m.snap == nil {
		m.stats.Early++
		return
	}
	if b := m.apply(f); b != nil {
		if f.Type == journal.TypeInstrumentDef {
			m.setDef(f.Instrument, b)
		}
		m.publish(f.Instrument, b)
		return
	}
	m.snap.Advance(f.Seq)
}

// apply applies a frame to its book and returns the book if the frame
// changed it (nil for frames without book information, refused or
// unmirrored ones).
func (m *Maintainer) apply(f *journal.Frame) *book.Book {
	if !CarriesBook(f.Type) {
		return nil
	}
	if f.Instrument >= uint32(len(m.books)) {
		m.stats.OutOfRange++
		return nil
	}
	b := m.books[f.Instrument]
	if b == nil {
		b = book.New(m.cfg.BookCapacity)
		m.books[f.Instrument] = b
	}
	if err := b.ApplyFrame(f); err != nil {
		m.stats.Rejected++
		return nil
	}
	if f.Type == journal.TypeTrade {
		m.tradeTS[f.Instrument] = f.TS
	}
	return b
}

// CarriesBook reports whether frames of type t change (or define) an
// instrument's book: those are the frames that move a snapshot slot's seq.
func CarriesBook(t journal.MsgType) bool {
	switch t {
	case journal.TypeInstrumentDef, journal.TypeTrade, journal.TypeQuote, journal.TypeBookLevel:
		return true
	}
	return t.IsOrder()
}

func (m *Maintainer) setDef(id uint32, b *book.Book) {
	if d, ok := b.Def(); ok {
		m.snap.SetInstrument(id, d.Symbol, d.PriceScale)
	}
}

func (m *Maintainer) publish(id uint32, b *book.Book) {
	nb := b.Top(journal.SideBid, m.bids)
	na := b.Top(journal.SideAsk, m.asks)
	var tr snapshot.Trade
	if px, qty, n := b.LastTrade(); n > 0 {
		tr = snapshot.Trade{Price: px, Qty: qty, TS: m.tradeTS[id]}
	}
	m.snap.Publish(id, b.Seq(), b.TS(), m.sbids[:nb], m.sasks[:na], tr) // id < Capacity: cannot fail
	m.stats.Published++
}

// Book returns the maintainer's full-depth book of instrument id, if any.
// It is the maintainer's own state: read it only on the appender goroutine.
func (m *Maintainer) Book(id uint32) (*book.Book, bool) {
	if id >= uint32(len(m.books)) || m.books[id] == nil {
		return nil, false
	}
	return m.books[id], true
}

// Stats returns the counters.
func (m *Maintainer) Stats() Stats { return m.stats }

// Config returns the configuration in force (defaults filled in).
func (m *Maintainer) Config() Config { return m.cfg }

// Snapshot returns the snapshot writer (nil before Start or Open).
func (m *Maintainer) Snapshot() *snapshot.Writer { return m.snap }

// Close closes the snapshot file. Close the writer first, so no frame is
// observed afterwards. The file is not synced: it is derived data, rebuilt
// from the journal by the next Start.
func (m *Maintainer) Close() error {
	if m.snap == nil {
		return nil
	}
	err := m.snap.Close()
	m.snap = nil
	return err
}
