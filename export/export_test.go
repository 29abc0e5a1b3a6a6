package export

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"slices"
	"testing"

	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/schema"

	"github.com/mdjournal/mdjournal/reader"
)

const testFrames = 12_000

// Every value of every row, read back with Apache Arrow, equals what the
// reader library reads (mapped to columns by the test's own code), and the
// file has several row groups of at most RowGroupRows rows.
func TestParquetMatchesReader(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "j")
	last := buildJournal(t, dir, testFrames)
	want := readerRows(t, dir)
	if uint64(len(want)) != last {
		t.Fatalf("reader returned %d frames, the writer wrote %d", len(want), last)
	}
	const rg = 4096
	buf, st := exportTo(t, dir, Parquet, ParquetOptions{RowGroupRows: rg}, reader.Start(), Filter{})
	if st.Rows != int64(len(want)) || st.FirstSeq != 1 || st.LastSeq != last {
		t.Fatalf("stats %+v, want %d rows 1..%d", st, len(want), last)
	}
	got, _ := arrowRows(t, buf.Bytes())
	if len(got) != len(want) {
		t.Fatalf("arrow read %d rows, want %d", len(got), len(want))
	}
	types := map[string]int{}
	restated := 0
	for i := range want {
		if d := sameRow(got[i], want[i]); d != "" {
			t.Fatalf("row %d (seq %v, %v): %s", i, want[i]["seq"], want[i]["type"], d)
		}
		types[want[i]["type"].(string)]++
		if want[i]["restated"].(bool) {
			restated++
		}
	}
	// The journal must exercise what the test claims to check.
	for _, ty := range []string{"instrument_def", "trade", "quote", "book_level", "order_add", "order_cancel", "order_delete",
		"order_execute", "raw", "trading_status", "gap", "order_request", "risk_decision", "heartbeat"} {
		if types[ty] == 0 {
			t.Errorf("no %s row: the test journal does not cover it", ty)
		}
	}
	if restated == 0 {
		t.Error("no re-stated row: the test journal did not roll")
	}
	pf, _ := arrowFile(t, buf.Bytes())
	md := pf.MetaData()
	if n := md.NumRowGroups(); n != (len(want)+rg-1)/rg {
		t.Errorf("%d row groups, want %d", n, (len(want)+rg-1)/rg)
	}
	for i := range md.NumRowGroups() {
		if n := md.RowGroup(i).NumRows(); n > rg {
			t.Errorf("row group %d has %d rows, more than %d", i, n, rg)
		}
	}
}

// The schema, as Arrow and the Parquet metadata see it: names in order,
// logical types (unsigned ints, nanosecond UTC timestamps, strings),
// dictionary-encoded enumerations, and the price-scale metadata.
func TestParquetSchema(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "j")
	buildJournal(t, dir, 2000)
	buf, _ := exportTo(t, dir, Parquet, ParquetOptions{}, reader.Start(), Filter{})
	pf, fr := arrowFile(t, buf.Bytes())
	sc, err := fr.Schema()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, f := range sc.Fields() {
		names = append(names, f.Name)
	}
	if !slices.Equal(names, Columns()) {
		t.Fatalf("columns %v\nwant    %v", names, Columns())
	}
	wantType := map[string]string{
		"seq": "uint64", "ts": "timestamp[ns, tz=UTC]", "type": "utf8", "restated": "bool", "instrument": "uint32",
		"symbol": "utf8", "price_scale": "int32", "tick_size": "int64", "side": "utf8", "price": "int64", "qty": "int64",
		"order_id": "uint64", "trade_id": "uint64", "hidden": "bool", "bid_price": "int64", "ask_qty": "int64",
		"status": "utf8", "gap_first": "uint64", "strategy": "uint32", "trigger_ts": "timestamp[ns, tz=UTC]",
		"decided_ts": "timestamp[ns, tz=UTC]", "verdict": "utf8", "risk_reason": "uint16", "raw": "binary",
		"recv_ts": "timestamp[ns, tz=UTC]", "source_seq": "uint64",
	}
	for _, f := range sc.Fields() {
		if w, ok := wantType[f.Name]; ok && f.Type.String() != w {
			t.Errorf("column %s: arrow type %s, want %s", f.Name, f.Type, w)
		}
		if nullable := f.Nullable; nullable != (slices.Index(Columns(), f.Name) > 4) {
			t.Errorf("column %s: nullable %v", f.Name, nullable)
		}
	}
	md := pf.MetaData()
	for i := range md.Schema.NumColumns() {
		col := md.Schema.Column(i)
		if col.Name() == "ts" {
			ts, ok := col.LogicalType().(schema.TimestampLogicalType)
			if !ok || ts.TimeUnit() != schema.TimeUnitNanos || !ts.IsAdjustedToUTC() {
				t.Errorf("ts: logical type %s, want TIMESTAMP(NANOS, UTC)", col.LogicalType())
			}
		}
		if col.Name() == "seq" {
			it, ok := col.LogicalType().(schema.IntLogicalType)
			if !ok || it.BitWidth() != 64 || it.IsSigned() {
				t.Errorf("seq: logical type %s, want INT(64, unsigned)", col.LogicalType())
			}
		}
	}
	rg := md.RowGroup(0)
	for i := range md.Schema.NumColumns() {
		name := md.Schema.Column(i).Name()
		if name != "type" && name != "symbol" && name != "side" {
			continue
		}
		cc, err := rg.ColumnChunk(i)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Contains(cc.Encodings(), parquet.Encodings.RLEDict) && !slices.Contains(cc.Encodings(), parquet.Encodings.PlainDict) {
			t.Errorf("column %s: encodings %v, want a dictionary encoding", name, cc.Encodings())
		}
	}
	if cb := md.GetCreatedBy(); cb != "mdjournal export" {
		t.Errorf("created_by %q", cb)
	}
	kv := md.KeyValueMetadata()
	if v := kv.FindValue(KeyVersion); v == nil || *v != ColumnsVersion {
		t.Errorf("%s = %v", KeyVersion, v)
	}
	if v := kv.FindValue(KeyPriceEncoding); v == nil || *v == "" {
		t.Errorf("%s missing", KeyPriceEncoding)
	}
	v := kv.FindValue(KeyInstruments)
	if v == nil {
		t.Fatalf("%s missing", KeyInstruments)
	}
	var insts []Instrument
	if err := json.Unmarshal([]byte(*v), &insts); err != nil {
		t.Fatalf("%s: %v: %s", KeyInstruments, err, *v)
	}
	wantInsts := []Instrument{
		{1, "SYN0001", 4, 100}, {2, "SYN0002", 4, 100}, {3, "SYN0003", 4, 100},
		{idComma, `X,"Y`, 8, 1}, {idZero, "ZERO", 0, 1}, {idBig, "BIG18", 18, 1_000_000},
		{idNone, "", 0, 0}, // has rows, never defined
	}
	if !slices.Equal(insts, wantInsts) {
		t.Errorf("%s = %+v\nwant %+v", KeyInstruments, insts, wantInsts)
	}
}

