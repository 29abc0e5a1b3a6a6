package command

import (
	"bufio"
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
	"github.com/spf13/pflag"
	"golang.org/x/sys/unix"

	"github.com/mdjournal/mdjournal/export"
	"github.com/mdjournal/mdjournal/journal"
	"github.com/mdjournal/mdjournal/reader"
)

// runExportCmd runs `journalctl export ARGS` in-process. Until the verb is
// in commands() (root.go) it dispatches to runExport the way Run does.
func runExportCmd(t *testing.T, env *Env, args ...string) int {
	t.Helper()
	if _, ok := lookup("export"); ok {
		return Run(env, append([]string{"export"}, args...))
	}
	err := runExport(env, args)
	var ue *UsageError
	switch {
	case err == nil, errors.Is(err, pflag.ErrHelp):
		return ExitOK
	case errors.As(err, &ue):
		fmt.Fprintf(env.Stderr, "journalctl export: %s\nRun 'journalctl export --help' for usage.\n", ue.Msg)
		return ExitUsage
	default:
		fmt.Fprintf(env.Stderr, "journalctl export: %v\n", err)
		return ExitData
	}
}

func exportCmd(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := runExportCmd(t, &Env{Stdin: strings.NewReader(""), Stdout: &out, Stderr: &errb, Ctx: context.Background()}, args...)
	return code, out.String(), errb.String()
}

// lobsterJournal imports the LOBSTER excerpt in testdata/lobster (AMZN,
// 20000 messages with their order book) as instrument 7, in 256 KiB
// segments so that definitions are re-stated.
func lobsterJournal(t *testing.T) string {
	t.Helper()
	data := filepath.Join("..", "..", "..", "testdata", "lobster")
	dir := filepath.Join(t.TempDir(), "j")
	code, out, errs := run(t, "import", "--dir", dir, "--format", "lobster", "--symbol", "AMZN", "--date", "2012-06-21",
		"--instrument", "7", "--segment-size", "256KiB",
		"--orderbook", filepath.Join(data, "AMZN_2012-06-21_34200000_57600000_orderbook_5.csv.gz"),
		filepath.Join(data, "AMZN_2012-06-21_34200000_57600000_message_5.csv.gz"))
	if code != 0 {
		t.Fatalf("import: exit %d\n%s%s", code, out, errs)
	}
	return dir
}

func TestExportUsageErrorsExit2(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "x.parquet")
	for _, c := range []struct {
		args []string
		want string // in the message
	}{
		{[]string{"--out", out}, "--dir"},
		{[]string{"--dir", dir}, "--out"},
		{[]string{"--dir", dir, "--out", filepath.Join(dir, "x.txt")}, "--format"},
		{[]string{"--dir", dir, "--out", out, "--format", "xml"}, "--format"},
		{[]string{"--dir", dir, "--out", out, "--from", "yesterday"}, "--from"},
		{[]string{"--dir", dir, "--out", out, "--to", "start"}, "--to"},
		{[]string{"--dir", dir, "--out", out, "--instrument", "A B"}, "--instrument"},
		{[]string{"--dir", dir, "--out", out, "--instrument", ","}, "--instrument"},
		{[]string{"--dir", dir, "--out", out, "--instrument", "12345678901234567"}, "--instrument"},
		{[]string{"--dir", dir, "--out", out, "--type", "nosuch"}, "--type"},
		{[]string{"--dir", dir, "--out", out, "--type", "segment_end"}, "--type"},
		{[]string{"--dir", dir, "--out", out, "--type", ",,"}, "--type"},
		{[]string{"--dir", dir, "--out", out, "--row-group", "0"}, "--row-group"},
		{[]string{"--dir", dir, "--out", out, "--compression", "lzma"}, "--compression"},
		{[]string{"--dir", dir, "--out", filepath.Join(dir, "x.csv"), "--row-group", "10"}, "parquet only"},
		{[]string{"--dir", dir, "--out", out, "extra"}, "extra"},
		{[]string{"--dir", dir, "--out", out, "--bogus"}, "bogus"},
	} {
		code, stdout, stderr := exportCmd(t, c.args...)
		if code != ExitUsage || !strings.Contains(stderr, c.want) || stdout != "" {
			t.Errorf("%q: exit %d, stderr %q; want exit 2 naming %s", c.args, code, stderr, c.want)
		}
	}
	if left, _ := os.ReadDir(dir); len(left) != 0 {
		t.Errorf("usage errors left files behind: %v", left)
	}
}

