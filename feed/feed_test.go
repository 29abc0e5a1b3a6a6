//go:build linux

package feed

import (
	"context"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mdjournal/mdjournal/itch"
	"github.com/mdjournal/mdjournal/journal"
	"github.com/mdjournal/mdjournal/moldudp64"
	"github.com/mdjournal/mdjournal/reader"
	"github.com/mdjournal/mdjournal/writer"
)

var (
	sess = moldudp64.Session{'T', 'E', 'S', 'T', ' ', ' ', ' ', ' ', ' ', ' '}
	lo   = netip.MustParseAddrPort("127.0.0.1:0")
)

// packet builds a MoldUDP64 packet of session sess whose first message is
// seq.
func packet(seq uint64, msgs ...[]byte) []byte {
	var b moldudp64.Builder
	b.Reset(sess, seq, 65000)
	for _, m := range msgs {
		if err := b.Add(m); err != nil {
			panic(err)
		}
	}
	return append([]byte(nil), b.Bytes()...)
}

func openFeed(t *testing.T, dir string, o Options) (*writer.Writer, *Feed) {
	t.Helper()
	w, err := writer.Open(dir, writer.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if !o.Listen.IsValid() {
		o.Listen = lo
	}
	o.Day = testDay
	f, err := New(w, o)
	if err != nil {
		w.Close()
		t.Fatal(err)
	}
	return w, f
}

// journalText lists a journal's frames (re-stated ones left out) as
// show does, each with its source_seq ("s3"), gaps as "gap first+count".
func journalText(t *testing.T, dir string) string {
	t.Helper()
	r, err := reader.Open(dir, reader.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var out []string
	for {
		f, ok, err := r.TryNext()
		if err != nil {
			t.Fatal(err)
		}
		if !ok {
			return strings.Join(out, "\n")
		}
		if f.Restated() {
			continue
		}
		if f.Flags&journal.FrameSource == 0 {
			t.Fatalf("frame %d has no source trailer", f.Seq)
		}
		var s string
		if f.Type == journal.TypeGap {
			var g journal.Gap
			g.Decode(f.Payload)
			s = "gap " + itoa(g.First) + "+" + itoa(g.Count) + " " + g.SourceString()
		} else {
			s = show([]Frame{{Type: f.Type, Instrument: f.Instrument, TS: f.TS, Payload: f.Payload}})
		}
		out = append(out, "s"+itoa(f.SourceSeq)+" "+s)
	}
}

func itoa(v uint64) string { return strconv.FormatUint(v, 10) }

var (
	msgDef  = enc(&itch.StockDirectory{Header: hdr(1, 10), Stock: sym("AAPL")})
	msgAdd  = enc(&itch.AddOrder{Header: hdr(1, 11), OrderRef: 5, Side: 'S', Shares: 300, Price: 100})
	msgExec = enc(&itch.OrderExecuted{Header: hdr(1, 12), OrderRef: 5, Shares: 100, Match: 1})
	msgDel  = enc(&itch.OrderDelete{Header: hdr(1, 13), OrderRef: 5})
)

// TestResumeCutMessage: a journal whose last message was cut by a crash
// between its two frames (an execution written, its trade not) resumes at
// that message, skips the frame it has, writes the other, and goes on.
func TestResumeCutMessage(t *testing.T) {
	dir := t.TempDir()
	// What a killed feed left: messages 1 and 2 whole, half of message 3.
	d := NewDecoder(DecoderOptions{Day: testDay})
	w, err := writer.Open(dir, writer.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for i, m := range [][]byte{msgDef, msgAdd, msgExec} {
		fs, err := d.Decode(m)
		if err != nil {
			t.Fatal(err)
		}
		if i == 2 {
			fs = fs[:1]
		}
		for _, f := range fs {
			if _, err := w.StageSource(f.Type, f.Instrument, f.TS, f.Payload, 1, uint64(i+1)); err != nil {
				t.Fatal(err)
			}
		}
	}
	w.Close()

	w, f := openFeed(t, dir, Options{})
	defer w.Close()
	defer f.Close()
	if r := f.Resume(); r.Next != 3 || r.Skip != 1 || r.Orders != 1 {
		t.Fatalf("resume %+v, want next 3, skip 1, the one order of message 2", r)
	}
	if err := f.Push(packet(3, msgExec, msgDel), 0); err != nil {
		t.Fatal(err)
	}
	if err := f.Flush(); err != nil {
		t.Fatal(err)
	}
	want := strings.Join([]string{
		"s1 instrument_def i1 t10 AAPL tick 100 scale 4",
		"s2 order_add i1 t11 id5 ask 300@100 f0",
		"s3 order_execute i1 t12 id5 ask 100@100 f0",
		"s3 trade i1 t12 100@100 #1 aggr bid f0",
		"s4 order_delete i1 t13 id5 ask 200@100 f0",
	}, "\n")
	if got := journalText(t, dir); got != want {
		t.Fatalf("journal:\n%s\nwant:\n%s", got, want)
	}
}

// TestResumeAfterGap: a journal ending with a gap frame resumes after the
// gap (its source_seq is the last lost message).
func TestResumeAfterGap(t *testing.T) {
	dir := t.TempDir()
	w, err := writer.Open(dir, writer.Options{})
	if err != nil {
		t.Fatal(err)
	}
	g := journal.Gap{First: 4, Count: 3}
	if _, err := w.AppendSource(journal.TypeGap, 0, 1, g.Encode(nil), 1, 6); err != nil {
		t.Fatal(err)
	}
	w.Close()
	w, f := openFeed(t, dir, Options{})
	defer w.Close()
	defer f.Close()
	if r := f.Resume(); r.Next != 7 || r.Skip != 0 {
		t.Fatalf("resume %+v, want next 7", r)
	}
}

// TestGapFrames: without re-requests, a hole is written as one gap frame
// (exact range, the session, source_seq = its last message) after the
// frames before it and before the frames after it, once the gap timeout
// passes; packets of another session are ignored and counted.
func TestGapFrames(t *testing.T) {
	dir := t.TempDir()
	var notes []string
	w, f := openFeed(t, dir, Options{GapTimeout: 20 * time.Millisecond, Logf: func(format string, a ...any) {
		notes = append(notes, format)
	}})
	defer w.Close()
	defer f.Close()
	add := func(ref uint64) []byte {
		return enc(&itch.AddOrder{Header: hdr(1, ref), OrderRef: ref, Side: 'B', Shares: 1, Price: 7})
	}
	for _, p := range [][]byte{
		packet(1, add(1), add(2)),
		packet(6, add(6)),   // 3..5 missing
		packet(3, add(3)),   // 3 arrives late: the hole is 4..5
		packet(9, add(9)),   // 7..8 missing
		packet(8, add(8)),   // 8 arrives: the hole is 7
		packet(12, add(12)), // 10..11 missing
		moldudp64.AppendEndOfSession(nil, sess, 13),
	} {
		if err := f.Push(p, 0); err != nil {
			t.Fatal(err)
		}
	}
	other := packet(13, add(13))
	copy(other, "OTHER     ")
	if err := f.Push(other, 0); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for !f.Ended() {
		if time.Now().After(deadline) {
			t.Fatalf("no end of session after 10 s: %+v", f.Stats())
		}
		if _, err := f.Poll(50 * time.Millisecond); err != nil {
			t.Fatal(err)
		}
	}
	want := strings.Join([]string{
		"s1 order_add i1 t1 id1 bid 1@7 f0",
		"s2 order_add i1 t2 id2 bid 1@7 f0",
		"s3 order_add i1 t3 id3 bid 1@7 f0",
		"s5 gap 4+2 TEST",
		"s6 order_add i1 t6 id6 bid 1@7 f0",
		"s7 gap 7+1 TEST",
		"s8 order_add i1 t8 id8 bid 1@7 f0",
		"s9 order_add i1 t9 id9 bid 1@7 f0",
		"s11 gap 10+2 TEST",
		"s12 order_add i1 t12 id12 bid 1@7 f0",
	}, "\n")
	if got := journalText(t, dir); got != want {
		t.Fatalf("journal:\n%s\nwant:\n%s", got, want)
	}
	st := f.Stats()
	if st.Gaps != 3 || st.Lost != 5 || st.Sessions != 1 || len(f.Gaps()) != 3 || f.Gaps()[1] != (Gap{First: 7, Last: 7, Seq: 6}) {
		t.Fatalf("stats %+v gaps %+v", st, f.Gaps())
	}
	gapNotes := 0
	for _, n := range notes {
		if strings.HasPrefix(n, "GAP:") {
			gapNotes++
		}
	}
	if gapNotes != 3 {
		t.Fatalf("%d gap log lines, want 3: %q", gapNotes, notes)
	}
}

// TestFeedSockets runs a Feed on 127.0.0.1 against a Sender, a MemStore
// and a Server that drops 20 % of the packets: every message arrives once,
// in order, the lost ones by re-request, and Run returns at the end of the
// session.
func TestFeedSockets(t *testing.T) {
	srvConn, err := moldudp64.Listen(lo, moldudp64.ConnOptions{})
	if err != nil {
		t.Fatal(err)
	}
	store := moldudp64.NewMemStore(1)
	srv, err := moldudp64.NewServer(srvConn, store, moldudp64.ServerOptions{Session: sess})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	go srv.Run(ctx)
	defer srvConn.Close()

	dir := t.TempDir()
	w, f := openFeed(t, dir, Options{Rerequest: srvConn.LocalAddr()})
	defer w.Close()
	defer f.Close()
	out, err := moldudp64.Listen(lo, moldudp64.ConnOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	snd, err := moldudp64.NewSender(out, f.LocalAddr(), moldudp64.SenderOptions{Session: sess, Store: store, DropRate: 0.2, Seed: 4, MaxPayload: 200})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- f.Run(ctx) }()
	const n = 2000
	for i := uint64(1); i <= n; i++ {
		if _, err := snd.Add(enc(&itch.AddOrder{Header: hdr(1, i), OrderRef: i, Side: 'B', Shares: 1, Price: 7})); err != nil {
			t.Fatal(err)
		}
	}
	if err := snd.EndSession(); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	st := f.Stats()
	if st.Frames != n || st.Gaps != 0 || st.Sequencer.Recovered == 0 || snd.Counters().Dropped == 0 || !st.EndOfSession {
		t.Fatalf("stats %+v, sender %+v", st, snd.Counters())
	}
	r, err := reader.Open(dir, reader.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	for i := uint64(1); i <= n; i++ {
		fr, ok, err := r.TryNext()
		if err != nil || !ok {
			t.Fatalf("frame %d: %v %v", i, ok, err)
		}
		var o journal.Order
		o.Decode(fr.Payload)
		if fr.SourceSeq != i || o.OrderID != i || fr.TS != midnight+int64(i) || fr.RecvTS <= 0 {
			t.Fatalf("frame %d: source_seq %d order %d ts %d recv %d", i, fr.SourceSeq, o.OrderID, fr.TS-midnight, fr.RecvTS)
		}
	}
}
