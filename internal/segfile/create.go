//go:build linux

package segfile

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/mdjournal/mdjournal/internal/fsx"
	"github.com/mdjournal/mdjournal/internal/mmap"
	"github.com/mdjournal/mdjournal/journal"
)

// Create makes a prepared segment num (format.md §1): created as NAME.tmp,
// every block reserved (fallocate), mapped read-write, header written and
// synced, its index made, then linked to its final name (the link fails if
// the name exists, so a segment in use is never replaced), the temporary
// name removed and the directory fsynced.
func Create(dir string, journalID, num uint64, capacity, created int64, perm os.FileMode) (*Seg, *Index, error) {
	if capacity < journal.MinSegmentSize || capacity > journal.MaxSegmentSize || capacity%journal.SegmentHeaderSize != 0 {
		return nil, nil, fmt.Errorf("segment capacity %d outside [%d,%d] or not a multiple of 4096", capacity, journal.MinSegmentSize, journal.MaxSegmentSize)
	}
	path := journal.SegmentPath(dir, num)
	tmp := path + journal.TmpExt
	f, err := fsx.CreateTemp(tmp, perm)
	if err != nil {
		return nil, nil, err
	}
	fail := func(err error) (*Seg, *Index, error) {
		f.Close()
		os.Remove(tmp)
		return nil, nil, err
	}
	if err := mmap.Reserve(f, capacity); err != nil {
		return fail(err)
	}
	m, err := mmap.Map(f, int(capacity), true)
	if err != nil {
		return fail(err)
	}
	journal.PutStaticHeader(m, journalID, num, 0, created, uint64(capacity), 0)
	s := &Seg{Num: num, Path: path, Writable: true, Data: m, Capacity: capacity, FileSize: capacity, f: f}
	if err := s.Sync(0, journal.SegmentHeaderSize); err != nil {
		s.Close()
		os.Remove(tmp)
		return nil, nil, err
	}
	x, err := CreateIndex(dir, journalID, num, capacity, perm)
	if err != nil {
		s.Close()
		os.Remove(tmp)
		return nil, nil, err
	}
	if err := fsx.LinkNew(tmp, path); err != nil {
		x.Close()
		s.Close()
		os.Remove(tmp)
		return nil, nil, err
	}
	return s, x, nil
}

// ProvablyEmpty reports whether a prepared segment holds nothing: its cursor
// is at the header and every data byte is zero. Only such a segment may be
// adopted as the writer's next segment; anything else is moved aside, never
// overwritten (a power cut can leave frames in a segment whose activation
// was not durable; a crafted header can make a full one look prepared).
func ProvablyEmpty(s *Seg) bool {
	if int64(s.Header().Cursor()) != journal.SegmentHeaderSize || s.Short {
		return false
	}
	_, _, ok := s.Header().State()
	return !ok && journal.AllZero(s.Data[journal.SegmentHeaderSize:])
}

// SaveBroken copies s.Data[from:to] to SEGMENT.broken (SEGMENT.broken.K if
// that exists; never overwriting), fsyncs it and the directory, then zeroes
// the range in the segment and msyncs it. It returns the file written.
func SaveBroken(s *Seg, from, to int64, perm os.FileMode) (string, error) {
	if from >= to {
		return "", nil
	}
	var f *os.File
	var name string
	for i := 0; i < 1000; i++ {
		name = s.Path + journal.BrokenExt
		if i > 0 {
			name += "." + strconv.Itoa(i)
		}
		var err error
		if f, err = fsx.CreateExcl(name, perm); err == nil {
			break
		} else if !errors.Is(err, os.ErrExist) {
			return "", err
		}
	}
	if f == nil {
		return "", fmt.Errorf("%s: too many .broken files", s.Path)
	}
	if _, err := f.Write(s.Data[from:to]); err != nil {
		f.Close()
		return "", err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return "", err
	}
	if err := f.Close(); err != nil {
		return "", err
	}
	if err := fsx.SyncDir(filepath.Dir(name)); err != nil {
		return "", err
	}
	clear(s.Data[from:to])
	return name, s.Sync(int(from), int(to-from))
}

// MoveAside moves files of dir into a new directory orphaned-<UTC time>/
// (nothing is deleted) and fsyncs both directories. It returns the
// directory.
func MoveAside(dir string, names []string, now time.Time) (string, error) {
	sub := filepath.Join(dir, journal.OrphanedPrefix+now.UTC().Format("20060102T150405.000000000Z"))
	if err := fsx.Mkdir(sub, fsx.DirPerm); err != nil {
		return "", err
	}
	for _, n := range names {
		// link, then unlink: a name already in the directory is never
		// replaced (rename would replace it).
		if err := os.Link(filepath.Join(dir, n), filepath.Join(sub, n)); err != nil {
			if errors.Is(err, os.ErrNotExist) {
				continue
			}
			return sub, err
		}
		if err := os.Remove(filepath.Join(dir, n)); err != nil {
			return sub, err
		}
	}
	if err := fsx.SyncDir(sub); err != nil {
		return sub, err
	}
	return sub, fsx.SyncDir(dir)
}

// RemoveTemps deletes leftover *.tmp files of segments, indexes, archives
// and the control page (a crash during their creation left them; none is
// ever read).
func RemoveTemps(dir string) {
	for _, pat := range []string{"*" + journal.SegmentExt + journal.TmpExt, "*" + journal.IndexExt + journal.TmpExt,
		"*" + journal.ArchiveExt + journal.TmpExt, journal.CtlFile + journal.TmpExt} {
		ms, _ := filepath.Glob(filepath.Join(dir, pat))
		for _, m := range ms {
			fsx.RemoveRegular(m)
		}
	}
}
