package lossyfs

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// TestLiveSemantics: before any cut the mount behaves like an ordinary file
// system: errors, modes, owners, links, directory listings, symlinks.
func TestLiveSemantics(t *testing.T) {
	fsys := mountT(t)
	p := func(name string) string { return filepath.Join(fsys.Mountpoint(), name) }
	errno := func(err error) error {
		var pe *fs.PathError
		var le *os.LinkError
		switch {
		case errors.As(err, &pe):
			return pe.Err
		case errors.As(err, &le):
			return le.Err
		}
		return err
	}
	cases := []struct {
		name string
		do   func() error
		want error
	}{
		{"O_EXCL create", func() error {
			f, err := os.OpenFile(p("x"), os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o640)
			if err == nil {
				f.Close()
			}
			return err
		}, nil},
		{"O_EXCL create of an existing name", func() error {
			_, err := os.OpenFile(p("x"), os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o640)
			return errno(err)
		}, syscall.EEXIST},
		{"open of a missing file", func() error { _, err := os.Open(p("missing")); return errno(err) }, syscall.ENOENT},
		{"mkdir", func() error { return os.Mkdir(p("d"), 0o750) }, nil},
		{"mkdir of an existing name", func() error { return errno(os.Mkdir(p("d"), 0o750)) }, syscall.EEXIST},
		{"file in directory", func() error { return os.WriteFile(p("d/f"), []byte("f"), 0o600) }, nil},
		{"rmdir of a non-empty directory", func() error { return errno(syscall.Rmdir(p("d"))) }, syscall.ENOTEMPTY},
		{"unlink of a directory", func() error { return errno(syscall.Unlink(p("d"))) }, syscall.EISDIR},
		{"rename a file over a directory", func() error { return syscall.Rename(p("x"), p("d")) }, syscall.EISDIR},
		{"rename a directory over a file", func() error { return syscall.Rename(p("d"), p("x")) }, syscall.ENOTDIR},
		{"RENAME_NOREPLACE onto an existing name", func() error {
			return unix.Renameat2(unix.AT_FDCWD, p("x"), unix.AT_FDCWD, p("d/f"), unix.RENAME_NOREPLACE)
		}, syscall.EEXIST},
		{"RENAME_EXCHANGE", func() error {
			must(t, os.WriteFile(p("y"), []byte("y"), 0o644))
			return unix.Renameat2(unix.AT_FDCWD, p("x"), unix.AT_FDCWD, p("y"), unix.RENAME_EXCHANGE)
		}, nil},
		{"hard link", func() error { return os.Link(p("y"), p("y2")) }, nil},
		{"hard link of a directory", func() error { return errno(os.Link(p("d"), p("d2"))) }, syscall.EPERM},
		{"symlink", func() error { return os.Symlink("y", p("s")) }, nil},
		{"O_NOFOLLOW open of a symlink", func() error {
			_, err := os.OpenFile(p("s"), os.O_RDONLY|syscall.O_NOFOLLOW, 0)
			return errno(err)
		}, syscall.ELOOP},
		{"chmod", func() error { return os.Chmod(p("y"), 0o604) }, nil},
		{"chown", func() error { return os.Chown(p("y2"), 123, 456) }, nil},
	}
	for _, c := range cases {
		if err := c.do(); !errors.Is(err, c.want) && err != c.want {
			t.Fatalf("%s: got %v, want %v", c.name, err, c.want)
		}
	}

	// After the exchange, x holds y's old content and y is the empty file
	// created with mode 0640.
	var st syscall.Stat_t
	must(t, syscall.Stat(p("y"), &st))
	if st.Mode != syscall.S_IFREG|0o604 || st.Nlink != 2 || st.Uid != 123 || st.Gid != 456 || st.Size != 0 {
		t.Errorf("y: mode %o nlink %d owner %d:%d size %d; want 100604, 2 links, 123:456, 0 bytes", st.Mode, st.Nlink, st.Uid, st.Gid, st.Size)
	}
	if b, err := os.ReadFile(p("x")); err != nil || string(b) != "y" {
		t.Errorf("x after the exchange: %q, %v; want \"y\"", b, err)
	}
	must(t, syscall.Stat(p("d"), &st))
	if st.Mode != syscall.S_IFDIR|0o750 || st.Nlink != 2 {
		t.Errorf("d: mode %o nlink %d; want 40750, 2", st.Mode, st.Nlink)
	}
	must(t, syscall.Stat(p("."), &st))
	if st.Nlink != 3 {
		t.Errorf("root: nlink %d, want 3 (., .. and d/..)", st.Nlink)
	}
	if target, err := os.Readlink(p("s")); err != nil || target != "y" {
		t.Errorf("readlink: %q, %v", target, err)
	}
	if b, err := os.ReadFile(p("s")); err != nil || string(b) != "" {
		t.Errorf("read through the symlink: %q, %v; want y's empty content", b, err)
	}

	ents, err := os.ReadDir(fsys.Mountpoint())
	must(t, err)
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	if want := []string{"d", "s", "x", "y", "y2"}; !reflect.DeepEqual(names, want) {
		t.Errorf("readdir: %q, want %q", names, want)
	}
	var sfs unix.Statfs_t
	must(t, unix.Statfs(fsys.Mountpoint(), &sfs))
	if sfs.Bsize != pageSize || sfs.Bavail == 0 {
		t.Errorf("statfs: bsize %d, %d blocks available", sfs.Bsize, sfs.Bavail)
	}
}
