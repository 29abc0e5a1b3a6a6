// Package repair is explicit, operator-driven repair of a journal directory
// (`journalctl recover`) and retention (`journalctl prune`).
//
// What it repairs on its own is exactly what the writer's recovery (format.md
// §8) would, plus derived data: a torn tail of the last active segment (the
// bytes are saved to SEGMENT.broken first, then zeroed), a short active file
// (extended back to capacity), a write cursor outside its segment when the
// frames themselves are intact (the cursor is only a hint), and any sparse
// index that disagrees with its segment (rebuilt, §5). Damage followed by
// valid data, or inside a sealed segment, is reported and never cut — unless
// the operator names the cut with Options.TruncateAt, and then nothing is
// deleted: the cut bytes go to SEGMENT.broken and every later segment is moved
// into DIR/orphaned-<UTC time>/ (the lesson of nats-server #7549: silently
// dropping the rest of a log after one bad bit loses acknowledged writes).
//
// Repair takes the writer lock for its whole run, so no writer can start
// meanwhile, and refuses to run while a live writer holds it.
package repair

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/mdjournal/mdjournal/internal/archive"
	"github.com/mdjournal/mdjournal/internal/flock"
	"github.com/mdjournal/mdjournal/journal"
	"github.com/mdjournal/mdjournal/ops/verify"
	"github.com/mdjournal/mdjournal/writer"
)

// ErrWriterLive is returned while a live process holds the writer lock.
var ErrWriterLive = errors.New("repair: a live writer holds the journal lock")

// ErrUnrepaired is returned when damage remains that only the operator may cut.
var ErrUnrepaired = errors.New("repair: damage remains that is never cut automatically")

// Cut names an operator-chosen truncation point: segment file (base name or
// path) and byte offset.
type Cut struct {
	File   string
	Offset int64
}

// ParseCut reads FILE:OFFSET.
func ParseCut(s string) (Cut, error) {
	i := strings.LastIndexByte(s, ':')
	if i <= 0 {
		return Cut{}, fmt.Errorf("--truncate-at %q: want FILE:OFFSET, e.g. 00000000000000000002.seg:127592", s)
	}
	off, err := strconv.ParseInt(s[i+1:], 10, 64)
	if err != nil || off < 0 {
		return Cut{}, fmt.Errorf("--truncate-at %q: OFFSET must be a non-negative byte offset", s)
	}
	return Cut{File: s[:i], Offset: off}, nil
}

// Options control Recover.
type Options struct {
	DryRun     bool // plan and report; change nothing
	TruncateAt *Cut // operator-named cut (see the package comment)
	// Now stamps the orphaned-<time> directory (default time.Now).
	Now func() time.Time
}

// Action is one step of a repair, planned or done.
type Action struct {
	Op     string `json:"op"` // save_broken, zero, extend, set_cursor, unseal, move_aside, rebuild_index, writer_recover
	File   string `json:"file"`
	From   int64  `json:"from,omitempty"`
	To     int64  `json:"to,omitempty"`
	Detail string `json:"detail"`
	do     func() error
}

// Result says what Recover found and did.
type Result struct {
	Dir     string           `json:"dir"`
	DryRun  bool             `json:"dry_run"`
	Actions []Action         `json:"actions"`
	Refused []verify.Problem `json:"-"` // damage left alone (needs --truncate-at or a backup)
	Before  *verify.Report   `json:"-"`
	After   *verify.Report   `json:"-"` // nil on a dry run
}

type plan struct {
	dir     string
	rep     *verify.Report
	actions []Action
	refused []verify.Problem
	rebuilt map[uint64]bool
	writer  bool // run writer.Open + Close at the end
	segSize int64
}

func (p *plan) add(a Action) { p.actions = append(p.actions, a) }

