package reader

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"runtime/debug"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/mdjournal/mdjournal/internal/flock"
	"github.com/mdjournal/mdjournal/internal/fsx"
	"github.com/mdjournal/mdjournal/internal/mmap"
	"github.com/mdjournal/mdjournal/internal/segfile"
	"github.com/mdjournal/mdjournal/journal"
)

// Named reader positions, format.md §13. A reader opened with Options.Name
// keeps the seq, timestamp and epoch of the last frame it consumed in
// DIR/readers/NAME.pos, so a restarted reader resumes after it (like
// Chronicle's named tailers or Kafka consumer offsets) and operators see
// its lag (journalctl stat). The file is locked (flock) while a reader
// uses it: a second process opening the same name gets ErrNameInUse.
const (
	ReadersDir = journal.ReadersDir
	PosExt     = journal.PosExt
)

// ErrNameInUse is returned by Open when another process holds the named
// reader; the error names its PID.
var ErrNameInUse = errors.New("reader: name in use")

// ErrReissued matches *ReissuedError.
var ErrReissued = errors.New("reader: sequence numbers were reissued")

// ReissuedError says that seqs a named reader had consumed were issued
// again, with possibly different content: a power cut lost frames that were
// published but not durable, and the next writer reused their seqs in a new
// epoch (format.md §8.4). Open fails with it unless Options.AcceptReissue,
// which resumes at From.
type ReissuedError struct {
	Name     string
	Seq      uint64 // the last seq the reader consumed
	Epoch    uint32 // in this epoch
	From     uint64 // the first seq issued again
	NewEpoch uint32 // by this epoch
}

// Error names the reader, its position and the re-issued range.
func (e *ReissuedError) Error() string {
	return fmt.Sprintf("reader %s: consumed up to seq %d in epoch %d, but seqs from %d were reissued in epoch %d after a power cut: frames %d..%d may differ from what it saw",
		e.Name, e.Seq, e.Epoch, e.From, e.NewEpoch, e.From, e.Seq)
}

// Unwrap returns ErrReissued.
func (e *ReissuedError) Unwrap() error { return ErrReissued }

var nameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

// ValidName reports whether name is a valid reader name: letters, digits,
// '.', '_' and '-', starting with a letter or digit, at most 64 bytes.
func ValidName(name string) bool { return nameRE.MatchString(name) }

// PosPath returns the position file of reader name in journal dir.
func PosPath(dir, name string) string { return filepath.Join(dir, ReadersDir, name+PosExt) }

// Named is a named reader's persisted position as read by tools.
type Named struct {
	Name      string
	Seq       uint64 // last seq consumed
	TS        int64  // its timestamp
	Epoch     uint32 // its segment's epoch
	PID       uint32
	JournalID uint64
	// Empty: the file holds no position (all zero or shorter than a
	// position: created and never written, or its content lost to a power
	// cut). The reader starts from its Options.From; it holds nothing back.
	Empty bool
}

// ListNamed reads every named reader's position in dir (with pread: it
// never locks or maps them). A file that is empty or all zero is listed as
// Empty; one that holds something other than a position is damage.
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
		path := filepath.Join(dir, ReadersDir, e.Name())
		f, err := fsx.OpenRead(path)
		if err != nil {
			return nil, err
		}
		b := make([]byte, 128)
		n, _ := f.ReadAt(b, 0)
		f.Close()
		if journal.AllZero(b[:n]) {
			out = append(out, Named{Name: name, Empty: true})
			continue
		}
		if n < 128 || string(b[:8]) != journal.PosMagic {
			return nil, journal.Corrupt(path, 0, journal.ErrBadMagic, "not a reader position file")
		}
		out = append(out, Named{Name: name, Seq: binary.LittleEndian.Uint64(b[journal.PosOffSeq:]), TS: int64(binary.LittleEndian.Uint64(b[journal.PosOffTS:])),
			Epoch: binary.LittleEndian.Uint32(b[journal.PosOffEpoch:]),
			PID:   binary.LittleEndian.Uint32(b[journal.PosOffPID:]), JournalID: binary.LittleEndian.Uint64(b[journal.PosOffJournal:])})
	}
	return out, nil
}

func cutSuffix(s, suf string) (string, bool) {
	if len(s) > len(suf) && s[len(s)-len(suf):] == suf {
		return s[:len(s)-len(suf)], true
	}
	return s, false
}

// position is an open, locked, mapped position file.
type position struct {
	name  string
	f     *os.File
	m     []byte
	seqP  *uint64
	tsP   *int64
	epoch *uint32
}

func (p *position) seq() uint64 { return atomic.LoadUint64(p.seqP) }

