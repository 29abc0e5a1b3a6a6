// Package journal defines mdjournal's on-disk format: segment files, frames,
// message payloads, the sparse index, the control file, checksums, naming and
// the recovery scan. format.md is the normative description; every constant
// here names the section of format.md it implements, and these constants are
// part of the on-disk format: changing one changes the format version.
//
// A journal is a directory:
//
//	journal.lock               single-writer lock (flock + holder PID)        §7
//	journal.ctl                control page: journal id, futex word, waiters  §6
//	00000000000000000001.seg   segment 1 (sealed)                             §2
//	00000000000000000001.idx   its sparse index                               §5
//	00000000000000000002.seg   segment 2 (active: the writer appends here)
//	00000000000000000002.idx
//	00000000000000000003.seg   segment 3 (prepared: reserved, not yet active)
//
// A segment is one fixed-size, fully reserved (fallocate) file: a 4096-byte
// header page, then 8-byte-aligned frames back to back:
//
//	+-------------------+---------+---------+-----+---------+-------------+-----------+
//	| header (4096 B)   | frame 1 | frame 2 | ... | frame n | end marker  | zeroes... |
//	+-------------------+---------+---------+-----+---------+-------------+-----------+
//	                                                        ^ write cursor (sealed: after the end marker)
//
// A frame is a 32-byte header and a payload, padded with zeroes to a multiple
// of 8 bytes:
//
//	 0       4       8               16              24      26      28      32
//	+-------+-------+---------------+---------------+-------+-------+-------+------------+
//	| crc   | size  | seq           | ts (ns)       | type  | flags | instr | payload... |
//	+-------+-------+---------------+---------------+-------+-------+-------+------------+
//
// size counts header and payload (not the padding); crc is CRC-32C (Castagnoli)
// over bytes [4,size): one contiguous range that covers the size word too. A
// zero size word (with a zero crc) means "nothing written here".
//
// Publishing (format.md §4): the writer stores the whole frame, then stores the
// segment's write cursor with one atomic 8-byte store. Readers load the cursor
// atomically and read only the bytes below it, so they never see a frame that
// is still being written; they still verify each frame's CRC, so a damaged byte
// is never handed out as data.
package journal
