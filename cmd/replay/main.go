// Command replay copies a journal range into a shared-memory ring, frame by
// frame and unchanged, as fast as possible or paced by the frames'
// timestamps. See package replay, and 'replay --help'.
package main

import (
	"os"

	"github.com/mdjournal/mdjournal/replay"
)

func main() { os.Exit(replay.Main(os.Args[1:], os.Stdout, os.Stderr)) }
