package command

import (
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/mdjournal/mdjournal/book"
	"github.com/mdjournal/mdjournal/journal"
	"github.com/mdjournal/mdjournal/reader"
)

type bookOptions struct {
	dir        string
	instrument string
	at         string
	depth      int
	json       bool
	tz         string
}

func (o *bookOptions) AddFlags(fs *pflag.FlagSet) {
	fs.StringVar(&o.dir, "dir", "", "journal directory")
	fs.StringVar(&o.instrument, "instrument", "", "instrument symbol or numeric id (a number is taken as an id)")
	fs.StringVar(&o.at, "at", "end", "end, seq:N (after frame N) or time:RFC3339Nano (after every frame stamped at or before T)")
	fs.IntVar(&o.depth, "depth", 10, "levels per side to print (0 = all)")
	fs.BoolVar(&o.json, "json", false, "print one JSON object")
	fs.StringVar(&o.tz, "tz", "", "time zone for --at times given without one (default UTC)")
}

// bookLevelJSON is one level: the price as a decimal string in the
// instrument's scale (exact, never a float).
type bookLevelJSON struct {
	Price string `json:"price"`
	Qty   int64  `json:"qty"`
}

// bookJSON is the book verb's output and, with SnapshotSeq, the snapshot
// verb's: the field order is the documented one.
type bookJSON struct {
	Instrument  uint32          `json:"instrument"`
	Symbol      string          `json:"symbol"`
	Seq         uint64          `json:"seq"`
	TS          string          `json:"ts"`
	Bids        []bookLevelJSON `json:"bids"`
	Asks        []bookLevelJSON `json:"asks"`
	SnapshotSeq *uint64         `json:"snapshot_seq,omitempty"`
}

// ladderView is what both verbs render: one instrument's top levels.
type ladderView struct {
	id         uint32
	symbol     string
	scale      int32
	seq        uint64
	ts         int64
	bids, asks []book.Level
	trade      *book.Level // last trade, if any
}

func formatTS(ts int64) string { return time.Unix(0, ts).UTC().Format(time.RFC3339Nano) }

func (v *ladderView) json() bookJSON {
	conv := func(ls []book.Level) []bookLevelJSON {
		out := make([]bookLevelJSON, len(ls)) // [] rather than null for an empty side
		for i, l := range ls {
			out[i] = bookLevelJSON{Price: journal.FormatPrice(l.Price, v.scale), Qty: l.Qty}
		}
		return out
	}
	return bookJSON{Instrument: v.id, Symbol: v.symbol, Seq: v.seq, TS: formatTS(v.ts), Bids: conv(v.bids), Asks: conv(v.asks)}
}

// text writes an aligned two-sided ladder: bids on the left, asks on the
// right, best level on the first row.
func (v *ladderView) text(w io.Writer) {
	name := v.symbol
	if name == "" {
		name = "(no instrument_def)"
	}
	fmt.Fprintf(w, "%s  instrument %d  seq %d  %s\n", name, v.id, v.seq, formatTS(v.ts))
	rows := max(len(v.bids), len(v.asks))
	cells := make([][4]string, rows)
	head := [4]string{"BID QTY", "BID PRICE", "ASK PRICE", "ASK QTY"}
	width := [4]int{len(head[0]), len(head[1]), len(head[2]), len(head[3])}
	for i := range rows {
		if i < len(v.bids) {
			cells[i][0] = strconv.FormatInt(v.bids[i].Qty, 10)
			cells[i][1] = journal.FormatPrice(v.bids[i].Price, v.scale)
		}
		if i < len(v.asks) {
			cells[i][2] = journal.FormatPrice(v.asks[i].Price, v.scale)
			cells[i][3] = strconv.FormatInt(v.asks[i].Qty, 10)
		}
		for c := range 4 {
			width[c] = max(width[c], len(cells[i][c]))
		}
	}
	line := func(c [4]string) {
		fmt.Fprintf(w, "  %*s %*s | %-*s %*s\n", width[0], c[0], width[1], c[1], width[2], c[2], width[3], c[3])
	}
	line(head)
	for _, c := range cells {
		line(c)
	}
	if rows == 0 {
		fmt.Fprintln(w, "  (empty book)")
	}
	if v.trade != nil {
		fmt.Fprintf(w, "  last trade %d @ %s\n", v.trade.Qty, journal.FormatPrice(v.trade.Price, v.scale))
	}
}

