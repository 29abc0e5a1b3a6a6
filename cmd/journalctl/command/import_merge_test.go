package command

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mdjournal/mdjournal/internal/testutil"
	"github.com/mdjournal/mdjournal/journal"
)

var lobsterDays = []struct{ sym, msg, book string }{
	{"AAPL", "AAPL_2012-06-21_34200000_57600000_message_1.csv", "AAPL_2012-06-21_34200000_57600000_orderbook_1.csv"},
	{"AMZN", amznMsg5, amznBook5},
	{"GOOG", "GOOG_2012-06-21_34200000_57600000_message_10.csv", "GOOG_2012-06-21_34200000_57600000_orderbook_10.csv"},
}

// Three LOBSTER days given at once are merged in time order, each symbol
// with its own id, symbol and date taken from the file names, orderbooks
// found beside the message files; the book of each symbol at three instants
// is the publisher's orderbook row.
func TestImportThreeSymbolsMerged(t *testing.T) {
	data := testutil.SharedData(t, "lobster/head2000")
	dir := filepath.Join(t.TempDir(), "j")
	args := []string{"import", "--dir", dir}
	for _, d := range lobsterDays {
		args = append(args, filepath.Join(data, d.msg))
	}
	code, out, errs := run(t, args...)
	if code != 0 || errs != "" {
		t.Fatalf("import: exit %d\n%s%s", code, out, errs)
	}
	for i, d := range lobsterDays {
		if !strings.Contains(out, fmt.Sprintf("symbol=%s instrument=%d ", d.sym, i+1)) {
			t.Errorf("summary lacks %s as instrument %d:\n%s", d.sym, i+1, out)
		}
	}
	// Time order over the whole journal, every instrument present.
	_, dump, _ := run(t, "dump", "--dir", dir, "--format", "json", "--tz", "UTC")
	var prev string
	seen := map[string]int{}
	for _, line := range strings.Split(strings.TrimSpace(dump), "\n") {
		var f struct {
			TS     string `json:"ts"`
			Symbol string `json:"symbol"`
		}
		if err := json.Unmarshal([]byte(line), &f); err != nil {
			t.Fatalf("%v: %s", err, line)
		}
		a, _ := time.Parse(time.RFC3339Nano, f.TS)
		b, _ := time.Parse(time.RFC3339Nano, prev)
		if prev != "" && a.Before(b) {
			t.Fatalf("time goes back: %s after %s", f.TS, prev)
		}
		prev = f.TS
		seen[f.Symbol]++
	}
	for _, d := range lobsterDays {
		if seen[d.sym] < 2000 {
			t.Errorf("%d frames of %s", seen[d.sym], d.sym)
		}
	}
	for i, d := range lobsterDays {
		rows := readLobster(t, filepath.Join(data, d.msg), filepath.Join(data, d.book))
		levels := len(strings.Split(strings.SplitN(mustRead(t, filepath.Join(data, d.book)), "\n", 2)[0], ",")) / 4
		for _, k := range []int{3, len(rows) / 2, len(rows) - 1} {
			for k < len(rows)-1 && (rows[k+1].ts == rows[k].ts || !rows[k].exact) {
				k++
			}
			r := rows[k]
			at := "time:" + time.Unix(0, r.ts).UTC().Format(time.RFC3339Nano)
			got := bookAt(t, "--dir", dir, "--instrument", d.sym, "--at", at, "--depth", fmt.Sprint(levels), "--json")
			if got.Instrument != uint32(i+1) || got.Symbol != d.sym {
				t.Fatalf("%s: instrument %d %q", d.sym, got.Instrument, got.Symbol)
			}
			if fmt.Sprint(got.Bids) != fmt.Sprint(r.bids) || fmt.Sprint(got.Asks) != fmt.Sprint(r.asks) {
				t.Errorf("%s message %d (%s):\n bids %v\n asks %v\nLOBSTER row\n bids %v\n asks %v", d.sym, k+1, at, got.Bids, got.Asks, r.bids, r.asks)
			}
		}
	}
}

