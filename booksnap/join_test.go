package booksnap_test

import (
	"errors"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/klauspost/compress/zstd"

	"github.com/mdjournal/mdjournal/booksnap"
	"github.com/mdjournal/mdjournal/journal"
	"github.com/mdjournal/mdjournal/ops/compress"
	"github.com/mdjournal/mdjournal/reader"
	"github.com/mdjournal/mdjournal/writer"
)

// twoInstruments writes instrument 1 (the stream) and instrument 2 (its
// seed only, early: its slot's seq is in the first segment) over many
// small segments with the snapshot kept, and closes.
func twoInstruments(t *testing.T, dir, snap string) {
	t.Helper()
	s := newStream(3000)
	w, m, err := booksnap.OpenWriter(dir, writer.Options{SegmentSize: journal.MinSegmentSize},
		booksnap.Config{Path: snap, Depth: 64, Capacity: 4})
	if err != nil {
		t.Fatal(err)
	}
	appendFrames(t, w, append([]journal.Frame{s.def}, s.seed...))
	two := append([]journal.Frame(nil), s.seed...)
	for i := range two {
		two[i].Instrument = 2
	}
	appendFrames(t, w, two)
	for range 6 {
		appendFrames(t, w, s.cycle)
	}
	w.Close()
	m.Close()
}

// joinToEnd joins instr and reads the journal to its end; it returns the
// joiner's book.
func joinToEnd(t *testing.T, snap, dir string, instr uint32) (*booksnap.Joiner, error) {
	j, err := booksnap.Join(snap, dir, instr, reader.Options{})
	if err != nil {
		return nil, err
	}
	for {
		_, ok, err := j.TryNext()
		if err != nil {
			j.Close()
			return nil, err
		}
		if !ok {
			return j, nil
		}
	}
}

// TestJoinCompressed: after `journalctl compress` (ops/compress) turned
// every sealed segment into a .seg.zst archive, including the one holding
// the slot's seq, a late joiner still joins and ends with the replayed book.
func TestJoinCompressed(t *testing.T) {
	tmp := t.TempDir()
	dir, snap := filepath.Join(tmp, "j"), filepath.Join(tmp, "s.snap")
	twoInstruments(t, dir, snap)
	res, err := compress.All(dir, compress.Options{Level: zstd.SpeedFastest})
	if err != nil || len(res) < 5 {
		t.Fatalf("compressed %d segments: %v", len(res), err)
	}
	if m, _ := filepath.Glob(filepath.Join(dir, "00000000000000000001.seg")); len(m) != 0 {
		t.Fatal("segment 1 still raw")
	}
	want, _ := replayBooks(t, dir)
	for _, id := range []uint32{1, 2} {
		j, err := joinToEnd(t, snap, dir, id)
		if err != nil {
			t.Fatalf("instrument %d: %v", id, err)
		}
		w, _ := want.Get(id)
		if err := sameWholeBook(j.Book, w); err != nil || j.Seq != w.Seq() {
			t.Errorf("instrument %d: book at seq %d (want %d): %v", id, j.Seq, w.Seq(), err)
		}
		j.Close()
	}
}

// TestJoinPruned: a slot whose next frame was pruned cannot be joined: the
// error says which seq is missing.
func TestJoinPruned(t *testing.T) {
	tmp := t.TempDir()
	dir, snap := filepath.Join(tmp, "j"), filepath.Join(tmp, "s.snap")
	twoInstruments(t, dir, snap)
	prune(t, dir, 2)
	_, err := booksnap.Join(snap, dir, 2, reader.Options{})
	if !errors.Is(err, reader.ErrOutOfRange) || !strings.Contains(err.Error(), "no longer holds seq") {
		t.Fatalf("join of a slot older than the journal: %v", err)
	}
	if _, err := joinToEnd(t, snap, dir, 1); err != nil {
		t.Fatalf("instrument 1 (its slot is recent): %v", err)
	}
}

// TestJoinWhileCompressing: compression renames each archive into place and
// then deletes the raw segment, so a segment listed a moment ago can vanish
// before it is opened. Joins running while every segment is compressed
// must all succeed and end with the replayed book.
func TestJoinWhileCompressing(t *testing.T) {
	tmp := t.TempDir()
	dir, snap := filepath.Join(tmp, "j"), filepath.Join(tmp, "s.snap")
	twoInstruments(t, dir, snap)
	want, _ := replayBooks(t, dir)
	w2, _ := want.Get(2)
	var done atomic.Bool
	errc := make(chan error, 1)
	go func() {
		_, err := compress.All(dir, compress.Options{Level: zstd.SpeedFastest, Chunk: 4096})
		done.Store(true)
		errc <- err
	}()
	joins := 0
	for !done.Load() {
		// Opening is where the race is: join and close in a tight loop,
		// and read to the end now and then.
		j, err := booksnap.Join(snap, dir, 2, reader.Options{})
		if err != nil {
			t.Fatalf("join %d during compression: %v", joins, err)
		}
		j.Close()
		if joins%64 == 0 {
			j, err := joinToEnd(t, snap, dir, 2)
			if err != nil {
				t.Fatalf("join %d during compression: %v", joins, err)
			}
			if err := sameWholeBook(j.Book, w2); err != nil {
				t.Fatalf("join %d: %v", joins, err)
			}
			j.Close()
		}
		joins++
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	t.Logf("%d joins while compressing", joins)
}
