package repair_test

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/mdjournal/mdjournal/internal/testutil"
	"github.com/mdjournal/mdjournal/journal"
	"github.com/mdjournal/mdjournal/ops/repair"
	"github.com/mdjournal/mdjournal/ops/verify"
	"github.com/mdjournal/mdjournal/writer"
)

// validFrames returns seq → crc of every frame verify accepts.
func validFrames(t *testing.T, dir string) map[uint64]uint32 {
	t.Helper()
	m := map[uint64]uint32{}
	if _, err := verify.Journal(dir, verify.Options{Visit: func(f *journal.Frame) { m[f.Seq] = f.CRC }}); err != nil {
		t.Fatal(err)
	}
	return m
}

func keeps(t *testing.T, before, after map[uint64]uint32) {
	t.Helper()
	for seq, crc := range before {
		if got, ok := after[seq]; !ok || got != crc {
			t.Fatalf("frame seq %d, valid before recover, is lost or changed", seq)
		}
	}
}

func TestRecoverRepairable(t *testing.T) {
	for _, c := range []struct {
		name   string
		broken int // bytes saved to .broken
	}{{"torn-tail", 8 + 9}, {"truncated-file", 24}, {"cursor-past-capacity", 0}} { // torn-tail: the empty commit word, then 9 bytes of body
		t.Run(c.name, func(t *testing.T) {
			dir := testutil.CopyJournalCase(t, c.name)
			before := validFrames(t, dir)
			files := testutil.Files(t, dir)
			res, err := repair.Recover(dir, repair.Options{DryRun: true})
			if err != nil || len(res.Actions) == 0 {
				t.Fatalf("dry run: %v, %d actions", err, len(res.Actions))
			}
			testutil.SameFiles(t, files, testutil.Files(t, dir), "dry run")

			res, err = repair.Recover(dir, repair.Options{})
			if err != nil {
				t.Fatal(err)
			}
			if !res.After.OK() {
				t.Fatalf("verify after recover: %v", res.After.Problems[0].Err)
			}
			keeps(t, before, validFrames(t, dir))
			seg3 := journal.SegmentPath(dir, 3)
			b, err := os.ReadFile(seg3 + journal.BrokenExt)
			if c.broken == 0 {
				if err == nil {
					t.Fatal("nothing was cut, yet a .broken file exists")
				}
				return
			}
			if err != nil || len(b) != c.broken {
				t.Fatalf(".broken: %d bytes (%v), want %d", len(b), err, c.broken)
			}
			// The saved bytes are exactly the original ones.
			orig := files[seg3]
			off := bytes.Index(orig, b)
			if off < 4096 {
				t.Fatalf("saved bytes are not from the segment")
			}
		})
	}
}

func TestRecoverRefusesDamage(t *testing.T) {
	for _, name := range []string{"zeroed-page-sealed", "zeroed-page-active", "flipped-bit", "bad-frame-length", "bad-magic", "unknown-version", "missing-segment"} {
		t.Run(name, func(t *testing.T) {
			dir := testutil.CopyJournalCase(t, name)
			segs := map[string][]byte{}
			for p, b := range testutil.Files(t, dir) {
				if filepath.Ext(p) == ".seg" {
					segs[p] = b
				}
			}
			res, err := repair.Recover(dir, repair.Options{})
			if !errors.Is(err, repair.ErrUnrepaired) || len(res.Refused) == 0 {
				t.Fatalf("recover: %v, refused %d; want ErrUnrepaired", err, len(res.Refused))
			}
			for p, b := range segs {
				now, _ := os.ReadFile(p)
				if !bytes.Equal(now, b) {
					t.Fatalf("%s was modified although its damage was refused", p)
				}
			}
		})
	}
}

