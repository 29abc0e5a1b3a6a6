package pipeline

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/mdjournal/mdjournal/booksnap"
	"github.com/mdjournal/mdjournal/journal"
	"github.com/mdjournal/mdjournal/reader"
	"github.com/mdjournal/mdjournal/stats"
	"github.com/mdjournal/mdjournal/writer"
)

// FeedConfig configures the feed stage.
type FeedConfig struct {
	Dirs   Dirs
	Source Source
	// Pace replays the source's event times at Pace× real time (1: as the
	// day happened); 0 is as fast as possible.
	Pace float64
	// Rate, if > 0 (and Pace is 0), paces by count: Rate frames per second.
	Rate int
	// Duration, if > 0, stops the feed after that much wall time (the
	// journal then ends there: FeedDone holds its last seq).
	Duration time.Duration
	// SnapshotDepth is the snapshot's depth per side (default 256, the
	// maximum: every slot is then a whole book for the built-in sources, so
	// a late joiner's book is exact).
	SnapshotDepth int
	// SegmentSize of the market-data journal (writer default if 0).
	SegmentSize int64
	// Logf receives progress notes; nil discards them.
	Logf func(format string, args ...any)
}

var errStop = errors.New("pipeline: feed duration over")

// RunFeed runs the feed stage: it opens (or recovers) the market-data
// journal with its snapshot maintainer, skips the source frames a previous
// run already wrote (each frame carries its source sequence number in its
// source trailer), appends the rest with their source-read time, and
// writes the FeedDone marker at the end. Restarted after a kill -9 it
// continues where the journal ends: nothing lost, nothing written twice.
func RunFeed(ctx context.Context, cfg FeedConfig) error {
	logf := cfg.Logf
	if logf == nil {
		logf = func(string, ...any) {}
	}
	if cfg.Source == nil {
		return errors.New("pipeline: feed without a source")
	}
	depth := cfg.SnapshotDepth
	if depth == 0 {
		depth = 256
	}
	w, m, err := booksnap.OpenWriter(cfg.Dirs.MD(), writer.Options{SegmentSize: cfg.SegmentSize, Logf: logf},
		booksnap.Config{Path: cfg.Dirs.Snapshot(), Depth: depth, Capacity: MaxInstruments})
	if err != nil {
		return fmt.Errorf("feed: open %s: %w", cfg.Dirs.MD(), err)
	}
	closeAll := func() error {
		err := w.Close()
		if merr := m.Close(); err == nil {
			err = merr
		}
		return err
	}
	done, err := lastSourceSeq(cfg.Dirs.MD(), w.LastSeq())
	if err != nil {
		closeAll()
		return err
	}
	pub, err := stats.Create(cfg.Dirs.Stats(), "feed", 0)
	if err != nil {
		closeAll()
		return err
	}
	defer pub.Close()
	s := &feedSink{w: w, ctx: ctx, cfg: &cfg, skip: done}
	if s.frames, err = pub.Counter("frames"); err == nil {
		if s.skipped, err = pub.Counter("skipped_on_resume"); err == nil {
			s.hist, err = pub.Histogram("read_to_publish_ns")
		}
	}
	if err != nil {
		closeAll()
		return err
	}
	if cfg.Duration > 0 {
		s.stopAt = time.Now().Add(cfg.Duration)
	}
	logf("feed: %s; %d source frames already in %s", cfg.Source.Name(), done, cfg.Dirs.MD())
	err = cfg.Source.Emit(s)
	if errors.Is(err, errStop) {
		err = nil
	}
	if err != nil {
		closeAll()
		return fmt.Errorf("feed: %w", err)
	}
	last := w.LastSeq()
	if err := closeAll(); err != nil {
		return fmt.Errorf("feed: close: %w", err)
	}
	logf("feed: done, last seq %d (%d frames this run)", last, s.frames.Load())
	return writeMarker(cfg.Dirs.FeedDone(), last)
}

// lastSourceSeq returns the source sequence number of the last frame of the
// journal in dir that carries one (0: none), reading back from last.
func lastSourceSeq(dir string, last uint64) (uint64, error) {
	if last == 0 {
		return 0, nil
	}
	// Only restated frames (a few per segment start) lack a source trailer,
	// so the last source frame is within the last few thousand frames.
	for back := uint64(4096); ; back *= 16 {
		from := uint64(1)
		if last > back {
			from = last - back
		}
		r, err := reader.Open(dir, reader.Options{From: reader.Seq(from)})
		if err != nil {
			return 0, err
		}
		var src uint64
		for {
			f, ok, err := r.TryNext()
			if err != nil {
				r.Close()
				return 0, err
			}
			if !ok || f.Seq > last {
				break
			}
			if f.Flags&journal.FrameSource != 0 {
				src = f.SourceSeq
			}
		}
		r.Close()
		if src != 0 || from == 1 {
			return src, nil
		}
	}
}

type feedSink struct {
	w       *writer.Writer
	ctx     context.Context
	cfg     *FeedConfig
	skip    uint64 // source frames already in the journal
	n       uint64 // source frames seen
	stopAt  time.Time
	frames  *stats.Counter
	skipped *stats.Counter
	hist    *stats.Histogram
	// pacing anchor: wall time and event time of the first written frame
	wall0, ts0 int64
	paced      uint64
}

func (s *feedSink) Append(typ journal.MsgType, instr uint32, ts int64, payload []byte) (uint64, error) {
	s.n++
	if s.n <= s.skip {
		s.skipped.Add(1)
		return 0, nil
	}
	if s.n&1023 == 0 {
		if err := s.ctx.Err(); err != nil {
			return 0, err
		}
		if !s.stopAt.IsZero() && time.Now().After(s.stopAt) {
			return 0, errStop
		}
	}
	s.pace(ts)
	recv := time.Now().UnixNano()
	seq, err := s.w.AppendSource(typ, instr, ts, payload, recv, s.n)
	if err != nil {
		return 0, err
	}
	s.hist.Record(time.Now().UnixNano() - recv)
	s.frames.Add(1)
	return seq, nil
}

// pace sleeps until the frame is due: this is pacing a replay, not
// synchronisation between processes.
func (s *feedSink) pace(ts int64) {
	if s.cfg.Pace <= 0 && s.cfg.Rate <= 0 {
		return
	}
	now := time.Now().UnixNano()
	if s.paced == 0 {
		s.wall0, s.ts0 = now, ts
	}
	s.paced++
	var due int64
	if s.cfg.Pace > 0 {
		due = s.wall0 + int64(float64(ts-s.ts0)/s.cfg.Pace)
	} else {
		due = s.wall0 + int64(s.paced-1)*int64(time.Second)/int64(s.cfg.Rate)
	}
	if d := due - now; d > 0 {
		if !s.stopAt.IsZero() && time.Unix(0, due).After(s.stopAt) {
			d = time.Until(s.stopAt).Nanoseconds()
		}
		time.Sleep(time.Duration(d))
	}
}
