package sweep_test

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/mdjournal/mdjournal/journal"
	"github.com/mdjournal/mdjournal/ops/compress"
	"github.com/mdjournal/mdjournal/reader"
	"github.com/mdjournal/mdjournal/synth"
	"github.com/mdjournal/mdjournal/writer"
)

const (
	segSize    = 256 << 10
	readerName = "r"
)

func slow(d time.Duration) time.Duration {
	if raceEnabled {
		return 4 * d
	}
	return d
}

// fixture holds the journals every case starts from.
type fixture struct {
	base     string // segments 1–3 sealed, 4 active (clean), 5 prepared; named reader "r" in segment 2
	archived string // base with segments 1–3 compressed (.seg.zst)
	foreign  string // another journal, same shape, another journal id
}

// makeJournal writes an instrument definition and n frames (every tenth a
// quote, the others 2000-byte raw frames: four 256 KiB segments hold few
// frames, so every verb is quick), leaves a named reader positioned after
// frame pos, and closes cleanly.
func makeJournal(t *testing.T, n, pos int, salt int64) string {
	t.Helper()
	dir := t.TempDir()
	w, err := writer.Open(dir, writer.Options{SegmentSize: segSize})
	if err != nil {
		t.Fatal(err)
	}
	// The definition journalctl gen writes for instrument 1, so that gen
	// can append to the fixture.
	var d journal.InstrumentDef
	d.SetSymbol(synth.Symbol(1))
	d.PriceScale, d.TickSize = 4, 100
	if _, err := w.Append(journal.TypeInstrumentDef, 1, 1, d.Encode(make([]byte, 32))); err != nil {
		t.Fatal(err)
	}
	raw := make([]byte, 2000)
	for i := int64(1); i <= int64(n); i++ {
		typ, p := journal.TypeRaw, raw
		if i%10 == 0 {
			q := journal.Quote{BidPrice: 5000000 + i*100 + salt, BidQty: 100, AskPrice: 5000100 + i*100 + salt, AskQty: 200}
			typ, p = journal.TypeQuote, q.Encode(make([]byte, 32))
		} else {
			raw[i%2000] = byte(i + salt)
		}
		if _, err := w.Append(typ, 1, 1+i, p); err != nil {
			t.Fatal(err)
		}
	}
	r, err := reader.Open(dir, reader.Options{Name: readerName})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < pos; i++ {
		if _, ok, err := r.TryNext(); err != nil || !ok {
			t.Fatalf("named reader: %v %v", ok, err)
		}
	}
	r.Close()
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return dir
}

func newFixture(t *testing.T) *fixture {
	// The foreign journal has the same shape (the same seqs in the same
	// segments) but other prices and bytes: a reader that read one of its
	// segments as this journal's would print other content under this
	// journal's seqs.
	fx := &fixture{base: makeJournal(t, 470, 150, 0), foreign: makeJournal(t, 470, 10, 7)}
	fx.archived = t.TempDir()
	copyRegular(t, fx.base, fx.archived)
	if res, err := compress.All(fx.archived, compress.Options{}); err != nil || len(res) != 3 {
		t.Fatalf("compress the fixture: %d archived, %v", len(res), err)
	}
	for n := uint64(1); n <= 4; n++ {
		if _, err := os.Stat(journal.SegmentPath(fx.base, n)); err != nil {
			t.Fatalf("fixture: segment %d: %v", n, err)
		}
	}
	return fx
}

