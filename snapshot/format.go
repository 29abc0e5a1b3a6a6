package snapshot

import (
	"encoding/binary"
	"unsafe"

	"github.com/mdjournal/mdjournal/journal"
)

// Snapshot file layout, format.md §11 "Snapshot file".
// These constants are part of the on-disk format: changing one changes Version.
const (
	Magic = "MDJSNAP\x00"
	// Version is the snapshot file format version (independent of
	// journal.Version). 2 has the byte layout of 1 and changes the writer's
	// protocol: the writer lock is the separate file LockPath(path), not a
	// flock on the snapshot itself (a version-1 writer would not see a
	// version-2 writer's lock), writer_pid is synced at open and cleared by
	// a synced close, and OpenWriter lowers last_applied to 0 in a file it
	// cannot trust as a whole.
	Version = 2

	// HeaderSize is the header page; slot 0 starts here.
	HeaderSize = 4096

	// Static header fields, written once by Create and covered by the header CRC.
	hdrOffMagic      = 0  // [8]byte
	hdrOffVersion    = 8  // uint32
	hdrOffHeaderSize = 12 // uint32, HeaderSize
	hdrOffJournalID  = 16 // uint64, journal.Header.JournalID of the journal this file mirrors
	hdrOffDepth      = 24 // uint32, N: price levels per side
	hdrOffSlotSize   = 28 // uint32, SlotSize(N)
	hdrOffCapacity   = 32 // uint32, number of slots (instrument ids 0..capacity-1)
	hdrOffReserved0  = 36 // uint32, zero
	hdrOffCreated    = 40 // int64, Unix ns
	hdrOffFileSize   = 48 // uint64, FileSize(N, capacity)
	hdrOffHeaderCRC  = 56 // uint32, CRC-32C of bytes [0,56)
	hdrStaticEnd     = 56

	// HdrOffLastApplied is the last journal sequence number whose effect is in
	// every slot. Atomic uint64 alone on its cache line [64,128).
	HdrOffLastApplied = 64
	// hdrOffWriterPID is the PID of the process holding the file open for
	// writing (0 when closed cleanly). Atomic uint32 on line [128,192).
	hdrOffWriterPID = 128

	// Slot layout. A slot is SlotSize(N) bytes, starts 64-aligned and
	// describes one instrument.
	slotOffLock      = 0  // uint64 atomic seqlock counter: odd while being written, 0 = never written
	slotOffSeq       = 8  // uint64 journal seq of the last message reflected
	slotOffTS        = 16 // int64 exchange timestamp (ns) of that message
	slotOffInstr     = 24 // uint32 instrument id (== slot index once written)
	slotOffScale     = 28 // int32 price scale (decimal digits)
	slotOffSymbol    = 32 // [16]byte NUL-padded symbol
	slotOffCounts    = 48 // uint32 bid count at 48, uint32 ask count at 52
	slotOffTradePx   = 56 // int64 last trade price
	slotOffTradeQty  = 64 // int64 last trade quantity
	slotOffTradeTS   = 72 // int64 last trade timestamp (ns)
	slotOffReserved  = 80 // [16]byte zero
	slotOffLevels    = 96 // bids [N]Level, then asks [N]Level; Level = price int64, qty int64
	levelSize        = 16
	slotAlign        = 64
	slotFixedSize    = slotOffLevels
	symbolLen        = journal.SymbolLen
	slotOffBidCount  = slotOffCounts
	slotOffAskCount  = slotOffCounts + 4
	slotSymbolWords  = symbolLen / 8
	levelWordsPerLvl = levelSize / 8
)

// Limits on the header's depth and capacity.
const (
	MaxDepth    = 256
	MaxCapacity = 1 << 20
)

// SlotSize is the size in bytes of one slot of a file of the given depth:
// 96 fixed bytes plus 2·depth levels of 16 bytes, rounded up to 64.
func SlotSize(depth int) int {
	return (slotFixedSize + 2*depth*levelSize + slotAlign - 1) &^ (slotAlign - 1)
}

// FileSize is the size in bytes of a snapshot file: the header page plus
// capacity slots, rounded up to a 4 KiB page.
func FileSize(depth, capacity int) int64 {
	sz := int64(HeaderSize) + int64(capacity)*int64(SlotSize(depth))
	return (sz + 4095) &^ 4095
}

