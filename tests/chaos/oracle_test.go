package chaos_test

// The oracle: what the test knows about a journal directory, read from the
// bytes with its own code, written from format.md alone (§2 segment header,
// §2.2 state records, §3 frames, §5 index, §13 positions). It never calls
// the library's decoders, so an expectation derived from it is not computed
// by the code under test.

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Constants of format.md, restated (not imported) on purpose.
const (
	headerPage  = 4096    // §2: frames start here
	frameHeader = 32      // §3
	maxFrame    = 65536   // §3: 32 ≤ size ≤ 65536
	typeEnd     = 1       // §3.1 segment_end
	maxCapacity = 1 << 30 // §2.1
	segMagic    = "MDJSEG\x00\x00"
	idxMagic    = "MDJIDX\x00\x00"
	idxEntries  = 128 // §5: entry i at 128 + 24·i
	idxEntry    = 24
	posSeqOff   = 64 // §13
)

func le64(b []byte) uint64 { return binary.LittleEndian.Uint64(b) }
func le32(b []byte) uint32 { return binary.LittleEndian.Uint32(b) }
func align8(n int64) int64 { return (n + 7) &^ 7 }

// stateRec is one §2.2 state record.
type stateRec struct {
	valid               bool
	gen, dOff, dSeq, ls uint64
	flags               uint32
}

func (s stateRec) clean() bool { return s.flags&2 != 0 }

func parseState(b []byte) stateRec {
	r := stateRec{gen: le64(b[0:]), dOff: le64(b[8:]), dSeq: le64(b[16:]), ls: le64(b[24:]), flags: le32(b[32:])}
	r.valid = crc32.Checksum(b[:60], castagnoli) == le32(b[60:]) && r.gen != 0 && r.flags&^3 == 0
	return r
}

// frameInfo is one frame found by walking commit words (§3, §4).
type frameInfo struct {
	off, len int64 // start and stored length (align8(size))
	size     int64 // size without padding
	seq      uint64
	typ      uint16
	ts       int64
}

// segInfo is what the oracle reads from one segment or archive file.
type segInfo struct {
	name     string // base name
	num      uint64
	archived bool
	size     int64 // file size

	headerOK  bool // magic, and header_crc holds over [0,60)
	journalID uint64
	firstSeq  uint64
	capacity  uint64
	epoch     uint32
	cursor    uint64
	st        [2]stateRec
	cur       int // index of the current state record, -1 if none is valid

	frames []frameInfo // raw segments: every frame with a good checksum, end marker included
	end    int64       // raw segments: offset just past the last such frame (X)
	sealed bool        // the walk ended at an end marker

	// emptyPrepared: never activated and provably empty (cursor 4096, no
	// valid state record, every byte past the header page zero): the
	// writer removes such a trailing spare (format.md §8.2 step 2).
	emptyPrepared bool
}

func (s *segInfo) activated() bool { return s.headerOK && s.firstSeq != 0 && s.cur >= 0 }

func (s *segInfo) current() stateRec {
	if s.cur < 0 {
		return stateRec{}
	}
	return s.st[s.cur]
}

// frameAt returns the frame whose stored bytes contain off.
func (s *segInfo) frameAt(off int64) (frameInfo, bool) {
	i := sort.Search(len(s.frames), func(i int) bool { return s.frames[i].off+s.frames[i].len > off })
	if i < len(s.frames) && s.frames[i].off <= off {
		return s.frames[i], true
	}
	return frameInfo{}, false
}

func parseSegmentFile(path string, archived bool) (*segInfo, error) {
	b, err := readRegular(path, maxCapacity+headerPage)
	if err != nil {
		return nil, err
	}
	s := &segInfo{name: filepath.Base(path), archived: archived, size: int64(len(b)), cur: -1}
	base := strings.TrimSuffix(strings.TrimSuffix(s.name, ".zst"), ".seg")
	s.num, _ = strconv.ParseUint(base, 10, 64)
	if len(b) < headerPage {
		return s, nil
	}
	s.headerOK = string(b[:8]) == segMagic && crc32.Checksum(b[:60], castagnoli) == le32(b[60:])
	s.journalID, s.firstSeq, s.capacity, s.epoch = le64(b[16:]), le64(b[32:]), le64(b[48:]), le32(b[56:])
	s.cursor = le64(b[64:])
	s.st[0], s.st[1] = parseState(b[128:192]), parseState(b[192:256])
	switch {
	case s.st[0].valid && (!s.st[1].valid || s.st[0].gen >= s.st[1].gen):
		s.cur = 0
	case s.st[1].valid:
		s.cur = 1
	}
	if !archived && s.cur < 0 && s.cursor == headerPage {
		s.emptyPrepared = true
		for _, c := range b[headerPage:] {
			if c != 0 {
				s.emptyPrepared = false
				break
			}
		}
	}
	if archived || !s.headerOK {
		return s, nil
	}
	limit := min(int64(len(b)), int64(s.capacity))
	off := int64(headerPage)
	for off+8 <= limit {
		w := le64(b[off:])
		if w == 0 {
			break
		}
		size := int64(w >> 32)
		if size < frameHeader || size > maxFrame || off+size > limit {
			break
		}
		if crc32.Update(uint32(size), castagnoli, b[off+8:off+size]) != uint32(w) {
			break
		}
		f := frameInfo{off: off, len: align8(size), size: size, seq: le64(b[off+8:]), ts: int64(le64(b[off+16:])), typ: binary.LittleEndian.Uint16(b[off+24:])}
		s.frames = append(s.frames, f)
		off += f.len
		if f.typ == typeEnd {
			s.sealed = true
			break
		}
	}
	s.end = off
	return s, nil
}

