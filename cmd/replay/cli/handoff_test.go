package cli_test

// Regression tests of the replay → journalctl ring hand-off as users run it:
// two real processes (this test binary re-executed as `replay` and as
// `journalctl`), one ring name, real files on tmpfs, real SIGKILL and a real
// truncation. With ring format v1 (replay ran to completion, then the
// consumer opened the file that was left behind) these fail: a consumer
// started first found no ring, one started later read the previous run's
// leftover (frames twice, or a finished ring: 0 frames with exit 0), and the
// ring files stayed in /dev/shm.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/mdjournal/mdjournal/cmd/journalctl/command"
	"github.com/mdjournal/mdjournal/cmd/replay/cli"
	"github.com/mdjournal/mdjournal/internal/testutil"
)

// Helper roles of the re-executed test binary; MDJ_ARGS holds the command
// line, fields separated by argSep.
const (
	roleReplay     = "replay"
	roleJournalctl = "journalctl"
	argSep         = "\x1f"
)

func TestMain(m *testing.M) {
	args := strings.Split(os.Getenv("MDJ_ARGS"), argSep)
	switch testutil.Role() {
	case roleReplay:
		os.Exit(cli.Main(args, os.Stdout, os.Stderr))
	case roleJournalctl:
		os.Exit(command.Main(args, os.Stdin, os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}

// exitBound is how long a process may take to notice what a test did to
// its peer or its ring: the peer timeout (ring.DefaultPeerTimeout, 3 s)
// plus generous slack for a loaded 2-core machine under -race.
const exitBound = 15 * time.Second

// lockedBuffer is a bytes.Buffer safe to read while a process writes it.
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

// proc is one real process: this test binary as replay or journalctl.
type proc struct {
	name           string
	cmd            *exec.Cmd
	stdout, stderr lockedBuffer
	done           chan struct{} // closed once the process was reaped
}

// start runs role with args. If pipe is set, stdout is a pipe the test
// reads (or leaves unread, to stall the process); else it is collected.
func start(t *testing.T, role string, pipe bool, args ...string) (*proc, io.Reader) {
	t.Helper()
	p := &proc{name: role, done: make(chan struct{})}
	p.cmd = testutil.Command(t, "TestMain", role, "MDJ_ARGS="+strings.Join(args, argSep))
	p.cmd.Stderr = &p.stderr
	var r io.Reader
	if pipe {
		var err error
		if r, err = p.cmd.StdoutPipe(); err != nil {
			t.Fatal(err)
		}
	} else {
		p.cmd.Stdout = &p.stdout
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			p.cmd.Process.Kill()
			<-p.done
		}
	})
	return p, r
}

// wait returns the exit code once the process ended, failing the test if
// it takes longer than d or was killed by a signal it did not get from us
// (SIGBUS above all).
func (p *proc) wait(t *testing.T, d time.Duration) int {
	t.Helper()
	select {
	case <-p.done:
	case <-time.After(d):
		t.Fatalf("%s did not exit within %v; stderr: %s", p.name, d, p.stderr.String())
	}
	if ws, ok := p.cmd.ProcessState.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		t.Fatalf("%s died of %v; stderr: %s", p.name, ws.Signal(), p.stderr.String())
	}
	return p.cmd.ProcessState.ExitCode()
}

// kill sends SIGKILL and waits until the process is reaped.
func (p *proc) kill(t *testing.T) {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-p.done
}

// waitFor polls cond (observable state) until it holds, at most d.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(d); !cond(); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
	}
}

// ringDir returns an empty directory for the test's rings: on tmpfs, where
// rings live (a directory of its own under /dev/shm, removed at cleanup),
// else the test's temporary directory.
func ringDir(t *testing.T) string {
	t.Helper()
	var st unix.Statfs_t
	if err := unix.Statfs("/dev/shm", &st); err == nil && st.Type == unix.TMPFS_MAGIC {
		d, err := os.MkdirTemp("/dev/shm", "mdj-handoff-test-")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.RemoveAll(d) })
		return d
	}
	t.Logf("/dev/shm is not tmpfs here: rings go to the test's temporary directory")
	return t.TempDir()
}

