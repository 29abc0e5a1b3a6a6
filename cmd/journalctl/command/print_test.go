package command

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"strings"
	"testing"

	"github.com/mdjournal/mdjournal/journal"
)

// A crafted definition (valid checksum, bytes the writer would refuse)
// with a comma, a quote, an escape character and a line break in its
// symbol: JSON output stays valid JSON holding those bytes, CSV output
// parses back to the same columns, text output carries no control byte.
func TestOutputValidWithHostileSymbol(t *testing.T) {
	hostile := "A,\"\x1b[2J\nZ"
	var d journal.InstrumentDef
	copy(d.Symbol[:], hostile)
	d.PriceScale, d.TickSize = 4, 100
	cat := journal.NewCatalog()
	def := journal.Frame{Seq: 1, Type: journal.TypeInstrumentDef, Instrument: 3, Payload: d.Encode(make([]byte, 32))}
	cat.Apply(&def)
	tr := journal.Trade{Price: 1234500, Qty: 7, TradeID: 1, Aggressor: journal.SideBid}
	frame := journal.Frame{Seq: 2, TS: 1, Type: journal.TypeTrade, Instrument: 3, Payload: tr.Encode(make([]byte, 32))}

	out := func(format string) string {
		var b bytes.Buffer
		p := newPrinter(&b, format, cat)
		if err := p.print(&def); err != nil {
			t.Fatal(err)
		}
		if err := p.print(&frame); err != nil {
			t.Fatal(err)
		}
		if err := p.flush(); err != nil {
			t.Fatal(err)
		}
		return b.String()
	}

	for i, line := range strings.Split(strings.TrimSuffix(out("json"), "\n"), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("json line %d is not JSON (%v): %s", i+1, err, line)
		}
		if m["symbol"] != hostile {
			t.Errorf("json line %d: symbol %q, want %q", i+1, m["symbol"], hostile)
		}
		if i == 1 && m["price"] != "123.4500" {
			t.Errorf("price %v", m["price"])
		}
	}

	recs, err := csv.NewReader(strings.NewReader(out("csv"))).ReadAll()
	if err != nil || len(recs) != 3 {
		t.Fatalf("csv: %d records, %v", len(recs), err)
	}
	col := -1
	for i, h := range recs[0] {
		if h == "symbol" {
			col = i
		}
	}
	for _, r := range recs[1:] {
		if len(r) != len(recs[0]) || col < 0 || r[col] != hostile {
			t.Errorf("csv record %q: %d fields (header %d), symbol %q", r, len(r), len(recs[0]), r[col])
		}
	}

	text := out("text")
	for i := 0; i < len(text); i++ {
		if c := text[i]; c < 0x20 && c != '\n' || c == 0x7f {
			t.Fatalf("text output has byte %#02x at %d: %q", c, i, text)
		}
	}
	if strings.Count(text, "\n") != 2 {
		t.Errorf("text: %d lines for 2 frames: %q", strings.Count(text, "\n"), text)
	}
}
