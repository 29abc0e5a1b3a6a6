package ship

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"

	"github.com/nats-io/nats.go"

	"github.com/mdjournal/mdjournal/journal"
)

// Headers of a shipped message. The payload is one or more whole frames
// exactly as the origin stores them (format.md §3: header, payload, source
// trailer, zero padding, with their stored CRC), contiguous in seq, all from
// one origin segment. The headers repeat what the frames say (first and
// last seq) and add what they do not (journal id, epoch, segment), so a
// mirror can cross-check them.
const (
	HeaderVersion = "Mdj-Version" // wire version, WireVersion
	HeaderJournal = "Mdj-Journal" // origin journal id, 16 lower-case hex digits
	HeaderFirst   = "Mdj-First"   // seq of the first frame, decimal
	HeaderLast    = "Mdj-Last"    // seq of the last frame, decimal
	HeaderEpoch   = "Mdj-Epoch"   // recovery epoch of the origin segment the frames come from (format.md §8.4)
	HeaderSegment = "Mdj-Segment" // number of that origin segment

	// WireVersion is the only message layout this package writes and reads.
	WireVersion = "1"

	// JetStream's own headers the shipper sets on every message.
	headerMsgID        = "Nats-Msg-Id"
	headerExpectSeq    = "Nats-Expected-Last-Sequence"
	headerExpectMsgID  = "Nats-Expected-Last-Msg-Id"
	headerExpectStream = "Nats-Expected-Stream"
)

// Sentinel errors. Every integrity finding is a *RangeError wrapping one of
// them and naming the journal seq range it concerns.
var (
	// ErrGap: seqs are missing from the stream (a message deleted, expired
	// or lost by the server): the next message does not continue the last.
	ErrGap = errors.New("ship: gap in the shipped sequence numbers")
	// ErrDuplicate: a message carries seqs the mirror already holds.
	ErrDuplicate = errors.New("ship: sequence numbers delivered twice")
	// ErrDamaged: a message whose headers or frames fail their checks (a
	// frame's CRC, seq continuity, content rules), or whose content differs
	// from what the replica already holds for the same seqs.
	ErrDamaged = errors.New("ship: damaged message")
	// ErrForeign: the stream holds another journal's frames.
	ErrForeign = errors.New("ship: stream holds another journal")
	// ErrReissued: seqs the stream already holds were issued again by the
	// origin with other content (a power cut lost frames that had been
	// shipped, and the origin's next writer reused their seqs in a new
	// epoch, format.md §8.4), or the origin no longer holds them.
	ErrReissued = errors.New("ship: origin reissued shipped sequence numbers")
	// ErrLost: the stream no longer holds seqs it had acknowledged.
	ErrLost = errors.New("ship: stream lost acknowledged messages")
	// ErrStreamConfig: the stream exists with settings other than those
	// asked for, or its tail is not a message this package wrote.
	ErrStreamConfig = errors.New("ship: stream configuration")
)

// RangeError is an integrity finding: what (Err, one of the sentinels), the
// journal seqs it concerns (From..To, inclusive), the stream message it was
// found in (0 when none) and why. A shipper or mirror that returns one has
// stopped: it never skips or papers over what it found.
type RangeError struct {
	Err       error
	From, To  uint64
	StreamSeq uint64
	Reason    string
}

// Error names the finding, the seq range and the stream message.
func (e *RangeError) Error() string {
	s := fmt.Sprintf("%v: seqs %d..%d", e.Err, e.From, e.To)
	if e.StreamSeq != 0 {
		s += fmt.Sprintf(" (stream message %d)", e.StreamSeq)
	}
	if e.Reason != "" {
		s += ": " + e.Reason
	}
	return s
}

// Unwrap returns the sentinel.
func (e *RangeError) Unwrap() error { return e.Err }

func rangeErr(sentinel error, from, to, streamSeq uint64, format string, args ...any) *RangeError {
	return &RangeError{Err: sentinel, From: from, To: to, StreamSeq: streamSeq, Reason: fmt.Sprintf(format, args...)}
}

// Meta is what a shipped message's headers say.
type Meta struct {
	JournalID   uint64
	First, Last uint64
	Epoch       uint32
	Segment     uint64
}

// MsgID is the JetStream message id of the message holding seqs
// first..last of journal journalID, published to be stored at stream seq
// streamSeq: the server drops a second message with the same id within
// the stream's duplicate window, so a publish retried after a lost
// acknowledgement is stored once. The stream seq is part of it because a
// stream emptied within the window (purged, recreated) must accept the
// same range again: it will not be at the same stream seq.
func MsgID(journalID, first, last, streamSeq uint64) string {
	b := make([]byte, 0, 80)
	b = append(b, "mdj-"...)
	b = appendHex16(b, journalID)
	b = append(b, '-')
	b = strconv.AppendUint(b, first, 10)
	b = append(b, '-')
	b = strconv.AppendUint(b, last, 10)
	b = append(b, "-s"...)
	b = strconv.AppendUint(b, streamSeq, 10)
	return string(b)
}

func appendHex16(b []byte, v uint64) []byte {
	const digits = "0123456789abcdef"
	for i := 60; i >= 0; i -= 4 {
		b = append(b, digits[v>>uint(i)&15])
	}
	return b
}

