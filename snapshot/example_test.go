package snapshot_test

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/mdjournal/mdjournal/journal"
	"github.com/mdjournal/mdjournal/snapshot"
)

// A book builder creates the file and publishes a book; a reader (any
// process) finds the instrument by symbol and copies its slot.
func Example() {
	dir, _ := os.MkdirTemp("", "snapshot-example-")
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "book.snap")

	w, err := snapshot.Create(path, snapshot.Options{Depth: 3, Capacity: 16, JournalID: 42})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer w.Close()
	var sym [journal.SymbolLen]byte
	copy(sym[:], "AAPL")
	w.SetInstrument(5, sym, 2)
	w.Publish(5, 1001, 0,
		[]snapshot.Level{{Price: 18950, Qty: 300}, {Price: 18949, Qty: 100}},
		[]snapshot.Level{{Price: 18952, Qty: 200}},
		snapshot.Trade{Price: 18951, Qty: 50})

	r, err := snapshot.Open(path)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer r.Close()
	id, ok, err := r.Lookup("AAPL")
	if err != nil || !ok {
		fmt.Println("AAPL not found", err)
		return
	}
	var b snapshot.Book
	if err := r.Read(id, &b); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("%s is instrument %d at seq %d (last applied %d)\n", b.SymbolString(), id, b.Seq, r.LastApplied())
	fmt.Printf("best bid %s x %d, best ask %s x %d, last trade %s\n",
		journal.FormatPrice(b.Bids[0].Price, b.PriceScale), b.Bids[0].Qty,
		journal.FormatPrice(b.Asks[0].Price, b.PriceScale), b.Asks[0].Qty,
		journal.FormatPrice(b.LastTrade.Price, b.PriceScale))
	lock, _ := os.Stat(snapshot.LockPath(path))
	file, _ := os.Stat(path)
	fmt.Println("file", file.Mode(), "lock", lock.Mode())
	// Output:
	// AAPL is instrument 5 at seq 1001 (last applied 1001)
	// best bid 189.50 x 300, best ask 189.52 x 200, last trade 189.51
	// file -rw-r----- lock -rw-------
}

// A builder that must start afresh prepares a new file beside the old one
// and renames it into place complete; a reader of the old file sees that it
// was replaced and reopens.
func ExamplePrepare() {
	dir, _ := os.MkdirTemp("", "snapshot-example-")
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "book.snap")
	old, _ := snapshot.Create(path, snapshot.Options{Depth: 1, Capacity: 4})
	old.Close()
	r, _ := snapshot.Open(path)
	defer r.Close()

	w, err := snapshot.Prepare(path, snapshot.Options{Depth: 10, Capacity: 4})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer w.Close()
	w.Publish(1, 7, 0, []snapshot.Level{{Price: 100, Qty: 1}}, nil, snapshot.Trade{})
	replaced, _ := r.Replaced()
	fmt.Println("replaced before Install:", replaced)
	if err := w.Install(); err != nil {
		fmt.Println(err)
		return
	}
	replaced, _ = r.Replaced()
	fmt.Println("replaced after Install:", replaced)
	r2, _ := snapshot.Open(path)
	defer r2.Close()
	fmt.Println("new depth", r2.Depth(), "last applied", r2.LastApplied())
	// Output:
	// replaced before Install: false
	// replaced after Install: true
	// new depth 10 last applied 7
}
