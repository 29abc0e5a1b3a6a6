package snapshot

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/mdjournal/mdjournal/journal"
)

// Hostile neighbours: other processes and other users near a snapshot file.
// Helper processes are this test binary re-executed (TestHelperProcess)
// with one of these roles; each prints "ready" once in place, then waits
// for its stdin to close (or to be killed).
//
//	shlock  holds a shared flock on MDJ_SNAP_PATH (any file)
//	writer1 opens MDJ_SNAP_PATH with OpenWriter and publishes seq 7 in slot 1
func hostileRole(role, path string) error {
	switch role {
	case "shlock":
		f, err := os.Open(path)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := unix.Flock(int(f.Fd()), unix.LOCK_SH|unix.LOCK_NB); err != nil {
			return fmt.Errorf("flock: %w", err)
		}
	case "writer1":
		w, err := OpenWriter(path)
		if err != nil {
			return err
		}
		defer w.Close()
		if err := w.Publish(1, 7, 70, []Level{{100, 1}}, []Level{{101, 2}}, Trade{}); err != nil {
			return err
		}
	default:
		return fmt.Errorf("unknown role %q", role)
	}
	fmt.Println("ready")
	io.Copy(io.Discard, os.Stdin)
	return nil
}

// startHelper starts a helper in role on path and waits until it is ready.
// The helper ends when the test does (its stdin closes) or is killed.
func startHelper(t *testing.T, role, path string) *exec.Cmd {
	t.Helper()
	cmd := helper(t, role, path, 0)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var errb bytes.Buffer
	cmd.Stderr = &errb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		stdin.Close()
		cmd.Process.Kill()
		cmd.Wait()
	})
	line, err := bufio.NewReader(out).ReadString('\n')
	if strings.TrimSpace(line) != "ready" {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("helper %s: %q %v: %s", role, line, err, errb.String())
	}
	return cmd
}

// TestDefaultModes: the snapshot file is created 0640 (the owner's group
// may read it, nobody else may open it), its lock file 0600; a mode that
// lets others write the file is refused.
func TestDefaultModes(t *testing.T) {
	_, path := create(t, 2, 2)
	for p, want := range map[string]os.FileMode{path: 0o640, LockPath(path): 0o600} {
		st, err := os.Lstat(p)
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode() != want {
			t.Errorf("%s: mode %v, want %v", filepath.Base(p), st.Mode(), want)
		}
	}
	dir := t.TempDir()
	w, err := Create(filepath.Join(dir, "r.snap"), Options{Depth: 1, Capacity: 1, Perm: 0o644})
	if err != nil {
		t.Fatal(err)
	}
	w.Close()
	if st, _ := os.Stat(filepath.Join(dir, "r.snap")); st == nil || st.Mode() != 0o644 {
		t.Errorf("Perm 0644: %v", st)
	}
	for _, perm := range []os.FileMode{0o660, 0o646, 0o666} {
		if _, err := Create(filepath.Join(dir, "x.snap"), Options{Depth: 1, Capacity: 1, Perm: perm}); !errors.Is(err, ErrExposed) {
			t.Errorf("Perm %v: %v, want ErrExposed", perm, err)
		}
	}
	if _, err := Create(filepath.Join(dir, "x.snap"), Options{Depth: 1, Capacity: 1, Perm: 0o400}); err == nil {
		t.Error("Perm 0400 (owner cannot write) accepted")
	}
	if _, err := os.Lstat(filepath.Join(dir, "x.snap")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a refused Create left a file: %v", err)
	}
}

// TestSharedLockOnSnapshotBlocksNothing: a process holding a shared flock
// on the snapshot file itself (anyone who can read it can) no longer blocks
// a writer: the writer lock is the separate, private PATH.lock.
func TestSharedLockOnSnapshotBlocksNothing(t *testing.T) {
	w, path := create(t, 2, 4)
	w.Close()
	startHelper(t, "shlock", path)
	w, err := OpenWriter(path)
	if err != nil {
		t.Fatalf("a reader's shared flock on the snapshot blocked the writer: %v", err)
	}
	w.Close()
}

