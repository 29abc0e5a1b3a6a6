package chaos_test

import (
	"flag"
	"fmt"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/mdjournal/mdjournal/cmd/journalctl/command"
)

var (
	flagDuration = flag.Duration("chaos.duration", 0, "length of the chaos campaign (default $MDJ_CHAOS_DURATION, else 60s; 25s with -short)")
	flagSeed     = flag.Uint64("chaos.seed", 0, "seed of the chaos campaign's choices (default $MDJ_CHAOS_SEED, else random; logged)")
	flagKeep     = flag.Bool("chaos.keepgoing", false, "run the whole duration even after a violation (default $MDJ_CHAOS_KEEPGOING=1), reporting every one at the end")
)

// keepGoing reports -chaos.keepgoing or MDJ_CHAOS_KEEPGOING=1.
func keepGoing() bool { return *flagKeep || os.Getenv("MDJ_CHAOS_KEEPGOING") == "1" }

// execEnv makes the test binary behave as journalctl: every process of the
// campaign is the real command line (command.Main), run as its own process
// on real files, so it can be killed with SIGKILL like the installed binary.
const execEnv = "MDJ_CHAOS_EXEC"

// TestMain runs journalctl when the binary is re-executed as it.
func TestMain(m *testing.M) {
	switch role := os.Getenv(execEnv); role {
	case "":
	case "journalctl":
		os.Exit(command.Main(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
	default:
		fmt.Fprintf(os.Stderr, "%s=%q: unknown role\n", execEnv, role)
		os.Exit(3)
	}
	os.Exit(m.Run())
}

// config returns the campaign's seed and duration from the flags, then the
// environment, then the defaults.
func config(t *testing.T) (seed uint64, d time.Duration) {
	t.Helper()
	seed = *flagSeed
	if seed == 0 {
		if s := os.Getenv("MDJ_CHAOS_SEED"); s != "" {
			v, err := strconv.ParseUint(s, 0, 64)
			if err != nil {
				t.Fatalf("MDJ_CHAOS_SEED=%q: %v", s, err)
			}
			seed = v
		}
	}
	if seed == 0 {
		seed = uint64(time.Now().UnixNano())
	}
	d = *flagDuration
	if d == 0 {
		if s := os.Getenv("MDJ_CHAOS_DURATION"); s != "" {
			v, err := time.ParseDuration(s)
			if err != nil {
				t.Fatalf("MDJ_CHAOS_DURATION=%q: %v", s, err)
			}
			d = v
		}
	}
	if d == 0 {
		d = 60 * time.Second
		if testing.Short() {
			d = 25 * time.Second
		}
	}
	return seed, d
}
