package powerloss_test

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mdjournal/mdjournal/internal/lossyfs"
	"github.com/mdjournal/mdjournal/journal"
	"github.com/mdjournal/mdjournal/ops/verify"
	"github.com/mdjournal/mdjournal/writer"
)

// TestIndexRebuiltAfterCut — issue defect 1: index files of sealed and
// prepared segments. After a cut a sealed segment's index may be unusable
// (the kernel wrote the segment back, not its index), which verify reports
// as an index finding (derived data), never as damage; the next writer
// open rebuilds it, so verify passes once that writer has closed.
//
// Construction: a writer under "none" rolls a few times; the kernel writes
// the segment files back (fsync by path), not the indexes; cut.
func TestIndexRebuiltAfterCut(t *testing.T) {
	l := newLossy(t, "j")
	dir := l.path("j")
	frames := 12000
	if raceBuild {
		frames = 6000
	}
	w, _ := startWriter(t, dir, "none", frames)
	last, _ := until(t, w, func(report) bool { return false })
	if last.rolls < 2 {
		t.Fatalf("the writer rolled %d times (%+v): the test needs sealed segments", last.rolls, last)
	}
	for n := uint64(1); n <= last.rolls+1; n++ {
		fsyncPath(t, journal.SegmentPath(dir, n))
	}
	l.cut(w)

	segs, err := readSegments(dir)
	if err != nil || len(segs) < 2 || !segs[0].StateOK || !segs[0].State.sealed() {
		t.Fatalf("after the cut segment 1 should be durably sealed: %+v %v", segs, err)
	}
	before := runScript(t, "verify "+dir)
	sealedIdx := false
	for _, p := range linesWith(before, "problem ") {
		f := strings.Fields(p)
		if f[1] != "index" && f[1] != "torn" {
			t.Errorf("after the cut verify reports %s", p)
		}
		if f[1] == "index" && f[3] == journal.IndexName(1) {
			sealedIdx = true
		}
	}
	if !sealedIdx {
		t.Fatalf("the construction did not leave the sealed segment's index unusable; verify said %q", before)
	}

	// One writer opens and closes: the index must be whole again.
	runScript(t, "openclose "+dir+" none")
	after := runScript(t, "verify "+dir)
	ps := linesWith(after, "problem ")
	if len(ps) == 0 {
		return
	}
	// A writer that stays open does rebuild it: the rebuild is only late.
	waited := runScript(t, "openwait "+dir+" none")
	if got := linesWith(waited, "indexes 0 "); len(got) != 1 {
		t.Errorf("a writer that stays open 10 s does not rebuild the sealed segment's index either: %q", waited)
	}
	knownBug(t, "a writer that opens and closes right away leaves the sealed segment's unusable index as it was: verify after it still says %q "+
		"(a writer that stays open rebuilds it: %q). writer/background.go repairIndexes runs in the background goroutine, and Close "+
		"stops it before it rebuilds anything, so a journal whose writers open and close quickly reports the index forever", ps, waited)
}

