package benchkit

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// POSIX message queues through the raw system calls: x/sys/unix has the
// numbers (SYS_MQ_*) but no wrappers, and glibc's mq_* are thin wrappers
// anyway, except that they strip the name's leading '/', which the kernel
// call does not take: names here never have one.

// mqAttr is struct mq_attr.
type mqAttr struct {
	Flags, Maxmsg, Msgsize, Curmsgs int64
	_                               [4]int64
}

func mqOpen(name string, flags int, mode uint32, attr *mqAttr) (int, error) {
	p, err := unix.BytePtrFromString(name)
	if err != nil {
		return -1, err
	}
	fd, _, e := unix.Syscall6(unix.SYS_MQ_OPEN, uintptr(unsafe.Pointer(p)), uintptr(flags), uintptr(mode), uintptr(unsafe.Pointer(attr)), 0, 0)
	if e != 0 {
		return -1, e
	}
	return int(fd), nil
}

// MQUnlink removes a message queue name; ENOENT means it does not exist.
func MQUnlink(name string) error { return mqUnlink(name) }

// MQExists reports whether a message queue of that name exists (tests use
// it to check that nothing is left behind).
func MQExists(name string) bool {
	fd, err := mqOpen(name, unix.O_RDONLY|unix.O_CLOEXEC, 0, nil)
	if err != nil {
		return err != unix.ENOENT
	}
	unix.Close(fd)
	return true
}

func mqUnlink(name string) error {
	p, err := unix.BytePtrFromString(name)
	if err != nil {
		return err
	}
	if _, _, e := unix.Syscall(unix.SYS_MQ_UNLINK, uintptr(unsafe.Pointer(p)), 0, 0); e != 0 {
		return e
	}
	return nil
}

// mqSend blocks while the queue is full (no timeout, priority 0).
func mqSend(fd int, b []byte) error {
	var p unsafe.Pointer
	if len(b) > 0 {
		p = unsafe.Pointer(&b[0])
	}
	if _, _, e := unix.Syscall6(unix.SYS_MQ_TIMEDSEND, uintptr(fd), uintptr(p), uintptr(len(b)), 0, 0, 0); e != 0 {
		return e
	}
	return nil
}

// mqReceive blocks while the queue is empty; b must hold mq_msgsize bytes.
func mqReceive(fd int, b []byte) (int, error) {
	n, _, e := unix.Syscall6(unix.SYS_MQ_TIMEDRECEIVE, uintptr(fd), uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)), 0, 0, 0)
	if e != 0 {
		return 0, e
	}
	return int(n), nil
}

func mqSetNonblock(fd int) error {
	a := mqAttr{Flags: unix.O_NONBLOCK}
	if _, _, e := unix.Syscall(unix.SYS_MQ_GETSETATTR, uintptr(fd), uintptr(unsafe.Pointer(&a)), 0); e != 0 {
		return e
	}
	return nil
}
