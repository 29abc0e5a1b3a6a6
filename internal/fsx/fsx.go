//go:build linux

// Package fsx opens, creates, renames and syncs journal files safely: it
// never follows a symlink in the last path component, never opens anything
// but a regular file (a FIFO never blocks the open, a device or directory is
// refused), and fsyncs the directory after every name change that recovery
// depends on. Every file mdjournal creates or opens for writing goes through
// it (format.md §1, "Files and permissions").
package fsx

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"

	"github.com/mdjournal/mdjournal/journal"
)

// Default permissions of created files (settable through each package's
// Options; format.md §1): data files and the control page are readable by
// the owner's group (a reader that cannot write the control page polls
// instead of futex-waiting), locks are the owner's alone (nobody else can
// open them, so nobody else can hold them).
const (
	DataPerm = 0o640
	LockPerm = 0o600
	DirPerm  = 0o750
)

// NotRegularError says what was found where a regular file was expected.
type NotRegularError struct {
	Path string
	What string // "symlink", "FIFO", "directory", "device", "socket"
}

func (e *NotRegularError) Error() string {
	return fmt.Sprintf("%s is a %s, not a regular file: refused", e.Path, e.What)
}

// Unwrap returns journal.ErrNotRegular.
func (e *NotRegularError) Unwrap() error { return journal.ErrNotRegular }

func what(mode uint32) string {
	switch mode & unix.S_IFMT {
	case unix.S_IFLNK:
		return "symlink"
	case unix.S_IFIFO:
		return "FIFO"
	case unix.S_IFDIR:
		return "directory"
	case unix.S_IFCHR, unix.S_IFBLK:
		return "device"
	case unix.S_IFSOCK:
		return "socket"
	}
	return "special file"
}

// Open opens path with flag (os.O_RDONLY, os.O_RDWR, ...; O_CREATE with
// perm), refusing symlinks and non-regular files. The open itself never
// blocks: it is made with O_NONBLOCK, checked with fstat, and the flag is
// cleared again on the regular file.
func Open(path string, flag int, perm os.FileMode) (*os.File, error) {
	fd, err := unix.Open(path, flag|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC, uint32(perm.Perm()))
	if err != nil {
		if errors.Is(err, unix.ELOOP) {
			return nil, &NotRegularError{Path: path, What: "symlink"}
		}
		if errors.Is(err, unix.ENXIO) { // a FIFO opened for writing with no reader
			return nil, &NotRegularError{Path: path, What: "FIFO"}
		}
		if errors.Is(err, unix.EISDIR) { // a directory opened for writing
			return nil, &NotRegularError{Path: path, What: "directory"}
		}
		return nil, &os.PathError{Op: "open", Path: path, Err: err}
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		unix.Close(fd)
		return nil, &os.PathError{Op: "fstat", Path: path, Err: err}
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		unix.Close(fd)
		return nil, &NotRegularError{Path: path, What: what(st.Mode)}
	}
	if fl, err := unix.FcntlInt(uintptr(fd), unix.F_GETFL, 0); err == nil {
		unix.FcntlInt(uintptr(fd), unix.F_SETFL, fl&^unix.O_NONBLOCK)
	}
	return os.NewFile(uintptr(fd), path), nil
}

// OpenRead opens an existing regular file read-only.
func OpenRead(path string) (*os.File, error) { return Open(path, os.O_RDONLY, 0) }

// CreateExcl creates path, which must not exist (O_EXCL: a planted file or
// symlink of that name makes it fail instead of being followed or reused).
func CreateExcl(path string, perm os.FileMode) (*os.File, error) {
	f, err := Open(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, perm)
	if err == nil {
		// The umask may have narrowed perm; widen it back to what was asked
		// (never beyond: perm is the caller's choice).
		f.Chmod(perm.Perm())
	}
	return f, err
}

// CreateTemp creates path, removing a leftover regular file of that name
// first (a crash left it); a symlink or special file there is refused.
func CreateTemp(path string, perm os.FileMode) (*os.File, error) {
	if err := RemoveRegular(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	return CreateExcl(path, perm)
}

// RemoveRegular removes path if it is a regular file (a symlink itself is
// removed too, never its target: unlink does not follow). Anything else is
// refused.
func RemoveRegular(path string) error {
	var st unix.Stat_t
	if err := unix.Lstat(path, &st); err != nil {
		return &os.PathError{Op: "lstat", Path: path, Err: err}
	}
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFREG, unix.S_IFLNK:
		return os.Remove(path)
	}
	return &NotRegularError{Path: path, What: what(st.Mode)}
}

