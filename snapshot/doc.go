// Package snapshot implements the order-book snapshot file: a memory-mapped
// file holding, for each instrument, the top Depth price levels of each side,
// the last trade and the journal sequence number they reflect. One process
// (the book builder) writes it with Writer; any number of processes read it
// zero-copy with Reader, without locks, through a per-slot seqlock. The
// normative layout is §11 "Snapshot file" of format.md; the constants in
// format.go are part of it.
//
// Layout, all integers little-endian:
//
//	+--------------------+-----------+-----------+-----+----------------------+
//	| header (4096 B)    | slot 0    | slot 1    | ... | slot capacity-1, pad |
//	+--------------------+-----------+-----------+-----+----------------------+
//
// Slots are indexed directly by instrument id (ids are small integers
// assigned by the feed): slot i starts at 4096 + i·SlotSize(Depth), and
// SlotSize is 96 + 32·Depth rounded up to 64, so every slot starts on its own
// cache line and no two slots share one.
//
// # Seqlock
//
// Each slot begins with a uint64 counter, even when the slot is stable and
// odd while the writer changes it. The writer increments it to odd (atomic
// read-modify-write), stores the fields, then stores it even (atomic store).
// A reader loads the counter (retrying while odd), copies the fields with
// atomic loads, and loads the counter again: equal means the copy is
// consistent, different means it may be torn and is retried. Reader.Read does
// this for the caller; Reader.View exposes the slot zero-copy to callers who
// follow the same Begin / read / Valid loop themselves.
//
// # Late joiners
//
// A process starting mid-session loads the header's LastApplied L, then reads
// the slots it needs (each slot reflects at least every message ≤ L for its
// instrument, and possibly later ones: its Seq S ≥ the last of them), then
// tails the journal from L+1, skipping, for each instrument, the messages
// with seq ≤ that slot's S. For a single instrument, tailing from S+1 is
// enough.
//
// # Damage and truncation
//
// Open and OpenWriter validate the header (magic, version, CRC-32C, depth,
// capacity, file size) and report damage as *journal.CorruptionError. Read
// never panics and never crashes on a file truncated under it: the copy runs
// with debug.SetPanicOnFault and a fault becomes a CorruptionError wrapping
// journal.ErrTruncated.
package snapshot
