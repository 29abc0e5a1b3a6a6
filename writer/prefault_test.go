package writer_test

import (
	"os"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/mdjournal/mdjournal/journal"
	"github.com/mdjournal/mdjournal/writer"
)

// TestPrefault: after Prefault returns, every page of the active segment
// past the cursor is in memory (mincore on a separate mapping of the file),
// so the appender's first frames take no page fault; on a closed writer it
// is ErrClosed.
func TestPrefault(t *testing.T) {
	dir := t.TempDir()
	const size = 32 << 20
	w, err := writer.Open(dir, writer.Options{SegmentSize: size})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Prefault(); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(journal.SegmentPath(dir, 1))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	m, err := unix.Mmap(int(f.Fd()), 0, size, unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Munmap(m)
	vec := make([]byte, size/4096)
	if _, _, e := unix.Syscall(unix.SYS_MINCORE, uintptr(unsafe.Pointer(&m[0])), uintptr(len(m)), uintptr(unsafe.Pointer(&vec[0]))); e != 0 {
		t.Fatal(e)
	}
	missing := 0
	for _, v := range vec {
		if v&1 == 0 {
			missing++
		}
	}
	if missing > 0 {
		t.Errorf("%d of %d pages of the active segment not in memory after Prefault", missing, len(vec))
	}
	w.Close()
	if err := w.Prefault(); err != journal.ErrClosed {
		t.Errorf("Prefault after Close: %v, want ErrClosed", err)
	}
}
