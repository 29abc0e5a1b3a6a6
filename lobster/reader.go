package lobster

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"

	"github.com/mdjournal/mdjournal/book"
)

const bufSize = 256 << 10

// decompress returns a buffered reader over r's content, gunzipping it if it
// starts with the gzip magic bytes (the file name is not trusted).
func decompress(r io.Reader) (*bufio.Reader, error) {
	br := bufio.NewReaderSize(r, bufSize)
	magic, err := br.Peek(2)
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, err
	}
	if len(magic) == 2 && magic[0] == 0x1f && magic[1] == 0x8b {
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, fmt.Errorf("lobster: gzip: %w", err)
		}
		return bufio.NewReaderSize(zr, bufSize), nil
	}
	return br, nil
}

// lines reads LF-terminated lines without allocating per line; the returned
// slice is valid until the next call.
type lines struct {
	r    *bufio.Reader
	line int
}

func (l *lines) next() ([]byte, error) {
	for {
		b, err := l.r.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			return nil, fmt.Errorf("line %d longer than %d bytes", l.line+1, bufSize)
		}
		if err != nil && !errors.Is(err, io.EOF) {
			return nil, err
		}
		if len(b) == 0 && err != nil {
			return nil, io.EOF
		}
		l.line++
		b = bytes.TrimSuffix(b, []byte{'\n'})
		b = bytes.TrimSuffix(b, []byte{'\r'})
		if len(b) == 0 {
			if err != nil {
				return nil, io.EOF
			}
			continue // tolerate blank lines
		}
		return b, nil
	}
}

// Event type codes of the message file (column 2).
const (
	TypeSubmit      = 1
	TypeCancel      = 2
	TypeDelete      = 3
	TypeExecute     = 4
	TypeExecHidden  = 5
	TypeCross       = 6
	TypeHalt        = 7
	numMessageTypes = 8
)

// Message is one row of a message file.
type Message struct {
	Time      int64 // nanoseconds after midnight (exact)
	Type      int   // 1..7, see the Type constants
	OrderID   int64 // 0 for hidden executions and halts
	Size      int64 // shares; for types 2-4 the size taken away
	Price     int64 // dollars x 10000
	Direction int   // 1 buy order, -1 sell order (for executions: the resting order)
}

// MessageSource yields messages in file order; Next returns io.EOF after the last.
type MessageSource interface {
	Next(m *Message) error
}

// OrderbookSource yields orderbook rows in file order; Next returns io.EOF
// after the last. The row's slices may be reused by the next call.
type OrderbookSource interface {
	Next(r *Row) error
}

// MessageReader parses a message file, plain or gzip.
type MessageReader struct {
	l       lines
	f       [7][]byte
	rounded int
}

// NewMessageReader reads a message file from r (gzip detected by magic bytes).
func NewMessageReader(r io.Reader) (*MessageReader, error) {
	br, err := decompress(r)
	if err != nil {
		return nil, err
	}
	return &MessageReader{l: lines{r: br}}, nil
}

// Line returns the 1-based line number of the last row returned.
func (mr *MessageReader) Line() int { return mr.l.line }

// Rounded returns how many times so far had digits past the nanosecond
// (float noise in the file) and were rounded to the nearest nanosecond.
func (mr *MessageReader) Rounded() int { return mr.rounded }

// Next parses the next row into m.
func (mr *MessageReader) Next(m *Message) error {
	b, err := mr.l.next()
	if err != nil {
		if errors.Is(err, io.EOF) {
			return io.EOF
		}
		return fmt.Errorf("lobster: message file: %w", err)
	}
	if n := fields(b, mr.f[:]); n != 6 {
		return fmt.Errorf("lobster: message line %d: want 6 columns, got %q", mr.l.line, b)
	}
	var e [6]error
	var rounded bool
	m.Time, rounded, e[0] = parseTime(mr.f[0])
	if rounded {
		mr.rounded++
	}
	var typ, dir int64
	typ, e[1] = parseInt(mr.f[1])
	m.OrderID, e[2] = parseInt(mr.f[2])
	m.Size, e[3] = parseInt(mr.f[3])
	m.Price, e[4] = parseInt(mr.f[4])
	dir, e[5] = parseInt(mr.f[5])
	for i, err := range e {
		if err != nil {
			return fmt.Errorf("lobster: message line %d column %d %q: %w", mr.l.line, i+1, mr.f[i], err)
		}
	}
	if typ < 1 || typ > 7 {
		return fmt.Errorf("lobster: message line %d: unknown type %d", mr.l.line, typ)
	}
	if dir != 1 && dir != -1 {
		return fmt.Errorf("lobster: message line %d: direction %d is neither 1 nor -1", mr.l.line, dir)
	}
	if m.Size < 0 {
		return fmt.Errorf("lobster: message line %d: negative size %d", mr.l.line, m.Size)
	}
	m.Type, m.Direction = int(typ), int(dir)
	return nil
}