// TestIntervalRollOrder — issue defect 2: under interval (and sync) a roll
// is ordered on disk, so a durable seal always has an activated successor
// (format.md §4.3, §9). A writer rolls segment after segment while group
// commit runs; right after each roll it reports, the test takes the durable
// image a power cut at that instant would leave (lossyfs Image: "taken
// before a cut it is what a cut now would keep") ten times, 40 µs apart,
// and reads each image's segment headers.
func TestIntervalRollOrder(t *testing.T) {
	writers, frames := 4, 25000
	if testing.Short() {
		writers = 2
	}
	if raceBuild {
		writers, frames = 1, 8000
	}
	if s := os.Getenv("MDJ_POWERLOSS_ROLLWRITERS"); s != "" {
		writers, _ = strconv.Atoi(s)
	}
	var broken, damaged []string
	shots, rolls := 0, 0
	for i := 0; i < writers && (len(broken) == 0 || len(damaged) == 0); i++ {
		policy := []string{"interval:1ms", "interval:5ms,64KiB"}[i%2]
		l := newLossy(t, "j")
		w, _ := startWriter(t, l.path("j"), policy, frames)
		var imgs []*lossyfs.Image
		var seen uint64
		until(t, w, func(r report) bool {
			if r.rolls > seen {
				seen = r.rolls
				for range 10 {
					imgs = append(imgs, l.fsys.Image())
					for end := time.Now().Add(40 * time.Microsecond); time.Now().Before(end); {
					}
				}
			}
			return false
		})
		w.kill(t)
		rolls += int(seen)
		for _, img := range imgs {
			shots++
			b, d := probeRollOrder(t, img, "j")
			if b != "" {
				broken = append(broken, policy+": "+b)
			}
			if len(d) > 0 {
				damaged = append(damaged, policy+": "+d[0])
			}
		}
	}
	t.Logf("%d rolls, %d durable images right after them: %d with a durable seal and no activated successor, %d damage findings",
		rolls, shots, len(broken), len(damaged))
	if len(broken) > 0 || len(damaged) > 0 {
		// Group the damage by kind: a seal whose end marker is not durable,
		// or a segment followed by an activated one whose own frames are not
		// all durable.
		kinds := map[string][]string{}
		for _, d := range damaged {
			k := "other"
			switch {
			case strings.Contains(d, "says sealed but no end marker"):
				k = "durable SEALED record without a durable end marker"
			case strings.Contains(d, "not the last one"), strings.Contains(d, "the write cursor says"):
				k = "a segment followed by an activated one has frames that are not durable"
			}
			kinds[k] = append(kinds[k], d)
		}
		var sum []string
		for k, ds := range kinds {
			sum = append(sum, fmt.Sprintf("%s: %d (e.g. %q)", k, len(ds), ds[0]))
		}
		knownBug(t, "under interval, of %d durable images taken right after a roll, %d hold a durable seal without an activated successor "+
			"(e.g. %q), and verify finds DAMAGE in %d, which makes writer.Open refuse the journal: %s. Causes in writer/background.go: "+
			"(1) the ticker's groupCommit(w.active.Load()) is not ordered after the retirements roll() queued — groupCommit(old) loads the "+
			"old cursor, msyncs the data up to it, then writes the state record roll() meanwhile marked SEALED and msyncs the header page "+
			"(a seal before the successor's activation, and without the end marker when it was stored after the data msync), and "+
			"groupCommit(new) makes the new segment's frames durable while the old segment's last frames wait in the retire queue; "+
			"(2) retireSegment syncs the successor's header before the old segment's last frames (as format.md §4.3 says), so a cut "+
			"in between leaves a torn or lost tail in a segment that is no longer the last one, which §8.1 calls damage. "+
			"format.md §9 promises that under interval a cut loses at most the last D",
			shots, len(broken), append(broken, "")[0], len(damaged), strings.Join(sum, "; "))
	}
}

// probeRollOrder mounts a durable image and reads its segment headers: ""
// if every durably sealed segment has an activated successor, else what is
// broken, with verify's damage findings on a local copy.
func probeRollOrder(t *testing.T, img *lossyfs.Image, rel string) (string, []string) {
	t.Helper()
	pmp := t.TempDir()
	p, err := lossyfs.Mount(pmp, lossyfs.Options{Image: img})
	if err != nil {
		t.Fatal(err)
	}
	segs, err := readSegments(filepath.Join(pmp, rel))
	var b string
	for k, s := range segs {
		if s.StateOK && s.State.sealed() && (k+1 >= len(segs) || !segs[k+1].StateOK || segs[k+1].FirstSeq != s.State.LastSeq+1) {
			b = fmt.Sprintf("segment %d durably sealed (last seq %d), segment %d not activated", s.Num, s.State.LastSeq, s.Num+1)
			break
		}
	}
	var damage []string
	{
		cp := t.TempDir()
		if err := copyTree(filepath.Join(pmp, rel), cp); err != nil {
			t.Fatal(err)
		}
		if rep, err := verify.Journal(cp, verify.Options{}); err == nil {
			for _, pr := range rep.Problems {
				if pr.Severity == verify.Damage {
					damage = append(damage, pr.Err.Error())
				}
			}
		}
	}
	if uerr := p.Unmount(); uerr != nil {
		t.Errorf("probe unmount: %v", uerr)
	}
	if err != nil {
		t.Fatal(err)
	}
	return b, damage
}

