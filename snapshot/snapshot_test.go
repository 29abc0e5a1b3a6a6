package snapshot

import (
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/mdjournal/mdjournal/journal"
)

func create(t testing.TB, depth, capacity int) (*Writer, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "book.snap")
	w, err := Create(path, Options{Depth: depth, Capacity: capacity, JournalID: 0xfeed})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Close() })
	return w, path
}

func open(t testing.TB, path string) *Reader {
	t.Helper()
	r, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

func sym(s string) (b [journal.SymbolLen]byte) {
	copy(b[:], s)
	return b
}

func TestLayout(t *testing.T) {
	for _, d := range []int{1, 2, 10, 20, MaxDepth} {
		if s := SlotSize(d); s%64 != 0 || s < 96+32*d || s >= 96+32*d+64 {
			t.Errorf("SlotSize(%d) = %d", d, s)
		}
	}
	if SlotSize(10) != 448 {
		t.Errorf("SlotSize(10) = %d, want 448", SlotSize(10))
	}
	if FileSize(10, 1) != 8192 || FileSize(10, 9) != 8192 || FileSize(10, 10) != 12288 {
		t.Errorf("FileSize: %d %d %d", FileSize(10, 1), FileSize(10, 9), FileSize(10, 10))
	}
}

func TestPublishRead(t *testing.T) {
	w, path := create(t, 4, 8)
	r := open(t, path)
	if r.Depth() != 4 || r.Capacity() != 8 || r.JournalID() != 0xfeed || r.Created() == 0 {
		t.Fatalf("header: depth %d cap %d id %#x created %d", r.Depth(), r.Capacity(), r.JournalID(), r.Created())
	}
	if r.WriterPID() != uint32(os.Getpid()) {
		t.Errorf("writer pid %d", r.WriterPID())
	}
	var bk Book
	if err := r.Read(5, &bk); err != nil || bk.Seq != 0 || len(bk.Bids) != 0 || len(bk.Asks) != 0 {
		t.Fatalf("empty slot: %v %+v", err, bk)
	}
	if err := w.SetInstrument(5, sym("ESZ5"), 2); err != nil {
		t.Fatal(err)
	}
	bids := []Level{{10000, 5}, {9975, 7}, {9950, 1}, {9925, 2}, {9900, 9}} // 5 > depth: dropped
	asks := []Level{{10025, 3}}
	if err := w.Publish(5, 42, 1700, bids, asks, Trade{10000, 2, 1699}); err != nil {
		t.Fatal(err)
	}
	if err := r.Read(5, &bk); err != nil {
		t.Fatal(err)
	}
	if bk.Seq != 42 || bk.TS != 1700 || bk.Instrument != 5 || bk.PriceScale != 2 || bk.SymbolString() != "ESZ5" ||
		len(bk.Bids) != 4 || len(bk.Asks) != 1 || bk.Bids[3] != bids[3] || bk.Asks[0] != asks[0] ||
		bk.LastTrade != (Trade{10000, 2, 1699}) {
		t.Fatalf("read %+v", bk)
	}
	if r.LastApplied() != 42 {
		t.Errorf("last applied %d", r.LastApplied())
	}
	// A shorter book zeroes the levels the longer one used.
	if err := w.Publish(5, 43, 1701, bids[:1], nil, Trade{}); err != nil {
		t.Fatal(err)
	}
	if err := r.Read(5, &bk); err != nil || bk.Seq != 43 || len(bk.Bids) != 1 || len(bk.Asks) != 0 {
		t.Fatalf("read %v %+v", err, bk)
	}
	v, _ := r.View(5)
	if v.Bid(1) != (Level{}) || v.Ask(0) != (Level{}) {
		t.Errorf("stale levels left: %+v %+v", v.Bid(1), v.Ask(0))
	}
	// Advance moves the header only; it never goes backwards.
	w.Advance(50)
	w.Advance(49)
	if r.LastApplied() != 50 {
		t.Errorf("last applied %d after Advance", r.LastApplied())
	}
	if err := w.Publish(8, 1, 0, nil, nil, Trade{}); !errors.Is(err, ErrInstrument) {
		t.Errorf("publish id 8: %v", err)
	}
	if err := r.Read(8, &bk); !errors.Is(err, ErrInstrument) {
		t.Errorf("read id 8: %v", err)
	}
	if _, err := r.View(8); !errors.Is(err, ErrInstrument) {
		t.Errorf("view id 8: %v", err)
	}
}

func TestView(t *testing.T) {
	w, path := create(t, 3, 4)
	r := open(t, path)
	w.SetInstrument(2, sym("AAPL"), 4)
	w.Publish(2, 7, 70, []Level{{3, 30}, {2, 20}}, []Level{{4, 40}}, Trade{3, 1, 69})
	v, err := r.View(2)
	if err != nil {
		t.Fatal(err)
	}
	for {
		c := v.Begin()
		got := []any{v.Seq(), v.TS(), v.Instrument(), v.PriceScale(), v.Symbol(), v.BidCount(), v.AskCount(),
			v.Bid(0), v.Bid(1), v.Ask(0), v.LastTrade(), v.Depth()}
		if !v.Valid(c) {
			continue
		}
		want := []any{uint64(7), int64(70), uint32(2), int32(4), sym("AAPL"), 2, 1,
			Level{3, 30}, Level{2, 20}, Level{4, 40}, Trade{3, 1, 69}, 3}
		for i := range want {
			if got[i] != want[i] {
				t.Errorf("field %d = %v, want %v", i, got[i], want[i])
			}
		}
		break
	}
	if c, ok := v.TryBegin(); !ok || c != 4 {
		t.Errorf("TryBegin = %d %v, want 4 true (two publishes)", c, ok)
	}
}

func TestCreateExisting(t *testing.T) {
	w, path := create(t, 2, 2)
	var le *LockedError
	if _, err := Create(path, Options{Depth: 2, Capacity: 2}); !errors.Is(err, ErrLocked) || !errors.As(err, &le) || le.PID != os.Getpid() || le.Shared {
		t.Fatalf("create while a writer has it: %v", err)
	}
	w.Close()
	if _, err := Create(path, Options{Depth: 2, Capacity: 2}); !errors.Is(err, os.ErrExist) {
		t.Fatalf("create over existing: %v", err)
	}
	for _, o := range []Options{{Depth: 0, Capacity: 1}, {Depth: MaxDepth + 1, Capacity: 1}, {Depth: 1, Capacity: 0}, {Depth: 1, Capacity: MaxCapacity + 1}} {
		if _, err := Create(filepath.Join(t.TempDir(), "x"), o); err == nil {
			t.Errorf("Create(%+v) succeeded", o)
		}
	}
}

func TestOpenWriterLockAndRepair(t *testing.T) {
	w, path := create(t, 2, 4)
	w.Publish(1, 10, 1, []Level{{1, 1}}, nil, Trade{})
	w.Publish(2, 11, 1, []Level{{2, 2}}, nil, Trade{})
	if _, err := OpenWriter(path); !errors.Is(err, ErrLocked) {
		t.Fatalf("second writer: %v", err)
	}
	// Simulate a writer that died in the middle of publishing slot 2.
	lk := u64(w.slot(2), slotOffLock)
	*lk++
	w.Close()

	r := open(t, path)
	r.StallTimeout = 0
	var bk Book
	if err := r.Read(2, &bk); !errors.Is(err, ErrStalled) {
		t.Fatalf("read of a slot left odd: %v", err)
	}
	if r.WriterPID() != 0 {
		t.Errorf("writer pid %d after Close", r.WriterPID())
	}

	w2, err := OpenWriter(path)
	if err != nil {
		t.Fatal(err)
	}
	defer w2.Close()
	if err := r.Read(2, &bk); err != nil || bk.Seq != 0 || len(bk.Bids) != 0 {
		t.Fatalf("torn slot after OpenWriter: %v %+v (want emptied)", err, bk)
	}
	if err := r.Read(1, &bk); err != nil || bk.Seq != 10 || len(bk.Bids) != 1 {
		t.Fatalf("intact slot after OpenWriter: %v %+v", err, bk)
	}
	// Slot 2 lost message 11: "every message ≤ 11 is in every slot" no
	// longer holds, so last_applied drops to 0 and stays there.
	if w2.LastApplied() != 0 || w2.Intact() || !reflect.DeepEqual(w2.Emptied(), []uint32{2}) {
		t.Errorf("after repair: last applied %d, intact %v, emptied %v; want 0, false, [2]", w2.LastApplied(), w2.Intact(), w2.Emptied())
	}
	w2.Publish(2, 12, 1, nil, []Level{{5, 5}}, Trade{})
	if err := r.Read(2, &bk); err != nil || bk.Seq != 12 || len(bk.Asks) != 1 {
		t.Fatalf("republished: %v %+v", err, bk)
	}
	if w2.LastApplied() != 0 {
		t.Errorf("last applied moved to %d in a file that is not intact", w2.LastApplied())
	}
}

func TestClosed(t *testing.T) {
	w, path := create(t, 2, 2)
	r, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	r.Close()
	var bk Book
	if err := r.Read(0, &bk); !errors.Is(err, journal.ErrClosed) {
		t.Errorf("read after close: %v", err)
	}
	if err := r.Close(); !errors.Is(err, journal.ErrClosed) {
		t.Errorf("double close: %v", err)
	}
	w.Close()
	if err := w.Sync(); !errors.Is(err, journal.ErrClosed) {
		t.Errorf("sync after close: %v", err)
	}
}

// corrupt applies f to a fresh file's bytes and returns Open's error.
func corrupt(t *testing.T, f func(b []byte) []byte) error {
	t.Helper()
	w, path := create(t, 10, 16)
	w.Close()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, f(b), 0o644); err != nil {
		t.Fatal(err)
	}
	r, err := Open(path)
	if err == nil {
		r.Close()
	}
	return err
}

