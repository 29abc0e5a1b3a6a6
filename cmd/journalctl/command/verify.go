package command

import (
	"encoding/json"
	"fmt"
	"path/filepath"

	"github.com/spf13/pflag"

	"github.com/mdjournal/mdjournal/ops/verify"
)

type verifyOptions struct {
	dir      string
	json     bool
	snapshot string
}

func (o *verifyOptions) AddFlags(fs *pflag.FlagSet) {
	fs.StringVar(&o.dir, "dir", "", "journal directory")
	fs.BoolVar(&o.json, "json", false, "print one JSON object")
	fs.StringVar(&o.snapshot, "snapshot", "", "also check this snapshot file against the journal (id, last_applied, every slot's book)")
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
	Snapshot   *snapshotJSON `json:"snapshot,omitempty"` // only with --snapshot
}

// snapshotJSON summarises the --snapshot check; its findings are in
// problems with severity "snapshot".
type snapshotJSON struct {
	File        string `json:"file"`
	JournalID   string `json:"journal_id"`
	LastApplied uint64 `json:"last_applied"`
	Slots       int    `json:"slots"`
	Checked     int    `json:"checked"`
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
	fs := flagSet(env, "verify", "--dir D [--snapshot FILE] [--json]", o.AddFlags)
	if err := parseDirVerb(fs, args, &o.dir); err != nil {
		return err
	}
	rep, err := verify.Journal(o.dir, verify.Options{})
	if err != nil {
		return err
	}
	var snap *verify.SnapshotReport
	if o.snapshot != "" {
		if snap, err = verify.Snapshot(o.dir, o.snapshot, rep); err != nil {
			return fmt.Errorf("snapshot %s: %w", o.snapshot, err)
		}
		rep.Problems = append(rep.Problems, snap.Problems...)
	}
	if o.json {
		out := verifyJSON{OK: rep.OK(), Dir: o.dir, JournalID: fmt.Sprintf("%016x", rep.JournalID), Segments: len(rep.Segments),
			Frames: rep.Frames, FirstSeq: rep.FirstSeq, LastSeq: rep.LastSeq, WriterPID: rep.WriterPID, WriterLive: rep.WriterLive,
			Problems: []problemJSON{}}
		if snap != nil {
			out.Snapshot = &snapshotJSON{File: o.snapshot, JournalID: fmt.Sprintf("%016x", snap.JournalID), LastApplied: snap.LastApplied, Slots: snap.Slots, Checked: snap.Checked}
		}
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
		if snap != nil {
			fmt.Fprintf(env.Stdout, "snapshot %s: last_applied %d, %d slot(s) with a book, %d compared with the rebuilt book\n", o.snapshot, snap.LastApplied, snap.Slots, snap.Checked)
		}
		if !rep.OK() {
			fmt.Fprintf(env.Stdout, "next: journalctl inspect --dir %s --hex shows the bytes; journalctl recover --dir %s --dry-run shows what can be repaired\n", o.dir, o.dir)
		}
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
