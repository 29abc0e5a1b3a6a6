package ring

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/mdjournal/mdjournal/internal/clock"
	"github.com/mdjournal/mdjournal/internal/flock"
)

// HeartbeatInterval is how often an attached side refreshes its heartbeat
// (format.md §12: at least every 100 ms). A background goroutine per Ring
// does it, and the idle paths do it too, so a side whose goroutine is busy
// elsewhere (a paced producer sleeping between records) stays alive.
const HeartbeatInterval = 100 * time.Millisecond

// DefaultPeerTimeout is how old a peer's heartbeat may be before the peer
// counts as dead. It must comfortably exceed HeartbeatInterval plus any
// scheduling stall; shorter timeouts detect death sooner.
const DefaultPeerTimeout = 3 * time.Second

// MinPeerTimeout is the smallest peer timeout accepted (a shorter one is
// raised to it): ten heartbeat intervals.
const MinPeerTimeout = 10 * HeartbeatInterval

func peerTimeout(d time.Duration) time.Duration {
	if d == 0 {
		return DefaultPeerTimeout
	}
	return max(d, MinPeerTimeout)
}

// self describes this process as a side block records it.
var self = struct {
	pid    uint32
	start  uint64 // /proc/self/stat field 22; 0 unknown
	pidns  uint64 // inode of /proc/self/ns/pid; 0 unknown
	procOK bool   // /proc belongs to our PID namespace: /proc/PID names our PIDs
}{pid: uint32(os.Getpid())}

func init() {
	if _, s, ok := procStatFile("/proc/self/stat"); ok {
		self.start = s
	}
	if fi, err := os.Stat("/proc/self/ns/pid"); err == nil {
		if st, ok := fi.Sys().(*syscall.Stat_t); ok {
			self.pidns = st.Ino
		}
	}
	// In a child PID namespace that still sees its parent's /proc,
	// /proc/self names us by another number than getpid() returns: then
	// /proc/PID of a peer's (namespace-local) PID is some other process.
	if l, err := os.Readlink("/proc/self"); err == nil && l == strconv.Itoa(os.Getpid()) {
		self.procOK = true
	}
}

// procStatFile returns the state letter and start time (field 22) from a
// /proc/PID/stat file.
func procStatFile(path string) (state byte, start uint64, ok bool) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, 0, false
	}
	// "pid (comm) S ppid ...": comm may hold spaces and parentheses.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 || i+2 >= len(b) {
		return 0, 0, false
	}
	f := strings.Fields(string(b[i+2:]))
	// f[0] is field 3 (state); field 22 (starttime) is f[19].
	if len(f) < 20 || len(f[0]) == 0 {
		return 0, 0, false
	}
	start, err = strconv.ParseUint(f[19], 10, 64)
	if err != nil {
		return 0, 0, false
	}
	return f[0][0], start, true
}

// pidGone reports whether the process recorded as (pid, start) certainly no
// longer runs. It is only consulted when the recording side lives in our PID
// namespace (same pidns inode): elsewhere a PID names some other process or
// none, and only the heartbeat counts. kill(pid, 0) failing with ESRCH, a
// zombie, or (where /proc is ours) another start time (the PID was reused)
// all mean gone. It reads /proc: call it on idle paths only.
func pidGone(pid uint32, start uint64) bool {
	if pid == 0 || pid == SealedPID || pid > 1<<22 {
		return true
	}
	if !flock.Alive(int(pid)) {
		return true
	}
	if !self.procOK {
		return false
	}
	st, s, ok := procStatFile("/proc/" + strconv.FormatUint(uint64(pid), 10) + "/stat")
	if !ok {
		return false
	}
	if st == 'Z' || st == 'X' {
		return true
	}
	return start != 0 && s != start
}

// presence is a verdict about one side's process.
type presence struct {
	present bool
	why     string // for messages: why the side is (not) present
}

// presentSide reports whether the process recorded in s is alive: its
// heartbeat is non-zero and no older than timeout (nor implausibly far in
// the future), and, when it shares our PID namespace, its PID still names
// it. A side that stopped beating (left cleanly) is not present.
func presentSide(s side, timeout time.Duration) presence {
	pid := s.pid()
	hb := s.heartbeat()
	if hb == 0 {
		return presence{false, fmt.Sprintf("PID %d not beating", pid)}
	}
	age := time.Duration(clock.Nanotime() - hb)
	if age > timeout {
		return presence{false, fmt.Sprintf("PID %d heartbeat %v old (timeout %v)", pid, age.Round(time.Millisecond), timeout)}
	}
	if age < -timeout {
		return presence{false, fmt.Sprintf("PID %d heartbeat %v in the future (another clock?)", pid, (-age).Round(time.Millisecond))}
	}
	if ns := s.pidns(); ns != 0 && ns == self.pidns && pidGone(pid, s.start()) {
		return presence{false, fmt.Sprintf("PID %d is gone", pid)}
	}
	return presence{true, fmt.Sprintf("PID %d alive (heartbeat %v old)", pid, age.Round(time.Millisecond))}
}
