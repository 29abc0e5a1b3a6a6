package snapshot

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"unsafe"

	"github.com/mdjournal/mdjournal/journal"
)

// fuzzSeed is one input of FuzzHeader: the header's first bytes (only
// [0,60) matter to the parser), the file size to check them against, and the
// bytes every slot of the synthesised file starts with.
type fuzzSeed struct {
	hdr      []byte
	fileSize int64
	slot     []byte
}

// fuzzSeeds are a valid file (depth 1, two slots, slot published) and
// damaged variants. They are also stored in testdata/fuzz/FuzzHeader
// (regenerate with MDJ_SNAP_WRITE_CORPUS=1 go test -run TestWriteFuzzCorpus).
func fuzzSeeds() map[string]fuzzSeed {
	size := FileSize(1, 2)
	hdr := make([]byte, HeaderSize)
	writeHeader(hdr, layout{journalID: 7, depth: 1, slotSize: SlotSize(1), capacity: 2, created: 1, fileSize: size})
	hdr = hdr[:64]
	slot := make([]byte, slotOffLevels+32)
	binary.LittleEndian.PutUint64(slot[slotOffLock:], 2)
	binary.LittleEndian.PutUint64(slot[slotOffSeq:], 9)
	binary.LittleEndian.PutUint64(slot[slotOffCounts:], 1|1<<32)
	binary.LittleEndian.PutUint64(slot[slotOffLevels:], 100)
	binary.LittleEndian.PutUint64(slot[slotOffLevels+8:], 5)

	cp := func(b []byte, f func(b []byte)) []byte {
		b = append([]byte(nil), b...)
		f(b)
		return b
	}
	return map[string]fuzzSeed{
		"valid":     {hdr, size, slot},
		"truncated": {hdr, size - 1, slot},
		"short":     {hdr[:50], size, slot},
		"badcrc":    {cp(hdr, func(b []byte) { b[hdrOffDepth]++ }), size, slot},
		"badmagic":  {cp(hdr, func(b []byte) { b[3] = 0 }), size, slot},
		"oddslot":   {hdr, size, cp(slot, func(b []byte) { b[0] = 1 })},
		"badcounts": {hdr, size, cp(slot, func(b []byte) { b[slotOffCounts] = 200 })},
	}
}

// FuzzHeader feeds arbitrary header bytes and file sizes to the header
// parser and, when it accepts them, reads every slot of a file synthesised
// from them: nothing may panic, and every rejection must be a
// *journal.CorruptionError.
func FuzzHeader(f *testing.F) {
	for _, s := range fuzzSeeds() {
		f.Add(s.hdr, s.fileSize, s.slot)
	}
	f.Fuzz(func(t *testing.T, hdr []byte, fileSize int64, slot []byte) {
		l, err := parseHeader("fuzz", hdr, fileSize)
		if err != nil {
			var ce *journal.CorruptionError
			if !errors.As(err, &ce) {
				t.Fatalf("rejection is not a CorruptionError: %v", err)
			}
			return
		}
		if l.fileSize > fileSize || int64(HeaderSize+l.capacity*l.slotSize) > l.fileSize ||
			l.depth < 1 || l.depth > MaxDepth || l.capacity < 1 || l.capacity > MaxCapacity {
			t.Fatalf("accepted layout %+v for a %d-byte file", l, fileSize)
		}
		if l.fileSize > 1<<22 {
			return // valid but too big to synthesise cheaply
		}
		// 8-byte-aligned memory, as a mapping would be.
		words := make([]uint64, l.fileSize/8)
		buf := unsafe.Slice((*byte)(unsafe.Pointer(&words[0])), l.fileSize)
		copy(buf, hdr)
		for i := range l.capacity {
			copy(buf[HeaderSize+i*l.slotSize:HeaderSize+(i+1)*l.slotSize], slot)
		}
		r := &Reader{m: newM("fuzz", nil, buf, l), StallTimeout: 0}
		var bk Book
		for i := range uint32(min(l.capacity, 64)) {
			err := r.Read(i, &bk)
			if err != nil && !errors.Is(err, ErrStalled) && !errors.Is(err, journal.ErrCorrupt) {
				t.Fatalf("slot %d: %v", i, err)
			}
			if len(bk.Bids) > l.depth || len(bk.Asks) > l.depth {
				t.Fatalf("slot %d: %d/%d levels, depth %d", i, len(bk.Bids), len(bk.Asks), l.depth)
			}
			v, _ := r.View(i)
			_ = v.Bid(v.BidCount()) // indices wrap, never leave the slot
			_ = v.Ask(-1)
		}
		if _, _, err := r.Lookup("AB"); err != nil && !errors.Is(err, ErrStalled) {
			t.Fatalf("lookup: %v", err)
		}
	})
}

func TestWriteFuzzCorpus(t *testing.T) {
	if os.Getenv("MDJ_SNAP_WRITE_CORPUS") != "1" {
		t.Skip("set MDJ_SNAP_WRITE_CORPUS=1 to regenerate testdata/fuzz/FuzzHeader")
	}
	dir := filepath.Join("testdata", "fuzz", "FuzzHeader")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, s := range fuzzSeeds() {
		body := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\nint64(%d)\n[]byte(%q)\n", s.hdr, s.fileSize, s.slot)
		if err := os.WriteFile(filepath.Join(dir, "seed-"+name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
