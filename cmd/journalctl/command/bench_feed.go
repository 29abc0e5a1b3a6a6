package command

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"text/tabwriter"
	"time"

	"github.com/spf13/pflag"
	"golang.org/x/sys/unix"

	"github.com/mdjournal/mdjournal/cmd/journalctl/internal/benchkit"
	"github.com/mdjournal/mdjournal/feed"
	"github.com/mdjournal/mdjournal/internal/clock"
	"github.com/mdjournal/mdjournal/itch"
	"github.com/mdjournal/mdjournal/journal"
	"github.com/mdjournal/mdjournal/moldudp64"
	"github.com/mdjournal/mdjournal/writer"
)

type benchFeedOptions struct {
	packets int
	rounds  int
	samples int
	gap     time.Duration
	live    int
	cpus    string
	json    bool
}

func (o *benchFeedOptions) AddFlags(fs *pflag.FlagSet) {
	fs.IntVar(&o.packets, "packets", 2000, "throughput: 1400-byte packets per round (about 48 ITCH messages each), sent into the socket before the timed drain")
	fs.IntVar(&o.rounds, "rounds", 5, "rounds; floor and feed alternate, the median round is reported")
	fs.IntVar(&o.samples, "samples", 20000, "latency: one-message packets per round (0: no latency part)")
	fs.DurationVar(&o.gap, "gap", 100*time.Microsecond, "latency: pause between packets")
	fs.IntVar(&o.live, "live", 50000, "resting orders the synthetic order flow keeps (the decoder's table size)")
	fs.StringVar(&o.cpus, "cpus", "", "latency: pin sender and receiver: A,B")
	fs.BoolVar(&o.json, "json", false, "print JSON")
}

