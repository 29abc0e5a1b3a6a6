package book

import "github.com/mdjournal/mdjournal/journal"

// Books routes frames to one Book per instrument id. A book is created the
// first time its instrument sends a frame that defines or changes a book
// (the only allocation; later frames allocate nothing).
type Books struct {
	capacity int
	m        map[uint32]*Book
}

// NewBooks returns an empty set whose books reserve capacity levels per side.
func NewBooks(capacity int) *Books {
	return &Books{capacity: capacity, m: make(map[uint32]*Book)}
}

// Get returns the book of instrument id, if it exists.
func (s *Books) Get(id uint32) (*Book, bool) {
	b, ok := s.m[id]
	return b, ok
}

// Book returns the book of instrument id, creating it if needed.
func (s *Books) Book(id uint32) *Book {
	b, ok := s.m[id]
	if !ok {
		b = New(s.capacity)
		s.m[id] = b
	}
	return b
}

// Len returns the number of books.
func (s *Books) Len() int { return len(s.m) }

// Each calls fn for each book, in no particular order.
func (s *Books) Each(fn func(id uint32, b *Book)) {
	for id, b := range s.m {
		fn(id, b)
	}
}

// ApplyFrame routes f to its instrument's book. Frames that carry no book
// information (heartbeats, raw) do not create a book; for an existing book
// they still advance its Seq and TS.
func (s *Books) ApplyFrame(f *journal.Frame) error {
	b, ok := s.m[f.Instrument]
	if !ok {
		if !createsBook(f.Type) {
			return nil
		}
		b = s.Book(f.Instrument)
	}
	return b.ApplyFrame(f)
}

func createsBook(t journal.MsgType) bool {
	switch t {
	case journal.TypeInstrumentDef, journal.TypeTrade, journal.TypeQuote, journal.TypeBookLevel:
		return true
	}
	return t.IsOrder()
}
