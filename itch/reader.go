package itch

import (
	"bufio"
	"encoding/binary"
	"errors"
	"io"
)

// FrameLenSize is the size of the big-endian length that precedes each
// message in NASDAQ's binary files.
const FrameLenSize = 2

// Reader reads NASDAQ's binary file framing: each message preceded by a
// 2-byte big-endian length that does not count itself.
type Reader struct {
	br      *bufio.Reader
	off     int64 // file offset of the next frame
	pending int   // bytes of the returned frame still to discard
	err     error // sticky framing error
}

// NewReader returns a Reader over r, buffering 64 KiB so that any frame
// fits the buffer and Next can return a view of it without copying.
func NewReader(r io.Reader) *Reader {
	return &Reader{br: bufio.NewReaderSize(r, 1<<16+FrameLenSize)}
}

// Offset returns the file offset of the next frame: after Next returned a
// message, the offset just past it.
func (r *Reader) Offset() int64 { return r.off }

// Next returns the next message, a view valid until the next call. At the
// clean end of the input it returns io.EOF. A frame cut short by the end of
// the input is an *Error wrapping ErrTruncated with the frame's offset; that
// error is final. A complete frame whose body is not a valid message (unknown
// type, wrong length for its type) is an *Error with the file offset of the
// bad byte; the frame is consumed, so the caller may go on with Next.
// Next does not allocate unless it fails.
func (r *Reader) Next() (Message, error) {
	if r.err != nil {
		return nil, r.err
	}
	if r.pending > 0 {
		r.br.Discard(r.pending)
		r.pending = 0
	}
	start := r.off
	hdr, err := r.br.Peek(FrameLenSize)
	if err != nil {
		if len(hdr) == 0 && errors.Is(err, io.EOF) {
			return nil, io.EOF
		}
		return nil, r.fail(start, len(hdr), FrameLenSize, err)
	}
	n := int(binary.BigEndian.Uint16(hdr))
	frame, err := r.br.Peek(FrameLenSize + n)
	if err != nil {
		return nil, r.fail(start, len(frame), FrameLenSize+n, err)
	}
	r.pending = FrameLenSize + n
	r.off += int64(FrameLenSize + n)
	m, err := Parse(frame[FrameLenSize:])
	if err != nil {
		e := err.(*Error)
		e.Offset += start + FrameLenSize
		return nil, e
	}
	return m, nil
}

func (r *Reader) fail(off int64, have, want int, err error) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		r.err = &Error{Offset: off, Have: have, Want: want, Err: ErrTruncated}
	} else {
		r.err = err
	}
	return r.err
}

// AppendFrame appends msg with its 2-byte length prefix to dst: the file
// framing Reader reads. msg must be shorter than 64 KiB.
func AppendFrame(dst []byte, msg []byte) []byte {
	dst = binary.BigEndian.AppendUint16(dst, uint16(len(msg)))
	return append(dst, msg...)
}
