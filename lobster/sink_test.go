package lobster

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/mdjournal/mdjournal/journal"
)

// memSink stores frames exactly as the journal would (journal.PutFrame), so
// the validation reads them back with journal.DecodeFrame like a reader.
type memSink struct {
	buf []byte
	seq uint64
}

func (s *memSink) Append(typ journal.MsgType, instr uint32, ts int64, payload []byte) (uint64, error) {
	if typ.PayloadSize() != len(payload) {
		return 0, fmt.Errorf("memSink: %s payload of %d bytes", typ, len(payload))
	}
	s.seq++
	n := journal.FrameSpace(len(payload))
	if cap(s.buf)-len(s.buf) < n {
		nb := make([]byte, len(s.buf), 2*cap(s.buf)+n)
		copy(nb, s.buf)
		s.buf = nb
	}
	s.buf = s.buf[:len(s.buf)+n]
	journal.PutFrame(s.buf[len(s.buf)-n:], s.seq, ts, typ, 0, instr, payload)
	return s.seq, nil
}

// frames decodes everything appended so far.
func (s *memSink) frames(t testing.TB) []journal.Frame {
	var out []journal.Frame
	for b := s.buf; len(b) > 0; {
		f, n, st := journal.DecodeFrame(b)
		if st != journal.FrameOK {
			t.Fatalf("frame %d: status %d", len(out)+1, st)
		}
		out = append(out, f)
		b = b[n:]
	}
	return out
}

// dataDir finds shared/data/lobster by walking up from the working directory
// (the repo is /work/main, the data /work/shared/data/lobster); LOBSTER_DATA
// overrides it.
func dataDir(t testing.TB) string {
	if d := os.Getenv("LOBSTER_DATA"); d != "" {
		return d
	}
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		d := filepath.Join(dir, "shared", "data", "lobster")
		if fi, err := os.Stat(d); err == nil && fi.IsDir() {
			return d
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Skip("LOBSTER sample data not found: no shared/data/lobster above the working directory (set LOBSTER_DATA)")
		}
		dir = parent
	}
}

type pair struct{ name, msg, book string }

// pairs lists the message/orderbook pairs in dir, matched by file name.
func pairs(t testing.TB, dir string) []pair {
	msgs, err := filepath.Glob(filepath.Join(dir, "*_message_*.csv*"))
	if err != nil {
		t.Fatal(err)
	}
	var out []pair
	for _, m := range msgs {
		n, err := ParseFileName(m)
		if err != nil {
			t.Fatal(err)
		}
		b := filepath.Join(dir, fmt.Sprintf("%s_%s_%d_%d_orderbook_%d.csv", n.Symbol, n.Date, n.StartMS, n.EndMS, n.Levels))
		if filepath.Ext(m) == ".gz" {
			b += ".gz"
		}
		if _, err := os.Stat(b); err != nil {
			t.Fatalf("no orderbook for %s: %v", m, err)
		}
		out = append(out, pair{fmt.Sprintf("%s_L%d", n.Symbol, n.Levels), m, b})
	}
	return out
}
