package compress_test

import (
	"fmt"
	"log"
	"os"

	"github.com/mdjournal/mdjournal/journal"
	"github.com/mdjournal/mdjournal/ops/compress"
	"github.com/mdjournal/mdjournal/reader"
	"github.com/mdjournal/mdjournal/writer"
)

// Sealed segments become seekable zstd archives; readers read them as if
// nothing happened.
func Example() {
	dir, _ := os.MkdirTemp("", "journal")
	defer os.RemoveAll(dir)
	w, err := writer.Open(dir, writer.Options{SegmentSize: 256 << 10, NoRestate: true})
	if err != nil {
		log.Fatal(err)
	}
	for i := int64(1); i <= 10000; i++ {
		w.Append(journal.TypeHeartbeat, 0, i, nil)
	}
	w.Close()

	res, err := compress.All(dir, compress.Options{})
	if err != nil {
		log.Fatal(err)
	}
	for _, r := range res {
		fmt.Println("segment", r.Segment, "frames", r.Frames, "smaller:", r.Archived < r.RawBytes)
	}
	r, err := reader.Open(dir, reader.Options{})
	if err != nil {
		log.Fatal(err)
	}
	defer r.Close()
	n := 0
	for {
		_, ok, err := r.TryNext()
		if err != nil {
			log.Fatal(err)
		}
		if !ok {
			break
		}
		n++
	}
	fmt.Println("read", n, "frames")
	// Output:
	// segment 1 frames 8063 smaller: true
	// read 10000 frames
}