// noFiles fails the test if dir holds anything: a ring file, or a
// generation's temporary file.
func noFiles(t *testing.T, dir, when string) {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(ents) > 0 {
		var names []string
		for _, e := range ents {
			names = append(names, e.Name())
		}
		t.Fatalf("%s: %s holds %v, want nothing", when, dir, names)
	}
}

// journalctl runs journalctl in-process (gen and dump: the expected values
// come from the journal, not through a ring).
func journalctl(t *testing.T, args ...string) string {
	t.Helper()
	var out, errb bytes.Buffer
	code := command.Run(&command.Env{Stdin: strings.NewReader(""), Stdout: &out, Stderr: &errb, Ctx: context.Background()}, args)
	if code != 0 {
		t.Fatalf("journalctl %q: exit %d: %s", args, code, errb.String())
	}
	return out.String()
}

// genJournal writes n synthetic frames for 3 instruments.
func genJournal(t *testing.T, n int) string {
	t.Helper()
	dir := t.TempDir()
	journalctl(t, "gen", "--dir", dir, "--count", fmt.Sprint(n), "--instruments", "3", "--segment-size", "256KiB", "--clock", "synthetic")
	return dir
}

func lines(s string) int { return strings.Count(s, "\n") }

// (a), (b): replay and `journalctl ring` with the same ring name, run after
// run, the consumer started first in half the runs (it waits for the
// replay) and second in the other half (the replay has created the ring and
// is publishing, blocked on a full ring, or done and lingering). Every run
// delivers exactly the selected frames, once, in order — the consumer's
// output equals `journalctl dump` of the same selection, never 0 frames
// with exit 0 — and both exit 0. After every run the ring directory is
// empty: the replay removed the ring it created once it was drained.
func TestHandoffExactlyOnce(t *testing.T) {
	runs := 12
	if testing.Short() {
		runs = 4
	}
	dir := genJournal(t, 5000)
	rdir := ringDir(t)
	rp := filepath.Join(rdir, "md")
	selections := [][]string{
		nil,
		{"--to", "seq:3000"},
		{"--type", "trade", "--instrument", "2"},
		{"--to", "seq:4321", "--instrument", "1,3"},
	}
	for i := range runs {
		consumerFirst := i%2 == 0
		sel := selections[(i/2)%len(selections)]
		size := "256KiB" // smaller than the replay: the producer waits for the consumer
		if (i/4)%2 == 1 {
			size = "16MiB" // all fits: a consumer started second may find the replay done and lingering
		}
		name := fmt.Sprintf("run %d (consumer first %v, %v, ring %s)", i, consumerFirst, sel, size)
		want := journalctl(t, append([]string{"dump", "--dir", dir, "--format", "csv"}, sel...)...)
		frames := lines(want) - 1 // the CSV header
		if frames < 100 {
			t.Fatalf("%s: only %d frames selected: the run tests little", name, frames)
		}
		consArgs := []string{"ring", "--name", rp, "--format", "csv"}
		repArgs := append([]string{"--dir", dir, "--ring", rp, "--ring-size", size, "--wait", "futex"}, sel...)
		var cons, rep *proc
		if consumerFirst {
			cons, _ = start(t, roleJournalctl, false, consArgs...)
			waitFor(t, 10*time.Second, "the consumer to wait for a producer", func() bool {
				return strings.Contains(cons.stderr.String(), "waiting up to")
			})
			rep, _ = start(t, roleReplay, false, repArgs...)
		} else {
			rep, _ = start(t, roleReplay, false, repArgs...)
			waitFor(t, 10*time.Second, "the replay to create its ring", func() bool {
				_, err := os.Stat(rp)
				return err == nil
			})
			cons, _ = start(t, roleJournalctl, false, consArgs...)
		}
		if code := cons.wait(t, 30*time.Second); code != 0 {
			t.Fatalf("%s: journalctl ring exit %d: %s", name, code, cons.stderr.String())
		}
		if code := rep.wait(t, 30*time.Second); code != 0 {
			t.Fatalf("%s: replay exit %d: %s", name, code, rep.stderr.String())
		}
		if got := cons.stdout.String(); got != want {
			t.Fatalf("%s: the consumer printed %d frames, dump selects %d (outputs differ)", name, lines(got)-1, frames)
		}
		if sum := rep.stdout.String(); !strings.Contains(sum, fmt.Sprintf("frames=%d ", frames)) || !strings.Contains(sum, "ended=end") {
			t.Fatalf("%s: replay summary %q, want frames=%d", name, sum, frames)
		}
		if strings.Contains(rep.stderr.String(), "leftover") {
			t.Fatalf("%s: replay found a leftover ring: %s", name, rep.stderr.String())
		}
		noFiles(t, rdir, name)
	}
}

