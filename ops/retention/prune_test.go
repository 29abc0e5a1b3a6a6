package retention_test

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/mdjournal/mdjournal/internal/testutil"
	"github.com/mdjournal/mdjournal/journal"
	"github.com/mdjournal/mdjournal/ops/retention"
	"github.com/mdjournal/mdjournal/ops/verify"
	"github.com/mdjournal/mdjournal/reader"
)

func TestPruneRetentionAndReaders(t *testing.T) {
	dir := testutil.CopyJournalCase(t, "clean")
	// "archiver" is at seq 2500 (segment 1): it holds back pruning.
	res, err := retention.Prune(dir, retention.Options{KeepSegments: 1})
	if err != nil || res.Deleted != 0 || res.Segments[0].Action != "keep" {
		t.Fatalf("prune with a reader in segment 1: %v %+v", err, res)
	}
	files := testutil.Files(t, dir)
	if res, err = retention.Prune(dir, retention.Options{KeepSegments: 1, Force: true, DryRun: true}); err != nil || res.Deleted != 2 {
		t.Fatalf("dry run: %v %+v", err, res)
	}
	testutil.SameFiles(t, files, testutil.Files(t, dir), "prune --dry-run")

	// A plain reader mapped on segment 1 before the prune.
	live, err := reader.Open(dir, reader.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer live.Close()
	if _, ok, err := live.TryNext(); !ok || err != nil {
		t.Fatal("first frame", err)
	}
	if res, err = retention.Prune(dir, retention.Options{KeepSegments: 1, Force: true}); err != nil || res.Deleted != 2 {
		t.Fatalf("prune --force: %v %+v", err, res)
	}
	for _, n := range []uint64{1, 2} {
		if _, err := os.Stat(journal.SegmentPath(dir, n)); !os.IsNotExist(err) {
			t.Fatalf("segment %d still there", n)
		}
		if _, err := os.Stat(journal.IndexPath(dir, n)); !os.IsNotExist(err) {
			t.Fatalf("index %d still there", n)
		}
	}
	if rep, _ := verify.Journal(dir, verify.Options{}); !rep.OK() || rep.FirstSeq != 8339 {
		t.Fatalf("pruned journal does not verify: %+v", rep.Problems)
	}
	// What users see: the named reader whose frames are gone, a reader
	// asked for seq 1, and a reader that was already inside the pruned part.
	if _, err := reader.Open(dir, reader.Options{Name: "archiver"}); !errors.Is(err, reader.ErrOutOfRange) {
		t.Fatalf("named reader behind the pruned part: %v, want ErrOutOfRange", err)
	}
	if _, err := reader.Open(dir, reader.Options{From: reader.Seq(1)}); !errors.Is(err, reader.ErrOutOfRange) {
		t.Fatalf("reader at seq 1: %v, want ErrOutOfRange", err)
	}
	var rerr error
	for {
		_, ok, err := live.TryNext()
		if err != nil || !ok {
			rerr = err
			break
		}
	}
	if !errors.Is(rerr, journal.ErrMissing) {
		t.Fatalf("reader crossing into a pruned segment: %v, want journal.ErrMissing", rerr)
	}
	t.Logf("users see: %v", rerr)
}

func TestPruneKeepDuration(t *testing.T) {
	dir := testutil.CopyJournalCase(t, "clean")
	os.RemoveAll(filepath.Join(dir, reader.ReadersDir))
	// Newest frame 13:47:15.9; segment 1 ends 13:39:26, segment 2 13:44:17.
	res, err := retention.Prune(dir, retention.Options{Keep: 5 * time.Minute})
	if err != nil || res.Deleted != 1 || res.Segments[0].Action != "delete" || res.Segments[1].Action != "keep" {
		t.Fatalf("prune --keep 5m: %v %+v", err, res)
	}
	if _, err := retention.Prune(dir, retention.Options{}); err == nil {
		t.Fatal("no retention given, yet prune ran")
	}
}
