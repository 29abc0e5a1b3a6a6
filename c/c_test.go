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
		// goReaderBug: the Go reader's verdict is known to be wrong here;
		// the C reader must give cFile@cOffset (format.md's verdict).
		goReaderBug    string
		cFile, cOffset string
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
		{name: "epoch-down", damage: func(t *testing.T, dir string) {
			edit(seg(2), func(b []byte) { binary.LittleEndian.PutUint32(b[56:], 5); refreshHeader(b) })(t, dir)
		}, goReaderBug: "nil pointer dereference", cFile: seg(3), cOffset: "56"},
		{name: "journal-id", damage: edit(seg(3), func(b []byte) { b[16] ^= 0xff; refreshHeader(b) })},
		{name: "state-records", damage: edit(seg(3), func(b []byte) { b[128] ^= 1; b[192] ^= 1 })},
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
				if g.code != 0 {
					if c.goReaderBug != "" && bytes.Contains(g.stderr, []byte(c.goReaderBug)) {
						cm := errLine.FindSubmatch(cr.stderr)
						if cm == nil {
							t.Fatalf("dump --from %s: unparsable C error: %s", from, cr.stderr)
						}
						// reader/reader.go advance() reads the successor's
						// epoch after unmapping it: the fault is reported
						// as a truncation. The C reader reports the epoch.
						if filepath.Base(string(cm[1])) != c.cFile || string(cm[2]) != c.cOffset {
							t.Fatalf("dump --from %s: C says %s, want %s@%s", from, cr.stderr, c.cFile, c.cOffset)
						}
						t.Logf("known Go reader bug (%s): Go says %s; C says %s", c.goReaderBug, bytes.TrimSpace(g.stderr), bytes.TrimSpace(cr.stderr))
						continue
					}
					if !sameError(g.stderr, cr.stderr) {
						t.Fatalf("dump --from %s: different damage:\nGo: %s\n C: %s", from, g.stderr, cr.stderr)
					}
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