func reseal(b []byte) {
	binary.LittleEndian.PutUint32(b[hdrOffHeaderCRC:], journal.CRC32C(b[:hdrStaticEnd]))
}

func TestOpenCorrupt(t *testing.T) {
	cases := []struct {
		name string
		f    func(b []byte) []byte
		want error
		off  int64
	}{
		{"empty", func(b []byte) []byte { return nil }, journal.ErrTruncated, 0},
		{"short header", func(b []byte) []byte { return b[:100] }, journal.ErrTruncated, 100},
		{"magic", func(b []byte) []byte { b[0] = 'X'; return b }, journal.ErrBadMagic, hdrOffMagic},
		{"version", func(b []byte) []byte { b[hdrOffVersion] = 9; return b }, journal.ErrVersion, hdrOffVersion},
		{"crc", func(b []byte) []byte { b[hdrOffJournalID] ^= 1; return b }, journal.ErrChecksum, hdrOffHeaderCRC},
		{"depth 0", func(b []byte) []byte {
			binary.LittleEndian.PutUint32(b[hdrOffDepth:], 0)
			reseal(b)
			return b
		}, journal.ErrBadHeader, hdrOffDepth},
		{"depth vs slot size", func(b []byte) []byte {
			binary.LittleEndian.PutUint32(b[hdrOffDepth:], 20)
			reseal(b)
			return b
		}, journal.ErrBadHeader, hdrOffSlotSize},
		{"capacity vs file size", func(b []byte) []byte {
			binary.LittleEndian.PutUint32(b[hdrOffCapacity:], 1000)
			reseal(b)
			return b
		}, journal.ErrBadHeader, hdrOffFileSize},
		{"huge capacity", func(b []byte) []byte {
			binary.LittleEndian.PutUint32(b[hdrOffCapacity:], 1<<31)
			reseal(b)
			return b
		}, journal.ErrBadHeader, hdrOffCapacity},
		{"truncated slots", func(b []byte) []byte { return b[:HeaderSize+448] }, journal.ErrTruncated, HeaderSize + 448},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := corrupt(t, c.f)
			var ce *journal.CorruptionError
			if !errors.As(err, &ce) || !errors.Is(err, c.want) || !errors.Is(err, journal.ErrCorrupt) {
				t.Fatalf("got %v, want a CorruptionError wrapping %v", err, c.want)
			}
			if ce.Offset != c.off || ce.File == "" || ce.Reason == "" {
				t.Errorf("error %+v, want offset %d", ce, c.off)
			}
		})
	}
}

