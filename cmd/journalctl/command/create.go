package command

import (
	"errors"
	"fmt"
	"os"

	"github.com/spf13/pflag"

	"github.com/mdjournal/mdjournal/internal/segfile"
	"github.com/mdjournal/mdjournal/writer"
)

type createOptions struct {
	dir         string
	segmentSize string
}

func (o *createOptions) AddFlags(fs *pflag.FlagSet) {
	fs.StringVar(&o.dir, "dir", "", "directory of the new journal (created if missing; must hold no journal)")
	fs.StringVar(&o.segmentSize, "segment-size", "64MiB", "capacity of the segment files")
}

// runCreate makes an empty journal: a writer opens it (creating the first
// segment, its index, the control page and the lock) and closes it cleanly.
// Readers can then open it before any writer appends (or wait for it with
// reader.Options.OpenTimeout).
func runCreate(env *Env, args []string) error {
	var o createOptions
	fs := flagSet(env, "create", "--dir D [--segment-size SIZE]", o.AddFlags)
	if err := parseDirVerb(fs, args, &o.dir); err != nil {
		return err
	}
	segSize, err := segmentSizeFlag(o.segmentSize)
	if err != nil {
		return err
	}
	if ns, err := segfile.Numbers(o.dir); err == nil && len(ns) > 0 {
		return fmt.Errorf("%s already holds a journal (%d segment files): nothing created", o.dir, len(ns))
	} else if err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	w, err := writer.Open(o.dir, writer.Options{SegmentSize: segSize})
	if err != nil {
		return err
	}
	id := w.JournalID()
	if err := w.Close(); err != nil {
		return err
	}
	fmt.Fprintf(env.Stdout, "created journal %016x in %s (segments of %d bytes)\n", id, o.dir, segSize)
	return nil
}
