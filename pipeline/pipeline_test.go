package pipeline_test

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/mdjournal/mdjournal/book"
	"github.com/mdjournal/mdjournal/journal"
	"github.com/mdjournal/mdjournal/pipeline"
	"github.com/mdjournal/mdjournal/ring"
	"github.com/mdjournal/mdjournal/stats"
	"github.com/mdjournal/mdjournal/writer"
)

func TestStrategyDecide(t *testing.T) {
	s := pipeline.Strategy{ID: 1, ThresholdBP: 6000, MaxPosition: 300, MaxOrderQty: 100}
	cases := []struct {
		name                 string
		bid, bidQ, ask, askQ int64
		pos                  int64
		side                 journal.Side
		price, qty           int64
		ok                   bool
	}{
		{"bid heavy, flat: buy at the ask", 100, 900, 101, 100, 0, journal.SideBid, 101, 100, true},
		{"ask heavy, flat: sell at the bid", 100, 100, 101, 900, 0, journal.SideAsk, 100, 100, true},
		{"ask heavy, long 300: sell 100", 100, 100, 101, 900, 300, journal.SideAsk, 100, 100, true},
		{"balanced: hold", 100, 500, 101, 500, 120, 0, 0, 0, false},
		{"just under the threshold: hold", 100, 790, 101, 210, 0, 0, 0, 0, false},         // imb 5800
		{"at the threshold: buy", 100, 800, 101, 200, 0, journal.SideBid, 101, 100, true}, // imb 6000
		{"at the limit: hold", 100, 900, 101, 100, 300, 0, 0, 0, false},
		{"near the limit: the rest", 100, 900, 101, 100, 270, journal.SideBid, 101, 30, true},
		{"crossed book: nothing", 101, 900, 100, 100, 0, 0, 0, 0, false},
	}
	for _, c := range cases {
		b := book.New(0)
		b.SetLevel(journal.SideBid, c.bid, c.bidQ)
		b.SetLevel(journal.SideAsk, c.ask, c.askQ)
		side, price, qty, ok := s.Decide(b, c.pos)
		if side != c.side || price != c.price || qty != c.qty || ok != c.ok {
			t.Errorf("%s: got %v %d@%d %v, want %v %d@%d %v", c.name, side, qty, price, ok, c.side, c.qty, c.price, c.ok)
		}
	}
	if _, _, _, ok := s.Decide(book.New(0), 0); ok {
		t.Error("an empty book gave an order")
	}
}

func shmRing(t testing.TB) string {
	var b [6]byte
	rand.Read(b[:])
	dir := filepath.Join("/dev/shm", "mdj-pipeline-unit-"+hex.EncodeToString(b[:]))
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return filepath.Join(dir, "orders.ring")
}

func level(seq uint64, side journal.Side, price, qty int64) journal.Frame {
	return journal.Frame{Seq: seq, TS: int64(seq) * 1000, Type: journal.TypeBookLevel, Instrument: 1,
		Payload: (&journal.BookLevel{Price: price, Qty: qty, Side: side}).Encode(nil)}
}