// TestLockHolderNamed: a process holding the writer lock (as a writer, or
// with a shared flock on the lock file) is named, with its PID and the kind
// of lock, and no writer can start meanwhile.
func TestLockHolderNamed(t *testing.T) {
	w, path := create(t, 2, 4)
	w.Close()
	for _, c := range []struct {
		role   string
		target string
		shared bool
	}{{"writer1", path, false}, {"shlock", LockPath(path), true}} {
		t.Run(c.role, func(t *testing.T) {
			cmd := startHelper(t, c.role, c.target)
			for name, open := range map[string]func() error{
				"OpenWriter": func() error { _, err := OpenWriter(path); return err },
				"Prepare":    func() error { _, err := Prepare(path, Options{Depth: 2, Capacity: 4}); return err },
			} {
				err := open()
				var le *LockedError
				if !errors.As(err, &le) || !errors.Is(err, ErrLocked) {
					t.Fatalf("%s: %v, want a LockedError", name, err)
				}
				if le.PID != cmd.Process.Pid || le.Shared != c.shared || le.Path != LockPath(path) {
					t.Errorf("%s: %+v, want PID %d shared %v", name, le, cmd.Process.Pid, c.shared)
				}
				msg := err.Error()
				if !strings.Contains(msg, strconv.Itoa(cmd.Process.Pid)) || c.shared != strings.Contains(msg, "shared lock") {
					t.Errorf("%s: message %q does not name the holder and its lock", name, msg)
				}
			}
			if _, err := os.Lstat(tempPath(path)); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("a refused Prepare left %s", tempPath(path))
			}
		})
	}
}

