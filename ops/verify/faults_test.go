package verify_test

import (
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/mdjournal/mdjournal/internal/testutil"
	"github.com/mdjournal/mdjournal/journal"
	"github.com/mdjournal/mdjournal/ops/verify"
	"github.com/mdjournal/mdjournal/reader"
	"github.com/mdjournal/mdjournal/writer"
)

// The fault table. A journal of 10000 Quote frames in 256 KiB
// segments has a fixed, independently computable layout: every frame takes
// 64 bytes (32-byte header + 32-byte payload), a segment holds frames at
// offsets 4096 + 64k while 4096 + 64(k+1) + 32 ≤ 262144, i.e. 4031 frames,
// then the 32-byte end marker. So segment 1 holds seq 1..4031, segment 2
// 4032..8062, segment 3 (active) 8063..10000 with its cursor at
// 4096 + 1938·64 = 128128.
const (
	segSize     = 256 << 10
	total       = 10000
	perSeg      = 4031
	activeCount = total - 2*perSeg
	activeEnd   = 4096 + activeCount*64
)

func frameOff(k int) int64 { return 4096 + int64(k)*64 } // k-th frame (0-based) of a segment

func buildJournal(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	w, err := writer.Open(dir, writer.Options{SegmentSize: segSize})
	if err != nil {
		t.Fatal(err)
	}
	p := make([]byte, 32)
	for i := 1; i <= total; i++ {
		q := journal.Quote{BidPrice: int64(i), BidQty: 1, AskPrice: int64(i) + 1, AskQty: 1}
		if _, err := w.Append(journal.TypeQuote, 1, int64(i), q.Encode(p)); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if c := cursorOf(t, seg(dir, 3)); c != activeEnd {
		t.Fatalf("layout assumption broken: active cursor %d, want %d", c, activeEnd)
	}
	return dir
}

func seg(dir string, n uint64) string { return journal.SegmentPath(dir, n) }

var (
	patch = testutil.PatchFile
	read  = testutil.ReadFileAt
)

func u64(v uint64) []byte { return binary.LittleEndian.AppendUint64(nil, v) }

func cursorOf(t *testing.T, path string) int64 {
	return int64(binary.LittleEndian.Uint64(read(t, path, journal.SegOffCursor, 8)))
}

// makeDirty makes the active segment look like its writer was killed: not
// clean, nothing durable (policy none never syncs).
func makeDirty(t *testing.T, dir string) {
	testutil.WriteSegmentState(t, seg(dir, 3), journal.State{DurableOffset: 4096, DurableSeq: 2 * perSeg}) // first seq of segment 3 minus 1
}

func TestFaultTable(t *testing.T) {
	type fault struct {
		name   string
		damage func(t *testing.T, dir string)
		// what verify reports first
		sev    verify.Severity
		kind   error
		file   uint64 // segment number
		offset int64
		reader error // reading from start: nil = all frames, in order
		readAt int64 // offset of the reader's error
		// readStop: with reader nil, the reader stops without an error after
		// this many frames (0: all of them)
		readStop int
		writer   error // writer.Open: nil = opens (recovers)
		keepSeq  uint64
	}
	// sealed-segment frame positions
	mid1, mid2 := 100, 2000
	pageFrame := (8192 - 4096) / 64 // frame starting at 8192: the zeroed page begins on a frame boundary
	faults := []fault{
		// A crash leaves a frame's body without its commit word: readers see
		// nothing there; recovery saves and cuts it.
		{name: "torn tail past the cursor", damage: func(t *testing.T, dir string) {
			makeDirty(t, dir)
			patch(t, seg(dir, 3), activeEnd+8, []byte{0xde, 0xad, 0xbe, 0xef, 96, 0, 0, 0, 1, 0, 0, 0})
		}, sev: verify.Torn, kind: journal.ErrTornTail, file: 3, offset: activeEnd, writer: nil, keepSeq: total},
		// A power cut can leave any bytes, a commit word among them: a
		// reader reports the bad frame; recovery cuts it (past the
		// checkpoint).
		{name: "garbage commit word past the checkpoint", damage: func(t *testing.T, dir string) {
			makeDirty(t, dir)
			patch(t, seg(dir, 3), activeEnd, []byte{0xde, 0xad, 0xbe, 0xef, 96, 0, 0, 0, 1, 0, 0, 0})
		}, sev: verify.Torn, kind: journal.ErrTornTail, file: 3, offset: activeEnd,
			reader: journal.ErrChecksum, readAt: activeEnd, writer: nil, keepSeq: total},
		{name: "file truncated mid-frame", damage: func(t *testing.T, dir string) {
			makeDirty(t, dir)
			os.Truncate(seg(dir, 3), activeEnd-40)
		}, sev: verify.Torn, kind: journal.ErrTruncated, file: 3, offset: activeEnd - 40,
			reader: journal.ErrTruncated, readAt: activeEnd - 40, writer: nil, keepSeq: total - 1},
		{name: "file truncated below the durable checkpoint", damage: func(t *testing.T, dir string) {
			testutil.WriteSegmentState(t, seg(dir, 3), journal.State{DurableOffset: activeEnd, DurableSeq: total}) // durable to the end
			os.Truncate(seg(dir, 3), activeEnd-40)
		}, sev: verify.Damage, kind: journal.ErrTruncated, file: 3, offset: activeEnd - 40,
			reader: journal.ErrTruncated, readAt: activeEnd - 40, writer: journal.ErrTruncated},
		// A zeroed page reads as "nothing published here" followed by valid
		// frames: mid-log damage for verify and the writer; a reader simply
		// has nothing more to read in a sealed segment's zero word, so it
		// reports the missing end marker... it stops where the frames stop.
		{name: "zeroed page in a sealed segment", damage: func(t *testing.T, dir string) {
			patch(t, seg(dir, 1), 8192, make([]byte, 4096))
		}, sev: verify.Damage, kind: journal.ErrMidLog, file: 1, offset: frameOff(pageFrame),
			reader: nil, readStop: pageFrame, writer: nil, keepSeq: total},
		{name: "zeroed page mid active segment", damage: func(t *testing.T, dir string) {
			makeDirty(t, dir)
			patch(t, seg(dir, 3), 8192, make([]byte, 4096))
		}, sev: verify.Damage, kind: journal.ErrMidLog, file: 3, offset: frameOff(pageFrame),
			reader: nil, readStop: 2*perSeg + pageFrame, writer: journal.ErrMidLog},
		{name: "flipped bit in the last frame below the durable checkpoint", damage: func(t *testing.T, dir string) {
			// The journal was closed cleanly: every frame is durable.
			last := frameOff(activeCount - 1)
			b := read(t, seg(dir, 3), last+40, 1)
			patch(t, seg(dir, 3), last+40, []byte{b[0] ^ 0x01})
		}, sev: verify.Damage, kind: journal.ErrChecksum, file: 3, offset: frameOff(activeCount - 1),
			reader: journal.ErrChecksum, readAt: frameOff(activeCount - 1), writer: journal.ErrChecksum},
		{name: "flipped payload bit", damage: func(t *testing.T, dir string) {
			b := read(t, seg(dir, 2), frameOff(mid2)+40, 1)
			patch(t, seg(dir, 2), frameOff(mid2)+40, []byte{b[0] ^ 0x04})
		}, sev: verify.Damage, kind: journal.ErrChecksum, file: 2, offset: frameOff(mid2),
			reader: journal.ErrChecksum, readAt: frameOff(mid2), writer: nil, keepSeq: total},
		{name: "bad frame length", damage: func(t *testing.T, dir string) {
			patch(t, seg(dir, 1), frameOff(mid1)+4, []byte{3, 0, 0, 0}) // the size word
		}, sev: verify.Damage, kind: journal.ErrBadLength, file: 1, offset: frameOff(mid1),
			reader: journal.ErrBadLength, readAt: frameOff(mid1), writer: nil, keepSeq: total},
		{name: "bad magic", damage: func(t *testing.T, dir string) {
			patch(t, seg(dir, 3), 0, []byte("XXXX"))
		}, sev: verify.Damage, kind: journal.ErrBadMagic, file: 3, offset: 0,
			reader: journal.ErrBadMagic, readAt: 0, writer: journal.ErrBadMagic},
		{name: "unknown version", damage: func(t *testing.T, dir string) {
			patch(t, seg(dir, 1), 8, []byte{9, 0, 0, 0})
		}, sev: verify.Damage, kind: journal.ErrVersion, file: 1, offset: 8,
			reader: journal.ErrVersion, readAt: 8, writer: nil, keepSeq: total},
		// The cursor is a hint: readers never need it, recovery resets it.
		{name: "cursor past capacity", damage: func(t *testing.T, dir string) {
			patch(t, seg(dir, 3), journal.SegOffCursor, u64(segSize+64))
		}, sev: verify.Torn, kind: journal.ErrCursorRange, file: 3, offset: journal.SegOffCursor,
			reader: nil, writer: nil, keepSeq: total},
		{name: "missing segment", damage: func(t *testing.T, dir string) {
			os.Remove(seg(dir, 2))
		}, sev: verify.Damage, kind: journal.ErrMissing, file: 2, offset: 0,
			reader: journal.ErrMissing, readAt: 0, writer: nil, keepSeq: total},
	}
	for _, fc := range faults {
		t.Run(fc.name, func(t *testing.T) {
			dir := buildJournal(t)
			fc.damage(t, dir)

			// verify: typed finding with file, offset, reason.
			rep, err := verify.Journal(dir, verify.Options{})
			if err != nil {
				t.Fatal(err)
			}
			if rep.OK() {
				t.Fatal("verify found nothing")
			}
			p := rep.Problems[0]
			if p.Severity != fc.sev || !errors.Is(p.Err, fc.kind) || p.Err.File != seg(dir, fc.file) || p.Err.Offset != fc.offset || p.Err.Reason == "" {
				t.Fatalf("verify: got %s %v (file %s offset %d), want %s %v in segment %d at %d",
					p.Severity, p.Err, filepath.Base(p.Err.File), p.Err.Offset, fc.sev, fc.kind, fc.file, fc.offset)
			}

			// reader: every frame before the damage, in order, then the typed error.
			n, rerr := readAll(dir)
			if fc.reader == nil {
				want := total
				if fc.readStop != 0 {
					want = fc.readStop
				}
				if rerr != nil || n != want {
					t.Fatalf("reader: %d frames, err %v; want %d", n, rerr, want)
				}
			} else {
				var ce *journal.CorruptionError
				if !errors.Is(rerr, fc.reader) || !errors.As(rerr, &ce) || ce.Offset != fc.readAt {
					t.Fatalf("reader: err %v after %d frames, want %v at offset %d", rerr, n, fc.reader, fc.readAt)
				}
			}

			// writer: recovers a torn tail, refuses everything else it reads.
			w, werr := writer.Open(dir, writer.Options{SegmentSize: segSize})
			if fc.writer != nil {
				if werr == nil {
					w.Close()
				}
				if !errors.Is(werr, fc.writer) || !errors.Is(werr, journal.ErrCorrupt) {
					t.Fatalf("writer.Open: %v, want %v", werr, fc.writer)
				}
				return
			}
			if werr != nil {
				t.Fatalf("writer.Open: %v", werr)
			}
			if w.LastSeq() != fc.keepSeq {
				t.Fatalf("writer resumed at seq %d, want %d", w.LastSeq(), fc.keepSeq)
			}
			w.Close()
			if fc.sev == verify.Torn {
				if _, err := os.Stat(seg(dir, 3) + journal.BrokenExt); err != nil && fc.kind != journal.ErrCursorRange {
					t.Fatalf("torn bytes not saved: %v", err)
				}
				rep, _ := verify.Journal(dir, verify.Options{})
				if !rep.OK() {
					t.Fatalf("after recovery verify still finds %v", rep.Problems[0].Err)
				}
				if n, err := readAll(dir); err != nil || uint64(n) != fc.keepSeq {
					t.Fatalf("after recovery read %d frames (%v), want %d", n, err, fc.keepSeq)
				}
			}
		})
	}
}

// readAll reads from the start and returns how many frames came before the
// first error, checking contiguity and payload identity on the way.
func readAll(dir string) (int, error) {
	r, err := reader.Open(dir, reader.Options{})
	if err != nil {
		return 0, err
	}
	defer r.Close()
	n := 0
	for {
		f, ok, err := r.TryNext()
		if err != nil {
			return n, err
		}
		if !ok {
			return n, nil
		}
		var q journal.Quote
		q.Decode(f.Payload)
		if f.Seq != uint64(n+1) || q.BidPrice != int64(f.Seq) {
			return n, errors.New("frame content does not match its seq")
		}
		n++
	}
}

func TestTornTailSavedBytes(t *testing.T) {
	dir := buildJournal(t)
	makeDirty(t, dir)
	junk := []byte{1, 2, 3, 4, 96, 0, 0, 0, 5, 6, 7}
	patch(t, seg(dir, 3), activeEnd, junk)
	w, err := writer.Open(dir, writer.Options{SegmentSize: segSize})
	if err != nil {
		t.Fatal(err)
	}
	w.Close()
	saved, err := os.ReadFile(seg(dir, 3) + journal.BrokenExt)
	if err != nil || string(saved) != string(junk) {
		t.Fatalf("saved %x, want %x (%v)", saved, junk, err)
	}
	// The torn bytes are gone: the recovered segment was sealed there (an
	// unclean recovery starts a new epoch in a new segment), so its end
	// marker follows the last frame and zeroes follow the marker.
	marker := read(t, seg(dir, 3), activeEnd, journal.EndMarkerSize+64)
	f, n, st := journal.DecodeFrame(marker)
	if st != journal.FrameOK || f.Type != journal.TypeSegmentEnd || f.Seq != total+1 || !journal.AllZero(marker[n:]) {
		t.Fatalf("after recovery, %x at the old end", marker)
	}
}

// Complete frames written past the cursor by a writer killed before it
// published them are kept by recovery (they passed their checksum).
func TestUnpublishedCompleteFramesKept(t *testing.T) {
	dir := buildJournal(t)
	makeDirty(t, dir)
	b := make([]byte, 64)
	q := journal.Quote{BidPrice: total + 1, BidQty: 1, AskPrice: total + 2, AskQty: 1}
	journal.PutFrame(b, total+1, total+1, journal.TypeQuote, 0, 1, q.Encode(make([]byte, 32)))
	patch(t, seg(dir, 3), activeEnd, b)
	w, err := writer.Open(dir, writer.Options{SegmentSize: segSize})
	if err != nil {
		t.Fatal(err)
	}
	if w.LastSeq() != total+1 {
		t.Fatalf("last seq %d, want %d", w.LastSeq(), total+1)
	}
	w.Close()
	if n, err := readAll(dir); err != nil || n != total+1 {
		t.Fatalf("read %d (%v)", n, err)
	}
}

// A durability checkpoint (in a state record whose checksum holds) that the
// frames contradict is a claim about durable bytes that the data does not
// back: damage, refused with the offset; the writer never falls back to
// ignoring it (which is how a cut below a durable point would happen).
func TestContradictedCheckpointRefused(t *testing.T) {
	dir := buildJournal(t)
	testutil.WriteSegmentState(t, seg(dir, 3), journal.State{DurableOffset: frameOff(100), DurableSeq: 2*perSeg + 7}) // a frame boundary, the wrong seq
	before := testutil.Files(t, dir)
	_, err := writer.Open(dir, writer.Options{SegmentSize: segSize})
	var ce *journal.CorruptionError
	if !errors.As(err, &ce) || ce.File != seg(dir, 3) {
		t.Fatalf("contradicted checkpoint: %v", err)
	}
	delete(before, filepath.Join(dir, journal.LockFile))
	after := testutil.Files(t, dir)
	delete(after, filepath.Join(dir, journal.LockFile))
	testutil.SameFiles(t, before, after, "a refused writer open")
	rep, _ := verify.Journal(dir, verify.Options{})
	if rep.OK() || rep.Problems[0].Severity != verify.Damage {
		t.Fatalf("verify: %+v", rep.Problems)
	}
}

// A crash while a state record is written tears that record (its checksum
// fails): recovery uses the other, older one, so it can only scan more, and
// never resumes at a stale seq (it would reuse sequence numbers).
func TestTornStateRecordDoesNotReuseSeqs(t *testing.T) {
	dir := buildJournal(t)
	makeDirty(t, dir)
	p := seg(dir, 3)
	// The newest record: torn mid-write (its second half from another write).
	st, _ := testutil.SegmentState(t, p)
	testutil.WriteSegmentState(t, p, journal.State{DurableOffset: activeEnd, DurableSeq: total})
	cur := testutil.ReadFileAt(t, p, journal.SegOffStateA, 2*journal.StateSize)
	slot := journal.SegOffStateA
	if binary.LittleEndian.Uint64(cur[journal.StateSize:]) > binary.LittleEndian.Uint64(cur) {
		slot = journal.SegOffStateB
	}
	patch(t, p, int64(slot)+16, u64(2*perSeg+5)) // durable_seq stale, crc now wrong
	if got, _ := testutil.SegmentState(t, p); got.Gen != st.Gen {
		t.Fatalf("the torn record is still current: %+v", got)
	}
	w, err := writer.Open(dir, writer.Options{SegmentSize: segSize})
	if err != nil {
		t.Fatal(err)
	}
	if w.LastSeq() != total {
		t.Fatalf("resumed at seq %d, want %d: sequence numbers would be reused", w.LastSeq(), total)
	}
	if seq, err := w.Append(journal.TypeHeartbeat, 0, 1, nil); err != nil || seq != total+1 {
		t.Fatalf("next append got seq %d (%v), want %d", seq, err, total+1)
	}
	w.Close()
	if n, err := readAll(dir); n != total || err == nil {
		// readAll stops at the heartbeat (its payload is not a quote): every
		// quote before it must be intact and in order.
		t.Fatalf("read %d quotes (%v), want %d then the heartbeat", n, err, total)
	}
}

// A SIGKILL inside Activate, between first_seq and the header CRC, leaves
// the prepared segment with a bad header but no ACTIVE flag: it holds no
// frame and must not stop the next writer.
func TestTornActivationOfPreparedSegment(t *testing.T) {
	dir := buildJournal(t)
	w, err := writer.Open(dir, writer.Options{SegmentSize: segSize})
	if err != nil {
		t.Fatal(err)
	}
	// Let the background goroutine prepare segment 4 (it starts at once),
	// then close.
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(time.Millisecond) {
		if _, err := os.Stat(seg(dir, 4)); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the writer prepared no next segment within 20 s")
		}
	}
	w.Close()
	patch(t, seg(dir, 4), 32, u64(total+1)) // first_seq written, CRC not
	w, err = writer.Open(dir, writer.Options{SegmentSize: segSize})
	if err != nil {
		t.Fatalf("torn activation of a prepared segment stopped the writer: %v", err)
	}
	defer w.Close()
	if w.LastSeq() != total {
		t.Fatalf("resumed at %d", w.LastSeq())
	}
}
