package benchkit

import (
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/mdjournal/mdjournal/internal/mmap"
	"github.com/mdjournal/mdjournal/journal"
	"github.com/mdjournal/mdjournal/reader"
	"github.com/mdjournal/mdjournal/ring"
	"github.com/mdjournal/mdjournal/wait"
	"github.com/mdjournal/mdjournal/writer"
)

// ---- raw: the floor ----------------------------------------------------
//
// Latency: the cache-line ping-pong of RawPingPong, carrying the 16-byte
// head of the message (sequence number, stamp) in one line per direction:
// the least two processes can do to hand each other anything.
//
// Throughput: the least a shared-memory queue can be: fixed-size slots (no
// framing, no validation, no liveness checks), one position word per side,
// one position store per message.

const (
	rawLineP2C = 64  // parent → child mailbox line (latency)
	rawLineC2P = 128 // child → parent mailbox line
	rawTail    = 128 // slot queue: producer position (throughput)
	rawHead    = 256 // slot queue: consumer position
	rawHdr     = 4096
	rawData    = ringCapacity // same buffer size as the ring: same room to run ahead
)

func rawFileSize(s Spec) int {
	if s.Mode == PingPong {
		return rawHdr
	}
	return rawHdr + rawData
}

func rawSlot(size int) int { return (size + 63) &^ 63 }

type rawConn struct {
	m     []byte
	abort *atomic.Bool
	// latency
	out, in *[2]uint64 // mailbox: seq, stamp
	want    uint64     // next seq expected on in (+1, so 0 means empty)
	// throughput
	tail, head *uint64
	pos, cache uint64
	slot, size int
	slots      uint64
	data       []byte
}

func newRawParent(s Spec, d Dirs, abort *atomic.Bool) (*Parent, error) {
	f, err := os.CreateTemp(d.Shm, "raw-*")
	if err != nil {
		return nil, err
	}
	path := f.Name()
	fail := func(err error) (*Parent, error) { f.Close(); os.Remove(path); return nil, err }
	if err := mmap.Reserve(f, int64(rawFileSize(s))); err != nil {
		return fail(err)
	}
	f.Close()
	c, err := openRaw(path, s, true, abort)
	if err != nil {
		os.Remove(path)
		return nil, err
	}
	return &Parent{Args: []string{path}, attach: func() (Conn, error) { return c, nil },
		unlink: []func(){func() { os.Remove(path) }}}, nil
}

func rawChild(s Spec, args []string) (Conn, error) {
	if len(args) != 1 {
		return nil, fmt.Errorf("raw: want PATH")
	}
	return openRaw(args[0], s, false, new(atomic.Bool))
}

func openRaw(path string, s Spec, parent bool, abort *atomic.Bool) (*rawConn, error) {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	m, err := mmap.Map(f, rawFileSize(s), true)
	if err != nil {
		return nil, err
	}
	mmap.PopulateWrite(m)
	mmap.TouchWrite(m) // PopulateWrite alone leaves a lazily backed page's first store slow
	c := &rawConn{m: m, abort: abort, slot: rawSlot(s.Size), size: s.Size, slots: uint64(rawData / rawSlot(s.Size)), data: m[rawHdr:]}
	base := unsafe.Pointer(&m[0])
	p2c, c2p := (*[2]uint64)(unsafe.Add(base, rawLineP2C)), (*[2]uint64)(unsafe.Add(base, rawLineC2P))
	c.out, c.in = p2c, c2p
	if !parent {
		c.out, c.in = c2p, p2c
	}
	c.tail, c.head = (*uint64)(unsafe.Add(base, rawTail)), (*uint64)(unsafe.Add(base, rawHead))
	if s.Mode == Stream {
		c.out, c.in = nil, nil
	}
	return c, nil
}

