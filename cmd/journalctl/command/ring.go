package command

import (
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/spf13/pflag"

	"github.com/mdjournal/mdjournal/replay"
	"github.com/mdjournal/mdjournal/ring"
	"github.com/mdjournal/mdjournal/wait"
)

type ringOptions struct {
	name   string
	count  int64
	format string
	wait   string
}

func (o *ringOptions) AddFlags(fs *pflag.FlagSet) {
	fs.StringVar(&o.name, "name", "", "ring file; a bare NAME means /dev/shm/NAME")
	fs.Int64Var(&o.count, "count", 0, "stop after N frames (0 = until the producer closes the ring)")
	fs.StringVar(&o.format, "format", fmtText, "text|json|csv")
	fs.StringVar(&o.wait, "wait", "futex", "how to wait for records: spin|yield|backoff|futex")
}

// ringPoll bounds one blocking Read so an interrupt is seen within it.
const ringPoll = 100 * time.Millisecond

// runRing consumes a ring filled by replay: each record is one journal frame
// (package replay), decoded and CRC-checked here, printed like dump. It ends
// at io.EOF (producer closed), after --count frames, or on interrupt; a dead
// producer or a record that is not a valid frame is exit 1.
func runRing(env *Env, args []string) error {
	var o ringOptions
	fs := flagSet(env, "ring", "--name NAME [--count N] [--format text|json|csv] [--wait spin|yield|backoff|futex]", o.AddFlags)
	if err := parse(fs, args); err != nil {
		return err
	}
	if err := noArgs(fs); err != nil {
		return err
	}
	if o.name == "" {
		return usagef("--name is required")
	}
	if o.count < 0 {
		return usagef("--count %d: want ≥ 0", o.count)
	}
	if err := checkFormat(o.format, fmtText, fmtJSON, fmtCSV); err != nil {
		return err
	}
	ws, err := wait.Parse(o.wait)
	if err != nil {
		return usagef("--wait: %v", err)
	}
	rg, err := ring.Open(o.name)
	if errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("%w (start replay first: it creates the ring)", err)
	}
	if err != nil {
		return err
	}
	defer rg.Close()
	c, err := rg.Consumer(ws)
	if err != nil {
		return err
	}
	defer c.Close()
	// Symbols and price scales are learnt from instrument_def frames as
	// they pass: a ring has no journal to preload them from.
	p := newPrinter(env.Stdout, o.format, nil)
	defer p.flush()
	var n int64
	for o.count == 0 || n < o.count {
		rec, ok := c.TryRead()
		if !ok {
			// Nothing ready: show what we printed, then block.
			if err := p.flush(); err != nil {
				return err
			}
			if rec, err = readInterruptible(env, c); err != nil {
				switch {
				case err == io.EOF, errors.Is(err, errInterrupted):
					return p.flush()
				case errors.Is(err, ring.ErrPeerDead):
					p.flush()
					return fmt.Errorf("ring %s: the producer died after %d frames (%w)", rg.Path(), n, err)
				}
				p.flush()
				return fmt.Errorf("ring %s: %w", rg.Path(), err)
			}
		}
		f, err := replay.DecodeRecord(rec)
		if err != nil {
			p.flush()
			return fmt.Errorf("ring %s: after %d frames: %w", rg.Path(), n, err)
		}
		p.print(&f)
		c.Release()
		n++
	}
	return p.flush()
}

var errInterrupted = errors.New("interrupted")

// readInterruptible is Consumer.Read that also returns when the command is
// interrupted: each wait is bounded by a deadline and the context checked.
func readInterruptible(env *Env, c *ring.Consumer) ([]byte, error) {
	defer c.SetDeadline(time.Time{})
	for {
		if env.Ctx.Err() != nil {
			return nil, errInterrupted
		}
		c.SetDeadline(time.Now().Add(ringPoll))
		b, err := c.Read()
		if !errors.Is(err, os.ErrDeadlineExceeded) {
			return b, err
		}
	}
}