// A data problem (no journal) exits 1 and leaves neither the output nor a
// temporary file.
func TestExportNoJournalExit1(t *testing.T) {
	tmp := t.TempDir()
	out := filepath.Join(tmp, "out.parquet")
	code, _, stderr := exportCmd(t, "--dir", filepath.Join(tmp, "none"), "--out", out)
	if code != ExitData || stderr == "" {
		t.Fatalf("exit %d, stderr %q; want 1 with a message", code, stderr)
	}
	if left, _ := os.ReadDir(tmp); len(left) != 0 {
		t.Errorf("left behind: %v", left)
	}
}

// The LOBSTER day exported to Parquet, read back with Apache Arrow: every
// value equals what the reader library reads, and a sample of rows equals
// what `journalctl dump --format json` prints. The CSV export of the same
// day has the same rows, and its prices are dump's decimal strings.
func TestExportLOBSTERParquetAndCSV(t *testing.T) {
	dir := lobsterJournal(t)
	tmp := t.TempDir()
	pq, cs := filepath.Join(tmp, "amzn.parquet"), filepath.Join(tmp, "amzn.csv")
	code, out, errs := exportCmd(t, "--dir", dir, "--out", pq, "--row-group", "5000")
	if code != 0 || errs != "" {
		t.Fatalf("export parquet: exit %d\n%s%s", code, out, errs)
	}
	want := lobsterRows(t, dir)
	if !strings.Contains(out, fmt.Sprintf("rows=%d ", len(want))) || !strings.HasPrefix(out, "format=parquet ") {
		t.Errorf("summary %q, want rows=%d", out, len(want))
	}
	b, err := os.ReadFile(pq)
	if err != nil {
		t.Fatal(err)
	}
	got, rowGroups := arrowTable(t, b)
	if len(got) != len(want) {
		t.Fatalf("arrow read %d rows, the reader %d", len(got), len(want))
	}
	if rowGroups != (len(want)+4999)/5000 {
		t.Errorf("%d row groups, want %d", rowGroups, (len(want)+4999)/5000)
	}
	restated := 0
	for i := range want {
		for _, c := range export.Columns() {
			if got[i][c] != want[i][c] {
				t.Fatalf("row %d (seq %v %v) column %s: arrow %#v, reader %#v", i, want[i]["seq"], want[i]["type"], c, got[i][c], want[i][c])
			}
		}
		if want[i]["restated"] == true {
			restated++
		}
	}
	if restated == 0 {
		t.Error("no re-stated definition: the journal did not roll")
	}

	// dump --format json, every 37th row (and the first and last).
	code, dump, _ := run(t, "dump", "--dir", dir, "--format", "json")
	lines := strings.Split(strings.TrimSpace(dump), "\n")
	if code != 0 || len(lines) != len(want) {
		t.Fatalf("dump: exit %d, %d lines for %d frames", code, len(lines), len(want))
	}
	checked := 0
	for i := 0; i < len(lines); i += 37 {
		if i+37 >= len(lines) {
			i = len(lines) - 1
		}
		var j map[string]any
		if err := json.Unmarshal([]byte(lines[i]), &j); err != nil {
			t.Fatal(err)
		}
		if d := sameAsDump(got[i], j); d != "" {
			t.Fatalf("row %d: %s\njson: %s", i, d, lines[i])
		}
		checked++
	}
	if checked < 100 {
		t.Errorf("only %d rows compared with dump", checked)
	}

	code, out, errs = exportCmd(t, "--dir", dir, "--out", cs)
	if code != 0 || !strings.HasPrefix(out, "format=csv ") {
		t.Fatalf("export csv: exit %d\n%s%s", code, out, errs)
	}
	f, err := os.Open(cs)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	recs, err := csv.NewReader(bufio.NewReader(f)).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != len(want)+1 || !slices.Equal(recs[0], export.Columns()) {
		t.Fatalf("csv: %d records (want %d), header %v", len(recs), len(want)+1, recs[0])
	}
	col := map[string]int{}
	for i, c := range recs[0] {
		col[c] = i
	}
	for i := 0; i < len(lines); i += 37 {
		var j map[string]any
		json.Unmarshal([]byte(lines[i]), &j)
		rec := recs[i+1]
		for _, k := range []string{"price", "bid_price", "ask_price", "tick_size"} {
			if s, ok := j[k].(string); ok && rec[col[k]] != s {
				t.Fatalf("csv row %d %s = %q, dump says %q", i, k, rec[col[k]], s)
			}
		}
		if rec[col["seq"]] != fmt.Sprint(j["seq"]) || rec[col["ts"]] != j["ts"] || rec[col["type"]] != j["type"] {
			t.Fatalf("csv row %d: %v\ndump: %s", i, rec, lines[i])
		}
	}
}

