package booksnap_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/mdjournal/mdjournal/book"
	"github.com/mdjournal/mdjournal/booksnap"
	"github.com/mdjournal/mdjournal/internal/testutil"
	"github.com/mdjournal/mdjournal/journal"
	"github.com/mdjournal/mdjournal/lobster"
	"github.com/mdjournal/mdjournal/reader"
	"github.com/mdjournal/mdjournal/snapshot"
	"github.com/mdjournal/mdjournal/wait"
	"github.com/mdjournal/mdjournal/writer"
)

// The late-joiner test runs three parties against one journal:
//
//   - a writer process imports two LOBSTER excerpts (AMZN L5 as instrument 2
//     at full speed, then GOOG L10 as instrument 3, throttled) with the
//     snapshot maintained, and ends with a heartbeat;
//   - a joiner process starts while GOOG is being written, loads both
//     instruments' slots (seq S) and tails the journal from S+1;
//   - this process replays the journal from the start, live.
//
// At the end the joiner's books, the replayed books and the snapshot file
// must agree level for level. The writer holds the second half of GOOG back
// until the joiner has loaded its slots, so the join really is mid-stream.
const (
	joinDepth  = 64 // deeper than any book of these excerpts: the seeded book is the whole book
	amznID     = 2
	googID     = 3
	amznMsg    = "AMZN_2012-06-21_34200000_57600000_message_5.csv"
	amznBook   = "AMZN_2012-06-21_34200000_57600000_orderbook_5.csv"
	googMsg    = "GOOG_2012-06-21_34200000_57600000_message_10.csv"
	googBook   = "GOOG_2012-06-21_34200000_57600000_orderbook_10.csv"
	gateFrames = 1500 // GOOG frames written before the writer waits for the joiner
)

// joinedBook is what the joiner reports for one instrument.
type joinedBook struct {
	LoadedSeq  uint64
	Complete   bool
	Seq        uint64
	Bids, Asks []book.Level
	TradePx    int64
	TradeQty   int64
}

