package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/mdjournal/mdjournal/pin"
	"github.com/mdjournal/mdjournal/pipeline"
	"github.com/mdjournal/mdjournal/wait"
)

func usage() {
	fmt.Fprintf(os.Stderr, `usage:
  pipeline feed   -dir D [-lobster DIR | -synth N] [-pace 1] [-rate N] [-duration 10s] [-cpu N]
  pipeline engine -dir D -ring PATH [-join snapshot|start] [-wait spin|yield|backoff|futex] [-cpu N]
  pipeline risk   -dir D -ring PATH [-wait ...] [-cpu N]
  pipeline run    [-dir D] [-lobster DIR] [-pace 1 -duration 10s] [-wait ...] [-cpus F,E,R]   (all three, then the per-hop table)
`)
	os.Exit(2)
}

func main() {
	if len(os.Args) < 2 {
		usage()
	}
	stage, args := os.Args[1], os.Args[2:]
	fs := flag.NewFlagSet(stage, flag.ExitOnError)
	dir := fs.String("dir", "", "pipeline directory (journals, snapshot, stats, markers)")
	ringPath := fs.String("ring", "", "order ring file (default /dev/shm/mdj-pipeline-<pid>.ring for run)")
	lob := fs.String("lobster", "", "LOBSTER directory (feed); empty: synthetic")
	synthN := fs.Int("synth", 200000, "synthetic frames when no LOBSTER directory is given")
	seed := fs.Uint64("seed", 1, "synthetic seed")
	pace := fs.Float64("pace", 0, "replay at this multiple of real time (0: max speed)")
	rate := fs.Int("rate", 0, "pace by count: frames per second (with -pace 0)")
	dur := fs.Duration("duration", 0, "stop the feed after this long (0: whole source)")
	join := fs.String("join", pipeline.JoinSnapshot, "engine's first start: snapshot (late joiner) or start")
	waitS := fs.String("wait", "backoff", "idle strategy: spin, yield, backoff, futex")
	timeout := fs.Duration("start-timeout", 30*time.Second, "how long a stage waits for its input to exist")
	trigWait := fs.Duration("trigger-wait", 2*time.Second, "risk: how long an order's trigger frame may take to appear in the market-data journal")
	quiet := fs.Bool("q", false, "no progress notes on stderr")
	cpu := fs.Int("cpu", -1, "pin this stage's loop to this CPU (-1: not pinned)")
	cpus := fs.String("cpus", "", "run: the feed's, engine's and risk's CPUs, comma-separated (-1 or empty: not pinned)")
	if err := fs.Parse(args); err != nil || fs.NArg() > 0 {
		usage()
	}
	if *cpu >= 0 {
		// The stage's loop runs on this goroutine (Run* return when it
		// ends): bind it to one CPU so that it never migrates and never
		// shares its CPU with another pinned stage.
		p, err := pin.Thread(*cpu)
		if err != nil {
			fmt.Fprintf(os.Stderr, "pipeline %s: -cpu: %v\n", stage, err)
			os.Exit(2)
		}
		defer p.Release()
		fmt.Fprintf(os.Stderr, "pipeline %s: pinned to CPU %d (running on CPU %d)\n", stage, *cpu, pin.Current())
	}
	ws, err := wait.Parse(*waitS)
	if err != nil {
		log.Fatal(err)
	}
	logf := log.New(os.Stderr, "", log.Lmicroseconds).Printf
	if *quiet {
		logf = func(string, ...any) {}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if stage != "run" && *dir == "" {
		log.Fatal("-dir is required")
	}
	d := pipeline.Dirs{Root: *dir}
	switch stage {
	case "feed":
		var src pipeline.Source
		if *lob != "" {
			if src, err = pipeline.LOBSTERSource(*lob); err != nil {
				log.Fatal(err)
			}
		} else {
			src = pipeline.SynthSource(*seed, 4, *synthN, time.Date(2026, 1, 2, 14, 30, 0, 0, time.UTC), time.Millisecond)
		}
		err = pipeline.RunFeed(ctx, pipeline.FeedConfig{Dirs: d, Source: src, Pace: *pace, Rate: *rate, Duration: *dur, Logf: logf})
	case "engine":
		err = pipeline.RunEngine(ctx, pipeline.EngineConfig{Dirs: d, RingPath: *ringPath, Join: *join, Wait: ws,
			StartTimeout: *timeout, Logf: logf})
	case "risk":
		err = pipeline.RunRisk(ctx, pipeline.RiskConfig{Dirs: d, RingPath: *ringPath, Wait: ws, StartTimeout: *timeout,
			TriggerWait: *trigWait, Logf: logf})
	case "run":
		synthArgs := []string{"-synth", fmt.Sprint(*synthN), "-seed", fmt.Sprint(*seed)}
		var stageCPUs []string
		if stageCPUs, err = parseCPUs(*cpus); err != nil {
			fmt.Fprintf(os.Stderr, "pipeline run: -cpus: %v\n", err)
			os.Exit(2)
		}
		err = run(*dir, *ringPath, *lob, synthArgs, *pace, *dur, *waitS, *quiet, stageCPUs)
	default:
		usage()
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "pipeline %s: %v\n", stage, err)
		if errors.Is(err, pipeline.ErrNoInput) {
			os.Exit(3)
		}
		os.Exit(1)
	}
}

