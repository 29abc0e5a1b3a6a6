package pipeline

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"strconv"
	"syscall"

	"github.com/mdjournal/mdjournal/journal"
	"github.com/mdjournal/mdjournal/ring"
)

// fieldOff returns the offset of the named field of a layout (format.md
// §12 declares them once, in package ring).
func fieldOff(l journal.Layout, name string) int {
	for _, f := range l.Fields {
		if f.Name == name {
			return f.Off
		}
	}
	panic("pipeline: ring layout has no field " + name) // a build against another format version
}

var (
	offGeneration = fieldOff(ring.HeaderLayout, "generation")
	offSidePID    = fieldOff(ring.SideLayout, "pid")
	offSideState  = fieldOff(ring.SideLayout, "state")
)

// ConsumerState is what a producer can tell of its ring's consumer side
// from the ring file's header page (format.md §12).
type ConsumerState int

// The consumer states a producer acts on.
const (
	ConsumerWaiting  ConsumerState = iota // no consumer attached yet: one may still come
	ConsumerAlive                         // attached and its process runs
	ConsumerGone                          // attached once and left, died, or the side was sealed
	ConsumerReplaced                      // the path names another generation
)

func (s ConsumerState) String() string {
	switch s {
	case ConsumerWaiting:
		return "waiting"
	case ConsumerAlive:
		return "alive"
	case ConsumerGone:
		return "gone"
	case ConsumerReplaced:
		return "replaced"
	}
	return "ConsumerState(" + strconv.Itoa(int(s)) + ")"
}

// RingConsumer reads the consumer side block of the ring file at path and
// says whether the generation gen still has a consumer that will read it.
// A consumer that attached and whose process is gone (kill(pid, 0) fails
// or the process is a zombie) can never read again: each side of a
// generation attaches once, so the producer must start a new generation
// for its successor. It reads the header page with one pread.
func RingConsumer(path string, gen uint64) (ConsumerState, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0)
	if errors.Is(err, os.ErrNotExist) {
		return ConsumerReplaced, nil
	}
	if err != nil {
		return 0, err
	}
	defer f.Close()
	var b [ring.HeaderSize]byte
	if _, err := f.ReadAt(b[:], 0); err != nil {
		return 0, fmt.Errorf("%s: header: %w", path, err)
	}
	if string(b[:len(ring.Magic)]) != ring.Magic {
		return 0, fmt.Errorf("%s: %w: not a ring file", path, ring.ErrBadMagic)
	}
	if binary.LittleEndian.Uint64(b[offGeneration:]) != gen {
		return ConsumerReplaced, nil
	}
	pid := binary.LittleEndian.Uint32(b[ring.OffConsumer+offSidePID:])
	switch binary.LittleEndian.Uint32(b[ring.OffConsumer+offSideState:]) {
	case ring.StateFree:
		return ConsumerWaiting, nil
	case ring.StateAttached:
		if pidAlive(pid) {
			return ConsumerAlive, nil
		}
		return ConsumerGone, nil
	}
	return ConsumerGone, nil
}

// pidAlive reports whether pid names a running, non-zombie process.
func pidAlive(pid uint32) bool {
	if pid == 0 || pid == ring.SealedPID || pid > 1<<22 {
		return false
	}
	if err := syscall.Kill(int(pid), 0); errors.Is(err, syscall.ESRCH) {
		return false
	}
	b, err := os.ReadFile("/proc/" + strconv.FormatUint(uint64(pid), 10) + "/stat")
	if err != nil {
		return !errors.Is(err, os.ErrNotExist)
	}
	for i := len(b) - 1; i >= 0; i-- {
		if b[i] == ')' {
			if i+2 < len(b) {
				return b[i+2] != 'Z' && b[i+2] != 'X'
			}
			break
		}
	}
	return true
}
