package benchkit

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"sync/atomic"

	"golang.org/x/sys/unix"
)

// fdConn moves messages over blocking file descriptors with raw read and
// write system calls. On a byte stream (pipe, FIFO, stream socket) a
// message is exactly size bytes and Recv reads until it has them; on a
// datagram socket one read is one message.
type fdConn struct {
	rfd, wfd int
	size     int
	stream   bool
	fds      []int // closed by Close
}

func (c *fdConn) Send(b []byte) error {
	for off := 0; off < len(b); {
		n, err := unix.Write(c.wfd, b[off:])
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return err
		}
		if !c.stream && n != len(b) {
			return fmt.Errorf("short datagram: %d of %d bytes", n, len(b))
		}
		off += n
	}
	return nil
}

func (c *fdConn) Recv(b []byte) (int, error) {
	if !c.stream {
		for {
			n, err := unix.Read(c.rfd, b)
			if err == unix.EINTR {
				continue
			}
			if err == nil && n == 0 {
				return 0, io.EOF // shut down (a zero-length datagram is never sent)
			}
			return n, err
		}
	}
	for off := 0; off < c.size; {
		n, err := unix.Read(c.rfd, b[off:c.size])
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return off, err
		}
		if n == 0 {
			return off, io.EOF
		}
		off += n
	}
	return c.size, nil
}

func (c *fdConn) Close() error {
	for _, fd := range c.fds {
		unix.Close(fd)
	}
	c.fds = nil
	return nil
}

// shutdown unblocks the parent's socket calls on abort.
func (c *fdConn) shutdown() { unix.Shutdown(c.rfd, unix.SHUT_RDWR) }

// childFile wraps a blocking descriptor for exec.Cmd.ExtraFiles (os.NewFile
// leaves a blocking descriptor blocking).
func childFile(fd int, name string) *os.File { return os.NewFile(uintptr(fd), name) }

func fdChild(s Spec, args []string) (Conn, error) {
	// pipe: fd 3 reads parent → child, fd 4 writes child → parent.
	// unix-dgram: fd 3 is the child's end of the socket pair.
	if s.Transport == "pipe" {
		return &fdConn{rfd: 3, wfd: 4, size: s.Size, stream: true, fds: []int{3, 4}}, nil
	}
	return &fdConn{rfd: 3, wfd: 3, size: s.Size, fds: []int{3}}, nil
}

func newPipeParent(s Spec) (*Parent, error) {
	var p2c, c2p [2]int
	if err := unix.Pipe2(p2c[:], unix.O_CLOEXEC); err != nil {
		return nil, err
	}
	if err := unix.Pipe2(c2p[:], unix.O_CLOEXEC); err != nil {
		unix.Close(p2c[0])
		unix.Close(p2c[1])
		return nil, err
	}
	c := &fdConn{rfd: c2p[0], wfd: p2c[1], size: s.Size, stream: true, fds: []int{c2p[0], p2c[1]}}
	return &Parent{Files: []*os.File{childFile(p2c[0], "p2c"), childFile(c2p[1], "c2p")},
		attach: func() (Conn, error) { return c, nil }}, nil
}

func newUnixDgramParent(s Spec) (*Parent, error) {
	sv, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	c := &fdConn{rfd: sv[0], wfd: sv[0], size: s.Size, fds: []int{sv[0]}}
	return &Parent{Files: []*os.File{childFile(sv[1], "dgram")},
		attach: func() (Conn, error) { return c, nil }, abort: c.shutdown}, nil
}

// ---- FIFO ----------------------------------------------------------------
//
// Two named pipes in the scratch directory. The parent opens its read end
// non-blocking before the child starts (so the child's write open does not
// wait); the child opens its read end O_RDWR (never blocks on Linux, and no
// premature EOF before the parent's writer exists). Both names are unlinked
// once both sides hold them.

