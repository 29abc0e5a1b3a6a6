package pin_test

import (
	"fmt"
	"testing"

	"github.com/mdjournal/mdjournal/pin"
)

// A pinned goroutine runs on its CPU only; Release gives the thread its
// old affinity back; a CPU the process may not use is refused.
func TestThread(t *testing.T) {
	cpus, err := pin.Available()
	if err != nil || len(cpus) == 0 {
		t.Fatalf("Available: %v %v", cpus, err)
	}
	done := make(chan error)
	go func() {
		for _, c := range cpus {
			p, err := pin.Thread(c)
			if err != nil {
				done <- err
				return
			}
			for i := 0; i < 100; i++ {
				if got := pin.Current(); got != c {
					p.Release()
					done <- fmt.Errorf("pinned to %d, running on %d", c, got)
					return
				}
			}
			p.Release()
		}
		if after, _ := pin.Available(); len(after) != len(cpus) {
			done <- fmt.Errorf("after Release the thread may run on %v, before on %v", after, cpus)
			return
		}
		if _, err := pin.Thread(4096); err == nil {
			done <- fmt.Errorf("cpu 4096 accepted")
			return
		}
		done <- nil
	}()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// A latency-critical loop pins itself for its lifetime.
func ExampleThread() {
	done := make(chan bool)
	go func() {
		p, err := pin.Thread(0)
		if err != nil {
			done <- false
			return
		}
		defer p.Release()
		// ... the loop runs on CPU 0 only ...
		done <- pin.Current() == 0
	}()
	fmt.Println(<-done)
	// Output: true
}
