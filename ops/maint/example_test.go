package maint_test

import (
	"errors"
	"fmt"
	"log"
	"os"

	"github.com/mdjournal/mdjournal/ops/maint"
)

// Maintenance commands hold one lock for their whole run: a second one
// refuses at once instead of interleaving.
func Example() {
	dir, _ := os.MkdirTemp("", "journal")
	defer os.RemoveAll(dir)
	held, err := maint.Lock(dir, "compress")
	if err != nil {
		log.Fatal(err)
	}
	_, err = maint.Lock(dir, "prune")
	fmt.Println(errors.Is(err, maint.ErrBusy))
	held.Release()
	again, err := maint.Lock(dir, "prune")
	fmt.Println(err)
	again.Release()
	// Output:
	// true
	// <nil>
}
