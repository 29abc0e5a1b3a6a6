// Package replay copies a range of a journal into a ring (format.md §12),
// unchanged frame by frame, as fast as possible or paced by the frames'
// timestamps: the market-data "player" of backtests and of downstream
// components that consume a live feed through a ring.
//
// # Ring record = stored frame
//
// Each ring record carries exactly one journal frame as it occupies its
// segment (format.md §3): the 32-byte header, the payload, and the zero
// padding to the next multiple of 8 — RecordLen(f) = align8(32+len(payload))
// bytes, which is also the frame's size in the segment. Nothing is added,
// re-encoded or re-stamped: seq, ts, type, flags, instrument and the frame's
// own CRC-32C travel as stored, so a consumer decodes a record with
//
//	f, n, st := journal.DecodeFrame(rec) // st == journal.FrameOK && n == len(rec)
//
// and thereby re-verifies the CRC on its side of the ring. DecodeRecord does
// exactly that check.
//
// Why the padding is included: journal.DecodeFrame requires the padded
// length (it rejects b shorter than align8(size)), so an unpadded record of a
// raw frame whose size is not a multiple of 8 would not decode in place. The
// padding costs no ring space: a ring record occupies align8(8+length) bytes
// either way. Consumers must not assume that consecutive records have
// consecutive seqs: filters drop frames and --loop starts again.
//
// # Hand-off
//
// Replay is the ring's producer (ring.NewProducer); the consumer attaches
// with ring.NewConsumer (journalctl ring does). Each ring file is one
// generation of format.md §12, so start order does not matter: a consumer
// started first waits for the ring replay creates; a consumer started
// after replay joins the generation while replay still publishes or lingers.
// Every selected frame is delivered exactly once, and a consumer never reads
// a ring left by an earlier run: New replaces such a leftover with a new
// generation (Replayer.Replaced reports it). When the range is done, Close
// ends the stream, waits (Options.Linger) until the consumer drained it, and
// removes the ring file it created unless Options.KeepRing; Run reports
// ring.ErrUndelivered when no consumer took the frames, ring.ErrPeerDead
// when the consumer died.
//
// # Hot path
//
// The reader hands out frames whose payload aliases its mapping; PutRecord
// writes the header fields and the stored CRC and copies the payload
// straight into the ring's Claim buffer. Per frame: one reader TryNext (which
// verifies the CRC), one Claim, one 32..64-byte copy, no allocation and no
// system call (tests prove zero allocations with testing.AllocsPerRun).
// At --speed max records are published in batches (Options.FlushEvery);
// paced records are staged first and published with one store when due, so
// the release instant is not delayed by the copy.
//
// # Pacing
//
// Frame i of a pass is due at t0 + (ts_i - ts_0)/speed on CLOCK_MONOTONIC,
// where t0 is when the pass's first frame was released. The replayer sleeps
// coarsely, then spins the last stretch: time.Sleep overshoots by about a
// millisecond on a loaded Linux VM, so the spin window is 50 µs plus the
// overshoot measured so far (a decaying maximum). Lateness (release time
// minus due time) goes into an HdrHistogram reported in Stats.
package replay
