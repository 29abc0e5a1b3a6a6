package stats

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math/bits"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/mdjournal/mdjournal/internal/flock"
	"github.com/mdjournal/mdjournal/internal/fsx"
	"github.com/mdjournal/mdjournal/internal/mmap"
	"github.com/mdjournal/mdjournal/journal"
)

// Layout constants (format.md §15).
const (
	Magic         = "MDJSTATS"
	Version       = 1
	HeaderSize    = 4096
	MaxCounters   = 128
	CounterSize   = 64
	MaxHistograms = 16
	Buckets       = 1024
	HistogramSize = 64 + 8*Buckets
	LabelLen      = 48
	NameLen       = 64
	FileSize      = HeaderSize + MaxCounters*CounterSize + MaxHistograms*HistogramSize
	Ext           = ".stats"

	offMagic      = 0
	offVersion    = 8
	offPID        = 12
	offCreated    = 16
	offHeartbeat  = 24
	offCounters   = 32 // u32: registered counters
	offHistograms = 36 // u32: registered histograms
	offName       = 64 // [64]byte stage name
	offCounterArr = HeaderSize
	offHistArr    = HeaderSize + MaxCounters*CounterSize
)

// ErrFull is returned when a file has no free counter or histogram slot.
var ErrFull = errors.New("stats: no free slot")

// Publisher owns a stats file.
type Publisher struct {
	path string
	f    *os.File
	m    []byte
	lock *flock.Lock
	nc   int
	nh   int
	stop chan struct{}
	done chan struct{}
}

// Path is the stats file of stage in dir.
func Path(dir, stage string) string { return filepath.Join(dir, stage+Ext) }

// Create makes (or takes over from a process that is gone) the stats file
// of stage in dir and starts a heartbeat every 100 ms. The file is created
// with perm (0 means 0640: the owner's group may read it).
func Create(dir, stage string, perm os.FileMode) (*Publisher, error) {
	if stage == "" || len(stage) > NameLen || filepath.Base(stage) != stage {
		return nil, fmt.Errorf("stats: stage name %q: want 1..%d bytes, no path separator", stage, NameLen)
	}
	if perm == 0 {
		perm = fsx.DataPerm
	}
	if err := fsx.MkdirAll(dir, fsx.DirPerm); err != nil {
		return nil, err
	}
	path := Path(dir, stage)
	lock, err := flock.Acquire(path+".lock", 0)
	if err != nil {
		return nil, fmt.Errorf("stats: %w", err)
	}
	tmp := path + journal.TmpExt
	f, err := fsx.CreateTemp(tmp, perm)
	if err != nil {
		lock.Release()
		return nil, err
	}
	fail := func(err error) (*Publisher, error) {
		f.Close()
		fsx.RemoveRegular(tmp)
		lock.Release()
		return nil, err
	}
	if err := mmap.Reserve(f, FileSize); err != nil {
		return fail(err)
	}
	m, err := mmap.Map(f, FileSize, true)
	if err != nil {
		return fail(err)
	}
	copy(m[offMagic:], Magic)
	binary.LittleEndian.PutUint32(m[offVersion:], Version)
	binary.LittleEndian.PutUint32(m[offPID:], uint32(os.Getpid()))
	now := uint64(time.Now().UnixNano())
	binary.LittleEndian.PutUint64(m[offCreated:], now)
	binary.LittleEndian.PutUint64(m[offHeartbeat:], now)
	copy(m[offName:offName+NameLen], stage)
	if err := fsx.Rename(tmp, path); err != nil { // readers never see a half-built file
		mmap.Unmap(m)
		return fail(err)
	}
	p := &Publisher{path: path, f: f, m: m, lock: lock, stop: make(chan struct{}), done: make(chan struct{})}
	go p.beat()
	return p, nil
}

func (p *Publisher) beat() {
	defer close(p.done)
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-p.stop:
			return
		case now := <-t.C:
			atomic.StoreUint64(word(p.m, offHeartbeat), uint64(now.UnixNano()))
		}
	}
}

// Path returns the file's path.
func (p *Publisher) Path() string { return p.path }

