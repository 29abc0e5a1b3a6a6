package booksnap_test

import (
	"errors"
	"math/rand/v2"
	"path/filepath"
	"testing"

	"github.com/mdjournal/mdjournal/book"
	"github.com/mdjournal/mdjournal/booksnap"
	"github.com/mdjournal/mdjournal/journal"
	"github.com/mdjournal/mdjournal/reader"
	"github.com/mdjournal/mdjournal/snapshot"
	"github.com/mdjournal/mdjournal/writer"
)

const (
	instr = 1
	mid   = 1_000_000
	tick  = 100
)

// stream is a synthetic L3 flow on one instrument: a seed of 20 levels per
// side, then a cycle of adds near the top and cancels, deletes and executions
// of orders the cycle itself added, ending with the deletion of every order
// still resting. Replaying the cycle any number of times after the seed
// leaves the book exactly as seeded, so benchmarks loop over it in a steady
// state, and nothing ever clamps.
type stream struct {
	def   journal.Frame
	seed  []journal.Frame
	cycle []journal.Frame
}

func newStream(n int) *stream {
	r := rand.New(rand.NewPCG(7, 11))
	s := &stream{}
	var d journal.InstrumentDef
	d.SetSymbol("SYNTH")
	d.TickSize, d.PriceScale = tick, 4
	s.def = journal.Frame{Type: journal.TypeInstrumentDef, Instrument: instr, Payload: d.Encode(make([]byte, 32))}
	for k := int64(1); k <= 20; k++ {
		for _, l := range []journal.BookLevel{{Price: mid - k*tick, Qty: 1000, Side: journal.SideBid}, {Price: mid + k*tick, Qty: 1000, Side: journal.SideAsk}} {
			s.seed = append(s.seed, journal.Frame{Type: journal.TypeBookLevel, Instrument: instr, Payload: l.Encode(make([]byte, 24))})
		}
	}
	type order struct {
		id    uint64
		side  journal.Side
		price int64
		qty   int64
	}
	var live []order
	emit := func(typ journal.MsgType, o order, qty int64) {
		p := (&journal.Order{OrderID: o.id, Price: o.price, Qty: qty, Side: o.side}).Encode(make([]byte, 32))
		s.cycle = append(s.cycle, journal.Frame{Type: typ, Instrument: instr, Payload: p})
	}
	for id := uint64(1); len(s.cycle) < n; id++ {
		if len(live) < 20 || r.IntN(2) == 0 {
			o := order{id: id, side: journal.Side(1 + r.IntN(2)), qty: int64(1 + r.IntN(300))}
			d := int64(0)
			for d < 9 && r.IntN(3) != 0 {
				d++
			}
			o.price = mid - (d+1)*tick
			if o.side == journal.SideAsk {
				o.price = mid + (d+1)*tick
			}
			live = append(live, o)
			emit(journal.TypeOrderAdd, o, o.qty)
			continue
		}
		i := r.IntN(len(live))
		o := &live[i]
		switch k := r.IntN(3); {
		case k == 0 && o.qty > 1:
			q := int64(1 + r.IntN(int(o.qty-1)))
			emit(journal.TypeOrderCancel, *o, q)
			o.qty -= q
			continue
		case k == 1:
			q := int64(1 + r.IntN(int(o.qty)))
			emit(journal.TypeOrderExecute, *o, q)
			if o.qty -= q; o.qty > 0 {
				continue
			}
		default:
			emit(journal.TypeOrderDelete, *o, o.qty)
		}
		live[i] = live[len(live)-1]
		live = live[:len(live)-1]
	}
	for _, o := range live {
		emit(journal.TypeOrderDelete, o, o.qty)
	}
	return s
}

func appendFrames(t testing.TB, w *writer.Writer, fs []journal.Frame) {
	t.Helper()
	for i := range fs {
		if _, err := w.Append(fs[i].Type, fs[i].Instrument, int64(i+1), fs[i].Payload); err != nil {
			t.Fatal(err)
		}
	}
}

