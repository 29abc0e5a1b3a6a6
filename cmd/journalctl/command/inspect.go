package command

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/pflag"

	"github.com/mdjournal/mdjournal/ops/inspect"
)

type inspectOptions struct {
	dir    string
	json   bool
	frames bool
	hex    bool
}

func (o *inspectOptions) AddFlags(fs *pflag.FlagSet) {
	fs.StringVar(&o.dir, "dir", "", "journal directory (or give one FILE instead)")
	fs.BoolVar(&o.json, "json", false, "print one JSON object")
	fs.BoolVar(&o.frames, "frames", false, "list every frame with its file and offset (index: every entry)")
	fs.BoolVar(&o.hex, "hex", false, "hexdump 64 bytes before and after each problem")
}

func runInspect(env *Env, args []string) error {
	var o inspectOptions
	fs := flagSet(env, "inspect", "--dir D | FILE [--json] [--frames] [--hex]", o.AddFlags)
	if err := parse(fs, args); err != nil {
		return err
	}
	var file string
	switch {
	case fs.NArg() > 1:
		return usagef("one FILE at a time, got %d arguments", fs.NArg())
	case fs.NArg() == 1 && o.dir != "":
		return usagef("give --dir D or a FILE, not both")
	case fs.NArg() == 1:
		file = fs.Arg(0)
		if st, err := os.Stat(file); err == nil && st.IsDir() {
			o.dir, file = file, ""
		}
	case strings.TrimSpace(o.dir) == "":
		return usagef("--dir D or a FILE is required")
	}
	opts := inspect.Options{Frames: o.frames, Hex: o.hex}
	if file != "" {
		r, err := inspect.File(file, opts)
		if err != nil {
			return err
		}
		if o.json {
			err = writeJSON(env.Stdout, r)
		} else {
			printFileReport(env.Stdout, r)
		}
		if err != nil {
			return err
		}
		if len(r.Problems) > 0 || r.Kind == inspect.KindUnknown {
			return errDataProblem
		}
		return nil
	}
	r, err := inspect.Journal(o.dir, opts)
	if err != nil {
		return fmt.Errorf("%w (is %s a journal directory? it needs NNNN.seg files)", err, o.dir)
	}
	if o.json {
		err = writeJSON(env.Stdout, r)
	} else {
		printJournalReport(env.Stdout, r)
	}
	if err != nil {
		return err
	}
	if !r.OK {
		return errDataProblem
	}
	return nil
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// kib renders a byte count with a binary unit.
func kib(n int64) string {
	switch {
	case n < 0:
		return "-" + kib(-n)
	case n < 1<<10:
		return fmt.Sprintf("%d B", n)
	case n < 1<<20:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	case n < 1<<30:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	}
	return fmt.Sprintf("%.2f GiB", float64(n)/(1<<30))
}

// dur renders microseconds with a readable unit (µs, ms, s, m, h).
func dur(us float64) string {
	switch {
	case us < 0:
		return "-" + dur(-us)
	case us < 1:
		return fmt.Sprintf("%.0f ns", us*1e3)
	case us < 1e3:
		return fmt.Sprintf("%.1f µs", us)
	case us < 1e6:
		return fmt.Sprintf("%.1f ms", us/1e3)
	case us < 60e6:
		return fmt.Sprintf("%.2f s", us/1e6)
	}
	return time.Duration(us * 1e3).Round(time.Second).String()
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func printJournalReport(w io.Writer, r *inspect.Report) {
	status := "OK"
	if !r.OK {
		status = fmt.Sprintf("%d PROBLEM(S)", len(r.Problems))
	}
	fmt.Fprintf(w, "journal %s  id %s  %s\n", r.Dir, r.JournalID, status)
	fmt.Fprintf(w, "  seq %d..%d  %d frames  %s of frames\n  time %s .. %s\n", r.FirstSeq, r.LastSeq, r.Frames, kib(r.Bytes), dash(r.FirstTS), dash(r.LastTS))
	switch {
	case !r.Writer.LockFile:
		fmt.Fprintf(w, "  writer: no lock file (no writer has opened this directory)\n")
	case r.Writer.Locked:
		fmt.Fprintf(w, "  writer: PID %d holds the lock (alive: %v)\n", r.Writer.PID, r.Writer.Alive)
	case r.Writer.PID != 0:
		fmt.Fprintf(w, "  writer: none; the lock file names PID %d, which is not holding it (a crashed writer; the next writer takes over)\n", r.Writer.PID)
	default:
		fmt.Fprintf(w, "  writer: none (last writer closed cleanly)\n")
	}
	d := r.Durability
	fmt.Fprintf(w, "  durability: segment %d durable to offset %d (seq %d), cursor %d, clean %v\n\n", d.Segment, d.Offset, d.Seq, d.Cursor, d.Clean)

	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "SEGMENT\tSTATE\tFIRST SEQ\tLAST SEQ\tFRAMES\tFIRST TS\tLAST TS\tUSED\tCAPACITY\tON DISK")
	for _, s := range r.Segments {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%s\t%s\t%s\t%s\t%s\n", s.File, s.State, s.FirstSeq, s.LastSeq, s.Frames, dash(s.FirstTS), dash(s.LastTS),
			kib(s.Used), kib(s.Capacity), kib(s.FileBytes))
	}
	tw.Flush()

	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "TYPE\tFRAMES\tBYTES\t")
	for _, t := range r.Types {
		fmt.Fprintf(tw, "%s\t%d\t%s\t\n", t.Type, t.Frames, kib(t.Bytes))
	}
	tw.Flush()

	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "INSTRUMENT\tSYMBOL\tSCALE\tFRAMES\tTRADES\tTRADED QTY\tLAST TRADE")
	for _, in := range r.Instruments {
		fmt.Fprintf(tw, "%d\t%s\t%d\t%d\t%d\t%d\t%s\n", in.ID, dash(in.Symbol), in.PriceScale, in.Frames, in.Trades, in.TradedQty, dash(in.LastTradePrice))
	}
	tw.Flush()

	fmt.Fprintln(w)
	if len(r.SeqGaps) == 0 {
		fmt.Fprintln(w, "sequence gaps: none")
	} else {
		fmt.Fprintf(w, "sequence gaps: %d (frames that could not be read)\n", len(r.SeqGaps))
		for _, g := range r.SeqGaps {
			fmt.Fprintf(w, "  after seq %d next readable is %d (in %s): %d missing\n", g.After, g.Next, g.File, g.Missing)
		}
	}
	fmt.Fprintf(w, "timestamp regressions: %d\n", r.Regressions.Count)
	for _, g := range r.Regressions.List {
		fmt.Fprintf(w, "  seq %d at %s is %s before its predecessor (%s)\n", g.Seq, g.TS, dur(g.BackUS), g.PrevTS)
	}
	if len(r.TimeGaps) > 0 {
		fmt.Fprintln(w, "\nlargest gaps between frames:")
		tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "  GAP\tAFTER SEQ\tFROM\tTO")
		for _, g := range r.TimeGaps {
			fmt.Fprintf(tw, "  %s\t%d\t%s\t%s\n", dur(g.GapUS), g.AfterSeq, g.From, g.To)
		}
		tw.Flush()
	}
	printProfile(w, r.Profile)
	if len(r.Readers) > 0 {
		fmt.Fprintln(w, "\nnamed readers:")
		printReaders(w, r.Readers)
	}
	printProblems(w, r.Problems)
}