// sameAsDump compares an exported row with dump's JSON of the same frame:
// every field dump prints.
func sameAsDump(row map[string]any, j map[string]any) string {
	ts, err := time.Parse(time.RFC3339Nano, j["ts"].(string))
	if err != nil {
		return err.Error()
	}
	if row["seq"] != uint64(j["seq"].(float64)) || row["ts"] != ts.UnixNano() || row["type"] != j["type"] ||
		row["instrument"] != uint32(j["instrument"].(float64)) || row["symbol"] != j["symbol"] {
		return fmt.Sprintf("header fields differ: %v", row)
	}
	scale, _ := row["price_scale"].(int32)
	for _, k := range []string{"price", "bid_price", "ask_price", "tick_size"} {
		s, ok := j[k].(string)
		if !ok {
			continue
		}
		p, err := journal.ParsePrice(s, scale)
		if err != nil || row[k] != p {
			return fmt.Sprintf("%s: row %v (scale %d), dump %q", k, row[k], scale, s)
		}
	}
	for _, k := range []string{"qty", "bid_qty", "ask_qty"} {
		if v, ok := j[k].(float64); ok && row[k] != int64(v) {
			return fmt.Sprintf("%s: row %v, dump %v", k, row[k], v)
		}
	}
	for _, k := range []string{"order_id", "trade_id"} {
		if v, ok := j[k].(float64); ok && row[k] != uint64(v) {
			return fmt.Sprintf("%s: row %v, dump %v", k, row[k], v)
		}
	}
	if s, ok := j["side"].(string); ok && row["side"] != s {
		return fmt.Sprintf("side: row %v, dump %q", row["side"], s)
	}
	if a, ok := j["aggressor"].(string); ok && row["side"] != map[string]string{"buy": "bid", "sell": "ask", "unknown": "none"}[a] {
		return fmt.Sprintf("aggressor: row %v, dump %q", row["side"], a)
	}
	if h := j["hidden"] == true; (row["hidden"] == true) != h {
		return fmt.Sprintf("hidden: row %v, dump %v", row["hidden"], j["hidden"])
	}
	if s, ok := j["symbol_def"].(string); ok && (row["symbol"] != s || row["price_scale"] != int32(j["price_scale"].(float64))) {
		return fmt.Sprintf("definition: row %v, dump %v", row, j)
	}
	return ""
}

