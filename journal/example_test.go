package journal_test

import (
	"fmt"

	"github.com/mdjournal/mdjournal/journal"
)

// Frames are encoded and decoded with the format package alone: the same
// bytes a C reader decodes from format.md.
func Example() {
	q := journal.Quote{BidPrice: 1_850_000, BidQty: 100, AskPrice: 1_850_100, AskQty: 200}
	b := make([]byte, journal.FrameSpace(32))
	journal.PutFrame(b, 42, 1_700_000_000_000_000_000, journal.TypeQuote, 0, 1, q.Encode(make([]byte, 32)))

	f, n, st := journal.DecodeFrame(b)
	var got journal.Quote
	got.Decode(f.Payload)
	fmt.Println(st == journal.FrameOK, n, f.Seq, f.Type, got.BidPrice, got.AskQty)
	// Output: true 64 42 quote 1850000 200
}

// Prices are fixed-point integers; the instrument's price scale says where
// the decimal point is.
func ExampleFormatPrice() {
	p, _ := journal.ParsePrice("585.33", 4)
	fmt.Println(p, journal.FormatPrice(p, 4))
	// Output: 5853300 585.3300
}

// A Catalog maps instrument ids to symbols and scales, kept current by the
// definitions the journal carries.
func ExampleCatalog() {
	var d journal.InstrumentDef
	d.SetSymbol("AMZN")
	d.PriceScale, d.TickSize = 4, 100
	cat := journal.NewCatalog()
	cat.Apply(&journal.Frame{Seq: 1, Type: journal.TypeInstrumentDef, Instrument: 9, Payload: d.Encode(make([]byte, 32))})
	in, _ := cat.BySymbol("AMZN")
	fmt.Println(in.ID, cat.FormatPrice(9, 2_231_100))
	// Output: 9 223.1100
}
