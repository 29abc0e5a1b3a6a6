// Package synth generates a deterministic synthetic market-data stream: one
// InstrumentDef per instrument, then a mix of quotes, trades and L2 book
// levels from a per-instrument random walk. The same seed and instrument
// count always give the same frames (timestamps are the caller's), which is
// what tests, `journalctl gen` and the benchmarks need.
package synth

import (
	"fmt"
	"math/rand/v2"

	"github.com/mdjournal/mdjournal/journal"
)

// Gen produces frames. It allocates nothing per frame.
type Gen struct {
	rng   *rand.Rand
	insts []inst
	defs  int // definitions emitted so far
	buf   [32]byte
	trade uint64
}

type inst struct {
	mid    int64 // mid price in ticks
	spread int64
}

const (
	priceScale = 4
	tick       = 100 // $0.01 at scale 4
)

// New returns a generator for n instruments (ids 1..n).
func New(seed uint64, n int) *Gen {
	g := &Gen{rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)), insts: make([]inst, n)}
	for i := range g.insts {
		g.insts[i] = inst{mid: 5000 + int64(g.rng.IntN(20000)), spread: 1 + int64(g.rng.IntN(3))}
	}
	return g
}

// Symbol is the synthetic symbol of instrument id.
func Symbol(id uint32) string { return fmt.Sprintf("SYN%04d", id) }

// Next returns the next frame's type, instrument and payload. The payload
// aliases the generator's buffer: copy or append it before calling Next again.
func (g *Gen) Next() (journal.MsgType, uint32, []byte) {
	if g.defs < len(g.insts) {
		g.defs++
		var d journal.InstrumentDef
		d.SetSymbol(Symbol(uint32(g.defs)))
		d.PriceScale, d.TickSize = priceScale, tick
		return journal.TypeInstrumentDef, uint32(g.defs), d.Encode(g.buf[:])
	}
	i := g.rng.IntN(len(g.insts))
	in := &g.insts[i]
	id := uint32(i + 1)
	// Random walk of the mid, never below 10 ticks.
	switch g.rng.IntN(8) {
	case 0:
		in.mid++
	case 1:
		if in.mid > 10 {
			in.mid--
		}
	}
	bid := (in.mid - in.spread) * tick
	ask := (in.mid + in.spread) * tick
	switch r := g.rng.IntN(10); {
	case r < 5:
		q := journal.Quote{BidPrice: bid, BidQty: 100 * (1 + int64(g.rng.IntN(20))), AskPrice: ask, AskQty: 100 * (1 + int64(g.rng.IntN(20)))}
		return journal.TypeQuote, id, q.Encode(g.buf[:])
	case r < 7:
		g.trade++
		side := journal.SideBid
		px := ask
		if g.rng.IntN(2) == 0 {
			side, px = journal.SideAsk, bid
		}
		t := journal.Trade{Price: px, Qty: 1 + int64(g.rng.IntN(500)), TradeID: g.trade, Aggressor: side}
		return journal.TypeTrade, id, t.Encode(g.buf[:])
	default:
		side := journal.SideBid
		px := bid - int64(g.rng.IntN(5))*tick
		if g.rng.IntN(2) == 0 {
			side, px = journal.SideAsk, ask+int64(g.rng.IntN(5))*tick
		}
		qty := int64(0)
		if g.rng.IntN(4) != 0 {
			qty = 100 * (1 + int64(g.rng.IntN(50)))
		}
		l := journal.BookLevel{Price: px, Qty: qty, Side: side}
		return journal.TypeBookLevel, id, l.Encode(g.buf[:])
	}
}
