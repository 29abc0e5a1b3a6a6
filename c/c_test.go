// Package ctest builds and runs the tests of the C header library
// c/mdjournal.h: its own unit tests in C, and C and C++ programs built on it
// whose output is compared byte for byte with the Go tools (journalctl)
// reading the same journals. It needs gcc and g++; without them every test
// here skips, saying so.
package ctest

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/mdjournal/mdjournal/journal"
	"github.com/mdjournal/mdjournal/reader"
	"github.com/mdjournal/mdjournal/writer"
)

// Compiler flags the brief requires the header to pass.
var (
	cFlags   = []string{"-std=c11", "-Wall", "-Wextra", "-Werror", "-O2"}
	cxxFlags = []string{"-std=c++17", "-Wall", "-Wextra", "-Werror", "-O2"}
)

var (
	work    string // scratch directory for binaries and journals, removed at exit
	cDir    string // this directory (the header's)
	repoDir string // the module root
)

func TestMain(m *testing.M) {
	var err error
	if cDir, err = filepath.Abs("."); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	repoDir = filepath.Dir(cDir)
	if work, err = os.MkdirTemp("", "mdj-ctest-"); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	// Traversable by the unprivileged user one test runs a reader as.
	_ = os.Chmod(work, 0o755)
	code := m.Run()
	os.RemoveAll(work)
	os.Exit(code)
}

// tools holds the built programs.
type tools struct {
	unit, unitCxx, unitSan string // unitSan is "" when the sanitizers are not available
	sanErr                 string
	dump, verify, fmtcheck string
	truncate, top, readme  string
	noalloc, journalctl    string
	impl                   string // tests/impl.c compiled with cFlags
}

var (
	buildOnce sync.Once
	built     tools
	buildErr  error
)

// needCompilers skips the test, loudly, when gcc or g++ is missing.
func needCompilers(t testing.TB) {
	t.Helper()
	for _, cc := range []string{"gcc", "g++"} {
		if _, err := exec.LookPath(cc); err != nil {
			t.Skipf("SKIPPED, NOT RUN: %s is not in PATH, so the C header library c/mdjournal.h was not built or tested (install gcc and g++)", cc)
		}
	}
}

// needTools builds every program once per test binary.
func needTools(t testing.TB) *tools {
	t.Helper()
	needCompilers(t)
	buildOnce.Do(func() { buildErr = buildAll() })
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return &built
}

func compile(out string, cc string, flags []string, srcs ...string) error {
	args := append(append(append([]string{}, flags...), "-I", cDir, "-o", out), srcs...)
	cmd := exec.Command(cc, args...)
	b, err := cmd.CombinedOutput()
	if err != nil || len(bytes.TrimSpace(b)) > 0 {
		return fmt.Errorf("%s %s: %v\n%s", cc, strings.Join(args, " "), err, b)
	}
	return nil
}

// buildAll compiles the implementation once per language and flavour
// (tests/impl.c: the stb pattern's one implementation file), the
// single-file examples and journalctl, then links the test programs (which
// include the header alone) against it.
func buildAll() error {
	bin := filepath.Join(work, "bin")
	if err := os.MkdirAll(bin, 0o755); err != nil {
		return err
	}
	readme, err := readmeExample()
	if err != nil {
		return err
	}
	readmeSrc := filepath.Join(bin, "readme_example.c")
	if err := os.WriteFile(readmeSrc, []byte(readme), 0o644); err != nil {
		return err
	}
	b := &built
	p := func(name string) string { return filepath.Join(bin, name) }
	src := func(rel string) string { return filepath.Join(cDir, rel) }
	impl, implCxx, implSan := p("impl.o"), p("impl_cxx.o"), p("impl_san.o")
	b.impl = impl
	b.unit, b.unitCxx, b.dump, b.verify = p("unit"), p("unit_cxx"), p("dump"), p("verify")
	b.fmtcheck, b.truncate, b.top, b.readme = p("fmtcheck"), p("truncate"), p("top_of_book"), p("readme_example")
	b.journalctl, b.noalloc = p("journalctl"), p("noalloc")
	sanFlags := []string{"-std=c11", "-Wall", "-Wextra", "-O1", "-g", "-fsanitize=address,undefined", "-fno-sanitize-recover=all"}
	if testing.Short() {
		b.unitCxx = ""
		b.sanErr = "not built in -short mode (run go test ./c/ without -short)"
	}
	phase1 := []func() error{
		func() error {
			return compile(impl, "gcc", append(append([]string{}, cFlags...), "-c"), src("tests/impl.c"))
		},
		func() error { return compile(b.top, "g++", cxxFlags, src("examples/top_of_book.cpp")) },
		func() error { return compile(b.readme, "gcc", cFlags, readmeSrc) },
		func() error {
			cmd := exec.Command("go", "build", "-o", b.journalctl, "./cmd/journalctl")
			cmd.Dir = repoDir
			if out, err := cmd.CombinedOutput(); err != nil {
				return fmt.Errorf("go build ./cmd/journalctl: %v\n%s", err, out)
			}
			return nil
		},
	}
	if !testing.Short() {
		phase1 = append(phase1,
			func() error {
				return compile(implCxx, "g++", append(append([]string{"-x", "c++"}, cxxFlags...), "-c"), src("tests/impl.c"))
			},
			func() error {
				// The sanitizers are optional: a toolchain without libasan
				// skips (loudly) that one test.
				if err := compile(implSan, "gcc", append(append([]string{}, sanFlags...), "-c"), src("tests/impl.c")); err != nil {
					b.sanErr = err.Error()
				}
				return nil
			})
	}
	if err := parallel(phase1); err != nil {
		return err
	}
	link := func(out, prog string) func() error {
		return func() error { return compile(out, "gcc", cFlags, src(prog), impl) }
	}
	phase2 := []func() error{
		link(b.unit, "tests/unit.c"), link(b.dump, "tests/dump.c"), link(b.verify, "tests/verify.c"),
		link(b.fmtcheck, "tests/fmtcheck.c"), link(b.truncate, "tests/truncate.c"), link(b.noalloc, "tests/noalloc.c"),
	}
	if !testing.Short() {
		phase2 = append(phase2, func() error {
			return compile(b.unitCxx, "g++", append([]string{"-x", "c++"}, cxxFlags...), src("tests/unit.c"), "-x", "none", implCxx)
		})
		if b.sanErr == "" {
			phase2 = append(phase2, func() error {
				san := p("unit_san")
				if err := compile(san, "gcc", sanFlags, src("tests/unit.c"), implSan); err != nil {
					b.sanErr = err.Error()
					return nil
				}
				b.unitSan = san
				return nil
			})
		}
	}
	return parallel(phase2)
}

// parallel runs jobs two at a time (the machine has 2 cores).
func parallel(jobs []func() error) error {
	errs := make([]error, len(jobs))
	var wg sync.WaitGroup
	sem := make(chan struct{}, 2)
	for i, job := range jobs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			errs[i] = job()
			<-sem
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// readmeExample is the first ```c block of README.md.
func readmeExample() (string, error) {
	b, err := os.ReadFile(filepath.Join(cDir, "README.md"))
	if err != nil {
		return "", err
	}
	s := string(b)
	i := strings.Index(s, "```c\n")
	if i < 0 {
		return "", errors.New("README.md has no ```c block")
	}
	s = s[i+5:]
	j := strings.Index(s, "```\n")
	if j < 0 {
		return "", errors.New("README.md: unterminated ```c block")
	}
	return s[:j], nil
}

// result is what a program did.
type result struct {
	stdout, stderr []byte
	code           int
	signal         syscall.Signal
}

func run(t *testing.T, timeout time.Duration, name string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("%s %v: did not finish within %v (stderr: %s)", name, args, timeout, errb.Bytes())
	}
	r := result{stdout: out.Bytes(), stderr: errb.Bytes()}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		ws := ee.Sys().(syscall.WaitStatus)
		if ws.Signaled() {
			r.signal = ws.Signal()
			r.code = -1
		} else {
			r.code = ws.ExitStatus()
		}
	} else if err != nil {
		t.Fatalf("%s %v: %v", name, args, err)
	}
	return r
}

// Journals shared by several tests (read-only).
var (
	genOnce, lobOnce sync.Once
	genDir, lobDir   string
	genErr, lobErr   error
)

func genJournal(t *testing.T, tl *tools) string {
	t.Helper()
	genOnce.Do(func() {
		genDir = filepath.Join(work, "gen")
		cmd := exec.Command(tl.journalctl, "gen", "--dir", genDir, "--count", "20000", "--instruments", "5", "--segment-size", "256KiB", "--clock", "synthetic")
		if out, err := cmd.CombinedOutput(); err != nil {
			genErr = fmt.Errorf("journalctl gen: %v\n%s", err, out)
		}
	})
	if genErr != nil {
		t.Fatal(genErr)
	}
	return genDir
}

func lobsterJournal(t *testing.T, tl *tools) string {
	t.Helper()
	lobOnce.Do(func() {
		lobDir = filepath.Join(work, "lobster")
		td := filepath.Join(repoDir, "testdata", "lobster")
		cmd := exec.Command(tl.journalctl, "import", "--dir", lobDir, "--format", "lobster", "--symbol", "AMZN", "--date", "2012-06-21",
			filepath.Join(td, "AMZN_2012-06-21_34200000_57600000_message_5.csv.gz"),
			"--orderbook", filepath.Join(td, "AMZN_2012-06-21_34200000_57600000_orderbook_5.csv.gz"),
			"--segment-size", "256KiB")
		if out, err := cmd.CombinedOutput(); err != nil {
			lobErr = fmt.Errorf("journalctl import: %v\n%s", err, out)
		}
	})
	if lobErr != nil {
		t.Fatal(lobErr)
	}
	return lobDir
}

func segmentCount(t *testing.T, dir string) int {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, "*.seg"))
	if err != nil {
		t.Fatal(err)
	}
	return len(m)
}

