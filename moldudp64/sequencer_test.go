package moldudp64

import (
	"errors"
	"math"
	"testing"
	"time"
)

const ms = int64(time.Millisecond)

func newSeq(t *testing.T, o SequencerOptions) (*Sequencer, *recorder, *fakeClock) {
	t.Helper()
	r := &recorder{t: t}
	c := &fakeClock{t: 1000 * ms}
	o.Clock = c.now
	s, err := NewSequencer(r.handle, o)
	if err != nil {
		t.Fatal(err)
	}
	return s, r, c
}

func push(t *testing.T, s *Sequencer, b []byte) {
	t.Helper()
	if err := s.Push(b, 0); err != nil {
		t.Fatal(err)
	}
}

func TestSequencerInOrder(t *testing.T) {
	s, r, _ := newSeq(t, SequencerOptions{Next: 1})
	push(t, s, pkt(testSession, 1, 3))
	push(t, s, pkt(testSession, 4, 4))
	push(t, s, AppendHeartbeat(nil, testSession, 5))
	push(t, s, pkt(testSession, 5, 9))
	r.expect(t, "m 1..9")
	c := s.Counters()
	if c.Messages != 9 || c.Packets != 4 || c.Heartbeats != 1 || c.Duplicates != 0 || c.Gaps != 0 || c.OutOfOrder != 0 || s.Next() != 10 {
		t.Fatalf("%+v next %d", c, s.Next())
	}
	if s.NextDeadline() != math.MaxInt64 {
		t.Fatal("a timer runs with no gap")
	}
}

func TestSequencerDuplicates(t *testing.T) {
	s, r, _ := newSeq(t, SequencerOptions{Next: 1})
	p := pkt(testSession, 1, 3)
	push(t, s, p)
	push(t, s, p)
	push(t, s, pkt(testSession, 2, 5)) // overlaps: 2,3 are duplicates
	push(t, s, pkt(testSession, 8, 8))
	push(t, s, pkt(testSession, 8, 8)) // held twice
	push(t, s, pkt(testSession, 6, 7))
	r.expect(t, "m 1..8")
	if c := s.Counters(); c.Duplicates != 3+2+1 || c.Messages != 8 || c.OutOfOrder != 1 {
		t.Fatalf("%+v", c)
	}
}

// TestSequencerReorder: a gap filled by a late packet before RequestDelay
// sends no request.
func TestSequencerReorder(t *testing.T) {
	f := &fakeRequester{}
	s, r, _ := newSeq(t, SequencerOptions{Next: 1, Requester: f})
	push(t, s, pkt(testSession, 1, 3))
	push(t, s, pkt(testSession, 7, 9))
	push(t, s, pkt(testSession, 10, 10))
	r.expect(t, "m 1..3")
	if s.Held() != 4 || s.NextDeadline() != 1001*ms {
		t.Fatalf("held %d, deadline %d", s.Held(), s.NextDeadline())
	}
	push(t, s, pkt(testSession, 4, 6))
	r.expect(t, "m 1..10")
	if c := s.Counters(); c.OutOfOrder != 4 || c.Requests != 0 || len(f.reqs) != 0 || s.Held() != 0 {
		t.Fatalf("%+v, requests %v", c, f)
	}
}

// TestSequencerRerequest: the gap is asked for after RequestDelay, not
// before; the answer fills it; counters say so.
func TestSequencerRerequest(t *testing.T) {
	f := &fakeRequester{}
	s, r, c := newSeq(t, SequencerOptions{Next: 1, Requester: f})
	push(t, s, pkt(testSession, 1, 3))
	push(t, s, pkt(testSession, 7, 9))
	c.t += ms - 1
	s.Tick()
	if len(f.reqs) != 0 {
		t.Fatalf("requested before RequestDelay: %v", f)
	}
	c.t++
	s.Tick()
	if f.String() != "4+3" || f.reqs[0].Session != testSession {
		t.Fatalf("requests %v", f)
	}
	if err := s.PushRetransmit(pkt(testSession, 4, 6), 77); err != nil {
		t.Fatal(err)
	}
	r.expect(t, "m 1..9")
	if cn := s.Counters(); cn.Recovered != 3 || cn.Requests != 1 || cn.Gaps != 0 || r.retr != 3 {
		t.Fatalf("%+v", cn)
	}
}

