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

	// Producer process.
	pr, err := ring.Create(path, 1<<16, nil)
	if err != nil {
		panic(err)
	}
	defer pr.Close()
	p, _ := pr.Producer(wait.Futex)
	p.Write([]byte("BID 101.25"))
	b, _ := p.Claim(10) // zero-copy: fill in place, then Commit
	copy(b, "ASK 101.50")
	p.Commit()
	p.Close() // the consumer gets io.EOF once drained

	// Consumer process.
	cr, err := ring.Open(path)
	if err != nil {
		panic(err)
	}
	defer cr.Close()
	c, _ := cr.Consumer(wait.Futex)
	for {
		v, err := c.Read()
		if err == io.EOF {
			break
		}
		fmt.Printf("%s\n", v)
		c.Release()
	}
	// Output:
	// BID 101.25
	// ASK 101.50
}
