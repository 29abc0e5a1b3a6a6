package command

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"
)

// TestSnapshotAgreesWithBook: the snapshot kept during the import shows the
// book that replaying the journal gives at its last seq.
func TestSnapshotAgreesWithBook(t *testing.T) {
	dir, snap, _ := importAMZN(t)
	code, out, errs := run(t, "snapshot", "--file", snap, "--instrument", "AMZN", "--json")
	if code != 0 {
		t.Fatalf("exit %d %s", code, errs)
	}
	var s bookJSON
	dec := json.NewDecoder(strings.NewReader(out))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&s); err != nil || dec.More() {
		t.Fatalf("want one JSON object: %v\n%s", err, out)
	}
	b := bookAt(t, "--dir", dir, "--instrument", "AMZN", "--depth", "10", "--json")
	if s.SnapshotSeq == nil {
		t.Fatal("no snapshot_seq")
	}
	snapSeq := *s.SnapshotSeq
	s.SnapshotSeq = nil
	if fmt.Sprint(s) != fmt.Sprint(b) {
		t.Errorf("snapshot %+v\nbook     %+v", s, b)
	}
	if snapSeq != b.Seq || len(s.Bids) == 0 || len(s.Asks) == 0 {
		t.Errorf("snapshot_seq %d, book seq %d (the import's last frame is a book frame)", snapSeq, b.Seq)
	}
	// By id, and all instruments: the same single slot.
	_, byID, _ := run(t, "snapshot", "--file", snap, "--instrument", "7", "--json")
	_, all, _ := run(t, "snapshot", "--file", snap, "--json")
	if byID != out || all != out {
		t.Errorf("by id / all differ:\n%s\n%s\n%s", out, byID, all)
	}
	code, text, _ := run(t, "snapshot", "--file", snap)
	if code != 0 || !strings.Contains(text, "AMZN  instrument 7") || !strings.Contains(text, b.Bids[0].Price) || !strings.Contains(text, "last trade") {
		t.Errorf("text output:\n%s", text)
	}
}

func TestSnapshotWatch(t *testing.T) {
	_, snap, _ := importAMZN(t)
	ctx, cancel := context.WithTimeout(context.Background(), 1200*time.Millisecond)
	defer cancel()
	var out, errb bytes.Buffer
	start := time.Now()
	code := Run(&Env{Stdin: strings.NewReader(""), Stdout: &out, Stderr: &errb, Ctx: ctx}, []string{"snapshot", "--file", snap, "--json", "--watch"})
	if code != 0 || time.Since(start) < time.Second {
		t.Fatalf("--watch: exit %d after %v: %s", code, time.Since(start), errb.String())
	}
	// Refreshed every 500 ms for 1.2 s: 3 printings, each one line.
	if n := strings.Count(out.String(), "\n"); n < 2 || n > 4 {
		t.Errorf("--watch printed %d lines in 1.2 s:\n%s", n, out.String())
	}
	if strings.Contains(out.String(), "\x1b[") {
		t.Error("escape codes written to a non-terminal")
	}
}

func TestSnapshotErrors(t *testing.T) {
	_, snap, _ := importAMZN(t)
	for _, args := range [][]string{
		{"snapshot"},
		{"snapshot", "--file", snap, "extra"},
		{"snapshot", "--file", snap, "--bogus"},
	} {
		if code, _, stderr := run(t, args...); code != ExitUsage || stderr == "" {
			t.Errorf("%q: exit %d, want 2", args[1:], code)
		}
	}
	for _, args := range [][]string{
		{"snapshot", "--file", snap + ".missing"},
		{"snapshot", "--file", snap, "--instrument", "MSFT"},
		{"snapshot", "--file", snap, "--instrument", "99999999"},
	} {
		if code, _, stderr := run(t, args...); code != ExitData || stderr == "" {
			t.Errorf("%q: exit %d stderr %q, want 1 with a message", args[1:], code, stderr)
		}
	}
}
