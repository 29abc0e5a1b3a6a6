//go:build linux

package moldudp64

import (
	"errors"
	"fmt"
	"net/netip"
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// ConnOptions configure a Conn; the zero value is a plain socket.
type ConnOptions struct {
	// RecvBuffer and SendBuffer set SO_RCVBUF/SO_SNDBUF in bytes (0: the
	// system default). As root the *FORCE variants pass net.core.rmem_max.
	RecvBuffer, SendBuffer int
	// Timestamps asks the kernel for each packet's receive time
	// (SO_TIMESTAMPNS, CLOCK_REALTIME), read with Batch.Time.
	Timestamps bool
	// ReuseAddr sets SO_REUSEADDR, so several sockets can bind one
	// multicast group and port.
	ReuseAddr bool
	// MulticastInterface is the interface index outgoing multicast leaves
	// by (0: the routing table's choice); MulticastTTL its TTL (0: 1);
	// MulticastLoop delivers it to listeners on this host too.
	MulticastInterface int
	MulticastTTL       int
	MulticastLoop      bool
}

// Conn is a non-blocking IPv4 UDP socket driven by raw system calls: batch
// reads with recvmmsg, writes with sendto, no allocation per packet. A Conn
// is used by one goroutine at a time; Close it after that goroutine is done.
type Conn struct {
	fd     int
	local  netip.AddrPort
	to     unix.RawSockaddrInet4 // WriteTo's destination, reused
	closed atomic.Bool
}

// Listen opens a UDP socket bound to addr (IPv4; port 0 picks one). To
// receive multicast, bind the group address (or 0.0.0.0) and the group's
// port, then JoinGroup.
func Listen(addr netip.AddrPort, o ConnOptions) (*Conn, error) {
	ip := addr.Addr().Unmap()
	if !ip.Is4() {
		return nil, fmt.Errorf("moldudp64: listen %v: only IPv4 is supported", addr)
	}
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, unix.IPPROTO_UDP)
	if err != nil {
		return nil, fmt.Errorf("moldudp64: socket: %w", err)
	}
	fail := func(what string, err error) (*Conn, error) {
		unix.Close(fd)
		return nil, fmt.Errorf("moldudp64: listen %v: %s: %w", addr, what, err)
	}
	if o.ReuseAddr {
		if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEADDR, 1); err != nil {
			return fail("SO_REUSEADDR", err)
		}
	}
	if o.RecvBuffer > 0 {
		if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, o.RecvBuffer); err != nil {
			if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, o.RecvBuffer); err != nil {
				return fail("SO_RCVBUF", err)
			}
		}
	}
	if o.SendBuffer > 0 {
		if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_SNDBUFFORCE, o.SendBuffer); err != nil {
			if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_SNDBUF, o.SendBuffer); err != nil {
				return fail("SO_SNDBUF", err)
			}
		}
	}
	if o.Timestamps {
		if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_TIMESTAMPNS, 1); err != nil {
			return fail("SO_TIMESTAMPNS", err)
		}
	}
	if o.MulticastInterface != 0 {
		if err := unix.SetsockoptIPMreqn(fd, unix.IPPROTO_IP, unix.IP_MULTICAST_IF, &unix.IPMreqn{Ifindex: int32(o.MulticastInterface)}); err != nil {
			return fail("IP_MULTICAST_IF", err)
		}
	}
	if err := unix.SetsockoptInt(fd, unix.IPPROTO_IP, unix.IP_MULTICAST_TTL, max(o.MulticastTTL, 1)); err != nil {
		return fail("IP_MULTICAST_TTL", err)
	}
	loop := 0
	if o.MulticastLoop {
		loop = 1
	}
	if err := unix.SetsockoptInt(fd, unix.IPPROTO_IP, unix.IP_MULTICAST_LOOP, loop); err != nil {
		return fail("IP_MULTICAST_LOOP", err)
	}
	if err := unix.Bind(fd, &unix.SockaddrInet4{Port: int(addr.Port()), Addr: ip.As4()}); err != nil {
		return fail("bind", err)
	}
	sa, err := unix.Getsockname(fd)
	if err != nil {
		return fail("getsockname", err)
	}
	in4, ok := sa.(*unix.SockaddrInet4)
	if !ok {
		return fail("getsockname", errors.New("not an IPv4 address"))
	}
	c := &Conn{fd: fd, local: netip.AddrPortFrom(netip.AddrFrom4(in4.Addr), uint16(in4.Port))}
	c.to.Family = unix.AF_INET
	return c, nil
}

