// Package sweep runs every journalctl verb (and replay) on malformed
// journal directories, as real processes with a hard timeout. It has no
// code of its own; everything is in its tests.
//
//	go test ./tests/sweep/ -run TestSweep -v    # one named subtest per case; the exit-code matrix is logged
//
// The inputs (one subtest each) start from a small clean journal
// (segments 1–3 sealed, 4 active, 5 prepared, a named reader "r"), or the
// same with segments 1–3 compressed, and damage it:
//
//   - header/…: a static header with a valid header_crc but impossible
//     values: capacity 0, 2^63, not a multiple of 4096, bigger than the
//     file, 1 GiB on the last segment; first_seq 0 on a segment with
//     frames; a number that is not the file name's; a foreign journal id;
//     an epoch going backwards;
//   - state/…: a valid state record with durable_offset past the capacity,
//     unaligned, or past the frames; durable_seq below first_seq−1; SEALED
//     without an end marker; a wrong last_seq;
//   - file/WHERE/KIND: where a segment (middle, last, prepared), an index,
//     the control page, a reader position, an archive or the lock file is
//     expected: a 0-byte or 100-byte file, a directory, a symlink (to a
//     valid copy outside the journal), a FIFO, a symlink to /dev/zero, a
//     character device node;
//   - structure/…: a missing segment, a renamed one, a duplicated one,
//     segments or the last segment of another journal, a foreign index, a
//     garbage segment after the end, an archive beside a different raw
//     segment, no segments at all.
//
// Each verb runs on its own fresh copy: verify, dump, tail and tail --name
// (interrupted with SIGTERM once they printed a line or after three
// seconds), book, inspect --dir and inspect FILE, stat, recover --dry-run,
// recover, compress, prune --keep-segments 1, gen --count 10 (a writer
// open) and replay into a ring file. Every run must:
//
//   - end within 20 s (a following tail within 20 s of its SIGTERM);
//   - not die of a signal, not panic or crash ("panic:", "goroutine " on
//     stderr), and exit 0 or 1 (2 is a usage error; the command lines are
//     valid);
//   - when it exits 1, name the damaged file in its output (inspect FILE
//     may name what a symlink points at; a named reader refusing reissued
//     seqs names seqs and epochs);
//   - verify: exit 1 naming the file for every input format.md calls
//     damage — segment-number mismatches and mixed journal ids included;
//   - readers (dump, tail, book, replay): exit 1 naming the file for a
//     segment of another journal (its own frames, or just its id), rather
//     than print another journal's frames under this journal's seqs;
//   - never write through a symlink: its target is unchanged;
//   - never delete data: every regular file is still there, in place or
//     moved into orphaned-*/ (prune and compress excepted, whose job it
//     is; an empty spare segment and its index may go, format.md §8.2);
//   - read verbs (verify, dump, tail, book, inspect, stat, recover
//     --dry-run, replay) change nothing in the directory (a tail announces
//     itself in journal.ctl, §6);
//   - recover (and any writer open) never rewrites a foreign index with
//     the foreign journal's id.
package sweep
