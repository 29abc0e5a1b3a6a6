package replay

import (
	"fmt"

	"github.com/mdjournal/mdjournal/journal"
)

// RecordLen is the ring record length carrying f: the bytes f occupies in
// its segment, header + payload + trailer + zero padding to a multiple of 8.
func RecordLen(f *journal.Frame) int { return journal.StoredLen(f) }

// PutRecord writes frame f, as stored in its segment, into b (at least
// RecordLen(f) bytes, e.g. a ring Claim buffer) and returns the bytes used
// (journal.PutStored: the stored checksum is copied, not recomputed; a
// consumer re-verifies it).
func PutRecord(b []byte, f *journal.Frame) int { return journal.PutStored(b, f) }

// RecordError describes a ring record that is not one valid frame.
type RecordError struct {
	Len    int                 // record length
	Status journal.FrameStatus // what DecodeFrame found
	Size   uint32              // the frame's size word, if the record is long enough
}

// Error says what is wrong with the record and where.
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
