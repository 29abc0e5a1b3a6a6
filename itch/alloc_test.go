package itch

import (
	"bytes"
	"io"
	"testing"
)

// TestDecodeDoesNotAllocate: Parse, the view accessors, every struct's Decode,
// AppendEncode into room and Encode allocate nothing.
func TestDecodeDoesNotAllocate(t *testing.T) {
	for _, v := range vectors {
		wire := unhex(t, v.wire)
		m := NewMsg(v.typ)
		buf := make([]byte, 0, 64)
		allocs := testing.AllocsPerRun(200, func() {
			msg, err := Parse(wire)
			if err != nil {
				t.Fatal(err)
			}
			_, _, _, _ = msg.Type(), msg.Locate(), msg.Tracking(), msg.Timestamp()
			msg.Stock()
			if err := m.Decode(msg); err != nil {
				t.Fatal(err)
			}
			buf = m.AppendEncode(buf[:0])
			if _, err := m.Encode(buf[:cap(buf)]); err != nil {
				t.Fatal(err)
			}
		})
		if allocs != 0 {
			t.Errorf("%v: %v allocations", v.typ, allocs)
		}
	}
}

// TestReaderDoesNotAllocate: walking the real file allocates nothing per
// message (the 64 KiB buffer is made once by NewReader).
func TestReaderDoesNotAllocate(t *testing.T) {
	file := readSample(t)
	br := bytes.NewReader(file)
	r := NewReader(br)
	var sd StockDirectory
	allocs := testing.AllocsPerRun(20, func() {
		br.Reset(file)
		*r = Reader{br: r.br}
		r.br.Reset(br)
		for {
			m, err := r.Next()
			if err == io.EOF {
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if m.Type() == TypeStockDirectory {
				sd.Decode(m)
			}
		}
	})
	if allocs != 0 {
		t.Errorf("%v allocations per pass over 1000 messages", allocs)
	}
}

// BenchmarkDecodeAddOrder: Decode of one Add Order beside the floor of
// copying its 36 bytes, in the same run.
func BenchmarkDecodeAddOrder(b *testing.B) {
	wire := unhex(b, vectors[10].wire)
	b.Run("floor-copy", func(b *testing.B) {
		var dst [36]byte
		b.SetBytes(int64(len(wire)))
		for b.Loop() {
			copy(dst[:], wire)
		}
	})
	b.Run("decode", func(b *testing.B) {
		var m AddOrder
		b.SetBytes(int64(len(wire)))
		for b.Loop() {
			if err := m.Decode(wire); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkReaderFile: messages of the real file per second through Reader
// and Parse, beside the floor of walking the same framing with no checks.
func BenchmarkReaderFile(b *testing.B) {
	file := readSample(b)
	b.Run("floor", func(b *testing.B) {
		b.SetBytes(int64(len(file)))
		n := 0
		for b.Loop() {
			for off := 0; off+2 <= len(file); {
				l := int(file[off])<<8 | int(file[off+1])
				n += int(file[off+2])
				off += 2 + l
			}
		}
		_ = n
	})
	b.Run("reader", func(b *testing.B) {
		b.SetBytes(int64(len(file)))
		br := bytes.NewReader(file)
		r := NewReader(br)
		for b.Loop() {
			br.Reset(file)
			*r = Reader{br: r.br}
			r.br.Reset(br)
			for {
				_, err := r.Next()
				if err == io.EOF {
					break
				}
				if err != nil {
					b.Fatal(err)
				}
			}
		}
	})
}
