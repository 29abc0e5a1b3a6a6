package ring

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mdjournal/mdjournal/internal/clock"
	"github.com/mdjournal/mdjournal/internal/flock"
	"github.com/mdjournal/mdjournal/internal/mmap"
	"github.com/mdjournal/mdjournal/journal"
	"github.com/mdjournal/mdjournal/wait"
)

// DefaultDir is where a ring named without a directory lives: tmpfs, so the
// data area is plain shared memory and never written back to a disk.
const DefaultDir = "/dev/shm"

// peerCheckEvery is how many idle iterations (spin, yield, backoff) pass
// between two looks at the clock in a blocking call, and peerCheckInterval
// how much idle time passes between two liveness checks of the peer. The
// check reads /proc/PID/stat (a few system calls): done every 256 polls it
// landed inside message latency (ring p99 157 µs against 9 µs when polling),
// so it is paced by time. A futex waiter checks after every FUTEX_WAIT,
// which is bounded by wait.FutexTimeout.
const (
	peerCheckEvery    = 256
	peerCheckInterval = 20 * time.Millisecond
)

// idleCheck decides when an idle loop checks its peer: at most once per
// peerCheckInterval of idling, looking at the clock only every
// peerCheckEvery iterations (so a busy stream never pays for it).
type idleCheck struct{ next int64 }

// due is called with the loop's iteration count.
func (c *idleCheck) due(i int) bool {
	if i%peerCheckEvery != 0 {
		return false
	}
	now := clock.Nanotime()
	if c.next == 0 {
		c.next = now + int64(peerCheckInterval)
		return false
	}
	if now < c.next {
		return false
	}
	c.next = now + int64(peerCheckInterval)
	return true
}

// blockFor is how long one FUTEX_WAIT may last: wait.FutexTimeout, or less
// if the deadline is nearer (never 0, which would mean "no limit").
func blockFor(deadline time.Time) time.Duration {
	d := wait.FutexTimeout
	if !deadline.IsZero() {
		if u := time.Until(deadline); u < d {
			d = max(u, time.Microsecond)
		}
	}
	return d
}

// Options tune Create. The zero value (or nil) is valid.
type Options struct {
	// Perm is the file mode of a new ring file (default 0600). Both sides
	// write the header, so both need write permission.
	Perm os.FileMode
	// NoPrefault skips prefaulting the mapping at Create.
	NoPrefault bool
}

// Ring is an open ring file. One Ring may serve as producer, consumer or
// (in tests and benchmarks) both, each through its own side handle.
type Ring struct {
	path     string
	m        []byte // whole mapping: header page + data area
	h        header
	data     []byte // data area, len == capacity
	capacity uint64

	mu     sync.Mutex
	closed bool
	sides  []interface{ detach() }
}

// resolve puts a bare name into DefaultDir.
func resolve(path string) string {
	if !strings.ContainsRune(path, '/') {
		return filepath.Join(DefaultDir, path)
	}
	return path
}

// Create makes a new, empty ring file at path (a bare name goes into
// DefaultDir) with a data area of capacity bytes, a power of two in
// [MinCapacity, MaxCapacity]. Either side may create the ring; the other
// attaches with Open. The file is built under a temporary name and renamed
// into place, so Open never sees a half-initialised header. An existing file
// at path is replaced: processes still attached to it keep the old (now
// unlinked) ring, so create before the peer opens.
func Create(path string, capacity int, opts *Options) (*Ring, error) {
	if opts == nil {
		opts = &Options{}
	}
	path = resolve(path)
	c := uint64(capacity)
	if capacity < MinCapacity || c > MaxCapacity || c&(c-1) != 0 {
		return nil, fmt.Errorf("ring create %s: capacity %d is not a power of two in [%d,%d]", path, capacity, MinCapacity, uint64(MaxCapacity))
	}
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return nil, fmt.Errorf("ring create: %w", err)
	}
	tmp := f.Name()
	fail := func(err error) (*Ring, error) {
		f.Close()
		os.Remove(tmp)
		return nil, fmt.Errorf("ring create %s: %w", path, err)
	}
	perm := opts.Perm
	if perm == 0 {
		perm = 0o600
	}
	if err := f.Chmod(perm); err != nil {
		return fail(err)
	}
	size := HeaderSize + int(c)
	if err := mmap.Reserve(f, int64(size)); err != nil {
		return fail(err)
	}
	m, err := mmap.Map(f, size, true)
	if err != nil {
		return fail(err)
	}
	initHeader(m, c, time.Now().UnixNano())
	if !opts.NoPrefault {
		if err := mmap.PopulateWrite(m); err != nil {
			mmap.Unmap(m)
			return fail(err)
		}
	}
	if err := os.Rename(tmp, path); err != nil {
		mmap.Unmap(m)
		return fail(err)
	}
	f.Close()
	return newRing(path, m), nil
}