// copyRegular copies the regular files and directories below src into dst.
func copyRegular(t *testing.T, src, dst string) {
	t.Helper()
	err := filepath.Walk(src, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		target := filepath.Join(dst, rel)
		switch {
		case fi.IsDir():
			return os.MkdirAll(target, 0o750)
		case fi.Mode().IsRegular():
			in, err := os.Open(p)
			if err != nil {
				return err
			}
			defer in.Close()
			out, err := os.OpenFile(target, os.O_CREATE|os.O_EXCL|os.O_WRONLY, fi.Mode().Perm())
			if err != nil {
				return err
			}
			defer out.Close()
			_, err = io.Copy(out, in) // copy_file_range: the kernel copies
			return err
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// --- crafting -------------------------------------------------------------

func seg(n uint64) string     { return journal.SegmentName(n) }
func idx(n uint64) string     { return journal.IndexName(n) }
func archive(n uint64) string { return journal.ArchiveName(n) }

const posFile = "readers/" + readerName + ".pos"

func readAt(t *testing.T, path string, off int64, n int) []byte {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b := make([]byte, n)
	if _, err := f.ReadAt(b, off); err != nil && err != io.EOF {
		t.Fatal(err)
	}
	return b
}

func writeAt(t *testing.T, path string, off int64, b []byte) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt(b, off); err != nil {
		t.Fatal(err)
	}
}

// static rewrites a segment's static header [0,64) through edit, with a
// valid header_crc: impossible values a checksum does not catch.
type static struct {
	id, number, first uint64
	created           int64
	capacity          uint64
	epoch             uint32
}

func patchStatic(t *testing.T, path string, edit func(*static)) {
	t.Helper()
	h := journal.HeaderOf(readAt(t, path, 0, journal.SegmentHeaderSize))
	s := static{h.JournalID(), h.Number(), h.FirstSeq(), h.Created(), h.Capacity(), h.Epoch()}
	edit(&s)
	b := make([]byte, journal.SegOffCursor)
	journal.PutStaticFields(b, s.id, s.number, s.first, s.created, s.capacity, s.epoch)
	writeAt(t, path, 0, b)
}

// patchState writes a new, valid state record (generation + 1, into the
// slot that is not current), edited from the current one.
func patchState(t *testing.T, path string, edit func(*journal.State, journal.Header)) {
	t.Helper()
	page := readAt(t, path, 0, journal.SegmentHeaderSize)
	h := journal.HeaderOf(page)
	st, slot, ok := h.State()
	if !ok {
		t.Fatalf("%s has no valid state record", path)
	}
	edit(&st, h)
	st.Gen++
	off := journal.SegOffStateB
	if slot == 1 {
		off = journal.SegOffStateA
	}
	b := make([]byte, journal.StateSize)
	journal.PutState(b, st)
	writeAt(t, path, int64(off), b)
}

// plant replaces path by kind: empty (0 bytes), short (100 bytes), dir,
// symlink (to a valid copy of the file outside the journal: following it
// would work, and writing through it would damage the copy), fifo,
// devzero (a symlink to /dev/zero), device (a character device node).
func plant(t *testing.T, path, kind, victims string) (victim string) {
	t.Helper()
	old, _ := os.ReadFile(path)
	os.Remove(path)
	var err error
	switch kind {
	case "empty":
		err = os.WriteFile(path, nil, 0o640)
	case "short":
		b := old
		if len(b) < 100 {
			b = append(b, make([]byte, 100)...)
		}
		err = os.WriteFile(path, b[:100], 0o640)
	case "dir":
		err = os.Mkdir(path, 0o750)
	case "symlink":
		victim = filepath.Join(victims, fmt.Sprintf("victim-%d", time.Now().UnixNano()))
		if len(old) == 0 {
			old = []byte("precious")
		}
		if err = os.WriteFile(victim, old, 0o640); err == nil {
			err = os.Symlink(victim, path)
		}
	case "fifo":
		err = syscall.Mkfifo(path, 0o640)
	case "devzero":
		err = os.Symlink("/dev/zero", path)
	case "device":
		err = syscall.Mknod(path, syscall.S_IFCHR|0o640, int(1<<8|5)) // /dev/zero's numbers
	default:
		t.Fatalf("unknown plant %q", kind)
	}
	if err != nil {
		t.Skipf("cannot plant a %s at %s on this machine: %v (this case is not checked)", kind, path, err)
	}
	return victim
}

// --- cases ---------------------------------------------------------------

// sweepCase is one malformed input.
type sweepCase struct {
	name string
	from string // "base" or "archived"
	// build damages dir (a copy of the fixture); it returns the victim of
	// a planted symlink ("" if none).
	build func(t *testing.T, dir string, fx *fixture) string
	// targets: a message about this input must name one of these files.
	targets []string
	// flag: verify must exit 1 and name a target.
	flag bool
	// refuse: the readers (dump, tail, book, replay) must exit 1 naming a
	// target too: they would otherwise hand out another journal's frames
	// as this journal's.
	refuse bool
	// file: the file `inspect FILE` looks at (default targets[0]).
	file string
}

func cases() []sweepCase {
	var cs []sweepCase
	hdr := func(name string, n uint64, flag bool, edit func(*static)) {
		cs = append(cs, sweepCase{name: name, from: "base", targets: []string{seg(n)}, flag: flag,
			build: func(t *testing.T, dir string, fx *fixture) string {
				patchStatic(t, filepath.Join(dir, seg(n)), edit)
				return ""
			}})
	}
	hdr("header/capacity-0", 2, true, func(s *static) { s.capacity = 0 })
	hdr("header/capacity-2^63", 2, true, func(s *static) { s.capacity = 1 << 63 })
	hdr("header/capacity-not-4096-multiple", 2, true, func(s *static) { s.capacity = segSize + 100 })
	hdr("header/capacity-bigger-than-file", 2, true, func(s *static) { s.capacity = 2 * segSize })
	hdr("header/capacity-1GiB-last", 4, true, func(s *static) { s.capacity = 1 << 30 })
	hdr("header/first-seq-0-with-frames-middle", 2, true, func(s *static) { s.first = 0 })
	hdr("header/first-seq-0-with-frames-last", 4, true, func(s *static) { s.first = 0 })
	hdr("header/number-mismatch", 2, true, func(s *static) { s.number = 7 })
	hdr("header/foreign-journal-id", 3, true, func(s *static) { s.id ^= 0xdeadbeef })
	cs[len(cs)-1].refuse = true
	cs = append(cs, sweepCase{name: "header/epoch-backwards", from: "base", targets: []string{seg(2), seg(3)}, flag: true,
		build: func(t *testing.T, dir string, fx *fixture) string {
			patchStatic(t, filepath.Join(dir, seg(2)), func(s *static) { s.epoch = 7 }) // 3 then goes back to 1
			return ""
		}})
	st := func(name string, n uint64, edit func(*journal.State, journal.Header)) {
		cs = append(cs, sweepCase{name: name, from: "base", targets: []string{seg(n)}, flag: true,
			build: func(t *testing.T, dir string, fx *fixture) string {
				patchState(t, filepath.Join(dir, seg(n)), edit)
				return ""
			}})
	}
	st("state/durable-offset-past-capacity", 4, func(s *journal.State, h journal.Header) { s.DurableOffset = int64(h.Capacity()) + 4096 })
	st("state/durable-offset-unaligned", 4, func(s *journal.State, h journal.Header) { s.DurableOffset = 4100 })
	st("state/durable-seq-below-first-seq", 4, func(s *journal.State, h journal.Header) { s.DurableSeq = h.FirstSeq() - 5 })
	st("state/durable-offset-past-the-frames", 4, func(s *journal.State, h journal.Header) { s.DurableOffset += 4096 })
	st("state/sealed-without-end-marker", 4, func(s *journal.State, h journal.Header) {
		s.Flags |= journal.StateSealed
		s.LastSeq = s.DurableSeq
	})
	st("state/sealed-last-seq-wrong", 2, func(s *journal.State, h journal.Header) { s.LastSeq += 3 })

	// Special files where a journal file is expected.
	kinds := []string{"empty", "short", "dir", "symlink", "fifo", "devzero", "device"}
	where := []struct {
		name, from, file string
		flag             bool
	}{
		{"segment-middle", "base", seg(2), true},
		{"segment-last", "base", seg(4), true},
		{"segment-prepared", "base", seg(5), false},
		{"index", "base", idx(2), true},
		{"control-page", "base", journal.CtlFile, false},
		{"reader-position", "base", posFile, false},
		{"archive", "archived", archive(2), true},
		{"lock", "base", journal.LockFile, false},
	}
	for _, w := range where {
		for _, k := range kinds {
			flag := w.flag
			if w.name == "segment-prepared" && (k == "dir" || k == "symlink" || k == "fifo" || k == "devzero" || k == "device") {
				flag = true // not a regular file: an error naming the path (format.md §1)
			}
			cs = append(cs, sweepCase{name: "file/" + w.name + "/" + k, from: w.from, targets: []string{filepath.Base(w.file)}, flag: flag, file: w.file,
				build: func(t *testing.T, dir string, fx *fixture) string {
					return plant(t, filepath.Join(dir, w.file), k, t.TempDir())
				}})
		}
	}

	// Structure.
	cs = append(cs,
		sweepCase{name: "structure/segment-gap", from: "base", targets: []string{seg(2)}, flag: true, file: seg(3),
			build: func(t *testing.T, dir string, fx *fixture) string {
				os.Remove(filepath.Join(dir, seg(2)))
				os.Remove(filepath.Join(dir, idx(2)))
				return ""
			}},
		sweepCase{name: "structure/segment-renamed", from: "base", targets: []string{seg(3), seg(7)}, flag: true, file: seg(7),
			build: func(t *testing.T, dir string, fx *fixture) string {
				os.Rename(filepath.Join(dir, seg(3)), filepath.Join(dir, seg(7))) // a gap, and a number that is not the name's
				return ""
			}},
		sweepCase{name: "structure/segment-duplicated", from: "base", targets: []string{seg(3), seg(4)}, flag: true, file: seg(3),
			build: func(t *testing.T, dir string, fx *fixture) string {
				b, _ := os.ReadFile(filepath.Join(dir, seg(2)))
				os.WriteFile(filepath.Join(dir, seg(3)), b, 0o640) // segment 2's bytes named 3
				return ""
			}},
		sweepCase{name: "structure/mixed-journal-ids", from: "base", targets: []string{seg(3)}, flag: true, refuse: true,
			build: func(t *testing.T, dir string, fx *fixture) string {
				for _, n := range []string{seg(3), idx(3)} {
					b, _ := os.ReadFile(filepath.Join(fx.foreign, n))
					os.WriteFile(filepath.Join(dir, n), b, 0o640)
				}
				return ""
			}},
		sweepCase{name: "structure/mixed-journal-ids-last", from: "base", targets: []string{seg(4)}, flag: true, refuse: true,
			build: func(t *testing.T, dir string, fx *fixture) string {
				for _, n := range []string{seg(4), idx(4)} {
					b, _ := os.ReadFile(filepath.Join(fx.foreign, n))
					os.WriteFile(filepath.Join(dir, n), b, 0o640)
				}
				return ""
			}},
		sweepCase{name: "structure/foreign-last-segment-own-index", from: "base", targets: []string{seg(4), idx(4)}, flag: true, refuse: true,
			build: func(t *testing.T, dir string, fx *fixture) string {
				b, _ := os.ReadFile(filepath.Join(fx.foreign, seg(4)))
				os.WriteFile(filepath.Join(dir, seg(4)), b, 0o640)
				return ""
			}},
		sweepCase{name: "structure/foreign-index", from: "base", targets: []string{idx(2)}, flag: true,
			build: func(t *testing.T, dir string, fx *fixture) string {
				b, _ := os.ReadFile(filepath.Join(fx.foreign, idx(2)))
				os.WriteFile(filepath.Join(dir, idx(2)), b, 0o640)
				return ""
			}},
		sweepCase{name: "structure/garbage-segment-after-the-end", from: "base", targets: []string{seg(9)}, flag: true,
			build: func(t *testing.T, dir string, fx *fixture) string {
				b := make([]byte, segSize)
				for i := range b {
					b[i] = byte(i*7 + i>>8)
				}
				os.WriteFile(filepath.Join(dir, seg(9)), b, 0o640)
				return ""
			}},
		sweepCase{name: "structure/archive-and-raw-differ", from: "archived", targets: []string{seg(2), archive(2)}, flag: true, file: seg(2),
			build: func(t *testing.T, dir string, fx *fixture) string {
				b, _ := os.ReadFile(filepath.Join(fx.foreign, seg(2))) // a raw segment 2 of another journal beside the archive
				os.WriteFile(filepath.Join(dir, seg(2)), b, 0o640)
				return ""
			}},
		sweepCase{name: "structure/no-segments", from: "base", targets: []string{"no segment", "no journal"}, flag: true, file: journal.CtlFile,
			build: func(t *testing.T, dir string, fx *fixture) string {
				ms, _ := filepath.Glob(filepath.Join(dir, "*.seg"))
				for _, m := range ms {
					os.Remove(m)
				}
				return ""
			}},
	)
	return cs
}

// --- verbs ---------------------------------------------------------------

type verb struct {
	name     string
	role     string // journalctl or replay
	args     func(dir, file, scratch string) []string
	readOnly bool // changes nothing in the journal directory
	follow   bool // tail: runs until interrupted
}

var verbs = []verb{
	{name: "verify", readOnly: true, args: func(d, f, s string) []string { return []string{"verify", "--dir", d} }},
	{name: "dump", readOnly: true, args: func(d, f, s string) []string { return []string{"dump", "--dir", d, "--format", "json"} }},
	{name: "tail", readOnly: true, follow: true, args: func(d, f, s string) []string {
		return []string{"tail", "--dir", d, "--from", "start", "--format", "json", "--wait", "backoff"}
	}},
	{name: "tail-named", follow: true, args: func(d, f, s string) []string {
		return []string{"tail", "--dir", d, "--from", "start", "--format", "json", "--name", readerName, "--wait", "backoff"}
	}},
	{name: "book", readOnly: true, args: func(d, f, s string) []string { return []string{"book", "--dir", d, "--instrument", "1"} }},
	{name: "inspect-dir", readOnly: true, args: func(d, f, s string) []string { return []string{"inspect", "--dir", d} }},
	{name: "inspect-file", readOnly: true, args: func(d, f, s string) []string { return []string{"inspect", f} }},
	{name: "stat", readOnly: true, args: func(d, f, s string) []string { return []string{"stat", "--dir", d} }},
	{name: "recover-dry", readOnly: true, args: func(d, f, s string) []string { return []string{"recover", "--dir", d, "--dry-run"} }},
	{name: "recover", args: func(d, f, s string) []string { return []string{"recover", "--dir", d} }},
	{name: "compress", args: func(d, f, s string) []string { return []string{"compress", "--dir", d, "--level", "fastest"} }},
	{name: "prune", args: func(d, f, s string) []string { return []string{"prune", "--dir", d, "--keep-segments", "1"} }},
	{name: "gen", args: func(d, f, s string) []string {
		return []string{"gen", "--dir", d, "--count", "10", "--segment-size", "256KiB"}
	}},
	{name: "replay", role: "replay", readOnly: true, args: func(d, f, s string) []string {
		// Nobody consumes: --linger 0 ends the run as soon as everything
		// is published (a ring is one generation; replay removes it).
		return []string{"--dir", d, "--ring", filepath.Join(s, "ring"), "--linger", "0"}
	}},
}

// --- running ---------------------------------------------------------------

// procs bounds the processes running at once.
var procs = make(chan struct{}, 4)

type result struct {
	took     time.Duration
	cpu      time.Duration
	code     int
	signaled bool
	sig      syscall.Signal
	out      string // stdout and stderr
	stderr   string
	hung     string
}

// run runs one verb as a process with a hard deadline. A following verb
// (tail) is interrupted with SIGTERM once it printed a line, exited, or
// had three seconds; it must then end within the deadline.
func run(v verb, args []string) result {
	procs <- struct{}{}
	defer func() { <-procs }()
	self, _ := os.Executable()
	cmd := exec.Command(self, args...)
	role := v.role
	if role == "" {
		role = "journalctl"
	}
	cmd.Env = append(os.Environ(), execEnv+"="+role)
	var out, errb lockedBuffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Start(); err != nil {
		return result{hung: "start: " + err.Error()}
	}
	started := time.Now()
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	hard := time.After(slow(20 * time.Second))
	var r result
	if v.follow {
		soft := time.After(slow(3 * time.Second))
	wait:
		for {
			select {
			case <-done:
				break wait
			case <-soft:
				cmd.Process.Signal(syscall.SIGTERM)
				break wait
			case <-time.After(5 * time.Millisecond): // polling its output for a first line, bounded by soft
				if strings.Contains(out.String(), "\n") {
					cmd.Process.Signal(syscall.SIGTERM)
					break wait
				}
			}
		}
	}
	select {
	case <-done:
	case <-hard:
		cmd.Process.Kill()
		<-done
		r.hung = fmt.Sprintf("did not finish within %v (killed)", slow(20*time.Second))
	}
	r.took = time.Since(started)
	r.cpu = cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
	ws := cmd.ProcessState.Sys().(syscall.WaitStatus)
	r.signaled = ws.Signaled()
	if r.signaled {
		r.sig = ws.Signal()
	} else {
		r.code = ws.ExitStatus()
	}
	r.stderr = errb.String()
	r.out = out.String() + "\n" + r.stderr
	return r
}

type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.b.Len() < 1<<20 {
		l.b.Write(p)
	}
	return len(p), nil
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// --- directory snapshots ---------------------------------------------------

type entry struct {
	mode         os.FileMode
	size         int64
	ino          uint64
	mtime, ctime syscall.Timespec // any write or metadata change moves these
	link         string           // symlinks
}

// snapshot lists every entry below dir with lstat only: it never follows a
// symlink, opens a FIFO or reads a device.
func snapshot(t *testing.T, dir string) map[string]entry {
	t.Helper()
	m := map[string]entry{}
	filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err != nil || p == dir {
			return nil
		}
		rel, _ := filepath.Rel(dir, p)
		e := entry{mode: fi.Mode(), size: fi.Size()}
		if st, ok := fi.Sys().(*syscall.Stat_t); ok {
			e.ino, e.mtime, e.ctime = st.Ino, st.Mtim, st.Ctim
		}
		if fi.Mode()&os.ModeSymlink != 0 {
			e.link, _ = os.Readlink(p)
		}
		m[rel] = e
		return nil
	})
	return m
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// emptySpare: a segment file that was never activated and holds nothing
// (both state records invalid, cursor 4096, every byte past the header
// page zero): the writer removes such a trailing spare (format.md §8.2).
func emptySpare(b []byte) bool {
	if len(b) < 4096 || binary.LittleEndian.Uint64(b[64:]) != 4096 {
		return false
	}
	for _, off := range []int{128, 192} {
		r := b[off : off+64]
		if crc32.Checksum(r[:60], castagnoli) == binary.LittleEndian.Uint32(r[60:]) && binary.LittleEndian.Uint64(r) != 0 {
			return false
		}
	}
	for _, c := range b[4096:] {
		if c != 0 {
			return false
		}
	}
	return true
}

// --- the sweep -------------------------------------------------------------

// shortCases are the inputs -short runs (the race pass, where every
// process is race-instrumented and ten times slower): one or two of each
// kind. The full table runs without -short.
var shortCases = map[string]bool{
	"header/capacity-2^63": true, "header/number-mismatch": true, "state/durable-offset-unaligned": true,
	"file/segment-middle/fifo": true, "file/segment-last/symlink": true, "file/index/empty": true,
	"file/control-page/dir": true, "file/reader-position/device": true, "file/archive/short": true,
	"structure/mixed-journal-ids": true, "structure/foreign-index": true, "structure/segment-gap": true,
}

// TestSweep runs every verb on every malformed input (see the package
// comment for what each run must satisfy).
func TestSweep(t *testing.T) {
	fx := newFixture(t)
	var mu sync.Mutex
	matrix := map[string]map[string]string{}
	cpu := map[string]time.Duration{}
	for _, c := range cases() {
		if testing.Short() && !shortCases[c.name] {
			continue
		}
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			row := map[string]string{}
			// Build every verb's copy here (helpers may t.Fatal or t.Skip),
			// run the processes concurrently, check here.
			runs := make([]*caseRun, len(verbs))
			for i, v := range verbs {
				runs[i] = prepare(t, fx, c, v)
			}
			var wg sync.WaitGroup
			for _, cr := range runs {
				wg.Add(1)
				go func() { defer wg.Done(); cr.r = run(cr.v, cr.args) }()
			}
			wg.Wait()
			for _, cr := range runs {
				row[cr.v.name] = check(t, cr)
			}
			mu.Lock()
			for _, cr := range runs {
				cpu[cr.v.name] += cr.r.cpu
			}
			matrix[c.name] = row
			mu.Unlock()
		})
	}
	t.Cleanup(func() {
		// The outcome of every verb on every input: exit codes, for the
		// record (go test -v).
		var names []string
		for n := range matrix {
			names = append(names, n)
		}
		sort.Strings(names)
		var b strings.Builder
		fmt.Fprintf(&b, "%-44s", "case \\ verb")
		for _, v := range verbs {
			fmt.Fprintf(&b, " %-12s", v.name)
		}
		for _, n := range names {
			fmt.Fprintf(&b, "\n%-44s", n)
			for _, v := range verbs {
				fmt.Fprintf(&b, " %-12s", matrix[n][v.name])
			}
		}
		t.Logf("exit codes:\n%s", b.String())
		t.Logf("CPU time by verb: %v", cpu)
	})
}

