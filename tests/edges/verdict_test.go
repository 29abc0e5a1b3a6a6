package edges_test

import (
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mdjournal/mdjournal/internal/testutil"
	"github.com/mdjournal/mdjournal/journal"
	"github.com/mdjournal/mdjournal/ops/repair"
	"github.com/mdjournal/mdjournal/ops/verify"
	"github.com/mdjournal/mdjournal/reader"
	"github.com/mdjournal/mdjournal/writer"
)

const segSize = 256 << 10

// Every frame of these journals is a 64-byte Quote frame (32-byte header,
// 32-byte payload) whose bid price is its seq: the k-th frame (0-based) of
// a segment starts at 4096 + 64k.
func frameOff(k int) int64 { return journal.SegmentHeaderSize + int64(k)*64 }

func quote(seq int64) []byte {
	q := journal.Quote{BidPrice: seq, BidQty: 1, AskPrice: seq + 1, AskQty: 1}
	return q.Encode(make([]byte, 32))
}

// build writes n quotes with opts and closes the writer.
func build(t *testing.T, n int, opts writer.Options) string {
	t.Helper()
	dir := t.TempDir()
	if opts.SegmentSize == 0 {
		opts.SegmentSize = segSize
	}
	opts.NoRestate = true
	w, err := writer.Open(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= n; i++ {
		if _, err := w.Append(journal.TypeQuote, 1, int64(i), quote(int64(i))); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return dir
}

func seg(dir string, n uint64) string { return journal.SegmentPath(dir, n) }

// journalFiles is every file of the journal but the locks (a refused
// command still takes and drops them).
func journalFiles(t *testing.T, dir string) map[string][]byte {
	m := testutil.Files(t, dir)
	delete(m, filepath.Join(dir, journal.LockFile))
	delete(m, filepath.Join(dir, journal.MaintFile))
	return m
}

// refused asserts a writer open fails with a CorruptionError naming file,
// and changes nothing.
func refused(t *testing.T, dir, file string) {
	t.Helper()
	before := journalFiles(t, dir)
	w, err := writer.Open(dir, writer.Options{SegmentSize: segSize, NoRestate: true})
	if err == nil {
		w.Close()
		t.Fatalf("writer.Open accepted the journal")
	}
	var ce *journal.CorruptionError
	if !errors.As(err, &ce) || ce.File != file {
		t.Fatalf("writer.Open: %v, want a CorruptionError in %s", err, file)
	}
	testutil.SameFiles(t, before, journalFiles(t, dir), "a refused writer open")
}

// readSeqs reads every frame and returns seq → bid price, failing on a
// frame whose content is not its seq's.
func readSeqs(t *testing.T, dir string) map[uint64]int64 {
	t.Helper()
	r, err := reader.Open(dir, reader.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	out := map[uint64]int64{}
	for {
		f, ok, err := r.TryNext()
		if err != nil || !ok {
			return out
		}
		var q journal.Quote
		q.Decode(f.Payload)
		out[f.Seq] = q.BidPrice
	}
}

// A sync writer's frames are durable when Append returns. Clearing CLEAN
// and flipping a bit in the last frame made the next writer cut that frame
// as a "torn tail" and hand its seq to new content. It is damage now: the
// writer refuses, verify names it, recover refuses to cut it.
func TestSyncWriterDurableFrameNeverReissued(t *testing.T) {
	dir := build(t, 10, writer.Options{Durability: writer.Durability{Mode: writer.Sync}})
	p := seg(dir, 1)
	st, _ := testutil.SegmentState(t, p)
	if st.DurableSeq != 10 {
		t.Fatalf("a sync writer closed with durable seq %d, want 10", st.DurableSeq)
	}
	st.Flags &^= journal.StateClean
	testutil.WriteSegmentState(t, p, st)
	testutil.PatchFile(t, p, frameOff(9)+40, []byte{0xff}) // frame 10's payload

	refused(t, dir, p)
	rep, err := verify.Journal(dir, verify.Options{})
	if err != nil || rep.OK() || rep.Problems[0].Severity != verify.Damage || rep.Problems[0].Err.Offset != frameOff(9) {
		t.Fatalf("verify: %v %+v", err, rep.Problems)
	}
	before := journalFiles(t, dir)
	res, err := repair.Recover(dir, repair.Options{})
	if err == nil || res == nil || len(res.Refused) == 0 {
		t.Fatalf("recover cut durable damage: %v %+v", err, res)
	}
	testutil.SameFiles(t, before, journalFiles(t, dir), "recover")
	refused(t, dir, p)
}

// A closed journal's segment cut to 100,000 bytes: the 1498 durable frames
// past the cut used to vanish with no .broken file and their seqs be
// reissued. The writer and the reader report the truncation.
func TestTruncatedBelowCheckpointRefused(t *testing.T) {
	dir := build(t, 3000, writer.Options{})
	p := seg(dir, 1)
	if st, _ := testutil.SegmentState(t, p); st.DurableSeq != 3000 {
		t.Fatalf("a closed writer left durable seq %d, want 3000", st.DurableSeq)
	}
	if err := os.Truncate(p, 100_000); err != nil {
		t.Fatal(err)
	}
	refused(t, dir, p)
	_, err := reader.Open(dir, reader.Options{})
	var ce *journal.CorruptionError
	if !errors.As(err, &ce) || !errors.Is(err, journal.ErrTruncated) || ce.File != p {
		t.Fatalf("reader.Open: %v", err)
	}
}

// A trailing segment that was never activated (first_seq 0, valid header
// checksum) but holds frames is not an empty spare: adopting it would write
// new frames over published ones under their seqs. The writer refuses it.
func TestUnactivatedSegmentWithFramesNotAdopted(t *testing.T) {
	dir := build(t, 5000, writer.Options{}) // segments 1 (4031 frames) and 2 (969)
	p := seg(dir, 2)
	page := testutil.ReadFileAt(t, p, 0, journal.SegmentHeaderSize)
	h := journal.HeaderOf(page)
	b := make([]byte, journal.SegOffCursor)
	journal.PutStaticFields(b, h.JournalID(), 2, 0, h.Created(), h.Capacity(), h.Epoch()) // "prepared"
	testutil.PatchFile(t, p, 0, b)

	before := readSeqs(t, dir)
	w, err := writer.Open(dir, writer.Options{SegmentSize: segSize, NoRestate: true})
	if err == nil {
		for i := 0; i < 2000; i++ {
			w.Append(journal.TypeQuote, 1, 1, quote(-1))
		}
		w.Close()
	}
	// Whatever the writer did, no seq a reader could see before maps to new
	// content, and the frames of segment 2 still exist (in place or moved
	// aside, not overwritten).
	after := readSeqs(t, dir)
	for seq, price := range before {
		if got, ok := after[seq]; ok && got != price {
			t.Fatalf("seq %d was %d, is now %d", seq, price, got)
		}
	}
	kept := false
	filepath.Walk(dir, func(path string, info os.FileInfo, err error) error {
		if err == nil && info.Mode().IsRegular() && filepath.Base(path) == filepath.Base(p) {
			b, _ := os.ReadFile(path)
			if len(b) > int(frameOff(1)) && binary.LittleEndian.Uint64(b[frameOff(0)+8:]) == 4032 {
				kept = true
			}
		}
		return nil
	})
	if !kept {
		t.Fatal("the frames of the unactivated segment are gone")
	}
}

// A last segment shorter than its header page made every writer open panic
// and recover propose an impossible cut. It is a typed error; recover moves
// the file aside and the writer then opens.
func TestShortLastSegment(t *testing.T) {
	for _, size := range []int64{0, 100, 4095} {
		dir := build(t, 5000, writer.Options{})
		p := seg(dir, 3)
		if err := os.WriteFile(p, make([]byte, size), 0o640); err != nil {
			t.Fatal(err)
		}
		_, err := writer.Open(dir, writer.Options{SegmentSize: segSize})
		var ce *journal.CorruptionError
		if !errors.As(err, &ce) || ce.File != p {
			t.Fatalf("%d-byte last segment: writer.Open: %v", size, err)
		}
		res, err := repair.Recover(dir, repair.Options{})
		if err != nil {
			t.Fatalf("%d bytes: recover: %v", size, err)
		}
		if len(res.Refused) != 0 {
			t.Fatalf("%d bytes: recover refused %v", size, res.Refused)
		}
		w, err := writer.Open(dir, writer.Options{SegmentSize: segSize})
		if err != nil {
			t.Fatalf("%d bytes: after recover: %v", size, err)
		}
		if w.LastSeq() != 5000 {
			t.Errorf("%d bytes: resumed at %d", size, w.LastSeq())
		}
		w.Close()
	}
}

// A header with a valid checksum claiming a 1 TiB capacity made the writer
// fallocate until the disk was full and recover run out of memory. The
// capacity is bounded before anything is reserved or read.
func TestHugeCapacityHeader(t *testing.T) {
	dir := build(t, 5000, writer.Options{})
	p := seg(dir, 2)
	page := testutil.ReadFileAt(t, p, 0, journal.SegmentHeaderSize)
	h := journal.HeaderOf(page)
	b := make([]byte, journal.SegOffCursor)
	journal.PutStaticFields(b, h.JournalID(), 2, h.FirstSeq(), h.Created(), 1<<40, h.Epoch())
	testutil.PatchFile(t, p, 0, b)
	refused(t, dir, p)
	for _, dry := range []bool{true, false} {
		res, err := repair.Recover(dir, repair.Options{DryRun: dry})
		if err == nil || res == nil || len(res.Refused) == 0 {
			t.Fatalf("recover (dry run %v) did not refuse the bad capacity", dry)
		}
	}
	if st, _ := os.Stat(p); st.Size() != segSize {
		t.Fatalf("the segment grew to %d bytes", st.Size())
	}
}

// Adopting the prepared segment discarded an error creating its index;
// the first frame after the roll then panicked on a nil index. The error is
// returned.
func TestPreparedSegmentIndexFailureReturned(t *testing.T) {
	dir := build(t, 100, writer.Options{})
	// Let a writer prepare segment 2, then make its index impossible to
	// open or create: a directory of that name.
	w, err := writer.Open(dir, writer.Options{SegmentSize: segSize, NoRestate: true})
	if err != nil {
		t.Fatal(err)
	}
	// The background goroutine prepares the next segment as soon as the
	// writer opens; wait for the file (a condition, not a pause).
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(time.Millisecond) {
		if _, err := os.Stat(seg(dir, 2)); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the writer prepared no next segment within 20 s")
		}
	}
	w.Close()
	idx := journal.IndexPath(dir, 2)
	os.Remove(idx)
	if err := os.Mkdir(idx, 0o750); err != nil {
		t.Fatal(err)
	}
	w, err = writer.Open(dir, writer.Options{SegmentSize: segSize, NoRestate: true})
	if err == nil {
		defer w.Close()
		for i := 101; i <= 5000; i++ {
			if _, err := w.Append(journal.TypeQuote, 1, int64(i), quote(int64(i))); err != nil {
				return // an error, not a panic
			}
		}
		t.Fatal("the writer rolled into a segment without an index")
	}
	if !strings.Contains(err.Error(), "index of the prepared segment 2") {
		t.Fatalf("writer.Open: %v", err)
	}
}

// A power cut after the end marker of the active segment reached the disk
// but before its successor's activation or its seal did: the last active
// segment ends with a marker. The writer records the seal and continues in
// a new segment; it never appends after a marker.
func TestLastSegmentEndsWithMarker(t *testing.T) {
	dir := build(t, 100, writer.Options{})
	p := seg(dir, 1)
	os.Remove(seg(dir, 2)) // the prepared successor, not activated
	os.Remove(journal.IndexPath(dir, 2))
	end := frameOff(100)
	m := make([]byte, journal.EndMarkerSize)
	journal.PutFrame(m, 101, 100, journal.TypeSegmentEnd, 0, 0, nil)
	testutil.PatchFile(t, p, end, m)
	st, _ := testutil.SegmentState(t, p)
	st.Flags &^= journal.StateClean
	testutil.WriteSegmentState(t, p, st)

	w, err := writer.Open(dir, writer.Options{SegmentSize: segSize, NoRestate: true})
	if err != nil {
		t.Fatal(err)
	}
	for i := int64(101); i <= 110; i++ {
		if _, err := w.Append(journal.TypeQuote, 1, i, quote(i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	got := readSeqs(t, dir)
	for seq := uint64(1); seq <= 110; seq++ {
		if got[seq] != int64(seq) {
			t.Fatalf("seq %d reads %d (%d frames)", seq, got[seq], len(got))
		}
	}
	rep, err := verify.Journal(dir, verify.Options{})
	if err != nil || !rep.OK() {
		t.Fatalf("verify: %v %+v", err, rep.Problems)
	}
}
