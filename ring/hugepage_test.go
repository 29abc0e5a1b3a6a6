package ring

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/mdjournal/mdjournal/wait"
)

// TestHugePagesNotConfigured: asking for huge pages where there are none
// (tmpfs is not hugetlbfs) is a clear error, not a silent fallback.
func TestHugePagesNotConfigured(t *testing.T) {
	path := filepath.Join(ringDir(t), "huge")
	_, err := Create(path, 1<<20, Options{HugePages: true})
	if !errors.Is(err, ErrNoHugePages) || !strings.Contains(err.Error(), "hugetlbfs") {
		t.Fatalf("Create(HugePages) on tmpfs: %v, want ErrNoHugePages naming hugetlbfs", err)
	}
	_, err = NewProducer(path, 1<<20, ProducerOptions{Options: Options{HugePages: true}})
	if !errors.Is(err, ErrNoHugePages) {
		t.Fatalf("NewProducer(HugePages) on tmpfs: %v, want ErrNoHugePages", err)
	}
	if ents, _ := os.ReadDir(filepath.Dir(path)); len(ents) != 0 {
		t.Fatalf("left %v behind", ents)
	}
}

const nrHugePages = "/proc/sys/vm/nr_hugepages"

func readInt(path string) (int, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	return strconv.Atoi(strings.TrimSpace(string(b)))
}

func freeHugePages() int {
	f, err := os.Open("/proc/meminfo")
	if err != nil {
		return -1
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		if v, ok := strings.CutPrefix(s.Text(), "HugePages_Free:"); ok {
			n, _ := strconv.Atoi(strings.TrimSpace(v))
			return n
		}
	}
	return -1
}

// kernelPageSize reads the KernelPageSize of the mapping at addr from
// /proc/self/smaps: a mapping starts with a "lo-hi perms ..." line.
func kernelPageSize(addr uintptr) string {
	f, err := os.Open("/proc/self/smaps")
	if err != nil {
		return err.Error()
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	in := false
	for s.Scan() {
		line := s.Text()
		if rng, _, _ := strings.Cut(line, " "); strings.Contains(rng, "-") {
			lo, hi, _ := strings.Cut(rng, "-")
			a, e1 := strconv.ParseUint(lo, 16, 64)
			b, e2 := strconv.ParseUint(hi, 16, 64)
			if e1 == nil && e2 == nil {
				in = uint64(addr) >= a && uint64(addr) < b
				continue
			}
		}
		if v, ok := strings.CutPrefix(line, "KernelPageSize:"); ok && in {
			return strings.TrimSpace(v)
		}
	}
	return "not found"
}

// TestHugePages backs a ring with 2 MiB huge pages on a hugetlbfs mount the
// test makes (root only), with pages it reserves for the test: vm.nr_hugepages
// and the mount are restored/removed afterwards. It checks the clear error
// when no page is free, that the mapping really uses 2 MiB pages, and a
// stream between two processes through it.
func TestHugePages(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("SKIP (loud): huge pages need root here (mount hugetlbfs, set vm.nr_hugepages): not tested")
	}
	old, err := readInt(nrHugePages)
	if err != nil {
		t.Skipf("SKIP (loud): %s unreadable (%v): huge pages not tested", nrHugePages, err)
	}
	dir := t.TempDir()
	if err := unix.Mount("none", dir, "hugetlbfs", 0, "pagesize=2M"); err != nil {
		t.Skipf("SKIP (loud): cannot mount hugetlbfs (%v): huge pages not tested", err)
	}
	t.Cleanup(func() {
		if err := unix.Unmount(dir, 0); err != nil {
			t.Errorf("unmount hugetlbfs %s: %v", dir, err)
		}
	})
	setNr := func(n int) error { return os.WriteFile(nrHugePages, []byte(strconv.Itoa(n)), 0o644) }
	path := filepath.Join(dir, "ring")
	if freeHugePages() == 0 {
		_, err := Create(path, 1<<20, Options{HugePages: true})
		if !errors.Is(err, ErrNoHugePages) || !strings.Contains(err.Error(), "nr_hugepages") {
			t.Fatalf("Create with no free huge page: %v, want ErrNoHugePages naming vm.nr_hugepages", err)
		}
		t.Logf("no free huge page: %v", err)
	}
	if err := setNr(old + 4); err != nil {
		t.Skipf("SKIP (loud): cannot reserve huge pages (%v): huge pages not tested", err)
	}
	t.Cleanup(func() {
		if err := setNr(old); err != nil {
			t.Errorf("restore %s to %d: %v", nrHugePages, old, err)
		}
	})
	if freeHugePages() < 2 {
		t.Skipf("SKIP (loud): the kernel granted %d free huge pages: huge pages not tested", freeHugePages())
	}
	r, err := Create(path, 1<<20, Options{HugePages: true})
	if err != nil {
		t.Fatal(err)
	}
	if !r.HugePages() {
		t.Fatal("ring on hugetlbfs does not report huge pages")
	}
	if ps := kernelPageSize(r.mbase); ps != "2048 kB" {
		t.Fatalf("KernelPageSize of the ring mapping: %s, want 2048 kB", ps)
	}
	p, err := r.Producer(wait.Spin)
	if err != nil {
		t.Fatal(err)
	}
	c, err := r.Consumer(wait.Spin)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 100000 {
		msg := fmt.Appendf(nil, "huge %d", i)
		if err := p.Write(msg); err != nil {
			t.Fatal(err)
		}
		if b, err := c.Read(); err != nil || string(b) != string(msg) {
			t.Fatalf("record %d: %q %v", i, b, err)
		}
	}
	r.Close()
	os.Remove(path)
	// Two processes through a huge-page ring (a bare header page plus a
	// 1 MiB data area round up to one 2 MiB page).
	runStreamAt(t, filepath.Join(dir, "stream"), Options{HugePages: true}, messages(200_000), 1<<20, wait.Futex, wait.Futex)
	os.Remove(filepath.Join(dir, "stream"))
}
