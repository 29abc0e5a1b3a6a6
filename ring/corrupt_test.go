package ring

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mdjournal/mdjournal/journal"
	"github.com/mdjournal/mdjournal/wait"
)

// TestDamagedHeader opens ring files damaged in one field each and checks
// the typed error: sentinel, file name and offset.
func TestDamagedHeader(t *testing.T) {
	const capacity = 4096
	le := binary.LittleEndian
	reseal := func(h []byte) { le.PutUint32(h[offHeaderCRC:], journal.CRC32C(h[:staticEnd])) }
	cases := []struct {
		name     string
		damage   func(h []byte) // h: the header page; resealed unless noSeal
		size     int64          // file size override (0: keep)
		sentinel error
		off      int64
	}{
		{"bad magic", func(h []byte) { h[0] = 'X' }, 0, ErrBadMagic, offMagic},
		{"zeroed header", func(h []byte) { clear(h) }, 0, ErrBadMagic, offMagic},
		{"format version 1", func(h []byte) { le.PutUint32(h[offVersion:], 1); reseal(h) }, 0, ErrVersion, offVersion},
		{"format version 3", func(h []byte) { le.PutUint32(h[offVersion:], 3); reseal(h) }, 0, ErrVersion, offVersion},
		{"bad header size", func(h []byte) { le.PutUint32(h[offHeaderSize:], 512); reseal(h) }, 0, ErrBadHeader, offHeaderSize},
		{"capacity not power of two", func(h []byte) { le.PutUint64(h[offCapacity:], 3000); reseal(h) }, 0, ErrBadCapacity, offCapacity},
		{"capacity zero", func(h []byte) { le.PutUint64(h[offCapacity:], 0); reseal(h) }, 0, ErrBadCapacity, offCapacity},
		{"capacity below minimum", func(h []byte) { le.PutUint64(h[offCapacity:], 32); reseal(h) }, 0, ErrBadCapacity, offCapacity},
		{"capacity huge", func(h []byte) { le.PutUint64(h[offCapacity:], 1<<62); reseal(h) }, 0, ErrBadCapacity, offCapacity},
		{"capacity over 4 GiB", func(h []byte) { le.PutUint64(h[offCapacity:], 1<<33); reseal(h) }, 0, ErrBadCapacity, offCapacity},
		{"capacity larger than file", func(h []byte) { le.PutUint64(h[offCapacity:], 8192); reseal(h) }, 0, ErrTruncated, HeaderSize + capacity},
		{"checksum", func(h []byte) { h[offCreated] ^= 1 }, 0, ErrChecksum, offHeaderCRC},
		{"generation changed in place", func(h []byte) { h[offGeneration] ^= 1 }, 0, ErrChecksum, offHeaderCRC},
		{"generation zero", func(h []byte) { le.PutUint64(h[offGeneration:], 0); reseal(h) }, 0, ErrBadHeader, offGeneration},
		{"truncated data area", nil, HeaderSize + capacity - 1, ErrTruncated, HeaderSize + capacity - 1},
		{"shorter than header", nil, 100, ErrTruncated, 100},
		{"empty file", nil, -1, ErrTruncated, 0},
		{"tail unaligned", func(h []byte) { le.PutUint64(h[OffTail:], 12) }, 0, ErrBadPosition, OffTail},
		{"head unaligned", func(h []byte) { le.PutUint64(h[OffTail:], 16); le.PutUint64(h[OffHead:], 4) }, 0, ErrBadPosition, OffHead},
		{"head past tail", func(h []byte) { le.PutUint64(h[OffHead:], 8) }, 0, ErrBadPosition, OffHead},
		{"tail over a lap ahead", func(h []byte) { le.PutUint64(h[OffTail:], capacity) }, 0, ErrBadPosition, OffHead},
		{"unknown side state", func(h []byte) { le.PutUint32(h[OffConsumer+sideOffState:], 4) }, 0, ErrBadHeader, OffConsumer + sideOffState},
		{"tail but no producer ever", func(h []byte) { le.PutUint64(h[OffTail:], 16) }, 0, ErrBadPosition, OffTail},
		{"head but no consumer ever", func(h []byte) {
			le.PutUint32(h[OffProducer+sideOffState:], StateClosed)
			le.PutUint64(h[OffTail:], 16)
			le.PutUint64(h[OffHead:], 16)
		}, 0, ErrBadPosition, OffHead},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(ringDir(t), "r")
			r, err := Create(path, capacity, Options{})
			if err != nil {
				t.Fatal(err)
			}
			r.Close()
			if tc.damage != nil {
				b, err := os.ReadFile(path)
				if err != nil {
					t.Fatal(err)
				}
				tc.damage(b[:HeaderSize])
				if err := os.WriteFile(path, b, 0o600); err != nil {
					t.Fatal(err)
				}
			}
			switch {
			case tc.size > 0:
				os.Truncate(path, tc.size)
			case tc.size < 0:
				os.Truncate(path, 0)
			}
			r, err = Open(path)
			if err == nil {
				r.Close()
				t.Fatal("Open succeeded on a damaged ring")
			}
			ce := corruptionOf(t, err, tc.sentinel)
			if ce.File != path || ce.Offset != tc.off {
				t.Fatalf("error names %s offset %d, want %s offset %d (%v)", ce.File, ce.Offset, path, tc.off, err)
			}
			if tc.name == "format version 1" && !strings.Contains(err.Error(), "version 1") {
				t.Fatalf("the version-1 message does not say so: %v", err)
			}
			// The session constructors refuse it the same way (never
			// replace a file that is not a valid ring).
			if _, err := NewConsumer(path, ConsumerOptions{AttachTimeout: -1}); !errors.Is(err, tc.sentinel) {
				t.Fatalf("NewConsumer: %v, want %v", err, tc.sentinel)
			}
			if _, err := NewProducer(path, capacity, ProducerOptions{Options: Options{Replace: true}}); !errors.Is(err, tc.sentinel) {
				t.Fatalf("NewProducer with Replace: %v, want %v", err, tc.sentinel)
			}
		})
	}
}

