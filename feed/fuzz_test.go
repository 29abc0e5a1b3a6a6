package feed

import (
	"bytes"
	"encoding/binary"
	"testing"

	"github.com/mdjournal/mdjournal/itch"
	"github.com/mdjournal/mdjournal/journal"
)

// seeds are one message of every kind the decoder handles.
func seeds() [][]byte {
	var def journal.InstrumentDef
	def.SetSymbol("AAPL")
	def.TickSize, def.PriceScale = 1, 4
	return [][]byte{
		enc(&itch.StockDirectory{Header: hdr(1, 1), Stock: sym("AAPL")}),
		enc(&itch.StockTradingAction{Header: hdr(1, 1), Stock: sym("AAPL"), TradingState: 'H', Reason: [4]byte{'L', 'U', 'D', 'P'}}),
		enc(&itch.AddOrder{Header: hdr(1, 2), OrderRef: 1, Side: 'B', Shares: 100, Price: 5}),
		enc(&itch.AddOrderMPID{Header: hdr(1, 2), OrderRef: 2, Side: 'S', Shares: 100, Price: 6}),
		enc(&itch.OrderExecuted{Header: hdr(1, 3), OrderRef: 1, Shares: 10, Match: 1}),
		enc(&itch.OrderExecutedWithPrice{Header: hdr(1, 3), OrderRef: 2, Shares: 10, Match: 2, Printable: 'Y', Price: 7}),
		enc(&itch.OrderCancel{Header: hdr(1, 4), OrderRef: 1, Canceled: 5}),
		enc(&itch.OrderDelete{Header: hdr(1, 4), OrderRef: 2}),
		enc(&itch.OrderReplace{Header: hdr(1, 5), OrigOrderRef: 1, NewOrderRef: 3, Shares: 50, Price: 4}),
		enc(&itch.Trade{Header: hdr(1, 6), Side: 'S', Shares: 5, Price: 5, Match: 3}),
		enc(&itch.CrossTrade{Header: hdr(1, 6), Shares: 5, Price: 5, Match: 4, CrossType: 'O'}),
		enc(&itch.SystemEvent{Header: hdr(0, 0), EventCode: 'O'}),
		AppendExtLevel(nil, hdr(1, 7), &journal.BookLevel{Side: 1, Price: 5, Qty: 100}),
		AppendExtOrder(nil, hdr(1, 7), journal.TypeOrderExecute, &journal.Order{OrderID: 3, Price: 4, Qty: 1, Side: 1}),
		AppendExtTrade(nil, hdr(1, 7), &journal.Trade{Price: 4, Qty: 1, TradeID: 5, Aggressor: 2}),
		AppendExtDefinition(nil, hdr(2, 8), &def),
	}
}

// FuzzDecode: any bytes decode without a panic or an over-read (the
// message is a copy with no spare capacity); Peek returns what Decode
// returns; a successful decode gives at most MaxFrames frames, each with
// its type's payload size.
func FuzzDecode(f *testing.F) {
	for _, s := range seeds() {
		f.Add(s)
	}
	d := NewDecoder(DecoderOptions{Day: testDay})
	for _, s := range seeds()[:4] {
		d.Decode(s)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		msg := bytes.Clone(b)[:len(b):len(b)]
		peek, perr := d.Peek(msg)
		var pk []string
		for _, fr := range peek {
			pk = append(pk, show([]Frame{fr}))
		}
		got, err := d.Decode(msg)
		if (err == nil) != (perr == nil) {
			t.Fatalf("peek error %v, decode error %v", perr, err)
		}
		if err != nil {
			return
		}
		if len(got) > MaxFrames || len(got) != len(peek) {
			t.Fatalf("%d frames (peek %d)", len(got), len(peek))
		}
		for i, fr := range got {
			if len(fr.Payload) != fr.Type.PayloadSize() {
				t.Fatalf("%s frame with a %d-byte payload", fr.Type, len(fr.Payload))
			}
			if s := show([]Frame{fr}); s != pk[i] {
				t.Fatalf("decode %s, peek %s", s, pk[i])
			}
		}
	})
}

// FuzzRebuild: for any sequence of messages (2-byte big-endian length
// before each), a decoder rebuilt by Apply from the frames knows the same
// orders as the one that decoded them.
func FuzzRebuild(f *testing.F) {
	var all []byte
	for _, s := range seeds() {
		all = itch.AppendFrame(all, s)
	}
	f.Add(all)
	f.Fuzz(func(t *testing.T, b []byte) {
		a := NewDecoder(DecoderOptions{Day: testDay, Orders: 16})
		r := NewDecoder(DecoderOptions{Day: testDay, Orders: 16})
		var refs []uint64
		for len(b) >= 2 {
			n := int(binary.BigEndian.Uint16(b))
			if n > len(b)-2 {
				break
			}
			msg := b[2 : 2+n : 2+n]
			b = b[2+n:]
			fs, err := a.Decode(msg)
			if err != nil {
				continue
			}
			for _, fr := range fs {
				r.Apply(fr.Type, fr.Instrument, fr.Payload)
				if fr.Type.IsOrder() {
					refs = append(refs, binary.LittleEndian.Uint64(fr.Payload))
				}
			}
		}
		if a.Orders() != r.Orders() {
			t.Fatalf("%d orders decoded, %d rebuilt", a.Orders(), r.Orders())
		}
		for _, ref := range refs {
			i1, s1, p1, q1, ok1 := a.Order(ref)
			i2, s2, p2, q2, ok2 := r.Order(ref)
			if i1 != i2 || s1 != s2 || p1 != p2 || q1 != q2 || ok1 != ok2 {
				t.Fatalf("order %d differs after the rebuild", ref)
			}
		}
	})
}
