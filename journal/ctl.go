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
	ctlOffMagic     = 0  // [8]byte
	ctlOffVersion   = 8  // uint32
	ctlOffJournalID = 16 // uint64
	ctlOffCreated   = 24 // int64 Unix ns when the journal was created
	CtlOffNotify    = 64 // uint32 futex word, bumped by the writer on wake
	CtlOffWaiters   = 68 // uint32 count of announced sleepers
	ctlOffActive    = 128
	ctlOffWriterPID = 136
)

// Ctl is a view of the mapped control file.
type Ctl struct{ b []byte }

// CtlOf wraps a mapping of journal.ctl.
func CtlOf(m []byte) Ctl { return Ctl{b: m} }

func (c Ctl) u64(off int) *uint64 { return (*uint64)(unsafe.Add(unsafe.Pointer(&c.b[0]), off)) }
func (c Ctl) u32(off int) *uint32 { return (*uint32)(unsafe.Add(unsafe.Pointer(&c.b[0]), off)) }

// InitCtl writes the control page's static fields, keeping the futex words.
func InitCtl(m []byte, journalID uint64, created int64) {
	copy(m[ctlOffMagic:], CtlMagic)
	binary.LittleEndian.PutUint32(m[ctlOffVersion:], Version)
	binary.LittleEndian.PutUint64(m[ctlOffJournalID:], journalID)
	binary.LittleEndian.PutUint64(m[ctlOffCreated:], uint64(created))
}

func (c Ctl) Magic() string             { return string(c.b[:8]) }
func (c Ctl) Version() uint32           { return binary.LittleEndian.Uint32(c.b[ctlOffVersion:]) }
func (c Ctl) JournalID() uint64         { return binary.LittleEndian.Uint64(c.b[ctlOffJournalID:]) }
func (c Ctl) Created() int64            { return int64(binary.LittleEndian.Uint64(c.b[ctlOffCreated:])) }
func (c Ctl) ActiveSegment() uint64     { return atomic.LoadUint64(c.u64(ctlOffActive)) }
func (c Ctl) SetActiveSegment(n uint64) { atomic.StoreUint64(c.u64(ctlOffActive), n) }
func (c Ctl) WriterPID() uint32         { return atomic.LoadUint32(c.u32(ctlOffWriterPID)) }
func (c Ctl) SetWriterPID(p uint32)     { atomic.StoreUint32(c.u32(ctlOffWriterPID), p) }
func (c Ctl) Waiters() uint32           { return atomic.LoadUint32(c.u32(CtlOffWaiters)) }

// NotifyWord is the futex word readers block on and the writer bumps when it
// wakes them (4-byte aligned, in the mapping).
func (c Ctl) NotifyWord() *uint32 { return c.u32(CtlOffNotify) }

// WaitersWord counts readers announced as futex sleepers.
func (c Ctl) WaitersWord() *uint32 { return c.u32(CtlOffWaiters) }
