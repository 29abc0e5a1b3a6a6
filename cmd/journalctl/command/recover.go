package command

import (
	"errors"
	"fmt"
	"io"

	"github.com/spf13/pflag"

	"github.com/mdjournal/mdjournal/ops/inspect"
	"github.com/mdjournal/mdjournal/ops/repair"
	"github.com/mdjournal/mdjournal/ops/verify"
)

type recoverOptions struct {
	dir        string
	dryRun     bool
	truncateAt string
	json       bool
}

func (o *recoverOptions) AddFlags(fs *pflag.FlagSet) {
	fs.StringVar(&o.dir, "dir", "", "journal directory")
	fs.BoolVar(&o.dryRun, "dry-run", false, "print what would be done and change nothing")
	fs.StringVar(&o.truncateAt, "truncate-at", "", "FILE:OFFSET: cut there (bytes saved to FILE.broken, later segments moved to orphaned-<time>/)")
	fs.BoolVar(&o.json, "json", false, "print one JSON object")
}

// recoverJSON is the stable --json shape (docs/issue5-readme.md).
type recoverJSON struct {
	Dir     string          `json:"dir"`
	DryRun  bool            `json:"dry_run"`
	Actions []repair.Action `json:"actions"`
	Refused []problemJSON   `json:"refused"`
	OK      bool            `json:"ok"` // verify passes afterwards (false on a dry run with problems)
	After   []problemJSON   `json:"after"`
}

func runRecover(env *Env, args []string) error {
	var o recoverOptions
	fs := flagSet(env, "recover", "--dir D [--dry-run] [--truncate-at FILE:OFFSET] [--json]", o.AddFlags)
	if err := parseDirVerb(fs, args, &o.dir); err != nil {
		return err
	}
	opts := repair.Options{DryRun: o.dryRun}
	if o.truncateAt != "" {
		c, err := repair.ParseCut(o.truncateAt)
		if err != nil {
			return usagef("%v", err)
		}
		opts.TruncateAt = &c
	}
	res, err := repair.Recover(o.dir, opts)
	if res == nil {
		return err
	}
	toJSON := func(ps []verify.Problem) []problemJSON {
		out := []problemJSON{}
		for _, p := range ps {
			out = append(out, problemJSON{Severity: string(p.Severity), File: relFile(o.dir, p.Err.File), Offset: p.Err.Offset, Kind: kindOf(p.Err), Reason: p.Err.Reason})
		}
		return out
	}
	var after []verify.Problem
	if res.After != nil {
		after = res.After.Problems
	}
	ok := res.After != nil && res.After.OK()
	if o.json {
		out := recoverJSON{Dir: o.dir, DryRun: o.dryRun, Actions: res.Actions, Refused: toJSON(res.Refused), OK: ok, After: toJSON(after)}
		if out.Actions == nil {
			out.Actions = []repair.Action{}
		}
		if werr := writeJSON(env.Stdout, out); werr != nil {
			return werr
		}
	} else {
		printRecover(env.Stdout, o.dir, res, err)
	}
	switch {
	case errors.Is(err, repair.ErrUnrepaired):
		return errDataProblem
	case err != nil:
		return err
	case res.After != nil && !res.After.OK():
		fmt.Fprintf(env.Stderr, "journalctl recover: verify still finds %d problem(s) after repair; see journalctl verify --dir %s\n", len(res.After.Problems), o.dir)
		return errDataProblem
	}
	return nil
}

func printRecover(w io.Writer, dir string, res *repair.Result, err error) {
	verbPrefix := ""
	if res.DryRun {
		verbPrefix = "would "
		fmt.Fprintf(w, "dry run: nothing is changed in %s\n", dir)
	}
	if len(res.Actions) == 0 {
		fmt.Fprintf(w, "nothing to repair automatically\n")
	}
	for i, a := range res.Actions {
		where := a.File
		if a.To != 0 || a.From != 0 {
			where = fmt.Sprintf("%s [%d,%d)", a.File, a.From, a.To)
			if a.Op == "set_cursor" || a.Op == "extend" {
				where = fmt.Sprintf("%s %d → %d", a.File, a.From, a.To)
			}
		}
		fmt.Fprintf(w, "%2d. %s%-14s %s\n      %s\n", i+1, verbPrefix, a.Op, where, a.Detail)
	}
	for _, p := range res.Refused {
		fmt.Fprintf(w, "NOT REPAIRED %s: offset %d: %s\n      next: %s\n", relFile(dir, p.Err.File), p.Err.Offset, p.Err.Reason, inspect.Hint(dir, p))
	}
	if res.After != nil {
		if res.After.OK() {
			fmt.Fprintf(w, "verify: OK (%d segments, %d frames, seq %d..%d)\n", len(res.After.Segments), res.After.Frames, res.After.FirstSeq, res.After.LastSeq)
		} else {
			fmt.Fprintf(w, "verify: %d problem(s) remain\n", len(res.After.Problems))
		}
	}
}
