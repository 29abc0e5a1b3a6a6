package command

import (
	"bytes"
	"context"
	"encoding/binary"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/mdjournal/mdjournal/cmd/replay/cli"

	"github.com/mdjournal/mdjournal/internal/testutil"
	"github.com/mdjournal/mdjournal/journal"
	"github.com/mdjournal/mdjournal/replay"
	"github.com/mdjournal/mdjournal/ring"
	"github.com/mdjournal/mdjournal/wait"
)

func TestRingUsageErrors(t *testing.T) {
	for _, args := range [][]string{
		{"ring"},
		{"ring", "--name", "x", "--format", "xml"},
		{"ring", "--name", "x", "--wait", "sleepy"},
		{"ring", "--name", "x", "--count", "-1"},
		{"ring", "--name", "x", "--wait-timeout", "-1s"},
		{"ring", "--name", "x", "--wait-timeout", "soon"},
		{"ring", "--name", "x", "extra"},
	} {
		code, _, stderr := run(t, args...)
		if code != ExitUsage || !strings.Contains(stderr, "journalctl ring: ") {
			t.Errorf("%q: exit %d, stderr %q", args, code, stderr)
		}
	}
}

// No producer within --wait-timeout: exit 1, saying what was found and how
// to start one; --wait-timeout 0 looks once.
func TestRingNoProducerExit1(t *testing.T) {
	path := filepath.Join(t.TempDir(), "nope")
	start := time.Now()
	code, out, stderr := run(t, "ring", "--name", path, "--wait-timeout", "150ms")
	if code != ExitData || out != "" || !strings.Contains(stderr, path) || !strings.Contains(stderr, "no producer") ||
		!strings.Contains(stderr, "waiting up to 150ms") || !strings.Contains(stderr, "replay --ring") {
		t.Fatalf("exit %d %q", code, stderr)
	}
	if el := time.Since(start); el < 150*time.Millisecond || el > 5*time.Second {
		t.Fatalf("gave up after %v, want about 150ms", el)
	}
	code, _, stderr = run(t, "ring", "--name", path, "--wait-timeout", "0")
	if code != ExitData || strings.Contains(stderr, "waiting") || !strings.Contains(stderr, "no producer") {
		t.Fatalf("--wait-timeout 0: exit %d %q", code, stderr)
	}
}

// A ring left by an earlier run (its producer finished and left, the file
// kept) is never read: v1 printed its frames again and exited 0.
func TestRingLeftoverNeverRead(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ring")
	p, err := ring.NewProducer(path, 1<<16, ring.ProducerOptions{Keep: true, Linger: -1})
	if err != nil {
		t.Fatal(err)
	}
	var q journal.Quote
	for seq := uint64(1); seq <= 3; seq++ {
		if err := p.Write(frameRecord(seq, journal.TypeQuote, 7, q.Encode(make([]byte, 32)))); err != nil {
			t.Fatal(err)
		}
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("the kept ring is gone: %v", err)
	}
	code, out, stderr := run(t, "ring", "--name", path, "--wait-timeout", "200ms")
	if code != ExitData || out != "" || !strings.Contains(stderr, "leftover") || !strings.Contains(stderr, path) {
		t.Fatalf("leftover ring: exit %d, stderr %q, stdout %q", code, stderr, out)
	}
}

// frameRecord builds the ring record of one frame, as replay writes it.
func frameRecord(seq uint64, typ journal.MsgType, instr uint32, payload []byte) []byte {
	b := make([]byte, journal.FrameSpace(len(payload)))
	journal.PutFrame(b, seq, 1_700_000_000_000_000_000+int64(seq), typ, 0, instr, payload)
	return b
}

// ringCmd is `journalctl ring` running in-process on its own goroutine.
type ringCmd struct {
	out, errb syncBuffer
	done      chan int
}

func startRing(args ...string) *ringCmd {
	c := &ringCmd{done: make(chan int, 1)}
	go func() {
		c.done <- Run(&Env{Stdin: strings.NewReader(""), Stdout: &c.out, Stderr: &c.errb, Ctx: context.Background()}, append([]string{"ring"}, args...))
	}()
	return c
}

// waitWaiting returns once the command said it waits for a producer.
func (c *ringCmd) waitWaiting(t *testing.T) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !strings.Contains(c.errb.String(), "waiting up to"); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("journalctl ring never said it waits: %q", c.errb.String())
		}
	}
}

func (c *ringCmd) wait(t *testing.T) (int, string, string) {
	t.Helper()
	select {
	case code := <-c.done:
		return code, c.out.String(), c.errb.String()
	case <-time.After(30 * time.Second):
		t.Fatal("journalctl ring did not finish")
		return 0, "", ""
	}
}

// waitFile returns once path exists.
func waitFile(t *testing.T, path string) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(time.Millisecond) {
		if _, err := os.Stat(path); err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s never appeared", path)
		}
	}
}