// TestSequencerBackoffThenGap: an unanswered gap is asked for MaxAttempts
// times with doubling intervals, then reported with its exact range, and
// only then does delivery go on.
func TestSequencerBackoffThenGap(t *testing.T) {
	f := &fakeRequester{}
	s, r, c := newSeq(t, SequencerOptions{Next: 1, Requester: f, MaxAttempts: 4, RetryInterval: 10 * time.Millisecond,
		MaxRetryInterval: 30 * time.Millisecond, GapTimeout: time.Hour})
	f.clk = c
	t0 := c.t
	push(t, s, pkt(testSession, 1, 3))
	push(t, s, pkt(testSession, 7, 9))
	// Tick every 1 ms for 200 ms: requests only when due.
	for i := 0; i < 200; i++ {
		c.t += ms
		if err := s.Tick(); err != nil {
			t.Fatal(err)
		}
	}
	// Rounds at +1 ms (RequestDelay), then +10, +20, +30 (capped) after each.
	want := []int64{1, 11, 31, 61}
	if len(f.at) != len(want) {
		t.Fatalf("requests at %v (%v)", f.at, f)
	}
	for i, w := range want {
		if f.at[i]-t0 != w*ms || f.reqs[i].Seq != 4 || f.reqs[i].Count != 3 {
			t.Fatalf("request %d: %+v at +%d ms, want 4+3 at +%d ms", i, f.reqs[i], (f.at[i]-t0)/ms, w)
		}
	}
	r.expect(t, "m 1..3", "gap 4-6", "m 7..9")
	if cn := s.Counters(); cn.Gaps != 1 || cn.Lost != 3 || cn.Requests != 4 {
		t.Fatalf("%+v", cn)
	}
}

// TestSequencerGapTimeoutWithDeadServer: GapTimeout bounds the wait even
// when attempts remain.
func TestSequencerGapTimeoutWithDeadServer(t *testing.T) {
	f := &fakeRequester{}
	s, r, c := newSeq(t, SequencerOptions{Next: 1, Requester: f, GapTimeout: 50 * time.Millisecond})
	push(t, s, pkt(testSession, 1, 1))
	push(t, s, pkt(testSession, 3, 3))
	c.t += 49 * ms
	s.Tick()
	r.expect(t, "m 1")
	if s.NextDeadline() > c.t+ms {
		t.Fatalf("deadline %d, now %d", s.NextDeadline(), c.t)
	}
	c.t += ms
	s.Tick()
	r.expect(t, "m 1", "gap 2-2", "m 3")
}

// TestSequencerNoRequesterGaps: without re-requests, exact gap ranges are
// reported after GapTimeout, in order, and nothing after a gap is delivered
// before it.
func TestSequencerNoRequesterGaps(t *testing.T) {
	s, r, c := newSeq(t, SequencerOptions{Next: 1, GapTimeout: 20 * time.Millisecond})
	push(t, s, pkt(testSession, 1, 2))
	push(t, s, pkt(testSession, 5, 6)) // gap 3-4
	c.t += 5 * ms
	push(t, s, pkt(testSession, 9, 9)) // gap 7-8, seen 5 ms later
	r.expect(t, "m 1..2")
	c.t += 15 * ms // first gap is 20 ms old, the second 15
	s.Tick()
	r.expect(t, "m 1..2", "gap 3-4", "m 5..6")
	c.t += 4 * ms
	s.Tick()
	r.expect(t, "m 1..2", "gap 3-4", "m 5..6")
	c.t += ms
	s.Tick()
	r.expect(t, "m 1..2", "gap 3-4", "m 5..6", "gap 7-8", "m 9")
	// A late copy of a reported message is a duplicate, never delivered.
	push(t, s, pkt(testSession, 3, 3))
	if cn := s.Counters(); cn.Gaps != 2 || cn.Lost != 4 || cn.Duplicates != 1 || cn.Messages != 5 {
		t.Fatalf("%+v", cn)
	}
}

// TestSequencerTailGap: a heartbeat reveals lost messages at the end.
func TestSequencerTailGap(t *testing.T) {
	f := &fakeRequester{}
	s, r, c := newSeq(t, SequencerOptions{Next: 1, Requester: f})
	push(t, s, pkt(testSession, 1, 3))
	push(t, s, AppendHeartbeat(nil, testSession, 6))
	c.t += ms
	s.Tick()
	if f.String() != "4+2" {
		t.Fatalf("requests %v", f)
	}
	s.PushRetransmit(pkt(testSession, 4, 5), 0)
	r.expect(t, "m 1..5")
}

