package moldudp64

import "testing"

// countRequester counts requests without keeping them (no allocation).
type countRequester struct{ n int }

func (c *countRequester) Request(Session, uint64, uint16) error { c.n++; return nil }

func TestCodecDoesNotAllocate(t *testing.T) {
	p := pkt(testSession, 1, 10)
	var b Builder
	b.Reset(testSession, 1, 0)
	msg := msgFor(3)
	req := Request{Session: testSession, Seq: 5, Count: 9}
	buf := make([]byte, 0, 64)
	allocs := testing.AllocsPerRun(500, func() {
		pp, err := ParsePacket(p)
		if err != nil {
			t.Fatal(err)
		}
		it := pp.Iter()
		for _, _, ok := it.Next(); ok; _, _, ok = it.Next() {
		}
		b.Reset(testSession, 1, 0)
		for b.Add(msg) == nil {
		}
		_ = b.Bytes()
		buf = req.AppendEncode(buf[:0])
		if _, err := ParseRequest(buf); err != nil {
			t.Fatal(err)
		}
		buf = AppendHeartbeat(buf[:0], testSession, 9)
	})
	if allocs != 0 {
		t.Errorf("%v allocations", allocs)
	}
}

// TestSequencerDoesNotAllocate: in order, out of order (once each slot's
// buffer has been used) and with request rounds, Push and Tick allocate
// nothing.
func TestSequencerDoesNotAllocate(t *testing.T) {
	const n = 4096
	pkts := make([][]byte, n)
	for i := range pkts {
		pkts[i] = pkt(testSession, uint64(2*i+1), uint64(2*i+2))
	}
	var c fakeClock
	req := &countRequester{}
	msgs := 0
	h := func(e *Event) error {
		if e.Kind == EventMessage {
			msgs++
		}
		return nil
	}
	s, err := NewSequencer(h, SequencerOptions{Next: 1, MaxBufferedMessages: 16, Requester: req, Clock: c.now})
	if err != nil {
		t.Fatal(err)
	}
	i := 0
	inOrder := testing.AllocsPerRun(1000, func() {
		s.Push(pkts[i], 0)
		i++
	})
	// Swapped pairs: every other packet is held, then released; time moves
	// so that request rounds are sent too.
	swapped := testing.AllocsPerRun(1000, func() {
		s.Push(pkts[i+1], 0)
		c.t += 2 * ms
		s.Tick()
		s.Push(pkts[i], 0)
		i += 2
	})
	if inOrder != 0 || swapped != 0 {
		t.Errorf("allocations per packet: in order %v, swapped %v", inOrder, swapped)
	}
	if cn := s.Counters(); cn.Gaps != 0 || cn.OutOfOrder == 0 || req.n == 0 || msgs != 2*i {
		t.Fatalf("%+v, %d requests, %d messages of %d", cn, req.n, msgs, 2*i)
	}
}
