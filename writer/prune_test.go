package writer_test

import (
	"os"
	"testing"

	"github.com/mdjournal/mdjournal/journal"
	"github.com/mdjournal/mdjournal/writer"
)

// TestOpenBesidePrune: a prune (which deletes the oldest segments, beside
// live writers) removes sealed segments after a writer's recovery listed
// them; the open skips them instead of failing with "segment missing"
// (the chaos campaign, seed 0x18ee5be4d144d986 round 12).
func TestOpenBesidePrune(t *testing.T) {
	dir := t.TempDir()
	w, err := writer.Open(dir, writer.Options{SegmentSize: journal.MinSegmentSize})
	if err != nil {
		t.Fatal(err)
	}
	p := make([]byte, 1000)
	for w.Stats().Rolls < 3 {
		if _, err := w.Append(journal.TypeRaw, 1, 1, p); err != nil {
			t.Fatal(err)
		}
	}
	last := w.LastSeq()
	w.Close()
	pruned := false
	defer writer.SetAfterListing(func() {
		for n := uint64(1); n <= 2; n++ {
			for _, f := range []string{journal.SegmentPath(dir, n), journal.IndexPath(dir, n)} {
				if err := os.Remove(f); err != nil {
					t.Errorf("prune: %v", err)
				}
			}
		}
		pruned = true
	})()
	w, err = writer.Open(dir, writer.Options{SegmentSize: journal.MinSegmentSize})
	if err != nil {
		t.Fatalf("open beside a prune: %v", err)
	}
	defer w.Close()
	if !pruned || w.LastSeq() != last {
		t.Fatalf("pruned %v, last seq %d, want %d", pruned, w.LastSeq(), last)
	}
}
