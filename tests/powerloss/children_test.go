package powerloss_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/mdjournal/mdjournal/booksnap"
	"github.com/mdjournal/mdjournal/journal"
	"github.com/mdjournal/mdjournal/reader"
	"github.com/mdjournal/mdjournal/wait"
	"github.com/mdjournal/mdjournal/writer"
)

// The test process serves the lossyfs mount and never touches memory mapped
// from it (internal/lossyfs README, "The deadlock rule"): the writer, the
// readers and the checker are re-executions of this test binary, selected by
// PL_ROLE before any test runs.

const roleEnv = "PL_ROLE"

func TestMain(m *testing.M) {
	switch os.Getenv(roleEnv) {
	case "":
		os.Exit(m.Run())
	case "writer":
		os.Exit(writerChild())
	case "reader":
		os.Exit(readerChild())
	case "checker":
		os.Exit(checkerChild())
	case "script":
		os.Exit(scriptChild())
	default:
		fmt.Fprintln(os.Stderr, "unknown role", os.Getenv(roleEnv))
		os.Exit(2)
	}
}

// say writes one line to stdout with one write(2): the test reads the pipe,
// so a line written before the power cut is never lost with the process.
func say(format string, args ...any) {
	os.Stdout.Write([]byte(fmt.Sprintf(format, args...) + "\n"))
}

// block waits until the test kills the process (or closes stdin).
func block() int {
	io.Copy(io.Discard, os.Stdin)
	return 0
}

func envInt(name string, def int64) int64 {
	if v := os.Getenv(name); v != "" {
		if n, err := strconv.ParseInt(v, 10, 64); err == nil {
			return n
		}
	}
	return def
}

// snapConfig is the snapshot the campaign maintains (when PL_SNAP is set).
func snapConfig(path string) booksnap.Config {
	return booksnap.Config{Path: path, Depth: 5, Capacity: 8}
}

// openCampaignWriter opens the journal for appending, with the snapshot
// maintainer when snap is set.
func openCampaignWriter(dir, policy string, seg int64, snap string) (*writer.Writer, *booksnap.Maintainer, error) {
	dur, err := writer.ParseDurability(policy)
	if err != nil {
		return nil, nil, err
	}
	opts := writer.Options{SegmentSize: seg, Durability: dur}
	if snap != "" {
		return booksnap.OpenWriter(dir, opts, snapConfig(snap))
	}
	w, err := writer.Open(dir, opts)
	return w, nil, err
}

// defineInstruments stages the definitions of the campaign instruments the
// journal's catalogue lacks (a power cut may have taken them).
func defineInstruments(w *writer.Writer) error {
	cat := w.Catalog()
	for _, id := range campaignInstruments {
		if _, ok := cat.Lookup(id); ok {
			continue
		}
		if _, err := w.Stage(journal.TypeInstrumentDef, id, tsOf(w.LastSeq()+1), def(id)); err != nil {
			return err
		}
	}
	return nil
}

// stageOne stages the campaign frame for the next seq.
func stageOne(w *writer.Writer, buf []byte) error {
	p := w.LastSeq() + 1
	s := content(p, buf)
	var err error
	if s.Source {
		_, err = w.StageSource(s.Type, s.Instr, tsOf(p), s.Payload, s.RecvTS, s.SourceSeq)
	} else {
		_, err = w.Stage(s.Type, s.Instr, tsOf(p), s.Payload)
	}
	return err
}

// writerChild appends campaign frames in random batches and reports, after
// every Publish and Sync, "p|s PUBLISHED DURABLE ROLLS". It never exits on
// its own before the test cuts the power or kills it: after an error (the
// cut makes msync fail) or PL_MAXFRAMES frames it waits on stdin.
//
//	open EPOCH LASTSEQ DURABLE CLEAN EPOCHSTARTED SEALED MOVEDASIDE TORNBYTES
func writerChild() int {
	dir, policy, snap := os.Getenv("PL_DIR"), os.Getenv("PL_POLICY"), os.Getenv("PL_SNAP")
	seg := envInt("PL_SEG", journal.MinSegmentSize)
	maxFrames := envInt("PL_MAXFRAMES", 1<<62)
	syncPer := envInt("PL_SYNCPER", 0) // one Sync per this many batches on average (0: never)
	rng := rand.New(rand.NewPCG(uint64(envInt("PL_SEED", 1)), uint64(os.Getpid())))
	w, _, err := openCampaignWriter(dir, policy, seg, snap)
	if err != nil {
		say("err open: %v", err)
		return block()
	}
	rec := w.Recovery()
	say("open %d %d %d %t %t %d %d %d", w.Epoch(), w.LastSeq(), w.DurableSeq(), rec.Clean, rec.EpochStarted, len(rec.Sealed), len(rec.MovedAside), rec.TornBytes)
	buf := make([]byte, 512)
	if err := defineInstruments(w); err != nil {
		say("err define: %v", err)
		return block()
	}
	var frames int64
	for frames < maxFrames {
		n := 1 + rng.IntN(8)
		for range n {
			if err := stageOne(w, buf); err != nil {
				say("err stage: %v", err)
				return block()
			}
		}
		frames += int64(n)
		if err := w.Publish(); err != nil {
			say("err publish: %v", err)
			return block()
		}
		say("p %d %d %d", w.PublishedSeq(), w.DurableSeq(), w.Stats().Rolls)
		if syncPer > 0 && rng.Int64N(syncPer) == 0 {
			if err := w.Sync(); err != nil {
				say("err sync: %v", err)
				return block()
			}
			say("s %d %d %d", w.PublishedSeq(), w.DurableSeq(), w.Stats().Rolls)
		}
	}
	say("idle")
	return block()
}

