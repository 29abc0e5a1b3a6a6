// Package command implements journalctl's verbs, one file per verb in the
// style of bbolt's cmd/bbolt/command: each verb has an options struct with
// AddFlags(*pflag.FlagSet) and writes to injected io.Writers, so tests run
// verbs in-process and capture their output.
//
// Exit codes everywhere: 0 ok, 1 a data problem (damage found, I/O error),
// 2 a usage error (bad flag, bad value), with a clear message on stderr.
package command

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/mdjournal/mdjournal/cmd/journalctl/internal/benchkit"
	"github.com/spf13/pflag"
)

// Exit codes.
const (
	ExitOK    = 0
	ExitData  = 1
	ExitUsage = 2
)

// Env is what a verb runs with.
type Env struct {
	Stdin  io.Reader
	Stdout io.Writer
	Stderr io.Writer
	// Ctx is cancelled on SIGINT/SIGTERM.
	Ctx context.Context
}

type verb struct {
	name    string
	summary string
	run     func(env *Env, args []string) error
	hidden  bool // internal verbs (the other process of a bench) are not listed
}

// commands is the root: every verb, in the order help lists them. It is
// built here, explicitly, rather than by init functions filling a map, so
// the whole command line can be read in one place.
func commands() []verb {
	return []verb{
		{name: "create", summary: "make an empty journal (readers may open it before any writer appends)", run: runCreate},
		{name: "gen", summary: "append a deterministic synthetic stream to a journal", run: runGen},
		{name: "import", summary: "import a market-data file (LOBSTER) into a journal", run: runImport},
		{name: "publish", summary: "test exchange: publish a journal or LOBSTER files as ITCH 5.0 in MoldUDP64, with a re-request server", run: runPublish},
		{name: "feed", summary: "feed handler: ITCH 5.0 in MoldUDP64 from the wire into a journal, gaps re-requested", run: runFeed},
		{name: "tail", summary: "follow a journal live", run: runTail},
		{name: "dump", summary: "print frames in a range and exit", run: runDump},
		{name: "export", summary: "write a range of frames as Parquet or CSV rows (one per frame) for analysis tools", run: runExport},
		{name: "book", summary: "rebuild an instrument's order book from a journal at a point", run: runBook},
		{name: "snapshot", summary: "print the live order-book snapshot file", run: runSnapshot},
		{name: "ring", summary: "attach to a ring as its consumer and print the frames replayed into it", run: runRing},
		{name: "verify", summary: "check every header, frame, index and sequence; exit 1 on any problem", run: runVerify},
		{name: "inspect", summary: "forensics: a journal's segments, stats, gaps, readers; or any mdjournal file decoded field by field", run: runInspect},
		{name: "recover", summary: "repair a torn tail, a bad cursor or index; cut mid-log damage only at --truncate-at", run: runRecover},
		{name: "top", summary: "every pipeline stage live: counters, rates and latency percentiles from their stats files", run: runTop},
		{name: "serve", summary: "export journals' and pipeline stages' metrics for Prometheus (/metrics)", run: runServe},
		{name: "stat", summary: "cursor, rates, disk use, segments and named readers' lag", run: runStat},
		{name: "prune", summary: "delete the oldest sealed segments beyond a retention (never the active one or one a named reader needs)", run: runPrune},
		{name: "ship", summary: "follow a journal and publish its frames verbatim to a NATS JetStream stream", run: runShip},
		{name: "mirror", summary: "copy a shipped journal from a JetStream stream into a local replica, checking every frame", run: runMirror},
		{name: "compress", summary: "rewrite sealed segments as seekable zstd archives", run: runCompress},
		{name: "bench", summary: "measure append, tail, IPC, snapshot, replay and open costs beside same-run baselines", run: runBench},
		{name: "version", summary: "print the module version, VCS revision and format versions", run: runVersion},
		{name: benchkit.ChildVerb, summary: "the other process of a bench", run: runBenchChild, hidden: true},
	}
}

