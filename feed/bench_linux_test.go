//go:build linux

package feed

import (
	"math/rand/v2"
	"testing"

	"github.com/mdjournal/mdjournal/internal/clock"
	"github.com/mdjournal/mdjournal/itch"
	"github.com/mdjournal/mdjournal/moldudp64"
	"github.com/mdjournal/mdjournal/writer"
)

// benchFlow makes 1400-byte packets of a steady order flow: 45 % adds,
// 35 % deletes, 10 % executions, 10 % cancels, on about live resting
// orders; an event names one of the 1000 most recent resting orders 9
// times in 10 (most orders on an exchange are cancelled or filled soon
// after they arrive), any resting order otherwise.
type benchFlow struct {
	rng    *rand.Rand
	live   int
	next   uint64
	orders []flowOrder // in arrival order; dead ones are compacted away
	alive  int
	seq    uint64
	ts     uint64
	b      moldudp64.Builder
	carry  []byte
	m      []byte
}

type flowOrder struct {
	ref    uint64
	shares uint32
	dead   bool
}

func (g *benchFlow) pick() *flowOrder {
	for {
		n := len(g.orders)
		i := g.rng.IntN(n)
		if g.rng.IntN(10) != 0 {
			i = n - 1 - g.rng.IntN(min(n, 1000))
		}
		if !g.orders[i].dead {
			return &g.orders[i]
		}
	}
}

func (g *benchFlow) remove(o *flowOrder) {
	o.dead = true
	g.alive--
	if len(g.orders) > 4*g.live && g.alive < len(g.orders)/2 {
		k := 0
		for _, x := range g.orders {
			if !x.dead {
				g.orders[k] = x
				k++
			}
		}
		g.orders = g.orders[:k]
	}
}

func (g *benchFlow) message(dst []byte) []byte {
	g.ts++
	h := itch.Header{Locate: 1, Timestamp: g.ts}
	r := g.rng.IntN(100)
	if g.alive < g.live/2 || (r < 45 && g.alive < 2*g.live) {
		o := flowOrder{ref: g.next, shares: uint32(100 * (1 + g.rng.IntN(10)))}
		g.next++
		g.orders = append(g.orders, o)
		g.alive++
		m := itch.AddOrder{Header: h, OrderRef: o.ref, Side: "BS"[g.rng.IntN(2)], Shares: o.shares, Price: itch.Price4(1000000 + 100*g.rng.IntN(200))}
		return m.AppendEncode(dst)
	}
	o := g.pick()
	switch {
	case r < 80:
		m := itch.OrderDelete{Header: h, OrderRef: o.ref}
		g.remove(o)
		return m.AppendEncode(dst)
	case r < 90:
		q := min(o.shares, 100)
		m := itch.OrderExecuted{Header: h, OrderRef: o.ref, Shares: q, Match: g.ts}
		if o.shares -= q; o.shares == 0 {
			g.remove(o)
		}
		return m.AppendEncode(dst)
	default:
		q := min(o.shares, 50)
		m := itch.OrderCancel{Header: h, OrderRef: o.ref, Canceled: q}
		if o.shares -= q; o.shares == 0 {
			g.remove(o)
		}
		return m.AppendEncode(dst)
	}
}

// packets fills pkts with the next packets of the flow.
func (g *benchFlow) packets(pkts [][]byte) {
	for i := range pkts {
		g.b.Reset(sess, g.seq, 0)
		if len(g.carry) > 0 {
			g.b.Add(g.carry)
			g.carry = g.carry[:0]
		}
		for {
			g.m = g.message(g.m[:0])
			if g.b.Add(g.m) != nil {
				g.carry = append(g.carry, g.m...)
				break
			}
		}
		pkts[i] = append(pkts[i][:0], g.b.Bytes()...)
		g.seq = g.b.NextSeq()
	}
}

// BenchmarkFeed measures the feed's receive path on loopback in chunks of
// 1000 packets of about 45 ITCH messages, each chunk sent into the socket
// first (not timed) and then drained with the clock running, two ways
// interleaved chunk by chunk so that machine noise hits both alike:
//
//   - floor: recvmmsg into a Batch, packets dropped;
//   - feed:  Feed.Poll: recvmmsg → Sequencer → Decoder → StageSource →
//     Publish, into a journal.
//
// b.N counts packets. Reported: ns/msg of each, feed-msgs/s, and
// feed-rate/floor-rate.
func BenchmarkFeed(b *testing.B) {
	const chunk = 1000
	w, err := writer.Open(b.TempDir(), writer.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer w.Close()
	f, err := New(w, Options{Listen: lo, Day: testDay, RecvBuffer: 256 << 20, Spin: true, Orders: 1 << 17})
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	floor, err := moldudp64.Listen(lo, moldudp64.ConnOptions{RecvBuffer: 256 << 20, Timestamps: true})
	if err != nil {
		b.Fatal(err)
	}
	defer floor.Close()
	out, err := moldudp64.Listen(lo, moldudp64.ConnOptions{SendBuffer: 64 << 20})
	if err != nil {
		b.Fatal(err)
	}
	defer out.Close()
	g := &benchFlow{rng: rand.New(rand.NewPCG(1, 2)), live: 50000, next: 1, seq: 1}
	pkts := make([][]byte, chunk)
	batch := moldudp64.NewBatch(64, 2048)
	var floorNs, feedNs int64
	var msgs uint64
	// Warm up: the table, the journal's first pages, the sockets.
	g.packets(pkts)
	for _, p := range pkts {
		if err := out.WriteTo(p, f.LocalAddr()); err != nil {
			b.Fatal(err)
		}
	}
	for f.Next() < g.seq {
		if _, err := f.Poll(0); err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	for done := 0; done < b.N; {
		n := min(chunk, b.N-done)
		b.StopTimer()
		first := g.seq
		g.packets(pkts[:n])
		for _, p := range pkts[:n] {
			if err := out.WriteTo(p, floor.LocalAddr()); err != nil {
				b.Fatal(err)
			}
		}
		b.StartTimer()
		t0 := clock.Nanotime()
		for got := 0; got < n; {
			k, err := floor.Read(batch)
			if err != nil || k == 0 {
				b.Fatalf("floor: %d of %d packets, %v", got, n, err)
			}
			got += k
		}
		floorNs += clock.Nanotime() - t0
		b.StopTimer()
		for _, p := range pkts[:n] {
			if err := out.WriteTo(p, f.LocalAddr()); err != nil {
				b.Fatal(err)
			}
		}
		b.StartTimer()
		t0 = clock.Nanotime()
		for f.Next() < g.seq {
			k, err := f.Poll(0)
			if err != nil || k == 0 {
				b.Fatalf("feed: at %d of %d: %d packets, %v", f.Next(), g.seq, k, err)
			}
		}
		feedNs += clock.Nanotime() - t0
		msgs += g.seq - first
		done += n
	}
	b.StopTimer()
	if st := f.Stats(); st.Gaps != 0 || st.Decoder.Unknown != 0 {
		b.Fatalf("%+v", st.Decoder)
	}
	b.ReportMetric(float64(floorNs)/float64(msgs), "floor-ns/msg")
	b.ReportMetric(float64(feedNs)/float64(msgs), "feed-ns/msg")
	b.ReportMetric(float64(msgs)/(float64(feedNs)/1e9), "feed-msgs/s")
	b.ReportMetric(float64(floorNs)/float64(feedNs), "feed/floor-rate")
	b.ReportMetric(float64(msgs)/float64(b.N), "msgs/pkt")
}