// replayBooks rebuilds every book from the journal with the maintainer's
// rule, independently of the maintainer.
func replayBooks(t *testing.T, dir string) (*book.Books, uint64) {
	t.Helper()
	r, err := reader.Open(dir, reader.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	bs := book.NewBooks(0)
	for {
		f, ok, err := r.TryNext()
		if err != nil {
			t.Fatal(err)
		}
		if !ok {
			return bs, r.LastSeq()
		}
		if book.Affects(f.Type) {
			bs.ApplyFrame(&f)
		}
	}
}

// checkSlot compares the slot of id with the top of b.
func checkSlot(t *testing.T, snapPath string, id uint32, b *book.Book) {
	t.Helper()
	r, err := snapshot.Open(snapPath)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var sb snapshot.Book
	if err := r.Read(id, &sb); err != nil {
		t.Fatal(err)
	}
	if sb.Seq != b.Seq() || sb.TS != b.TS() {
		t.Fatalf("slot %d at seq %d ts %d, book at %d ts %d", id, sb.Seq, sb.TS, b.Seq(), b.TS())
	}
	want := make([]book.Level, r.Depth())
	for _, side := range []journal.Side{journal.SideBid, journal.SideAsk} {
		got := sb.Bids
		if side == journal.SideAsk {
			got = sb.Asks
		}
		n := b.Top(side, want)
		if len(got) != n {
			t.Fatalf("slot %d %s: %d levels, want %d", id, side, len(got), n)
		}
		for i := range n {
			if book.Level(got[i]) != want[i] {
				t.Fatalf("slot %d %s level %d: %+v, want %+v", id, side, i, got[i], want[i])
			}
		}
	}
	if d, ok := b.Def(); ok && (sb.SymbolString() != d.SymbolString() || sb.PriceScale != d.PriceScale) {
		t.Fatalf("slot %d: symbol %q scale %d, want %q %d", id, sb.SymbolString(), sb.PriceScale, d.SymbolString(), d.PriceScale)
	}
}

func TestObserveAllocatesNothing(t *testing.T) {
	s := newStream(4096)
	tmp := t.TempDir()
	snap := filepath.Join(tmp, "s.snap")
	w, m, err := booksnap.OpenWriter(filepath.Join(tmp, "j"), writer.Options{}, booksnap.Config{Path: snap, Depth: 10, Capacity: 4})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	defer w.Close()
	appendFrames(t, w, append([]journal.Frame{s.def}, s.seed...))
	i := 0
	allocs := testing.AllocsPerRun(20000, func() {
		f := &s.cycle[i%len(s.cycle)]
		i++
		if _, err := w.Append(f.Type, f.Instrument, int64(i), f.Payload); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Fatalf("%.2f allocations per appended and mirrored frame, want 0", allocs)
	}
	b, _ := m.Book(instr)
	checkSlot(t, snap, instr, b)
	if st := m.Stats(); st.Published < 20000 || st.Rejected != 0 {
		t.Fatalf("stats %+v", st)
	}
}

func TestRestartCatchesUp(t *testing.T) {
	s := newStream(3000)
	tmp := t.TempDir()
	dir, snap := filepath.Join(tmp, "j"), filepath.Join(tmp, "s.snap")
	cfg := booksnap.Config{Path: snap, Depth: 10, Capacity: 4}
	third := len(s.cycle) / 3

	// 1. A journal written without the snapshot: the maintainer starts behind.
	w, err := writer.Open(dir, writer.Options{SegmentSize: 256 << 10})
	if err != nil {
		t.Fatal(err)
	}
	appendFrames(t, w, append(append([]journal.Frame{s.def}, s.seed...), s.cycle[:third]...))
	w.Close()

	// 2. Start with a snapshot: it must show the journal's state at once.
	reopen := func(cfg booksnap.Config) (*writer.Writer, *booksnap.Maintainer) {
		t.Helper()
		w, m, err := booksnap.OpenWriter(dir, writer.Options{SegmentSize: 256 << 10}, cfg)
		if err != nil {
			t.Fatal(err)
		}
		bs, last := replayBooks(t, dir)
		b, _ := bs.Get(instr)
		checkSlot(t, snap, instr, b)
		if la := m.Snapshot().LastApplied(); la != last {
			t.Fatalf("last-applied %d after catch-up, journal at %d", la, last)
		}
		return w, m
	}
	w, m := reopen(cfg)
	if st := m.Stats(); st.Replayed == 0 || st.Recreated != 0 {
		t.Fatalf("first start: %+v", st)
	}
	appendFrames(t, w, s.cycle[third:2*third])
	w.Close()
	m.Close()

	// 3. A plain restart: same file, books rebuilt, appends continue from there.
	w, m = reopen(cfg)
	appendFrames(t, w, s.cycle[2*third:])
	// A heartbeat moves last-applied but not the slot; a frame the book
	// refuses is counted; a book frame of an id beyond the capacity is
	// refused by the writer (Admit), a heartbeat of that id is not.
	bad := (&journal.Order{Price: mid, Qty: 1, Side: journal.SideNone}).Encode(make([]byte, 32))
	w.Append(journal.TypeOrderAdd, instr, 1, bad)
	before := w.LastSeq()
	if _, err := w.Append(journal.TypeOrderAdd, 9, 1, bad); !errors.Is(err, snapshot.ErrInstrument) || w.LastSeq() != before {
		t.Fatalf("book frame of id 9 with capacity 4: %v, last seq %d -> %d", err, before, w.LastSeq())
	}
	if _, err := w.Append(journal.TypeHeartbeat, 9, 1, nil); err != nil {
		t.Fatal(err)
	}
	last, _ := w.Append(journal.TypeHeartbeat, instr, 1, nil)
	if st := m.Stats(); st.Rejected != 1 || st.OutOfRange != 0 {
		t.Fatalf("stats %+v", st)
	}
	if la := m.Snapshot().LastApplied(); la != last {
		t.Fatalf("last-applied %d, journal at %d", la, last)
	}
	w.Close()
	m.Close()
	bs, _ := replayBooks(t, dir)
	b, _ := bs.Get(instr)
	checkSlot(t, snap, instr, b)

	// 4. A snapshot ahead of the journal (it saw frames a crash lost) is
	// rebuilt from scratch: last-applied cannot move backwards otherwise.
	sw, err := snapshot.OpenWriter(snap)
	if err != nil {
		t.Fatal(err)
	}
	sw.Publish(2, 1<<40, 0, []snapshot.Level{{Price: 1, Qty: 1}}, nil, snapshot.Trade{})
	sw.Close()
	w, m = reopen(cfg)
	if st := m.Stats(); st.Recreated != 1 {
		t.Fatalf("snapshot ahead was not recreated: %+v", st)
	}
	var sb snapshot.Book
	r, _ := snapshot.Open(snap)
	if err := r.Read(2, &sb); err != nil || sb.Seq != 0 {
		t.Fatalf("phantom slot survived: seq %d err %v", sb.Seq, err)
	}
	r.Close()
	w.Close()
	m.Close()

	// 5. Another depth: recreated with the new layout.
	cfg.Depth = 5
	w, m = reopen(cfg)
	if m.Snapshot().Depth() != 5 || m.Stats().Recreated != 1 {
		t.Fatalf("depth change: depth %d stats %+v", m.Snapshot().Depth(), m.Stats())
	}
	w.Close()
	m.Close()
}

// TestStartPublishesStagedFrames: frames staged before Start (a writer's
// recovery re-states the definitions after a crash) are published by
// Start, then replayed into the books like every other frame.
func TestStartPublishesStagedFrames(t *testing.T) {
	tmp := t.TempDir()
	s := newStream(10)
	opts, m, err := booksnap.WriterOptions(writer.Options{}, booksnap.Config{Path: filepath.Join(tmp, "s.snap")})
	if err != nil {
		t.Fatal(err)
	}
	w, err := writer.Open(filepath.Join(tmp, "j"), opts)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	defer m.Close()
	seq, _ := w.Stage(s.def.Type, s.def.Instrument, 1, s.def.Payload)
	if err := m.Start(w); err != nil {
		t.Fatal(err)
	}
	if w.PublishedSeq() != seq || m.Stats().Early != 1 || m.Stats().Replayed != 1 || m.Snapshot().LastApplied() != seq {
		t.Fatalf("published %d (staged %d), stats %+v, last applied %d", w.PublishedSeq(), seq, m.Stats(), m.Snapshot().LastApplied())
	}
	b, _ := m.Book(instr)
	checkSlot(t, filepath.Join(tmp, "s.snap"), instr, b)
	if _, _, err := booksnap.WriterOptions(writer.Options{}, booksnap.Config{Path: "x", Depth: snapshot.MaxDepth + 1}); err == nil {
		t.Fatal("depth beyond the snapshot maximum accepted")
	}
	if _, _, err := booksnap.WriterOptions(writer.Options{}, booksnap.Config{}); err == nil {
		t.Fatal("empty path accepted")
	}
}