// TestTruncatedUnderReader truncates the file while a reader has it mapped:
// the next Read must return an error, not die of SIGBUS.
func TestTruncatedUnderReader(t *testing.T) {
	w, path := create(t, 10, 64) // slots beyond the first page
	w.Publish(60, 1, 1, []Level{{1, 1}}, []Level{{2, 2}}, Trade{})
	r := open(t, path)
	var bk Book
	if err := r.Read(60, &bk); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(path, 2*HeaderSize); err != nil {
		t.Fatal(err)
	}
	err := r.Read(60, &bk)
	var ce *journal.CorruptionError
	if !errors.As(err, &ce) || !errors.Is(err, journal.ErrTruncated) {
		t.Fatalf("read of truncated slot: %v", err)
	}
	if want := int64(HeaderSize + 60*SlotSize(10)); ce.Offset < want || ce.Offset >= want+int64(SlotSize(10)) {
		t.Errorf("fault offset %d, want within slot 60 at %d", ce.Offset, want)
	}
	t.Log(err)
	// Slot 0 is still inside the file: it still reads.
	if err := r.Read(0, &bk); err != nil {
		t.Errorf("slot 0: %v", err)
	}
}

func TestBadCountsInSlot(t *testing.T) {
	w, path := create(t, 2, 2)
	w.Publish(1, 5, 0, []Level{{1, 1}}, nil, Trade{})
	*u64(w.slot(1), slotOffCounts) = 3 // 3 bids > depth 2
	r := open(t, path)
	var bk Book
	err := r.Read(1, &bk)
	if !errors.Is(err, journal.ErrBadHeader) {
		t.Fatalf("got %v", err)
	}
	if len(bk.Bids) > 2 {
		t.Errorf("copied %d bids", len(bk.Bids))
	}
}