func (c *rawConn) Send(b []byte) error {
	if c.out != nil { // mailbox: stamp, then seq+1 (the word the peer spins on)
		atomic.StoreUint64(&c.out[1], binary.LittleEndian.Uint64(b[8:]))
		atomic.StoreUint64(&c.out[0], binary.LittleEndian.Uint64(b)+1)
		return nil
	}
	for spins := 0; c.pos-c.cache >= c.slots; spins++ {
		c.cache = atomic.LoadUint64(c.head)
		if spins&1023 == 1023 && c.abort.Load() {
			return errAborted
		}
	}
	i := int(c.pos % c.slots)
	copy(c.data[i*c.slot:i*c.slot+len(b)], b)
	c.pos++
	atomic.StoreUint64(c.tail, c.pos)
	return nil
}

func (c *rawConn) Recv(b []byte) (int, error) {
	if c.in != nil {
		c.want++
		for spins := 0; atomic.LoadUint64(&c.in[0]) != c.want; spins++ {
			if spins&1023 == 1023 && c.abort.Load() {
				return 0, errAborted
			}
		}
		binary.LittleEndian.PutUint64(b, c.want-1)
		binary.LittleEndian.PutUint64(b[8:], atomic.LoadUint64(&c.in[1]))
		return MinMessage, nil
	}
	for spins := 0; c.pos == c.cache; spins++ {
		c.cache = atomic.LoadUint64(c.tail)
		if spins&1023 == 1023 && c.abort.Load() {
			return 0, errAborted
		}
	}
	i := int(c.pos % c.slots)
	n := copy(b[:c.size], c.data[i*c.slot:])
	c.pos++
	atomic.StoreUint64(c.head, c.pos)
	return n, nil
}

func (c *rawConn) Close() error { return mmap.Unmap(c.m) }

// ---- ring ----------------------------------------------------------------

// ringCapacity is the ring's data area: 2 MiB, about 2000 messages of the
// largest size measured (1 KiB); the raw slot queue gets the same room.
const ringCapacity = 1 << 21

type ringConn struct {
	p *ring.Producer
	c *ring.Consumer
	// poll: spin on TryWrite/TryRead instead of the blocking calls. The
	// blocking calls check the peer's liveness (a /proc read) every 256
	// idle polls; "ring-poll" measures the data path without that check.
	poll  bool
	abort *atomic.Bool
}

func (c *ringConn) Send(b []byte) error {
	if !c.poll {
		return c.p.Write(b)
	}
	for spins := 0; ; spins++ {
		err := c.p.TryWrite(b)
		if err != ring.ErrFull {
			return err
		}
		if spins&1023 == 1023 && c.abort.Load() {
			return errAborted
		}
	}
}

func (c *ringConn) Recv(b []byte) (int, error) {
	var v []byte
	if c.poll {
		for spins := 0; ; spins++ {
			var ok bool
			if v, ok = c.c.TryRead(); ok {
				break
			}
			if spins&1023 == 1023 && c.abort.Load() {
				return 0, errAborted
			}
		}
	} else {
		var err error
		if v, err = c.c.Read(); err != nil {
			return 0, err
		}
	}
	n := copy(b, v)
	c.c.Release()
	return n, nil
}

func (c *ringConn) Close() error {
	if c.p != nil {
		c.p.Close()
	}
	if c.c != nil {
		c.c.Close()
	}
	return nil
}

