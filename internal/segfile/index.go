//go:build linux

package segfile

import (
	"errors"
	"fmt"
	"os"
	"sync/atomic"

	"github.com/mdjournal/mdjournal/internal/fsx"
	"github.com/mdjournal/mdjournal/internal/mmap"
	"github.com/mdjournal/mdjournal/internal/words"
	"github.com/mdjournal/mdjournal/journal"
)

// Index is a segment's sparse index file, mapped (format.md §5).
type Index struct {
	Path string
	Data []byte

	f        *os.File
	writable bool
	count    uint64 // writer: entries written
	stored   uint64 // writer: count last published
	nextAt   int64  // writer: a frame at or past this offset is indexed
}

// View returns the read-only view.
func (x *Index) View() journal.Index { return journal.IndexOf(x.Data) }

// CreateIndex makes a fresh index for segment num under a temporary name,
// renames it into place (a reader that has the old one mapped keeps its
// inode) and fsyncs the directory.
func CreateIndex(dir string, journalID, num uint64, segCapacity int64, perm os.FileMode) (*Index, error) {
	return createIndex(dir, journalID, num, segCapacity, perm, nil)
}

// createIndex makes the index under its temporary name, lets fill add
// entries (if set), then renames it into place and fsyncs the directory.
func createIndex(dir string, journalID, num uint64, segCapacity int64, perm os.FileMode, fill func(*Index)) (*Index, error) {
	path := journal.IndexPath(dir, num)
	n := journal.IndexCapacity(uint64(segCapacity))
	size := journal.IndexFileSize(n)
	tmp := path + journal.TmpExt
	f, err := fsx.CreateTemp(tmp, perm)
	if err != nil {
		return nil, err
	}
	fail := func(err error) (*Index, error) {
		f.Close()
		os.Remove(tmp)
		return nil, err
	}
	if err := mmap.Reserve(f, size); err != nil {
		return fail(err)
	}
	m, err := mmap.Map(f, int(size), true)
	if err != nil {
		return fail(err)
	}
	journal.PutIndexHeader(m, journalID, num, n)
	x := &Index{Path: path, Data: m, f: f, writable: true, nextAt: journal.SegmentHeaderSize}
	if fill != nil {
		fill(x)
		x.Publish()
		if err := x.Sync(); err != nil {
			mmap.Unmap(m)
			return fail(err)
		}
	}
	if err := fsx.Rename(tmp, path); err != nil {
		mmap.Unmap(m)
		return fail(err)
	}
	return x, nil
}

// OpenIndex maps segment num's index and checks its header against the
// segment (journal id, number, capacity). A missing or damaged index is an
// error; callers that can rebuild do (it is derived data), readers scan
// without it.
func OpenIndex(dir string, num, journalID uint64, segCapacity int64, write bool) (*Index, error) {
	path := journal.IndexPath(dir, num)
	flag := os.O_RDONLY
	if write {
		flag = os.O_RDWR
	}
	f, err := fsx.Open(path, flag, 0)
	if err != nil {
		return nil, err
	}
	st, err := f.Stat()
	if err != nil || st.Size() < journal.IndexHeaderSize {
		f.Close()
		return nil, journal.Corrupt(path, 0, journal.ErrTruncated, "index is %d bytes", st.Size())
	}
	m, err := mmap.Map(f, int(min(st.Size(), journal.IndexFileSize(journal.IndexCapacity(journal.MaxSegmentSize)))), write)
	if err != nil {
		f.Close()
		return nil, err
	}
	x := journal.IndexOf(m)
	if err := x.Check(path, journalID, num); err != nil {
		mmap.Unmap(m)
		f.Close()
		return nil, err
	}
	if x.Capacity() < journal.IndexCapacity(uint64(segCapacity)) {
		mmap.Unmap(m)
		f.Close()
		return nil, journal.Corrupt(path, 32, journal.ErrIndexMismatch, "index has %d slots, the segment needs %d", x.Capacity(), journal.IndexCapacity(uint64(segCapacity)))
	}
	ix := &Index{Path: path, Data: m, f: f, writable: write}
	ix.count = x.Count()
	ix.stored = ix.count
	ix.nextAt = journal.SegmentHeaderSize
	if ix.count > 0 {
		ix.nextAt = x.Entry(ix.count-1).Offset + journal.IndexStride
	}
	if !write {
		f.Close() // the mapping outlives the descriptor
		ix.f = nil
	}
	return ix, nil
}