// TestDamagedRecord damages a published record in place and checks that the
// consumer stops with ErrBadRecord at the record's file offset.
func TestDamagedRecord(t *testing.T) {
	const capacity = 256
	le := binary.LittleEndian
	cases := []struct {
		name   string
		damage func(d []byte) // data area; records: 24 B payload at [0,32), 8 B at [32,48)
		idx    uint64         // data-area index of the bad header
	}{
		{"length over max payload", func(d []byte) { le.PutUint32(d[0:], capacity/2) }, 0},
		{"length huge", func(d []byte) { le.PutUint32(d[0:], 0xffffffff) }, 0},
		{"unknown kind", func(d []byte) { le.PutUint32(d[4:], 7) }, 0},
		{"zero kind", func(d []byte) { le.PutUint32(d[32+4:], 0) }, 32},
		{"padding not to the end", func(d []byte) { le.PutUint64(d[0:], 8|KindPad<<32) }, 0},
		{"record crossing the end", func(d []byte) { le.PutUint64(d[32:], 120|KindData<<32); le.PutUint64(d[160:], 100|KindData<<32) }, 160},
	}
	for _, tc := range cases {
		for _, batch := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/batch=%v", tc.name, batch), func(t *testing.T) {
				r, p, c := newPair(t, capacity, wait.Spin)
				p.TryWrite(make([]byte, 24))
				p.TryWrite(make([]byte, 8))
				tc.damage(r.data)
				var err error
				if batch {
					for err == nil {
						_, err = c.TryReadBatch(10, func([]byte) {})
					}
				} else {
					for {
						if _, ok := c.TryRead(); !ok {
							break
						}
					}
					err = c.Err()
				}
				ce := corruptionOf(t, err, ErrBadRecord)
				if want := int64(HeaderSize + tc.idx); ce.Offset != want || ce.File != r.Path() {
					t.Fatalf("error at %s offset %d, want offset %d: %v", ce.File, ce.Offset, want, ce)
				}
				if _, err := c.Read(); err != c.Err() {
					t.Fatalf("Read after damage: %v", err)
				}
			})
		}
	}
	t.Run("padding crossing into the next lap", func(t *testing.T) {
		r, p, c := newPair(t, capacity, wait.Spin)
		for range 7 {
			p.TryWrite(make([]byte, 24)) // 7*32 = 224
			c.TryRead()
		}
		c.Release()
		c.TryRead()
		p.TryWrite(make([]byte, 40)) // pad 32 at 224, record at 0
		le.PutUint32(r.data[224:], 100)
		c.TryRead()
		corruptionOf(t, c.Err(), ErrBadRecord)
	})
	// A header chain that runs a lap past the producer position: stale
	// bytes of an earlier lap, never a published record.
	t.Run("record a lap past the producer position", func(t *testing.T) {
		r, _, c := newPair(t, capacity, wait.Spin)
		le.PutUint64(r.data[0:], 120|KindData<<32)
		le.PutUint64(r.data[128:], 120|KindData<<32)
		n := 0
		for {
			if _, ok := c.TryRead(); !ok {
				break
			}
			n++
		}
		ce := corruptionOf(t, c.Err(), ErrBadRecord)
		if n != 2 || ce.Offset != HeaderSize {
			t.Fatalf("%d records, then %v; want 2 then damage at offset %d", n, ce, HeaderSize)
		}
	})
	t.Run("producer position unaligned", func(t *testing.T) {
		r, _, c := newPair(t, capacity, wait.Spin)
		le.PutUint64(r.data[0:], 120|KindData<<32)
		le.PutUint64(r.data[128:], 120|KindData<<32)
		le.PutUint64(r.m[OffTail:], 12)
		for {
			if _, ok := c.TryRead(); !ok {
				break
			}
		}
		ce := corruptionOf(t, c.Err(), ErrBadPosition)
		if ce.Offset != OffTail {
			t.Fatalf("offset %d", ce.Offset)
		}
	})
}

