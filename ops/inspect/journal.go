// Package inspect is the forensic analysis behind `journalctl inspect` and
// `journalctl stat`: what a journal holds (segments, frames per type and
// instrument, sequence gaps, timestamp regressions, the largest silences, a
// frames-over-time profile, named readers and their lag) and what any single
// mdjournal file says, decoded field by field with offsets and meaning as in
// format.md. It only reads: nothing here opens a file for writing, so it is
// safe on a journal with a live writer and on evidence that must not change.
//
// The analysis is a library (not buried in the CLI) so it can be tested
// directly and reused by monitoring code; every result type has stable JSON
// field names, documented in docs/issue5-readme.md.
package inspect

import (
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"time"

	"github.com/mdjournal/mdjournal/internal/flock"
	"github.com/mdjournal/mdjournal/internal/segfile"
	"github.com/mdjournal/mdjournal/journal"
	"github.com/mdjournal/mdjournal/ops/verify"
	"github.com/mdjournal/mdjournal/reader"
)

// Options select optional, bulky parts of a report.
type Options struct {
	Frames bool // list every frame with its file and offset
	Hex    bool // attach a hexdump of the bytes around each problem
	// TopGaps is how many of the largest time gaps to keep (default 10).
	TopGaps int
	// MaxRegressions bounds the listed timestamp regressions (default 20;
	// all are counted).
	MaxRegressions int
}

// HexContext is how many bytes before and after a problem's offset --hex shows.
const HexContext = 64

// Report is the analysis of one journal directory.
type Report struct {
	Kind        string        `json:"kind"` // "journal"
	Dir         string        `json:"dir"`
	JournalID   string        `json:"journal_id"`
	OK          bool          `json:"ok"`
	FirstSeq    uint64        `json:"first_seq"`
	LastSeq     uint64        `json:"last_seq"`
	FirstTS     string        `json:"first_ts"`
	LastTS      string        `json:"last_ts"`
	Frames      int64         `json:"frames"`
	Epoch       uint32        `json:"epoch"`
	Bytes       int64         `json:"bytes"` // frame bytes (padding included) of the valid frames
	Segments    []SegmentInfo `json:"segments"`
	Writer      WriterInfo    `json:"writer"`
	Durability  Durability    `json:"durability"`
	Types       []TypeCount   `json:"types"`
	Instruments []Instrument  `json:"instruments"`
	SeqGaps     []SeqGap      `json:"seq_gaps"`
	Regressions Regressions   `json:"ts_regressions"`
	TimeGaps    []TimeGap     `json:"time_gaps"`
	Profile     Profile       `json:"profile"`
	Readers     []ReaderLag   `json:"readers"`
	Problems    []Problem     `json:"problems"`
	FrameList   []FrameRow    `json:"frame_list,omitempty"`
}

// SegmentInfo is one row of the segment table.
type SegmentInfo struct {
	File      string `json:"file"`
	Number    uint64 `json:"number"`
	State     string `json:"state"` // active, sealed, compressed, prepared, damaged
	FirstSeq  uint64 `json:"first_seq"`
	LastSeq   uint64 `json:"last_seq"`
	FirstTS   string `json:"first_ts"`
	LastTS    string `json:"last_ts"`
	Frames    int64  `json:"frames"`
	Used      int64  `json:"used_bytes"`     // bytes below the write cursor
	Capacity  int64  `json:"capacity_bytes"` // segment capacity
	FileBytes int64  `json:"file_bytes"`     // size on disk (smaller for .seg.zst)
	WriterPID uint32 `json:"writer_pid"`     // PID of the writer that last opened it
	Epoch     uint32 `json:"epoch"`          // recovery epoch of its writer
}

// WriterInfo says who holds the writer lock (format.md §7).
type WriterInfo struct {
	LockFile bool `json:"lock_file"` // journal.lock exists
	PID      int  `json:"pid"`       // PID recorded in it (0: none, or a clean close)
	Locked   bool `json:"locked"`    // a live process holds the flock now
	Alive    bool `json:"alive"`     // a process with that PID exists
}

// Durability is the last active segment's checkpoint (format.md §9).
type Durability struct {
	Segment uint64 `json:"segment"`
	Offset  uint64 `json:"durable_offset"`
	Seq     uint64 `json:"durable_seq"`
	Cursor  uint64 `json:"write_cursor"`
	Clean   bool   `json:"clean"` // the state record's CLEAN flag: closed cleanly, no recovery scan needed
	// StateValid: a state record checks out (false: both are damaged).
	StateValid bool   `json:"state_valid"`
	Epoch      uint32 `json:"epoch"`
}

