package benchkit

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"sync/atomic"

	hdr "github.com/HdrHistogram/hdrhistogram-go"

	"github.com/mdjournal/mdjournal/internal/clock"
)

// The IPC comparison (`journalctl bench ipc`) moves messages between two
// processes over each transport in Transports and measures every one the
// same way:
//
//   - latency: a ping-pong. The parent stamps message i with i and its send
//     time, the child echoes it back unchanged, and the parent records
//     round trip / 2. A ping-pong cannot lose a sample while either process
//     is descheduled (no coordinated omission), so tails are comparable.
//     The child also records now − stamp on arrival: the stamp-based
//     one-way figure, reported beside it.
//   - throughput: a one-way stream of Count messages; the child counts them,
//     checks each sequence number, CRC-32C's every payload byte (so
//     zero-copy transports touch the data like the copying ones do) and
//     reports the monotonic time after the last one. Both processes read
//     CLOCK_MONOTONIC, so the parent divides by (child end − parent start).
//
// Kernel transports use raw blocking system calls on blocking descriptors
// (not Go's netpoller, which would add a goroutine park/unpark to every
// message), i.e. what a C program would measure.

// Transports lists the transports in table order; the first is the floor.
var Transports = []string{"raw", "ring", "ring-poll", "journal", "pipe", "fifo", "unix-stream", "unix-dgram", "mq", "tcp"}

// KnownTransport reports whether name is in Transports.
func KnownTransport(name string) bool {
	for _, t := range Transports {
		if t == name {
			return true
		}
	}
	return false
}

// Mode selects the experiment a Conn is built for.
type Mode string

const (
	PingPong Mode = "lat"  // ping-pong, both directions
	Stream   Mode = "tput" // parent → child stream
)

// MinMessage is the smallest message: sequence number and send stamp.
const MinMessage = 16

// errAborted is returned by a Conn operation that the abort path unblocked.
var errAborted = errors.New("aborted")

// Conn is one side of a two-way message channel. Send and Recv move one
// whole message (Recv copies it into b); neither allocates.
type Conn interface {
	Send(b []byte) error
	Recv(b []byte) (int, error)
	Close() error
}

// Spec describes one experiment; the parent hands it to the child as
// command-line arguments (see Args / ParseSpec).
type Spec struct {
	Transport string
	Mode      Mode
	Size      int   // message bytes
	Warm      int   // latency: unmeasured messages first
	Count     int   // latency: measured messages; throughput: messages
	GapNS     int64 // latency: pause between pings
	CPU       int   // child's CPU (-1: not pinned)
}

// Total is how many messages cross the channel (per direction).
func (s Spec) Total() int {
	if s.Mode == PingPong {
		return s.Warm + s.Count
	}
	return s.Count
}

// Args encodes s followed by the transport's own arguments.
func (s Spec) Args(extra []string) []string {
	a := []string{s.Transport, string(s.Mode), fmt.Sprint(s.Size), fmt.Sprint(s.Warm), fmt.Sprint(s.Count), fmt.Sprint(s.GapNS), fmt.Sprint(s.CPU)}
	return append(a, extra...)
}

// ParseSpec decodes Args' output; it returns the transport's arguments too.
func ParseSpec(a []string) (Spec, []string, error) {
	var s Spec
	if len(a) < 7 {
		return s, nil, fmt.Errorf("spec: %d arguments, want ≥ 7", len(a))
	}
	s.Transport, s.Mode = a[0], Mode(a[1])
	if _, err := fmt.Sscan(a[2], &s.Size); err != nil {
		return s, nil, err
	}
	if _, err := fmt.Sscan(a[3], &s.Warm); err != nil {
		return s, nil, err
	}
	if _, err := fmt.Sscan(a[4], &s.Count); err != nil {
		return s, nil, err
	}
	if _, err := fmt.Sscan(a[5], &s.GapNS); err != nil {
		return s, nil, err
	}
	if _, err := fmt.Sscan(a[6], &s.CPU); err != nil {
		return s, nil, err
	}
	if !KnownTransport(s.Transport) || (s.Mode != PingPong && s.Mode != Stream) || s.Size < MinMessage || s.Count < 1 || s.Warm < 0 {
		return s, nil, fmt.Errorf("spec: bad %q", a[:7])
	}
	return s, a[7:], nil
}

