// Package itch decodes and encodes NASDAQ TotalView-ITCH 5.0 messages.
//
// Every ITCH 5.0 message has a fixed length that depends only on its type
// (Len). It starts with an 11-byte header — type (1 byte), stock locate (2),
// tracking number (2), timestamp (6 bytes, nanoseconds since midnight) — and
// all integers are big-endian. Prices are unsigned fixed point: Price4 has 4
// decimal digits, Price8 (the MWCB decline levels) has 8. Symbols are 8 ASCII
// bytes padded with spaces on the right.
//
// There are two ways to look at a message, neither of which allocates:
//
//   - Message is a view over the wire bytes. Parse checks the type and the
//     exact length; the header accessors (Type, Locate, Tracking, Timestamp)
//     and Stock read fields in place.
//   - One struct per message type (AddOrder, OrderExecuted, StockDirectory, …,
//     23 in all) with Decode(b) to fill it from exactly Len bytes of its type,
//     AppendEncode(dst) to append its wire form and Encode(dst) to write it
//     into a caller buffer, failing with ErrBufferTooSmall rather than
//     panicking on a short one.
//
// Enumerated one-byte fields (side, event code, trading state, …) are kept as
// the byte that was sent and never validated, so decode→encode reproduces any
// well-framed message byte for byte, including values newer than this
// package.
//
// Reader walks NASDAQ's binary file framing (a 2-byte big-endian length
// before each message). Directory maps stock locate codes to symbols from
// Stock Directory messages. Day converts ITCH timestamps to Unix time for a
// trading date in a time zone (America/New_York for NASDAQ).
//
// Errors are *Error values naming the offset and the reason; they match the
// sentinels ErrUnknownType, ErrShort, ErrLength, ErrType, ErrTruncated,
// ErrBufferTooSmall and ErrRange with errors.Is.
package itch
