package lossyfs

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// TestFlockAcrossProcesses: the journal's single-writer lock works on the
// mount. lossyfs does not ask for FUSE lock forwarding, so the kernel
// arbitrates flock(2) itself; this proves it does across processes.
func TestFlockAcrossProcesses(t *testing.T) {
	fsys := mountT(t)
	dir := fsys.Mountpoint()
	holder := startChild(t, dir, "open lock create", "flock", "ready", "close")
	holder.expect("flock ok")
	holder.expect("ready")

	second := startChild(t, dir, "open lock", "flock")
	second.expect("flock busy")
	second.success()

	holder.resume()
	holder.success()
	third := startChild(t, dir, "open lock", "flock")
	third.expect("flock ok")
	third.success()

	// A holder killed with SIGKILL releases the lock too.
	killed := startChild(t, dir, "open lock", "flock", "ready")
	killed.expect("flock ok")
	killed.expect("ready")
	busy := startChild(t, dir, "open lock", "flock")
	busy.expect("flock busy")
	busy.success()
	killed.kill()
	after := startChild(t, dir, "open lock", "flock")
	after.expect("flock ok")
	after.success()
}

// TestSmokeMsyncHalfThenKill is the campaign in miniature: a child creates a
// 1 MiB file, makes its size and name durable, stores a pattern through a
// shared mapping into all of it, msyncs the first half and is killed with
// SIGKILL. After cut and remount exactly the msynced half holds the pattern
// and the rest is zeroes.
func TestSmokeMsyncHalfThenKill(t *testing.T) {
	const size, half = 1 << 20, 1 << 19
	fsys := mountT(t)
	ch := startChild(t, fsys.Mountpoint(),
		"open seg create",
		fmt.Sprintf("fallocate 0 0 %d", size),
		"fsync",
		"fsyncdir .",
		fmt.Sprintf("mmap %d", size),
		fmt.Sprintf("pattern 0 %d", size),
		fmt.Sprintf("msync 0 %d sync", half),
		"ready")
	ch.expect("ready")
	ch.kill()
	fsys, st := cutT(t, fsys)

	got, err := os.ReadFile(filepath.Join(fsys.Mountpoint(), "seg"))
	must(t, err)
	want := make([]byte, size)
	for i := range half {
		want[i] = pat(i)
	}
	if len(got) != size {
		t.Fatalf("after the cut the file has %d bytes, want %d", len(got), size)
	}
	for off := 0; off < size; off += pageSize {
		if !bytes.Equal(got[off:off+pageSize], want[off:off+pageSize]) {
			t.Fatalf("after the cut page %d (offset %d) differs: got % x..., want % x...",
				off/pageSize, off, got[off:off+8], want[off:off+8])
		}
	}
	// The unsynced half really was stored and written back, then dropped.
	if lost := st.Pages + st.RejectedWriteBytes/pageSize; lost < (size-half)/pageSize {
		t.Errorf("only %d dropped pages reached lossyfs (%+v), want the %d unsynced ones", lost, st, (size-half)/pageSize)
	}
	t.Logf("stats: %+v", st)
}

// TestSparse: a 64 MiB fallocate'd file costs no page memory, even after a
// child prefaults the whole mapping writable (MADV_POPULATE_WRITE, as the
// journal writer does) and msyncs it, which writes 64 MiB of zero pages
// back to lossyfs.
func TestSparse(t *testing.T) {
	const size = 64 << 20
	fsys := mountT(t)
	ch := startChild(t, fsys.Mountpoint(),
		"open big create",
		fmt.Sprintf("fallocate 0 0 %d", size),
		fmt.Sprintf("mmap %d", size),
		"populate",
		fmt.Sprintf("msync 0 %d sync", size),
		"fill 5000 1 1",
		"msync 4096 4096 sync",
	)
	ch.success()
	fsys.mu.Lock()
	n := fsys.st.live[fsys.st.live[rootIno].entries["big"]]
	held, size64, written := len(n.pages), n.size, fsys.st.written
	durable := len(fsys.st.durable[n.ino].pages)
	fsys.mu.Unlock()
	if written < size {
		t.Errorf("lossyfs received %d bytes of WRITE, want the whole prefaulted mapping (%d)", written, size)
	}
	if size64 != size || held != 1 || durable != 1 {
		t.Errorf("size %d, %d live pages, %d durable pages held; want size %d and the one non-zero page", size64, held, durable, size)
	}
	st, err := os.Stat(filepath.Join(fsys.Mountpoint(), "big"))
	must(t, err)
	if st.Size() != size {
		t.Errorf("stat size %d, want %d", st.Size(), size)
	}
}

// TestCutWhileWriting: the durability promise under a cut at a random
// moment. A child appends 64-byte records through a mapping, msyncs each
// one's page and acknowledges it; the test cuts the power after some
// acknowledgements, while the child is still writing, then kills it. Every
// acknowledged record must survive; at most one more (msynced, killed before
// acknowledging) may; none after it.
func TestCutWhileWriting(t *testing.T) {
	const n = 2000
	const size = n * recordSize
	fsys := mountT(t)
	path := filepath.Join(fsys.Mountpoint(), "log")
	writeFile(t, path, size-1, []byte{0}, false)
	must(t, fsys.Sync())

	ch := startChild(t, fsys.Mountpoint(), "open log", fmt.Sprintf("mmap %d", size), fmt.Sprintf("records %d", n))
	for i := range 300 {
		ch.expect(fmt.Sprintf("ack %d", i))
	}
	fsys.PowerCut()
	ch.cmd.Process.Kill()
	acked := 299
	for line := range ch.lines { // drained to EOF: the child is dead
		var i int
		if _, err := fmt.Sscanf(line, "ack %d", &i); err == nil && i == acked+1 {
			acked = i
		} else if line != "eio" {
			t.Fatalf("child said %q after ack %d", line, acked)
		}
	}
	<-ch.done
	_, st := cutT(t, fsys)

	got, err := os.ReadFile(path)
	must(t, err)
	for i := range n {
		r := got[i*recordSize : (i+1)*recordSize]
		present := bytes.Equal(r, bytes.Repeat([]byte{rec(i)}, recordSize))
		switch {
		case i <= acked && !present:
			t.Fatalf("record %d was acknowledged (msync returned) but is not durable: % x", i, r[:8])
		case i > acked+1 && !bytes.Equal(r, make([]byte, recordSize)):
			t.Fatalf("record %d (last acknowledged %d) survived the cut: % x", i, acked, r[:8])
		}
	}
	t.Logf("%d records acknowledged at the cut; stats %+v", acked+1, st)
}
