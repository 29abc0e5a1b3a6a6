//go:build linux

// Package segfile is the one place that creates, opens, maps, checks,
// extends, indexes and saves pieces of segment files (format.md §1, §2, §5,
// §8, §14). The writer, the reader, verify, inspect, recover, prune and
// compress all go through it: a segment file is found, opened and checked
// the same way everywhere, and the mutations of a mapped header (cursor,
// state records, activation) are made here and nowhere else.
package segfile

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"sort"
	"sync/atomic"
	"unsafe"

	"github.com/mdjournal/mdjournal/internal/archive"
	"github.com/mdjournal/mdjournal/internal/fsx"
	"github.com/mdjournal/mdjournal/internal/mmap"
	"github.com/mdjournal/mdjournal/journal"
)

// Entry is one segment found in a journal directory.
type Entry struct {
	Num      uint64
	Path     string // the raw segment if it exists (authoritative during compression), else the archive
	Archived bool
}

// List returns the segments in dir, ascending: raw (.seg) or compressed
// (.seg.zst); when both exist the raw one is listed (compression removes it
// only after the archive is durable). A name of a segment that is not a
// regular file (a symlink, a FIFO, a directory) is an error naming it.
func List(dir string) ([]Entry, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	byNum := map[uint64]Entry{}
	for _, e := range ents {
		n, raw := journal.ParseSegmentName(e.Name())
		archived := false
		if !raw {
			if n, archived = journal.ParseArchiveName(e.Name()); !archived {
				continue
			}
		}
		path := dir + "/" + e.Name()
		if !e.Type().IsRegular() {
			kind, _, _ := fsx.Lstat(path)
			return nil, &fsx.NotRegularError{Path: path, What: kind}
		}
		if old, ok := byNum[n]; ok && !old.Archived {
			continue // the raw file wins
		}
		byNum[n] = Entry{Num: n, Path: path, Archived: archived}
	}
	out := make([]Entry, 0, len(byNum))
	for _, e := range byNum {
		out = append(out, e)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Num < out[j].Num })
	return out, nil
}

// Numbers returns just the segment numbers of List.
func Numbers(dir string) ([]uint64, error) {
	es, err := List(dir)
	if err != nil {
		return nil, err
	}
	ns := make([]uint64, len(es))
	for i, e := range es {
		ns[i] = e.Num
	}
	return ns, nil
}

// Locate returns the file holding segment n: the raw segment if it exists,
// else the archive; ErrMissing when neither does.
func Locate(dir string, n uint64) (Entry, error) {
	raw := journal.SegmentPath(dir, n)
	if k, _, err := fsx.Lstat(raw); err != nil {
		return Entry{}, err
	} else if k == "regular" {
		return Entry{Num: n, Path: raw}, nil
	} else if k != "missing" {
		return Entry{}, &fsx.NotRegularError{Path: raw, What: k}
	}
	arc := journal.ArchivePath(dir, n)
	if k, _, err := fsx.Lstat(arc); err != nil {
		return Entry{}, err
	} else if k == "regular" {
		return Entry{Num: n, Path: arc, Archived: true}, nil
	} else if k != "missing" {
		return Entry{}, &fsx.NotRegularError{Path: arc, What: k}
	}
	return Entry{}, journal.Corrupt(raw, 0, journal.ErrMissing, "segment %d is missing", n)
}

// ReadHeader reads segment n's header page (raw or archived: an archive
// starts with the same page) with pread, without mapping the file and
// without checking it: for tools that need a field or two, including of
// segments that fail their check. It also returns the file's path and size.
func ReadHeader(dir string, n uint64) (journal.Header, Entry, int64, error) {
	var e Entry
	var f *os.File
	var err error
	// compress links the archive into place, then removes the raw file: a
	// raw file found by Locate may be gone when it is opened, and is then
	// looked up again (found archived).
	for try := 0; ; try++ {
		if e, err = Locate(dir, n); err != nil {
			return journal.Header{}, e, 0, err
		}
		if f, err = fsx.OpenRead(e.Path); err == nil {
			break
		}
		if !errors.Is(err, os.ErrNotExist) || try == 2 {
			return journal.Header{}, e, 0, err
		}
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return journal.Header{}, e, 0, err
	}
	b := make([]byte, journal.SegmentHeaderSize)
	if _, err := f.ReadAt(b, 0); err != nil {
		return journal.Header{}, e, st.Size(), journal.Corrupt(e.Path, st.Size(), journal.ErrTruncated,
			"file is %d bytes, shorter than the %d-byte header", st.Size(), journal.SegmentHeaderSize)
	}
	return journal.HeaderOf(b), e, st.Size(), nil
}

