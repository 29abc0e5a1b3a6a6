package ring

import (
	"encoding/binary"
	"sync/atomic"
	"unsafe"

	"github.com/mdjournal/mdjournal/journal"
)

// Ring file header, format.md §12 "Ring file". These
// constants are part of the on-disk format: changing one changes Version.
const (
	Version    = 1
	Magic      = "MDJRING\x00"
	HeaderSize = 4096 // header page; the data area starts here (page-aligned)

	// Static fields [0,64), written once by Create, covered by the header CRC.
	offMagic      = 0  // [8]byte
	offVersion    = 8  // uint32
	offHeaderSize = 12 // uint32
	offCapacity   = 16 // uint64, data area size, power of two
	offCreated    = 24 // int64, Unix ns
	offHeaderCRC  = 32 // uint32, CRC-32C of bytes [0,32)
	staticEnd     = 32

	// OffTail is the producer position (bytes ever published), an atomic
	// uint64 alone in the 128-byte block [128,256).
	OffTail = 128
	// OffHead is the consumer position (bytes ever released), alone in [256,384).
	OffHead = 256
	// "Data available" signal (the consumer sleeps on it), block [384,512).
	OffDataSeq     = 384 // uint32 futex word, bumped by the producer
	OffDataWaiters = 388 // uint32, consumer's announced waiters
	// "Space available" signal (the producer sleeps on it), block [512,640).
	OffSpaceSeq     = 512
	OffSpaceWaiters = 516
	// Side blocks: who is attached. [640,768) producer, [768,896) consumer.
	OffProducer = 640
	OffConsumer = 768

	sideOffPID   = 0 // uint32, 0 = never attached
	sideOffState = 4 // uint32, StateNone/StateAttached/StateClosed
	sideOffStart = 8 // uint64, process start time (clock ticks after boot, /proc/PID/stat field 22); 0 = unknown

	// Records, format.md "Ring file / Records".
	RecordHeaderSize = 8 // uint32 length, uint32 kind
	RecordAlign      = 8
	KindData         = 1 // a record carrying length payload bytes
	KindPad          = 2 // filler from here to the end of the data area

	MinCapacity     = 64
	MaxCapacity     = 1 << 32 // so every record length fits the 32-bit length field
	DefaultCapacity = 1 << 20
)

// Side states (side block offset 4).
const (
	StateNone     = 0 // never attached since Create
	StateAttached = 1 // a process is attached (it may have died since: check its PID)
	StateClosed   = 2 // the side detached cleanly
)

// MaxPayload is the largest record payload a ring of this capacity accepts:
// a whole record (header, payload, alignment padding) is at most capacity/2,
// which guarantees that a record plus the padding record before it always
// fits once the ring is drained.
func MaxPayload(capacity int) int { return capacity/2 - RecordHeaderSize }

func align8(n uint64) uint64 { return (n + RecordAlign - 1) &^ (RecordAlign - 1) }

// header is a view of the mapped header page.
type header struct{ b []byte }

func (h header) u64(off int) *uint64 { return (*uint64)(unsafe.Add(unsafe.Pointer(&h.b[0]), off)) }
func (h header) u32(off int) *uint32 { return (*uint32)(unsafe.Add(unsafe.Pointer(&h.b[0]), off)) }

func (h header) magic() string      { return string(h.b[offMagic : offMagic+8]) }
func (h header) version() uint32    { return binary.LittleEndian.Uint32(h.b[offVersion:]) }
func (h header) headerSize() uint32 { return binary.LittleEndian.Uint32(h.b[offHeaderSize:]) }
func (h header) capacity() uint64   { return binary.LittleEndian.Uint64(h.b[offCapacity:]) }
func (h header) headerCRC() uint32  { return binary.LittleEndian.Uint32(h.b[offHeaderCRC:]) }
func (h header) tail() uint64       { return atomic.LoadUint64(h.u64(OffTail)) }
func (h header) head() uint64       { return atomic.LoadUint64(h.u64(OffHead)) }

// side is the view of one side block.
type side struct {
	h   header
	off int
}

func (s side) pid() uint32       { return atomic.LoadUint32(s.h.u32(s.off + sideOffPID)) }
func (s side) state() uint32     { return atomic.LoadUint32(s.h.u32(s.off + sideOffState)) }
func (s side) start() uint64     { return atomic.LoadUint64(s.h.u64(s.off + sideOffStart)) }
func (s side) setState(v uint32) { atomic.StoreUint32(s.h.u32(s.off+sideOffState), v) }

func initHeader(b []byte, capacity uint64, created int64) {
	h := b[:HeaderSize]
	clear(h)
	copy(h[offMagic:], Magic)
	binary.LittleEndian.PutUint32(h[offVersion:], Version)
	binary.LittleEndian.PutUint32(h[offHeaderSize:], HeaderSize)
	binary.LittleEndian.PutUint64(h[offCapacity:], capacity)
	binary.LittleEndian.PutUint64(h[offCreated:], uint64(created))
	binary.LittleEndian.PutUint32(h[offHeaderCRC:], journal.CRC32C(h[:staticEnd]))
}

// check validates a mapped header against the file it came from. b is the
// whole mapping (at least HeaderSize bytes); fileSize is the file's size.
func (h header) check(name string, fileSize int64) error {
	if m := h.magic(); m != Magic {
		return journal.Corrupt(name, offMagic, ErrBadMagic, "bad ring magic %q", m)
	}
	if v := h.version(); v != Version {
		return journal.Corrupt(name, offVersion, ErrVersion, "ring format version %d, this build reads %d", v, Version)
	}
	if hs := h.headerSize(); hs != HeaderSize {
		return journal.Corrupt(name, offHeaderSize, ErrBadHeader, "header size %d, want %d", hs, HeaderSize)
	}
	c := h.capacity()
	if c < MinCapacity || c > MaxCapacity || c&(c-1) != 0 {
		return journal.Corrupt(name, offCapacity, ErrBadCapacity, "capacity %d is not a power of two in [%d,%d]", c, MinCapacity, uint64(MaxCapacity))
	}
	if crc := journal.CRC32C(h.b[:staticEnd]); crc != h.headerCRC() {
		return journal.Corrupt(name, offHeaderCRC, ErrChecksum, "header checksum %#08x, computed %#08x", h.headerCRC(), crc)
	}
	if want := int64(HeaderSize + c); fileSize < want {
		return journal.Corrupt(name, fileSize, ErrTruncated, "file is %d bytes, header and capacity need %d", fileSize, want)
	}
	t, hd := h.tail(), h.head()
	if t%RecordAlign != 0 {
		return journal.Corrupt(name, OffTail, ErrBadPosition, "producer position %d not %d-byte aligned", t, RecordAlign)
	}
	if hd%RecordAlign != 0 {
		return journal.Corrupt(name, OffHead, ErrBadPosition, "consumer position %d not %d-byte aligned", hd, RecordAlign)
	}
	if hd > t || t-hd > c {
		return journal.Corrupt(name, OffHead, ErrBadPosition, "consumer position %d, producer position %d: not within one capacity (%d) behind", hd, t, c)
	}
	for _, off := range [2]int{OffProducer, OffConsumer} {
		if st := (side{h, off}).state(); st > StateClosed {
			return journal.Corrupt(name, int64(off+sideOffState), ErrBadHeader, "side state %d unknown", st)
		}
	}
	return nil
}