// sameBytes fails with the first differing line.
func sameBytes(t *testing.T, what string, got, want []byte) {
	t.Helper()
	if bytes.Equal(got, want) {
		return
	}
	gl, wl := bytes.Split(got, []byte("\n")), bytes.Split(want, []byte("\n"))
	for i := 0; i < len(gl) || i < len(wl); i++ {
		var g, w []byte
		if i < len(gl) {
			g = gl[i]
		}
		if i < len(wl) {
			w = wl[i]
		}
		if !bytes.Equal(g, w) {
			t.Fatalf("%s: line %d differs (C has %d lines, Go %d)\n C: %s\nGo: %s", what, i+1, len(gl), len(wl), g, w)
		}
	}
	t.Fatalf("%s: outputs differ", what)
}

func TestUnit(t *testing.T) {
	tl := needTools(t)
	for _, c := range []struct{ name, bin string }{{"c11", tl.unit}, {"cxx17", tl.unitCxx}} {
		t.Run(c.name, func(t *testing.T) {
			if c.bin == "" {
				t.Skip("SKIPPED in -short mode: the unit tests compiled as C++ run without -short")
			}
			r := run(t, time.Minute, c.bin)
			t.Logf("%s", r.stdout)
			if r.code != 0 {
				t.Fatalf("unit tests failed (exit %d):\n%s%s", r.code, r.stdout, r.stderr)
			}
		})
	}
	t.Run("sanitizers", func(t *testing.T) {
		if tl.unitSan == "" {
			t.Skipf("SKIPPED, NOT RUN: gcc cannot build with -fsanitize=address,undefined here:\n%s", tl.sanErr)
		}
		r := run(t, 2*time.Minute, tl.unitSan)
		if r.code != 0 {
			t.Fatalf("unit tests under ASan/UBSan failed (exit %d):\n%s%s", r.code, r.stdout, r.stderr)
		}
	})
}

