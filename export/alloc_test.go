package export

import (
	"bytes"
	"io"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/mdjournal/mdjournal/journal"
	"github.com/mdjournal/mdjournal/reader"
)

// framesOf reads every frame of dir, with copied payloads, and the
// catalogue at the end (complete: every instrument defined).
func framesOf(t testing.TB, dir string) ([]journal.Frame, *journal.Catalog) {
	t.Helper()
	r, err := reader.Open(dir, reader.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var fs []journal.Frame
	for {
		f, ok, err := r.TryNext()
		if err != nil {
			t.Fatal(err)
		}
		if !ok {
			return fs, r.Catalog().Clone()
		}
		f.Payload = append([]byte(nil), f.Payload...)
		fs = append(fs, f)
	}
}

// countingWriter counts the bytes written to it and keeps them (unless
// discard).
type countingWriter struct {
	n       int64
	buf     bytes.Buffer
	discard bool
}

func (w *countingWriter) Write(p []byte) (int, error) {
	w.n += int64(len(p))
	if w.discard {
		return len(p), nil
	}
	return w.buf.Write(p)
}

// The Parquet writer writes row groups out as they fill: by the time Close
// is called, every row group but the last is out (less parquet-go's 32 KiB
// output buffer), so memory does not grow with the export.
func TestParquetWritesAsItGoes(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "j")
	buildJournal(t, dir, 30_000)
	frames, cat := framesOf(t, dir)
	var out countingWriter
	pw, err := NewParquet(&out, ParquetOptions{RowGroupRows: 2000})
	if err != nil {
		t.Fatal(err)
	}
	var at []int64 // bytes out after each 2000 rows
	for i := range frames {
		if err := pw.WriteFrame(&frames[i], cat); err != nil {
			t.Fatal(err)
		}
		if (i+1)%2000 == 0 {
			at = append(at, out.n)
		}
	}
	before := out.n
	if err := pw.Close(); err != nil {
		t.Fatal(err)
	}
	if pw.Rows() != int64(len(frames)) {
		t.Errorf("Rows() = %d, want %d", pw.Rows(), len(frames))
	}
	pf, _ := arrowFile(t, out.buf.Bytes())
	md := pf.MetaData()
	var full int64 // bytes of every row group but the last
	for i := range md.NumRowGroups() - 1 {
		full += md.RowGroup(i).TotalCompressedSize()
	}
	const writeBuffer = 32 << 10 // parquet-go's default output buffer
	if md.NumRowGroups() < 10 || before < full-writeBuffer {
		t.Errorf("%d row groups; %d bytes out before Close, the row groups before the last hold %d: they were held in memory",
			md.NumRowGroups(), before, full)
	}
	grew := 0
	for i := 1; i < len(at); i++ {
		if at[i] > at[i-1] {
			grew++
		}
	}
	if grew < len(at)*3/4 {
		t.Errorf("output grew in only %d of %d row-group intervals: %v", grew, len(at)-1, at)
	}
}

// dataFrames returns the market-data frames (trade, quote, book level) of
// a synthetic journal: the bulk of any export.
func dataFrames(t testing.TB) ([]journal.Frame, *journal.Catalog) {
	dir := filepath.Join(t.TempDir(), "j")
	buildJournal(t, dir, 5000)
	all, cat := framesOf(t, dir)
	var fs []journal.Frame
	for _, f := range all {
		switch f.Type {
		case journal.TypeTrade, journal.TypeQuote, journal.TypeBookLevel:
			fs = append(fs, f)
		}
	}
	return fs, cat
}

// Writing a row allocates nothing: decoding and CSV never; Parquet
// decoding and batching never, and the Parquet library's own work when it
// cuts a page or a row group, amortised, less than one allocation per 20
// rows.
func TestWriteFrameAllocs(t *testing.T) {
	if testing.CoverMode() != "" {
		t.Skip("coverage instrumentation allocates")
	}
	fs, cat := dataFrames(t)
	d := newDecoder()
	var rec record
	i := 0
	if a := testing.AllocsPerRun(5000, func() {
		d.decode(&rec, &fs[i%len(fs)], cat)
		i++
	}); a != 0 {
		t.Errorf("decode: %.3f allocations per frame, want 0", a)
	}

	cw := NewCSV(io.Discard, CSVOptions{})
	if a := testing.AllocsPerRun(20_000, func() {
		if err := cw.WriteFrame(&fs[i%len(fs)], cat); err != nil {
			t.Fatal(err)
		}
		i++
	}); a != 0 {
		t.Errorf("CSV WriteFrame: %.3f allocations per frame, want 0", a)
	}

	pw, err := NewParquet(io.Discard, ParquetOptions{RowGroupRows: 50_000})
	if err != nil {
		t.Fatal(err)
	}
	for j := range 3 * batchRows { // warm the batch and column buffers
		pw.WriteFrame(&fs[j%len(fs)], cat)
	}
	if a := testing.AllocsPerRun(20_000, func() {
		if err := pw.WriteFrame(&fs[i%len(fs)], cat); err != nil {
			t.Fatal(err)
		}
		i++
	}); a != 0 {
		t.Errorf("Parquet WriteFrame: %.3f allocations per frame, want 0", a)
	}
	// testing.AllocsPerRun truncates to whole allocations per run: count
	// the amortised figure exactly. parquet-go allocates when it cuts a
	// page (every 256 KiB of a column) and a row group, never per row.
	const n = 200_000
	var m0, m1 runtime.MemStats
	runtime.ReadMemStats(&m0)
	for range n {
		if err := pw.WriteFrame(&fs[i%len(fs)], cat); err != nil {
			t.Fatal(err)
		}
		i++
	}
	runtime.ReadMemStats(&m1)
	if a := float64(m1.Mallocs-m0.Mallocs) / n; a >= 0.05 {
		t.Errorf("Parquet WriteFrame: %.4f allocations per frame (amortised), want < 0.05", a)
	} else {
		t.Logf("Parquet WriteFrame: %d allocations in %d frames (4 row groups): %.4f per frame", m1.Mallocs-m0.Mallocs, n, a)
	}
}