// idxInfo is what the oracle reads from a sparse index (§5).
type idxInfo struct {
	name     string
	size     int64
	count    uint64
	capacity uint64
	entries  [][3]uint64 // seq, ts, offset of every slot in the file
}

func parseIndexFile(path string) (*idxInfo, error) {
	b, err := readRegular(path, 64<<20)
	if err != nil {
		return nil, err
	}
	x := &idxInfo{name: filepath.Base(path), size: int64(len(b))}
	if len(b) >= idxEntries {
		x.capacity, x.count = le64(b[32:]), le64(b[64:])
		for off := idxEntries; off+idxEntry <= len(b); off += idxEntry {
			x.entries = append(x.entries, [3]uint64{le64(b[off:]), le64(b[off+8:]), le64(b[off+16:])})
		}
	}
	return x, nil
}

// facts is the oracle's view of a whole journal directory.
type facts struct {
	dir    string
	segs   []*segInfo          // by number; the raw file wins over an archive (§14)
	empty  map[string]bool     // base names of provably empty prepared segments
	idx    map[uint64]*idxInfo // by segment number
	posSeq uint64              // the named reader's stored seq (0: none)
}

func readFacts(dir, reader string) (*facts, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	f := &facts{dir: dir, idx: map[uint64]*idxInfo{}, empty: map[string]bool{}}
	byNum := map[uint64]*segInfo{}
	for _, e := range ents {
		name := e.Name()
		if !e.Type().IsRegular() {
			continue
		}
		var num uint64
		switch {
		case strings.HasSuffix(name, ".seg") || strings.HasSuffix(name, ".seg.zst"):
			archived := strings.HasSuffix(name, ".zst")
			s, err := parseSegmentFile(filepath.Join(dir, name), archived)
			if err != nil {
				return nil, err
			}
			if s.emptyPrepared {
				f.empty[s.name] = true
			}
			if old, ok := byNum[s.num]; ok && !old.archived {
				continue
			}
			byNum[s.num] = s
		case strings.HasSuffix(name, ".idx"):
			if _, err := fmt.Sscanf(name, "%d.idx", &num); err != nil {
				continue
			}
			x, err := parseIndexFile(filepath.Join(dir, name))
			if err != nil {
				return nil, err
			}
			f.idx[num] = x
		}
	}
	for _, s := range byNum {
		f.segs = append(f.segs, s)
	}
	sort.Slice(f.segs, func(i, j int) bool { return f.segs[i].num < f.segs[j].num })
	if reader != "" {
		if b, err := readRegular(filepath.Join(dir, "readers", reader+".pos"), 4096); err == nil && len(b) >= posSeqOff+8 {
			f.posSeq = le64(b[posSeqOff:])
		}
	}
	return f, nil
}

// activated returns the activated segments in order.
func (f *facts) activated() []*segInfo {
	var out []*segInfo
	for _, s := range f.segs {
		if s.activated() {
			out = append(out, s)
		}
	}
	return out
}

// lastActivated is the last activated segment (nil if none).
func (f *facts) lastActivated() *segInfo {
	a := f.activated()
	if len(a) == 0 {
		return nil
	}
	return a[len(a)-1]
}

// readRegular reads at most limit bytes of a regular file without
// following a symlink.
func readRegular(path string, limit int64) ([]byte, error) {
	fi, err := os.Lstat(path)
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is not a regular file", path)
	}
	fh, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer fh.Close()
	return io.ReadAll(io.LimitReader(fh, limit))
}

// copyTree copies the regular files and directories below src into dst
// (created), keeping modes; anything else is skipped.
func copyTree(src, dst string) error {
	return filepath.Walk(src, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			if os.IsNotExist(err) { // a file a concurrent command removed
				return nil
			}
			return err
		}
		rel, _ := filepath.Rel(src, p)
		target := filepath.Join(dst, rel)
		switch {
		case fi.IsDir():
			return os.MkdirAll(target, fi.Mode().Perm()|0o700)
		case fi.Mode().IsRegular():
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			return os.WriteFile(target, b, fi.Mode().Perm())
		}
		return nil
	})
}

// treeFiles returns every regular file below dir (relative path → bytes).
func treeFiles(dir string) (map[string][]byte, error) {
	m := map[string][]byte{}
	err := filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		if fi.Mode().IsRegular() {
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			rel, _ := filepath.Rel(dir, p)
			m[rel] = b
		}
		return nil
	})
	return m, err
}
