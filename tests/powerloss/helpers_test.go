package powerloss_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mdjournal/mdjournal/internal/lossyfs"
	"golang.org/x/sys/unix"
)

// knownBug fails naming a library bug this test reproduced (fixed since: a
// recurrence is a regression), or with MDJ_POWERLOSS_KNOWN_BUGS=0 skips
// loudly.
func knownBug(t *testing.T, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if knownBugsFail() {
		t.Fatalf("REGRESSION of a fixed bug: %s", msg)
	}
	t.Skipf("REGRESSION of a fixed bug (skipped: MDJ_POWERLOSS_KNOWN_BUGS=0): %s", msg)
}

// lossy is a lossyfs mount that follows remounts, unmounted at cleanup.
type lossy struct {
	t    *testing.T
	mp   string
	fsys *lossyfs.FS
}

// newLossy mounts an empty lossyfs and makes dirs (relative to the mount)
// durable as the starting point.
func newLossy(t *testing.T, dirs ...string) *lossy {
	t.Helper()
	l := &lossy{t: t, mp: t.TempDir()}
	l.fsys = mountOrSkip(t, l.mp)
	t.Cleanup(func() {
		if l.fsys != nil {
			if err := l.fsys.Unmount(); err != nil {
				t.Errorf("unmount: %v", err)
				unix.Unmount(l.mp, unix.MNT_DETACH)
			}
		}
	})
	for _, d := range dirs {
		if err := os.MkdirAll(filepath.Join(l.mp, d), 0o750); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.fsys.Sync(); err != nil {
		t.Fatal(err)
	}
	return l
}

func (l *lossy) path(rel string) string { return filepath.Join(l.mp, rel) }

// cut cuts the power, kills the children (after the cut: the cut catches
// them running), unmounts and mounts the durable state again.
func (l *lossy) cut(children ...*child) lossyfs.Stats {
	l.t.Helper()
	st := l.fsys.PowerCut()
	for _, c := range children {
		c.kill(l.t)
	}
	if err := l.fsys.Unmount(); err != nil {
		l.t.Fatalf("unmount after the cut: %v", err)
	}
	next, err := l.fsys.Remount(l.mp)
	if err != nil {
		l.fsys = nil
		l.t.Fatal(err)
	}
	l.fsys = next
	return st
}

// fsyncPath fsyncs a file or directory on the mount from the test process
// (a system call, which the serving process may make): as the kernel's
// flusher writing that file back.
func fsyncPath(t *testing.T, path string) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := f.Sync(); err != nil {
		t.Fatalf("fsync %s: %v", path, err)
	}
}

// report is a writer child's last "p|s PUBLISHED DURABLE ROLLS".
type report struct{ pub, dur, rolls uint64 }

// startWriter starts the campaign writer child and waits until it is open.
func startWriter(t *testing.T, dir, policy string, maxFrames int, env ...string) (*child, uint32) {
	t.Helper()
	w := startChild(t, "writer", append([]string{"PL_DIR=" + dir, "PL_POLICY=" + policy, "PL_SEG=" + strconv.Itoa(segSize),
		"PL_SEED=1", "PL_MAXFRAMES=" + strconv.Itoa(maxFrames)}, env...)...)
	l, ok := w.next(time.Minute)
	if !ok || !strings.HasPrefix(l, "open ") {
		w.kill(t)
		t.Fatalf("writer did not open: %q", l)
	}
	var epoch uint32
	fmt.Sscanf(l, "open %d", &epoch)
	return w, epoch
}

// until reads a writer's reports until stop says so (or "idle", or failure).
func until(t *testing.T, w *child, stop func(report) bool) (report, bool) {
	t.Helper()
	var r report
	for {
		l, ok := w.next(time.Minute)
		if !ok {
			t.Fatalf("writer died or hung (last report %+v)", r)
		}
		if l == "idle" {
			return r, false
		}
		var kind string
		if n, _ := fmt.Sscanf(l, "%s %d %d %d", &kind, &r.pub, &r.dur, &r.rolls); n != 4 {
			t.Fatalf("writer said %q", l)
		}
		if stop(r) {
			return r, true
		}
	}
}

func itoa(n int) string { return strconv.Itoa(n) }

func readFileSize(path string) (int64, error) {
	st, err := os.Stat(path)
	if err != nil {
		return 0, err
	}
	return st.Size(), nil
}
