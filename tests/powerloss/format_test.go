package powerloss_test

import (
	"encoding/binary"
	"hash/crc32"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// An independent reading of the on-disk facts the campaign checks, written
// from format.md (§2.1 header, §2.2 state records, §13 reader positions)
// with pread, so that expectations never come from the code under test.

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

type stateRec struct {
	Gen, DurOff, DurSeq, LastSeq uint64
	Flags, PID                   uint32
}

func (s stateRec) sealed() bool { return s.Flags&1 != 0 }
func (s stateRec) clean() bool  { return s.Flags&2 != 0 }

// segFacts is what one segment file's header page says.
type segFacts struct {
	Num       uint64
	Path      string
	Size      int64
	StaticOK  bool // magic, version 3 and header_crc hold
	JournalID uint64
	FirstSeq  uint64
	Capacity  uint64
	Epoch     uint32
	Cursor    uint64
	State     stateRec
	StateOK   bool // a valid state record exists (activated)
}

func u32(b []byte, off int) uint32 { return binary.LittleEndian.Uint32(b[off:]) }
func u64(b []byte, off int) uint64 { return binary.LittleEndian.Uint64(b[off:]) }

// parseState reads one 64-byte state record: valid if its CRC-32C over
// [0,60) matches, gen ≠ 0 and no unknown flag is set (§2.2).
func parseState(r []byte) (stateRec, bool) {
	if crc32.Checksum(r[:60], castagnoli) != u32(r, 60) || u64(r, 0) == 0 || u32(r, 32)&^3 != 0 {
		return stateRec{}, false
	}
	return stateRec{Gen: u64(r, 0), DurOff: u64(r, 8), DurSeq: u64(r, 16), LastSeq: u64(r, 24), Flags: u32(r, 32), PID: u32(r, 36)}, true
}

// parseHeader reads a segment header page (§2.1, §2.2): the current state
// record is the valid one with the larger gen, A if equal.
func parseHeader(num uint64, path string, page []byte, size int64) segFacts {
	f := segFacts{Num: num, Path: path, Size: size}
	if len(page) < 4096 {
		return f
	}
	f.StaticOK = string(page[:8]) == "MDJSEG\x00\x00" && u32(page, 8) == 3 && crc32.Checksum(page[:60], castagnoli) == u32(page, 60)
	f.JournalID, f.FirstSeq, f.Capacity, f.Epoch, f.Cursor = u64(page, 16), u64(page, 32), u64(page, 48), u32(page, 56), u64(page, 64)
	a, aok := parseState(page[128:192])
	b, bok := parseState(page[192:256])
	switch {
	case aok && (!bok || a.Gen >= b.Gen):
		f.State, f.StateOK = a, true
	case bok:
		f.State, f.StateOK = b, true
	}
	return f
}

// readSegments reads every NNNN.seg header in dir, ascending.
func readSegments(dir string) ([]segFacts, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var out []segFacts
	for _, e := range ents {
		name := e.Name()
		if len(name) != 24 || !strings.HasSuffix(name, ".seg") {
			continue
		}
		n, err := strconv.ParseUint(name[:20], 10, 64)
		if err != nil {
			continue
		}
		path := filepath.Join(dir, name)
		f, err := os.Open(path)
		if err != nil {
			return nil, err
		}
		st, _ := f.Stat()
		page := make([]byte, 4096)
		k, _ := f.ReadAt(page, 0)
		f.Close()
		out = append(out, parseHeader(n, path, page[:k], st.Size()))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Num < out[j].Num })
	return out, nil
}

// posFacts is a named reader's position file (§13).
type posFacts struct {
	Exists bool
	Size   int64
	Valid  bool // magic and version hold
	Seq    uint64
	Epoch  uint32
}

func readPos(path string) posFacts {
	b, err := os.ReadFile(path)
	if err != nil {
		return posFacts{}
	}
	p := posFacts{Exists: true, Size: int64(len(b))}
	if len(b) >= 128 && string(b[:8]) == "MDJPOS\x00\x00" && u32(b, 8) == 3 {
		p.Valid, p.Seq, p.Epoch = true, u64(b, 64), u32(b, 80)
	}
	return p
}
