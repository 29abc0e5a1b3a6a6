package writer_test

import (
	"fmt"
	"log"
	"os"

	"github.com/mdjournal/mdjournal/journal"
	"github.com/mdjournal/mdjournal/writer"
)

// A feed handler appends one frame per market-data event. Append publishes
// at once; Stage and Publish batch a burst behind one publication.
func Example() {
	dir, _ := os.MkdirTemp("", "journal")
	defer os.RemoveAll(dir)

	w, err := writer.Open(dir, writer.Options{Durability: writer.Durability{Mode: writer.Async}})
	if err != nil {
		log.Fatal(err)
	}
	var def journal.InstrumentDef
	def.SetSymbol("AAPL")
	def.PriceScale, def.TickSize = 4, 100 // prices in 1/10000 dollar, one-cent ticks
	buf := make([]byte, 32)
	if _, err := w.Append(journal.TypeInstrumentDef, 1, 1_700_000_000_000_000_000, def.Encode(buf)); err != nil {
		log.Fatal(err)
	}
	for i := int64(0); i < 3; i++ {
		q := journal.Quote{BidPrice: 1_850_000 + i*100, BidQty: 100, AskPrice: 1_850_100 + i*100, AskQty: 200}
		if _, err := w.Stage(journal.TypeQuote, 1, 1_700_000_000_000_000_001+i, q.Encode(buf)); err != nil {
			log.Fatal(err)
		}
	}
	if err := w.Publish(); err != nil { // readers see the three quotes together
		log.Fatal(err)
	}
	fmt.Println("last seq", w.LastSeq(), "published", w.PublishedSeq())
	if err := w.Close(); err != nil { // durable whatever the policy
		log.Fatal(err)
	}
	// Output: last seq 4 published 4
}

// ParseDurability reads the policies the command-line tools accept.
func ExampleParseDurability() {
	for _, s := range []string{"none", "interval:5ms", "sync"} {
		d, err := writer.ParseDurability(s)
		fmt.Println(d, err)
	}
	// Output:
	// none <nil>
	// interval:5ms,4194304 <nil>
	// sync <nil>
}