// TestOtherUsersCannotOpen: another user (nobody, uid 65534) can open
// neither the snapshot file nor its lock file, so cannot flock either. A
// control file of mode 0644 in the same directory shows that the user could
// otherwise reach them.
func TestOtherUsersCannotOpen(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("SKIPPED: needs root to run a process as another user (uid 65534)")
	}
	dir, err := os.MkdirTemp("", "mdj-snap-users-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "book.snap")
	w, err := Create(path, Options{Depth: 1, Capacity: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	control := filepath.Join(dir, "control")
	if err := os.WriteFile(control, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	os.Chmod(control, 0o644)
	asNobody := func(p string) (string, error) {
		cmd := exec.Command("/bin/cat", p)
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	if out, err := asNobody(control); err != nil {
		t.Fatalf("control: uid 65534 cannot read a 0644 file in %s (%v: %s): the test proves nothing", dir, err, out)
	}
	for _, p := range []string{path, LockPath(path)} {
		if out, err := asNobody(p); err == nil || !strings.Contains(out, "Permission denied") {
			t.Errorf("uid 65534 opened %s: %v %s", filepath.Base(p), err, out)
		}
	}
}

// TestPlantedFiles: a symlink, FIFO or directory where the snapshot, its
// temporary or its lock file is expected is refused with
// journal.ErrNotRegular (never followed, never blocking), and a symlink's
// target is never written.
func TestPlantedFiles(t *testing.T) {
	valid := func(t *testing.T, dir string) string {
		p := filepath.Join(dir, "valid.snap")
		w, err := Create(p, Options{Depth: 2, Capacity: 4})
		if err != nil {
			t.Fatal(err)
		}
		w.Publish(1, 5, 1, []Level{{1, 1}}, nil, Trade{})
		w.Close()
		return p
	}
	within := func(t *testing.T, what string, f func() error) error {
		t.Helper()
		done := make(chan error, 1)
		go func() { done <- f() }()
		select {
		case err := <-done:
			return err
		case <-time.After(10 * time.Second):
			t.Fatalf("%s blocked", what)
			return nil
		}
	}
	openers := map[string]func(path string) error{
		"Create": func(p string) error {
			w, err := Create(p, Options{Depth: 2, Capacity: 4})
			if err == nil {
				w.Close()
			}
			return err
		},
		"Prepare+Install": func(p string) error {
			w, err := Prepare(p, Options{Depth: 2, Capacity: 4})
			if err != nil {
				return err
			}
			defer w.Close()
			return w.Install()
		},
		"OpenWriter": func(p string) error {
			w, err := OpenWriter(p)
			if err == nil {
				w.Close()
			}
			return err
		},
	}
	plants := map[string]func(t *testing.T, at, victim string){
		"symlink": func(t *testing.T, at, victim string) {
			if err := os.Symlink(victim, at); err != nil {
				t.Fatal(err)
			}
		},
		"fifo": func(t *testing.T, at, _ string) {
			if err := unix.Mkfifo(at, 0o666); err != nil {
				t.Fatal(err)
			}
		},
		"directory": func(t *testing.T, at, _ string) {
			if err := os.Mkdir(at, 0o755); err != nil {
				t.Fatal(err)
			}
		},
	}
	for pname, plant := range plants {
		for _, where := range []string{"snapshot", "lock"} {
			for oname, open := range openers {
				t.Run(pname+"/"+where+"/"+oname, func(t *testing.T) {
					dir := t.TempDir()
					victim := valid(t, dir)
					before, _ := os.ReadFile(victim)
					path := filepath.Join(dir, "book.snap")
					at := path
					if where == "lock" {
						at = LockPath(path)
					}
					plant(t, at, victim)
					err := within(t, oname, func() error { return open(path) })
					if !errors.Is(err, journal.ErrNotRegular) {
						t.Fatalf("%s with a %s at the %s path: %v, want journal.ErrNotRegular", oname, pname, where, err)
					}
					if !strings.Contains(err.Error(), at) {
						t.Errorf("error %q does not name %s", err, at)
					}
					if after, _ := os.ReadFile(victim); !bytes.Equal(before, after) {
						t.Errorf("the symlink's target was written")
					}
				})
			}
		}
	}
	// A symlink planted at the temporary name is removed, never followed.
	t.Run("symlink/tmp", func(t *testing.T) {
		dir := t.TempDir()
		victim := valid(t, dir)
		before, _ := os.ReadFile(victim)
		path := filepath.Join(dir, "book.snap")
		if err := os.Symlink(victim, tempPath(path)); err != nil {
			t.Fatal(err)
		}
		w, err := Create(path, Options{Depth: 2, Capacity: 4})
		if err != nil {
			t.Fatal(err)
		}
		w.Close()
		if after, _ := os.ReadFile(victim); !bytes.Equal(before, after) {
			t.Error("the symlink's target was written")
		}
		if st, err := os.Lstat(path); err != nil || !st.Mode().IsRegular() {
			t.Errorf("%s: %v %v", path, st, err)
		}
	})
	// Readers follow a symlink (an operator may point one at the file) but
	// never block on a FIFO and refuse anything but a regular file.
	t.Run("reader", func(t *testing.T) {
		dir := t.TempDir()
		victim := valid(t, dir)
		link := filepath.Join(dir, "link.snap")
		os.Symlink(victim, link)
		r, err := Open(link)
		if err != nil {
			t.Fatalf("through a symlink: %v", err)
		}
		var bk Book
		if err := r.Read(1, &bk); err != nil || bk.Seq != 5 {
			t.Errorf("read through a symlink: %v %+v", err, bk)
		}
		r.Close()
		for pname, plant := range plants {
			at := filepath.Join(dir, pname+".snap")
			if pname == "symlink" {
				at2 := filepath.Join(dir, "fifo-target")
				unix.Mkfifo(at2, 0o666)
				os.Symlink(at2, at)
			} else {
				plant(t, at, victim)
			}
			err := within(t, "Open", func() error {
				r, err := Open(at)
				if err == nil {
					r.Close()
				}
				return err
			})
			if !errors.Is(err, journal.ErrNotRegular) {
				t.Errorf("Open of a %s: %v, want journal.ErrNotRegular", pname, err)
			}
		}
	})
}

// TestExposedFiles: a lock file another user owns that others could open,
// or a snapshot file that other users could write — planted, or re-moded
// by hand — is refused with ErrExposed: whoever can open the lock can hold
// it, whoever can write the snapshot can truncate it under the writer's
// mapping. A lock file of our own that was re-moded is narrowed back to
// 0600 (internal/flock owns that rule).
func TestExposedFiles(t *testing.T) {
	cases := []struct {
		name string
		f    func(t *testing.T, path string)
		root bool
	}{
		{"snapshot 0660", func(t *testing.T, p string) { os.Chmod(p, 0o660) }, false},
		{"lock 0644 owned by uid 65534", func(t *testing.T, p string) {
			os.Lchown(LockPath(p), 65534, 65534)
			os.Chmod(LockPath(p), 0o644)
		}, true},
		{"snapshot owned by uid 65534", func(t *testing.T, p string) { os.Lchown(p, 65534, 65534) }, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if c.root && os.Geteuid() != 0 {
				t.Skip("SKIPPED: needs root to give a file to another user")
			}
			w, path := create(t, 2, 2)
			w.Close()
			c.f(t, path)
			_, err := OpenWriter(path)
			if !errors.Is(err, ErrExposed) {
				t.Fatalf("OpenWriter: %v, want ErrExposed", err)
			}
			t.Log(err)
		})
	}
	// A lock file of ours left 0666 is narrowed to 0600 and used.
	dir := t.TempDir()
	path := filepath.Join(dir, "new.snap")
	if err := os.WriteFile(LockPath(path), nil, 0o666); err != nil {
		t.Fatal(err)
	}
	os.Chmod(LockPath(path), 0o666)
	w, err := Create(path, Options{Depth: 1, Capacity: 1})
	if err != nil {
		t.Fatalf("Create with our own 0666 lock file: %v", err)
	}
	w.Close()
	if st, err := os.Stat(LockPath(path)); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("lock file mode %v (%v), want 0600", st.Mode(), err)
	}
}
