package command

import (
	"errors"

	"github.com/spf13/pflag"

	"github.com/mdjournal/mdjournal/journal"
	"github.com/mdjournal/mdjournal/reader"
	"github.com/mdjournal/mdjournal/wait"
)

// rangeOptions are the flags shared by dump and tail.
type rangeOptions struct {
	dir    string
	from   string
	to     string
	format string
	count  int64
	wait   string
}

func (o *rangeOptions) addCommon(fs *pflag.FlagSet, defFrom string) {
	fs.StringVar(&o.dir, "dir", "", "journal directory")
	fs.StringVar(&o.from, "from", defFrom, "start|end|seq:N|time:RFC3339Nano")
	fs.Int64Var(&o.count, "count", 0, "stop after N frames (0 = no limit)")
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
	fs.StringVar(&o.format, "format", fmtText, "text|json")
}

// bound is an inclusive upper limit on seq or time.
type bound struct {
	seq uint64
	ts  int64
	set bool
}

func parseTo(s string) (bound, error) {
	if s == "" {
		return bound{}, nil
	}
	b, ok := boundOf(s)
	if !ok {
		return bound{}, usagef("--to %q: want seq:N or time:RFC3339Nano", s)
	}
	return b, nil
}

// boundOf turns seq:N or time:T into a bound; false for anything else
// (start and end included), for the caller to word the usage error.
func boundOf(s string) (bound, bool) {
	p, err := reader.ParsePosition(s)
	if err != nil || p.String() == "start" || p.String() == "end" {
		return bound{}, false
	}
	b := bound{set: true}
	if seq, ok := p.SeqValue(); ok {
		b.seq = seq
	} else {
		b.ts, _ = p.TimeValue()
	}
	return b, true
}

func (b bound) past(f *journal.Frame) bool {
	if !b.set {
		return false
	}
	if b.seq != 0 {
		return f.Seq > b.seq
	}
	return f.TS > b.ts
}

func runDump(env *Env, args []string) error {
	var o dumpOptions
	fs := flagSet(env, "dump", "--dir D [--from start|end|seq:N|time:T] [--to seq:N|time:T] [--format text|json|csv] [--count N]", o.AddFlags)
	if err := parseDirVerb(fs, args, &o.dir); err != nil {
		return err
	}
	if err := checkFormat(o.format, fmtText, fmtJSON, fmtCSV); err != nil {
		return err
	}
	from, err := reader.ParsePosition(o.from)
	if err != nil {
		return usagef("--from: %v", err)
	}
	to, err := parseTo(o.to)
	if err != nil {
		return err
	}
	r, err := reader.Open(o.dir, reader.Options{From: from})
	if err != nil {
		return err
	}
	defer r.Close()
	in := instruments{}
	in.preload(o.dir)
	p := newPrinter(env.Stdout, o.format, in)
	defer p.flush()
	var n int64
	for o.count == 0 || n < o.count {
		if n&4095 == 0 && env.Ctx.Err() != nil {
			break
		}
		f, ok, err := r.TryNext()
		if err != nil {
			p.flush()
			return err
		}
		if !ok || to.past(&f) {
			break
		}
		p.print(&f)
		n++
	}
	return p.flush()
}

func runTail(env *Env, args []string) error {
	var o tailOptions
	fs := flagSet(env, "tail", "--dir D [--from start|end|seq:N|time:T] [--count N] [--wait spin|yield|backoff|futex] [--format text|json]", o.AddFlags)
	if err := parseDirVerb(fs, args, &o.dir); err != nil {
		return err
	}
	if err := checkFormat(o.format, fmtText, fmtJSON); err != nil {
		return err
	}
	from, err := reader.ParsePosition(o.from)
	if err != nil {
		return usagef("--from: %v", err)
	}
	ws, err := wait.Parse(o.wait)
	if err != nil {
		return usagef("--wait: %v", err)
	}
	r, err := reader.Open(o.dir, reader.Options{From: from, Wait: ws})
	if err != nil {
		return err
	}
	defer r.Close()
	go func() {
		<-env.Ctx.Done()
		r.Interrupt()
	}()
	in := instruments{}
	in.preload(o.dir)
	p := newPrinter(env.Stdout, o.format, in)
	defer p.flush()
	var n int64
	for o.count == 0 || n < o.count {
		f, ok, err := r.TryNext()
		if err == nil && !ok {
			// Nothing ready: flush what we printed, then block.
			p.flush()
			f, err = r.Next()
		}
		if errors.Is(err, reader.ErrInterrupted) {
			break
		}
		if err != nil {
			p.flush()
			return err
		}
		p.print(&f)
		n++
	}
	return p.flush()
}
