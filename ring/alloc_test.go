package ring

import (
	"testing"

	"github.com/mdjournal/mdjournal/wait"
)

// The write and read paths must not allocate: a spinning side must never
// trigger the garbage collector.
func TestZeroAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector's instrumentation allocates")
	}
	_, p, c := newPair(t, 4096, wait.Futex)
	msg := make([]byte, 100)
	check := func(name string, f func()) {
		t.Helper()
		if a := testing.AllocsPerRun(1000, f); a != 0 {
			t.Errorf("%s: %v allocations per run, want 0", name, a)
		}
	}
	check("TryWrite+TryRead+Release", func() {
		if p.TryWrite(msg) != nil {
			panic("full")
		}
		if _, ok := c.TryRead(); !ok {
			panic("empty")
		}
		c.Release()
	})
	check("Write+Read", func() {
		if p.Write(msg) != nil {
			panic("write")
		}
		if _, err := c.Read(); err != nil {
			panic(err)
		}
	})
	check("Claim+Commit+implicit release", func() {
		b, err := p.Claim(50)
		if err != nil {
			panic(err)
		}
		b[0] = 1
		p.Commit()
		if _, ok := c.TryRead(); !ok {
			panic("empty")
		}
	})
	check("batch of 4 + Flush", func() {
		for range 4 {
			if p.TryAppend(msg[:30]) != nil {
				panic("full")
			}
		}
		p.Flush()
		for range 4 {
			c.TryRead()
		}
		c.Release()
	})
	var sink int
	handler := func(b []byte) { sink += len(b) }
	check("TryWrite x8 + TryReadBatch", func() {
		for range 8 {
			if p.TryWrite(msg[:40]) != nil {
				panic("full")
			}
		}
		if n, err := c.TryReadBatch(8, handler); n != 8 || err != nil {
			panic("batch")
		}
	})
	batch := [][]byte{msg[:10], msg[:20], msg[:30]}
	check("TryWriteBatch + WriteBatch + TryReadBatch", func() {
		if n, err := p.TryWriteBatch(batch); n != 3 || err != nil {
			panic("TryWriteBatch")
		}
		if p.WriteBatch(batch) != nil {
			panic("WriteBatch")
		}
		if n, err := c.TryReadBatch(8, handler); n != 6 || err != nil {
			panic("batch")
		}
	})
	check("Write + ReadBatch", func() {
		if p.Write(msg) != nil {
			panic("write")
		}
		if n, err := c.ReadBatch(8, handler); n != 1 || err != nil {
			panic("batch")
		}
	})
	check("empty TryRead, empty TryReadBatch", func() {
		c.TryRead()
		c.Release()
		_, _ = c.TryRead()
		_, _ = c.TryReadBatch(8, handler)
	})
	// Blocking write that must wait for space: a goroutine-free check is
	// impossible, so exercise the full path with ErrFull only.
	for p.TryWrite(msg) == nil {
	}
	check("TryWrite on a full ring", func() {
		if p.TryWrite(msg) != ErrFull {
			panic("not full")
		}
	})
}
