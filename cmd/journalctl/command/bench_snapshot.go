package command

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"text/tabwriter"

	"github.com/spf13/pflag"

	"github.com/mdjournal/mdjournal/internal/clock"
	"github.com/mdjournal/mdjournal/journal"
	"github.com/mdjournal/mdjournal/snapshot"
)

// benchSnapshot prices the snapshot file's two operations on a full
// 10-level book — Writer.Publish (seqlock write into the shared mapping) and
// Reader.Read (seqlock copy out, with the truncation guard) — beside the
// same copy between two ordinary Go structs, in the same rounds.
func benchSnapshot(env *Env, args []string) error {
	var count, rounds int
	var asJSON bool
	fs := flagSet(env, "bench snapshot", "[--count N] [--rounds R] [--json]", func(fs *pflag.FlagSet) {
		fs.IntVar(&count, "count", 2_000_000, "operations per round")
		fs.IntVar(&rounds, "rounds", 5, "rounds; the median round is reported")
		fs.BoolVar(&asJSON, "json", false, "print JSON")
	})
	if err := parse(fs, args); err != nil {
		return err
	}
	if err := noArgs(fs); err != nil {
		return err
	}
	if count < 1000 || rounds < 1 {
		return usagef("--count ≥ 1000, --rounds ≥ 1")
	}
	const depth, instr = 10, 3
	tmp, err := os.MkdirTemp("", "mdj-bench-snapshot-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	path := filepath.Join(tmp, "book.snap")
	w, err := snapshot.Create(path, snapshot.Options{Depth: depth, Capacity: 8, JournalID: 1})
	if err != nil {
		return err
	}
	defer w.Close()
	r, err := snapshot.Open(path)
	if err != nil {
		return err
	}
	defer r.Close()
	bids, asks := make([]snapshot.Level, depth), make([]snapshot.Level, depth)
	for i := range bids {
		bids[i] = snapshot.Level{Price: journal.Price(1_000_000 - i*100), Qty: int64(100 + i)}
		asks[i] = snapshot.Level{Price: journal.Price(1_000_100 + i*100), Qty: int64(200 + i)}
	}
	trade := snapshot.Trade{Price: 1_000_050, Qty: 5, TS: 7}
	if err := w.Publish(instr, 1, 7, bids, asks, trade); err != nil {
		return err
	}
	src := snapshot.Book{Instrument: instr, Seq: 1, TS: 7, Bids: bids, Asks: asks, LastTrade: trade}
	dst := snapshot.Book{Bids: make([]snapshot.Level, depth), Asks: make([]snapshot.Level, depth)}
	var base, pub, read []float64
	for k := 0; k < rounds; k++ {
		// Baseline: the same fields copied between two Go structs.
		t0 := clock.Nanotime()
		for i := 0; i < count; i++ {
			copyBook(&dst, &src, uint64(i))
		}
		base = append(base, float64(clock.Nanotime()-t0)/float64(count))
		t0 = clock.Nanotime()
		for i := 0; i < count; i++ {
			if err := w.Publish(instr, uint64(i+2), 7, bids, asks, trade); err != nil {
				return err
			}
		}
		pub = append(pub, float64(clock.Nanotime()-t0)/float64(count))
		t0 = clock.Nanotime()
		for i := 0; i < count; i++ {
			if err := r.Read(instr, &dst); err != nil {
				return err
			}
		}
		read = append(read, float64(clock.Nanotime()-t0)/float64(count))
	}
	if len(dst.Bids) != depth || dst.Bids[depth-1] != bids[depth-1] || dst.Asks[0] != asks[0] {
		return fmt.Errorf("snapshot read back a different book: %+v", dst)
	}
	b := median(base)
	out := []appendResult{
		{Name: "plain Go copy of a 10-level book (baseline)", NsPerFrame: b, FramesPerS: 1e9 / b, VsRaw: 1, RoundsNs: base},
		{Name: "snapshot Publish (10 levels)", NsPerFrame: median(pub), FramesPerS: 1e9 / median(pub), VsRaw: median(pub) / b, RoundsNs: pub},
		{Name: "snapshot Read (10 levels, copy out)", NsPerFrame: median(read), FramesPerS: 1e9 / median(read), VsRaw: median(read) / b, RoundsNs: read},
	}
	if asJSON {
		return json.NewEncoder(env.Stdout).Encode(out)
	}
	tw := tabwriter.NewWriter(env.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "\tns/op (median of %d)\tops/s\tvs baseline\t\n", rounds)
	for _, r := range out {
		fmt.Fprintf(tw, "%s\t%.1f\t%.3gM\t%.2fx\t\n", r.Name, r.NsPerFrame, r.FramesPerS/1e6, r.VsRaw)
	}
	return tw.Flush()
}

// copyBook is the baseline: what Read does minus the seqlock and the
// shared mapping. noinline keeps the compiler from hoisting the copy out
// of the loop.
//
//go:noinline
func copyBook(dst, src *snapshot.Book, seq uint64) {
	dst.Seq, dst.TS, dst.Instrument, dst.PriceScale, dst.Symbol = seq, src.TS, src.Instrument, src.PriceScale, src.Symbol
	dst.LastTrade = src.LastTrade
	dst.Bids = dst.Bids[:len(src.Bids)]
	copy(dst.Bids, src.Bids)
	dst.Asks = dst.Asks[:len(src.Asks)]
	copy(dst.Asks, src.Asks)
}
