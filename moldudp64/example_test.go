package moldudp64_test

import (
	"fmt"

	"github.com/mdjournal/mdjournal/moldudp64"
)

// Example packs six messages into three packets, delivers them to a
// Sequencer out of order and with a duplicate, and shows that the handler
// sees each message once, in order.
func Example() {
	session, _ := moldudp64.ParseSession("DEMO01")
	packet := func(first uint64, msgs ...string) []byte {
		var b moldudp64.Builder
		b.Reset(session, first, 0)
		for _, m := range msgs {
			if err := b.Add([]byte(m)); err != nil {
				panic(err)
			}
		}
		return append([]byte(nil), b.Bytes()...)
	}
	p1 := packet(1, "alpha", "bravo")
	p2 := packet(3, "charlie", "delta")
	p3 := packet(5, "echo", "foxtrot")

	seq, err := moldudp64.NewSequencer(func(e *moldudp64.Event) error {
		switch e.Kind {
		case moldudp64.EventMessage:
			fmt.Printf("%d %s\n", e.Seq, e.Msg)
		default:
			fmt.Printf("%v at %d\n", e.Kind, e.Seq)
		}
		return nil
	}, moldudp64.SequencerOptions{Next: 1})
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, p := range [][]byte{p1, p3, p2, p2} { // 5-6 early, 3-4 twice
		seq.Push(p, 0)
	}
	seq.Push(moldudp64.AppendEndOfSession(nil, session, 7), 0)
	c := seq.Counters()
	fmt.Printf("held %d, duplicates %d, gaps %d\n", c.OutOfOrder, c.Duplicates, c.Gaps)
	// Output:
	// 1 alpha
	// 2 bravo
	// 3 charlie
	// 4 delta
	// 5 echo
	// 6 foxtrot
	// end_of_session at 7
	// held 2, duplicates 2, gaps 0
}