// TestRandomDamageNoPanic fills header positions and the data area with
// random bytes and reads until the consumer stops: errors are fine, panics
// and reads outside the data area are not (the slice bounds would panic).
func TestRandomDamageNoPanic(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 7))
	var rings [4]*Ring
	for i := range rings {
		rings[i], _, _ = newPair(t, 64<<i, wait.Spin)
		rings[i].sides[1].detach() // the consumer; a fresh one attaches per case
	}
	for i := range 3000 {
		r := rings[rng.IntN(len(rings))]
		capacity := r.Capacity()
		// Forge a never-used consumer side, so a fresh consumer attaches.
		binary.LittleEndian.PutUint64(r.m[OffHead:], 0)
		binary.LittleEndian.PutUint64(r.m[OffConsumer:], 0)
		c, err := r.Consumer(wait.Spin)
		if err != nil {
			t.Fatal(err)
		}
		for j := range r.data {
			r.data[j] = byte(rng.Uint32())
		}
		if rng.IntN(3) == 0 {
			// plausible headers: small lengths and valid kinds
			for j := 0; j < capacity; j += 8 {
				binary.LittleEndian.PutUint64(r.data[j:], uint64(rng.IntN(capacity))|uint64(1+rng.IntN(2))<<32)
			}
		}
		binary.LittleEndian.PutUint64(r.m[OffTail:], uint64(rng.IntN(2*capacity))&^uint64(rng.IntN(2)*7))
		n := 0
		for ; n < 10*capacity; n++ {
			if _, ok := c.TryRead(); !ok {
				break
			}
		}
		if n == 10*capacity {
			t.Fatalf("case %d: consumer read %d records from %d random bytes", i, n, capacity)
		}
		c.Close()
	}
}

func FuzzOpen(f *testing.F) {
	// Not tmpfs: fuzz workers killed at the end of a run skip cleanups, so
	// what they leave must not sit in /dev/shm; each input's file is
	// removed after use.
	dir := f.TempDir()
	good := filepath.Join(dir, "good")
	r, err := Create(good, 64, Options{})
	if err != nil {
		f.Fatal(err)
	}
	r.Close()
	b, _ := os.ReadFile(good)
	f.Add(b)
	f.Add(b[:100])
	// A ring with records, padding and a closed producer.
	used := filepath.Join(dir, "used")
	r, err = Create(used, 128, Options{})
	if err != nil {
		f.Fatal(err)
	}
	p, _ := r.Producer(wait.Spin)
	c, _ := r.Consumer(wait.Spin)
	for i := range 5 {
		p.TryWrite(make([]byte, 10+i*7))
		c.TryRead()
	}
	c.TryRead()
	p.TryWrite([]byte("last"))
	p.Close()
	r.Close()
	b, _ = os.ReadFile(used)
	binary.LittleEndian.PutUint64(b[OffConsumer:], 0) // consumer side free again
	binary.LittleEndian.PutUint64(b[OffHead:], 0)
	f.Add(b)
	f.Fuzz(func(t *testing.T, data []byte) {
		path := filepath.Join(dir, "r")
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		defer os.Remove(path)
		r, err := Open(path)
		if err != nil {
			return
		}
		defer r.Close()
		c, err := r.Consumer(wait.Spin)
		if err != nil {
			return
		}
		for range 1000 {
			v, ok := c.TryRead()
			if !ok {
				break
			}
			for i := range v { // views lie inside the data area
				_ = v[i]
			}
		}
		c.Err()
	})
}
