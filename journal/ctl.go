package journal

import (
	"encoding/binary"
	"sync/atomic"
	"unsafe"
)

// Control file journal.ctl, format.md §6. One page shared by the writer and
// every reader: the journal's identity, the futex word readers block on, and
// the active segment number. Readers map it read-write (only this file) so
// that they can announce themselves as waiters. It holds nothing that recovery
// needs: the writer rewrites it on open.
const (
	CtlMagic        = "MDJCTL\x00\x00"
	CtlSize         = 4096
	ctlOffMagic     = 0   // [8]byte
	ctlOffVersion   = 8   // uint32
	ctlOffJournalID = 16  // uint64
	ctlOffCreated   = 24  // int64 Unix ns when the journal was created
	CtlOffNotify    = 64  // uint32 futex word, bumped before every wake-up
	CtlOffWaiters   = 68  // uint32 count of announced sleepers
	CtlOffActive    = 128 // uint64 the active segment number (the writer stores it on activation)
	CtlOffWriterPID = 136 // uint32 the live writer's PID, 0 when none
)

// Ctl is a view of the mapped control file.
type Ctl struct{ b []byte }

// CtlOf wraps a mapping of journal.ctl.
func CtlOf(m []byte) Ctl { return Ctl{b: m} }

func (c Ctl) u64(off int) *uint64 { return (*uint64)(unsafe.Add(unsafe.Pointer(&c.b[0]), off)) }
func (c Ctl) u32(off int) *uint32 { return (*uint32)(unsafe.Add(unsafe.Pointer(&c.b[0]), off)) }

// PutCtlHeader encodes the control page's static fields into m (the futex
// words and the rest are left as they are).
func PutCtlHeader(m []byte, journalID uint64, created int64) {
	copy(m[ctlOffMagic:], CtlMagic)
	binary.LittleEndian.PutUint32(m[ctlOffVersion:], Version)
	binary.LittleEndian.PutUint64(m[ctlOffJournalID:], journalID)
	binary.LittleEndian.PutUint64(m[ctlOffCreated:], uint64(created))
}

// Magic is the control page magic ("MDJCTL\0\0").
func (c Ctl) Magic() string { return string(c.b[:8]) }

// Version is the format version.
func (c Ctl) Version() uint32 { return binary.LittleEndian.Uint32(c.b[ctlOffVersion:]) }

// JournalID is the journal the control page belongs to.
func (c Ctl) JournalID() uint64 { return binary.LittleEndian.Uint64(c.b[ctlOffJournalID:]) }

// Created is when the control page was made (Unix ns).
func (c Ctl) Created() int64 { return int64(binary.LittleEndian.Uint64(c.b[ctlOffCreated:])) }

// ActiveSegment is the number of the active segment (atomic).
func (c Ctl) ActiveSegment() uint64 { return atomic.LoadUint64(c.u64(CtlOffActive)) }

// WriterPID is the PID of the open writer, 0 after a clean close (atomic).
func (c Ctl) WriterPID() uint32 { return atomic.LoadUint32(c.u32(CtlOffWriterPID)) }

// Waiters is the number of announced futex sleepers (atomic).
func (c Ctl) Waiters() uint32 { return atomic.LoadUint32(c.u32(CtlOffWaiters)) }

// Notify is the futex word readers block on, bumped by the writer when it
// wakes them (atomic).
func (c Ctl) Notify() uint32 { return atomic.LoadUint32(c.u32(CtlOffNotify)) }
