// Package pipeline builds the design's trading pipeline on mdjournal's
// public packages: a feed handler, a trading engine and a risk manager,
// each its own process, with monitoring beside them.
//
//	source (LOBSTER / synth)
//	       │ read (recv_ts)
//	┌──────▼──────┐  md/ journal + md.snap   ┌────────────┐  SPSC ring (order   ┌────────────┐
//	│ feed        ├─────────────────────────►│ engine     ├────────────────────►│ risk       │
//	│ RunFeed     │  (writer + booksnap)     │ RunEngine  │  frames, /dev/shm)  │ RunRisk    │
//	└─────────────┘                          └─────┬──────┘                     └─────┬──────┘
//	                                               │ orders/ journal                  │ risk/ journal
//	       stats/feed.stats, engine.stats, risk.stats  ◄── journalctl top / serve --metrics
//
// All three stages share one directory (Dirs). The feed writes the
// market-data journal md/ and the snapshot md.snap; the engine writes its
// orders journal orders/ and pushes each order into the ring; risk writes
// one RiskDecision per order into risk/, the audit trail. Each publishes
// counters and latency histograms in Dirs.Stats (package stats).
//
// # Messages
//
// Orders are journal.OrderRequest and decisions journal.RiskDecision
// (format.md §3.2, types 14 and 15), so dump, inspect and the C reader read
// the orders and risk journals like market data. A ring record is a whole
// journal frame (OrderRecordSize bytes: header with CRC-32C, seq = order
// id, the instrument, the 64-byte OrderRequest): risk verifies it like a
// journal frame and never decides a record that is not one.
//
// # Strategy and limits
//
// Strategy (top-of-book imbalance toward a target position) and Limits
// (position, notional, price band around the mid at the trigger, orders
// per second of market time) are documented on their types; the rejection
// reasons are the Reason constants. Every input of a decision is journal
// content — the book at the trigger frame, the engine's own earlier orders,
// risk's own earlier decisions — never a clock or a race, which is what
// lets a restarted stage reproduce an uninterrupted run exactly.
//
// # Restarts: nothing lost, nothing duplicated
//
// Feed: each market-data frame carries its source sequence number (source
// trailer). A restarted feed recovers the journal (package writer), reads
// the last source number in it and skips that many source frames.
//
// Engine: the orders journal is written before the ring push, and an order
// id is that order's seq in it. The engine's named reader (ExplicitCommit)
// commits a frame only after its order, if any, is in the orders journal.
// A restarted engine rebuilds positions from the orders journal, rebuilds
// the books by replaying the market-data journal from its start up to the
// named reader's position, and decides only on frames after the last
// order's trigger (and after its first start's join point, EngineJoin). So
// it never emits a second order for a trigger, and frames it re-reads give
// the decisions they gave before.
//
// Ring generations (format.md §12): each side of a ring generation attaches
// once. A restarted engine creates a new generation (ring.Options.Replace
// replaces the leftover); when the engine sees that its consumer attached
// and is gone (RingConsumer: the side block's PID no longer runs, or the
// side closed) it starts a new generation too, because a restarted risk can
// only attach to a new one. After creating a generation the engine reads
// the last decided order id D from the risk journal (LastDecided) and
// re-sends orders D+1.. from its orders journal before new ones.
//
// Risk: a restarted risk rebuilds positions, rate windows and the last
// decided id from its own journal, and replays the market data as orders
// need it. An order id ≤ the last decided is a duplicate (the engine
// re-sent what an earlier risk process already decided) and is dropped; an
// id beyond the next one is ErrOrderGap and stops risk. A record in flight
// when risk died was never decided and is re-sent by the engine. When a
// generation ends (end of stream or dead producer) risk attaches to the
// next one.
//
// End: the feed writes FeedDone (its last seq) when the source is done; the
// engine, having processed that seq and seen every order decided, writes
// EngineDone and closes the ring; risk exits once it has decided up to
// EngineDone.
//
// What the design does not cover: the engine assumes its orders fill (a
// real engine would read fills); a restart rebuilds the books from the
// market-data journal's first frame, so the journal must not be pruned
// under a running pipeline; kill(pid, 0) judges the consumer's liveness,
// so the ring's processes share a PID namespace.
//
// # Latency
//
// Hops lists the per-hop histograms (from the source-read time in each
// frame's trailer, through OrderRequest.Seen and Decided, to
// RiskDecision.Received and Decided); PrintHops prints them as one table.
package pipeline