// Dummy prices LOBSTER writes for unoccupied levels (with size 0).
const (
	DummyAskPrice = 9999999999
	DummyBidPrice = -9999999999
)

// Row is one orderbook row: the top Levels of each side after the message of
// the same row number. Ask[i] and Bid[i] are level i+1; an unoccupied level
// has Qty 0 (and LOBSTER's dummy price).
type Row struct {
	Ask, Bid []book.Level
}

// Levels returns the number of levels per side.
func (r *Row) Levels() int { return len(r.Ask) }

// Side returns the levels of one side (bid if bid, ask otherwise).
func (r *Row) Side(bid bool) []book.Level {
	if bid {
		return r.Bid
	}
	return r.Ask
}

// OrderbookReader parses an orderbook file, plain or gzip.
type OrderbookReader struct {
	l      lines
	levels int
	f      [][]byte
}

// NewOrderbookReader reads an orderbook file with the given number of levels
// (the file has 4*levels columns; levels 0 means: learn it from the first row).
func NewOrderbookReader(r io.Reader, levels int) (*OrderbookReader, error) {
	if levels < 0 || levels > MaxLevels {
		return nil, fmt.Errorf("lobster: level count %d outside 0..%d", levels, MaxLevels)
	}
	br, err := decompress(r)
	if err != nil {
		return nil, err
	}
	return &OrderbookReader{l: lines{r: br}, levels: levels}, nil
}

// MaxLevels bounds the levels per side of an orderbook file (LOBSTER
// publishes up to 200): a row is parsed into slices of this many levels, so
// a bound keeps a wrong flag or a damaged file from allocating without end.
const MaxLevels = 1000

// Levels returns the number of levels per side (0 before the first row if it
// was not given).
func (or *OrderbookReader) Levels() int { return or.levels }

// Line returns the 1-based line number of the last row returned.
func (or *OrderbookReader) Line() int { return or.l.line }

// Next parses the next row into r, reusing r's slices when they fit.
func (or *OrderbookReader) Next(r *Row) error {
	b, err := or.l.next()
	if err != nil {
		if errors.Is(err, io.EOF) {
			return io.EOF
		}
		return fmt.Errorf("lobster: orderbook file: %w", err)
	}
	if or.levels == 0 {
		n := bytes.Count(b, []byte{','}) + 1
		if n > 4*MaxLevels {
			return fmt.Errorf("lobster: orderbook line %d: %d columns, more than %d levels", or.l.line, n, MaxLevels)
		}
		if n%4 != 0 {
			return fmt.Errorf("lobster: orderbook line %d: %d columns is not a multiple of 4", or.l.line, n)
		}
		or.levels = n / 4
	}
	if len(or.f) != 4*or.levels+1 {
		or.f = make([][]byte, 4*or.levels+1)
	}
	if n := fields(b, or.f); n != 4*or.levels {
		return fmt.Errorf("lobster: orderbook line %d: want %d columns", or.l.line, 4*or.levels)
	}
	if cap(r.Ask) < or.levels || cap(r.Bid) < or.levels {
		r.Ask, r.Bid = make([]book.Level, or.levels), make([]book.Level, or.levels)
	}
	r.Ask, r.Bid = r.Ask[:or.levels], r.Bid[:or.levels]
	for i := range or.levels {
		var v [4]int64
		for j := range 4 {
			if v[j], err = parseInt(or.f[4*i+j]); err != nil {
				return fmt.Errorf("lobster: orderbook line %d column %d %q: %w", or.l.line, 4*i+j+1, or.f[4*i+j], err)
			}
		}
		if v[1] < 0 || v[3] < 0 {
			return fmt.Errorf("lobster: orderbook line %d level %d: negative size", or.l.line, i+1)
		}
		r.Ask[i] = book.Level{Price: v[0], Qty: v[1]}
		r.Bid[i] = book.Level{Price: v[2], Qty: v[3]}
	}
	return nil
}