func newFIFOParent(s Spec, d Dirs) (*Parent, error) {
	a := filepath.Join(d.Scratch, "fifo-p2c")
	b := filepath.Join(d.Scratch, "fifo-c2p")
	rm := func() { os.Remove(a); os.Remove(b) }
	if err := unix.Mkfifo(a, 0o600); err != nil {
		return nil, err
	}
	if err := unix.Mkfifo(b, 0o600); err != nil {
		rm()
		return nil, err
	}
	rb, err := unix.Open(b, unix.O_RDONLY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		rm()
		return nil, err
	}
	c := &fdConn{rfd: rb, wfd: -1, size: s.Size, stream: true, fds: []int{rb}}
	p := &Parent{Args: []string{a, b}, unlink: []func(){rm}}
	p.attach = func() (Conn, error) {
		wa, err := unix.Open(a, unix.O_WRONLY|unix.O_CLOEXEC, 0) // the child holds a reader
		if err != nil {
			c.Close()
			return nil, err
		}
		c.wfd = wa
		c.fds = append(c.fds, wa)
		if err := unix.SetNonblock(rb, false); err != nil {
			c.Close()
			return nil, err
		}
		return c, nil
	}
	return p, nil
}

func fifoChild(s Spec, args []string) (Conn, error) {
	if len(args) != 2 {
		return nil, fmt.Errorf("fifo: want P2C C2P")
	}
	ra, err := unix.Open(args[0], unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	wb, err := unix.Open(args[1], unix.O_WRONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		unix.Close(ra)
		return nil, err
	}
	return &fdConn{rfd: ra, wfd: wb, size: s.Size, stream: true, fds: []int{ra, wb}}, nil
}

// ---- stream sockets ------------------------------------------------------

func listenParent(s Spec, domain int, sa unix.Sockaddr, args func(lfd int) ([]string, error), unlink []func()) (*Parent, error) {
	lfd, err := unix.Socket(domain, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	if err := unix.Bind(lfd, sa); err != nil {
		unix.Close(lfd)
		return nil, err
	}
	if err := unix.Listen(lfd, 1); err != nil {
		unix.Close(lfd)
		return nil, err
	}
	a, err := args(lfd)
	if err != nil {
		unix.Close(lfd)
		return nil, err
	}
	var cfd atomic.Int64
	cfd.Store(-1)
	p := &Parent{Args: a, unlink: unlink}
	p.attach = func() (Conn, error) {
		defer unix.Close(lfd)
		fd, _, err := unix.Accept4(lfd, unix.SOCK_CLOEXEC) // the child connected before READY
		if err != nil {
			return nil, err
		}
		if domain == unix.AF_INET {
			unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1)
		}
		cfd.Store(int64(fd))
		return &fdConn{rfd: fd, wfd: fd, size: s.Size, stream: true, fds: []int{fd}}, nil
	}
	p.abort = func() {
		if fd := cfd.Load(); fd >= 0 {
			unix.Shutdown(int(fd), unix.SHUT_RDWR)
		}
	}
	return p, nil
}

func newUnixStreamParent(s Spec, d Dirs) (*Parent, error) {
	path := filepath.Join(d.Scratch, "stream.sock")
	if len(path) >= 108 {
		return nil, fmt.Errorf("socket path %s is too long for sun_path; set TMPDIR to a shorter directory", path)
	}
	return listenParent(s, unix.AF_UNIX, &unix.SockaddrUnix{Name: path},
		func(int) ([]string, error) { return []string{path}, nil }, []func(){func() { os.Remove(path) }})
}

func unixStreamChild(s Spec, args []string) (Conn, error) {
	if len(args) != 1 {
		return nil, fmt.Errorf("unix-stream: want PATH")
	}
	return dialChild(s, unix.AF_UNIX, &unix.SockaddrUnix{Name: args[0]})
}

// newTCPParent listens on 127.0.0.1 only, on a port the kernel picks.
func newTCPParent(s Spec) (*Parent, error) {
	return listenParent(s, unix.AF_INET, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}, func(lfd int) ([]string, error) {
		sa, err := unix.Getsockname(lfd)
		if err != nil {
			return nil, err
		}
		return []string{strconv.Itoa(sa.(*unix.SockaddrInet4).Port)}, nil
	}, nil)
}

