package lossyfs

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

// TestFileData: data, size and mode changes made through write(2),
// ftruncate, fallocate and chmod survive a power cut exactly when the file
// was fsynced (or fdatasynced) after them. Each case starts from a file "f"
// whose (empty) content and name are durable.
func TestFileData(t *testing.T) {
	x8k := bytes.Repeat([]byte{'x'}, 2*pageSize)
	cases := []struct {
		name     string
		do       func(t *testing.T, f *os.File)
		want     []byte
		wantMode os.FileMode
	}{
		{"write, no fsync", func(t *testing.T, f *os.File) {
			must(t, write(f, 0, "hello"))
		}, nil, 0o644},
		{"write, fsync", func(t *testing.T, f *os.File) {
			must(t, write(f, 0, "hello"))
			must(t, f.Sync())
		}, []byte("hello"), 0o644},
		{"write, fdatasync", func(t *testing.T, f *os.File) {
			must(t, write(f, 0, "hello"))
			must(t, unix.Fdatasync(int(f.Fd())))
		}, []byte("hello"), 0o644},
		{"write A, fsync, overwrite B, no fsync", func(t *testing.T, f *os.File) {
			must(t, write(f, 0, "AAAA"))
			must(t, f.Sync())
			must(t, write(f, 1, "BB"))
		}, []byte("AAAA"), 0o644},
		{"write, fsync, append, no fsync", func(t *testing.T, f *os.File) {
			must(t, write(f, 0, "abc"))
			must(t, f.Sync())
			must(t, write(f, 3, "def"))
		}, []byte("abc"), 0o644},
		{"write, fsync through another descriptor", func(t *testing.T, f *os.File) {
			must(t, write(f, 0, "shared"))
			g, err := os.OpenFile(f.Name(), os.O_RDWR, 0)
			must(t, err)
			defer g.Close()
			must(t, g.Sync())
		}, []byte("shared"), 0o644},
		{"ftruncate shrink, no fsync", func(t *testing.T, f *os.File) {
			must(t, write(f, 0, "hello"))
			must(t, f.Sync())
			must(t, f.Truncate(2))
		}, []byte("hello"), 0o644},
		{"ftruncate shrink, fsync", func(t *testing.T, f *os.File) {
			must(t, write(f, 0, "hello"))
			must(t, f.Sync())
			must(t, f.Truncate(2))
			must(t, f.Sync())
		}, []byte("he"), 0o644},
		{"ftruncate grow, no fsync", func(t *testing.T, f *os.File) {
			must(t, f.Truncate(10000))
		}, nil, 0o644},
		{"ftruncate grow, fsync", func(t *testing.T, f *os.File) {
			must(t, f.Truncate(10000))
			must(t, f.Sync())
		}, make([]byte, 10000), 0o644},
		{"shrink then grow, fsync: no stale durable bytes", func(t *testing.T, f *os.File) {
			must(t, write(f, 0, string(x8k)))
			must(t, f.Sync())
			must(t, f.Truncate(100))
			must(t, f.Truncate(int64(len(x8k))))
			must(t, f.Sync())
		}, append(bytes.Repeat([]byte{'x'}, 100), make([]byte, len(x8k)-100)...), 0o644},
		{"fallocate, no fsync", func(t *testing.T, f *os.File) {
			must(t, unix.Fallocate(int(f.Fd()), 0, 0, 1<<16))
		}, nil, 0o644},
		{"fallocate, fsync", func(t *testing.T, f *os.File) {
			must(t, unix.Fallocate(int(f.Fd()), 0, 0, 1<<16))
			must(t, f.Sync())
		}, make([]byte, 1<<16), 0o644},
		{"fallocate KEEP_SIZE, fsync", func(t *testing.T, f *os.File) {
			must(t, unix.Fallocate(int(f.Fd()), unix.FALLOC_FL_KEEP_SIZE, 0, 1<<16))
			must(t, f.Sync())
		}, nil, 0o644},
		{"punch hole, fsync", func(t *testing.T, f *os.File) {
			must(t, write(f, 0, string(pageBytes('p', 'p', 'p'))))
			must(t, f.Sync())
			must(t, unix.Fallocate(int(f.Fd()), unix.FALLOC_FL_PUNCH_HOLE|unix.FALLOC_FL_KEEP_SIZE, pageSize, pageSize))
			must(t, f.Sync())
		}, pageBytes('p', 0, 'p'), 0o644},
		{"punch hole, no fsync", func(t *testing.T, f *os.File) {
			must(t, write(f, 0, string(pageBytes('p', 'p', 'p'))))
			must(t, f.Sync())
			must(t, unix.Fallocate(int(f.Fd()), unix.FALLOC_FL_PUNCH_HOLE|unix.FALLOC_FL_KEEP_SIZE, pageSize, pageSize))
		}, pageBytes('p', 'p', 'p'), 0o644},
		{"zero range extending, fsync", func(t *testing.T, f *os.File) {
			must(t, write(f, 0, "zz"))
			must(t, unix.Fallocate(int(f.Fd()), unix.FALLOC_FL_ZERO_RANGE, 1, 99))
			must(t, f.Sync())
		}, append([]byte("z"), make([]byte, 99)...), 0o644},
		{"chmod, no fsync", func(t *testing.T, f *os.File) {
			must(t, f.Chmod(0o600))
		}, nil, 0o644},
		{"chmod, fsync", func(t *testing.T, f *os.File) {
			must(t, f.Chmod(0o600))
			must(t, f.Sync())
		}, nil, 0o600},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			fsys := mountT(t)
			path := filepath.Join(fsys.Mountpoint(), "f")
			writeFile(t, path, 0, nil, true)
			fsyncPath(t, fsys.Mountpoint())

			f, err := os.OpenFile(path, os.O_RDWR, 0)
			must(t, err)
			c.do(t, f)
			must(t, f.Close())

			cutT(t, fsys) // same mountpoint: path names the remounted file
			got, err := os.ReadFile(path)
			must(t, err)
			if !bytes.Equal(got, c.want) {
				t.Errorf("after the cut: %s, want %s", fileDesc(got), fileDesc(c.want))
			}
			st, err := os.Stat(path)
			must(t, err)
			if st.Mode().Perm() != c.wantMode {
				t.Errorf("after the cut: mode %v, want %v", st.Mode().Perm(), c.wantMode)
			}
		})
	}
}

func write(f *os.File, off int64, s string) error {
	_, err := f.WriteAt([]byte(s), off)
	return err
}