// Header returns the headers of a message carrying m (the JetStream
// message id and concurrency headers are added by the shipper).
func (m Meta) Header() nats.Header {
	h := make(nats.Header, 10)
	h[HeaderVersion] = []string{WireVersion}
	h[HeaderJournal] = []string{string(appendHex16(nil, m.JournalID))}
	h[HeaderFirst] = []string{strconv.FormatUint(m.First, 10)}
	h[HeaderLast] = []string{strconv.FormatUint(m.Last, 10)}
	h[HeaderEpoch] = []string{strconv.FormatUint(uint64(m.Epoch), 10)}
	h[HeaderSegment] = []string{strconv.FormatUint(m.Segment, 10)}
	return h
}

// ParseMeta reads a shipped message's headers. It refuses a missing or
// malformed header, another wire version, and a range that is empty or
// starts at seq 0.
func ParseMeta(h nats.Header) (Meta, error) {
	var m Meta
	if v := h.Get(HeaderVersion); v != WireVersion {
		return m, fmt.Errorf("header %s is %q, want %q", HeaderVersion, v, WireVersion)
	}
	id, err := strconv.ParseUint(h.Get(HeaderJournal), 16, 64)
	if err != nil || len(h.Get(HeaderJournal)) != 16 {
		return m, fmt.Errorf("header %s is %q, want 16 hex digits", HeaderJournal, h.Get(HeaderJournal))
	}
	m.JournalID = id
	num := func(name string, bits int) (uint64, error) {
		v, err := strconv.ParseUint(h.Get(name), 10, bits)
		if err != nil {
			return 0, fmt.Errorf("header %s is %q, want a decimal number", name, h.Get(name))
		}
		return v, nil
	}
	if m.First, err = num(HeaderFirst, 64); err != nil {
		return m, err
	}
	if m.Last, err = num(HeaderLast, 64); err != nil {
		return m, err
	}
	ep, err := num(HeaderEpoch, 32)
	if err != nil {
		return m, err
	}
	m.Epoch = uint32(ep)
	if m.Segment, err = num(HeaderSegment, 64); err != nil {
		return m, err
	}
	if m.First == 0 || m.Last < m.First {
		return m, fmt.Errorf("headers claim seqs %d..%d", m.First, m.Last)
	}
	return m, nil
}

// DecodeFrames checks a message's payload against its headers and decodes
// its frames into dst (reused: it allocates only to grow dst). Every frame
// must be whole, pass its CRC and the content rules of format.md §3, and
// continue the seq of the one before; the first must be m.First and the
// last m.Last. Each decoded frame's Offset is its byte offset in data and
// its Payload aliases data. A failure is a *RangeError (ErrDamaged) naming
// m's range, the frame's seq where known, and the byte offset.
func DecodeFrames(m Meta, data []byte, dst []journal.Frame) ([]journal.Frame, error) {
	dst = dst[:0]
	next := m.First
	for off := 0; off < len(data); {
		if len(data)-off < journal.FrameHeaderSize {
			return dst, rangeErr(ErrDamaged, m.First, m.Last, 0, "%d bytes at offset %d are not a whole frame", len(data)-off, off)
		}
		if cap(dst) > len(dst) {
			dst = dst[:len(dst)+1]
		} else {
			dst = append(dst, journal.Frame{})
		}
		f := &dst[len(dst)-1]
		n, st := journal.DecodeCommitted(data[off:], binary.LittleEndian.Uint64(data[off:]), f)
		switch st {
		case journal.FrameOK:
		case journal.FrameBadCRC:
			return dst, rangeErr(ErrDamaged, m.First, m.Last, 0, "frame at offset %d (expected seq %d) fails its CRC", off, next)
		default:
			return dst, rangeErr(ErrDamaged, m.First, m.Last, 0, "frame at offset %d (expected seq %d) has an impossible size %d", off, next, journal.FrameSizeAt(data[off:]))
		}
		if f.Seq != next {
			return dst, rangeErr(ErrDamaged, m.First, m.Last, 0, "frame at offset %d has seq %d, expected %d", off, f.Seq, next)
		}
		if f.Type == journal.TypeSegmentEnd {
			return dst, rangeErr(ErrDamaged, m.First, m.Last, 0, "frame %d at offset %d is a segment end marker", f.Seq, off)
		}
		if reason, _ := journal.CheckContent(f); reason != "" {
			return dst, rangeErr(ErrDamaged, m.First, m.Last, 0, "frame %d at offset %d: %s", f.Seq, off, reason)
		}
		if !journal.AllZero(data[off+int(f.Size) : off+n]) {
			return dst, rangeErr(ErrDamaged, m.First, m.Last, 0, "frame %d at offset %d has non-zero padding", f.Seq, off)
		}
		f.Offset = int64(off)
		off += n
		next++
	}
	if len(dst) == 0 {
		return dst, rangeErr(ErrDamaged, m.First, m.Last, 0, "message holds no frame")
	}
	if last := next - 1; last != m.Last {
		return dst, rangeErr(ErrDamaged, m.First, m.Last, 0, "frames end at seq %d, the headers say %d", last, m.Last)
	}
	return dst, nil
}