// Close stops the heartbeat, records that the process is gone (pid 0) and
// releases the file. The file stays, with its last values, for
// post-mortems; the next Create of the stage replaces it.
func (p *Publisher) Close() error {
	close(p.stop)
	<-p.done
	atomic.StoreUint32(word32(p.m, offPID), 0)
	err := mmap.Unmap(p.m)
	if cerr := p.f.Close(); err == nil {
		err = cerr
	}
	if rerr := p.lock.Release(); err == nil {
		err = rerr
	}
	return err
}

// Counter is a 64-bit value in the file: a count (Add) or a gauge (Set).
type Counter struct{ v *uint64 }

// Counter registers a counter with label (up to 48 bytes).
func (p *Publisher) Counter(label string) (*Counter, error) {
	if p.nc == MaxCounters {
		return nil, ErrFull
	}
	if len(label) == 0 || len(label) > LabelLen {
		return nil, fmt.Errorf("stats: label %q: want 1..%d bytes", label, LabelLen)
	}
	off := offCounterArr + p.nc*CounterSize
	copy(p.m[off:off+LabelLen], label)
	p.nc++
	atomic.StoreUint32(word32(p.m, offCounters), uint32(p.nc)) // the slot is complete before it is counted
	return &Counter{v: word(p.m, off+LabelLen)}, nil
}

// Add adds n.
func (c *Counter) Add(n uint64) { atomic.AddUint64(c.v, n) }

// Set stores v.
func (c *Counter) Set(v uint64) { atomic.StoreUint64(c.v, v) }

// Load returns the value.
func (c *Counter) Load() uint64 { return atomic.LoadUint64(c.v) }

// Histogram counts values (latencies in ns) into log-linear buckets.
type Histogram struct{ base []byte }

// Histogram registers a histogram with label (up to 48 bytes).
func (p *Publisher) Histogram(label string) (*Histogram, error) {
	if p.nh == MaxHistograms {
		return nil, ErrFull
	}
	if len(label) == 0 || len(label) > LabelLen {
		return nil, fmt.Errorf("stats: label %q: want 1..%d bytes", label, LabelLen)
	}
	off := offHistArr + p.nh*HistogramSize
	copy(p.m[off:off+LabelLen], label)
	p.nh++
	atomic.StoreUint32(word32(p.m, offHistograms), uint32(p.nh))
	return &Histogram{base: p.m[off : off+HistogramSize]}, nil
}

// Record counts v (negative values count as 0). It allocates nothing.
func (h *Histogram) Record(v int64) {
	if v < 0 {
		v = 0
	}
	atomic.AddUint64(word(h.base, 64+8*BucketOf(uint64(v))), 1)
	atomic.AddUint64(word(h.base, LabelLen), 1)
	mp := word(h.base, LabelLen+8)
	if uint64(v) > atomic.LoadUint64(mp) {
		atomic.StoreUint64(mp, uint64(v)) // single writer: no lost update
	}
}

// BucketOf returns the bucket of value v: v itself below 32, else 16
// sub-buckets per power of two.
func BucketOf(v uint64) int {
	if v < 32 {
		return int(v)
	}
	m := bits.Len64(v) // 6..64
	return (m-4)*16 + int(v>>(m-5)) - 16
}

// BucketBounds returns the smallest and largest value of bucket i.
func BucketBounds(i int) (lo, hi uint64) {
	if i < 32 {
		return uint64(i), uint64(i)
	}
	m := i/16 + 4
	sub := uint64(i%16 + 16)
	lo = sub << (m - 5)
	return lo, lo + (1 << (m - 5)) - 1
}

func word(m []byte, off int) *uint64   { return (*uint64)(unsafe.Pointer(&m[off])) }
func word32(m []byte, off int) *uint32 { return (*uint32)(unsafe.Pointer(&m[off])) }

// Snapshot is what a reader copied out of a stats file.
type Snapshot struct {
	Stage      string
	PID        uint32 // 0 after a clean Close
	Created    time.Time
	Heartbeat  time.Time
	Counters   []CounterValue
	Histograms []HistogramValue
}

// Alive reports whether the owner was alive at now: its pid is set and it
// beat within the last second.
func (s *Snapshot) Alive(now time.Time) bool {
	return s.PID != 0 && now.Sub(s.Heartbeat) < time.Second
}