// TestVerifyFlagsBrokenRollOrder — issue defect 2, second half: under none
// nothing orders a roll on disk; verify must flag a durable seal whose
// successor was never activated but holds bytes as repairable roll_order
// (torn), and the next writer open moves that segment aside.
//
// Construction: a writer under "none" rolls; the kernel writes back segment
// 1 whole and segment 2's frames, not segment 2's header page; cut.
func TestVerifyFlagsBrokenRollOrder(t *testing.T) {
	l := newLossy(t, "j")
	dir := l.path("j")
	w, _ := startWriter(t, dir, "none", 3000)
	if last, _ := until(t, w, func(report) bool { return false }); last.rolls < 1 {
		t.Fatalf("the writer never rolled (%+v)", last)
	}
	fsyncPath(t, journal.SegmentPath(dir, 1))
	runScript(t, "flush "+journal.SegmentPath(dir, 2)+" 4096 "+itoa(segSize-4096))
	l.cut(w)

	segs, _ := readSegments(dir)
	if len(segs) < 2 || !segs[0].State.sealed() || segs[1].StateOK {
		t.Fatalf("construction failed: want segment 1 sealed and segment 2 not activated: %+v", segs)
	}
	out := runScript(t, "verify "+dir)
	flagged := false
	for _, p := range linesWith(out, "problem ") {
		f := strings.Fields(p)
		switch {
		case f[1] == "torn" && f[2] == "roll_order" && f[3] == journal.SegmentName(2):
			flagged = true
		case f[1] == "damage":
			t.Errorf("a broken roll order under none is reported as damage: %s", p)
		}
	}
	if !flagged {
		t.Errorf("verify does not flag the unactivated successor holding frames as torn roll_order: %q", out)
	}
	rec := runScript(t, "openclose "+dir+" none")
	var r writer.Recovery
	if js := linesWith(rec, "recovery "); len(js) == 1 {
		json.Unmarshal([]byte(strings.TrimPrefix(js[0], "recovery ")), &r)
	}
	if len(r.MovedAside) != 1 || !strings.HasSuffix(r.MovedAside[0], journal.SegmentName(2)) {
		t.Errorf("the writer did not move the unactivated segment aside: %+v", r)
	} else if _, err := readFileSize(r.MovedAside[0]); err != nil {
		t.Errorf("the moved-aside segment is gone: %v", err)
	}
	if ps := linesWith(runScript(t, "verify "+dir), "problem "); len(ps) > 0 {
		t.Errorf("after the writer's repair verify still reports %q", ps)
	}
}

