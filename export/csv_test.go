package export

import (
	"bytes"
	"encoding/csv"
	"encoding/hex"
	"fmt"
	"math"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mdjournal/mdjournal/journal"
	"github.com/mdjournal/mdjournal/reader"
)

var priceCols = map[string]bool{"price": true, "tick_size": true, "bid_price": true, "ask_price": true}
var tsCols = map[string]bool{"ts": true, "trigger_ts": true, "seen_ts": true, "requested_ts": true, "received_ts": true, "decided_ts": true, "recv_ts": true}

// csvText renders an expected row the way the package doc says CSV does.
func csvText(row map[string]any) []string {
	out := make([]string, len(columnNames))
	for i, c := range columnNames {
		v := row[c]
		switch {
		case v == nil:
			out[i] = ""
		case priceCols[c]:
			if sc, ok := row["price_scale"].(int32); ok {
				out[i] = journal.FormatPrice(v.(int64), sc)
			} else {
				out[i] = fmt.Sprint(v)
			}
		case tsCols[c]:
			out[i] = time.Unix(0, v.(int64)).UTC().Format(time.RFC3339Nano)
		case c == "raw":
			out[i] = hex.EncodeToString(v.([]byte))
		default:
			out[i] = fmt.Sprint(v)
		}
	}
	return out
}

// The CSV, parsed by an RFC 4180 reader, has the header and one record per
// frame the reader library returns, each field as the package doc renders it.
func TestCSVMatchesReader(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "j")
	buildJournal(t, dir, 6000)
	want := readerRows(t, dir)
	buf, st := exportTo(t, dir, CSV, ParquetOptions{}, reader.Start(), Filter{})
	if st.Rows != int64(len(want)) {
		t.Fatalf("%d rows, want %d", st.Rows, len(want))
	}
	raw := buf.Bytes()
	if n, crlf := bytes.Count(raw, []byte("\n")), bytes.Count(raw, []byte("\r\n")); n != crlf || n < len(want)+1 {
		t.Fatalf("%d line ends, %d of them CRLF, want %d CRLF", n, crlf, len(want)+1)
	}
	cr := csv.NewReader(bytes.NewReader(raw))
	cr.FieldsPerRecord = len(columnNames)
	recs, err := cr.ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(recs[0], Columns()) {
		t.Fatalf("header %v", recs[0])
	}
	if len(recs)-1 != len(want) {
		t.Fatalf("%d records, want %d", len(recs)-1, len(want))
	}
	quoted := 0
	for i, w := range want {
		exp := csvText(w)
		if !slices.Equal(recs[i+1], exp) {
			for c := range exp {
				if recs[i+1][c] != exp[c] {
					t.Fatalf("record %d (seq %v %v) column %s: %q, want %q", i+1, w["seq"], w["type"], columnNames[c], recs[i+1][c], exp[c])
				}
			}
		}
		if w["symbol"] == `X,"Y` {
			quoted++
		}
	}
	if quoted == 0 || !bytes.Contains(raw, []byte(`"X,""Y"`)) {
		t.Errorf("the symbol X,\"Y was not exported quoted (%d rows)", quoted)
	}
}

// appendPrice renders exactly like journal.FormatPrice (the tools'
// reference rendering) at every scale, including invalid ones.
func TestAppendPriceMatchesFormatPrice(t *testing.T) {
	values := []int64{0, 1, -1, 5, 42, 99, 100, 12345, -12345, 5853300, 1 << 40, math.MaxInt64, math.MinInt64, math.MinInt64 + 1, -999999999999999999}
	for _, p := range values {
		for sc := int32(-3); sc <= 25; sc++ {
			if got, want := string(appendPrice([]byte("x"), p, sc)), "x"+journal.FormatPrice(p, sc); got != want {
				t.Errorf("appendPrice(%d, %d) = %q, want %q", p, sc, got, want)
			}
		}
	}
}

func FuzzAppendPrice(f *testing.F) {
	f.Add(int64(5853300), int32(4))
	f.Add(int64(math.MinInt64), int32(19))
	f.Add(int64(-7), int32(50000))
	f.Fuzz(func(t *testing.T, p int64, sc int32) {
		if got, want := string(appendPrice(nil, p, sc)), journal.FormatPrice(p, sc); got != want {
			t.Fatalf("appendPrice(%d, %d) = %q, want %q", p, sc, got, want)
		}
	})
}

// An export of no frames: a header alone (CSV), a valid file with the full
// schema and no rows (Parquet).
func TestEmptyExport(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "j")
	last := buildJournal(t, dir, 100)
	buf, st := exportTo(t, dir, CSV, ParquetOptions{}, reader.Seq(last+1), Filter{})
	if st.Rows != 0 || buf.String() != strings.Join(Columns(), ",")+"\r\n" {
		t.Errorf("empty CSV: %d rows, %q", st.Rows, buf.String())
	}
	buf, st = exportTo(t, dir, Parquet, ParquetOptions{}, reader.Start(), Filter{Types: []journal.MsgType{journal.TypeSegmentEnd}})
	rows, sc := arrowRows(t, buf.Bytes())
	if st.Rows != 0 || len(rows) != 0 || sc.NumFields() != len(columnNames) {
		t.Errorf("empty Parquet: %d rows, arrow read %d rows and %d columns", st.Rows, len(rows), sc.NumFields())
	}
}