// Level is one aggregated price level: a fixed-point price (journal.Price)
// and the total quantity resting at it.
type Level struct {
	Price journal.Price // fixed point: real price = Price / 10^PriceScale
	Qty   int64         // total quantity resting at the price
}

// Trade is the last trade of an instrument as kept in its slot.
type Trade struct {
	Price journal.Price // fixed point, as Level.Price
	Qty   int64         // traded quantity
	TS    int64         // exchange timestamp, Unix ns
}

// layout is what a valid header says.
type layout struct {
	journalID uint64
	depth     int
	slotSize  int
	capacity  int
	created   int64
	fileSize  int64
}

// writeHeader fills a fresh header page (b is at least HeaderSize bytes).
func writeHeader(b []byte, l layout) {
	clear(b[:HeaderSize])
	copy(b[hdrOffMagic:], Magic)
	binary.LittleEndian.PutUint32(b[hdrOffVersion:], Version)
	binary.LittleEndian.PutUint32(b[hdrOffHeaderSize:], HeaderSize)
	binary.LittleEndian.PutUint64(b[hdrOffJournalID:], l.journalID)
	binary.LittleEndian.PutUint32(b[hdrOffDepth:], uint32(l.depth))
	binary.LittleEndian.PutUint32(b[hdrOffSlotSize:], uint32(l.slotSize))
	binary.LittleEndian.PutUint32(b[hdrOffCapacity:], uint32(l.capacity))
	binary.LittleEndian.PutUint64(b[hdrOffCreated:], uint64(l.created))
	binary.LittleEndian.PutUint64(b[hdrOffFileSize:], uint64(l.fileSize))
	binary.LittleEndian.PutUint32(b[hdrOffHeaderCRC:], journal.CRC32C(b[:hdrStaticEnd]))
}

// parseHeader validates the header at the start of b against the real file
// size and returns the layout it describes. It never panics: b may be any
// length and hold any bytes.
func parseHeader(name string, b []byte, fileSize int64) (layout, error) {
	var l layout
	if len(b) < hdrStaticEnd+4 || fileSize < HeaderSize {
		return l, journal.Corrupt(name, fileSize, journal.ErrTruncated,
			"file is %d bytes, shorter than the %d-byte snapshot header", fileSize, HeaderSize)
	}
	if string(b[hdrOffMagic:hdrOffMagic+8]) != Magic {
		return l, journal.Corrupt(name, hdrOffMagic, journal.ErrBadMagic, "bad snapshot magic %q", b[hdrOffMagic:hdrOffMagic+8])
	}
	if v := binary.LittleEndian.Uint32(b[hdrOffVersion:]); v != Version {
		return l, journal.Corrupt(name, hdrOffVersion, journal.ErrVersion, "snapshot format version %d, this build reads %d", v, Version)
	}
	crc, want := journal.CRC32C(b[:hdrStaticEnd]), binary.LittleEndian.Uint32(b[hdrOffHeaderCRC:])
	if crc != want {
		return l, journal.Corrupt(name, hdrOffHeaderCRC, journal.ErrChecksum, "header checksum %#08x, computed %#08x", want, crc)
	}
	if hs := binary.LittleEndian.Uint32(b[hdrOffHeaderSize:]); hs != HeaderSize {
		return l, journal.Corrupt(name, hdrOffHeaderSize, journal.ErrBadHeader, "header size %d, want %d", hs, HeaderSize)
	}
	depth := binary.LittleEndian.Uint32(b[hdrOffDepth:])
	if depth < 1 || depth > MaxDepth {
		return l, journal.Corrupt(name, hdrOffDepth, journal.ErrBadHeader, "depth %d outside [1,%d]", depth, MaxDepth)
	}
	if ss := binary.LittleEndian.Uint32(b[hdrOffSlotSize:]); ss != uint32(SlotSize(int(depth))) {
		return l, journal.Corrupt(name, hdrOffSlotSize, journal.ErrBadHeader, "slot size %d, depth %d needs %d", ss, depth, SlotSize(int(depth)))
	}
	capacity := binary.LittleEndian.Uint32(b[hdrOffCapacity:])
	if capacity < 1 || capacity > MaxCapacity {
		return l, journal.Corrupt(name, hdrOffCapacity, journal.ErrBadHeader, "capacity %d outside [1,%d]", capacity, MaxCapacity)
	}
	fs := binary.LittleEndian.Uint64(b[hdrOffFileSize:])
	if want := FileSize(int(depth), int(capacity)); fs != uint64(want) {
		return l, journal.Corrupt(name, hdrOffFileSize, journal.ErrBadHeader, "file size field %d, depth %d capacity %d need %d", fs, depth, capacity, want)
	}
	if int64(fs) > fileSize {
		return l, journal.Corrupt(name, fileSize, journal.ErrTruncated, "file is %d bytes, header says %d", fileSize, fs)
	}
	l = layout{
		journalID: binary.LittleEndian.Uint64(b[hdrOffJournalID:]),
		depth:     int(depth),
		slotSize:  SlotSize(int(depth)),
		capacity:  int(capacity),
		created:   int64(binary.LittleEndian.Uint64(b[hdrOffCreated:])),
		fileSize:  int64(fs),
	}
	return l, nil
}

