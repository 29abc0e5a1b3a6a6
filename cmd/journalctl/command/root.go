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
	"sort"
	"strings"
	"syscall"

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
}

var verbs = map[string]verb{}

func register(v verb) { verbs[v.name] = v }

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
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		printUsage(env.Stdout)
		if len(args) == 0 {
			return ExitUsage
		}
		return ExitOK
	}
	v, ok := verbs[args[0]]
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
	names := make([]string, 0, len(verbs))
	for n := range verbs {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-10s %s\n", n, verbs[n].summary)
	}
	fmt.Fprintln(w, "\nExit codes: 0 ok, 1 data problem, 2 usage error. 'journalctl COMMAND --help' for flags.")
}

// flagSet builds a FlagSet that reports errors instead of exiting.
func flagSet(env *Env, name, usage string, add func(*pflag.FlagSet)) *pflag.FlagSet {
	fs := pflag.NewFlagSet(name, pflag.ContinueOnError)
	fs.SetOutput(env.Stderr)
	fs.SortFlags = false
	add(fs)
	fs.Usage = func() {
		fmt.Fprintf(env.Stderr, "Usage: journalctl %s %s\n\n", name, usage)
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
