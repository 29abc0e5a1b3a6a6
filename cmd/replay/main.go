// Command replay copies a journal range into a shared-memory ring, frame by
// frame and unchanged, as fast as possible or paced by the frames'
// timestamps. See package replay, and 'replay --help'.
package main

import (
	"os"

	"github.com/mdjournal/mdjournal/cmd/replay/cli"
)

func main() { os.Exit(cli.Main(os.Args[1:], os.Stdout, os.Stderr)) }
