package ship_test

import (
	"context"
	"testing"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/mdjournal/mdjournal/journal"
	"github.com/mdjournal/mdjournal/ship"
	"github.com/mdjournal/mdjournal/writer"
)

// BenchmarkMirror: a stream holding 200 000 frames of 64-byte payloads in
// 512 KiB messages (as journalctl bench ship ships them), consumed per op
// (1) by an ordered consumer that only takes each message (the NATS
// delivery floor), and (2) by a mirror writing a new replica (checking
// every frame). Compare frames/s; the ratio is what the mirror's own work
// costs.
func BenchmarkMirror(b *testing.B) {
	const frames = 200_000
	s := startServer(b)
	_, js := connect(b, s.ClientURL())
	const name = "BENCH"
	ensure(b, js, name)
	origin := b.TempDir()
	w, err := writer.Open(origin, writer.Options{})
	if err != nil {
		b.Fatal(err)
	}
	p := make([]byte, 64)
	for i := 1; i <= frames; i++ {
		p[0], p[1] = byte(i), byte(i>>8)
		if _, err := w.Stage(journal.TypeRaw, 1, int64(i), p); err != nil {
			b.Fatal(err)
		}
		if i%256 == 0 {
			w.Publish()
		}
	}
	last := w.LastSeq()
	w.Close()
	shipAll(b, js, name, origin, 512<<10, last)
	b.Run("nats-consume", func(b *testing.B) {
		n := 0
		for b.Loop() {
			cons, err := js.OrderedConsumer(context.Background(), name, jetstream.OrderedConsumerConfig{})
			if err != nil {
				b.Fatal(err)
			}
			it, err := cons.Messages(jetstream.PullMaxMessages(ship.DefaultMaxPending))
			if err != nil {
				b.Fatal(err)
			}
			for got := uint64(0); got < last; {
				msg, err := it.Next()
				if err != nil {
					b.Fatal(err)
				}
				meta, err := ship.ParseMeta(msg.Headers())
				if err != nil {
					b.Fatal(err)
				}
				got = meta.Last
			}
			it.Stop()
			n += frames
		}
		b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "frames/s")
	})
	b.Run("mirror", func(b *testing.B) {
		n := 0
		for b.Loop() {
			m, err := ship.NewMirror(b.TempDir(), js, ship.MirrorOptions{Stream: name, StopAt: last})
			if err != nil {
				b.Fatal(err)
			}
			if err := m.Run(context.Background()); err != nil {
				b.Fatal(err)
			}
			n += frames
		}
		b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "frames/s")
	})
}
