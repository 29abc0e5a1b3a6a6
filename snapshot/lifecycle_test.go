package snapshot

import (
	"bufio"
	"errors"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mdjournal/mdjournal/journal"
)

// bootTime reads the system's boot time from /proc/stat, independently of
// the code under test.
func bootTime(t *testing.T) time.Time {
	t.Helper()
	f, err := os.Open("/proc/stat")
	if err != nil {
		t.Skipf("SKIPPED: no /proc/stat: %v", err)
	}
	defer f.Close()
	for sc := bufio.NewScanner(f); sc.Scan(); {
		if v, ok := strings.CutPrefix(sc.Text(), "btime "); ok {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return time.Unix(n, 0)
		}
	}
	t.Skip("SKIPPED: /proc/stat has no btime")
	return time.Time{}
}

// TestIntactAcrossCrashes: a writer killed with kill -9 leaves its PID in
// the file; the next OpenWriter finds it and, the file having been written
// since the system booted (the page cache holds every store), trusts it. A
// file last written before the boot (what a power cut leaves: simulated by
// setting its mtime before the boot time) is not trusted: last_applied drops
// to 0 and stays there. A clean Close marks the file clean (writer_pid 0).
func TestIntactAcrossCrashes(t *testing.T) {
	w, path := create(t, 2, 4)
	w.Publish(1, 3, 30, []Level{{9, 9}}, nil, Trade{})
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	// 1. Clean close, then reopen.
	w, err := OpenWriter(path)
	if err != nil {
		t.Fatal(err)
	}
	if w.PreviousPID() != 0 || !w.Intact() || w.LastApplied() != 3 || w.WriterPID() != uint32(os.Getpid()) {
		t.Fatalf("after a clean close: previous pid %d intact %v last %d pid %d", w.PreviousPID(), w.Intact(), w.LastApplied(), w.WriterPID())
	}
	w.Close()

	// 2. A writer killed with kill -9 after publishing seq 7.
	kill9 := func() int {
		cmd := startHelper(t, "writer1", path)
		pid := cmd.Process.Pid
		cmd.Process.Kill()
		cmd.Wait()
		return pid
	}
	pid := kill9()
	r := open(t, path)
	if r.WriterPID() != uint32(pid) {
		t.Errorf("writer_pid %d after kill -9 of %d", r.WriterPID(), pid)
	}
	w, err = OpenWriter(path)
	if err != nil {
		t.Fatal(err)
	}
	if w.PreviousPID() != uint32(pid) || !w.Intact() || w.LastApplied() != 7 || len(w.Emptied()) != 0 {
		t.Fatalf("after kill -9 in this boot: previous pid %d (want %d) intact %v last %d emptied %v", w.PreviousPID(), pid, w.Intact(), w.LastApplied(), w.Emptied())
	}
	var bk Book
	if err := w.Read(1, &bk); err != nil || bk.Seq != 7 || len(bk.Bids) != 1 || bk.Bids[0] != (Level{100, 1}) {
		t.Fatalf("slot 1 after kill -9: %v %+v", err, bk)
	}
	w.Close()

	// 3. kill -9 again, then the file as a power cut leaves it: last
	// modified before the system booted.
	pid = kill9()
	before := bootTime(t).Add(-time.Hour)
	if err := os.Chtimes(path, before, before); err != nil {
		t.Fatal(err)
	}
	w, err = OpenWriter(path)
	if err != nil {
		t.Fatal(err)
	}
	if w.PreviousPID() != uint32(pid) || w.Intact() || w.LastApplied() != 0 || r.LastApplied() != 0 {
		t.Fatalf("after a simulated power cut: previous pid %d intact %v last %d (reader sees %d); want not intact, 0",
			w.PreviousPID(), w.Intact(), w.LastApplied(), r.LastApplied())
	}
	w.Publish(2, 9, 90, nil, nil, Trade{})
	w.Advance(10)
	if w.LastApplied() != 0 {
		t.Errorf("last_applied moved to %d in a file that is not intact", w.LastApplied())
	}
	w.Close()
	// Closed cleanly, but still claiming nothing.
	w, err = OpenWriter(path)
	if err != nil {
		t.Fatal(err)
	}
	if w.PreviousPID() != 0 || w.LastApplied() != 0 {
		t.Errorf("after closing an untrusted file: previous pid %d last %d", w.PreviousPID(), w.LastApplied())
	}
	w.Close()
}

