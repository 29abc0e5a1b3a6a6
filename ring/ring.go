package ring

import (
	cryptorand "crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/mdjournal/mdjournal/internal/clock"
	"github.com/mdjournal/mdjournal/internal/mmap"
	"github.com/mdjournal/mdjournal/journal"
	"github.com/mdjournal/mdjournal/wait"
)

// DefaultDir is where a ring named without a directory lives: tmpfs, so the
// data area is plain shared memory and never written back to a disk.
const DefaultDir = "/dev/shm"

// peerCheckEvery is how many idle iterations (spin, yield, backoff) pass
// between two looks at the clock in a blocking call, and peerCheckInterval
// how much idle time passes between two checks of the peer, the deadline
// and our own heartbeat. The check may read /proc/PID/stat (a few system
// calls): done every 256 polls it landed inside message latency, so it is
// paced by time. A futex waiter checks after every FUTEX_WAIT, which is
// bounded by wait.FutexTimeout.
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

// Options tune the creation of a ring file. The zero value is valid.
type Options struct {
	// Perm is the file mode of a new ring file (default 0600: only the
	// owner may attach). Both sides write the file, so both need write
	// permission. The mode is set exactly (umask does not apply).
	Perm os.FileMode
	// NoPrefault skips prefaulting the mapping at creation.
	NoPrefault bool
	// HugePages asks for 2 MiB (the mount's) huge pages: the ring's
	// directory must be a hugetlbfs mount with enough free pages, else
	// creation fails with ErrNoHugePages. A ring created on hugetlbfs uses
	// huge pages whether or not this is set.
	HugePages bool
	// Replace lets creation replace a leftover ring file at the path (no
	// live producer: see format.md §12 "Generations"); without it a
	// leftover is refused with a *LeftoverError. A ring with a live
	// producer is never replaced (*BusyError).
	Replace bool
}

// Ring is an open ring file: one generation, mapped. One Ring may serve as
// producer, consumer or (in tests and benchmarks) both, each through its own
// side handle.
type Ring struct {
	path     string
	f        *os.File // kept open: fstat for truncation, flock to replace or remove
	m        []byte   // whole mapping (rounded up to the huge page size on hugetlbfs)
	mbase    uintptr  // &m[0], to recognise faults in the mapping
	mlen     uintptr
	h        header
	data     []byte // data area, len == capacity
	base     unsafe.Pointer
	capacity uint64
	gen      uint64
	huge     bool

	mu     sync.Mutex
	closed bool
	sides  []interface{ detach() }
	beats  []side // attached sides whose heartbeat the keeper refreshes
	keepr  chan struct{}
	kdone  chan struct{}
	trunc  atomic.Pointer[journal.CorruptionError] // found truncated by the keeper
}

// resolve puts a bare name into DefaultDir.
func resolve(path string) string {
	if !strings.ContainsRune(path, '/') {
		return filepath.Join(DefaultDir, path)
	}
	return path
}

func checkCapacity(path string, capacity int) error {
	c := uint64(capacity)
	if capacity < MinCapacity || c > MaxCapacity || c&(c-1) != 0 {
		return fmt.Errorf("ring create %s: capacity %d is not a power of two in [%d,%d]", path, capacity, MinCapacity, uint64(MaxCapacity))
	}
	return nil
}

// Create makes a new ring file, a new generation with no side attached, at
// path (a bare name goes into DefaultDir) with a data area of capacity
// bytes, a power of two in [MinCapacity, MaxCapacity]. The file is built
// under a temporary name and linked into place, so Open never sees a
// half-initialised header. If a file exists at path, Create fails unless
// opts.Replace is set and the file is a ring without a live producer, which
// is then replaced atomically (processes still attached keep the old,
// unlinked generation). NewProducer is Create plus the producer's attach in
// one step, which is what a producer normally wants.
func Create(path string, capacity int, opts Options) (*Ring, error) {
	path = resolve(path)
	if err := checkCapacity(path, capacity); err != nil {
		return nil, err
	}
	t, err := newTemp(path, capacity, &opts)
	if err != nil {
		return nil, err
	}
	if err := publish(t, path, opts.Replace, roleNone, DefaultPeerTimeout); err != nil {
		t.r.Close()
		os.Remove(t.name)
		return nil, err
	}
	return t.r, nil
}