// TestHeaderCompiles checks the stb pattern: one file holds the
// implementation, others see declarations only, across C and C++ (extern "C"
// linkage), and the header compiles warning-free as C11 and C++17, also with
// -Wpedantic, at -O0 and -O3.
func TestHeaderCompiles(t *testing.T) {
	needCompilers(t)
	dir := t.TempDir()
	write := func(name, s string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	impl := write("impl.c", "#define MDJOURNAL_IMPLEMENTATION\n#include \"mdjournal.h\"\n")
	user := write("user.cpp", "#include \"mdjournal.h\"\n#include <cstdio>\nint main() { std::printf(\"%08x\\n\", mdj_crc32c(\"123456789\", 9)); return 0; }\n")
	declC := write("decl.c", "#include \"mdjournal.h\"\nint main(void) { return mdj_payload_size(MDJ_TYPE_TRADE) == 32 ? 0 : 1; }\n")
	implCxx := write("impl.cpp", "#define MDJOURNAL_IMPLEMENTATION\n#include \"mdjournal.h\"\nint main() { return 0; }\n")
	late := write("late.c", "#include <stdio.h>\n#define MDJOURNAL_IMPLEMENTATION\n#include \"mdjournal.h\"\nint main(void) { return 0; }\n")
	objC := filepath.Join(dir, "impl.o")
	if err := compile(objC, "gcc", append(append([]string{}, cFlags...), "-Wpedantic", "-c"), impl); err != nil {
		t.Fatal(err)
	}
	exe := filepath.Join(dir, "mixed")
	if err := compile(exe, "g++", append(append([]string{}, cxxFlags...), "-Wpedantic"), user, objC); err != nil {
		t.Fatal(err)
	}
	if r := run(t, 10*time.Second, exe); r.code != 0 || string(r.stdout) != "e3069283\n" {
		t.Fatalf("C implementation called from C++: exit %d, %q", r.code, r.stdout)
	}
	// Including a system header first in the implementation file must fail
	// with the header's own explanation, not a cascade of errors.
	err := compile(filepath.Join(dir, "late"), "gcc", cFlags, late)
	if err == nil || !strings.Contains(err.Error(), "define _GNU_SOURCE (or include mdjournal.h first)") {
		t.Errorf("late include: want the header's #error, got %v", err)
	}
	if testing.Short() {
		t.Log("-short: the optimisation-level and MDJ_NO_SSE42 variants are not compiled")
		return
	}
	cBase, cxxBase := cFlags[:4], cxxFlags[:4] // the flags without -O2
	var wg sync.WaitGroup
	sem := make(chan struct{}, 2)
	for i, c := range []struct {
		cc    string
		flags []string
		src   string
	}{
		{"gcc", append(append([]string{}, cFlags...), "-Wpedantic"), declC},
		{"gcc", append(append([]string{}, cBase...), "-O0"), impl},
		{"gcc", append(append([]string{}, cBase...), "-O3"), impl},
		{"gcc", append(append([]string{}, cFlags...), "-DMDJ_NO_SSE42"), impl},
		{"g++", append(append([]string{}, cxxFlags...), "-Wpedantic"), implCxx},
		{"g++", append(append([]string{}, cxxBase...), "-O0"), implCxx},
		{"g++", append(append([]string{}, cxxBase...), "-O3"), implCxx},
	} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			if err := compile(filepath.Join(dir, fmt.Sprintf("out%d.o", i)), c.cc, append(c.flags, "-c"), c.src); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
}

func TestDumpMatchesGo(t *testing.T) {
	tl := needTools(t)
	gen := genJournal(t, tl)
	lob := lobsterJournal(t, tl)
	if n := segmentCount(t, gen); n < 3 {
		t.Fatalf("generated journal has %d segments; the test wants several rolls", n)
	}
	goDump := func(dir string, from string) []byte {
		r := run(t, time.Minute, tl.journalctl, "dump", "--dir", dir, "--format", "json", "--from", from)
		if r.code != 0 {
			t.Fatalf("journalctl dump %s --from %s: exit %d: %s", dir, from, r.code, r.stderr)
		}
		return r.stdout
	}
	cDump := func(dir string, from string) []byte {
		r := run(t, time.Minute, tl.dump, "--from", from, dir)
		if r.code != 0 {
			t.Fatalf("C dump %s --from %s: exit %d: %s", dir, from, r.code, r.stderr)
		}
		return r.stdout
	}
	full := goDump(gen, "start")
	lines := bytes.Split(bytes.TrimSuffix(full, []byte("\n")), []byte("\n"))
	if len(lines) < 20000 {
		t.Fatalf("Go dump of the generated journal has %d lines", len(lines))
	}
	tsOf := func(seq int) (string, int64) {
		var f struct {
			Seq uint64 `json:"seq"`
			TS  string `json:"ts"`
		}
		if err := json.Unmarshal(lines[seq-1], &f); err != nil || f.Seq != uint64(seq) {
			t.Fatalf("line %d of the Go dump: %v (seq %d)", seq, err, f.Seq)
		}
		tm, err := time.Parse(time.RFC3339Nano, f.TS)
		if err != nil {
			t.Fatal(err)
		}
		return f.TS, tm.UnixNano()
	}
	// A frame re-stated at the start of segment 3 shares the time of the
	// last frame before it: a time seek must find that earlier frame.
	seg3first := firstSeqOf(t, gen, 3)
	for _, c := range []struct{ name, goFrom, cFrom string }{
		{"start", "start", "start"},
		{"end", "end", "end"},
		{"seq:1", "seq:1", "seq:1"},
		{"seq:9000", "seq:9000", "seq:9000"},
		{"seq-segment-start", "seq:" + strconv.FormatUint(seg3first, 10), "seq:" + strconv.FormatUint(seg3first, 10)},
		{"seq-past-end", "seq:99999", "seq:99999"},
	} {
		t.Run("generated/"+c.name, func(t *testing.T) {
			sameBytes(t, "--from "+c.goFrom, cDump(gen, c.cFrom), goDump(gen, c.goFrom))
		})
	}
	for _, seq := range []int{1, 12345, int(seg3first), len(lines)} {
		s, ns := tsOf(seq)
		t.Run(fmt.Sprintf("generated/time-of-seq-%d", seq), func(t *testing.T) {
			got, want := cDump(gen, "ns:"+strconv.FormatInt(ns, 10)), goDump(gen, "time:"+s)
			if len(want) == 0 {
				t.Fatal("Go printed nothing: the case tests nothing")
			}
			sameBytes(t, "--from time:"+s, got, want)
		})
	}
	t.Run("generated/time-after-end", func(t *testing.T) {
		sameBytes(t, "--from time past the end", cDump(gen, "ns:1999999999999999999"), goDump(gen, "time:2033-05-18T03:33:19.999999999Z"))
	})
	t.Run("lobster/start", func(t *testing.T) {
		want := goDump(lob, "start")
		if bytes.Count(want, []byte("\n")) < 1000 {
			t.Fatalf("LOBSTER import has only %d frames", bytes.Count(want, []byte("\n")))
		}
		sameBytes(t, "LOBSTER --from start", cDump(lob, "start"), want)
	})
	t.Run("lobster/seq", func(t *testing.T) {
		sameBytes(t, "LOBSTER --from seq:7000", cDump(lob, "seq:7000"), goDump(lob, "seq:7000"))
	})
}

// firstSeqOf reads first_seq from segment n's header (format.md §2.1: u64 at 32).
func firstSeqOf(t *testing.T, dir string, n uint64) uint64 {
	t.Helper()
	b, err := os.ReadFile(journal.SegmentPath(dir, n))
	if err != nil {
		t.Fatal(err)
	}
	return binary.LittleEndian.Uint64(b[32:40])
}

var (
	errLine   = regexp.MustCompile(`^(?:journalctl )?dump: (.+?): offset (-?\d+): `)
	errNoOffs = regexp.MustCompile(`^(?:journalctl )?dump: (.*?)(?: \[\w+\])?\n?$`)
)

// sameError compares the damage two dumps reported: file and offset, or the
// whole message when it names no offset.
func sameError(goErr, cErr []byte) bool {
	gm, cm := errLine.FindSubmatch(goErr), errLine.FindSubmatch(cErr)
	if gm != nil && cm != nil {
		return filepath.Clean(string(gm[1])) == filepath.Clean(string(cm[1])) && string(gm[2]) == string(cm[2])
	}
	if gm != nil || cm != nil {
		return false
	}
	gm, cm = errNoOffs.FindSubmatch(goErr), errNoOffs.FindSubmatch(cErr)
	return gm != nil && cm != nil && string(gm[1]) == string(cm[1])
}

// TestDumpDamaged reads every damaged journal of testdata/journal with both
// readers: the same frames come out, then the same error (file and offset).
func TestDumpDamaged(t *testing.T) {
	tl := needTools(t)
	dirs, err := filepath.Glob(filepath.Join(repoDir, "testdata", "journal", "*"))
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, dir := range dirs {
		if st, err := os.Stat(dir); err != nil || !st.IsDir() {
			continue
		}
		n++
		for _, from := range []string{"start", "end"} {
			t.Run(filepath.Base(dir)+"/"+from, func(t *testing.T) {
				g := run(t, time.Minute, tl.journalctl, "dump", "--dir", dir, "--format", "json", "--from", from)
				c := run(t, time.Minute, tl.dump, "--from", from, dir)
				sameBytes(t, "frames before the damage", c.stdout, g.stdout)
				if (g.code == 0) != (c.code == 0) {
					t.Fatalf("Go exit %d (%s), C exit %d (%s)", g.code, g.stderr, c.code, c.stderr)
				}
				if g.code == 0 {
					return
				}
				if !sameError(g.stderr, c.stderr) {
					t.Fatalf("different damage:\nGo: %s\n C: %s", g.stderr, c.stderr)
				}
			})
		}
	}
	if n < 10 {
		t.Fatalf("found %d damaged journals in testdata/journal", n)
	}
}

type verifyJSON struct {
	OK       bool   `json:"ok"`
	Segments int    `json:"segments"`
	Frames   int64  `json:"frames"`
	FirstSeq uint64 `json:"first_seq"`
	LastSeq  uint64 `json:"last_seq"`
	Problems []struct {
		Severity string `json:"severity"`
		File     string `json:"file"`
		Offset   int64  `json:"offset"`
		Kind     string `json:"kind"`
		Reason   string `json:"reason"`
	} `json:"problems"`
}

// TestVerifyDamaged: mdj_verify finds what `journalctl verify` found in each
// damaged journal (the checked-in *.verify.json), problem by problem.
func TestVerifyDamaged(t *testing.T) {
	tl := needTools(t)
	files, err := filepath.Glob(filepath.Join(repoDir, "testdata", "journal", "*.verify.json"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 10 {
		t.Fatalf("found %d verify.json files", len(files))
	}
	for _, f := range files {
		name := strings.TrimSuffix(filepath.Base(f), ".verify.json")
		t.Run(name, func(t *testing.T) {
			var want, got verifyJSON
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			if err := json.Unmarshal(b, &want); err != nil {
				t.Fatal(err)
			}
			r := run(t, time.Minute, tl.verify, filepath.Join(repoDir, "testdata", "journal", name))
			if r.code == 2 {
				t.Fatalf("verify could not run: %s", r.stderr)
			}
			if err := json.Unmarshal(r.stdout, &got); err != nil {
				t.Fatalf("%v: %s", err, r.stdout)
			}
			if (r.code == 0) != want.OK || got.OK != want.OK {
				t.Errorf("ok: C %v (exit %d), Go %v", got.OK, r.code, want.OK)
			}
			if got.Segments != want.Segments || got.Frames != want.Frames || got.FirstSeq != want.FirstSeq || got.LastSeq != want.LastSeq {
				t.Errorf("summary: C segments %d frames %d seq %d..%d; Go segments %d frames %d seq %d..%d",
					got.Segments, got.Frames, got.FirstSeq, got.LastSeq, want.Segments, want.Frames, want.FirstSeq, want.LastSeq)
			}
			if len(got.Problems) != len(want.Problems) {
				t.Fatalf("C found %d problems, Go %d:\n C: %+v\nGo: %+v", len(got.Problems), len(want.Problems), got.Problems, want.Problems)
			}
			for i := range want.Problems {
				g, w := got.Problems[i], want.Problems[i]
				if g.File != w.File || g.Offset != w.Offset || g.Kind != w.Kind || g.Severity != w.Severity {
					t.Errorf("problem %d: C %s %s@%d %s; Go %s %s@%d %s", i, g.Severity, g.File, g.Offset, g.Kind, w.Severity, w.File, w.Offset, w.Kind)
				}
				if g.Reason != w.Reason {
					t.Errorf("problem %d reason:\n C: %s\nGo: %s", i, g.Reason, w.Reason)
				}
			}
		})
	}
	t.Run("clean-journals", func(t *testing.T) {
		for _, dir := range []string{genJournal(t, tl), lobsterJournal(t, tl)} {
			var want, got verifyJSON
			g := run(t, time.Minute, tl.journalctl, "verify", "--dir", dir, "--json")
			if err := json.Unmarshal(g.stdout, &want); err != nil {
				t.Fatalf("journalctl verify: %v: %s %s", err, g.stdout, g.stderr)
			}
			c := run(t, time.Minute, tl.verify, dir)
			if err := json.Unmarshal(c.stdout, &got); err != nil {
				t.Fatalf("%v: %s", err, c.stdout)
			}
			if !want.OK || !got.OK || c.code != 0 || got.Frames != want.Frames || got.LastSeq != want.LastSeq || got.Segments != want.Segments {
				t.Errorf("%s: C %+v, Go %+v", dir, got, want)
			}
		}
	})
}

// TestFormatMatchesGo compares mdj_format_price with journal.FormatPrice and
// mdj_format_time with Go's RFC3339Nano on edge and random values.
func TestFormatMatchesGo(t *testing.T) {
	tl := needTools(t)
	rng := rand.New(rand.NewPCG(1, 2))
	var in, want bytes.Buffer
	prices := []int64{0, 1, -1, 9, 10, -10, 5853300, -5853300, math.MaxInt64, math.MinInt64, math.MinInt64 + 1, 999999999999999999, 1e18}
	scales := []int32{math.MinInt32, -50000, -1, 0, 1, 2, 3, 4, 8, 17, 18, 19, 20, 21, 50000, math.MaxInt32}
	for _, p := range prices {
		for _, s := range scales {
			fmt.Fprintf(&in, "p %d %d\n", p, s)
			want.WriteString(journal.FormatPrice(p, s) + "\n")
		}
	}
	for range 3000 {
		p := int64(rng.Uint64()) >> rng.IntN(64)
		s := int32(rng.IntN(24)) - 2
		fmt.Fprintf(&in, "p %d %d\n", p, s)
		want.WriteString(journal.FormatPrice(p, s) + "\n")
	}
	times := []int64{0, 1, -1, 999999999, 1e9, -1e9, 1767364200000000000, 1340285400017459617, math.MaxInt64, math.MinInt64, 951782400000000000, 4107542399999999999}
	for range 3000 {
		times = append(times, int64(rng.Uint64()))
	}
	for _, ns := range times {
		fmt.Fprintf(&in, "t %d\n", ns)
		want.WriteString(time.Unix(0, ns).UTC().Format(time.RFC3339Nano) + "\n")
	}
	cmd := exec.Command(tl.fmtcheck)
	cmd.Stdin = &in
	got, err := cmd.Output()
	if err != nil {
		t.Fatalf("fmtcheck: %v", err)
	}
	sameBytes(t, "formatting", got, want.Bytes())
}

// ctlWaiters reads the waiters word of journal.ctl (format.md §6: u32 at 68).
func ctlWaiters(t *testing.T, dir string) uint32 {
	t.Helper()
	f, err := os.Open(filepath.Join(dir, journal.CtlFile))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	return waitersAt(t, f)
}

func waitersAt(t *testing.T, f *os.File) uint32 {
	t.Helper()
	var b [4]byte
	if _, err := f.ReadAt(b[:], journal.CtlOffWaiters); err != nil {
		t.Fatal(err)
	}
	return binary.LittleEndian.Uint32(b[:])
}

// follower is the C dump running with --follow. Its output goes to a file
// (it flushes whenever it has been idle for 10 ms), so the test can watch how
// far it got.
type follower struct {
	cmd     *exec.Cmd
	outPath string
	err     bytes.Buffer
	done    chan error
	read    int64  // output bytes counted so far
	lines   uint64 // lines in them
}

func startFollower(t *testing.T, tl *tools, dir string, asUser bool, args ...string) *follower {
	t.Helper()
	fl := &follower{done: make(chan error, 1), outPath: filepath.Join(t.TempDir(), "follower.out")}
	out, err := os.Create(fl.outPath)
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	fl.cmd = exec.Command(tl.dump, append(append([]string{"--follow", "--stats"}, args...), dir)...)
	fl.cmd.Stdout, fl.cmd.Stderr = out, &fl.err
	if asUser {
		fl.cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	}
	if err := fl.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { fl.done <- fl.cmd.Wait() }()
	t.Cleanup(func() {
		if fl.cmd.ProcessState == nil {
			fl.cmd.Process.Kill()
			<-fl.done
		}
	})
	return fl
}

// awaitSleeping waits until a reader is announced as a futex sleeper in
// journal.ctl (observable state, bounded).
func (fl *follower) awaitSleeping(t *testing.T, dir string) {
	t.Helper()
	ctl, err := os.Open(filepath.Join(dir, journal.CtlFile))
	if err != nil {
		t.Fatal(err)
	}
	defer ctl.Close()
	deadline := time.Now().Add(20 * time.Second)
	for waitersAt(t, ctl) == 0 {
		select {
		case err := <-fl.done:
			fl.done <- err
			t.Fatalf("the C reader exited: %v\n%s", err, fl.err.Bytes())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("the C reader never announced a futex wait; stderr: %s", fl.err.Bytes())
		}
		time.Sleep(100 * time.Microsecond) // poll interval, not synchronisation: the condition is the waiters word
	}
}

func (fl *follower) output(t *testing.T) []byte {
	t.Helper()
	b, err := os.ReadFile(fl.outPath)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// awaitLines waits until the follower has printed (and flushed, which it does
// when idle) n frames: observable state, bounded. It counts the lines of the
// output file incrementally.
func (fl *follower) awaitLines(t *testing.T, n uint64) {
	t.Helper()
	f, err := os.Open(fl.outPath)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	deadline := time.Now().Add(20 * time.Second)
	buf := make([]byte, 1<<16)
	for {
		for fl.lines < n {
			k, _ := f.ReadAt(buf, fl.read)
			if k == 0 {
				break
			}
			fl.read += int64(k)
			fl.lines += uint64(bytes.Count(buf[:k], []byte("\n")))
		}
		if fl.lines >= n {
			return
		}
		select {
		case err := <-fl.done:
			fl.done <- err
			t.Fatalf("the C reader exited: %v\n%s", err, fl.err.Bytes())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("the C reader did not print %d frames (%d so far); stderr: %s", n, fl.lines, fl.err.Bytes())
		}
		time.Sleep(time.Millisecond) // poll interval, not synchronisation: the condition is the output
	}
}

// stop interrupts the follower (it prints everything published first) and
// waits for it to exit.
func (fl *follower) stop(t *testing.T) {
	t.Helper()
	if err := fl.cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-fl.done:
		if err != nil {
			t.Fatalf("the C reader failed: %v\n%s", err, fl.err.Bytes())
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("the C reader did not stop; stderr: %s", fl.err.Bytes())
	}
}

var statsLine = regexp.MustCompile(`stats: frames=(\d+) rolls=(\d+) futex_waits=(\d+) sleeps=(\d+) wait=(\w+)`)

func (fl *follower) stats(t *testing.T) (frames, rolls, waits, sleeps int, wait string) {
	t.Helper()
	m := statsLine.FindSubmatch(fl.err.Bytes())
	if m == nil {
		t.Fatalf("no stats line in %s", fl.err.Bytes())
	}
	a := func(i int) int { n, _ := strconv.Atoi(string(m[i])); return n }
	return a(1), a(2), a(3), a(4), string(m[5])
}

// liveWriter appends a mix of every message type, with and without source
// trailers, hidden flags and statuses, to a journal with 256 KiB segments.
type liveWriter struct {
	t   *testing.T
	w   *writer.Writer
	rng *rand.Rand
	ts  int64
	n   int
}

func openLive(t *testing.T, dir string, perm os.FileMode) *liveWriter {
	t.Helper()
	w, err := writer.Open(dir, writer.Options{SegmentSize: 256 << 10, Perm: perm, CtlPerm: perm})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Close() })
	lw := &liveWriter{t: t, w: w, rng: rand.New(rand.NewPCG(7, 9)), ts: 1767364200000000000}
	for id, sym := range []string{"LIVE.A", "B-2", "C_3", "LONGSYMBOL123456"} {
		d := journal.InstrumentDef{TickSize: 1, PriceScale: []int32{2, 4, 0, 8}[id]}
		if err := d.SetSymbol(sym); err != nil {
			t.Fatal(err)
		}
		lw.append(journal.TypeInstrumentDef, uint32(id+1), d.Encode(nil), false)
	}
	return lw
}

func (lw *liveWriter) append(typ journal.MsgType, instr uint32, payload []byte, source bool) {
	lw.ts += int64(lw.rng.IntN(3000))
	var err error
	if source {
		_, err = lw.w.AppendSource(typ, instr, lw.ts, payload, lw.ts+1234, uint64(lw.n)+1000)
	} else {
		_, err = lw.w.Append(typ, instr, lw.ts, payload)
	}
	if err != nil {
		lw.t.Fatal(err)
	}
	lw.n++
}

func (lw *liveWriter) batch(k int) {
	r := lw.rng
	side := func() journal.Side { return journal.Side(1 + r.IntN(2)) }
	for range k {
		id := uint32(1 + r.IntN(5)) // instrument 5 is never defined: prices print as integers
		px := journal.Price(1000 + r.Int64N(100000))
		src := r.IntN(4) == 0
		switch r.IntN(13) {
		case 0:
			tr := journal.Trade{Price: px, Qty: 1 + r.Int64N(500), TradeID: r.Uint64(), Aggressor: journal.Side(r.IntN(3)), Flags: uint8(r.IntN(2))}
			lw.append(journal.TypeTrade, id, tr.Encode(nil), src)
		case 1:
			q := journal.Quote{BidPrice: px, BidQty: r.Int64N(900), AskPrice: px + 5, AskQty: r.Int64N(900)}
			lw.append(journal.TypeQuote, id, q.Encode(nil), src)
		case 2:
			l := journal.BookLevel{Price: -px, Qty: r.Int64N(900), Side: journal.Side(r.IntN(3))}
			lw.append(journal.TypeBookLevel, id, l.Encode(nil), src)
		case 3, 4, 5, 6:
			o := journal.Order{OrderID: r.Uint64(), Price: px, Qty: 1 + r.Int64N(300), Side: side(), Flags: uint8(r.IntN(2))}
			typ := []journal.MsgType{journal.TypeOrderAdd, journal.TypeOrderCancel, journal.TypeOrderDelete, journal.TypeOrderExecute}[r.IntN(4)]
			lw.append(typ, id, o.Encode(nil), src)
		case 7:
			p := make([]byte, r.IntN(120))
			for i := range p {
				p[i] = byte(r.Uint32())
			}
			lw.append(journal.TypeRaw, id, p, src)
		case 8:
			st := journal.TradingStatus{Status: uint8(1 + r.IntN(4))}
			copy(st.Reason[:], "HLT")
			lw.append(journal.TypeTradingStatus, uint32(1+r.IntN(4)), st.Encode(nil), src)
		case 9:
			g := journal.Gap{First: r.Uint64(), Count: 1 + r.Uint64N(9)}
			copy(g.Source[:], "SESSION-A")
			lw.append(journal.TypeGap, 0, g.Encode(nil), src)
		case 10:
			o := journal.OrderRequest{OrderID: r.Uint64(), Price: px, Qty: 10, Side: side(), Strategy: 3, TriggerSeq: 1, TriggerTS: lw.ts, Seen: lw.ts, Decided: lw.ts}
			lw.append(journal.TypeOrderRequest, id, o.Encode(nil), src)
		case 11:
			d := journal.RiskDecision{OrderID: r.Uint64(), Price: px, Qty: 10, Side: side(), Verdict: 2, Reason: 7, Strategy: 3, TriggerSeq: 1, Requested: lw.ts, Received: lw.ts, Decided: lw.ts}
			lw.append(journal.TypeRiskDecision, id, d.Encode(nil), src)
		default:
			lw.append(journal.TypeHeartbeat, 0, nil, src)
		}
	}
}

// TestLiveFollow: a Go writer appends while the C reader follows the journal
// with futex waits across several rolls. Before each batch the writer waits
// until the reader is announced as a sleeper in journal.ctl, so every batch
// has to wake it; at the end its output must equal journalctl dump of the
// whole journal: no frame missed, none repeated.
func TestLiveFollow(t *testing.T) {
	tl := needTools(t)
	dir := filepath.Join(t.TempDir(), "live")
	lw := openLive(t, dir, 0)
	lw.batch(200)
	fl := startFollower(t, tl, dir, false, "--wait", "futex")
	batches := 0
	for lw.n < 20000 {
		// The reader printed every frame so far (it flushes only after an
		// idle futex wait), and then announced itself again: the next batch
		// has to wake a sleeping reader. (waiters alone can still show the
		// announcement the previous batch woke.)
		fl.awaitLines(t, lw.w.LastSeq())
		fl.awaitSleeping(t, dir)
		lw.batch(100 + lw.rng.IntN(900))
		batches++
	}
	fl.stop(t)
	frames, rolls, waits, _, wait := fl.stats(t)
	if wait != "futex" {
		t.Fatalf("the reader used %s, not futex", wait)
	}
	if rolls < 3 || waits < batches {
		t.Fatalf("rolls %d (want >= 3), futex waits %d (want >= %d batches)", rolls, waits, batches)
	}
	want := run(t, time.Minute, tl.journalctl, "dump", "--dir", dir, "--format", "json")
	if uint64(frames) != lw.w.LastSeq() {
		t.Errorf("C reader returned %d frames, the writer wrote %d", frames, lw.w.LastSeq())
	}
	sameBytes(t, "live follow", fl.output(t), want.stdout)
	t.Logf("%d frames, %d rolls, %d batches, %d futex waits", frames, rolls, batches, waits)
}

// TestLiveFollowBackoff: a reader that cannot write journal.ctl (it runs as
// another user, or the file is read-only) backs off instead of futex-waiting,
// and still reads every frame.
func TestLiveFollowBackoff(t *testing.T) {
	tl := needTools(t)
	base, err := os.MkdirTemp(work, "backoff-")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(base, 0o755); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(base, "live")
	lw := openLive(t, dir, 0o644)
	asUser := os.Getuid() == 0
	if asUser {
		// Root can write any file: run the reader as nobody, which can read
		// the journal but not write journal.ctl (0644, owned by root).
		if err := os.Chmod(dir, 0o755); err != nil {
			t.Fatal(err)
		}
	} else if err := os.Chmod(filepath.Join(dir, journal.CtlFile), 0o444); err != nil {
		t.Fatal(err)
	}
	lw.batch(300)
	fl := startFollower(t, tl, dir, asUser, "--wait", "futex")
	// No waiter is ever announced here, so progress is observed on the
	// reader's output instead: it printed every frame so far (and, having
	// flushed on idle, backed off).
	for lw.n < 12000 {
		fl.awaitLines(t, lw.w.LastSeq())
		lw.batch(500 + lw.rng.IntN(1500))
	}
	fl.stop(t)
	frames, rolls, waits, sleeps, wait := fl.stats(t)
	if wait != "backoff" || waits != 0 || sleeps == 0 {
		t.Fatalf("want backoff with sleeps and no futex wait, got wait=%s futex_waits=%d sleeps=%d", wait, waits, sleeps)
	}
	if rolls < 2 {
		t.Fatalf("only %d rolls", rolls)
	}
	if ctlWaiters(t, dir) != 0 {
		t.Fatal("waiters is not 0: the reader wrote the control page")
	}
	want := run(t, time.Minute, tl.journalctl, "dump", "--dir", dir, "--format", "json")
	if uint64(frames) != lw.w.LastSeq() {
		t.Errorf("C reader returned %d frames, the writer wrote %d", frames, lw.w.LastSeq())
	}
	sameBytes(t, "live follow with backoff", fl.output(t), want.stdout)
}

// TestFollowFromEnd: a reader opened at the end returns exactly the frames
// appended after it was positioned (it is positioned once it sleeps).
func TestFollowFromEnd(t *testing.T) {
	tl := needTools(t)
	dir := filepath.Join(t.TempDir(), "end")
	lw := openLive(t, dir, 0)
	lw.batch(3000)
	fl := startFollower(t, tl, dir, false, "--wait", "futex", "--from", "end")
	fl.awaitSleeping(t, dir)
	last := lw.w.LastSeq()
	lw.batch(6000)
	fl.stop(t)
	want := run(t, time.Minute, tl.journalctl, "dump", "--dir", dir, "--format", "json", "--from", "seq:"+strconv.FormatUint(last+1, 10))
	if len(want.stdout) == 0 {
		t.Fatal("nothing appended after the reader was positioned")
	}
	sameBytes(t, "follow from end", fl.output(t), want.stdout)
}

func copyDir(t *testing.T, src, dst string) {
	t.Helper()
	ents, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(dst, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if !e.Type().IsRegular() {
			continue
		}
		b, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dst, e.Name()), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// TestTruncatedUnderReader: a segment truncated under a reader's mapping,
// and journal.ctl truncated while it sleeps on the futex, are errors naming
// the file and offset; without the guard the same truncation kills the
// process with SIGBUS (so it is the guard that turns it into an error).
func TestTruncatedUnderReader(t *testing.T) {
	tl := needTools(t)
	gen := genJournal(t, tl)
	for _, c := range []struct {
		name string
		args []string
	}{{"segment", []string{"seg"}}, {"control-page", []string{"ctl"}}} {
		t.Run(c.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "j")
			copyDir(t, gen, dir)
			r := run(t, time.Minute, tl.truncate, append(c.args, dir)...)
			if r.code != 0 {
				t.Fatalf("exit %d signal %v:\n%s%s", r.code, r.signal, r.stdout, r.stderr)
			}
			t.Logf("%s", r.stdout)
		})
	}
	t.Run("segment-without-guard", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "j")
		copyDir(t, gen, dir)
		r := run(t, time.Minute, tl.truncate, "seg", dir, "--no-guard")
		if r.signal != syscall.SIGBUS {
			t.Fatalf("want death by SIGBUS without the guard, got exit %d signal %v:\n%s%s", r.code, r.signal, r.stdout, r.stderr)
		}
	})
}

