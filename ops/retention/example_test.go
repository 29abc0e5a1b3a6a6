package retention_test

import (
	"fmt"
	"log"
	"os"

	"github.com/mdjournal/mdjournal/journal"
	"github.com/mdjournal/mdjournal/ops/retention"
	"github.com/mdjournal/mdjournal/writer"
)

// Prune deletes the oldest sealed segments beyond a retention; the active
// segment is never deleted.
func Example() {
	dir, _ := os.MkdirTemp("", "journal")
	defer os.RemoveAll(dir)
	w, err := writer.Open(dir, writer.Options{SegmentSize: 256 << 10, NoRestate: true})
	if err != nil {
		log.Fatal(err)
	}
	for i := int64(1); i <= 20000; i++ { // 32-byte heartbeats: 8063 per segment
		w.Append(journal.TypeHeartbeat, 0, i, nil)
	}
	w.Close()

	res, err := retention.Prune(dir, retention.Options{KeepSegments: 1})
	if err != nil {
		log.Fatal(err)
	}
	for _, s := range res.Segments {
		fmt.Println(s.Number, s.FirstSeq, s.LastSeq, s.Action)
	}
	// Output:
	// 1 1 8063 delete
	// 2 8064 16126 delete
	// 3 16127 20000 keep
}