// Open maps an existing ring file (a bare name is looked up in DefaultDir)
// and validates its header. The path must name a regular file: a symbolic
// link, FIFO or device is refused with ErrNotRegular, without blocking.
// Damage is a *journal.CorruptionError wrapping one of this package's
// corruption sentinels. Open attaches no side.
func Open(path string) (*Ring, error) {
	path = resolve(path)
	f, err := openFile(path)
	if err != nil {
		return nil, err
	}
	r, err := mapFile(f, path)
	if err != nil {
		f.Close()
		return nil, err
	}
	return r, nil
}

// openFile opens path for use as a ring: read-write, never following a
// final symbolic link, never blocking (a FIFO would block a plain open),
// and only if it is a regular file.
func openFile(path string) (*os.File, error) {
	fd, err := unix.Open(path, unix.O_RDWR|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		switch err {
		case unix.ELOOP:
			return nil, fmt.Errorf("ring open %s: %w: it is a symbolic link", path, ErrNotRegular)
		case unix.EISDIR:
			return nil, fmt.Errorf("ring open %s: %w: it is a directory", path, ErrNotRegular)
		}
		return nil, &os.PathError{Op: "open", Path: path, Err: err}
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		unix.Close(fd)
		return nil, &os.PathError{Op: "fstat", Path: path, Err: err}
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		unix.Close(fd)
		return nil, fmt.Errorf("ring open %s: %w (mode %#o)", path, ErrNotRegular, st.Mode)
	}
	return os.NewFile(uintptr(fd), path), nil
}

// hugePageSize returns the huge page size if f lives on hugetlbfs, else 0.
func hugePageSize(f *os.File) int {
	var s unix.Statfs_t
	if err := unix.Fstatfs(int(f.Fd()), &s); err != nil || s.Type != unix.HUGETLBFS_MAGIC {
		return 0
	}
	return int(s.Bsize)
}

func roundUp(n, to int) int {
	if to <= 0 {
		return n
	}
	return (n + to - 1) / to * to
}

// mapFile validates and maps an opened ring file. It takes ownership of f
// on success.
func mapFile(f *os.File, path string) (*Ring, error) {
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
	hp := hugePageSize(f)
	m, err := mmap.Map(f, roundUp(size, hp), true)
	if err != nil {
		return nil, err
	}
	r := newRing(path, f, m, size, hp != 0)
	// The peers may have moved the positions since; check the live header
	// (under the fault guard: the file may shrink right now).
	if err := r.guarded(func() error { return r.h.check(path, st.Size()) }); err != nil {
		r.unmap()
		return nil, err
	}
	return r, nil
}

func newRing(path string, f *os.File, m []byte, size int, huge bool) *Ring {
	h := header{m[:HeaderSize:HeaderSize]}
	c := h.capacity()
	r := &Ring{path: path, f: f, m: m, h: h, capacity: c, huge: huge,
		mbase: uintptr(unsafe.Pointer(&m[0])), mlen: uintptr(len(m)),
		data: m[HeaderSize:size:size]}
	r.base = unsafe.Pointer(&r.data[0])
	r.gen = h.generation()
	return r
}

// Path is the ring file's path.
func (r *Ring) Path() string { return r.path }

// Capacity is the size of the data area in bytes.
func (r *Ring) Capacity() int { return int(r.capacity) }

// MaxPayload is the largest record this ring accepts (Capacity/2 - 8).
func (r *Ring) MaxPayload() int { return MaxPayload(int(r.capacity)) }

// Generation is the ring's generation identity: a random non-zero number
// written when the file was created, never reused. A new ring file at the
// same path is a new generation.
func (r *Ring) Generation() uint64 { return r.gen }

// HugePages reports whether the ring lives on hugetlbfs (huge pages).
func (r *Ring) HugePages() bool { return r.huge }

// Close detaches every side attached through r (marking them closed, no
// lingering), stops their heartbeats and unmaps the file. Views returned by
// a consumer are invalid afterwards. It must not run concurrently with a
// call on one of r's sides.
func (r *Ring) Close() error {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return nil
	}
	for _, s := range r.sides {
		s.detach()
	}
	r.guarded(func() error {
		for len(r.beats) > 0 {
			r.stopBeating(r.beats[0])
		}
		return nil
	})
	r.closed = true
	stop, done := r.keepr, r.kdone
	r.mu.Unlock()
	if stop != nil {
		close(stop)
		<-done
	}
	return r.unmap()
}

func (r *Ring) unmap() error {
	err := mmap.Unmap(r.m)
	r.m, r.data, r.base = nil, nil, nil
	if r.f != nil {
		r.f.Close()
		r.f = nil
	}
	return err
}