// TestInspectStatesStateRecord — issue defect 3: inspect states what the
// last segment's state record says (Durability.Clean is its CLEAN flag,
// format.md §2.2), not what the lock file suggests. The three cases where
// the lock file and the state disagree: a writer killed without a cut (its
// PID stays in the lock file, the state is not clean), a clean close
// followed by a cut after the kernel had written the lock file back (the
// close's truncation was never durable, so the lock file still names the
// writer; the state is clean), and a killed writer followed by a cut (the
// PID it wrote was never durable: the lock file is empty, as after a clean
// close; the state is not clean).
func TestInspectStatesStateRecord(t *testing.T) {
	check := func(t *testing.T, dir string, wantClean bool) {
		t.Helper()
		segs, err := readSegments(dir)
		if err != nil {
			t.Fatal(err)
		}
		last := -1
		for i, s := range segs {
			if s.StateOK {
				last = i
			}
		}
		if last < 0 {
			t.Fatalf("no activated segment: %+v", segs)
		}
		st := segs[last].State
		if st.clean() != wantClean {
			t.Fatalf("the construction failed: segment %d's state record says clean=%t, want %t", segs[last].Num, st.clean(), wantClean)
		}
		lock, _ := os.ReadFile(filepath.Join(dir, "journal.lock"))
		out := runScript(t, "inspect "+dir)
		var d struct {
			Segment uint64 `json:"segment"`
			Offset  uint64 `json:"durable_offset"`
			Seq     uint64 `json:"durable_seq"`
			Clean   bool   `json:"clean"`
			Valid   bool   `json:"state_valid"`
		}
		if js := linesWith(out, "durability "); len(js) != 1 || json.Unmarshal([]byte(strings.TrimPrefix(js[0], "durability ")), &d) != nil {
			t.Fatalf("inspect said %q", out)
		}
		if d.Clean != st.clean() || !d.Valid || d.Segment != segs[last].Num || d.Seq != st.DurSeq || d.Offset != st.DurOff {
			t.Errorf("inspect says %+v; segment %d's state record says clean=%t durable_offset=%d durable_seq=%d (lock file holds %q)",
				d, segs[last].Num, st.clean(), st.DurOff, st.DurSeq, lock)
		}
		t.Logf("state clean=%t, lock file %q, inspect %+v, writer %q", st.clean(), lock, d, linesWith(out, "writer "))
	}
	t.Run("killed", func(t *testing.T) {
		l := newLossy(t, "j")
		dir := l.path("j")
		w, _ := startWriter(t, dir, "sync", 300)
		until(t, w, func(report) bool { return false })
		w.kill(t)
		check(t, dir, false)
	})
	t.Run("closed-then-cut", func(t *testing.T) {
		l := newLossy(t, "j")
		dir := l.path("j")
		runScript(t, "write "+dir+" none 500 flushlock")
		l.cut()
		if b, _ := os.ReadFile(filepath.Join(dir, "journal.lock")); len(b) == 0 {
			t.Fatalf("the construction failed: the lock file is empty after the cut")
		}
		check(t, dir, true)
	})
	t.Run("killed-then-cut", func(t *testing.T) {
		l := newLossy(t, "j")
		dir := l.path("j")
		w, _ := startWriter(t, dir, "sync", 300)
		until(t, w, func(report) bool { return false })
		w.kill(t)
		l.cut()
		if b, _ := os.ReadFile(filepath.Join(dir, "journal.lock")); len(b) != 0 {
			t.Fatalf("the construction failed: the lock file holds %q after the cut", b)
		}
		check(t, dir, false)
	})
}