// TestPrepareInstall: a prepared file is invisible until installed; it then
// replaces the old file atomically; readers of the old file see it
// replaced; a prepared file closed without Install is removed.
func TestPrepareInstall(t *testing.T) {
	old, path := create(t, 2, 4)
	old.Publish(1, 5, 1, []Level{{1, 1}}, nil, Trade{})
	old.Close()
	r := open(t, path)
	// A leftover temporary from a crash is replaced.
	if err := os.WriteFile(tempPath(path), []byte("junk"), 0o600); err != nil {
		t.Fatal(err)
	}

	w, err := Prepare(path, Options{Depth: 3, Capacity: 8, JournalID: 2})
	if err != nil {
		t.Fatal(err)
	}
	w.Publish(2, 6, 1, nil, []Level{{2, 2}}, Trade{})
	if rep, err := r.Replaced(); err != nil || rep {
		t.Fatalf("replaced before Install: %v %v", rep, err)
	}
	r2 := open(t, path)
	if r2.Depth() != 2 {
		t.Fatalf("a prepared file is visible before Install (depth %d)", r2.Depth())
	}
	if err := w.Install(); err != nil {
		t.Fatal(err)
	}
	if err := w.Install(); err == nil {
		t.Error("second Install succeeded")
	}
	if rep, err := r.Replaced(); err != nil || !rep {
		t.Fatalf("old reader: replaced %v %v", rep, err)
	}
	var bk Book
	if err := r.Read(1, &bk); err != nil || bk.Seq != 5 {
		t.Errorf("old reader lost the old content: %v %+v", err, bk)
	}
	r3 := open(t, path)
	if rep, _ := r3.Replaced(); rep || r3.Depth() != 3 || r3.JournalID() != 2 {
		t.Fatalf("new file: replaced %v depth %d id %d", rep, r3.Depth(), r3.JournalID())
	}
	if err := r3.Read(2, &bk); err != nil || bk.Seq != 6 {
		t.Errorf("new file slot 2: %v %+v", err, bk)
	}
	if _, err := os.Lstat(tempPath(path)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("temporary left after Install: %v", err)
	}
	w.Close()

	// Prepare, then Close without Install: nothing changes at path.
	st0, _ := os.Stat(path)
	w, err = Prepare(path, Options{Depth: 1, Capacity: 1})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if st, _ := os.Stat(path); !os.SameFile(st0, st) {
		t.Error("an abandoned Prepare replaced the file")
	}
	if _, err := os.Lstat(tempPath(path)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("abandoned temporary left: %v", err)
	}
	// Removed files read as replaced.
	os.Remove(path)
	if rep, err := r3.Replaced(); err != nil || !rep {
		t.Errorf("removed: replaced %v %v", rep, err)
	}
}

func TestLookup(t *testing.T) {
	w, path := create(t, 2, 64)
	r := open(t, path)
	for id, s := range map[uint32]string{0: "ZERO", 7: "AAPL", 63: "SIXTEEN-CHARS-XX"} {
		w.SetInstrument(id, sym(s), 4)
		w.Publish(id, uint64(id)+1, 1, nil, nil, Trade{})
	}
	for want, s := range map[uint32]string{0: "ZERO", 7: "AAPL", 63: "SIXTEEN-CHARS-XX"} {
		if id, ok, err := r.Lookup(s); err != nil || !ok || id != want {
			t.Errorf("Lookup(%q) = %d %v %v, want %d", s, id, ok, err, want)
		}
	}
	for _, s := range []string{"AAP", "AAPLX", "", "SIXTEEN-CHARS-XXY", "aapl"} {
		if id, ok, err := r.Lookup(s); err != nil || ok {
			t.Errorf("Lookup(%q) = %d %v %v, want not found", s, id, ok, err)
		}
	}
	// A slot stuck mid-publish does not hide the others; a symbol not found
	// elsewhere reports the stall.
	*u64(w.slot(9), slotOffLock) = 1
	r.StallTimeout = 0
	if id, ok, err := r.Lookup("AAPL"); err != nil || !ok || id != 7 {
		t.Errorf("Lookup with a stalled slot: %d %v %v", id, ok, err)
	}
	if _, ok, err := r.Lookup("MSFT"); ok || !errors.Is(err, ErrStalled) {
		t.Errorf("Lookup of an absent symbol with a stalled slot: %v %v", ok, err)
	}
	*u64(w.slot(9), slotOffLock) = 2
	// Truncated under the reader: an error, not a crash.
	if err := os.Truncate(path, HeaderSize); err != nil {
		t.Fatal(err)
	}
	if _, _, err := r.Lookup("SIXTEEN-CHARS-XX"); !errors.Is(err, journal.ErrTruncated) {
		t.Errorf("Lookup in a truncated file: %v", err)
	}
	r.Close()
	if _, _, err := r.Lookup("AAPL"); !errors.Is(err, journal.ErrClosed) {
		t.Errorf("Lookup after Close: %v", err)
	}
}

func TestLookupAllocatesNothing(t *testing.T) {
	w, path := create(t, 2, 1024)
	w.SetInstrument(1000, sym("LAST"), 2)
	w.Publish(1000, 1, 1, nil, nil, Trade{})
	r := open(t, path)
	if a := testing.AllocsPerRun(100, func() {
		if _, ok, _ := r.Lookup("LAST"); !ok {
			t.Fatal("not found")
		}
	}); a != 0 {
		t.Errorf("Lookup allocates %.1f times", a)
	}
}