// caseRun is one verb on one case.
type caseRun struct {
	c            sweepCase
	v            verb
	src, dir     string
	victim       string
	victimBefore []byte
	linkTarget   string // what the inspected file links to, if it is a symlink
	idxBefore    []byte
	before       map[string]entry
	args         []string
	r            result
}

// prepare builds the case in a fresh directory for one verb.
func prepare(t *testing.T, fx *fixture, c sweepCase, v verb) *caseRun {
	dir := filepath.Join(t.TempDir(), "journal")
	src := fx.base
	if c.from == "archived" {
		src = fx.archived
	}
	copyRegular(t, src, dir)
	victim := c.build(t, dir, fx)
	var victimBefore []byte
	if victim != "" {
		victimBefore, _ = os.ReadFile(victim)
	}
	file := c.file
	if file == "" {
		file = c.targets[0]
	}
	var idxBefore []byte
	if c.name == "structure/foreign-index" {
		idxBefore, _ = os.ReadFile(filepath.Join(dir, idx(2)))
	}
	link, _ := os.Readlink(filepath.Join(dir, file))
	return &caseRun{c: c, v: v, src: src, dir: dir, victim: victim, victimBefore: victimBefore, idxBefore: idxBefore, linkTarget: link,
		before: snapshot(t, dir), args: v.args(dir, filepath.Join(dir, file), t.TempDir())}
}

