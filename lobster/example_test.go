package lobster_test

import (
	"fmt"
	"log"
	"strings"

	"github.com/mdjournal/mdjournal/journal"
	"github.com/mdjournal/mdjournal/lobster"
)

// printSink prints what the importer appends (a journal writer is the
// real sink).
type printSink struct{ n uint64 }

func (s *printSink) Append(typ journal.MsgType, instr uint32, ts int64, payload []byte) (uint64, error) {
	s.n++
	fmt.Println(s.n, typ, instr)
	return s.n, nil
}

// Import turns LOBSTER message rows into frames: a definition first, then
// one or two frames per message (an execution is an order execute and a
// trade; a halt row a trading status).
func ExampleImport() {
	msgs := `34200.004241176,1,16113575,18,5853300,1
34200.025552426,4,16120456,50,5859500,-1
34201.000000000,7,0,0,-1,-1
`
	mr, err := lobster.NewMessageReader(strings.NewReader(msgs))
	if err != nil {
		log.Fatal(err)
	}
	st, err := lobster.Import(mr, nil, &printSink{}, lobster.Options{Symbol: "AAPL", Date: lobster.Date{Year: 2012, Month: 6, Day: 21}, Instrument: 1})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(st.Messages, "messages,", st.Frames, "frames")
	// Output:
	// 1 instrument_def 1
	// 2 order_add 1
	// 3 order_execute 1
	// 4 trade 1
	// 5 trading_status 1
	// 3 messages, 5 frames
}
