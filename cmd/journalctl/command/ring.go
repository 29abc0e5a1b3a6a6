package command

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/mdjournal/mdjournal/replay"
	"github.com/mdjournal/mdjournal/ring"
	"github.com/mdjournal/mdjournal/wait"
)

type ringOptions struct {
	name        string
	count       int64
	format      string
	wait        string
	waitTimeout time.Duration
}

func (o *ringOptions) AddFlags(fs *pflag.FlagSet) {
	fs.StringVar(&o.name, "name", "", "ring file; a bare NAME means /dev/shm/NAME")
	fs.Int64Var(&o.count, "count", 0, "stop after N frames (0 = until the producer closes the ring)")
	fs.StringVar(&o.format, "format", fmtText, "text|json|csv")
	fs.StringVar(&o.wait, "wait", "futex", "how to wait for records: spin|yield|backoff|futex")
	fs.DurationVar(&o.waitTimeout, "wait-timeout", ring.DefaultAttachTimeout,
		"how long to wait for a producer (replay) to start or join the ring; 0 = do not wait")
}

// ringPoll bounds one blocking Read so an interrupt is seen within it.
const ringPoll = 100 * time.Millisecond

// runRing consumes a ring filled by replay: each record is one journal frame
// (package replay), decoded and CRC-checked here, printed like dump.
//
// It attaches with ring.NewConsumer, so it may start before or after the
// producer: it waits up to --wait-timeout for a ring generation it may
// consume, and never reads a leftover ring of an earlier run (format.md §12
// "Generations"). Exit 0 only when the stream ended cleanly (io.EOF: the
// producer closed the ring and every record was read) or --count frames
// were printed; exit 1 with a message when no producer came (or only a
// leftover was found), the producer died (ring.ErrPeerDead, after every
// record it published was printed), the ring is damaged or truncated (the
// message names the file and offset), a record is not a valid frame, or
// the command was interrupted before the end of the stream.
func runRing(env *Env, args []string) error {
	var o ringOptions
	fs := flagSet(env, "ring", "--name NAME [--count N] [--format text|json|csv] [--wait spin|yield|backoff|futex] [--wait-timeout D]", o.AddFlags)
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
	if o.waitTimeout < 0 {
		return usagef("--wait-timeout %v: want ≥ 0", o.waitTimeout)
	}
	if err := checkFormat(o.format, fmtText, fmtJSON, fmtCSV); err != nil {
		return err
	}
	ws, err := wait.Parse(o.wait)
	if err != nil {
		return usagef("--wait: %v", err)
	}
	if path := ringPath(o.name); o.waitTimeout > 0 {
		if _, err := os.Lstat(path); errors.Is(err, os.ErrNotExist) {
			fmt.Fprintf(env.Stderr, "journalctl ring: waiting up to %v for a producer (replay --ring %s) to create %s\n", o.waitTimeout, o.name, path)
		}
	}
	c, err := attachConsumer(env, o.name, ws, o.waitTimeout)
	if err != nil {
		return err
	}
	defer c.Close()
	path := c.Path()
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
				p.flush()
				switch {
				case err == io.EOF:
					return nil
				case errors.Is(err, errInterrupted):
					return fmt.Errorf("ring %s: interrupted after %d frames, before the producer ended the stream", path, n)
				case errors.Is(err, ring.ErrPeerDead):
					return fmt.Errorf("ring %s: the producer died after %d frames, all of them printed (%w)", path, n, err)
				}
				return fmt.Errorf("ring %s: after %d frames: %w", path, n, err)
			}
		}
		f, err := replay.DecodeRecord(rec)
		if err != nil {
			p.flush()
			return fmt.Errorf("ring %s: after %d frames: %w", path, n, err)
		}
		p.print(&f)
		c.Release()
		n++
	}
	return p.flush()
}

// ringPath is where the ring named name lives: a bare name is in
// ring.DefaultDir, as package ring resolves it.
func ringPath(name string) string {
	if !strings.ContainsRune(name, '/') {
		return filepath.Join(ring.DefaultDir, name)
	}
	return name
}

// attachConsumer is ring.NewConsumer that also returns when the command is
// interrupted. A consumer attached after the interrupt is closed at once,
// so it never holds the ring's consumer side.
func attachConsumer(env *Env, name string, ws wait.Strategy, timeout time.Duration) (*ring.Consumer, error) {
	if timeout == 0 {
		timeout = -1 // look once
	}
	type result struct {
		c   *ring.Consumer
		err error
	}
	done := make(chan result, 1)
	go func() {
		c, err := ring.NewConsumer(name, ring.ConsumerOptions{Wait: ws, AttachTimeout: timeout})
		done <- result{c, err}
	}()
	select {
	case r := <-done:
		if errors.Is(r.err, ring.ErrNoProducer) {
			return nil, fmt.Errorf("%w (start replay with --ring %s; a ring left by an earlier run is never read)", r.err, name)
		}
		return r.c, r.err
	case <-env.Ctx.Done():
		go func() {
			if r := <-done; r.c != nil {
				r.c.Close()
			}
		}()
		return nil, fmt.Errorf("ring %s: interrupted while waiting for a producer", name)
	}
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
