package inspect

import (
	"fmt"
	"os"
	"path/filepath"
	"syscall"

	"github.com/mdjournal/mdjournal/internal/archive"
	"github.com/mdjournal/mdjournal/internal/flock"
	"github.com/mdjournal/mdjournal/internal/segfile"
	"github.com/mdjournal/mdjournal/journal"
	"github.com/mdjournal/mdjournal/ops/verify"
	"github.com/mdjournal/mdjournal/reader"
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

// Stat reads the journal's state. It reads segment headers and state
// records, finds the end of the active segment from its last index entry,
// and locates the start of the rate window with the sparse index: it never
// scans a whole segment, so it can run every second on a live journal.
// Named readers' positions are read before the journal's end, so a reader
// that moves meanwhile is never reported past the end.
func Stat(dir string) (*StatReport, error) {
	ents, err := segfile.List(dir)
	if err != nil {
		return nil, err
	}
	if len(ents) == 0 {
		return nil, fmt.Errorf("%w: %s has no segment files", journal.ErrNotFound, dir)
	}
	s := &StatReport{Dir: dir, Readers: []ReaderLag{}, RateSource: "event_time_last_minute"}
	named, nerr := reader.ListNamed(dir)
	if pid, held, err := flock.Holder(filepath.Join(dir, journal.LockFile)); err == nil {
		s.WriterPID, s.WriterLive = pid, held
	}
	type segHead struct {
		e    segfile.Entry
		h    journal.Header
		st   journal.State
		used int64
	}
	var active []segHead
	for _, e := range ents {
		if e.Archived {
			s.SegmentsZst++
		} else {
			s.SegmentsRaw++
		}
		h, _, _, err := segfile.ReadHeader(dir, e.Num)
		if err != nil || h.Magic() != journal.SegmentMagic {
			continue
		}
		if s.JournalID == "" {
			s.JournalID = fmt.Sprintf("%016x", h.JournalID())
		}
		if h.Prepared() {
			s.SegmentsPrep++
			continue
		}
		if s.FirstSeq == 0 {
			s.FirstSeq = h.FirstSeq()
		}
		st, _, _ := h.State()
		sh := segHead{e: e, h: h, st: st, used: int64(h.Cursor())}
		if e.Archived {
			if a, err := archive.Open(e.Path); err == nil {
				sh.used = a.RawSize
				a.Close()
			}
		}
		active = append(active, sh)
	}
	if len(active) == 0 {
		return s, nil
	}
	last := &active[len(active)-1]
	s.ActiveSegment, s.DurableSeq = last.e.Num, last.st.DurableSeq
	if ends, err := segfile.ScanEnds(dir, last.e); err == nil {
		last.used = ends.End
		s.Cursor, s.LastSeq, s.lastTSns = ends.End, ends.LastSeq, ends.LastTS
	}
	for _, a := range active {
		s.LogBytes += a.used
	}
	if s.lastTSns == 0 && len(active) > 1 {
		if ends, err := segfile.ScanEnds(dir, active[len(active)-2].e); err == nil {
			s.lastTSns = ends.LastTS
		}
	}
	s.LastTS = TS(s.lastTSns)
	// The rate window: frames stamped in the last minute of event time, or
	// since the journal's first frame if it is younger. Its start is found
	// through the index of the segment that holds it.
	from := s.lastTSns - RateWindow
	k := 0
	for i, a := range active {
		if ts, ok := firstFrameTS(dir, a.e, a.h); ok && ts <= from {
			k = i
		}
	}
	if seq, off, ts, ok := firstAtOrAfter(dir, active[k].e, active[k].h, from); ok {
		span := float64(s.lastTSns-max(ts, from)) / 1e9
		if s.lastTSns-ts >= RateWindow {
			span = RateWindow / 1e9
		}
		s.windowFrames = int64(s.LastSeq) - int64(seq) + 1
		s.windowBytes = active[k].used - off
		for _, a := range active[k+1:] {
			s.windowBytes += a.used - journal.SegmentHeaderSize
		}
		if span > 0 && s.windowFrames > 1 {
			s.FramesPerSec = float64(s.windowFrames) / span
			s.BytesPerSec = float64(s.windowBytes) / span
		}
	}
	s.DiskBytes, s.DiskAllocated = diskUse(dir)
	segs := make([]verify.Segment, 0, len(active))
	for i, a := range active {
		vs := verify.Segment{Number: a.e.Num, FirstSeq: a.h.FirstSeq(), LastSeq: a.st.LastSeq, State: verify.StateSealed}
		if i == len(active)-1 {
			vs.State, vs.LastSeq = verify.StateActive, s.LastSeq
		}
		segs = append(segs, vs)
	}
	if nerr != nil {
		s.Readers = append(s.Readers, ReaderLag{Name: "?", Error: nerr.Error()})
	} else {
		s.Readers = readerLags(named, s.LastSeq, s.lastTSns, segs)
	}
	return s, nil
}

// firstFrameTS is a segment's first frame's timestamp (index entry 0).
func firstFrameTS(dir string, e segfile.Entry, h journal.Header) (int64, bool) {
	x, err := segfile.OpenIndex(dir, e.Num, h.JournalID(), int64(h.Capacity()), false)
	if err != nil {
		return 0, false
	}
	defer x.Close()
	if x.View().Count() == 0 {
		return 0, false
	}
	return x.View().Entry(0).TS, true
}

// firstAtOrAfter finds the first frame with ts ≥ t in a segment: the index
// entry before t, then a scan of at most one stride.
func firstAtOrAfter(dir string, e segfile.Entry, h journal.Header, t int64) (seq uint64, off, ts int64, ok bool) {
	s, err := segfile.OpenEntry(e, segfile.OpenOptions{LoadArchive: true})
	if err != nil {
		return 0, 0, 0, false
	}
	defer s.Close()
	from, prev := int64(journal.SegmentHeaderSize), h.FirstSeq()-1
	if x, err := segfile.OpenIndex(dir, e.Num, h.JournalID(), s.Capacity, false); err == nil {
		if en, found := x.View().SearchTime(t); found {
			from, prev = en.Offset, en.Seq-1
		}
		x.Close()
	}
	found := false
	journal.ScanSegment(e.Path, s.Data, from, prev, int64(len(s.Data)), func(f *journal.Frame) {
		if !found && f.TS >= t {
			seq, off, ts, found = f.Seq, f.Offset, f.TS, true
		}
	})
	return seq, off, ts, found
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
