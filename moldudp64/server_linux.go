//go:build linux

package moldudp64

import (
	"context"
	"errors"
	"net/netip"
	"sync/atomic"
	"time"
)

// RequestClient sends re-requests to a server from its own socket; the
// answers arrive on the same socket (a Receiver reads it). It implements
// Requester.
type RequestClient struct {
	conn   *Conn
	server netip.AddrPort
	buf    [RequestLen]byte
}

// NewRequestClient returns a client sending from conn to server.
func NewRequestClient(conn *Conn, server netip.AddrPort) *RequestClient {
	return &RequestClient{conn: conn, server: server}
}

// Request sends one request packet. It does not allocate.
func (c *RequestClient) Request(s Session, first uint64, count uint16) error {
	Request{Session: s, Seq: first, Count: count}.Encode(c.buf[:])
	return c.conn.WriteTo(c.buf[:], c.server)
}

// Conn returns the client's socket.
func (c *RequestClient) Conn() *Conn { return c.conn }

// Server returns the server's address.
func (c *RequestClient) Server() netip.AddrPort { return c.server }

// ServerOptions configure a Server.
type ServerOptions struct {
	// Session answered; requests for any other are ignored. Required.
	Session Session
	// MaxPayload is the largest answer packet (default DefaultMaxPayload).
	MaxPayload int
	// MaxCount caps the messages answered per request (default 1024); a
	// client asking for more gets the first MaxCount and asks again.
	MaxCount int
	// Batch is the number of requests read per recvmmsg (default 64).
	Batch int
}

// ServerCounters count what a Server did.
type ServerCounters struct {
	Requests       uint64 // valid requests answered (in full or in part)
	Malformed      uint64 // datagrams that are not requests, ignored
	ForeignSession uint64 // requests for another session, ignored
	Unavailable    uint64 // requests for messages the store does not have
	Packets        uint64 // answer packets sent
	Messages       uint64 // messages sent in answers
	SendErrors     uint64 // answer packets that could not be sent
}

// Server answers MoldUDP64 re-requests from a Store: each valid request
// for its session gets the messages [seq, seq+count) that the store has (at
// most MaxCount), packed into packets of at most MaxPayload bytes and sent
// to the requester's address.
type Server struct {
	conn  *Conn
	store Store
	o     ServerOptions
	batch *Batch
	msgs  [][]byte
	b     Builder

	requests, malformed, foreign, unavailable, packets, messages, sendErrors atomic.Uint64
}

// NewServer returns a Server reading requests on conn.
func NewServer(conn *Conn, store Store, o ServerOptions) (*Server, error) {
	if (o.Session == Session{}) {
		return nil, errors.New("moldudp64: server needs a session")
	}
	if o.MaxPayload <= 0 {
		o.MaxPayload = DefaultMaxPayload
	}
	if o.MaxPayload < HeaderLen+BlockLen+1 {
		return nil, errors.New("moldudp64: server MaxPayload too small for any message")
	}
	if o.MaxCount <= 0 || o.MaxCount > MaxCount {
		o.MaxCount = 1024
	}
	return &Server{conn: conn, store: store, o: o, batch: NewBatch(o.Batch, 512), msgs: make([][]byte, 0, o.MaxCount)}, nil
}

// Poll waits up to timeout for requests, answers all that are waiting and
// returns how many datagrams it read.
func (s *Server) Poll(timeout time.Duration) (int, error) {
	n, err := s.serve()
	if n > 0 || err != nil {
		return n, err
	}
	if ok, err := s.conn.Wait(timeout); !ok || err != nil {
		return 0, err
	}
	return s.serve()
}

// Run answers requests until ctx is done.
func (s *Server) Run(ctx context.Context) error {
	for ctx.Err() == nil {
		if _, err := s.Poll(50 * time.Millisecond); err != nil {
			if ctx.Err() != nil {
				break
			}
			return err
		}
	}
	return ctx.Err()
}

func (s *Server) serve() (int, error) {
	total := 0
	for {
		n, err := s.conn.Read(s.batch)
		if err != nil || n == 0 {
			return total, err
		}
		total += n
		for i := 0; i < n; i++ {
			if s.batch.Truncated(i) {
				s.malformed.Add(1)
				continue
			}
			s.answer(s.batch.Packet(i), s.batch.From(i))
		}
	}
}

func (s *Server) answer(pkt []byte, from netip.AddrPort) {
	r, err := ParseRequest(pkt)
	if err != nil {
		s.malformed.Add(1)
		return
	}
	if r.Session != s.o.Session {
		s.foreign.Add(1)
		return
	}
	count := min(int(r.Count), s.o.MaxCount)
	s.msgs = s.store.Messages(r.Seq, count, s.msgs[:0])
	if len(s.msgs) == 0 {
		s.unavailable.Add(1)
		return
	}
	s.requests.Add(1)
	s.b.Reset(s.o.Session, r.Seq, s.o.MaxPayload)
	for _, m := range s.msgs {
		err := s.b.Add(m)
		if err == ErrPacketFull { // Builder returns the bare sentinel
			s.send(from)
			s.b.Reset(s.o.Session, s.b.NextSeq(), s.o.MaxPayload)
			err = s.b.Add(m)
		}
		if err != nil { // larger than any packet: the Sender would not have sent it
			s.sendErrors.Add(1)
			break
		}
	}
	if s.b.Count() > 0 {
		s.send(from)
	}
}

func (s *Server) send(to netip.AddrPort) {
	if err := s.conn.WriteTo(s.b.Bytes(), to); err != nil {
		s.sendErrors.Add(1)
		return
	}
	s.packets.Add(1)
	s.messages.Add(uint64(s.b.Count()))
}

// Counters returns the counters; safe to call from any goroutine.
func (s *Server) Counters() ServerCounters {
	return ServerCounters{Requests: s.requests.Load(), Malformed: s.malformed.Load(), ForeignSession: s.foreign.Load(),
		Unavailable: s.unavailable.Load(), Packets: s.packets.Load(), Messages: s.messages.Load(), SendErrors: s.sendErrors.Load()}
}
