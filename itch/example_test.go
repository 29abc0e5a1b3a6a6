package itch_test

import (
	"bytes"
	"fmt"
	"io"

	"github.com/mdjournal/mdjournal/itch"
)

// Example builds two messages in NASDAQ file framing, reads them back with a
// Reader and decodes them.
func Example() {
	aapl, _ := itch.ParseSymbol("AAPL")
	price, _ := itch.ParsePrice4("156.25")
	add := itch.AddOrder{
		Header:   itch.Header{Locate: 7, Timestamp: 34200_000000123}, // 09:30:00.000000123
		OrderRef: 42, Side: 'B', Shares: 100, Stock: aapl, Price: price,
	}
	del := itch.OrderDelete{Header: itch.Header{Locate: 7, Timestamp: 34201_000000000}, OrderRef: 42}

	var file []byte
	file = itch.AppendFrame(file, add.AppendEncode(nil))
	file = itch.AppendFrame(file, del.AppendEncode(nil))

	r := itch.NewReader(bytes.NewReader(file))
	var a itch.AddOrder
	for {
		m, err := r.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			fmt.Println(err)
			return
		}
		switch m.Type() {
		case itch.TypeAddOrder:
			if err := a.Decode(m); err != nil {
				fmt.Println(err)
				return
			}
			fmt.Printf("%v locate %d order %d %c %d %s @ %s (fixed point %d)\n",
				m.Type(), m.Locate(), a.OrderRef, a.Side, a.Shares, a.Stock, a.Price, a.Price.Int64())
		default:
			fmt.Printf("%v locate %d at %d ns, %d bytes\n", m.Type(), m.Locate(), m.Timestamp(), len(m))
		}
	}
	// Output:
	// A(add_order) locate 7 order 42 B 100 AAPL @ 156.2500 (fixed point 1562500)
	// D(order_delete) locate 7 at 34201000000000 ns, 19 bytes
}
