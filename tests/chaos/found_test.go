package chaos_test

// Deterministic reproductions of the defects the campaign found (one test
// each, named in knownBugs). Each asserts what format.md promises, so it
// fails until the library is fixed; none is skipped.

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mdjournal/mdjournal/internal/segfile"
	"github.com/mdjournal/mdjournal/internal/testutil"
	"github.com/mdjournal/mdjournal/journal"
	"github.com/mdjournal/mdjournal/ops/compress"
	"github.com/mdjournal/mdjournal/ops/maint"
	"github.com/mdjournal/mdjournal/ops/repair"
	"github.com/mdjournal/mdjournal/ops/retention"
	"github.com/mdjournal/mdjournal/ops/verify"
	"github.com/mdjournal/mdjournal/reader"
	"github.com/mdjournal/mdjournal/writer"
)

const smallSeg = 256 << 10

func quote(i int64) []byte {
	q := journal.Quote{BidPrice: i, BidQty: 1, AskPrice: i + 1, AskQty: 1}
	return q.Encode(make([]byte, 32))
}

// buildJournal writes n quotes (64-byte frames, about 4030 per 256 KiB
// segment) and closes the writer cleanly.
func buildJournal(t *testing.T, n int, mode writer.Mode) string {
	t.Helper()
	dir := t.TempDir()
	w, err := writer.Open(dir, writer.Options{SegmentSize: smallSeg, Durability: writer.Durability{Mode: mode}})
	if err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= n; i++ {
		if _, err := w.Stage(journal.TypeQuote, 1, int64(i), quote(int64(i))); err != nil {
			t.Fatal(err)
		}
		if i%64 == 0 || i == n {
			if err := w.Publish(); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return dir
}

func segPath(dir string, n uint64) string { return journal.SegmentPath(dir, n) }

func flipBit(t *testing.T, path string, off int64, bit uint) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b := []byte{0}
	if _, err := f.ReadAt(b, off); err != nil {
		t.Fatal(err)
	}
	b[0] ^= 1 << bit
	if _, err := f.WriteAt(b, off); err != nil {
		t.Fatal(err)
	}
}

// readAll reads every frame of dir with the reader: the seqs, and the
// first error.
func readAll(dir string) ([]uint64, error) {
	r, err := reader.Open(dir, reader.Options{})
	if err != nil {
		return nil, err
	}
	defer r.Close()
	var seqs []uint64
	for {
		f, ok, err := r.TryNext()
		if err != nil {
			return seqs, err
		}
		if !ok {
			return seqs, nil
		}
		seqs = append(seqs, f.Seq)
	}
}

// journalctl runs the command line as a process (this binary re-executed
// as journalctl) with a hard deadline.
func journalctl(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	self, _ := os.Executable()
	cmd := exec.Command(self, args...)
	cmd.Env = append(os.Environ(), execEnv+"=journalctl")
	var out, errb strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(slow(60 * time.Second)):
		cmd.Process.Kill()
		<-done
		t.Fatalf("journalctl %v did not finish within %v", args, slow(60*time.Second))
	}
	ws := cmd.ProcessState.Sys().(syscall.WaitStatus)
	if ws.Signaled() {
		t.Fatalf("journalctl %v died of %v: %s", args, ws.Signal(), errb.String())
	}
	return ws.ExitStatus(), out.String(), errb.String()
}

// A writer open removed every *.seg.zst.tmp, including the one a running
// compress (holding the maintenance lock) was writing: that compress then
// failed renaming it ("no such file or directory"). format.md §1: .seg.zst.tmp
// is removed by the next maintenance command; §7: the writer does not take
// the maintenance lock. Campaign: compress exit 1 after a writer restart.
func TestWriterOpenKeepsLiveCompressTemp(t *testing.T) {
	dir := buildJournal(t, 5000, writer.None)
	h, err := maint.Lock(dir, "compress (this test)")
	if err != nil {
		t.Fatal(err)
	}
	defer h.Release()
	tmp := journal.ArchivePath(dir, 1) + journal.TmpExt
	if err := os.WriteFile(tmp, []byte("an archive being written"), 0o640); err != nil {
		t.Fatal(err)
	}
	w, err := writer.Open(dir, writer.Options{SegmentSize: smallSeg})
	if err != nil {
		t.Fatal(err)
	}
	w.Close()
	if _, err := os.Stat(tmp); err != nil {
		t.Fatalf("a writer open removed %s while a maintenance command held the lock: %v", filepath.Base(tmp), err)
	}
}

