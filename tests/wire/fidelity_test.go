package wire_test

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/mdjournal/mdjournal/journal"
)

// TestFidelity is the acceptance test of the wire path: every LOBSTER pair
// imported with its orderbook (`journalctl import`), published with 1 % of
// the packets dropped and 1 % reordered and the re-request server on,
// received by the feed into a fresh journal. The received journal must
// hold the source's frames — same types, prices, sizes, order ids,
// exchange timestamps, same order and even the same seqs — each with a
// source trailer; the books rebuilt from both must be equal after every
// frame; the received journal's book must match the LOBSTER orderbook file
// on every row; and `journalctl book --at` must print the same book from
// both at points across the day.
func TestFidelity(t *testing.T) {
	for _, p := range dataPairs(t) {
		t.Run(p.name, func(t *testing.T) {
			src := importSource(t, p)
			dst := filepath.Join(t.TempDir(), "received")
			t0 := time.Now().UnixNano()
			res := runWire(t, src, dst, nyDay(t, p.date), wireRun{drop: 0.01, reorder: 0.01, seed: 14, rerequest: true, maxPayload: packetLimit()})
			t1 := time.Now().UnixNano()
			sf, gf := readAll(t, src), readAll(t, dst)
			checkSame(t, sf, gf, true, t0, t1)
			compared := checkBooks(t, sf, gf)
			rows, matched := checkOrderbookFile(t, gf, p)
			fs := res.feed
			if fs.Gaps != 0 || len(res.gaps) != 0 {
				t.Errorf("gaps %v with re-requests on", res.gaps)
			}
			if res.pub.Sender.Dropped == 0 || res.pub.Sender.Reordered == 0 {
				t.Errorf("the publisher dropped %d and reordered %d packets: the recovery was not exercised", res.pub.Sender.Dropped, res.pub.Sender.Reordered)
			}
			if fs.Sequencer.Recovered == 0 || res.pub.Server.Requests == 0 {
				t.Errorf("nothing was recovered by re-request (%+v, server %+v)", fs.Sequencer, res.pub.Server)
			}
			if fs.Decoder.Unknown != 0 || fs.Decoder.Invalid != 0 || fs.Decoder.Malformed != 0 {
				t.Errorf("decoder: %d unknown order references, %d invalid, %d malformed", fs.Decoder.Unknown, fs.Decoder.Invalid, fs.Decoder.Malformed)
			}
			checkBookAt(t, src, dst, sf)
			enc := res.pub.Encoder
			t.Logf("%s: %d frames, %d messages (%d standard ITCH, %d extension), %d packets: %d dropped, %d reordered, %d recovered by %d re-requests, %d duplicates; books equal after %d frames; orderbook rows %d/%d",
				p.name, len(gf), enc.Messages, enc.Messages-enc.Extension, enc.Extension, res.pub.Sender.Packets+res.pub.Sender.Dropped,
				res.pub.Sender.Dropped, res.pub.Sender.Reordered, fs.Sequencer.Recovered, fs.Sequencer.Requests, fs.Sequencer.Duplicates,
				compared, matched, rows)
		})
	}
}

// checkBookAt compares `journalctl book --json --depth 0 --at seq:N` of
// both journals at 20 points and at the end (same seqs: the journals hold
// the same frames).
func checkBookAt(t *testing.T, src, dst string, frames []frame) {
	t.Helper()
	n := len(frames)
	points := []string{"end"}
	for k := 1; k <= 20; k++ {
		points = append(points, fmt.Sprintf("seq:%d", frames[(n-1)*k/20].seq))
	}
	for _, at := range points {
		a := journalctl(t, "book", "--dir", src, "--instrument", "1", "--at", at, "--depth", "0", "--json")
		b := journalctl(t, "book", "--dir", dst, "--instrument", "1", "--at", at, "--depth", "0", "--json")
		if a != b {
			t.Fatalf("book --at %s differs:\n source   %s\n received %s", at, a, b)
		}
		var v struct {
			Bids []json.RawMessage `json:"bids"`
		}
		if err := json.Unmarshal([]byte(a), &v); err != nil {
			t.Fatal(err)
		}
	}
}

