package pipeline_test

import (
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestResend drives the two re-send paths on purpose, then checks the
// result against an uninterrupted run:
//
//  1. the engine dies with orders in a ring nobody consumed yet (risk not
//     started): its successor replaces the leftover generation and re-sends
//     orders 1..N from its orders journal;
//  2. risk is stopped (SIGSTOP) while the engine keeps pushing, then killed:
//     the engine sees its consumer gone, starts a new generation and
//     re-sends what risk's journal does not hold; the restarted risk
//     decides each order once.
func TestResend(t *testing.T) {
	src := []string{"-synth", "20000", "-seed", "11"}
	base, baseRing := setup(t)
	runUninterrupted(t, base, baseRing, src, []string{"-join", "start"})
	wantOrders, wantDecisions := orders(t, base.Orders()), decisions(t, base.Risk())

	d, ringPath := setup(t)
	log := &syncBuf{}
	feed := start(t, log, "feed", stageArgs(d, ringPath, "feed", append(slices.Clone(src), "-rate", "4000")...)...)
	engine := start(t, log, "engine", stageArgs(d, ringPath, "engine", "-join", "start")...)
	waitUntil(t, 30*time.Second, "50 orders", func() bool { return lastSeq(d.Orders()) >= 50 })
	engine.kill()
	engine = start(t, log, "engine", stageArgs(d, ringPath, "engine", "-join", "start")...)
	waitUntil(t, 30*time.Second, "the restarted engine's re-send", func() bool { return strings.Contains(log.String(), "re-sending orders 1..") })

	risk := start(t, log, "risk", stageArgs(d, ringPath, "risk")...)
	waitUntil(t, 30*time.Second, "a first decision", func() bool { return lastSeq(d.Risk()) >= 1 })
	if err := risk.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	stopped := lastSeq(d.Risk())
	waitUntil(t, 30*time.Second, "20 orders while risk is stopped", func() bool { return lastSeq(d.Orders()) >= stopped+20 })
	n := strings.Count(log.String(), "re-sending orders") // a stopped consumer is alive: no re-send yet
	risk.kill()
	risk = start(t, log, "risk", stageArgs(d, ringPath, "risk")...)
	for _, p := range []*proc{feed, engine, risk} {
		if err := p.wait(t, 60*time.Second); err != nil {
			t.Fatalf("%s: %v; output:\n%s", p.name, err, log)
		}
	}
	if strings.Count(log.String(), "re-sending orders") <= n {
		t.Fatalf("the engine did not re-send after risk died with orders undecided; output:\n%s", log)
	}
	gotOrders, gotDecisions := orders(t, d.Orders()), decisions(t, d.Risk())
	checkExactlyOnce(t, gotOrders, gotDecisions)
	bySource(t, base.MD(), wantOrders, wantDecisions)
	bySource(t, d.MD(), gotOrders, gotDecisions)
	if !slices.Equal(gotOrders, wantOrders) || !slices.Equal(gotDecisions, wantDecisions) {
		t.Fatalf("journals differ from the uninterrupted run's: orders %d vs %d (first difference %d), decisions %d vs %d (first difference %d)",
			len(gotOrders), len(wantOrders), firstDiff(gotOrders, wantOrders), len(gotDecisions), len(wantDecisions), firstDiff(gotDecisions, wantDecisions))
	}
}
