package inspect

import (
	"fmt"
	"os"
	"path/filepath"
	"syscall"

	"github.com/mdjournal/mdjournal/internal/archive"
	"github.com/mdjournal/mdjournal/internal/flock"
	"github.com/mdjournal/mdjournal/journal"
	"github.com/mdjournal/mdjournal/ops/verify"
)

// RateWindow is the event-time window Stat measures rates over when it has
// a single sample: the last minute of frame timestamps.
const RateWindow = 60e9

// StatReport is a cheap snapshot of a journal's state for operators: unlike
// Journal it reads only segment headers and the last segment or two, so it
// can run every second against a live journal.
type StatReport struct {
	Dir       string `json:"dir"`
	JournalID string `json:"journal_id"`
	// The write cursor: where the next frame goes.
	ActiveSegment uint64 `json:"active_segment"`
	Cursor        int64  `json:"cursor"`
	LastSeq       uint64 `json:"last_seq"`
	LastTS        string `json:"last_ts"`
	FirstSeq      uint64 `json:"first_seq"` // first retained seq
	// Rates. RateSource says how they were measured: "event_time_last_minute"
	// (frames whose timestamps lie in the last 60 s of event time before the
	// last frame, divided by 60 s — for imported historical data this is the
	// market's rate, not the import's) or "wall_clock" (two samples taken
	// --interval apart by `stat --watch`: the rate at which the writer appends now).
	FramesPerSec float64 `json:"frames_per_sec"`
	BytesPerSec  float64 `json:"bytes_per_sec"`
	RateSource   string  `json:"rate_source"`
	// LogBytes is the sum of every segment's used bytes (cursor), the
	// quantity whose growth is bytes/s.
	LogBytes int64 `json:"log_bytes"`
	// Disk use of the directory tree: apparent size and allocated blocks.
	DiskBytes     int64       `json:"disk_bytes"`
	DiskAllocated int64       `json:"disk_allocated_bytes"`
	SegmentsRaw   int         `json:"segments_raw"`
	SegmentsZst   int         `json:"segments_compressed"`
	SegmentsPrep  int         `json:"segments_prepared"`
	WriterPID     int         `json:"writer_pid"`
	WriterLive    bool        `json:"writer_live"`
	DurableSeq    uint64      `json:"durable_seq"`
	Readers       []ReaderLag `json:"readers"`
	lastTSns      int64
	windowFrames  int64
	windowBytes   int64
}

// LastTSNanos is the last frame's timestamp in Unix ns.
func (s *StatReport) LastTSNanos() int64 { return s.lastTSns }

