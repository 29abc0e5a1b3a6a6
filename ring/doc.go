// Package ring is a cross-process single-producer/single-consumer ring of
// variable-length records in a shared, memory-mapped file (by default under
// /dev/shm). format.md §12 "Ring file" is the normative byte-level
// description; the constants in layout.go name its fields.
//
// # File
//
//	+---------------------+------------------------------------------+
//	| header page (4 KiB) | data area: capacity bytes, power of two  |
//	+---------------------+------------------------------------------+
//
// Header page, and why each field exists:
//
//	[0,64)     magic, version, header size, capacity, created, CRC-32C
//	           Static; checked by Open so a wrong or damaged file is a
//	           typed error, never a wild read. capacity is a power of two
//	           so an index is pos & (capacity-1).
//	[128,136)  tail: producer position (bytes ever published)
//	           The one word the producer publishes with; alone in its
//	           128-byte block (adjacent-line prefetch pairs 64-byte lines),
//	           so the consumer's stores never contend with it.
//	[256,264)  head: consumer position (bytes ever released)
//	           The consumer's publication; same isolation.
//	[384,392)  data_seq, data_waiters: wait.Signal the consumer sleeps on
//	[512,520)  space_seq, space_waiters: wait.Signal the producer sleeps on
//	           A side pays FUTEX_WAKE only while the other announced itself
//	           waiting; otherwise publishing costs one extra load.
//	[640,656)  producer pid, state, start time
//	[768,784)  consumer pid, state, start time
//	           Who is attached: lets a waiting side detect a dead peer
//	           (ErrPeerDead) or a clean detach (io.EOF / ErrPeerClosed), and
//	           refuses a second live producer or consumer. The start time
//	           tells a reused PID from the original process.
//
// Each side's cache of the other side's position lives in its own process
// memory (Producer.headCache, Consumer.tailCache), not in the file: only that
// side uses it, and a shared copy would be one more cache line to bounce.
// The shared position is loaded only when the cache says "full" or "empty".
//
// Records are 8-byte aligned and never wrap:
//
//	 0       4       8
//	+-------+-------+------------------+-------+
//	| len   | kind  | payload (len B)  | align |   kind 1 = data, 2 = padding
//	+-------+-------+------------------+-------+
//
// A record that would cross the end of the data area is preceded by a
// padding record filling the rest of the lap, and starts at index 0, so a
// reader always gets one contiguous zero-copy view. A whole record is at most
// capacity/2 bytes (MaxPayload = capacity/2 - 8), which guarantees that
// padding plus record fit in a drained ring.
//
// # Protocol
//
// The producer writes records (payload, then header) into free space, then
// publishes them with one atomic store of tail, then wakes the consumer if it
// waits. The consumer loads tail (acquire), reads records below it in place,
// and releases each with one atomic store of head, then wakes the producer if
// it waits. Positions are only ever stored after the bytes they cover are
// complete, so a side killed mid-write never exposes a partial record.
//
// # Use
//
// Either process may Create the ring; the other Opens it. Each then attaches
// one side:
//
//	r, _ := ring.Create("md-feed", 1<<20, nil)   // /dev/shm/md-feed
//	p, _ := r.Producer(wait.Futex)
//	p.Write(msg)                                 // or Claim(n) ... Commit()
//
//	r, _ := ring.Open("md-feed")
//	c, _ := r.Consumer(wait.Futex)
//	for {
//		b, err := c.Read() // zero-copy view, valid until Release
//		if err != nil { ... } // io.EOF, ErrPeerDead, *journal.CorruptionError
//		handle(b)
//		c.Release()
//	}
//
// Producer and Consumer are each for one goroutine. The write, read, claim and
// release paths make no system call (unless the peer sleeps on a futex) and
// no allocation. Blocking calls (Write, Claim, Read) idle with the side's
// wait.Strategy and check the peer's liveness only while idle: after each
// FUTEX_WAIT (at most wait.FutexTimeout) or every 256 idle iterations.
package ring