// ChildResult is the line the child prints when it is done.
type ChildResult struct {
	Stamp string `json:"stamp_hist,omitempty"` // latency: EncodeHistogram of now − stamp
	EndNS int64  `json:"end_ns,omitempty"`     // throughput: monotonic time after the last message
	Count int    `json:"count"`
	CRC   uint32 `json:"crc"`
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// fillMessage writes the fixed filler both sides agree on into b[8:].
func fillMessage(b []byte) {
	for i := 8; i < len(b); i++ {
		b[i] = byte(i*7 + 1)
	}
}

// ExpectedCRC is the CRC-32C the child of a throughput run must report:
// the running checksum of messages 0..count-1 (sequence number + filler).
func ExpectedCRC(size, count int) uint32 {
	b := make([]byte, size)
	fillMessage(b)
	var c uint32
	for i := 0; i < count; i++ {
		binary.LittleEndian.PutUint64(b, uint64(i))
		c = crc32.Update(c, castagnoli, b)
	}
	return c
}

// Ping is the parent side of a latency run: Warm+Count pings paced GapNS
// apart; it returns the histogram of round trip / 2 over the last Count.
func Ping(c Conn, s Spec, abort *atomic.Bool) (*hdr.Histogram, error) {
	h := NewHistogram()
	out := make([]byte, s.Size)
	in := make([]byte, max(s.Size, 64<<10))
	fillMessage(out)
	total := s.Total()
	next := clock.Nanotime()
	for i := 0; i < total; i++ {
		if s.GapNS > 0 {
			next += s.GapNS
			SpinUntil(next)
		}
		t0 := clock.Nanotime()
		binary.LittleEndian.PutUint64(out, uint64(i))
		binary.LittleEndian.PutUint64(out[8:], uint64(t0))
		if err := c.Send(out); err != nil {
			return nil, fmt.Errorf("ping %d: %w", i, err)
		}
		n, err := c.Recv(in)
		if err != nil {
			return nil, fmt.Errorf("pong %d: %w", i, err)
		}
		t1 := clock.Nanotime()
		if n < 8 || binary.LittleEndian.Uint64(in) != uint64(i) {
			if abort.Load() {
				return nil, errAborted
			}
			return nil, fmt.Errorf("pong %d: got %d bytes, seq %d", i, n, binary.LittleEndian.Uint64(in))
		}
		if i >= s.Warm {
			h.RecordValue((t1 - t0) / 2)
		}
	}
	return h, nil
}

// Echo is the child side of a latency run: it returns each message
// unchanged and records now − stamp of the measured ones.
func Echo(c Conn, s Spec) (ChildResult, error) {
	h := NewHistogram()
	buf := make([]byte, max(s.Size, 64<<10))
	total := s.Total()
	for i := 0; i < total; i++ {
		n, err := c.Recv(buf)
		if err != nil {
			return ChildResult{}, fmt.Errorf("ping %d: %w", i, err)
		}
		now := clock.Nanotime()
		if n < MinMessage {
			return ChildResult{}, fmt.Errorf("ping %d: %d bytes", i, n)
		}
		if i >= s.Warm {
			h.RecordValue(max(now-int64(binary.LittleEndian.Uint64(buf[8:])), 0))
		}
		if err := c.Send(buf[:n]); err != nil {
			return ChildResult{}, fmt.Errorf("pong %d: %w", i, err)
		}
	}
	return ChildResult{Stamp: EncodeHistogram(h), Count: total}, nil
}

// Source is the parent side of a throughput run; it returns the monotonic
// time just before the first message.
func Source(c Conn, s Spec) (int64, error) {
	b := make([]byte, s.Size)
	fillMessage(b)
	start := clock.Nanotime()
	for i := 0; i < s.Count; i++ {
		binary.LittleEndian.PutUint64(b, uint64(i))
		if err := c.Send(b); err != nil {
			return 0, fmt.Errorf("message %d: %w", i, err)
		}
	}
	return start, nil
}

// Sink is the child side of a throughput run.
func Sink(c Conn, s Spec) (ChildResult, error) {
	buf := make([]byte, max(s.Size, 64<<10))
	var crc uint32
	for i := 0; i < s.Count; i++ {
		n, err := c.Recv(buf)
		if err != nil {
			return ChildResult{}, fmt.Errorf("message %d: %w", i, err)
		}
		if n != s.Size || binary.LittleEndian.Uint64(buf) != uint64(i) {
			return ChildResult{}, fmt.Errorf("message %d: got %d bytes, seq %d", i, n, binary.LittleEndian.Uint64(buf[:max(n, 8)]))
		}
		crc = crc32.Update(crc, castagnoli, buf[:n])
	}
	return ChildResult{EndNS: clock.Nanotime(), Count: s.Count, CRC: crc}, nil
}

// Parent is the parent's end of one experiment before and after the child
// attaches. Files are passed to the child as fds 3, 4, ... (exec.Cmd's
// ExtraFiles); Args are the transport's own child arguments.
type Parent struct {
	Args  []string
	Files []*os.File

	// attach completes the parent's side once the child printed READY.
	attach func() (Conn, error)
	// afterAttach removes names that both sides no longer need (FIFOs, the
	// socket path, message queues, ring files): unlinked while open, they
	// vanish with the last descriptor even if both processes are killed.
	unlink []func()
	// abort unblocks the parent's side (see Abort).
	abort func()
	conn  Conn
}

// Attach completes the parent's side after the child reported READY, then
// unlinks every name the transport created.
func (p *Parent) Attach() (Conn, error) {
	for _, f := range p.Files {
		f.Close() // the child has its copies; ours would keep EOF from coming
	}
	p.Files = nil
	c, err := p.attach()
	if err != nil {
		return nil, err
	}
	p.conn = c
	p.Unlink()
	return c, nil
}

// Unlink removes the transport's names now (idempotent).
func (p *Parent) Unlink() {
	for _, u := range p.unlink {
		u()
	}
	p.unlink = nil
}

// Abort unblocks a parent blocked in Send or Recv once the child has been
// killed or must be: it shuts sockets down, interrupts the journal reader
// and makes message queue calls non-blocking. Spinning transports watch the
// abort flag instead. Safe to call from another goroutine, once.
func (p *Parent) Abort() {
	if p.abort != nil {
		p.abort()
	}
}

// Close releases the parent's side and removes its names.
func (p *Parent) Close() error {
	for _, f := range p.Files {
		f.Close()
	}
	p.Files = nil
	p.Unlink()
	if p.conn != nil {
		return p.conn.Close()
	}
	return nil
}

// Dirs are where an experiment may create names.
type Dirs struct {
	Scratch string // files, FIFOs, sockets, journals (a fresh private directory)
	Shm     string // shared-memory files: rings and raw pages (tmpfs)
	MQ      string // prefix of POSIX message queue names
}

// NewParent prepares the parent's side of s.Transport before the child
// starts.
func NewParent(s Spec, d Dirs, abort *atomic.Bool) (*Parent, error) {
	switch s.Transport {
	case "raw":
		return newRawParent(s, d, abort)
	case "ring", "ring-poll":
		return newRingParent(s, d, abort)
	case "journal":
		return newJournalParent(s, d)
	case "pipe":
		return newPipeParent(s)
	case "fifo":
		return newFIFOParent(s, d)
	case "unix-stream":
		return newUnixStreamParent(s, d)
	case "unix-dgram":
		return newUnixDgramParent(s)
	case "mq":
		return newMQParent(s, d)
	case "tcp":
		return newTCPParent(s)
	}
	return nil, fmt.Errorf("unknown transport %q", s.Transport)
}

// ChildConn builds the child's side from the arguments NewParent produced;
// the parent's ExtraFiles are fds 3, 4, ...
func ChildConn(s Spec, args []string) (Conn, error) {
	switch s.Transport {
	case "raw":
		return rawChild(s, args)
	case "ring", "ring-poll":
		return ringChild(s, args)
	case "journal":
		return journalChild(s, args)
	case "pipe", "unix-dgram":
		return fdChild(s, args)
	case "fifo":
		return fifoChild(s, args)
	case "unix-stream":
		return unixStreamChild(s, args)
	case "mq":
		return mqChild(s, args)
	case "tcp":
		return tcpChild(s, args)
	}
	return nil, fmt.Errorf("unknown transport %q", s.Transport)
}
