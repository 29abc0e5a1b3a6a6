package journal

import (
	"errors"
	"testing"
)

// The damage verdict (format.md §8), one case per rule. Every case is a
// segment image built as the writer builds one, then damaged.
func TestAssess(t *testing.T) {
	base := func() *testSeg { return newTestSeg(MinSegmentSize, 1).quotes(100) }
	type want struct {
		kind    VerdictKind
		err     error
		end     func(*testSeg) int64
		lastSeq uint64
	}
	endOf := func(i int) func(*testSeg) int64 { return func(s *testSeg) int64 { return s.offs[i] } }
	atEnd := func(s *testSeg) int64 { return s.end }
	for _, tc := range []struct {
		name  string
		build func() (*testSeg, []byte)
		opts  AssessOptions
		want  want
	}{
		{"intact, nothing durable yet", func() (*testSeg, []byte) { s := base(); return s, s.m }, AssessOptions{Last: true},
			want{Intact, nil, atEnd, 100}},
		{"clean close: trusted, not scanned", func() (*testSeg, []byte) { s := base().durable(StateClean); return s, s.m }, AssessOptions{Last: true},
			want{Intact, nil, atEnd, 100}},
		{"torn tail past the checkpoint", func() (*testSeg, []byte) {
			s := base().durable(0)
			c := s.clone()
			copy(c[s.end:], []byte{9, 9, 9, 9, 64, 0, 0, 0, 1})
			return s, c
		}, AssessOptions{Last: true}, want{TornTail, ErrTornTail, atEnd, 100}},
		// A bit flip in the last frame of a segment whose checkpoint covers
		// it: durable, so damage, never a torn tail.
		{"flipped bit below the checkpoint", func() (*testSeg, []byte) {
			s := base().durable(0)
			c := s.clone()
			c[s.offs[99]+40] ^= 1
			return s, c
		}, AssessOptions{Last: true}, want{Damage, ErrChecksum, nil, 0}},
		{"flipped bit in a clean segment", func() (*testSeg, []byte) {
			s := base().durable(StateClean)
			c := s.clone()
			c[s.offs[99]+40] ^= 1
			return s, c
		}, AssessOptions{Last: true}, want{Damage, ErrChecksum, nil, 0}},
		// The same flip past the checkpoint is a torn tail.
		{"flipped bit past the checkpoint", func() (*testSeg, []byte) {
			s := base()
			s.state(State{DurableOffset: s.offs[99], DurableSeq: 99})
			c := s.clone()
			c[s.offs[99]+40] ^= 1
			return s, c
		}, AssessOptions{Last: true}, want{TornTail, ErrTornTail, endOf(99), 99}},
		{"truncated below the checkpoint", func() (*testSeg, []byte) {
			s := base().durable(0)
			return s, s.clone()[:s.offs[50]]
		}, AssessOptions{Last: true}, want{Damage, ErrTruncated, nil, 0}},
		{"truncated past the checkpoint", func() (*testSeg, []byte) {
			s := base()
			s.state(State{DurableOffset: s.offs[50], DurableSeq: 50})
			return s, s.clone()[:s.offs[80]+20]
		}, AssessOptions{Last: true}, want{TornTail, ErrTruncated, endOf(80), 80}},
		{"checkpoint the frames contradict", func() (*testSeg, []byte) {
			s := base()
			s.state(State{DurableOffset: s.offs[50], DurableSeq: 77})
			return s, s.m
		}, AssessOptions{Last: true}, want{Damage, ErrMidLog, nil, 0}},
		{"damage with a valid frame after it", func() (*testSeg, []byte) {
			s := base()
			c := s.clone()
			c[s.offs[60]+40] ^= 1
			return s, c
		}, AssessOptions{Last: true}, want{Damage, ErrChecksum, nil, 0}},
		{"zeroed frames with valid frames after them", func() (*testSeg, []byte) {
			s := base()
			c := s.clone()
			clear(c[s.offs[60]:s.offs[62]])
			return s, c
		}, AssessOptions{Last: true}, want{Damage, ErrMidLog, nil, 0}},
		{"both state records damaged", func() (*testSeg, []byte) {
			s := base().durable(0)
			c := s.clone()
			c[SegOffStateA+3] ^= 1
			c[SegOffStateB+3] ^= 1
			return s, c
		}, AssessOptions{Last: true}, want{Damage, ErrBadHeader, nil, 0}},
		{"not the last segment: no torn tails", func() (*testSeg, []byte) {
			s := base()
			c := s.clone()
			copy(c[s.end:], []byte{9, 9, 9})
			return s, c
		}, AssessOptions{Last: false, Successor: true}, want{Damage, nil, nil, 0}},
		{"sealed", func() (*testSeg, []byte) { s := base().seal(); return s, s.m }, AssessOptions{Successor: true},
			want{Intact, nil, atEnd, 100}},
		{"bytes after the end marker", func() (*testSeg, []byte) {
			s := base().seal()
			c := s.clone()
			c[s.end+100] = 1
			return s, c
		}, AssessOptions{Successor: true}, want{Damage, ErrMidLog, nil, 0}},
		{"state says sealed, no marker", func() (*testSeg, []byte) {
			s := base()
			s.state(State{DurableOffset: s.end, DurableSeq: 100, LastSeq: 100, Flags: StateSealed})
			return s, s.m
		}, AssessOptions{Successor: true}, want{Damage, ErrBadHeader, nil, 0}},
		{"clean state, cursor elsewhere (a hint)", func() (*testSeg, []byte) {
			s := base().durable(StateClean)
			s.setCursor(s.offs[10])
			return s, s.m
		}, AssessOptions{Last: true}, want{Intact, nil, atEnd, 100}},
		// Valid frames past a clean checkpoint are kept (never cut); junk
		// there is damage, not a torn tail.
		{"clean state, frames past the checkpoint", func() (*testSeg, []byte) {
			s := base()
			s.state(State{DurableOffset: s.offs[90], DurableSeq: 90, Flags: StateClean})
			s.setCursor(s.offs[90])
			return s, s.m
		}, AssessOptions{Last: true}, want{Intact, nil, atEnd, 100}},
		{"clean state, junk past the checkpoint", func() (*testSeg, []byte) {
			s := base().durable(StateClean)
			c := s.clone()
			copy(c[s.end:], []byte{9, 9, 9, 9, 64})
			return s, c
		}, AssessOptions{Last: true}, want{Damage, nil, nil, 0}},
		{"cursor claims lost frames (power cut)", func() (*testSeg, []byte) {
			s := base()
			s.state(State{DurableOffset: s.offs[50], DurableSeq: 50})
			c := s.clone()
			clear(c[s.offs[70]:s.end])
			return s, c
		}, AssessOptions{Last: true}, want{TornTail, ErrTornTail, endOf(70), 70}},
		{"live writer: stop at the cursor", func() (*testSeg, []byte) {
			s := base()
			c := s.clone()
			copy(c[s.end:], []byte{9, 9, 9, 9, 64}) // a frame being written
			return s, c
		}, AssessOptions{Last: true, Live: true}, want{Intact, nil, atEnd, 100}},
	} {
		s, img := tc.build()
		v := Assess("seg", img, tc.opts)
		if v.Kind != tc.want.kind {
			t.Errorf("%s: verdict %v (%v), want %v", tc.name, v.Kind, v.Err, tc.want.kind)
			continue
		}
		if tc.want.err != nil && !errors.Is(v.Err, tc.want.err) {
			t.Errorf("%s: error %v, want %v", tc.name, v.Err, tc.want.err)
		}
		if tc.want.end != nil && (v.End != tc.want.end(s) || v.LastSeq != tc.want.lastSeq) {
			t.Errorf("%s: end %d seq %d, want %d seq %d", tc.name, v.End, v.LastSeq, tc.want.end(s), tc.want.lastSeq)
		}
		if v.Kind == TornTail && v.CutFrom < int64(HeaderOf(img).Bytes()[0]) {
			t.Errorf("%s: cut from %d", tc.name, v.CutFrom)
		}
		if v.Kind == TornTail {
			st, _, _ := HeaderOf(img).State()
			if v.CutFrom < st.DurableOffset {
				t.Errorf("%s: a torn tail cut at %d, below the durable offset %d", tc.name, v.CutFrom, st.DurableOffset)
			}
		}
	}
}

func TestAssessCleanPathDoesNotScan(t *testing.T) {
	s := newTestSeg(MinSegmentSize, 1).quotes(100).durable(StateClean)
	if v := Assess("s", s.m, AssessOptions{Last: true}); v.Kind != Intact || v.Scanned || v.End != s.end {
		t.Fatalf("clean: %+v", v)
	}
	// A crash mid-roll: unsealed with an active successor needs sealing; a
	// written marker with an unsealed state needs the state.
	u := newTestSeg(MinSegmentSize, 1).quotes(10)
	if v := Assess("s", u.m, AssessOptions{Successor: true}); !v.NeedsSeal || v.Kind != Intact {
		t.Fatalf("unsealed predecessor: %+v", v)
	}
	u.end += int64(PutFrame(u.m[u.end:], 11, 0, TypeSegmentEnd, 0, 0, nil))
	u.setCursor(u.end)
	if v := Assess("s", u.m, AssessOptions{Successor: true}); !v.StateStale || !v.Sealed {
		t.Fatalf("marker without sealed state: %+v", v)
	}
}