// lobsterRows reads dir with the reader library and maps each frame to the
// columns by the test's own code (the frame types a LOBSTER import writes).
func lobsterRows(t *testing.T, dir string) []map[string]any {
	t.Helper()
	r, err := reader.Open(dir, reader.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	sides := map[journal.Side]string{0: "none", 1: "bid", 2: "ask"}
	var rows []map[string]any
	for {
		f, ok, err := r.TryNext()
		if err != nil {
			t.Fatal(err)
		}
		if !ok {
			return rows
		}
		m := map[string]any{}
		for _, c := range export.Columns() {
			m[c] = nil
		}
		m["seq"], m["ts"], m["type"], m["restated"], m["instrument"] = f.Seq, f.TS, f.Type.String(), f.Restated(), f.Instrument
		if in, ok := r.Catalog().Lookup(f.Instrument); ok && in.Symbol != "" {
			m["symbol"], m["price_scale"] = in.Symbol, in.PriceScale
		}
		switch f.Type {
		case journal.TypeInstrumentDef:
			var d journal.InstrumentDef
			d.Decode(f.Payload)
			m["symbol"], m["price_scale"], m["tick_size"] = d.SymbolString(), d.PriceScale, d.TickSize
		case journal.TypeTrade:
			var x journal.Trade
			x.Decode(f.Payload)
			m["side"], m["price"], m["qty"], m["trade_id"], m["hidden"] = sides[x.Aggressor], x.Price, x.Qty, x.TradeID, x.Flags&journal.FlagHidden != 0
		case journal.TypeBookLevel:
			var x journal.BookLevel
			x.Decode(f.Payload)
			m["side"], m["price"], m["qty"] = sides[x.Side], x.Price, x.Qty
		case journal.TypeOrderAdd, journal.TypeOrderCancel, journal.TypeOrderDelete, journal.TypeOrderExecute:
			var x journal.Order
			x.Decode(f.Payload)
			m["order_id"], m["side"], m["price"], m["qty"], m["hidden"] = x.OrderID, sides[x.Side], x.Price, x.Qty, x.Flags&journal.FlagHidden != 0
		default:
			t.Fatalf("seq %d: a LOBSTER import wrote a %s frame; the test maps only what it writes", f.Seq, f.Type)
		}
		rows = append(rows, m)
	}
}

// arrowTable reads a Parquet file with Apache Arrow's reader into rows of
// Go values (nil for null; timestamps as Unix ns) and its row-group count.
func arrowTable(t *testing.T, b []byte) ([]map[string]any, int) {
	t.Helper()
	pf, err := file.NewParquetReader(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("arrow: %v", err)
	}
	fr, err := pqarrow.NewFileReader(pf, pqarrow.ArrowReadProperties{BatchSize: 1 << 16}, memory.DefaultAllocator)
	if err != nil {
		t.Fatalf("arrow: %v", err)
	}
	tbl, err := fr.ReadTable(context.Background())
	if err != nil {
		t.Fatalf("arrow: %v", err)
	}
	defer tbl.Release()
	rows := make([]map[string]any, tbl.NumRows())
	for i := range rows {
		rows[i] = map[string]any{}
	}
	for c := 0; c < int(tbl.NumCols()); c++ {
		col := tbl.Column(c)
		i := 0
		for _, ch := range col.Data().Chunks() {
			for j := 0; j < ch.Len(); j++ {
				rows[i][col.Name()] = arrowCell(t, ch, j)
				i++
			}
		}
	}
	return rows, pf.NumRowGroups()
}

func arrowCell(t *testing.T, a arrow.Array, i int) any {
	if a.IsNull(i) {
		return nil
	}
	switch a := a.(type) {
	case *array.Uint64:
		return a.Value(i)
	case *array.Uint32:
		return a.Value(i)
	case *array.Uint16:
		return a.Value(i)
	case *array.Int64:
		return a.Value(i)
	case *array.Int32:
		return a.Value(i)
	case *array.Boolean:
		return a.Value(i)
	case *array.String:
		return a.Value(i)
	case *array.Binary:
		return string(a.Value(i))
	case *array.Timestamp:
		return int64(a.Value(i))
	}
	t.Fatalf("arrow: unexpected array type %s", a.DataType())
	return nil
}

// Filters on the command line select the same rows as a loop over the
// reader; --instrument takes a symbol or an id; --out - writes to stdout
// and the summary to stderr.
func TestExportFiltersAndStdout(t *testing.T) {
	dir := lobsterJournal(t)
	all := lobsterRows(t, dir)
	count := func(keep func(m map[string]any) bool) int {
		n := 0
		for _, m := range all {
			if keep(m) {
				n++
			}
		}
		return n
	}
	lo, hi := uint64(len(all)/4), uint64(len(all)/2)
	want := count(func(m map[string]any) bool {
		s := m["seq"].(uint64)
		return s >= lo && s <= hi && (m["type"] == "trade" || m["type"] == "order_delete")
	})
	if want == 0 {
		t.Fatal("the selection is empty: it tests nothing")
	}
	for _, instr := range []string{"AMZN", "7", "7,AMZN,99"} {
		code, out, errs := exportCmd(t, "--dir", dir, "--out", "-", "--format", "csv", "--from", fmt.Sprintf("seq:%d", lo),
			"--to", fmt.Sprintf("seq:%d", hi), "--type", "trade,order_delete", "--instrument", instr)
		if code != 0 {
			t.Fatalf("exit %d: %s", code, errs)
		}
		recs, err := csv.NewReader(strings.NewReader(out)).ReadAll()
		if err != nil || len(recs)-1 != want {
			t.Fatalf("--instrument %s: %d records (%v), want %d", instr, len(recs)-1, err, want)
		}
		if !strings.Contains(errs, fmt.Sprintf("rows=%d ", want)) {
			t.Errorf("summary on stderr: %q", errs)
		}
	}
	code, out, _ := exportCmd(t, "--dir", dir, "--out", "-", "--format", "csv", "--instrument", "MSFT")
	if code != 0 || strings.Count(out, "\n") != 1 {
		t.Errorf("--instrument MSFT: exit %d, %d lines; want the header alone", code, strings.Count(out, "\n"))
	}
	nr := count(func(m map[string]any) bool { return m["restated"] == false })
	code, _, errs := exportCmd(t, "--dir", dir, "--out", "-", "--format", "parquet", "--skip-restated")
	if code != 0 || !strings.Contains(errs, fmt.Sprintf("rows=%d ", nr)) || nr == len(all) {
		t.Errorf("--skip-restated: exit %d, %q; want rows=%d of %d", code, errs, nr, len(all))
	}
}

// On a terminal, the progress bar goes to stderr; elsewhere (every other
// test) stderr stays empty.
func TestExportProgressOnTerminal(t *testing.T) {
	master, slave := openPTY(t)
	dir := lobsterJournal(t)
	done := make(chan []byte)
	go func() {
		var b bytes.Buffer
		buf := make([]byte, 4096)
		for {
			n, err := master.Read(buf)
			b.Write(buf[:n])
			if err != nil { // EIO once the slave side is closed
				done <- b.Bytes()
				return
			}
		}
	}()
	var out bytes.Buffer
	env := &Env{Stdin: strings.NewReader(""), Stdout: &out, Stderr: slave, Ctx: context.Background()}
	code := runExportCmd(t, env, "--dir", dir, "--out", filepath.Join(t.TempDir(), "x.parquet"))
	slave.Close()
	var tty []byte
	select {
	case tty = <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("the terminal reader did not finish within 30s")
	}
	if code != 0 || !strings.HasPrefix(out.String(), "format=parquet") {
		t.Fatalf("exit %d, stdout %q", code, out.String())
	}
	if !bytes.Contains(tty, []byte("exporting")) || !bytes.Contains(tty, []byte("100%")) {
		t.Errorf("no progress bar on the terminal: %q", tty)
	}
}

// openPTY opens a pseudo-terminal pair (master, slave).
func openPTY(t *testing.T) (*os.File, *os.File) {
	t.Helper()
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("SKIPPED: no pseudo-terminal on this machine (%v): the progress bar is not tested", err)
	}
	t.Cleanup(func() { m.Close() })
	if err := unix.IoctlSetPointerInt(int(m.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Fatalf("unlock pty: %v", err)
	}
	n, err := unix.IoctlGetInt(int(m.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Fatalf("pty number: %v", err)
	}
	s, err := os.OpenFile("/dev/pts/"+strconv.Itoa(n), os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Fatalf("open pty slave: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	if err := unix.IoctlSetWinsize(int(s.Fd()), unix.TIOCSWINSZ, &unix.Winsize{Row: 24, Col: 100}); err != nil {
		t.Fatalf("pty size: %v", err)
	}
	return m, s
}