// TestEngineProcessAllocs: the engine's per-frame path — book update,
// strategy, orders journal append, ring push — allocates nothing, with and
// without an order.
func TestEngineProcessAllocs(t *testing.T) {
	d := pipeline.Dirs{Root: t.TempDir()}
	path := shmRing(t)
	pub, err := stats.Create(t.TempDir(), "engine", 0)
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	e, err := pipeline.NewEngine(pipeline.EngineConfig{Dirs: d, RingPath: path}, pub)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	c, err := ring.NewConsumer(path, ring.ConsumerOptions{AttachTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	got := 0
	drain := func(rec []byte) { got++ }
	seq := uint64(0)
	feed := func(side journal.Side, price, qty int64) {
		seq++
		f := level(seq, side, price, qty)
		if err := e.Process(&f); err != nil {
			t.Fatal(err)
		}
	}
	feed(journal.SideBid, 1000, 500)
	feed(journal.SideAsk, 1001, 500)
	// Each flip of the imbalance sends an order toward ±300 (100 at a time).
	fa := level(0, journal.SideBid, 1000, 5000)
	fb := level(0, journal.SideBid, 1000, 50)
	flip := func() {
		for _, f := range []*journal.Frame{&fa, &fb} {
			seq++
			f.Seq = seq
			if err := e.Process(f); err != nil {
				t.Fatal(err)
			}
		}
		c.TryReadBatch(64, drain)
	}
	before := e.LastOrder()
	if a := testing.AllocsPerRun(500, flip); a != 0 {
		t.Fatalf("%v allocations per pair of frames with orders", a)
	}
	if e.LastOrder()-before < 500 || got == 0 {
		t.Fatalf("%d orders emitted, %d read: the measured path did not send orders", e.LastOrder()-before, got)
	}
	quiet := level(0, journal.SideAsk, 1005, 10) // a level behind the touch: no order
	if a := testing.AllocsPerRun(1000, func() {
		seq++
		quiet.Seq = seq
		if err := e.Process(&quiet); err != nil {
			t.Fatal(err)
		}
	}); a != 0 {
		t.Fatalf("%v allocations per frame without an order", a)
	}
}

// riskFixture writes a market-data journal (instrument 1 with a two-sided
// book, then n trades) and opens a Risk on it.
func riskFixture(t testing.TB, n int, trigWait time.Duration) (*pipeline.Risk, []int64) {
	d := pipeline.Dirs{Root: t.TempDir()}
	w, err := writer.Open(d.MD(), writer.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ts := []int64{0}
	add := func(typ journal.MsgType, p []byte) {
		at := int64(1_767_364_200_000_000_000) + int64(len(ts))*int64(time.Second)
		if _, err := w.Append(typ, 1, at, p); err != nil {
			t.Fatal(err)
		}
		ts = append(ts, at)
	}
	def := journal.InstrumentDef{TickSize: 1, PriceScale: 4}
	copy(def.Symbol[:], "T")
	add(journal.TypeInstrumentDef, def.Encode(nil))
	add(journal.TypeBookLevel, (&journal.BookLevel{Price: 1000000, Qty: 500, Side: journal.SideBid}).Encode(nil))
	add(journal.TypeBookLevel, (&journal.BookLevel{Price: 1000100, Qty: 500, Side: journal.SideAsk}).Encode(nil))
	for i := 0; i < n; i++ {
		add(journal.TypeTrade, (&journal.Trade{Price: 1000000, Qty: 1, TradeID: uint64(i + 1)}).Encode(nil))
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	pub, err := stats.Create(t.TempDir(), "risk", 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pub.Close() })
	r, err := pipeline.NewRisk(pipeline.RiskConfig{Dirs: d, TriggerWait: trigWait}, pub)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r, ts
}

// TestRiskHandleAllocs: deciding an order — decode, checks against the
// book at its trigger, audit journal append — allocates nothing.
func TestRiskHandleAllocs(t *testing.T) {
	const n = 1200
	r, ts := riskFixture(t, n, time.Second)
	rec := make([]byte, pipeline.OrderRecordSize)
	id := uint64(0)
	one := func() {
		id++
		side := journal.SideBid
		price := int64(1000100)
		if id%2 == 0 {
			side, price = journal.SideAsk, 1000000
		}
		trig := 3 + id
		o := journal.OrderRequest{OrderID: id, Price: price, Qty: 10, Side: side, TriggerSeq: trig, TriggerTS: ts[trig]}
		var buf [64]byte
		journal.PutFrame(rec, id, ts[trig], journal.TypeOrderRequest, 0, 1, o.Encode(buf[:0]))
		if err := r.Handle(rec); err != nil {
			t.Fatal(err)
		}
	}
	if a := testing.AllocsPerRun(n-10, one); a != 0 {
		t.Fatalf("%v allocations per order", a)
	}
	if r.Decided() != id || r.Position(1) != 0 && r.Position(1) != 10 {
		t.Fatalf("decided %d of %d, position %d", r.Decided(), id, r.Position(1))
	}
}

// FuzzRiskHandle: whatever bytes arrive in the ring, Handle never panics,
// and writes a decision only for a well-formed order frame.
func FuzzRiskHandle(f *testing.F) {
	good := make([]byte, pipeline.OrderRecordSize)
	o := journal.OrderRequest{OrderID: 1, Price: 1000100, Qty: 10, Side: journal.SideBid, TriggerSeq: 3}
	journal.PutFrame(good, 1, 0, journal.TypeOrderRequest, 0, 1, o.Encode(nil))
	f.Add(good)
	f.Add([]byte("garbage"))
	f.Add(good[:40])
	f.Add([]byte{})
	r, _ := riskFixture(f, 4, time.Millisecond)
	f.Fuzz(func(t *testing.T, b []byte) {
		before := r.Decided()
		err := r.Handle(b)
		_, _, st := journal.DecodeFrame(b)
		if st != journal.FrameOK && !errors.Is(err, pipeline.ErrMalformed) {
			t.Fatalf("a record that is no frame (status %d): err %v", st, err)
		}
		if r.Decided() != before && (err != nil || r.Decided() != before+1) {
			t.Fatalf("decided moved %d -> %d with err %v", before, r.Decided(), err)
		}
	})
}

// BenchmarkEngineProcess: the engine's per-frame cost with an order (book
// update, strategy, orders journal append, ring push; a same-process
// consumer drains), beside the raw baseline of the same frames applied to a
// bare book.
func BenchmarkEngineProcess(b *testing.B) {
	fa := level(0, journal.SideBid, 1000, 5000)
	fb := level(0, journal.SideBid, 1000, 50)
	b.Run("raw-book-apply", func(b *testing.B) {
		bk := book.New(256)
		bk.SetLevel(journal.SideAsk, 1001, 500)
		for i := 0; b.Loop(); i++ {
			f := &fa
			if i&1 == 1 {
				f = &fb
			}
			f.Seq = uint64(i + 1)
			bk.ApplyFrame(f)
		}
	})
	b.Run("engine-order-per-frame", func(b *testing.B) {
		d := pipeline.Dirs{Root: b.TempDir()}
		path := shmRing(b)
		pub, err := stats.Create(b.TempDir(), "engine", 0)
		if err != nil {
			b.Fatal(err)
		}
		defer pub.Close()
		e, err := pipeline.NewEngine(pipeline.EngineConfig{Dirs: d, RingPath: path,
			Strategy: pipeline.Strategy{ID: 1, ThresholdBP: 6000, MaxPosition: 100, MaxOrderQty: 100}}, pub)
		if err != nil {
			b.Fatal(err)
		}
		defer e.Close()
		c, err := ring.NewConsumer(path, ring.ConsumerOptions{AttachTimeout: 5 * time.Second})
		if err != nil {
			b.Fatal(err)
		}
		defer c.Close()
		ask := level(1, journal.SideAsk, 1001, 500)
		e.Process(&ask)
		drain := func([]byte) {}
		for i := 0; b.Loop(); i++ {
			f := &fa
			if i&1 == 1 {
				f = &fb
			}
			f.Seq = uint64(i + 2)
			if err := e.Process(f); err != nil {
				b.Fatal(err)
			}
			if i&63 == 63 {
				c.TryReadBatch(1024, drain)
			}
		}
		b.ReportMetric(float64(e.LastOrder())/float64(b.N), "orders/frame")
	})
}

// BenchmarkRiskHandle: risk's per-order cost (decode and verify the frame,
// advance the books to the trigger, checks, audit journal append), beside
// the raw baseline of decoding and verifying the same record.
func BenchmarkRiskHandle(b *testing.B) {
	rec := make([]byte, pipeline.OrderRecordSize)
	o := journal.OrderRequest{OrderID: 1, Price: 1000100, Qty: 10, Side: journal.SideBid, TriggerSeq: 3}
	journal.PutFrame(rec, 1, 0, journal.TypeOrderRequest, 0, 1, o.Encode(nil))
	b.Run("raw-decode-frame", func(b *testing.B) {
		var f journal.Frame
		var x journal.OrderRequest
		for b.Loop() {
			journal.DecodeFrameInto(rec, &f)
			x.Decode(f.Payload)
		}
	})
	b.Run("risk-handle", func(b *testing.B) {
		r, ts := riskFixture(b, b.N+1, time.Second)
		var buf [64]byte
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			id := uint64(i + 1)
			trig := 3 + id
			o := journal.OrderRequest{OrderID: id, Price: 1000100, Qty: 10, Side: journal.SideBid + journal.Side(id&1),
				TriggerSeq: trig, TriggerTS: ts[trig]}
			if o.Side == journal.SideAsk {
				o.Price = 1000000
			}
			journal.PutFrame(rec, id, ts[trig], journal.TypeOrderRequest, 0, 1, o.Encode(buf[:0]))
			if err := r.Handle(rec); err != nil {
				b.Fatal(err)
			}
		}
	})
}