// Lstat reports what path is without following a symlink: "regular",
// "missing" or the kind of special file.
func Lstat(path string) (kind string, size int64, err error) {
	var st unix.Stat_t
	if err := unix.Lstat(path, &st); err != nil {
		if errors.Is(err, unix.ENOENT) {
			return "missing", 0, nil
		}
		return "", 0, &os.PathError{Op: "lstat", Path: path, Err: err}
	}
	if st.Mode&unix.S_IFMT == unix.S_IFREG {
		return "regular", st.Size, nil
	}
	return what(st.Mode), st.Size, nil
}

// SyncDir fsyncs a directory, making the creates, links, renames and unlinks
// in it durable (on ext4 without dirsync they are not until then).
func SyncDir(dir string) error {
	fd, err := unix.Open(filepath.Clean(dir), unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return &os.PathError{Op: "open", Path: dir, Err: err}
	}
	defer unix.Close(fd)
	for {
		err = unix.Fsync(fd)
		if err != unix.EINTR {
			break
		}
	}
	if err != nil {
		return &os.PathError{Op: "fsync", Path: dir, Err: err}
	}
	return nil
}

// Rename renames old to new (replacing new) and fsyncs the directory.
func Rename(old, new string) error {
	if err := os.Rename(old, new); err != nil {
		return err
	}
	return SyncDir(filepath.Dir(new))
}

// LinkNew links old to new, failing if new exists (so a file in use is
// never replaced), unlinks old and fsyncs the directory.
func LinkNew(old, new string) error {
	if err := os.Link(old, new); err != nil {
		return err
	}
	if err := os.Remove(old); err != nil {
		return err
	}
	return SyncDir(filepath.Dir(new))
}

// MkdirAll creates dir (and parents) with perm; an existing path must be a
// directory (a symlink to one is accepted only for the journal directory
// itself, which the operator names).
func MkdirAll(dir string, perm os.FileMode) error {
	// The directories that do not exist yet, outermost first: each one
	// created is made durable in its parent (fsync of the parent), so a
	// power cut cannot lose a journal directory whose files were synced.
	var missing []string
	for d := filepath.Clean(dir); ; d = filepath.Dir(d) {
		if _, err := os.Lstat(d); err == nil {
			break
		}
		missing = append(missing, d)
		if filepath.Dir(d) == d {
			break
		}
	}
	if err := os.MkdirAll(dir, perm); err != nil {
		return err
	}
	for i := len(missing) - 1; i >= 0; i-- {
		if err := SyncDir(filepath.Dir(missing[i])); err != nil {
			return err
		}
	}
	st, err := os.Stat(dir)
	if err != nil {
		return err
	}
	if !st.IsDir() {
		return &NotRegularError{Path: dir, What: "file where a directory is expected"}
	}
	return nil
}

// Mkdir creates a directory inside a journal (readers/, orphaned-*),
// refusing a symlink or file of that name.
func Mkdir(path string, perm os.FileMode) error {
	err := os.Mkdir(path, perm)
	if err == nil {
		return SyncDir(filepath.Dir(path)) // the new name is durable
	}
	if !errors.Is(err, os.ErrExist) {
		return err
	}
	var st unix.Stat_t
	if err := unix.Lstat(path, &st); err != nil {
		return err
	}
	if st.Mode&unix.S_IFMT != unix.S_IFDIR {
		return &NotRegularError{Path: path, What: what(st.Mode) + " where a directory is expected"}
	}
	return nil
}

// SameFile reports whether f is still the file at path (not unlinked, not
// replaced by another file of that name): the writer checks its segments
// with it before it trusts them with frames.
func SameFile(f *os.File, path string) error {
	var a, b unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &a); err != nil {
		return &os.PathError{Op: "fstat", Path: path, Err: err}
	}
	if a.Nlink == 0 {
		return fmt.Errorf("%s was deleted while in use", path)
	}
	if err := unix.Lstat(path, &b); err != nil {
		return fmt.Errorf("%s was removed or renamed while in use: %w", path, err)
	}
	if a.Dev != b.Dev || a.Ino != b.Ino {
		return fmt.Errorf("%s was replaced by another file while in use", path)
	}
	return nil
}
