package command

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strconv"
	"time"

	"github.com/spf13/pflag"
	"golang.org/x/term"

	"github.com/mdjournal/mdjournal/book"
	"github.com/mdjournal/mdjournal/snapshot"
)

type snapshotOptions struct {
	file       string
	instrument string
	json       bool
	watch      bool
}

func (o *snapshotOptions) AddFlags(fs *pflag.FlagSet) {
	fs.StringVar(&o.file, "file", "", "snapshot file")
	fs.StringVar(&o.instrument, "instrument", "", "only this instrument: numeric id, else symbol (default all)")
	fs.BoolVar(&o.json, "json", false, "one JSON object per instrument, one per line")
	fs.BoolVar(&o.watch, "watch", false, "refresh every 500 ms until SIGINT/SIGTERM; follows a rebuilt snapshot file")
}

// watchEvery is the --watch refresh period.
const watchEvery = 500 * time.Millisecond

func runSnapshot(env *Env, args []string) error {
	var o snapshotOptions
	fs := flagSet(env, "snapshot", "--file S [--instrument SYM|ID] [--json] [--watch]", o.AddFlags)
	if err := parse(fs, args); err != nil {
		return err
	}
	if err := noArgs(fs); err != nil {
		return err
	}
	if o.file == "" {
		return usagef("--file is required")
	}
	r, err := snapshot.Open(o.file)
	if err != nil {
		return err
	}
	defer func() { r.Close() }()
	clearScreen := false
	if f, ok := env.Stdout.(*os.File); ok && o.watch && !o.json && term.IsTerminal(int(f.Fd())) {
		clearScreen = true
	}
	var sb snapshot.Book
	for {
		// Render into a buffer first so a refresh appears at once, never half drawn.
		var out bytes.Buffer
		if clearScreen {
			out.WriteString("\x1b[H\x1b[2J")
		}
		if err := printSnapshot(&out, r, &sb, &o); err != nil {
			return err
		}
		if _, err := env.Stdout.Write(out.Bytes()); err != nil {
			return err
		}
		if !o.watch {
			return nil
		}
		select {
		case <-env.Ctx.Done(): // SIGINT or SIGTERM (Main's signal.NotifyContext)
			return nil
		case <-time.After(watchEvery):
		}
		// The maintainer rebuilds the snapshot by renaming a new file over
		// it: the mapping of the old one no longer changes.
		if replaced, err := r.Replaced(); err != nil {
			return err
		} else if replaced {
			nr, err := snapshot.Open(o.file)
			if err != nil {
				return fmt.Errorf("reopening the rebuilt snapshot: %w", err)
			}
			r.Close()
			r = nr
		}
	}
}

// printSnapshot prints every written slot, or the one --instrument names:
// a numeric id, else a symbol found in the slots' symbol fields.
func printSnapshot(w io.Writer, r *snapshot.Reader, sb *snapshot.Book, o *snapshotOptions) error {
	last := r.LastApplied()
	if !o.json {
		fmt.Fprintf(w, "snapshot %s: journal %#016x, depth %d, last applied seq %d, writer pid %d\n",
			r.Path(), r.JournalID(), r.Depth(), last, r.WriterPID())
	}
	ids, bySymbol := []uint32(nil), false
	if o.instrument != "" {
		if n, err := strconv.ParseUint(o.instrument, 10, 32); err == nil {
			if n >= uint64(r.Capacity()) {
				return fmt.Errorf("%s: no instrument %d in the snapshot (it holds ids 0..%d)", r.Path(), n, r.Capacity()-1)
			}
			ids = []uint32{uint32(n)}
		} else {
			id, ok, err := r.Lookup(o.instrument)
			if err != nil {
				return err
			}
			if !ok {
				return fmt.Errorf("%s: no instrument with symbol %q in the snapshot", r.Path(), o.instrument)
			}
			ids, bySymbol = []uint32{id}, true
		}
	}
	found := 0
	for id := range uint32(r.Capacity()) {
		if ids != nil && id != ids[0] {
			continue
		}
		if err := r.Read(id, sb); err != nil {
			return err
		}
		if sb.Seq == 0 && !bySymbol {
			continue // no book published
		}
		found++
		v := ladderView{id: id, symbol: sb.SymbolString(), scale: sb.PriceScale, seq: sb.Seq, ts: sb.TS,
			bids: levelsOf(sb.Bids), asks: levelsOf(sb.Asks)}
		if sb.LastTrade != (snapshot.Trade{}) {
			v.trade = &book.Level{Price: sb.LastTrade.Price, Qty: sb.LastTrade.Qty}
		}
		if o.json {
			j := v.json()
			j.SnapshotSeq = &last
			if err := json.NewEncoder(w).Encode(j); err != nil {
				return err
			}
			continue
		}
		fmt.Fprintln(w)
		v.text(w)
	}
	if found == 0 && ids != nil {
		return fmt.Errorf("%s: no instrument %s in the snapshot", r.Path(), o.instrument)
	}
	return nil
}

func levelsOf(s []snapshot.Level) []book.Level {
	out := make([]book.Level, len(s))
	for i, l := range s {
		out[i] = book.Level(l)
	}
	return out
}
