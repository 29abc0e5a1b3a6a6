package replay

import (
	"encoding/binary"
	"fmt"

	"github.com/mdjournal/mdjournal/journal"
)

// Frame header offsets written here besides journal.PutFrameHeader's fields
// (format.md §3): crc at 0 and flags at 26. PutFrameHeader stores flags 0
// and no crc, so PutRecord stores the frame's own values afterwards.
const (
	offCRC   = 0
	offFlags = 26
)

// RecordLen is the ring record length carrying f: the bytes f occupies in
// its segment, header + payload + zero padding to a multiple of 8.
func RecordLen(f *journal.Frame) int { return journal.FrameSpace(len(f.Payload)) }

// PutRecord writes frame f, as stored in its segment, into b (at least
// RecordLen(f) bytes, e.g. a ring Claim buffer) and returns the bytes used.
//
// f must be a frame decoded by journal.DecodeFrame (every frame a reader
// returns is): its CRC field is the stored checksum, already verified by the
// reader over exactly the bytes rebuilt here, so it is copied rather than
// recomputed (that saves a CRC pass per frame). A consumer re-verifies it.
func PutRecord(b []byte, f *journal.Frame) int {
	size := journal.FrameHeaderSize + len(f.Payload)
	n := journal.Align8(size)
	b = b[:n:n]
	journal.PutFrameHeader(b, size, f.Seq, f.TS, f.Type, f.Instrument)
	binary.LittleEndian.PutUint16(b[offFlags:], f.Flags)
	copy(b[journal.FrameHeaderSize:size], f.Payload)
	clear(b[size:]) // a ring buffer holds old bytes; stored padding is zero
	binary.LittleEndian.PutUint32(b[offCRC:], f.CRC)
	return n
}

// RecordError describes a ring record that is not one valid frame.
type RecordError struct {
	Len    int                 // record length
	Status journal.FrameStatus // what DecodeFrame found
	Size   uint32              // the frame's size word, if the record is long enough
}

func (e *RecordError) Error() string {
	switch e.Status {
	case journal.FrameBadCRC:
		return fmt.Sprintf("ring record of %d bytes: frame checksum mismatch", e.Len)
	case journal.FrameOK:
		return fmt.Sprintf("ring record of %d bytes: frame size %d leaves trailing bytes", e.Len, e.Size)
	}
	return fmt.Sprintf("ring record of %d bytes: not a frame (size word %d)", e.Len, e.Size)
}

// DecodeRecord decodes and verifies the frame a ring record carries: a good
// CRC and a padded size equal to the record length. The frame's Payload
// aliases rec. It allocates only on failure.
func DecodeRecord(rec []byte) (journal.Frame, error) {
	f, n, st := journal.DecodeFrame(rec)
	if st != journal.FrameOK || n != len(rec) {
		e := &RecordError{Len: len(rec), Status: st}
		if len(rec) >= 8 {
			e.Size = journal.FrameSizeAt(rec)
		}
		if st == journal.FrameEmpty {
			e.Status = journal.FrameBadLength
		}
		return journal.Frame{}, e
	}
	return f, nil
}
