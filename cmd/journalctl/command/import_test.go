package command

import (
	"bufio"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/mdjournal/mdjournal/internal/testutil"
)

// LOBSTER excerpts (the first 2000 messages of three sample days).
const (
	amznMsg5  = "AMZN_2012-06-21_34200000_57600000_message_5.csv"
	amznBook5 = "AMZN_2012-06-21_34200000_57600000_orderbook_5.csv"
)

// importAMZN imports the AMZN L5 excerpt as instrument 7 with a depth-10
// snapshot and returns the journal dir, the snapshot path and the data dir.
func importAMZN(t *testing.T) (dir, snap, data string) {
	t.Helper()
	data = testutil.SharedData(t, "lobster/head2000")
	tmp := t.TempDir()
	dir, snap = filepath.Join(tmp, "j"), filepath.Join(tmp, "amzn.snap")
	code, out, errs := run(t, "import", "--dir", dir, "--format", "lobster", "--symbol", "AMZN", "--date", "2012-06-21",
		"--orderbook", filepath.Join(data, amznBook5), "--instrument", "7", "--snapshot", snap, "--depth", "10",
		filepath.Join(data, amznMsg5))
	if code != 0 {
		t.Fatalf("import: exit %d\n%s%s", code, out, errs)
	}
	return dir, snap, data
}

func countLines(t *testing.T, path string) int {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	n := 0
	for s := bufio.NewScanner(f); s.Scan(); {
		if strings.TrimSpace(s.Text()) != "" {
			n++
		}
	}
	return n
}

func TestImportUsageErrorsExit2(t *testing.T) {
	dir := t.TempDir()
	msg := filepath.Join(dir, "m.csv")
	for _, args := range [][]string{
		{"import", "--symbol", "X", "--date", "2012-06-21", msg},                                   // no --dir
		{"import", "--dir", dir, "--date", "2012-06-21", msg},                                      // no --symbol
		{"import", "--dir", dir, "--symbol", "ABCDEFGHIJKLMNOPQ", "--date", "2012-06-21", msg},     // symbol > 16 bytes
		{"import", "--dir", dir, "--symbol", "X", msg},                                             // no --date
		{"import", "--dir", dir, "--symbol", "X", "--date", "2012-13-01", msg},                     // bad date
		{"import", "--dir", dir, "--symbol", "X", "--date", "21/06/2012", msg},                     // bad date
		{"import", "--dir", dir, "--symbol", "X", "--date", "2012-06-21", "--format", "itch", msg}, // unknown format
		{"import", "--dir", dir, "--symbol", "X", "--date", "2012-06-21"},                          // no file
		{"import", "--dir", dir, "--symbol", "X", "--date", "2012-06-21", msg, msg},                // two files
		{"import", "--dir", dir, "--symbol", "X", "--date", "2012-06-21", "--depth", "5", msg},     // --depth without --snapshot
		{"import", "--dir", dir, "--symbol", "X", "--date", "2012-06-21", "--snapshot", "s", "--depth", "0", msg},
		{"import", "--dir", dir, "--symbol", "X", "--date", "2012-06-21", "--instrument", "-1", msg},
		{"import", "--dir", dir, "--symbol", "X", "--date", "2012-06-21", "--durability", "maybe", msg},
		{"import", "--dir", dir, "--symbol", "X", "--date", "2012-06-21", "--levels", "1000000000", msg},
		{"import", "--dir", dir, "--symbol", "X", "--date", "2012-06-21", "--segment-size", "1", msg},
	} {
		code, _, stderr := run(t, args...)
		if code != ExitUsage || !strings.Contains(stderr, "journalctl import") {
			t.Errorf("%q: exit %d, stderr %q; want exit 2 with a message", args[1:], code, stderr)
		}
	}
	// The date message says what is expected.
	if _, _, stderr := run(t, "import", "--dir", dir, "--symbol", "X", "--date", "2012-13-01", msg); !strings.Contains(stderr, "YYYY-MM-DD") {
		t.Errorf("bad date message %q", stderr)
	}
}

