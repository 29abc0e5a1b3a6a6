package itch

import (
	"encoding/binary"
	"slices"
)

// MaxTimestamp is the largest timestamp the 6-byte field holds (about 78
// hours of nanoseconds).
const MaxTimestamp = 1<<48 - 1

// Header is the part every message starts with, after the type byte.
type Header struct {
	Locate    uint16 // stock locate code (0 for messages about no stock)
	Tracking  uint16 // NASDAQ internal tracking number
	Timestamp uint64 // nanoseconds since midnight; 48 bits on the wire
}

func (h *Header) get(b []byte) {
	_ = b[10]
	h.Locate = binary.BigEndian.Uint16(b[1:])
	h.Tracking = binary.BigEndian.Uint16(b[3:])
	h.Timestamp = get48(b[5:])
}

func (h *Header) put(b []byte, t Type) {
	_ = b[10]
	b[0] = byte(t)
	binary.BigEndian.PutUint16(b[1:], h.Locate)
	binary.BigEndian.PutUint16(b[3:], h.Tracking)
	put48(b[5:], h.Timestamp)
}

// checkEncode verifies that dst can hold a message of type t and that the
// header fits its fields.
func (h *Header) checkEncode(dst []byte, t Type) error {
	if len(dst) < int(lens[t]) {
		return errBuffer(t, len(dst))
	}
	if h.Timestamp > MaxTimestamp {
		return errTimestamp(h.Timestamp)
	}
	return nil
}

func get48(b []byte) uint64 {
	_ = b[5]
	return uint64(b[0])<<40 | uint64(b[1])<<32 | uint64(b[2])<<24 | uint64(b[3])<<16 | uint64(b[4])<<8 | uint64(b[5])
}

// put48 writes the low 48 bits of v.
func put48(b []byte, v uint64) {
	_ = b[5]
	b[0], b[1], b[2], b[3], b[4], b[5] = byte(v>>40), byte(v>>32), byte(v>>24), byte(v>>16), byte(v>>8), byte(v)
}

// grow extends dst by n bytes and returns the extended slice and the new part.
func grow(dst []byte, n int) ([]byte, []byte) {
	l := len(dst)
	dst = slices.Grow(dst, n)[:l+n]
	return dst, dst[l:]
}

// Message is a view of one ITCH message's wire bytes. A Message returned by
// Parse has a known type and exactly that type's length; the accessors read
// fields in place and return zero values on a Message too short to hold them,
// so they never panic.
type Message []byte

// Parse checks that b is exactly one ITCH 5.0 message (known type, exact
// length) and returns it as a Message sharing b's bytes. It does not
// allocate unless it fails.
func Parse(b []byte) (Message, error) {
	if len(b) == 0 {
		return nil, &Error{Err: ErrShort}
	}
	t := Type(b[0])
	want := int(lens[t])
	switch {
	case want == 0:
		return nil, &Error{Type: t, Have: len(b), Err: ErrUnknownType}
	case len(b) < want:
		return nil, &Error{Offset: int64(len(b)), Type: t, Have: len(b), Want: want, Err: ErrShort}
	case len(b) > want:
		return nil, &Error{Offset: int64(want), Type: t, Have: len(b), Want: want, Err: ErrLength}
	}
	return Message(b), nil
}

// Type returns the message type (0 for an empty Message).
func (m Message) Type() Type {
	if len(m) == 0 {
		return 0
	}
	return Type(m[0])
}

// Locate returns the stock locate code.
func (m Message) Locate() uint16 {
	if len(m) < HeaderLen {
		return 0
	}
	return binary.BigEndian.Uint16(m[1:])
}

// Tracking returns the tracking number.
func (m Message) Tracking() uint16 {
	if len(m) < HeaderLen {
		return 0
	}
	return binary.BigEndian.Uint16(m[3:])
}

// Timestamp returns the timestamp: nanoseconds since midnight.
func (m Message) Timestamp() uint64 {
	if len(m) < HeaderLen {
		return 0
	}
	return get48(m[5:])
}

// Header returns locate, tracking number and timestamp.
func (m Message) Header() Header {
	return Header{Locate: m.Locate(), Tracking: m.Tracking(), Timestamp: m.Timestamp()}
}

// Stock returns the stock symbol of a message type that carries one; ok is
// false for the others (and for a Message too short for its type).
func (m Message) Stock() (s Symbol, ok bool) {
	if len(m) == 0 {
		return s, false
	}
	off := int(stockOff[m[0]])
	if off == 0 || len(m) < off+SymbolLen {
		return s, false
	}
	copy(s[:], m[off:off+SymbolLen])
	return s, true
}
