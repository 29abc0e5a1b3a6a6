package ring

import (
	"encoding/binary"
	"runtime"
	"sync/atomic"
	"unsafe"

	"github.com/mdjournal/mdjournal/journal"
)

// Ring file header, format.md §12 "Ring file". These constants are part of
// the on-disk format: changing one changes Version.
const (
	Version    = 2
	Magic      = "MDJRING\x00"
	HeaderSize = 4096 // header page; the data area starts here (page-aligned)

	// Static fields [0,64), written once by the creator before the file
	// appears under its name; [0,44) is covered by the header CRC.
	offMagic      = 0  // [8]byte
	offVersion    = 8  // uint32
	offHeaderSize = 12 // uint32
	offCapacity   = 16 // uint64, data area size, power of two
	offCreated    = 24 // int64, Unix ns, informational
	offGeneration = 32 // uint64, random, non-zero: names this generation
	offFlags      = 40 // uint32, FlagHugePages
	offHeaderCRC  = 44 // uint32, CRC-32C of bytes [0,44)
	staticEnd     = 44

	// OffTail is the producer position (bytes ever published), an atomic
	// uint64 alone in the 128-byte block [128,256). The consumer does not
	// read it per record (records publish themselves through their header
	// word); it bounds the consumer once per lap and decides end of stream.
	OffTail = 128
	// OffHead is the consumer position (bytes ever released), alone in
	// [256,384). The consumer stores it once per batch; the producer loads
	// it only when its cached copy says the ring is full.
	OffHead = 256
	// "Data available" signal (the consumer sleeps on it), block [384,512).
	OffDataSeq     = 384 // uint32 futex word, bumped by the producer
	OffDataWaiters = 388 // uint32, consumer's announced waiters
	// "Space available" signal (the producer sleeps on it), block [512,640).
	OffSpaceSeq     = 512
	OffSpaceWaiters = 516
	// Side blocks, each written by its own side only (except the sealing
	// compare-and-swap of a free side): [640,768) producer, [768,896) consumer.
	OffProducer = 640
	OffConsumer = 768

	sideOffPID       = 0  // uint32: 0 free, SealedPID sealed, else the claimant's PID
	sideOffState     = 4  // uint32: StateFree .. StateRetired
	sideOffStart     = 8  // uint64: process start time, /proc/PID/stat field 22 (clock ticks after boot); 0 unknown
	sideOffHeartbeat = 16 // int64: CLOCK_MONOTONIC ns of the side's last sign of life; 0 = not beating
	sideOffPIDNS     = 24 // uint64: inode of the side's /proc/self/ns/pid; 0 unknown
	sideOffFlags     = 32 // uint32: SideFlagPlainPublish

	// Records, format.md "Ring file / Records".
	RecordHeaderSize = 8 // one uint64 word: length | kind<<32; 0 = not yet published
	RecordAlign      = 8
	KindData         = 1 // a record carrying length payload bytes
	KindPad          = 2 // filler from here to the end of the data area

	// EndReserve is the free space the producer always leaves: the header
	// word just past its last record is kept zero, so it must be free.
	EndReserve = 8

	MinCapacity     = 64
	MaxCapacity     = 1 << 32 // so every record length fits the 32-bit length field
	DefaultCapacity = 1 << 20
)

// FlagHugePages (static header flags) records that the creator put the ring
// on a hugetlbfs mount. Informational.
const FlagHugePages = 1

// SideFlagPlainPublish (side block flags) says the side publishes (record
// header words, head) with plain release stores and no full fence, and is
// registered for membarrier(MEMBARRIER_CMD_GLOBAL_EXPEDITED): a peer about
// to sleep on a futex must issue that membarrier after announcing itself
// and before re-checking (format.md §12 "Waiting and the futex protocol").
const SideFlagPlainPublish = 1

// SealedPID in a side's PID word marks a side that was never attached and
// never can be: a process replacing the ring sealed it.
const SealedPID = 0xFFFFFFFF