// A ring kept with --keep is a leftover for the next run: journalctl ring
// never reads it (exit 1, nothing printed, the message says leftover), and
// the next replay replaces it, says so on stderr, and its consumer gets
// exactly the new run's frames.
func TestHandoffLeftoverReplaced(t *testing.T) {
	dir := genJournal(t, 3000)
	rdir := ringDir(t)
	rp := filepath.Join(rdir, "md")
	cons, _ := start(t, roleJournalctl, false, "ring", "--name", rp, "--format", "csv")
	waitFor(t, 10*time.Second, "the consumer to wait", func() bool { return strings.Contains(cons.stderr.String(), "waiting up to") })
	rep, _ := start(t, roleReplay, false, "--dir", dir, "--ring", rp, "--keep")
	if c1, c2 := cons.wait(t, 30*time.Second), rep.wait(t, 30*time.Second); c1 != 0 || c2 != 0 {
		t.Fatalf("first run: consumer exit %d (%s), replay exit %d (%s)", c1, cons.stderr.String(), c2, rep.stderr.String())
	}
	if _, err := os.Stat(rp); err != nil {
		t.Fatalf("--keep: the ring is gone: %v", err)
	}

	late, _ := start(t, roleJournalctl, false, "ring", "--name", rp, "--wait-timeout", "300ms")
	if code := late.wait(t, exitBound); code != 1 || late.stdout.String() != "" || !strings.Contains(late.stderr.String(), "leftover") {
		t.Fatalf("consumer of the leftover: exit %d, %d lines, stderr %q", code, lines(late.stdout.String()), late.stderr.String())
	}

	want := journalctl(t, "dump", "--dir", dir, "--format", "csv", "--to", "seq:1234")
	rep, _ = start(t, roleReplay, false, "--dir", dir, "--ring", rp, "--to", "seq:1234")
	waitFor(t, 10*time.Second, "the replay to replace the ring", func() bool {
		return strings.Contains(rep.stderr.String(), "replaced a leftover ring")
	})
	cons, _ = start(t, roleJournalctl, false, "ring", "--name", rp, "--format", "csv")
	if c1, c2 := cons.wait(t, 30*time.Second), rep.wait(t, 30*time.Second); c1 != 0 || c2 != 0 {
		t.Fatalf("second run: consumer exit %d (%s), replay exit %d (%s)", c1, cons.stderr.String(), c2, rep.stderr.String())
	}
	if got := cons.stdout.String(); got != want {
		t.Fatalf("second run: the consumer printed %d lines, want %d", lines(got), lines(want))
	}
	if !strings.Contains(rep.stderr.String(), rp) {
		t.Fatalf("the replacement message does not name the ring: %q", rep.stderr.String())
	}
	noFiles(t, rdir, "after the second run")
}

