package booksnap_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/mdjournal/mdjournal/booksnap"
	"github.com/mdjournal/mdjournal/journal"
	"github.com/mdjournal/mdjournal/reader"
	"github.com/mdjournal/mdjournal/snapshot"
	"github.com/mdjournal/mdjournal/writer"
)

// A journal writer keeps the snapshot as it appends; a late joiner loads a
// slot and tails the journal from the frame after it. A book frame of an id
// the snapshot has no slot for is refused before it is written.
func Example() {
	tmp, _ := os.MkdirTemp("", "booksnap-example-")
	defer os.RemoveAll(tmp)
	dir, snap := filepath.Join(tmp, "journal"), filepath.Join(tmp, "book.snap")

	w, m, err := booksnap.OpenWriter(dir, writer.Options{}, booksnap.Config{Path: snap, Depth: 5, Capacity: 8})
	if err != nil {
		fmt.Println(err)
		return
	}
	var def journal.InstrumentDef
	def.SetSymbol("MSFT")
	def.TickSize, def.PriceScale = 1, 2
	w.Append(journal.TypeInstrumentDef, 3, 1, def.Encode(make([]byte, 32)))
	level := func(side journal.Side, px journal.Price, qty int64) []byte {
		return (&journal.BookLevel{Side: side, Price: px, Qty: qty}).Encode(make([]byte, 24))
	}
	w.Append(journal.TypeBookLevel, 3, 2, level(journal.SideBid, 41210, 500))
	w.Append(journal.TypeBookLevel, 3, 3, level(journal.SideAsk, 41215, 300))
	_, err = w.Append(journal.TypeBookLevel, 8, 4, level(journal.SideBid, 1, 1))
	fmt.Println("id 8 refused:", errors.Is(err, snapshot.ErrInstrument))

	// A late joiner, meanwhile: the slot, then the journal after it.
	j, err := booksnap.Join(snap, dir, 3, reader.Options{})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer j.Close()
	joined := j.Seq
	w.Append(journal.TypeBookLevel, 3, 5, level(journal.SideBid, 41212, 100))
	for {
		if _, ok, err := j.TryNext(); err != nil || !ok {
			break
		}
	}
	best, _ := j.Book.Best(journal.SideBid)
	fmt.Printf("joined at seq %d, now at seq %d: best bid %s x %d\n", joined, j.Seq,
		journal.FormatPrice(best.Price, 2), best.Qty)

	w.Close()
	m.Close()
	// A restart rebuilds the books from the journal.
	w, m, err = booksnap.OpenWriter(dir, writer.Options{}, booksnap.Config{Path: snap, Depth: 5, Capacity: 8})
	if err != nil {
		fmt.Println(err)
		return
	}
	rb := m.Rebuild()
	fmt.Printf("restart: books from the %s, up to seq %d\n", rb.Source, rb.UpTo)
	w.Close()
	m.Close()
	// Output:
	// id 8 refused: true
	// joined at seq 3, now at seq 4: best bid 412.12 x 100
	// restart: books from the journal, up to seq 4
}
