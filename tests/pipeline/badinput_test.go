package pipeline_test

import (
	"strings"
	"testing"
	"time"

	"github.com/mdjournal/mdjournal/journal"
	"github.com/mdjournal/mdjournal/pipeline"
	"github.com/mdjournal/mdjournal/ring"
	"github.com/mdjournal/mdjournal/writer"
)

// writeMD writes a small market-data journal: instrument 1 defined with a
// two-sided book (bid 1000000, ask 1000100), a book frame of instrument 5
// (never defined), then trades of instrument 1.
func writeMD(t *testing.T, dir string) []int64 {
	t.Helper()
	w, err := writer.Open(dir, writer.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	ts := []int64{0}
	add := func(typ journal.MsgType, instr uint32, p []byte) {
		t.Helper()
		at := int64(1_767_364_200_000_000_000) + int64(len(ts))*1000
		if _, err := w.Append(typ, instr, at, p); err != nil {
			t.Fatalf("append %v: %v", typ, err)
		}
		ts = append(ts, at)
	}
	def := journal.InstrumentDef{TickSize: 100, PriceScale: 4}
	copy(def.Symbol[:], "TEST")
	add(journal.TypeInstrumentDef, 1, def.Encode(nil))                                                               // 1
	add(journal.TypeBookLevel, 1, (&journal.BookLevel{Price: 1000000, Qty: 500, Side: journal.SideBid}).Encode(nil)) // 2
	add(journal.TypeBookLevel, 1, (&journal.BookLevel{Price: 1000100, Qty: 500, Side: journal.SideAsk}).Encode(nil)) // 3
	add(journal.TypeBookLevel, 5, (&journal.BookLevel{Price: 500, Qty: 1, Side: journal.SideBid}).Encode(nil))       // 4
	for i := 0; i < 6; i++ {                                                                                         // 5..10
		add(journal.TypeTrade, 1, (&journal.Trade{Price: 1000000, Qty: 1, TradeID: uint64(i + 1)}).Encode(nil))
	}
	return ts // ts[seq]
}

// TestBadInput feeds the risk process (a real one) a hand-made ring: records
// that are not order frames get no decision at all; well-formed orders that
// are wrong get a rejection naming why; a duplicate gets nothing; an order
// id that skips ahead stops risk with a clear error. Expected verdicts are
// written out here from the limits documented in package pipeline.
func TestBadInput(t *testing.T) {
	d, ringPath := setup(t)
	ts := writeMD(t, d.MD())
	p, err := ring.NewProducer(ringPath, 1<<16, ring.ProducerOptions{Options: ring.Options{Replace: true}, Linger: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	log := &syncBuf{}
	risk := start(t, log, "risk", stageArgs(d, ringPath, "risk", "-trigger-wait", "300ms")...)

	rec := func(o journal.OrderRequest, instr uint32) []byte {
		b := make([]byte, pipeline.OrderRecordSize)
		n := journal.PutFrame(b, o.OrderID, o.TriggerTS, journal.TypeOrderRequest, 0, instr, o.Encode(nil))
		return b[:n]
	}
	order := func(id uint64, instr uint32, side journal.Side, price, qty int64, trig uint64) []byte {
		return rec(journal.OrderRequest{OrderID: id, Price: price, Qty: qty, Side: side, Strategy: 9, TriggerSeq: trig,
			TriggerTS: ts[min(trig, uint64(len(ts)-1))], Decided: time.Now().UnixNano()}, instr)
	}
	badCRC := order(1, 1, journal.SideBid, 1000100, 10, 3)
	badCRC[40] ^= 0xff
	// trigger_ts one ns off frame 7's, in a frame with a valid CRC
	var f journal.Frame
	journal.DecodeFrameInto(order(5, 1, journal.SideBid, 1000100, 10, 7), &f)
	var o journal.OrderRequest
	o.Decode(f.Payload)
	o.TriggerTS++
	mismatch := rec(o, 1)

	records := [][]byte{
		[]byte("garbage!"), // not a frame: no decision
		badCRC,             // damaged frame: no decision
		order(1, 1, journal.SideBid, 1000100, 10, 3), // accepted
		order(2, 5, journal.SideBid, 600, 1, 4),      // instrument 5 was never defined
		order(3, 1, journal.SideBid, 1000100, 0, 5),  // qty 0: invalid
		order(4, 1, journal.SideBid, 2000000, 10, 6), // 100% off the mid: price band
		mismatch, // trigger_ts is not frame 7's
		order(6, 1, journal.SideAsk, 1000000, 10, 999), // trigger never appears
		order(1, 1, journal.SideBid, 1000100, 10, 3),   // duplicate of order 1: nothing
		order(9, 1, journal.SideBid, 1000100, 10, 9),   // skips 7 and 8: risk stops
	}
	for _, r := range records {
		if err := p.Write(r); err != nil {
			t.Fatal(err)
		}
	}
	err = risk.wait(t, 30*time.Second)
	if exitCode(err) != 1 || !strings.Contains(log.String(), "order ids skip ahead: order 9 after 6") {
		t.Fatalf("risk: %v, want exit 1 naming the gap; output:\n%s", err, log)
	}
	if n := strings.Count(log.String(), "malformed order record"); n != 2 {
		t.Fatalf("%d malformed records reported, want 2; output:\n%s", n, log)
	}
	want := []struct {
		id      uint64
		verdict uint8
		reason  uint16
	}{
		{1, journal.RiskAccepted, 0},
		{2, journal.RiskRejected, 2}, // unknown_instrument
		{3, journal.RiskRejected, 1}, // invalid
		{4, journal.RiskRejected, 5}, // price_band
		{5, journal.RiskRejected, 9}, // trigger_mismatch
		{6, journal.RiskRejected, 8}, // trigger_unknown
	}
	ds := decisions(t, d.Risk())
	if len(ds) != len(want) {
		t.Fatalf("%d decisions, want %d: %+v", len(ds), len(want), ds)
	}
	for i, w := range want {
		if ds[i].OrderID != w.id || ds[i].Verdict != w.verdict || ds[i].Reason != w.reason {
			t.Errorf("decision %d: order %d verdict %d reason %d (%s), want order %d verdict %d reason %d",
				i, ds[i].OrderID, ds[i].Verdict, ds[i].Reason, pipeline.ReasonName(ds[i].Reason), w.id, w.verdict, w.reason)
		}
	}
}
