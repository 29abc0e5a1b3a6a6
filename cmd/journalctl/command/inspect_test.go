package command

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/mdjournal/mdjournal/internal/testutil"
	"github.com/mdjournal/mdjournal/journal"
	"github.com/mdjournal/mdjournal/ops/inspect"
	"github.com/mdjournal/mdjournal/ops/repair"
	"github.com/mdjournal/mdjournal/ops/verify"
)

func TestIssue5UsageErrorsExit2(t *testing.T) {
	dir := filepath.Join(goldenRoot, "clean")
	for _, args := range [][]string{
		{"inspect"},
		{"inspect", "--dir", dir, "extra"},
		{"inspect", "a", "b"},
		{"recover"},
		{"recover", "--dir", dir, "--truncate-at", "nocolon"},
		{"recover", "--dir", dir, "--truncate-at", "x.seg:-1"},
		{"stat"},
		{"stat", "--dir", dir, "--samples", "2"},
		{"stat", "--dir", dir, "--watch", "--interval", "0s"},
		{"prune", "--dir", dir},
		{"prune", "--dir", dir, "--keep", "1h", "--keep-segments", "2"},
		{"prune", "--dir", dir, "--keep-segments", "0"},
		{"verify", "--dir", dir, "--bogus"},
	} {
		code, _, stderr := run(t, args...)
		if code != ExitUsage || stderr == "" {
			t.Errorf("%q: exit %d (stderr %q), want 2 with a message", args, code, stderr)
		}
	}
}

func TestInspectJournalText(t *testing.T) {
	code, out, _ := run(t, "inspect", "--dir", filepath.Join(goldenRoot, "clean"))
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, out)
	}
	for _, want := range []string{"00000000000000000001.seg  sealed", "00000000000000000003.seg  active", "256.0 KiB",
		"AMZN", "223.6400", "order_add", "largest gaps between frames", "frames per 30s", "archiver", "strategy", "sequence gaps: none"} {
		if !strings.Contains(out, want) {
			t.Errorf("inspect output lacks %q", want)
		}
	}
}

func TestInspectDamageHex(t *testing.T) {
	dir := filepath.Join(goldenRoot, "flipped-bit")
	code, out, _ := run(t, "inspect", "--dir", dir, "--hex")
	if code != ExitData || !strings.Contains(out, ">0001f260") || !strings.Contains(out, "--truncate-at 00000000000000000002.seg:127592") ||
		!strings.Contains(out, "2183 missing") {
		t.Fatalf("exit %d\n%s", code, out)
	}
}

func TestInspectFiles(t *testing.T) {
	dir := filepath.Join(goldenRoot, "clean")
	for _, c := range []struct {
		file, kind string
		want       []string
	}{
		{journal.SegmentName(1), inspect.KindSegment, []string{"write_cursor", "SEALED", "header_crc", "ok"}},
		{journal.IndexName(2), inspect.KindIndex, []string{"stride", "count"}},
		{journal.CtlFile, inspect.KindControl, []string{"active_segment", "waiters"}},
		{"readers/archiver.pos", inspect.KindPosition, []string{"2500"}},
	} {
		code, out, _ := run(t, "inspect", filepath.Join(dir, c.file))
		if code != 0 {
			t.Errorf("%s: exit %d\n%s", c.file, code, out)
		}
		for _, w := range append(c.want, c.kind) {
			if !strings.Contains(out, w) {
				t.Errorf("inspect %s lacks %q:\n%s", c.file, w, out)
			}
		}
	}
	// --frames lists frames with offsets; --json decodes.
	code, out, _ := run(t, "inspect", "--frames", "--json", filepath.Join(dir, journal.SegmentName(3)))
	var r inspect.FileReport
	facts := testutil.ReadFacts(t, dir)
	if code != 0 || json.Unmarshal([]byte(out), &r) != nil || len(r.Frames) != facts.Frames[3] || r.Frames[0].Offset != 4096 || r.Frames[0].Seq != facts.FirstSeq[3] {
		t.Fatalf("--frames --json: exit %d, %d frames, want %d from seq %d", code, len(r.Frames), facts.Frames[3], facts.FirstSeq[3])
	}
	// A damaged header is still decoded, detected by name.
	code, out, _ = run(t, "inspect", "--hex", filepath.Join(goldenRoot, "bad-magic", journal.SegmentName(3)))
	if code != ExitData || !strings.Contains(out, "detected by name") || !strings.Contains(out, "BAD") || !strings.Contains(out, "|XXXXEG") {
		t.Fatalf("bad magic: exit %d\n%s", code, out)
	}
	code, _, errs := run(t, "inspect", filepath.Join(dir, "nonexistent.seg"))
	if code != ExitData || !strings.Contains(errs, "nonexistent.seg") {
		t.Fatalf("missing file: %d %q", code, errs)
	}
}