// LocalAddr returns the address the socket is bound to.
func (c *Conn) LocalAddr() netip.AddrPort { return c.local }

// Fd returns the socket's file descriptor.
func (c *Conn) Fd() int { return c.fd }

// JoinGroup joins an IPv4 multicast group on the interface with index
// ifindex (0: the kernel's choice).
func (c *Conn) JoinGroup(group netip.Addr, ifindex int) error {
	return c.membership(unix.IP_ADD_MEMBERSHIP, group, ifindex)
}

// LeaveGroup leaves a group joined with JoinGroup.
func (c *Conn) LeaveGroup(group netip.Addr, ifindex int) error {
	return c.membership(unix.IP_DROP_MEMBERSHIP, group, ifindex)
}

func (c *Conn) membership(opt int, group netip.Addr, ifindex int) error {
	g := group.Unmap()
	if !g.Is4() || !g.IsMulticast() {
		return fmt.Errorf("moldudp64: %v is not an IPv4 multicast group", group)
	}
	m := unix.IPMreqn{Multiaddr: g.As4(), Ifindex: int32(ifindex)}
	if err := unix.SetsockoptIPMreqn(c.fd, unix.IPPROTO_IP, opt, &m); err != nil {
		return fmt.Errorf("moldudp64: multicast group %v on interface %d: %w", group, ifindex, err)
	}
	return nil
}

// WriteTo sends one datagram to an IPv4 address. When the send buffer is
// full it waits up to a second for room. It does not allocate.
func (c *Conn) WriteTo(b []byte, to netip.AddrPort) error {
	if c.closed.Load() {
		return ErrClosed
	}
	ip := to.Addr().Unmap()
	if !ip.Is4() {
		return fmt.Errorf("moldudp64: send to %v: only IPv4 is supported", to)
	}
	c.to.Addr = ip.As4()
	p := (*[2]byte)(unsafe.Pointer(&c.to.Port))
	p[0], p[1] = byte(to.Port()>>8), byte(to.Port())
	var base unsafe.Pointer
	if len(b) > 0 {
		base = unsafe.Pointer(&b[0])
	}
	for waited := false; ; {
		_, _, e := unix.Syscall6(unix.SYS_SENDTO, uintptr(c.fd), uintptr(base), uintptr(len(b)), 0,
			uintptr(unsafe.Pointer(&c.to)), unsafe.Sizeof(c.to))
		switch e {
		case 0:
			return nil
		case unix.EINTR:
			continue
		case unix.EAGAIN:
			if waited {
				return fmt.Errorf("moldudp64: send to %v: send buffer full for 1 s", to)
			}
			waited = true
			if _, err := c.wait(unix.POLLOUT, time.Second); err != nil {
				return err
			}
			continue
		}
		return fmt.Errorf("moldudp64: send to %v: %w", to, e)
	}
}

// Wait blocks until a packet can be read or timeout passes; it reports
// whether one can.
func (c *Conn) Wait(timeout time.Duration) (bool, error) { return c.wait(unix.POLLIN, timeout) }

func (c *Conn) wait(ev int16, timeout time.Duration) (bool, error) {
	fds := [1]unix.PollFd{{Fd: int32(c.fd), Events: ev}}
	return pollFds(fds[:], timeout)
}

func pollFds(fds []unix.PollFd, timeout time.Duration) (bool, error) {
	ts := unix.NsecToTimespec(int64(max(timeout, 0)))
	for {
		n, err := unix.Ppoll(fds, &ts, nil)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return false, fmt.Errorf("moldudp64: ppoll: %w", err)
		}
		for i := range fds {
			if fds[i].Revents&unix.POLLNVAL != 0 {
				return false, ErrClosed
			}
		}
		return n > 0, nil
	}
}

// Read receives up to b.Cap() packets that are already waiting (recvmmsg,
// without blocking) and returns how many; 0 when none is.
func (c *Conn) Read(b *Batch) (int, error) {
	if c.closed.Load() {
		return 0, ErrClosed
	}
	b.reset()
	for {
		n, _, e := unix.Syscall6(unix.SYS_RECVMMSG, uintptr(c.fd), uintptr(unsafe.Pointer(&b.hdrs[0])),
			uintptr(len(b.hdrs)), 0, 0, 0)
		switch e {
		case 0:
			b.n = int(n)
			return int(n), nil
		case unix.EINTR:
			continue
		case unix.EAGAIN:
			return 0, nil
		}
		if c.closed.Load() {
			return 0, ErrClosed
		}
		return 0, fmt.Errorf("moldudp64: recvmmsg: %w", e)
	}
}

