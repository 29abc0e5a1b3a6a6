package reader_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/mdjournal/mdjournal/internal/testutil"
	"github.com/mdjournal/mdjournal/journal"
	"github.com/mdjournal/mdjournal/reader"
	"github.com/mdjournal/mdjournal/wait"
	"github.com/mdjournal/mdjournal/writer"
)

// writeJournal appends n quotes with ts = 1000*seq into small segments.
func writeJournal(t testing.TB, dir string, n int) {
	t.Helper()
	w, err := writer.Open(dir, writer.Options{SegmentSize: journal.MinSegmentSize})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	appendQuotes(t, w, n)
}

func appendQuotes(t testing.TB, w *writer.Writer, n int) {
	buf := make([]byte, 32)
	for i := 0; i < n; i++ {
		seq := w.LastSeq() + 1
		q := journal.Quote{BidPrice: int64(seq), BidQty: 1, AskPrice: int64(seq) + 1, AskQty: 1}
		if _, err := w.Append(journal.TypeQuote, 1, int64(seq)*1000, q.Encode(buf)); err != nil {
			t.Fatal(err)
		}
	}
}

func TestPositions(t *testing.T) {
	dir := t.TempDir()
	writeJournal(t, dir, 20000) // ~5 segments
	for _, tc := range []struct {
		pos  reader.Position
		want uint64 // first seq returned; 0 = nothing
	}{
		{reader.Start(), 1},
		{reader.Seq(1), 1},
		{reader.Seq(4031), 4031}, // last of segment 1
		{reader.Seq(4032), 4032}, // first of segment 2
		{reader.Seq(12345), 12345},
		{reader.Seq(20000), 20000},
		{reader.Seq(20001), 0},         // not written yet
		{reader.TimeNS(0), 1},          // before everything
		{reader.TimeNS(7777000), 7777}, // exact
		{reader.TimeNS(7777001), 7778}, // between frames
		{reader.TimeNS(4032000), 4032}, // segment boundary
		{reader.TimeNS(1 << 62), 0},
		{reader.End(), 0},
	} {
		r, err := reader.Open(dir, reader.Options{From: tc.pos})
		if err != nil {
			t.Fatalf("%v: %v", tc.pos, err)
		}
		f, ok, err := r.TryNext()
		if err != nil || (tc.want == 0) == ok || (ok && f.Seq != tc.want) {
			t.Errorf("%v: got seq %d ok=%v err=%v, want %d", tc.pos, f.Seq, ok, err, tc.want)
		}
		r.Close()
	}
	if _, err := reader.ParsePosition("seq:0"); err == nil {
		t.Error("seq:0 accepted")
	}
	for _, s := range []string{"start", "end", "seq:5", "time:2012-06-21T13:30:00.004241176Z"} {
		p, err := reader.ParsePosition(s)
		if err != nil || p.String() != s {
			t.Errorf("%q: %v %v", s, p, err)
		}
	}
}

// A position before the first retained frame (after pruning) is an error,
// never a silent jump.
func TestSeqBeforeRetained(t *testing.T) {
	dir := t.TempDir()
	writeJournal(t, dir, 9000)
	os.Remove(journal.SegmentPath(dir, 1))
	os.Remove(journal.IndexPath(dir, 1))
	if _, err := reader.Open(dir, reader.Options{From: reader.Seq(10)}); !errors.Is(err, reader.ErrOutOfRange) {
		t.Fatalf("got %v", err)
	}
	r, err := reader.Open(dir, reader.Options{})
	if err != nil {
		t.Fatal(err)
	}
	f, ok, err := r.TryNext()
	if !ok || err != nil || f.Seq != 4032 {
		t.Fatalf("start after pruning: %d %v %v", f.Seq, ok, err)
	}
}