// TestSnapshotMaintainerRestartAfterCrash: the snapshot is derived data
// whose fix is "restart the maintainer" (verify.SnapshotSev's hint), so
// booksnap.OpenWriter must work after any crash. A writer with the
// maintainer and three instrument definitions is killed (SIGKILL, no power
// cut, plain disk); then booksnap.OpenWriter opens the journal again.
func TestSnapshotMaintainerRestartAfterCrash(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "j")
	snap := filepath.Join(t.TempDir(), "book.snap")
	w, _ := startWriter(t, dir, "none", 200, "PL_SNAP="+snap)
	until(t, w, func(report) bool { return false })
	w.kill(t)
	// Plain disk, not the mount: this process may map the journal.
	ww, m, err := openCampaignWriter(dir, "none", segSize, snap)
	if err != nil {
		if strings.Contains(err.Error(), "not yet published") {
			knownBug(t, "booksnap.OpenWriter fails after an unclean shutdown of a journal that defines instruments: %v. writer.Open starts a new "+
				"epoch in a new segment and re-states the catalogue there as staged, unpublished frames (writer/recover.go openJournal -> roll -> "+
				"restate), and Maintainer.Start refuses a writer whose LastSeq differs from PublishedSeq (booksnap/booksnap.go Start). "+
				"The maintainer can then never restart, so the snapshot's rebuild path is closed after every crash", err)
		}
		t.Fatalf("booksnap.OpenWriter after a crash: %v", err)
	}
	if err := ww.Close(); err != nil {
		t.Fatal(err)
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestJournalDirCreatedDurable: writer.Open creates the journal directory
// when it is missing (format.md §1: directories it creates, 0750). Under
// sync everything Append returned survives a power cut (§9), so the
// directory's own name must be durable before DurableSeq claims a frame.
func TestJournalDirCreatedDurable(t *testing.T) {
	l := newLossy(t)
	dir := l.path("data/j") // neither directory exists
	w, _ := startWriter(t, dir, "sync", 200)
	last, _ := until(t, w, func(report) bool { return false })
	if last.dur == 0 {
		t.Fatalf("the writer reported nothing durable: %+v", last)
	}
	l.cut(w)
	segs, err := readSegments(dir)
	if os.IsNotExist(err) {
		knownBug(t, "after the writer reported DurableSeq %d under sync, a power cut took the whole journal: writer.Open creates %s with "+
			"fsx.MkdirAll (writer/writer.go Open) and never fsyncs the parent directories, so the journal directory's name is not durable "+
			"(only its entries are: segment creation fsyncs the journal directory itself)", last.dur, dir)
	}
	if err != nil {
		t.Fatal(err)
	}
	var durable uint64
	for _, s := range segs {
		if s.StateOK {
			durable = max(durable, s.State.DurSeq)
		}
	}
	if durable < last.dur {
		t.Errorf("the writer reported DurableSeq %d; after the cut the state records claim only %d", last.dur, durable)
	}
}

// TestNamedReaderResumedBeforeRecovery: after a power cut a named reader may
// start before the writer. Its durable position (the kernel wrote it back)
// says it consumed seq S in epoch E, past what survived; the journal has no
// later epoch yet, so Open resumes (format.md §8.4 checks at resume). The
// writer then recovers and reissues the lost seqs in epoch E+1. The reader
// must not go on silently from S+1 in the new epoch as if nothing had
// happened: the seqs up to S it consumed now mean other frames.
func TestNamedReaderResumedBeforeRecovery(t *testing.T) {
	l := newLossy(t, "j")
	dir := l.path("j")
	runScript(t, "write "+dir+" none 300") // durable: a clean close
	logDir := t.TempDir()
	log1 := filepath.Join(logDir, "1.log")
	w, _ := startWriter(t, dir, "none", 1500)
	rd := startChild(t, "reader", "PL_DIR="+dir, "PL_NAME=early", "PL_LOG="+log1)
	until(t, w, func(report) bool { return false })
	// Wait (bounded) until the reader has consumed past the durable frames,
	// then let the kernel write its position back.
	var seenTo uint64
	for deadline := time.Now().Add(30 * time.Second); seenTo < 1000; time.Sleep(time.Millisecond) {
		_, seenTo = loadSeen([]string{log1})
		if time.Now().After(deadline) {
			t.Fatalf("the reader consumed only up to seq %d in 30 s", seenTo)
		}
	}
	if n := flushPositions(dir); n != 1 {
		t.Fatalf("flushed %d position files, want 1", n)
	}
	l.cut(w, rd)
	pos := readPos(filepath.Join(dir, "readers", "early.pos"))
	segs, _ := readSegments(dir)
	var durable uint64
	for _, s := range segs {
		if s.StateOK {
			durable = max(durable, s.State.DurSeq)
		}
	}
	if !pos.Valid || pos.Seq <= durable+3 {
		t.Fatalf("the construction failed: position %+v, durable seq %d (want the position past it)", pos, durable)
	}

	// The reader starts first and waits at S+1; then a writer recovers and
	// appends 1500 frames in a new epoch.
	log2 := filepath.Join(logDir, "2.log")
	rd2 := startChild(t, "reader", "PL_DIR="+dir, "PL_NAME=early", "PL_LOG="+log2)
	if l, ok := rd2.next(time.Minute); !ok || !strings.HasPrefix(l, "open ") {
		t.Fatalf("the reader did not resume: %q", l)
	}
	runScript(t, "write "+dir+" none 1500")
	// Wait (bounded) for the reader to react: a frame, or an error.
	var got map[[2]uint64]uint32
	var reaction string
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		if got, _ = loadSeen([]string{log2}); len(got) > 0 {
			break
		}
		if l, ok := rd2.poll(); ok {
			reaction = l
		}
		if reaction != "" {
			break
		}
	}
	rd2.kill(t)
	segs, _ = readSegments(dir)
	var from uint64
	for _, s := range segs {
		if s.StateOK && s.Epoch > pos.Epoch {
			from = s.FirstSeq
			break
		}
	}
	if from == 0 || from > pos.Seq {
		t.Fatalf("the construction failed: no segment of an epoch after %d starts at or below seq %d: %+v", pos.Epoch, pos.Seq, segs)
	}
	if strings.Contains(reaction, "reissued") {
		return
	}
	var first [2]uint64
	for k := range got {
		if first[0] == 0 || k[0] < first[0] {
			first = k
		}
	}
	if len(got) > 0 {
		knownBug(t, "a named reader that resumed before the writer recovered (position seq %d, epoch %d; the power cut kept seqs up to %d) "+
			"is silently given seq %d of epoch %d, although seqs %d..%d were reissued in that epoch: the reissue check runs only in Open "+
			"(reader/named.go checkReissue), and following the roll into the new epoch's segment only checks that the epoch does not go back",
			pos.Seq, pos.Epoch, durable, first[0], first[1], from, pos.Seq)
	}
	t.Fatalf("the reader neither read on nor reported a reissue within 10 s (said %q)", reaction)
}