func printReaders(w io.Writer, rs []inspect.ReaderLag) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "  NAME\tSEQ\tTS\tLAG FRAMES\tLAG TIME\tNEXT SEGMENT\tPID")
	for _, r := range rs {
		next := "-"
		if r.Segment != 0 {
			next = fmt.Sprint(r.Segment)
		}
		fmt.Fprintf(tw, "  %s\t%d\t%s\t%d\t%s\t%s\t%d\n", r.Name, r.Seq, dash(r.TS), r.LagFrames, dur(r.LagUS), next, r.PID)
		if r.Error != "" {
			fmt.Fprintf(tw, "  \t! %s\n", r.Error)
		}
		if r.Note != "" {
			fmt.Fprintf(tw, "  \t(%s)\n", r.Note)
		}
	}
	tw.Flush()
}

// printProfile draws the frames-over-time histogram, one bar per bucket.
func printProfile(w io.Writer, p inspect.Profile) {
	if len(p.Counts) == 0 {
		return
	}
	start, _ := time.Parse(time.RFC3339Nano, p.Start)
	step := time.Duration(p.BucketSeconds * 1e9)
	fmt.Fprintf(w, "\nframes per %s (event time, UTC), peak %.0f frames/s:\n", step, p.PeakPerSecond)
	var peak int64
	for _, c := range p.Counts {
		peak = max(peak, c)
	}
	layout := "15:04:05"
	if step < time.Second {
		layout = "15:04:05.000"
	}
	const width = 50
	for i, c := range p.Counts {
		n := 0
		if peak > 0 {
			n = int((c*width + peak - 1) / peak)
		}
		fmt.Fprintf(w, "  %s %-*s %d\n", start.Add(time.Duration(i)*step).Format(layout), width, strings.Repeat("█", n), c)
	}
}

