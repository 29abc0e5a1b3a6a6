package export

import (
	"bytes"
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"

	"github.com/mdjournal/mdjournal/journal"
	"github.com/mdjournal/mdjournal/reader"
	"github.com/mdjournal/mdjournal/synth"
	"github.com/mdjournal/mdjournal/writer"
)

// base is the first timestamp of the test journals.
var base = time.Date(2026, 1, 2, 14, 30, 0, 0, time.UTC).UnixNano()

// Hand-made instruments beside synth's 1..3 (scale 4, tick 100).
const (
	idComma = 10 // symbol with a comma and a quote: CSV must quote it
	idZero  = 11 // scale 0
	idBig   = 12 // scale 18
	idNone  = 99 // never defined
)

var handDefs = []struct {
	id    uint32
	sym   string
	scale int32
	tick  int64
}{
	{idComma, `X,"Y`, 8, 1},
	{idZero, "ZERO", 0, 1},
	{idBig, "BIG18", 18, 1_000_000},
}

// special returns the k-th hand-made frame: every message type and flag,
// with values at the edges (negative and extreme prices, unknown enum
// values, empty and long raw payloads, a source trailer). src reports a
// source trailer (recvTS, sourceSeq).
func special(k int) (typ journal.MsgType, instr uint32, payload []byte, src bool, recvTS int64, srcSeq uint64) {
	ids := []uint32{idComma, idZero, idBig, idNone, 1}
	instr = ids[k%len(ids)]
	b := make([]byte, 64)
	switch k % 16 {
	case 0:
		t := journal.Trade{Price: -123_456_789, Qty: 7, TradeID: uint64(k) << 40, Aggressor: journal.SideAsk, Flags: journal.FlagHidden}
		return journal.TypeTrade, instr, t.Encode(b), false, 0, 0
	case 1:
		t := journal.Trade{Price: 1<<62 + int64(k), Qty: 1, TradeID: ^uint64(0), Aggressor: 7} // side outside 0..2
		return journal.TypeTrade, instr, t.Encode(b), true, base + int64(k)*3, uint64(k) * 1_000_003
	case 2:
		q := journal.Quote{BidPrice: -5, BidQty: 0, AskPrice: 9_223_372_036_854_775_807, AskQty: 12}
		return journal.TypeQuote, instr, q.Encode(b), false, 0, 0
	case 3:
		l := journal.BookLevel{Price: 42, Qty: 0, Side: journal.SideBid}
		return journal.TypeBookLevel, instr, l.Encode(b), false, 0, 0
	case 4, 5, 6, 7:
		o := journal.Order{OrderID: uint64(k) * 977, Price: -9_223_372_036_854_775_808, Qty: int64(k), Side: journal.SideBid, Flags: uint8(k % 2)}
		return journal.TypeOrderAdd + journal.MsgType(k%16-4), instr, o.Encode(b), false, 0, 0
	case 8:
		n := (k * 37) % 300
		if k%3 == 0 {
			n = 0
		}
		raw := make([]byte, n)
		for i := range raw {
			raw[i] = byte(i*7 + k)
		}
		return journal.TypeRaw, 0, raw, false, 0, 0
	case 9:
		s := journal.TradingStatus{Status: uint8(1 + k%4)} // the writer refuses unknown states
		copy(s.Reason[:], []string{"LULD", "AB  ", "", "Q\x00\x00\x00", "a,\"b"}[k%5])
		return journal.TypeTradingStatus, instr, s.Encode(b), false, 0, 0
	case 10:
		g := journal.Gap{First: uint64(k) * 1000, Count: uint64(k)}
		copy(g.Source[:], "SESSION,0001")
		return journal.TypeGap, 0, g.Encode(b), true, base + 17, uint64(k)
	case 11:
		o := journal.OrderRequest{OrderID: uint64(k), Price: 1_000_100, Qty: 5, Side: journal.SideAsk, Flags: journal.FlagHidden,
			Strategy: 3, TriggerSeq: uint64(k) + 1, TriggerTS: base + 1, Seen: base + 2, Decided: base + 3}
		return journal.TypeOrderRequest, instr, o.Encode(b), false, 0, 0
	case 12:
		d := journal.RiskDecision{OrderID: uint64(k), Price: 77, Qty: 8, Side: journal.SideBid, Verdict: uint8(1 + k%3), Reason: uint16(k),
			Strategy: 4, TriggerSeq: 5, Requested: base + 4, Received: base + 5, Decided: base + 6}
		return journal.TypeRiskDecision, instr, d.Encode(b), false, 0, 0
	case 13:
		return journal.TypeHeartbeat, 0, nil, false, 0, 0
	case 14:
		l := journal.BookLevel{Price: 1, Qty: -1, Side: 3}
		return journal.TypeBookLevel, instr, l.Encode(b), true, -1, 0
	default:
		o := journal.OrderRequest{OrderID: 1, Side: 9}
		return journal.TypeOrderRequest, idNone, o.Encode(b), false, 0, 0
	}
}

