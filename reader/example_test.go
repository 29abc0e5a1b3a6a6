package reader_test

import (
	"fmt"
	"log"
	"os"

	"github.com/mdjournal/mdjournal/journal"
	"github.com/mdjournal/mdjournal/reader"
	"github.com/mdjournal/mdjournal/writer"
)

// A reader in another process tails the journal; here one reads what a
// writer appended, with the symbol and decimal price from the catalogue
// the journal carries.
func Example() {
	dir, _ := os.MkdirTemp("", "journal")
	defer os.RemoveAll(dir)
	w, err := writer.Open(dir, writer.Options{})
	if err != nil {
		log.Fatal(err)
	}
	var def journal.InstrumentDef
	def.SetSymbol("MSFT")
	def.PriceScale, def.TickSize = 4, 100
	buf := make([]byte, 32)
	w.Append(journal.TypeInstrumentDef, 7, 1, def.Encode(buf))
	t := journal.Trade{Price: 4_201_500, Qty: 300, TradeID: 1, Aggressor: journal.SideBid}
	w.Append(journal.TypeTrade, 7, 2, t.Encode(buf))
	w.Close()

	r, err := reader.Open(dir, reader.Options{From: reader.Start()})
	if err != nil {
		log.Fatal(err)
	}
	defer r.Close()
	for {
		f, ok, err := r.TryNext() // Next would wait for the writer's next frame
		if err != nil {
			log.Fatal(err)
		}
		if !ok {
			break
		}
		if f.Type == journal.TypeTrade {
			var tr journal.Trade
			tr.Decode(f.Payload)
			cat := r.Catalog()
			fmt.Println(f.Seq, cat.Symbol(f.Instrument), cat.FormatPrice(f.Instrument, tr.Price), tr.Qty)
		}
	}
	// Output: 2 MSFT 420.1500 300
}

// Positions name where a reader starts.
func ExampleParsePosition() {
	for _, s := range []string{"start", "end", "seq:42", "time:2012-06-21T13:30:00Z"} {
		p, err := reader.ParsePosition(s)
		fmt.Println(p, err)
	}
	// Output:
	// start <nil>
	// end <nil>
	// seq:42 <nil>
	// time:2012-06-21T13:30:00Z <nil>
}
