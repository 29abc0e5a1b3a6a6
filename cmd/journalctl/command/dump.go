package command

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/mdjournal/mdjournal/journal"
	"github.com/mdjournal/mdjournal/reader"
	"github.com/mdjournal/mdjournal/wait"
)

// rangeOptions are the flags shared by dump and tail.
type rangeOptions struct {
	dir         string
	from        string
	to          string
	format      string
	count       int64
	wait        string
	instruments []string
	types       []string
	tz          string
	name        string
}

func (o *rangeOptions) addCommon(fs *pflag.FlagSet, defFrom string) {
	fs.StringVar(&o.dir, "dir", "", "journal directory")
	fs.StringVar(&o.from, "from", defFrom, "start|end|seq:N|time:T ("+reader.TimeSyntax+")")
	fs.Int64Var(&o.count, "count", 0, "stop after N frames (0 = no limit)")
	fs.StringSliceVar(&o.instruments, "instrument", nil, "only these instruments: symbols or ids, comma-separated")
	fs.StringSliceVar(&o.types, "type", nil, "only these message types, comma-separated (definitions and statuses of the selected instruments always pass)")
	fs.StringVar(&o.tz, "tz", "", "time zone (e.g. America/New_York) for times given without one, and for printed timestamps (default UTC)")
}

type dumpOptions struct{ rangeOptions }

func (o *dumpOptions) AddFlags(fs *pflag.FlagSet) {
	o.addCommon(fs, "start")
	fs.StringVar(&o.to, "to", "", "stop after seq:N or before the first frame past time:T")
	fs.StringVar(&o.format, "format", fmtText, "text|json|csv")
}

type tailOptions struct{ rangeOptions }

func (o *tailOptions) AddFlags(fs *pflag.FlagSet) {
	o.addCommon(fs, "end")
	fs.StringVar(&o.wait, "wait", "backoff", "spin|yield|backoff|futex")
	fs.StringVar(&o.format, "format", fmtText, "text|json|csv")
	fs.StringVar(&o.name, "name", "", "a named reader: resume after its stored position, store each frame printed (visible in stat)")
}

// rangeSetup is what dump and tail share once their flags are parsed.
type rangeSetup struct {
	from   reader.Position
	to     reader.Bound
	loc    *time.Location
	filter *reader.Filter
}

// setup validates the common flags; every problem is a usage error except
// an instrument the journal does not define (a data problem, exit 1).
func (o *rangeOptions) setup(withTo bool) (rangeSetup, error) {
	var rs rangeSetup
	if o.count < 0 {
		return rs, usagef("--count %d: want 0 (no limit) or a positive number", o.count)
	}
	loc, err := parseTZ(o.tz)
	if err != nil {
		return rs, err
	}
	rs.loc = loc
	date := func() (time.Time, error) { return reader.FirstTime(o.dir) }
	if rs.from, err = reader.ParsePositionIn(o.from, loc, date); err != nil {
		return rs, usagef("--from: %v", err)
	}
	if withTo && o.to != "" {
		p, err := reader.ParsePositionIn(o.to, loc, date)
		b, ok := reader.BoundOf(p)
		if err != nil || !ok {
			return rs, usagef("--to %q: want seq:N or time:T (%s)", o.to, reader.TimeSyntax)
		}
		rs.to = b
	}
	var types []journal.MsgType
	if len(o.types) > 0 {
		if types, err = reader.ParseTypes(strings.Join(o.types, ",")); err != nil {
			return rs, usagef("--type: %v", err)
		}
	}
	var cat *journal.Catalog
	if len(o.instruments) > 0 {
		if cat, err = reader.JournalCatalog(o.dir); err != nil {
			return rs, err
		}
	}
	rs.filter, err = reader.NewFilter(cat, o.instruments, types)
	if ts, ok := rs.from.TimeValue(); ok && err == nil {
		rs.filter.Since(ts)
	}
	if err != nil {
		if errors.Is(err, reader.ErrUnknownInstrument) {
			return rs, err
		}
		return rs, usagef("--instrument: %v", err)
	}
	return rs, nil
}

func parseTZ(name string) (*time.Location, error) {
	if name == "" {
		return time.UTC, nil
	}
	loc, err := time.LoadLocation(name)
	if err != nil {
		return nil, usagef("--tz %q: %v", name, err)
	}
	return loc, nil
}

func runDump(env *Env, args []string) error {
	var o dumpOptions
	fs := flagSet(env, "dump", "--dir D [--from start|end|seq:N|time:T] [--to seq:N|time:T] [--instrument SYM,...] [--type T,...] [--tz ZONE] [--format text|json|csv] [--count N]", o.AddFlags)
	if err := parseDirVerb(fs, args, &o.dir); err != nil {
		return err
	}
	if err := checkFormat(o.format, fmtText, fmtJSON, fmtCSV); err != nil {
		return err
	}
	rs, err := o.setup(true)
	if err != nil {
		return err
	}
	r, err := reader.Open(o.dir, reader.Options{From: rs.from})
	if err != nil {
		return err
	}
	defer r.Close()
	p := newPrinter(env.Stdout, o.format, r.Catalog())
	p.loc = rs.loc
	defer p.flush()
	var n int64
	for i := 0; o.count == 0 || n < o.count; i++ {
		if i&4095 == 0 && env.Ctx.Err() != nil {
			break
		}
		f, ok, err := r.TryNext()
		if err != nil {
			p.flush()
			return err
		}
		if !ok {
			break
		}
		if !rs.filter.Pass(&f) {
			continue
		}
		if rs.to.Past(&f) { // a time bound stops at the first selected frame past it (format.md §5)
			break
		}
		if err := p.print(&f); err != nil {
			return err
		}
		n++
	}
	return p.flush()
}

func runTail(env *Env, args []string) error {
	var o tailOptions
	fs := flagSet(env, "tail", "--dir D [--from start|end|seq:N|time:T] [--instrument SYM,...] [--type T,...] [--tz ZONE] [--name N] [--count N] [--wait spin|yield|backoff|futex] [--format text|json|csv]", o.AddFlags)
	if err := parseDirVerb(fs, args, &o.dir); err != nil {
		return err
	}
	if err := checkFormat(o.format, fmtText, fmtJSON, fmtCSV); err != nil {
		return err
	}
	if o.name != "" && !reader.ValidName(o.name) {
		return usagef("--name %q: letters, digits, '.', '_' and '-', at most 64", o.name)
	}
	rs, err := o.setup(false)
	if err != nil {
		return err
	}
	ws, err := wait.Parse(o.wait)
	if err != nil {
		return usagef("--wait: %v", err)
	}
	r, err := reader.Open(o.dir, reader.Options{From: rs.from, Wait: ws, Name: o.name})
	if err != nil {
		return err
	}
	defer r.Close()
	p := newPrinter(env.Stdout, o.format, r.Catalog())
	p.loc = rs.loc
	defer p.flush()
	var n int64
	for o.count == 0 || n < o.count {
		f, ok, err := r.TryNext()
		if err == nil && !ok {
			// Nothing ready: flush what we printed, then block.
			p.flush()
			f, err = r.NextContext(env.Ctx)
		}
		if errors.Is(err, reader.ErrInterrupted) || errors.Is(err, context.Canceled) {
			break
		}
		if err != nil {
			p.flush()
			return err
		}
		if !rs.filter.Pass(&f) {
			continue
		}
		if err := p.print(&f); err != nil {
			return err
		}
		n++
	}
	return p.flush()
}
