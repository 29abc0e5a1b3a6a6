// Package wait holds the idle strategies shared by journal readers and ring
// consumers/producers, and Signal, the futex-backed wake-up word pair that lives
// in a shared mapping.
//
// Strategies, cheapest wake-up first:
//
//	spin     busy-poll; lowest latency, burns a core.
//	yield    poll with runtime.Gosched between polls.
//	backoff  spin, then yield, then sleep 1 µs doubling to 1 ms (Aeron's
//	         BackoffIdleStrategy).
//	futex    spin briefly, then announce a waiter and block in FUTEX_WAIT; the
//	         producer pays a FUTEX_WAKE syscall only while someone is announced.
package wait

import (
	"fmt"
	"runtime"
	"sync/atomic"
	"time"

	"github.com/mdjournal/mdjournal/internal/futex"
)

// Strategy selects how a consumer idles when there is nothing to read. The
// zero value is Backoff: an idle consumer never burns a core unless it asks
// to spin.
type Strategy uint8

const (
	// Backoff spins briefly, then yields, then sleeps 1 µs doubling to 1 ms
	// (Aeron's BackoffIdleStrategy). The default.
	Backoff Strategy = iota
	// Spin busy-polls: the lowest latency, one core burnt per consumer.
	Spin
	// Yield polls with runtime.Gosched between polls.
	Yield
	// Futex spins briefly, then blocks in FUTEX_WAIT until the producer
	// wakes it (the producer pays a syscall only while someone sleeps).
	Futex
)

// String returns the name Parse reads: "spin", "backoff" or "futex".
func (s Strategy) String() string {
	switch s {
	case Spin:
		return "spin"
	case Yield:
		return "yield"
	case Backoff:
		return "backoff"
	case Futex:
		return "futex"
	}
	return fmt.Sprintf("Strategy(%d)", s)
}

// Parse reads a strategy name as used on command lines.
func Parse(s string) (Strategy, error) {
	switch s {
	case "spin":
		return Spin, nil
	case "yield":
		return Yield, nil
	case "backoff":
		return Backoff, nil
	case "futex":
		return Futex, nil
	}
	return 0, fmt.Errorf("unknown wait strategy %q (want spin, yield, backoff or futex)", s)
}

const (
	spinIters  = 200 // polls before backoff yields, and before futex blocks
	yieldIters = 100 // yields before backoff sleeps
	minSleep   = time.Microsecond
	maxSleep   = time.Millisecond
	// FutexTimeout bounds one FUTEX_WAIT so that a waiter re-checks its exit
	// conditions (interrupt, dead peer) at least this often.
	FutexTimeout = 100 * time.Millisecond
)

// Idler tracks how long a consumer has been idle. The zero value with a
// Strategy set is ready; call Reset after doing work.
type Idler struct {
	Strategy Strategy
	n        int
	sleep    time.Duration
}

// Reset records that work was found.
func (i *Idler) Reset() { i.n = 0; i.sleep = 0 }

// ShouldBlock reports whether a Futex idler has spun long enough that the
// caller should block on its Signal instead of calling Idle.
func (i *Idler) ShouldBlock() bool { return i.Strategy == Futex && i.n >= spinIters }

// Idle waits once according to the strategy. For Futex it spins (the caller
// blocks on a Signal once ShouldBlock says so).
func (i *Idler) Idle() {
	i.n++
	switch i.Strategy {
	case Spin, Futex:
		// Go has no PAUSE intrinsic; a plain poll loop is what spin means here.
		// The runtime still preempts spinning goroutines asynchronously.
	case Yield:
		runtime.Gosched()
	case Backoff:
		switch {
		case i.n < spinIters:
		case i.n < spinIters+yieldIters:
			runtime.Gosched()
		default:
			if i.sleep == 0 {
				i.sleep = minSleep
			} else if i.sleep < maxSleep {
				i.sleep *= 2
			}
			time.Sleep(i.sleep)
		}
	}
}

// Signal is a wake-up channel in shared memory: Seq is the futex word that a
// producer bumps, Waiters counts announced sleepers. Both point into a mapping
// and must be 4-byte aligned; they are usually adjacent in one 8-byte slot.
//
// Protocol (all atomics are sequentially consistent):
//
//	consumer: Waiters++ ; v := Seq ; re-check condition ; if still empty FUTEX_WAIT(Seq, v) ; Waiters--
//	producer: publish ; if Waiters != 0 { Seq++ ; FUTEX_WAKE(Seq, all) }
//
// A producer that publishes after the consumer's re-check must observe
// Waiters != 0 (the increment precedes the re-check), so it bumps Seq and the
// FUTEX_WAIT returns at once: no lost wake-up. While nobody waits, publishing
// costs one load.
type Signal struct {
	Seq     *uint32
	Waiters *uint32
}

// Wake wakes every announced waiter; it is a single atomic load when there are none.
func (s Signal) Wake() {
	if atomic.LoadUint32(s.Waiters) != 0 {
		atomic.AddUint32(s.Seq, 1)
		futex.Wake(s.Seq, 1<<30)
	}
}

// Announce registers a waiter and returns the token for Block. The caller must
// re-check its condition after Announce and call Done after Block (or instead
// of it).
func (s Signal) Announce() uint32 {
	atomic.AddUint32(s.Waiters, 1)
	return atomic.LoadUint32(s.Seq)
}

// Block sleeps until Wake, a timeout of at most d, or a signal.
func (s Signal) Block(token uint32, d time.Duration) { futex.Wait(s.Seq, token, d) }

// Done withdraws the announcement made by Announce.
func (s Signal) Done() { atomic.AddUint32(s.Waiters, ^uint32(0)) }

// SignalAt builds a Signal from the two words of a shared mapping (for
// example a journal control page's notify and waiters words).
func SignalAt(seq, waiters *uint32) Signal { return Signal{Seq: seq, Waiters: waiters} }