func mustRead(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// filesExceptLock is the journal's content, leaving out journal.lock (a
// refused import may still take and release the lock).
func filesExceptLock(t *testing.T, dir string) map[string][]byte {
	m := testutil.Files(t, dir)
	delete(m, filepath.Join(dir, journal.LockFile))
	return m
}

// An import that fails on its input leaves the journal exactly as it was,
// and importing the same day again is refused instead of duplicated.
func TestImportAllOrNothing(t *testing.T) {
	data := testutil.SharedData(t, "lobster/head2000")
	tmp := t.TempDir()
	dir := filepath.Join(tmp, "j")
	goog := filepath.Join(data, lobsterDays[2].msg)
	if code, out, errs := run(t, "import", "--dir", dir, goog); code != 0 {
		t.Fatalf("import GOOG: exit %d\n%s%s", code, out, errs)
	}
	before := filesExceptLock(t, dir)

	// A gzip file whose data decompresses but whose CRC does not match:
	// only its end says so, after every row was read.
	plain := []byte(mustRead(t, filepath.Join(data, amznMsg5)))
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(plain)
	zw.Close()
	b := gz.Bytes()
	b[len(b)-8] ^= 0x01 // the CRC-32 of the trailer
	bad := filepath.Join(tmp, "AMZN_2012-06-21_34200000_57600000_message_5.csv.gz")
	os.WriteFile(bad, b, 0o644)
	os.WriteFile(filepath.Join(tmp, "AMZN_2012-06-21_34200000_57600000_orderbook_5.csv"), []byte(mustRead(t, filepath.Join(data, amznBook5))), 0o644)
	code, _, errs := run(t, "import", "--dir", dir, bad)
	if code != ExitData || !strings.Contains(errs, "checksum") || !strings.Contains(errs, bad) || !strings.Contains(errs, "nothing was written") {
		t.Errorf("bad gzip CRC: exit %d, stderr %q", code, errs)
	}
	testutil.SameFiles(t, before, filesExceptLock(t, dir), "an import of a corrupt gzip file")

	// An orderbook with one row more than the messages.
	msg := filepath.Join(tmp, amznMsg5)
	os.WriteFile(msg, plain, 0o644)
	book := mustRead(t, filepath.Join(data, amznBook5))
	last := book[strings.LastIndex(strings.TrimRight(book, "\n"), "\n")+1:]
	os.WriteFile(filepath.Join(tmp, amznBook5), []byte(book+last), 0o644)
	code, _, errs = run(t, "import", "--dir", dir, msg)
	if code != ExitData || !strings.Contains(errs, "more rows") || strings.Contains(errs, "nil") {
		t.Errorf("extra orderbook row: exit %d, stderr %q", code, errs)
	}
	testutil.SameFiles(t, before, filesExceptLock(t, dir), "an import with an extra orderbook row")

	// The same day again.
	code, _, errs = run(t, "import", "--dir", dir, goog)
	if code != ExitData || !strings.Contains(errs, "imported already") {
		t.Errorf("re-import: exit %d, stderr %q", code, errs)
	}
	testutil.SameFiles(t, before, filesExceptLock(t, dir), "a re-import of the same day")
}

// A new symbol gets a new id, never another symbol's; an explicit id that
// belongs to another symbol is refused.
func TestImportNeverMergesInstruments(t *testing.T) {
	data := testutil.SharedData(t, "lobster/head2000")
	dir := filepath.Join(t.TempDir(), "j")
	aapl, goog := filepath.Join(data, lobsterDays[0].msg), filepath.Join(data, lobsterDays[2].msg)
	if code, _, errs := run(t, "import", "--dir", dir, aapl); code != 0 {
		t.Fatalf("import AAPL: %s", errs)
	}
	if code, _, errs := run(t, "import", "--dir", dir, "--instrument", "1", goog); code != ExitData || !strings.Contains(errs, "is AAPL") {
		t.Errorf("GOOG as instrument 1: exit %d, stderr %q", code, errs)
	}
	if code, _, errs := run(t, "import", "--dir", dir, goog); code != 0 {
		t.Fatalf("import GOOG: %s", errs)
	}
	a := bookAt(t, "--dir", dir, "--instrument", "AAPL", "--json")
	g := bookAt(t, "--dir", dir, "--instrument", "GOOG", "--json")
	if a.Instrument != 1 || g.Instrument != 2 {
		t.Fatalf("AAPL is %d, GOOG is %d", a.Instrument, g.Instrument)
	}
	for _, b := range []bookJSON{a, g} {
		if len(b.Bids) == 0 || len(b.Asks) == 0 || b.Bids[0].Price >= b.Asks[0].Price {
			t.Errorf("%s book crossed or empty: %v / %v", b.Symbol, b.Bids, b.Asks)
		}
	}
}

// Two symbols of one day imported one after the other: the journal's time
// goes back where the second starts. Time positions and bounds still mean
// something exact (format.md §5): book --at time: per instrument matches
// the publisher's rows, dump --from time: starts at the first occurrence
// in seq order, and an instrument selection gives that instrument's range.
func TestTimeBoundsWhenTimeGoesBack(t *testing.T) {
	data := testutil.SharedData(t, "lobster/head2000")
	dir := filepath.Join(t.TempDir(), "j")
	for _, d := range []int{0, 2} { // AAPL, then GOOG
		if code, _, errs := run(t, "import", "--dir", dir, filepath.Join(data, lobsterDays[d].msg)); code != 0 {
			t.Fatalf("import %s: %s", lobsterDays[d].sym, errs)
		}
	}
	for _, d := range []int{0, 2} {
		day := lobsterDays[d]
		rows := readLobster(t, filepath.Join(data, day.msg), filepath.Join(data, day.book))
		for _, k := range []int{10, len(rows) / 2, len(rows) - 2} {
			for k < len(rows)-1 && (rows[k+1].ts == rows[k].ts || !rows[k].exact) {
				k++
			}
			at := "time:" + time.Unix(0, rows[k].ts).UTC().Format(time.RFC3339Nano)
			got := bookAt(t, "--dir", dir, "--instrument", day.sym, "--at", at, "--depth", "1", "--json")
			if fmt.Sprint(got.Bids) != fmt.Sprint(rows[k].bids[:min(1, len(rows[k].bids))]) || fmt.Sprint(got.Asks) != fmt.Sprint(rows[k].asks[:min(1, len(rows[k].asks))]) {
				t.Errorf("%s at %s: %v / %v, LOBSTER %v / %v", day.sym, at, got.Bids, got.Asks, rows[k].bids, rows[k].asks)
			}
		}
		// dump of this instrument from a time: its first frame is the first
		// message at or after that time.
		k := len(rows) / 3
		at := time.Unix(0, rows[k].ts).UTC()
		first := k
		for first > 0 && rows[first-1].ts >= rows[k].ts {
			first--
		}
		code, out, errs := run(t, "dump", "--dir", dir, "--instrument", day.sym, "--type", "order_add,order_cancel,order_delete,order_execute,trade",
			"--from", "time:"+at.Format(time.RFC3339Nano), "--count", "3", "--format", "json")
		var f struct {
			TS   string `json:"ts"`
			Type string `json:"type"`
		}
		for _, line := range strings.Split(strings.TrimSpace(out), "\n") { // definitions always pass: the first other frame
			if err := json.Unmarshal([]byte(line), &f); err != nil || code != 0 {
				t.Fatalf("dump %s --from %s: exit %d %s%s", day.sym, at, code, out, errs)
			}
			if f.Type != "instrument_def" && f.Type != "trading_status" {
				break
			}
		}
		if want := time.Unix(0, rows[first].ts).UTC().Format(time.RFC3339Nano); f.TS != want {
			t.Errorf("dump %s --from %s starts at %s, want %s", day.sym, at.Format(time.RFC3339Nano), f.TS, want)
		}
	}
}
