package moldudp64

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"
)

// queueRequester queues requests; the simulation answers them later.
type queueRequester struct{ q []Request }

func (r *queueRequester) Request(s Session, first uint64, count uint16) error {
	r.q = append(r.q, Request{Session: s, Seq: first, Count: count})
	return nil
}

// TestSequencerRandom runs seeded simulations of a lossy, reordering,
// duplicating network on a hand-moved clock.
//
// With re-requests (answers themselves lost at random): every message is
// delivered exactly once, in order, and no gap is reported.
//
// Without: the messages delivered are exactly those whose packets arrived,
// in order, and the gaps reported are exactly the ranges that never did.
func TestSequencerRandom(t *testing.T) {
	seeds := uint64(20)
	if testing.Short() {
		seeds = 5
	}
	for seed := uint64(1); seed <= seeds; seed++ {
		for _, withReq := range []bool{true, false} {
			t.Run(fmt.Sprintf("seed%d/requests=%v", seed, withReq), func(t *testing.T) {
				simulate(t, seed, withReq)
			})
		}
	}
}

func simulate(t *testing.T, seed uint64, withReq bool) {
	rng := rand.New(rand.NewPCG(seed, 99))
	const total = 5000
	// Packets of 1..8 messages.
	var pkts [][2]uint64
	for q := uint64(1); q <= total; {
		n := min(uint64(1+rng.IntN(8)), total-q+1)
		pkts = append(pkts, [2]uint64{q, q + n - 1})
		q += n
	}
	// The network: drop 10%, duplicate 5%, displace by up to 6 places 20%.
	arrived := make([]bool, total+2)
	var wire [][2]uint64
	for _, p := range pkts {
		if rng.Float64() < 0.10 {
			continue
		}
		for q := p[0]; q <= p[1]; q++ {
			arrived[q] = true
		}
		wire = append(wire, p)
		if rng.Float64() < 0.05 {
			wire = append(wire, p)
		}
	}
	for i := range wire {
		if rng.Float64() < 0.20 {
			j := min(len(wire)-1, i+1+rng.IntN(6))
			wire[i], wire[j] = wire[j], wire[i]
		}
	}

	rq := &queueRequester{}
	o := SequencerOptions{Next: 1, MaxBufferedMessages: 256, GapTimeout: 10 * time.Second}
	if withReq {
		o.Requester = rq
	} else {
		// 2 ms is 200 steps: far longer than any displacement (6 packets,
		// 60 µs), short enough that the window never overflows (overflow
		// reports gaps early by design: TestSequencerOverflowNoRequester).
		o.GapTimeout = 2 * time.Millisecond
		o.MaxBufferedMessages = 4096
	}
	s, r, c := newSeq(t, o)
	step := func() {
		c.t += 10 * int64(time.Microsecond)
		if err := s.Tick(); err != nil {
			t.Fatal(err)
		}
		// Answer queued requests; 20% of answers are lost.
		for len(rq.q) > 0 {
			q := rq.q[0]
			rq.q = rq.q[1:]
			if rng.Float64() < 0.2 {
				continue
			}
			if err := s.PushRetransmit(pkt(testSession, q.Seq, q.Seq+uint64(q.Count)-1), 0); err != nil {
				t.Fatal(err)
			}
		}
	}
	for _, p := range wire {
		if err := s.Push(pkt(testSession, p[0], p[1]), 0); err != nil {
			t.Fatal(err)
		}
		step()
	}
	eos := AppendEndOfSession(nil, testSession, total+1)
	for i := 0; !s.Ended() && i < 1_000_000; i++ {
		if i%1000 == 0 {
			s.Push(eos, 0) // repeated, as a sender does
		}
		step()
	}
	if !s.Ended() {
		t.Fatalf("not ended: next %d, %+v", s.Next(), s.Counters())
	}
	// Check the event stream.
	var next uint64 = 1
	var lost []string
	for _, e := range r.events {
		var a, b uint64
		if n, _ := fmt.Sscanf(e, "m %d", &a); n == 1 {
			if a != next {
				t.Fatalf("message %d delivered when %d was next", a, next)
			}
			if !withReq && !arrived[a] {
				t.Fatalf("message %d delivered but never sent", a)
			}
			next++
			continue
		}
		if n, _ := fmt.Sscanf(e, "gap %d-%d", &a, &b); n == 2 {
			if withReq {
				t.Fatalf("gap %d-%d with re-requests", a, b)
			}
			if a != next || b < a {
				t.Fatalf("gap %d-%d when %d was next", a, b, next)
			}
			for q := a; q <= b; q++ {
				if arrived[q] {
					t.Fatalf("gap %d-%d includes %d, which arrived", a, b, q)
				}
			}
			lost = append(lost, e)
			next = b + 1
			continue
		}
		if e != fmt.Sprintf("eos %d", total+1) || next != total+1 {
			t.Fatalf("unexpected %q at %d", e, next)
		}
	}
	if next != total+1 {
		t.Fatalf("stream ended at %d", next)
	}
	// Every range that never arrived was reported (a gap's end is followed
	// by an arrived message or the end).
	for _, g := range lost {
		var a, b uint64
		fmt.Sscanf(g, "gap %d-%d", &a, &b)
		if a > 1 && !arrived[a-1] || b < total && !arrived[b+1] {
			t.Fatalf("%s is not a maximal missing range", g)
		}
	}
	c2 := s.Counters()
	if !withReq && (c2.Overflow != 0 || c2.Gaps == 0) {
		t.Fatalf("%+v", c2)
	}
	if withReq && (c2.Recovered == 0 || c2.Requests == 0 || c2.Messages != total) {
		t.Fatalf("%+v", c2)
	}
}
