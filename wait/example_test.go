package wait_test

import (
	"fmt"

	"github.com/mdjournal/mdjournal/wait"
)

// A consumer picks how it idles: spin for the lowest latency (one core
// burnt), backoff (the default), or futex (sleeps in the kernel; needs
// write access to the journal's control page).
func ExampleParse() {
	for _, s := range []string{"spin", "backoff", "futex", "nap"} {
		st, err := wait.Parse(s)
		fmt.Println(st, err != nil)
	}
	var zero wait.Strategy
	fmt.Println("zero value:", zero)
	// Output:
	// spin false
	// backoff false
	// futex false
	// backoff true
	// zero value: backoff
}
