package command

import (
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/mdjournal/mdjournal/ops/retention"
	"github.com/spf13/pflag"
)

type pruneOptions struct {
	dir          string
	keep         time.Duration
	keepSegments int
	dryRun       bool
	force        bool
	json         bool
}

func (o *pruneOptions) AddFlags(fs *pflag.FlagSet) {
	fs.StringVar(&o.dir, "dir", "", "journal directory")
	fs.DurationVar(&o.keep, "keep", 0, "keep segments with frames newer than the newest frame's time minus this (event time)")
	fs.IntVar(&o.keepSegments, "keep-segments", 0, "keep the newest N segments")
	fs.BoolVar(&o.dryRun, "dry-run", false, "print what would be deleted; delete nothing")
	fs.BoolVar(&o.force, "force", false, "also delete segments a named reader still needs")
	fs.BoolVar(&o.json, "json", false, "print one JSON object")
}

func runPrune(env *Env, args []string) error {
	var o pruneOptions
	fs := flagSet(env, "prune", "--dir D (--keep DURATION | --keep-segments N) [--dry-run] [--force] [--json]", o.AddFlags)
	if err := parseDirVerb(fs, args, &o.dir); err != nil {
		return err
	}
	if fs.Changed("keep") == fs.Changed("keep-segments") {
		return usagef("give exactly one of --keep DURATION or --keep-segments N")
	}
	if fs.Changed("keep") && o.keep <= 0 {
		return usagef("--keep must be a positive duration, e.g. 24h")
	}
	if fs.Changed("keep-segments") && o.keepSegments < 1 {
		return usagef("--keep-segments must be ≥ 1 (the active segment is always kept)")
	}
	res, err := retention.Prune(o.dir, retention.Options{Keep: o.keep, KeepSegments: o.keepSegments, DryRun: o.dryRun, Force: o.force})
	if err != nil {
		return err
	}
	if o.json {
		return writeJSON(env.Stdout, res)
	}
	verbWord := "deleted"
	if o.dryRun {
		verbWord = "would delete"
		fmt.Fprintf(env.Stdout, "dry run: nothing is deleted in %s\n", o.dir)
	}
	tw := tabwriter.NewWriter(env.Stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "SEGMENT\tSEQ\tLAST TS\tSIZE\tACTION\tWHY")
	for _, s := range res.Segments {
		act := s.Action
		if act == "delete" && o.dryRun {
			act = "would delete"
		}
		fmt.Fprintf(tw, "%s\t%d..%d\t%s\t%s\t%s\t%s\n", s.File, s.FirstSeq, s.LastSeq, dash(s.LastTS), kib(s.Bytes), act, s.Why)
	}
	tw.Flush()
	fmt.Fprintf(env.Stdout, "%s %d segment(s), %s\n", verbWord, res.Deleted, kib(res.Freed))
	return nil
}