// Stat reads the journal's state. It trusts segment headers for sealed
// segments (last_seq, cursor) and scans the last active segment (and the one
// before it if the last minute reaches back into it) to find the true end.
func Stat(dir string) (*StatReport, error) {
	nums, err := journal.ListSegments(dir)
	if err != nil {
		return nil, err
	}
	if len(nums) == 0 {
		return nil, fmt.Errorf("%w: %s has no segment files", journal.ErrNotFound, dir)
	}
	s := &StatReport{Dir: dir, Readers: []ReaderLag{}, RateSource: "event_time_last_minute"}
	if pid, held, err := flock.Holder(filepath.Join(dir, journal.LockFile)); err == nil {
		s.WriterPID, s.WriterLive = pid, held
	}
	type segHead struct {
		n        uint64
		path     string
		archived bool
		h        journal.Header
	}
	var active []segHead
	for _, n := range nums {
		path, archived := journal.SegmentFile(dir, n)
		h, ok := readHeader(path)
		if archived {
			s.SegmentsZst++
		} else {
			s.SegmentsRaw++
		}
		if !ok {
			continue
		}
		if s.JournalID == "" {
			s.JournalID = fmt.Sprintf("%016x", h.JournalID())
		}
		if !h.Active() {
			s.SegmentsPrep++
			continue
		}
		if s.FirstSeq == 0 {
			s.FirstSeq = h.FirstSeq()
		}
		if archived {
			if a, err := archive.Open(path); err == nil {
				s.LogBytes += a.RawSize
				a.Close()
			}
		} else if c := int64(h.Cursor()); c <= int64(h.Capacity()) {
			s.LogBytes += c
		}
		active = append(active, segHead{n, path, archived, h})
	}
	if len(active) == 0 {
		return s, nil
	}
	last := active[len(active)-1]
	s.ActiveSegment, s.DurableSeq = last.n, last.h.DurableSeq()
	// Frames of the last segment, and of the previous one if the window
	// reaches back into it.
	type tsb struct {
		ts int64
		n  int64
	}
	var tail []tsb
	scan := func(sh segHead) (journal.ScanResult, bool) {
		img, done, err := loadSegment(sh.path, sh.archived)
		if err != nil {
			return journal.ScanResult{}, false
		}
		defer done()
		limit := int64(len(img))
		return journal.ScanSegment(sh.path, img, journal.SegmentHeaderSize, sh.h.FirstSeq()-1, limit, func(f *journal.Frame) {
			tail = append(tail, tsb{f.TS, int64(journal.FrameSpace(len(f.Payload)))})
		}), true
	}
	res, ok := scan(last)
	if ok {
		s.Cursor, s.LastSeq, s.lastTSns = res.End, res.LastSeq, res.LastTS
		if res.Frames == 0 {
			s.LastSeq = last.h.FirstSeq() - 1
		}
	}
	if len(active) > 1 && (len(tail) == 0 || tail[0].ts > s.lastTSns-RateWindow) {
		prev := active[len(active)-2]
		mine := tail
		tail = nil
		if pres, ok := scan(prev); ok && s.lastTSns == 0 {
			s.lastTSns = pres.LastTS
		}
		tail = append(tail, mine...)
	}
	s.LastTS = TS(s.lastTSns)
	for _, t := range tail {
		if t.ts > s.lastTSns-RateWindow {
			s.windowFrames++
			s.windowBytes += t.n
		}
	}
	s.FramesPerSec = float64(s.windowFrames) / (RateWindow / 1e9)
	s.BytesPerSec = float64(s.windowBytes) / (RateWindow / 1e9)
	s.DiskBytes, s.DiskAllocated = diskUse(dir)
	segs := make([]verify.Segment, 0, len(active))
	for _, a := range active {
		vs := verify.Segment{Number: a.n, FirstSeq: a.h.FirstSeq(), LastSeq: a.h.LastSeq(), State: "sealed"}
		if !a.h.Sealed() {
			vs.State, vs.LastSeq = "active", s.LastSeq
		}
		segs = append(segs, vs)
	}
	s.Readers = readerLags(dir, s.LastSeq, s.lastTSns, segs)
	return s, nil
}

// WithRates replaces s's rates by the growth between an earlier sample and s
// over wall-clock seconds.
func (s *StatReport) WithRates(earlier *StatReport, seconds float64) {
	if seconds <= 0 {
		return
	}
	s.FramesPerSec = float64(int64(s.LastSeq)-int64(earlier.LastSeq)) / seconds
	s.BytesPerSec = float64(s.LogBytes-earlier.LogBytes) / seconds
	s.RateSource = "wall_clock"
}

// loadSegment returns a segment's image: a read-only copy of a raw file, or
// the decompressed archive.
func loadSegment(path string, archived bool) ([]byte, func(), error) {
	if archived {
		a, err := archive.Open(path)
		if err != nil {
			return nil, nil, err
		}
		defer a.Close()
		img, err := a.ReadAll()
		return img, func() {}, err
	}
	b, err := os.ReadFile(path)
	return b, func() {}, err
}

func diskUse(dir string) (apparent, allocated int64) {
	filepath.Walk(dir, func(_ string, fi os.FileInfo, err error) error {
		if err != nil || !fi.Mode().IsRegular() {
			return nil
		}
		apparent += fi.Size()
		if st, ok := fi.Sys().(*syscall.Stat_t); ok {
			allocated += st.Blocks * 512
		}
		return nil
	})
	return
}