// Side states (side block offset 4). Each side of a generation is attached
// at most once: Free → Attached → Closed, or Free → Retired.
const (
	StateFree     = 0 // never attached in this generation
	StateAttached = 1 // a process attached (it may have died since: see heartbeat and PID)
	StateClosed   = 2 // the side detached cleanly (producer: end of stream)
	StateRetired  = 3 // sealed while free: nobody may attach any more
)

// MaxPayload is the largest record payload a ring of this capacity accepts:
// a whole record (header, payload, alignment padding) is at most capacity/2,
// which guarantees that a record plus the padding record before it plus the
// end reserve always fit once the ring is drained.
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
func (h header) generation() uint64 { return atomic.LoadUint64(h.u64(offGeneration)) }
func (h header) headerCRC() uint32  { return binary.LittleEndian.Uint32(h.b[offHeaderCRC:]) }
func (h header) tail() uint64       { return atomic.LoadUint64(h.u64(OffTail)) }
func (h header) head() uint64       { return atomic.LoadUint64(h.u64(OffHead)) }

// side is the view of one side block.
type side struct {
	h   header
	off int
}

func (s side) pidp() *uint32     { return s.h.u32(s.off + sideOffPID) }
func (s side) pid() uint32       { return atomic.LoadUint32(s.pidp()) }
func (s side) state() uint32     { return atomic.LoadUint32(s.h.u32(s.off + sideOffState)) }
func (s side) start() uint64     { return atomic.LoadUint64(s.h.u64(s.off + sideOffStart)) }
func (s side) heartbeat() int64  { return int64(atomic.LoadUint64(s.h.u64(s.off + sideOffHeartbeat))) }
func (s side) pidns() uint64     { return atomic.LoadUint64(s.h.u64(s.off + sideOffPIDNS)) }
func (s side) flags() uint32     { return atomic.LoadUint32(s.h.u32(s.off + sideOffFlags)) }
func (s side) setState(v uint32) { atomic.StoreUint32(s.h.u32(s.off+sideOffState), v) }
func (s side) beat(now int64)    { atomic.StoreUint64(s.h.u64(s.off+sideOffHeartbeat), uint64(now)) }

func (s side) name() string {
	if s.off == OffProducer {
		return "producer"
	}
	return "consumer"
}

func initHeader(b []byte, capacity uint64, created int64, generation uint64, flags uint32) {
	h := b[:HeaderSize]
	clear(h)
	copy(h[offMagic:], Magic)
	binary.LittleEndian.PutUint32(h[offVersion:], Version)
	binary.LittleEndian.PutUint32(h[offHeaderSize:], HeaderSize)
	binary.LittleEndian.PutUint64(h[offCapacity:], capacity)
	binary.LittleEndian.PutUint64(h[offCreated:], uint64(created))
	binary.LittleEndian.PutUint64(h[offGeneration:], generation)
	binary.LittleEndian.PutUint32(h[offFlags:], flags)
	binary.LittleEndian.PutUint32(h[offHeaderCRC:], journal.CRC32C(h[:staticEnd]))
}

