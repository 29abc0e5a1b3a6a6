package wire_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mdjournal/mdjournal/book"
	"github.com/mdjournal/mdjournal/cmd/journalctl/command"
	"github.com/mdjournal/mdjournal/feed"
	"github.com/mdjournal/mdjournal/internal/testutil"
	"github.com/mdjournal/mdjournal/itch"
	"github.com/mdjournal/mdjournal/journal"
	"github.com/mdjournal/mdjournal/lobster"
	"github.com/mdjournal/mdjournal/moldudp64"
	"github.com/mdjournal/mdjournal/publish"
	"github.com/mdjournal/mdjournal/reader"
	"github.com/mdjournal/mdjournal/writer"
)

var loopback = netip.MustParseAddr("127.0.0.1")

func lo0() netip.AddrPort { return netip.AddrPortFrom(loopback, 0) }

// pair is one LOBSTER day: message and orderbook file.
type pair struct {
	name, msg, book string
	levels          int
	date            lobster.Date
}

// fullRun says whether the six full days are run (make wire).
func fullRun() bool { return os.Getenv("MDJ_WIRE_FULL") != "" }

// packetLimit is the packet size of the lossy runs: the default for the
// full days; small for the 2000-row excerpts, so that they travel in
// several hundred packets and 1 % drop and reorder rates hit some.
func packetLimit() int {
	if fullRun() {
		return 0
	}
	return 160
}

// dataPairs returns the head2000 excerpts, or with MDJ_WIRE_FULL every
// full pair under ../shared/data/lobster.
func dataPairs(t *testing.T) []pair {
	t.Helper()
	dir := testutil.SharedData(t, "lobster")
	pattern := filepath.Join(dir, "head2000", "*_message_*.csv")
	if fullRun() {
		pattern = filepath.Join(dir, "*_message_*.csv.gz")
	}
	msgs, _ := filepath.Glob(pattern)
	sort.Strings(msgs)
	var out []pair
	for _, m := range msgs {
		n, err := lobster.ParseFileName(m)
		if err != nil {
			t.Fatal(err)
		}
		ob, err := lobster.OrderbookName(m)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(ob); err != nil {
			t.Fatalf("no orderbook beside %s: %v", m, err)
		}
		out = append(out, pair{name: fmt.Sprintf("%s_L%d", n.Symbol, n.Levels), msg: m, book: ob, levels: n.Levels, date: n.Date})
	}
	if len(out) == 0 {
		t.Skipf("SKIP: no LOBSTER pairs match %s", pattern)
	}
	if fullRun() && len(out) != 6 {
		t.Fatalf("MDJ_WIRE_FULL: want the six full LOBSTER pairs, found %d", len(out))
	}
	return out
}

// journalctl runs a journalctl verb in-process and returns its stdout; a
// non-zero exit fails the test.
func journalctl(t *testing.T, args ...string) string {
	t.Helper()
	var out, errb bytes.Buffer
	env := &command.Env{Stdin: strings.NewReader(""), Stdout: &out, Stderr: &errb, Ctx: context.Background()}
	if code := command.Run(env, args); code != 0 {
		t.Fatalf("journalctl %s: exit %d\n%s%s", strings.Join(args, " "), code, out.String(), errb.String())
	}
	return out.String()
}

// importSource imports the pair into a new journal with `journalctl
// import` and returns its directory.
func importSource(t *testing.T, p pair) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "source")
	journalctl(t, "import", "--dir", dir, "--format", "lobster", p.msg, "--orderbook", p.book)
	return dir
}

func nyDay(t *testing.T, d lobster.Date) itch.Day {
	t.Helper()
	ny, err := itch.NewYork()
	if err != nil {
		t.Fatal(err)
	}
	return itch.NewDay(d.Year, d.Month, d.Day, ny)
}

// wireRun is one publish → feed run.
type wireRun struct {
	drop, reorder float64 // the publisher's hooks
	seed          uint64
	rerequest     bool
	relayDrop     float64 // a relay between them drops data packets with this probability (its own PCG)
	relaySeed     uint64
	speed         float64
	maxPayload    int // packet size limit (0: the default 1400 bytes)
}

type wireResult struct {
	pub     publish.Stats
	feed    feed.Stats
	gaps    []feed.Gap
	dropped [][2]uint64 // message ranges the relay dropped
}