// Seg is an open segment: a raw file mapped (read-only or read-write), or an
// archive whose raw image is decompressed on demand.
type Seg struct {
	Num      uint64
	Path     string
	Archived bool
	Writable bool
	// Data is the mapping of a raw segment (as far as the file goes: a
	// truncated file maps only its bytes; Short says so), or the raw image
	// of an archive (its valid range: see Loaded).
	Data     []byte
	Capacity int64 // from the checked header
	Short    bool  // the file is shorter than its capacity
	FileSize int64

	f    *os.File
	arch *archive.Segment
	// Archives: [loadedFrom, loadedEnd) of Data holds decompressed bytes.
	loadedFrom, loadedEnd int64
}

// Header returns the header view.
func (s *Seg) Header() journal.Header { return journal.HeaderOf(s.Data) }

// File returns the open file of a raw segment (nil for an archive).
func (s *Seg) File() *os.File { return s.f }

// OpenOptions tune Open.
type OpenOptions struct {
	Write bool // map read-write (the writer, recover); raw segments only
	// AllowShort maps a file shorter than its capacity (a truncated active
	// segment) instead of failing with ErrTruncated: the verdict decides.
	AllowShort bool
	// LoadArchive decompresses a whole archive at open (tools); otherwise
	// chunks are loaded on demand (readers).
	LoadArchive bool
}

// Open opens segment n. The header is checked (journal.Header.Check) before
// anything is mapped by its size, so a crafted capacity cannot make it map
// or reserve without bound.
func Open(dir string, n uint64, o OpenOptions) (*Seg, error) {
	e, err := Locate(dir, n)
	if err != nil {
		return nil, err
	}
	return OpenEntry(e, o)
}

// OpenEntry is Open for an entry List returned.
func OpenEntry(e Entry, o OpenOptions) (*Seg, error) {
	if e.Archived {
		if o.Write {
			return nil, fmt.Errorf("%s: a compressed segment is never written", e.Path)
		}
		return openArchive(e, o)
	}
	flag := os.O_RDONLY
	if o.Write {
		flag = os.O_RDWR
	}
	f, err := fsx.Open(e.Path, flag, 0)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			// Compressed (and the raw file removed) since List looked.
			if ae, lerr := Locate(dir(e.Path), e.Num); lerr == nil && ae.Archived && !o.Write {
				return openArchive(ae, o)
			}
			return nil, journal.Corrupt(e.Path, 0, journal.ErrMissing, "segment %d is missing", e.Num)
		}
		return nil, err
	}
	s, err := mapRaw(f, e, o)
	if err != nil {
		f.Close()
		return nil, err
	}
	return s, nil
}

func mapRaw(f *os.File, e Entry, o OpenOptions) (*Seg, error) {
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	size := st.Size()
	if size < journal.SegmentHeaderSize {
		return nil, journal.Corrupt(e.Path, size, journal.ErrTruncated, "file is %d bytes, shorter than the %d-byte header", size, journal.SegmentHeaderSize)
	}
	var page [journal.SegmentHeaderSize]byte
	if _, err := f.ReadAt(page[:], 0); err != nil {
		return nil, err
	}
	h := journal.HeaderOf(page[:])
	capacity := int64(h.Capacity())
	// Check against the capacity (bounded by Check itself) so that a short
	// file still gets its other fields checked; the size rule follows.
	if err := h.Check(e.Path, max(size, min(capacity, journal.MaxSegmentSize)), e.Num); err != nil {
		return nil, err
	}
	short := size < capacity
	if short && !o.AllowShort {
		return nil, journal.Corrupt(e.Path, size, journal.ErrTruncated, "file is %d bytes, header says capacity %d", size, capacity)
	}
	n := min(size, capacity)
	m, err := mmap.Map(f, int(n), o.Write)
	if err != nil {
		return nil, err
	}
	return &Seg{Num: e.Num, Path: e.Path, Writable: o.Write, Data: m, Capacity: capacity, Short: short, FileSize: size, f: f}, nil
}

func dir(path string) string {
	for i := len(path) - 1; i >= 0; i-- {
		if path[i] == '/' {
			return path[:i]
		}
	}
	return "."
}

func openArchive(e Entry, o OpenOptions) (*Seg, error) {
	a, err := archive.Open(e.Path)
	if err != nil {
		return nil, err
	}
	h := journal.HeaderOf(a.HeaderPage())
	s := &Seg{Num: e.Num, Path: e.Path, Archived: true, Capacity: int64(h.Capacity()), FileSize: a.RawSize, arch: a,
		loadedFrom: journal.SegmentHeaderSize, loadedEnd: journal.SegmentHeaderSize}
	if h.Number() != e.Num {
		a.Close()
		return nil, journal.Corrupt(e.Path, 24, journal.ErrBadHeader, "header says segment %d, the file name says %d", h.Number(), e.Num)
	}
	if o.LoadArchive {
		img, err := a.ReadAll()
		if err != nil {
			a.Close()
			return nil, err
		}
		s.Data, s.loadedEnd = img, int64(len(img))
		return s, nil
	}
	// The raw image is allocated on the first chunk load: a probe that only
	// reads the header allocates nothing beyond the page.
	s.Data = a.HeaderPage()
	return s, nil
}

