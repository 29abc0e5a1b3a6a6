//go:build linux

package publish

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"time"

	"github.com/mdjournal/mdjournal/internal/clock"
	"github.com/mdjournal/mdjournal/itch"
	"github.com/mdjournal/mdjournal/journal"
	"github.com/mdjournal/mdjournal/moldudp64"
)

// DefaultSession is the MoldUDP64 session name used when none is given.
const DefaultSession = "MDJOURNAL"

// Options configure a Publisher. To is required.
type Options struct {
	// To is where the feed goes: a unicast or an IPv4 multicast address.
	To netip.AddrPort
	// Session is the MoldUDP64 session name, at most 10 bytes (default
	// DefaultSession).
	Session string
	// RerequestListen, if valid, is where the re-request server listens; it
	// answers from every message sent so far (kept in memory).
	RerequestListen netip.AddrPort
	// Speed paces the messages by their frames' timestamps: 1 is the
	// recorded pace, 10 ten times faster; 0 sends as fast as possible.
	Speed float64
	// DropRate and ReorderRate are the probabilities that a data packet is
	// not sent (it stays available to re-requests) or is held back and sent
	// after the next one, drawn from a PCG seeded with Seed: recovery tests.
	DropRate, ReorderRate float64
	Seed                  uint64 // seed of the drop and reorder generator
	// MaxPayload is the largest packet (default moldudp64.DefaultMaxPayload).
	MaxPayload int
	// HeartbeatInterval: a heartbeat (after the end: the end-of-session
	// packet again) goes out when nothing was sent for this long (default 1 s).
	HeartbeatInterval time.Duration
	// Day anchors ITCH timestamps; zero: midnight in New York of the first
	// frame's date.
	Day itch.Day
	// Linger is how long, after the end of session, the re-request server
	// keeps answering and the end-of-session packet is repeated (every
	// HeartbeatInterval), so that a receiver can recover the last losses.
	Linger time.Duration
	// Interface (index), TTL and Loop apply to multicast: the interface
	// the packets leave by, their TTL (default 1) and whether listeners on
	// this host receive them.
	Interface int  // multicast: index of the interface the packets leave by (0: routing)
	TTL       int  // multicast: TTL (default 1)
	Loop      bool // multicast: deliver to listeners on this host too
	// SendBuffer is the socket send buffer in bytes (default 8 MiB).
	SendBuffer int
	// Logf receives notes (nil: discarded).
	Logf func(format string, args ...any)
}

// Stats say what a Publisher did.
type Stats struct {
	Encoder EncoderStats             // frames and messages
	Sender  moldudp64.SenderCounters // packets sent, dropped, reordered, heartbeats
	Server  moldudp64.ServerCounters // re-requests answered
	// First and Last are the sequence numbers of the first and last
	// message; Seconds the time from the first message to the end of
	// session.
	First, Last uint64
	Seconds     float64 // from the first message to the end of session
}

// Publisher is a test exchange: it turns a Source's frames into ITCH 5.0
// messages (Encoder), packs them into MoldUDP64 packets sent to Options.To
// (moldudp64.Sender, with its drop and reorder hooks), paced by the frames'
// timestamps or as fast as possible, and answers re-requests from a store
// of everything it sent (moldudp64.Server).
type Publisher struct {
	o      Options
	conn   *moldudp64.Conn
	snd    *moldudp64.Sender
	store  *moldudp64.MemStore
	srv    *moldudp64.Server
	srvC   *moldudp64.Conn
	stop   context.CancelFunc
	wg     sync.WaitGroup
	srvErr error

	start int64 // monotonic time of the first message
	ts0   int64 // its frame time
	first uint64
	n     uint64
}

// Open opens the sockets and starts the re-request server.
func Open(o Options) (*Publisher, error) {
	if !o.To.IsValid() {
		return nil, errors.New("publish: Options.To is required")
	}
	if o.Session == "" {
		o.Session = DefaultSession
	}
	sess, err := moldudp64.ParseSession(o.Session)
	if err != nil {
		return nil, err
	}
	if o.Speed < 0 {
		return nil, fmt.Errorf("publish: speed %v", o.Speed)
	}
	if o.HeartbeatInterval <= 0 {
		o.HeartbeatInterval = time.Second
	}
	if o.SendBuffer <= 0 {
		o.SendBuffer = 8 << 20
	}
	if o.Logf == nil {
		o.Logf = func(string, ...any) {}
	}
	p := &Publisher{o: o}
	local := netip.AddrPortFrom(netip.IPv4Unspecified(), 0)
	if ip := o.To.Addr(); ip.IsLoopback() {
		local = netip.AddrPortFrom(ip, 0)
	}
	p.conn, err = moldudp64.Listen(local, moldudp64.ConnOptions{SendBuffer: o.SendBuffer,
		MulticastInterface: o.Interface, MulticastTTL: o.TTL, MulticastLoop: o.Loop})
	if err != nil {
		return nil, err
	}
	so := moldudp64.SenderOptions{Session: sess, MaxPayload: o.MaxPayload, HeartbeatInterval: o.HeartbeatInterval,
		DropRate: o.DropRate, ReorderRate: o.ReorderRate, Seed: o.Seed}
	if o.RerequestListen.IsValid() {
		p.store = moldudp64.NewMemStore(1)
		so.Store = p.store
		if p.srvC, err = moldudp64.Listen(o.RerequestListen, moldudp64.ConnOptions{SendBuffer: o.SendBuffer}); err != nil {
			p.conn.Close()
			return nil, err
		}
		if p.srv, err = moldudp64.NewServer(p.srvC, p.store, moldudp64.ServerOptions{Session: sess, MaxPayload: o.MaxPayload}); err != nil {
			p.Close()
			return nil, err
		}
		ctx, cancel := context.WithCancel(context.Background())
		p.stop = cancel
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			if err := p.srv.Run(ctx); err != nil && !errors.Is(err, context.Canceled) {
				p.srvErr = err
			}
		}()
	}
	if p.snd, err = moldudp64.NewSender(p.conn, o.To, so); err != nil {
		p.Close()
		return nil, err
	}
	return p, nil
}

