package command

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"strings"
	"testing"

	"github.com/mdjournal/mdjournal/internal/testutil"
	"github.com/mdjournal/mdjournal/journal"
)

// run executes journalctl in-process and returns exit code, stdout, stderr.
func run(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := Run(&Env{Stdin: strings.NewReader(""), Stdout: &out, Stderr: &errb, Ctx: context.Background()}, args)
	return code, out.String(), errb.String()
}

func TestUsageErrorsExit2(t *testing.T) {
	dir := t.TempDir()
	for _, args := range [][]string{
		{},
		{"nosuchverb"},
		{"gen"},
		{"gen", "--dir", dir, "--rate", "fast"},
		{"gen", "--dir", dir, "--durability", "sometimes"},
		{"gen", "--dir", dir, "--segment-size", "big"},
		{"gen", "--dir", dir, "--count", "-1"},
		{"gen", "--dir", dir, "--segment-size", "1"},
		{"gen", "--dir", dir, "--segment-size", "2GiB"},
		{"gen", "--dir", dir, "--rate", "NaN"},
		{"gen", "--dir", dir, "--rate", "Inf"},
		{"gen", "--dir", dir, "--rate", "1e-300"},
		{"gen", "--dir", dir, "--rate", "-5"},
		{"tail", "--dir", dir, "--count", "-5"},
		{"dump", "--dir", dir, "--count", "-5"},
		{"gen", "--dir", dir, "--bogus"},
		{"dump", "--dir", dir, "--from", "yesterday"},
		{"dump", "--dir", dir, "--to", "start"},
		{"dump", "--dir", dir, "--format", "xml"},
		{"tail", "--dir", dir, "--wait", "sleepy"},
		{"verify"},
		{"verify", "--dir", dir, "extra"},
	} {
		code, _, stderr := run(t, args...)
		if code != ExitUsage {
			t.Errorf("%q: exit %d, want 2", args, code)
		}
		if len(args) > 0 && stderr == "" {
			t.Errorf("%q: no message on stderr", args)
		}
	}
}

func TestGenDumpVerify(t *testing.T) {
	dir := t.TempDir()
	code, out, errs := run(t, "gen", "--dir", dir, "--count", "5000", "--instruments", "3", "--segment-size", "256KiB", "--clock", "synthetic")
	if code != 0 || !strings.Contains(out, "frames=5000 ") {
		t.Fatalf("gen: %d %q %q", code, out, errs)
	}
	code, out, _ = run(t, "verify", "--dir", dir, "--json")
	var v verifyJSON
	if code != 0 || json.Unmarshal([]byte(out), &v) != nil || !v.OK || v.Segments < 2 {
		t.Fatalf("verify: %d %s", code, out)
	}
	// Every segment after the first starts with the 3 definitions re-stated.
	used := len(testutil.ReadFacts(t, dir).Frames)
	if want := int64(5000 + 3*(used-1)); used < 2 || v.Frames != want || v.LastSeq != uint64(want) {
		t.Fatalf("verify: %d frames, last seq %d; want %d (5000 and 3 re-stated per segment after the first)", v.Frames, v.LastSeq, want)
	}
	// JSON lines carry seq, ts, type, instrument and decoded fields.
	code, out, _ = run(t, "dump", "--dir", dir, "--from", "seq:3", "--to", "seq:9", "--format", "json")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if code != 0 || len(lines) != 7 {
		t.Fatalf("dump json: %d, %d lines", code, len(lines))
	}
	var first map[string]any
	if err := json.Unmarshal([]byte(lines[0]), &first); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"seq", "ts", "type", "instrument", "symbol"} {
		if _, ok := first[k]; !ok {
			t.Errorf("json line lacks %q: %s", k, lines[0])
		}
	}
	if first["seq"].(float64) != 3 || first["type"] != "instrument_def" || first["ts"] != "2026-01-02T14:30:00.000002Z" {
		t.Errorf("first line %s", lines[0])
	}
	for _, l := range lines[3:] {
		var m map[string]any
		json.Unmarshal([]byte(l), &m)
		switch m["type"] {
		case "quote":
			if _, ok := m["bid_price"].(string); !ok {
				t.Errorf("quote prices must be decimal strings: %s", l)
			}
		case "trade", "book_level":
			if p, _ := m["price"].(string); !strings.Contains(p, ".") {
				t.Errorf("price not in decimal scale: %s", l)
			}
		}
	}
	// CSV has a header and one row per frame.
	code, out, _ = run(t, "dump", "--dir", dir, "--count", "10", "--format", "csv")
	if rows := strings.Split(strings.TrimSpace(out), "\n"); code != 0 || len(rows) != 11 || !strings.HasPrefix(rows[0], "seq,ts,type") {
		t.Fatalf("csv: %d %d rows", code, len(rows))
	}
	// gen is deterministic: the same seed gives the same frames.
	dir2 := t.TempDir()
	run(t, "gen", "--dir", dir2, "--count", "5000", "--instruments", "3", "--segment-size", "256KiB", "--clock", "synthetic")
	_, a, _ := run(t, "dump", "--dir", dir, "--format", "csv")
	_, b, _ := run(t, "dump", "--dir", dir2, "--format", "csv")
	if a != b || len(a) < 1000 {
		t.Fatal("same seed produced different journals")
	}
}