// newRingParent creates the parent → child ring as its producer
// (ring.NewProducer) and, once the child is READY, joins the child → parent
// ring the child created as its consumer (ring.NewConsumer): each direction
// is one ring generation, as users attach. Spin on both sides, like the
// journal reader and the raw floor. Linger -1: an experiment's Close does
// not wait for the peer (it may have been killed).
func newRingParent(s Spec, d Dirs, abort *atomic.Bool) (*Parent, error) {
	a := filepath.Join(d.Shm, "ring-p2c")
	b := filepath.Join(d.Shm, "ring-c2p")
	c := &ringConn{poll: s.Transport == "ring-poll", abort: abort}
	var err error
	if c.p, err = ring.NewProducer(a, ringCapacity, ring.ProducerOptions{Wait: wait.Spin, Linger: -1}); err != nil {
		return nil, err
	}
	attach := func() (Conn, error) {
		if c.c, err = ring.NewConsumer(b, ring.ConsumerOptions{Wait: wait.Spin, AttachTimeout: 10 * time.Second}); err != nil {
			return nil, err
		}
		return c, nil
	}
	return &Parent{Args: []string{a, b}, attach: attach,
		unlink: []func(){func() { os.Remove(a) }, func() { os.Remove(b) }}}, nil
}

// ringChild joins the parent's ring as its consumer and creates the child →
// parent ring as its producer.
func ringChild(s Spec, args []string) (Conn, error) {
	if len(args) != 2 {
		return nil, fmt.Errorf("ring: want P2C C2P")
	}
	c := &ringConn{poll: s.Transport == "ring-poll", abort: new(atomic.Bool)}
	var err error
	if c.c, err = ring.NewConsumer(args[0], ring.ConsumerOptions{Wait: wait.Spin, AttachTimeout: 10 * time.Second}); err != nil {
		return nil, err
	}
	if c.p, err = ring.NewProducer(args[1], ringCapacity, ring.ProducerOptions{Wait: wait.Spin, Linger: -1}); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// ---- journal ---------------------------------------------------------------

// journalConn appends to its own journal and tails the peer's: the design's
// cross-process path (writer → mmap → tailing reader), one journal per
// direction.
type journalConn struct {
	w  *writer.Writer
	r  *reader.Reader
	ra atomic.Pointer[reader.Reader] // r, for Abort from another goroutine
}

func (c *journalConn) Send(b []byte) error {
	_, err := c.w.Append(journal.TypeRaw, 1, 0, b)
	return err
}

func (c *journalConn) Recv(b []byte) (int, error) {
	f, err := c.r.Next()
	if err != nil {
		return 0, err
	}
	return copy(b, f.Payload), nil
}

func (c *journalConn) Close() error {
	var err error
	if c.r != nil {
		c.r.Close()
	}
	if c.w != nil {
		err = c.w.Close()
	}
	return err
}

func newJournalParent(s Spec, d Dirs) (*Parent, error) {
	a := filepath.Join(d.Scratch, "journal-p2c")
	b := filepath.Join(d.Scratch, "journal-c2p")
	w, err := writer.Open(a, writer.Options{})
	if err != nil {
		return nil, err
	}
	c := &journalConn{w: w}
	if err := w.Prefault(); err != nil { // no first-touch faults in what is timed
		w.Close()
		return nil, err
	}
	p := &Parent{Args: []string{a, b}}
	p.attach = func() (Conn, error) {
		if s.Mode == PingPong {
			r, err := reader.Open(b, reader.Options{From: reader.Start(), Wait: wait.Spin})
			if err != nil {
				c.Close()
				return nil, err
			}
			c.r = r
			c.ra.Store(r)
		}
		return c, nil
	}
	p.abort = func() {
		if r := c.ra.Load(); r != nil {
			r.Interrupt()
		}
	}
	return p, nil
}

func journalChild(s Spec, args []string) (Conn, error) {
	if len(args) != 2 {
		return nil, fmt.Errorf("journal: want P2C C2P")
	}
	r, err := reader.Open(args[0], reader.Options{From: reader.Start(), Wait: wait.Spin})
	if err != nil {
		return nil, err
	}
	if s.Mode == Stream { // nothing flows back
		return &journalConn{r: r}, nil
	}
	w, err := writer.Open(args[1], writer.Options{})
	if err != nil {
		r.Close()
		return nil, err
	}
	if err := w.Prefault(); err != nil {
		w.Close()
		r.Close()
		return nil, err
	}
	return &journalConn{w: w, r: r}, nil
}
