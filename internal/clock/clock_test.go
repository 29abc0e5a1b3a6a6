package clock

import (
	"golang.org/x/sys/unix"
	"testing"
	"time"
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
