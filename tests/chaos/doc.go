// Package chaos is mdjournal's adversarial campaign: real journalctl
// processes on real files, killed with SIGKILL at random, checked after
// every round against the promises of format.md. It has no code of its
// own; everything is in its tests.
//
// # Running it
//
//	go test ./tests/chaos/                                  # the bounded slice of make test (~60 s; 25 s with -short)
//	go test ./tests/chaos/ -run TestChaos -v -timeout 3h -chaos.duration=30m   # the long campaign
//	MDJ_CHAOS_DURATION=30m MDJ_CHAOS_SEED=0x1234 go test ./tests/chaos/ -run TestChaos -v -timeout 3h
//
// The campaign stops at the first violation; -chaos.keepgoing (or
// MDJ_CHAOS_KEEPGOING=1) runs the whole duration and reports them all.
// -chaos.seed (or MDJ_CHAOS_SEED) seeds every choice the campaign makes:
// policies, process kinds and moments to kill, reader positions, damage
// targets. The seed is logged; timing still differs between runs (the
// processes race for real), so a failure message carries everything
// needed to reproduce it: seed, round, file, offset, and for a damage a
// shell recipe on a kept copy of the undamaged journal. On failure the
// journal, every process's output and the damaged copies are kept in the
// directory the test logs.
//
// # The campaign (TestChaos)
//
// Each round runs, on one journal (256 KiB segments, so rolls are
// frequent), for 3–8 s:
//
//   - a writer, `journalctl gen` with the round's durability policy (none,
//     async, interval:3ms, sync in turn), a random rate and batch;
//   - three tailing readers, `journalctl tail --format json`: one named
//     (--name chaos, resumed after its stored position), one from the end,
//     one from a seq or the start;
//   - two loops running compress, prune --keep-segments N (N from 1 to 10:
//     often fewer than the named reader needs, which prune must refuse on
//     its own), recover --dry-run, stat, verify and dump at random moments;
//   - an injector sending SIGKILL to a random process (the writer a third
//     of the time) every 0.1–0.9 s. A killed writer or reader is restarted;
//     the writer must recover the journal.
//
// Then the writer is stopped (SIGKILL or SIGTERM), the journal is copied
// for the damage phase, recovered (gen --count 0, or journalctl recover),
// a few fresh frames are appended, the live readers must reach the new end
// within 30 s, they are stopped (SIGTERM or SIGKILL), and dump prints the
// whole retained journal. The invariants:
//
//	(a) every line a reader or dump printed equals dump's line for that seq;
//	(b) no seq maps to two contents over the whole campaign: the FNV-1a
//	    digest of each seq's line is kept across rounds, including what
//	    killed readers printed before they died (format.md §8.3: after
//	    kill -9 nothing is reissued);
//	(c) verify is OK on the journal after recovery, and right after the
//	    writer's stop it reports only "torn" (repairable) findings;
//	(d) no process died of a signal the campaign did not send, none
//	    panicked, every exit status is 0, 1 or 2, and each exit 1 is one
//	    the verb documents: "another maintenance command is running" for
//	    compress and prune, "a live writer holds the journal lock" for
//	    recover --dry-run, a reader overtaken by prune (README, prune:
//	    ErrMissing / ErrOutOfRange) for unnamed readers and dump, torn
//	    findings for a verify run between a writer's death and restart.
//
// Also: every reader prints contiguous seqs; a restarted named reader
// prints its stored seq + 1 first (format.md §13).
//
// # Damage (on copies)
//
// After each round, 3–6 damages are injected, each into a fresh copy of
// the journal as the writer's stop left it (the campaign's journal goes on
// undamaged): one random bit flipped, or one file truncated, in a sealed
// or the active segment (frames, zeroes past them, static header, cursor,
// padding, state records), an archive, an index, or the control page.
// The test's own reader of the bytes (oracle_test.go, written from
// format.md, not from the library) computes what verify must say first.
//
// "verify names exactly the injected damage" means: let F be the damaged
// file and b the flipped byte (for a truncation, b is the new length).
// The unit U is the part of format.md's layout that holds b:
//
//   - a frame [s, s+align8(size)) of a segment (end marker included): a
//     finding must name F at offset exactly s (§3: a frame that fails its
//     checks is damage, reported with its offset; §8.1);
//   - the zeroes past the last frame, which ends at X: a finding naming F
//     at an offset in [X, b] (§8.1 4–5: torn tail in the last segment,
//     damage elsewhere);
//   - the static header [0,64): a finding naming F at an offset in [0,64)
//     (§2.1: magic @0, version @8, header_crc @60, …);
//   - the cursor [64,72): when the flipped cursor is outside
//     [4096, capacity] or not 8-aligned (§2.1: "reported by verify"), or
//     the current state record says CLEAN (§2.2: the cursor then equals
//     durable_offset), a finding naming F at 64; otherwise the cursor is a
//     hint (§2.1, §4): OK, or a finding at 64, or (§8.1.6: a cursor past
//     the frames of the last segment) at X;
//   - padding [72,128) and reserved [256,4096): outside header_crc and the
//     check list of §2.1: OK, or a finding inside the same range;
//   - state records [128,256): the non-current record (or an invalid
//     slot): nothing new may be reported (§2.2: the current record
//     decides); the current one with a valid other record: OK or a finding
//     in [128,256) or at 64 (§2.2: the older record is used; a CLEAN older
//     record disagrees with the cursor); the current one without a valid
//     other: a finding in [128,256) (§2.2, §8.1.1: damage);
//   - an index: header [0,44) (header_crc covers [0,40)): a finding naming
//     the index in [0,64); entry i below count: a finding at exactly
//     128+24·i; count made larger, over slots that are not valid entries:
//     a finding naming the index; reserved, padding, count made smaller,
//     slots past count: OK allowed (§5: only entries below count are
//     published);
//   - the control page: OK allowed (§6: it holds nothing recovery needs);
//   - an archive: header [4096,4148): a finding in [4096,4160); a chunk:
//     a finding at an offset in [chunk start, b]; the chunk table: in
//     [table start, b] or at the table_crc field (§14); a chunk flip that
//     decompresses to the same bytes may be OK (only raw_crc is checked);
//   - a truncation: into the header page, a finding in [0, L]; into the
//     frames, in [start of the frame holding L, L]; past the frames, in
//     [X, L] (§2.1: a segment file is exactly capacity bytes, and the
//     header check includes "file ≥ capacity, offset = the file's size").
//
// Every other finding must name F too, or be an index finding about F's
// own index (derived data whose entries point into the damaged frames), or
// have been there before the damage (a torn tail the kill left). Findings
// about other files fail the test.
//
// On each damaged copy, also: dump never prints a frame whose line differs
// from the content recorded for its seq (nothing invented) and never skips
// one; exit 0 means it printed every frame; exit 1 names the damaged file;
// where verify says OK, or the damage is in bytes readers do not read
// (cursor, padding, state, index, control page: §4, §5, §6), dump prints
// everything. recover --dry-run changes nothing; recover never cuts at or
// below the pre-damage durable checkpoint (its actions, and the bytes of
// every segment between the header page and that checkpoint, compared),
// deletes nothing (moves into orphaned-*/ only; an empty spare segment
// may be removed, §8.2); after a successful recover verify is OK, every
// durable seq is still there with its content, and seqs issued again by
// the writer recover opened (a new epoch, §8.4) start past every durable
// seq (§8.3).
//
// # Known defects
//
// found_test.go reproduces, deterministically, each library defect the
// campaign found. The campaign recognises them by their signature, counts
// them and fails at the end with a count and a first example, but goes on
// exploring instead of stopping at the first one; anything else stops it.
package chaos
