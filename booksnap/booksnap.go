package booksnap

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"unsafe"

	"github.com/mdjournal/mdjournal/book"
	"github.com/mdjournal/mdjournal/journal"
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
	// (DefaultDepth if 0; 1..snapshot.MaxDepth). A depth greater than any
	// book's makes every slot the instrument's whole book, which is what
	// lets a restart on a pruned journal continue exactly from the file
	// (see Rebuild).
	Depth int
	// Capacity is the number of slots: instrument ids 0..Capacity-1
	// (DefaultCapacity if 0; 1..snapshot.MaxCapacity). A book frame of a
	// larger id is refused by the journal writer (Admit), and a journal
	// that already holds one fails Start: no frame is ever silently left
	// out of the snapshot.
	Capacity int
	// BookCapacity is the number of levels per side each in-memory book
	// reserves (book.DefaultCapacity if 0), so applies do not allocate.
	BookCapacity int
	// Perm is the mode of the snapshot file (snapshot.DefaultPerm, 0640, if
	// 0). Its lock file is always 0600.
	Perm os.FileMode
	// AllowIncomplete lets Start rebuild the books from a journal whose
	// first segments were pruned even when some of them cannot be rebuilt
	// exactly; Rebuild().Incomplete then lists them. Without it Start
	// refuses (*PrunedError) and leaves the snapshot file as it was.
	AllowIncomplete bool
	// Logf, if set, is told when Start replaces the snapshot file and which
	// books it rebuilt incomplete.
	Logf func(format string, args ...any)
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
	if c.Logf == nil {
		c.Logf = func(string, ...any) {}
	}
	return nil
}

func (c *Config) options(journalID uint64) snapshot.Options {
	return snapshot.Options{Depth: c.Depth, Capacity: c.Capacity, JournalID: journalID, Perm: c.Perm}
}

// Stats count what the maintainer did.
type Stats struct {
	Frames    uint64 // frames observed
	Published uint64 // slot publishes
	Rejected  uint64 // book frames the book refused (bad side, negative qty): slot unchanged
	// OutOfRange counts book frames of instrument ids ≥ Capacity given to
	// Observe directly. Through a journal writer it stays 0: the writer asks
	// Admit first and refuses such a frame.
	OutOfRange uint64
	Early      uint64 // frames observed before Start (CatchUp replays them)
	Replayed   uint64 // frames read from the journal by CatchUp
	Recreated  uint64 // times the snapshot file was replaced by a new one
}

// CapacityError is an instrument id the snapshot has no slot for. It wraps
// snapshot.ErrInstrument.
type CapacityError struct {
	Path       string // the snapshot file
	Instrument uint32 // the id without a slot
	Capacity   int    // the snapshot's number of slots
	// Seq is the journal frame of that instrument that Start found (0 for a
	// frame Admit refused: it was never written).
	Seq uint64
}

// Error names the instrument, the frame and the capacity.
func (e *CapacityError) Error() string {
	where := "refused"
	if e.Seq != 0 {
		where = fmt.Sprintf("at journal seq %d", e.Seq)
	}
	return fmt.Sprintf("booksnap: book frame of instrument %d %s: snapshot %s has %d slots (ids 0..%d) and would not mirror it; configure a Capacity above %d",
		e.Instrument, where, e.Path, e.Capacity, e.Capacity-1, e.Instrument)
}

// Unwrap returns snapshot.ErrInstrument.
func (e *CapacityError) Unwrap() error { return snapshot.ErrInstrument }

