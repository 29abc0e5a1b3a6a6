package edges_test

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mdjournal/mdjournal/internal/testutil"
	"github.com/mdjournal/mdjournal/journal"
	"github.com/mdjournal/mdjournal/ops/compress"
	"github.com/mdjournal/mdjournal/ops/maint"
	"github.com/mdjournal/mdjournal/ops/repair"
	"github.com/mdjournal/mdjournal/ops/retention"
	"github.com/mdjournal/mdjournal/reader"
	"github.com/mdjournal/mdjournal/writer"
)

// TestMain runs the helper roles of the cross-process tests.
func TestMain(m *testing.M) {
	switch testutil.Role() {
	case "hold-maint":
		holdMaint()
		return
	case "hold-shared":
		holdShared()
		return
	}
	os.Exit(m.Run())
}

// holdMaint takes the maintenance lock of MDJ_DIR, says "held", and holds
// it until its stdin closes.
func holdMaint() {
	h, err := maint.Lock(os.Getenv("MDJ_DIR"), "test")
	if err != nil {
		fmt.Println("error:", err)
		os.Exit(1)
	}
	fmt.Println("held")
	bufio.NewReader(os.Stdin).ReadString('\n')
	h.Release()
}

// startHolder runs role in a helper process and returns once it said
// "held"; the process exits when the test ends.
func startHolder(t *testing.T, role, dir string) int {
	t.Helper()
	cmd := testutil.Command(t, "TestMain", role, "MDJ_DIR="+dir)
	in, _ := cmd.StdinPipe()
	out, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { in.Close(); cmd.Wait() })
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil || strings.TrimSpace(line) != "held" {
		t.Fatalf("%s helper: %q %v", role, line, err)
	}
	return cmd.Process.Pid
}

// compress and prune took no lock: run together, prune deleted a segment
// compress was archiving and compress renamed its archive into place
// anyway, leaving a gap. Every maintenance command takes one lock; while
// another process holds it, each refuses at once, naming that process.
func TestMaintenanceSerialised(t *testing.T) {
	dir := build(t, 20000, writer.Options{})
	pid := startHolder(t, "hold-maint", dir)
	before := journalFiles(t, dir)
	_, cerr := compress.All(dir, compress.Options{})
	_, perr := retention.Prune(dir, retention.Options{KeepSegments: 1})
	_, rerr := repair.Recover(dir, repair.Options{})
	for name, err := range map[string]error{"compress": cerr, "prune": perr, "recover": rerr} {
		if !errors.Is(err, maint.ErrBusy) || !strings.Contains(err.Error(), fmt.Sprint(pid)) {
			t.Errorf("%s while another holds the maintenance lock: %v", name, err)
		}
	}
	testutil.SameFiles(t, before, journalFiles(t, dir), "refused maintenance")
}

// A crashed compress left NNNN.seg.zst.tmp behind forever; the next
// maintenance command removes it.
func TestCompressLeftoverTempCleaned(t *testing.T) {
	dir := build(t, 5000, writer.Options{})
	tmp := filepath.Join(dir, journal.SegmentName(1)+journal.ArchiveExt+journal.TmpExt)
	if err := os.WriteFile(tmp, []byte("half an archive"), 0o640); err != nil {
		t.Fatal(err)
	}
	if _, err := compress.All(dir, compress.Options{}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(tmp); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("%s still there: %v", tmp, err)
	}
}

// compress or prune under a live none/async writer: the writer reopened
// sealed segments by name at Sync/Close, so Close failed once they were
// archived or pruned, one Sync left it failed for good, and Close then
// returned nil. The writer keeps descriptors of the segments it sealed.
func TestMaintenanceUnderLiveWriter(t *testing.T) {
	for _, mode := range []writer.Mode{writer.None, writer.Async} {
		t.Run(mode.String(), func(t *testing.T) {
			dir := t.TempDir()
			w, err := writer.Open(dir, writer.Options{SegmentSize: segSize, Durability: writer.Durability{Mode: mode}, NoRestate: true})
			if err != nil {
				t.Fatal(err)
			}
			for i := 1; i <= 20000; i++ { // 5 segments
				if _, err := w.Append(journal.TypeQuote, 1, int64(i), quote(int64(i))); err != nil {
					t.Fatal(err)
				}
			}
			res, err := compress.All(dir, compress.Options{})
			if err != nil || len(res) < 3 {
				t.Fatalf("compress: %d archived, %v", len(res), err)
			}
			if _, err := retention.Prune(dir, retention.Options{KeepSegments: 2}); err != nil {
				t.Fatal(err)
			}
			if err := w.Sync(); err != nil {
				t.Fatalf("Sync after compress and prune: %v", err)
			}
			if _, err := w.Append(journal.TypeQuote, 1, 20001, quote(20001)); err != nil {
				t.Fatalf("Append after Sync: %v", err)
			}
			if err := w.Close(); err != nil {
				t.Fatalf("Close: %v", err)
			}
			if got := readSeqs(t, dir); got[20001] != 20001 {
				t.Fatalf("the last frame is not readable: %d", got[20001])
			}
		})
	}
}