// RerequestAddr returns the re-request server's address (invalid without
// one).
func (p *Publisher) RerequestAddr() netip.AddrPort {
	if p.srvC == nil {
		return netip.AddrPort{}
	}
	return p.srvC.LocalAddr()
}

// Run publishes src: a System Event 'O' (start of messages) and a Stock
// Directory per instrument, stamped with the first frame's time, then
// every frame as encoded by an Encoder, then a System Event 'C' (end of
// messages) and the end of session. It then lingers (Options.Linger)
// answering re-requests and repeating the end of session. It returns at
// the end of the linger, at the first error, or when ctx is done (before
// the end of session: ctx.Err(); while lingering: nil, the session is
// complete).
func (p *Publisher) Run(ctx context.Context, src Source) (Stats, error) {
	var st Stats
	ins, err := src.Instruments()
	if err != nil {
		return st, err
	}
	var enc *Encoder
	locate := NewYorkDay
	if p.o.Day.Midnight() != 0 {
		locate = nil
	}
	enc = NewEncoder(p.emit(ctx), p.o.Day, locate)
	started := false
	var last int64
	err = src.Frames(ctx, func(typ journal.MsgType, instr uint32, ts int64, payload []byte) error {
		if !started {
			started = true
			if err := enc.SystemEvent('O', ts); err != nil {
				return err
			}
			for _, in := range ins {
				if err := enc.Define(in.ID, in.Def, ts); err != nil {
					return err
				}
			}
		}
		last = ts
		_, err := enc.Append(typ, instr, ts, payload)
		return err
	})
	if err == nil && started {
		if err = enc.Flush(); err == nil {
			err = enc.SystemEvent('C', last)
		}
	}
	st.Encoder = enc.Stats()
	if err != nil {
		return p.stats(st), err
	}
	if err := p.snd.EndSession(); err != nil {
		return p.stats(st), err
	}
	if p.start != 0 {
		st.Seconds = float64(clock.Nanotime()-p.start) / 1e9
	}
	p.o.Logf("end of session: messages %d..%d sent", p.first, p.first+p.n-1)
	err = p.linger(ctx)
	return p.stats(st), err
}

func (p *Publisher) stats(st Stats) Stats {
	st.Sender = p.snd.Counters()
	if p.srv != nil {
		st.Server = p.srv.Counters()
	}
	if p.n > 0 {
		st.First, st.Last = p.first, p.first+p.n-1
	}
	return st
}

// linger repeats the end of session and keeps the server running.
func (p *Publisher) linger(ctx context.Context) error {
	end := clock.Nanotime() + int64(p.o.Linger)
	for clock.Nanotime() < end && ctx.Err() == nil {
		if err := p.snd.Tick(); err != nil {
			return err
		}
		sleep(ctx, min(50*time.Millisecond, time.Duration(end-clock.Nanotime())))
	}
	return p.srvErr
}

func sleep(ctx context.Context, d time.Duration) {
	if d <= 0 {
		return
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// emit returns the Encoder's Emit: pace, then add to the sender.
func (p *Publisher) emit(ctx context.Context) Emit {
	return func(msg []byte, ts int64) error {
		now := clock.Nanotime()
		if p.start == 0 {
			p.start, p.ts0 = now, ts
		}
		if p.o.Speed > 0 {
			due := p.start + int64(float64(ts-p.ts0)/p.o.Speed)
			if due > now {
				if err := p.snd.Flush(); err != nil {
					return err
				}
				if err := p.waitUntil(ctx, due); err != nil {
					return err
				}
			}
		}
		seq, err := p.snd.Add(msg)
		if err != nil {
			return err
		}
		if p.n == 0 {
			p.first = seq
		}
		p.n++
		return nil
	}
}

// waitUntil sleeps until the monotonic time due (the last 200 µs spinning),
// sending heartbeats meanwhile.
func (p *Publisher) waitUntil(ctx context.Context, due int64) error {
	for {
		left := due - clock.Nanotime()
		if left <= 0 {
			return nil
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if left > 200_000 {
			sleep(ctx, min(time.Duration(left-200_000), 100*time.Millisecond))
			if err := p.snd.Tick(); err != nil {
				return err
			}
		}
	}
}

// Close stops the re-request server and closes the sockets.
func (p *Publisher) Close() error {
	if p.stop != nil {
		p.stop()
	}
	var errs []error
	if p.srvC != nil {
		errs = append(errs, p.srvC.Close())
	}
	p.wg.Wait()
	errs = append(errs, p.conn.Close())
	return errors.Join(errs...)
}