// TestPositionFileEmptyAfterCut: a named reader's position file whose name
// reached the disk but whose content did not (a directory commit without
// the file's data, the classic zero-length file after a crash). The reader
// itself starts afresh; the tools that list positions must not report it
// as damage without a way out.
func TestPositionFileEmptyAfterCut(t *testing.T) {
	l := newLossy(t, "j")
	dir := l.path("j")
	runScript(t, "write "+dir+" none 100")
	rd := startChild(t, "reader", "PL_DIR="+dir, "PL_NAME=empty", "PL_LOG="+filepath.Join(t.TempDir(), "log"))
	if l, ok := rd.next(time.Minute); !ok || !strings.HasPrefix(l, "open ") {
		t.Fatalf("the reader did not open: %q", l)
	}
	fsyncPath(t, filepath.Join(dir, "readers")) // the name, not the content
	fsyncPath(t, dir)                           // and the readers directory's
	l.cut(rd)
	if p := readPos(filepath.Join(dir, "readers", "empty.pos")); !p.Exists || p.Valid {
		t.Fatalf("the construction failed: position file %+v", p)
	}
	out := runScript(t, "readers "+dir)
	var bad []string
	for _, l := range linesWith(out, "reader ") {
		if strings.Contains(l, "error") && !strings.HasSuffix(l, `error ""`) {
			bad = append(bad, l)
		}
	}
	if len(bad) > 0 {
		knownBug(t, "after a power cut left readers/empty.pos empty, reader.ListNamed fails for the whole journal, so the tools report the "+
			"position file as damage without a way out: %q. The reader itself re-initialises such a file on open (reader/named.go "+
			"openPosition), so ListNamed could read an empty or zero position file as \"no position yet\"", bad)
	}
}

// closedJournal writes a journal on plain disk with at least rolls+1
// segments and closes it cleanly.
func closedJournal(t *testing.T, rolls uint64) (string, uint64) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "j")
	w, err := writer.Open(dir, writer.Options{SegmentSize: segSize})
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 512)
	for w.Stats().Rolls < rolls || w.LastSeq()%100 != 0 {
		if err := stageOne(w, buf); err != nil {
			t.Fatal(err)
		}
	}
	last := w.LastSeq()
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return dir, last
}

// unseal rewrites segment n of dir as a cut left it when its last frames,
// end marker and seal never reached the disk: the frames after keep (all
// data frames if keep < 0) are zeroed with the end marker (unless
// keepMarker, then only the seal is lost), the cursor hint is set to the new
// end plus extra, and a new current state record says not sealed,
// checkpoint at the header (format.md §2.1, §2.2, §3).
func unseal(t *testing.T, dir string, n uint64, keep int, extra int, keepMarker bool) {
	t.Helper()
	path := journal.SegmentPath(dir, n)
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	off := 4096
	for k := 0; keep < 0 || k < keep; k++ {
		size := int(u32(b, off+4))
		if size == 0 || binary.LittleEndian.Uint16(b[off+24:]) == uint16(journal.TypeSegmentEnd) {
			break
		}
		off += (size + 7) &^ 7
	}
	if keepMarker {
		off += 32
	}
	clear(b[off:])
	binary.LittleEndian.PutUint64(b[64:], uint64(off+extra))
	h := parseHeader(n, path, b[:4096], int64(len(b)))
	slot := 128
	if h.State.Gen > 0 && u64(b, 128) == h.State.Gen {
		slot = 192
	}
	rec := b[slot : slot+64]
	clear(rec)
	binary.LittleEndian.PutUint64(rec[0:], h.State.Gen+1)
	binary.LittleEndian.PutUint64(rec[8:], 4096)          // durable_offset
	binary.LittleEndian.PutUint64(rec[16:], h.FirstSeq-1) // durable_seq
	binary.LittleEndian.PutUint32(rec[60:], crc32.Checksum(rec[:60], castagnoli))
	if err := os.WriteFile(path, b, 0o640); err != nil {
		t.Fatal(err)
	}
	if g := parseHeader(n, path, b[:4096], int64(len(b))); !g.StateOK || g.State.sealed() || g.State.Gen != h.State.Gen+1 {
		t.Fatalf("crafting the state record failed: %+v", g)
	}
}

