//go:build linux

package feed

import (
	"testing"
	"time"

	"github.com/mdjournal/mdjournal/itch"
	"github.com/mdjournal/mdjournal/journal"
	"github.com/mdjournal/mdjournal/moldudp64"
)

// allocPackets builds n packets of a steady order flow: each adds two
// orders, executes one (an execution and its trade), cancels part of the
// other and deletes it, a hidden execution, and an extension book level
// and order event (8 messages, 10 frames).
func allocPackets(n int) [][]byte {
	var pkts [][]byte
	seq := uint64(2)
	for k := uint64(0); k < uint64(n); k++ {
		a, b := 2*k+10, 2*k+11
		msgs := [][]byte{
			enc(&itch.AddOrder{Header: hdr(1, k), OrderRef: a, Side: 'B', Shares: 300, Price: 100}),
			enc(&itch.AddOrderMPID{Header: hdr(1, k), OrderRef: b, Side: 'S', Shares: 200, Price: 101}),
			enc(&itch.OrderExecuted{Header: hdr(1, k), OrderRef: a, Shares: 300, Match: k}),
			enc(&itch.OrderCancel{Header: hdr(1, k), OrderRef: b, Canceled: 50}),
			enc(&itch.OrderDelete{Header: hdr(1, k), OrderRef: b}),
			enc(&itch.Trade{Header: hdr(1, k), Side: 'B', Shares: 10, Price: 100, Match: k}),
			AppendExtLevel(nil, hdr(1, k), &journal.BookLevel{Side: journal.SideBid, Price: 99, Qty: int64(k)}),
			AppendExtOrder(nil, hdr(1, k), journal.TypeOrderCancel, &journal.Order{OrderID: 1 << 50, Price: 99, Qty: 1, Side: journal.SideBid}),
		}
		pkts = append(pkts, packet(seq, msgs...))
		seq += uint64(len(msgs))
	}
	return pkts
}

// TestPushAllocatesNothing: sequencing, decoding, staging with a source
// trailer and publishing (Push + Flush) allocate nothing per packet.
func TestPushAllocatesNothing(t *testing.T) {
	w, f := openFeed(t, t.TempDir(), Options{Orders: 1 << 12})
	defer w.Close()
	defer f.Close()
	if err := f.Push(packet(1, msgDef), 0); err != nil {
		t.Fatal(err)
	}
	pkts := allocPackets(300)
	i := 0
	allocs := testing.AllocsPerRun(250, func() {
		if err := f.Push(pkts[i], 1); err != nil {
			t.Fatal(err)
		}
		if err := f.Flush(); err != nil {
			t.Fatal(err)
		}
		i++
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per packet", allocs)
	}
	if st := f.Stats(); st.Frames != 1+10*uint64(i) || st.Decoder.Unknown != 0 {
		t.Fatalf("%d frames after %d packets (%+v)", st.Frames, i, st.Decoder)
	}
}

// TestReceiveAllocatesNothing: the whole path from the socket — sendto on
// loopback, recvmmsg with kernel timestamps, sequencing, decoding,
// staging, publishing (Poll) — allocates nothing per packet.
func TestReceiveAllocatesNothing(t *testing.T) {
	w, f := openFeed(t, t.TempDir(), Options{Orders: 1 << 12})
	defer w.Close()
	defer f.Close()
	out, err := moldudp64.Listen(lo, moldudp64.ConnOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	if err := out.WriteTo(packet(1, msgDef), f.LocalAddr()); err != nil {
		t.Fatal(err)
	}
	if _, err := f.Poll(time.Second); err != nil {
		t.Fatal(err)
	}
	pkts := allocPackets(300)
	i := 0
	allocs := testing.AllocsPerRun(250, func() {
		if err := out.WriteTo(pkts[i], f.LocalAddr()); err != nil {
			t.Fatal(err)
		}
		if n, err := f.Poll(time.Second); err != nil || n != 1 {
			t.Fatalf("poll: %d packets, %v", n, err)
		}
		i++
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per packet", allocs)
	}
	st := f.Stats()
	if st.Frames != 1+10*uint64(i) || st.Sequencer.Gaps != 0 || st.Sequencer.Messages != 1+8*uint64(i) {
		t.Fatalf("%d frames, %+v", st.Frames, st.Sequencer)
	}
	r := w.Stats()
	if r.Frames != st.Frames {
		t.Fatalf("writer has %d frames, feed staged %d", r.Frames, st.Frames)
	}
}
