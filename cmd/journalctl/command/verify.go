package command

import (
	"encoding/json"
	"fmt"
	"path/filepath"

	"github.com/spf13/pflag"

	"github.com/mdjournal/mdjournal/verify"
)

func init() {
	register(verb{name: "verify", summary: "check every header, frame, index and sequence; exit 1 on any problem", run: runVerify})
}

type verifyOptions struct {
	dir  string
	json bool
}

func (o *verifyOptions) AddFlags(fs *pflag.FlagSet) {
	fs.StringVar(&o.dir, "dir", "", "journal directory")
	fs.BoolVar(&o.json, "json", false, "print one JSON object")
}

// verifyJSON is the stable --json shape (documented in README).
type verifyJSON struct {
	OK         bool          `json:"ok"`
	Dir        string        `json:"dir"`
	JournalID  string        `json:"journal_id"`
	Segments   int           `json:"segments"`
	Frames     int64         `json:"frames"`
	FirstSeq   uint64        `json:"first_seq"`
	LastSeq    uint64        `json:"last_seq"`
	WriterPID  int           `json:"writer_pid"`
	WriterLive bool          `json:"writer_live"`
	Problems   []problemJSON `json:"problems"`
}

type problemJSON struct {
	Severity string `json:"severity"`
	File     string `json:"file"`
	Offset   int64  `json:"offset"`
	Kind     string `json:"kind"`
	Reason   string `json:"reason"`
}

// kindOf names a corruption sentinel for JSON (stable identifiers).
func kindOf(err error) string { return verify.Kind(err) }

func runVerify(env *Env, args []string) error {
	var o verifyOptions
	fs := flagSet(env, "verify", "--dir D [--json]", o.AddFlags)
	if err := parse(fs, args); err != nil {
		return err
	}
	if err := noArgs(fs); err != nil {
		return err
	}
	if err := requireDir(o.dir); err != nil {
		return err
	}
	rep, err := verify.Journal(o.dir, verify.Options{})
	if err != nil {
		return err
	}
	if o.json {
		out := verifyJSON{OK: rep.OK(), Dir: o.dir, JournalID: fmt.Sprintf("%016x", rep.JournalID), Segments: len(rep.Segments),
			Frames: rep.Frames, FirstSeq: rep.FirstSeq, LastSeq: rep.LastSeq, WriterPID: rep.WriterPID, WriterLive: rep.WriterLive,
			Problems: []problemJSON{}}
		for _, p := range rep.Problems {
			out.Problems = append(out.Problems, problemJSON{Severity: string(p.Severity), File: relFile(o.dir, p.Err.File),
				Offset: p.Err.Offset, Kind: kindOf(p.Err), Reason: p.Err.Reason})
		}
		enc := json.NewEncoder(env.Stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(out); err != nil {
			return err
		}
	} else {
		for _, p := range rep.Problems {
			fmt.Fprintf(env.Stdout, "%-6s %s: offset %d: %s\n", p.Severity, relFile(o.dir, p.Err.File), p.Err.Offset, p.Err.Reason)
		}
		status := "OK"
		if !rep.OK() {
			status = fmt.Sprintf("%d PROBLEM(S)", len(rep.Problems))
		}
		fmt.Fprintf(env.Stdout, "%s: %d segments, %d frames, seq %d..%d: %s\n", o.dir, len(rep.Segments), rep.Frames, rep.FirstSeq, rep.LastSeq, status)
	}
	if !rep.OK() {
		return errDataProblem
	}
	return nil
}

// relFile shows files inside the journal directory by base name, so output
// does not depend on where the journal lives.
func relFile(dir, file string) string {
	if rel, err := filepath.Rel(dir, file); err == nil && filepath.Dir(rel) == "." {
		return rel
	}
	return file
}