func TestStatAndPruneVerbs(t *testing.T) {
	dir := t.TempDir()
	copyTree(t, filepath.Join(goldenRoot, "clean"), dir)
	code, out, _ := run(t, "stat", "--dir", dir, "--json")
	var s inspect.StatReport
	if code != 0 || json.Unmarshal([]byte(out), &s) != nil {
		t.Fatalf("stat: %d %s", code, out)
	}
	facts := testutil.ReadFacts(t, dir)
	if s.ActiveSegment != 3 || s.LastSeq != facts.LastSeq || s.Cursor != facts.End[3] || s.SegmentsRaw != 3 || s.RateSource != "event_time_last_minute" || s.FramesPerSec <= 0 {
		t.Fatalf("stat: %+v; the reader says last seq %d, segment 3 ends at %d", s, facts.LastSeq, facts.End[3])
	}
	var arch inspect.ReaderLag
	for _, r := range s.Readers {
		if r.Name == "archiver" {
			arch = r
		}
	}
	if arch.Seq != 2500 || arch.LagFrames != int64(facts.LastSeq)-2500 || arch.LagUS <= 0 || arch.Segment != 1 {
		t.Fatalf("archiver lag: %+v", arch)
	}
	code, out, _ = run(t, "stat", "--dir", dir, "--watch", "--interval", "50ms", "--samples", "2")
	if code != 0 || strings.Count(out, "wall clock, between samples") != 2 {
		t.Fatalf("stat --watch: %d\n%s", code, out)
	}
	code, out, _ = run(t, "prune", "--dir", dir, "--keep-segments", "1", "--dry-run")
	if code != 0 || !strings.Contains(out, `named reader "archiver" at seq 2500 still needs it`) || !strings.Contains(out, "would delete 0 segment(s)") {
		t.Fatalf("prune dry run: %d\n%s", code, out)
	}
	code, out, _ = run(t, "prune", "--dir", dir, "--keep-segments", "1", "--force")
	if code != 0 || !strings.Contains(out, "deleted 2 segment(s)") {
		t.Fatalf("prune --force: %d\n%s", code, out)
	}
	code, out, _ = run(t, "inspect", "--dir", dir)
	if code != 0 || !strings.Contains(out, "is in no retained segment") {
		t.Fatalf("inspect after prune should flag the archiver: %d\n%s", code, out)
	}
}

// The operator walkthrough of docs/issue5-readme.md, end to end.
func TestRecoverWalkthrough(t *testing.T) {
	dir := t.TempDir()
	copyTree(t, filepath.Join(goldenRoot, "torn-tail"), dir)
	if code, out, _ := run(t, "verify", "--dir", dir); code != ExitData || !strings.Contains(out, "torn tail") || !strings.Contains(out, "recover --dir") {
		t.Fatalf("verify: %d\n%s", code, out)
	}
	before, _ := os.ReadFile(journal.SegmentPath(dir, 3))
	code, out, _ := run(t, "recover", "--dir", dir, "--dry-run")
	after, _ := os.ReadFile(journal.SegmentPath(dir, 3))
	if code != 0 || !strings.Contains(out, "would save_broken") || string(before) != string(after) {
		t.Fatalf("dry run: %d\n%s", code, out)
	}
	code, out, _ = run(t, "recover", "--dir", dir, "--json")
	var rj recoverJSON
	if code != 0 || json.Unmarshal([]byte(out), &rj) != nil || !rj.OK || len(rj.Actions) == 0 || rj.Actions[0].Op != "save_broken" {
		t.Fatalf("recover: %d\n%s", code, out)
	}
	if code, _, _ := run(t, "verify", "--dir", dir); code != 0 {
		t.Fatal("verify after recover")
	}
	// Mid-log damage: refused (exit 1) until the operator names the cut.
	dir = t.TempDir()
	copyTree(t, filepath.Join(goldenRoot, "zeroed-page-active"), dir)
	if code, out, _ := run(t, "recover", "--dir", dir); code != ExitData || !strings.Contains(out, "NOT REPAIRED") {
		t.Fatalf("recover mid-log: %d\n%s", code, out)
	}
	rep, err := verify.Journal(dir, verify.Options{})
	if err != nil || rep.OK() {
		t.Fatalf("verify found nothing to cut: %v", err)
	}
	cut := fmt.Sprintf("%s:%d", journal.SegmentName(3), rep.Problems[0].Err.Offset)
	if code, out, _ := run(t, "recover", "--dir", dir, "--truncate-at", cut); code != 0 || !strings.Contains(out, "verify: OK") {
		t.Fatalf("recover --truncate-at: %d\n%s", code, out)
	}
	if _, err := repair.ParseCut("a.seg:12"); err != nil {
		t.Fatal(err)
	}
}

