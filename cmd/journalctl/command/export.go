package command

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/pflag"
	"golang.org/x/term"

	"github.com/mdjournal/mdjournal/export"
	"github.com/mdjournal/mdjournal/journal"
	"github.com/mdjournal/mdjournal/reader"
)

type exportOptions struct {
	dir          string
	format       string
	out          string
	from         string
	to           string
	instrument   string
	types        string
	skipRestated bool
	rowGroup     int64
	compression  string
}

func (o *exportOptions) AddFlags(fs *pflag.FlagSet) {
	fs.StringVar(&o.dir, "dir", "", "journal directory")
	fs.StringVar(&o.format, "format", "", "parquet|csv (default: from the --out extension, .parquet or .csv)")
	fs.StringVar(&o.out, "out", "", "output file (written to a temporary file beside it, renamed when complete), or - for stdout")
	fs.StringVar(&o.from, "from", "start", "start|seq:N|time:RFC3339Nano")
	fs.StringVar(&o.to, "to", "", "stop after seq:N or before the first frame past time:T")
	fs.StringVar(&o.instrument, "instrument", "", "only these instruments: comma-separated symbols or numeric ids (a number is an id)")
	fs.StringVar(&o.types, "type", "", "only these message types, comma-separated (trade,quote,book_level,...)")
	fs.BoolVar(&o.skipRestated, "skip-restated", false, "drop the definitions and statuses re-stated at segment starts (kept by default, restated=true)")
	fs.Int64Var(&o.rowGroup, "row-group", export.DefaultRowGroupRows, "parquet: rows per row group (the memory held)")
	fs.StringVar(&o.compression, "compression", string(export.Zstd), "parquet: zstd|snappy|gzip|none")
}

const exportUsage = "--dir D --out FILE|- [--format parquet|csv] [--from start|seq:N|time:T] [--to seq:N|time:T] " +
	"[--instrument SYM|ID,...] [--type T,...] [--skip-restated] [--row-group N] [--compression zstd|snappy|gzip|none]"

// exportPlan is the validated command line.
type exportPlan struct {
	format export.Format
	popts  export.ParquetOptions
	from   reader.Position
	filter export.Filter
}

func (o *exportOptions) plan(fs *pflag.FlagSet) (exportPlan, error) {
	var p exportPlan
	if strings.TrimSpace(o.out) == "" {
		return p, usagef("--out is required (a file, or - for stdout)")
	}
	f := o.format
	if f == "" {
		switch strings.ToLower(filepath.Ext(o.out)) {
		case ".parquet", ".pq":
			f = "parquet"
		case ".csv":
			f = "csv"
		default:
			return p, usagef("--format is required (parquet or csv): --out %q has no .parquet or .csv extension", o.out)
		}
	}
	var err error
	if p.format, err = export.ParseFormat(f); err != nil {
		return p, usagef("--format %q: want parquet or csv", f)
	}
	if p.format != export.Parquet && (fs.Changed("row-group") || fs.Changed("compression")) {
		return p, usagef("--row-group and --compression apply to --format parquet only")
	}
	if o.rowGroup < 1 {
		return p, usagef("--row-group %d: want at least 1", o.rowGroup)
	}
	p.popts = export.ParquetOptions{RowGroupRows: o.rowGroup, Compression: export.Compression(o.compression),
		CreatedBy: "mdjournal journalctl export"}
	if _, err := export.NewParquet(io.Discard, p.popts); err != nil {
		return p, usagef("--compression %q: want zstd, snappy, gzip or none", o.compression)
	}
	if p.from, err = reader.ParsePosition(o.from); err != nil {
		return p, usagef("--from: %v", err)
	}
	if o.to != "" {
		tp, err := reader.ParsePosition(o.to)
		to, ok := reader.BoundOf(tp)
		if err != nil || !ok {
			return p, usagef("--to %q: want seq:N or time:T (%s)", o.to, reader.TimeSyntax)
		}
		if to.Seq != 0 {
			p.filter.ToSeq = to.Seq
		} else {
			p.filter.ToTime = time.Unix(0, to.TS)
		}
	}
	for _, s := range splitList(o.instrument) {
		if n, err := strconv.ParseUint(s, 10, 32); err == nil {
			p.filter.Instruments = append(p.filter.Instruments, uint32(n))
		} else if err := journal.CheckSymbol(s); err != nil {
			return p, usagef("--instrument %q: neither an id (0..4294967295) nor a symbol: %v", s, err)
		} else {
			p.filter.Symbols = append(p.filter.Symbols, s)
		}
	}
	if o.instrument != "" && len(p.filter.Instruments)+len(p.filter.Symbols) == 0 {
		return p, usagef("--instrument %q names no instrument", o.instrument)
	}
	for _, s := range splitList(o.types) {
		t, err := journal.ParseMsgType(s)
		if err != nil {
			return p, usagef("--type %q: want message type names such as trade,quote,book_level,order_add", s)
		}
		p.filter.Types = append(p.filter.Types, t)
	}
	if o.types != "" && len(p.filter.Types) == 0 {
		return p, usagef("--type %q names no type", o.types)
	}
	p.filter.SkipRestated = o.skipRestated
	return p, nil
}

