package export

import (
	"bytes"
	"encoding/csv"
	"testing"

	"github.com/mdjournal/mdjournal/journal"
	"github.com/parquet-go/parquet-go"
)

// Any frame — any type number, flags and payload, short or long — becomes
// one well-formed CSV record and one Parquet row without a panic or an
// over-read (the decoders check lengths; a too-short payload leaves its
// type's columns null).
func FuzzWriteFrame(f *testing.F) {
	for k := range 16 {
		typ, instr, p, _, _, _ := special(k)
		f.Add(uint16(typ), uint16(0), instr, p)
	}
	f.Add(uint16(journal.TypeInstrumentDef), uint16(journal.FrameRestated), uint32(1), []byte("ABC\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00\x00\x13\x00\x00\x00\x00\x00\x00\x00"))
	f.Add(uint16(journal.TypeTrade), uint16(journal.FrameSource), uint32(1), []byte{1, 2, 3})
	f.Add(uint16(999), uint16(0xffff), uint32(0), []byte{})
	cat := journal.NewCatalog()
	var def journal.InstrumentDef
	def.SetSymbol("FUZ,Z")
	def.PriceScale = 6
	cat.Apply(&journal.Frame{Type: journal.TypeInstrumentDef, Instrument: 1, Payload: def.Encode(nil)})
	f.Fuzz(func(t *testing.T, typ, flags uint16, instr uint32, payload []byte) {
		fr := journal.Frame{Seq: 7, TS: -1, Type: journal.MsgType(typ), Flags: flags, Instrument: instr % 3,
			Payload: payload, RecvTS: 5, SourceSeq: 6}
		var buf bytes.Buffer
		cw := NewCSV(&buf, CSVOptions{})
		if err := cw.WriteFrame(&fr, cat); err != nil {
			t.Fatal(err)
		}
		if err := cw.Close(); err != nil {
			t.Fatal(err)
		}
		recs, err := csv.NewReader(&buf).ReadAll()
		if err != nil || len(recs) != 2 || len(recs[1]) != len(columnNames) {
			t.Fatalf("CSV: %v, %d records", err, len(recs))
		}
		buf.Reset()
		pw, err := NewParquet(&buf, ParquetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if err := pw.WriteFrame(&fr, cat); err != nil {
			t.Fatal(err)
		}
		if err := pw.Close(); err != nil {
			t.Fatal(err)
		}
		rows, err := parquet.Read[prow](bytes.NewReader(buf.Bytes()), int64(buf.Len()))
		if err != nil || len(rows) != 1 || rows[0].Seq != 7 || rows[0].Type != journal.MsgType(typ).String() {
			t.Fatalf("Parquet: %v, %d rows", err, len(rows))
		}
	})
}
