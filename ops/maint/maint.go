// Package maint serialises maintenance commands on a journal: compress,
// prune and recover (and any future one) hold the maintenance lock
// (journal.maint, format.md §7) exclusively for their whole run, so two
// never interleave (a prune deleting a segment a compress is archiving, a
// recover cutting what a compress reads). The writer does not take it: the
// maintenance commands leave the active segment alone, and recover takes
// the writer lock as well.
package maint

import (
	"errors"
	"fmt"
	"path/filepath"

	"github.com/mdjournal/mdjournal/internal/flock"
	"github.com/mdjournal/mdjournal/internal/fsx"
	"github.com/mdjournal/mdjournal/journal"
)

// ErrBusy matches the error Lock returns while another maintenance command
// runs; the message names its PID.
var ErrBusy = errors.New("maint: another maintenance command is running")

// Held is a held maintenance lock.
type Held struct{ l *flock.Lock }

// Lock takes the maintenance lock of dir for the command named what, and
// removes what a crashed maintenance command left (.seg.zst.tmp files:
// only compress makes them, under this lock).
func Lock(dir, what string) (*Held, error) {
	l, err := flock.Acquire(filepath.Join(dir, journal.MaintFile), 0)
	if err != nil {
		var held *flock.HeldError
		if errors.As(err, &held) {
			return nil, fmt.Errorf("%w: %s cannot start: %v", ErrBusy, what, err)
		}
		return nil, err
	}
	ms, _ := filepath.Glob(filepath.Join(dir, "*"+journal.ArchiveExt+journal.TmpExt))
	for _, m := range ms {
		fsx.RemoveRegular(m)
	}
	return &Held{l: l}, nil
}

// Release drops the lock.
func (h *Held) Release() error {
	if h == nil {
		return nil
	}
	return h.l.Release()
}