// splitList splits a comma-separated flag value, dropping empty items.
func splitList(s string) []string {
	var out []string
	for _, x := range strings.Split(s, ",") {
		if x = strings.TrimSpace(x); x != "" {
			out = append(out, x)
		}
	}
	return out
}

func runExport(env *Env, args []string) error {
	var o exportOptions
	fs := flagSet(env, "export", exportUsage, o.AddFlags)
	if err := parseDirVerb(fs, args, &o.dir); err != nil {
		return err
	}
	p, err := o.plan(fs)
	if err != nil {
		return err
	}
	r, err := reader.Open(o.dir, reader.Options{From: p.from})
	if err != nil {
		return err
	}
	defer r.Close()

	// The output: stdout, or a temporary file beside FILE renamed over it
	// once complete, so FILE is never a truncated export.
	var dst io.Writer = env.Stdout
	var tmp *os.File
	summary := env.Stdout
	if o.out == "-" {
		summary = env.Stderr
	} else {
		tmp, err = os.CreateTemp(filepath.Dir(o.out), "."+filepath.Base(o.out)+".tmp*")
		if err != nil {
			return err
		}
		defer func() {
			if tmp != nil { // not renamed: an error on the way
				tmp.Close()
				os.Remove(tmp.Name())
			}
		}()
		dst = tmp
	}
	bw := bufio.NewWriterSize(dst, 1<<20)
	sink, err := export.New(p.format, bw, p.popts, export.CSVOptions{})
	if err != nil {
		return err
	}
	opts := export.Options{Filter: p.filter}
	bar := exportProgress(env, o.dir, r.LastSeq(), p.filter.ToSeq)
	if bar != nil {
		start := r.LastSeq()
		opts.Progress = func(seq uint64, _ int64) { bar.Set64(int64(seq - start)) }
	}
	t0 := time.Now()
	st, err := export.Run(env.Ctx, r, sink, opts)
	if bar != nil {
		bar.Finish()
		fmt.Fprintln(env.Stderr)
	}
	if err == nil {
		err = sink.Close()
	}
	if err == nil {
		err = bw.Flush()
	}
	var size int64
	if err == nil && tmp != nil {
		err = finishExportFile(tmp, o.out, &size)
		if err == nil {
			tmp = nil
		}
	}
	if err != nil {
		return fmt.Errorf("export to %s: after %d frames read, %d rows: %w", o.out, st.Frames, st.Rows, err)
	}
	secs := time.Since(t0).Seconds()
	fmt.Fprintf(summary, "format=%s rows=%d frames=%d first_seq=%d last_seq=%d bytes=%d seconds=%.3f rows/s=%.0f out=%s\n",
		p.format, st.Rows, st.Frames, st.FirstSeq, st.LastSeq, size, secs, float64(st.Rows)/max(secs, 1e-9), o.out)
	return nil
}

// finishExportFile makes the temporary file durable and renames it to
// path, reporting its size.
func finishExportFile(tmp *os.File, path string, size *int64) error {
	if err := tmp.Chmod(0o644); err != nil {
		return err
	}
	if err := tmp.Sync(); err != nil {
		return err
	}
	st, err := tmp.Stat()
	if err != nil {
		return err
	}
	*size = st.Size()
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// exportProgress returns a progress bar over the seqs still to read, on
// stderr, or nil when stderr is not a terminal.
func exportProgress(env *Env, dir string, start, toSeq uint64) *progressbar.ProgressBar {
	errf, ok := env.Stderr.(*os.File)
	if !ok || !term.IsTerminal(int(errf.Fd())) {
		return nil
	}
	end := start
	if r, err := reader.Open(dir, reader.Options{From: reader.End()}); err == nil {
		end = r.LastSeq()
		r.Close()
	}
	if toSeq != 0 && toSeq < end {
		end = toSeq
	}
	if end <= start {
		return nil
	}
	return progressbar.NewOptions64(int64(end-start),
		progressbar.OptionSetWriter(errf),
		progressbar.OptionSetDescription("exporting"),
		progressbar.OptionShowCount(),
		progressbar.OptionSetItsString("frames"),
		progressbar.OptionShowIts(),
		progressbar.OptionThrottle(100*time.Millisecond),
		progressbar.OptionSetPredictTime(true),
		progressbar.OptionFullWidth())
}