// A record that is not a valid frame stops the consumer with exit 1 and is
// never printed; the frames before it are. Frames print like dump, with
// the symbol learnt from the instrument_def that passed through the ring.
func TestRingBadRecordExit1(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ring")
	cons := startRing("--name", path)
	cons.waitWaiting(t)
	p, err := ring.NewProducer(path, 1<<16, ring.ProducerOptions{Wait: wait.Spin})
	if err != nil {
		t.Fatal(err)
	}
	var def journal.InstrumentDef
	def.SetSymbol("ACME")
	def.PriceScale, def.TickSize = 2, 1
	q := journal.Quote{BidPrice: 10050, BidQty: 3, AskPrice: 10075, AskQty: 4}
	good := [][]byte{
		frameRecord(1, journal.TypeInstrumentDef, 7, def.Encode(make([]byte, 32))),
		frameRecord(2, journal.TypeQuote, 7, q.Encode(make([]byte, 32))),
		frameRecord(3, journal.TypeRaw, 0, []byte("odd")), // size 35: the record carries the padding
	}
	for _, rec := range good {
		if err := p.Write(rec); err != nil {
			t.Fatal(err)
		}
	}
	bad := frameRecord(4, journal.TypeQuote, 7, q.Encode(make([]byte, 32)))
	bad[40] ^= 0x10 // payload damage: CRC mismatch
	p.Write(bad)
	p.Write(frameRecord(5, journal.TypeQuote, 7, q.Encode(make([]byte, 32))))
	// Close lingers until the consumer detached: it stops at the bad record.
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	code, out, stderr := cons.wait(t)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if code != ExitData || len(lines) != 3 || !strings.Contains(stderr, "checksum") || !strings.Contains(stderr, "after 3 frames") {
		t.Fatalf("exit %d, stderr %q, stdout:\n%s", code, stderr, out)
	}
	if !strings.Contains(lines[1], "quote") || !strings.Contains(lines[1], "ACME") || !strings.Contains(lines[1], "bid_price=100.50") {
		t.Fatalf("quote line %q", lines[1])
	}
	if strings.Contains(out, "         4  ") {
		t.Fatal("the damaged frame was printed")
	}
}