// check judges one verb's run on one case; it returns the exit code for
// the matrix.
func check(t *testing.T, cr *caseRun) string {
	c, v, r, args, dir, src := cr.c, cr.v, cr.r, cr.args, cr.dir, cr.src
	victim, victimBefore, idxBefore, before := cr.victim, cr.victimBefore, cr.idxBefore, cr.before
	after := snapshot(t, dir)
	what := fmt.Sprintf("%s: journalctl %s", c.name, strings.Join(args, " "))
	if v.role == "replay" {
		what = fmt.Sprintf("%s: replay %s", c.name, strings.Join(args, " "))
	}

	// No hang, no signal, no panic; exit 0, 1 or 2 — and 2 (usage) is
	// wrong for a valid command line.
	switch {
	case r.hung != "":
		t.Errorf("%s: %s", what, r.hung)
		return "HANG"
	case r.signaled && v.follow && r.sig == syscall.SIGTERM:
		// The SIGTERM the sweep sent arrived before the process installed
		// its handler (a loaded machine): interrupted, not a failure.
		return "TERM"
	case r.signaled:
		t.Errorf("%s: died of %v: %s", what, r.sig, excerpt(r.stderr))
		return "SIG"
	case strings.Contains(r.stderr, "panic:") || strings.Contains(r.stderr, "goroutine "):
		t.Errorf("%s: panicked (exit %d): %s", what, r.code, excerpt(r.stderr))
		return "PANIC"
	case r.code < 0 || r.code > 1:
		t.Errorf("%s: exit %d (0 ok, 1 data problem; 2 is a usage error, the command line is valid): %s", what, r.code, excerpt(r.out))
	}
	// Damage is exit 1 with a message naming the file. (inspect FILE reads
	// the path it is given, through a symlink too, and may name what the
	// link points at; a named reader refusing a reissue names seqs and
	// epochs.)
	named := namesAny(r.out, c.targets) ||
		(v.name == "inspect-file" && cr.linkTarget != "" && strings.Contains(r.out, cr.linkTarget)) ||
		(v.name == "tail-named" && strings.Contains(r.out, "were issued again"))
	if r.code == 1 && !named {
		t.Errorf("%s: exit 1 without naming %v: %s", what, c.targets, excerpt(r.out))
	}
	if c.refuse && (v.name == "dump" || v.name == "tail" || v.name == "book" || v.name == "replay") && (r.code != 1 || !namesAny(r.out, c.targets)) {
		t.Errorf("%s: a reader must refuse a segment of another journal (format.md §2.1: journal_id is shared by every file of one journal; verify and the writer refuse it): exit %d: %s", what, r.code, excerpt(r.out))
	}
	if v.name == "verify" && c.flag && (r.code != 1 || !namesAny(r.out, c.targets)) {
		t.Errorf("%s: verify must flag %v (exit 1 naming it): exit %d: %s", what, c.targets, r.code, excerpt(r.out))
	}
	// Never through a symlink.
	if victim != "" {
		now, err := os.ReadFile(victim)
		fi, lerr := os.Lstat(victim)
		if err != nil || lerr != nil || !fi.Mode().IsRegular() || string(now) != string(victimBefore) {
			t.Errorf("%s: the symlink's target %s was written or replaced", what, victim)
		}
	}
	// Never delete data: every regular file is still there, in place or
	// moved into orphaned-*/ (recover and the writer move aside, never
	// delete); only temporaries and empty spares may go.
	moved := map[string]bool{}
	for rel := range after {
		if strings.HasPrefix(rel, "orphaned-") {
			moved[filepath.Base(rel)] = true
		}
	}
	for rel, e := range before {
		if !e.mode.IsRegular() {
			continue
		}
		if _, ok := after[rel]; ok || moved[filepath.Base(rel)] || strings.HasSuffix(rel, ".tmp") {
			continue
		}
		// An empty spare segment, and its index, may be removed.
		if spare := strings.TrimSuffix(strings.TrimSuffix(rel, ".idx"), ".seg") + ".seg"; strings.HasSuffix(rel, ".seg") || strings.HasSuffix(rel, ".idx") {
			if b, err := os.ReadFile(filepath.Join(src, spare)); err == nil && emptySpare(b) {
				if _, err := os.Lstat(filepath.Join(dir, spare)); err != nil {
					continue
				}
			}
		}
		if v.name == "prune" || v.name == "compress" {
			continue // their job is to delete sealed segments (prune) or replace them by archives (compress)
		}
		t.Errorf("%s: %s was deleted (exit %d): %s", what, rel, r.code, excerpt(r.out))
	}
	// Read verbs change nothing (a tailing reader announces itself as a
	// futex waiter in journal.ctl, format.md §6).
	if v.readOnly {
		for rel, e := range before {
			if v.follow && rel == journal.CtlFile {
				continue
			}
			if a, ok := after[rel]; !ok || a != e {
				t.Errorf("%s: a read-only verb changed %s", what, rel)
			}
		}
		for rel := range after {
			if _, ok := before[rel]; !ok {
				t.Errorf("%s: a read-only verb created %s", what, rel)
			}
		}
	}
	// A foreign index is never "repaired" into one carrying the foreign id.
	if idxBefore != nil {
		now, err := os.ReadFile(filepath.Join(dir, idx(2)))
		if err == nil && len(now) >= 24 && string(now) != string(idxBefore) {
			own := readAt(t, filepath.Join(dir, seg(2)), 16, 8)
			if string(now[16:24]) != string(own) {
				t.Errorf("%s: the foreign index was rewritten with journal id %x, not the journal's %x", what, now[16:24], own)
			}
		}
	}
	return fmt.Sprint(r.code)
}

func namesAny(s string, names []string) bool {
	for _, n := range names {
		if strings.Contains(s, n) {
			return true
		}
	}
	return false
}

func excerpt(s string) string {
	s = strings.TrimSpace(s)
	if len(s) > 1200 {
		s = s[:1200] + "…"
	}
	return s
}