// TypeCount counts frames of one message type.
type TypeCount struct {
	Type   string `json:"type"`
	Frames int64  `json:"frames"`
	Bytes  int64  `json:"bytes"`
}

// Instrument summarises one instrument id.
type Instrument struct {
	ID             uint32 `json:"id"`
	Symbol         string `json:"symbol"`
	PriceScale     int32  `json:"price_scale"`
	Frames         int64  `json:"frames"`
	Trades         int64  `json:"trades"`
	TradedQty      int64  `json:"traded_qty"`
	LastTradePrice string `json:"last_trade_price"` // decimal, in the instrument's scale
}

// SeqGap is a hole in the readable sequence: frames After+1..Next-1 could
// not be read (damage, a missing segment).
type SeqGap struct {
	After   uint64 `json:"after_seq"`
	Next    uint64 `json:"next_seq"`
	Missing uint64 `json:"missing"`
	File    string `json:"file"` // segment holding Next
}

// Regressions lists frames whose timestamp is earlier than their predecessor's.
type Regressions struct {
	Count int64        `json:"count"`
	List  []Regression `json:"list"`
}

// Regression is one backwards step in time.
type Regression struct {
	Seq    uint64  `json:"seq"`
	PrevTS string  `json:"prev_ts"`
	TS     string  `json:"ts"`
	BackUS float64 `json:"back_us"`
}

// TimeGap is a silence between two consecutive frames.
type TimeGap struct {
	AfterSeq uint64  `json:"after_seq"`
	From     string  `json:"from"`
	To       string  `json:"to"`
	GapUS    float64 `json:"gap_us"`
}

// Profile is a frames-over-time histogram of event time.
type Profile struct {
	Start         string  `json:"start"`
	BucketSeconds float64 `json:"bucket_seconds"`
	Counts        []int64 `json:"counts"`
	PeakPerSecond float64 `json:"peak_frames_per_second"` // densest bucket's rate
}

// ReaderLag is a named reader's position (format.md §13) and lag.
type ReaderLag struct {
	Name      string  `json:"name"`
	Seq       uint64  `json:"seq"`
	TS        string  `json:"ts"`
	PID       uint32  `json:"pid"`
	LagFrames int64   `json:"lag_frames"`
	LagUS     float64 `json:"lag_us"`  // journal last ts - reader ts (event time)
	Segment   uint64  `json:"segment"` // segment of its next frame (0: past the end)
	Epoch     uint32  `json:"epoch"`   // epoch of the segment of its last frame
	Error     string  `json:"error,omitempty"`
	Note      string  `json:"note,omitempty"` // not a problem: e.g. an empty position file
}

// Problem is a verify finding, with a hexdump when asked.
type Problem struct {
	Severity string `json:"severity"`
	File     string `json:"file"`
	Offset   int64  `json:"offset"`
	Kind     string `json:"kind"`
	Reason   string `json:"reason"`
	Hint     string `json:"hint"`
	Hex      string `json:"hex,omitempty"`
}

// FrameRow is one frame in --frames listings.
type FrameRow struct {
	File   string `json:"file"`
	Offset int64  `json:"offset"`
	Seq    uint64 `json:"seq"`
	TS     string `json:"ts"`
	Type   string `json:"type"`
	Instr  uint32 `json:"instrument"`
	Flags  uint16 `json:"flags"`
	Size   int    `json:"size"`
	CRC    string `json:"crc"`
}

// TS formats Unix ns as RFC3339Nano UTC ("" for 0: unknown).
func TS(ns int64) string {
	if ns == 0 {
		return ""
	}
	return time.Unix(0, ns).UTC().Format(time.RFC3339Nano)
}

func us(ns int64) float64 { return float64(ns) / 1e3 }

// Rel shows files inside dir by their path relative to it, so output does not
// depend on where the journal lives.
func Rel(dir, file string) string {
	if rel, err := filepath.Rel(dir, file); err == nil && !filepath.IsAbs(rel) && len(rel) > 0 && rel[0] != '.' {
		return rel
	}
	return file
}

