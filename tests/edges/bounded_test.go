package edges_test

import (
	"encoding/binary"
	"errors"
	"math"
	"strings"
	"testing"

	"github.com/mdjournal/mdjournal/journal"
	"github.com/mdjournal/mdjournal/ops/inspect"
	"github.com/mdjournal/mdjournal/writer"
)

// Values a checksum does not make sane: a frame stamped MinInt64 made
// inspect panic, a capacity of 2^63 overflowed its stack. inspect decodes
// both in bounded time and reports them as problems.
func TestInspectExtremeValues(t *testing.T) {
	page := make([]byte, journal.SegmentHeaderSize+256)
	journal.PutStaticHeader(page, 1, 1, 1, 0, 1<<63, 1)
	r := inspect.Decode("00000000000000000001.seg", page, inspect.Options{Frames: true})
	if len(r.Problems) == 0 {
		t.Fatal("a 2^63 capacity is not reported")
	}
	for _, p := range r.Problems {
		if strings.Contains(p.Reason, "internal error") {
			t.Fatalf("inspect recovered from a panic: %s", p.Reason)
		}
	}

	seg := make([]byte, 256<<10)
	journal.PutStaticHeader(seg, 1, 1, 1, 0, 256<<10, 1)
	st := journal.State{Gen: 1, DurableOffset: journal.SegmentHeaderSize, DurableSeq: 0}
	journal.PutState(seg[journal.SegOffStateA:], st)
	q := journal.Quote{BidPrice: 1, BidQty: 1, AskPrice: 2, AskQty: 1}
	word := journal.PutFrameBody(seg[journal.SegmentHeaderSize:], 1, math.MinInt64, journal.TypeQuote, 0, 1, q.Encode(make([]byte, 32)))
	binary.LittleEndian.PutUint64(seg[journal.SegmentHeaderSize:], word)
	r = inspect.Decode("00000000000000000001.seg", seg, inspect.Options{Frames: true})
	for _, p := range r.Problems {
		if strings.Contains(p.Reason, "internal error") {
			t.Fatalf("inspect recovered from a panic: %s", p.Reason)
		}
	}
	if len(r.Frames) != 1 {
		t.Fatalf("%d frames decoded, want the one stamped MinInt64", len(r.Frames))
	}
}

// An instrument_def with a price scale of 50,000 made formatting one price
// take a second (2^31-1: forever). The writer refuses a scale beyond 18
// digits; a crafted one formats in constant time.
func TestPriceScaleBounded(t *testing.T) {
	w, err := writer.Open(t.TempDir(), writer.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	var d journal.InstrumentDef
	d.SetSymbol("X")
	d.PriceScale, d.TickSize = 50_000, 1
	if _, err := w.Append(journal.TypeInstrumentDef, 1, 1, d.Encode(make([]byte, 32))); !errors.Is(err, writer.ErrDefinition) {
		t.Fatalf("scale 50000: %v", err)
	}
	for _, scale := range []int32{20, 50_000, math.MaxInt32} {
		if s := journal.FormatPrice(5853300, scale); !strings.HasPrefix(s, "5853300e-") {
			t.Errorf("scale %d: %q", scale, s)
		}
	}
}
