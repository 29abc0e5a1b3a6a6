package command

import (
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"

	hdr "github.com/HdrHistogram/hdrhistogram-go"

	"github.com/mdjournal/mdjournal/cmd/journalctl/internal/benchkit"
	"github.com/mdjournal/mdjournal/wait"
)

// `journalctl bench KIND` measures mdjournal beside a baseline measured the
// same way in the same run, and reports medians and ratios: on a shared VM
// absolute times drift from run to run, ratios much less. One file per kind:
// bench_append.go, bench_tail.go, bench_open.go, bench_ipc.go,
// bench_snapshot.go, bench_replay.go; the measuring code is in
// internal/benchkit.

// selfCommand re-executes journalctl (tests point it at a built binary).
var selfCommand = func() (string, error) { return os.Executable() }

const benchKinds = "append, tail, ipc, snapshot, replay, open, ship or feed"

const benchHelp = `Usage: journalctl bench KIND [flags]

Measures mdjournal beside a baseline measured the same way in the same run,
and reports medians and ratios. Kinds:
  append     appender cost per frame under each durability policy, beside raw stores and tidwall/wal
  tail       cross-process latency from append to a tailing reader, beside a raw cache-line ping-pong
  ipc        latency and throughput of the journal and the ring beside pipes, sockets, mq and TCP
  snapshot   snapshot read and publish cost beside a plain struct copy
  replay     replay --speed max into a drained ring, beside a plain reader loop
  open       time to open a cleanly closed journal (writer and reader)
  ship       origin → NATS JetStream → replica throughput and latency, beside nats.go publish and request-reply
  feed       ITCH/MoldUDP64 from loopback UDP into the journal: msgs/s beside recvmmsg alone, latency beside UDP one-way

'journalctl bench KIND --help' for a kind's flags.
`

func runBench(env *Env, args []string) error {
	if len(args) > 0 && (args[0] == "--help" || args[0] == "-h" || args[0] == "help") {
		fmt.Fprint(env.Stdout, benchHelp)
		return nil
	}
	if len(args) == 0 || strings.HasPrefix(args[0], "-") {
		return usagef("bench needs a kind: %s (journalctl bench --help)", benchKinds)
	}
	switch args[0] {
	case "append":
		return benchAppend(env, args[1:])
	case "tail":
		return benchTail(env, args[1:])
	case "ipc":
		return benchIPC(env, args[1:])
	case "snapshot":
		return benchSnapshot(env, args[1:])
	case "replay":
		return benchReplay(env, args[1:])
	case "ship":
		return benchShip(env, args[1:])
	case "open":
		return benchOpen(env, args[1:])
	case "feed":
		return benchFeed(env, args[1:])
	}
	return usagef("unknown bench %q (want %s)", args[0], benchKinds)
}

func median(v []float64) float64 {
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	return s[len(s)/2]
}

func ns(v int64) string {
	if v >= 10_000 {
		return fmt.Sprintf("%.1fµs", float64(v)/1000)
	}
	return fmt.Sprintf("%dns", v)
}

// runBenchChild is the other process of a two-process bench:
//
//	_bench-child ipc TRANSPORT MODE SIZE WARM COUNT GAP CPU ARGS...
//	_bench-child tail raw|journal PATH SAMPLES SIZE WAIT CPU
func runBenchChild(env *Env, args []string) error {
	if len(args) > 0 && args[0] == "ipc" {
		return benchkit.ChildMain(args[1:], env.Stdout)
	}
	if len(args) != 7 || args[0] != "tail" {
		return usagef("internal command")
	}
	samples, _ := strconv.Atoi(args[3])
	size, _ := strconv.Atoi(args[4])
	ws, _ := wait.Parse(args[5])
	cpu, _ := strconv.Atoi(args[6])
	if err := benchkit.Pin(cpu); err != nil {
		return err
	}
	p := benchkit.TailParams{Samples: samples, Size: size}
	ready := func() { fmt.Fprintln(env.Stdout, "READY") }
	var h *hdr.Histogram
	var err error
	switch args[1] {
	case "raw":
		if err := benchkit.RawEcho(args[2], p, ready); err != nil {
			return err
		}
		fmt.Fprintln(env.Stdout, "{}")
		return nil
	default:
		h, err = benchkit.JournalConsume(args[2], p, ws, ready)
	}
	if err != nil {
		return err
	}
	fmt.Fprintln(env.Stdout, benchkit.EncodeHistogram(h))
	return nil
}