// Add records the frame (seq, ts) at off if the stride rule says so
// (format.md §5: the first frame of a segment, then the first frame at or
// past the previous indexed offset + stride). The entry becomes visible at
// Publish. One comparison unless an entry is due.
func (x *Index) Add(off int64, seq uint64, ts int64) {
	if off < x.nextAt || x.count >= x.View().Capacity() {
		return
	}
	journal.PutIndexEntry(x.Data[journal.IndexEntryOffset(x.count):], journal.IndexEntry{Seq: seq, TS: ts, Offset: off})
	x.count++
	x.nextAt = off + journal.IndexStride
}

// Publish stores the count of entries added (only when it changed): every
// entry below it refers to a published frame, since the writer publishes
// the frames (commit words, then the cursor) before it calls Publish.
func (x *Index) Publish() {
	if x.count != x.stored {
		atomic.StoreUint64(words.U64(x.Data, journal.IdxOffCount), x.count)
		x.stored = x.count
	}
}

// TruncateAt drops entries at or past off (recovery re-adds them as it
// scans) and publishes the new count.
func (x *Index) TruncateAt(off int64) {
	v := x.View()
	n := x.count
	for n > 0 && v.Entry(n-1).Offset >= off {
		n--
	}
	x.count = n
	x.nextAt = journal.SegmentHeaderSize
	if n > 0 {
		x.nextAt = v.Entry(n-1).Offset + journal.IndexStride
	}
	atomic.StoreUint64(words.U64(x.Data, journal.IdxOffCount), n)
	x.stored = n
}

// Before returns the last published entry at an offset below off: the
// verdict's hint for checking a checkpoint without a scan from the start.
func (x *Index) Before(off int64) (journal.IndexEntry, bool) {
	if x == nil {
		return journal.IndexEntry{}, false
	}
	v := x.View()
	lo, hi := uint64(0), v.Count()
	for lo < hi {
		m := (lo + hi) / 2
		if v.Entry(m).Offset < off {
			lo = m + 1
		} else {
			hi = m
		}
	}
	if lo == 0 {
		return journal.IndexEntry{}, false
	}
	return v.Entry(lo - 1), true
}

// Sync msyncs the whole index (MS_SYNC).
func (x *Index) Sync() error {
	if err := mmap.Sync(x.Data, 0, len(x.Data), true); err != nil {
		return fmt.Errorf("msync %s: %w", x.Path, err)
	}
	return nil
}

// Close unmaps and closes.
func (x *Index) Close() error {
	if x == nil {
		return nil
	}
	var errs []error
	if x.Data != nil {
		errs = append(errs, mmap.Unmap(x.Data))
		x.Data = nil
	}
	if x.f != nil {
		errs = append(errs, x.f.Close())
		x.f = nil
	}
	return errors.Join(errs...)
}

// RebuildIndex builds segment num's index from the frames in data (a whole
// segment image) up to end, under a temporary name renamed into place, and
// makes it durable. Index entries are derived data: this is always safe.
func RebuildIndex(dir string, num, journalID uint64, data []byte, end int64, perm os.FileMode) error {
	h := journal.HeaderOf(data)
	x, err := createIndex(dir, journalID, num, int64(h.Capacity()), perm, func(x *Index) {
		journal.ScanSegment(journal.SegmentPath(dir, num), data, journal.SegmentHeaderSize, h.FirstSeq()-1, end,
			func(f *journal.Frame) { x.Add(f.Offset, f.Seq, f.TS) })
	})
	if err != nil {
		return err
	}
	return x.Close()
}