// topLevels copies the best depth levels of a side (all if depth is 0).
func topLevels(b *book.Book, s journal.Side, depth int) []book.Level {
	n := b.Depth(s)
	if depth > 0 {
		n = min(n, depth)
	}
	ls := make([]book.Level, n)
	b.Top(s, ls)
	return ls
}

// parseAt reads --at: end, seq:N or time:T (in tz when T has no zone).
func parseAt(s, dir string, loc *time.Location) (reader.Bound, error) {
	if s == "end" {
		return reader.Bound{}, nil
	}
	p, err := reader.ParsePositionIn(s, loc, func() (time.Time, error) { return reader.FirstTime(dir) })
	b, ok := reader.BoundOf(p)
	if err != nil || !ok {
		return reader.Bound{}, usagef("--at %q: want end, seq:N or time:T (%s)", s, reader.TimeSyntax)
	}
	return b, nil
}

func runBook(env *Env, args []string) error {
	var o bookOptions
	fs := flagSet(env, "book", "--dir D --instrument SYM|ID [--at end|seq:N|time:T] [--depth L] [--json]", o.AddFlags)
	if err := parseDirVerb(fs, args, &o.dir); err != nil {
		return err
	}
	if strings.TrimSpace(o.instrument) == "" {
		return usagef("--instrument is required (a symbol or a numeric id)")
	}
	if o.depth < 0 {
		return usagef("--depth %d: want 0 (all levels) or a positive number", o.depth)
	}
	loc, err := parseTZ(o.tz)
	if err != nil {
		return err
	}
	at, err := parseAt(o.at, o.dir, loc)
	if err != nil {
		return err
	}
	// Only the instrument asked for is rebuilt, and a time bound applies
	// to its frames (format.md §5: its own frames are time-ordered even in
	// a journal whose time goes back).
	cat, err := reader.JournalCatalog(o.dir)
	if err != nil {
		return err
	}
	ft, err := reader.NewFilter(cat, []string{o.instrument}, nil)
	if err != nil {
		return err
	}
	r, err := reader.Open(o.dir, reader.Options{})
	if err != nil {
		return err
	}
	defer r.Close()
	books := book.NewBooks(0)
	for n := 0; ; n++ {
		if n&4095 == 0 && env.Ctx.Err() != nil {
			return env.Ctx.Err()
		}
		f, ok, err := r.TryNext()
		if err != nil {
			return err
		}
		if !ok || (at.Seq != 0 && at.Past(&f)) {
			break
		}
		if !ft.Pass(&f) {
			continue
		}
		if at.Past(&f) {
			break
		}
		if book.Affects(f.Type) {
			books.ApplyFrame(&f) // a refused frame leaves its book as it was, as in the snapshot
		}
	}
	if at.Seq != 0 && r.LastSeq() < at.Seq {
		return fmt.Errorf("journal %s ends at seq %d, before %s", o.dir, r.LastSeq(), o.at)
	}
	id, b, err := findBook(books, o.instrument)
	if err != nil {
		return err
	}
	if b.Seq() == 0 {
		return fmt.Errorf("instrument %s has no book frame up to %s", o.instrument, o.at)
	}
	v := ladderView{id: id, seq: b.Seq(), ts: b.TS(),
		bids: topLevels(b, journal.SideBid, o.depth), asks: topLevels(b, journal.SideAsk, o.depth)}
	if d, ok := b.Def(); ok {
		v.symbol, v.scale = d.SymbolString(), d.PriceScale
	}
	if px, qty, n := b.LastTrade(); n > 0 {
		v.trade = &book.Level{Price: px, Qty: qty}
	}
	if o.json {
		return json.NewEncoder(env.Stdout).Encode(v.json())
	}
	v.text(env.Stdout)
	return nil
}

// findBook resolves a numeric id or a symbol among the rebuilt books.
func findBook(books *book.Books, instr string) (uint32, *book.Book, error) {
	if n, err := strconv.ParseUint(instr, 10, 32); err == nil {
		if b, ok := books.Get(uint32(n)); ok {
			return uint32(n), b, nil
		}
		return 0, nil, fmt.Errorf("no instrument with id %d in the journal up to that point", n)
	}
	var ids []uint32
	var found *book.Book
	books.Each(func(id uint32, b *book.Book) {
		if d, ok := b.Def(); ok && d.SymbolString() == instr {
			ids, found = append(ids, id), b
		}
	})
	switch len(ids) {
	case 0:
		return 0, nil, fmt.Errorf("no instrument_def with symbol %q in the journal up to that point", instr)
	case 1:
		return ids[0], found, nil
	}
	return 0, nil, fmt.Errorf("symbol %q names several instruments %v: pass the id", instr, ids)
}