func TestNextAllocatesNothing(t *testing.T) {
	dir := t.TempDir()
	writeJournal(t, dir, 30000) // several rolls for the reader to follow
	r, err := reader.Open(dir, reader.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	r.Next() // first call may fault pages in; measure the steady state
	allocs := testing.AllocsPerRun(25000, func() {
		if _, err := r.Next(); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Fatalf("Next allocates %.3f per frame", allocs)
	}
}

// mappingsOf counts this process's mappings of files in dir.
func mappingsOf(t *testing.T, dir string) int {
	b, err := os.ReadFile("/proc/self/maps")
	if err != nil {
		t.Skip("no /proc/self/maps")
	}
	n := 0
	for _, l := range strings.Split(string(b), "\n") {
		if strings.Contains(l, dir) && strings.HasSuffix(l, journal.SegmentExt) {
			n++
		}
	}
	return n
}

func TestSegmentsBehindAreUnmapped(t *testing.T) {
	dir := t.TempDir()
	writeJournal(t, dir, 40000) // 10 segments
	r, err := reader.Open(dir, reader.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	for i := 0; i < 40000; i++ {
		if _, err := r.Next(); err != nil {
			t.Fatal(err)
		}
	}
	if seg, _ := r.Segment(); seg < 10 {
		t.Fatalf("reader on segment %d, expected ≥ 10", seg)
	}
	if n := mappingsOf(t, dir); n != 1 {
		t.Fatalf("%d segment mappings after reading 10 segments, want 1", n)
	}
}

func TestTruncatedUnderReader(t *testing.T) {
	dir := t.TempDir()
	w, err := writer.Open(dir, writer.Options{SegmentSize: journal.MinSegmentSize})
	if err != nil {
		t.Fatal(err)
	}
	appendQuotes(t, w, 1000)
	r, err := reader.Open(dir, reader.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	for i := 0; i < 10; i++ {
		r.Next()
	}
	// Someone truncates the live segment: the reader's mapping now extends
	// past the end of the file, so touching it is a SIGBUS.
	os.Truncate(journal.SegmentPath(dir, 1), 4096)
	_, err = r.Next()
	if !errors.Is(err, journal.ErrTruncated) {
		t.Fatalf("got %v, want ErrTruncated (and no crash)", err)
	}
	var ce *journal.CorruptionError
	if !errors.As(err, &ce) || ce.File != journal.SegmentPath(dir, 1) {
		t.Fatalf("error does not name the file: %v", err)
	}
	w.Close()
}

// Interrupt makes a pending (or the next) Next return ErrInterrupted. A
// futex sleeper is interrupted while it sleeps: the test waits until the
// reader has announced itself on the control page, and the futex timeout is
// an hour, so only Interrupt's wake-up can end the sleep.
func TestInterrupt(t *testing.T) {
	defer reader.SetFutexTimeout(time.Hour)()
	for _, s := range []wait.Strategy{wait.Spin, wait.Backoff, wait.Futex} {
		dir := t.TempDir()
		w, err := writer.Open(dir, writer.Options{})
		if err != nil {
			t.Fatal(err)
		}
		r, err := reader.Open(dir, reader.Options{Wait: s})
		if err != nil {
			t.Fatal(err)
		}
		done := make(chan error)
		go func() { _, err := r.Next(); done <- err }()
		if s == wait.Futex {
			ctl := ctlWaiters(t, dir)
			for deadline := time.Now().Add(30 * time.Second); ctl() == 0; runtime.Gosched() {
				if time.Now().After(deadline) {
					t.Fatal("the futex reader never announced itself")
				}
			}
		}
		r.Interrupt()
		select {
		case err := <-done:
			if !errors.Is(err, reader.ErrInterrupted) {
				t.Fatalf("%v: %v", s, err)
			}
		case <-time.After(30 * time.Second):
			t.Fatalf("%v: Next did not return after Interrupt", s)
		}
		r.Close()
		w.Close()
	}
}

// TestInterruptBetweenRecheckAndSleep delivers Interrupt (and a context
// cancellation) in the futex sleeper's last window: after its re-check found
// nothing, before FUTEX_WAIT. With the futex timeout an hour, Next returns
// only if the wake-up changed the notify word; a bare FUTEX_WAKE there is
// lost (format.md §6).
func TestInterruptBetweenRecheckAndSleep(t *testing.T) {
	defer reader.SetFutexTimeout(time.Hour)()
	for _, how := range []string{"interrupt", "context"} {
		t.Run(how, func(t *testing.T) {
			dir := t.TempDir()
			w, err := writer.Open(dir, writer.Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer w.Close()
			r, err := reader.Open(dir, reader.Options{Wait: wait.Futex})
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			notify := ctlNotify(t, dir)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			var fired atomic.Bool
			defer reader.SetBeforeBlock(func(rr *reader.Reader) {
				if rr != r || !fired.CompareAndSwap(false, true) {
					return
				}
				if how == "interrupt" {
					r.Interrupt()
					return
				}
				// The context's wake-up runs on its own goroutine: wait
				// until it changed the notify word, so that it lands in the
				// window too. Without the increment this never happens and
				// the test fails on its 30 s bound below.
				before := notify()
				cancel()
				for notify() == before {
					runtime.Gosched()
				}
			})()
			done := make(chan error, 1)
			go func() { _, err := r.NextContext(ctx); done <- err }()
			select {
			case err := <-done:
				if !fired.Load() {
					t.Fatalf("returned %v before reaching the window", err)
				}
				if how == "interrupt" && !errors.Is(err, reader.ErrInterrupted) || how == "context" && !errors.Is(err, context.Canceled) {
					t.Fatalf("got %v", err)
				}
			case <-time.After(30 * time.Second):
				t.Fatal("the wake-up was lost: Next still asleep 30 s after it")
			}
		})
	}
}

// ctlWaiters maps the journal's control page read-only and returns a
// function reading its waiter count.
func ctlWaiters(t *testing.T, dir string) func() uint32 { return ctlPage(t, dir).Waiters }

// ctlNotify is ctlWaiters for the notify word.
func ctlNotify(t *testing.T, dir string) func() uint32 { return ctlPage(t, dir).Notify }

func ctlPage(t *testing.T, dir string) journal.Ctl {
	t.Helper()
	f, err := os.Open(filepath.Join(dir, journal.CtlFile))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if st, err := f.Stat(); err != nil || st.Size() < journal.CtlSize {
		t.Fatalf("journal.ctl: %v", err)
	}
	m, err := syscall.Mmap(int(f.Fd()), 0, journal.CtlSize, syscall.PROT_READ, syscall.MAP_SHARED)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Munmap(m) })
	return journal.CtlOf(m)
}

// TestTailHelper is a tail reader process: it prints every seq it reads.
func TestTailHelper(t *testing.T) {
	if testutil.Role() != "tail" {
		t.Skip("helper process only")
	}
	ws, _ := wait.Parse(os.Getenv("MDJ_WAIT"))
	r, err := reader.Open(os.Getenv("MDJ_DIR"), reader.Options{Wait: ws, From: reader.Start()})
	if err != nil {
		fmt.Println("ERR", err)
		os.Exit(3)
	}
	fmt.Println("READY")
	var want uint64 = 1
	for want <= 20000 {
		f, err := r.Next()
		if err != nil || f.Seq != want {
			fmt.Println("ERR", f.Seq, err)
			os.Exit(4)
		}
		want++
	}
	fmt.Println("DONE", want-1)
	os.Exit(0)
}

// Live tail from another process, for every wait strategy: the reader
// process follows the writer across rolls while it writes.
func TestLiveTailAcrossProcesses(t *testing.T) {
	for _, s := range []string{"spin", "yield", "backoff", "futex"} {
		t.Run(s, func(t *testing.T) {
			dir := t.TempDir()
			w, err := writer.Open(dir, writer.Options{SegmentSize: journal.MinSegmentSize})
			if err != nil {
				t.Fatal(err)
			}
			defer w.Close()
			cmd := testutil.Command(t, "TestTailHelper", "tail", "MDJ_DIR="+dir, "MDJ_WAIT="+s)
			out, _ := cmd.StdoutPipe()
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			sc := bufio.NewScanner(out)
			if !sc.Scan() || sc.Text() != "READY" {
				t.Fatalf("helper: %q", sc.Text())
			}
			for i := 0; i < 20; i++ { // bursts with pauses, so the reader idles and (futex) sleeps
				appendQuotes(t, w, 1000)
				time.Sleep(2 * time.Millisecond)
			}
			if !sc.Scan() || sc.Text() != "DONE 20000" {
				t.Fatalf("helper said %q", sc.Text())
			}
			if err := cmd.Wait(); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestNamedReaderResumes(t *testing.T) {
	dir := t.TempDir()
	writeJournal(t, dir, 10000)
	r, err := reader.Open(dir, reader.Options{Name: "risk-1"})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 1234; i++ {
		r.Next()
	}
	r.Close()
	// Restarted: resumes after the last frame returned, whatever From says.
	r, err = reader.Open(dir, reader.Options{Name: "risk-1", From: reader.End()})
	if err != nil {
		t.Fatal(err)
	}
	f, err := r.Next()
	if err != nil || f.Seq != 1235 {
		t.Fatalf("resumed at %d (%v), want 1235", f.Seq, err)
	}
	r.Close()
	named, err := reader.ListNamed(dir)
	if err != nil || len(named) != 1 || named[0].Name != "risk-1" || named[0].Seq != 1235 || named[0].TS != 1235000 {
		t.Fatalf("ListNamed: %+v %v", named, err)
	}
	if _, err := reader.Open(dir, reader.Options{Name: "../escape"}); err == nil {
		t.Fatal("a name with a path separator was accepted")
	}
	// A new name starts at From.
	r, _ = reader.Open(dir, reader.Options{Name: "other", From: reader.Seq(42)})
	f, _ = r.Next()
	r.Close()
	if f.Seq != 42 {
		t.Fatalf("new named reader started at %d", f.Seq)
	}
}

// TestNamedHelper reads n frames as a named reader, then waits to be killed.
func TestNamedHelper(t *testing.T) {
	if testutil.Role() != "named" {
		t.Skip("helper process only")
	}
	r, err := reader.Open(os.Getenv("MDJ_DIR"), reader.Options{Name: "crashy"})
	if err != nil {
		os.Exit(3)
	}
	for i := 0; i < 777; i++ {
		r.Next()
	}
	fmt.Println("READ")
	time.Sleep(time.Minute)
}

// A named reader killed with SIGKILL resumes where it was: its position
// lives in a shared mapping, not in the process.
func TestNamedReaderSurvivesKill(t *testing.T) {
	dir := t.TempDir()
	writeJournal(t, dir, 2000)
	cmd := testutil.Command(t, "TestNamedHelper", "named", "MDJ_DIR="+dir)
	out, _ := cmd.StdoutPipe()
	cmd.Start()
	sc := bufio.NewScanner(out)
	if !sc.Scan() || sc.Text() != "READ" {
		t.Fatalf("helper: %q", sc.Text())
	}
	cmd.Process.Kill()
	cmd.Wait()
	r, err := reader.Open(dir, reader.Options{Name: "crashy"})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if f, _ := r.Next(); f.Seq != 778 {
		t.Fatalf("resumed at %d, want 778", f.Seq)
	}
}

// TestCancelThenClose: a futex reader blocked in NextContext whose context
// is cancelled, then closed at once. The context's wake-up runs on its own
// goroutine and may still be running when Close unmaps the control page;
// it must not touch the page after that (under -race the unsynchronised
// version is reported as a data race between the wake-up and Close).
func TestCancelThenClose(t *testing.T) {
	dir := t.TempDir()
	w, err := writer.Open(dir, writer.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	ctl := ctlWaiters(t, dir)
	rounds := 200
	if testing.Short() {
		rounds = 50
	}
	for i := 0; i < rounds; i++ {
		r, err := reader.Open(dir, reader.Options{Wait: wait.Futex})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error)
		go func() { _, err := r.NextContext(ctx); done <- err }()
		for deadline := time.Now().Add(30 * time.Second); ctl() == 0; runtime.Gosched() {
			if time.Now().After(deadline) {
				t.Fatal("the futex reader never announced itself")
			}
		}
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Fatalf("round %d: NextContext after cancel: %v", i, err)
		}
		r.Close()
	}
}
