package inspect_test

import (
	"fmt"
	"log"
	"os"

	"github.com/mdjournal/mdjournal/journal"
	"github.com/mdjournal/mdjournal/ops/inspect"
	"github.com/mdjournal/mdjournal/writer"
)

// File names any mdjournal file from its bytes and decodes its fields.
func ExampleFile() {
	dir, _ := os.MkdirTemp("", "journal")
	defer os.RemoveAll(dir)
	w, err := writer.Open(dir, writer.Options{SegmentSize: 256 << 10, NoRestate: true})
	if err != nil {
		log.Fatal(err)
	}
	w.Append(journal.TypeHeartbeat, 0, 1, nil)
	w.Close()

	for _, name := range []string{journal.SegmentName(1), journal.IndexName(1), journal.CtlFile} {
		r, err := inspect.File(dir+"/"+name, inspect.Options{})
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println(name, r.Kind, len(r.Problems))
	}
	// Output:
	// 00000000000000000001.seg segment 0
	// 00000000000000000001.idx index 0
	// journal.ctl control 0
}
