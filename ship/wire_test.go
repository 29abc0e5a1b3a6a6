package ship_test

import (
	"bytes"
	"errors"
	"testing"

	"github.com/nats-io/nats.go"

	"github.com/mdjournal/mdjournal/journal"
	"github.com/mdjournal/mdjournal/ship"
)

// batch encodes frames first..first+n-1 as a shipper stores them.
func batch(first uint64, n int) []byte {
	var out []byte
	for i := 0; i < n; i++ {
		seq := first + uint64(i)
		p := payload(seq)
		b := make([]byte, journal.FrameSpace(len(p)+journal.SourceTrailerSize))
		w := journal.PutFrameBodySource(b, seq, int64(seq), journal.TypeRaw, journal.FrameSource, 1, p, 5, seq)
		for k := 0; k < 8; k++ {
			b[k] = byte(w >> (8 * k))
		}
		out = append(out, b...)
	}
	return out
}

// DecodeFrames accepts a well-formed batch, hands out its frames with
// their offsets, and refuses every single flipped bit, a cut, and headers
// that do not match the frames.
func TestDecodeFrames(t *testing.T) {
	data := batch(41, 5)
	m := ship.Meta{JournalID: 7, First: 41, Last: 45, Epoch: 1, Segment: 1}
	fs, err := ship.DecodeFrames(m, data, nil)
	if err != nil || len(fs) != 5 || fs[4].Seq != 45 || fs[2].SourceSeq != 43 {
		t.Fatalf("%d frames, %v", len(fs), err)
	}
	for _, f := range fs {
		b := make([]byte, journal.StoredLen(&f))
		journal.PutStored(b, &f)
		if !bytes.Equal(b, data[f.Offset:f.Offset+int64(len(b))]) {
			t.Fatalf("frame %d: offset %d does not point at its stored bytes", f.Seq, f.Offset)
		}
	}
	for bit := 0; bit < len(data)*8; bit++ {
		d := append([]byte(nil), data...)
		d[bit/8] ^= 1 << (bit % 8)
		if _, err := ship.DecodeFrames(m, d, fs); !errors.Is(err, ship.ErrDamaged) {
			t.Fatalf("bit %d flipped: %v", bit, err)
		}
	}
	for _, cut := range []int{1, 8, 40, len(data) - 8} {
		if _, err := ship.DecodeFrames(m, data[:len(data)-cut], fs); !errors.Is(err, ship.ErrDamaged) {
			t.Fatalf("cut %d: %v", cut, err)
		}
	}
	for _, bad := range []ship.Meta{{First: 40, Last: 45}, {First: 41, Last: 44}, {First: 41, Last: 46}} {
		if _, err := ship.DecodeFrames(bad, data, fs); !errors.Is(err, ship.ErrDamaged) {
			t.Fatalf("headers %d..%d: %v", bad.First, bad.Last, err)
		}
	}
}

// Header and ParseMeta agree; malformed headers are refused.
func TestMetaHeaders(t *testing.T) {
	m := ship.Meta{JournalID: 0xfeedbeef, First: 10, Last: 20, Epoch: 3, Segment: 4}
	h := m.Header()
	got, err := ship.ParseMeta(h)
	if err != nil || got != m {
		t.Fatalf("%+v %v", got, err)
	}
	for _, k := range []string{ship.HeaderVersion, ship.HeaderJournal, ship.HeaderFirst, ship.HeaderLast, ship.HeaderEpoch, ship.HeaderSegment} {
		bad := nats.Header{}
		for kk, v := range h {
			bad[kk] = v
		}
		bad.Set(k, "x")
		if _, err := ship.ParseMeta(bad); err == nil {
			t.Fatalf("%s=x accepted", k)
		}
	}
	h.Set(ship.HeaderLast, "9")
	if _, err := ship.ParseMeta(h); err == nil {
		t.Fatal("last before first accepted")
	}
}

// Checking a batch and encoding frames into one allocate nothing once the
// frame slice has grown: the per-frame paths of mirror and shipper.
func TestFramePathsAllocateNothing(t *testing.T) {
	data := batch(1, 100)
	m := ship.Meta{First: 1, Last: 100}
	fs, err := ship.DecodeFrames(m, data, nil)
	if err != nil {
		t.Fatal(err)
	}
	if n := testing.AllocsPerRun(100, func() { fs, _ = ship.DecodeFrames(m, data, fs) }); n != 0 {
		t.Fatalf("DecodeFrames: %v allocations", n)
	}
	out := make([]byte, len(data))
	if n := testing.AllocsPerRun(100, func() {
		off := 0
		for i := range fs {
			off += journal.PutStored(out[off:], &fs[i])
		}
	}); n != 0 {
		t.Fatalf("PutStored: %v allocations", n)
	}
	if !bytes.Equal(out, data) {
		t.Fatal("re-encoded batch differs")
	}
}

// DecodeFrames never panics or over-reads; what it accepts re-encodes to
// exactly the bytes it was given.
func FuzzDecodeFrames(f *testing.F) {
	f.Add(uint64(1), uint64(3), batch(1, 3))
	f.Add(uint64(7), uint64(7), batch(7, 1))
	f.Add(uint64(1), uint64(2), batch(1, 3)[:50])
	f.Add(uint64(0), uint64(0), []byte{})
	f.Fuzz(func(t *testing.T, first, last uint64, data []byte) {
		m := ship.Meta{First: first, Last: last}
		fs, err := ship.DecodeFrames(m, data, nil)
		if err != nil {
			var re *ship.RangeError
			if !errors.As(err, &re) || !errors.Is(err, ship.ErrDamaged) {
				t.Fatalf("error %v is not a RangeError/ErrDamaged", err)
			}
			return
		}
		out := make([]byte, 0, len(data))
		for i := range fs {
			b := make([]byte, journal.StoredLen(&fs[i]))
			journal.PutStored(b, &fs[i])
			out = append(out, b...)
		}
		if !bytes.Equal(out, data) || fs[0].Seq != first || fs[len(fs)-1].Seq != last {
			t.Fatalf("accepted a batch that does not re-encode to itself")
		}
	})
}