func TestTruncateAt(t *testing.T) {
	dir := testutil.CopyJournalCase(t, "flipped-bit")
	rep, _ := verify.Journal(dir, verify.Options{})
	bad := rep.Problems[0].Err // segment 2, the flipped frame
	before := validFrames(t, dir)
	files := testutil.Files(t, dir)
	seg2, seg3 := journal.SegmentPath(dir, 2), journal.SegmentPath(dir, 3)

	if _, err := repair.Recover(dir, repair.Options{TruncateAt: &repair.Cut{File: filepath.Base(seg2), Offset: bad.Offset + 8}}); err == nil {
		t.Fatal("a cut inside a frame was accepted")
	}
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	res, err := repair.Recover(dir, repair.Options{TruncateAt: &repair.Cut{File: filepath.Base(seg2), Offset: bad.Offset}, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	if !res.After.OK() {
		t.Fatalf("verify after cut: %v", res.After.Problems[0].Err)
	}
	after := validFrames(t, dir)
	for seq, crc := range before {
		if seq < rep.Segments[1].FirstSeq || after[seq] == crc {
			continue
		}
		if _, kept := after[seq]; kept {
			t.Fatalf("seq %d changed", seq)
		}
	}
	for seq := range before {
		if seq <= rep.Segments[1].LastSeq && after[seq] != before[seq] {
			t.Fatalf("seq %d before the cut is lost", seq)
		}
	}
	// Nothing was deleted: the cut bytes and the later segment are kept.
	broken, _ := os.ReadFile(seg2 + journal.BrokenExt)
	if len(broken) == 0 || !bytes.Equal(broken, files[seg2][bad.Offset:bad.Offset+int64(len(broken))]) {
		t.Fatal(".broken does not hold the cut bytes")
	}
	moved, err := os.ReadFile(filepath.Join(dir, "orphaned-20260102T030405.000000000Z", filepath.Base(seg3)))
	if err != nil || !bytes.Equal(moved, files[seg3]) {
		t.Fatalf("segment 3 not moved aside intact: %v", err)
	}
	// The cut segment is active again and a writer continues after it.
	w, err := writer.Open(dir, writer.Options{SegmentSize: 256 << 10})
	if err != nil {
		t.Fatal(err)
	}
	// recover's own writer open sealed the cut segment and started a new
	// epoch in a new segment, re-stating the definition there.
	var last uint64
	for seq := range after {
		last = max(last, seq)
	}
	if got := w.Recovery().LastSeq; got != last || last != rep.Segments[1].LastSeq+1 {
		t.Fatalf("writer recovered up to %d; verify saw up to %d; the cut kept up to %d (+1 re-stated definition)", got, last, rep.Segments[1].LastSeq)
	}
	w.Close()
}

func TestRecoverRefusesLiveWriter(t *testing.T) {
	dir := testutil.CopyJournalCase(t, "clean")
	w, err := writer.Open(dir, writer.Options{SegmentSize: 256 << 10})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if _, err := repair.Recover(dir, repair.Options{}); !errors.Is(err, repair.ErrWriterLive) {
		t.Fatalf("recover with a live writer: %v", err)
	}
	if _, err := repair.Recover(dir, repair.Options{DryRun: true}); !errors.Is(err, repair.ErrWriterLive) {
		t.Fatalf("dry run with a live writer: %v", err)
	}
}

func TestRecoverRebuildsBadIndex(t *testing.T) {
	dir := testutil.CopyJournalCase(t, "clean")
	idx := journal.IndexPath(dir, 2)
	f, _ := os.OpenFile(idx, os.O_RDWR, 0)
	f.WriteAt([]byte{0xff, 0xff, 0xff}, journal.IndexHeaderSize+24+16) // entry 1's offset
	f.Close()
	rep, _ := verify.Journal(dir, verify.Options{})
	if rep.OK() || rep.Problems[0].Severity != verify.Index {
		t.Fatalf("damaged index not flagged: %+v", rep.Problems)
	}
	res, err := repair.Recover(dir, repair.Options{})
	if err != nil || !res.After.OK() {
		t.Fatalf("recover: %v", err)
	}
}
