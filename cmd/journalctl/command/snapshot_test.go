package command

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mdjournal/mdjournal/snapshot"
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
		{"snapshot", "--file", snap, "--instrument", "3"}, // a slot never written
		{"snapshot", "--file", filepath.Dir(snap)},        // a directory
	} {
		if code, _, stderr := run(t, args...); code != ExitData || stderr == "" {
			t.Errorf("%q: exit %d stderr %q, want 1 with a message", args[1:], code, stderr)
		}
	}
	if _, _, stderr := run(t, "snapshot", "--file", snap, "--instrument", "MSFT"); !strings.Contains(stderr, `no instrument with symbol "MSFT"`) {
		t.Errorf("unknown symbol: %q", stderr)
	}
}

// TestSnapshotWatchFollowsRebuild: the maintainer rebuilds a snapshot by
// renaming a new file over it; --watch reopens it and shows the new
// content instead of the old file's frozen one.
func TestSnapshotWatchFollowsRebuild(t *testing.T) {
	_, snap, _ := importAMZN(t)
	r, err := snapshot.Open(snap)
	if err != nil {
		t.Fatal(err)
	}
	id, jid, depth := uint32(7), r.JournalID(), r.Depth()
	r.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out, errb syncBuffer
	done := make(chan int, 1)
	go func() {
		done <- Run(&Env{Stdin: strings.NewReader(""), Stdout: &out, Stderr: &errb, Ctx: ctx},
			[]string{"snapshot", "--file", snap, "--instrument", "AMZN", "--json", "--watch"})
	}()
	waitFor := func(what string, ok func(string) bool) {
		t.Helper()
		for deadline := time.Now().Add(20 * time.Second); !ok(out.String()); {
			select {
			case code := <-done:
				t.Fatalf("--watch ended (exit %d) before %s: %s", code, what, errb.String())
			default:
			}
			if time.Now().After(deadline) {
				t.Fatalf("no %s in 20 s:\n%s", what, out.String())
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	waitFor("first printing", func(s string) bool { return strings.Contains(s, `"symbol":"AMZN"`) })
	// Rebuild: a new file with another book for AMZN, renamed over the old.
	w, err := snapshot.Prepare(snap, snapshot.Options{Depth: depth, Capacity: 8, JournalID: jid})
	if err != nil {
		t.Fatal(err)
	}
	var sym [16]byte
	copy(sym[:], "AMZN")
	w.SetInstrument(id, sym, 4)
	w.Publish(id, 987654321, 1, []snapshot.Level{{Price: 1234500, Qty: 7}}, nil, snapshot.Trade{})
	if err := w.Install(); err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	waitFor("rebuilt content", func(s string) bool {
		return strings.Contains(s, `"seq":987654321`) && strings.Contains(s, `"price":"123.4500"`)
	})
	cancel()
	select {
	case code := <-done:
		if code != 0 {
			t.Fatalf("exit %d: %s", code, errb.String())
		}
	case <-time.After(20 * time.Second):
		t.Fatal("--watch did not end after its context was cancelled")
	}
}

// TestSnapshotWatchSignals runs the built journalctl: `snapshot --watch`
// prints the book with its symbol and decimal prices, and SIGTERM or SIGINT
// ends it with exit 0.
func TestSnapshotWatchSignals(t *testing.T) {
	needBinary(t)
	_, snap, _ := importAMZN(t)
	r, err := snapshot.Open(snap)
	if err != nil {
		t.Fatal(err)
	}
	var sb snapshot.Book
	if err := r.Read(7, &sb); err != nil || len(sb.Bids) == 0 || sb.PriceScale != 4 {
		t.Fatalf("slot 7: %v %+v", err, sb)
	}
	r.Close()
	// The best bid as a decimal, computed here (LOBSTER prices are in units
	// of 1/10000 dollar).
	bid := fmt.Sprintf("%d.%04d", sb.Bids[0].Price/10000, sb.Bids[0].Price%10000)
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGINT} {
		t.Run(sig.String(), func(t *testing.T) {
			cmd := exec.Command(benchBinary, "snapshot", "--file", snap, "--watch")
			var out, errb syncBuffer
			cmd.Stdout, cmd.Stderr = &out, &errb
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			defer cmd.Process.Kill()
			for deadline := time.Now().Add(20 * time.Second); strings.Count(out.String(), "last applied") < 2; {
				if time.Now().After(deadline) {
					t.Fatalf("no two refreshes in 20 s:\n%s%s", out.String(), errb.String())
				}
				time.Sleep(10 * time.Millisecond)
			}
			if s := out.String(); !strings.Contains(s, "AMZN  instrument 7") || !strings.Contains(s, " "+bid+" ") {
				t.Errorf("output lacks the symbol or the decimal best bid %s:\n%s", bid, s)
			}
			cmd.Process.Signal(sig)
			waited := make(chan error, 1)
			go func() { waited <- cmd.Wait() }()
			select {
			case err := <-waited:
				if err != nil {
					t.Fatalf("after %v: %v: %s", sig, err, errb.String())
				}
			case <-time.After(20 * time.Second):
				t.Fatalf("still running 20 s after %v", sig)
			}
		})
	}
}