// Close shuts the socket down (waking a Wait in progress) and closes it.
func (c *Conn) Close() error {
	if c.closed.Swap(true) {
		return nil
	}
	unix.Shutdown(c.fd, unix.SHUT_RDWR)
	return unix.Close(c.fd)
}

const oobSize = 64 // room for one SCM_TIMESTAMPNS control message

// Batch holds the buffers of one recvmmsg call: up to Cap packets of up to
// Size bytes each, with their senders and kernel receive times. It is
// allocated once and reused; a packet's bytes are valid until the next Read
// into the same Batch.
type Batch struct {
	hdrs  []unix.Mmsghdr
	iovs  []unix.Iovec
	names []unix.RawSockaddrInet4
	buf   []byte
	oob   []byte
	size  int
	n     int
}

// NewBatch allocates a Batch of n packets (0: 64) of size bytes each (0:
// 2048; a longer datagram is cut and reported by Truncated).
func NewBatch(n, size int) *Batch {
	if n <= 0 {
		n = 64
	}
	if size <= 0 {
		size = 2048
	}
	b := &Batch{hdrs: make([]unix.Mmsghdr, n), iovs: make([]unix.Iovec, n), names: make([]unix.RawSockaddrInet4, n),
		buf: make([]byte, n*size), oob: make([]byte, n*oobSize), size: size}
	for i := range b.hdrs {
		b.iovs[i].Base = &b.buf[i*size]
		b.iovs[i].SetLen(size)
		h := &b.hdrs[i].Hdr
		h.Name = (*byte)(unsafe.Pointer(&b.names[i]))
		h.Iov = &b.iovs[i]
		h.Iovlen = 1
		h.Control = &b.oob[i*oobSize]
	}
	return b
}

func (b *Batch) reset() {
	for i := range b.hdrs {
		h := &b.hdrs[i]
		h.Len = 0
		h.Hdr.Namelen = unix.SizeofSockaddrInet4
		h.Hdr.SetControllen(oobSize)
		h.Hdr.Flags = 0
	}
	b.n = 0
}

// Cap returns the most packets one Read receives.
func (b *Batch) Cap() int { return len(b.hdrs) }

// Len returns the number of packets the last Read received.
func (b *Batch) Len() int { return b.n }

// Packet returns packet i's bytes.
func (b *Batch) Packet(i int) []byte {
	off := i * b.size
	return b.buf[off : off+int(b.hdrs[i].Len) : off+b.size]
}

// Truncated reports whether packet i was longer than the Batch's size and
// was cut.
func (b *Batch) Truncated(i int) bool { return b.hdrs[i].Hdr.Flags&unix.MSG_TRUNC != 0 }

// From returns the sender of packet i.
func (b *Batch) From(i int) netip.AddrPort {
	n := &b.names[i]
	p := (*[2]byte)(unsafe.Pointer(&n.Port))
	return netip.AddrPortFrom(netip.AddrFrom4(n.Addr), uint16(p[0])<<8|uint16(p[1]))
}

// Time returns the kernel's receive time of packet i in Unix nanoseconds
// (SO_TIMESTAMPNS), or 0 if the Conn was not opened with Timestamps.
func (b *Batch) Time(i int) int64 {
	ctl := b.oob[i*oobSize : i*oobSize+min(int(b.hdrs[i].Hdr.Controllen), oobSize)]
	// Control messages start 8-byte aligned: oob comes from make and each
	// slot and message length is a multiple of 8.
	for len(ctl) >= unix.SizeofCmsghdr {
		h := (*unix.Cmsghdr)(unsafe.Pointer(&ctl[0]))
		l := int(h.Len)
		if l < unix.SizeofCmsghdr || l > len(ctl) {
			return 0
		}
		if h.Level == unix.SOL_SOCKET && h.Type == unix.SCM_TIMESTAMPNS && l >= unix.CmsgLen(int(unsafe.Sizeof(unix.Timespec{}))) {
			ts := (*unix.Timespec)(unsafe.Pointer(&ctl[unix.CmsgLen(0)]))
			return ts.Nano()
		}
		l = unix.CmsgSpace(l - unix.CmsgLen(0))
		if l >= len(ctl) {
			return 0
		}
		ctl = ctl[l:]
	}
	return 0
}