func TestVerifySnapshot(t *testing.T) {
	dir, snap := t.TempDir(), filepath.Join(t.TempDir(), "amzn.snap")
	jdir := filepath.Join(dir, "j")
	code, out, errs := run(t, "import", "--dir", jdir, "--symbol", "AMZN", "--date", "2012-06-21", "--instrument", "7", "--segment-size", "256KiB",
		"--orderbook", filepath.Join(lobsterData, "AMZN_2012-06-21_34200000_57600000_orderbook_5.csv.gz"), "--snapshot", snap,
		filepath.Join(lobsterData, "AMZN_2012-06-21_34200000_57600000_message_5.csv.gz"))
	if code != 0 {
		t.Fatalf("import: %d %s %s", code, out, errs)
	}
	code, out, _ = run(t, "verify", "--dir", jdir, "--snapshot", snap, "--json")
	var v verifyJSON
	if code != 0 || json.Unmarshal([]byte(out), &v) != nil || v.Snapshot == nil || v.Snapshot.Checked != 1 || v.Snapshot.LastApplied != v.LastSeq {
		t.Fatalf("verify --snapshot: %d\n%s", code, out)
	}
	// Change one level's quantity in slot 7: the check must find it.
	f, _ := os.OpenFile(snap, os.O_RDWR, 0)
	var b [8]byte
	slot := int64(4096 + 7*448)
	f.ReadAt(b[:], slot+96+8) // best bid qty
	binary.LittleEndian.PutUint64(b[:], binary.LittleEndian.Uint64(b[:])+1)
	f.WriteAt(b[:], slot+96+8)
	f.Close()
	code, out, _ = run(t, "verify", "--dir", jdir, "--snapshot", snap, "--json")
	json.Unmarshal([]byte(out), &v)
	if code != ExitData || len(v.Problems) != 1 || v.Problems[0].Kind != "snapshot_mismatch" || !strings.Contains(v.Problems[0].Reason, "bid level 0") {
		t.Fatalf("verify --snapshot on a changed slot: %d\n%s", code, out)
	}
	// Another journal's snapshot.
	code, out, _ = run(t, "verify", "--dir", filepath.Join(goldenRoot, "clean"), "--snapshot", snap)
	if code != ExitData || !strings.Contains(out, "mirrors another journal") {
		t.Fatalf("foreign snapshot: %d\n%s", code, out)
	}
}

// inspect of something that is not ours exits 1; a FIFO is refused without
// being read (a read would block forever); a symlink is followed.
func TestInspectForeignAndSpecialFiles(t *testing.T) {
	dir := t.TempDir()
	text := filepath.Join(dir, "passwd")
	if err := os.WriteFile(text, []byte("root:x:0:0:root:/root:/bin/bash\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "link.seg")
	target, _ := filepath.Abs(filepath.Join(goldenRoot, "clean", journal.SegmentName(1)))
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ path, want string }{
		{text, "unknown"},
		{fifo, "not a regular file"},
	} {
		code, out, errs := run(t, "inspect", c.path)
		if code != ExitData || !strings.Contains(out+errs, c.want) {
			t.Errorf("inspect %s: exit %d, want 1 mentioning %q\nstdout %s\nstderr %s", c.path, code, c.want, out, errs)
		}
	}
	if code, out, errs := run(t, "inspect", link); code != 0 || !strings.Contains(out, inspect.KindSegment) {
		t.Errorf("inspect through a symlink: exit %d\n%s%s", code, out, errs)
	}
}
