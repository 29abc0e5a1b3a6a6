package retention

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/mdjournal/mdjournal/internal/fsx"
	"github.com/mdjournal/mdjournal/internal/segfile"
	"github.com/mdjournal/mdjournal/journal"
	"github.com/mdjournal/mdjournal/ops/maint"
	"github.com/mdjournal/mdjournal/reader"
)

// Options select what retention keeps. Exactly one of Keep and
// KeepSegments is set.
type Options struct {
	// Keep keeps every segment holding a frame newer than the journal's last
	// timestamp minus Keep. Age is measured in event time against the newest
	// frame, not the wall clock, so an imported historical day is retained
	// the same way as a live one (a wall-clock rule would delete all of it).
	Keep time.Duration
	// KeepSegments keeps the newest N segments (active included; prepared
	// ones are not counted).
	KeepSegments int
	DryRun       bool
	// Force prunes segments that a named reader still needs; that reader's
	// next Open fails with reader.ErrOutOfRange.
	Force bool
}

// Action is Prune's decision for a segment.
type Action string

// Decisions.
const (
	Delete Action = "delete"
	Keep   Action = "keep"
)

// Segment is one segment considered by Prune.
type Segment struct {
	File     string
	Number   uint64
	FirstSeq uint64
	LastSeq  uint64 // of the last data frame (for the active segment: now)
	LastTS   string
	Active   bool  // the active segment (not sealed)
	Bytes    int64 // segment + index on disk
	Action   Action
	Why      string
}

// Result lists the decision for every segment, oldest first.
type Result struct {
	Dir      string
	DryRun   bool
	Segments []Segment
	Deleted  int
	Freed    int64
}

// Prune holds the maintenance lock (journal.maint) while it runs. It deletes sealed segments (raw or compressed) and their indexes from
// the oldest on, stopping at the first one that must stay, so the journal
// always remains one contiguous run of segments. It never deletes the
// active segment, nor — unless Force — a segment a named reader still needs
// (its position is inside or before the segment, so its next frame is in
// it or later). Files are deleted oldest first, so a crash midway
// leaves a shorter but valid journal.
func Prune(dir string, opts Options) (*Result, error) {
	if (opts.Keep > 0) == (opts.KeepSegments > 0) {
		return nil, fmt.Errorf("prune: give exactly one of a keep duration or a segment count")
	}
	ml, err := maint.Lock(dir, "prune")
	if err != nil {
		return nil, err
	}
	defer ml.Release()
	ents, err := segfile.List(dir)
	if err != nil {
		return nil, err
	}
	if len(ents) == 0 {
		return nil, fmt.Errorf("%w: %s has no segment files", journal.ErrNotFound, dir)
	}
	type seg struct {
		e      segfile.Entry
		h      journal.Header
		st     journal.State
		ends   segfile.Ends
		ok     bool
		sealed bool
	}
	var segs []seg
	var newest int64
	for _, e := range ents {
		s := seg{e: e}
		h, _, _, err := segfile.ReadHeader(dir, e.Num)
		s.ok = err == nil && h.Magic() == journal.SegmentMagic
		s.h = h
		if s.ok && h.Prepared() {
			continue // prepared: not part of the data
		}
		if s.ok {
			st, _, ok := h.State()
			s.st, s.ok = st, ok
		}
		if s.ok {
			if s.ends, err = segfile.ScanEnds(dir, e); err != nil {
				s.ok = false
			}
			s.sealed = s.st.Sealed() && s.ends.Sealed && s.ends.LastSeq == s.st.LastSeq
			newest = max(newest, s.ends.LastTS)
		}
		segs = append(segs, s)
	}
	named, err := reader.ListNamed(dir)
	if err != nil {
		return nil, fmt.Errorf("prune: reading named reader positions: %w (fix or remove the file; prune needs them to know what is still needed)", err)
	}
	res := &Result{Dir: dir, DryRun: opts.DryRun}
	stop := ""
	for i, s := range segs {
		ps := Segment{File: filepath.Base(s.e.Path), Number: s.e.Num, Action: Keep}
		if s.ok {
			ps.FirstSeq, ps.LastSeq, ps.LastTS = s.h.FirstSeq(), s.ends.LastSeq, tsString(s.ends.LastTS)
			ps.Active = !s.sealed
		}
		ps.Bytes = fileSize(s.e.Path) + fileSize(journal.IndexPath(dir, s.e.Num))
		why := ""
		switch {
		case stop != "":
			why = "after a segment that stays (" + stop + ")"
		case !s.ok:
			why = "header or state unreadable: run journalctl verify"
		case !s.sealed:
			why = "active segment"
		case i > 0 && s.e.Num != segs[i-1].e.Num+1:
			why = "not contiguous with the previous segment"
		case opts.KeepSegments > 0 && len(segs)-i <= opts.KeepSegments:
			why = fmt.Sprintf("among the newest %d segments", opts.KeepSegments)
		case opts.Keep > 0 && s.ends.LastTS > newest-int64(opts.Keep):
			why = fmt.Sprintf("its last frame is within %s of the newest frame (%s)", opts.Keep, tsString(newest))
		}
		if why == "" {
			for _, r := range named {
				if r.Empty {
					continue // no position: it starts from its Options.From, needing nothing
				}
				if r.Seq < s.st.LastSeq { // its next frame (Seq+1) is in or before this segment
					if opts.Force {
						ps.Why = fmt.Sprintf("--force: named reader %q at seq %d still needs it (it will get reader.ErrOutOfRange)", r.Name, r.Seq)
					} else {
						why = fmt.Sprintf("named reader %q at seq %d still needs it (--force overrides)", r.Name, r.Seq)
					}
					break
				}
			}
		}
		if why != "" {
			ps.Why = why
			if stop == "" {
				stop = fmt.Sprintf("segment %d: %s", s.e.Num, why)
			}
			res.Segments = append(res.Segments, ps)
			continue
		}
		ps.Action = Delete
		if ps.Why == "" {
			ps.Why = "older than the retention"
		}
		if !opts.DryRun {
			if err := deleteSegment(dir, s.e.Num); err != nil {
				return res, fmt.Errorf("prune: deleting segment %d: %w (segments before it are gone; the journal now starts at this one)", s.e.Num, err)
			}
		}
		res.Deleted++
		res.Freed += ps.Bytes
		res.Segments = append(res.Segments, ps)
	}
	return res, nil
}

// deleteSegment removes a segment (both forms if both exist: during
// compression the raw one is authoritative, so it goes last) and its
// index, then fsyncs the directory.
func deleteSegment(dir string, n uint64) error {
	for _, p := range []string{journal.ArchivePath(dir, n), journal.SegmentPath(dir, n), journal.IndexPath(dir, n)} {
		if err := fsx.RemoveRegular(p); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
	}
	return fsx.SyncDir(dir)
}

func fileSize(p string) int64 {
	if st, err := os.Stat(p); err == nil {
		return st.Size()
	}
	return 0
}

func tsString(ns int64) string {
	if ns == 0 {
		return ""
	}
	return time.Unix(0, ns).UTC().Format(time.RFC3339Nano)
}
