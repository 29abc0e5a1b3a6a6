package ring

import (
	"sync"

	"golang.org/x/sys/unix"
)

// membarrier(2) commands (linux/membarrier.h).
const (
	mbCmdGlobalExpedited         = 1 << 1
	mbCmdRegisterGlobalExpedited = 1 << 2
)

// plainPublish reports whether this process publishes with plain stores:
// only on amd64, and only once registered for MEMBARRIER_CMD_GLOBAL_EXPEDITED,
// which lets a peer about to sleep force a full barrier on every CPU
// running this process. Without it every publication is a fenced store
// (XCHG, ~6 ns more per record).
var plainPublish = sync.OnceValue(func() bool {
	if !plainStoresOK {
		return false
	}
	_, _, e := unix.Syscall(unix.SYS_MEMBARRIER, mbCmdRegisterGlobalExpedited, 0, 0)
	return e == 0
})

// heavyBarrier runs a full memory barrier on every CPU currently running a
// thread of a process registered for it (our peer among them). A waiter
// calls it after announcing itself and before re-checking the ring, so a
// peer that published with a plain store and then loaded the waiter count
// without a fence cannot have missed the announcement while the waiter
// misses the publication. It reports false if the call failed.
func heavyBarrier() bool {
	_, _, e := unix.Syscall(unix.SYS_MEMBARRIER, mbCmdGlobalExpedited, 0, 0)
	return e == 0
}