// Open maps an existing ring file (a bare name is looked up in DefaultDir)
// and validates its header. Damage is a *journal.CorruptionError wrapping
// one of this package's corruption sentinels.
func Open(path string) (*Ring, error) {
	path = resolve(path)
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if st.Size() < HeaderSize {
		return nil, journal.Corrupt(path, st.Size(), ErrTruncated, "file is %d bytes, shorter than the %d-byte header", st.Size(), HeaderSize)
	}
	// Validate a copy of the header first, then map exactly header and
	// data area (a longer file's excess is ignored).
	hb := make([]byte, HeaderSize)
	if _, err := f.ReadAt(hb, 0); err != nil {
		return nil, fmt.Errorf("ring open %s: %w", path, err)
	}
	if err := (header{hb}).check(path, st.Size()); err != nil {
		return nil, err
	}
	size := HeaderSize + int((header{hb}).capacity())
	m, err := mmap.Map(f, size, true)
	if err != nil {
		return nil, err
	}
	// The peer may have moved the positions since; check the live header.
	if err := (header{m[:HeaderSize:HeaderSize]}).check(path, st.Size()); err != nil {
		mmap.Unmap(m)
		return nil, err
	}
	return newRing(path, m), nil
}

func newRing(path string, m []byte) *Ring {
	h := header{m[:HeaderSize:HeaderSize]}
	c := h.capacity()
	return &Ring{path: path, m: m, h: h, capacity: c, data: m[HeaderSize : HeaderSize+c : HeaderSize+c]}
}

// Path is the ring file's path.
func (r *Ring) Path() string { return r.path }

// Capacity is the size of the data area in bytes.
func (r *Ring) Capacity() int { return int(r.capacity) }

// MaxPayload is the largest record this ring accepts (Capacity/2 - 8).
func (r *Ring) MaxPayload() int { return MaxPayload(int(r.capacity)) }

// Close detaches every side attached through r (marking them closed) and
// unmaps the file. Views returned by a consumer are invalid afterwards.
func (r *Ring) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return nil
	}
	for _, s := range r.sides {
		s.detach()
	}
	r.closed = true
	err := mmap.Unmap(r.m)
	r.m, r.data = nil, nil
	return err
}

// Remove deletes the ring file. Attached processes keep their mapping.
func (r *Ring) Remove() error { return os.Remove(r.path) }

func (r *Ring) dataSignal() wait.Signal {
	return wait.Signal{Seq: r.h.u32(OffDataSeq), Waiters: r.h.u32(OffDataWaiters)}
}

func (r *Ring) spaceSignal() wait.Signal {
	return wait.Signal{Seq: r.h.u32(OffSpaceSeq), Waiters: r.h.u32(OffSpaceWaiters)}
}

// attach claims one side for this process: it fails with *BusyError if a
// live process is attached there, otherwise it records our PID and start
// time and marks the side attached. waiters is the side's own announced-
// waiter word, reset because a dead predecessor may have left it non-zero.
func (r *Ring) attach(off int, name string, waiters int, d interface{ detach() }) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return ErrClosed
	}
	s := side{r.h, off}
	me := uint32(os.Getpid())
	for {
		pid := s.pid()
		if pid != 0 && s.state() == StateAttached && alive(pid, s.start()) {
			return &BusyError{Path: r.path, Side: name, PID: int(pid)}
		}
		// Take the PID word with a CAS so two processes racing for a free
		// side cannot both win.
		if atomic.CompareAndSwapUint32(r.h.u32(off+sideOffPID), pid, me) {
			break
		}
	}
	// Order: state none, start time, PID, state attached; a checker that
	// sees "attached" then reads the matching PID and start time.
	s.setState(StateNone)
	atomic.StoreUint64(r.h.u64(off+sideOffStart), selfStart)
	atomic.StoreUint32(r.h.u32(off+sideOffPID), me)
	atomic.StoreUint32(r.h.u32(waiters), 0)
	s.setState(StateAttached)
	r.sides = append(r.sides, d)
	return nil
}

// selfStart is this process's start time in clock ticks after boot.
var selfStart, _ = procStart(os.Getpid())

// procStat returns the state letter and start time (field 22) of pid from
// /proc/PID/stat.
func procStat(pid int) (state byte, start uint64, ok bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
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
	if len(f) < 20 {
		return 0, 0, false
	}
	start, err = strconv.ParseUint(f[19], 10, 64)
	if err != nil {
		return 0, 0, false
	}
	return f[0][0], start, true
}

func procStart(pid int) (uint64, bool) {
	_, s, ok := procStat(pid)
	return s, ok
}

// alive reports whether the process recorded as (pid, start) still runs:
// kill(pid, 0) must find it (flock.Alive), and where /proc tells, it must
// not be a zombie and must have the recorded start time (else the PID was
// reused). start 0 means unknown (e.g. a writer without /proc).
// It is only called on idle paths.
func alive(pid uint32, start uint64) bool {
	if !flock.Alive(int(pid)) {
		return false
	}
	st, s, ok := procStat(int(pid))
	if !ok {
		return true // no /proc view of it (other PID namespace): trust kill(2)
	}
	if st == 'Z' || st == 'X' {
		return false
	}
	return start == 0 || s == start
}
