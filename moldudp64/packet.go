package moldudp64

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
)

// Wire sizes and special counts.
const (
	SessionLen = 10 // session name bytes
	HeaderLen  = 20 // downstream packet header: session, sequence number, count
	RequestLen = 20 // request packet: session, first sequence number, count
	BlockLen   = 2  // length prefix of each message block

	// EndOfSession is the message count of an end-of-session packet.
	EndOfSession = 0xFFFF
	// MaxCount is the largest message count of a data packet.
	MaxCount = 0xFFFE

	// DefaultMaxPayload is the default largest UDP payload built: it fits an
	// Ethernet MTU of 1500 with IP and UDP headers and room to spare.
	DefaultMaxPayload = 1400
)

// Session is a MoldUDP64 session name: 10 ASCII bytes, space padded.
type Session [SessionLen]byte

// ParseSession pads s with spaces to a Session; s must be at most 10
// printable ASCII bytes.
func ParseSession(s string) (Session, error) {
	var out Session
	if len(s) > SessionLen {
		return out, fmt.Errorf("%w: %q is longer than %d bytes", ErrSession, s, SessionLen)
	}
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e {
			return out, fmt.Errorf("%w: %q has a byte that is not printable ASCII", ErrSession, s)
		}
	}
	copy(out[:], s)
	for i := len(s); i < SessionLen; i++ {
		out[i] = ' '
	}
	return out, nil
}

// String returns the session name without its trailing spaces.
func (s Session) String() string { return string(bytes.TrimRight(s[:], " ")) }

// Header is a downstream packet header.
type Header struct {
	Session Session
	Seq     uint64 // sequence number of the first message (heartbeat, end of session: the next one)
	Count   uint16 // messages in the packet; 0 heartbeat, 0xFFFF end of session
}

// IsHeartbeat reports whether the packet is a heartbeat (count 0).
func (h *Header) IsHeartbeat() bool { return h.Count == 0 }

// IsEndOfSession reports whether the packet ends the session (count 0xFFFF).
func (h *Header) IsEndOfSession() bool { return h.Count == EndOfSession }

// Messages returns the number of messages the packet carries (0 for a
// heartbeat or an end-of-session packet).
func (h *Header) Messages() int {
	if h.Count == EndOfSession {
		return 0
	}
	return int(h.Count)
}

// NextSeq returns the sequence number that follows the packet: Seq+Count
// for a data packet, Seq for a heartbeat or end of session.
func (h *Header) NextSeq() uint64 { return h.Seq + uint64(h.Messages()) }

func (h *Header) put(b []byte) {
	_ = b[HeaderLen-1]
	copy(b[:SessionLen], h.Session[:])
	binary.BigEndian.PutUint64(b[10:], h.Seq)
	binary.BigEndian.PutUint16(b[18:], h.Count)
}

// AppendHeader appends h's 20 wire bytes to dst.
func AppendHeader(dst []byte, h Header) []byte {
	var b [HeaderLen]byte
	h.put(b[:])
	return append(dst, b[:]...)
}

// AppendHeartbeat appends a heartbeat packet announcing next, the sequence
// number of the next message.
func AppendHeartbeat(dst []byte, s Session, next uint64) []byte {
	return AppendHeader(dst, Header{Session: s, Seq: next})
}

// AppendEndOfSession appends an end-of-session packet; next is one past the
// last message of the session.
func AppendEndOfSession(dst []byte, s Session, next uint64) []byte {
	return AppendHeader(dst, Header{Session: s, Seq: next, Count: EndOfSession})
}

// Packet is a parsed downstream packet: its header and a view of its
// message blocks, already checked to frame exactly Count messages.
type Packet struct {
	Header
	blocks []byte
}

// ParsePacket checks b and returns it as a Packet sharing its bytes. It
// fails with an *Error if b is shorter than a header, the sequence number
// is 0 or would pass 2^64, a block runs past the end, bytes follow the last
// block, or a heartbeat or end-of-session packet carries blocks. It does not
// allocate unless it fails.
func ParsePacket(b []byte) (Packet, error) {
	var p Packet
	if len(b) < HeaderLen {
		return p, malformed(len(b), ErrShort, "%d bytes, header needs %d", len(b), HeaderLen)
	}
	copy(p.Session[:], b[:SessionLen])
	p.Seq = binary.BigEndian.Uint64(b[10:])
	p.Count = binary.BigEndian.Uint16(b[18:])
	if p.Seq == 0 {
		return p, malformed(10, ErrSequence, "sequence number 0")
	}
	n := p.Messages()
	if p.Seq > math.MaxUint64-uint64(n) {
		return p, malformed(10, ErrSequence, "sequence number %d + %d messages overflows", p.Seq, n)
	}
	off := HeaderLen
	for i := 0; i < n; i++ {
		if len(b)-off < BlockLen {
			return p, malformed(off, ErrTruncated, "message %d of %d: no room for its length", i+1, n)
		}
		l := int(binary.BigEndian.Uint16(b[off:]))
		if len(b)-off-BlockLen < l {
			return p, malformed(off, ErrTruncated, "message %d of %d: %d bytes, %d left", i+1, n, l, len(b)-off-BlockLen)
		}
		off += BlockLen + l
	}
	if off != len(b) {
		return p, malformed(off, ErrTrailing, "%d bytes after %d messages", len(b)-off, n)
	}
	p.blocks = b[HeaderLen:]
	return p, nil
}

