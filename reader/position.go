package reader

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

type posKind uint8

const (
	posStart posKind = iota
	posEnd
	posSeq
	posTime
)

// Position says where a Reader starts.
type Position struct {
	kind posKind
	seq  uint64
	ts   int64
}

// Start positions at the first retained frame.
func Start() Position { return Position{kind: posStart} }

// End positions after the last published frame: only new frames are read.
func End() Position { return Position{kind: posEnd} }

// Seq positions at the frame with sequence number n (waiting for it if it is
// not written yet).
func Seq(n uint64) Position { return Position{kind: posSeq, seq: n} }

// Time positions at the first frame whose timestamp is ≥ t. Timestamps are
// taken to be non-decreasing (journalctl inspect reports regressions); with a
// regression the reader still starts at a frame with ts ≥ t, found by a
// forward scan from the sparse-index entry before t.
func Time(t time.Time) Position { return Position{kind: posTime, ts: t.UnixNano()} }

// TimeNS is Time with a Unix-nanosecond timestamp.
func TimeNS(ns int64) Position { return Position{kind: posTime, ts: ns} }

// String returns the position in the syntax ParsePosition reads.
func (p Position) String() string {
	switch p.kind {
	case posStart:
		return "start"
	case posEnd:
		return "end"
	case posSeq:
		return "seq:" + strconv.FormatUint(p.seq, 10)
	}
	return "time:" + time.Unix(0, p.ts).UTC().Format(time.RFC3339Nano)
}

// ParsePosition reads start, end, seq:N or time:RFC3339Nano.
func ParsePosition(s string) (Position, error) {
	switch s {
	case "start":
		return Start(), nil
	case "end":
		return End(), nil
	}
	if v, ok := strings.CutPrefix(s, "seq:"); ok {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil || n == 0 {
			return Position{}, fmt.Errorf("bad position %q: seq must be a positive integer", s)
		}
		return Seq(n), nil
	}
	if v, ok := strings.CutPrefix(s, "time:"); ok {
		t, err := time.Parse(time.RFC3339Nano, v)
		if err != nil {
			return Position{}, fmt.Errorf("bad position %q: time must be RFC3339 (e.g. 2012-06-21T10:31:02.123Z): %v", s, err)
		}
		return Time(t), nil
	}
	return Position{}, fmt.Errorf("bad position %q (want start, end, seq:N or time:RFC3339Nano)", s)
}

// SeqValue returns n for a Seq(n) position.
func (p Position) SeqValue() (uint64, bool) { return p.seq, p.kind == posSeq }

// TimeValue returns the Unix-ns time of a Time position.
func (p Position) TimeValue() (int64, bool) { return p.ts, p.kind == posTime }