// Recover repairs the journal in dir (see the package comment).
func Recover(dir string, opts Options) (*Result, error) {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	lockPath := filepath.Join(dir, journal.LockFile)
	if pid, held, err := flock.Holder(lockPath); err == nil && held {
		return nil, fmt.Errorf("%w: PID %d is writing %s; stop it first (a writer repairs a torn tail itself when it opens)", ErrWriterLive, pid, dir)
	}
	var lock *flock.Lock
	if !opts.DryRun {
		l, err := flock.Acquire(lockPath)
		if err != nil {
			var held *flock.HeldError
			if errors.As(err, &held) {
				return nil, fmt.Errorf("%w: PID %d is writing %s; stop it first", ErrWriterLive, held.PID, dir)
			}
			return nil, err
		}
		lock = l
		defer func() { lock.Release() }()
	}
	rep, err := verify.Journal(dir, verify.Options{OwnLock: lock != nil})
	if err != nil {
		return nil, err
	}
	p := &plan{dir: dir, rep: rep, rebuilt: map[uint64]bool{}}
	if opts.TruncateAt != nil {
		if err := p.planCut(*opts.TruncateAt, opts.Now()); err != nil {
			return nil, err
		}
	} else {
		p.planAuto()
	}
	res := &Result{Dir: dir, DryRun: opts.DryRun, Before: rep, Refused: p.refused}
	if p.writer && len(p.refused) == 0 {
		p.add(Action{Op: "writer_recover", File: dir, Detail: "open and close a writer: it checks the recovered tail (format.md §8), seals the checkpoint and marks the segment clean",
			do: func() error {
				lock.Release()
				lock = nil
				w, err := writer.Open(dir, writer.Options{SegmentSize: p.segSize})
				if err != nil {
					return err
				}
				return w.Close()
			}})
	}
	res.Actions = p.actions
	if opts.DryRun {
		for i := range res.Actions {
			res.Actions[i].do = nil
		}
		if len(p.refused) > 0 {
			return res, ErrUnrepaired
		}
		return res, nil
	}
	for i, a := range res.Actions {
		if a.do != nil {
			if err := a.do(); err != nil {
				return res, fmt.Errorf("repair: step %d (%s %s): %w; the journal is as the earlier steps left it: run journalctl verify --dir %s", i+1, a.Op, a.File, err, dir)
			}
		}
	}
	after, err := verify.Journal(dir, verify.Options{})
	if err != nil {
		return res, err
	}
	res.After = after
	if len(p.refused) > 0 {
		return res, ErrUnrepaired
	}
	return res, nil
}

// planAuto plans the repairs that need no operator decision.
func (p *plan) planAuto() {
	for _, pr := range p.rep.Problems {
		n, ok := segNumber(pr.Err.File)
		switch {
		case pr.Severity == verify.Index:
			if idxN, ok := idxNumber(pr.Err.File); ok {
				p.planIndex(idxN)
			}
		case pr.Severity == verify.Torn && ok:
			p.planTorn(n, pr)
		case errors.Is(pr.Err, journal.ErrCursorRange) && ok:
			if !p.planCursor(n) {
				p.refused = append(p.refused, pr)
			}
		default:
			p.refused = append(p.refused, pr)
		}
	}
}

func segNumber(path string) (uint64, bool) {
	base := filepath.Base(path)
	if n, ok := journal.ParseSegmentName(base); ok {
		return n, true
	}
	return journal.ParseArchiveName(base)
}

func idxNumber(path string) (uint64, bool) {
	base, ok := strings.CutSuffix(filepath.Base(path), journal.IndexExt)
	if !ok {
		return 0, false
	}
	return journal.ParseSegmentName(base + journal.SegmentExt)
}

// image is a segment's bytes as repair sees them: the raw file padded to its
// capacity when it is short (the writer extends a short active file the
// same way), or the decompressed archive.
type image struct {
	path     string
	data     []byte
	h        journal.Header
	fileSize int64
	archived bool
}

