package clock

import (
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func TestMono(t *testing.T) {
	var ts unix.Timespec
	unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts)
	a := Nanotime()
	d := a - ts.Nano()
	if d < 0 || d > int64(time.Millisecond) {
		t.Fatalf("runtime nanotime is not CLOCK_MONOTONIC: differs by %d ns", d)
	}
}
