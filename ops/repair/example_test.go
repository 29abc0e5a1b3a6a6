package repair_test

import (
	"fmt"
	"log"
	"os"

	"github.com/mdjournal/mdjournal/journal"
	"github.com/mdjournal/mdjournal/ops/repair"
	"github.com/mdjournal/mdjournal/writer"
)

// A lost index file is rebuilt from the frames: Recover plans the repair
// (a dry run changes nothing), then does it.
func Example() {
	dir, _ := os.MkdirTemp("", "journal")
	defer os.RemoveAll(dir)
	w, err := writer.Open(dir, writer.Options{SegmentSize: 256 << 10, NoRestate: true})
	if err != nil {
		log.Fatal(err)
	}
	for i := int64(1); i <= 3; i++ {
		w.Append(journal.TypeHeartbeat, 0, i, nil)
	}
	w.Close()
	os.Remove(journal.IndexPath(dir, 1))

	plan, _ := repair.Recover(dir, repair.Options{DryRun: true})
	for _, a := range plan.Actions {
		fmt.Println("planned:", a.Op)
	}
	res, err := repair.Recover(dir, repair.Options{})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("after:", res.After.OK(), res.After.Frames, "frames")
	// Output:
	// planned: rebuild_index
	// after: true 3 frames
}