func load(dir string, n uint64) (*image, error) {
	path, archived := journal.SegmentFile(dir, n)
	if archived {
		a, err := archive.Open(path)
		if err != nil {
			return nil, err
		}
		defer a.Close()
		img, err := a.ReadAll()
		if err != nil {
			return nil, err
		}
		return &image{path: path, data: img, h: journal.HeaderOf(img), fileSize: int64(len(img)), archived: true}, nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	if len(b) < journal.SegmentHeaderSize {
		return nil, journal.Corrupt(path, int64(len(b)), journal.ErrTruncated, "file is %d bytes, shorter than its header", len(b))
	}
	im := &image{path: path, fileSize: int64(len(b))}
	h := journal.HeaderOf(append(make([]byte, 0, journal.SegmentHeaderSize), b[:journal.SegmentHeaderSize]...))
	if c := int64(h.Capacity()); c > int64(len(b)) && c <= 1<<40 {
		b = append(b, make([]byte, c-int64(len(b)))...)
	}
	im.data, im.h = b, journal.HeaderOf(b)
	return im, nil
}

// planTorn plans the cut of a torn tail in the last active segment: scan
// from the start to the end of the file (frames past the cursor that pass
// their checksum are kept, as the writer keeps them), save the non-zero
// rest to SEGMENT.broken, zero it, and move the cursor to the end of the
// valid data.
func (p *plan) planTorn(n uint64, pr verify.Problem) {
	im, err := load(p.dir, n)
	if err != nil || im.archived {
		p.refused = append(p.refused, pr)
		return
	}
	capacity := int64(im.h.Capacity())
	res := journal.ScanSegment(im.path, im.data, journal.SegmentHeaderSize, im.h.FirstSeq()-1, capacity, nil)
	tail := journal.ExamineTail(im.data, res.End, capacity, res.LastSeq)
	if res.Sealed || !tail.Torn() {
		p.refused = append(p.refused, pr)
		return
	}
	if p.rebuilt[n] { // planned already (a short file reports twice)
		return
	}
	p.rebuilt[n] = true
	p.segSize = capacity
	if im.fileSize < capacity {
		p.add(Action{Op: "extend", File: filepath.Base(im.path), From: im.fileSize, To: capacity,
			Detail: fmt.Sprintf("the file is %d bytes, its header says %d: extend it with zeroes (the cut frame then reads as a torn tail)", im.fileSize, capacity),
			do:     func() error { return os.Truncate(im.path, capacity) }})
	}
	if tail.NonZeroEnd > res.End {
		p.planSave(im, res.End, tail.NonZeroEnd, "torn tail")
	}
	p.planHeader(im, res.End, res.LastSeq, false, fmt.Sprintf("end of the last valid frame (seq %d)", res.LastSeq))
	p.planIndexFrom(n, im)
	p.writer = true
}

// planCursor resets a cursor that lies outside its segment when a full scan
// shows intact frames: a sealed segment must end with its marker, an active
// one at zeroes.
func (p *plan) planCursor(n uint64) bool {
	im, err := load(p.dir, n)
	if err != nil || im.archived {
		return false
	}
	capacity := min(int64(im.h.Capacity()), int64(len(im.data)))
	res := journal.ScanSegment(im.path, im.data, journal.SegmentHeaderSize, im.h.FirstSeq()-1, capacity, nil)
	if res.Err != nil || res.Sealed != im.h.Sealed() {
		return false
	}
	if tail := journal.ExamineTail(im.data, res.End, capacity, res.LastSeq); tail.NonZeroEnd > res.End {
		return false
	}
	p.planHeader(im, res.End, res.LastSeq, res.Sealed, fmt.Sprintf("the frames end there (seq %d); the cursor is only a hint", res.LastSeq))
	if !im.h.Sealed() {
		p.writer = true
		p.segSize = int64(im.h.Capacity())
	}
	return true
}

// planSave copies [from,to) of the segment to SEGMENT.broken (or .broken.K),
// fsyncs it, then zeroes the range in the segment and fsyncs that.
func (p *plan) planSave(im *image, from, to int64, what string) {
	broken := brokenName(im.path)
	p.add(Action{Op: "save_broken", File: filepath.Base(broken), From: from, To: to,
		Detail: fmt.Sprintf("%s: copy %d bytes [%d,%d) of %s here before anything is cut", what, to-from, from, to, filepath.Base(im.path)),
		do: func() error {
			f, err := os.OpenFile(broken, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
			if err != nil {
				return err
			}
			if _, err := f.Write(im.data[from:to]); err != nil {
				f.Close()
				return err
			}
			if err := f.Sync(); err != nil {
				f.Close()
				return err
			}
			return f.Close()
		}})
	p.add(Action{Op: "zero", File: filepath.Base(im.path), From: from, To: to,
		Detail: fmt.Sprintf("zero [%d,%d) in the segment (segments are zero past their data)", from, to),
		do: func() error {
			return writeAt(im.path, from, make([]byte, to-from))
		}})
}

func brokenName(seg string) string {
	name := seg + journal.BrokenExt
	for i := 1; ; i++ {
		if _, err := os.Stat(name); os.IsNotExist(err) {
			return name
		}
		name = fmt.Sprintf("%s%s.%d", seg, journal.BrokenExt, i)
	}
}

func writeAt(path string, off int64, b []byte) error {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	if _, err := f.WriteAt(b, off); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// planHeader sets the cursor to end and the checkpoint to (end, lastSeq).
// sealed=false also clears SEALED and CLEAN (the segment becomes the active
// one, to be scanned by the next writer open); last_seq is then 0.
func (p *plan) planHeader(im *image, end int64, lastSeq uint64, sealed bool, why string) {
	flags := uint32(journal.FlagActive)
	state := "active, not clean (the next writer open scans it)"
	if sealed {
		flags |= journal.FlagSealed
		state = "sealed"
	}
	p.add(Action{Op: "set_cursor", File: filepath.Base(im.path), From: int64(im.h.Cursor()), To: end,
		Detail: fmt.Sprintf("write_cursor %d → %d: %s; checkpoint (%d, seq %d); flags %s", im.h.Cursor(), end, why, end, lastSeq, state),
		do: func() error {
			b := make([]byte, 192)
			f, err := os.Open(im.path)
			if err != nil {
				return err
			}
			_, err = f.ReadAt(b, 0)
			f.Close()
			if err != nil {
				return err
			}
			le.PutUint64(b[journal.SegOffCursor:], uint64(end))
			le.PutUint32(b[128:], flags)
			le.PutUint64(b[136:], uint64(end))
			le.PutUint64(b[144:], lastSeq)
			if sealed {
				le.PutUint64(b[152:], lastSeq)
			} else {
				le.PutUint64(b[152:], 0)
			}
			return writeAt(im.path, 0, b)
		}})
}

// planIndex plans the rebuild of segment n's index from its frames.
func (p *plan) planIndex(n uint64) {
	if p.rebuilt[n] {
		return
	}
	im, err := load(p.dir, n)
	if err != nil {
		return // the segment's own problem is reported separately
	}
	p.rebuilt[n] = true
	p.planIndexFrom(n, im)
}

// planIndexFrom rebuilds the index from the valid frames of im as they will
// be after the other planned steps (frames past a cut are not indexed: the
// scan stops at the first bad frame or at zeroes).
func (p *plan) planIndexFrom(n uint64, im *image) {
	path := journal.IndexPath(p.dir, n)
	p.add(Action{Op: "rebuild_index", File: filepath.Base(path),
		Detail: "rebuild the sparse index from the segment's frames (derived data, format.md §5); written to .tmp and renamed",
		do: func() error {
			fresh, err := load(p.dir, n)
			if err != nil {
				return err
			}
			return RebuildIndex(path, fresh.data, fresh.h)
		}})
}

// RebuildIndex writes the sparse index of a segment image (format.md §5):
// the first frame, then every frame at least IndexStride bytes after the
// previous indexed one. It writes a temporary file, syncs it and renames it
// into place, so a reader never sees a half-written index.
func RebuildIndex(path string, img []byte, h journal.Header) error {
	capacity := journal.IndexCapacity(h.Capacity())
	size := journal.IndexFileSize(capacity)
	b := make([]byte, size)
	journal.InitIndex(b, h.JournalID(), h.Number(), capacity)
	x := journal.IndexOf(b)
	var count uint64
	next := int64(journal.SegmentHeaderSize)
	limit := min(int64(len(img)), int64(h.Capacity()))
	journal.ScanSegment(path, img, journal.SegmentHeaderSize, h.FirstSeq()-1, limit, func(f *journal.Frame) {
		if f.Offset < next || count >= capacity {
			return
		}
		x.PutEntry(count, journal.IndexEntry{Seq: f.Seq, TS: f.TS, Offset: f.Offset})
		count++
		next = f.Offset + journal.IndexStride
	})
	x.SetCount(count)
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		os.Remove(tmp)
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		os.Remove(tmp)
		return err
	}
	f.Close()
	return os.Rename(tmp, path)
}

// planCut plans an operator-named truncation (see the package comment).
func (p *plan) planCut(c Cut, now time.Time) error {
	n, ok := segNumber(c.File)
	if !ok {
		return fmt.Errorf("--truncate-at %s: %q is not a segment file name (NNNNNNNNNNNNNNNNNNNN.seg)", c.File, filepath.Base(c.File))
	}
	path, archived := journal.SegmentFile(p.dir, n)
	if archived {
		return fmt.Errorf("--truncate-at %s: segment %d is compressed (%s); cutting inside an archive is not supported: restore the raw segment first", c.File, n, filepath.Base(path))
	}
	im, err := load(p.dir, n)
	if err != nil {
		return fmt.Errorf("--truncate-at %s: %w", c.File, err)
	}
	if err := im.h.Check(path, int64(len(im.data))); err != nil && !errors.Is(err, journal.ErrCursorRange) {
		return fmt.Errorf("--truncate-at %s: the segment header itself is damaged (%v); a cut cannot fix a header: restore the segment from a backup", c.File, err)
	}
	capacity := int64(im.h.Capacity())
	if c.Offset < journal.SegmentHeaderSize || c.Offset >= capacity || c.Offset%journal.FrameAlign != 0 {
		return fmt.Errorf("--truncate-at %s:%d: the offset must be 8-aligned and inside the frame area [%d,%d)", filepath.Base(path), c.Offset, journal.SegmentHeaderSize, capacity)
	}
	// The cut must be a frame boundary within the valid prefix: keep only
	// frames that verify, never half a frame.
	var lastSeq = im.h.FirstSeq() - 1
	boundary := c.Offset == journal.SegmentHeaderSize
	res := journal.ScanSegment(path, im.data, journal.SegmentHeaderSize, im.h.FirstSeq()-1, capacity, func(f *journal.Frame) {
		if f.Offset < c.Offset {
			lastSeq = f.Seq
		}
		if f.Offset == c.Offset {
			boundary = true
		}
	})
	if res.End == c.Offset && !res.Sealed {
		boundary = true
	}
	if res.Sealed && res.End-journal.EndMarkerSize == c.Offset {
		boundary = true // cutting the end marker itself: unseal
	}
	if !boundary || c.Offset > res.End {
		return fmt.Errorf("--truncate-at %s:%d: not the start of a valid frame; the valid frames of this segment end at offset %d (journalctl inspect --frames %s lists them)",
			filepath.Base(path), c.Offset, res.End, path)
	}
	end := max(min(int64(im.h.Cursor()), capacity), journal.ExamineTail(im.data, c.Offset, capacity, lastSeq).NonZeroEnd)
	if end > c.Offset {
		p.planSave(im, c.Offset, end, "operator cut")
	}
	p.planHeader(im, c.Offset, lastSeq, false, fmt.Sprintf("the operator's cut; frames up to seq %d stay", lastSeq))
	p.planIndexFrom(n, im)
	// Everything after segment n moves aside, never deleted.
	aside := filepath.Join(p.dir, "orphaned-"+now.UTC().Format("20060102T150405Z"))
	ents, _ := os.ReadDir(p.dir)
	var later []string
	for _, e := range ents {
		name := e.Name()
		m, ok := segNumber(name)
		if !ok {
			if base, isIdx := strings.CutSuffix(name, journal.IndexExt); isIdx {
				m, ok = journal.ParseSegmentName(base + journal.SegmentExt)
			}
		}
		if !ok {
			if i := strings.Index(name, journal.SegmentExt+journal.BrokenExt); i > 0 {
				m, ok = journal.ParseSegmentName(name[:i+len(journal.SegmentExt)])
			}
		}
		if ok && m > n {
			later = append(later, name)
		}
	}
	sort.Strings(later)
	for _, name := range later {
		name := name
		p.add(Action{Op: "move_aside", File: name, Detail: fmt.Sprintf("move to %s/ (kept, not deleted)", filepath.Base(aside)),
			do: func() error {
				if err := os.MkdirAll(aside, 0o755); err != nil {
					return err
				}
				return os.Rename(filepath.Join(p.dir, name), filepath.Join(aside, name))
			}})
	}
	// Other index problems of earlier segments are rebuilt too.
	for _, pr := range p.rep.Problems {
		if m, ok := idxNumber(pr.Err.File); ok && pr.Severity == verify.Index && m < n {
			p.planIndex(m)
		}
	}
	p.rebuilt[n] = true
	p.writer = true
	p.segSize = capacity
	// Damage before the cut is not fixed by it.
	for _, pr := range p.rep.Problems {
		m, ok := segNumber(pr.Err.File)
		if pr.Severity == verify.Damage && ok && (m < n || m == n && pr.Err.Offset < c.Offset && pr.Err.Offset >= journal.SegmentHeaderSize) {
			p.refused = append(p.refused, pr)
		}
	}
	return nil
}
