package ship_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/mdjournal/mdjournal/journal"
	"github.com/mdjournal/mdjournal/reader"
	"github.com/mdjournal/mdjournal/ship"
	"github.com/mdjournal/mdjournal/writer"
)

const segSize = 256 << 10

// A live origin shipped while it is written, mirrored while it is shipped:
// the replica holds the origin's frames byte for byte, in the same
// segments; the stream's messages tile the seqs without gap or repeat, and
// each holds frames of one origin segment.
func TestShipAndMirrorLive(t *testing.T) {
	s := startServer(t)
	_, js := connect(t, s.ClientURL())
	st := ensure(t, js, "LIVE")
	origin, replica := t.TempDir(), t.TempDir()
	w, err := writer.Open(origin, writer.Options{SegmentSize: segSize})
	if err != nil {
		t.Fatal(err)
	}
	appendFrames(t, w, 500)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sh, err := ship.NewShipper(origin, js, ship.Options{Stream: "LIVE", BatchBytes: 64 << 10, MaxInFlight: 4})
	if err != nil {
		t.Fatal(err)
	}
	shipped := runAsync(func() error { return sh.Run(ctx) })
	const total = 20000
	for w.LastSeq() < total {
		appendFrames(t, w, int(min(977, total-w.LastSeq())))
	}
	w.Close()
	m, err := ship.NewMirror(replica, js, ship.MirrorOptions{Stream: "LIVE", StopAt: total, Writer: writer.Options{SegmentSize: segSize}})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Run(ctx); err != nil {
		t.Fatal(err)
	}
	sameJournal(t, origin, replica, true)
	waitFor(t, 10*time.Second, "the shipper's acknowledgements", func() bool { return sh.Stats().AckedSeq == total })
	cancel()
	if err := <-shipped; err != nil {
		t.Fatal(err)
	}
	rs := streamRanges(t, st)
	contiguous(t, rs, 1, total)
	if len(rs) < 10 {
		t.Fatalf("%d messages: batches of 64 KiB should make more", len(rs))
	}
	// The named reader's position was committed at the end.
	named, _ := reader.ListNamed(origin)
	if len(named) != 1 || named[0].Name != "ship-LIVE" || named[0].Seq != total {
		t.Fatalf("named positions %+v, want ship-LIVE at %d", named, total)
	}
	if st := m.Stats(); st.LastSeq != total || st.Frames != total {
		t.Fatalf("mirror stats %+v", st)
	}
}

// A shipper stopped and restarted (and one whose named position is gone)
// continues from what the stream holds: no seq is shipped twice or skipped.
func TestShipperResumesFromStream(t *testing.T) {
	s := startServer(t)
	_, js := connect(t, s.ClientURL())
	st := ensure(t, js, "RESUME")
	origin := t.TempDir()
	w, err := writer.Open(origin, writer.Options{SegmentSize: segSize})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	runFor := func(upTo uint64) { t.Helper(); shipAll(t, js, "RESUME", origin, 64<<10, upTo) }
	appendFrames(t, w, 3000)
	runFor(w.LastSeq())
	appendFrames(t, w, 3000)
	runFor(w.LastSeq())
	// Position file gone (a new host, an operator): the stream decides.
	os.Remove(reader.PosPath(origin, "ship-RESUME"))
	appendFrames(t, w, 1000)
	runFor(w.LastSeq())
	contiguous(t, streamRanges(t, st), 1, w.LastSeq())
}