// CounterValue is one counter.
type CounterValue struct {
	Label string
	Value uint64
}

// HistogramValue is one histogram's counts.
type HistogramValue struct {
	Label   string
	Count   uint64
	Max     uint64
	Buckets [Buckets]uint64
}

// Quantile returns the upper bound of the bucket holding the q-quantile
// (0 < q ≤ 1) of the recorded values (capped at Max), 0 when empty.
func (h *HistogramValue) Quantile(q float64) uint64 {
	var total uint64
	for _, c := range h.Buckets {
		total += c
	}
	if total == 0 {
		return 0
	}
	rank := uint64(q*float64(total) + 0.5)
	rank = max(rank, 1)
	var seen uint64
	for i, c := range h.Buckets {
		if seen += c; seen >= rank {
			_, hi := BucketBounds(i)
			return min(hi, h.Max)
		}
	}
	return h.Max
}

// Sub returns h minus an earlier reading of the same histogram: the values
// recorded in between (Max is h's).
func (h *HistogramValue) Sub(earlier *HistogramValue) HistogramValue {
	d := HistogramValue{Label: h.Label, Count: h.Count - earlier.Count, Max: h.Max}
	for i := range h.Buckets {
		d.Buckets[i] = h.Buckets[i] - earlier.Buckets[i]
	}
	return d
}

// Read copies the stats file at path. A file that is not a stats file, of
// another version, or truncated is an error.
func Read(path string) (s *Snapshot, err error) {
	f, err := fsx.OpenRead(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if st.Size() < FileSize {
		return nil, journal.Corrupt(path, st.Size(), journal.ErrTruncated, "stats file is %d bytes, want %d", st.Size(), FileSize)
	}
	m, err := mmap.Map(f, FileSize, false)
	if err != nil {
		return nil, err
	}
	defer mmap.Unmap(m)
	defer func(old bool) {
		debug.SetPanicOnFault(old)
		if r := recover(); r != nil {
			if _, ok := r.(runtime.Error); ok {
				s, err = nil, journal.Corrupt(path, 0, journal.ErrTruncated, "stats file truncated while read")
				return
			}
			panic(r)
		}
	}(debug.SetPanicOnFault(true))
	if string(m[offMagic:offMagic+8]) != Magic {
		return nil, journal.Corrupt(path, offMagic, journal.ErrBadMagic, "not a stats file")
	}
	if v := binary.LittleEndian.Uint32(m[offVersion:]); v != Version {
		return nil, journal.Corrupt(path, offVersion, journal.ErrVersion, "stats version %d, this build reads %d", v, Version)
	}
	s = &Snapshot{
		Stage:     label(m[offName : offName+NameLen]),
		PID:       atomic.LoadUint32(word32(m, offPID)),
		Created:   time.Unix(0, int64(binary.LittleEndian.Uint64(m[offCreated:]))),
		Heartbeat: time.Unix(0, int64(atomic.LoadUint64(word(m, offHeartbeat)))),
	}
	nc := min(int(atomic.LoadUint32(word32(m, offCounters))), MaxCounters)
	for i := 0; i < nc; i++ {
		off := offCounterArr + i*CounterSize
		s.Counters = append(s.Counters, CounterValue{Label: label(m[off : off+LabelLen]), Value: atomic.LoadUint64(word(m, off+LabelLen))})
	}
	nh := min(int(atomic.LoadUint32(word32(m, offHistograms))), MaxHistograms)
	for i := 0; i < nh; i++ {
		off := offHistArr + i*HistogramSize
		h := HistogramValue{Label: label(m[off : off+LabelLen]), Count: atomic.LoadUint64(word(m, off+LabelLen)), Max: atomic.LoadUint64(word(m, off+LabelLen+8))}
		for b := range h.Buckets {
			h.Buckets[b] = atomic.LoadUint64(word(m, off+64+8*b))
		}
		s.Histograms = append(s.Histograms, h)
	}
	return s, nil
}

// List returns the stats files in dir, sorted by name.
func List(dir string) ([]string, error) {
	ms, err := filepath.Glob(filepath.Join(dir, "*"+Ext))
	return ms, err
}

func label(b []byte) string {
	n := 0
	for n < len(b) && b[n] != 0 {
		n++
	}
	return string(b[:n])
}