// Limit is how far frames may be read now: the mapping's end for a raw
// segment (callers load commit words to see what is published), the end of
// the decompressed chunks of an archive.
func (s *Seg) Limit() int64 {
	if s.Archived {
		return s.loadedEnd
	}
	return int64(len(s.Data))
}

// RawSize is an archive's raw size (its end marker's end); a raw segment's
// mapped length.
func (s *Seg) RawSize() int64 {
	if s.Archived {
		return s.arch.RawSize
	}
	return int64(len(s.Data))
}

// More decompresses the next chunk of an archive; false at its end (and
// always for a raw segment).
func (s *Seg) More() (bool, error) {
	if !s.Archived || s.loadedEnd >= s.arch.RawSize {
		return false, nil
	}
	i := s.arch.ChunkFor(s.loadedEnd)
	if i < 0 {
		return false, journal.Corrupt(s.Path, 0, journal.ErrBadHeader, "no chunk holds raw offset %d", s.loadedEnd)
	}
	if err := s.arch.Load(i, s.image()); err != nil {
		return false, err
	}
	s.loadedEnd += int64(s.arch.Chunks[i].RawLen)
	return true, nil
}

// SeekLoad makes raw offset off readable: for an archive, it decompresses
// the chunk holding it (only it: seeking never decompresses what lies
// before). Loading starts over from there.
func (s *Seg) SeekLoad(off int64) error {
	if !s.Archived || (off >= s.loadedFrom && off < s.loadedEnd) {
		return nil
	}
	i := s.arch.ChunkFor(off)
	if i < 0 {
		return journal.Corrupt(s.Path, 0, journal.ErrBadHeader, "no chunk holds raw offset %d", off)
	}
	if err := s.arch.Load(i, s.image()); err != nil {
		return err
	}
	c := s.arch.Chunks[i]
	s.loadedFrom, s.loadedEnd = c.RawOff, c.RawOff+int64(c.RawLen)
	return nil
}

// ResetLoad forgets what was decompressed (a reader starting over at the
// segment start).
func (s *Seg) ResetLoad() {
	if s.Archived && s.loadedEnd < s.arch.RawSize {
		s.loadedFrom, s.loadedEnd = journal.SegmentHeaderSize, journal.SegmentHeaderSize
	}
}

func (s *Seg) image() []byte {
	if int64(len(s.Data)) < s.arch.RawSize {
		img := make([]byte, s.arch.RawSize)
		copy(img, s.arch.HeaderPage())
		s.Data = img
	}
	return s.Data
}

// Close unmaps and closes.
func (s *Seg) Close() error {
	var errs []error
	if s.arch != nil {
		errs = append(errs, s.arch.Close())
		s.arch = nil
		s.Data = nil
		return errors.Join(errs...)
	}
	if s.Data != nil {
		errs = append(errs, mmap.Unmap(s.Data))
		s.Data = nil
	}
	if s.f != nil {
		errs = append(errs, s.f.Close())
		s.f = nil
	}
	return errors.Join(errs...)
}

// Sync msyncs [off, off+n) of a writable mapping with MS_SYNC.
func (s *Seg) Sync(off, n int) error {
	if err := mmap.Sync(s.Data, off, n, true); err != nil {
		return fmt.Errorf("msync %s: %w", s.Path, err)
	}
	return nil
}

// Fsync fsyncs the file (retired segments whose mapping is gone).
func (s *Seg) Fsync() error {
	if s.f == nil {
		return nil
	}
	return s.f.Sync()
}

// --- header mutations (the writer and recover only) ---

func (s *Seg) u64(off int) *uint64 { return (*uint64)(unsafe.Add(unsafe.Pointer(&s.Data[0]), off)) }

// SetCursor stores the write cursor (one atomic 8-byte store).
func (s *Seg) SetCursor(c int64) { atomic.StoreUint64(s.u64(journal.SegOffCursor), uint64(c)) }