// An archive's write_cursor is a copy of raw_size (§14) and, like every
// cursor, a hint readers never need (§2.1, §4). One flipped bit in it made
// the archive unreadable ("archive header does not fit the file", blamed on
// the archive header at 4096) although every byte verify and readers check
// is intact.
func TestArchiveCursorIsAHint(t *testing.T) {
	dir := buildJournal(t, 10000, writer.None)
	if _, err := compress.All(dir, compress.Options{}); err != nil {
		t.Fatal(err)
	}
	want, err := readAll(dir)
	if err != nil {
		t.Fatal(err)
	}
	arc := journal.ArchivePath(dir, 1)
	flipBit(t, arc, journal.SegOffCursor, 3) // cursor ± 8: still inside the segment and 8-aligned
	got, err := readAll(dir)
	if err != nil || len(got) != len(want) {
		t.Errorf("after a flipped bit in the archive's cursor hint, the reader read %d of %d frames: %v", len(got), len(want), err)
	}
	rep, err := verify.Journal(dir, verify.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range rep.Problems {
		if p.Err.Offset != journal.SegOffCursor {
			t.Errorf("verify blames offset %d of %s for a flipped cursor bit at offset 64: %v", p.Err.Offset, filepath.Base(p.Err.File), p.Err)
		}
	}
}

// The journal's id was taken from the first segment's header before its
// checksum was checked: one flipped bit in that segment's journal_id made
// verify report every other segment as "files of two journals are mixed".
// verify must name the damaged header only.
func TestVerifyIDFromDamagedHeader(t *testing.T) {
	dir := buildJournal(t, 10000, writer.None) // segments 1, 2, 3 (+ a prepared 4)
	flipBit(t, segPath(dir, 1), 20, 5)         // journal_id, covered by header_crc
	rep, err := verify.Journal(dir, verify.Options{})
	if err != nil {
		t.Fatal(err)
	}
	named := false
	for _, p := range rep.Problems {
		if p.Err.File == segPath(dir, 1) && p.Err.Offset < 64 {
			named = true
			continue
		}
		t.Errorf("verify reports an intact file for a flipped bit in segment 1's header: %s %v", p.Severity, p.Err)
	}
	if !named {
		t.Errorf("verify does not name segment 1's header: %v", rep.Problems)
	}
}

// A sealed segment cut short in the zeroes after its end marker: verify
// (and inspect and recover) said OK while every reader refused the journal
// ("file is N bytes, header says capacity M"). format.md §2.1: the header
// check includes "file at least capacity bytes (offset = the file's size)".
func TestShortSealedSegment(t *testing.T) {
	dir := buildJournal(t, 10000, writer.None)
	p := segPath(dir, 1)
	f, err := readFacts(dir, "")
	if err != nil || len(f.segs) == 0 || !f.segs[0].sealed {
		t.Fatalf("segment 1 is not sealed: %v", err)
	}
	end := f.segs[0].end
	cut := end + (smallSeg-end)/2
	if cut <= end || cut >= smallSeg {
		t.Fatalf("segment 1's frames end at %d: no zeroes to cut", end)
	}
	if err := os.Truncate(p, cut); err != nil {
		t.Fatal(err)
	}
	rep, err := verify.Journal(dir, verify.Options{})
	if err != nil {
		t.Fatal(err)
	}
	_, rerr := readAll(dir)
	if rep.OK() && rerr != nil {
		t.Errorf("verify says OK, the reader fails: %v", rerr)
	}
	found := false
	for _, p := range rep.Problems {
		found = found || (p.Err.File == segPath(dir, 1) && p.Err.Offset == cut)
	}
	if !found {
		t.Errorf("verify does not report segment 1 cut to %d bytes (capacity %d) at offset %d: %v", cut, smallSeg, cut, rep.Problems)
	}
}

// A cleanly closed last segment cut short in the zeroes past its frames:
// every writer open (journalctl gen, import, recover) panicked with "slice
// bounds out of range" prefaulting past the end of the short mapping.
func TestShortCleanLastSegment(t *testing.T) {
	dir := buildJournal(t, 6000, writer.None) // segment 2 is the last, cleanly closed, about half full
	f, err := readFacts(dir, "")
	if err != nil {
		t.Fatal(err)
	}
	last := f.lastActivated()
	if last == nil || !last.current().clean() || last.end >= smallSeg-4096 {
		t.Fatalf("no cleanly closed, half-full last segment: %+v", last)
	}
	if err := os.Truncate(filepath.Join(dir, last.name), smallSeg-4096); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"gen", "--dir", dir, "--count", "10", "--segment-size", "256KiB"}, {"recover", "--dir", dir}} {
		code, _, stderr := journalctl(t, args...)
		if strings.Contains(stderr, "panic:") || code > 1 {
			t.Errorf("journalctl %s on a short, cleanly closed last segment: exit %d: %s", args[0], code, excerpt(stderr))
		}
	}
}

