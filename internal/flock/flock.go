//go:build linux

// Package flock implements the single-writer lock: an exclusive, non-blocking
// flock(2) on a lock file that also records the holder's PID as decimal text.
//
// flock is released by the kernel when the holder dies, so a lock left by a
// crashed writer is simply taken over; the recorded PID only serves to name the
// holder in the error a second writer gets, and to tell operators (journalctl
// inspect) who writes.
package flock

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// ErrLocked is returned (wrapped in *HeldError) when another live process holds the lock.
var ErrLocked = errors.New("flock: lock held by another process")

// HeldError names the process holding a lock.
type HeldError struct {
	Path string
	PID  int // 0 when the file names no PID
}

func (e *HeldError) Error() string {
	return fmt.Sprintf("%s is locked by PID %d", e.Path, e.PID)
}

func (e *HeldError) Unwrap() error { return ErrLocked }

// Lock is a held lock.
type Lock struct {
	f *os.File
	// StalePID is the PID recorded by a previous holder that had died (or
	// closed without cleanup) when this lock was taken; 0 if none.
	StalePID int
}

// Acquire takes the exclusive lock on path, creating it if needed, and writes
// the caller's PID into it.
func Acquire(path string) (*Lock, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, err
	}
	for {
		err = unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		if err != unix.EINTR {
			break
		}
	}
	if err != nil {
		pid, _ := readPID(f)
		f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, &HeldError{Path: path, PID: pid}
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

// Holder reports the PID recorded in the lock file at path and whether a live
// process currently holds the lock (probed with a non-blocking shared flock that
// is released at once).
func Holder(path string) (pid int, held bool, err error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, false, err
	}
	defer f.Close()
	pid, _ = readPID(f)
	err = unix.Flock(int(f.Fd()), unix.LOCK_SH|unix.LOCK_NB)
	if errors.Is(err, unix.EWOULDBLOCK) {
		return pid, true, nil
	}
	if err != nil {
		return pid, false, err
	}
	unix.Flock(int(f.Fd()), unix.LOCK_UN)
	return pid, false, nil
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
