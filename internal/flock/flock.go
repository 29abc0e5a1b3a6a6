//go:build linux

// Package flock implements mdjournal's exclusive locks: the single-writer
// lock (journal.lock), the maintenance lock (journal.maint) and the
// snapshot writer's lock: an exclusive, non-blocking flock(2) on a lock file
// that also records the holder's PID as decimal text.
//
// Lock files are created with mode 0600, so no other user can open them, and
// so no other user can hold a lock that would block a writer. Who holds a
// lock is read from /proc/locks (inode, PID, shared or exclusive), never by
// taking a lock: probing with a shared flock would itself block a writer
// starting at that moment. flock is released by the kernel when the holder
// dies, so a lock left by a crashed writer is simply taken over; the PID text
// is informative only.
package flock

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/mdjournal/mdjournal/internal/fsx"
)

// ErrLocked is returned (wrapped in *HeldError) when another process holds the lock.
var ErrLocked = errors.New("flock: lock held by another process")

// HeldError names the process holding a lock.
type HeldError struct {
	Path   string
	PID    int  // 0 when it could not be found
	Shared bool // the holder took a shared lock: not a writer, but it blocks writers
}

func (e *HeldError) Error() string {
	switch {
	case e.PID == 0:
		return fmt.Sprintf("%s is locked by a process that /proc/locks does not name", e.Path)
	case e.Shared:
		return fmt.Sprintf("%s is held with a shared lock by PID %d%s: that process is not a writer, but it blocks writers until it lets go", e.Path, e.PID, owner(e.PID))
	}
	return fmt.Sprintf("%s is locked by PID %d%s", e.Path, e.PID, owner(e.PID))
}

// Unwrap returns ErrLocked.
func (e *HeldError) Unwrap() error { return ErrLocked }

// ErrExposed is returned by Acquire for a lock file that another user owns
// and that users other than its owner may open.
var ErrExposed = errors.New("flock: lock file open to other users")

func owner(pid int) string {
	var st unix.Stat_t
	if unix.Stat("/proc/"+strconv.Itoa(pid), &st) != nil {
		return ""
	}
	cmd, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/comm")
	return fmt.Sprintf(" (%s, uid %d)", strings.TrimSpace(string(cmd)), st.Uid)
}

// Lock is a held lock.
type Lock struct {
	f *os.File
	// StalePID is the PID recorded by a previous holder that had died (or
	// closed without cleanup) when this lock was taken; 0 if none.
	StalePID int
}

// Acquire takes the exclusive lock on path, creating the file (mode perm;
// 0 means 0600) if needed, and writes the caller's PID into it. A symlink
// or non-regular file at path is refused.
func Acquire(path string, perm os.FileMode) (*Lock, error) {
	if perm == 0 {
		perm = fsx.LockPerm
	}
	f, err := fsx.Open(path, os.O_RDWR|os.O_CREATE, perm)
	if err != nil {
		return nil, err
	}
	// A lock file others may open is a lock others may hold (format.md
	// §7): one of ours (re-moded, or copied) is narrowed back to perm; one
	// another user owns is refused.
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		f.Close()
		return nil, &os.PathError{Op: "fstat", Path: path, Err: err}
	}
	if st.Mode&0o077&^uint32(perm.Perm()) != 0 {
		if st.Uid != uint32(os.Geteuid()) {
			f.Close()
			return nil, fmt.Errorf("%w: %s is owned by uid %d and mode %#o: other users can open it and hold it to block this process; remove it if it is not yours",
				ErrExposed, path, st.Uid, st.Mode&0o7777)
		}
		if err := f.Chmod(perm.Perm()); err != nil {
			f.Close()
			return nil, err
		}
	}
	for {
		err = unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		if err != unix.EINTR {
			break
		}
	}
	if err != nil {
		defer f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			pid, shared := holderOf(f)
			if pid == 0 {
				pid, _ = readPID(f)
			}
			return nil, &HeldError{Path: path, PID: pid, Shared: shared}
		}
		return nil, fmt.Errorf("flock %s: %w", path, err)
	}
	l := &Lock{f: f}
	if pid, ok := readPID(f); ok && pid != os.Getpid() {
		l.StalePID = pid
	}
	if err := f.Truncate(0); err != nil {
		l.Release()
		return nil, err
	}
	if _, err := f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0); err != nil {
		l.Release()
		return nil, err
	}
	return l, nil
}

// Release empties the file (so the next holder does not report a takeover
// after a clean release) and drops the lock. After a crash the PID stays:
// flock, not the file's content, decides who holds the lock, and the PID
// tells the next holder whose lock it took over.
func (l *Lock) Release() error {
	if l == nil || l.f == nil {
		return nil
	}
	l.f.Truncate(0)
	err := l.f.Close()
	l.f = nil
	return err
}

// Holder reports who holds the lock on path without taking any lock: pid
// is the holder found in /proc/locks (or, if /proc/locks does not name one,
// the PID recorded in the file) and held whether a process holds it now.
func Holder(path string) (pid int, held bool, err error) {
	f, err := fsx.OpenRead(path)
	if err != nil {
		return 0, false, err
	}
	defer f.Close()
	recorded, _ := readPID(f)
	if p, _ := holderOf(f); p != 0 {
		return p, true, nil
	}
	return recorded, false, nil
}

// holderOf finds the flock holder of f's inode in /proc/locks.
func holderOf(f *os.File) (pid int, shared bool) {
	var st unix.Stat_t
	if unix.Fstat(int(f.Fd()), &st) != nil {
		return 0, false
	}
	want := fmt.Sprintf("%02x:%02x:%d", unix.Major(st.Dev), unix.Minor(st.Dev), st.Ino)
	pl, err := os.Open("/proc/locks")
	if err != nil {
		return 0, false
	}
	defer pl.Close()
	sc := bufio.NewScanner(pl)
	for sc.Scan() {
		// "1: FLOCK  ADVISORY  WRITE 1234 fd:00:131 0 EOF"; waiters carry "->".
		fs := strings.Fields(sc.Text())
		if len(fs) < 6 || fs[1] == "->" || fs[1] != "FLOCK" || fs[5] != want {
			continue
		}
		p, err := strconv.Atoi(fs[4])
		if err != nil {
			continue
		}
		return p, fs[3] == "READ"
	}
	return 0, false
}

// Alive reports whether a process with this PID exists.
func Alive(pid int) bool {
	if pid <= 0 {
		return false
	}
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

func readPID(f *os.File) (int, bool) {
	buf := make([]byte, 32)
	n, _ := f.ReadAt(buf, 0)
	pid, err := strconv.Atoi(strings.TrimSpace(string(buf[:n])))
	if err != nil || pid <= 0 {
		return 0, false
	}
	return pid, true
}

// TryLock takes an exclusive flock on an already open file without waiting
// (a named reader locks its own position file). On contention the error is
// a *HeldError naming the holder from /proc/locks.
func TryLock(f *os.File) error {
	var err error
	for {
		err = unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		if err != unix.EINTR {
			break
		}
	}
	if errors.Is(err, unix.EWOULDBLOCK) {
		pid, shared := holderOf(f)
		return &HeldError{Path: f.Name(), PID: pid, Shared: shared}
	}
	if err != nil {
		return fmt.Errorf("flock %s: %w", f.Name(), err)
	}
	return nil
}