// Remove deletes the ring file if the path still names this generation
// (not a newer one that replaced it). Attached processes keep their
// mapping. It works before and after Close.
func (r *Ring) Remove() error {
	f, err := openFile(r.path)
	if err != nil {
		return err
	}
	defer f.Close()
	var b [8]byte
	if _, err := f.ReadAt(b[:], offGeneration); err != nil || binary.LittleEndian.Uint64(b[:]) != r.gen {
		return fmt.Errorf("ring remove %s: %w (the path names another ring generation now)", r.path, os.ErrNotExist)
	}
	removed, err := removeIfSame(r.path, f, time.Now().Add(2*time.Second))
	if err == nil && !removed {
		return fmt.Errorf("ring remove %s: %w (the path changed meanwhile)", r.path, os.ErrNotExist)
	}
	return err
}

// guarded runs f with memory faults turned into ErrTruncated errors.
func (r *Ring) guarded(f func() error) (err error) {
	defer r.catch(&err, "ring", debug.SetPanicOnFault(true))
	return f()
}

// catch is the deferred half of every fault guard: it restores the
// goroutine's panic-on-fault setting and turns a fault inside the mapping
// (the file was truncated under us) into a *journal.CorruptionError
// wrapping ErrTruncated. Any other panic continues.
func (r *Ring) catch(err *error, who string, old bool) {
	debug.SetPanicOnFault(old)
	if e := recover(); e != nil {
		*err = r.faultError(e, who)
	}
}

func (r *Ring) faultError(e any, who string) error {
	if re, ok := e.(runtime.Error); ok {
		if a, ok := e.(interface{ Addr() uintptr }); ok {
			if addr := a.Addr(); addr >= r.mbase && addr < r.mbase+r.mlen {
				ce := journal.Corrupt(r.path, int64(addr-r.mbase), ErrTruncated,
					"ring file truncated under the %s: memory fault at this offset of the mapping (%v)", who, re)
				r.trunc.CompareAndSwap(nil, ce)
				return ce
			}
		}
	}
	panic(e)
}

// truncated returns the truncation found (by a fault, the keeper, or now
// with fstat), if any. Idle paths only: it makes a system call.
func (r *Ring) truncated() error {
	if ce := r.trunc.Load(); ce != nil {
		return ce
	}
	if !r.sizeOK() {
		return r.trunc.Load()
	}
	return nil
}

// sizeOK checks with fstat that the file still holds header and data area.
func (r *Ring) sizeOK() bool {
	if r.f == nil {
		return true
	}
	var st unix.Stat_t
	if err := unix.Fstat(int(r.f.Fd()), &st); err != nil {
		return true
	}
	if need := int64(HeaderSize + r.capacity); st.Size < need {
		r.trunc.CompareAndSwap(nil, journal.Corrupt(r.path, st.Size, ErrTruncated,
			"ring file truncated to %d bytes under us, header and capacity need %d", st.Size, need))
		return false
	}
	return true
}

func (r *Ring) dataSignal() wait.Signal {
	return wait.Signal{Seq: r.h.u32(OffDataSeq), Waiters: r.h.u32(OffDataWaiters)}
}

func (r *Ring) spaceSignal() wait.Signal {
	return wait.Signal{Seq: r.h.u32(OffSpaceSeq), Waiters: r.h.u32(OffSpaceWaiters)}
}

// attach claims side s for this process, once per generation: it fails
// with *BusyError if a live process holds it, with ErrSideUsed if the side
// was attached before (closed, dead or sealed). The PID word is taken by
// compare-and-swap from 0, so two processes racing for a free side cannot
// both win, and a replacer sealing the side (PID word 0 → SealedPID) and an
// attacher exclude each other. Then the side's start time, PID namespace,
// flags and heartbeat are stored, and last its state (attached).
func (r *Ring) attach(s side, timeout time.Duration, d interface{ detach() }) (plain bool, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return false, ErrClosed
	}
	err = r.guarded(func() error {
		for {
			pid, st := s.pid(), s.state()
			if pid != 0 || st != StateFree {
				return sideTaken(r.path, s, timeout)
			}
			// Beat before claiming, so a claimed side always carries a
			// fresh heartbeat (a racing loser's beat is harmless: the
			// winner is alive too; a sealed side is judged by its PID).
			s.beat(clock.Nanotime())
			if atomic.CompareAndSwapUint32(s.pidp(), 0, self.pid) {
				break
			}
		}
		plain = plainPublish()
		var fl uint32
		if plain {
			fl |= SideFlagPlainPublish
		}
		atomic.StoreUint64(s.h.u64(s.off+sideOffStart), self.start)
		atomic.StoreUint64(s.h.u64(s.off+sideOffPIDNS), self.pidns)
		atomic.StoreUint32(s.h.u32(s.off+sideOffFlags), fl)
		s.beat(clock.Nanotime())
		s.setState(StateAttached)
		return nil
	})
	if err != nil {
		return false, err
	}
	r.sides = append(r.sides, d)
	r.beats = append(r.beats, s)
	r.startKeeper()
	return plain, nil
}

