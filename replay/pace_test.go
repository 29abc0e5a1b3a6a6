package replay

import (
	"context"
	"testing"
	"time"
)

// fakeClock advances step ns per reading (so a spin loop ends) and d plus
// a fixed overshoot per Sleep (a scheduler that wakes up late).
type fakeClock struct {
	now       int64
	step      int64
	overshoot int64
	sleeps    []time.Duration
}

func (c *fakeClock) Now() int64 { c.now += c.step; return c.now }
func (c *fakeClock) Sleep(d time.Duration) {
	c.sleeps = append(c.sleeps, d)
	c.now += int64(d) + c.overshoot
}

// Pacing arithmetic with an injected clock: frame i is due exactly
// (ts_i-ts_0)/speed after the first, is never released early, is released
// within the spin granularity when sleeps overshoot less than the margin,
// and gaps longer than the margin are slept, not spun.
func TestPacerSchedule(t *testing.T) {
	for _, speed := range []float64{1, 10, 0.5} {
		clk := &fakeClock{now: 1e12, step: 100, overshoot: int64(300 * time.Microsecond)}
		p := pacer{clk: clk, speed: speed, overshoot: int64(initialOvershoot)}
		ts0 := int64(1_700_000_000_000_000_000)
		offs := []int64{0, 1_000, 1_000, 100_000, 5_000_000, 5_000_001, 120_000_000, 2_000_000_000}
		var t0, prev int64
		for i, off := range offs {
			due := p.due(ts0 + off)
			if i == 0 {
				t0 = due
			}
			if want := t0 + int64(float64(off)/speed); due != want {
				t.Fatalf("speed %g frame %d: due %d, want %d", speed, i, due, want)
			}
			if err := p.waitUntil(context.Background(), due); err != nil {
				t.Fatal(err)
			}
			rel := clk.now
			if rel < due || rel-due > 2*clk.step {
				t.Fatalf("speed %g frame %d: released %d ns after due", speed, i, rel-due)
			}
			if rel < prev {
				t.Fatalf("speed %g frame %d released before the previous one", speed, i)
			}
			prev = rel
		}
		if len(clk.sleeps) == 0 {
			t.Fatalf("speed %g: never slept over gaps up to %v", speed, time.Duration(float64(offs[len(offs)-1])/speed))
		}
		for _, d := range clk.sleeps {
			if d > maxSleep {
				t.Fatalf("slept %v at once: cancellation would wait that long", d)
			}
		}
	}
}

// A scheduler that oversleeps more than the first guess makes one release
// late; the estimate then grows and later releases are on time again.
func TestPacerLearnsOvershoot(t *testing.T) {
	clk := &fakeClock{step: 50, overshoot: int64(3 * time.Millisecond)}
	p := pacer{clk: clk, speed: 1, overshoot: int64(initialOvershoot)}
	p.due(0)
	late := 0
	for i := int64(1); i <= 20; i++ {
		due := p.due(i * int64(20*time.Millisecond))
		p.waitUntil(context.Background(), due)
		if clk.now-due > 2*clk.step {
			late++
		}
	}
	if late != 1 {
		t.Fatalf("%d late releases, want exactly the first", late)
	}
	if p.overshoot < int64(3*time.Millisecond) {
		t.Fatalf("overshoot estimate %v", time.Duration(p.overshoot))
	}
}

func TestPacerCancel(t *testing.T) {
	clk := &fakeClock{step: 10}
	p := pacer{clk: clk, speed: 1, overshoot: int64(initialOvershoot)}
	p.due(0)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := p.waitUntil(ctx, p.due(int64(time.Hour))); err == nil {
		t.Fatal("waited an hour despite cancellation")
	}
}

func TestParseSpeed(t *testing.T) {
	for s, want := range map[string]float64{"max": 0, "1x": 1, "10x": 10, "0.5x": 0.5, "2": 2} {
		if v, err := ParseSpeed(s); err != nil || v != want {
			t.Errorf("%q: %v %v", s, v, err)
		}
	}
	for _, s := range []string{"", "x", "0x", "-1x", "fast", "Infx", "NaNx"} {
		if _, err := ParseSpeed(s); err == nil {
			t.Errorf("%q accepted", s)
		}
	}
}
