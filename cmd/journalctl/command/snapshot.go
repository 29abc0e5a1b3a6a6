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
	fs.StringVar(&o.instrument, "instrument", "", "only this instrument: symbol or numeric id (default all)")
	fs.BoolVar(&o.json, "json", false, "one JSON object per instrument, one per line")
	fs.BoolVar(&o.watch, "watch", false, "refresh every 500 ms until interrupted")
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
	defer r.Close()
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
		case <-env.Ctx.Done():
			return nil
		case <-time.After(watchEvery):
		}
	}
}

// printSnapshot prints every written slot (or the one asked for).
func printSnapshot(w io.Writer, r *snapshot.Reader, sb *snapshot.Book, o *snapshotOptions) error {
	last := r.LastApplied()
	if !o.json {
		fmt.Fprintf(w, "snapshot %s: journal %#016x, depth %d, last applied seq %d, writer pid %d\n",
			r.Path(), r.JournalID(), r.Depth(), last, r.WriterPID())
	}
	want, byID := uint64(0), false
	if n, err := strconv.ParseUint(o.instrument, 10, 32); err == nil {
		want, byID = n, true
	}
	found := 0
	for id := range r.Capacity() {
		if byID && uint64(id) != want {
			continue
		}
		if err := r.Read(uint32(id), sb); err != nil {
			return err
		}
		if sb.Seq == 0 || (o.instrument != "" && !byID && sb.SymbolString() != o.instrument) {
			continue
		}
		found++
		v := ladderView{id: uint32(id), symbol: sb.SymbolString(), scale: sb.PriceScale, seq: sb.Seq, ts: sb.TS,
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
	if found == 0 && o.instrument != "" {
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
