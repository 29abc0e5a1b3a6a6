package lobster

import (
	"errors"
	"io"
	"os"
	"testing"
	"time"

	"github.com/mdjournal/mdjournal/book"
	"github.com/mdjournal/mdjournal/journal"
)

// replay is the outcome of rebuilding a book from imported frames alone and
// comparing it with the publisher's orderbook rows.
type replay struct {
	rows, matched   int
	firstMismatch   []int // row numbers (1-based), first few
	entering        int   // BookLevel frames after the opening book
	misplaced       int   // of those, ones not right after a message that emptied a level on that side
	l3              int   // L3 frames (one per message of types 1-5)
	clamped, unseen uint64
}

// rebuild feeds frames to book.Book via ApplyFrame and compares the top L of
// both sides with each orderbook row once all frames of that row's message
// have been applied. It uses its own reader of the orderbook file, and its
// own notion of "emptied a level", independent of the importer's.
func rebuild(t testing.TB, frames []journal.Frame, bookPath string, L int) replay {
	f, err := os.Open(bookPath)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rows, err := NewOrderbookReader(f, L)
	if err != nil {
		t.Fatal(err)
	}
	b := book.New(0)
	var r replay
	top := make([]book.Level, L)
	var row Row
	compare := func() {
		if err := rows.Next(&row); err != nil {
			t.Fatalf("orderbook row %d: %v", r.rows+1, err)
		}
		r.rows++
		ok := true
		for _, s := range [2]journal.Side{journal.SideBid, journal.SideAsk} {
			want := row.Side(s == journal.SideBid)
			n := b.Top(s, top)
			for i, w := range want {
				if w.Qty == 0 { // LOBSTER's filler: no level here
					ok = ok && i >= n
				} else {
					ok = ok && i < n && top[i] == w
				}
			}
		}
		if ok {
			r.matched++
		} else if len(r.firstMismatch) < 10 {
			r.firstMismatch = append(r.firstMismatch, r.rows)
		}
	}
	pending := false         // a message's frames are being applied
	seeded := false          // past the opening book
	var emptied journal.Side // side of a level the current message emptied, or none
	for i := range frames {
		fr := &frames[i]
		if fr.Type.IsOrder() {
			if pending {
				compare()
			}
			pending, seeded, emptied = true, true, journal.SideNone
			var o journal.Order
			if err := o.Decode(fr.Payload); err != nil {
				t.Fatal(err)
			}
			before := b.QtyAt(o.Side, o.Price)
			if err := b.ApplyFrame(fr); err != nil {
				t.Fatalf("frame %d: %v", fr.Seq, err)
			}
			r.l3++
			if before > 0 && b.QtyAt(o.Side, o.Price) == 0 {
				emptied = o.Side
			}
			continue
		}
		if fr.Type == journal.TypeBookLevel && seeded {
			r.entering++
			var l journal.BookLevel
			if err := l.Decode(fr.Payload); err != nil {
				t.Fatal(err)
			}
			if emptied == journal.SideNone || l.Side != emptied {
				r.misplaced++
			}
		}
		if err := b.ApplyFrame(fr); err != nil {
			t.Fatalf("frame %d: %v", fr.Seq, err)
		}
	}
	if pending {
		compare()
	}
	if err := rows.Next(&row); !errors.Is(err, io.EOF) {
		t.Errorf("orderbook has rows after the last message's frames (%v)", err)
	}
	if err := b.Check(); err != nil {
		t.Error(err)
	}
	st := b.Stats()
	r.clamped, r.unseen = st.Clamped, st.Missing
	return r
}

// TestValidateSamples is the acceptance test: every sample pair, imported with
// its orderbook and rebuilt from the frames alone, matches the publisher's
// top-L book on every row.
func TestValidateSamples(t *testing.T) {
	dir := dataDir(t)
	ps := pairs(t, dir)
	if len(ps) == 0 {
		t.Skipf("no LOBSTER pairs in %s", dir)
	}
	for _, p := range ps {
		t.Run(p.name, func(t *testing.T) {
			n, _ := ParseFileName(p.msg)
			var sink memSink
			start := time.Now()
			st, err := ImportFiles(p.msg, p.book, &sink, Options{Instrument: 1})
			el := time.Since(start)
			if err != nil {
				t.Fatal(err)
			}
			frames := sink.frames(t)
			open := time.Date(n.Date.Year, n.Date.Month, n.Date.Day, 9, 30, 0, 0, mustNY(t)).UnixNano()
			for i := range frames {
				if ts := frames[i].TS; ts < open || (i > 0 && ts < frames[i-1].TS) {
					t.Fatalf("frame %d: ts %d before 09:30 ET (%d) or before the previous frame", i+1, ts, open)
				}
			}
			r := rebuild(t, frames, p.book, n.Levels)
			t.Logf("%-8s rows %6d  match %6d (%.4f%%)  entering-level frames %5d (stale removals %d) after %d emptying messages  import %v",
				p.name, r.rows, r.matched, 100*float64(r.matched)/float64(r.rows), r.entering, st.StaleLevels, st.Emptied, el.Round(time.Millisecond))
			if r.matched != r.rows {
				t.Errorf("%d of %d rows differ; first: %v", r.rows-r.matched, r.rows, r.firstMismatch)
			}
			if r.rows != st.Messages || r.l3 != st.Messages {
				t.Errorf("rows %d, L3 frames %d, messages %d: want all equal", r.rows, r.l3, st.Messages)
			}
			if r.misplaced != 0 {
				t.Errorf("%d BookLevel frames not right after a message that emptied a level on their side", r.misplaced)
			}
			if r.entering != st.EnteringLevels {
				t.Errorf("rebuild saw %d entering-level frames, importer reports %d", r.entering, st.EnteringLevels)
			}
			if r.clamped != 0 || r.unseen != 0 {
				t.Errorf("rebuilt book clamped %d and missed %d levels: the frames do not add up", r.clamped, r.unseen)
			}
			if st.Inconsistent != 0 {
				t.Errorf("importer found %d inconsistent rows", st.Inconsistent)
			}
			if len(frames) != st.Frames {
				t.Errorf("sink holds %d frames, importer reports %d", len(frames), st.Frames)
			}
		})
	}
}

func mustNY(t testing.TB) *time.Location {
	l, err := time.LoadLocation("America/New_York")
	if err != nil {
		t.Fatal(err)
	}
	return l
}