// sideTaken explains why side s cannot be attached.
func sideTaken(path string, s side, timeout time.Duration) error {
	pid, st := s.pid(), s.state()
	switch {
	case pid == SealedPID || st == StateRetired:
		return fmt.Errorf("%s: %w: %s side sealed (the ring was replaced)", path, ErrSideUsed, s.name())
	case st == StateClosed:
		return fmt.Errorf("%s: %w: %s PID %d detached", path, ErrSideUsed, s.name(), pid)
	}
	if p := presentSide(s, timeout); p.present {
		return &BusyError{Path: path, Side: s.name(), PID: int(pid)}
	} else {
		return fmt.Errorf("%s: %w: %s %s", path, ErrSideUsed, s.name(), p.why)
	}
}

// stopBeating removes s from the keeper's list and zeroes its heartbeat:
// the side has left. Called with r.mu held.
func (r *Ring) stopBeating(s side) {
	for i, b := range r.beats {
		if b.off == s.off {
			r.beats = append(r.beats[:i], r.beats[i+1:]...)
			break
		}
	}
	s.beat(0)
}

// startKeeper starts the heartbeat goroutine (once; r.mu held): every
// HeartbeatInterval it refreshes the heartbeat of each attached side and
// checks with fstat that the file was not truncated.
func (r *Ring) startKeeper() {
	if r.keepr != nil {
		return
	}
	r.keepr, r.kdone = make(chan struct{}), make(chan struct{})
	go r.keep(r.keepr, r.kdone)
}

func (r *Ring) keep(stop, done chan struct{}) {
	defer close(done)
	debug.SetPanicOnFault(true) // this goroutine is ours alone
	t := time.NewTicker(HeartbeatInterval)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
		}
		if !r.tick() {
			return
		}
	}
}

func (r *Ring) tick() (ok bool) {
	defer func() {
		if e := recover(); e != nil {
			r.faultError(e, "heartbeat")
			ok = false
		}
	}()
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed || !r.sizeOK() {
		return false
	}
	now := clock.Nanotime()
	for _, s := range r.beats {
		s.beat(now)
	}
	return true
}

// newGeneration returns a random non-zero generation identity.
func newGeneration() uint64 {
	var b [8]byte
	for {
		if _, err := cryptorand.Read(b[:]); err != nil {
			binary.LittleEndian.PutUint64(b[:], uint64(time.Now().UnixNano())^uint64(os.Getpid())<<40)
		}
		if g := binary.LittleEndian.Uint64(b[:]); g != 0 {
			return g
		}
	}
}

// temp is a new generation built under a temporary name, not yet visible.
type temp struct {
	r    *Ring
	name string
}

