package ctest

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mdjournal/mdjournal/journal"
	"github.com/mdjournal/mdjournal/snapshot"
)

var (
	snapOnce sync.Once
	snapBin  string
	snapErr  error
)

// needSnap builds tests/snap.c against the shared implementation object.
func needSnap(t *testing.T) string {
	t.Helper()
	tl := needTools(t)
	snapOnce.Do(func() {
		snapBin = filepath.Join(work, "bin", "snap")
		snapErr = compile(snapBin, "gcc", cFlags, filepath.Join(cDir, "tests/snap.c"), tl.impl)
	})
	if snapErr != nil {
		t.Fatal(snapErr)
	}
	return snapBin
}

// snapDepth and snapIDs shape the files of these tests.
const snapDepth = 10

var snapSymbols = []string{"AAPL", "MSFT", "SPY", "A-LONGER-SYMBOL1"}

// bookAt is the book the Go writer publishes for instrument id at seq: level
// counts, prices and quantities all move with seq, so that a torn copy (half
// of one publish, half of another) cannot look like any published state.
func bookAt(id uint32, seq uint64) (bids, asks []snapshot.Level, tr snapshot.Trade, ts int64) {
	nb, na := int(seq%(snapDepth+1)), int((seq*7+uint64(id))%(snapDepth+1))
	for i := range nb {
		bids = append(bids, snapshot.Level{Price: journal.Price(int64(seq)*1000 - int64(i)), Qty: int64(seq) + int64(id)*100 + int64(i)})
	}
	for i := range na {
		asks = append(asks, snapshot.Level{Price: journal.Price(int64(seq)*1000 + 1 + int64(i)), Qty: int64(seq)*3 + int64(i)})
	}
	return bids, asks, snapshot.Trade{Price: journal.Price(int64(seq) * 999), Qty: int64(seq % 97), TS: int64(seq) * 11}, int64(seq) * 10
}

// bookLine formats a book exactly as tests/snap.c prints one.
func bookLine(id uint32, seq uint64, ts int64, scale int32, sym string, tr snapshot.Trade, bids, asks []snapshot.Level) string {
	var b strings.Builder
	fmt.Fprintf(&b, "id=%d seq=%d ts=%d scale=%d sym=%s trade=%d/%d/%d bids=", id, seq, ts, scale, sym, tr.Price, tr.Qty, tr.TS)
	for i, l := range bids {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, "%d@%d", l.Qty, l.Price)
	}
	b.WriteString(" asks=")
	for i, l := range asks {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, "%d@%d", l.Qty, l.Price)
	}
	return b.String()
}

func expectedLine(id uint32, seq uint64) string {
	bids, asks, tr, ts := bookAt(id, seq)
	return bookLine(id, seq, ts, int32(id%3), snapSymbols[id], tr, bids, asks)
}

func newSnap(t *testing.T) (string, *snapshot.Writer) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "book.snap")
	w, err := snapshot.Create(path, snapshot.Options{Depth: snapDepth, Capacity: 8, JournalID: 77})
	if err != nil {
		t.Fatal(err)
	}
	for id, s := range snapSymbols {
		var sym [journal.SymbolLen]byte
		copy(sym[:], s)
		if err := w.SetInstrument(uint32(id), sym, int32(id%3)); err != nil {
			t.Fatal(err)
		}
	}
	return path, w
}

func publishAt(t *testing.T, w *snapshot.Writer, id uint32, seq uint64) {
	bids, asks, tr, ts := bookAt(id, seq)
	if err := w.Publish(id, seq, ts, bids, asks, tr); err != nil {
		t.Error(err)
	}
}