// runWire publishes the journal src with a Publisher and receives it with
// a Feed into the new journal dst, both in this process on 127.0.0.1,
// until the feed sees the end of the session.
func runWire(t *testing.T, src, dst string, day itch.Day, o wireRun) wireResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	w, err := writer.Open(dst, writer.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := w.Close(); err != nil {
			t.Error(err)
		}
	}()
	var rr netip.AddrPort
	if o.rerequest {
		rr = freeUDP(t)
	}
	f, err := feed.New(w, feed.Options{Listen: lo0(), Rerequest: rr, Day: day, Logf: quietLog(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	to := f.LocalAddr()
	var rl *relay
	if o.relayDrop > 0 {
		rl = newRelay(t, to, o.relayDrop, o.relaySeed)
		to = rl.addr()
		go rl.run()
		defer rl.stop()
	}
	p, err := publish.Open(publish.Options{To: to, RerequestListen: rr, DropRate: o.drop, ReorderRate: o.reorder, Seed: o.seed,
		Speed: o.speed, MaxPayload: o.maxPayload, Linger: time.Hour, HeartbeatInterval: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	fdone := make(chan error, 1)
	go func() { fdone <- f.Run(ctx) }()
	pctx, pcancel := context.WithCancel(ctx)
	defer pcancel()
	pdone := make(chan error, 1)
	var pst publish.Stats
	go func() {
		var err error
		pst, err = p.Run(pctx, publish.JournalSource{Dir: src})
		if errors.Is(err, context.Canceled) {
			err = nil
		}
		pdone <- err
	}()
	if err := <-fdone; err != nil {
		t.Fatalf("feed: %v", err)
	}
	pcancel() // the feed has everything: stop lingering
	if err := <-pdone; err != nil {
		t.Fatalf("publish: %v", err)
	}
	res := wireResult{pub: pst, feed: f.Stats(), gaps: f.Gaps()}
	if rl != nil {
		rl.stop()
		res.dropped = rl.droppedRanges()
	}
	return res
}

// quietLog logs the feed's notes except when the run is long.
func quietLog(t *testing.T) func(string, ...any) {
	return func(format string, args ...any) {
		if !fullRun() {
			t.Logf("feed: "+format, args...)
		}
	}
}

// freeUDP returns a UDP port on 127.0.0.1 that was free a moment ago.
func freeUDP(t *testing.T) netip.AddrPort {
	t.Helper()
	c, err := moldudp64.Listen(lo0(), moldudp64.ConnOptions{})
	if err != nil {
		t.Fatal(err)
	}
	a := c.LocalAddr()
	c.Close()
	return a
}

// relay forwards UDP packets from its own socket to a feed, dropping data
// packets at random with its own generator and recording which messages
// they carried (read from the MoldUDP64 header by hand: sequence number at
// 10, count at 18).
type relay struct {
	t       *testing.T
	in, out *moldudp64.Conn
	to      netip.AddrPort
	rng     *rand.Rand
	p       float64
	mu      sync.Mutex
	dropped [][2]uint64
	quit    chan struct{}
	done    chan struct{}
	once    sync.Once
}

func newRelay(t *testing.T, to netip.AddrPort, p float64, seed uint64) *relay {
	in, err := moldudp64.Listen(lo0(), moldudp64.ConnOptions{RecvBuffer: 32 << 20})
	if err != nil {
		t.Fatal(err)
	}
	out, err := moldudp64.Listen(lo0(), moldudp64.ConnOptions{SendBuffer: 32 << 20})
	if err != nil {
		t.Fatal(err)
	}
	return &relay{t: t, in: in, out: out, to: to, rng: rand.New(rand.NewPCG(seed, 77)), p: p, quit: make(chan struct{}), done: make(chan struct{})}
}

func (r *relay) addr() netip.AddrPort { return r.in.LocalAddr() }

func (r *relay) run() {
	defer close(r.done)
	b := moldudp64.NewBatch(64, 2048)
	for {
		select {
		case <-r.quit:
			return
		default:
		}
		n, err := r.in.Read(b)
		if err != nil {
			return
		}
		if n == 0 {
			r.in.Wait(20 * time.Millisecond)
			continue
		}
		for i := 0; i < n; i++ {
			pkt := b.Packet(i)
			if len(pkt) >= 20 {
				seq := binary.BigEndian.Uint64(pkt[10:])
				count := binary.BigEndian.Uint16(pkt[18:])
				if count != 0 && count != 0xFFFF && r.rng.Float64() < r.p {
					r.mu.Lock()
					r.dropped = append(r.dropped, [2]uint64{seq, seq + uint64(count) - 1})
					r.mu.Unlock()
					continue
				}
			}
			if err := r.out.WriteTo(pkt, r.to); err != nil {
				r.t.Error(err)
				return
			}
		}
	}
}

func (r *relay) stop() {
	r.once.Do(func() {
		close(r.quit)
		<-r.done
		r.in.Close()
		r.out.Close()
	})
}

// droppedRanges merges adjacent dropped ranges.
func (r *relay) droppedRanges() [][2]uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	d := append([][2]uint64(nil), r.dropped...)
	sort.Slice(d, func(i, j int) bool { return d[i][0] < d[j][0] })
	var out [][2]uint64
	for _, x := range d {
		if n := len(out); n > 0 && out[n-1][1]+1 == x[0] {
			out[n-1][1] = x[1]
			continue
		}
		out = append(out, x)
	}
	return out
}

// frame is a journal frame with its payload copied.
type frame struct {
	seq       uint64
	ts        int64
	typ       journal.MsgType
	flags     uint16
	instr     uint32
	payload   []byte
	recvTS    int64
	sourceSeq uint64
}

func (f *frame) jf() journal.Frame {
	return journal.Frame{Seq: f.seq, TS: f.ts, Type: f.typ, Flags: f.flags, Instrument: f.instr, Payload: f.payload}
}

func (f *frame) String() string {
	return fmt.Sprintf("seq %d %s instr %d ts %d payload % x (source_seq %d)", f.seq, f.typ, f.instr, f.ts, f.payload, f.sourceSeq)
}

// readAll reads every frame of a journal but the re-stated ones.
func readAll(t *testing.T, dir string) []frame {
	t.Helper()
	r, err := reader.Open(dir, reader.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var out []frame
	for {
		f, ok, err := r.TryNext()
		if err != nil {
			t.Fatal(err)
		}
		if !ok {
			return out
		}
		if f.Restated() {
			continue
		}
		out = append(out, frame{seq: f.Seq, ts: f.TS, typ: f.Type, flags: f.Flags, instr: f.Instrument,
			payload: bytes.Clone(f.Payload), recvTS: f.RecvTS, sourceSeq: f.SourceSeq})
	}
}

// sameContent compares type, instrument, ts and payload.
func sameContent(a, b *frame) bool {
	return a.typ == b.typ && a.instr == b.instr && a.ts == b.ts && bytes.Equal(a.payload, b.payload)
}

// checkSame requires the received journal to hold exactly the source's
// frames, in the same order (with the same seqs if sameSeq: a writer that
// recovered from a crash re-states definitions, which shifts them), each
// carrying a source trailer whose source_seq never goes back and whose
// receive time lies in [t0, t1].
func checkSame(t *testing.T, src, got []frame, sameSeq bool, t0, t1 int64) {
	t.Helper()
	if len(got) != len(src) {
		t.Errorf("received %d frames, the source has %d", len(got), len(src))
	}
	var prev uint64
	for i := 0; i < min(len(src), len(got)); i++ {
		s, g := &src[i], &got[i]
		if !sameContent(s, g) {
			t.Fatalf("frame %d differs:\n source   %v\n received %v", i+1, s, g)
		}
		if sameSeq && g.seq != s.seq {
			t.Fatalf("frame %d has seq %d in the received journal, %d in the source", i+1, g.seq, s.seq)
		}
		if g.flags != journal.FrameSource {
			t.Fatalf("received frame %v has flags %#x, want SOURCE only", g, g.flags)
		}
		if g.sourceSeq < prev || g.sourceSeq == 0 {
			t.Fatalf("received frame %v: source_seq %d after %d", g, g.sourceSeq, prev)
		}
		prev = g.sourceSeq
		if g.recvTS < t0 || g.recvTS > t1 {
			t.Fatalf("received frame %v: recv_ts %d outside the run [%d, %d]", g, g.recvTS, t0, t1)
		}
	}
}

// checkBooks rebuilds both journals' books frame by frame in lockstep and
// compares the changed instrument's whole book (every level of both sides,
// last trade) after every frame that changes a book.
func checkBooks(t *testing.T, src, got []frame) int {
	t.Helper()
	a, b := book.NewBooks(0), book.NewBooks(0)
	la, lb := make([]book.Level, 4096), make([]book.Level, 4096)
	compared := 0
	for i := 0; i < min(len(src), len(got)); i++ {
		fa, fb := src[i].jf(), got[i].jf()
		if err := a.ApplyFrame(&fa); err != nil {
			t.Fatalf("source frame %v: %v", &src[i], err)
		}
		if err := b.ApplyFrame(&fb); err != nil {
			t.Fatalf("received frame %v: %v", &got[i], err)
		}
		if !book.Affects(fa.Type) {
			continue
		}
		ba, _ := a.Get(fa.Instrument)
		bb, ok := b.Get(fb.Instrument)
		if !ok {
			t.Fatalf("after frame %d: no received book for instrument %d", i+1, fb.Instrument)
		}
		for _, s := range [2]journal.Side{journal.SideBid, journal.SideAsk} {
			na, nb := ba.Top(s, la), bb.Top(s, lb)
			if na != nb || na == len(la) {
				t.Fatalf("after frame %d: %s side has %d levels in the source, %d received", i+1, s, na, nb)
			}
			for k := 0; k < na; k++ {
				if la[k] != lb[k] {
					t.Fatalf("after frame %d: %s level %d is %+v in the source, %+v received", i+1, s, k, la[k], lb[k])
				}
			}
		}
		pa, qa, na := ba.LastTrade()
		pb, qb, nb := bb.LastTrade()
		if pa != pb || qa != qb || na != nb {
			t.Fatalf("after frame %d: last trade %d@%d (#%d) in the source, %d@%d (#%d) received", i+1, qa, pa, na, qb, pb, nb)
		}
		compared++
	}
	return compared
}

// checkOrderbookFile rebuilds the received journal's book and compares it
// with every row of the LOBSTER orderbook file: a row is the top L levels
// after its message, and a message's frames run from its L3 frame (or its
// trade, for a cross, or its status) to the next message's.
func checkOrderbookFile(t *testing.T, got []frame, p pair) (rows, matched int) {
	t.Helper()
	fh, err := os.Open(p.book)
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	or, err := lobster.NewOrderbookReader(fh, p.levels)
	if err != nil {
		t.Fatal(err)
	}
	b := book.New(0)
	top := make([]book.Level, p.levels)
	var row lobster.Row
	var first []int
	compare := func() {
		if err := or.Next(&row); err != nil {
			t.Fatalf("orderbook row %d: %v", rows+1, err)
		}
		rows++
		ok := true
		for _, s := range [2]journal.Side{journal.SideBid, journal.SideAsk} {
			want := row.Side(s == journal.SideBid)
			n := b.Top(s, top)
			for i, w := range want {
				if w.Qty == 0 {
					ok = ok && i >= n
				} else {
					ok = ok && i < n && top[i] == w
				}
			}
		}
		if ok {
			matched++
		} else if len(first) < 5 {
			first = append(first, rows)
		}
	}
	pending := false
	prevExec := false
	for i := range got {
		f := got[i].jf()
		// A message starts with an L3 frame, a trading status, or a trade
		// that does not follow its execution (a cross).
		starts := f.Type.IsOrder() || f.Type == journal.TypeTradingStatus || (f.Type == journal.TypeTrade && !prevExec)
		prevExec = f.Type == journal.TypeOrderExecute
		if starts {
			if pending {
				compare()
			}
			pending = true
		}
		if err := b.ApplyFrame(&f); err != nil {
			t.Fatal(err)
		}
	}
	if pending {
		compare()
	}
	if err := or.Next(&row); !errors.Is(err, io.EOF) {
		t.Errorf("the orderbook has rows after the last message (%v)", err)
	}
	if matched != rows {
		t.Errorf("%d of %d orderbook rows differ from the received journal's book; first: %v", rows-matched, rows, first)
	}
	return rows, matched
}
