//go:build linux

package moldudp64

import (
	"net/netip"
	"testing"
	"time"

	"github.com/mdjournal/mdjournal/internal/clock"
	"github.com/mdjournal/mdjournal/itch"
)

// BenchmarkReceive measures the receive path on loopback three ways over
// the same kind of packets (1400-byte MoldUDP64 packets of 36 ITCH Add
// Order messages each), interleaved chunk by chunk in one run so that
// machine noise hits all three alike:
//
//   - floor: recvmmsg into a Batch, packets dropped;
//   - parse: floor + ParsePacket and a walk over every message block;
//   - full:  Receiver.Poll: recvmmsg → ParsePacket → Sequencer → handler,
//     which parses each message as ITCH (itch.Parse) and reads its locate.
//
// Each mode has its own socket, all asking for kernel receive timestamps
// (SO_TIMESTAMPNS) as a feed handler does. For each chunk the socket is
// filled first (1000 packets, within the receive buffer, not timed: the
// loopback delivery completes inside sendto) and then drained with the
// clock running; losing a packet fails the benchmark. b.N counts packets
// per mode. Reported: ns/msg of each mode, full/floor, and msgs/s of full.
// The same thread fills and drains, so packet bytes are warm in cache,
// unlike packets a NIC wrote.
func BenchmarkReceive(b *testing.B) {
	const chunk = 1000
	add := itch.AddOrder{OrderRef: 1, Side: 'B', Shares: 100, Price: 1562500}
	add.Stock, _ = itch.ParseSymbol("AAPL")
	msg := add.AppendEncode(nil)

	type lane struct {
		feed *Conn
		snd  *Sender
		ns   int64 // time spent draining
	}
	var lanes [3]lane
	for i := range lanes {
		feed, err := Listen(netip.AddrPortFrom(loopback, 0), ConnOptions{RecvBuffer: 32 << 20, Timestamps: true})
		if err != nil {
			b.Fatal(err)
		}
		defer feed.Close()
		out, err := Listen(netip.AddrPortFrom(loopback, 0), ConnOptions{SendBuffer: 32 << 20})
		if err != nil {
			b.Fatal(err)
		}
		defer out.Close()
		snd, err := NewSender(out, feed.LocalAddr(), SenderOptions{Session: testSession, HeartbeatInterval: time.Hour})
		if err != nil {
			b.Fatal(err)
		}
		lanes[i] = lane{feed: feed, snd: snd}
	}
	var sum uint64
	seq, err := NewSequencer(func(e *Event) error {
		if e.Kind == EventMessage {
			m, err := itch.Parse(e.Msg)
			if err != nil {
				return err
			}
			sum += uint64(m.Locate())
		}
		return nil
	}, SequencerOptions{Next: 1})
	if err != nil {
		b.Fatal(err)
	}
	rcv := NewReceiver(lanes[2].feed, nil, seq, NewBatch(64, 2048))
	batch := NewBatch(64, 2048)

	fill := func(s *Sender, n int) uint64 {
		before := s.Counters().Packets
		for s.Counters().Packets-before < uint64(n) {
			if _, err := s.Add(msg); err != nil {
				b.Fatal(err)
			}
		}
		return s.Next() - 1 - uint64(s.b.Count()) // last message sent
	}
	drain := func(c *Conn, n int, parse bool) {
		for got := 0; got < n; {
			k, err := c.Read(batch)
			if err != nil {
				b.Fatal(err)
			}
			if k == 0 {
				b.Fatalf("socket empty after %d of %d packets: lost", got, n)
			}
			got += k
			if !parse {
				continue
			}
			for i := 0; i < k; i++ {
				p, err := ParsePacket(batch.Packet(i))
				if err != nil {
					b.Fatal(err)
				}
				it := p.Iter()
				for _, m, ok := it.Next(); ok; _, m, ok = it.Next() {
					sum += uint64(m[0])
				}
			}
		}
	}

	var last uint64
	b.ResetTimer()
	for done := 0; done < b.N; {
		n := min(chunk, b.N-done)
		for i := range lanes {
			l := &lanes[i]
			b.StopTimer()
			end := fill(l.snd, n)
			b.StartTimer()
			t0 := clock.Nanotime()
			switch i {
			case 0, 1:
				drain(l.feed, n, i == 1)
			case 2:
				for seq.Next() <= end {
					if _, err := rcv.Poll(time.Second); err != nil {
						b.Fatal(err)
					}
					if rcv.Counters().Waits > 0 {
						b.Fatalf("receiver had to wait: packets lost? %+v %+v", seq.Counters(), rcv.Counters())
					}
				}
				last = end
			}
			l.ns += clock.Nanotime() - t0
		}
		done += n
	}
	b.StopTimer()
	if c := seq.Counters(); c.Gaps != 0 || c.Messages != last || c.OutOfOrder != 0 {
		b.Fatalf("%+v, sent %d", c, last)
	}
	msgs := float64(last) // every lane carried the same number of messages
	b.ReportMetric(float64(lanes[0].ns)/msgs, "floor-ns/msg")
	b.ReportMetric(float64(lanes[1].ns)/msgs, "parse-ns/msg")
	b.ReportMetric(float64(lanes[2].ns)/msgs, "full-ns/msg")
	b.ReportMetric(float64(lanes[2].ns)/float64(lanes[0].ns), "full/floor")
	b.ReportMetric(msgs/(float64(lanes[2].ns)/1e9), "full-msgs/s")
	b.ReportMetric(msgs/float64(b.N), "msgs/pkt")
}
