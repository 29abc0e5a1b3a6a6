//go:build linux

package publish

import (
	"bytes"
	"context"
	"net/netip"
	"testing"
	"time"

	"github.com/mdjournal/mdjournal/itch"
	"github.com/mdjournal/mdjournal/journal"
	"github.com/mdjournal/mdjournal/moldudp64"
	"github.com/mdjournal/mdjournal/writer"
)

var lo = netip.MustParseAddrPort("127.0.0.1:0")

// smallJournal writes a definition, an add, an execution with its trade
// and a book level, 50 ms apart in exchange time.
func smallJournal(t *testing.T) string {
	dir := t.TempDir()
	w, err := writer.Open(dir, writer.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	ts := midnight + 34200e9
	d := def("AAPL", 100, 4)
	for _, f := range []struct {
		typ journal.MsgType
		dt  int64
		pl  []byte
	}{
		{journal.TypeInstrumentDef, 0, d.Encode(nil)},
		{journal.TypeOrderAdd, 0, order(1, 5000, 100, journal.SideBid, 0)},
		{journal.TypeOrderExecute, 50e6, order(1, 5000, 40, journal.SideBid, 0)},
		{journal.TypeTrade, 50e6, trade(5000, 40, 1, journal.SideAsk, 0)},
		{journal.TypeBookLevel, 100e6, (&journal.BookLevel{Price: 4900, Qty: 7, Side: journal.SideBid}).Encode(nil)},
	} {
		if _, err := w.Append(f.typ, 1, ts+f.dt, f.pl); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// TestPublisherWire publishes a small journal at its recorded pace to a
// socket the test reads: session MDJOURNAL, sequence numbers from 1,
// System Event 'O', the Stock Directory, the messages (none before its
// due time), System Event 'C', the end of session; then the re-request
// server answers a request with the same bytes.
func TestPublisherWire(t *testing.T) {
	src := smallJournal(t)
	in, err := moldudp64.Listen(lo, moldudp64.ConnOptions{Timestamps: true})
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	p, err := Open(Options{To: in.LocalAddr(), RerequestListen: lo, Speed: 1, Day: testDay, Linger: time.Minute, HeartbeatInterval: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	var st Stats
	before := time.Now().UnixNano() // the pass starts after this (wall clock, as the kernel's receive stamps)
	go func() {
		var err error
		st, err = p.Run(ctx, JournalSource{Dir: src})
		done <- err
	}()
	msgs := map[uint64][]byte{}
	arrived := map[uint64]int64{} // kernel receive time
	b := moldudp64.NewBatch(8, 2048)
	deadline := time.Now().Add(10 * time.Second)
	var eos uint64
	for eos == 0 {
		if time.Now().After(deadline) {
			t.Fatal("no end of session in 10 s")
		}
		in.Wait(100 * time.Millisecond)
		n, err := in.Read(b)
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i < n; i++ {
			pk, err := moldudp64.ParsePacket(b.Packet(i))
			if err != nil {
				t.Fatal(err)
			}
			if pk.Session.String() != DefaultSession {
				t.Fatalf("session %q", pk.Session.String())
			}
			if pk.IsEndOfSession() {
				eos = pk.Seq
			}
			it := pk.Iter()
			for seq, m, ok := it.Next(); ok; seq, m, ok = it.Next() {
				msgs[seq] = bytes.Clone(m)
				arrived[seq] = b.Time(i)
			}
		}
	}
	want := "S R A E l S"
	var got []byte
	for s := uint64(1); s < eos; s++ {
		if len(got) > 0 {
			got = append(got, ' ')
		}
		got = append(got, msgs[s][0])
	}
	if string(got) != want || eos != 7 || len(msgs) != 6 {
		t.Fatalf("messages %q (end of session at %d), want %q", got, eos, want)
	}
	if msgs[1][11] != 'O' || msgs[6][11] != 'C' {
		t.Fatalf("system events %q %q", msgs[1][11], msgs[6][11])
	}
	// The level is due 100 ms after the pass starts (the add is due at the
	// start): it never arrives earlier than that after Run was called. (The
	// gap to the add's arrival is no bound: a loaded machine delays the add.)
	if d := time.Duration(arrived[5] - before); d < 99*time.Millisecond {
		t.Fatalf("the level (due 100 ms into the pass) arrived %v after Run was called", d)
	}
	if itch.Message(msgs[4]).Timestamp() != 34200e9+50e6 {
		t.Fatalf("execution time %d", itch.Message(msgs[4]).Timestamp())
	}

	// Ask the server for messages 2..4.
	q, err := moldudp64.Listen(lo, moldudp64.ConnOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	sess, _ := moldudp64.ParseSession(DefaultSession)
	req := moldudp64.Request{Session: sess, Seq: 2, Count: 3}.AppendEncode(nil)
	if err := q.WriteTo(req, p.RerequestAddr()); err != nil {
		t.Fatal(err)
	}
	if ok, err := q.Wait(5 * time.Second); !ok || err != nil {
		t.Fatalf("no answer: %v", err)
	}
	if n, err := q.Read(b); err != nil || n != 1 {
		t.Fatalf("answer: %d packets, %v", n, err)
	}
	pk, err := moldudp64.ParsePacket(b.Packet(0))
	if err != nil || pk.Seq != 2 || pk.Count != 3 {
		t.Fatalf("answer %+v %v", pk.Header, err)
	}
	it := pk.Iter()
	for seq, m, ok := it.Next(); ok; seq, m, ok = it.Next() {
		if !bytes.Equal(m, msgs[seq]) {
			t.Fatalf("answer message %d differs", seq)
		}
	}
	cancel()
	if err := <-done; err != nil { // cancelled while lingering: the session was complete
		t.Fatalf("run: %v", err)
	}
	if st.First != 1 || st.Last != 6 || st.Encoder.Messages != 6 || st.Server.Requests != 1 {
		t.Fatalf("stats %+v", st)
	}
}