// TestSnapshotTornReads: the Go writer publishes books of 4 instruments
// (counts, prices and quantities all changing with seq) as fast as it can
// while a C process (mdj_snap_read) copies them in a loop and prints every
// copy whose seq changed. Every printed copy must equal, field by field and
// level by level, the book the Go side published at that seq; seqs per
// instrument never go back; the last copy equals what Go's snapshot.Reader
// reads. A torn read (levels of one publish, counts or seq of another)
// would print a line that matches no published book. The writer keeps
// publishing until the C side has printed at least 1000 copies mid-stream,
// so the two really overlap.
func TestSnapshotTornReads(t *testing.T) {
	bin := needSnap(t)
	path, w := newSnap(t)
	defer w.Close()
	ids := []uint32{0, 1, 2, 3}
	const final = 1 << 40
	cmd := exec.Command(bin, "watch", path, strconv.FormatUint(final, 10), "0", "1", "2", "3")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	lines := make(chan string, 1024)
	go func() {
		sc := bufio.NewScanner(out)
		sc.Buffer(make([]byte, 1<<16), 1<<20)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	if l := <-lines; l != "ready" {
		t.Fatalf("C watcher: first line %q", l)
	}
	var (
		mu      sync.Mutex
		copies  int
		lastSeq = map[uint32]uint64{}
		bad     []string
		tail    []string
	)
	checked := make(chan struct{})
	go func() {
		defer close(checked)
		for l := range lines {
			if strings.HasPrefix(l, "last_applied=") || strings.HasPrefix(l, "error") {
				tail = append(tail, l)
				continue
			}
			var id uint32
			var seq uint64
			if _, err := fmt.Sscanf(l, "id=%d seq=%d", &id, &seq); err != nil {
				mu.Lock()
				bad = append(bad, "unparsable: "+l)
				mu.Unlock()
				continue
			}
			mu.Lock()
			copies++
			if seq < lastSeq[id] {
				bad = append(bad, fmt.Sprintf("instrument %d went back from seq %d to %d", id, lastSeq[id], seq))
			}
			lastSeq[id] = seq
			if seq != 0 && l != expectedLine(id, seq) {
				bad = append(bad, fmt.Sprintf("copy matches no published book:\n got %s\nwant %s", l, expectedLine(id, seq)))
			}
			mu.Unlock()
		}
	}()
	start := time.Now()
	deadline := start.Add(20 * time.Second)
	seq := uint64(0)
	for {
		seq++
		publishAt(t, w, ids[seq%4], seq)
		if seq%1024 == 0 {
			mu.Lock()
			n := copies
			mu.Unlock()
			if (n >= 1000 && seq >= 100000) || time.Now().After(deadline) {
				break
			}
		}
	}
	for _, id := range ids {
		publishAt(t, w, id, final+uint64(id))
	}
	<-checked // all output read before Wait closes the pipe
	if err := cmd.Wait(); err != nil {
		t.Fatalf("C watcher: %v", err)
	}
	if len(bad) > 0 {
		t.Fatalf("%d bad copies, first: %s", len(bad), bad[0])
	}
	t.Logf("Go published %d books in %v; the C reader printed %d distinct copies, all equal to a published book", seq+4, time.Since(start), copies)
	if copies < 1000 {
		t.Fatalf("only %d copies overlapped the writer within 20 s: the test did not exercise concurrent reads", copies)
	}
	// The final state: C's last copies against Go's own reader.
	r, err := snapshot.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	res := run(t, 10*time.Second, bin, "read", path, "0", "1", "2", "3")
	got := strings.Split(strings.TrimSpace(string(res.stdout)), "\n")
	if res.code != 0 || len(got) != 5 {
		t.Fatalf("snap read: exit %d\n%s", res.code, res.stdout)
	}
	for i, id := range ids {
		var b snapshot.Book
		if err := r.Read(id, &b); err != nil {
			t.Fatal(err)
		}
		want := bookLine(b.Instrument, b.Seq, b.TS, b.PriceScale, b.SymbolString(), b.LastTrade, b.Bids, b.Asks)
		if got[i] != want || want != expectedLine(id, final+uint64(id)) {
			t.Errorf("instrument %d: C reads\n%s\nGo reads\n%s", id, got[i], want)
		}
	}
	if want := fmt.Sprintf("last_applied=%d writer_pid=set journal_id=77 depth=%d capacity=8", final+3, snapDepth); got[4] != want {
		t.Errorf("header: got %q, want %q", got[4], want)
	}
}

// TestSnapshotLookup: C finds ids by symbol as Go's Reader.Lookup does,
// and reports a symbol nobody has as none.
func TestSnapshotLookup(t *testing.T) {
	bin := needSnap(t)
	path, w := newSnap(t)
	publishAt(t, w, 2, 5)
	w.Close()
	r, err := snapshot.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	for _, s := range append(snapSymbols, "NOPE", "A-LONGER-SYMBOL12") {
		id, ok, err := r.Lookup(s)
		if err != nil {
			t.Fatal(err)
		}
		want := "none"
		if ok {
			want = strconv.Itoa(int(id))
		}
		res := run(t, 10*time.Second, bin, "lookup", path, s)
		if first := strings.SplitN(string(res.stdout), "\n", 2)[0]; res.code != 0 || first != want {
			t.Errorf("lookup %q: C exit %d %q, Go %q", s, res.code, res.stdout, want)
		}
	}
	res := run(t, 10*time.Second, bin, "read", path, "2")
	if l := strings.SplitN(string(res.stdout), "\n", 2)[0]; l != expectedLine(2, 5) {
		t.Errorf("read after close: %q, want %q", l, expectedLine(2, 5))
	}
	if !strings.Contains(string(res.stdout), "writer_pid=0") {
		t.Errorf("a cleanly closed file must show writer_pid 0: %s", res.stdout)
	}
}

func patchFile(t *testing.T, path string, off int64, b []byte) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt(b, off); err != nil {
		t.Fatal(err)
	}
}

