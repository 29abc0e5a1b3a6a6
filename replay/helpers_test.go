package replay_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mdjournal/mdjournal/internal/segfile"

	"github.com/mdjournal/mdjournal/cmd/replay/cli"

	"github.com/klauspost/compress/zstd"

	"github.com/mdjournal/mdjournal/cmd/journalctl/command"
	"github.com/mdjournal/mdjournal/internal/archive"
	"github.com/mdjournal/mdjournal/internal/testutil"
	"github.com/mdjournal/mdjournal/journal"
	"github.com/mdjournal/mdjournal/ops/compress"
	"github.com/mdjournal/mdjournal/synth"
	"github.com/mdjournal/mdjournal/writer"
)

// Helper roles of the re-executed test binary.
const (
	roleJournalctl = "journalctl" // run journalctl with MDJ_ARGS
	argSep         = "\x1f"
)

func TestMain(m *testing.M) {
	if testutil.Role() == roleJournalctl {
		os.Exit(command.Main(strings.Split(os.Getenv("MDJ_ARGS"), argSep), os.Stdin, os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}

// synthTS0 is the first timestamp of test journals; frames are 1 µs apart.
var synthTS0 = time.Date(2026, 1, 2, 14, 30, 0, 0, time.UTC).UnixNano()

// makeJournal writes n frames with 256 KiB segments: synthetic market data
// for 4 instruments, plus a raw frame of odd length every 97th frame and a
// heartbeat every 101st (frames whose size is not a multiple of 8). Frame i
// (0-based) has seq i+1 and timestamp synthTS0 + i µs: definitions are not
// re-stated at segment starts here (NoRestate), so the tests can name
// frames by seq and time.
func makeJournal(t testing.TB, dir string, n int) {
	t.Helper()
	w, err := writer.Open(dir, writer.Options{SegmentSize: journal.MinSegmentSize, NoRestate: true})
	if err != nil {
		t.Fatal(err)
	}
	g := synth.New(7, 4)
	raw := make([]byte, 200)
	for i := range raw {
		raw[i] = byte(i*7 + 1)
	}
	for i := 0; i < n; i++ {
		ts := synthTS0 + int64(i)*1000
		var err error
		switch {
		case i > 10 && i%97 == 0:
			_, err = w.Stage(journal.TypeRaw, 0, ts, raw[:1+i%61])
		case i > 10 && i%101 == 0:
			_, err = w.Stage(journal.TypeHeartbeat, 0, ts, nil)
		default:
			typ, id, p := g.Next()
			_, err = w.Stage(typ, id, ts, p)
		}
		if err != nil {
			t.Fatal(err)
		}
		if i%64 == 63 {
			if err := w.Publish(); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
}

// compressSealed archives every sealed segment of dir (all but the last)
// and returns how many it compressed.
func compressSealed(t testing.TB, dir string) int {
	t.Helper()
	nums, err := segfile.Numbers(dir)
	if err != nil {
		t.Fatal(err)
	}
	k := 0
	for _, n := range nums {
		_, err := compress.Compress(dir, n, zstd.SpeedDefault, 64<<10)
		if errors.Is(err, compress.ErrNotSealed) {
			continue // the active segment and the prepared one
		}
		if err != nil {
			t.Fatal(err)
		}
		k++
	}
	if _, err := os.Stat(archive.Path(dir, nums[0])); err != nil || k == 0 {
		t.Fatalf("no archive made: %v", err)
	}
	return k
}

// journalctl runs journalctl in-process.
func journalctl(t testing.TB, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := command.Run(&command.Env{Stdin: strings.NewReader(""), Stdout: &out, Stderr: &errb, Ctx: context.Background()}, args)
	return code, out.String(), errb.String()
}

// consumerProc is `journalctl ring` in a separate process (this test binary
// re-executed), started before the ring exists: it waits for the replay
// (ring.NewConsumer) and attaches to the generation replay creates.
type consumerProc struct {
	cmd    *exec.Cmd
	stdout io.ReadCloser
	stderr lockedBuffer
	out    chan string // the whole stdout, once collect was called
}

func startConsumer(t *testing.T, ringPath string, args ...string) *consumerProc {
	t.Helper()
	cmd := testutil.Command(t, "TestMain", roleJournalctl,
		"MDJ_ARGS="+strings.Join(append([]string{"ring", "--name", ringPath}, args...), argSep))
	c := &consumerProc{cmd: cmd}
	cmd.Stderr = &c.stderr
	var err error
	if c.stdout, err = cmd.StdoutPipe(); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			cmd.Wait()
		}
	})
	return c
}

// collect reads the consumer's stdout in the background, so the consumer
// never stalls on a full pipe (which would stall the replay behind it).
func (c *consumerProc) collect() *consumerProc {
	c.out = make(chan string, 1)
	go func() {
		b, _ := io.ReadAll(c.stdout)
		c.out <- string(b)
	}()
	return c
}

// wait returns the consumer's whole output and its exit code.
func (c *consumerProc) wait(t *testing.T) (string, int) {
	t.Helper()
	var out string
	select {
	case out = <-c.out:
	case <-time.After(60 * time.Second):
		t.Fatal("the consumer did not finish")
	}
	c.cmd.Wait()
	return out, c.cmd.ProcessState.ExitCode()
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// replayCLI runs the replay command line in-process.
func replayCLI(t testing.TB, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := cli.Run(context.Background(), args, &out, &errb)
	return code, out.String(), errb.String()
}

func ringPath(t testing.TB) string { return filepath.Join(t.TempDir(), "ring") }

// firstLine waits for the first line of r.
func firstLine(t *testing.T, r io.Reader) string {
	t.Helper()
	s, err := bufio.NewReader(r).ReadString('\n')
	if err != nil {
		t.Fatalf("no output from the consumer: %v", err)
	}
	return s
}
