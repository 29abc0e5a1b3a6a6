package sweep_test

import (
	"fmt"
	"os"
	"testing"

	"github.com/mdjournal/mdjournal/cmd/journalctl/command"
	"github.com/mdjournal/mdjournal/cmd/replay/cli"
)

// execEnv makes the test binary behave as journalctl or replay: every verb
// of the sweep runs as its own process (the real command line), so a hang
// is killed, a panic or a signal is seen as such, and nothing it does can
// take the test down.
const execEnv = "MDJ_SWEEP_EXEC"

// TestMain runs journalctl or replay when the binary is re-executed as one.
func TestMain(m *testing.M) {
	switch role := os.Getenv(execEnv); role {
	case "":
	case "journalctl":
		os.Exit(command.Main(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
	case "replay":
		os.Exit(cli.Main(os.Args[1:], os.Stdout, os.Stderr))
	default:
		fmt.Fprintf(os.Stderr, "%s=%q: unknown role\n", execEnv, role)
		os.Exit(3)
	}
	os.Exit(m.Run())
}