// Journal analyses the journal in dir: one full verify pass (every frame is
// checked) feeding the statistics.
func Journal(dir string, opts Options) (*Report, error) {
	if opts.TopGaps <= 0 {
		opts.TopGaps = 10
	}
	if opts.MaxRegressions <= 0 {
		opts.MaxRegressions = 20
	}
	a := newAnalysis(dir, opts)
	vr, err := verify.Journal(dir, verify.Options{Visit: a.visit})
	if err != nil {
		return nil, err
	}
	rep := &Report{Kind: "journal", Dir: dir, JournalID: fmt.Sprintf("%016x", vr.JournalID), OK: vr.OK(),
		FirstSeq: vr.FirstSeq, LastSeq: vr.LastSeq, Frames: vr.Frames, Bytes: a.bytes,
		FirstTS: TS(a.firstTS), LastTS: TS(a.lastTS),
		SeqGaps: a.gaps, TimeGaps: a.topGaps(), Regressions: a.regr, FrameList: a.frames,
		Types: []TypeCount{}, Instruments: []Instrument{}, Readers: []ReaderLag{}, Problems: []Problem{}}
	if rep.SeqGaps == nil {
		rep.SeqGaps = []SeqGap{}
	}
	if rep.Regressions.List == nil {
		rep.Regressions.List = []Regression{}
	}
	for t, c := range a.types {
		if c.Frames > 0 {
			rep.Types = append(rep.Types, TypeCount{Type: journal.MsgType(t).String(), Frames: c.Frames, Bytes: c.Bytes})
		}
	}
	for _, in := range a.instr {
		rep.Instruments = append(rep.Instruments, *in)
	}
	sort.Slice(rep.Instruments, func(i, j int) bool { return rep.Instruments[i].ID < rep.Instruments[j].ID })
	for i := range rep.Instruments {
		in := &rep.Instruments[i]
		if p, ok := a.lastPx[in.ID]; ok {
			in.LastTradePrice = journal.FormatPrice(p, in.PriceScale)
		}
	}
	rep.Profile = a.profile()

	// Segment table.
	for _, s := range vr.Segments {
		si := SegmentInfo{File: Rel(dir, s.Path), Number: s.Number, State: string(s.State), Epoch: s.Epoch, FirstSeq: s.FirstSeq, LastSeq: s.LastSeq,
			FirstTS: TS(s.FirstTS), LastTS: TS(s.LastTS), Frames: s.Frames, Used: s.Used, Capacity: s.Capacity, WriterPID: s.WriterPID}
		if st, err := os.Stat(s.Path); err == nil {
			si.FileBytes = st.Size()
		}
		rep.Segments = append(rep.Segments, si)
	}
	// Writer lock and durability checkpoint of the last active segment.
	lock := filepath.Join(dir, journal.LockFile)
	if _, err := os.Stat(lock); err == nil {
		rep.Writer.LockFile = true
		rep.Writer.PID, rep.Writer.Locked = vr.WriterPID, vr.WriterLive
		rep.Writer.Alive = flock.Alive(vr.WriterPID)
	}
	for i := len(vr.Segments) - 1; i >= 0; i-- {
		s := vr.Segments[i]
		if s.State == verify.StatePrepared {
			continue
		}
		if h, _, _, err := segfile.ReadHeader(dir, s.Number); err == nil {
			st, _, ok := h.State()
			rep.Durability = Durability{Segment: s.Number, Offset: uint64(st.DurableOffset), Seq: st.DurableSeq, Cursor: h.Cursor(),
				Clean: st.Clean(), StateValid: ok, Epoch: h.Epoch()}
		}
		break
	}
	rep.Epoch = vr.Epoch
	if named, err := reader.ListNamed(dir); err != nil {
		rep.Readers = append(rep.Readers, ReaderLag{Name: "?", Error: err.Error()})
	} else {
		rep.Readers = readerLags(named, vr.LastSeq, a.lastTS, vr.Segments)
	}
	for _, p := range vr.Problems {
		rep.Problems = append(rep.Problems, problemOf(dir, p, opts.Hex))
	}
	return rep, nil
}

// readerLags reads every named reader's position and computes its lag
// against the journal's last seq and last timestamp.
func readerLags(named []reader.Named, lastSeq uint64, lastTS int64, segs []verify.Segment) []ReaderLag {
	out := []ReaderLag{}
	for _, n := range named {
		rl := ReaderLag{Name: n.Name, Seq: n.Seq, TS: TS(n.TS), PID: n.PID, Epoch: n.Epoch}
		if n.Empty {
			rl.Note = "no position yet (empty file: never written, or its content lost to a power cut): the reader starts from its Options.From"
			out = append(out, rl)
			continue
		}
		if n.Seq <= lastSeq {
			rl.LagFrames = int64(lastSeq - n.Seq)
		} else {
			rl.LagFrames = -int64(n.Seq - lastSeq)
			rl.Error = fmt.Sprintf("position seq %d is past the journal's last seq %d (journal truncated or recovered after the reader read)", n.Seq, lastSeq)
		}
		if n.TS != 0 && lastTS != 0 {
			rl.LagUS = us(lastTS - n.TS)
		}
		rl.Segment = segmentOfSeq(segs, n.Seq+1)
		if rl.Segment == 0 && n.Seq+1 <= lastSeq && rl.Error == "" {
			rl.Error = fmt.Sprintf("its next frame, seq %d, is in no retained segment (pruned?)", n.Seq+1)
		}
		out = append(out, rl)
	}
	return out
}

