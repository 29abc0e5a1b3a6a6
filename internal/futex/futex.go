//go:build linux

// Package futex exposes FUTEX_WAIT and FUTEX_WAKE on words in shared (MAP_SHARED)
// mappings. The private flag is deliberately not used: the waiter and the waker
// are different processes mapping the same file page.
package futex

import (
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

const (
	opWait = 0 // FUTEX_WAIT
	opWake = 1 // FUTEX_WAKE
)

// Wait blocks while *addr == val, for at most timeout (0 means no limit). It
// returns on a wake-up, a value change, a timeout or a signal; callers re-check
// their condition in all cases. addr must be 4-byte aligned.
func Wait(addr *uint32, val uint32, timeout time.Duration) {
	var tsp unsafe.Pointer
	var ts unix.Timespec
	if timeout > 0 {
		ts = unix.NsecToTimespec(int64(timeout))
		tsp = unsafe.Pointer(&ts)
	}
	unix.Syscall6(unix.SYS_FUTEX, uintptr(unsafe.Pointer(addr)), opWait, uintptr(val), uintptr(tsp), 0, 0)
}

// Wake wakes up to n waiters blocked on addr and returns how many woke.
func Wake(addr *uint32, n int) int {
	r, _, _ := unix.Syscall6(unix.SYS_FUTEX, uintptr(unsafe.Pointer(addr)), opWake, uintptr(n), 0, 0, 0)
	return int(r)
}
