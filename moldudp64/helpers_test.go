package moldudp64

import (
	"encoding/binary"
	"fmt"
	"strings"
	"testing"
)

var testSession = Session{'T', 'E', 'S', 'T', 'S', 'E', 'S', 'S', '0', '1'}

// msgFor is the test message of sequence number seq: 8 bytes carrying seq,
// then seq%7 filler bytes (so lengths vary).
func msgFor(seq uint64) []byte {
	b := binary.BigEndian.AppendUint64(nil, seq)
	for i := uint64(0); i < seq%7; i++ {
		b = append(b, byte(seq+i))
	}
	return b
}

// pkt builds a data packet of messages first..last (inclusive).
func pkt(s Session, first, last uint64) []byte {
	var b Builder
	b.Reset(s, first, 65000)
	for q := first; q <= last; q++ {
		if err := b.Add(msgFor(q)); err != nil {
			panic(err)
		}
	}
	return append([]byte(nil), b.Bytes()...)
}

// recorder keeps every event as a line ("m 5", "gap 4-6", "eos 10",
// "session X") and checks each message's bytes.
type recorder struct {
	t      testing.TB
	events []string
	msgs   []uint64
	retr   int
}

func (r *recorder) handle(e *Event) error {
	switch e.Kind {
	case EventMessage:
		want := msgFor(e.Seq)
		if string(e.Msg) != string(want) {
			r.t.Errorf("message %d has bytes % x, want % x", e.Seq, e.Msg, want)
		}
		if e.Session != testSession {
			r.t.Errorf("message %d of session %q", e.Seq, e.Session)
		}
		r.msgs = append(r.msgs, e.Seq)
		if e.Retransmit {
			r.retr++
		}
		r.events = append(r.events, fmt.Sprintf("m %d", e.Seq))
	case EventGap:
		r.events = append(r.events, fmt.Sprintf("gap %d-%d", e.Seq, e.Last))
	case EventEndOfSession:
		r.events = append(r.events, fmt.Sprintf("eos %d", e.Seq))
	case EventSessionChange:
		r.events = append(r.events, "session "+e.Session.String())
	}
	return nil
}

func (r *recorder) String() string { return strings.Join(r.events, ", ") }

// expect compares the events with a hand-written list; "m 1..5" expands.
func (r *recorder) expect(t *testing.T, want ...string) {
	t.Helper()
	var w []string
	for _, x := range want {
		var a, b uint64
		if n, _ := fmt.Sscanf(x, "m %d..%d", &a, &b); n == 2 {
			for q := a; q <= b; q++ {
				w = append(w, fmt.Sprintf("m %d", q))
			}
			continue
		}
		w = append(w, x)
	}
	if got := r.String(); got != strings.Join(w, ", ") {
		t.Fatalf("events\n got: %s\nwant: %s", got, strings.Join(w, ", "))
	}
}

// fakeClock is time moved by hand.
type fakeClock struct{ t int64 }

func (c *fakeClock) now() int64 { return c.t }

// fakeRequester records requests.
type fakeRequester struct {
	reqs []Request
	at   []int64
	clk  *fakeClock
	err  error
}

func (f *fakeRequester) Request(s Session, first uint64, count uint16) error {
	if f.err != nil {
		return f.err
	}
	f.reqs = append(f.reqs, Request{Session: s, Seq: first, Count: count})
	if f.clk != nil {
		f.at = append(f.at, f.clk.t)
	}
	return nil
}

func (f *fakeRequester) String() string {
	var s []string
	for _, r := range f.reqs {
		s = append(s, fmt.Sprintf("%d+%d", r.Seq, r.Count))
	}
	return strings.Join(s, " ")
}