// buildJournal writes n synth frames (3 instruments, scale 4) into a
// journal of 256 KiB segments (so it rolls, and re-states definitions),
// with the hand-made definitions after synth's and a special frame after
// every 40th synth frame. It returns the last seq.
func buildJournal(t testing.TB, dir string, n int) uint64 {
	t.Helper()
	w, err := writer.Open(dir, writer.Options{SegmentSize: 256 << 10})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	g := synth.New(42, 3)
	ts := base
	next := func() int64 { ts += 1000 + ts%7; return ts } // ns precision matters
	for range 3 {
		typ, id, p := g.Next()
		if _, err := w.Append(typ, id, next(), p); err != nil {
			t.Fatal(err)
		}
	}
	for _, d := range handDefs {
		var def journal.InstrumentDef
		if err := def.SetSymbol(d.sym); err != nil {
			t.Fatal(err)
		}
		def.PriceScale, def.TickSize = d.scale, d.tick
		if _, err := w.Append(journal.TypeInstrumentDef, d.id, next(), def.Encode(nil)); err != nil {
			t.Fatal(err)
		}
	}
	k := 0
	for i := range n {
		typ, id, p := g.Next()
		if _, err := w.Append(typ, id, next(), p); err != nil {
			t.Fatal(err)
		}
		if i%40 == 0 {
			typ, id, p, src, rts, sseq := special(k)
			k++
			if src {
				_, err = w.AppendSource(typ, id, next(), p, rts, sseq)
			} else {
				_, err = w.Append(typ, id, next(), p)
			}
			if err != nil {
				t.Fatalf("special %d (%s): %v", k-1, typ, err)
			}
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return w.LastSeq()
}

// exportTo runs an export of dir (from opts.From) into a buffer.
func exportTo(t testing.TB, dir string, f Format, popts ParquetOptions, from reader.Position, filter Filter) (*bytes.Buffer, Stats) {
	t.Helper()
	r, err := reader.Open(dir, reader.Options{From: from})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var buf bytes.Buffer
	s, err := New(f, &buf, popts, CSVOptions{})
	if err != nil {
		t.Fatal(err)
	}
	st, err := Run(context.Background(), r, s, Options{Filter: filter})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	return &buf, st
}

// expected is what the test expects in one row, column name → value (nil
// for null), computed here from the frames the reader returns with the
// journal package's decoders: a second, independent mapping of frames to
// columns. Prices are the scaled integers (Parquet); timestamps Unix ns.
func expected(f *journal.Frame, cat *journal.Catalog) map[string]any {
	m := map[string]any{}
	for _, c := range columnNames {
		m[c] = nil
	}
	m["seq"], m["ts"], m["type"], m["restated"], m["instrument"] = f.Seq, f.TS, f.Type.String(), f.Flags&journal.FrameRestated != 0, f.Instrument
	if in, ok := cat.Lookup(f.Instrument); ok && in.Symbol != "" && f.Instrument != 0 {
		m["symbol"], m["price_scale"] = in.Symbol, in.PriceScale
	}
	if f.Flags&journal.FrameSource != 0 {
		m["recv_ts"], m["source_seq"] = f.RecvTS, f.SourceSeq
	}
	side := func(s journal.Side) string {
		switch s {
		case 0:
			return "none"
		case 1:
			return "bid"
		case 2:
			return "ask"
		}
		return fmt.Sprint(uint8(s))
	}
	switch f.Type {
	case journal.TypeInstrumentDef:
		var d journal.InstrumentDef
		must(d.Decode(f.Payload))
		m["symbol"], m["price_scale"], m["tick_size"] = d.SymbolString(), d.PriceScale, d.TickSize
	case journal.TypeTrade:
		var x journal.Trade
		must(x.Decode(f.Payload))
		m["side"], m["price"], m["qty"], m["trade_id"], m["hidden"] = side(x.Aggressor), x.Price, x.Qty, x.TradeID, x.Flags&1 == 1
	case journal.TypeQuote:
		var x journal.Quote
		must(x.Decode(f.Payload))
		m["bid_price"], m["bid_qty"], m["ask_price"], m["ask_qty"] = x.BidPrice, x.BidQty, x.AskPrice, x.AskQty
	case journal.TypeBookLevel:
		var x journal.BookLevel
		must(x.Decode(f.Payload))
		m["side"], m["price"], m["qty"] = side(x.Side), x.Price, x.Qty
	case journal.TypeOrderAdd, journal.TypeOrderCancel, journal.TypeOrderDelete, journal.TypeOrderExecute:
		var x journal.Order
		must(x.Decode(f.Payload))
		m["order_id"], m["side"], m["price"], m["qty"], m["hidden"] = x.OrderID, side(x.Side), x.Price, x.Qty, x.Flags&1 == 1
	case journal.TypeTradingStatus:
		var x journal.TradingStatus
		must(x.Decode(f.Payload))
		st := map[uint8]string{1: "halted", 2: "paused", 3: "quotation_only", 4: "trading"}[x.Status]
		if st == "" {
			st = fmt.Sprint(x.Status)
		}
		m["status"], m["status_reason"] = st, x.ReasonString()
	case journal.TypeGap:
		var x journal.Gap
		must(x.Decode(f.Payload))
		m["gap_first"], m["gap_count"], m["gap_source"] = x.First, x.Count, x.SourceString()
	case journal.TypeOrderRequest:
		var x journal.OrderRequest
		must(x.Decode(f.Payload))
		m["order_id"], m["side"], m["price"], m["qty"], m["hidden"] = x.OrderID, side(x.Side), x.Price, x.Qty, x.Flags&1 == 1
		m["strategy"], m["trigger_seq"], m["trigger_ts"], m["seen_ts"], m["decided_ts"] = x.Strategy, x.TriggerSeq, x.TriggerTS, x.Seen, x.Decided
	case journal.TypeRiskDecision:
		var x journal.RiskDecision
		must(x.Decode(f.Payload))
		v := map[uint8]string{1: "accepted", 2: "rejected"}[x.Verdict]
		if v == "" {
			v = fmt.Sprint(x.Verdict)
		}
		m["order_id"], m["side"], m["price"], m["qty"], m["verdict"], m["risk_reason"] = x.OrderID, side(x.Side), x.Price, x.Qty, v, x.Reason
		m["strategy"], m["trigger_seq"], m["requested_ts"], m["received_ts"], m["decided_ts"] = x.Strategy, x.TriggerSeq, x.Requested, x.Received, x.Decided
	case journal.TypeRaw:
		m["raw"] = append([]byte{}, f.Payload...)
	}
	return m
}

func must(err error) {
	if err != nil {
		panic(err)
	}
}

// readerRows reads dir from its start with the reader library and returns
// the expected row of every frame.
func readerRows(t testing.TB, dir string) []map[string]any {
	t.Helper()
	r, err := reader.Open(dir, reader.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var out []map[string]any
	for {
		f, ok, err := r.TryNext()
		if err != nil {
			t.Fatal(err)
		}
		if !ok {
			return out
		}
		out = append(out, expected(&f, r.Catalog()))
	}
}

// arrowFile opens a Parquet file with Apache Arrow's reader (the
// independent implementation).
func arrowFile(t testing.TB, b []byte) (*file.Reader, *pqarrow.FileReader) {
	t.Helper()
	pf, err := file.NewParquetReader(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("arrow: open: %v", err)
	}
	fr, err := pqarrow.NewFileReader(pf, pqarrow.ArrowReadProperties{BatchSize: 1 << 16}, memory.DefaultAllocator)
	if err != nil {
		t.Fatalf("arrow: %v", err)
	}
	return pf, fr
}

// arrowRows reads every row of a Parquet file with Arrow into column name →
// Go value maps (nil for null; timestamps as Unix ns).
func arrowRows(t testing.TB, b []byte) ([]map[string]any, *arrow.Schema) {
	t.Helper()
	_, fr := arrowFile(t, b)
	tbl, err := fr.ReadTable(context.Background())
	if err != nil {
		t.Fatalf("arrow: read table: %v", err)
	}
	defer tbl.Release()
	rows := make([]map[string]any, tbl.NumRows())
	for i := range rows {
		rows[i] = map[string]any{}
	}
	for c := 0; c < int(tbl.NumCols()); c++ {
		col := tbl.Column(c)
		name := col.Name()
		i := 0
		for _, chunk := range col.Data().Chunks() {
			for j := 0; j < chunk.Len(); j++ {
				rows[i][name] = cell(t, chunk, j)
				i++
			}
		}
	}
	return rows, tbl.Schema()
}

func cell(t testing.TB, a arrow.Array, i int) any {
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
		return append([]byte{}, a.Value(i)...)
	case *array.Timestamp:
		return int64(a.Value(i))
	case *array.Dictionary:
		return cell(t, a.Dictionary(), a.GetValueIndex(i))
	}
	t.Fatalf("arrow: unexpected array type %s", a.DataType())
	return nil
}

// sameRow reports the first difference between two rows ("" if none).
func sameRow(got, want map[string]any) string {
	for _, c := range columnNames {
		g, w := got[c], want[c]
		if gb, ok := g.([]byte); ok {
			if wb, ok := w.([]byte); !ok || !bytes.Equal(gb, wb) {
				return fmt.Sprintf("%s: got %x, want %v", c, gb, w)
			}
			continue
		}
		if g != w {
			return fmt.Sprintf("%s: got %#v (%T), want %#v (%T)", c, g, g, w, w)
		}
	}
	if len(got) != len(columnNames) {
		return fmt.Sprintf("%d columns, want %d", len(got), len(columnNames))
	}
	return ""
}
