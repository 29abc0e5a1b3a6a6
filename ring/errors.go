package ring

import (
	"errors"
	"fmt"

	"github.com/mdjournal/mdjournal/journal"
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
	// ErrTruncated is journal.ErrTruncated: a ring file shorter than its
	// header says, found on open or (another process truncated it) while
	// mapped. A mapped ring that shrinks never raises SIGBUS: both sides
	// get a *journal.CorruptionError wrapping this.
	ErrTruncated   = journal.ErrTruncated
	ErrBadPosition = errors.New("ring: position out of range")
	ErrBadRecord   = errors.New("ring: bad record")
)

// Operational errors.
var (
	// ErrPeerDead is returned by blocking calls when the other side's
	// process is gone: its heartbeat is older than the peer timeout, or
	// (same PID namespace only) its PID no longer names it. A consumer
	// gets it only once every record published before the death was read.
	ErrPeerDead = errors.New("ring: peer process is dead")
	// ErrPeerClosed is returned by a blocking producer call when the ring
	// is full and the consumer has detached (or can never attach): nobody
	// will make space.
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
	// attached on the requested side.
	ErrBusy = errors.New("ring: side already attached")
	// ErrSideUsed is returned when the requested side of this generation was
	// attached before and has left (closed, died, or was sealed): each side
	// of a generation attaches once, so no record is delivered twice.
	ErrSideUsed = errors.New("ring: side already used in this ring generation")
	// ErrLeftover is returned (wrapped in *LeftoverError) by NewProducer and
	// Create when the path holds a leftover ring and replacing it was not
	// asked for.
	ErrLeftover = errors.New("ring: leftover ring file")
	// ErrNoProducer is returned by NewConsumer when no ring with a producer
	// (attached, or about to attach) appeared within the attach timeout; it
	// is joined with os.ErrDeadlineExceeded.
	ErrNoProducer = errors.New("ring: no producer")
	// ErrUndelivered is returned by Producer.Close when records it published
	// were never consumed: no consumer attached within the linger time, or
	// the ring file was replaced before one did.
	ErrUndelivered = errors.New("ring: records not delivered")
	// ErrNotRegular is returned when the ring path names a symbolic link or
	// anything but a regular file: it is never followed nor opened for use.
	ErrNotRegular = errors.New("ring: not a regular file")
	// ErrNoHugePages is returned when huge-page backing was asked for and
	// cannot be had: the directory is not a hugetlbfs mount, or no huge
	// pages are free (/proc/sys/vm/nr_hugepages).
	ErrNoHugePages = errors.New("ring: no huge pages")
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

// LeftoverError describes a leftover ring file that was not replaced.
type LeftoverError struct {
	Path       string
	Generation uint64
	Reason     string // e.g. "producer PID 123 dead (heartbeat 5m0s old)"
}

func (e *LeftoverError) Error() string {
	return fmt.Sprintf("%s: leftover ring (generation %016x): %s; replace it (Options.Replace) or remove it", e.Path, e.Generation, e.Reason)
}

// Unwrap returns ErrLeftover.
func (e *LeftoverError) Unwrap() error { return ErrLeftover }