// A shipper refuses a stream that lost acknowledged messages, one holding
// another journal, and an origin that issued shipped seqs again with other
// content after a power cut (a new epoch starting before the stream's last
// seq) — each a *RangeError naming the seqs.
func TestShipperRefuses(t *testing.T) {
	s := startServer(t)
	_, js := connect(t, s.ClientURL())
	ctx := context.Background()
	shipAll := func(t *testing.T, dir, stream string, upTo uint64) {
		t.Helper()
		c, cancel := context.WithCancel(ctx)
		sh, err := ship.NewShipper(dir, js, ship.Options{Stream: stream, BatchBytes: 64 << 10})
		if err != nil {
			t.Fatal(err)
		}
		done := runAsync(func() error { return sh.Run(c) })
		waitFor(t, 10*time.Second, "acknowledgements", func() bool { return sh.Stats().AckedSeq == upTo })
		cancel()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	runErr := func(t *testing.T, dir, stream string) error {
		t.Helper()
		sh, err := ship.NewShipper(dir, js, ship.Options{Stream: stream})
		if err != nil {
			t.Fatal(err)
		}
		c, cancel := context.WithTimeout(ctx, 20*time.Second)
		defer cancel()
		return sh.Run(c)
	}
	expect := func(t *testing.T, err, sentinel error, from, to uint64) {
		t.Helper()
		var re *ship.RangeError
		if !errors.Is(err, sentinel) || !errors.As(err, &re) || re.From != from || re.To != to {
			t.Fatalf("got %v, want %v for seqs %d..%d", err, sentinel, from, to)
		}
	}

	t.Run("lost", func(t *testing.T) {
		st := ensure(t, js, "LOST")
		dir := t.TempDir()
		w, _ := writer.Open(dir, writer.Options{SegmentSize: segSize})
		appendFrames(t, w, 2000)
		last := w.LastSeq()
		w.Close()
		shipAll(t, dir, "LOST", last)
		// The stream loses everything it acknowledged (deleted and made
		// again: what a server that lost its store looks like).
		if err := js.DeleteStream(ctx, st.CachedInfo().Config.Name); err != nil {
			t.Fatal(err)
		}
		ensure(t, js, "LOST")
		expect(t, runErr(t, dir, "LOST"), ship.ErrLost, 1, last)
	})

	t.Run("foreign", func(t *testing.T) {
		ensure(t, js, "FOREIGN")
		a, b := t.TempDir(), t.TempDir()
		for _, d := range []string{a, b} {
			w, _ := writer.Open(d, writer.Options{SegmentSize: segSize})
			appendFrames(t, w, 100) // one segment: exactly seqs 1..100
			w.Close()
		}
		shipAll(t, a, "FOREIGN", 100)
		err := runErr(t, b, "FOREIGN")
		var re *ship.RangeError
		if !errors.Is(err, ship.ErrForeign) || !errors.As(err, &re) || re.To != 100 {
			t.Fatalf("got %v, want ErrForeign naming the stream's last message", err)
		}
	})

	t.Run("reissued", func(t *testing.T) {
		ensure(t, js, "REISSUED")
		dir := t.TempDir()
		w, err := writer.Open(dir, writer.Options{SegmentSize: segSize})
		if err != nil {
			t.Fatal(err)
		}
		appendFrames(t, w, 1000)
		last := w.LastSeq()
		// What a power cut leaves: the files as they were while the writer
		// ran (no clean close), with the last 200 frames never written back.
		cut := journalAt(t, dir, 800)
		w.Close()
		shipAll(t, dir, "REISSUED", last)
		// The recovered origin continues in epoch 2 from seq 801, with other
		// content: seqs 801..1000 are issued again.
		w2, err := writer.Open(cut, writer.Options{SegmentSize: segSize})
		if err != nil {
			t.Fatal(err)
		}
		if rec := w2.Recovery(); !rec.EpochStarted || rec.LastSeq != 800 || last <= 800 {
			t.Fatalf("recovery %+v: the power cut was not simulated", rec)
		}
		for i := 0; i < 300; i++ {
			w2.Append(journal.TypeRaw, 9, 1, []byte("after the power cut"))
		}
		w2.Close()
		expect(t, runErr(t, cut, "REISSUED"), ship.ErrReissued, 801, last)
	})
}

// journalAt copies the journal in dir as a power cut would leave it while
// its writer runs: not closed cleanly, every frame after seq keep gone
// (zeroed: never written back). Durability none: nothing was durable.
func journalAt(t *testing.T, dir string, keep uint64) string {
	t.Helper()
	out := t.TempDir()
	r, err := reader.Open(dir, reader.Options{From: reader.Seq(keep + 1)})
	if err != nil {
		t.Fatal(err)
	}
	f, ok, err := r.TryNext()
	r.Close()
	if err != nil || !ok {
		t.Fatalf("seq %d: %v %v", keep+1, ok, err)
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if e.IsDir() || filepath.Ext(e.Name()) == ".lock" || filepath.Ext(e.Name()) == ".tmp" {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		if e.Name() == journal.SegmentName(f.Segment) {
			clear(b[f.Offset:])
		}
		if err := os.WriteFile(filepath.Join(out, e.Name()), b, 0o640); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// EnsureStream creates a stream with the settings asked for, accepts it
// again, and refuses (never changes) a stream with other settings.
func TestEnsureStream(t *testing.T) {
	s := startServer(t)
	_, js := connect(t, s.ClientURL())
	ctx := context.Background()
	cfg := ship.StreamConfig{Name: "CFG", Storage: jetstream.MemoryStorage, Duplicates: time.Minute, MaxMsgSize: 256 << 10}
	if _, err := ship.EnsureStream(ctx, js, cfg, false); !errors.Is(err, jetstream.ErrStreamNotFound) {
		t.Fatalf("without create: %v", err)
	}
	st, err := ship.EnsureStream(ctx, js, cfg, true)
	if err != nil {
		t.Fatal(err)
	}
	got := st.CachedInfo().Config
	if got.Subjects[0] != "mdjournal.CFG" || got.Storage != jetstream.MemoryStorage || got.Duplicates != time.Minute || got.MaxMsgSize != 256<<10 || got.Replicas != 1 {
		t.Fatalf("created %+v", got)
	}
	if _, err := ship.EnsureStream(ctx, js, cfg, true); err != nil {
		t.Fatalf("the same settings again: %v", err)
	}
	cfg.Duplicates = time.Hour
	if _, err := ship.EnsureStream(ctx, js, cfg, true); !errors.Is(err, ship.ErrStreamConfig) {
		t.Fatalf("other duplicate window: %v", err)
	}
	if info, _ := st.Info(ctx); info.Config.Duplicates != time.Minute {
		t.Fatal("EnsureStream changed the stream")
	}
}

// A stream emptied within its duplicate window (purged) takes the same
// seqs again from a new shipper: message ids name the stream seq they must
// land at, so the server does not drop them as duplicates of the purged
// ones (it did, and the shipper retried forever).
func TestReshipAfterPurge(t *testing.T) {
	s := startServer(t)
	_, js := connect(t, s.ClientURL())
	st := ensure(t, js, "PURGED")
	origin := t.TempDir()
	w, _ := writer.Open(origin, writer.Options{SegmentSize: segSize})
	appendFrames(t, w, 3000)
	last := w.LastSeq()
	w.Close()
	for _, name := range []string{"first", "second"} {
		if err := st.Purge(context.Background()); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		sh, _ := ship.NewShipper(origin, js, ship.Options{Stream: "PURGED", Name: name, BatchBytes: 64 << 10})
		done := runAsync(func() error { return sh.Run(ctx) })
		waitFor(t, 10*time.Second, name+" shipper's acknowledgements", func() bool { return sh.Stats().AckedSeq == last })
		cancel()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		if r := sh.Stats().Resyncs; r != 0 {
			t.Fatalf("%s shipper re-synced %d times", name, r)
		}
		contiguous(t, streamRanges(t, st), 1, last)
	}
}