// TestSequencerOverflowNoRequester: beyond MaxBufferedMessages the oldest
// gap is reported at once to make room.
func TestSequencerOverflowNoRequester(t *testing.T) {
	s, r, _ := newSeq(t, SequencerOptions{Next: 1, MaxBufferedMessages: 8})
	push(t, s, pkt(testSession, 1, 1))
	push(t, s, pkt(testSession, 3, 8)) // held: window is 2..9
	r.expect(t, "m 1")
	push(t, s, pkt(testSession, 12, 12)) // needs window 5..12: 2 is lost, 3..8 delivered
	r.expect(t, "m 1", "gap 2-2", "m 3..8")
	push(t, s, pkt(testSession, 30, 30)) // window 23..30: 9..22 lost except 12
	r.expect(t, "m 1", "gap 2-2", "m 3..8", "gap 9-11", "m 12", "gap 13-22")
	if s.Next() != 23 || s.Held() != 1 {
		t.Fatalf("next %d held %d", s.Next(), s.Held())
	}
	if cn := s.Counters(); cn.Overflow != 2 || cn.Gaps != 3 || cn.Lost != 1+3+10 {
		t.Fatalf("%+v", cn)
	}
}

// TestSequencerOverflowBytes: the byte bound is enforced the same way.
func TestSequencerOverflowBytes(t *testing.T) {
	s, r, _ := newSeq(t, SequencerOptions{Next: 1, MaxBufferedBytes: 30})
	push(t, s, pkt(testSession, 3, 3)) // 11 bytes
	push(t, s, pkt(testSession, 4, 4)) // 12 bytes: 23 held
	push(t, s, pkt(testSession, 6, 6)) // 14 more would pass 30: gap 1-2 reported
	r.expect(t, "gap 1-2", "m 3..4")
	if s.Held() != 1 || s.Next() != 5 {
		t.Fatalf("held %d next %d", s.Held(), s.Next())
	}
}

// TestSequencerOverflowWithRequester: with re-requests, messages beyond the
// window are dropped (not lost: asked for later) and everything arrives.
func TestSequencerOverflowWithRequester(t *testing.T) {
	f := &fakeRequester{}
	s, r, c := newSeq(t, SequencerOptions{Next: 1, MaxBufferedMessages: 8, Requester: f})
	push(t, s, pkt(testSession, 1, 1))
	for q := uint64(3); q <= 20; q++ {
		push(t, s, pkt(testSession, q, q))
	}
	if cn := s.Counters(); cn.OutOfOrder != 7 || cn.Overflow != 11 {
		t.Fatalf("%+v", cn)
	}
	c.t += ms
	s.Tick()
	// Answer every request as the server would, until nothing is missing.
	for i := 0; i < len(f.reqs); i++ {
		q := f.reqs[i]
		s.PushRetransmit(pkt(testSession, q.Seq, q.Seq+uint64(q.Count)-1), 0)
	}
	r.expect(t, "m 1..20")
	if f.String() != "2+1 10+8 18+3" {
		t.Fatalf("requests %v", f)
	}
	if cn := s.Counters(); cn.Gaps != 0 || cn.Recovered != 12 {
		t.Fatalf("%+v", cn)
	}
}

// TestSequencerRestart: a consumer restarted at Next re-requests everything
// from there to the first live packet, in window-sized pieces, and delivers
// it all in order before the live messages.
func TestSequencerRestart(t *testing.T) {
	f := &fakeRequester{}
	s, r, c := newSeq(t, SequencerOptions{Next: 100, Requester: f, MaxBufferedMessages: 64, MaxRequestCount: 20})
	push(t, s, pkt(testSession, 300, 302))
	c.t += ms
	s.Tick()
	for i := 0; i < len(f.reqs); i++ {
		q := f.reqs[i]
		if q.Seq < 100 || q.Count > 20 {
			t.Fatalf("request %+v", q)
		}
		s.PushRetransmit(pkt(testSession, q.Seq, q.Seq+uint64(q.Count)-1), 0)
		s.Tick()
	}
	r.expect(t, "m 100..302")
	// The live packet lies beyond the 64-message window from 100: it was
	// dropped and asked for again too.
	if cn := s.Counters(); cn.Gaps != 0 || cn.Recovered != 203 || cn.Overflow != 3 {
		t.Fatalf("%+v", cn)
	}
}

func TestSequencerLateJoin(t *testing.T) {
	s, r, _ := newSeq(t, SequencerOptions{})
	push(t, s, pkt(testSession, 1000, 1001))
	push(t, s, pkt(testSession, 999, 999))
	r.expect(t, "m 1000..1001")
	if s.Session() != testSession {
		t.Fatal(s.Session())
	}
}