// cError parses "error CODE KIND OFFSET FILE: REASON".
func cError(t *testing.T, out []byte) (kind string, off int64, code int) {
	t.Helper()
	var file string
	if _, err := fmt.Sscanf(string(out), "error %d %s %d %s", &code, &kind, &off, &file); err != nil {
		t.Fatalf("not an error line: %q", out)
	}
	return kind, off, code
}

// TestSnapshotDamage: each damaged file is refused by the C reader with the
// same offset Go's snapshot.Open (or Read) reports, and the C kind named
// after the Go sentinel; a slot left odd (writer died mid-publish) is
// MDJ_ERR_STALLED after the stall timeout, skipped by lookup.
func TestSnapshotDamage(t *testing.T) {
	bin := needSnap(t)
	slot := int64(4096 + snapshot.SlotSize(snapDepth)*2)
	cases := []struct {
		name   string
		damage func(path string)
		kind   string
		goErr  error
	}{
		{"magic", func(p string) { patchFile(t, p, 0, []byte("X")) }, "bad_magic", journal.ErrBadMagic},
		{"version", func(p string) { patchFile(t, p, 8, []byte{1}) }, "version", journal.ErrVersion},
		{"checksum", func(p string) { patchFile(t, p, 20, []byte{0xEE}) }, "checksum", journal.ErrChecksum},
		{"short-header", func(p string) { os.Truncate(p, 100) }, "truncated", journal.ErrTruncated},
		{"short-file", func(p string) { os.Truncate(p, 4096+100) }, "truncated", journal.ErrTruncated},
		{"depth", func(p string) {
			b := make([]byte, 56)
			f, _ := os.Open(p)
			f.ReadAt(b, 0)
			f.Close()
			binary.LittleEndian.PutUint32(b[24:], 300)
			var crc [4]byte
			binary.LittleEndian.PutUint32(crc[:], crc32c(b))
			patchFile(t, p, 24, b[24:28])
			patchFile(t, p, 56, crc[:])
		}, "bad_header", journal.ErrBadHeader},
		{"counts", func(p string) { patchFile(t, p, slot+48, []byte{11}) }, "bad_header", journal.ErrBadHeader},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			path, w := newSnap(t)
			publishAt(t, w, 2, 9)
			w.Close()
			c.damage(path)
			var goOff int64 = -2
			r, err := snapshot.Open(path)
			if err == nil {
				var b snapshot.Book
				err = r.Read(2, &b)
				r.Close()
			}
			var ce *journal.CorruptionError
			if !errors.As(err, &ce) || !errors.Is(err, c.goErr) {
				t.Fatalf("Go: %v, want a CorruptionError wrapping %v", err, c.goErr)
			}
			goOff = ce.Offset
			res := run(t, 10*time.Second, bin, "read", path, "2")
			kind, off, _ := cError(t, res.stdout)
			if res.code != 1 || kind != c.kind || off != goOff {
				t.Errorf("C: exit %d %q; want kind %s at offset %d (Go: %v)", res.code, res.stdout, c.kind, goOff, err)
			}
		})
	}
	t.Run("stalled", func(t *testing.T) {
		path, w := newSnap(t)
		publishAt(t, w, 2, 9)
		w.Close()
		b := make([]byte, 8)
		f, _ := os.Open(path)
		f.ReadAt(b, slot)
		f.Close()
		binary.LittleEndian.PutUint64(b, binary.LittleEndian.Uint64(b)+1) // odd: mid-publish forever
		patchFile(t, path, slot, b)
		start := time.Now()
		res := run(t, 10*time.Second, bin, "-stall", "100", "read", path, "2")
		kind, off, code := cError(t, res.stdout)
		if res.code != 1 || code != -23 || kind != "other" || off != slot {
			t.Errorf("C: exit %d %q; want MDJ_ERR_STALLED (-23) at %d", res.code, res.stdout, slot)
		}
		if el := time.Since(start); el < 100*time.Millisecond {
			t.Errorf("stalled after %v, before the 100 ms stall timeout", el)
		}
		res = run(t, 10*time.Second, bin, "-stall", "100", "lookup", path, "SPY") // slot 2's symbol
		if _, _, code := cError(t, res.stdout); code != -23 {
			t.Errorf("lookup of the stalled slot's symbol: %q, want MDJ_ERR_STALLED", res.stdout)
		}
		res = run(t, 10*time.Second, bin, "-stall", "100", "lookup", path, "A-LONGER-SYMBOL1")
		if first := strings.SplitN(string(res.stdout), "\n", 2)[0]; res.code != 0 || first != "3" {
			t.Errorf("lookup past a stalled slot: exit %d %q, want 3", res.code, res.stdout)
		}
	})
	t.Run("truncated-under-reader", func(t *testing.T) {
		path, w := newSnap(t)
		publishAt(t, w, 2, 9)
		w.Close()
		cmd := exec.Command(bin, "pause", path, "2")
		in, _ := cmd.StdinPipe()
		outp, _ := cmd.StdoutPipe()
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		br := bufio.NewReader(outp)
		if l, _ := br.ReadString('\n'); l != "open\n" {
			t.Fatalf("C: %q", l)
		}
		if err := os.Truncate(path, 4096); err != nil {
			t.Fatal(err)
		}
		io.WriteString(in, "go\n")
		rest, _ := io.ReadAll(br)
		err := cmd.Wait()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 1 {
			t.Fatalf("C after truncation: %v (a signal here is the SIGBUS the guard must prevent)\n%s", err, rest)
		}
		kind, off, _ := cError(t, rest)
		if kind != "truncated" || off != slot {
			t.Errorf("C: %q; want truncated at the slot's first byte %d", rest, slot)
		}
	})
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