// (c) kill -9 of the consumer mid-stream (it stalls on an unread stdout
// pipe, so the ring fills): replay exits 1 within the peer timeout and
// slack, saying the consumer died and naming its PID, and removes its ring.
func TestHandoffConsumerKilled(t *testing.T) {
	dir := genJournal(t, 20000) // about 1.3 MB of records: 5 rings of 256 KiB
	rdir := ringDir(t)
	rp := filepath.Join(rdir, "md")
	cons, out := start(t, roleJournalctl, true, "ring", "--name", rp)
	rep, _ := start(t, roleReplay, false, "--dir", dir, "--ring", rp, "--ring-size", "256KiB", "--wait", "futex")
	if _, err := bufio.NewReader(out).ReadString('\n'); err != nil {
		t.Fatalf("no frame from the consumer: %v; stderr %s", err, cons.stderr.String())
	}
	pid := cons.cmd.Process.Pid
	cons.kill(t)
	killed := time.Now()
	code := rep.wait(t, exitBound)
	el := time.Since(killed)
	errs := rep.stderr.String()
	if code != 1 || !strings.Contains(errs, "consumer died") || !strings.Contains(errs, fmt.Sprintf("PID %d", pid)) {
		t.Fatalf("replay after the consumer (PID %d) was killed: exit %d, stderr %q", pid, code, errs)
	}
	if strings.Contains(rep.stdout.String(), "frames=20000 ") {
		t.Fatalf("replay claims to have delivered everything: %s", rep.stdout.String())
	}
	t.Logf("replay exited %v after the kill: %s", el.Round(time.Millisecond), strings.TrimSpace(errs))
	noFiles(t, rdir, "after the replay exited")
}

// publishedRecords counts the data records published in the ring file at
// path, read from its bytes as format.md §12 lays them out: a 4096-byte
// header page with the capacity at offset 16, then records of an 8-byte
// header word (length | kind<<32, kind 1 = data; published once non-zero)
// occupying align8(8+length) bytes. It assumes the records never wrapped.
func publishedRecords(t *testing.T, path string) int {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	capacity := binary.LittleEndian.Uint64(b[16:])
	data := b[4096 : 4096+capacity]
	n := 0
	for pos := uint64(0); pos+8 <= capacity; {
		w := binary.LittleEndian.Uint64(data[pos:])
		if w == 0 {
			return n
		}
		if kind := w >> 32; kind != 1 {
			t.Fatalf("record at %d: kind %d (wrapped or damaged)", pos, kind)
		}
		n++
		pos += (8 + w&0xffffffff + 7) &^ 7
	}
	t.Fatal("the ring is full of records: it wrapped")
	return 0
}

// (c) kill -9 of a paced replay mid-stream: its consumer prints every
// record the replay published (counted from the ring file's bytes), then
// exits 1 saying the producer died. The dead replay's ring is a leftover:
// a new consumer never reads it, and the next replay replaces it.
func TestHandoffProducerKilled(t *testing.T) {
	dir := genJournal(t, 20000)
	rdir := ringDir(t)
	rp := filepath.Join(rdir, "md")
	// Frames 1 µs apart at 0.001x: one per millisecond, 20 s in all.
	rep, _ := start(t, roleReplay, false, "--dir", dir, "--ring", rp, "--speed", "0.001x")
	cons, _ := start(t, roleJournalctl, false, "ring", "--name", rp)
	waitFor(t, 20*time.Second, "20 frames printed", func() bool { return lines(cons.stdout.String()) >= 20 })
	rep.kill(t)
	code := cons.wait(t, exitBound)
	n := lines(cons.stdout.String())
	if code != 1 || !strings.Contains(cons.stderr.String(), "producer died") || n >= 20000 {
		t.Fatalf("consumer after the producer was killed: exit %d after %d frames, stderr %q", code, n, cons.stderr.String())
	}
	if k := publishedRecords(t, rp); n != k {
		t.Fatalf("the consumer printed %d frames, the dead replay published %d", n, k)
	}

	late, _ := start(t, roleJournalctl, false, "ring", "--name", rp, "--wait-timeout", "300ms")
	if code := late.wait(t, exitBound); code != 1 || late.stdout.String() != "" || !strings.Contains(late.stderr.String(), "leftover") {
		t.Fatalf("consumer of the dead replay's ring: exit %d, %d lines, stderr %q", code, lines(late.stdout.String()), late.stderr.String())
	}
	want := journalctl(t, "dump", "--dir", dir, "--to", "seq:500")
	rep, _ = start(t, roleReplay, false, "--dir", dir, "--ring", rp, "--to", "seq:500")
	cons, _ = start(t, roleJournalctl, false, "ring", "--name", rp)
	if c1, c2 := cons.wait(t, 30*time.Second), rep.wait(t, 30*time.Second); c1 != 0 || c2 != 0 || cons.stdout.String() != want {
		t.Fatalf("the run after: consumer exit %d (%s, %d lines, want %d), replay exit %d (%s)",
			c1, cons.stderr.String(), lines(cons.stdout.String()), lines(want), c2, rep.stderr.String())
	}
	if !strings.Contains(rep.stderr.String(), "replaced a leftover ring") {
		t.Fatalf("replay did not say it replaced the dead run's ring: %q", rep.stderr.String())
	}
	noFiles(t, rdir, "after the run that replaced the leftover")
}