// Pointer helpers. base is the mapping's first byte (page-aligned), so every
// offset named above that is a multiple of 8 is an 8-byte-aligned address.
func u64(p unsafe.Pointer, off uintptr) *uint64 { return (*uint64)(unsafe.Add(p, off)) }
func i64(p unsafe.Pointer, off uintptr) *int64  { return (*int64)(unsafe.Add(p, off)) }
func u32(p unsafe.Pointer, off uintptr) *uint32 { return (*uint32)(unsafe.Add(p, off)) }

// HeaderLayout is the snapshot header of format.md §11, declared once from
// the offsets above (inspect renders it; a test checks it against
// format.md).
var HeaderLayout = journal.Layout{Name: "snapshot header", Section: "§11", Size: HeaderSize, Fields: []journal.Field{
	{Off: hdrOffMagic, Size: 8, Name: "magic", Kind: journal.KindBytes, Meaning: `"MDJSNAP\0"`},
	{Off: hdrOffVersion, Size: 4, Name: "version", Kind: journal.KindU32, Meaning: "snapshot format version"},
	{Off: hdrOffHeaderSize, Size: 4, Name: "header_size", Kind: journal.KindU32, Meaning: "4096"},
	{Off: hdrOffJournalID, Size: 8, Name: "journal_id", Kind: journal.KindHex64, Meaning: "the journal this snapshot mirrors"},
	{Off: hdrOffDepth, Size: 4, Name: "depth", Kind: journal.KindU32, Meaning: "N, price levels kept per side"},
	{Off: hdrOffSlotSize, Size: 4, Name: "slot_size", Kind: journal.KindU32, Meaning: "S = roundup(96 + 32·N, 64)"},
	{Off: hdrOffCapacity, Size: 4, Name: "capacity", Kind: journal.KindU32, Meaning: "number of slots"},
	{Off: hdrOffReserved0, Size: 4, Name: "reserved", Kind: journal.KindReserved, Meaning: "zero"},
	{Off: hdrOffCreated, Size: 8, Name: "created", Kind: journal.KindTime, Meaning: "creation time"},
	{Off: hdrOffFileSize, Size: 8, Name: "file_size", Kind: journal.KindU64, Meaning: "roundup(4096 + capacity·S, 4096)"},
	{Off: hdrOffHeaderCRC, Size: 4, Name: "header_crc", Kind: journal.KindCRC, Meaning: "CRC-32C of bytes [0,56)"},
	{Off: hdrOffHeaderCRC + 4, Size: 4, Name: "reserved", Kind: journal.KindReserved, Meaning: "zero"},
	{Off: HdrOffLastApplied, Size: 8, Name: "last_applied", Kind: journal.KindU64, Atomic: true, Meaning: "every journal seq ≤ it is in every slot"},
	{Off: HdrOffLastApplied + 8, Size: hdrOffWriterPID - HdrOffLastApplied - 8, Name: "reserved", Kind: journal.KindReserved, Meaning: "zero"},
	{Off: hdrOffWriterPID, Size: 4, Name: "writer_pid", Kind: journal.KindU32, Atomic: true, Meaning: "PID holding the file for writing, 0 after a clean close"},
	{Off: hdrOffWriterPID + 4, Size: HeaderSize - hdrOffWriterPID - 4, Name: "reserved", Kind: journal.KindReserved, Meaning: "zero"},
}}