func printProblems(w io.Writer, ps []inspect.Problem) {
	if len(ps) == 0 {
		return
	}
	fmt.Fprintf(w, "\nproblems: %d\n", len(ps))
	for _, p := range ps {
		fmt.Fprintf(w, "  %-8s %s: offset %d: %s [%s]\n", p.Severity, p.File, p.Offset, p.Reason, p.Kind)
		if p.Hint != "" {
			fmt.Fprintf(w, "           next: %s\n", p.Hint)
		}
		if p.Hex != "" {
			for _, l := range strings.Split(strings.TrimRight(p.Hex, "\n"), "\n") {
				fmt.Fprintf(w, "           %s\n", l)
			}
		}
	}
}

func printFileReport(w io.Writer, r *inspect.FileReport) {
	fmt.Fprintf(w, "%s: %s (%s, detected by %s)\n", r.File, r.Kind, kib(r.Size), r.Detected)
	if r.Note != "" {
		fmt.Fprintf(w, "note: %s\n", r.Note)
	}
	if len(r.Fields) > 0 {
		fmt.Fprintln(w)
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "OFFSET\tSIZE\tFIELD\tVALUE\tCHECK\tMEANING")
		for _, f := range r.Fields {
			fmt.Fprintf(tw, "%d\t%d\t%s\t%s\t%s\t%s\n", f.Offset, f.Size, f.Name, f.Value, f.Check, f.Meaning)
		}
		tw.Flush()
	}
	if len(r.Summary) > 0 {
		fmt.Fprintln(w)
		for _, f := range r.Summary {
			fmt.Fprintf(w, "%s: %s", f.Name, f.Value)
			if f.Meaning != "" {
				fmt.Fprintf(w, "  (%s)", f.Meaning)
			}
			fmt.Fprintln(w)
		}
	}
	if len(r.Chunks) > 0 {
		fmt.Fprintln(w)
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(tw, "CHUNK\tRAW OFFSET\tRAW LEN\tCOMP OFFSET\tCOMP LEN\tRAW CRC\t")
		for _, c := range r.Chunks {
			fmt.Fprintf(tw, "%d\t%d\t%d\t%d\t%d\t%s\t\n", c.I, c.RawOff, c.RawLen, c.CompOff, c.CompLen, c.CRC)
		}
		tw.Flush()
	}
	if len(r.Frames) > 0 {
		fmt.Fprintln(w)
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "OFFSET\tSEQ\tTS\tTYPE\tINSTR\tSIZE\tCRC")
		for _, f := range r.Frames {
			fmt.Fprintf(tw, "%d\t%d\t%s\t%s\t%d\t%d\t%s\n", f.Offset, f.Seq, f.TS, f.Type, f.Instr, f.Size, f.CRC)
		}
		tw.Flush()
	}
	if len(r.Entries) > 0 {
		fmt.Fprintln(w)
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "ENTRY\tAT\tSEQ\tTS\tFRAME OFFSET")
		for _, e := range r.Entries {
			fmt.Fprintf(tw, "%d\t%d\t%d\t%s\t%d\n", e.I, e.Offset, e.Seq, e.TS, e.Frame)
		}
		tw.Flush()
	}
	if len(r.Slots) > 0 {
		fmt.Fprintln(w)
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "SLOT\tSYMBOL\tSEQ\tTS\tBIDS\tASKS\tBEST BID\tBEST ASK\tLAST TRADE")
		for _, s := range r.Slots {
			fmt.Fprintf(tw, "%d\t%s\t%d\t%s\t%d\t%d\t%s\t%s\t%s\n", s.Slot, dash(s.Symbol), s.Seq, dash(s.TS), s.Bids, s.Asks, dash(s.BestBid), dash(s.BestAsk), dash(s.LastTrade))
		}
		tw.Flush()
	}
	printProblems(w, r.Problems)
}