// benchFeed measures the feed handler (package feed) on loopback UDP:
// sustained ITCH messages/s from the socket into the journal beside the
// same packets received with recvmmsg and dropped (the floor), and the
// latency from the sender to the published frame beside the loopback UDP
// one-way latency, both measured in the same run.
func benchFeed(env *Env, args []string) error {
	var o benchFeedOptions
	fs := flagSet(env, "bench feed", "[--packets N] [--rounds R] [--samples N] [--gap DUR] [--live N] [--cpus A,B] [--json]", o.AddFlags)
	if err := parse(fs, args); err != nil {
		return err
	}
	if err := noArgs(fs); err != nil {
		return err
	}
	if o.packets < 10 || o.rounds < 1 || o.samples < 0 || o.gap < 0 || o.live < 100 {
		return usagef("--packets ≥ 10, --rounds ≥ 1, --samples ≥ 0, --gap ≥ 0, --live ≥ 100")
	}
	cpuA, cpuB, err := parseCPUs(o.cpus, false)
	if err != nil {
		return err
	}
	tmp, err := os.MkdirTemp("", "mdj-bench-feed-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	ny, err := itch.NewYork()
	if err != nil {
		return err
	}
	day := itch.DayOf(time.Now().In(ny))

	tp, err := feedThroughput(filepath.Join(tmp, "throughput"), day, o)
	if err != nil {
		return err
	}
	var lat *feedLatencyResult
	if o.samples > 0 {
		if lat, err = feedLatency(filepath.Join(tmp, "latency"), day, o, cpuA, cpuB); err != nil {
			return err
		}
	}
	if o.json {
		out := map[string]any{"throughput": tp}
		if lat != nil {
			out["latency"] = lat
		}
		return json.NewEncoder(env.Stdout).Encode(out)
	}
	tw := tabwriter.NewWriter(env.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "throughput: %d packets × %d rounds, %.1f msgs/packet (median round)\tns/msg\tmsgs/s\tvs floor\t\n", o.packets, o.rounds, tp.MsgsPerPacket)
	fmt.Fprintf(tw, "recvmmsg into a buffer, dropped (floor)\t%.1f\t%.2fM\t1.00\t\n", tp.FloorNsPerMsg, 1e3/tp.FloorNsPerMsg)
	fmt.Fprintf(tw, "feed: recvmmsg → sequence → decode → journal (published)\t%.1f\t%.2fM\t%.2f\t\n", tp.FeedNsPerMsg, 1e3/tp.FeedNsPerMsg, tp.FeedRateVsFloor)
	tw.Flush()
	if lat == nil {
		return nil
	}
	fmt.Fprintln(env.Stdout)
	tw = tabwriter.NewWriter(env.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "latency: %d one-message packets × %d rounds, one every %v\tp50\tp99\tp99.9\tmax\t\n", o.samples, o.rounds, o.gap)
	for _, l := range []benchkit.Latency{lat.FloorSend, lat.FloorArrival, lat.FeedSend, lat.FeedArrival} {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t\n", l.Name, ns(l.P50), ns(l.P99), ns(l.P999), ns(l.Max))
	}
	tw.Flush()
	fmt.Fprintf(env.Stdout, "p50 ratio (median of rounds): send → published / UDP one-way = %.2f; arrival → published / arrival → recvmmsg = %.2f\n",
		lat.SendP50Ratio, lat.ArrivalP50Ratio)
	return nil
}

// orderFlow is a deterministic ITCH order flow on one instrument: 45 %
// adds, 35 % deletes, 10 % executions, 10 % cancels, on about live resting
// orders; an event names one of the 1000 most recent resting orders 9
// times in 10 (most orders are cancelled or filled soon after they
// arrive), any resting order otherwise.
type orderFlow struct {
	rng    *rand.Rand
	live   int
	next   uint64
	orders []flowOrder // arrival order; dead ones are compacted away
	alive  int
	match  uint64
}

type flowOrder struct {
	ref    uint64
	shares uint32
	dead   bool
}

func newOrderFlow(live int) *orderFlow {
	return &orderFlow{rng: rand.New(rand.NewPCG(14, 14)), live: live, next: 1}
}

func (g *orderFlow) pick() *flowOrder {
	for {
		n := len(g.orders)
		i := g.rng.IntN(n)
		if g.rng.IntN(10) != 0 {
			i = n - 1 - g.rng.IntN(min(n, 1000))
		}
		if !g.orders[i].dead {
			return &g.orders[i]
		}
	}
}

func (g *orderFlow) remove(o *flowOrder) {
	o.dead = true
	g.alive--
	if len(g.orders) > 4*g.live && g.alive < len(g.orders)/2 {
		k := 0
		for _, x := range g.orders {
			if !x.dead {
				g.orders[k] = x
				k++
			}
		}
		g.orders = g.orders[:k]
	}
}

// message appends the next message, stamped ts, to dst.
func (g *orderFlow) message(dst []byte, ts uint64) []byte {
	h := itch.Header{Locate: 1, Timestamp: ts}
	r := g.rng.IntN(100)
	if g.alive < g.live/2 || (r < 45 && g.alive < 2*g.live) {
		o := flowOrder{ref: g.next, shares: uint32(100 * (1 + g.rng.IntN(10)))}
		g.next++
		g.orders = append(g.orders, o)
		g.alive++
		m := itch.AddOrder{Header: h, OrderRef: o.ref, Side: "BS"[g.rng.IntN(2)], Shares: o.shares, Price: itch.Price4(1000000 + 100*g.rng.IntN(200))}
		return m.AppendEncode(dst)
	}
	o := g.pick()
	switch {
	case r < 80:
		m := itch.OrderDelete{Header: h, OrderRef: o.ref}
		g.remove(o)
		return m.AppendEncode(dst)
	case r < 90:
		q := min(o.shares, 100)
		g.match++
		m := itch.OrderExecuted{Header: h, OrderRef: o.ref, Shares: q, Match: g.match}
		if o.shares -= q; o.shares == 0 {
			g.remove(o)
		}
		return m.AppendEncode(dst)
	default:
		q := min(o.shares, 50)
		m := itch.OrderCancel{Header: h, OrderRef: o.ref, Canceled: q}
		if o.shares -= q; o.shares == 0 {
			g.remove(o)
		}
		return m.AppendEncode(dst)
	}
}

type feedThroughputResult struct {
	FloorNsPerMsg   float64   `json:"floor_ns_per_msg"`
	FeedNsPerMsg    float64   `json:"feed_ns_per_msg"`
	FeedRateVsFloor float64   `json:"feed_rate_vs_floor"`
	MsgsPerPacket   float64   `json:"msgs_per_packet"`
	FloorRounds     []float64 `json:"floor_rounds_ns_per_msg"`
	FeedRounds      []float64 `json:"feed_rounds_ns_per_msg"`
	Frames          uint64    `json:"frames"`
}

var benchSession = moldudp64.Session{'B', 'E', 'N', 'C', 'H', ' ', ' ', ' ', ' ', ' '}

// feedThroughput: each round builds a chunk of packets, sends it into the
// floor socket (not timed: loopback delivery completes inside sendto) and
// drains it with recvmmsg (timed), then sends the same packets to the
// feed's socket and lets the feed drain them into the journal (timed,
// until the last message is published).
func feedThroughput(dir string, day itch.Day, o benchFeedOptions) (*feedThroughputResult, error) {
	lo := netip.MustParseAddrPort("127.0.0.1:0")
	floor, err := moldudp64.Listen(lo, moldudp64.ConnOptions{RecvBuffer: 256 << 20, Timestamps: true})
	if err != nil {
		return nil, err
	}
	defer floor.Close()
	out, err := moldudp64.Listen(lo, moldudp64.ConnOptions{SendBuffer: 64 << 20})
	if err != nil {
		return nil, err
	}
	defer out.Close()
	w, err := writer.Open(dir, writer.Options{})
	if err != nil {
		return nil, err
	}
	defer w.Close()
	if err := w.Prefault(); err != nil {
		return nil, err
	}
	f, err := feed.New(w, feed.Options{Listen: lo, Day: day, RecvBuffer: 256 << 20, Spin: true, Orders: 4 * o.live})
	if err != nil {
		return nil, err
	}
	defer f.Close()

	flow := newOrderFlow(o.live)
	batch := moldudp64.NewBatch(64, 2048)
	var b moldudp64.Builder
	seq := uint64(1)
	ts := uint64(34200e9)
	pkts := make([][]byte, o.packets)
	var floorR, feedR []float64
	var msgs uint64
	var m, carry []byte               // carry: a message made that did not fit the last packet
	for r := 0; r < o.rounds+1; r++ { // round 0 warms up
		first := seq
		for i := range pkts {
			b.Reset(benchSession, seq, 0)
			if len(carry) > 0 {
				b.Add(carry) // fits an empty packet
				carry = carry[:0]
			}
			for {
				m = flow.message(m[:0], ts)
				ts++
				if b.Add(m) != nil {
					carry = append(carry, m...)
					break
				}
			}
			pkts[i] = append(pkts[i][:0], b.Bytes()...)
			seq = b.NextSeq()
		}
		n := seq - first // messages in the chunk
		for _, p := range pkts {
			if err := out.WriteTo(p, floor.LocalAddr()); err != nil {
				return nil, err
			}
		}
		t0 := clock.Nanotime()
		for got := 0; got < len(pkts); {
			k, err := floor.Read(batch)
			if err != nil {
				return nil, err
			}
			if k == 0 {
				return nil, fmt.Errorf("floor: the socket is empty after %d of %d packets: lost (raise net.core.rmem_max or lower --packets)", got, len(pkts))
			}
			for i := 0; i < k; i++ {
				if batch.Truncated(i) {
					return nil, fmt.Errorf("floor: packet truncated")
				}
			}
			got += k
		}
		floorNs := clock.Nanotime() - t0
		for _, p := range pkts {
			if err := out.WriteTo(p, f.LocalAddr()); err != nil {
				return nil, err
			}
		}
		t0 = clock.Nanotime()
		for idle := 0; f.Next() < seq; {
			k, err := f.Poll(0)
			if err != nil {
				return nil, err
			}
			if k == 0 {
				if idle++; idle > 1000 {
					return nil, fmt.Errorf("feed: stuck at message %d of %d: packets lost (raise net.core.rmem_max or lower --packets)", f.Next(), seq)
				}
				runtime.Gosched()
			}
		}
		feedNs := clock.Nanotime() - t0
		if r > 0 {
			floorR = append(floorR, float64(floorNs)/float64(n))
			feedR = append(feedR, float64(feedNs)/float64(n))
			msgs += n
		}
	}
	st := f.Stats()
	if st.Gaps != 0 || st.Decoder.Unknown != 0 || st.Decoder.Malformed != 0 {
		return nil, fmt.Errorf("feed: %d gaps, %d unknown orders, %d malformed", st.Gaps, st.Decoder.Unknown, st.Decoder.Malformed)
	}
	res := &feedThroughputResult{FloorNsPerMsg: median(floorR), FeedNsPerMsg: median(feedR), FloorRounds: floorR, FeedRounds: feedR,
		MsgsPerPacket: float64(msgs) / float64(o.rounds*o.packets), Frames: st.Frames}
	res.FeedRateVsFloor = res.FloorNsPerMsg / res.FeedNsPerMsg
	return res, nil
}

type feedLatencyResult struct {
	FloorSend       benchkit.Latency `json:"floor_send_to_recv"`
	FloorArrival    benchkit.Latency `json:"floor_arrival_to_recv"`
	FeedSend        benchkit.Latency `json:"feed_send_to_published"`
	FeedArrival     benchkit.Latency `json:"feed_arrival_to_published"`
	SendP50Ratio    float64          `json:"send_p50_ratio"`
	ArrivalP50Ratio float64          `json:"arrival_p50_ratio"`
}

// stagedFrames is a writer Observer keeping the time and receive time of
// the frames staged since the last reset (room is reserved up front: it
// allocates nothing).
type stagedFrames struct {
	ts, recv []int64
}

func (s *stagedFrames) Observe(f *journal.Frame) {
	if len(s.ts) < cap(s.ts) {
		s.ts, s.recv = append(s.ts, f.TS), append(s.recv, f.RecvTS)
	}
}

func (s *stagedFrames) reset() { s.ts, s.recv = s.ts[:0], s.recv[:0] }

// feedLatency: a sender goroutine (on its own thread, sleeping between
// packets) sends one Add Order per packet, every gap, stamped with its
// send time (CLOCK_REALTIME as the ITCH time). The
// floor round receives them busy-polling recvmmsg and takes now − send
// time and now − the kernel's receive time; the feed round runs the feed
// busy-polling (Spin) and takes, after each Poll that published frames,
// for each of them now − its ts (= send time) and now − its recv_ts (the
// kernel's receive time).
func feedLatency(dir string, day itch.Day, o benchFeedOptions, cpuA, cpuB int) (*feedLatencyResult, error) {
	lo := netip.MustParseAddrPort("127.0.0.1:0")
	floor, err := moldudp64.Listen(lo, moldudp64.ConnOptions{RecvBuffer: 16 << 20, Timestamps: true})
	if err != nil {
		return nil, err
	}
	defer floor.Close()
	obs := &stagedFrames{ts: make([]int64, 0, 1<<16), recv: make([]int64, 0, 1<<16)}
	w, err := writer.Open(dir, writer.Options{Observer: obs})
	if err != nil {
		return nil, err
	}
	defer w.Close()
	if err := w.Prefault(); err != nil {
		return nil, err
	}
	f, err := feed.New(w, feed.Options{Listen: lo, Day: day, Spin: true, Orders: 2 * o.samples * (o.rounds + 1)})
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if err := benchkit.Pin(cpuB); err != nil {
		return nil, err
	}
	defer benchkit.Unpin(cpuB)

	midnight := day.Midnight()
	fs, fa, js, ja := benchkit.NewHistogram(), benchkit.NewHistogram(), benchkit.NewHistogram(), benchkit.NewHistogram()
	var sendR, arrR []float64
	feedSeq := uint64(1)
	ref := uint64(1)
	batch := moldudp64.NewBatch(64, 2048)
	warm := min(1000, o.samples/10)
	// send runs the sender on its own (pinned) thread: n packets to dst.
	send := func(dst netip.AddrPort, seq uint64, n int) chan error {
		done := make(chan error, 1)
		go func() {
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			if err := benchkit.Pin(cpuA); err != nil {
				done <- err
				return
			}
			defer benchkit.Unpin(cpuA)
			out, err := moldudp64.Listen(lo, moldudp64.ConnOptions{})
			if err != nil {
				done <- err
				return
			}
			defer out.Close()
			// Sleep between packets rather than spin, so that the receiver
			// has a core: nanosleep with 1 ns timer slack (the default slack
			// is 50 µs), then spin the last 2 µs.
			unix.Prctl(unix.PR_SET_TIMERSLACK, 1, 0, 0, 0)
			var b moldudp64.Builder
			var msg []byte
			next := clock.Nanotime()
			for i := 0; i < n; i++ {
				if d := next - clock.Nanotime() - 2000; d > 0 {
					ts := unix.NsecToTimespec(d)
					unix.Nanosleep(&ts, nil)
				}
				benchkit.SpinUntil(next)
				next += int64(o.gap)
				m := itch.AddOrder{Header: itch.Header{Locate: 1, Timestamp: uint64(time.Now().UnixNano() - midnight)}, OrderRef: ref,
					Side: 'B', Shares: 100, Price: 1000000}
				ref++
				msg = m.AppendEncode(msg[:0])
				b.Reset(benchSession, seq+uint64(i), 0)
				b.Add(msg)
				if err := out.WriteTo(b.Bytes(), dst); err != nil {
					done <- err
					return
				}
			}
			done <- nil
		}()
		return done
	}
	for r := 0; r < o.rounds; r++ {
		// floor
		h1, h2 := benchkit.NewHistogram(), benchkit.NewHistogram()
		done := send(floor.LocalAddr(), 1, o.samples)
		sent := false
		for got := 0; got < o.samples; {
			k, err := floor.Read(batch)
			if err != nil {
				return nil, err
			}
			if k == 0 {
				if sent {
					return nil, fmt.Errorf("floor: %d of %d packets received: lost", got, o.samples)
				}
				select {
				case err := <-done:
					if err != nil {
						return nil, err
					}
					sent = true // everything sent is in the socket: loopback delivers inside sendto
				default:
				}
				continue
			}
			now := time.Now().UnixNano()
			for i := 0; i < k; i++ {
				p := batch.Packet(i)
				if got+i >= warm && len(p) >= 33 {
					at := midnight + int64(binary.BigEndian.Uint64(p[25:33])&(1<<48-1))
					h1.RecordValue(max(now-at, 1))
					if t := batch.Time(i); t != 0 {
						h2.RecordValue(max(now-t, 1))
					}
				}
			}
			got += k
		}
		if !sent {
			if err := <-done; err != nil {
				return nil, err
			}
		}
		// feed
		h3, h4 := benchkit.NewHistogram(), benchkit.NewHistogram()
		target := feedSeq + uint64(o.samples)
		done = send(f.LocalAddr(), feedSeq, o.samples)
		sent = false
		obs.reset()
		for f.Next() < target {
			k, err := f.Poll(0) // publishes what it staged before it returns
			if err != nil {
				return nil, err
			}
			if len(obs.ts) > 0 {
				now := time.Now().UnixNano()
				for i := range obs.ts {
					if n := f.Next() - feedSeq - uint64(len(obs.ts)-i); n >= uint64(warm) {
						h3.RecordValue(max(now-obs.ts[i], 1))
						h4.RecordValue(max(now-obs.recv[i], 1))
					}
				}
				obs.reset()
			}
			if k == 0 {
				if sent {
					return nil, fmt.Errorf("feed: %d of %d messages received: lost", f.Next()-feedSeq, o.samples)
				}
				select {
				case err := <-done:
					if err != nil {
						return nil, err
					}
					sent = true
				default:
				}
			}
		}
		if !sent {
			if err := <-done; err != nil {
				return nil, err
			}
		}
		feedSeq = target
		fs.Merge(h1)
		fa.Merge(h2)
		js.Merge(h3)
		ja.Merge(h4)
		sendR = append(sendR, float64(h3.ValueAtQuantile(50))/float64(max(h1.ValueAtQuantile(50), 1)))
		if h2.TotalCount() > 0 {
			arrR = append(arrR, float64(h4.ValueAtQuantile(50))/float64(max(h2.ValueAtQuantile(50), 1)))
		}
	}
	res := &feedLatencyResult{
		FloorSend:    benchkit.Summarize("UDP one-way floor: send → recvmmsg returns", fs),
		FloorArrival: benchkit.Summarize("  kernel arrival → recvmmsg returns", fa),
		FeedSend:     benchkit.Summarize("feed: send → frame published", js),
		FeedArrival:  benchkit.Summarize("  kernel arrival → frame published", ja),
		SendP50Ratio: median(sendR),
	}
	if len(arrR) > 0 {
		res.ArrivalP50Ratio = median(arrR)
	}
	return res, nil
}