// TestNoAlloc: reading a journal (rolls included), decoding, formatting and
// waiting allocate nothing once the catalogue holds the instruments (malloc
// is interposed in the C program, libc's own allocations counted too).
func TestNoAlloc(t *testing.T) {
	tl := needTools(t)
	r := run(t, time.Minute, tl.noalloc, genJournal(t, tl))
	if r.code != 0 {
		t.Fatalf("exit %d: %s%s", r.code, r.stdout, r.stderr)
	}
	t.Logf("%s", r.stdout)
}

type bookJSON struct {
	Instrument uint32 `json:"instrument"`
	Symbol     string `json:"symbol"`
	Seq        uint64 `json:"seq"`
	Bids       []struct {
		Price string `json:"price"`
		Qty   int64  `json:"qty"`
	} `json:"bids"`
	Asks []struct {
		Price string `json:"price"`
		Qty   int64  `json:"qty"`
	} `json:"asks"`
}

type topJSON struct {
	Instrument uint32 `json:"instrument"`
	Symbol     string `json:"symbol"`
	Seq        uint64 `json:"seq"`
	Bid        *struct {
		Price string `json:"price"`
		Qty   int64  `json:"qty"`
	} `json:"bid"`
	Ask *struct {
		Price string `json:"price"`
		Qty   int64  `json:"qty"`
	} `json:"ask"`
}

