package edges_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mdjournal/mdjournal/journal"
	"github.com/mdjournal/mdjournal/ops/compress"
	"github.com/mdjournal/mdjournal/ops/inspect"
	"github.com/mdjournal/mdjournal/ops/repair"
	"github.com/mdjournal/mdjournal/ops/verify"
	"github.com/mdjournal/mdjournal/reader"
	"github.com/mdjournal/mdjournal/replay"
	"github.com/mdjournal/mdjournal/writer"
)

// holdShared takes a shared flock on MDJ_DIR/journal.lock, as any process
// that can open the file could, says "held" and holds it until stdin closes.
func holdShared() {
	f, err := os.Open(filepath.Join(os.Getenv("MDJ_DIR"), journal.LockFile))
	if err != nil {
		fmt.Println("error:", err)
		os.Exit(1)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_SH); err != nil {
		fmt.Println("error:", err)
		os.Exit(1)
	}
	fmt.Println("held")
	var b [1]byte
	os.Stdin.Read(b[:])
}

// A shared flock on journal.lock blocked every writer and the error blamed
// "PID 0". The lock is the owner's alone (0600: nobody else can open it);
// a process of the owner's that holds it shared is named as such.
func TestSharedLockHolderNamed(t *testing.T) {
	dir := build(t, 10, writer.Options{})
	st, err := os.Stat(filepath.Join(dir, journal.LockFile))
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("journal.lock mode %v (%v), want 0600", st.Mode(), err)
	}
	pid := startHolder(t, "hold-shared", dir)
	_, err = writer.Open(dir, writer.Options{})
	if err == nil || !strings.Contains(err.Error(), fmt.Sprintf("PID %d", pid)) || !strings.Contains(err.Error(), "shared") {
		t.Fatalf("writer.Open while PID %d holds a shared lock: %v", pid, err)
	}
}

// journal.lock and journal.ctl were opened following symlinks: a root
// writer truncated a planted link's target to 0 bytes. Every file opened
// for writing refuses a symlink, and the target is untouched.
func TestPlantedSymlinksRefused(t *testing.T) {
	for _, name := range []string{journal.LockFile, journal.CtlFile, journal.MaintFile, journal.SegmentName(1), journal.IndexName(1)} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			victim := filepath.Join(t.TempDir(), "victim")
			if err := os.WriteFile(victim, []byte("precious"), 0o644); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink(victim, filepath.Join(dir, name)); err != nil {
				t.Fatal(err)
			}
			var err error
			if name == journal.MaintFile {
				_, err = compress.All(dir, compress.Options{})
			} else {
				var w *writer.Writer
				if w, err = writer.Open(dir, writer.Options{}); err == nil {
					w.Close()
				}
			}
			// Refused, or (a name the writer creates by rename) the link
			// replaced by a regular file.
			if st, lerr := os.Lstat(filepath.Join(dir, name)); !errors.Is(err, journal.ErrNotRegular) && (lerr != nil || !st.Mode().IsRegular()) {
				t.Errorf("a symlink at %s: %v", name, err)
			}
			if b, _ := os.ReadFile(victim); string(b) != "precious" {
				t.Errorf("the symlink's target was written: %q", b)
			}
		})
	}
	// A named reader's position file.
	dir := build(t, 10, writer.Options{})
	victim := filepath.Join(t.TempDir(), "victim")
	os.WriteFile(victim, []byte("precious"), 0o644)
	os.MkdirAll(filepath.Join(dir, reader.ReadersDir), 0o750)
	os.Symlink(victim, reader.PosPath(dir, "risk"))
	if _, err := reader.Open(dir, reader.Options{Name: "risk"}); !errors.Is(err, journal.ErrNotRegular) {
		t.Errorf("a symlinked position file: %v", err)
	}
	if b, _ := os.ReadFile(victim); string(b) != "precious" {
		t.Errorf("the position symlink's target was written: %q", b)
	}
}

// within runs f and fails the test if it does not return within 10 s (a
// FIFO opened for reading blocks until a writer appears: forever).
func within(t *testing.T, what string, f func() error) error {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- f() }()
	select {
	case err := <-done:
		return err
	case <-time.After(10 * time.Second):
		t.Fatalf("%s did not return within 10 s", what)
		return nil
	}
}

// verify, dump, recover and replay blocked forever on a FIFO where a
// segment was expected, and inspect /dev/zero never returned. A FIFO, a
// device or a directory is a typed error, at once.
func TestSpecialFilesAreTypedErrors(t *testing.T) {
	makers := map[string]func(path string) error{
		"FIFO":      func(p string) error { return syscall.Mkfifo(p, 0o640) },
		"directory": func(p string) error { return os.Mkdir(p, 0o750) },
		"device":    func(p string) error { return os.Symlink("/dev/zero", p) }, // a link to one: refused as a symlink or a device
	}
	for what, mk := range makers {
		t.Run(what, func(t *testing.T) {
			dir := build(t, 5000, writer.Options{}) // segments 1, 2
			p := seg(dir, 3)                        // the prepared spare: replaced
			os.Remove(p)
			if err := mk(p); err != nil {
				t.Fatal(err)
			}
			check := func(verb string, err error) {
				t.Helper()
				if !errors.Is(err, journal.ErrNotRegular) {
					t.Errorf("%s with a %s at %s: %v", verb, what, filepath.Base(p), err)
				}
			}
			check("verify", within(t, "verify", func() error {
				rep, err := verify.Journal(dir, verify.Options{})
				if err == nil && !rep.OK() {
					err = rep.Problems[0].Err
				}
				return err
			}))
			check("reader", within(t, "reader", func() error {
				r, err := reader.Open(dir, reader.Options{})
				if err != nil {
					return err
				}
				defer r.Close()
				for {
					_, ok, err := r.TryNext()
					if err != nil || !ok {
						return err
					}
				}
			}))
			check("writer", within(t, "writer", func() error {
				w, err := writer.Open(dir, writer.Options{})
				if err == nil {
					w.Close()
				}
				return err
			}))
			check("recover --dry-run", within(t, "recover", func() error {
				res, err := repair.Recover(dir, repair.Options{DryRun: true})
				if res != nil && len(res.Refused) > 0 {
					return res.Refused[0].Err
				}
				return err
			}))
			check("replay", within(t, "replay", func() error {
				_, err := replay.Run(context.Background(), replay.Options{Dir: dir, Ring: filepath.Join(t.TempDir(), "ring"), RingSize: 1 << 20})
				return err
			}))
		})
	}
	// inspect of a device.
	if _, err := inspect.File("/dev/zero", inspect.Options{}); !errors.Is(err, journal.ErrNotRegular) {
		t.Errorf("inspect /dev/zero: %v", err)
	}
}

// A named reader's position file was created sparse and written outside
// the fault guard: on a full disk the reader died of SIGBUS. Its blocks are
// allocated when it is created.
func TestPositionFileAllocated(t *testing.T) {
	dir := build(t, 10, writer.Options{})
	r, err := reader.Open(dir, reader.Options{Name: "risk"})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var st syscall.Stat_t
	if err := syscall.Stat(reader.PosPath(dir, "risk"), &st); err != nil {
		t.Fatal(err)
	}
	if st.Blocks*512 < st.Size || st.Size < journal.PosSize {
		t.Fatalf("position file: %d bytes, %d allocated", st.Size, st.Blocks*512)
	}
}
