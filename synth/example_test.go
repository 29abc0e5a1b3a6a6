package synth_test

import (
	"fmt"

	"github.com/mdjournal/mdjournal/synth"
)

// The generator gives the same frames for the same seed: first one
// definition per instrument, then market data.
func Example() {
	g := synth.New(1, 2)
	for i := 0; i < 3; i++ {
		typ, instr, payload := g.Next()
		fmt.Println(typ, instr, len(payload))
	}
	// Output:
	// instrument_def 1 32
	// instrument_def 2 32
	// trade 1 32
}