// (d) The ring file truncated while a paced replay and its consumer run:
// both exit 1 (never SIGBUS) with a typed error naming the file and the
// offset.
func TestHandoffTruncated(t *testing.T) {
	dir := genJournal(t, 20000)
	for _, size := range []int64{4096, 0} { // data area gone; everything gone
		t.Run(fmt.Sprintf("to-%d", size), func(t *testing.T) {
			rp := filepath.Join(ringDir(t), "md")
			rep, _ := start(t, roleReplay, false, "--dir", dir, "--ring", rp, "--speed", "0.001x")
			cons, _ := start(t, roleJournalctl, false, "ring", "--name", rp)
			waitFor(t, 20*time.Second, "20 frames printed", func() bool { return lines(cons.stdout.String()) >= 20 })
			if err := os.Truncate(rp, size); err != nil {
				t.Fatal(err)
			}
			for _, p := range []*proc{rep, cons} {
				code := p.wait(t, exitBound)
				errs := p.stderr.String()
				if code != 1 || !strings.Contains(errs, rp+": offset ") || !strings.Contains(errs, "truncated") ||
					strings.Contains(errs, "panic") || strings.Contains(errs, "SIGBUS") {
					t.Fatalf("%s after the truncation: exit %d, stderr %q", p.name, code, errs)
				}
				t.Logf("%s: %s", p.name, strings.TrimSpace(errs))
			}
		})
	}
}

// A replay nobody consumes does not pass for a delivery: after --linger it
// exits 1 saying the frames were not delivered and how to consume them,
// and removes its ring; --linger 0 does not wait nor check (exit 0). An
// interrupted replay with no consumer says it is waiting for one.
func TestHandoffNoConsumer(t *testing.T) {
	dir := genJournal(t, 2000)
	rdir := ringDir(t)
	rp := filepath.Join(rdir, "md")
	rep, _ := start(t, roleReplay, false, "--dir", dir, "--ring", rp, "--linger", "200ms")
	if code := rep.wait(t, exitBound); code != 1 || !strings.Contains(rep.stderr.String(), "not delivered") ||
		!strings.Contains(rep.stderr.String(), "journalctl ring --name "+rp) {
		t.Fatalf("replay without a consumer: exit %d, stderr %q", code, rep.stderr.String())
	}
	noFiles(t, rdir, "after --linger 200ms")
	rep, _ = start(t, roleReplay, false, "--dir", dir, "--ring", rp, "--linger", "0")
	if code := rep.wait(t, exitBound); code != 0 {
		t.Fatalf("--linger 0: exit %d, stderr %q", code, rep.stderr.String())
	}
	noFiles(t, rdir, "after --linger 0")

	// Paced: still replaying when interrupted.
	rep, _ = start(t, roleReplay, false, "--dir", dir, "--ring", rp, "--speed", "0.001x", "--linger", "300ms")
	waitFor(t, 10*time.Second, "the ring", func() bool { _, err := os.Stat(rp); return err == nil })
	if err := rep.cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	code := rep.wait(t, exitBound)
	if errs := rep.stderr.String(); code != 1 || !strings.Contains(errs, "interrupted: stream ended; waiting up to 300ms") || !strings.Contains(errs, "not delivered") {
		t.Fatalf("interrupted replay without a consumer: exit %d, stderr %q", code, errs)
	}
	if !strings.Contains(rep.stdout.String(), "ended=interrupted") {
		t.Fatalf("summary %q", rep.stdout.String())
	}
	noFiles(t, rdir, "after the interrupted replay")
}
