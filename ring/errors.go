package ring

import (
	"errors"
	"fmt"
)

// Corruption sentinels. Damage is reported as a *journal.CorruptionError
// (file, byte offset, reason) wrapping one of these; every such error also
// matches journal.ErrCorrupt.
var (
	ErrBadMagic    = errors.New("ring: bad magic")
	ErrVersion     = errors.New("ring: unsupported format version")
	ErrBadHeader   = errors.New("ring: bad header")
	ErrBadCapacity = errors.New("ring: bad capacity")
	ErrChecksum    = errors.New("ring: header checksum mismatch")
	ErrTruncated   = errors.New("ring: file truncated")
	ErrBadPosition = errors.New("ring: position out of range")
	ErrBadRecord   = errors.New("ring: bad record")
)

// Operational errors.
var (
	// ErrPeerDead is returned by blocking calls when the other side's process
	// no longer exists (or its PID now names another process) and, for a
	// consumer, every record it published has been read.
	ErrPeerDead = errors.New("ring: peer process is dead")
	// ErrPeerClosed is returned by a blocking producer call when the ring is
	// full and the consumer has detached cleanly: nobody will make space.
	ErrPeerClosed = errors.New("ring: peer closed")
	// ErrFull is returned by TryWrite and TryClaim when the ring lacks space now.
	ErrFull = errors.New("ring: full")
	// ErrTooLarge is returned for a record larger than MaxPayload.
	ErrTooLarge = errors.New("ring: record too large")
	// ErrClosed is returned by calls on a side (or ring) that was closed.
	ErrClosed = errors.New("ring: closed")
	// ErrClaimPending is returned by a write while a Claim is not yet committed.
	ErrClaimPending = errors.New("ring: claim pending")
	// ErrNoClaim is returned by Commit without a preceding Claim.
	ErrNoClaim = errors.New("ring: commit without claim")
	// ErrBusy is returned (wrapped in *BusyError) when a live process is
	// already attached on the requested side.
	ErrBusy = errors.New("ring: side already attached")
)

// BusyError names the live process holding a side.
type BusyError struct {
	Path string
	Side string // "producer" or "consumer"
	PID  int
}

func (e *BusyError) Error() string {
	return fmt.Sprintf("%s: %s side held by live PID %d", e.Path, e.Side, e.PID)
}

// Unwrap returns ErrBusy.
func (e *BusyError) Unwrap() error { return ErrBusy }
