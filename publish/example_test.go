package publish_test

import (
	"fmt"
	"time"

	"github.com/mdjournal/mdjournal/feed"
	"github.com/mdjournal/mdjournal/itch"
	"github.com/mdjournal/mdjournal/journal"
	"github.com/mdjournal/mdjournal/publish"
)

// Example encodes journal frames as ITCH 5.0 messages: an add becomes 'A',
// an execution with its trade one 'E', a cancel of an order the stream
// never added an extension 'o' (ITCH's cancel names only the order), a
// book level an extension 'l'. A feed.Decoder gives back every frame.
func Example() {
	day := itch.DayOf(time.Date(2012, 6, 21, 0, 0, 0, 0, time.UTC))
	ts := day.Midnight() + 34200e9
	rx := feed.NewDecoder(feed.DecoderOptions{Day: day})
	emit := func(msg []byte, _ int64) error {
		frames, err := rx.Decode(msg)
		if err != nil {
			return err
		}
		fmt.Printf("%c %2d bytes →", msg[0], len(msg))
		for _, f := range frames {
			fmt.Print(" ", f.Type)
		}
		fmt.Println()
		return nil
	}
	e := publish.NewEncoder(emit, day, nil)
	var d journal.InstrumentDef
	d.SetSymbol("AAPL")
	d.TickSize, d.PriceScale = 100, 4
	frames := []struct {
		typ journal.MsgType
		p   interface{ Encode([]byte) []byte }
	}{
		{journal.TypeInstrumentDef, &d},
		{journal.TypeOrderAdd, &journal.Order{OrderID: 1, Price: 5853400, Qty: 300, Side: journal.SideAsk}},
		{journal.TypeOrderExecute, &journal.Order{OrderID: 1, Price: 5853400, Qty: 100, Side: journal.SideAsk}},
		{journal.TypeTrade, &journal.Trade{Price: 5853400, Qty: 100, TradeID: 1, Aggressor: journal.SideBid}},
		{journal.TypeOrderCancel, &journal.Order{OrderID: 77, Price: 5853300, Qty: 50, Side: journal.SideBid}},
		{journal.TypeBookLevel, &journal.BookLevel{Price: 5853300, Qty: 400, Side: journal.SideBid}},
	}
	for _, f := range frames {
		if _, err := e.Append(f.typ, 1, ts, f.p.Encode(nil)); err != nil {
			fmt.Println(err)
			return
		}
	}
	if err := e.Flush(); err != nil {
		fmt.Println(err)
	}
	// Output:
	// R 39 bytes → instrument_def
	// A 36 bytes → order_add
	// E 31 bytes → order_execute trade
	// o 38 bytes → order_cancel
	// l 28 bytes → book_level
}
