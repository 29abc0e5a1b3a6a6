package reader

import (
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/mdjournal/mdjournal/internal/mmap"
	"github.com/mdjournal/mdjournal/journal"
)

// Named reader positions, format.md §13. A reader opened with Options.Name
// keeps the seq of the last frame it returned in DIR/readers/NAME.pos, so a
// restarted reader resumes after it (like Chronicle's named tailers or Kafka
// consumer offsets) and operators see its lag (journalctl stat).
const (
	ReadersDir   = "readers"
	PosExt       = ".pos"
	PosMagic     = "MDJPOS\x00\x00"
	PosSize      = 4096
	posOffMagic  = 0  // [8]byte
	posOffVer    = 8  // u32
	posOffPID    = 12 // u32: PID of the reader that last opened it
	posOffID     = 16 // u64 journal id
	posOffCreate = 24 // i64 Unix ns
	PosOffSeq    = 64 // u64 atomic: last seq returned (0: none yet), alone on its cache line
	PosOffTS     = 72 // i64: timestamp of that frame
)

var nameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

// PosPath returns the position file of reader name in journal dir.
func PosPath(dir, name string) string { return filepath.Join(dir, ReadersDir, name+PosExt) }

// Named is a named reader's persisted position as read by tools.
type Named struct {
	Name      string
	Seq       uint64 // last seq consumed
	TS        int64  // its timestamp
	PID       uint32
	JournalID uint64
}

// ListNamed reads every named reader's position in dir.
func ListNamed(dir string) ([]Named, error) {
	ents, err := os.ReadDir(filepath.Join(dir, ReadersDir))
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []Named
	for _, e := range ents {
		name, ok := cutSuffix(e.Name(), PosExt)
		if !ok {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, ReadersDir, e.Name()))
		if err != nil {
			return nil, err
		}
		if len(b) < 128 || string(b[:8]) != PosMagic {
			return nil, journal.Corrupt(filepath.Join(dir, ReadersDir, e.Name()), 0, journal.ErrBadMagic, "not a reader position file")
		}
		out = append(out, Named{Name: name, Seq: binary.LittleEndian.Uint64(b[PosOffSeq:]), TS: int64(binary.LittleEndian.Uint64(b[PosOffTS:])),
			PID: binary.LittleEndian.Uint32(b[posOffPID:]), JournalID: binary.LittleEndian.Uint64(b[posOffID:])})
	}
	return out, nil
}

func cutSuffix(s, suf string) (string, bool) {
	if len(s) > len(suf) && s[len(s)-len(suf):] == suf {
		return s[:len(s)-len(suf)], true
	}
	return s, false
}

// position is an open, mapped position file.
type position struct {
	m   []byte
	seq *uint64
	ts  *int64
}

// openPosition maps (creating if needed) the position file of name. It
// returns the stored seq (0 when new).
func openPosition(dir, name string, journalID uint64) (*position, uint64, error) {
	if !nameRE.MatchString(name) {
		return nil, 0, fmt.Errorf("reader: bad reader name %q (letters, digits, . _ -; up to 64)", name)
	}
	if err := os.MkdirAll(filepath.Join(dir, ReadersDir), 0o755); err != nil {
		return nil, 0, err
	}
	path := PosPath(dir, name)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, 0, err
	}
	defer f.Close()
	if err := f.Truncate(PosSize); err != nil { // no-op when already sized
		return nil, 0, err
	}
	m, err := mmap.Map(f, PosSize, true)
	if err != nil {
		return nil, 0, err
	}
	p := &position{m: m, seq: (*uint64)(unsafe.Add(unsafe.Pointer(&m[0]), PosOffSeq)), ts: (*int64)(unsafe.Add(unsafe.Pointer(&m[0]), PosOffTS))}
	if string(m[:8]) != PosMagic {
		clear(m[:128])
		copy(m, PosMagic)
		binary.LittleEndian.PutUint32(m[posOffVer:], journal.Version)
		binary.LittleEndian.PutUint64(m[posOffID:], journalID)
		binary.LittleEndian.PutUint64(m[posOffCreate:], uint64(time.Now().UnixNano()))
	} else if id := binary.LittleEndian.Uint64(m[posOffID:]); id != journalID && journalID != 0 {
		if id != 0 {
			mmap.Unmap(m)
			return nil, 0, fmt.Errorf("reader: %s belongs to journal %016x, not %016x", path, id, journalID)
		}
		// Created while the journal had no control page yet: adopt its id.
		binary.LittleEndian.PutUint64(m[posOffID:], journalID)
	}
	binary.LittleEndian.PutUint32(m[posOffPID:], uint32(os.Getpid()))
	return p, atomic.LoadUint64(p.seq), nil
}

// store records the last returned frame (two plain-cost stores: on amd64
// an atomic 8-byte store of the seq, then the ts).
func (p *position) store(seq uint64, ts int64) {
	atomic.StoreInt64(p.ts, ts)
	atomic.StoreUint64(p.seq, seq)
}

func (p *position) close() {
	if p != nil && p.m != nil {
		mmap.Sync(p.m, 0, PosSize, false)
		mmap.Unmap(p.m)
		p.m = nil
	}
}
