package ship_test

import (
	"context"
	"encoding/binary"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/mdjournal/mdjournal/journal"
	"github.com/mdjournal/mdjournal/reader"
	"github.com/mdjournal/mdjournal/ship"
	"github.com/mdjournal/mdjournal/writer"
)

// shipped is an origin shipped in full to a stream of many messages.
type shipped struct {
	js     jetstream.JetStream
	st     jetstream.Stream
	origin string
	last   uint64
	ranges [][2]uint64
}

func shipOrigin(t *testing.T, name string, frames int) shipped {
	t.Helper()
	s := startServer(t)
	_, js := connect(t, s.ClientURL())
	st := ensure(t, js, name)
	origin := t.TempDir()
	w, err := writer.Open(origin, writer.Options{SegmentSize: 4 << 20})
	if err != nil {
		t.Fatal(err)
	}
	appendFrames(t, w, frames)
	last := w.LastSeq()
	w.Close()
	shipAll(t, js, name, origin, 64<<10, last)
	rs := streamRanges(t, st)
	contiguous(t, rs, 1, last)
	if len(rs) < 6 {
		t.Fatalf("only %d messages", len(rs))
	}
	return shipped{js: js, st: st, origin: origin, last: last, ranges: rs}
}

// mirrorErr runs a mirror into dir until it stops (or 20 s).
func mirrorErr(t *testing.T, js jetstream.JetStream, stream, dir string, stopAt uint64) error {
	t.Helper()
	m, err := ship.NewMirror(dir, js, ship.MirrorOptions{Stream: stream, StopAt: stopAt, Logf: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	err = m.Run(ctx)
	if ctx.Err() != nil {
		t.Fatal("the mirror neither finished nor stopped on a finding within 20 s")
	}
	return err
}

func wantRange(t *testing.T, err, sentinel error, from, to uint64) {
	t.Helper()
	var re *ship.RangeError
	if !errors.Is(err, sentinel) || !errors.As(err, &re) || re.From != from || re.To != to {
		t.Fatalf("got %v; want %v naming seqs %d..%d", err, sentinel, from, to)
	}
}

// republish appends a copy of stream message seq (headers and frames),
// with its headers changed by edit, behind the shipper's back.
func republish(t *testing.T, s shipped, seq uint64, edit func(h nats.Header, data []byte) []byte) {
	t.Helper()
	ctx := context.Background()
	m, err := s.st.GetMsg(ctx, seq)
	if err != nil {
		t.Fatal(err)
	}
	h := nats.Header{}
	for k, v := range m.Header {
		if !strings.HasPrefix(k, "Nats-Expected") {
			h[k] = v
		}
	}
	data := edit(h, append([]byte(nil), m.Data...))
	h.Set("Nats-Msg-Id", "intruder-"+strconv.FormatUint(seq, 10))
	if _, err := s.js.PublishMsg(ctx, &nats.Msg{Subject: ship.DefaultSubject(s.st.CachedInfo().Config.Name), Header: h, Data: data}); err != nil {
		t.Fatal(err)
	}
}

// reseq rewrites the seqs of the frames in data to start at first (their
// CRCs no longer hold) and returns the last one.
func reseq(data []byte, first uint64) uint64 {
	seq := first
	for off := 0; off < len(data); seq++ {
		binary.LittleEndian.PutUint64(data[off+8:], seq)
		off += (int(binary.LittleEndian.Uint32(data[off+4:])) + 7) &^ 7
	}
	return seq - 1
}

// Messages deleted, repeated, damaged or of another journal behind the
// mirror's back: the mirror stops with the exact seq range, having copied
// everything before it and nothing after.
func TestMirrorFindings(t *testing.T) {
	t.Run("deleted", func(t *testing.T) {
		s := shipOrigin(t, "DELETED", 6000)
		k := len(s.ranges) / 2
		if err := s.st.DeleteMsg(context.Background(), uint64(k+1)); err != nil { // stream seqs start at 1
			t.Fatal(err)
		}
		dir := t.TempDir()
		wantRange(t, mirrorErr(t, s.js, "DELETED", dir, 0), ship.ErrGap, s.ranges[k][0], s.ranges[k][1])
		if got := readAll(t, dir); uint64(len(got)) != s.ranges[k][0]-1 {
			t.Fatalf("replica holds %d frames, want the %d before the gap", len(got), s.ranges[k][0]-1)
		}
	})
	t.Run("duplicate", func(t *testing.T) {
		s := shipOrigin(t, "DUP", 6000)
		j := len(s.ranges) / 3
		republish(t, s, uint64(j+1), func(h nats.Header, d []byte) []byte { return d })
		dir := t.TempDir()
		wantRange(t, mirrorErr(t, s.js, "DUP", dir, 0), ship.ErrDuplicate, s.ranges[j][0], s.ranges[j][1])
		sameJournal(t, s.origin, dir, false)
	})
	t.Run("damaged", func(t *testing.T) {
		s := shipOrigin(t, "DAMAGED", 6000)
		var last uint64
		republish(t, s, 2, func(h nats.Header, d []byte) []byte {
			last = reseq(d, s.last+1)
			h.Set(ship.HeaderFirst, strconv.FormatUint(s.last+1, 10))
			h.Set(ship.HeaderLast, strconv.FormatUint(last, 10))
			return d
		})
		dir := t.TempDir()
		wantRange(t, mirrorErr(t, s.js, "DAMAGED", dir, 0), ship.ErrDamaged, s.last+1, last)
		sameJournal(t, s.origin, dir, false)
	})
	t.Run("altered", func(t *testing.T) {
		// The last message replaced by a copy with one bit flipped in a
		// frame's payload.
		s := shipOrigin(t, "ALTERED", 6000)
		j := len(s.ranges) - 1
		republish(t, s, uint64(j+1), func(h nats.Header, d []byte) []byte {
			d[len(d)/2] ^= 0x10
			return d
		})
		if err := s.st.DeleteMsg(context.Background(), uint64(j+1)); err != nil {
			t.Fatal(err)
		}
		dir := t.TempDir()
		wantRange(t, mirrorErr(t, s.js, "ALTERED", dir, 0), ship.ErrDamaged, s.ranges[j][0], s.ranges[j][1])
		if got := readAll(t, dir); uint64(len(got)) != s.ranges[j][0]-1 {
			t.Fatalf("replica holds %d frames, want the %d before the damaged message", len(got), s.ranges[j][0]-1)
		}
	})
	t.Run("foreign", func(t *testing.T) {
		s := shipOrigin(t, "ALIEN", 3000)
		republish(t, s, 1, func(h nats.Header, d []byte) []byte {
			last := reseq(d, s.last+1)
			h.Set(ship.HeaderJournal, "00000000000000ff")
			h.Set(ship.HeaderFirst, strconv.FormatUint(s.last+1, 10))
			h.Set(ship.HeaderLast, strconv.FormatUint(last, 10))
			return d
		})
		dir := t.TempDir()
		err := mirrorErr(t, s.js, "ALIEN", dir, 0)
		if !errors.Is(err, ship.ErrForeign) {
			t.Fatalf("got %v, want ErrForeign", err)
		}
		sameJournal(t, s.origin, dir, false)
	})
}

// copyReplica writes origin's frames up to seq upTo into a new replica of
// the same journal, with alter applied to each frame first.
func copyReplica(t *testing.T, origin string, upTo uint64, alter func(f *journal.Frame)) string {
	t.Helper()
	dir := t.TempDir()
	r, err := reader.Open(origin, reader.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var w *writer.Writer
	for {
		f, ok, err := r.TryNext()
		if err != nil || !ok || f.Seq > upTo {
			break
		}
		if w == nil {
			if w, err = writer.Open(dir, writer.Options{NoRestate: true, JournalID: journalID(t, origin)}); err != nil {
				t.Fatal(err)
			}
		}
		f.Payload = append([]byte(nil), f.Payload...)
		alter(&f)
		if err := w.Copy(&f); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return dir
}

func journalID(t *testing.T, dir string) uint64 {
	t.Helper()
	named, _ := reader.ListNamed(dir) // the shipper's position file records it
	for _, n := range named {
		if n.JournalID != 0 {
			return n.JournalID
		}
	}
	t.Fatal("no named reader knows the journal id")
	return 0
}

// A mirror restarted with a replica that ends in the middle of a message
// resumes in it: the part it holds must be identical (it is), then it
// copies the rest; a replica whose copy differs is a finding naming the seq.
func TestMirrorResumesInsideMessage(t *testing.T) {
	s := shipOrigin(t, "MID", 6000)
	k := len(s.ranges) / 2
	mid := (s.ranges[k][0] + s.ranges[k][1]) / 2
	dir := copyReplica(t, s.origin, mid, func(*journal.Frame) {})
	if err := mirrorErr(t, s.js, "MID", dir, s.last); err != nil {
		t.Fatal(err)
	}
	sameJournal(t, s.origin, dir, false)

	bad := mid - 3
	for bad%3 == 1 { // a raw frame (see appendFrames) whose payload can change
		bad--
	}
	dir = copyReplica(t, s.origin, mid, func(f *journal.Frame) {
		if f.Seq == bad {
			f.Payload[0] ^= 1
		}
	})
	wantRange(t, mirrorErr(t, s.js, "MID", dir, s.last), ship.ErrDamaged, bad, bad)
}