func TestVerifyExit1OnDamage(t *testing.T) {
	dir := t.TempDir()
	run(t, "gen", "--dir", dir, "--count", "3000", "--segment-size", "256KiB")
	f, _ := os.OpenFile(journal.SegmentPath(dir, 1), os.O_RDWR, 0)
	f.WriteAt([]byte{0xff, 0xff}, 4096+200)
	f.Close()
	code, out, _ := run(t, "verify", "--dir", dir)
	if code != ExitData || !strings.Contains(out, "00000000000000000001.seg: offset ") {
		t.Fatalf("verify on damage: exit %d\n%s", code, out)
	}
	code, out, _ = run(t, "verify", "--dir", dir, "--json")
	var v verifyJSON
	json.Unmarshal([]byte(out), &v)
	if code != ExitData || v.OK || len(v.Problems) == 0 || v.Problems[0].File != "00000000000000000001.seg" || v.Problems[0].Kind == "" {
		t.Fatalf("verify --json on damage: %d %s", code, out)
	}
	code, _, errs := run(t, "dump", "--dir", dir)
	if code != ExitData || !strings.Contains(errs, "offset") {
		t.Fatalf("dump over damage: exit %d, stderr %q", code, errs)
	}
	code, _, _ = run(t, "verify", "--dir", t.TempDir())
	if code != ExitData {
		t.Fatalf("verify of an empty dir: %d", code)
	}
}

// Every verb, the bench group and every bench kind answer --help on stdout
// with exit 0 (stderr stays empty); internal verbs are not listed.
func TestHelpGoesToStdoutAndExits0(t *testing.T) {
	cases := [][]string{{"--help"}, {"help"}, {"bench", "--help"}}
	for _, v := range commands() {
		if !v.hidden {
			cases = append(cases, []string{v.name, "--help"})
		}
	}
	for _, k := range []string{"append", "tail", "ipc", "snapshot", "replay", "open"} {
		cases = append(cases, []string{"bench", k, "--help"})
	}
	for _, args := range cases {
		code, out, errs := run(t, args...)
		if code != ExitOK || !strings.HasPrefix(out, "Usage: ") && !strings.HasPrefix(out, "journalctl: ") || errs != "" {
			t.Errorf("%q: exit %d, stdout %.60q, stderr %q", args, code, out, errs)
		}
	}
	_, out, _ := run(t, "--help")
	for _, v := range commands() {
		if v.hidden == strings.Contains(out, "\n  "+v.name+" ") {
			t.Errorf("help listing of %q: hidden=%v but listed=%v", v.name, v.hidden, !v.hidden)
		}
	}
}

func TestVersion(t *testing.T) {
	code, out, _ := run(t, "version", "--json")
	var v versionInfo
	if code != 0 || json.Unmarshal([]byte(out), &v) != nil {
		t.Fatalf("version --json: %d %q", code, out)
	}
	if v.JournalFormat != journal.Version || v.Module != "github.com/mdjournal/mdjournal" || v.Go == "" {
		t.Fatalf("version: %+v", v)
	}
}

// create makes an empty journal that verifies and that a reader opens; a
// second create refuses to touch it.
func TestCreate(t *testing.T) {
	dir := t.TempDir() + "/j"
	code, out, errs := run(t, "create", "--dir", dir, "--segment-size", "256KiB")
	if code != 0 || !strings.Contains(out, "created journal") {
		t.Fatalf("create: exit %d %s%s", code, out, errs)
	}
	if code, out, _ := run(t, "verify", "--dir", dir); code != 0 {
		t.Fatalf("verify of a new journal: exit %d %s", code, out)
	}
	if code, out, _ := run(t, "dump", "--dir", dir); code != 0 || out != "" {
		t.Fatalf("dump of a new journal: exit %d %q", code, out)
	}
	before := testutil.Files(t, dir)
	if code, _, errs := run(t, "create", "--dir", dir); code != ExitData || !strings.Contains(errs, "already holds a journal") {
		t.Fatalf("second create: exit %d %q", code, errs)
	}
	testutil.SameFiles(t, before, testutil.Files(t, dir), "a refused create")
	if code, _, _ := run(t, "create", "--dir", dir, "--segment-size", "1"); code != ExitUsage {
		t.Fatalf("create --segment-size 1: exit %d", code)
	}
}
