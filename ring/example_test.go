package ring_test

import (
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/mdjournal/mdjournal/ring"
	"github.com/mdjournal/mdjournal/wait"
)

func Example() {
	dir, _ := os.MkdirTemp("", "ring-example")
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "feed") // a bare name would go to /dev/shm

	// The producer process: creates a new ring generation (replacing a
	// leftover of an earlier run), writes, and ends the stream. Close
	// waits for the consumer to drain the ring, then removes the file.
	done := make(chan error)
	go func() {
		p, err := ring.NewProducer(path, 1<<16, ring.ProducerOptions{
			Options: ring.Options{Replace: true}, Wait: wait.Futex})
		if err != nil {
			done <- err
			return
		}
		p.Write([]byte("BID 101.25"))
		b, _ := p.Claim(10) // zero-copy: fill in place, then Commit
		copy(b, "ASK 101.50")
		p.Commit()
		done <- p.Close()
	}()

	// The consumer process: waits for a ring with a producer (never a
	// leftover), then reads the generation from its first record.
	c, err := ring.NewConsumer(path, ring.ConsumerOptions{Wait: wait.Futex})
	if err != nil {
		panic(err)
	}
	defer c.Close()
	for {
		v, err := c.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			panic(err)
		}
		fmt.Printf("%s\n", v)
		c.Release()
	}
	fmt.Println("producer:", <-done)
	_, err = os.Stat(path)
	fmt.Println("ring file removed:", os.IsNotExist(err))
	// Output:
	// BID 101.25
	// ASK 101.50
	// producer: <nil>
	// ring file removed: true
}