// waitFile waits for path to exist (a condition, not a pause).
func waitFile(t *testing.T, path string) {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(time.Millisecond) {
		if _, err := os.Stat(path); err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not appear within 20 s", path)
		}
	}
}

// The prepared next segment deleted under a live sync writer: frames went
// to an unlinked file and every Append said "durable". The writer detects
// it at activation and fails; a failed writer stays failed (Publish, Sync
// and Close return the error, DurableSeq never advances).
func TestPreparedSegmentDeletedFailsWriter(t *testing.T) {
	dir := t.TempDir()
	w, err := writer.Open(dir, writer.Options{SegmentSize: segSize, Durability: writer.Durability{Mode: writer.Sync}, NoRestate: true})
	if err != nil {
		t.Fatal(err)
	}
	waitFile(t, seg(dir, 2))
	if err := os.Remove(seg(dir, 2)); err != nil {
		t.Fatal(err)
	}
	// Batches of 256 (one msync each, not one per frame): last is the
	// last seq a successful Publish made durable.
	var failed error
	last := uint64(0)
	for i := 1; i <= 5000 && failed == nil; i++ {
		seq, err := w.Stage(journal.TypeQuote, 1, int64(i), quote(int64(i)))
		if err == nil && i%256 == 0 {
			err = w.Publish()
		}
		if err != nil {
			failed = err
			break
		}
		if i%256 == 0 {
			last = seq
		}
	}
	if !errors.Is(failed, writer.ErrFailed) {
		t.Fatalf("5000 appends across a roll into a deleted segment: %v", failed)
	}
	durable := w.DurableSeq()
	if durable > last {
		t.Fatalf("durable seq %d beyond the last appended %d", durable, last)
	}
	for name, err := range map[string]error{"Append": func() error { _, err := w.Append(journal.TypeQuote, 1, 1, quote(1)); return err }(),
		"Publish": w.Publish(), "Sync": w.Sync()} {
		if !errors.Is(err, writer.ErrFailed) {
			t.Errorf("%s after the failure: %v", name, err)
		}
	}
	if w.DurableSeq() != durable {
		t.Errorf("durable seq moved from %d to %d after the failure", durable, w.DurableSeq())
	}
	if err := w.Close(); !errors.Is(err, writer.ErrFailed) {
		t.Errorf("Close after the failure: %v", err)
	}
	// Everything Append returned is readable.
	got := readSeqs(t, dir)
	for seq := uint64(1); seq <= last; seq++ {
		if got[seq] != int64(seq) {
			t.Fatalf("seq %d (returned durable by a sync writer) reads as %d", seq, got[seq])
		}
	}
}

// journal.ctl made group-writable (so the group's readers can futex-wait)
// and truncated by a group member: the writer died of SIGBUS on its next
// publish. It fails with an error instead.
func TestTruncatedControlPageFailsWriter(t *testing.T) {
	dir := t.TempDir()
	w, err := writer.Open(dir, writer.Options{CtlPerm: 0o660})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if _, err := w.Append(journal.TypeHeartbeat, 0, 1, nil); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(filepath.Join(dir, journal.CtlFile), 0); err != nil {
		t.Fatal(err)
	}
	var aerr error
	for i := 0; i < 10 && aerr == nil; i++ {
		_, aerr = w.Append(journal.TypeHeartbeat, 0, int64(i+2), nil)
	}
	if !errors.Is(aerr, writer.ErrFailed) || !errors.Is(aerr, journal.ErrTruncated) {
		t.Fatalf("appends after journal.ctl was truncated: %v", aerr)
	}
}

// Guard the reader import (used by the maintenance roles).
var _ = reader.Options{}