// TestTopOfBook runs the C++ example over two journals and compares every
// instrument's final best bid and ask (and the seq the book reflects) with
// `journalctl book --depth 1 --json`.
func TestTopOfBook(t *testing.T) {
	tl := needTools(t)
	for _, dir := range []string{genJournal(t, tl), lobsterJournal(t, tl)} {
		t.Run(filepath.Base(dir), func(t *testing.T) {
			r := run(t, time.Minute, tl.top, "--quiet", "--exit-when-idle", dir)
			if r.code != 0 {
				t.Fatalf("top_of_book: exit %d: %s", r.code, r.stderr)
			}
			n := 0
			sc := bufio.NewScanner(bytes.NewReader(r.stdout))
			for sc.Scan() {
				var got topJSON
				var want bookJSON
				if err := json.Unmarshal(sc.Bytes(), &got); err != nil {
					t.Fatalf("%v: %s", err, sc.Bytes())
				}
				g := run(t, time.Minute, tl.journalctl, "book", "--dir", dir, "--instrument", strconv.FormatUint(uint64(got.Instrument), 10), "--depth", "1", "--json")
				if err := json.Unmarshal(g.stdout, &want); err != nil {
					t.Fatalf("journalctl book: %v: %s %s", err, g.stdout, g.stderr)
				}
				if got.Symbol != want.Symbol || got.Seq != want.Seq {
					t.Errorf("instrument %d: C++ %s seq %d, Go %s seq %d", got.Instrument, got.Symbol, got.Seq, want.Symbol, want.Seq)
				}
				if (got.Bid == nil) != (len(want.Bids) == 0) || got.Bid != nil && (got.Bid.Price != want.Bids[0].Price || got.Bid.Qty != want.Bids[0].Qty) {
					t.Errorf("instrument %d best bid: C++ %+v, Go %+v", got.Instrument, got.Bid, want.Bids)
				}
				if (got.Ask == nil) != (len(want.Asks) == 0) || got.Ask != nil && (got.Ask.Price != want.Asks[0].Price || got.Ask.Qty != want.Asks[0].Qty) {
					t.Errorf("instrument %d best ask: C++ %+v, Go %+v", got.Instrument, got.Ask, want.Asks)
				}
				n++
			}
			if n == 0 {
				t.Fatal("top_of_book printed no instrument")
			}
		})
	}
}

// TestReadmeExample runs the README's example (compiled with -Werror) and
// compares its lines with the trades of journalctl's dump.
func TestReadmeExample(t *testing.T) {
	tl := needTools(t)
	gen := genJournal(t, tl)
	r := run(t, time.Minute, tl.readme, gen)
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	g := run(t, time.Minute, tl.journalctl, "dump", "--dir", gen, "--format", "json")
	var want bytes.Buffer
	sc := bufio.NewScanner(bytes.NewReader(g.stdout))
	for sc.Scan() {
		var f struct {
			TS     string `json:"ts"`
			Type   string `json:"type"`
			Symbol string `json:"symbol"`
			Price  string `json:"price"`
			Qty    int64  `json:"qty"`
		}
		if err := json.Unmarshal(sc.Bytes(), &f); err != nil {
			t.Fatal(err)
		}
		if f.Type == "trade" {
			fmt.Fprintf(&want, "%s %s %d @ %s\n", f.TS, f.Symbol, f.Qty, f.Price)
		}
	}
	if want.Len() == 0 {
		t.Fatal("the journal has no trade")
	}
	sameBytes(t, "README example", r.stdout, want.Bytes())
}

// segFrames lists the frame offsets of a segment file image (commit words
// followed from 4096 until an empty one).
func segFrames(b []byte) []int {
	var offs []int
	for off := journal.SegmentHeaderSize; off+8 <= len(b); {
		size := int(binary.LittleEndian.Uint32(b[off+4:]))
		if size == 0 {
			break
		}
		offs = append(offs, off)
		off += journal.Align8(size)
	}
	return offs
}

// refreshFrame recomputes the checksum of the frame at off (Go's
// implementation is the reference here, never the C code under test).
func refreshFrame(b []byte, off int) {
	size := int(binary.LittleEndian.Uint32(b[off+4:]))
	binary.LittleEndian.PutUint32(b[off:], journal.FrameCRC(b[off:off+size], size))
}

func refreshHeader(b []byte) {
	binary.LittleEndian.PutUint32(b[60:], journal.CRC32C(b[:60]))
}

// lastActivated is the number of the last segment whose header has a
// first seq (format.md §2.1: u64 at 32; prepared segments have 0).
func lastActivated(t *testing.T, dir string) uint64 {
	t.Helper()
	var last uint64
	for n := uint64(1); ; n++ {
		b, err := os.ReadFile(journal.SegmentPath(dir, n))
		if errors.Is(err, os.ErrNotExist) {
			return last
		}
		if err != nil {
			t.Fatal(err)
		}
		if binary.LittleEndian.Uint64(b[32:40]) != 0 {
			last = n
		}
	}
}

// frameOfType is the offset of the n-th frame of type typ in the image.
func frameOfType(t *testing.T, b []byte, typ journal.MsgType, n int) int {
	t.Helper()
	for _, off := range segFrames(b) {
		if journal.MsgType(binary.LittleEndian.Uint16(b[off+24:])) == typ {
			if n == 0 {
				return off
			}
			n--
		}
	}
	t.Fatalf("no frame of type %v", typ)
	return 0
}