func TestSequencerEndOfSession(t *testing.T) {
	f := &fakeRequester{}
	s, r, c := newSeq(t, SequencerOptions{Next: 1, Requester: f})
	push(t, s, pkt(testSession, 1, 3))
	push(t, s, AppendEndOfSession(nil, testSession, 6)) // 4, 5 missing
	r.expect(t, "m 1..3")
	if s.Ended() {
		t.Fatal("ended with messages missing")
	}
	c.t += ms
	s.Tick()
	if f.String() != "4+2" {
		t.Fatalf("requests %v", f)
	}
	s.PushRetransmit(pkt(testSession, 4, 6), 0) // 6 is past the end: ignored
	r.expect(t, "m 1..5", "eos 6")
	if !s.Ended() {
		t.Fatal("not ended")
	}
	push(t, s, AppendEndOfSession(nil, testSession, 6))
	push(t, s, pkt(testSession, 1, 2))
	r.expect(t, "m 1..5", "eos 6")
}

func TestSequencerEndOfSessionNoRequester(t *testing.T) {
	s, r, c := newSeq(t, SequencerOptions{Next: 1})
	push(t, s, pkt(testSession, 1, 3))
	push(t, s, AppendEndOfSession(nil, testSession, 6))
	c.t += 100 * ms
	s.Tick()
	r.expect(t, "m 1..3", "gap 4-5", "eos 6")
}

func TestSequencerMalformedAndForeign(t *testing.T) {
	var bad [][]byte
	s, r, _ := newSeq(t, SequencerOptions{Next: 1})
	s.o.OnMalformed = func(p []byte, err error) { bad = append(bad, p) }
	other, _ := ParseSession("OTHER")
	push(t, s, pkt(testSession, 1, 1))
	push(t, s, []byte("short"))
	p := pkt(testSession, 2, 3)
	push(t, s, p[:len(p)-1])                      // truncated block
	push(t, s, append(pkt(testSession, 2, 2), 0)) // trailing byte
	push(t, s, append(AppendHeartbeat(nil, testSession, 2), 0, 0))
	push(t, s, pkt(other, 2, 2))
	push(t, s, pkt(other, 3, 3))
	push(t, s, pkt(testSession, 2, 2))
	r.expect(t, "m 1", "session OTHER", "m 2")
	if cn := s.Counters(); cn.Malformed != 4 || len(bad) != 4 || cn.ForeignSession != 2 || cn.Messages != 2 {
		t.Fatalf("%+v", cn)
	}
}

func TestSequencerHandlerError(t *testing.T) {
	boom := errors.New("boom")
	n := 0
	s, err := NewSequencer(func(e *Event) error {
		if n++; e.Seq == 3 {
			return boom
		}
		return nil
	}, SequencerOptions{Next: 1})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Push(pkt(testSession, 1, 5), 0); err != boom {
		t.Fatal(err)
	}
	if s.Next() != 3 || s.Counters().Messages != 2 || s.Err() != boom {
		t.Fatalf("next %d %+v", s.Next(), s.Counters())
	}
	if err := s.Push(pkt(testSession, 6, 6), 0); err != boom || s.Tick() != boom || n != 3 {
		t.Fatal("not sticky")
	}
}

func TestSequencerRequestErrorsCounted(t *testing.T) {
	f := &fakeRequester{err: errors.New("no route")}
	s, _, c := newSeq(t, SequencerOptions{Next: 1, Requester: f})
	push(t, s, pkt(testSession, 2, 2))
	c.t += ms
	s.Tick()
	if cn := s.Counters(); cn.RequestErrors != 1 || cn.Requests != 0 {
		t.Fatalf("%+v", cn)
	}
}

// TestSequencerEndFixedByFirstPacket: a later end-of-session packet with a
// lower sequence number does not move the end (or end the session early),
// and messages past the end are counted, not delivered.
func TestSequencerEndFixedByFirstPacket(t *testing.T) {
	s, r, _ := newSeq(t, SequencerOptions{Next: 1})
	push(t, s, pkt(testSession, 1, 2))
	push(t, s, AppendEndOfSession(nil, testSession, 5))
	push(t, s, AppendEndOfSession(nil, testSession, 3))
	r.expect(t, "m 1..2")
	push(t, s, pkt(testSession, 3, 6)) // 5 and 6 are past the end
	r.expect(t, "m 1..4", "eos 5")
	if c := s.Counters(); c.Duplicates != 2 || c.Messages != 4 {
		t.Fatalf("%+v", c)
	}
}
