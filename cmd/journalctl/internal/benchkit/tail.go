package benchkit

import (
	"encoding/binary"
	"os"
	"sync/atomic"
	"time"
	"unsafe"

	hdr "github.com/HdrHistogram/hdrhistogram-go"

	"github.com/mdjournal/mdjournal/internal/clock"
	"github.com/mdjournal/mdjournal/internal/mmap"
	"github.com/mdjournal/mdjournal/journal"
	"github.com/mdjournal/mdjournal/reader"
	"github.com/mdjournal/mdjournal/wait"
	"github.com/mdjournal/mdjournal/writer"
)

// TailParams describe one cross-process one-way latency experiment: a
// producer (this process) stamps CLOCK_MONOTONIC into each message and a
// consumer process computes now − stamp on arrival.
type TailParams struct {
	Samples int   // measured messages (Warmup() more are sent first)
	Size    int   // payload bytes (≥ 8)
	GapNS   int64 // pause between messages
}

// Warmup is how many messages are sent, and not measured, before the
// samples: a tenth of them, and at least 20000 (≥ 100 ms at the default
// 5 µs gap), which covers page faults of the first pages and the writer's
// background preparation of its next segment.
func (p TailParams) Warmup() int { return max(p.Samples/10, 20000) }

// JournalProduce appends Samples+warm-up Raw frames to w, each carrying its
// send time in the first 8 payload bytes, paced GapNS apart.
func JournalProduce(w *writer.Writer, p TailParams) error {
	payload := make([]byte, p.Size)
	total := p.Samples + p.Warmup()
	next := clock.Nanotime()
	for i := 0; i < total; i++ {
		next += p.GapNS
		SpinUntil(next)
		binary.LittleEndian.PutUint64(payload, uint64(clock.Nanotime()))
		if _, err := w.Append(journal.TypeRaw, 1, 0, payload); err != nil {
			return err
		}
	}
	return nil
}

// JournalConsume tails dir from its end and records the one-way latency of
// Samples frames after the warm-up.
func JournalConsume(dir string, p TailParams, ws wait.Strategy, ready func()) (*hdr.Histogram, error) {
	r, err := reader.Open(dir, reader.Options{From: reader.Start(), Wait: ws})
	if err != nil {
		return nil, err
	}
	defer r.Close()
	h := NewHistogram()
	warm := p.Warmup()
	// Let the reader's background prefault of the segment finish: on 2
	// cores a third runnable thread beside two spinning ones is what shows
	// up as millisecond tails.
	time.Sleep(300 * time.Millisecond)
	ready()
	for i := 0; i < warm+p.Samples; i++ {
		f, err := r.Next()
		if err != nil {
			return nil, err
		}
		now := clock.Nanotime()
		if i >= warm {
			h.RecordValue(now - int64(binary.LittleEndian.Uint64(f.Payload)))
		}
	}
	return h, nil
}

// Raw baseline: two processes ping-ponging one cache line in a shared 4 KiB
// page. The producer stores message number i in the word at 64; the
// consumer, spinning on it, stores i in the word at 128 (the echo); the
// producer spins on the echo. One-way latency = round trip / 2. Unlike a
// "stamp and hope" one-way test, a ping-pong never loses a message while a
// process is descheduled, so its tail is measured the same way as the
// journal's, where every frame is delivered and queued frames count.
const (
	rawOffCount = 64
	rawOffEcho  = 128
	rawSize     = 4096
)

// RawFile creates the shared page for the raw baseline.
func RawFile(path string) error {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	defer f.Close()
	return f.Truncate(rawSize)
}

func mapRaw(path string) ([]byte, error) {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return mmap.Map(f, rawSize, true)
}

func words(m []byte) (count, echo *uint64) {
	base := unsafe.Pointer(&m[0])
	return (*uint64)(unsafe.Add(base, rawOffCount)), (*uint64)(unsafe.Add(base, rawOffEcho))
}

// RawPingPong is the producer side: it sends Warmup()+Samples pings, paced
// GapNS apart, and returns the histogram of round trip / 2.
func RawPingPong(path string, p TailParams) (*hdr.Histogram, error) {
	m, err := mapRaw(path)
	if err != nil {
		return nil, err
	}
	defer mmap.Unmap(m)
	count, echo := words(m)
	h := NewHistogram()
	warm := p.Warmup()
	next := clock.Nanotime()
	for i := 1; i <= warm+p.Samples; i++ {
		next += p.GapNS
		SpinUntil(next)
		t0 := clock.Nanotime()
		atomic.StoreUint64(count, uint64(i))
		for atomic.LoadUint64(echo) != uint64(i) {
		}
		if i > warm {
			h.RecordValue((clock.Nanotime() - t0) / 2)
		}
	}
	return h, nil
}

// RawEcho is the consumer side of RawPingPong.
func RawEcho(path string, p TailParams, ready func()) error {
	m, err := mapRaw(path)
	if err != nil {
		return err
	}
	defer mmap.Unmap(m)
	count, echo := words(m)
	ready()
	total := uint64(p.Warmup() + p.Samples)
	for seen := uint64(0); seen < total; {
		c := atomic.LoadUint64(count)
		if c != seen {
			atomic.StoreUint64(echo, c)
			seen = c
		}
	}
	return nil
}
