package replay_test

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/mdjournal/mdjournal/journal"
	"github.com/mdjournal/mdjournal/replay"
	"github.com/mdjournal/mdjournal/ring"
	"github.com/mdjournal/mdjournal/wait"
	"github.com/mdjournal/mdjournal/writer"
)

// Consuming a replay from Go: each ring record is one stored journal frame,
// decoded (and CRC-checked) with journal.DecodeFrame.
func Example() {
	tmp, _ := os.MkdirTemp("", "replay-example")
	defer os.RemoveAll(tmp)
	dir, path := filepath.Join(tmp, "journal"), filepath.Join(tmp, "feed") // a bare name means /dev/shm/NAME
	w, _ := writer.Open(dir, writer.Options{})
	q := journal.Quote{BidPrice: 1_000_100, BidQty: 5, AskPrice: 1_000_200, AskQty: 7}
	for i := range 3 {
		w.Append(journal.TypeQuote, 1, 1_700_000_000_000_000_000+int64(i)*1000, q.Encode(make([]byte, 32)))
	}
	w.Close()

	// Producer side (normally the replay binary in another process). It may
	// start before or after the consumer: it creates a new ring generation,
	// and at the end waits for the consumer to drain it, then removes it.
	done := make(chan error, 1)
	go func() {
		_, err := replay.Run(context.Background(), replay.Options{Dir: dir, Ring: path})
		done <- err
	}()

	// Consumer side (normally journalctl ring in another process): waits
	// for the producer, never reads a ring left by an earlier run.
	c, err := ring.NewConsumer(path, ring.ConsumerOptions{Wait: wait.Futex})
	if err != nil {
		panic(err)
	}
	defer c.Close()
	for {
		rec, err := c.Read() // zero-copy view, valid until Release
		if err == io.EOF {   // the replay finished and closed the ring
			break
		}
		if err != nil { // ring.ErrPeerDead: the replay process died
			panic(err)
		}
		f, n, st := journal.DecodeFrame(rec)
		if st != journal.FrameOK || n != len(rec) {
			panic("not a frame") // or replay.DecodeRecord(rec) for a typed error
		}
		var q journal.Quote
		q.Decode(f.Payload)
		fmt.Println(f.Seq, f.Type, f.Instrument, q.BidPrice, q.AskPrice)
		c.Release()
	}
	if err := <-done; err != nil { // ring.ErrUndelivered: frames nobody read
		panic(err)
	}
	// Output:
	// 1 quote 1 1000100 1000200
	// 2 quote 1 1000100 1000200
	// 3 quote 1 1000100 1000200
}
