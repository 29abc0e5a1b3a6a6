package moldudp64

import (
	"errors"
	"fmt"
)

// Sentinel errors. Malformed packets and requests are *Error values wrapping
// one of the first five.
var (
	// ErrShort: fewer bytes than a header (20) or a request (20).
	ErrShort = errors.New("moldudp64: packet shorter than its header")
	// ErrTruncated: a message block's length runs past the end of the packet.
	ErrTruncated = errors.New("moldudp64: message block runs past the end of the packet")
	// ErrTrailing: bytes after the last message block the count announces
	// (or any bytes after a heartbeat or end-of-session header).
	ErrTrailing = errors.New("moldudp64: bytes after the last message block")
	// ErrSequence: sequence number 0, or one whose messages would pass 2^64.
	ErrSequence = errors.New("moldudp64: invalid sequence number")
	// ErrRequest: a request packet of the wrong size or with a zero count.
	ErrRequest = errors.New("moldudp64: malformed request")

	// ErrBufferTooSmall: an Encode destination cannot hold the bytes.
	ErrBufferTooSmall = errors.New("moldudp64: destination buffer too small")
	// ErrPacketFull: the message does not fit the packet being built; send
	// it and start another.
	ErrPacketFull = errors.New("moldudp64: packet full")
	// ErrMessageTooLarge: the message would not fit even an empty packet of
	// the configured maximum payload.
	ErrMessageTooLarge = errors.New("moldudp64: message larger than the packet payload allows")
	// ErrSession: a session name longer than 10 bytes or not printable ASCII.
	ErrSession = errors.New("moldudp64: invalid session name")
	// ErrClosed: the connection was closed.
	ErrClosed = errors.New("moldudp64: closed")
)

// Error describes a malformed packet: the byte offset in the packet where
// the problem is, and why.
type Error struct {
	Offset int
	Reason string
	Err    error
}

// Error formats the offset and the reason.
func (e *Error) Error() string {
	return fmt.Sprintf("moldudp64: offset %d: %s", e.Offset, e.Reason)
}

// Unwrap returns the sentinel.
func (e *Error) Unwrap() error { return e.Err }

func malformed(off int, sentinel error, format string, args ...any) *Error {
	return &Error{Offset: off, Reason: fmt.Sprintf(format, args...), Err: sentinel}
}
