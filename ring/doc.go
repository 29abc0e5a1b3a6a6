// Package ring is a cross-process single-producer/single-consumer ring of
// variable-length records in a shared, memory-mapped file (by default under
// /dev/shm). format.md §12 "Ring file" (format version 2) is the normative
// byte-level description; the constants in layout.go name its fields.
//
// # File
//
//	+---------------------+------------------------------------------+
//	| header page (4 KiB) | data area: capacity bytes, power of two  |
//	+---------------------+------------------------------------------+
//
// Header page, and why each field exists:
//
//	[0,64)     magic, version 2, header size, capacity, created,
//	           generation, flags, CRC-32C. Static; checked by Open so a
//	           wrong or damaged file is a typed error, never a wild read.
//	           The generation (random, non-zero) names this ring file: a
//	           new file at the same path is a new generation.
//	[128,136)  tail: producer position (bytes ever published). Not on the
//	           consumer's per-record path: the consumer reads it once per
//	           lap (a record header can be no more than a lap past it) and
//	           to decide end of stream. Tools read it.
//	[256,264)  head: consumer position (bytes ever released), stored once
//	           per batch; the producer keeps a cached copy and reloads it
//	           only when the cache says the ring is full.
//	[384,392)  data_seq, data_waiters: wait.Signal the consumer sleeps on
//	[512,520)  space_seq, space_waiters: wait.Signal the producer sleeps on
//	           A side pays FUTEX_WAKE only while the other announced itself
//	           waiting; otherwise publishing costs one extra load.
//	[640,676)  producer side block: PID, state, start time, heartbeat,
//	           PID namespace, flags
//	[768,804)  consumer side block, the same
//	           Each 128-byte block is written by one side only.
//
// Records are 8-byte aligned and never wrap; a record's header word is its
// publication:
//
//	 0       4       8
//	+-------+-------+------------------+-------+
//	| len   | kind  | payload (len B)  | align |   kind 1 = data, 2 = padding
//	+-------+-------+------------------+-------+
//
// # Protocol
//
// Records publish themselves, as in Aeron's ring buffers. The producer
// writes a record's payload, makes sure the 8-byte word just past the
// record is zero, and then stores the record's header word (length, kind)
// with a release store. The consumer spins on the header word at its
// position: zero means "not yet"; non-zero is a complete record. Because
// the producer zeroes the word past each record before publishing it, the
// word the consumer spins on never holds a stale header of an earlier lap,
// and the consumer never writes the data area at all (no zeroing of
// consumed space, which would cost an extra cache-line transfer per line).
// The producer never fills the ring completely: it keeps EndReserve (8)
// bytes free for that word.
//
// The consumer hands out records as zero-copy views and releases space in
// batches: one head store per TryReadBatch/ReadBatch, per capacity/4 bytes
// of per-record Releases, or when it finds the ring empty. The producer
// caches head and stores tail after each publication (for tools, end of
// stream and the once-per-lap sanity bound). CommitNoFlush/TryAppend stage
// records: every header but the first staged one is written at once, and
// Flush stores that first header last, which publishes the whole batch.
//
// On amd64 every publication is a plain store (x86-TSO makes it a release
// store) with no fence per record. The futex wait protocol needs a
// StoreLoad order between "publish" and "look for sleepers"; instead of
// paying it per record, a side about to sleep issues
// membarrier(MEMBARRIER_CMD_GLOBAL_EXPEDITED) after announcing itself, as
// both processes registered for it at attach (side flag PlainPublish).
// Where membarrier is unavailable, and off amd64, publications are
// sequentially consistent stores instead (~6 ns more per record).
//
// # Generations and exactly-once
//
// Each ring file is one generation; each side of a generation attaches
// once (its PID word is claimed by compare-and-swap from zero). So a
// consumer reads its generation from the first record, never receives a
// record twice, and reports io.EOF only when the producer closed and every
// record up to the producer's final position was read (a missing record is
// damage, not an end). NewProducer and NewConsumer implement the rules of
// format.md §12 "Generations":
//
//   - NewConsumer waits (ConsumerOptions.AttachTimeout) for a generation it
//     may consume — consumer side never used, producer attached and alive
//     or still to come — and then for the producer. It never attaches to a
//     leftover (a finished generation whose producer left, a dead producer,
//     a generation already consumed).
//   - NewProducer creates a new generation with the producer already
//     attached (built under a temporary name, then linked into place), or
//     joins a generation whose consumer waits for a producer. A leftover
//     is refused (*LeftoverError) or, with Options.Replace, replaced: its
//     free sides are sealed and the new file is renamed over it, under the
//     old file's flock. A live producer's ring is never replaced.
//   - Producer.Close ends the stream; a producer that created its ring then
//     lingers until the consumer drained it, detached or died (bounded by
//     ProducerOptions.Linger), and removes the file — only if the path
//     still names its own generation — unless Keep is set.
//
// # Liveness
//
// Each attached side stores a CLOCK_MONOTONIC heartbeat in its side block:
// a goroutine per Ring every HeartbeatInterval (100 ms), and the idle and
// publication paths too (the latter at most every 50 ms, read off a
// counter: no system call per record). A peer whose heartbeat is older
// than the peer timeout (DefaultPeerTimeout, SetPeerTimeout) is dead. The
// PID (kill(pid, 0), zombie state, start time) is consulted only when the
// peer recorded the same PID namespace as ours; across namespaces a PID
// names another process, so only the heartbeat counts. A ring claiming a
// producer that does not beat never makes a consumer wait beyond the
// timeout.
//
// # Truncation and files
//
// Every access to the mapping runs under a fault guard
// (debug.SetPanicOnFault and recover): if another process truncates the
// file, both sides get a *journal.CorruptionError wrapping ErrTruncated
// (journal.ErrTruncated), never SIGBUS. The guard costs ~13 ns per call on
// the project's 2-core VM when quiet, 20–35 ns under load
// (BenchmarkFaultGuard), so it is set once per public call — once per batch
// for TryWriteBatch, TryReadBatch and ReadBatch, the fast paths (the read
// handler runs inside it: views read there are covered too); views
// returned by TryRead and Read are read by the caller outside it. Idle paths also compare the
// file size (fstat), and the heartbeat goroutine does every 100 ms.
//
// Ring files are created 0600 (Options.Perm). Open and the constructors
// open the path with O_NOFOLLOW|O_NONBLOCK and accept only a regular file:
// a symbolic link, FIFO, directory or device is ErrNotRegular, and opening
// a FIFO never blocks. Files of format version 1 are refused with
// ErrVersion and a message saying so.
//
// Options.HugePages backs the ring with huge pages: the ring's directory
// must be a hugetlbfs mount with free pages (vm.nr_hugepages), else
// ErrNoHugePages says what is missing. MAP_HUGETLB cannot back a named
// shared file on tmpfs (the kernel refuses it for non-hugetlbfs files), so
// hugetlbfs is the only way for two processes to share huge pages by path.
//
// # Use
//
//	p, _ := ring.NewProducer("md-feed", 1<<20, ring.ProducerOptions{
//		Options: ring.Options{Replace: true}, Wait: wait.Futex})
//	p.Write(msg)                 // or Claim(n) ... Commit()
//	p.Close()                    // end of stream; lingers, removes the file
//
//	c, _ := ring.NewConsumer("md-feed", ring.ConsumerOptions{Wait: wait.Futex})
//	defer c.Close()
//	for {
//		_, err := c.ReadBatch(256, handle) // zero-copy views, valid in handle
//		if err != nil { ... } // io.EOF, ErrPeerDead, *journal.CorruptionError
//	}
//
// Producer and Consumer are each for one goroutine. The write, read, claim
// and release paths make no system call (unless the peer sleeps on a
// futex) and no allocation. Blocking calls idle with the side's
// wait.Strategy and check the peer, the deadline, the file size and their
// own heartbeat only while idle: after each FUTEX_WAIT (at most
// wait.FutexTimeout) or every 20 ms of idling.
//
// # Tests and benchmarks
//
// Cross-process tests re-execute the test binary (TestHelperProcess) and
// use real files and SIGKILL. MDJ_RING_MESSAGES sets the stream length of
// the cross-process streams; MDJ_LONG=1 runs the 50-million-message stream;
// -short and -race shorten the loops. TestHugePages needs root: it mounts
// hugetlbfs on a temporary directory and raises vm.nr_hugepages for the
// test, restoring both; elsewhere it skips saying why.
//
// Benchmarks (go test -run '^$' -bench . ./ring/): BenchmarkStream and
// BenchmarkStreamXProc (sustained one-way streams of b.N messages of 64 B
// and 1 KiB, sides pinned to CPUs MDJ_RING_CPUS="0,1", beside a raw
// fixed-slot floor), BenchmarkPingPong (one-way latency p50 against a raw
// cache-line ping-pong in the same run), BenchmarkSingle and
// BenchmarkFaultGuard (per-message instruction cost, guard cost).
package ring
