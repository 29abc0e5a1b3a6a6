package powerloss_test

import (
	"bytes"
	"encoding/binary"
	"fmt"

	"github.com/mdjournal/mdjournal/journal"
)

// The campaign's frames are deterministic: everything about a data frame —
// type, instrument, flags, payload, source trailer — is a function of p, the
// seq the writer expected the frame to get, and p is carried in the frame's
// timestamp (ts = tsBase + p·1000). p is the frame's seq except for the one
// frame that caused a roll: the writer re-stated the instrument definitions
// in front of it (format.md §3.4), so that frame's seq is p plus the number
// of re-stated frames before it. The checker therefore accepts p == seq, or
// p == the first seq of the run of re-stated frames right before the frame
// (in the same segment). Instrument definitions — staged by the campaign
// writer for instruments 1..3 when its catalogue lacks them, or re-stated by
// the writer — must equal def(instrument).
//
// Everything here is written from format.md §3 and §3.2, not with the
// library's encoders, so a checker never compares the library with itself.

const tsBase = int64(1_700_000_000_000_000_000)

// tsOf is the timestamp of the frame intended for seq p.
func tsOf(p uint64) int64 { return tsBase + int64(p)*1000 }

// pOf recovers p from a timestamp (ok false: not a campaign timestamp).
func pOf(ts int64) (uint64, bool) {
	d := ts - tsBase
	if d <= 0 || d%1000 != 0 {
		return 0, false
	}
	return uint64(d / 1000), true
}

// instruments defined by the campaign writer.
var campaignInstruments = []uint32{1, 2, 3}

func mix(p uint64) uint64 {
	x := p*0x9e3779b97f4a7c15 + 0x632be59bd9b4e019
	x ^= x >> 31
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	return x
}

// frameSpec is what the campaign writer stages for seq p.
type frameSpec struct {
	Type      journal.MsgType
	Instr     uint32
	Payload   []byte
	Source    bool // staged with a source trailer
	RecvTS    int64
	SourceSeq uint64
}

func le64(b []byte, off int, v uint64) { binary.LittleEndian.PutUint64(b[off:], v) }

// content is the frame the campaign writes for p (buf ≥ 512 bytes).
func content(p uint64, buf []byte) frameSpec {
	x := mix(p)
	instr := uint32(1 + p%3)
	clear(buf[:64])
	switch p % 10 {
	case 0, 1, 2, 3: // raw, 8..407 bytes; p%10 == 3 with a source trailer
		n := 8 + int(x%400)
		b := buf[:n]
		y := x | 1
		for i := range b {
			y ^= y << 13
			y ^= y >> 7
			y ^= y << 17
			b[i] = byte(y)
		}
		s := frameSpec{Type: journal.TypeRaw, Instr: uint32(p % 7), Payload: b}
		if p%10 == 3 {
			s.Source, s.RecvTS, s.SourceSeq = true, tsOf(p)+7, p*3+1
		}
		return s
	case 4, 5: // quote: 0 bid_price, 8 bid_qty, 16 ask_price, 24 ask_qty
		bid := uint64(1_000_000 + (x%50)*100)
		le64(buf, 0, bid)
		le64(buf, 8, 1+(x>>8)%100)
		le64(buf, 16, bid+100+((x>>16)%5)*100)
		le64(buf, 24, 1+(x>>24)%100)
		return frameSpec{Type: journal.TypeQuote, Instr: instr, Payload: buf[:32]}
	case 6, 7: // book_level: 0 price, 8 qty (0 removes), 16 side, 17..23 reserved
		side := 1 + (x>>4)%2
		px := uint64(1_000_000 + (x%20)*100)
		if side == 2 {
			px += 5_000
		}
		le64(buf, 0, px)
		le64(buf, 8, (x>>12)%6)
		buf[16] = byte(side)
		return frameSpec{Type: journal.TypeBookLevel, Instr: instr, Payload: buf[:24]}
	case 8: // trade: 0 price, 8 qty, 16 trade_id, 24 aggressor, 25 flags, 26..31 reserved
		le64(buf, 0, uint64(1_000_000+(x%50)*100))
		le64(buf, 8, 1+(x>>8)%10)
		le64(buf, 16, p)
		buf[24] = byte(1 + (x>>20)%2)
		return frameSpec{Type: journal.TypeTrade, Instr: instr, Payload: buf[:32]}
	}
	return frameSpec{Type: journal.TypeHeartbeat, Instr: 0, Payload: buf[:0]}
}

