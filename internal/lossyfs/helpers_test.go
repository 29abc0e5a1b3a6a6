package lossyfs

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// mountT mounts an empty lossyfs on a fresh directory, or skips the test
// loudly when this machine cannot host FUSE mounts.
func mountT(t *testing.T) *FS {
	t.Helper()
	mp := t.TempDir()
	fsys, err := Mount(mp, Options{})
	if errors.Is(err, ErrUnavailable) {
		t.Skipf("SKIPPED, NOT PASSED: lossyfs cannot mount FUSE on this machine, so its power-loss model is untested here: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	cleanupT(t, fsys)
	return fsys
}

// cleanupT unmounts fsys at the end of the test (before TempDir removal:
// cleanups run last-registered first). A failed unmount is detached lazily
// so the directory can go, and reported.
func cleanupT(t *testing.T, fsys *FS) {
	t.Cleanup(func() {
		if err := fsys.Unmount(); err != nil {
			t.Errorf("unmount: %v", err)
			unix.Unmount(fsys.Mountpoint(), unix.MNT_DETACH)
		}
	})
}

// cutT cuts the power, unmounts, and mounts the durable image again on the
// same directory. It returns the new mount and the cut's counts, with the
// requests refused during unmount included.
func cutT(t *testing.T, fsys *FS) (*FS, Stats) {
	t.Helper()
	fsys.PowerCut()
	if err := fsys.Unmount(); err != nil {
		t.Fatal(err)
	}
	st := fsys.Stats()
	next, err := fsys.Remount(fsys.Mountpoint())
	if err != nil {
		t.Fatal(err)
	}
	cleanupT(t, next)
	return next, st
}

func writeFile(t *testing.T, path string, off int64, data []byte, sync bool) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt(data, off); err != nil {
		t.Fatal(err)
	}
	if sync {
		if err := f.Sync(); err != nil {
			t.Fatal(err)
		}
	}
}

func fsyncPath(t *testing.T, path string) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// fileDesc summarises a file's content for tree comparisons.
func fileDesc(b []byte) string {
	if len(b) <= 16 {
		return fmt.Sprintf("file %q", b)
	}
	return fmt.Sprintf("file %d bytes sha256 %x", len(b), sha256.Sum256(b))
}

// tree describes every path under root: "dir", "link -> T" or fileDesc.
func tree(t *testing.T, root string) map[string]string {
	t.Helper()
	got := map[string]string{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p == root {
			return nil
		}
		r, _ := filepath.Rel(root, p)
		switch {
		case d.IsDir():
			got[r] = "dir"
		case d.Type()&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			got[r] = "link -> " + target
		default:
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			got[r] = fileDesc(b)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return got
}

func diffTree(got, want map[string]string) string {
	var keys []string
	for k := range got {
		keys = append(keys, k)
	}
	for k := range want {
		if _, ok := got[k]; !ok {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		g, gok := got[k]
		w, wok := want[k]
		switch {
		case !gok:
			fmt.Fprintf(&b, "  missing %s (want %s)\n", k, w)
		case !wok:
			fmt.Fprintf(&b, "  extra   %s (%s)\n", k, g)
		case g != w:
			fmt.Fprintf(&b, "  %s: got %s, want %s\n", k, g, w)
		}
	}
	return b.String()
}

// pageBytes builds expected content: one byte value per 4 KiB page.
func pageBytes(vals ...byte) []byte {
	var b []byte
	for _, v := range vals {
		b = append(b, bytes.Repeat([]byte{v}, pageSize)...)
	}
	return b
}

func ino(t *testing.T, path string) uint64 {
	t.Helper()
	var st syscall.Stat_t
	must(t, syscall.Lstat(path, &st))
	return st.Ino
}