func lookup(name string) (verb, bool) {
	for _, v := range commands() {
		if v.name == name {
			return v, true
		}
	}
	return verb{}, false
}

// UsageError is a bad command line: exit code 2.
type UsageError struct{ Msg string }

func (e *UsageError) Error() string { return e.Msg }

func usagef(format string, args ...any) error { return &UsageError{Msg: fmt.Sprintf(format, args...)} }

// DataError reports that a verb found a data problem it already described
// on its output: exit code 1 with no further message.
var errDataProblem = errors.New("data problem")

// Main runs journalctl with args and returns the exit code.
func Main(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	env := &Env{Stdin: stdin, Stdout: stdout, Stderr: stderr, Ctx: ctx}
	return Run(env, args)
}

// Run dispatches args[0] to its verb.
func Run(env *Env, args []string) int {
	if len(args) == 0 {
		printUsage(env.Stderr)
		return ExitUsage
	}
	if args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		printUsage(env.Stdout)
		return ExitOK
	}
	v, ok := lookup(args[0])
	if !ok {
		fmt.Fprintf(env.Stderr, "journalctl: unknown command %q\n\n", args[0])
		printUsage(env.Stderr)
		return ExitUsage
	}
	err := v.run(env, args[1:])
	var ue *UsageError
	switch {
	case err == nil:
		return ExitOK
	case errors.Is(err, pflag.ErrHelp):
		return ExitOK
	case errors.As(err, &ue):
		fmt.Fprintf(env.Stderr, "journalctl %s: %s\nRun 'journalctl %s --help' for usage.\n", v.name, ue.Msg, v.name)
		return ExitUsage
	case errors.Is(err, errDataProblem):
		return ExitData
	default:
		fmt.Fprintf(env.Stderr, "journalctl %s: %v\n", v.name, err)
		return ExitData
	}
}

func printUsage(w io.Writer) {
	fmt.Fprintln(w, "journalctl: write, tail, dump, verify and inspect mdjournal journals.\n\nUsage: journalctl COMMAND [flags]\n\nCommands:")
	for _, v := range commands() {
		if !v.hidden {
			fmt.Fprintf(w, "  %-10s %s\n", v.name, v.summary)
		}
	}
	fmt.Fprintln(w, "\nExit codes: 0 ok, 1 data problem, 2 usage error. 'journalctl COMMAND --help' for flags.")
}

// flagSet builds a FlagSet that reports errors instead of exiting. With
// ContinueOnError pflag prints nothing itself and calls Usage only for
// --help, which goes to stdout; Run reports a bad flag on stderr with a
// pointer to --help.
func flagSet(env *Env, name, usage string, add func(*pflag.FlagSet)) *pflag.FlagSet {
	fs := pflag.NewFlagSet(name, pflag.ContinueOnError)
	fs.SetOutput(env.Stdout)
	fs.SortFlags = false
	add(fs)
	fs.Usage = func() {
		fmt.Fprintf(env.Stdout, "Usage: journalctl %s %s\n\n", name, usage)
		fs.PrintDefaults()
	}
	return fs
}

// parse parses args and turns flag errors into usage errors.
func parse(fs *pflag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return err
		}
		return &UsageError{Msg: err.Error()}
	}
	return nil
}

// parseDirVerb is the usual preamble of a verb that works on a journal
// directory: parse the flags, refuse stray arguments, require --dir (read
// through the pointer after parsing).
func parseDirVerb(fs *pflag.FlagSet, args []string, dir *string) error {
	if err := parse(fs, args); err != nil {
		return err
	}
	if err := noArgs(fs); err != nil {
		return err
	}
	return requireDir(*dir)
}

func requireDir(dir string) error {
	if strings.TrimSpace(dir) == "" {
		return usagef("--dir is required")
	}
	return nil
}

func noArgs(fs *pflag.FlagSet) error {
	if fs.NArg() > 0 {
		return usagef("unexpected argument %q", fs.Arg(0))
	}
	return nil
}