// def is instrument id's definition: 0 symbol (16 bytes NUL-padded), 16
// tick_size, 24 price_scale, 28 reserved.
func def(id uint32) []byte {
	b := make([]byte, 32)
	copy(b, fmt.Sprintf("PL%c", 'A'+byte(id)))
	le64(b, 16, 100)
	binary.LittleEndian.PutUint32(b[24:], 4)
	return b
}

// contentChecker checks frames in seq order against the campaign's rules.
type contentChecker struct {
	buf      [512]byte
	prevSeg  uint64
	prevSeq  uint64
	runStart uint64 // first seq of the run of re-stated frames just before (0: none)
	// runFromFirst: the run began with the first frame checked, so it may
	// have started earlier (a reader resuming inside it).
	runFromFirst bool
	restated     int64 // re-stated frames seen
	dataCount    int64
}

// check returns "" or what is wrong with f (which lives in segment seg).
func (c *contentChecker) check(f *journal.Frame, seg uint64) string {
	first := c.prevSeq == 0
	prevSeg, prevSeq := c.prevSeg, c.prevSeq
	sameSeg := seg == c.prevSeg && f.Seq == c.prevSeq+1
	run := c.runStart
	if !sameSeg {
		run = 0
	}
	c.prevSeg, c.prevSeq = seg, f.Seq
	if f.Type == journal.TypeInstrumentDef {
		if f.Flags&journal.FrameRestated != 0 {
			c.restated++
			if run == 0 {
				c.runStart, c.runFromFirst = f.Seq, first
			}
		} else {
			c.runStart = 0
		}
		if f.Instrument < 1 || f.Instrument > 3 || !bytes.Equal(f.Payload, def(f.Instrument)) {
			return fmt.Sprintf("seq %d: instrument_def of instrument %d is % x, want % x", f.Seq, f.Instrument, f.Payload, def(f.Instrument))
		}
		return ""
	}
	c.runStart = 0
	c.dataCount++
	p, ok := pOf(f.TS)
	if !ok {
		return fmt.Sprintf("seq %d: timestamp %d is not a campaign timestamp", f.Seq, f.TS)
	}
	if run != 0 && c.runFromFirst && p < run && run-p < uint64(len(campaignInstruments)) {
		run = p
	}
	if first && p < f.Seq && f.Seq-p <= uint64(len(campaignInstruments)) {
		// A reader that resumed inside the run of re-stated frames has not
		// seen where it started: the frame after the run may have been
		// written for the run's first seq.
		run = p
	}
	if p != f.Seq && (run == 0 || p != run) {
		return fmt.Sprintf("seq %d (segment %d): written for seq %d (ts %d), and no run of re-stated frames starting at %d precedes it (previous frame seq %d in segment %d, run %d)",
			f.Seq, seg, p, f.TS, p, prevSeq, prevSeg, run)
	}
	want := content(p, c.buf[:])
	var flags uint16
	if want.Source {
		flags = journal.FrameSource
	}
	switch {
	case f.Type != want.Type || f.Instrument != want.Instr || f.Flags != flags:
		return fmt.Sprintf("seq %d: type %v instrument %d flags %#x, want %v %d %#x", f.Seq, f.Type, f.Instrument, f.Flags, want.Type, want.Instr, flags)
	case !bytes.Equal(f.Payload, want.Payload):
		return fmt.Sprintf("seq %d: payload differs from what the writer wrote (%d bytes, want %d)", f.Seq, len(f.Payload), len(want.Payload))
	case want.Source && (f.RecvTS != want.RecvTS || f.SourceSeq != want.SourceSeq):
		return fmt.Sprintf("seq %d: source trailer %d/%d, want %d/%d", f.Seq, f.RecvTS, f.SourceSeq, want.RecvTS, want.SourceSeq)
	}
	return ""
}