// TestGapsWithoutRerequest runs the feed without a re-request server
// behind a relay that drops 1 % of the data packets (recording which
// messages they carried). The feed must write exactly the dropped ranges as
// gap frames, at their place in sequence order; every other frame must be
// the one the lossless run wrote for the same message; and a message that
// lost frames may only be one whose order reference was lost in a gap.
func TestGapsWithoutRerequest(t *testing.T) {
	for _, p := range dataPairs(t) {
		t.Run(p.name, func(t *testing.T) {
			src := importSource(t, p)
			day := nyDay(t, p.date)
			ref := filepath.Join(t.TempDir(), "lossless")
			runWire(t, src, ref, day, wireRun{rerequest: true})
			dst := filepath.Join(t.TempDir(), "lossy")
			res := runWire(t, src, dst, day, wireRun{relayDrop: 0.01, relaySeed: 3, maxPayload: packetLimit()})
			if len(res.dropped) == 0 {
				t.Fatal("the relay dropped nothing: pick another seed")
			}
			want := ""
			for _, d := range res.dropped {
				want += fmt.Sprintf("%d..%d ", d[0], d[1])
			}
			got := ""
			for _, g := range res.gaps {
				got += fmt.Sprintf("%d..%d ", g.First, g.Last)
			}
			if got != want {
				t.Fatalf("gaps reported: %s\nrelay dropped:  %s", got, want)
			}

			lossless := map[uint64][]frame{}
			for _, f := range readAll(t, ref) {
				lossless[f.sourceSeq] = append(lossless[f.sourceSeq], f)
			}
			lossy := readAll(t, dst)
			byMsg := map[uint64][]frame{}
			var prev uint64
			gi := 0
			for i := range lossy {
				f := &lossy[i]
				if f.sourceSeq < prev {
					t.Fatalf("frame %v: source_seq goes back from %d", f, prev)
				}
				prev = f.sourceSeq
				if f.typ == journal.TypeGap {
					var g journal.Gap
					g.Decode(f.payload)
					d := res.dropped[gi]
					if g.First != d[0] || g.First+g.Count-1 != d[1] || f.sourceSeq != d[1] || g.SourceString() != "MDJOURNAL" {
						t.Fatalf("gap frame %v: %d+%d from %q, want %d..%d", f, g.First, g.Count, g.SourceString(), d[0], d[1])
					}
					if f.seq != res.gaps[gi].Seq {
						t.Fatalf("gap %d is frame %d, the feed reported %d", gi, f.seq, res.gaps[gi].Seq)
					}
					gi++
					continue
				}
				if gi < len(res.dropped) && f.sourceSeq >= res.dropped[gi][0] {
					t.Fatalf("frame %v written before the gap %v it follows (or inside it)", f, res.dropped[gi])
				}
				byMsg[f.sourceSeq] = append(byMsg[f.sourceSeq], *f)
			}
			if gi != len(res.dropped) {
				t.Fatalf("%d gap frames, %d gaps", gi, len(res.dropped))
			}
			// A message's frames may differ from the lossless run's only if
			// they name an order a lost message changed (ITCH's cancels,
			// deletes and executions carry the reference, not the order:
			// what the feed knows of it is what it saw), or one a message
			// so affected would have added (a replace); and it may make no
			// frame only then (the decoder counts an unknown reference).
			touched := map[uint64]bool{}
			for seq, fs := range lossless {
				if inGap(seq, res.dropped) {
					for k := range fs {
						if id, ok := orderID(&fs[k]); ok {
							touched[id] = true
						}
					}
				}
			}
			seqs := make([]uint64, 0, len(lossless))
			for seq := range lossless {
				seqs = append(seqs, seq)
			}
			slices.Sort(seqs)
			var missing, differing uint64
			for _, seq := range seqs {
				want, have := lossless[seq], byMsg[seq]
				if inGap(seq, res.dropped) {
					if len(have) != 0 {
						t.Fatalf("message %d was dropped but has frames", seq)
					}
					continue
				}
				same := len(have) == len(want)
				for k := 0; same && k < len(have); k++ {
					same = sameContent(&have[k], &want[k])
				}
				if same {
					continue
				}
				id, ok := orderID(&want[0])
				if !ok || !touched[id] {
					t.Fatalf("message %d differs from the lossless run but names no order a lost message changed:\n lossy    %v\n lossless %v", seq, have, want)
				}
				for k := range want { // a replace of a lost order adds no new one either
					if id, ok := orderID(&want[k]); ok {
						touched[id] = true
					}
				}
				if len(have) == 0 {
					missing++
				} else {
					differing++
				}
			}
			if missing != res.feed.Decoder.Unknown {
				t.Errorf("%d messages outside the gaps made no frame, the decoder counted %d unknown order references", missing, res.feed.Decoder.Unknown)
			}
			t.Logf("%s: %d gaps (%d messages) reported exactly as dropped; later messages naming an order a lost message changed: %d made no frame, %d a different one",
				p.name, len(res.gaps), res.feed.Lost, missing, differing)
		})
	}
}

func inGap(seq uint64, gaps [][2]uint64) bool {
	for _, g := range gaps {
		if seq >= g[0] && seq <= g[1] {
			return true
		}
	}
	return false
}

// orderID returns the order id of an L3 frame.
func orderID(f *frame) (uint64, bool) {
	if !f.typ.IsOrder() {
		return 0, false
	}
	var o journal.Order
	o.Decode(f.payload)
	return o.OrderID, true
}
