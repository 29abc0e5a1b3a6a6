package replay

import (
	"context"
	"time"
)

const (
	// spinWindow is the stretch before a due time that is always spun, not
	// slept: a wake-up from time.Sleep is never that precise.
	spinWindow = 50 * time.Microsecond
	// initialOvershoot is the first guess of how late time.Sleep wakes up;
	// measured p99 on a loaded 2-core VM is ~1.2 ms for short sleeps.
	initialOvershoot = 2 * time.Millisecond
	// maxOvershoot caps the estimate, so one huge stall (a VM pause) does
	// not turn every later wait into a spin.
	maxOvershoot = 5 * time.Millisecond
	// maxSleep bounds one sleep so cancellation is seen within it.
	maxSleep = 50 * time.Millisecond
)

// pacer turns frame timestamps into release times on the monotonic clock.
type pacer struct {
	clk       Clock
	speed     float64
	anchored  bool
	t0        int64 // monotonic time the anchor frame was due
	ts0       int64 // the anchor frame's timestamp
	overshoot int64 // estimated time.Sleep overshoot, ns (a decaying maximum)
}

// reset makes the next frame the anchor of a new pass.
func (p *pacer) reset() { p.anchored = false }

// due returns when the frame stamped ts must be released: the anchor frame
// now, each later one (ts-ts0)/speed after it.
func (p *pacer) due(ts int64) int64 {
	if !p.anchored {
		p.anchored, p.t0, p.ts0 = true, p.clk.Now(), ts
		return p.t0
	}
	return p.t0 + int64(float64(ts-p.ts0)/p.speed)
}

// waitUntil returns once the clock reads at least due: it sleeps while
// more than the spin window plus the expected sleep overshoot remains,
// then spins. It returns ctx's error if ctx is done during a sleep.
func (p *pacer) waitUntil(ctx context.Context, due int64) error {
	for {
		now := p.clk.Now()
		gap := due - now
		if gap <= 0 {
			return nil
		}
		margin := int64(spinWindow) + p.overshoot
		if gap <= margin {
			for p.clk.Now() < due {
			}
			return nil
		}
		d := min(time.Duration(gap-margin), maxSleep)
		p.clk.Sleep(d)
		p.observe(p.clk.Now() - now - int64(d))
		if err := ctx.Err(); err != nil {
			return err
		}
	}
}

// observe updates the overshoot estimate: up at once to a larger sample,
// down by 1/64 of the difference per smaller one.
func (p *pacer) observe(o int64) {
	switch {
	case o > p.overshoot:
		p.overshoot = min(o, int64(maxOvershoot))
	default:
		p.overshoot -= (p.overshoot - max(o, 0)) / 64
	}
}