// WriteState writes st into the record slot that is not current, so the
// current record stays intact if the write is torn (format.md §2.2). st.Gen
// is set to the current generation + 1, and returned.
func (s *Seg) WriteState(st journal.State) journal.State {
	cur, slot, ok := s.Header().State()
	st.Gen = 1
	off := journal.SegOffStateA
	if ok {
		st.Gen = cur.Gen + 1
		if slot == 0 {
			off = journal.SegOffStateB
		}
	}
	var b [journal.StateSize]byte
	journal.PutState(b[:], st)
	// Atomic 8-byte stores: a concurrent tool reading the record sees each
	// word whole (a torn record fails its checksum and the other is used).
	for i := 0; i < journal.StateSize; i += 8 {
		atomic.StoreUint64(s.u64(off+i), binary.LittleEndian.Uint64(b[i:]))
	}
	return st
}

// Activate turns a prepared segment into the active one: first_seq and
// epoch into the static fields (checksum recomputed), then the first state
// record (format.md §4.3). Readers do not look at a segment before its
// predecessor's end marker is published, which happens after this.
func (s *Seg) Activate(firstSeq uint64, epoch uint32, pid uint32) journal.State {
	h := s.Header()
	journal.PutStaticFields(s.Data, h.JournalID(), h.Number(), firstSeq, h.Created(), h.Capacity(), epoch)
	return s.WriteState(journal.State{DurableOffset: journal.SegmentHeaderSize, DurableSeq: firstSeq - 1, WriterPID: pid})
}

// StoreCommit publishes a staged frame at off: its commit word (crc |
// size<<32) stored last, with release semantics (format.md §4).
func (s *Seg) StoreCommit(off int64, w uint64) { storeRelease(s.u64(int(off)), w) }

// LoadCommit loads the commit word at off with acquire semantics.
func LoadCommit(data []byte, off int64) uint64 {
	return atomic.LoadUint64((*uint64)(unsafe.Add(unsafe.Pointer(&data[0]), off)))
}

// Extend reserves a short (truncated) file back to its capacity and maps it
// whole; the cut frame then reads as a torn tail. The capacity was bounded
// by the header check.
func (s *Seg) Extend() error {
	if !s.Short || s.f == nil || !s.Writable {
		return nil
	}
	if err := mmap.Reserve(s.f, s.Capacity); err != nil {
		return err
	}
	if err := mmap.Unmap(s.Data); err != nil {
		return err
	}
	m, err := mmap.Map(s.f, int(s.Capacity), true)
	if err != nil {
		s.Data = nil
		return err
	}
	s.Data, s.Short, s.FileSize = m, false, s.Capacity
	return nil
}

// Ends is what a tool needs to know about where a segment ends without
// scanning it all: the last data frame's seq and timestamp, the offset past
// the last frame, whether an end marker closes it.
type Ends struct {
	LastSeq uint64
	LastTS  int64
	End     int64
	Sealed  bool
	Frames  int64 // frames scanned (from the last index entry)
}

// ScanEnds finds a segment's end: from its last index entry (if the index
// checks out) or its start, over the published frames (commit words set).
// An archive is decompressed whole.
func ScanEnds(dir string, e Entry) (Ends, error) {
	s, err := OpenEntry(e, OpenOptions{LoadArchive: true, AllowShort: true})
	if err != nil {
		return Ends{}, err
	}
	defer s.Close()
	h := s.Header()
	from, prev := int64(journal.SegmentHeaderSize), h.FirstSeq()-1
	var ts int64
	if x, err := OpenIndex(dir, e.Num, h.JournalID(), s.Capacity, false); err == nil {
		if n := x.View().Count(); n > 0 {
			en := x.View().Entry(n - 1)
			if en.Offset > journal.SegmentHeaderSize && en.Offset < int64(len(s.Data)) {
				from, prev, ts = en.Offset, en.Seq-1, en.TS
			}
		}
		x.Close()
	}
	r := journal.ScanSegment(e.Path, s.Data, from, prev, int64(len(s.Data)), nil)
	if r.Err != nil && from != journal.SegmentHeaderSize {
		r = journal.ScanSegment(e.Path, s.Data, journal.SegmentHeaderSize, h.FirstSeq()-1, int64(len(s.Data)), nil)
	}
	if r.Frames > 0 {
		ts = r.LastTS
	}
	return Ends{LastSeq: r.LastSeq, LastTS: ts, End: r.End, Sealed: r.Sealed, Frames: r.Frames}, nil
}

// PrunedSince reports whether segment n, listed earlier, is gone together
// with every segment before it: a prune (which deletes from the oldest,
// under the maintenance lock, beside live writers and readers) ran since
// the listing. A hole between retained segments is not this.
func PrunedSince(dir string, n uint64) bool {
	ents, err := List(dir)
	if err != nil {
		return false
	}
	for _, e := range ents {
		if e.Num <= n {
			return false
		}
	}
	return true
}
