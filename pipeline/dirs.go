package pipeline

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/mdjournal/mdjournal/internal/fsx"
)

// Dirs names the files of one pipeline under a root directory. Every stage
// of a pipeline is given the same root; each writes only its own entries.
type Dirs struct {
	Root string
}

// MD is the market-data journal the feed writes.
func (d Dirs) MD() string { return filepath.Join(d.Root, "md") }

// Snapshot is the order-book snapshot file the feed maintains beside MD.
func (d Dirs) Snapshot() string { return filepath.Join(d.Root, "md.snap") }

// Orders is the engine's orders journal: every order request it emitted,
// written before the order is pushed into the ring.
func (d Dirs) Orders() string { return filepath.Join(d.Root, "orders") }

// Risk is the risk manager's journal: one RiskDecision per order, the audit
// trail.
func (d Dirs) Risk() string { return filepath.Join(d.Root, "risk") }

// Stats is the directory of the stages' stats files (journalctl top --stats).
func (d Dirs) Stats() string { return filepath.Join(d.Root, "stats") }

// FeedDone is the marker the feed writes when its source is exhausted (or
// its duration is over): the market-data journal's last seq.
func (d Dirs) FeedDone() string { return filepath.Join(d.Root, "feed.done") }

// EngineJoin records the seq the engine joined at on its first start: it
// decides only on frames after it, on every later start too.
func (d Dirs) EngineJoin() string { return filepath.Join(d.Root, "engine.join") }

// EngineDone is the marker the engine writes once every order it emitted
// has a decision in the risk journal: the last order id.
func (d Dirs) EngineDone() string { return filepath.Join(d.Root, "engine.done") }

// ErrNoInput is returned when a stage's input did not appear within its
// start timeout.
var ErrNoInput = errors.New("pipeline: input not there")

// writeMarker stores v in path atomically (temporary file, fsync, rename
// with the directory synced). The temporary file is created exclusively: a
// symlink or special file planted at its name is refused, never written
// through.
func writeMarker(path string, v uint64) error {
	tmp := path + ".tmp"
	f, err := fsx.CreateTemp(tmp, 0o640)
	if err != nil {
		return err
	}
	_, err = f.WriteString(strconv.FormatUint(v, 10) + "\n")
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	return fsx.Rename(tmp, path)
}

// readMarker returns the value of a marker file and whether it exists.
func readMarker(path string) (uint64, bool, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, err
	}
	v, err := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
	if err != nil {
		return 0, false, fmt.Errorf("%s: %w", path, err)
	}
	return v, true, nil
}

// waitFor polls cond (every ms, doubling to 50 ms) until it reports true,
// fails, or timeout passes; what names the awaited thing in the error.
func waitFor(timeout time.Duration, what string, cond func() (bool, error)) error {
	deadline := time.Now().Add(timeout)
	d := time.Millisecond
	for {
		ok, err := cond()
		if err != nil || ok {
			return err
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%w: %s after %v", ErrNoInput, what, timeout)
		}
		time.Sleep(d)
		d = min(2*d, 50*time.Millisecond)
	}
}