func segmentOfSeq(segs []verify.Segment, seq uint64) uint64 {
	for _, s := range segs {
		if s.State == verify.StatePrepared || s.FirstSeq == 0 {
			continue
		}
		if seq >= s.FirstSeq && (seq <= s.LastSeq || s.State == verify.StateActive) {
			return s.Number
		}
	}
	return 0
}

// problemOf turns a verify finding into output form, with what to do next.
func problemOf(dir string, p verify.Problem, hex bool) Problem {
	out := Problem{Severity: string(p.Severity), File: Rel(dir, p.Err.File), Offset: p.Err.Offset,
		Kind: verify.Kind(p.Err), Reason: p.Err.Reason, Hint: Hint(dir, p)}
	if hex {
		out.Hex = HexAround(p.Err.File, p.Err.Offset, HexContext)
	}
	return out
}

// Hint says what an operator should do about a finding.
func Hint(dir string, p verify.Problem) string {
	switch p.Severity {
	case verify.Torn:
		return fmt.Sprintf("repairable: run journalctl recover --dir %s (saves the bytes to %s.broken, then cuts them)", dir, filepath.Base(p.Err.File))
	case verify.Index:
		return fmt.Sprintf("derived data: run journalctl recover --dir %s to rebuild the index", dir)
	case verify.SnapshotSev:
		return "derived data: restart the snapshot maintainer (or delete the file) to rebuild it"
	}
	switch verify.Kind(p.Err) {
	case "missing":
		return fmt.Sprintf("restore the file from a backup; or cut the journal before the gap with journalctl recover --dir %s --truncate-at FILE:OFFSET (later segments are moved aside, not deleted)", dir)
	case "cursor_range":
		return fmt.Sprintf("the cursor is only a hint: journalctl recover --dir %s resets it from the frames when they are intact", dir)
	case "bad_magic", "version", "bad_header":
		return fmt.Sprintf("the header is not a readable mdjournal %s header: inspect it with journalctl inspect --hex %s; restore from a backup", "segment", p.Err.File)
	}
	return fmt.Sprintf("damage below a published cursor is never cut automatically: see it with journalctl inspect --hex %s, restore from a backup, or cut it with journalctl recover --dir %s --truncate-at %s:%d (the cut bytes are saved)",
		p.Err.File, dir, filepath.Base(p.Err.File), p.Err.Offset)
}

// analysis accumulates statistics over the frames verify visits.
type analysis struct {
	dir     string
	opts    Options
	types   [256]TypeCount
	instr   map[uint32]*Instrument
	lastPx  map[uint32]int64
	bytes   int64
	firstTS int64
	lastTS  int64
	prevSeq uint64
	prevTS  int64
	n       int64
	gaps    []SeqGap
	regr    Regressions
	top     []TimeGap // sorted descending by gap
	topNS   []int64
	times   []int64 // every frame's ts, for the profile (8 B per frame)
	frames  []FrameRow
}

func newAnalysis(dir string, opts Options) *analysis {
	return &analysis{dir: dir, opts: opts, instr: map[uint32]*Instrument{}, lastPx: map[uint32]int64{}}
}