// check validates a mapped (or copied) header page against the file it came
// from; fileSize is the file's size.
func (h header) check(name string, fileSize int64) error {
	if m := h.magic(); m != Magic {
		return journal.Corrupt(name, offMagic, ErrBadMagic, "bad ring magic %q", m)
	}
	if v := h.version(); v != Version {
		if v == 1 {
			return journal.Corrupt(name, offVersion, ErrVersion,
				"ring format version 1 (written by an older mdjournal); this build reads version %d only: "+
					"stop the processes using it and remove the file, a version-%d producer creates a new one", Version, Version)
		}
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
	if h.generation() == 0 {
		return journal.Corrupt(name, offGeneration, ErrBadHeader, "generation 0")
	}
	if want := int64(HeaderSize + c); fileSize < want {
		return journal.Corrupt(name, fileSize, ErrTruncated, "file is %d bytes, header and capacity need %d", fileSize, want)
	}
	t, hd := h.tail(), h.head()
	// A live consumer may store a head past the stored tail for a moment
	// (the producer stores tail after the record's header word, format.md
	// §12 "Positions"): re-read before calling it damage.
	for i := 0; hd > t && i < 4; i++ {
		runtime.Gosched()
		hd = h.head()
		t = h.tail()
	}
	if t%RecordAlign != 0 {
		return journal.Corrupt(name, OffTail, ErrBadPosition, "producer position %d not %d-byte aligned", t, RecordAlign)
	}
	if hd%RecordAlign != 0 {
		return journal.Corrupt(name, OffHead, ErrBadPosition, "consumer position %d not %d-byte aligned", hd, RecordAlign)
	}
	if hd > t || t-hd > c-EndReserve {
		return journal.Corrupt(name, OffHead, ErrBadPosition, "consumer position %d, producer position %d: not within one capacity (%d) less %d behind", hd, t, c, EndReserve)
	}
	for _, off := range [2]int{OffProducer, OffConsumer} {
		s := side{h, off}
		if st := s.state(); st > StateRetired {
			return journal.Corrupt(name, int64(off+sideOffState), ErrBadHeader, "%s state %d unknown", s.name(), st)
		}
	}
	if st := (side{h, OffConsumer}).state(); st == StateFree && hd != 0 {
		return journal.Corrupt(name, OffHead, ErrBadPosition, "consumer position %d but no consumer ever attached", hd)
	}
	if st := (side{h, OffProducer}).state(); st == StateFree && t != 0 {
		return journal.Corrupt(name, OffTail, ErrBadPosition, "producer position %d but no producer ever attached", t)
	}
	return nil
}

// HeaderLayout is the ring header page of format.md §12, declared once:
// inspect prints a ring file from it, and a test ties it to format.md.
var HeaderLayout = journal.Layout{Name: "ring header", Section: "§12", Size: HeaderSize, Fields: []journal.Field{
	{Off: offMagic, Size: 8, Name: "magic", Kind: journal.KindBytes, Meaning: `"MDJRING\0"`},
	{Off: offVersion, Size: 4, Name: "version", Kind: journal.KindU32, Meaning: "ring format version (2)"},
	{Off: offHeaderSize, Size: 4, Name: "header_size", Kind: journal.KindU32, Meaning: "4096: offset of the data area"},
	{Off: offCapacity, Size: 8, Name: "capacity", Kind: journal.KindU64, Meaning: "data area bytes, power of two in [64, 2^32]"},
	{Off: offCreated, Size: 8, Name: "created", Kind: journal.KindTime, Meaning: "creation time; informational"},
	{Off: offGeneration, Size: 8, Name: "generation", Kind: journal.KindU64, Meaning: "random, non-zero: names this generation"},
	{Off: offFlags, Size: 4, Name: "flags", Kind: journal.KindU32, Meaning: "bit 0 HUGE_PAGES"},
	{Off: offHeaderCRC, Size: 4, Name: "header_crc", Kind: journal.KindCRC, Meaning: "CRC-32C of bytes [0,44)"},
	{Off: offHeaderCRC + 4, Size: OffTail - offHeaderCRC - 4, Name: "reserved", Kind: journal.KindReserved, Meaning: "zero"},
	{Off: OffTail, Size: 8, Name: "tail", Kind: journal.KindU64, Atomic: true, Meaning: "producer position: bytes ever published"},
	{Off: OffTail + 8, Size: OffHead - OffTail - 8, Name: "reserved", Kind: journal.KindReserved, Meaning: "zero"},
	{Off: OffHead, Size: 8, Name: "head", Kind: journal.KindU64, Atomic: true, Meaning: "consumer position: bytes ever released"},
	{Off: OffHead + 8, Size: OffDataSeq - OffHead - 8, Name: "reserved", Kind: journal.KindReserved, Meaning: "zero"},
	{Off: OffDataSeq, Size: 4, Name: "data_seq", Kind: journal.KindU32, Atomic: true, Meaning: "futex word the consumer sleeps on"},
	{Off: OffDataWaiters, Size: 4, Name: "data_waiters", Kind: journal.KindU32, Atomic: true, Meaning: "announced consumer sleepers"},
	{Off: OffDataWaiters + 4, Size: OffSpaceSeq - OffDataWaiters - 4, Name: "reserved", Kind: journal.KindReserved, Meaning: "zero"},
	{Off: OffSpaceSeq, Size: 4, Name: "space_seq", Kind: journal.KindU32, Atomic: true, Meaning: "futex word the producer sleeps on"},
	{Off: OffSpaceWaiters, Size: 4, Name: "space_waiters", Kind: journal.KindU32, Atomic: true, Meaning: "announced producer sleepers"},
	{Off: OffSpaceWaiters + 4, Size: OffProducer - OffSpaceWaiters - 4, Name: "reserved", Kind: journal.KindReserved, Meaning: "zero"},
	{Off: OffProducer, Size: SideSize, Name: "producer_side", Kind: journal.KindBytes, Meaning: "producer side block (SideLayout)"},
	{Off: OffProducer + SideSize, Size: OffConsumer - OffProducer - SideSize, Name: "reserved", Kind: journal.KindReserved, Meaning: "zero"},
	{Off: OffConsumer, Size: SideSize, Name: "consumer_side", Kind: journal.KindBytes, Meaning: "consumer side block (SideLayout)"},
	{Off: OffConsumer + SideSize, Size: HeaderSize - OffConsumer - SideSize, Name: "reserved", Kind: journal.KindReserved, Meaning: "zero"},
}}

// SideSize is the bytes of a side block that carry fields (SideLayout).
const SideSize = 36

// SideLayout is a side block of format.md §12, relative to OffProducer or
// OffConsumer.
var SideLayout = journal.Layout{Name: "ring side block", Section: "§12", Size: SideSize, Fields: []journal.Field{
	{Off: sideOffPID, Size: 4, Name: "pid", Kind: journal.KindU32, Atomic: true, Meaning: "0 free, 0xFFFFFFFF sealed, else the claimant's PID"},
	{Off: sideOffState, Size: 4, Name: "state", Kind: journal.KindU32, Atomic: true, Meaning: "0 FREE, 1 ATTACHED, 2 CLOSED, 3 RETIRED"},
	{Off: sideOffStart, Size: 8, Name: "start", Kind: journal.KindU64, Atomic: true, Meaning: "process start time (clock ticks after boot); 0 unknown"},
	{Off: sideOffHeartbeat, Size: 8, Name: "heartbeat", Kind: journal.KindI64, Atomic: true, Meaning: "CLOCK_MONOTONIC ns of the last sign of life; 0 not beating"},
	{Off: sideOffPIDNS, Size: 8, Name: "pidns", Kind: journal.KindU64, Atomic: true, Meaning: "inode of the side's PID namespace; 0 unknown"},
	{Off: sideOffFlags, Size: 4, Name: "flags", Kind: journal.KindU32, Atomic: true, Meaning: "bit 0 PLAIN_PUBLISH"},
}}

// CheckHeader judges a ring file's contents (at least its header page; the
// whole file when the size check should see the data area) as Open does,
// without mapping or attaching: for forensic tools. The error is a
// *journal.CorruptionError naming name, the offset and the reason.
func CheckHeader(name string, data []byte) error {
	if len(data) < HeaderSize {
		return journal.Corrupt(name, int64(len(data)), ErrTruncated, "file is %d bytes, shorter than the %d-byte header", len(data), HeaderSize)
	}
	hb := make([]byte, HeaderSize) // aligned private copy: header loads atomically
	copy(hb, data)
	return header{hb}.check(name, int64(len(data)))
}