func TestAllocs(t *testing.T) {
	w, path := create(t, invDepth, 4)
	r := open(t, path)
	var bb, ab [invDepth]Level
	k := uint64(10)
	b, a, ts, tr := invBook(k, bb[:], ab[:])
	var bk Book
	if err := r.Read(1, &bk); err != nil { // sizes dst once
		t.Fatal(err)
	}
	if n := testing.AllocsPerRun(1000, func() {
		k++
		w.Publish(1, k, ts, b, a, tr)
	}); n != 0 {
		t.Errorf("Publish allocates %v times", n)
	}
	if n := testing.AllocsPerRun(1000, func() {
		if err := r.Read(1, &bk); err != nil {
			t.Fatal(err)
		}
	}); n != 0 {
		t.Errorf("Read allocates %v times", n)
	}
	v, _ := r.View(1)
	if n := testing.AllocsPerRun(1000, func() {
		c := v.Begin()
		_ = v.Bid(0)
		_ = v.Valid(c)
	}); n != 0 {
		t.Errorf("View allocates %v times", n)
	}
}

// TestInvariantRejectsTorn shows the stress test's checker catches torn books:
// any one field taken from a neighbouring publish is rejected.
func TestInvariantRejectsTorn(t *testing.T) {
	mk := func(k uint64) Book {
		var bb, ab [invDepth]Level
		b, a, ts, tr := invBook(k, bb[:], ab[:])
		return Book{Instrument: 1, Seq: k, TS: ts, Bids: b, Asks: a, LastTrade: tr}
	}
	for k := uint64(1); k < 200; k++ {
		good := mk(k)
		if err := checkInv(&good, 1); err != nil {
			t.Fatalf("k=%d: consistent book rejected: %v", k, err)
		}
		next := mk(k + 1)
		tears := map[string]func(b *Book){
			"ts":    func(b *Book) { b.TS = next.TS },
			"trade": func(b *Book) { b.LastTrade = next.LastTrade },
			"bids":  func(b *Book) { b.Bids = next.Bids },
			"asks":  func(b *Book) { b.Asks = next.Asks },
			"seq":   func(b *Book) { b.Seq = next.Seq },
			"one level": func(b *Book) {
				if len(b.Bids) > 0 && len(next.Bids) > 0 {
					b.Bids = append([]Level(nil), b.Bids...)
					b.Bids[0] = next.Bids[0]
				} else {
					b.TS++
				}
			},
		}
		for name, tear := range tears {
			bk := mk(k)
			tear(&bk)
			if reflect.DeepEqual(bk, good) {
				continue // e.g. both books have no asks: nothing torn
			}
			if err := checkInv(&bk, 1); err == nil {
				t.Errorf("k=%d: torn %s accepted", k, name)
			}
		}
	}
}
