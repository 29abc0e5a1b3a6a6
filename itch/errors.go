package itch

import (
	"errors"
	"fmt"
)

// Sentinel errors. Every error this package returns for bad bytes is an
// *Error wrapping exactly one of them.
var (
	// ErrUnknownType: the first byte is not an ITCH 5.0 message type.
	ErrUnknownType = errors.New("itch: unknown message type")
	// ErrShort: fewer bytes than the message type needs (or none at all).
	ErrShort = errors.New("itch: message too short")
	// ErrLength: more bytes than the message type has.
	ErrLength = errors.New("itch: wrong message length")
	// ErrType: a struct's Decode was given a message of another type.
	ErrType = errors.New("itch: message of another type")
	// ErrTruncated: the file framing ends inside a length prefix or a message.
	ErrTruncated = errors.New("itch: truncated frame")
	// ErrBufferTooSmall: Encode's destination cannot hold the message.
	ErrBufferTooSmall = errors.New("itch: destination buffer too small")
	// ErrRange: a value does not fit its wire field (a timestamp of 2^48 ns
	// or more, a negative or too large price, a symbol longer than 8 bytes).
	ErrRange = errors.New("itch: value out of range")
)

// Error describes bytes that are not a valid message: where (Offset, in bytes
// from the start of what was being decoded: the message for Parse and Decode,
// the file or stream for Reader), which type byte was seen, how many bytes
// there were and how many the type needs.
type Error struct {
	Offset int64
	Type   Type // the type byte seen (0 if there was none)
	Have   int  // bytes available
	Want   int  // bytes the type needs (0 if unknown)
	Err    error
}

// Error formats the offset and the reason.
func (e *Error) Error() string {
	switch e.Err {
	case ErrUnknownType:
		return fmt.Sprintf("itch: offset %d: unknown message type 0x%02x", e.Offset, byte(e.Type))
	case ErrShort, ErrLength, ErrTruncated:
		if e.Type == 0 && e.Want == 0 {
			return fmt.Sprintf("itch: offset %d: %v: %d bytes", e.Offset, e.Err, e.Have)
		}
		return fmt.Sprintf("itch: offset %d: %v: %v has %d bytes, needs %d", e.Offset, e.Err, e.Type, e.Have, e.Want)
	case ErrType:
		return fmt.Sprintf("itch: offset %d: message is %v, not the decoder's type", e.Offset, e.Type)
	case ErrBufferTooSmall:
		return fmt.Sprintf("itch: %v needs %d bytes, destination has %d", e.Type, e.Want, e.Have)
	}
	return fmt.Sprintf("itch: offset %d: %v", e.Offset, e.Err)
}

// Unwrap returns the sentinel.
func (e *Error) Unwrap() error { return e.Err }

// check verifies that b is exactly one message of type t.
func check(b []byte, t Type) error {
	want := int(lens[t])
	if len(b) == 0 {
		return &Error{Offset: 0, Have: 0, Want: want, Err: ErrShort}
	}
	if Type(b[0]) != t {
		return &Error{Offset: 0, Type: Type(b[0]), Have: len(b), Want: want, Err: ErrType}
	}
	if len(b) < want {
		return &Error{Offset: int64(len(b)), Type: t, Have: len(b), Want: want, Err: ErrShort}
	}
	if len(b) > want {
		return &Error{Offset: int64(want), Type: t, Have: len(b), Want: want, Err: ErrLength}
	}
	return nil
}

func errBuffer(t Type, have int) error {
	return &Error{Type: t, Have: have, Want: int(lens[t]), Err: ErrBufferTooSmall}
}

func errTimestamp(ts uint64) error {
	return fmt.Errorf("%w: timestamp %d ns does not fit 48 bits", ErrRange, ts)
}
