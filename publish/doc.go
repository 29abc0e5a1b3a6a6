// Package publish is a test exchange: it publishes a journal, or LOBSTER
// files, as NASDAQ TotalView-ITCH 5.0 in MoldUDP64 packets, with a
// re-request server, for the feed handler (package feed) and for anything
// else that consumes ITCH.
//
// A Publisher reads a Source (JournalSource, LOBSTERSource), sends a System
// Event 'O' and one Stock Directory message per instrument first (stamped
// with the first frame's time; the stock locate is the instrument id, so
// ids must be 1..65535), then every frame as encoded by an Encoder, then a
// System Event 'C' and the end of session. Messages carry their frames'
// timestamps (nanoseconds since midnight of the trading day, New York
// time by default), are packed into packets of at most MaxPayload bytes by
// a moldudp64.Sender — optionally dropping and reordering packets with a
// seeded generator for recovery tests — and are paced by their
// timestamps (Speed 1: the recorded pace; 10: ten times faster; 0: as fast
// as possible). Every message sent is kept in memory, and a
// moldudp64.Server answers re-requests from it; after the end it lingers,
// repeating the end-of-session packet, so a receiver can recover the last
// losses.
//
// # Encoding
//
// The Encoder keeps a feed.Decoder as the mirror of the receiver's state
// (every resting order by reference) and, for each frame, sends the
// standard ITCH message that this decoder turns back into exactly that
// frame:
//
//	instrument_def           R stock directory (preceded by the extension 'r' when the tick
//	                         is not $0.01 or the symbol longer than 8 bytes); a definition
//	                         already sent is not repeated; price scale must be 4
//	trading_status           H stock trading action
//	order_add                A add order
//	order_execute + trade    E executed; C executed with price when the trade's price
//	                         differs; P trade for a hidden execution (FlagHidden)
//	order_execute alone      C executed with price, not printable
//	order_cancel             X cancel
//	order_delete             D delete
//	order_delete + order_add U replace (same instrument, time and side)
//	trade with no aggressor  Q cross trade
//
// When no standard message gives the frame back — a book_level (ITCH has
// no levels), an event on an order the stream never added (a LOBSTER day
// starts with a book of orders that were never on the wire), a size or
// price outside ITCH's 32-bit fields, an event whose side, price or
// remaining size is not the order's, a trade with an aggressor but no
// execution — the Encoder sends the mdjournal extension message that
// carries the frame in full (feed.ExtLevel, ExtOrder, ExtTrade,
// ExtDefinition; see package feed for the layouts and why extension
// messages rather than synthetic orders). Every message is decoded by the
// mirror before it is sent; one that would not give back its frames is an
// internal error, never sent. So the frames a feed writes are the source's,
// in the same order, and a depth-limited LOBSTER day's books arrive equal
// to the source journal's at every point (tests/wire checks all six sample
// days, with 1 % of packets dropped and 1 % reordered, against the LOBSTER
// orderbook files).
//
// Frames of types ITCH has no message for (quote, raw, heartbeat, gap,
// order_request, risk_decision) are skipped and counted
// (EncoderStats.Skipped); re-stated frames are skipped (they repeat what
// was sent). A JournalSource announces the catalogue's latest definitions
// first; a definition that changes later is sent as an extension 'r'.
package publish
