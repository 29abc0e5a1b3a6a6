//go:build linux

package moldudp64

import (
	"context"
	"errors"
	"net/netip"
	"strconv"
	"sync"
	"testing"
	"time"
)

var loopback = netip.MustParseAddr("127.0.0.1")

func listen(t testing.TB, o ConnOptions) *Conn {
	t.Helper()
	c, err := Listen(netip.AddrPortFrom(loopback, 0), o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// exchange is a test exchange on 127.0.0.1: a Sender writing to the feed
// port, its MemStore, and a re-request Server answering from it.
type exchange struct {
	sender *Sender
	server *Server
	store  *MemStore
	addr   netip.AddrPort // re-request server
	cancel context.CancelFunc
	done   chan error
	once   sync.Once
	err    error
}

// stopServer cancels the server and waits for Run to return: after it,
// the server's counters are final.
func (x *exchange) stopServer() error {
	x.once.Do(func() {
		x.cancel()
		x.err = <-x.done
	})
	if errors.Is(x.err, context.Canceled) {
		return nil
	}
	return x.err
}

func newExchange(t *testing.T, feed netip.AddrPort, so SenderOptions, srv ServerOptions) *exchange {
	t.Helper()
	store := NewMemStore(max(so.FirstSeq, 1))
	so.Session, so.Store = testSession, store
	sc := listen(t, ConnOptions{SendBuffer: 4 << 20})
	snd, err := NewSender(sc, feed, so)
	if err != nil {
		t.Fatal(err)
	}
	rc := listen(t, ConnOptions{SendBuffer: 4 << 20})
	srv.Session = testSession
	server, err := NewServer(rc, store, srv)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	x := &exchange{sender: snd, server: server, store: store, addr: rc.LocalAddr(), cancel: cancel, done: make(chan error, 1)}
	go func() { x.done <- server.Run(ctx) }()
	t.Cleanup(func() {
		if err := x.stopServer(); err != nil {
			t.Errorf("server: %v", err)
		}
	})
	return x
}

// feedMessages sends messages first..last (msgFor bytes) in bursts of
// burst messages, flushing after each burst.
func feedMessages(t *testing.T, s *Sender, first, last uint64, burst int) {
	t.Helper()
	for q := first; q <= last; q++ {
		seq, err := s.Add(msgFor(q))
		if err != nil || seq != q {
			t.Fatalf("Add %d: %d %v", q, seq, err)
		}
		if int(q-first+1)%burst == 0 {
			if err := s.Flush(); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// endAndTick ends the session and keeps ticking (heartbeat interval: the
// sender repeats the end-of-session packet) until stop is closed.
func endAndTick(t *testing.T, s *Sender, stop <-chan struct{}, wg *sync.WaitGroup) {
	if err := s.EndSession(); err != nil {
		t.Error(err)
		return
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		tk := time.NewTicker(2 * time.Millisecond)
		defer tk.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tk.C:
				if err := s.Tick(); err != nil {
					t.Error(err)
					return
				}
			}
		}
	}()
}

// receiver builds the feed side: a feed socket, optionally a re-request
// client for the server at srv, a Sequencer reporting to r.
func newReceiver(t *testing.T, srv netip.AddrPort, o SequencerOptions, r *recorder) (*Receiver, *Conn) {
	t.Helper()
	feed := listen(t, ConnOptions{RecvBuffer: 8 << 20, Timestamps: true})
	var rc *RequestClient
	if srv.IsValid() {
		rc = NewRequestClient(listen(t, ConnOptions{RecvBuffer: 8 << 20}), srv)
		o.Requester = rc
	}
	seq, err := NewSequencer(r.handle, o)
	if err != nil {
		t.Fatal(err)
	}
	return NewReceiver(feed, rc, seq, nil), feed
}

func run(t *testing.T, rcv *Receiver, limit time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	if err := rcv.Run(ctx); err != nil {
		t.Fatalf("receiver: %v after %v; sequencer %+v receiver %+v", err, limit, rcv.seq.Counters(), rcv.Counters())
	}
}

func TestNetInOrder(t *testing.T) {
	r := &recorder{t: t}
	var times []int64
	h := func(e *Event) error {
		if e.Kind == EventMessage {
			times = append(times, e.RecvTime)
		}
		return r.handle(e)
	}
	feed := listen(t, ConnOptions{RecvBuffer: 8 << 20, Timestamps: true})
	seq, err := NewSequencer(h, SequencerOptions{Next: 1})
	if err != nil {
		t.Fatal(err)
	}
	rcv := NewReceiver(feed, nil, seq, nil)
	x := newExchange(t, feed.LocalAddr(), SenderOptions{}, ServerOptions{})
	before := time.Now().UnixNano()
	feedMessages(t, x.sender, 1, 2000, 10)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	endAndTick(t, x.sender, stop, &wg)
	run(t, rcv, 10*time.Second)
	close(stop)
	wg.Wait()
	r.expect(t, "m 1..2000", "eos 2001")
	after := time.Now().UnixNano()
	for i, ts := range times {
		if ts < before || ts > after {
			t.Fatalf("message %d: kernel receive time %d outside [%d, %d]", i+1, ts, before, after)
		}
	}
	if c := seq.Counters(); c.Gaps != 0 || c.Requests != 0 || c.Messages != 2000 {
		t.Fatalf("%+v", c)
	}
}

// TestNetDropReorderRecovered: 10% of data packets dropped and 10%
// reordered by the sender, which runs concurrently with the receiver; the
// re-request server fills every gap and each message arrives exactly once,
// in order. The small-window runs also drop messages beyond the buffer
// bound, to be asked for again.
func TestNetDropReorderRecovered(t *testing.T) {
	for _, tc := range []struct {
		seed   uint64
		window int
	}{{1, 0}, {2, 0}, {3, 256}, {4, 64}} {
		r := &recorder{t: t}
		x := newExchange(t, netip.AddrPort{}, SenderOptions{DropRate: 0.1, ReorderRate: 0.1, Seed: tc.seed}, ServerOptions{})
		rcv, feed := newReceiver(t, x.addr, SequencerOptions{Next: 1, MaxBufferedMessages: tc.window}, r)
		x.sender.dst = feed.LocalAddr()
		const n = 20000
		stop := make(chan struct{})
		var wg sync.WaitGroup
		wg.Add(1)
		go func() {
			defer wg.Done()
			feedMessages(t, x.sender, 1, n, 7)
			endAndTick(t, x.sender, stop, &wg)
		}()
		run(t, rcv, 20*time.Second)
		close(stop)
		wg.Wait()
		r.expect(t, "m 1..20000", "eos 20001")
		c, sc := rcv.seq.Counters(), x.sender.Counters()
		if c.Gaps != 0 || c.Messages != n || c.Recovered == 0 || c.Requests == 0 || sc.Dropped == 0 || sc.Reordered == 0 {
			t.Fatalf("seed %d: sequencer %+v sender %+v", tc.seed, c, sc)
		}
		if err := x.stopServer(); err != nil {
			t.Fatal(err)
		}
		if srv := x.server.Counters(); srv.Requests == 0 || srv.Messages < c.Recovered {
			t.Fatalf("server %+v", srv)
		}
		t.Logf("seed %d window %d: %d dropped, %d reordered packets; %d requests, %d recovered, %d duplicates, %d held, %d over the bound",
			tc.seed, tc.window, sc.Dropped, sc.Reordered, c.Requests, c.Recovered, c.Duplicates, c.OutOfOrder, c.Overflow)
	}
}

// TestNetNoRequestsExactGaps: without re-requests, the gaps reported are
// exactly the messages of the dropped packets, and nothing after a gap is
// delivered before it.
func TestNetNoRequestsExactGaps(t *testing.T) {
	r := &recorder{t: t}
	rcv, feed := newReceiver(t, netip.AddrPort{}, SequencerOptions{Next: 1, GapTimeout: 20 * time.Millisecond}, r)
	// The sender's own view of what it dropped: wrap the connection so the
	// test knows the exact ranges, independently of the Sequencer.
	x := newExchange(t, feed.LocalAddr(), SenderOptions{DropRate: 0.1, Seed: 7, MaxPayload: 120}, ServerOptions{})
	var dropped [][2]uint64
	const n = 3000
	for q := uint64(1); q <= n; q++ {
		before := x.sender.Counters().Dropped
		first := x.sender.b.Seq()
		if _, err := x.sender.Add(msgFor(q)); err != nil {
			t.Fatal(err)
		}
		if x.sender.Counters().Dropped != before { // the packet first.. was just dropped
			dropped = append(dropped, [2]uint64{first, x.sender.b.Seq() - 1})
		}
	}
	before := x.sender.Counters().Dropped
	first := x.sender.b.Seq()
	stop := make(chan struct{})
	var wg sync.WaitGroup
	endAndTick(t, x.sender, stop, &wg)
	if x.sender.Counters().Dropped != before {
		dropped = append(dropped, [2]uint64{first, n})
	}
	run(t, rcv, 20*time.Second)
	close(stop)
	wg.Wait()
	// Expected events, built from the sender's drops: merged ranges.
	var want []string
	next := uint64(1)
	for i := 0; i < len(dropped); i++ {
		a, b := dropped[i][0], dropped[i][1]
		for i+1 < len(dropped) && dropped[i+1][0] == b+1 {
			i++
			b = dropped[i][1]
		}
		if a > next {
			want = append(want, "m "+itoa(next)+".."+itoa(a-1))
		}
		want = append(want, "gap "+itoa(a)+"-"+itoa(b))
		next = b + 1
	}
	if next <= n {
		want = append(want, "m "+itoa(next)+".."+itoa(n))
	}
	want = append(want, "eos "+itoa(n+1))
	if len(dropped) == 0 {
		t.Fatal("the drop hook dropped nothing")
	}
	r.expect(t, want...)
}

func itoa(v uint64) string { return strconv.FormatUint(v, 10) }

// TestNetRestartRerequests: a feed handler restarted at Next=501 while the
// exchange is at 1001 gets 501..1000 from the re-request server, then the
// live stream, all in order, nothing lost.
func TestNetRestartRerequests(t *testing.T) {
	r := &recorder{t: t}
	x := newExchange(t, netip.AddrPort{}, SenderOptions{}, ServerOptions{MaxCount: 100})
	rcv, feed := newReceiver(t, x.addr, SequencerOptions{Next: 501, MaxRequestCount: 100}, r)
	// Messages 1..1000 went out before this feed handler existed.
	sink := listen(t, ConnOptions{})
	x.sender.dst = sink.LocalAddr()
	feedMessages(t, x.sender, 1, 1000, 50)
	x.sender.dst = feed.LocalAddr()
	feedMessages(t, x.sender, 1001, 1500, 50)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	endAndTick(t, x.sender, stop, &wg)
	run(t, rcv, 10*time.Second)
	close(stop)
	wg.Wait()
	r.expect(t, "m 501..1500", "eos 1501")
	if c := rcv.seq.Counters(); c.Recovered < 500 || c.Gaps != 0 {
		t.Fatalf("%+v", c)
	}
}

// TestNetDuplicatesAndMalformed: every data packet sent twice, plus junk
// datagrams and packets of another session: each message once, junk counted.
func TestNetDuplicatesAndMalformed(t *testing.T) {
	r := &recorder{t: t}
	rcv, feed := newReceiver(t, netip.AddrPort{}, SequencerOptions{Next: 1}, r)
	src := listen(t, ConnOptions{})
	other, _ := ParseSession("OTHER")
	to := feed.LocalAddr()
	send := func(b []byte) {
		if err := src.WriteTo(b, to); err != nil {
			t.Fatal(err)
		}
	}
	for q := uint64(1); q <= 100; q += 5 {
		p := pkt(testSession, q, q+4)
		send(p)
		send(p)
		send([]byte("junk"))
		send(p[:len(p)-3])
		send(pkt(other, q, q))
	}
	send(AppendEndOfSession(nil, testSession, 101))
	run(t, rcv, 10*time.Second)
	r.expect(t, "m 1..5", "session OTHER", "m 6..100", "eos 101")
	c := rcv.seq.Counters()
	if c.Duplicates != 100 || c.Malformed != 40 || c.ForeignSession != 20 || c.Messages != 100 {
		t.Fatalf("%+v", c)
	}
}

// TestNetStrayAnswersIgnored: a packet on the re-request socket that does
// not come from the server is not taken as an answer.
func TestNetStrayAnswersIgnored(t *testing.T) {
	r := &recorder{t: t}
	x := newExchange(t, netip.AddrPort{}, SenderOptions{}, ServerOptions{})
	rcv, feed := newReceiver(t, x.addr, SequencerOptions{Next: 1}, r)
	stray := listen(t, ConnOptions{})
	if err := stray.WriteTo(pkt(testSession, 1, 5), rcv.rc.conn.LocalAddr()); err != nil {
		t.Fatal(err)
	}
	x.sender.dst = feed.LocalAddr()
	feedMessages(t, x.sender, 1, 5, 5)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	endAndTick(t, x.sender, stop, &wg)
	run(t, rcv, 10*time.Second)
	close(stop)
	wg.Wait()
	r.expect(t, "m 1..5", "eos 6")
	if c := rcv.Counters(); c.Stray != 1 || r.retr != 0 {
		t.Fatalf("%+v, %d retransmitted", c, r.retr)
	}
}

// TestServerAnswers checks a server's answers byte by byte: split at the
// payload limit, capped at MaxCount, and silence for malformed requests,
// other sessions and messages it does not have.
func TestServerAnswers(t *testing.T) {
	x := newExchange(t, netip.AddrPort{}, SenderOptions{}, ServerOptions{MaxPayload: 100, MaxCount: 20})
	x.sender.dst = listen(t, ConnOptions{}).LocalAddr()
	feedMessages(t, x.sender, 1, 50, 50)
	cli := listen(t, ConnOptions{})
	ask := func(b []byte) {
		if err := cli.WriteTo(b, x.addr); err != nil {
			t.Fatal(err)
		}
	}
	other, _ := ParseSession("OTHER")
	ask([]byte("junk"))
	ask(Request{Session: other, Seq: 1, Count: 5}.AppendEncode(nil))
	ask(Request{Session: testSession, Seq: 60, Count: 5}.AppendEncode(nil))
	ask(Request{Session: testSession, Seq: 10, Count: 30}.AppendEncode(nil)) // capped to 10..29
	batch := NewBatch(16, 2048)
	var got []uint64
	deadline := time.Now().Add(5 * time.Second)
	for len(got) < 20 && time.Now().Before(deadline) {
		if _, err := cli.Wait(100 * time.Millisecond); err != nil {
			t.Fatal(err)
		}
		n, err := cli.Read(batch)
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i < n; i++ {
			if batch.From(i) != x.addr || len(batch.Packet(i)) > 100 {
				t.Fatalf("answer from %v, %d bytes", batch.From(i), len(batch.Packet(i)))
			}
			p, err := ParsePacket(batch.Packet(i))
			if err != nil {
				t.Fatal(err)
			}
			it := p.Iter()
			for seq, msg, ok := it.Next(); ok; seq, msg, ok = it.Next() {
				if string(msg) != string(msgFor(seq)) {
					t.Fatalf("message %d bytes % x", seq, msg)
				}
				got = append(got, seq)
			}
		}
	}
	if len(got) != 20 || got[0] != 10 || got[19] != 29 {
		t.Fatalf("answers %v", got)
	}
	if err := x.stopServer(); err != nil {
		t.Fatal(err)
	}
	if c := x.server.Counters(); c.Malformed != 1 || c.ForeignSession != 1 || c.Unavailable != 1 || c.Requests != 1 || c.Messages != 20 || c.Packets < 4 {
		t.Fatalf("%+v", c)
	}
}