// run starts the three stages as child processes of this binary, waits for
// them and prints the per-hop latency table.
// parseCPUs reads -cpus: three CPU numbers (feed, engine, risk), -1 for a
// stage left unpinned; empty leaves all three unpinned.
func parseCPUs(s string) ([]string, error) {
	if s == "" {
		return []string{"-1", "-1", "-1"}, nil
	}
	f := strings.Split(s, ",")
	if len(f) != 3 {
		return nil, fmt.Errorf("want three CPUs (feed,engine,risk), got %q", s)
	}
	for _, c := range f {
		if n, err := strconv.Atoi(strings.TrimSpace(c)); err != nil || n < -1 {
			return nil, fmt.Errorf("%q is not a CPU number (or -1)", c)
		}
	}
	return f, nil
}

func run(dir, ringPath, lob string, synthArgs []string, pace float64, dur time.Duration, waitS string, quiet bool, cpus []string) error {
	if dir == "" {
		tmp, err := os.MkdirTemp("", "mdj-pipeline-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(tmp)
		dir = tmp
	}
	if ringPath == "" {
		ringPath = fmt.Sprintf("/dev/shm/mdj-pipeline-%d.ring", os.Getpid())
		defer os.Remove(ringPath)
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	src := "synthetic " + strings.Join(synthArgs, " ")
	if lob != "" {
		src = lob
	}
	mode := "max speed"
	if pace > 0 {
		mode = fmt.Sprintf("%gx", pace)
	}
	if dur > 0 {
		mode += fmt.Sprintf(" for %v", dur)
	}
	pinned := "stages not pinned"
	if strings.Join(cpus, ",") != "-1,-1,-1" {
		pinned = "CPUs feed,engine,risk " + strings.Join(cpus, ",")
	}
	fmt.Printf("pipeline: %s, %s, wait %s, %s, dir %s\n", src, mode, waitS, pinned, dir)
	common := []string{"-dir", dir, "-ring", ringPath, "-wait", waitS}
	if quiet {
		common = append(common, "-q")
	}
	feedArgs := append([]string{"feed", "-dir", dir, "-pace", fmt.Sprint(pace), "-duration", dur.String(), "-cpu", cpus[0]}, common[2:]...)
	if lob != "" {
		feedArgs = append(feedArgs, "-lobster", lob)
	} else {
		feedArgs = append(feedArgs, synthArgs...)
	}
	// risk and engine first: the engine joins late (from the snapshot) once
	// the feed has written it; starting order does not matter otherwise.
	procs := map[string]*exec.Cmd{
		"risk":   exec.Command(self, append([]string{"risk", "-cpu", cpus[2]}, common...)...),
		"engine": exec.Command(self, append([]string{"engine", "-join", "start", "-cpu", cpus[1]}, common...)...),
		"feed":   exec.Command(self, feedArgs...),
	}
	start := time.Now()
	for _, name := range []string{"risk", "engine", "feed"} {
		c := procs[name]
		c.Stdout, c.Stderr = os.Stderr, os.Stderr
		if err := c.Start(); err != nil {
			return err
		}
	}
	// A stage that fails stops the others (SIGTERM: they return at once).
	type exit struct {
		name string
		err  error
	}
	exits := make(chan exit, len(procs))
	for name, c := range procs {
		go func() { exits <- exit{name, c.Wait()} }()
	}
	var errs []string
	for range procs {
		x := <-exits
		if x.err != nil {
			errs = append(errs, fmt.Sprintf("%s: %v", x.name, x.err))
			for _, c := range procs {
				c.Process.Signal(syscall.SIGTERM)
			}
		}
	}
	if len(errs) > 0 {
		return errors.New(strings.Join(errs, "; "))
	}
	fmt.Printf("all stages done in %v; stats files in %s\n", time.Since(start).Round(time.Millisecond), filepath.Join(dir, "stats"))
	return pipeline.PrintHops(os.Stdout, pipeline.Dirs{Root: dir}.Stats())
}
