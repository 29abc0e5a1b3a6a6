package feed_test

import (
	"fmt"
	"time"

	"github.com/mdjournal/mdjournal/feed"
	"github.com/mdjournal/mdjournal/itch"
	"github.com/mdjournal/mdjournal/journal"
)

// Example decodes ITCH messages into journal frames: a Stock Directory
// defines instrument 7 (the stock locate), an add makes an order known,
// and an execution, which names only the order reference, becomes an
// order_execute with the order's side and price plus the trade.
func Example() {
	ny, _ := itch.NewYork()
	d := feed.NewDecoder(feed.DecoderOptions{Day: itch.NewDay(2012, 6, 21, ny)})
	aapl, _ := itch.ParseSymbol("AAPL")
	open := uint64(9*3600+30*60) * 1e9 // 09:30 in ns since midnight
	msgs := []itch.Msg{
		&itch.StockDirectory{Header: itch.Header{Locate: 7, Timestamp: open}, Stock: aapl},
		&itch.AddOrder{Header: itch.Header{Locate: 7, Timestamp: open + 1}, OrderRef: 42, Side: 'S', Shares: 300, Stock: aapl, Price: 5853400},
		&itch.OrderExecuted{Header: itch.Header{Locate: 7, Timestamp: open + 2}, OrderRef: 42, Shares: 100, Match: 9001},
	}
	for _, m := range msgs {
		frames, err := d.Decode(m.AppendEncode(nil))
		if err != nil {
			fmt.Println(err)
			return
		}
		for _, f := range frames {
			t := time.Unix(0, f.TS).UTC().Format("15:04:05.000000000")
			switch f.Type {
			case journal.TypeInstrumentDef:
				var def journal.InstrumentDef
				def.Decode(f.Payload)
				fmt.Println(t, f.Type, f.Instrument, def.SymbolString())
			case journal.TypeTrade:
				var tr journal.Trade
				tr.Decode(f.Payload)
				fmt.Println(t, f.Type, f.Instrument, tr.Qty, "@", journal.FormatPrice(tr.Price, 4), "aggressor", tr.Aggressor, "match", tr.TradeID)
			default:
				var o journal.Order
				o.Decode(f.Payload)
				fmt.Println(t, f.Type, f.Instrument, "order", o.OrderID, o.Side, o.Qty, "@", journal.FormatPrice(o.Price, 4))
			}
		}
	}
	// Output:
	// 13:30:00.000000000 instrument_def 7 AAPL
	// 13:30:00.000000001 order_add 7 order 42 ask 300 @ 585.3400
	// 13:30:00.000000002 order_execute 7 order 42 ask 100 @ 585.3400
	// 13:30:00.000000002 trade 7 100 @ 585.3400 aggressor bid match 9001
}