func tcpChild(s Spec, args []string) (Conn, error) {
	if len(args) != 1 {
		return nil, fmt.Errorf("tcp: want PORT")
	}
	port, err := strconv.Atoi(args[0])
	if err != nil {
		return nil, err
	}
	return dialChild(s, unix.AF_INET, &unix.SockaddrInet4{Port: port, Addr: [4]byte{127, 0, 0, 1}})
}

func dialChild(s Spec, domain int, sa unix.Sockaddr) (Conn, error) {
	fd, err := unix.Socket(domain, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	for {
		err = unix.Connect(fd, sa)
		if err != unix.EINTR {
			break
		}
	}
	if err != nil {
		unix.Close(fd)
		return nil, err
	}
	if domain == unix.AF_INET {
		unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1)
	}
	return &fdConn{rfd: fd, wfd: fd, size: s.Size, stream: true, fds: []int{fd}}, nil
}

// ---- POSIX message queues ----------------------------------------------

type mqConn struct {
	r, w int
	fds  []int
}

func (c *mqConn) Send(b []byte) error {
	for {
		err := mqSend(c.w, b)
		if err != unix.EINTR {
			return err
		}
	}
}

func (c *mqConn) Recv(b []byte) (int, error) {
	for {
		n, err := mqReceive(c.r, b)
		if err == unix.EINTR {
			continue
		}
		if err == nil && n == 0 {
			return 0, errAborted // the abort path's empty message
		}
		return n, err
	}
}

func (c *mqConn) Close() error {
	for _, fd := range c.fds {
		unix.Close(fd)
	}
	c.fds = nil
	return nil
}

// mqDepth is the queue length: the default unprivileged limit
// (/proc/sys/fs/mqueue/msg_max).
const mqDepth = 10

// ErrUnavailable marks a transport this kernel or sandbox does not offer.
var ErrUnavailable = errors.New("transport unavailable")

func newMQParent(s Spec, d Dirs) (*Parent, error) {
	a, b := d.MQ+"p2c", d.MQ+"c2p"
	attr := mqAttr{Maxmsg: mqDepth, Msgsize: int64(s.Size)}
	wa, err := mqOpen(a, unix.O_CREAT|unix.O_EXCL|unix.O_RDWR|unix.O_CLOEXEC, 0o600, &attr)
	if err != nil {
		if err == unix.ENOSYS || err == unix.EPERM || err == unix.EACCES {
			err = fmt.Errorf("%w: mq_open: %v", ErrUnavailable, err)
		}
		return nil, err
	}
	rb, err := mqOpen(b, unix.O_CREAT|unix.O_EXCL|unix.O_RDWR|unix.O_CLOEXEC, 0o600, &attr)
	if err != nil {
		unix.Close(wa)
		mqUnlink(a)
		return nil, err
	}
	c := &mqConn{r: rb, w: wa, fds: []int{wa, rb}}
	p := &Parent{Args: []string{a, b}, attach: func() (Conn, error) { return c, nil },
		unlink: []func(){func() { mqUnlink(a) }, func() { mqUnlink(b) }}}
	// Abort: from now on neither queue blocks; take one message off the
	// child-bound queue (a send blocked on a full queue completes) and put
	// an empty one on ours (a blocked receive returns it: errAborted).
	p.abort = func() {
		mqSetNonblock(wa)
		mqSetNonblock(rb)
		var buf [64 << 10]byte
		mqReceive(wa, buf[:])
		mqSend(rb, nil)
	}
	return p, nil
}

func mqChild(s Spec, args []string) (Conn, error) {
	if len(args) != 2 {
		return nil, fmt.Errorf("mq: want P2C C2P")
	}
	ra, err := mqOpen(args[0], unix.O_RDWR|unix.O_CLOEXEC, 0, nil)
	if err != nil {
		return nil, err
	}
	wb, err := mqOpen(args[1], unix.O_RDWR|unix.O_CLOEXEC, 0, nil)
	if err != nil {
		unix.Close(ra)
		return nil, err
	}
	return &mqConn{r: ra, w: wb, fds: []int{ra, wb}}, nil
}
