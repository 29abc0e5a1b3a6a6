package writer_test

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mdjournal/mdjournal/internal/segfile"
	"github.com/mdjournal/mdjournal/internal/testutil"
	"github.com/mdjournal/mdjournal/journal"
	"github.com/mdjournal/mdjournal/reader"
	"github.com/mdjournal/mdjournal/writer"
)

func quote(i int64, buf []byte) []byte {
	q := journal.Quote{BidPrice: i, BidQty: 1, AskPrice: i + 1, AskQty: 1}
	return q.Encode(buf)
}

func TestAppendAllocatesNothing(t *testing.T) {
	w, err := writer.Open(t.TempDir(), writer.Options{SegmentSize: journal.MinSegmentSize})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	buf := make([]byte, 32)
	p := quote(1, buf)
	var i int64
	// Includes rolls: a 256 KiB segment holds ~4000 of these frames.
	allocs := testing.AllocsPerRun(20000, func() {
		i++
		if _, err := w.Append(journal.TypeQuote, 1, i, p); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Fatalf("Append allocates %.2f per call", allocs)
	}
	if w.Stats().Rolls == 0 {
		t.Fatal("no roll happened; the test meant to cover rolls")
	}
	stageAllocs := testing.AllocsPerRun(1000, func() {
		i++
		w.Stage(journal.TypeQuote, 1, i, p)
		w.Stage(journal.TypeQuote, 1, i, p)
		w.Publish()
	})
	if stageAllocs != 0 {
		t.Fatalf("Stage+Publish allocates %.2f per batch", stageAllocs)
	}
}

func TestPayloadValidation(t *testing.T) {
	w, err := writer.Open(t.TempDir(), writer.Options{SegmentSize: journal.MinSegmentSize})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if _, err := w.Append(journal.TypeQuote, 1, 0, make([]byte, 31)); err == nil {
		t.Fatal("short quote accepted")
	}
	if _, err := w.Append(journal.TypeRaw, 1, 0, make([]byte, journal.MaxPayload+1)); !errors.Is(err, journal.ErrFrameTooLarge) {
		t.Fatalf("oversized raw: %v", err)
	}
	if _, err := w.Append(journal.TypeSegmentEnd, 1, 0, nil); err == nil {
		t.Fatal("segment end marker accepted from a caller")
	}
	if _, err := w.Append(journal.TypeRaw, 1, 0, make([]byte, journal.MaxPayload)); err != nil {
		t.Fatalf("max raw: %v", err)
	}
	if w.LastSeq() != 1 {
		t.Fatalf("rejected frames consumed sequence numbers: last %d", w.LastSeq())
	}
}

func TestStagedFramesInvisibleUntilPublish(t *testing.T) {
	dir := t.TempDir()
	w, err := writer.Open(dir, writer.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	buf := make([]byte, 32)
	w.Append(journal.TypeQuote, 1, 1, quote(1, buf))
	r, err := reader.Open(dir, reader.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if _, ok, _ := r.TryNext(); !ok {
		t.Fatal("published frame not visible")
	}
	w.Stage(journal.TypeQuote, 1, 2, quote(2, buf))
	w.Stage(journal.TypeQuote, 1, 3, quote(3, buf))
	if _, ok, _ := r.TryNext(); ok {
		t.Fatal("staged frame visible before Publish")
	}
	if w.PublishedSeq() != 1 {
		t.Fatalf("published seq %d", w.PublishedSeq())
	}
	w.Publish()
	for want := uint64(2); want <= 3; want++ {
		f, ok, err := r.TryNext()
		if !ok || err != nil || f.Seq != want {
			t.Fatalf("after publish: %v %v %v", f.Seq, ok, err)
		}
	}
}

func TestDurabilityPolicies(t *testing.T) {
	for _, pol := range []string{"none", "async", "interval:1ms", "sync"} {
		t.Run(pol, func(t *testing.T) {
			d, err := writer.ParseDurability(pol)
			if err != nil {
				t.Fatal(err)
			}
			dir := t.TempDir()
			w, err := writer.Open(dir, writer.Options{SegmentSize: journal.MinSegmentSize, Durability: d})
			if err != nil {
				t.Fatal(err)
			}
			raw := make([]byte, 2000)
			for i := int64(1); i <= 300; i++ { // 600 KB: crosses two rolls
				if _, err := w.Append(journal.TypeRaw, 1, i, raw); err != nil {
					t.Fatal(err)
				}
			}
			switch d.Mode {
			case writer.Sync:
				if w.DurableSeq() != 300 {
					t.Fatalf("sync: durable %d after append returned", w.DurableSeq())
				}
			case writer.Interval:
				deadline := time.Now().Add(5 * time.Second)
				for w.DurableSeq() != 300 && time.Now().Before(deadline) {
					time.Sleep(time.Millisecond)
				}
				if w.DurableSeq() != 300 {
					t.Fatalf("interval: durable %d, want 300 within 5s", w.DurableSeq())
				}
			default:
				if w.DurableSeq() >= 300 {
					t.Fatalf("%s claims durability it never synced: %d", pol, w.DurableSeq())
				}
				if err := w.Sync(); err != nil || w.DurableSeq() != 300 {
					t.Fatalf("explicit Sync: %v, durable %d", err, w.DurableSeq())
				}
			}
			// The on-disk checkpoint agrees.
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			nums, _ := segfile.Numbers(dir)
			var active uint64
			for _, n := range nums {
				h, _, _, _ := segfile.ReadHeader(dir, n)
				st, _, ok := h.State()
				if ok && !h.Prepared() && !st.Sealed() {
					active = n
					if st.DurableSeq != 300 || uint64(st.DurableOffset) != h.Cursor() || !st.Clean() {
						t.Fatalf("closed segment: durable seq %d off %d cursor %d flags %b", st.DurableSeq, st.DurableOffset, h.Cursor(), st.Flags)
					}
				}
			}
			if active == 0 {
				t.Fatal("no active segment")
			}
		})
	}
}

func TestParseDurability(t *testing.T) {
	for s, want := range map[string]string{"none": "none", "async": "async", "sync": "sync",
		"interval": "interval:10ms,4194304", "interval:5ms": "interval:5ms,4194304", "interval:1s,1MiB": "interval:1s,1048576"} {
		d, err := writer.ParseDurability(s)
		if err != nil || d.String() != want {
			t.Errorf("%q: %v %v, want %s", s, d, err, want)
		}
	}
	for _, s := range []string{"fast", "interval:", "interval:-1s", "interval:5ms,lots", "interval5ms"} {
		if _, err := writer.ParseDurability(s); err == nil {
			t.Errorf("%q accepted", s)
		}
	}
}

// A cleanly closed journal is opened without a scan: damage in the active
// segment below the clean cursor goes unnoticed by Open (verify finds it),
// which is exactly what proves open time does not depend on journal size.
func TestCleanOpenDoesNotScan(t *testing.T) {
	dir := t.TempDir()
	w, _ := writer.Open(dir, writer.Options{})
	buf := make([]byte, 32)
	for i := int64(1); i <= 1000; i++ {
		w.Append(journal.TypeQuote, 1, i, quote(i, buf))
	}
	w.Close()
	f, _ := os.OpenFile(journal.SegmentPath(dir, 1), os.O_RDWR, 0)
	f.WriteAt([]byte{0xff}, 4096+64*500+40)
	f.Close()
	w, err := writer.Open(dir, writer.Options{})
	if err != nil {
		t.Fatalf("clean open scanned and found the damage: %v", err)
	}
	if w.LastSeq() != 1000 {
		t.Fatalf("last seq %d", w.LastSeq())
	}
	w.Close()
}

// TestLockHelper holds the writer lock in a separate process until killed.
func TestLockHelper(t *testing.T) {
	if testutil.Role() != "hold-lock" {
		t.Skip("helper process only")
	}
	w, err := writer.Open(os.Getenv("MDJ_DIR"), writer.Options{})
	if err != nil {
		fmt.Println("ERR", err)
		os.Exit(3)
	}
	fmt.Println("LOCKED")
	time.Sleep(time.Minute)
	w.Close()
	os.Exit(0)
}

func TestSecondWriterRefused(t *testing.T) {
	dir := t.TempDir()
	cmd := testutil.Command(t, "TestLockHelper", "hold-lock", "MDJ_DIR="+dir)
	out, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	line := make([]byte, 7)
	if _, err := out.Read(line); err != nil || string(line) != "LOCKED\n" {
		t.Fatalf("helper: %q %v", line, err)
	}
	_, err := writer.Open(dir, writer.Options{})
	if !errors.Is(err, writer.ErrLocked) || !strings.Contains(err.Error(), "PID "+strconv.Itoa(cmd.Process.Pid)) {
		t.Fatalf("second writer: %v; want ErrLocked naming PID %d", err, cmd.Process.Pid)
	}
	// Killing the holder frees the lock (flock dies with the process).
	cmd.Process.Kill()
	cmd.Wait()
	var notes []string
	w, err := writer.Open(dir, writer.Options{Logf: func(f string, a ...any) { notes = append(notes, fmt.Sprintf(f, a...)) }})
	if err != nil {
		t.Fatalf("after holder died: %v", err)
	}
	w.Close()
	if !strings.Contains(strings.Join(notes, "\n"), "PID "+strconv.Itoa(cmd.Process.Pid)) {
		t.Fatalf("takeover of the dead holder's lock not reported: %q", notes)
	}
}

func TestStaleLockTakenOver(t *testing.T) {
	dir := t.TempDir()
	dead := exec.Command("true")
	dead.Run()
	pid := dead.Process.Pid
	os.WriteFile(filepath.Join(dir, journal.LockFile), []byte(strconv.Itoa(pid)+"\n"), 0o644)
	var notes []string
	w, err := writer.Open(dir, writer.Options{Logf: func(f string, a ...any) { notes = append(notes, fmt.Sprintf(f, a...)) }})
	if err != nil {
		t.Fatalf("stale lock of dead PID %d: %v", pid, err)
	}
	defer w.Close()
	if len(notes) == 0 || !strings.Contains(notes[0], strconv.Itoa(pid)) {
		t.Fatalf("takeover not reported: %q", notes)
	}
	b, _ := os.ReadFile(filepath.Join(dir, journal.LockFile))
	if strings.TrimSpace(string(b)) != strconv.Itoa(os.Getpid()) {
		t.Fatalf("lock file holds %q, want our PID", b)
	}
}

// Sync under None must make the segments sealed by earlier rolls durable
// too, not only the active one, before it reports a durable seq.
func TestSyncCoversSealedSegments(t *testing.T) {
	w, err := writer.Open(t.TempDir(), writer.Options{SegmentSize: journal.MinSegmentSize})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	raw := make([]byte, 2000)
	for i := int64(1); i <= 600; i++ { // ~1.2 MB: four rolls
		if _, err := w.Append(journal.TypeRaw, 1, i, raw); err != nil {
			t.Fatal(err)
		}
	}
	rolls := w.Stats().Rolls
	before := w.Stats().Syncs
	if err := w.Sync(); err != nil {
		t.Fatal(err)
	}
	if rolls < 3 || w.Stats().Syncs-before < rolls {
		t.Fatalf("%d rolls, %d syncs by Sync: sealed segments were not all synced", rolls, w.Stats().Syncs-before)
	}
	if w.DurableSeq() != 600 {
		t.Fatalf("durable %d", w.DurableSeq())
	}
}

type refuseOdd struct{ seen int }

func (r *refuseOdd) Observe(*journal.Frame) { r.seen++ }
func (r *refuseOdd) Admit(_ journal.MsgType, instr uint32) error {
	if instr%2 == 1 {
		return errors.New("odd instrument refused")
	}
	return nil
}

// An Observer that is an Admitter refuses frames before they are staged:
// nothing of a refused frame is written or observed.
func TestAdmitterRefusesBeforeStaging(t *testing.T) {
	obs := &refuseOdd{}
	w, err := writer.Open(t.TempDir(), writer.Options{Observer: obs})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if _, err := w.Append(journal.TypeHeartbeat, 1, 1, nil); err == nil || err.Error() != "odd instrument refused" {
		t.Fatalf("odd instrument: %v", err)
	}
	seq, err := w.Append(journal.TypeHeartbeat, 2, 1, nil)
	if err != nil || seq != 1 || obs.seen != 1 {
		t.Fatalf("even instrument: seq %d, %v, observed %d", seq, err, obs.seen)
	}
}

// A replica copies an origin's frames verbatim — seqs, timestamps, types,
// flags, payloads, source trailers — starting at any seq, keeping the
// origin's journal id; a gap or repeat is refused.
func TestCopyReplica(t *testing.T) {
	origin := t.TempDir()
	w, err := writer.Open(origin, writer.Options{SegmentSize: 256 << 10})
	if err != nil {
		t.Fatal(err)
	}
	var d journal.InstrumentDef
	d.SetSymbol("X")
	d.PriceScale = 2
	w.Append(journal.TypeInstrumentDef, 1, 1, d.Encode(make([]byte, 32)))
	for i := int64(2); i <= 9000; i++ { // rolls: the origin re-states its definition
		if _, err := w.AppendSource(journal.TypeTrade, 1, i, quote(i, make([]byte, 32)), i+5, uint64(i)*10); err != nil {
			t.Fatal(err)
		}
	}
	w.Close()
	read := func(dir string, from uint64) []journal.Frame {
		r, err := reader.Open(dir, reader.Options{From: reader.Seq(from)})
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		var out []journal.Frame
		for {
			f, ok, err := r.TryNext()
			if err != nil {
				t.Fatal(err)
			}
			if !ok {
				return out
			}
			f.Payload = append([]byte(nil), f.Payload...)
			out = append(out, f)
		}
	}
	src := read(origin, 4000)
	replica := t.TempDir()
	rw, err := writer.Open(replica, writer.Options{SegmentSize: 256 << 10, NoRestate: true, JournalID: 0xfeed, FirstSeq: 4000})
	if err != nil {
		t.Fatal(err)
	}
	if err := rw.Copy(&src[1]); err == nil {
		t.Fatal("a gap was accepted")
	}
	for i := range src {
		if err := rw.Copy(&src[i]); err != nil {
			t.Fatal(err)
		}
	}
	if err := rw.Copy(&src[len(src)-1]); err == nil {
		t.Fatal("a repeat was accepted")
	}
	if rw.JournalID() != 0xfeed {
		t.Fatalf("journal id %x", rw.JournalID())
	}
	rw.Close()
	got := read(replica, 4000)
	if len(got) != len(src) {
		t.Fatalf("replica has %d frames, origin %d", len(got), len(src))
	}
	for i := range src {
		a, b := src[i], got[i]
		if a.Seq != b.Seq || a.TS != b.TS || a.Type != b.Type || a.Flags != b.Flags || a.Instrument != b.Instrument ||
			string(a.Payload) != string(b.Payload) || a.RecvTS != b.RecvTS || a.SourceSeq != b.SourceSeq {
			t.Fatalf("frame %d: origin %+v, replica %+v", i, a, b)
		}
	}
}
