package booksnap_test

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mdjournal/mdjournal/book"
	"github.com/mdjournal/mdjournal/booksnap"
	"github.com/mdjournal/mdjournal/internal/testutil"
	"github.com/mdjournal/mdjournal/journal"
	"github.com/mdjournal/mdjournal/ops/retention"
	"github.com/mdjournal/mdjournal/reader"
	"github.com/mdjournal/mdjournal/snapshot"
	"github.com/mdjournal/mdjournal/writer"
)

// refuseID is an Observer that is also an Admitter: it refuses one id.
type refuseID struct {
	id   uint32
	seen int
}

func (r *refuseID) Observe(*journal.Frame) { r.seen++ }
func (r *refuseID) Admit(_ journal.MsgType, instrument uint32) error {
	if instrument == r.id {
		return fmt.Errorf("refuseID: %d", instrument)
	}
	return nil
}

// TestAdmitRefusesIDsWithoutSlot: a journal writer with the maintainer
// refuses, before staging it, a book frame of an instrument id the
// snapshot has no slot for: the journal never holds a frame its snapshot
// does not mirror. Frames without book information pass whatever their id.
// An Observer chained before the maintainer keeps its own Admit.
func TestAdmitRefusesIDsWithoutSlot(t *testing.T) {
	s := newStream(100)
	tmp := t.TempDir()
	other := &refuseID{id: 2}
	w, m, err := booksnap.OpenWriter(filepath.Join(tmp, "j"), writer.Options{Observer: other},
		booksnap.Config{Path: filepath.Join(tmp, "s.snap"), Capacity: 4})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	defer w.Close()
	appendFrames(t, w, append([]journal.Frame{s.def}, s.seed...))
	order := s.cycle[0]
	var def journal.InstrumentDef
	def.SetSymbol("WIDE")
	def.TickSize, def.PriceScale = 1, 2
	for _, c := range []struct {
		typ     journal.MsgType
		id      uint32
		payload []byte
	}{
		{order.Type, 4, order.Payload},
		{order.Type, 1 << 20, order.Payload},
		{journal.TypeInstrumentDef, 4, def.Encode(make([]byte, 32))},
		{journal.TypeTrade, 7, (&journal.Trade{Price: 1, Qty: 1}).Encode(make([]byte, 32))},
	} {
		before := w.LastSeq()
		_, err := w.Append(c.typ, c.id, 1, c.payload)
		var ce *booksnap.CapacityError
		if !errors.As(err, &ce) || !errors.Is(err, snapshot.ErrInstrument) || ce.Instrument != c.id || ce.Capacity != 4 {
			t.Errorf("%s of id %d with capacity 4: %v, want a CapacityError", c.typ, c.id, err)
		}
		if w.LastSeq() != before {
			t.Errorf("%s of id %d was written (last seq %d -> %d)", c.typ, c.id, before, w.LastSeq())
		}
	}
	if _, err := w.Append(order.Type, 2, 1, order.Payload); err == nil || !strings.Contains(err.Error(), "refuseID") {
		t.Errorf("the chained observer's Admit was not asked: %v", err)
	}
	for _, id := range []uint32{4, 1 << 30} {
		if _, err := w.Append(journal.TypeHeartbeat, id, 1, nil); err != nil {
			t.Errorf("heartbeat of id %d: %v", id, err)
		}
		if _, err := w.Append(journal.TypeRaw, id, 1, []byte("x")); err != nil {
			t.Errorf("raw of id %d: %v", id, err)
		}
	}
	if _, err := w.Append(order.Type, 3, 1, order.Payload); err != nil {
		t.Errorf("id 3 with capacity 4: %v", err)
	}
	last := w.LastSeq()
	w.Close()
	// What the journal holds, read back: no book frame of an id ≥ 4.
	r, err := reader.Open(filepath.Join(tmp, "j"), reader.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	for {
		f, ok, err := r.TryNext()
		if err != nil {
			t.Fatal(err)
		}
		if !ok {
			break
		}
		if book.Affects(f.Type) && f.Instrument >= 4 {
			t.Errorf("journal holds %s of id %d at seq %d", f.Type, f.Instrument, f.Seq)
		}
	}
	if r.LastSeq() != last || m.Stats().OutOfRange != 0 {
		t.Errorf("journal ends at %d (writer said %d), stats %+v", r.LastSeq(), last, m.Stats())
	}
}

// TestAdmitAllocatesNothing: the writer asks Admit on every Stage.
func TestAdmitAllocatesNothing(t *testing.T) {
	m, err := booksnap.Open(filepath.Join(t.TempDir(), "s.snap"), 2, 8, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if a := testing.AllocsPerRun(1000, func() {
		if m.Admit(journal.TypeOrderAdd, 7) != nil || m.Admit(journal.TypeHeartbeat, 100) != nil {
			t.Fatal("refused")
		}
	}); a != 0 {
		t.Errorf("Admit allocates %.1f times", a)
	}
}

// TestStartRefusesJournalIDsBeyondCapacity: a journal written without the
// snapshot holds a book frame of an id the configured capacity cannot hold:
// Start fails naming the frame, and leaves no snapshot file.
func TestStartRefusesJournalIDsBeyondCapacity(t *testing.T) {
	s := newStream(100)
	tmp := t.TempDir()
	dir, snap := filepath.Join(tmp, "j"), filepath.Join(tmp, "s.snap")
	w, err := writer.Open(dir, writer.Options{})
	if err != nil {
		t.Fatal(err)
	}
	appendFrames(t, w, append([]journal.Frame{s.def}, s.seed...))
	seq, err := w.Append(s.cycle[0].Type, 9, 1, s.cycle[0].Payload)
	if err != nil {
		t.Fatal(err)
	}
	w.Close()
	_, _, err = booksnap.OpenWriter(dir, writer.Options{}, booksnap.Config{Path: snap, Capacity: 4})
	var ce *booksnap.CapacityError
	if !errors.As(err, &ce) || ce.Instrument != 9 || ce.Seq != seq || !strings.Contains(err.Error(), "seq "+strconv.FormatUint(seq, 10)) {
		t.Fatalf("Start over a journal with id 9 and capacity 4: %v", err)
	}
	if _, err := os.Lstat(snap); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a failed Start left %s: %v", snap, err)
	}
	// With room for it, the same journal starts and mirrors instrument 9.
	w, m, err := booksnap.OpenWriter(dir, writer.Options{}, booksnap.Config{Path: snap, Capacity: 10})
	if err != nil {
		t.Fatal(err)
	}
	w.Close()
	m.Close()
	bs, _ := replayBooks(t, dir)
	b, _ := bs.Get(9)
	checkSlot(t, snap, 9, b)
}

// pruned builds a journal of many small segments with the snapshot kept
// (depth d), closes both, prunes all but the newest keep segments (none if
// keep is 0) and returns the books replayed from the whole
// journal (the reference, taken before any pruning) and its last seq.
func pruned(t *testing.T, dir, snap string, depth int, keep int) (*book.Books, uint64, uint64) {
	t.Helper()
	s := newStream(3000)
	w, m, err := booksnap.OpenWriter(dir, writer.Options{SegmentSize: journal.MinSegmentSize},
		booksnap.Config{Path: snap, Depth: depth, Capacity: 4})
	if err != nil {
		t.Fatal(err)
	}
	appendFrames(t, w, append([]journal.Frame{s.def}, s.seed...))
	for range 6 {
		appendFrames(t, w, s.cycle)
	}
	w.Close()
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	ref, last := replayBooks(t, dir)
	if keep == 0 {
		return ref, last, 1
	}
	return ref, last, prune(t, dir, keep)
}

// prune keeps the newest keep segments and returns the first retained seq.
func prune(t *testing.T, dir string, keep int) uint64 {
	t.Helper()
	res, err := retention.Prune(dir, retention.Options{KeepSegments: keep})
	if err != nil {
		t.Fatal(err)
	}
	if res.Deleted == 0 {
		t.Fatal("nothing pruned: the test needs more segments")
	}
	r, err := reader.Open(dir, reader.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	f, ok, err := r.TryNext()
	if err != nil || !ok || f.Seq <= 1 {
		t.Fatalf("first retained frame %d %v %v", f.Seq, ok, err)
	}
	return f.Seq
}

// continueAndCheck appends more frames after a restart and checks the slot
// and the maintainer's whole book against the reference books (replayed
// from the unpruned journal) advanced by the same frames.
func continueAndCheck(t *testing.T, dir, snap string, w *writer.Writer, m *booksnap.Maintainer, ref *book.Books, last uint64, whole bool) {
	t.Helper()
	s := newStream(3000)
	appendFrames(t, w, s.cycle[:1000])
	w.Close()
	r, err := reader.Open(dir, reader.Options{From: reader.Seq(last + 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	for {
		f, ok, err := r.TryNext()
		if err != nil {
			t.Fatal(err)
		}
		if !ok {
			break
		}
		if book.Affects(f.Type) {
			ref.ApplyFrame(&f)
		}
	}
	want, _ := ref.Get(instr)
	checkSlot(t, snap, instr, want)
	if whole {
		got, _ := m.Book(instr)
		if err := sameWholeBook(got, want); err != nil {
			t.Errorf("maintainer's book after the restart: %v", err)
		}
	}
	m.Close()
}

func sameWholeBook(got, want *book.Book) error {
	bids := make([]book.Level, want.Depth(journal.SideBid))
	asks := make([]book.Level, want.Depth(journal.SideAsk))
	want.Top(journal.SideBid, bids)
	want.Top(journal.SideAsk, asks)
	return sameLevels(bids, asks, got)
}

// TestPrunedRestart: a writer with a snapshot restarts on a journal whose
// first segments were pruned.
func TestPrunedRestart(t *testing.T) {
	open := func(dir, snap string, depth int, allow bool) (*writer.Writer, *booksnap.Maintainer, error) {
		return booksnap.OpenWriter(dir, writer.Options{SegmentSize: journal.MinSegmentSize},
			booksnap.Config{Path: snap, Depth: depth, Capacity: 4, AllowIncomplete: allow})
	}
	paths := func(t *testing.T) (string, string) {
		tmp := t.TempDir()
		return filepath.Join(tmp, "j"), filepath.Join(tmp, "s.snap")
	}

	// The snapshot is deeper than the book (20 levels a side): every slot
	// is the whole book, so the maintainer continues from it exactly.
	t.Run("continues from a snapshot that bridges the gap", func(t *testing.T) {
		dir, snap := paths(t)
		ref, last, first := pruned(t, dir, snap, 64, 2)
		w, m, err := open(dir, snap, 64, false)
		if err != nil {
			t.Fatal(err)
		}
		rb := m.Rebuild()
		if rb.Source != booksnap.FromSnapshot || rb.FirstSeq != first || rb.SnapshotSeq != last || rb.UpTo != last || len(rb.Incomplete) != 0 || rb.Replaced != "" {
			t.Fatalf("rebuild %+v; want from the snapshot at %d, first %d, nothing incomplete", rb, last, first)
		}
		continueAndCheck(t, dir, snap, w, m, ref, last, true)
	})

	// Depth 10: the slot holds the top 10 of 20 levels a side.
	t.Run("refuses a snapshot holding only the top of a book", func(t *testing.T) {
		dir, snap := paths(t)
		_, _, first := pruned(t, dir, snap, 10, 2)
		before, _ := os.ReadFile(snap)
		_, _, err := open(dir, snap, 10, false)
		var pe *booksnap.PrunedError
		if !errors.As(err, &pe) || !errors.Is(err, booksnap.ErrPruned) || pe.FirstSeq != first ||
			len(pe.Incomplete) != 1 || pe.Incomplete[0].Instrument != instr || pe.Incomplete[0].Symbol != "SYNTH" {
			t.Fatalf("got %v", err)
		}
		for _, want := range []string{"seq " + strconv.FormatUint(first, 10), "top 10 levels", "1 (SYNTH)", "AllowIncomplete", "restore the pruned segments"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("message lacks %q: %v", want, err)
			}
		}
		if after, _ := os.ReadFile(snap); !bytes.Equal(before, after) {
			t.Error("a refused Start changed the snapshot file")
		}
	})

	t.Run("continues from the top of a book when allowed, and says so", func(t *testing.T) {
		dir, snap := paths(t)
		ref, last, _ := pruned(t, dir, snap, 10, 2)
		w, m, err := open(dir, snap, 10, true)
		if err != nil {
			t.Fatal(err)
		}
		rb := m.Rebuild()
		if rb.Source != booksnap.FromSnapshot || len(rb.Incomplete) != 1 || rb.Incomplete[0].Instrument != instr || !strings.Contains(rb.Incomplete[0].Reason, "full depth") {
			t.Fatalf("rebuild %+v", rb)
		}
		// The stream never empties a top-10 level, so the top is still exact.
		continueAndCheck(t, dir, snap, w, m, ref, last, false)
	})

	t.Run("refuses without a snapshot, and leaves none", func(t *testing.T) {
		dir, snap := paths(t)
		_, _, first := pruned(t, dir, snap, 64, 2)
		os.Remove(snap)
		_, _, err := open(dir, snap, 64, false)
		var pe *booksnap.PrunedError
		if !errors.As(err, &pe) || pe.FirstSeq != first || !strings.Contains(err.Error(), "no snapshot") {
			t.Fatalf("got %v", err)
		}
		if _, err := os.Lstat(snap); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("a refused Start left %s: %v", snap, err)
		}
	})

	t.Run("rebuilds from the retained frames when allowed, and says so", func(t *testing.T) {
		dir, snap := paths(t)
		_, _, first := pruned(t, dir, snap, 64, 2)
		os.Remove(snap)
		w, m, err := open(dir, snap, 64, true)
		if err != nil {
			t.Fatal(err)
		}
		defer m.Close()
		defer w.Close()
		rb := m.Rebuild()
		if rb.Source != booksnap.FromRetained || rb.FirstSeq != first || len(rb.Incomplete) != 1 || rb.Incomplete[0].Symbol != "SYNTH" {
			t.Fatalf("rebuild %+v", rb)
		}
		r, err := snapshot.Open(snap)
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		// The symbol comes from the definitions every segment re-states.
		if id, ok, err := r.Lookup("SYNTH"); err != nil || !ok || id != instr {
			t.Errorf("Lookup(SYNTH) = %d %v %v", id, ok, err)
		}
	})

	t.Run("refuses a snapshot that stopped before the pruned frames", func(t *testing.T) {
		dir, snap := paths(t)
		_, last, _ := pruned(t, dir, snap, 64, 0) // nothing pruned yet
		// More frames without the snapshot, then prune past them.
		w, err := writer.Open(dir, writer.Options{SegmentSize: journal.MinSegmentSize})
		if err != nil {
			t.Fatal(err)
		}
		s := newStream(3000)
		for range 4 {
			appendFrames(t, w, s.cycle)
		}
		w.Close()
		first := prune(t, dir, 2)
		if first <= last+1 {
			t.Fatalf("first retained %d, snapshot at %d: the gap is not open", first, last)
		}
		_, _, err = open(dir, snap, 64, false)
		want := fmt.Sprintf("last applied at seq %d: frames %d..%d are in neither", last, last+1, first-1)
		if !errors.Is(err, booksnap.ErrPruned) || !strings.Contains(err.Error(), want) {
			t.Fatalf("got %v, want %q", err, want)
		}
	})
}

// TestPrunedRestartAfterKill9: a feed handler (a writer process with the
// snapshot) is killed with kill -9, the journal is pruned, and it restarts:
// the snapshot its predecessor left (written since the system booted, so
// whole in the page cache) bridges the gap exactly. The same file as a
// power cut would leave it (last written before the boot) is not trusted.
func TestPrunedRestartAfterKill9(t *testing.T) {
	if testutil.Role() == "feed" {
		feedHandler(t)
		return
	}
	tmp := t.TempDir()
	dir, snap := filepath.Join(tmp, "j"), filepath.Join(tmp, "s.snap")
	cfg := booksnap.Config{Path: snap, Depth: 64, Capacity: 4}
	kill9 := func() {
		cmd := testutil.Command(t, "TestPrunedRestartAfterKill9", "feed", "MDJ_DIR="+dir, "MDJ_SNAP="+snap)
		stdin, _ := cmd.StdinPipe()
		out, _ := cmd.StdoutPipe()
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		defer stdin.Close()
		line, err := bufio.NewReader(out).ReadString('\n')
		if strings.TrimSpace(line) != "ready" {
			cmd.Process.Kill()
			cmd.Wait()
			t.Fatalf("feed handler: %q %v", line, err)
		}
		cmd.Process.Kill()
		cmd.Wait()
	}
	kill9()
	ref, last := replayBooks(t, dir)
	first := prune(t, dir, 2)
	sr, err := snapshot.Open(snap)
	if err != nil {
		t.Fatal(err)
	}
	if sr.WriterPID() == 0 || sr.LastApplied() != last {
		t.Fatalf("after kill -9: writer pid %d, last applied %d (journal %d)", sr.WriterPID(), sr.LastApplied(), last)
	}
	sr.Close()
	w, m, err := booksnap.OpenWriter(dir, writer.Options{SegmentSize: journal.MinSegmentSize}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if rb := m.Rebuild(); rb.Source != booksnap.FromSnapshot || rb.FirstSeq != first || rb.SnapshotSeq != last || len(rb.Incomplete) != 0 {
		t.Fatalf("rebuild %+v", rb)
	}
	continueAndCheck(t, dir, snap, w, m, ref, last, true)

	// Again, but the snapshot as a power cut leaves it.
	kill9()
	prune(t, dir, 2)
	bt := bootTime(t).Add(-time.Hour)
	if err := os.Chtimes(snap, bt, bt); err != nil {
		t.Fatal(err)
	}
	before, _ := os.ReadFile(snap)
	_, _, err = booksnap.OpenWriter(dir, writer.Options{SegmentSize: journal.MinSegmentSize}, cfg)
	if !errors.Is(err, booksnap.ErrPruned) || !strings.Contains(err.Error(), "cannot be trusted") || !strings.Contains(err.Error(), "before the system booted") {
		t.Fatalf("restart on a snapshot a power cut may have torn: %v", err)
	}
	after, _ := os.ReadFile(snap)
	la := func(b []byte) uint64 { return uint64(b[64]) | uint64(b[65])<<8 | uint64(b[66])<<16 | uint64(b[67])<<24 }
	if la(after) != 0 || !bytes.Equal(before[snapshot.HeaderSize:], after[snapshot.HeaderSize:]) {
		t.Errorf("untrusted snapshot after the refusal: last_applied %d (want 0: it claims nothing), slots changed %v", la(after), !bytes.Equal(before[snapshot.HeaderSize:], after[snapshot.HeaderSize:]))
	}
}

// feedHandler is the helper process: a writer with the snapshot that
// appends frames over many segments, says "ready" and waits to be killed.
func feedHandler(t *testing.T) {
	dir, snap := os.Getenv("MDJ_DIR"), os.Getenv("MDJ_SNAP")
	w, _, err := booksnap.OpenWriter(dir, writer.Options{SegmentSize: journal.MinSegmentSize},
		booksnap.Config{Path: snap, Depth: 64, Capacity: 4, AllowIncomplete: true})
	if err != nil {
		t.Fatal(err)
	}
	s := newStream(3000)
	if w.LastSeq() == 0 {
		appendFrames(t, w, append([]journal.Frame{s.def}, s.seed...))
	}
	for range 6 {
		appendFrames(t, w, s.cycle)
	}
	fmt.Println("ready")
	io.Copy(io.Discard, os.Stdin) // killed meanwhile
	t.Fatal("not killed")
}

// bootTime reads the system's boot time from /proc/stat.
func bootTime(t *testing.T) time.Time {
	t.Helper()
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		t.Skipf("SKIPPED: no /proc/stat: %v", err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "btime "); ok {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return time.Unix(n, 0)
		}
	}
	t.Skip("SKIPPED: /proc/stat has no btime")
	return time.Time{}
}

// TestStartAgainAfterRefusal: a Start refused on a pruned journal, retried
// with the same maintainer, judges the snapshot file again (it had been
// closed by the refusal) and refuses for the same reason.
func TestStartAgainAfterRefusal(t *testing.T) {
	tmp := t.TempDir()
	dir, snap := filepath.Join(tmp, "j"), filepath.Join(tmp, "s.snap")
	pruned(t, dir, snap, 10, 2) // slots full: refused
	opts, m, err := booksnap.WriterOptions(writer.Options{SegmentSize: journal.MinSegmentSize}, booksnap.Config{Path: snap, Depth: 10, Capacity: 4})
	if err != nil {
		t.Fatal(err)
	}
	w, err := writer.Open(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	for i := range 2 {
		err := m.Start(w)
		if !errors.Is(err, booksnap.ErrPruned) || !strings.Contains(err.Error(), "top 10 levels") || m.Snapshot() != nil {
			t.Fatalf("Start %d: %v (snapshot %v)", i+1, err, m.Snapshot())
		}
	}
}
