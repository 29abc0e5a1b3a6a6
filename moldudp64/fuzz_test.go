package moldudp64

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"
)

// FuzzParsePacket: any bytes parse or fail with an *Error without panicking
// or reading past len; a parsed packet's blocks re-pack into the same bytes.
func FuzzParsePacket(f *testing.F) {
	f.Add(pkt(testSession, 1, 3))
	f.Add(AppendHeartbeat(nil, testSession, 7))
	f.Add(AppendEndOfSession(nil, testSession, 7))
	f.Add([]byte("0123456789\x00\x00\x00\x00\x00\x00\x00\x01\x00\x01\x00\x05ab"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		b = b[:len(b):len(b)]
		p, err := ParsePacket(b)
		if err != nil {
			var e *Error
			if !errors.As(err, &e) || e.Offset < 0 || e.Offset > len(b) {
				t.Fatalf("%v", err)
			}
			return
		}
		var bl Builder
		bl.Reset(p.Session, p.Seq, 1<<20)
		it := p.Iter()
		n := 0
		for seq, msg, ok := it.Next(); ok; seq, msg, ok = it.Next() {
			if seq != p.Seq+uint64(n) {
				t.Fatalf("seq %d at %d", seq, n)
			}
			if err := bl.Add(msg); err != nil {
				t.Fatal(err)
			}
			n++
		}
		if n != p.Messages() {
			t.Fatalf("%d messages, count %d", n, p.Count)
		}
		if p.IsEndOfSession() {
			if !bytes.Equal(AppendEndOfSession(nil, p.Session, p.Seq), b) {
				t.Fatal("end of session differs")
			}
			return
		}
		if !bytes.Equal(bl.Bytes(), b) {
			t.Fatalf("re-packed\n% x\n% x", bl.Bytes(), b)
		}
	})
}

// FuzzParseRequest: any bytes; a valid request re-encodes identically.
func FuzzParseRequest(f *testing.F) {
	f.Add(Request{Session: testSession, Seq: 5, Count: 3}.AppendEncode(nil))
	f.Add([]byte("x"))
	f.Fuzz(func(t *testing.T, b []byte) {
		b = b[:len(b):len(b)]
		r, err := ParseRequest(b)
		if err != nil {
			if !errors.Is(err, ErrRequest) {
				t.Fatal(err)
			}
			return
		}
		if !bytes.Equal(r.AppendEncode(nil), b) {
			t.Fatal("request re-encodes differently")
		}
	})
}

// FuzzSequencer: the fuzzer writes a packet stream (each packet prefixed by
// a 2-byte length, an origin bit and a clock step); whatever it is, the
// Sequencer never panics, delivers strictly consecutive sequence numbers
// with gaps accounted for, and delivers each at most once.
func FuzzSequencer(f *testing.F) {
	var seed []byte
	for _, p := range [][]byte{pkt(testSession, 1, 2), pkt(testSession, 5, 6), AppendHeartbeat(nil, testSession, 9),
		pkt(testSession, 3, 4), AppendEndOfSession(nil, testSession, 9), []byte("junk")} {
		seed = binary.BigEndian.AppendUint16(seed, uint16(len(p)))
		seed = append(seed, 1, 3)
		seed = append(seed, p...)
	}
	f.Add(seed, uint64(1), true)
	f.Add(seed, uint64(0), false)
	f.Fuzz(func(t *testing.T, stream []byte, start uint64, withReq bool) {
		var next uint64
		var clk fakeClock
		h := func(e *Event) error {
			switch e.Kind {
			case EventMessage:
				if next != 0 && e.Seq != next {
					t.Fatalf("message %d, expected %d", e.Seq, next)
				}
				next = e.Seq + 1
			case EventGap:
				if next != 0 && e.Seq != next || e.Last < e.Seq {
					t.Fatalf("gap %d-%d, expected from %d", e.Seq, e.Last, next)
				}
				next = e.Last + 1
			}
			return nil
		}
		o := SequencerOptions{Next: start % 64, MaxBufferedMessages: 16, MaxBufferedBytes: 256, Clock: clk.now}
		if withReq {
			o.Requester = &queueRequester{}
		}
		s, err := NewSequencer(h, o)
		if err != nil {
			t.Fatal(err)
		}
		for len(stream) >= 4 {
			n := int(binary.BigEndian.Uint16(stream))
			flags, step := stream[2], stream[3]
			stream = stream[4:]
			n = min(n, len(stream))
			p := stream[:n:n]
			stream = stream[n:]
			clk.t += int64(step) * ms
			if flags&1 != 0 {
				s.PushRetransmit(p, 0)
			} else {
				s.Push(p, 0)
			}
			s.Tick()
		}
		clk.t += 1 << 40
		s.Tick()
		if s.Held() != 0 && !s.Ended() && s.Counters().Messages > 0 && s.Next() >= s.high {
			t.Fatalf("held %d with nothing missing", s.Held())
		}
	})
}
