package retention

import (
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/mdjournal/mdjournal/internal/archive"
	"github.com/mdjournal/mdjournal/journal"
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

// Segment is one segment considered by Prune.
type Segment struct {
	File     string `json:"file"`
	Number   uint64 `json:"number"`
	FirstSeq uint64 `json:"first_seq"`
	LastSeq  uint64 `json:"last_seq"`
	LastTS   string `json:"last_ts"`
	Bytes    int64  `json:"bytes"`  // segment + index on disk
	Action   string `json:"action"` // "delete", "keep"
	Why      string `json:"why"`
}

// Result lists the decision for every segment, oldest first.
type Result struct {
	Dir      string    `json:"dir"`
	DryRun   bool      `json:"dry_run"`
	Segments []Segment `json:"segments"`
	Deleted  int       `json:"deleted"`
	Freed    int64     `json:"freed_bytes"`
}

// Prune deletes sealed segments (raw or compressed) and their indexes from
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
	nums, err := journal.ListSegments(dir)
	if err != nil {
		return nil, err
	}
	if len(nums) == 0 {
		return nil, fmt.Errorf("%w: %s has no segment files", journal.ErrNotFound, dir)
	}
	type seg struct {
		n        uint64
		path     string
		archived bool
		h        journal.Header
		lastTS   int64
		ok       bool
	}
	var segs []seg
	var newest int64
	for _, n := range nums {
		path, archived := journal.SegmentFile(dir, n)
		s := seg{n: n, path: path, archived: archived}
		b := make([]byte, journal.SegmentHeaderSize)
		if f, err := os.Open(path); err == nil {
			k, _ := f.ReadAt(b, 0)
			f.Close()
			s.ok = k == len(b) && string(b[:8]) == journal.SegmentMagic
		}
		s.h = journal.HeaderOf(b)
		if s.ok && !s.h.Active() {
			continue // prepared: not part of the data
		}
		if s.ok {
			s.lastTS = lastTS(s.path, s.archived, s.h)
			newest = max(newest, s.lastTS)
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
		ps := Segment{File: filepath.Base(s.path), Number: s.n, Action: "keep"}
		if s.ok {
			ps.FirstSeq, ps.LastSeq, ps.LastTS = s.h.FirstSeq(), s.h.LastSeq(), tsString(s.lastTS)
		}
		ps.Bytes = fileSize(s.path) + fileSize(journal.IndexPath(dir, s.n))
		why := ""
		switch {
		case stop != "":
			why = "after a segment that stays (" + stop + ")"
		case !s.ok:
			why = "header unreadable: run journalctl verify"
		case !s.h.Sealed():
			why = "active segment"
		case i > 0 && s.n != segs[i-1].n+1:
			why = "not contiguous with the previous segment"
		case opts.KeepSegments > 0 && len(segs)-i <= opts.KeepSegments:
			why = fmt.Sprintf("among the newest %d segments", opts.KeepSegments)
		case opts.Keep > 0 && s.lastTS > newest-int64(opts.Keep):
			why = fmt.Sprintf("its last frame is within %s of the newest frame (%s)", opts.Keep, tsString(newest))
		}
		if why == "" {
			for _, r := range named {
				if r.Seq < s.h.LastSeq() { // its next frame (Seq+1) is in or before this segment
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
				stop = fmt.Sprintf("segment %d: %s", s.n, why)
			}
			res.Segments = append(res.Segments, ps)
			continue
		}
		ps.Action = "delete"
		if ps.Why == "" {
			ps.Why = "older than the retention"
		}
		if !opts.DryRun {
			if err := deleteSegment(dir, s.n); err != nil {
				return res, fmt.Errorf("prune: deleting segment %d: %w (segments before it are gone; the journal now starts at this one)", s.n, err)
			}
		}
		res.Deleted++
		res.Freed += ps.Bytes
		res.Segments = append(res.Segments, ps)
	}
	return res, nil
}

// deleteSegment removes a segment (both forms if both exist: during
// compression the raw one is authoritative, so it goes last) and its index.
func deleteSegment(dir string, n uint64) error {
	for _, p := range []string{archive.Path(dir, n), journal.SegmentPath(dir, n), journal.IndexPath(dir, n)} {
		if err := os.Remove(p); err != nil && !os.IsNotExist(err) {
			return err
		}
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
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

// lastTS finds a segment's last frame timestamp by scanning it (headers do
// not record times; a sealed 64 MiB segment scans in tens of milliseconds).
func lastTS(path string, archived bool, h journal.Header) int64 {
	var img []byte
	if archived {
		a, err := archive.Open(path)
		if err != nil {
			return 0
		}
		img, err = a.ReadAll()
		a.Close()
		if err != nil {
			return 0
		}
	} else {
		b, err := os.ReadFile(path)
		if err != nil {
			return 0
		}
		img = b
	}
	res := journal.ScanSegment(path, img, journal.SegmentHeaderSize, h.FirstSeq()-1, int64(len(img)), nil)
	return res.LastTS
}
