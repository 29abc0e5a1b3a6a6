package lossyfs

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// TestMmap: stores through a MAP_SHARED mapping survive a power cut exactly
// when msync(MS_SYNC), fsync or fdatasync covered them. A child process
// stores and syncs, then waits; the test kills it with SIGKILL (or lets it
// exit), cuts the power and reads the remounted file. The file "m" is four
// pages of zeroes, durable before the child starts.
func TestMmap(t *testing.T) {
	const size = 4 * pageSize
	cases := []struct {
		name   string
		script []string
		kill   bool
		want   []byte
		// lost is how many pages of stores must have reached lossyfs and
		// been dropped (before the cut, or refused at unmount): proof that
		// the store was made and written back, so its absence after the cut
		// is the model's doing and not the store's.
		lost int
	}{
		{"msync MS_SYNC", []string{"fill 0 4096 97", "msync 0 4096 sync"}, true, pageBytes('a', 0, 0, 0), 0},
		{"msync MS_ASYNC", []string{"fill 0 4096 97", "msync 0 4096 async"}, true, pageBytes(0, 0, 0, 0), 1},
		{"no msync", []string{"fill 0 4096 97"}, true, pageBytes(0, 0, 0, 0), 1},
		{"msync of one page keeps that page, not another dirty page", []string{
			"fill 0 4096 97", "fill 8192 4096 99", "msync 0 4096 sync"}, true, pageBytes('a', 0, 0, 0), 1},
		{"msync of a two-page range in the middle", []string{
			"fill 0 16384 122", "msync 4096 8192 sync"}, true, pageBytes(0, 'z', 'z', 0), 2},
		{"fsync covers the whole mapping", []string{
			"fill 4096 4096 98", "fill 12288 4096 100", "fsync"}, true, pageBytes(0, 'b', 0, 'd'), 0},
		{"fdatasync covers the whole mapping", []string{
			"fill 4096 4096 98", "fdatasync"}, true, pageBytes(0, 'b', 0, 0), 0},
		{"msync, store again, no msync", []string{
			"fill 0 4096 97", "msync 0 4096 sync", "fill 0 4096 120"}, true, pageBytes('a', 0, 0, 0), 1},
		{"clean exit after munmap and close, no msync", []string{
			"fill 0 4096 97", "munmap", "close"}, false, pageBytes(0, 0, 0, 0), 1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			fsys := mountT(t)
			path := filepath.Join(fsys.Mountpoint(), "m")
			writeFile(t, path, size-1, []byte{0}, false)
			must(t, fsys.Sync())

			script := append([]string{"open m", fmt.Sprintf("mmap %d", size)}, c.script...)
			ch := startChild(t, fsys.Mountpoint(), append(script, "ready")...)
			ch.expect("ready")
			if c.kill {
				ch.kill()
			} else {
				ch.resume()
				ch.success()
			}
			_, st := cutT(t, fsys) // same mountpoint: path names the remounted file
			got, err := os.ReadFile(path)
			must(t, err)
			if !bytes.Equal(got, c.want) {
				t.Errorf("after the cut:\n got  %s\n want %s", pageSummary(got), pageSummary(c.want))
			}
			lost := st.Pages + st.RejectedWriteBytes/pageSize
			if lost < int64(c.lost) {
				t.Errorf("%d dropped pages reached lossyfs (%+v), want at least %d", lost, st, c.lost)
			}
			t.Logf("stats: %+v", st)
		})
	}
}

// pageSummary shows a file as one character per page: the page's byte if
// the page is uniform, '?' otherwise.
func pageSummary(b []byte) string {
	var s []byte
	for off := 0; off < len(b); off += pageSize {
		p := b[off:min(off+pageSize, len(b))]
		c := p[0]
		if !bytes.Equal(p, bytes.Repeat([]byte{c}, len(p))) {
			c = '?'
		} else if c == 0 {
			c = '.'
		}
		s = append(s, c)
	}
	return fmt.Sprintf("%q (%d bytes)", s, len(b))
}

// TestNoEarlyWriteback: the kernel must not write a dirty mmap page back on
// its own when another process opens the file or changes its mtime; if it
// did, the writer's next msync of another range would make that page
// durable. A child stores into page 2 and waits; another process opens the
// file (and writes page 3 with write(2)); the test stats the file; the first
// child then msyncs page 0 only and is killed.
func TestNoEarlyWriteback(t *testing.T) {
	const size = 4 * pageSize
	cases := []struct {
		name  string
		other []string
		want  []byte
	}{
		// Without FOPEN_KEEP_CACHE the open would drop the page cache,
		// writing page 2 back first.
		{"another process opens the file", []string{"open m", "close"}, pageBytes('a', 0, 0, 0)},
		// Without explicit cache control the new mtime seen by stat would
		// drop the page cache. Page 3 reached lossyfs, so page 0's FSYNC
		// makes it durable (FSYNC has no range).
		{"another process writes another page", []string{"open m", "write 12288 4096 98", "close"}, pageBytes('a', 0, 0, 'b')},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			fsys := mountT(t)
			path := filepath.Join(fsys.Mountpoint(), "m")
			writeFile(t, path, size-1, []byte{0}, false)
			must(t, fsys.Sync())

			w := startChild(t, fsys.Mountpoint(), "open m", fmt.Sprintf("mmap %d", size),
				"fill 0 4096 97", "fill 8192 4096 99", "ready", "msync 0 4096 sync", "ready")
			w.expect("ready")
			startChild(t, fsys.Mountpoint(), c.other...).success()
			if _, err := os.Stat(path); err != nil {
				t.Fatal(err)
			}
			w.resume()
			w.expect("ready")
			w.kill()
			cutT(t, fsys)
			got, err := os.ReadFile(path)
			must(t, err)
			if !bytes.Equal(got, c.want) {
				t.Errorf("after the cut:\n got  %s\n want %s", pageSummary(got), pageSummary(c.want))
			}
		})
	}
}
