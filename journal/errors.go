package journal

import (
	"errors"
	"fmt"
)

// Sentinel errors. A *CorruptionError wraps exactly one of the corruption
// sentinels and also matches ErrCorrupt, so callers can test either the
// specific reason or "is this data damage at all".
var (
	// ErrCorrupt matches every *CorruptionError.
	ErrCorrupt = errors.New("journal: corrupt data")

	ErrBadMagic      = errors.New("journal: bad magic")
	ErrVersion       = errors.New("journal: unsupported format version")
	ErrBadHeader     = errors.New("journal: bad header")
	ErrChecksum      = errors.New("journal: checksum mismatch")
	ErrBadLength     = errors.New("journal: bad frame length")
	ErrCursorRange   = errors.New("journal: write cursor out of range")
	ErrSequence      = errors.New("journal: sequence discontinuity")
	ErrMissing       = errors.New("journal: missing segment")
	ErrTruncated     = errors.New("journal: file truncated")
	ErrMidLog        = errors.New("journal: damage before valid data")
	ErrTornTail      = errors.New("journal: torn tail")
	ErrIndexMismatch = errors.New("journal: index does not match data")

	// Non-corruption errors.

	// ErrNotRegular: a path where a journal file is expected is a symlink,
	// a FIFO, a device or a directory. mdjournal never follows a symlink or
	// opens anything but a regular file there (a FIFO would block forever;
	// a symlink planted by another user would redirect writes).
	ErrNotRegular    = errors.New("journal: not a regular file")
	ErrFrameTooLarge = errors.New("journal: frame too large")
	ErrClosed        = errors.New("journal: closed")
	ErrNotFound      = errors.New("journal: no journal in directory")
)

// CorruptionError reports damaged bytes: which file, at which byte offset, and
// why. Err is one of the corruption sentinels above (ErrChecksum, ErrTornTail,
// ...). Torn tails (ErrTornTail: an unfinished write at the end of the active
// segment, repairable) are told apart from damage followed by valid data or
// inside a sealed segment (everything else: never silently dropped).
type CorruptionError struct {
	File   string
	Offset int64
	Reason string
	Err    error
}

// Error says "FILE: offset N: reason".
func (e *CorruptionError) Error() string {
	return fmt.Sprintf("%s: offset %d: %s", e.File, e.Offset, e.Reason)
}

// Unwrap returns the specific sentinel.
func (e *CorruptionError) Unwrap() error { return e.Err }

// Is makes every CorruptionError match ErrCorrupt.
func (e *CorruptionError) Is(target error) bool { return target == ErrCorrupt }

// Corrupt builds a *CorruptionError.
func Corrupt(file string, off int64, sentinel error, format string, args ...any) *CorruptionError {
	return &CorruptionError{File: file, Offset: off, Reason: fmt.Sprintf(format, args...), Err: sentinel}
}
