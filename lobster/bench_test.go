package lobster

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"os"
	"testing"
	"time"
)

// biggestPair returns the pair with the most compressed bytes, loaded in
// memory so the benchmark measures parsing and importing, not the disk.
func biggestPair(b *testing.B) (p pair, msg, book []byte) {
	var best int64
	for _, q := range pairs(b, dataDir(b)) {
		mi, err1 := os.Stat(q.msg)
		bi, err2 := os.Stat(q.book)
		if err1 != nil || err2 != nil {
			b.Fatal(err1, err2)
		}
		if n := mi.Size() + bi.Size(); n > best {
			best, p = n, q
		}
	}
	if best == 0 {
		b.Skip("no LOBSTER pairs")
	}
	var err error
	if msg, err = os.ReadFile(p.msg); err != nil {
		b.Fatal(err)
	}
	if book, err = os.ReadFile(p.book); err != nil {
		b.Fatal(err)
	}
	return p, msg, book
}

// scanBaseline is the floor any importer pays: gunzip both files and split
// them into lines. It returns the line count.
func scanBaseline(b *testing.B, files ...[]byte) int {
	n := 0
	for _, f := range files {
		zr, err := gzip.NewReader(bytes.NewReader(f))
		if err != nil {
			b.Fatal(err)
		}
		s := bufio.NewScanner(zr)
		for s.Scan() {
			n++
		}
		if err := s.Err(); err != nil {
			b.Fatal(err)
		}
	}
	return n
}

// BenchmarkImportDay imports the biggest sample day (messages + orderbook,
// gzip) into an in-memory sink that stores every frame, and reports the
// same-run cost of just gunzipping and line-scanning the same bytes.
func BenchmarkImportDay(b *testing.B) {
	p, msg, book := biggestPair(b)
	n, _ := ParseFileName(p.msg)
	opts := Options{Symbol: n.Symbol, Date: n.Date, Levels: n.Levels, Instrument: 1}
	sink := &memSink{buf: make([]byte, 0, 64<<20)}
	b.Logf("pair %s", p.name)
	b.SetBytes(int64(len(msg) + len(book)))
	b.ReportAllocs()
	b.ResetTimer()
	var st Stats
	start := time.Now()
	for i := 0; i < b.N; i++ {
		sink.buf, sink.seq = sink.buf[:0], 0
		mr, err := NewMessageReader(bytes.NewReader(msg))
		if err != nil {
			b.Fatal(err)
		}
		br, err := NewOrderbookReader(bytes.NewReader(book), n.Levels)
		if err != nil {
			b.Fatal(err)
		}
		if st, err = Import(mr, br, sink, opts); err != nil {
			b.Fatal(err)
		}
	}
	el := time.Since(start)
	b.StopTimer()
	b.ReportMetric(float64(st.Messages)*float64(b.N)/el.Seconds(), "msgs/s")
	start = time.Now()
	for i := 0; i < b.N; i++ {
		if lines := scanBaseline(b, msg, book); lines != 2*st.Messages {
			b.Fatalf("baseline scanned %d lines, want %d", lines, 2*st.Messages)
		}
	}
	base := time.Since(start)
	b.ReportMetric(float64(base.Nanoseconds())/float64(b.N), "baseline-ns/op")
	b.ReportMetric(float64(el)/float64(base), "x-baseline")
}

// BenchmarkScanBaseline is the gunzip+scan floor on its own.
func BenchmarkScanBaseline(b *testing.B) {
	_, msg, book := biggestPair(b)
	b.SetBytes(int64(len(msg) + len(book)))
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		scanBaseline(b, msg, book)
	}
}