// newTemp creates, sizes, maps and initialises a ring file next to path.
func newTemp(path string, capacity int, opts *Options) (*temp, error) {
	dir := filepath.Dir(path)
	perm := opts.Perm & os.ModePerm
	if perm == 0 {
		perm = 0o600
	}
	var f *os.File
	var name string
	for i := 0; ; i++ {
		name = filepath.Join(dir, fmt.Sprintf(".%s.tmp%d-%d", filepath.Base(path), os.Getpid(), newGeneration()%1e9))
		fd, err := unix.Open(name, unix.O_RDWR|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, uint32(perm))
		if err == unix.EEXIST && i < 10 {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("ring create %s: %w", path, &os.PathError{Op: "open", Path: name, Err: err})
		}
		f = os.NewFile(uintptr(fd), name)
		break
	}
	fail := func(err error) (*temp, error) {
		f.Close()
		os.Remove(name)
		return nil, fmt.Errorf("ring create %s: %w", path, err)
	}
	if err := f.Chmod(perm); err != nil {
		return fail(err)
	}
	size := HeaderSize + capacity
	hp := hugePageSize(f)
	if opts.HugePages && hp == 0 {
		return fail(fmt.Errorf("%w: %s is not on a hugetlbfs mount (mount -t hugetlbfs none DIR, reserve pages with "+
			"echo N > /proc/sys/vm/nr_hugepages, and put the ring in DIR)", ErrNoHugePages, dir))
	}
	fileSize := roundUp(size, hp)
	if err := mmap.Reserve(f, int64(fileSize)); err != nil {
		if hp != 0 {
			return fail(noHugePages(dir, fileSize, hp, err))
		}
		return fail(err)
	}
	m, err := mmap.Map(f, fileSize, true)
	if err != nil {
		if hp != 0 {
			return fail(noHugePages(dir, fileSize, hp, err))
		}
		return fail(err)
	}
	var flags uint32
	if hp != 0 {
		flags |= FlagHugePages
	}
	initHeader(m, uint64(capacity), time.Now().UnixNano(), newGeneration(), flags)
	if !opts.NoPrefault {
		if err := mmap.PopulateWrite(m[:size]); err != nil {
			mmap.Unmap(m)
			if hp != 0 {
				return fail(noHugePages(dir, fileSize, hp, err))
			}
			return fail(err)
		}
		mmap.TouchWrite(m[:size]) // still a temporary name: nobody else maps it
	}
	return &temp{r: newRing(path, f, m, size, hp != 0), name: name}, nil
}

// noHugePages explains a failure to get huge pages.
func noHugePages(dir string, size, page int, err error) error {
	nr, _ := os.ReadFile("/proc/sys/vm/nr_hugepages")
	return fmt.Errorf("%w: %d bytes of %d KiB pages in %s: %v (vm.nr_hugepages = %s; reserve more with "+
		"echo N > /proc/sys/vm/nr_hugepages)", ErrNoHugePages, size, page>>10, dir, err, strings.TrimSpace(string(nr)))
}

// sameFile reports whether path still names the file open as f.
func sameFile(path string, f *os.File) bool {
	var a, b unix.Stat_t
	if unix.Lstat(path, &a) != nil || unix.Fstat(int(f.Fd()), &b) != nil {
		return false
	}
	return a.Dev == b.Dev && a.Ino == b.Ino
}

// lockFile takes an exclusive flock on f, retrying until deadline. Every
// change of what a ring path names, other than linking a new file where
// none is, is made under the flock of the file the path names: replacing
// it (rename over) and removing it (unlink). So a producer removing its own
// file and another replacing it cannot undo each other.
func lockFile(f *os.File, deadline time.Time) error {
	for {
		err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		if err == nil {
			return nil
		}
		if err != unix.EWOULDBLOCK && err != unix.EINTR {
			return fmt.Errorf("flock %s: %w", f.Name(), err)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("flock %s: %w", f.Name(), os.ErrDeadlineExceeded)
		}
		time.Sleep(time.Millisecond)
	}
}

func unlockFile(f *os.File) { unix.Flock(int(f.Fd()), unix.LOCK_UN) }

// removeIfSame unlinks path if it still names f's file, under f's flock.
func removeIfSame(path string, f *os.File, deadline time.Time) (bool, error) {
	if err := lockFile(f, deadline); err != nil {
		return false, err
	}
	defer unlockFile(f)
	if !sameFile(path, f) {
		return false, nil
	}
	if err := os.Remove(path); err != nil {
		return false, err
	}
	return true, nil
}

// role is who is publishing a new generation (for the join decision).
type role int

const (
	roleNone role = iota
	roleProducer
)

// errJoin tells NewProducer that the existing ring should be joined.
var errJoin = errors.New("join the existing ring")

// publish makes the new generation t visible at path: linked if the path is
// free; otherwise, if replace is set and the file there is a leftover,
// sealed and renamed over under that file's flock. For roleProducer, a
// ring waiting for a producer is not replaced: publish returns errJoin.
func publish(t *temp, path string, replace bool, who role, timeout time.Duration) error {
	deadline := time.Now().Add(5 * time.Second)
	for {
		err := unix.Link(t.name, path)
		if err == nil {
			os.Remove(t.name)
			return nil
		}
		if err != unix.EEXIST {
			return fmt.Errorf("ring create %s: %w", path, &os.PathError{Op: "link", Path: path, Err: err})
		}
		done, err := replaceExisting(t, path, replace, who, timeout, deadline)
		if done || err != nil {
			return err
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("ring create %s: %w (the path kept changing)", path, os.ErrDeadlineExceeded)
		}
	}
}