// Iter returns an iterator over the packet's messages.
func (p *Packet) Iter() Iter { return Iter{rest: p.blocks, seq: p.Seq} }

// Iter walks a Packet's messages in place.
type Iter struct {
	rest []byte
	seq  uint64
}

// Next returns the next message's sequence number and bytes (a view into
// the packet), or ok false after the last.
func (it *Iter) Next() (seq uint64, msg []byte, ok bool) {
	if len(it.rest) < BlockLen {
		return 0, nil, false
	}
	l := int(binary.BigEndian.Uint16(it.rest))
	if len(it.rest)-BlockLen < l { // cannot happen for a parsed Packet
		return 0, nil, false
	}
	msg = it.rest[BlockLen : BlockLen+l : BlockLen+l]
	it.rest = it.rest[BlockLen+l:]
	seq = it.seq
	it.seq++
	return seq, msg, true
}

// Builder packs messages into one downstream packet in a buffer it keeps.
// The zero Builder is not usable; call Reset first.
type Builder struct {
	buf   []byte
	max   int
	hdr   Header
	count int
}

// Reset starts a new packet of session s whose first message will have
// sequence number seq, limited to maxPayload bytes (0: DefaultMaxPayload).
// It allocates only when maxPayload grows past what it had.
func (b *Builder) Reset(s Session, seq uint64, maxPayload int) {
	if maxPayload <= 0 {
		maxPayload = DefaultMaxPayload
	}
	if cap(b.buf) < maxPayload {
		b.buf = make([]byte, 0, maxPayload)
	}
	b.max = maxPayload
	b.hdr = Header{Session: s, Seq: seq}
	b.count = 0
	b.buf = b.buf[:HeaderLen]
}

// Add appends one message. It fails with ErrPacketFull when the packet has
// no room left for it (send Bytes, Reset at NextSeq, Add again) and with
// ErrMessageTooLarge when it would not fit even an empty packet.
func (b *Builder) Add(msg []byte) error {
	need := BlockLen + len(msg)
	if HeaderLen+need > b.max || len(msg) > math.MaxUint16 {
		return fmt.Errorf("%w: %d bytes, payload limit %d", ErrMessageTooLarge, len(msg), b.max)
	}
	if len(b.buf)+need > b.max || b.count == MaxCount {
		return ErrPacketFull
	}
	b.buf = binary.BigEndian.AppendUint16(b.buf, uint16(len(msg)))
	b.buf = append(b.buf, msg...)
	b.count++
	return nil
}

// Count returns the number of messages added since Reset.
func (b *Builder) Count() int { return b.count }

// Seq returns the sequence number of the packet's first message.
func (b *Builder) Seq() uint64 { return b.hdr.Seq }

// NextSeq returns the sequence number after the packet's last message.
func (b *Builder) NextSeq() uint64 { return b.hdr.Seq + uint64(b.count) }

// Len returns the packet's size in bytes so far, header included.
func (b *Builder) Len() int { return len(b.buf) }

// Bytes returns the finished packet (header with the current count), a
// view valid until the next Add or Reset. With no message added it is a
// heartbeat.
func (b *Builder) Bytes() []byte {
	b.hdr.Count = uint16(b.count)
	b.hdr.put(b.buf)
	return b.buf
}

// Request asks the re-request server for Count messages from Seq.
type Request struct {
	Session Session
	Seq     uint64
	Count   uint16
}

// ParseRequest checks b is a 20-byte request with a non-zero sequence
// number and count.
func ParseRequest(b []byte) (Request, error) {
	var r Request
	if len(b) != RequestLen {
		off := min(len(b), RequestLen)
		return r, malformed(off, ErrRequest, "%d bytes, a request has %d", len(b), RequestLen)
	}
	copy(r.Session[:], b[:SessionLen])
	r.Seq = binary.BigEndian.Uint64(b[10:])
	r.Count = binary.BigEndian.Uint16(b[18:])
	if r.Seq == 0 {
		return r, malformed(10, ErrRequest, "sequence number 0")
	}
	if r.Count == 0 || r.Count == EndOfSession {
		return r, malformed(18, ErrRequest, "count %d", r.Count)
	}
	return r, nil
}

// AppendEncode appends the request's 20 wire bytes to dst.
func (r Request) AppendEncode(dst []byte) []byte {
	return AppendHeader(dst, Header(r))
}

// Encode writes the request's 20 wire bytes to the start of dst.
func (r Request) Encode(dst []byte) (int, error) {
	if len(dst) < RequestLen {
		return 0, fmt.Errorf("%w: request needs %d bytes, have %d", ErrBufferTooSmall, RequestLen, len(dst))
	}
	h := Header(r)
	h.put(dst)
	return RequestLen, nil
}