func TestLateJoinerAcrossProcesses(t *testing.T) {
	switch testutil.Role() {
	case "writer":
		joinWriter(t)
		return
	case "joiner":
		joinJoiner(t)
		return
	}
	data := testutil.SharedData(t, "lobster/head2000")
	tmp := t.TempDir()
	dir, snap := filepath.Join(tmp, "j"), filepath.Join(tmp, "book.snap")
	gate, out := filepath.Join(tmp, "joined"), filepath.Join(tmp, "joiner.json")
	env := []string{"MDJ_DIR=" + dir, "MDJ_SNAP=" + snap, "MDJ_DATA=" + data, "MDJ_GATE=" + gate, "MDJ_OUT=" + out}

	wcmd := testutil.Command(t, "TestLateJoinerAcrossProcesses", "writer", env...)
	if err := wcmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer wcmd.Process.Kill()

	// Full replay from the start, live, beside the writer.
	type replayed struct {
		books *book.Books
		end   uint64
		err   error
	}
	done := make(chan replayed, 1)
	go func() {
		bs, end, err := replayLive(dir)
		done <- replayed{bs, end, err}
	}()

	// Start the joiner once GOOG's slot exists: the writer is then in GOOG's
	// first half and cannot pass gateFrames until the joiner has loaded.
	deadline := time.Now().Add(60 * time.Second)
	for {
		if s, err := booksnap.Load(snap, googID); err == nil && s.Seq > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("GOOG's snapshot slot never appeared")
		}
		time.Sleep(time.Millisecond)
	}
	jcmd := testutil.Command(t, "TestLateJoinerAcrossProcesses", "joiner", env...)
	if err := jcmd.Run(); err != nil {
		t.Fatalf("joiner: %v", err)
	}
	if err := wcmd.Wait(); err != nil {
		t.Fatalf("writer: %v", err)
	}
	var rep replayed
	select {
	case rep = <-done:
	case <-time.After(60 * time.Second):
		t.Fatal("replay did not finish")
	}
	if rep.err != nil {
		t.Fatal(rep.err)
	}

	raw, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	var joined map[uint32]joinedBook
	if err := json.Unmarshal(raw, &joined); err != nil {
		t.Fatal(err)
	}
	sr, err := snapshot.Open(snap)
	if err != nil {
		t.Fatal(err)
	}
	defer sr.Close()
	if la := sr.LastApplied(); la != rep.end {
		t.Errorf("snapshot last-applied %d, journal ends at %d", la, rep.end)
	}
	for _, id := range []uint32{amznID, googID} {
		want, ok := rep.books.Get(id)
		if !ok {
			t.Fatalf("replay has no book for %d", id)
		}
		got := joined[id]
		t.Logf("instrument %d: joined at seq %d (complete=%v), last seq %d, %d bid / %d ask levels",
			id, got.LoadedSeq, got.Complete, want.Seq(), want.Depth(journal.SideBid), want.Depth(journal.SideAsk))
		if want.Depth(journal.SideBid) >= joinDepth || want.Depth(journal.SideAsk) >= joinDepth {
			t.Fatalf("instrument %d: book deeper than the snapshot (%d): the test cannot compare whole books", id, joinDepth)
		}
		if !got.Complete {
			t.Errorf("instrument %d: the slot the joiner loaded was not complete", id)
		}
		if id == googID && (got.LoadedSeq == 0 || got.LoadedSeq >= want.Seq()) {
			t.Errorf("GOOG joined at seq %d, not mid-stream (its last frame is %d)", got.LoadedSeq, want.Seq())
		}
		if got.Seq != want.Seq() {
			t.Errorf("instrument %d: joiner at seq %d, replay at %d", id, got.Seq, want.Seq())
		}
		if err := sameLevels(got.Bids, got.Asks, want); err != nil {
			t.Errorf("instrument %d: joiner vs replay: %v", id, err)
		}
		px, qty, _ := want.LastTrade()
		if got.TradePx != px || got.TradeQty != qty {
			t.Errorf("instrument %d: joiner last trade %d@%d, replay %d@%d", id, got.TradeQty, got.TradePx, qty, px)
		}
		// The snapshot file's final state: the same book, same seq.
		var sb snapshot.Book
		if err := sr.Read(id, &sb); err != nil {
			t.Fatal(err)
		}
		if sb.Seq != want.Seq() || sb.TS != want.TS() {
			t.Errorf("instrument %d: slot at seq %d ts %d, replay at %d ts %d", id, sb.Seq, sb.TS, want.Seq(), want.TS())
		}
		if err := sameLevels(levels(sb.Bids), levels(sb.Asks), want); err != nil {
			t.Errorf("instrument %d: snapshot vs replay: %v", id, err)
		}
		if sb.LastTrade.Price != px || sb.LastTrade.Qty != qty || sb.LastTrade.TS == 0 {
			t.Errorf("instrument %d: slot last trade %+v, replay %d@%d", id, sb.LastTrade, qty, px)
		}
		if d, _ := want.Def(); sb.SymbolString() != d.SymbolString() || sb.PriceScale != 4 {
			t.Errorf("instrument %d: slot symbol %q scale %d, want %q 4", id, sb.SymbolString(), sb.PriceScale, d.SymbolString())
		}
	}
}

func levels(s []snapshot.Level) []book.Level {
	out := make([]book.Level, len(s))
	for i, l := range s {
		out[i] = book.Level(l)
	}
	return out
}

// sameLevels compares bids and asks (best first) with every level of b.
func sameLevels(bids, asks []book.Level, b *book.Book) error {
	for _, side := range []struct {
		s  journal.Side
		lv []book.Level
	}{{journal.SideBid, bids}, {journal.SideAsk, asks}} {
		if n := b.Depth(side.s); n != len(side.lv) {
			return fmt.Errorf("%s: %d levels, want %d", side.s, len(side.lv), n)
		}
		for i, l := range side.lv {
			if w, _ := b.At(side.s, i); w != l {
				return fmt.Errorf("%s level %d: %+v, want %+v", side.s, i, l, w)
			}
		}
	}
	return nil
}

// replayLive reads the journal from seq 1 as it is written, applying every
// book frame, until the writer's closing heartbeat.
func replayLive(dir string) (*book.Books, uint64, error) {
	deadline := time.Now().Add(60 * time.Second)
	var r *reader.Reader
	for {
		var err error
		r, err = reader.Open(dir, reader.Options{Wait: wait.Backoff})
		if err == nil {
			break
		}
		if !errors.Is(err, journal.ErrNotFound) && !errors.Is(err, os.ErrNotExist) || time.Now().After(deadline) {
			return nil, 0, err
		}
		time.Sleep(time.Millisecond)
	}
	defer r.Close()
	bs := book.NewBooks(0)
	for {
		f, err := r.Next()
		if err != nil {
			return nil, 0, err
		}
		if f.Type == journal.TypeHeartbeat {
			return bs, f.Seq, nil
		}
		if book.Affects(f.Type) {
			if err := bs.ApplyFrame(&f); err != nil {
				return nil, 0, fmt.Errorf("seq %d: %w", f.Seq, err)
			}
		}
	}
}

