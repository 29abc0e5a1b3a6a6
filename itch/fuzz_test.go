package itch

import (
	"bytes"
	"errors"
	"io"
	"testing"
)

func seedVectors(f *testing.F) {
	for _, v := range vectors {
		f.Add(unhex(f, v.wire))
	}
	f.Add([]byte{})
	f.Add([]byte{'A'})
	f.Add([]byte{'Z', 0, 0})
}

// FuzzParse: on any bytes, Parse and the struct of the first byte's type
// never panic or read past len (the input has no spare capacity); they agree
// on validity; a valid message decodes, re-encodes to the same bytes both
// ways, and the view reads the same header as the struct.
func FuzzParse(f *testing.F) {
	seedVectors(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		b = b[:len(b):len(b)]
		m, perr := Parse(b)
		_, _, _ = Message(b).Locate(), Message(b).Tracking(), Message(b).Timestamp()
		Message(b).Stock()
		if len(b) == 0 {
			if !errors.Is(perr, ErrShort) {
				t.Fatalf("empty: %v", perr)
			}
			return
		}
		d := NewMsg(Type(b[0]))
		if d == nil {
			if !errors.Is(perr, ErrUnknownType) {
				t.Fatalf("unknown type %#x: %v", b[0], perr)
			}
			return
		}
		derr := d.Decode(b)
		if (perr == nil) != (derr == nil) {
			t.Fatalf("Parse: %v, Decode: %v", perr, derr)
		}
		if perr != nil {
			return
		}
		if len(m) != Len(m.Type()) {
			t.Fatalf("Parse accepted %d bytes of %v", len(m), m.Type())
		}
		if enc := d.AppendEncode(nil); !bytes.Equal(enc, b) {
			t.Fatalf("re-encode\n% x\n% x", enc, b)
		}
		out := make([]byte, len(b))
		if n, err := d.Encode(out); err != nil || n != len(b) || !bytes.Equal(out, b) {
			t.Fatalf("Encode: %d %v", n, err)
		}
		if n, err := d.Encode(out[:len(b)-1]); n != 0 || !errors.Is(err, ErrBufferTooSmall) {
			t.Fatalf("Encode short: %d %v", n, err)
		}
	})
}

// FuzzRoundTrip: a message of every type with arbitrary field bytes (the
// fuzzer picks the type and the body) decodes and re-encodes to the same
// bytes: no field is lost, reordered or normalised.
func FuzzRoundTrip(f *testing.F) {
	for _, v := range vectors {
		w := unhex(f, v.wire)
		f.Add(byte(v.typ), w[1:])
	}
	f.Fuzz(func(t *testing.T, sel byte, body []byte) {
		ty := Types[int(sel)%len(Types)]
		b := make([]byte, Len(ty))
		b[0] = byte(ty)
		copy(b[1:], body)
		d := NewMsg(ty)
		if err := d.Decode(b); err != nil {
			t.Fatal(err)
		}
		if enc := d.AppendEncode(nil); !bytes.Equal(enc, b) {
			t.Fatalf("%v:\n% x\n% x", ty, enc, b)
		}
		// Decoding the encoding of the decoded struct gives the same struct.
		e := NewMsg(ty)
		if err := e.Decode(d.AppendEncode(nil)); err != nil {
			t.Fatal(err)
		}
		if enc := e.AppendEncode(nil); !bytes.Equal(enc, b) {
			t.Fatalf("second round trip differs")
		}
	})
}

// FuzzReader: any input is read to io.EOF or an error without panicking,
// never past its end, and offsets only grow.
func FuzzReader(f *testing.F) {
	var file []byte
	for _, v := range vectors {
		file = AppendFrame(file, unhex(f, v.wire))
	}
	f.Add(file)
	f.Add(file[:len(file)-3])
	f.Add([]byte{0, 0})
	f.Add([]byte{0xff, 0xff, 'A'})
	f.Fuzz(func(t *testing.T, b []byte) {
		r := NewReader(bytes.NewReader(b))
		last := int64(0)
		for i := 0; ; i++ {
			m, err := r.Next()
			if r.Offset() < last || r.Offset() > int64(len(b)) {
				t.Fatalf("offset %d after %d, input %d bytes", r.Offset(), last, len(b))
			}
			last = r.Offset()
			if err == io.EOF {
				if last != int64(len(b)) {
					t.Fatalf("EOF at %d of %d", last, len(b))
				}
				return
			}
			if errors.Is(err, ErrTruncated) {
				return
			}
			if err == nil && len(m) != Len(m.Type()) {
				t.Fatal("bad message accepted")
			}
			if i > len(b) {
				t.Fatal("more frames than bytes")
			}
		}
	})
}
