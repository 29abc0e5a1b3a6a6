package lossyfs

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// TestWritesAfterCutDiscarded: a mapping still alive at the cut is written
// back when its owner unmaps it; that WRITE arrives after the cut
// and must change neither the durable nor the live state. write(2) and
// fsync after the cut fail with EIO.
func TestWritesAfterCutDiscarded(t *testing.T) {
	fsys := mountT(t)
	path := filepath.Join(fsys.Mountpoint(), "m")
	writeFile(t, path, 0, pageBytes('o', 'o'), false)
	must(t, fsys.Sync())

	ch := startChild(t, fsys.Mountpoint(), "open m", "mmap 8192", "fill 0 4096 110", "ready", "munmap", "tryclose")
	ch.expect("ready")
	if st := fsys.PowerCut(); st.Pages != 0 {
		// The page is still only in the kernel's page cache.
		t.Fatalf("stats at the cut: %+v, want no dirty page received yet", st)
	}
	ch.resume()
	// The failed write-back may surface in close or not: what matters is
	// what lossyfs received and kept.
	ch.success()

	// The serving process itself: the dead disk refuses everything.
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err == nil {
		_, err = f.WriteAt([]byte("late"), 0)
		if err == nil {
			err = f.Sync()
		}
		f.Close()
	}
	if !errors.Is(err, syscall.EIO) {
		t.Errorf("write after the cut: %v, want EIO", err)
	}
	if err := fsys.Sync(); !errors.Is(err, ErrCut) {
		t.Errorf("Sync after the cut: %v, want ErrCut", err)
	}
	if again := fsys.PowerCut(); again.Pages != 0 || again.Files != 0 {
		t.Errorf("a second PowerCut returned %+v, want the first cut's counts", again)
	}

	// Once unmounted, every request has been answered.
	must(t, fsys.Unmount())
	if st := fsys.Stats(); st.RejectedWriteBytes < pageSize {
		t.Errorf("after the child's munmap and the unmount: %+v, want the page's write-back refused", st)
	}
	fsys.mu.Lock()
	live := make([]byte, 2*pageSize)
	fsys.st.live[fsys.st.live[rootIno].entries["m"]].readAt(0, live)
	fsys.mu.Unlock()
	if want := pageBytes('o', 'o'); !bytes.Equal(live, want) {
		t.Errorf("live content after the refused write-back: %s, want %s", pageSummary(live), pageSummary(want))
	}

	next, err := fsys.Remount(fsys.Mountpoint())
	must(t, err)
	cleanupT(t, next)
	got, err := os.ReadFile(path)
	must(t, err)
	if want := pageBytes('o', 'o'); !bytes.Equal(got, want) {
		t.Errorf("after the cut: %s, want %s", pageSummary(got), pageSummary(want))
	}
}

// TestWriteThrough: the kernel's writeback cache is off, so write(2) reaches
// lossyfs before it returns (and a power cut drops it); with a writeback
// cache it would sit in the page cache, out of the model's reach.
func TestWriteThrough(t *testing.T) {
	fsys := mountT(t)
	f, err := os.Create(filepath.Join(fsys.Mountpoint(), "f"))
	must(t, err)
	defer f.Close()
	_, err = f.Write([]byte("abc"))
	must(t, err)
	if st := fsys.Stats(); st.WriteBytes != 3 || st.Pages != 1 || st.Files != 1 || st.NamespaceOps != 1 || st.Entries != 1 {
		t.Errorf("stats after write(2) of 3 bytes to a new file, before close: %+v, want 3 bytes, 1 page, 1 file, 1 op, 1 entry", st)
	}
}

// TestRemountChain: each mount starts from the previous one's durable state;
// a clean Unmount (no cut) makes everything durable.
func TestRemountChain(t *testing.T) {
	fsys := mountT(t)
	p := func(name string) string { return filepath.Join(fsys.Mountpoint(), name) }
	writeFile(t, p("one"), 0, []byte("1"), true)
	fsyncPath(t, p("."))
	writeFile(t, p("lost"), 0, []byte("L"), true)
	fsys, _ = cutT(t, fsys)

	if _, err := fsys.Remount(t.TempDir()); !errors.Is(err, ErrMounted) {
		t.Errorf("Remount of a mounted file system: %v, want ErrMounted", err)
	}
	writeFile(t, p("two"), 0, []byte("2"), false) // no fsync at all
	must(t, fsys.Unmount())                       // clean: everything durable
	next, err := fsys.Remount(t.TempDir())        // another directory
	must(t, err)
	cleanupT(t, next)
	want := map[string]string{"one": fileDesc([]byte("1")), "two": fileDesc([]byte("2"))}
	if d := diffTree(tree(t, next.Mountpoint()), want); d != "" {
		t.Errorf("after cut, clean unmount and remount:\n%s", d)
	}
}

// TestSyncIncludesMappedPages: Sync has the kernel write back dirty pages of
// mappings that are still alive (it fsyncs every file through the mount)
// before making everything durable,
// so a test's setup may use them.
func TestSyncIncludesMappedPages(t *testing.T) {
	fsys := mountT(t)
	path := filepath.Join(fsys.Mountpoint(), "m")
	writeFile(t, path, 0, pageBytes(0, 0), false)
	fsyncPath(t, fsys.Mountpoint())
	ch := startChild(t, fsys.Mountpoint(), "open m", "mmap 8192", "fill 4096 4096 115", "ready")
	ch.expect("ready")
	must(t, fsys.Sync())
	ch.kill()
	cutT(t, fsys)
	got, err := os.ReadFile(path)
	must(t, err)
	if want := pageBytes(0, 's'); !bytes.Equal(got, want) {
		t.Errorf("after Sync and a cut: %s, want %s", pageSummary(got), pageSummary(want))
	}
}

// TestUnavailableWithoutRoot: a process that cannot mount gets an error
// wrapping ErrUnavailable that says why (the tests turn it into a loud
// skip). The child runs as user nobody.
func TestUnavailableWithoutRoot(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("SKIPPED, NOT PASSED: needs root to start a child as another user")
	}
	// The test binary lives in a directory only root may enter: copy it
	// where nobody can run it.
	dir := t.TempDir()
	must(t, os.Chmod(filepath.Dir(dir), 0o755))
	must(t, os.Chmod(dir, 0o777))
	self, err := os.ReadFile(os.Args[0])
	must(t, err)
	binary := filepath.Join(dir, "lossyfs.test")
	must(t, os.WriteFile(binary, self, 0o755))
	mp := filepath.Join(dir, "mnt")
	must(t, os.Mkdir(mp, 0o777))
	ch := startChildAs(t, binary, &syscall.Credential{Uid: 65534, Gid: 65534}, dir, "mount "+mp)
	ch.expect("unavailable")
	ch.expect("lossyfs: cannot mount FUSE here: mounting without fusermount needs root (euid is 65534)")
	ch.success()
}
