// Package moldudp64 implements NASDAQ's MoldUDP64 transport: the packet
// codec, a Sequencer that turns lossy, reordered, duplicated UDP delivery
// into each message exactly once in sequence order, and the Linux UDP
// pieces of both ends — a recvmmsg Receiver with kernel timestamps and
// multicast join, a re-request client and server, and a Sender for a test
// exchange.
//
// # Wire format
//
// A downstream packet is a 20-byte header — session (10 ASCII bytes),
// sequence number of its first message (uint64), message count (uint16),
// all big-endian — followed by count message blocks, each a uint16 length
// and that many bytes. Sequence numbers count messages, from 1. A count of
// 0 is a heartbeat carrying the next sequence number; 0xFFFF ends the
// session (its sequence number is one past the last message). A request to
// the re-request server is session, first sequence number and count (20
// bytes); the answer is ordinary downstream packets sent back to the
// requester's address.
//
// ParsePacket checks a whole packet once (every block inside it, nothing
// after the last) and returns a Packet whose Iter walks the blocks in place;
// Builder packs messages into a reused buffer up to a payload limit
// (DefaultMaxPayload, 1400 bytes). Neither allocates.
//
// # Sequencer
//
// Push (live packets) and PushRetransmit (answers) feed a Sequencer; its
// Handler receives EventMessage for every message in order exactly once
// (Msg is a view valid during the call), EventGap with the exact
// [Seq, Last] range when messages cannot be recovered, EventEndOfSession,
// and EventSessionChange when another session shows up. Out-of-order
// messages are held up to MaxBufferedMessages and MaxBufferedBytes. A gap
// is re-requested through a Requester after RequestDelay, in rounds with
// exponential backoff (RetryInterval doubling to MaxRetryInterval), at most
// MaxRequestCount messages per request and MaxRequestsPerRound requests per
// round; after MaxAttempts unanswered rounds or GapTimeout it is reported
// as EventGap — never skipped silently — and delivery goes on. A consumer
// restarted at SequencerOptions.Next re-requests everything from there up
// to the live stream.
//
// # Transport (Linux)
//
// Conn is a non-blocking IPv4 UDP socket on raw system calls (recvmmsg into
// a reused Batch, sendto), optionally with SO_TIMESTAMPNS receive times and
// multicast membership. Receiver drains a feed Conn and a RequestClient's
// Conn into a Sequencer, waiting in ppoll only when both are empty and no
// Sequencer timer is due; the feed handler loop is
//
//	for !seq.Ended() { if _, err := rcv.Poll(100 * time.Millisecond); err != nil { … } }
//
// (or Receiver.Run). Server answers requests from a Store (MemStore keeps a
// test exchange's messages), split into packets of at most MaxPayload bytes
// and at most MaxCount messages per request, ignoring malformed requests
// and other sessions. Sender numbers and packs messages, sends heartbeats
// from Tick when idle and ends the session; its DropRate and ReorderRate
// hooks (seeded) exercise recovery in tests.
//
// Steady-state receive, sequencing and send paths allocate nothing; the
// tests prove it with testing.AllocsPerRun. The multicast test runs in a
// network namespace it creates (CLONE_NEWNET) and skips, saying so, where
// that is not permitted.
package moldudp64
