package ship_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/mdjournal/mdjournal/journal"
	"github.com/mdjournal/mdjournal/reader"
	"github.com/mdjournal/mdjournal/ship"
	"github.com/mdjournal/mdjournal/writer"
)

// startServer runs a real nats-server with JetStream in this process, on
// 127.0.0.1 and a free port.
func startServer(t testing.TB) *server.Server {
	t.Helper()
	s, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: t.TempDir(), NoLog: true, NoSigs: true})
	if err != nil {
		t.Fatal(err)
	}
	go s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats-server did not start")
	}
	t.Cleanup(func() { s.Shutdown(); s.WaitForShutdown() })
	return s
}

func connect(t testing.TB, url string) (*nats.Conn, jetstream.JetStream) {
	t.Helper()
	nc, err := nats.Connect(url, nats.MaxReconnects(-1), nats.ReconnectWait(20*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return nc, js
}

func ensure(t testing.TB, js jetstream.JetStream, name string) jetstream.Stream {
	t.Helper()
	st, err := ship.EnsureStream(context.Background(), js, ship.StreamConfig{Name: name}, true)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// payload is the deterministic content of frame seq: its length and bytes
// depend only on seq.
func payload(seq uint64) []byte {
	b := make([]byte, 1+int(seq*13%300))
	x := seq*0x9e3779b97f4a7c15 + 1
	for i := range b {
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
		b[i] = byte(x)
	}
	return b
}

// appendFrames appends n frames of mixed kinds: a definition first, then
// raw frames (some with a source trailer) and trades.
func appendFrames(t testing.TB, w *writer.Writer, n int) {
	t.Helper()
	if w.LastSeq() == 0 {
		var d journal.InstrumentDef
		d.SetSymbol("ABC")
		d.PriceScale, d.TickSize = 4, 100
		if _, err := w.Append(journal.TypeInstrumentDef, 1, 1, d.Encode(make([]byte, 32))); err != nil {
			t.Fatal(err)
		}
		n--
	}
	for i := 0; i < n; i++ {
		seq := w.LastSeq() + 1
		var err error
		switch seq % 3 {
		case 0:
			_, err = w.StageSource(journal.TypeRaw, 2, int64(seq), payload(seq), int64(seq)+7, seq*10)
		case 1:
			tr := journal.Trade{Price: int64(seq), Qty: 1, TradeID: seq, Aggressor: journal.SideBid}
			_, err = w.Stage(journal.TypeTrade, 1, int64(seq), tr.Encode(make([]byte, 32)))
		default:
			_, err = w.Stage(journal.TypeRaw, 3, int64(seq), payload(seq))
		}
		if err != nil {
			t.Fatal(err)
		}
		if i%7 == 6 {
			if err := w.Publish(); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := w.Publish(); err != nil {
		t.Fatal(err)
	}
}

// stored is a frame as a journal stores it, and where.
type stored struct {
	seq     uint64
	segment uint64
	bytes   []byte
}

// readAll returns every frame of the journal in dir, as stored.
func readAll(t testing.TB, dir string) []stored {
	t.Helper()
	r, err := reader.Open(dir, reader.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var out []stored
	for {
		f, ok, err := r.TryNext()
		if err != nil {
			t.Fatal(err)
		}
		if !ok {
			return out
		}
		b := make([]byte, journal.StoredLen(&f))
		journal.PutStored(b, &f)
		out = append(out, stored{f.Seq, f.Segment, b})
	}
}

// sameJournal fails unless replica holds exactly origin's frames, byte for
// byte; with segments, also in the same segments.
func sameJournal(t testing.TB, origin, replica string, segments bool) {
	t.Helper()
	a, b := readAll(t, origin), readAll(t, replica)
	if len(a) != len(b) {
		t.Fatalf("origin has %d frames, replica %d", len(a), len(b))
	}
	for i := range a {
		if a[i].seq != b[i].seq || !bytes.Equal(a[i].bytes, b[i].bytes) {
			t.Fatalf("frame %d: origin seq %d, replica seq %d (bytes equal %v)", i, a[i].seq, b[i].seq, bytes.Equal(a[i].bytes, b[i].bytes))
		}
		if segments && a[i].segment != b[i].segment {
			t.Fatalf("seq %d: origin segment %d, replica segment %d", a[i].seq, a[i].segment, b[i].segment)
		}
	}
}

// streamRanges returns each message's [first,last] seqs in stream order,
// read straight from the server (not through the package).
func streamRanges(t testing.TB, st jetstream.Stream) [][2]uint64 {
	t.Helper()
	ctx := context.Background()
	info, err := st.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var out [][2]uint64
	for s := info.State.FirstSeq; s <= info.State.LastSeq && info.State.Msgs > 0; s++ {
		m, err := st.GetMsg(ctx, s)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		// First and last seq straight from the frames.
		first := binary.LittleEndian.Uint64(m.Data[8:])
		var last uint64
		for off := 0; off < len(m.Data); {
			size := int(binary.LittleEndian.Uint32(m.Data[off+4:]))
			last = binary.LittleEndian.Uint64(m.Data[off+8:])
			off += (size + 7) &^ 7
		}
		out = append(out, [2]uint64{first, last})
	}
	return out
}

// contiguous fails unless the ranges tile from..to without gap or repeat.
func contiguous(t testing.TB, rs [][2]uint64, from, to uint64) {
	t.Helper()
	next := from
	for i, r := range rs {
		if r[0] != next || r[1] < r[0] {
			t.Fatalf("message %d holds seqs %d..%d, expected to start at %d (ranges %v)", i, r[0], r[1], next, short(rs))
		}
		next = r[1] + 1
	}
	if next-1 != to {
		t.Fatalf("the stream ends at seq %d, want %d", next-1, to)
	}
}

func short(rs [][2]uint64) string {
	if len(rs) <= 12 {
		return fmt.Sprint(rs)
	}
	return fmt.Sprint(rs[:6], " … ", rs[len(rs)-6:])
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(d); !cond(); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
	}
}

// runAsync runs fn in a goroutine and returns a channel with its result.
func runAsync(fn func() error) <-chan error {
	ch := make(chan error, 1)
	go func() { ch <- fn() }()
	return ch
}

// shipAll ships origin to stream name in messages of at most batch bytes
// until seq last is acknowledged, then stops the shipper.
func shipAll(t testing.TB, js jetstream.JetStream, name, origin string, batch int, last uint64) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	sh, err := ship.NewShipper(origin, js, ship.Options{Stream: name, BatchBytes: batch})
	if err != nil {
		t.Fatal(err)
	}
	done := runAsync(func() error { return sh.Run(ctx) })
	waitFor(t, 30*time.Second, "acknowledgements", func() bool { return sh.Stats().AckedSeq == last })
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