// Spot checks against literal values the test wrote (not derived from any
// decoder): a negative price at scale 8, an undefined instrument, the
// unknown side, a source trailer.
func TestParquetLiterals(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "j")
	buildJournal(t, dir, 200)
	buf, _ := exportTo(t, dir, Parquet, ParquetOptions{}, reader.Start(), Filter{})
	rows, _ := arrowRows(t, buf.Bytes())
	find := func(typ string, instr uint32) map[string]any {
		for _, r := range rows {
			if r["type"] == typ && r["instrument"] == instr {
				return r
			}
		}
		t.Fatalf("no %s row for instrument %d", typ, instr)
		return nil
	}
	// special(0): trade on idComma, price -123456789 (= -1.23456789 at scale 8).
	r := find("trade", idComma)
	if r["price"] != int64(-123_456_789) || r["price_scale"] != int32(8) || r["symbol"] != `X,"Y` || r["side"] != "ask" ||
		r["hidden"] != true || r["qty"] != int64(7) || r["trade_id"] != uint64(0) || r["order_id"] != nil {
		t.Errorf("trade on %d: %v", idComma, r)
	}
	// special(1): trade on idZero, side 7, with a source trailer.
	r = find("trade", idZero)
	if r["side"] != "7" || r["trade_id"] != ^uint64(0) || r["price"] != int64(1<<62+1) || r["price_scale"] != int32(0) ||
		r["recv_ts"] != base+3 || r["source_seq"] != uint64(1_000_003) {
		t.Errorf("trade on %d: %v", idZero, r)
	}
	// special(3): book level on idNone: no symbol, no scale.
	r = find("book_level", idNone)
	if r["symbol"] != nil || r["price_scale"] != nil || r["price"] != int64(42) || r["qty"] != int64(0) || r["side"] != "bid" {
		t.Errorf("book_level on %d: %v", idNone, r)
	}
	r = find("instrument_def", idBig)
	if r["symbol"] != "BIG18" || r["price_scale"] != int32(18) || r["tick_size"] != int64(1_000_000) || r["restated"] != false {
		t.Errorf("instrument_def %d: %v", idBig, r)
	}
}

func TestParseFormat(t *testing.T) {
	for s, want := range map[string]Format{"parquet": Parquet, "csv": CSV} {
		if f, err := ParseFormat(s); err != nil || f != want || f.String() != s {
			t.Errorf("ParseFormat(%q) = %v, %v", s, f, err)
		}
	}
	for _, s := range []string{"", "PARQUET", "json", "csv "} {
		if _, err := ParseFormat(s); err == nil {
			t.Errorf("ParseFormat(%q): no error", s)
		}
	}
	if _, err := NewParquet(nil, ParquetOptions{Compression: "lzma"}); err == nil {
		t.Error("compression lzma: no error")
	}
	if _, err := NewParquet(nil, ParquetOptions{RowGroupRows: -1}); err == nil {
		t.Error("RowGroupRows -1: no error")
	}
	if _, err := New(Format(9), nil, ParquetOptions{}, CSVOptions{}); err == nil {
		t.Error("format 9: no error")
	}
	_ = fmt.Sprint
}
