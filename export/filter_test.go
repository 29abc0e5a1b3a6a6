package export

import (
	"context"
	"errors"
	"io"
	"path/filepath"
	"testing"
	"time"

	"github.com/mdjournal/mdjournal/journal"
	"github.com/mdjournal/mdjournal/reader"
)

// Each selection exports exactly the rows a plain loop over the reader's
// frames selects, with the same values; starting mid-journal still gives
// every row its symbol and scale.
func TestFilters(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "j")
	last := buildJournal(t, dir, 8000)
	all := readerRows(t, dir)
	mid := last / 2
	midTS := all[mid-1]["ts"].(int64) // ts of seq mid
	toTS := all[last*3/4]["ts"].(int64)
	cases := []struct {
		name   string
		from   reader.Position
		filter Filter
		keep   func(r map[string]any) bool
	}{
		{"from seq", reader.Seq(mid), Filter{}, func(r map[string]any) bool { return r["seq"].(uint64) >= mid }},
		{"from time to seq", reader.TimeNS(midTS), Filter{ToSeq: last - 100}, func(r map[string]any) bool {
			return r["seq"].(uint64) >= mid && r["seq"].(uint64) <= last-100
		}},
		{"to time", reader.Start(), Filter{ToTime: time.Unix(0, toTS)}, func(r map[string]any) bool { return r["ts"].(int64) <= toTS }},
		{"types", reader.Start(), Filter{Types: []journal.MsgType{journal.TypeTrade, journal.TypeGap}}, func(r map[string]any) bool {
			return r["type"] == "trade" || r["type"] == "gap"
		}},
		{"instrument ids and symbols", reader.Seq(mid), Filter{Instruments: []uint32{2, idNone}, Symbols: []string{`X,"Y`, "NOSUCH"}}, func(r map[string]any) bool {
			id := r["instrument"].(uint32)
			return r["seq"].(uint64) >= mid && (id == 2 || id == idNone || id == idComma)
		}},
		{"skip restated", reader.Start(), Filter{SkipRestated: true, Types: []journal.MsgType{journal.TypeInstrumentDef}}, func(r map[string]any) bool {
			return r["type"] == "instrument_def" && !r["restated"].(bool)
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var want []map[string]any
			for _, r := range all {
				if c.keep(r) {
					want = append(want, r)
				}
			}
			if len(want) == 0 || len(want) == len(all) {
				t.Fatalf("the case selects %d of %d rows: it tests nothing", len(want), len(all))
			}
			buf, st := exportTo(t, dir, Parquet, ParquetOptions{}, c.from, c.filter)
			got, _ := arrowRows(t, buf.Bytes())
			if len(got) != len(want) || st.Rows != int64(len(want)) {
				t.Fatalf("%d rows (stats %d), want %d", len(got), st.Rows, len(want))
			}
			for i := range want {
				if d := sameRow(got[i], want[i]); d != "" {
					t.Fatalf("row %d (seq %v): %s", i, want[i]["seq"], d)
				}
			}
			if st.FirstSeq != want[0]["seq"] || st.LastSeq != want[len(want)-1]["seq"] {
				t.Errorf("stats seqs %d..%d, want %v..%v", st.FirstSeq, st.LastSeq, want[0]["seq"], want[len(want)-1]["seq"])
			}
		})
	}
}

// Run stops with the context's error at its next check after a cancel
// (every Options.ProgressEvery frames), and reports
// progress with the last seq read.
func TestRunCancelAndProgress(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "j")
	const every = 1000
	last := buildJournal(t, dir, 3*every)
	r, err := reader.Open(dir, reader.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var calls []uint64
	ctx, cancel := context.WithCancel(context.Background())
	opts := Options{ProgressEvery: every, Progress: func(seq uint64, rows int64) {
		calls = append(calls, seq)
		if uint64(rows) != seq {
			t.Errorf("progress: %d rows at seq %d", rows, seq)
		}
		if len(calls) == 2 {
			cancel()
		}
	}}
	st, err := Run(ctx, r, NewCSV(io.Discard, CSVOptions{}), opts)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Run after cancel: %v (stats %+v)", err, st)
	}
	if len(calls) != 2 || calls[0] != every || calls[1] != 2*every || st.Frames != 3*every || st.LastSeq >= last {
		t.Errorf("progress calls %v, stats %+v", calls, st)
	}
}