// readerChild is a named reader (PL_NAME) that tails the journal and
// appends "SEQ EPOCH CRC" for every frame it is given to PL_LOG (a file
// outside the mount, one write(2) per line). A reissue is reported and
// accepted. It runs until killed.
func readerChild() int {
	dir, name, logPath := os.Getenv("PL_DIR"), os.Getenv("PL_NAME"), os.Getenv("PL_LOG")
	opts := reader.Options{Name: name, OpenTimeout: time.Minute, Wait: wait.Backoff}
	r, err := reader.Open(dir, opts)
	var re *reader.ReissuedError
	if errors.As(err, &re) {
		say("reissued %d %d %d %d", re.Seq, re.Epoch, re.From, re.NewEpoch)
		opts.AcceptReissue = true
		r, err = reader.Open(dir, opts)
	}
	if err != nil {
		say("err open: %v", err)
		return block()
	}
	lf, err := os.OpenFile(logPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		say("err log: %v", err)
		return block()
	}
	say("open %d", r.LastSeq())
	var cc contentChecker
	for {
		f, err := r.Next()
		if err != nil {
			say("err next: %v", err)
			return block()
		}
		if bad := cc.check(&f, f.Segment); bad != "" {
			say("bad %s", bad)
		}
		lf.Write([]byte(fmt.Sprintf("%d %d %d\n", f.Seq, r.Epoch(), f.CRC)))
	}
}

// child is a running helper process with its stdout as lines. Lines are
// queued without bound, so a child is never blocked by a test that reads
// its output late.
type child struct {
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	done   chan struct{} // closed once stdout hit EOF and the process was reaped
	err    error         // Wait's result, after done
	stderr *syncBuffer

	mu     sync.Mutex
	queue  []string
	notify chan struct{} // a line was queued (or EOF)
	eof    bool
}

// syncBuffer collects a child's stderr.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.b.Len() < 1<<20 {
		s.b.Write(p)
	}
	return len(p), nil
}

// head returns the first n lines written.
func (s *syncBuffer) head(n int) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	lines := strings.SplitN(s.b.String(), "\n", n+1)
	return strings.Join(lines[:min(n, len(lines))], " | ")
}

func startChild(t testing.TB, role string, env ...string) *child {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$", "-test.timeout=30m")
	cmd.Env = append(append(os.Environ(), roleEnv+"="+role), env...)
	stderr := &syncBuffer{}
	cmd.Stderr = stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	c := &child{cmd: cmd, stdin: in, done: make(chan struct{}), stderr: stderr, notify: make(chan struct{}, 1)}
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGKILL)
		<-c.done
	})
	go func() {
		sc := bufio.NewScanner(out)
		sc.Buffer(make([]byte, 1<<20), 1<<26)
		for sc.Scan() {
			c.mu.Lock()
			c.queue = append(c.queue, sc.Text())
			c.mu.Unlock()
			c.signal()
		}
		c.err = cmd.Wait()
		c.mu.Lock()
		c.eof = true
		c.mu.Unlock()
		c.signal()
		close(c.done)
	}()
	return c
}

func (c *child) signal() {
	select {
	case c.notify <- struct{}{}:
	default:
	}
}

// next returns the next line; ok is false at EOF (the child is gone) or
// after d without a line.
func (c *child) next(d time.Duration) (string, bool) {
	deadline := time.After(d)
	for {
		c.mu.Lock()
		if len(c.queue) > 0 {
			l := c.queue[0]
			c.queue = c.queue[1:]
			c.mu.Unlock()
			return l, true
		}
		eof := c.eof
		c.mu.Unlock()
		if eof {
			return "", false
		}
		select {
		case <-c.notify:
		case <-deadline:
			return "", false
		}
	}
}

// poll returns a queued line without waiting.
func (c *child) poll() (string, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.queue) == 0 {
		return "", false
	}
	l := c.queue[0]
	c.queue = c.queue[1:]
	return l, true
}

// rest waits (bounded) for the child to exit and returns its unread lines.
func (c *child) rest(t testing.TB) []string {
	t.Helper()
	c.waitDone(t)
	c.mu.Lock()
	defer c.mu.Unlock()
	q := c.queue
	c.queue = nil
	return q
}

// kill sends SIGKILL and waits (bounded) for the process to be reaped.
func (c *child) kill(t testing.TB) {
	t.Helper()
	c.cmd.Process.Signal(syscall.SIGKILL)
	c.waitDone(t)
}

func (c *child) waitDone(t testing.TB) {
	t.Helper()
	select {
	case <-c.done:
	case <-time.After(time.Minute):
		t.Fatalf("child %d did not exit within a minute", c.cmd.Process.Pid)
	}
}

// parseResult finds the checker's "result {json}" line.
func parseResult(lines []string, v any) error { return parseLine(lines, "result ", v) }

// parsePre finds the checker's "pre {json}" line (findings before repair).
func parsePre(lines []string, v any) error { return parseLine(lines, "pre ", v) }

func parseLine(lines []string, prefix string, v any) error {
	for _, l := range lines {
		if js, ok := strings.CutPrefix(l, prefix); ok {
			return json.Unmarshal([]byte(js), v)
		}
	}
	return errors.New("no " + prefix + "line")
}