// The ring's frames print exactly as dump prints the same frames, whether
// the consumer starts before the replay or after it (then the replay has
// published everything and lingers: v1 handed the consumer a finished ring
// of the previous run, or none), and --count stops early. The replay
// removes its ring once drained.
func TestRingMatchesDumpAndCount(t *testing.T) {
	dir := t.TempDir()
	if code, _, errs := run(t, "gen", "--dir", dir, "--count", "3000", "--instruments", "3", "--segment-size", "256KiB", "--clock", "synthetic"); code != 0 {
		t.Fatal(errs)
	}
	path := filepath.Join(t.TempDir(), "ring") // one name for every run, as a user would
	type res struct {
		st  replay.Stats
		err error
	}
	replayAsync := func() chan res {
		done := make(chan res, 1)
		go func() {
			st, err := replay.Run(context.Background(), replay.Options{Dir: dir, Ring: path}) // 16 MiB: all fits
			done <- res{st, err}
		}()
		return done
	}
	for _, format := range []string{"text", "json", "csv"} {
		_, want, _ := run(t, "dump", "--dir", dir, "--format", format)
		for _, consumerFirst := range []bool{true, false} {
			var cons *ringCmd
			var rep chan res
			if consumerFirst {
				cons = startRing("--name", path, "--format", format)
				cons.waitWaiting(t)
				rep = replayAsync()
			} else {
				rep = replayAsync()
				waitFile(t, path)
				cons = startRing("--name", path, "--format", format)
			}
			code, got, errs := cons.wait(t)
			r := <-rep
			if r.err != nil || r.st.Frames != 3000 {
				t.Fatalf("%s, consumer first %v: replay: %v %+v", format, consumerFirst, r.err, r.st)
			}
			if code != 0 || got != want {
				t.Fatalf("%s, consumer first %v: exit %d %s; %d lines, want %d", format, consumerFirst, code, errs, strings.Count(got, "\n"), strings.Count(want, "\n"))
			}
			if _, err := os.Stat(path); !os.IsNotExist(err) {
				t.Fatalf("%s: the ring is still there after the run: %v", format, err)
			}
		}
	}
	cons := startRing("--name", path, "--count", "10")
	cons.waitWaiting(t)
	rep := replayAsync()
	code, out, errs := cons.wait(t)
	if code != 0 || strings.Count(out, "\n") != 10 {
		t.Fatalf("--count 10: exit %d, %d lines, %s", code, strings.Count(out, "\n"), errs)
	}
	if r := <-rep; r.err != nil || r.st.Ended != replay.EndedRange {
		t.Fatalf("replay after the consumer left at --count: %v %+v", r.err, r.st)
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// kill -9 of a replay that is still pacing frames: the consumer prints what
// was published, then reports the dead producer and exits 1.
func TestRingProducerKilled(t *testing.T) {
	if testutil.Role() == "replay" {
		os.Exit(cli.Main(strings.Split(os.Getenv("MDJ_ARGS"), "\x1f"), os.Stdout, os.Stderr))
	}
	dir := t.TempDir()
	if code, _, errs := run(t, "gen", "--dir", dir, "--count", "20000", "--instruments", "3", "--clock", "synthetic"); code != 0 {
		t.Fatal(errs)
	}
	path := filepath.Join(t.TempDir(), "ring")
	// 1 µs apart at 0.001x: one frame per millisecond, 20 s in all.
	cmd := testutil.Command(t, "TestRingProducerKilled", "replay",
		"MDJ_ARGS="+strings.Join([]string{"--dir", dir, "--ring", path, "--speed", "0.001x"}, "\x1f"))
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	for i := 0; ; i++ {
		if _, err := os.Stat(path); err == nil {
			break
		}
		if i > 3000 {
			t.Fatal("the replay never created its ring")
		}
		time.Sleep(5 * time.Millisecond)
	}
	var out, errb syncBuffer
	done := make(chan int, 1)
	go func() {
		done <- Run(&Env{Stdin: strings.NewReader(""), Stdout: &out, Stderr: &errb, Ctx: context.Background()}, []string{"ring", "--name", path, "--wait", "futex"})
	}()
	for i := 0; strings.Count(out.String(), "\n") < 5; i++ {
		if i > 3000 {
			t.Fatal("the consumer printed nothing")
		}
		time.Sleep(5 * time.Millisecond)
	}
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()
	select {
	case code := <-done:
		n := strings.Count(out.String(), "\n")
		if code != ExitData || !strings.Contains(errb.String(), "producer died") || n >= 20000 {
			t.Fatalf("exit %d after %d lines, stderr %q", code, n, errb.String())
		}
		// Everything the dead producer published was printed first.
		if k := publishedRecords(t, path); n != k {
			t.Fatalf("printed %d frames, the ring holds %d published records", n, k)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the consumer did not notice the dead producer")
	}
}

// publishedRecords counts the data records published in the ring file at
// path, read from the bytes as format.md §12 lays them out (header page of
// 4096 bytes, capacity at offset 16; each record an 8-byte header word,
// length | kind<<32, published once non-zero, occupying align8(8+length)
// bytes). It assumes the records never wrapped.
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
		length, kind := w&0xffffffff, w>>32
		if kind != 1 {
			t.Fatalf("record at %d: kind %d (wrapped or damaged)", pos, kind)
		}
		n++
		pos += (8 + length + 7) &^ 7
	}
	t.Fatal("the ring is full of records: it wrapped")
	return 0
}

// An interrupt is not the end of the stream: exit 1 whether it comes while
// waiting for a producer or while reading, after the frames read so far.
func TestRingInterruptedExit1(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ring")
	ctx, cancel := context.WithCancel(context.Background())
	var out, errb syncBuffer
	done := make(chan int, 1)
	go func() {
		done <- Run(&Env{Stdin: strings.NewReader(""), Stdout: &out, Stderr: &errb, Ctx: ctx}, []string{"ring", "--name", path})
	}()
	for deadline := time.Now().Add(10 * time.Second); !strings.Contains(errb.String(), "waiting up to"); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("journalctl ring never said it waits")
		}
	}
	cancel()
	if code := <-done; code != ExitData || !strings.Contains(errb.String(), "interrupted while waiting for a producer") {
		t.Fatalf("interrupted while waiting: exit %d, stderr %q", code, errb.String())
	}

	// A new name: the abandoned attach above keeps looking at the old one
	// until its timeout (then closes what it got).
	path = filepath.Join(t.TempDir(), "ring")
	ctx, cancel = context.WithCancel(context.Background())
	defer cancel()
	cons := &ringCmd{done: make(chan int, 1)}
	go func() {
		cons.done <- Run(&Env{Stdin: strings.NewReader(""), Stdout: &cons.out, Stderr: &cons.errb, Ctx: ctx}, []string{"ring", "--name", path})
	}()
	p, err := ring.NewProducer(path, 1<<16, ring.ProducerOptions{Wait: wait.Spin})
	if err != nil {
		t.Fatal(err)
	}
	var q journal.Quote
	for seq := uint64(1); seq <= 3; seq++ {
		if err := p.Write(frameRecord(seq, journal.TypeQuote, 7, q.Encode(make([]byte, 32)))); err != nil {
			t.Fatal(err)
		}
	}
	for deadline := time.Now().Add(10 * time.Second); strings.Count(cons.out.String(), "\n") < 3; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("3 frames not printed: %q", cons.out.String())
		}
	}
	cancel()
	code, _, stderr := cons.wait(t)
	if code != ExitData || !strings.Contains(stderr, "interrupted after 3 frames") {
		t.Fatalf("interrupted while reading: exit %d, stderr %q", code, stderr)
	}
	if err := p.Close(); err != nil { // the consumer detached: no linger
		t.Fatal(err)
	}
}