// TestWriterOpenRefusesSequenceGap: a power cut under interval can leave an
// unsealed segment whose frames end before its successor's first seq (see
// TestIntervalRollOrder). writer.Open must refuse such a journal with a
// CorruptionError naming the file (format.md §8.2 step 3), never crash. The
// state is crafted on plain disk: segment 1 of a two-segment journal loses
// its frames after the 500th, its end marker and its seal.
func TestWriterOpenRefusesSequenceGap(t *testing.T) {
	dir, _ := closedJournal(t, 1)
	unseal(t, dir, 1, 500, 0, false)
	out, err := tryScript(t, "openclose "+dir+" none")
	refused := linesWith(out, "err openclose")
	switch {
	case len(refused) == 1 && strings.Contains(refused[0], "does not follow"):
		// Refused with the sequence finding.
	case len(refused) == 0 && err != nil:
		knownBug(t, "writer.Open crashes (%v, no error returned) on a journal whose active segment's first seq does not follow its unsealed "+
			"predecessor's last frame: writer/recover.go recoverJournal calls closeJudged(), which unmaps the segment just judged, and then "+
			"formats the error with h.FirstSeq() (and, for a journal id mismatch, h.JournalID()) from that unmapped header: SIGSEGV", err)
	default:
		t.Errorf("writer.Open on a sequence gap: %q (%v), want a refusal saying the first seq does not follow", out, err)
	}
}

// TestWriterOpenJudgesEveryUnsealedSegment: the interval roll race can
// leave segment N unsealed (end marker and seal not durable) while N+1 is
// durably sealed (see TestIntervalRollOrder). verify says what the next
// writer open will do about N; that open must do it: seal N when its frames
// end cleanly (format.md §8.1 step 5), refuse when the verdict is damage.
// Crafted on plain disk: segment 1 of a three-segment journal loses its end
// marker and seal (its cursor hint is the frames' end, or 32 bytes past
// it), or only its seal.
func TestWriterOpenJudgesEveryUnsealedSegment(t *testing.T) {
	orig, last := closedJournal(t, 2)
	for _, tc := range []struct {
		name       string
		extra      int
		keepMarker bool
	}{{"cursor-at-end", 0, false}, {"cursor-past-end", 32, false}, {"marker-without-seal", 0, true}} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := copyTree(orig, dir); err != nil {
				t.Fatal(err)
			}
			unseal(t, dir, 1, -1, tc.extra, tc.keepMarker)
			before := linesWith(runScript(t, "verify "+dir), "problem ")
			if len(before) == 0 || !strings.Contains(strings.Join(before, " "), journal.SegmentName(1)) {
				t.Fatalf("the construction failed: verify says %q", before)
			}
			damage := strings.Contains(strings.Join(before, " "), "problem damage")
			out, err := tryScript(t, "openclose "+dir+" none", "verify "+dir, "read "+dir)
			after := linesWith(out, "problem ")
			switch {
			case damage && len(linesWith(out, "err openclose")) == 1:
				// Refused.
			case !damage && err == nil && len(after) == 0:
				// Sealed.
			case err == nil:
				knownBug(t, "verify said %q; writer.Open accepted the journal and closed, verify still says %q, and a reader from the start "+
					"says %q (the journal held %d frames before the open): the writer judges only the last activated segment and the unsealed "+
					"segments right before it (writer/recover.go recoverJournal stops at the first sealed predecessor), so an unsealed segment "+
					"before a sealed one is never sealed or refused", before, after, linesWith(out, "read "), last)
			default:
				t.Errorf("verify said %q; writer.Open: %q (%v)", before, out, err)
			}
		})
	}
}
