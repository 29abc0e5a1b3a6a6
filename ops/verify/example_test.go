package verify_test

import (
	"fmt"
	"log"
	"os"

	"github.com/mdjournal/mdjournal/journal"
	"github.com/mdjournal/mdjournal/ops/verify"
	"github.com/mdjournal/mdjournal/writer"
)

// verify checks every header, frame, index and sequence, and names damage
// by file, offset and kind.
func Example() {
	dir, _ := os.MkdirTemp("", "journal")
	defer os.RemoveAll(dir)
	w, err := writer.Open(dir, writer.Options{SegmentSize: 256 << 10, NoRestate: true})
	if err != nil {
		log.Fatal(err)
	}
	for i := int64(1); i <= 10; i++ {
		w.Append(journal.TypeHeartbeat, 0, i, nil)
	}
	w.Close()

	rep, err := verify.Journal(dir, verify.Options{})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("ok:", rep.OK(), "frames:", rep.Frames)

	// One flipped bit in the fifth frame's timestamp (heartbeats are 32-byte
	// frames from offset 4096).
	f, _ := os.OpenFile(journal.SegmentPath(dir, 1), os.O_RDWR, 0)
	f.WriteAt([]byte{0x80}, 4096+4*32+16)
	f.Close()
	rep, _ = verify.Journal(dir, verify.Options{})
	p := rep.Problems[0]
	fmt.Println(p.Severity, verify.Kind(p.Err), "at offset", p.Err.Offset)
	// Output:
	// ok: true frames: 10
	// damage checksum at offset 4224
}
