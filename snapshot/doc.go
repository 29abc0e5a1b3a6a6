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
// cache line and no two slots share one. Reader.Lookup finds an instrument's
// slot by its symbol.
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
// # Writer lock, files and permissions
//
// One writer per file: Create, Prepare and OpenWriter take an exclusive,
// non-blocking flock on a separate lock file, LockPath(path) = path +
// ".lock", created mode 0600, and hold it until Close. Nobody but the owner
// can open that file, so no other user can hold it and block writers; a
// same-user process holding it is named in the error (*LockedError: its PID
// and whether its lock is shared). Readers never lock anything, and a
// reader's flock on the snapshot file itself blocks nothing.
//
// The snapshot file is created mode 0640 (Options.Perm; write bits for the
// group or others are refused). Every open for writing — the temporary file
// Create and Prepare build, the link or rename into place, OpenWriter —
// refuses a symlink, FIFO, device or directory (journal.ErrNotRegular), never
// follows a symlink and never blocks on a FIFO; a lock or snapshot file that
// other users could open (lock) or write (snapshot), or that another user
// owns, is refused with ErrExposed. Open, for readers, follows a symlink but
// opens with O_NONBLOCK and refuses anything but a regular file.
//
// A new file is built under path + ".tmp" and linked (Create) or renamed
// (Prepare, then Install) into place complete: readers never see a partial
// file, and a builder that rebuilds the snapshot replaces it in one step.
// Readers of the old file keep its last content; Reader.Replaced tells them
// to reopen.
//
// # Clean close and trust
//
// The writer records its PID in the header, synced, before it changes a
// slot; Close syncs the whole file, then clears the PID and syncs the header.
// So a writer_pid of 0 on disk means every slot on disk is what the last
// writer left. OpenWriter reports whether the file is intact (Writer.Intact):
// closed cleanly, or left by a writer that died since the system booted (the
// page cache then holds all its stores), and no slot left mid-publish. A file
// that is not intact (a power cut may have written some of its pages and not
// others) gets last_applied 0, pinned for the Writer's life: it then claims
// nothing, and a builder rebuilds it.
//
// # Damage and truncation
//
// Open and OpenWriter validate the header (magic, version, CRC-32C, depth,
// capacity, file size) and report damage as *journal.CorruptionError. Read and
// Lookup never panic and never crash on a file truncated under them: the
// copy runs with debug.SetPanicOnFault and a fault becomes a CorruptionError
// wrapping journal.ErrTruncated.
//
// The writer's stores (Publish, SetInstrument, Advance) run without that
// guard, and cannot fault: every block of the file is reserved with
// fallocate before it is mapped (a full disk fails Create, never a store),
// and only the file's owner can truncate it — the writer refuses a file
// another user owns or that the group or others may write (ErrExposed), and
// creates its own 0640. A process of the same user (or root) truncating the
// file under the writer is outside this model: it could as well kill the
// writer.
package snapshot
