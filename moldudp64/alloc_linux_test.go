//go:build linux

package moldudp64

import (
	"testing"
	"time"
)

// TestSocketPathsDoNotAllocate: Sender.Add/Flush, Receiver.Poll (recvmmsg,
// timestamps, sequencer, handler), RequestClient.Request and Server
// answering allocate nothing per packet.
func TestSocketPathsDoNotAllocate(t *testing.T) {
	feed := listen(t, ConnOptions{RecvBuffer: 4 << 20, Timestamps: true})
	store := NewMemStore(1)
	snd, err := NewSender(listen(t, ConnOptions{}), feed.LocalAddr(), SenderOptions{Session: testSession, Store: store})
	if err != nil {
		t.Fatal(err)
	}
	srvConn := listen(t, ConnOptions{})
	srv, err := NewServer(srvConn, store, ServerOptions{Session: testSession})
	if err != nil {
		t.Fatal(err)
	}
	rc := NewRequestClient(listen(t, ConnOptions{RecvBuffer: 4 << 20}), srvConn.LocalAddr())
	msgs := 0
	seq, err := NewSequencer(func(e *Event) error {
		if e.Kind == EventMessage && e.RecvTime != 0 {
			msgs++
		}
		return nil
	}, SequencerOptions{Next: 1, Requester: rc})
	if err != nil {
		t.Fatal(err)
	}
	rcv := NewReceiver(feed, rc, seq, nil)
	msg := msgFor(1)
	// Store growth allocates; give it room first so the loop measures the
	// socket paths.
	store.data = make([]byte, 0, 1<<20)
	store.ends = make([]int, 0, 1<<16)
	next := uint64(1)
	allocs := testing.AllocsPerRun(300, func() {
		for k := 0; k < 5; k++ {
			if _, err := snd.Add(msg); err != nil {
				t.Fatal(err)
			}
		}
		if err := snd.Flush(); err != nil {
			t.Fatal(err)
		}
		next += 5
		for seq.Next() < next {
			if _, err := rcv.Poll(time.Second); err != nil {
				t.Fatal(err)
			}
		}
		// A request answered by the server, read back by the receiver
		// (duplicates by then).
		if err := rc.Request(testSession, next-5, 5); err != nil {
			t.Fatal(err)
		}
		for n := 0; n == 0; {
			if n, err = srv.Poll(time.Second); err != nil {
				t.Fatal(err)
			}
		}
		for rcv.Counters().Answers < srv.Counters().Packets {
			if _, err := rcv.Poll(time.Second); err != nil {
				t.Fatal(err)
			}
		}
	})
	if allocs != 0 {
		t.Errorf("%v allocations per round", allocs)
	}
	if msgs == 0 || uint64(msgs) != seq.Counters().Messages || seq.Counters().Duplicates == 0 {
		t.Fatalf("%d messages, %+v", msgs, seq.Counters())
	}
}