// An activated segment (first_seq set, header checksum good) whose two
// state records are damaged: verify called it a torn "not activated but
// holds bytes" segment that "the next writer open moves aside", while the
// writer refuses it. format.md §2.2: "an activated segment with no valid
// record has damaged state, which is damage"; §8: one verdict for all.
func TestActivatedSegmentWithoutStateIsDamage(t *testing.T) {
	dir := buildJournal(t, 6000, writer.None)
	f, err := readFacts(dir, "")
	if err != nil {
		t.Fatal(err)
	}
	last := f.lastActivated()
	p := filepath.Join(dir, last.name)
	fh, err := os.OpenFile(p, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	fh.WriteAt(make([]byte, 2*journal.StateSize), journal.SegOffStateA) // both records gone
	fh.Close()
	rep, err := verify.Journal(dir, verify.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ok := false
	for _, pr := range rep.Problems {
		if pr.Err.File == p && pr.Severity == verify.Damage && pr.Err.Offset >= journal.SegOffStateA && pr.Err.Offset < journal.SegOffStateB+journal.StateSize {
			ok = true
		}
	}
	if !ok {
		for _, pr := range rep.Problems {
			t.Logf("verify: %s %v", pr.Severity, pr.Err)
		}
		t.Errorf("verify does not report %s's missing state as damage at its state records", last.name)
	}
	if w, err := writer.Open(dir, writer.Options{SegmentSize: smallSeg}); err == nil {
		w.Close()
		t.Errorf("the writer opened a journal whose last activated segment has no valid state record")
	}
}

// The last activated segment of a sync journal cut into its header page:
// recover moved it aside and succeeded, and the journal continued below
// seqs that were durable, so the next writer reissued them. format.md
// §8.1.1: a file shorter than its durable checkpoint is damage; §8.3: a
// durable seq is never reissued. What proves the segment was activated
// (§8.2): a sealed predecessor (§4.3), what is left of its own header (a
// checked static header with a first seq, or a state record), or the
// control page naming it active (§6). The campaign (seed
// 0x18ee61927fa610d8 round 7) cut a journal's only retained segment to
// 2266 bytes: no predecessor, and recover moved it aside.
func TestRecoverKeepsTruncatedActivatedSegment(t *testing.T) {
	for _, tc := range []struct {
		name   string
		frames int // 6000: several segments; 100: one
		size   int64
		noCtl  bool // remove journal.ctl: only the file's own header is evidence
	}{
		{"sealed predecessor", 6000, 1000, true},
		{"own static header and state", 100, 2266, true},
		{"own static header", 100, 100, true},
		{"control page only", 100, 40, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := buildJournal(t, tc.frames, writer.Sync)
			f, err := readFacts(dir, "")
			if err != nil {
				t.Fatal(err)
			}
			last := f.lastActivated()
			durable := last.current().dSeq
			if tc.frames < 6000 && len(f.activated()) != 1 {
				t.Fatalf("%d activated segments, want 1", len(f.activated()))
			}
			if err := os.Truncate(filepath.Join(dir, last.name), tc.size); err != nil {
				t.Fatal(err)
			}
			if tc.noCtl {
				os.Remove(filepath.Join(dir, journal.CtlFile))
			}
			res, err := repair.Recover(dir, repair.Options{})
			if res == nil || (err != nil) != (len(res.Refused) > 0) {
				t.Fatalf("recover: %v (result %+v)", err, res)
			}
			if len(res.Refused) > 0 { // refused: nothing durable is given away
				if !strings.Contains(fmt.Sprint(res.Refused), last.name) {
					t.Errorf("refused, but not naming %s: %v", last.name, res.Refused)
				}
				return
			}
			w, err := writer.Open(dir, writer.Options{SegmentSize: smallSeg})
			if err != nil {
				t.Fatalf("recover succeeded, then the writer fails: %v", err)
			}
			defer w.Close()
			if w.LastSeq() < durable {
				t.Errorf("recover succeeded on %s cut to %d bytes; the writer continues at seq %d, below the durable seq %d: seqs %d..%d will be reissued",
					last.name, tc.size, w.LastSeq()+1, durable, w.LastSeq()+1, durable)
			}
		})
	}
}

// A journal whose first segment's header is cut: the reader said "no
// journal in directory" instead of naming the damaged file (a reader
// reports damage as a CorruptionError with file and offset, §8.2).
//
// The same with the journal's only activated segment's static header
// failing its checksum (campaign seed 0x18ee61fb1963a7d1 round 0: a bit of
// first_seq flipped): the reader took it for an activation being written,
// skipped it and said "no journal" — but its state record is valid, and
// activation writes that only after the static fields (§4.3): damage.
func TestReaderNamesDamagedFirstSegment(t *testing.T) {
	for _, tc := range []struct {
		name   string
		frames int
		damage func(t *testing.T, p string)
	}{
		{"cut to 1000 bytes", 6000, func(t *testing.T, p string) {
			if err := os.Truncate(p, 1000); err != nil {
				t.Fatal(err)
			}
		}},
		{"only segment, first_seq bit flipped", 100, func(t *testing.T, p string) { flipBit(t, p, 33, 1) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := buildJournal(t, tc.frames, writer.None)
			p := segPath(dir, 1)
			tc.damage(t, p)
			_, err := readAll(dir)
			if err == nil || errors.Is(err, journal.ErrNotFound) || !strings.Contains(err.Error(), filepath.Base(p)) {
				t.Errorf("reader on a journal whose first segment is damaged (%s): %v (want an error naming %s)", tc.name, err, filepath.Base(p))
			}
		})
	}
}

// verify run while prune deletes the oldest segments (verify takes no
// lock; the README runs both on live journals) reported the deleted
// segments as damage: "segment N is missing", "no such file or
// directory", an unusable index. The campaign saw it (and recover
// --dry-run's plan, built on verify, refusing the vanished files); here
// verify's Visit callback runs the prune after verify listed the segments,
// so the order is certain.
func TestVerifyDuringPruneNoFalseDamage(t *testing.T) {
	dir := buildJournal(t, 20000, writer.None) // 5 segments
	pruned := false
	rep, err := verify.Journal(dir, verify.Options{Visit: func(*journal.Frame) {
		if pruned {
			return
		}
		pruned = true
		if _, err := retention.Prune(dir, retention.Options{KeepSegments: 2}); err != nil {
			t.Errorf("prune: %v", err)
		}
	}})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range rep.Problems {
		t.Errorf("verify while prune deleted old segments: %s %v", p.Severity, p.Err)
	}
	if rep2, err := verify.Journal(dir, verify.Options{}); err != nil || !rep2.OK() {
		t.Fatalf("the pruned journal itself: %v %+v", err, rep2)
	}
}

// verify started while no writer held the lock; a writer opened meanwhile
// (recovering an unclean journal, as a kill -9 leaves it: a new epoch in
// the segment verify had listed as prepared) and staged frames. verify judged that segment as
// "not the last one": damage ("non-zero bytes after the last frame in a
// segment that is not the last one"). The campaign saw it with a writer
// restarting during a verify; here verify's own Visit callback (run on the
// first frame it checks, after it listed the segments and sampled the
// lock) opens the writer, so the order is certain.
func TestVerifyDuringWriterStartNoFalseDamage(t *testing.T) {
	// A journal a writer left uncleanly (as a kill -9 does: its last
	// segment's state record not CLEAN), with a prepared spare after it.
	dir := buildJournal(t, 6000, writer.None)
	f, err := readFacts(dir, "")
	if err != nil {
		t.Fatal(err)
	}
	last := f.lastActivated()
	if last == nil {
		t.Fatal("no activated segment")
	}
	if f.segs[len(f.segs)-1].num <= last.num {
		// The writer prepares its spare in the background and Close does
		// not wait for it: make it as the writer does.
		h, _, _, err := segfile.ReadHeader(dir, last.num)
		if err != nil {
			t.Fatal(err)
		}
		s, x, err := segfile.Create(dir, h.JournalID(), last.num+1, smallSeg, time.Now().UnixNano(), 0o640)
		if err != nil {
			t.Fatal(err)
		}
		x.Close()
		s.Close()
	}
	p := filepath.Join(dir, last.name)
	st, _ := testutil.SegmentState(t, p)
	st.Flags &^= journal.StateClean
	testutil.WriteSegmentState(t, p, st)

	var w *writer.Writer
	var werr error
	rep, err := verify.Journal(dir, verify.Options{Visit: func(*journal.Frame) {
		if w != nil || werr != nil {
			return
		}
		// A writer starts now: it recovers, seals the last segment, starts
		// a new epoch in the prepared one and stages (not yet publishes)
		// its first frames.
		if w, werr = writer.Open(dir, writer.Options{SegmentSize: smallSeg}); werr != nil {
			return
		}
		for i := int64(0); i < 100; i++ {
			w.Stage(journal.TypeQuote, 1, i, quote(i))
		}
	}})
	if werr != nil {
		t.Fatal(werr)
	}
	if w == nil {
		t.Fatal("verify visited no frame")
	}
	defer w.Close()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range rep.Problems {
		t.Errorf("verify, while a writer opened and staged frames: %s %v", p.Severity, p.Err)
	}
}

// A flipped bit in the journal id of the first retained segment (its
// static header checksum now fails): every reader named the NEXT segment
// ("files of two journals are mixed"), taking the damaged header's id as
// the journal's. The reader must name the damaged header, as verify does.
// (Campaign seed 0x18ee5c45b929c926 round 33.)
func TestReaderNamesDamagedStaticHeader(t *testing.T) {
	dir := buildJournal(t, 10000, writer.None) // segments 1, 2, 3 (+ a prepared 4)
	flipBit(t, segPath(dir, 1), 23, 2)         // journal_id, covered by header_crc
	_, err := readAll(dir)
	var ce *journal.CorruptionError
	if !errors.As(err, &ce) || ce.File != segPath(dir, 1) || ce.Offset >= 64 {
		t.Fatalf("reader on a journal whose first segment's journal id has a flipped bit: %v (want damage in %s's static header)", err, filepath.Base(segPath(dir, 1)))
	}
}
