// Package feed is a NASDAQ TotalView-ITCH 5.0 over MoldUDP64 feed handler
// that writes a journal: the process right behind the NIC.
//
// A Feed reads the live feed socket (unicast, or a multicast group it
// joins) and a re-request socket with recvmmsg into one reused batch, with
// the kernel's receive timestamps (SO_TIMESTAMPNS). A moldudp64.Sequencer
// puts the messages in sequence order, each exactly once: a gap is held
// open and re-requested from the exchange's re-request server before any
// later message is written, so the journal is in exchange sequence order.
// A Decoder turns each message into frames, which are staged with
// writer.StageSource and published after every batch. Receive, decode and
// append allocate nothing per message (TestReceiveAllocatesNothing).
//
// # Frames
//
// Every frame the feed writes carries the SOURCE flag and its 16-byte
// source trailer (format.md §3.3): recv_ts is the kernel's receive time of
// the packet that carried the message (the wall clock at read time where
// the kernel gives none), source_seq the message's MoldUDP64 sequence
// number; the frame's ts is the exchange timestamp, ITCH's nanoseconds
// since midnight anchored to the trading day (DecoderOptions.Day, midnight
// in America/New_York for NASDAQ). The instrument id is the stock locate
// code. A message becomes:
//
//	R stock directory      instrument_def (symbol; tick DefaultTickSize = $0.01, scale 4);
//	                       nothing if the locate is defined with that symbol already
//	H trading action       trading_status (H halted, P paused, Q quotation only, T trading;
//	                       the reason code with ITCH's space padding turned into NULs)
//	A, F add order         order_add
//	E executed             order_execute (the order's side and price) + trade (aggressor:
//	                       the other side; trade id: the match number)
//	C executed with price  order_execute + trade at the execution price (printable 'Y');
//	                       order_execute only when not printable
//	X cancel               order_cancel (the order's side and price)
//	D delete               order_delete (qty: what was still resting)
//	U replace              order_delete of the old order + order_add of the new one (same side)
//	P trade (hidden)       order_execute with FlagHidden + trade with FlagHidden
//	Q cross trade          trade with no aggressor
//	S, Y, L, V, W, K, J, h, B, I, N, O   nothing (counted)
//
// ITCH's cancels, deletes, executions and replaces name only the order
// reference, so the Decoder keeps every resting order (instrument, side,
// price, remaining shares) in an open-addressing table; a reference it does
// not know (joined late, or lost in a gap) makes no frame and is counted
// (DecoderCounters.Unknown).
//
// # The mdjournal extension: what ITCH cannot say
//
// A journal can hold frames no ITCH message expresses: the book_level
// frames a depth-limited LOBSTER import needs (the level that enters the
// visible depth when one empties, the opening book), order events on orders
// the stream never added (LOBSTER's orders resting before the window), and
// sizes, prices, ids or flags outside ITCH's fields. For these the
// publisher (package publish) sends a documented vendor extension: four
// message types ITCH 5.0 does not use, each with the standard 11-byte ITCH
// header and big-endian fields — ExtLevel 'l' (a book_level), ExtOrder 'o'
// (an L3 order frame in full), ExtTrade 't' (a trade in full) and
// ExtDefinition 'r' (an instrument_def in full, sent before the
// instrument's Stock Directory). The Decoder turns each into exactly the
// frame it carries. They travel in the same MoldUDP64 stream, numbered,
// re-requested and recovered like every other message, so a received
// journal's books equal the source's at every point. The publisher sends an
// extension message only where its mirror Decoder shows that no standard
// message gives back the exact frame; a standard ITCH consumer skips them by
// their block length (and then lacks what a depth-limited source never
// had: the levels beyond the depth).
//
// The alternative, synthetic orders of the publisher in a reserved order-id
// range standing for levels, was rejected: it would make the frames a feed
// writes differ from the source's (extra order events, ids that were never
// on the exchange) unless the feed recognised and rewrote them, and order
// events on orders the stream never added would still need their side and
// price from somewhere.
//
// # Gaps
//
// A gap that cannot be filled within Options.GapTimeout (default 5 s with
// a re-request server, 100 ms without; MaxAttempts rounds of re-requests)
// is never skipped silently: it is written as one gap frame (journal.Gap:
// first, count, the session name; instrument 0; ts the exchange time of
// the last message before it; source trailer with source_seq = the gap's
// last message), logged ("GAP: session … messages A..B (N) could not be
// recovered"), counted (Stats.Gaps, Stats.Lost) and listed (Gaps), and
// `journalctl feed` exits 1. Nothing after a gap is written before it.
//
// # Restart
//
// New reads the journal it is given: it applies every frame to the
// Decoder (Decoder.Apply: the decoder's state is exactly the fold of the
// frames it returned) except the frames of the last message, which may
// have been cut by a crash between two of its frames. The Feed resumes at
// that message (Resume.Next = the last source_seq; after a gap frame, the
// message after the gap), re-requests everything from there to the live
// stream, and writes only the frames of that message the journal lacks
// (Resume.Skip). After kill -9 this gives every message exactly once.
// One journal follows one MoldUDP64 session (Options.Session pins it).
package feed
