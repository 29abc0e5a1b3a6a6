// Command journalctl writes, tails, dumps, verifies and inspects mdjournal
// journals. Run `journalctl help` for the verbs.
package main

import (
	"os"

	"github.com/mdjournal/mdjournal/cmd/journalctl/command"
)

func main() {
	os.Exit(command.Main(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}