func TestImportMissingFileExit1(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, "NOPE_message_1.csv")
	code, _, stderr := run(t, "import", "--dir", filepath.Join(dir, "j"), "--symbol", "X", "--date", "2012-06-21", missing)
	if code != ExitData || !strings.Contains(stderr, missing) {
		t.Fatalf("missing message file: exit %d, stderr %q", code, stderr)
	}
	if _, err := os.Stat(filepath.Join(dir, "j")); err == nil {
		t.Error("a journal was created although the input is missing")
	}
	msg := filepath.Join(dir, "m.csv")
	os.WriteFile(msg, []byte("34200.1,1,1,100,5853300,1\n"), 0o644)
	missing = filepath.Join(dir, "NOPE_orderbook_1.csv")
	code, _, stderr = run(t, "import", "--dir", filepath.Join(dir, "j"), "--symbol", "X", "--date", "2012-06-21", "--orderbook", missing, msg)
	if code != ExitData || !strings.Contains(stderr, missing) {
		t.Fatalf("missing orderbook file: exit %d, stderr %q", code, stderr)
	}
	// A malformed row is a data problem naming the file and the line.
	os.WriteFile(msg, []byte("34200.1,1,1,100,5853300,1\n34200.2,9,1,100,5853300,1\n"), 0o644)
	code, _, stderr = run(t, "import", "--dir", filepath.Join(dir, "j"), "--symbol", "X", "--date", "2012-06-21", msg)
	if code != ExitData || !strings.Contains(stderr, msg) || !strings.Contains(stderr, "line 2") {
		t.Fatalf("bad row: exit %d, stderr %q", code, stderr)
	}
}

func TestImportSummary(t *testing.T) {
	_, snap, data := importAMZN(t)
	// Run again into a fresh journal to read the summary (importAMZN checks the exit code only).
	tmp := t.TempDir()
	code, out, errs := run(t, "import", "--dir", tmp, "--symbol", "AMZN", "--date", "2012-06-21",
		"--orderbook", filepath.Join(data, amznBook5), filepath.Join(data, amznMsg5))
	if code != 0 {
		t.Fatalf("exit %d %s", code, errs)
	}
	if errs != "" {
		t.Errorf("stderr is not a terminal, yet something was written to it: %q", errs)
	}
	want := countLines(t, filepath.Join(data, amznMsg5))
	fields := map[string]string{}
	for _, kv := range strings.Fields(out) {
		k, v, _ := strings.Cut(kv, "=")
		fields[k] = v
	}
	if fields["messages"] != strconv.Itoa(want) {
		t.Errorf("summary %q: messages should be %d (lines of the file)", out, want)
	}
	for _, k := range []string{"frames", "entering_levels", "seconds", "msgs/s", "last_seq"} {
		if fields[k] == "" {
			t.Errorf("summary %q lacks %s", out, k)
		}
	}
	if fields["frames"] != fields["last_seq"] || fields["first_seq"] != "1" {
		t.Errorf("summary %q: frames of a fresh journal are seq 1..frames", out)
	}
	// The verify verb agrees the journal is sound, and dump sees as many frames.
	if code, out, _ := run(t, "verify", "--dir", tmp); code != 0 {
		t.Fatalf("verify after import: %d %s", code, out)
	}
	_, csv, _ := run(t, "dump", "--dir", tmp, "--format", "csv")
	if n := len(strings.Split(strings.TrimSpace(csv), "\n")) - 1; strconv.Itoa(n) != fields["frames"] {
		t.Errorf("dump shows %d frames, summary says %s", n, fields["frames"])
	}
	if _, err := os.Stat(snap); err != nil {
		t.Errorf("--snapshot did not create the file: %v", err)
	}
}
