// Package ship takes a journal beyond one machine: a Shipper follows a
// journal with a named reader and publishes its frames, verbatim, to a NATS
// JetStream stream; a Mirror on another host consumes the stream and writes
// the frames into a local replica journal with the same seqs, timestamps,
// types, flags, payloads and source trailers, so processes there tail the
// replica at local-journal latency.
//
//	origin host                      NATS JetStream (R1 or R3)            replica host
//	writer → journal → Shipper ──publish──▶ stream ──ordered consumer──▶ Mirror → replica → readers
//	           (named reader)   ◀──acks───                                   (writer.Copy)
//
// # Messages
//
// A message holds whole frames exactly as the origin stores them (header,
// payload, trailer, padding, stored CRC: journal.PutStored), contiguous in
// seq and from one origin segment, at most Options.BatchBytes. Its headers
// (HeaderJournal, HeaderFirst, HeaderLast, HeaderEpoch, HeaderSegment)
// repeat the range and add the journal id, the origin segment and its
// epoch. Its JetStream message id is MsgID(journal, first, last, stream
// seq it must be stored at).
//
// # Neither duplicates nor gaps in the stream
//
// Every publish carries Nats-Expected-Last-Sequence (the stream seq the
// previous message got) and Nats-Expected-Last-Msg-Id (its id), so the
// server stores a message only directly after the one the shipper sent
// before it: a message never lands after a gap or twice, even with several
// messages in flight, a lost acknowledgement, a server restart or a second
// shipper racing. The shipper never retries a publish blindly: on any
// failure it re-reads the stream's last message (from the leader) and
// resumes after the last seq it holds. The stream is the authority on what
// was shipped; the named reader's position (committed only after the
// stream acknowledged everything up to it) serves operators (lag in
// journalctl stat) and detects a stream that lost acknowledged messages
// (ErrLost).
//
// # The origin's epochs
//
// Seqs shipped and then lost by a power cut on the origin may be issued
// again, with other content, in a new epoch (format.md §8.4). A shipper
// (re)starting checks the stream's last message against the origin: a
// segment of a later epoch starting at or before its last seq, a frame
// that differs byte for byte, or an origin that no longer reaches that
// seq stops it with ErrReissued naming the range. It never ships other
// content under a seq the stream holds.
//
// # What the mirror detects
//
// Every frame's CRC and content rules (format.md §3) and seq continuity
// within and across messages; headers that contradict the frames; a
// message of another journal. A message that starts after the replica's
// next seq (deleted, expired, or lost by the server: the Jepsen report on
// NATS 2.12.1 shows acknowledged writes lost after a bit flip or power
// loss) is ErrGap; one that repeats seqs is ErrDuplicate; a damaged one is
// ErrDamaged; each a *RangeError naming the seqs, and the mirror stops.
// After a crash the mirror resumes after the replica's last seq: it finds
// the message holding the next seq by binary search over the stream, and
// checks that the part of it the replica already holds is identical.
//
// # Durability
//
// A publish is acknowledged once the stream's leader (R1) or a majority of
// its replicas (R3) stored it — stored, not synced: JetStream syncs its
// files periodically (sync_interval, 2 minutes by default; `sync_interval:
// always` syncs each write). The origin's own frames are as durable as its
// writer's policy (format.md §9); the replica's are as durable as the
// mirror's writer policy (MirrorOptions.Writer.Durability). What a server
// loses, the mirror reports; what the origin loses after shipping, the
// shipper reports.
package ship