func (a *analysis) visit(f *journal.Frame) {
	size := journal.FrameSpace(len(f.Payload))
	if int(f.Type) < len(a.types) {
		a.types[f.Type].Frames++
		a.types[f.Type].Bytes += int64(size)
	}
	a.bytes += int64(size)
	in := a.instr[f.Instrument]
	if in == nil {
		in = &Instrument{ID: f.Instrument}
		a.instr[f.Instrument] = in
	}
	in.Frames++
	switch f.Type {
	case journal.TypeInstrumentDef:
		var d journal.InstrumentDef
		if d.Decode(f.Payload) == nil {
			in.Symbol, in.PriceScale = d.SymbolString(), d.PriceScale
		}
	case journal.TypeTrade:
		var t journal.Trade
		if t.Decode(f.Payload) == nil {
			in.Trades++
			in.TradedQty += t.Qty
			a.lastPx[f.Instrument] = t.Price
		}
	}
	if a.n == 0 {
		a.firstTS = f.TS
	} else {
		if f.Seq != a.prevSeq+1 {
			a.gaps = append(a.gaps, SeqGap{After: a.prevSeq, Next: f.Seq, Missing: f.Seq - a.prevSeq - 1,
				File: journal.SegmentName(f.Segment)})
		}
		if f.TS < a.prevTS {
			a.regr.Count++
			if len(a.regr.List) < a.opts.MaxRegressions {
				a.regr.List = append(a.regr.List, Regression{Seq: f.Seq, PrevTS: TS(a.prevTS), TS: TS(f.TS), BackUS: us(a.prevTS - f.TS)})
			}
		} else {
			a.noteGap(f.TS-a.prevTS, f)
		}
	}
	a.lastTS = max(a.lastTS, f.TS)
	a.prevSeq, a.prevTS = f.Seq, f.TS
	a.n++
	a.times = append(a.times, f.TS)
	if a.opts.Frames {
		a.frames = append(a.frames, FrameRow{File: journal.SegmentName(f.Segment), Offset: f.Offset, Seq: f.Seq, TS: TS(f.TS),
			Type: f.Type.String(), Instr: f.Instrument, Size: journal.FrameHeaderSize + len(f.Payload), CRC: fmt.Sprintf("%08x", f.CRC)})
	}
}

// noteGap keeps the TopGaps largest gaps (insertion into a short sorted
// slice: cheap, as almost every gap is smaller than the smallest kept).
func (a *analysis) noteGap(d int64, f *journal.Frame) {
	k := a.opts.TopGaps
	if len(a.topNS) == k && d <= a.topNS[k-1] {
		return
	}
	i := sort.Search(len(a.topNS), func(i int) bool { return a.topNS[i] < d })
	g := TimeGap{AfterSeq: a.prevSeq, From: TS(a.prevTS), To: TS(f.TS), GapUS: us(d)}
	a.topNS = append(a.topNS, 0)
	a.top = append(a.top, TimeGap{})
	copy(a.topNS[i+1:], a.topNS[i:])
	copy(a.top[i+1:], a.top[i:])
	a.topNS[i], a.top[i] = d, g
	if len(a.topNS) > k {
		a.topNS, a.top = a.topNS[:k], a.top[:k]
	}
}

func (a *analysis) topGaps() []TimeGap {
	if a.top == nil {
		return []TimeGap{}
	}
	return a.top
}

// bucketSteps are the histogram widths tried, smallest first: the first
// that covers the span in at most maxBuckets buckets wins (per-minute for a
// trading day of a few hours would be 390 rows; adaptive keeps it readable).
var bucketSteps = []time.Duration{time.Millisecond, 10 * time.Millisecond, 100 * time.Millisecond, time.Second, 5 * time.Second,
	10 * time.Second, 30 * time.Second, time.Minute, 5 * time.Minute, 10 * time.Minute, 15 * time.Minute, 30 * time.Minute, time.Hour, 24 * time.Hour}

const maxBuckets = 60

func (a *analysis) profile() Profile {
	p := Profile{Counts: []int64{}}
	if len(a.times) == 0 {
		return p
	}
	lo, hi := a.times[0], a.times[0]
	for _, t := range a.times {
		lo, hi = min(lo, t), max(hi, t)
	}
	step := bucketSteps[len(bucketSteps)-1]
	for _, s := range bucketSteps {
		if (hi-lo)/int64(s) < maxBuckets {
			step = s
			break
		}
	}
	start := lo - lo%int64(step)
	n := (hi-start)/int64(step) + 1
	if n > maxBuckets*2 { // absurd spans (corrupt timestamps): clamp, never allocate wildly
		n = maxBuckets * 2
	}
	p.Counts = make([]int64, n)
	for _, t := range a.times {
		i := min((t-start)/int64(step), n-1)
		p.Counts[i]++
	}
	var peak int64
	for _, c := range p.Counts {
		peak = max(peak, c)
	}
	p.Start, p.BucketSeconds = TS(start), step.Seconds()
	if p.Start == "" {
		p.Start = time.Unix(0, 0).UTC().Format(time.RFC3339Nano)
	}
	p.PeakPerSecond = float64(peak) / step.Seconds()
	return p
}

// le is little-endian, for decoding raw bytes.
var le = binary.LittleEndian