// replaceExisting deals with the file found at path: done=false means the
// path changed meanwhile and publishing should be retried.
func replaceExisting(t *temp, path string, replace bool, who role, timeout time.Duration, deadline time.Time) (done bool, err error) {
	f, err := openFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return true, err
	}
	old, err := mapFile(f, path)
	if err != nil {
		f.Close()
		return true, fmt.Errorf("ring create %s: the existing file is not a usable ring, not replacing it: %w", path, err)
	}
	defer old.Close()
	if err := lockFile(old.f, deadline); err != nil {
		return true, err
	}
	defer unlockFile(old.f)
	if !sameFile(path, old.f) {
		return false, nil
	}
	var v verdict
	if err := old.guarded(func() error {
		v = old.verdict(timeout)
		return nil
	}); err != nil {
		return true, err
	}
	switch v.kind {
	case vLive:
		return true, v.err
	case vJoinable:
		if who == roleProducer {
			return true, errJoin
		}
		if !replace {
			return true, fmt.Errorf("ring create %s: %w (%s)", path, os.ErrExist, v.why)
		}
		// Create with Replace also replaces a ring whose consumer waits
		// for a producer: that consumer has read nothing and moves on to
		// the new generation.
	case vLeftover:
		if !replace {
			return true, &LeftoverError{Path: path, Generation: old.gen, Reason: v.why}
		}
	}
	// Seal the free sides so nobody attaches to the generation being
	// replaced. A side claimed meanwhile makes us look again.
	sealed := true
	if err := old.guarded(func() error {
		for _, s := range [2]side{{old.h, OffConsumer}, {old.h, OffProducer}} {
			if s.pid() != 0 || s.state() != StateFree {
				continue
			}
			if !atomic.CompareAndSwapUint32(s.pidp(), 0, SealedPID) {
				sealed = false
				return nil
			}
			s.setState(StateRetired)
		}
		return nil
	}); err != nil {
		return true, err
	}
	if !sealed {
		return false, nil
	}
	if err := os.Rename(t.name, path); err != nil {
		return true, fmt.Errorf("ring create %s: %w", path, err)
	}
	return true, nil
}

type verdictKind int

const (
	vJoinable verdictKind = iota // a producer may attach to it
	vLive                        // a live producer holds it: never replaced
	vLeftover                    // nobody can use it any more: replaceable
)

type verdict struct {
	kind verdictKind
	why  string
	err  error // for vLive: the *BusyError
}

// verdict classifies this generation for a process that wants to produce
// at its path (format.md §12 "Generations"):
//
//   - producer attached (or attaching) and present: live, never replaced;
//   - producer free, consumer attached (or attaching) and present, i.e. a
//     consumer waiting for a producer: joinable;
//   - anything else — producer closed (a finished generation), producer
//     attached but gone, producer free with the consumer free (nobody
//     there), closed or gone, a sealed side: leftover.
func (r *Ring) verdict(timeout time.Duration) verdict {
	p, c := side{r.h, OffProducer}, side{r.h, OffConsumer}
	pp, ps := p.pid(), p.state()
	switch {
	case pp == SealedPID || ps == StateRetired:
		return verdict{kind: vLeftover, why: "producer side sealed"}
	case ps == StateClosed:
		return verdict{kind: vLeftover, why: fmt.Sprintf("finished generation (producer PID %d closed it)", pp)}
	case ps == StateAttached || pp != 0:
		pr := presentSide(p, timeout)
		if pr.present {
			return verdict{kind: vLive, why: "producer " + pr.why, err: &BusyError{Path: r.path, Side: "producer", PID: int(pp)}}
		}
		return verdict{kind: vLeftover, why: "producer " + pr.why}
	}
	cp, cs := c.pid(), c.state()
	switch {
	case cp == 0 && cs == StateFree:
		return verdict{kind: vLeftover, why: "no side ever attached (no live peer)"}
	case cp == SealedPID || cs == StateRetired:
		return verdict{kind: vLeftover, why: "consumer side sealed"}
	case cs == StateClosed:
		return verdict{kind: vLeftover, why: fmt.Sprintf("no producer ever attached and consumer PID %d left", cp)}
	}
	if pr := presentSide(c, timeout); pr.present {
		return verdict{kind: vJoinable, why: "consumer " + pr.why + " waiting for a producer"}
	} else {
		return verdict{kind: vLeftover, why: "no producer ever attached and consumer " + pr.why}
	}
}