// openPosition locks and maps (creating and fully allocating it if needed)
// the position file of name.
func openPosition(dir, name string, journalID uint64) (*position, error) {
	if !ValidName(name) {
		return nil, fmt.Errorf("reader: bad reader name %q (letters, digits, . _ -; up to 64)", name)
	}
	if err := fsx.Mkdir(filepath.Join(dir, ReadersDir), fsx.DirPerm); err != nil {
		return nil, err
	}
	path := PosPath(dir, name)
	f, err := fsx.Open(path, os.O_RDWR|os.O_CREATE, fsx.DataPerm)
	if err != nil {
		return nil, err
	}
	if err := flock.TryLock(f); err != nil {
		f.Close()
		var held *flock.HeldError
		if errors.As(err, &held) {
			return nil, fmt.Errorf("%w: reader %q is open in PID %d (%s)", ErrNameInUse, name, held.PID, path)
		}
		return nil, err
	}
	// Every block reserved before mapping: on a full disk the reader gets an
	// error here, never a SIGBUS on its first store.
	if err := mmap.Reserve(f, journal.PosSize); err != nil {
		f.Close()
		return nil, fmt.Errorf("reader %q: %w", name, err)
	}
	m, err := mmap.Map(f, journal.PosSize, true)
	if err != nil {
		f.Close()
		return nil, err
	}
	base := unsafe.Pointer(&m[0])
	p := &position{name: name, f: f, m: m, seqP: (*uint64)(unsafe.Add(base, journal.PosOffSeq)),
		tsP: (*int64)(unsafe.Add(base, journal.PosOffTS)), epoch: (*uint32)(unsafe.Add(base, journal.PosOffEpoch))}
	if string(m[:8]) != journal.PosMagic || binary.LittleEndian.Uint32(m[journal.PosOffVersion:]) != journal.Version {
		if string(m[:8]) == journal.PosMagic && binary.LittleEndian.Uint32(m[journal.PosOffVersion:]) != journal.Version {
			p.close()
			return nil, journal.Corrupt(path, journal.PosOffVersion, journal.ErrVersion, "reader position version %d, this build reads %d",
				binary.LittleEndian.Uint32(m[journal.PosOffVersion:]), journal.Version)
		}
		clear(m[:128])
		copy(m, journal.PosMagic)
		binary.LittleEndian.PutUint32(m[journal.PosOffVersion:], journal.Version)
		binary.LittleEndian.PutUint64(m[journal.PosOffJournal:], journalID)
		binary.LittleEndian.PutUint64(m[journal.PosOffCreated:], uint64(time.Now().UnixNano()))
	} else if id := binary.LittleEndian.Uint64(m[journal.PosOffJournal:]); id != journalID && journalID != 0 {
		if id != 0 {
			p.close()
			return nil, fmt.Errorf("reader: %s belongs to journal %016x, not %016x", path, id, journalID)
		}
		binary.LittleEndian.PutUint64(m[journal.PosOffJournal:], journalID)
	}
	binary.LittleEndian.PutUint32(m[journal.PosOffPID:], uint32(os.Getpid()))
	return p, nil
}

// store records the last consumed frame: epoch and ts, then seq (the
// position is the seq; a crash between leaves the previous seq with the new
// ts, which tools only use for lag in time).
func (p *position) store(seq uint64, ts int64, epoch uint32) {
	if atomic.LoadUint32(p.epoch) != epoch {
		atomic.StoreUint32(p.epoch, epoch)
	}
	atomic.StoreInt64(p.tsP, ts)
	atomic.StoreUint64(p.seqP, seq)
}

func (p *position) close() {
	if p == nil {
		return
	}
	if p.m != nil {
		func() {
			defer func(old bool) { debug.SetPanicOnFault(old); recover() }(debug.SetPanicOnFault(true))
			mmap.Sync(p.m, 0, journal.PosSize, false)
		}()
		mmap.Unmap(p.m)
		p.m = nil
	}
	if p.f != nil {
		p.f.Close() // releases the flock
		p.f = nil
	}
}

// checkReissue finds the first segment of an epoch later than the one the
// named reader last consumed in: if it starts at or before the reader's
// seq, those seqs were issued again.
func (r *Reader) checkReissue(p *position) error {
	seq, ep := p.seq(), atomic.LoadUint32(p.epoch)
	if ep == 0 {
		return nil
	}
	ns, err := segfile.Numbers(r.dir)
	if err != nil {
		return err
	}
	for _, n := range ns {
		h, _, _, err := segfile.ReadHeader(r.dir, n)
		if err != nil || h.Prepared() {
			continue
		}
		if h.Epoch() > ep {
			if h.FirstSeq() <= seq {
				return &ReissuedError{Name: p.name, Seq: seq, Epoch: ep, From: h.FirstSeq(), NewEpoch: h.Epoch()}
			}
			return nil
		}
	}
	return nil
}