// slowSink paces the import and, after gateFrames frames, waits for the
// joiner's gate file.
type slowSink struct {
	w    *writer.Writer
	n    int
	gate string
}

func (s *slowSink) Append(typ journal.MsgType, instr uint32, ts int64, p []byte) (uint64, error) {
	seq, err := s.w.Append(typ, instr, ts, p)
	s.n++
	if s.n%4 == 0 {
		time.Sleep(200 * time.Microsecond)
	}
	if s.n == gateFrames {
		deadline := time.Now().Add(60 * time.Second)
		for {
			if _, err := os.Stat(s.gate); err == nil {
				break
			}
			if time.Now().After(deadline) {
				return 0, errors.New("joiner never loaded the snapshot")
			}
			time.Sleep(time.Millisecond)
		}
	}
	return seq, err
}

func joinWriter(t *testing.T) {
	dir, snap, data := os.Getenv("MDJ_DIR"), os.Getenv("MDJ_SNAP"), os.Getenv("MDJ_DATA")
	w, m, err := booksnap.OpenWriter(dir, writer.Options{SegmentSize: 256 << 10},
		booksnap.Config{Path: snap, Depth: joinDepth, Capacity: 8})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := lobster.ImportFiles(filepath.Join(data, amznMsg), filepath.Join(data, amznBook), w, lobster.Options{Instrument: amznID}); err != nil {
		t.Fatal(err)
	}
	sink := &slowSink{w: w, gate: os.Getenv("MDJ_GATE")}
	st, err := lobster.ImportFiles(filepath.Join(data, googMsg), filepath.Join(data, googBook), sink, lobster.Options{Instrument: googID})
	if err != nil {
		t.Fatal(err)
	}
	if st.Frames <= gateFrames {
		t.Fatalf("GOOG import is %d frames, the gate at %d is never reached", st.Frames, gateFrames)
	}
	if _, err := w.Append(journal.TypeHeartbeat, 0, 0, nil); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if s := m.Stats(); s.Rejected != 0 || s.OutOfRange != 0 || s.Early != 0 {
		t.Fatalf("maintainer stats %+v", s)
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
}

func joinJoiner(t *testing.T) {
	dir, snap := os.Getenv("MDJ_DIR"), os.Getenv("MDJ_SNAP")
	var js []*booksnap.Joiner
	for _, id := range []uint32{googID, amznID} {
		j, err := booksnap.Join(snap, dir, id, reader.Options{Wait: wait.Backoff})
		if err != nil {
			t.Fatal(err)
		}
		defer j.Close()
		js = append(js, j)
	}
	loaded := map[uint32]uint64{}
	complete := map[uint32]bool{}
	for _, j := range js {
		loaded[j.Instrument], complete[j.Instrument] = j.Seq, j.Complete
	}
	if err := os.WriteFile(os.Getenv("MDJ_GATE"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	res := map[uint32]joinedBook{}
	for _, j := range js {
		for {
			f, err := j.Next()
			if err != nil {
				t.Fatal(err)
			}
			if f.Type == journal.TypeHeartbeat {
				break
			}
		}
		jb := joinedBook{LoadedSeq: loaded[j.Instrument], Complete: complete[j.Instrument], Seq: j.Seq}
		for _, s := range []journal.Side{journal.SideBid, journal.SideAsk} {
			lv := make([]book.Level, j.Book.Depth(s))
			j.Book.Top(s, lv)
			if s == journal.SideBid {
				jb.Bids = lv
			} else {
				jb.Asks = lv
			}
		}
		jb.TradePx, jb.TradeQty, _ = j.Book.LastTrade()
		res[j.Instrument] = jb
	}
	b, _ := json.Marshal(res)
	if err := os.WriteFile(os.Getenv("MDJ_OUT"), b, 0o644); err != nil {
		t.Fatal(err)
	}
}
