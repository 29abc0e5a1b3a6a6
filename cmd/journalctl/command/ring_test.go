package command

import (
	"bytes"
	"context"
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
		{"ring", "--name", "x", "extra"},
	} {
		code, _, stderr := run(t, args...)
		if code != ExitUsage || !strings.Contains(stderr, "journalctl ring: ") {
			t.Errorf("%q: exit %d, stderr %q", args, code, stderr)
		}
	}
}

func TestRingMissingExit1(t *testing.T) {
	code, _, stderr := run(t, "ring", "--name", filepath.Join(t.TempDir(), "nope"))
	if code != ExitData || !strings.Contains(stderr, "nope") || !strings.Contains(stderr, "start replay first") {
		t.Fatalf("exit %d %q", code, stderr)
	}
}

// frameRecord builds the ring record of one frame, as replay writes it.
func frameRecord(seq uint64, typ journal.MsgType, instr uint32, payload []byte) []byte {
	b := make([]byte, journal.FrameSpace(len(payload)))
	journal.PutFrame(b, seq, 1_700_000_000_000_000_000+int64(seq), typ, 0, instr, payload)
	return b
}

// A record that is not a valid frame stops the consumer with exit 1 and is
// never printed; the frames before it are. Frames print like dump, with
// the symbol learnt from the instrument_def that passed through the ring.
func TestRingBadRecordExit1(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ring")
	rg, err := ring.Create(path, 1<<16, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer rg.Close()
	p, err := rg.Producer(wait.Spin)
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
	p.Close()

	code, out, stderr := run(t, "ring", "--name", path)
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

// The ring's frames print exactly as dump prints the same frames, and
// --count stops early.
func TestRingMatchesDumpAndCount(t *testing.T) {
	dir := t.TempDir()
	if code, _, errs := run(t, "gen", "--dir", dir, "--count", "3000", "--instruments", "3", "--segment-size", "256KiB", "--clock", "synthetic"); code != 0 {
		t.Fatal(errs)
	}
	for _, format := range []string{"text", "json", "csv"} {
		path := filepath.Join(t.TempDir(), "ring")
		st, err := replay.Run(context.Background(), replay.Options{Dir: dir, Ring: path}) // 16 MiB: all fits, the consumer comes after
		if err != nil || st.Frames != 3000 {
			t.Fatalf("replay: %v %+v", err, st)
		}
		code, got, errs := run(t, "ring", "--name", path, "--format", format)
		_, want, _ := run(t, "dump", "--dir", dir, "--format", format)
		if code != 0 || got != want {
			t.Fatalf("%s: exit %d %s; equal=%v", format, code, errs, got == want)
		}
	}
	path := filepath.Join(t.TempDir(), "ring")
	if _, err := replay.Run(context.Background(), replay.Options{Dir: dir, Ring: path}); err != nil {
		t.Fatal(err)
	}
	code, out, _ := run(t, "ring", "--name", path, "--count", "10")
	if code != 0 || strings.Count(out, "\n") != 10 {
		t.Fatalf("--count 10: exit %d, %d lines", code, strings.Count(out, "\n"))
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
	case <-time.After(20 * time.Second):
		t.Fatal("the consumer did not notice the dead producer")
	}
}
