package moldudp64

import (
	"fmt"
	"sync"
)

// Store is what a re-request Server answers from.
type Store interface {
	// Messages appends to dst the stored messages with sequence numbers
	// first, first+1, … — at most count of them, stopping at the first one
	// it does not have — and returns dst. The slices may share the store's
	// memory; they must stay unchanged until the next call.
	Messages(first uint64, count int, dst [][]byte) [][]byte
}

// MemStore is an in-memory Store of consecutive messages, safe for one
// writer (a Sender) and concurrent readers (a Server). It keeps everything
// appended: a test exchange's day, not a production archive.
type MemStore struct {
	mu    sync.RWMutex
	first uint64
	data  []byte
	ends  []int // ends[i] is the end offset of message first+i in data
}

// NewMemStore returns an empty store whose first message will have
// sequence number first (0: 1).
func NewMemStore(first uint64) *MemStore {
	return &MemStore{first: max(first, 1)}
}

// Next returns the sequence number the next Append must have.
func (m *MemStore) Next() uint64 {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.first + uint64(len(m.ends))
}

// Append stores a copy of msg as message seq, which must be Next().
func (m *MemStore) Append(seq uint64, msg []byte) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if next := m.first + uint64(len(m.ends)); seq != next {
		return fmt.Errorf("moldudp64: store append of message %d, expected %d", seq, next)
	}
	m.data = append(m.data, msg...)
	m.ends = append(m.ends, len(m.data))
	return nil
}

// Messages implements Store. The returned slices stay valid: data that
// Append moves is never overwritten.
func (m *MemStore) Messages(first uint64, count int, dst [][]byte) [][]byte {
	m.mu.RLock()
	defer m.mu.RUnlock()
	if first < m.first || count <= 0 {
		return dst
	}
	i := first - m.first
	for ; count > 0 && i < uint64(len(m.ends)); i, count = i+1, count-1 {
		start := 0
		if i > 0 {
			start = m.ends[i-1]
		}
		end := m.ends[i]
		dst = append(dst, m.data[start:end:end])
	}
	return dst
}
