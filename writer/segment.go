package writer

import (
	"errors"
	"fmt"
	"os"

	"github.com/mdjournal/mdjournal/internal/mmap"
	"github.com/mdjournal/mdjournal/journal"
)

// wseg is a segment mapped read-write by the writer, with its index.
type wseg struct {
	num      uint64
	path     string
	f        *os.File
	m        []byte
	hdr      journal.Header
	capacity int64

	idxPath   string
	idxF      *os.File
	idxM      []byte
	idx       journal.Index
	idxCount  uint64 // entries written
	nextIdxAt int64  // offset at or past which the next frame is indexed
}

// createSegment makes a new prepared segment: reserve every block, map it,
// write the header (not yet active) and a fresh index. The file is created
// under a temporary name and renamed, so a crash never leaves a half-made
// segment under a real name.
func createSegment(dir string, journalID, num uint64, capacity int64, created int64) (*wseg, error) {
	path := journal.SegmentPath(dir, num)
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return nil, err
	}
	fail := func(err error) (*wseg, error) {
		f.Close()
		os.Remove(tmp)
		return nil, err
	}
	if err := mmap.Reserve(f, capacity); err != nil {
		return fail(err)
	}
	m, err := mmap.Map(f, int(capacity), true)
	if err != nil {
		return fail(err)
	}
	journal.InitHeader(m, journalID, num, created, uint64(capacity))
	if err := mmap.Sync(m, 0, journal.SegmentHeaderSize, true); err != nil {
		mmap.Unmap(m)
		return fail(err)
	}
	s := &wseg{num: num, path: path, f: f, m: m, hdr: journal.HeaderOf(m), capacity: capacity}
	if err := s.createIndex(dir, journalID); err != nil {
		s.close()
		os.Remove(tmp)
		return nil, err
	}
	// link+unlink rather than rename: it fails if the name exists, so a
	// segment in use can never be replaced.
	if err := os.Link(tmp, path); err != nil {
		s.close()
		os.Remove(tmp)
		return nil, err
	}
	os.Remove(tmp)
	return s, nil
}

// openSegment maps an existing segment read-write. It checks the static header.
func openSegment(dir string, num uint64) (*wseg, error) {
	path := journal.SegmentPath(dir, num)
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return nil, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	if st.Size() < journal.SegmentHeaderSize {
		f.Close()
		return nil, journal.Corrupt(path, st.Size(), journal.ErrTruncated, "file is %d bytes, shorter than the %d-byte header", st.Size(), journal.SegmentHeaderSize)
	}
	hm, err := mmap.Map(f, journal.SegmentHeaderSize, false)
	if err != nil {
		f.Close()
		return nil, err
	}
	h := journal.HeaderOf(hm)
	capacity := int64(h.Capacity())
	err = h.Check(path, st.Size())
	mmap.Unmap(hm)
	if errors.Is(err, journal.ErrTruncated) {
		// A short file: only the writer's recovery may extend it (it is then
		// scanned and its cut frame treated as a torn tail).
		return &wseg{num: num, path: path, f: f, capacity: capacity}, err
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	return mapOpened(f, num, path, capacity)
}

func mapOpened(f *os.File, num uint64, path string, capacity int64) (*wseg, error) {
	m, err := mmap.Map(f, int(capacity), true)
	if err != nil {
		f.Close()
		return nil, err
	}
	return &wseg{num: num, path: path, f: f, m: m, hdr: journal.HeaderOf(m), capacity: capacity}, nil
}

func (s *wseg) createIndex(dir string, journalID uint64) error {
	s.idxPath = journal.IndexPath(dir, s.num)
	n := journal.IndexCapacity(uint64(s.capacity))
	size := journal.IndexFileSize(n)
	// Built under a temporary name and renamed into place: a reader that
	// has the old index mapped keeps its inode instead of seeing it truncated.
	tmp := s.idxPath + ".tmp"
	f, err := os.OpenFile(tmp, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	fail := func(err error) error {
		f.Close()
		os.Remove(tmp)
		return err
	}
	if err := mmap.Reserve(f, size); err != nil {
		return fail(err)
	}
	m, err := mmap.Map(f, int(size), true)
	if err != nil {
		return fail(err)
	}
	journal.InitIndex(m, journalID, s.num, n)
	if err := os.Rename(tmp, s.idxPath); err != nil {
		mmap.Unmap(m)
		return fail(err)
	}
	s.idxF, s.idxM, s.idx = f, m, journal.IndexOf(m)
	s.idxCount = 0
	s.nextIdxAt = journal.SegmentHeaderSize
	return nil
}

// openIndex maps the existing index; a missing or damaged one is rebuilt by
// the caller (it is derived data).
func (s *wseg) openIndex(dir string, journalID uint64) error {
	s.idxPath = journal.IndexPath(dir, s.num)
	f, err := os.OpenFile(s.idxPath, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	st, err := f.Stat()
	if err != nil || st.Size() < journal.IndexHeaderSize {
		f.Close()
		return fmt.Errorf("index %s too short", s.idxPath)
	}
	m, err := mmap.Map(f, int(st.Size()), true)
	if err != nil {
		f.Close()
		return err
	}
	x := journal.IndexOf(m)
	if err := x.Check(s.idxPath, journalID, s.num); err != nil {
		mmap.Unmap(m)
		f.Close()
		return err
	}
	if x.Capacity() < journal.IndexCapacity(uint64(s.capacity)) {
		mmap.Unmap(m)
		f.Close()
		return fmt.Errorf("index %s too small for segment", s.idxPath)
	}
	s.idxF, s.idxM, s.idx = f, m, x
	s.idxCount = x.Count()
	s.nextIdxAt = journal.SegmentHeaderSize
	if s.idxCount > 0 {
		s.nextIdxAt = x.Entry(s.idxCount-1).Offset + journal.IndexStride
	}
	return nil
}

// truncateIndexAt drops index entries for frames at or after off.
func (s *wseg) truncateIndexAt(off int64) {
	n := s.idxCount
	for n > 0 && s.idx.Entry(n-1).Offset >= off {
		n--
	}
	s.idxCount = n
	s.idx.SetCount(n)
	s.nextIdxAt = journal.SegmentHeaderSize
	if n > 0 {
		s.nextIdxAt = s.idx.Entry(n-1).Offset + journal.IndexStride
	}
}

// maybeIndex records frame (seq, ts) at off if it is due. Called for every
// appended frame: one comparison unless an entry is due.
func (s *wseg) maybeIndex(off int64, seq uint64, ts int64) {
	if off < s.nextIdxAt {
		return
	}
	s.idx.PutEntry(s.idxCount, journal.IndexEntry{Seq: seq, TS: ts, Offset: off})
	s.idxCount++
	s.idx.SetCount(s.idxCount)
	s.nextIdxAt = off + journal.IndexStride
}

func (s *wseg) close() error {
	var errs []error
	if s.m != nil {
		errs = append(errs, mmap.Unmap(s.m))
		s.m = nil
	}
	if s.idxM != nil {
		errs = append(errs, mmap.Unmap(s.idxM))
		s.idxM = nil
	}
	if s.f != nil {
		errs = append(errs, s.f.Close())
		s.f = nil
	}
	if s.idxF != nil {
		errs = append(errs, s.idxF.Close())
		s.idxF = nil
	}
	return errors.Join(errs...)
}