// Maintainer mirrors every book into a snapshot file. Its methods run on
// the writer's appender goroutine (or, before the writer starts appending,
// on the goroutine that opens it); it is not safe for concurrent use.
type Maintainer struct {
	cfg       Config
	journalID uint64
	started   bool // Open or Start ran: journalID is known
	snap      *snapshot.Writer
	damaged   string // why the file at cfg.Path could not be opened (replaced by the next rebuild)

	books   []*book.Book // by instrument id, created on first use
	tradeTS []int64      // last trade's timestamp by instrument id (book keeps no time)

	// Scratch for Top. sbids/sasks are the same memory seen as
	// snapshot.Level, so publishing copies the levels once, into the slot.
	bids, asks   []book.Level
	sbids, sasks []snapshot.Level

	stats   Stats
	rebuild Rebuild
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

// Open opens the snapshot file at path for writing for the journal with id
// journalID, without a journal writer (tools, benchmarks): it keeps the
// file if it fits (same journal, depth and capacity, intact), else replaces
// it with an empty one. The in-memory books start empty: call CatchUp
// before observing frames of a journal that already holds some.
func Open(path string, depth, capacity int, journalID uint64) (*Maintainer, error) {
	m, err := newMaintainer(Config{Path: path, Depth: depth, Capacity: capacity})
	if err != nil {
		return nil, err
	}
	m.journalID, m.started = journalID, true
	if err := m.openExisting(); err != nil {
		return nil, err
	}
	if why := m.misfit(m.snap); why != "" {
		if err := m.replace(why, func(*snapshot.Writer) {}); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// WriterOptions returns opts with a new Maintainer as its Observer (chained
// after any Observer opts already had) and that Maintainer, whose snapshot
// file is not open yet: call Start with the writer once writer.Open returned.
// It exists because the maintainer needs the writer's journal id and last seq,
// which only an open writer knows. The chained observer is a writer.Admitter:
// the writer asks the Maintainer (and opts' Observer, if it is one) before it
// stages a frame.
func WriterOptions(opts writer.Options, cfg Config) (writer.Options, *Maintainer, error) {
	m, err := newMaintainer(cfg)
	if err != nil {
		return opts, nil, err
	}
	if opts.Observer != nil {
		t := tee{a: opts.Observer, m: m}
		t.aa, _ = opts.Observer.(writer.Admitter)
		opts.Observer = t
	} else {
		opts.Observer = m
	}
	return opts, m, nil
}

// tee calls another observer, then the maintainer.
type tee struct {
	a  writer.Observer
	aa writer.Admitter // a, if it is one
	m  *Maintainer
}

// Observe passes f to the other observer, then to the maintainer.
func (t tee) Observe(f *journal.Frame) {
	t.a.Observe(f)
	t.m.Observe(f)
}

// Admit asks the other observer if it is an Admitter, then the maintainer.
func (t tee) Admit(typ journal.MsgType, instrument uint32) error {
	if t.aa != nil {
		if err := t.aa.Admit(typ, instrument); err != nil {
			return err
		}
	}
	return t.m.Admit(typ, instrument)
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

// Start opens the snapshot file for w's journal and rebuilds the books from
// what the journal holds (a writer restart), so they continue from the
// journal's state: see CatchUp and Rebuild. Call it before the first
// Append. Frames the writer staged before (after a crash its recovery
// re-states every definition in a new segment, format.md §8.4) are
// published first, so the rebuild reads them. On error the snapshot file is
// left as it was, or not created.
func (m *Maintainer) Start(w *writer.Writer) error {
	if w.LastSeq() != w.PublishedSeq() {
		if err := w.Publish(); err != nil {
			return fmt.Errorf("booksnap: publishing the frames staged before Start: %w", err)
		}
	}
	if m.snap != nil && m.journalID != w.JournalID() {
		m.snap.Close() // opened by Open for another journal: judged afresh
		m.snap = nil
	}
	m.journalID, m.started = w.JournalID(), true
	return m.CatchUp(w.Dir(), w.LastSeq())
}

// openExisting opens the file at cfg.Path for writing, if there is one. A
// damaged file (its header fails validation, another format version) is
// derived data: it is noted and replaced by the next rebuild. Anything else
// — another writer holds it, a symlink or FIFO at the path, a file other
// users could truncate — is an error.
func (m *Maintainer) openExisting() error {
	m.damaged = ""
	w, err := snapshot.OpenWriter(m.cfg.Path)
	var ce *journal.CorruptionError
	switch {
	case err == nil:
		m.snap = w
	case errors.Is(err, os.ErrNotExist):
	case errors.As(err, &ce):
		m.damaged = "damaged: " + err.Error()
	default:
		return fmt.Errorf("booksnap: %w", err)
	}
	return nil
}

// misfit says why w cannot be kept as it is for this maintainer ("" if it
// can): absent, damaged, another journal, depth or capacity, not intact.
func (m *Maintainer) misfit(w *snapshot.Writer) string {
	switch {
	case m.damaged != "":
		return m.damaged
	case w == nil:
		return ""
	case w.JournalID() != m.journalID:
		return fmt.Sprintf("it mirrors journal %016x, not %016x", w.JournalID(), m.journalID)
	case w.Depth() != m.cfg.Depth || w.Capacity() != m.cfg.Capacity:
		return fmt.Sprintf("its depth %d and capacity %d differ from the configured %d and %d", w.Depth(), w.Capacity(), m.cfg.Depth, m.cfg.Capacity)
	case !w.Intact():
		return untrusted(w)
	}
	return ""
}

func untrusted(w *snapshot.Writer) string {
	if len(w.Emptied()) > 0 {
		return fmt.Sprintf("a writer died mid-publish in slots %v, whose books are lost", w.Emptied())
	}
	return fmt.Sprintf("its writer (PID %d) did not close it and it was last written before the system booted: a power cut may have kept some of its pages and not others", w.PreviousPID())
}

// replace builds a new file (Prepare), lets fill publish into it, and
// renames it over the old one (Install): readers never see it partial.
func (m *Maintainer) replace(why string, fill func(*snapshot.Writer)) error {
	if m.snap != nil {
		m.snap.Close()
		m.snap = nil
	}
	w, err := snapshot.Prepare(m.cfg.Path, m.cfg.options(m.journalID))
	if err != nil {
		return fmt.Errorf("booksnap: %w", err)
	}
	fill(w)
	if err := w.Install(); err != nil {
		w.Close()
		return fmt.Errorf("booksnap: %w", err)
	}
	m.snap, m.damaged = w, ""
	if why != "" {
		m.stats.Recreated++
		m.rebuild.Replaced = why
		m.cfg.Logf("booksnap: replaced snapshot %s: %s", m.cfg.Path, why)
	}
	return nil
}

// Observe implements writer.Observer: apply f to its book and publish the
// book's top into the snapshot. It allocates nothing once the instrument's
// book exists. Problems (a frame the book refuses) are counted in Stats,
// never returned: the journal must not stop because its mirror cannot show
// a frame. Ids the snapshot cannot hold never get here through a writer:
// Admit refuses them first.
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

// Admit implements writer.Admitter: it refuses (*CapacityError) a frame
// that carries book information for an instrument id the snapshot has no
// slot for, before the writer stages it, so the journal never holds a book
// frame its snapshot does not mirror. Frames without book information
// (heartbeats, raw, trading status) are admitted whatever their id: the
// snapshot keeps nothing of them. It allocates nothing when it admits.
func (m *Maintainer) Admit(typ journal.MsgType, instrument uint32) error {
	if instrument < uint32(len(m.books)) || !book.Affects(typ) {
		return nil
	}
	return &CapacityError{Path: m.cfg.Path, Instrument: instrument, Capacity: m.cfg.Capacity}
}

// apply applies a frame to its book and returns the book if the frame
// changed it (nil for frames without book information, refused or
// unmirrored ones).
func (m *Maintainer) apply(f *journal.Frame) *book.Book {
	if !book.Affects(f.Type) {
		return nil
	}
	if f.Instrument >= uint32(len(m.books)) {
		m.stats.OutOfRange++
		return nil
	}
	b := m.book(f.Instrument)
	if err := b.ApplyFrame(f); err != nil {
		m.stats.Rejected++
		return nil
	}
	if f.Type == journal.TypeTrade {
		m.tradeTS[f.Instrument] = f.TS
	}
	return b
}

func (m *Maintainer) book(id uint32) *book.Book {
	b := m.books[id]
	if b == nil {
		b = book.New(m.cfg.BookCapacity)
		m.books[id] = b
	}
	return b
}

func (m *Maintainer) setDef(id uint32, b *book.Book) {
	if d, ok := b.Def(); ok {
		m.snap.SetInstrument(id, d.Symbol, d.PriceScale)
	}
}

func (m *Maintainer) publish(id uint32, b *book.Book) {
	m.publishTo(m.snap, id, b)
}

func (m *Maintainer) publishTo(w *snapshot.Writer, id uint32, b *book.Book) {
	nb := b.Top(journal.SideBid, m.bids)
	na := b.Top(journal.SideAsk, m.asks)
	var tr snapshot.Trade
	if px, qty, n := b.LastTrade(); n > 0 {
		tr = snapshot.Trade{Price: px, Qty: qty, TS: m.tradeTS[id]}
	}
	w.Publish(id, b.Seq(), b.TS(), m.sbids[:nb], m.sasks[:na], tr) // id < Capacity: cannot fail
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

// Snapshot returns the snapshot writer (nil before Start or Open, and after
// a failed Start).
func (m *Maintainer) Snapshot() *snapshot.Writer { return m.snap }

// Close closes the snapshot file: it is synced and marked closed cleanly
// (snapshot.Writer.Close), so that a restart on a pruned journal can
// continue from it. Close the writer first, so no frame is observed
// afterwards.
func (m *Maintainer) Close() error {
	if m.snap == nil {
		return nil
	}
	err := m.snap.Close()
	m.snap = nil
	return err
}

// symbolOf names an instrument for messages: its symbol if its book has a
// definition.
func (m *Maintainer) symbolOf(id uint32) string {
	if id < uint32(len(m.books)) && m.books[id] != nil {
		if d, ok := m.books[id].Def(); ok {
			return d.SymbolString()
		}
	}
	return ""
}

func listIncomplete(in []Incomplete) string {
	var sb strings.Builder
	for i, x := range in {
		if i == 8 {
			fmt.Fprintf(&sb, " and %d more", len(in)-i)
			break
		}
		if i > 0 {
			sb.WriteString(", ")
		}
		fmt.Fprintf(&sb, "%d", x.Instrument)
		if x.Symbol != "" {
			fmt.Fprintf(&sb, " (%s)", x.Symbol)
		}
	}
	return sb.String()
}