func crc32c(b []byte) uint32 { return crc32.Checksum(b, castagnoli) }

// TestReadmeSnippets compiles the README's snapshot and ring snippets (the
// second and later ```c blocks) with -Werror as C11 and C++17, inside a
// function with the helpers they name declared, so the documented calls
// match the header.
func TestReadmeSnippets(t *testing.T) {
	needCompilers(t)
	b, err := os.ReadFile(filepath.Join(cDir, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	blocks := strings.Split(string(b), "```c\n")[1:]
	if len(blocks) < 3 {
		t.Fatalf("README.md: %d ```c blocks, want the example and the snapshot and ring snippets", len(blocks))
	}
	var src strings.Builder
	src.WriteString("#include \"mdjournal.h\"\n#include <stdio.h>\n#include <string.h>\n" +
		"static void handle(const void *p, uint32_t n) { (void)p; (void)n; }\n" +
		"static void report(const mdj_error *e) { (void)e; }\n")
	for i, blk := range blocks[1:] {
		end := strings.Index(blk, "```\n")
		if end < 0 {
			t.Fatalf("README.md: unterminated ```c block %d", i+2)
		}
		fmt.Fprintf(&src, "void snippet%d(void) {\n    uint32_t len = 5; const char *msg = \"hello\";\n    (void)len; (void)msg;\n%s}\n", i, blk[:end])
	}
	dir := t.TempDir()
	f := filepath.Join(dir, "snippets.c")
	if err := os.WriteFile(f, []byte(src.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := compile(filepath.Join(dir, "c.o"), "gcc", append(append([]string{}, cFlags...), "-c"), f); err != nil {
		t.Error(err)
	}
	if err := compile(filepath.Join(dir, "cxx.o"), "g++", append(append([]string{"-x", "c++"}, cxxFlags...), "-c"), f); err != nil {
		t.Error(err)
	}
}