// TestCraftedDamage damages copies of a generated journal in ways the
// checked-in testdata does not (every frame and header rule of format.md
// §2-§5) and checks that the C reader stops at the same frame with the same
// file and offset as journalctl dump, and that mdj_verify reports what
// journalctl verify reports (severity, file, offset, kind).
func TestCraftedDamage(t *testing.T) {
	tl := needTools(t)
	gen := genJournal(t, tl)
	seg := func(n uint64) string { return filepath.Base(journal.SegmentPath("", n)) }
	edit := func(name string, f func(b []byte)) func(t *testing.T, dir string) {
		return func(t *testing.T, dir string) {
			p := filepath.Join(dir, name)
			b, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			f(b)
			if err := os.WriteFile(p, b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	frameEdit := func(name string, pick func(t *testing.T, b []byte) int, f func(b []byte, off int)) func(t *testing.T, dir string) {
		return func(t *testing.T, dir string) {
			edit(name, func(b []byte) { off := pick(t, b); f(b, off); refreshFrame(b, off) })(t, dir)
		}
	}
	nth := func(n int) func(t *testing.T, b []byte) int {
		return func(t *testing.T, b []byte) int { return segFrames(b)[n] }
	}
	cases := []struct {
		name   string
		damage func(t *testing.T, dir string)
	}{
		{name: "seq-gap", damage: frameEdit(seg(2), nth(300), func(b []byte, off int) {
			binary.LittleEndian.PutUint64(b[off+8:], binary.LittleEndian.Uint64(b[off+8:])+1)
		})},
		{name: "unknown-type", damage: frameEdit(seg(2), nth(300), func(b []byte, off int) { binary.LittleEndian.PutUint16(b[off+24:], 99) })},
		{name: "unknown-flag", damage: frameEdit(seg(2), nth(300), func(b []byte, off int) { binary.LittleEndian.PutUint16(b[off+26:], 8) })},
		{name: "restated-trade", damage: frameEdit(seg(2), func(t *testing.T, b []byte) int { return frameOfType(t, b, journal.TypeTrade, 3) },
			func(b []byte, off int) { binary.LittleEndian.PutUint16(b[off+26:], journal.FrameRestated) })},
		{name: "payload-size", damage: frameEdit(seg(2), func(t *testing.T, b []byte) int { return frameOfType(t, b, journal.TypeTrade, 3) },
			func(b []byte, off int) { binary.LittleEndian.PutUint16(b[off+24:], uint16(journal.TypeBookLevel)) })},
		{name: "source-too-short", damage: frameEdit(seg(2), func(t *testing.T, b []byte) int { return frameOfType(t, b, journal.TypeTrade, 5) },
			func(b []byte, off int) {
				binary.LittleEndian.PutUint16(b[off+24:], uint16(journal.TypeHeartbeat))
				binary.LittleEndian.PutUint16(b[off+26:], journal.FrameSource)
			})},
		{name: "checksum-first-frame", damage: edit(seg(3), func(b []byte) { b[journal.SegmentHeaderSize+20] ^= 1 })},
		{name: "header-checksum", damage: edit(seg(3), func(b []byte) { b[40] ^= 1 })},
		{name: "header-size", damage: edit(seg(2), func(b []byte) { binary.LittleEndian.PutUint32(b[12:], 8192); refreshHeader(b) })},
		{name: "capacity", damage: edit(seg(2), func(b []byte) { binary.LittleEndian.PutUint64(b[48:], 4096*3); refreshHeader(b) })},
		{name: "segment-number", damage: edit(seg(2), func(b []byte) { binary.LittleEndian.PutUint64(b[24:], 7); refreshHeader(b) })},
		{name: "first-seq", damage: edit(seg(3), func(b []byte) {
			binary.LittleEndian.PutUint64(b[32:], binary.LittleEndian.Uint64(b[32:])+1)
			refreshHeader(b)
		})},
		// Segment 2's epoch above segment 3's: the roll into 3 is
		// bad_header at 56 (format.md §4 reader step 4).
		{name: "epoch-down", damage: edit(seg(2), func(b []byte) { binary.LittleEndian.PutUint32(b[56:], 5); refreshHeader(b) })},
		// A foreign journal id in segment 3 (its header checksum good): the
		// roll into it is bad_header at 16 (§4 reader step 4); a reader
		// starting in a later segment never meets it.
		{name: "journal-id", damage: edit(seg(3), func(b []byte) { b[16] ^= 0xff; refreshHeader(b) })},
		// A flipped journal-id bit in the first segment without a new
		// checksum: the damaged header is named (offset 60), its id judges
		// no other segment (§4).
		{name: "journal-id-bit-first", damage: edit(seg(1), func(b []byte) { b[23] ^= 4 })},
		// Segment 3 activated but without a valid state record, later ones
		// activated: bad_header at 128 when the reader opens (§4).
		{name: "state-records", damage: edit(seg(3), func(b []byte) { b[128] ^= 1; b[192] ^= 1 })},
		// The same in the last activated segment: an activation in
		// progress, skipped at open; the roll into it is a sequence error
		// at 32, and verify reports bytes in a segment that is not
		// activated (roll_order).
		{name: "state-records-last", damage: func(t *testing.T, dir string) {
			last := lastActivated(t, dir)
			if last < 3 {
				t.Fatalf("the last activated segment is %d: the case wants rolls before it", last)
			}
			edit(seg(last), func(b []byte) { b[128] ^= 1; b[192] ^= 1 })(t, dir)
		}},
		// A flipped first_seq bit (checksum not refreshed) in the last
		// activated segment: its state record is valid, so this is not an
		// activation being written but damage, named at open — never a
		// segment skipped as prepared (§4).
		{name: "header-checksum-last", damage: func(t *testing.T, dir string) {
			edit(seg(lastActivated(t, dir)), func(b []byte) { b[33] ^= 2 })(t, dir)
		}},
		{name: "end-marker-gone", damage: edit(seg(1), func(b []byte) {
			offs := segFrames(b)
			last := offs[len(offs)-1]
			clear(b[last : last+8])
		})},
		{name: "index-entry", damage: edit(filepath.Base(journal.IndexPath("", 2)), func(b []byte) { b[200] ^= 1 })},
		{name: "index-missing", damage: func(t *testing.T, dir string) {
			if err := os.Remove(journal.IndexPath(dir, 2)); err != nil {
				t.Fatal(err)
			}
		}},
		{name: "segment-symlink", damage: func(t *testing.T, dir string) {
			p := journal.SegmentPath(dir, 2)
			if err := os.Rename(p, p+".real"); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink(p+".real", p); err != nil {
				t.Fatal(err)
			}
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "j")
			copyDir(t, gen, dir)
			c.damage(t, dir)
			for _, from := range []string{"start", "seq:6000", "end"} {
				g := run(t, time.Minute, tl.journalctl, "dump", "--dir", dir, "--format", "json", "--from", from)
				cr := run(t, time.Minute, tl.dump, "--from", from, dir)
				sameBytes(t, "dump --from "+from, cr.stdout, g.stdout)
				if (g.code == 0) != (cr.code == 0) {
					t.Fatalf("dump --from %s: Go exit %d (%s), C exit %d (%s)", from, g.code, g.stderr, cr.code, cr.stderr)
				}
				if g.code != 0 && !sameError(g.stderr, cr.stderr) {
					t.Fatalf("dump --from %s: different damage:\nGo: %s\n C: %s", from, g.stderr, cr.stderr)
				}
			}
			var want, got verifyJSON
			g := run(t, time.Minute, tl.journalctl, "verify", "--dir", dir, "--json")
			if err := json.Unmarshal(g.stdout, &want); err != nil {
				t.Fatalf("journalctl verify: %v: %s %s", err, g.stdout, g.stderr)
			}
			cr := run(t, time.Minute, tl.verify, dir)
			if err := json.Unmarshal(cr.stdout, &got); err != nil {
				t.Fatalf("C verify: %v: %s %s", err, cr.stdout, cr.stderr)
			}
			if len(want.Problems) == 0 {
				t.Fatalf("journalctl verify finds nothing: the case tests nothing")
			}
			if len(got.Problems) != len(want.Problems) {
				t.Fatalf("verify: C found %d problems, Go %d:\n C: %+v\nGo: %+v", len(got.Problems), len(want.Problems), got.Problems, want.Problems)
			}
			for i := range want.Problems {
				gp, wp := got.Problems[i], want.Problems[i]
				if gp.File != wp.File || gp.Offset != wp.Offset || gp.Kind != wp.Kind || gp.Severity != wp.Severity {
					t.Errorf("verify problem %d: C %s %s@%d %s (%s); Go %s %s@%d %s (%s)", i, gp.Severity, gp.File, gp.Offset, gp.Kind, gp.Reason, wp.Severity, wp.File, wp.Offset, wp.Kind, wp.Reason)
				}
			}
			if got.Frames != want.Frames || got.FirstSeq != want.FirstSeq || got.LastSeq != want.LastSeq {
				t.Errorf("verify summary: C frames %d seq %d..%d, Go frames %d seq %d..%d", got.Frames, got.FirstSeq, got.LastSeq, want.Frames, want.FirstSeq, want.LastSeq)
			}
		})
	}
}

var (
	benchOnce sync.Once
	benchBin  string
	benchDir  string
	benchErr  error
)

// benchSetup builds tests/bench.c and generates a 1M-frame journal (default
// 64 MiB segments) once per test binary.
func benchSetup(b *testing.B) (bin, dir string) {
	tl := needTools(b)
	benchOnce.Do(func() {
		benchBin = filepath.Join(work, "bin", "bench")
		if benchErr = compile(benchBin, "gcc", cFlags, filepath.Join(cDir, "tests", "bench.c"), tl.impl); benchErr != nil {
			return
		}
		benchDir = filepath.Join(work, "bench")
		cmd := exec.Command(tl.journalctl, "gen", "--dir", benchDir, "--count", "1000000", "--instruments", "8", "--clock", "synthetic")
		if out, err := cmd.CombinedOutput(); err != nil {
			benchErr = fmt.Errorf("journalctl gen: %v\n%s", err, out)
		}
	})
	if benchErr != nil {
		b.Fatal(benchErr)
	}
	return benchBin, benchDir
}

// runBench runs the C bench program and reports ns per unit.
func runBench(b *testing.B, bin, unit string, args ...string) {
	b.Helper()
	out, err := exec.Command(bin, args...).Output()
	if err != nil {
		b.Fatalf("bench %v: %v", args, err)
	}
	var units, ns float64
	if _, err := fmt.Sscan(string(out), &units, &ns); err != nil || units == 0 {
		b.Fatalf("bench %v: %q", args, out)
	}
	b.ReportMetric(ns/units, "ns/"+unit)
}

// BenchmarkReplay reads every frame of a 1M-frame journal per op: the C
// reader (mdj_reader_try_next: copy and every check of format.md §3), the raw
// baseline in C (the same frames mapped, commit words loaded and frames
// copied, no check), and the Go reader (reader.TryNext), in one run.
// Compare ns/frame.
func BenchmarkReplay(b *testing.B) {
	bin, dir := benchSetup(b)
	b.Run("C-reader", func(b *testing.B) { runBench(b, bin, "frame", "replay", dir, strconv.Itoa(b.N)) })
	b.Run("C-raw-walk", func(b *testing.B) { runBench(b, bin, "frame", "walk", dir, strconv.Itoa(b.N)) })
	b.Run("Go-reader", func(b *testing.B) {
		frames := 0
		for b.Loop() {
			r, err := reader.Open(dir, reader.Options{})
			if err != nil {
				b.Fatal(err)
			}
			for {
				_, ok, err := r.TryNext()
				if err != nil {
					b.Fatal(err)
				}
				if !ok {
					break
				}
				frames++
			}
			r.Close()
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(frames), "ns/frame")
	})
}

// BenchmarkCRC32C: the header's CRC-32C with the SSE4.2 instruction and with
// the table, beside Go's journal.CRC32C in the same run, on a frame-sized
// and a 64 KiB buffer. Compare ns/byte.
func BenchmarkCRC32C(b *testing.B) {
	bin, _ := benchSetup(b)
	for _, size := range []int{64, 65536} {
		buf := make([]byte, size+8)
		for i := range buf {
			buf[i] = byte(i * 7)
		}
		b.Run(fmt.Sprintf("C-sse42/%d", size), func(b *testing.B) {
			runBench(b, bin, "byte", "crc", strconv.Itoa(size+8), strconv.Itoa(b.N), "hw")
		})
		b.Run(fmt.Sprintf("C-table/%d", size), func(b *testing.B) {
			runBench(b, bin, "byte", "crc", strconv.Itoa(size+8), strconv.Itoa(b.N), "sw")
		})
		b.Run(fmt.Sprintf("Go/%d", size), func(b *testing.B) {
			var c uint32
			n := 0
			for b.Loop() {
				c ^= journal.CRC32C(buf[n&7 : n&7+size])
				n++
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(n*size), "ns/byte")
			_ = c
		})
	}
}

// TestVerifyLiveWriter: with a writer holding journal.lock (this process),
// mdj_verify finds it in /proc/locks (without taking the lock), judges only
// the published frames of the active segment, and agrees with journalctl
// verify run at the same moment.
func TestVerifyLiveWriter(t *testing.T) {
	tl := needTools(t)
	dir := filepath.Join(t.TempDir(), "live")
	lw := openLive(t, dir, 0)
	lw.batch(6000)
	var want, got struct {
		verifyJSON
		WriterPID  int  `json:"writer_pid"`
		WriterLive bool `json:"writer_live"`
	}
	g := run(t, time.Minute, tl.journalctl, "verify", "--dir", dir, "--json")
	if err := json.Unmarshal(g.stdout, &want); err != nil {
		t.Fatalf("journalctl verify: %v: %s %s", err, g.stdout, g.stderr)
	}
	c := run(t, time.Minute, tl.verify, dir)
	if err := json.Unmarshal(c.stdout, &got); err != nil {
		t.Fatalf("C verify: %v: %s %s", err, c.stdout, c.stderr)
	}
	if !got.WriterLive || got.WriterPID != os.Getpid() {
		t.Fatalf("C verify: writer_live %v pid %d, want true and %d", got.WriterLive, got.WriterPID, os.Getpid())
	}
	if !want.WriterLive || want.WriterPID != got.WriterPID || want.OK != got.OK || !got.OK ||
		want.Frames != got.Frames || want.LastSeq != got.LastSeq || uint64(got.Frames) != lw.w.LastSeq() {
		t.Fatalf("C %+v\nGo %+v (writer at seq %d)", got, want, lw.w.LastSeq())
	}
}

// patchSegments rewrites, in every segment file of dir, each frame for
// which f returns true (f edits the frame in place), and recomputes its
// checksum with Go's journal.FrameCRC. It returns how many frames changed.
func patchSegments(t *testing.T, dir string, f func(b []byte, off int) bool) int {
	t.Helper()
	n := 0
	for seg := uint64(1); ; seg++ {
		p := journal.SegmentPath(dir, seg)
		b, err := os.ReadFile(p)
		if errors.Is(err, os.ErrNotExist) {
			return n
		}
		if err != nil {
			t.Fatal(err)
		}
		changed := false
		for _, off := range segFrames(b) {
			if f(b, off) {
				refreshFrame(b, off)
				changed = true
				n++
			}
		}
		if changed {
			if err := os.WriteFile(p, b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// TestDumpStrings: every string dump prints goes through encoding/json's
// escaping (format.md leaves symbols, reasons and sources as bytes; a
// journal written by another tool, or damaged, may hold any). The symbols,
// reasons and sources here hold quotes, backslashes, HTML characters,
// control characters, DEL, invalid UTF-8 (stray continuation bytes,
// overlong forms, surrogates, truncated sequences, past U+10FFFF), valid
// multi-byte characters at the encoding boundaries, U+2028/U+2029, an
// encoded U+FFFD, and NULs inside and at the end. There is also a
// definition with an empty symbol (no "symbol", prices unscaled), an
// instrument with a status but no definition, an unknown trading state,
// every message type, source trailers and re-stated frames (several rolls).
// The C dump must equal journalctl dump byte for byte.
func TestDumpStrings(t *testing.T) {
	tl := needTools(t)
	dir := filepath.Join(t.TempDir(), "strings")
	w, err := writer.Open(dir, writer.Options{SegmentSize: 256 << 10})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	// The symbol bytes patched into every definition (original and
	// re-stated) of each instrument after writing: the writer refuses them.
	symbols := map[uint32]string{
		1: "q\"b\\<>&\x7f\x01\x08\x0c\n\r\t\x1fZ",
		2: "\x80\xff\xc0\xaf\xed\xa0\x80\xe2\x82A\xf4\x90\x80\x80\xc3B",
		3: "\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\xe2\x80\xa8\xe2\x80\xa9C",
		4: "\xef\xbf\xbdE\xe0\xa0\x80\xf0\x90\x80\x80\xdf\xbf\xf4\x8f\xbf",
		5: "\x00HIDDEN\x00\x00\x00\x00\x00\x00\x00\x00\x00",
		6: "AB\x00CD\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00",
	}
	for id := uint32(1); id <= 8; id++ {
		if id == 7 {
			continue // a status, never a definition
		}
		d := journal.InstrumentDef{TickSize: 25, PriceScale: int32(id % 5)}
		if err := d.SetSymbol(fmt.Sprintf("SYM%d", id)); err != nil {
			t.Fatal(err)
		}
		if _, err := w.Append(journal.TypeInstrumentDef, id, 1, d.Encode(nil)); err != nil {
			t.Fatal(err)
		}
	}
	reasons := []string{"A\x00B ", "    ", "\"\\\n\xff", "\xe2\x80\xa8", "ok\x00\x00", "\x00\x00\x00\x00"}
	sources := []string{"SESS\x00\x00 x  \x00\x00\x00\x00\x00\x00", "\t<src>&\x7f\xc3\xa9  ", "\xe2\x80\xa9\xed\xbf\xbf", ""}
	rng := rand.New(rand.NewPCG(3, 4))
	ts := int64(1767364200000000000)
	for i := 0; i < 9000; i++ {
		ts += int64(rng.IntN(2000))
		id := uint32(1 + rng.IntN(8))
		px := journal.Price(rng.Int64N(2_000_000) - 1_000_000)
		if i%997 == 0 {
			px = math.MinInt64
		}
		side := journal.Side(rng.IntN(4))
		var typ journal.MsgType
		var payload []byte
		switch rng.IntN(12) {
		case 0:
			typ, payload = journal.TypeTrade, (&journal.Trade{Price: px, Qty: rng.Int64N(1000) - 10, TradeID: rng.Uint64(), Aggressor: side, Flags: uint8(rng.IntN(4))}).Encode(nil)
		case 1:
			typ, payload = journal.TypeQuote, (&journal.Quote{BidPrice: px, BidQty: rng.Int64N(9), AskPrice: px + 1, AskQty: rng.Int64N(9)}).Encode(nil)
		case 2:
			typ, payload = journal.TypeBookLevel, (&journal.BookLevel{Price: px, Qty: rng.Int64N(9), Side: side}).Encode(nil)
		case 3:
			typ = []journal.MsgType{journal.TypeOrderAdd, journal.TypeOrderCancel, journal.TypeOrderDelete, journal.TypeOrderExecute}[rng.IntN(4)]
			payload = (&journal.Order{OrderID: rng.Uint64(), Price: px, Qty: rng.Int64N(99), Side: side, Flags: uint8(rng.IntN(4))}).Encode(nil)
		case 4:
			st := journal.TradingStatus{Status: uint8(1 + rng.IntN(4))}
			copy(st.Reason[:], reasons[rng.IntN(len(reasons))])
			if id == 8 {
				id = 7 // the instrument known by its status only
			}
			typ, payload = journal.TypeTradingStatus, st.Encode(nil)
		case 5:
			g := journal.Gap{First: rng.Uint64(), Count: rng.Uint64()}
			copy(g.Source[:], sources[rng.IntN(len(sources))])
			typ, payload, id = journal.TypeGap, g.Encode(nil), 0
		case 6:
			typ, payload = journal.TypeOrderRequest, (&journal.OrderRequest{OrderID: rng.Uint64(), Price: px, Qty: 5, Side: side, Strategy: rng.Uint32(),
				TriggerSeq: rng.Uint64(), TriggerTS: int64(rng.Uint64()), Seen: ts - 1, Decided: -int64(rng.Uint64N(1 << 62))}).Encode(nil)
		case 7:
			typ, payload = journal.TypeRiskDecision, (&journal.RiskDecision{OrderID: rng.Uint64(), Price: px, Qty: 5, Side: side, Verdict: uint8(rng.IntN(4)),
				Reason: uint16(rng.Uint32()), Strategy: rng.Uint32(), TriggerSeq: rng.Uint64(), Requested: ts, Received: math.MinInt64, Decided: math.MaxInt64}).Encode(nil)
		case 8:
			payload = make([]byte, rng.IntN(100))
			for k := range payload {
				payload[k] = byte(rng.Uint32())
			}
			typ = journal.TypeRaw
		default:
			typ = journal.TypeHeartbeat
		}
		if rng.IntN(3) == 0 {
			_, err = w.AppendSource(typ, id, ts, payload, int64(rng.Uint64()), rng.Uint64())
		} else {
			_, err = w.Append(typ, id, ts, payload)
		}
		if err != nil {
			t.Fatalf("frame %d (%s): %v", i, typ, err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	// (segmentCount would also count the prepared successor the writer
	// may or may not have created in the background.)
	if n := lastActivated(t, dir); n < 3 {
		t.Fatalf("%d activated segments: the test wants re-stated definitions in several", n)
	}
	// Instrument 2's statuses get a state no writer accepts.
	patched := patchSegments(t, dir, func(b []byte, off int) bool {
		typ := journal.MsgType(binary.LittleEndian.Uint16(b[off+24:]))
		id := binary.LittleEndian.Uint32(b[off+28:])
		switch {
		case typ == journal.TypeInstrumentDef && symbols[id] != "":
			copy(b[off+journal.FrameHeaderSize:off+journal.FrameHeaderSize+16], symbols[id])
			return true
		case typ == journal.TypeTradingStatus && id == 2:
			b[off+journal.FrameHeaderSize] = 9
			return true
		}
		return false
	})
	if patched < 6 {
		t.Fatalf("patched %d frames", patched)
	}
	goDump := func(from string) []byte {
		r := run(t, time.Minute, tl.journalctl, "dump", "--dir", dir, "--format", "json", "--from", from)
		if r.code != 0 {
			t.Fatalf("journalctl dump --from %s: exit %d: %s", from, r.code, r.stderr)
		}
		return r.stdout
	}
	full := goDump("start")
	// What the journal must make Go print, or the comparison proves little.
	for _, want := range []string{`\"`, `\\`, `<>&`, "\x7f", `\u0001`, `\b`, `\f`, `\n`, `\r`, `\t`, `\u001f`, `\u0000`,
		`\ufffd`, `\u2028`, `\u2029`, "é€😀", "\xef\xbf\xbd", `"symbol":"AB"`, `"symbol_def":""`, `"status":"unknown"`,
		`"restated":true`, `"recv_ts":`, `"type":"gap"`, `"type":"order_request"`, `"type":"risk_decision"`,
		`"type":"trading_status","instrument":7,"status"`, `"verdict":"accepted"`, `"side":"none"`, `"aggressor":"unknown"`,
		`"hidden":true`, `"type":"raw"`, `"reason":"A\u0000B"`, `"source":"SESS\u0000\u0000 x"`, `"source":""`} {
		if !bytes.Contains(full, []byte(want)) {
			t.Errorf("journalctl dump never prints %q: the journal does not exercise it", want)
		}
	}
	if !json.Valid(bytes.Split(full, []byte("\n"))[0]) {
		t.Fatalf("journalctl dump's first line is not JSON: %s", bytes.Split(full, []byte("\n"))[0])
	}
	cDump := func(from string) []byte {
		r := run(t, time.Minute, tl.dump, "--from", from, dir)
		if r.code != 0 {
			t.Fatalf("C dump --from %s: exit %d: %s", from, r.code, r.stderr)
		}
		return r.stdout
	}
	sameBytes(t, "--from start", cDump("start"), full)
	mid := firstSeqOf(t, dir, 3) + 100
	sameBytes(t, "--from seq in segment 3", cDump("seq:"+strconv.FormatUint(mid, 10)), goDump("seq:"+strconv.FormatUint(mid, 10)))
}

// TestDumpTimeGoesBack: a journal of two instruments' days written one
// after the other (time goes back at the second), read from a time. The
// position is the first frame at or after it in seq order, not a later
// occurrence (format.md §5: a linear search over segments and index
// entries), and dump drops the frames stamped before it that follow
// (definitions and statuses pass). The C dump with --from ns:T must equal
// journalctl dump --from time:T.
func TestDumpTimeGoesBack(t *testing.T) {
	tl := needTools(t)
	dir := filepath.Join(t.TempDir(), "back")
	w, err := writer.Open(dir, writer.Options{SegmentSize: 256 << 10})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	const day0 = int64(1767364200000000000) // 2026-01-02T14:30:00Z
	const n = 7000                          // frames per instrument: several segments each
	for id, sym := range []string{"AAA", "BBB"} {
		var d journal.InstrumentDef
		if err := d.SetSymbol(sym); err != nil {
			t.Fatal(err)
		}
		d.PriceScale = 2
		if _, err := w.Append(journal.TypeInstrumentDef, uint32(id+1), day0, d.Encode(nil)); err != nil {
			t.Fatal(err)
		}
	}
	for id := uint32(1); id <= 2; id++ {
		for i := int64(0); i < n; i++ {
			tr := journal.Trade{Price: journal.Price(10000 + i), Qty: i%7 + 1, TradeID: uint64(i)}
			if _, err := w.Append(journal.TypeTrade, id, day0+i*1e6, tr.Encode(nil)); err != nil {
				t.Fatal(err)
			}
			if i == n/2 {
				st := journal.TradingStatus{Status: journal.StatusHalted}
				copy(st.Reason[:], "LUDP")
				if _, err := w.Append(journal.TypeTradingStatus, id, day0+i*1e6, st.Encode(nil)); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if s := lastActivated(t, dir); s < 4 {
		t.Fatalf("%d activated segments: the test wants several per instrument", s)
	}
	for _, c := range []struct {
		name string
		ns   int64
	}{
		{"before-both", day0 - 1},
		{"first-frame", day0},
		{"early", day0 + 1234*1e6 + 1},
		{"middle", day0 + n/2*1e6},
		{"exact-late", day0 + (n-500)*1e6},
		{"last", day0 + (n-1)*1e6},
		{"after-both", day0 + n*1e6},
	} {
		t.Run(c.name, func(t *testing.T) {
			ts := time.Unix(0, c.ns).UTC().Format(time.RFC3339Nano)
			g := run(t, time.Minute, tl.journalctl, "dump", "--dir", dir, "--format", "json", "--from", "time:"+ts)
			if g.code != 0 {
				t.Fatalf("journalctl dump --from time:%s: exit %d: %s", ts, g.code, g.stderr)
			}
			if c.ns > day0 && c.ns < day0+n*1e6 && !bytes.Contains(g.stdout, []byte(`"symbol":"BBB","price"`)) {
				t.Fatalf("Go printed no frame of the second instrument from %s: the case tests nothing", ts)
			}
			cr := run(t, time.Minute, tl.dump, "--from", "ns:"+strconv.FormatInt(c.ns, 10), dir)
			if cr.code != 0 {
				t.Fatalf("C dump --from ns:%d: exit %d: %s", c.ns, cr.code, cr.stderr)
			}
			sameBytes(t, "--from time:"+ts, cr.stdout, g.stdout)
		})
	}
}

// TestIndexEntryTimeWrong: an index entry whose seq is right but whose
// timestamp is not (lowered to its predecessor's) must not be trusted by a
// time seek (format.md §5: the frame there must have the entry's seq and
// ts, else the reader reads from the segment start). The C dump from a time
// just after the predecessor entry must print what journalctl dump prints
// from that time on the undamaged journal. The Go reader trusts an entry
// whose seq matches (reader/segment.go fromEntry) and starts at it, past
// frames at or after the time: that is logged, not failed, here.
func TestIndexEntryTimeWrong(t *testing.T) {
	tl := needTools(t)
	gen := genJournal(t, tl)
	dir := filepath.Join(t.TempDir(), "j")
	copyDir(t, gen, dir)
	p := journal.IndexPath(dir, 2)
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	const k = 10 // the entry damaged
	if n := binary.LittleEndian.Uint64(b[64:]); n <= k+1 {
		t.Fatalf("segment 2's index has %d entries", n)
	}
	entry := func(i int) (seq uint64, ts int64) {
		o := journal.IndexHeaderSize + i*journal.IndexEntrySize
		return binary.LittleEndian.Uint64(b[o:]), int64(binary.LittleEndian.Uint64(b[o+8:]))
	}
	prevSeq, prevTS := entry(k - 1)
	seq, ts := entry(k)
	if seq < prevSeq+3 || ts <= prevTS+1 {
		t.Fatalf("entries %d and %d are too close (seq %d %d, ts %d %d)", k-1, k, prevSeq, seq, prevTS, ts)
	}
	binary.LittleEndian.PutUint64(b[journal.IndexHeaderSize+k*journal.IndexEntrySize+8:], uint64(prevTS))
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	at := time.Unix(0, prevTS+1).UTC().Format(time.RFC3339Nano)
	want := run(t, time.Minute, tl.journalctl, "dump", "--dir", gen, "--format", "json", "--from", "time:"+at)
	if want.code != 0 || !bytes.HasPrefix(want.stdout, []byte(`{"seq":`)) {
		t.Fatalf("journalctl dump of the undamaged journal: exit %d: %s", want.code, want.stderr)
	}
	var first struct {
		Seq uint64 `json:"seq"`
	}
	if err := json.Unmarshal(bytes.SplitN(want.stdout, []byte("\n"), 2)[0], &first); err != nil || first.Seq >= seq {
		t.Fatalf("the first frame from %s is seq %d (%v): the case wants frames before the damaged entry's seq %d", at, first.Seq, err, seq)
	}
	c := run(t, time.Minute, tl.dump, "--from", "ns:"+strconv.FormatInt(prevTS+1, 10), dir)
	if c.code != 0 {
		t.Fatalf("C dump: exit %d: %s", c.code, c.stderr)
	}
	sameBytes(t, "--from time:"+at+" with a wrong index timestamp", c.stdout, want.stdout)
	g := run(t, time.Minute, tl.journalctl, "dump", "--dir", dir, "--format", "json", "--from", "time:"+at)
	if !bytes.Equal(g.stdout, want.stdout) {
		line, _, _ := bytes.Cut(g.stdout, []byte("\n"))
		t.Logf("known Go reader bug: journalctl dump on the damaged journal starts at %s instead of seq %d", line, first.Seq)
	}
}
