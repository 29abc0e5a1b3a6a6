package writer_test

import (
	"bufio"
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/mdjournal/mdjournal/internal/testutil"
	"github.com/mdjournal/mdjournal/journal"
	"github.com/mdjournal/mdjournal/ops/verify"
	"github.com/mdjournal/mdjournal/reader"
	"github.com/mdjournal/mdjournal/wait"
	"github.com/mdjournal/mdjournal/writer"
)

// expectedPayload is the deterministic content of frame seq in the crash
// test: its length and bytes depend only on seq, so any frame that is not
// exactly what the writer wrote is detected.
func expectedPayload(seq uint64, buf []byte) []byte {
	n := 8 + int(seq*7%200)
	b := buf[:n]
	x := seq*0x9e3779b97f4a7c15 + 1
	for i := range b {
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
		b[i] = byte(x)
	}
	return b
}

// TestCrashHelper is the body of the helper processes of TestCrash.
func TestCrashHelper(t *testing.T) {
	switch testutil.Role() {
	case "crash-writer":
		crashWriter()
	case "crash-reader":
		crashReader()
	default:
		t.Skip("helper process only")
	}
}

// crashWriter appends frames in random batches until it is killed.
func crashWriter() {
	dir := os.Getenv("MDJ_DIR")
	dur, _ := writer.ParseDurability(os.Getenv("MDJ_DURABILITY"))
	w, err := writer.Open(dir, writer.Options{SegmentSize: journal.MinSegmentSize, Durability: dur})
	if err != nil {
		fmt.Fprintln(os.Stderr, "crash-writer open:", err)
		os.Exit(3)
	}
	fmt.Println("open") // the test kills it at a random moment after this
	rng := rand.New(rand.NewPCG(uint64(os.Getpid()), 7))
	buf := make([]byte, 256)
	for {
		n := 1 + rng.IntN(16)
		for i := 0; i < n; i++ {
			seq := w.LastSeq() + 1
			if _, err := w.Stage(journal.TypeRaw, uint32(seq%5), time.Now().UnixNano(), expectedPayload(seq, buf)); err != nil {
				fmt.Fprintln(os.Stderr, "crash-writer stage:", err)
				os.Exit(3)
			}
		}
		if err := w.Publish(); err != nil {
			fmt.Fprintln(os.Stderr, "crash-writer publish:", err)
			os.Exit(3)
		}
	}
}

// crashReader tails the journal across writer crashes and records every
// frame it sees as "seq crc"; it checks each payload as it goes.
func crashReader() {
	dir, out := os.Getenv("MDJ_DIR"), os.Getenv("MDJ_SEEN")
	ws, _ := wait.Parse(os.Getenv("MDJ_WAIT"))
	// A named reader: the test watches its position to know when it has
	// caught up. It waits for the first writer to create the journal.
	r, err := reader.Open(dir, reader.Options{Wait: ws, Name: "crash", OpenTimeout: time.Minute})
	if err != nil {
		fmt.Fprintln(os.Stderr, "crash-reader open:", err)
		os.Exit(3)
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM)
	go func() { <-sig; r.Interrupt() }()
	f, _ := os.Create(out)
	bw := bufio.NewWriter(f)
	buf := make([]byte, 256)
	for {
		fr, err := r.Next()
		if err == reader.ErrInterrupted {
			break
		}
		if err != nil {
			bw.Flush()
			fmt.Fprintln(os.Stderr, "crash-reader:", err)
			os.Exit(4)
		}
		if !bytes.Equal(fr.Payload, expectedPayload(fr.Seq, buf)) {
			bw.Flush()
			fmt.Fprintf(os.Stderr, "crash-reader: seq %d payload differs from what the writer wrote\n", fr.Seq)
			os.Exit(5)
		}
		fmt.Fprintf(bw, "%d %d\n", fr.Seq, fr.CRC)
	}
	bw.Flush()
	f.Close()
	os.Exit(0)
}

func crashIters(t *testing.T) int {
	if s := os.Getenv("MDJ_CRASH_ITERS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil {
			t.Fatalf("MDJ_CRASH_ITERS=%q", s)
		}
		return n
	}
	if testing.Short() {
		return 10 // the -race pass: the full 50 run in the plain pass
	}
	return 50
}

// TestCrash kills a writer process with SIGKILL at random moments (50 times
// by default; MDJ_CRASH_ITERS for more, as `make crashtest` does) while a
// reader process tails the journal live. After every restart the journal must
// hold every frame the reader saw, identical, with contiguous sequence
// numbers, and no frame with a bad checksum is ever returned.
func TestCrash(t *testing.T) {
	if testutil.Role() != "" {
		t.Skip()
	}
	for _, mode := range []struct{ durability, wait string }{{"none", "backoff"}, {"interval:1ms", "futex"}} {
		t.Run(mode.durability, func(t *testing.T) {
			iters := crashIters(t)
			if mode.durability != "none" {
				iters = max(iters/5, 5) // msync makes each round slower; the none run carries the count
			}
			runCrash(t, iters, mode.durability, mode.wait)
		})
	}
}

func runCrash(t *testing.T, iters int, durability, waitStrategy string) {
	dir := t.TempDir()
	seen := filepath.Join(t.TempDir(), "seen.txt")
	env := []string{"MDJ_DIR=" + dir, "MDJ_SEEN=" + seen, "MDJ_DURABILITY=" + durability, "MDJ_WAIT=" + waitStrategy}
	rd := testutil.Command(t, "TestCrashHelper", "crash-reader", env...)
	if err := rd.Start(); err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 1))
	for i := 0; i < iters; i++ {
		wr := testutil.Command(t, "TestCrashHelper", "crash-writer", env...)
		out, err := wr.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := wr.Start(); err != nil {
			t.Fatal(err)
		}
		// Once the writer has opened (recovered) the journal, kill it at a
		// random moment in its next 40 ms of appending: the sleep picks the
		// moment, it synchronises nothing.
		if line, err := bufio.NewReader(out).ReadString('\n'); err != nil || line != "open\n" {
			wr.Process.Kill()
			wr.Wait()
			t.Fatalf("round %d: the writer did not open the journal (%q %v)", i, line, err)
		}
		time.Sleep(time.Duration(rng.IntN(40)) * time.Millisecond)
		wr.Process.Kill() // SIGKILL
		err = wr.Wait()
		if ws, ok := wr.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() {
			t.Fatalf("round %d: writer exited on its own (%v): it must only die by SIGKILL", i, err)
		}
	}
	// A final writer recovers the tail and closes cleanly.
	w, err := writer.Open(dir, writer.Options{SegmentSize: journal.MinSegmentSize})
	if err != nil {
		t.Fatalf("final recovery: %v", err)
	}
	last := w.LastSeq()
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	// Wait until the reader has consumed everything (its named position),
	// then stop it.
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(time.Millisecond) {
		named, _ := reader.ListNamed(dir)
		if len(named) == 1 && named[0].Seq == last {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the reader did not reach seq %d within a minute: %+v", last, named)
		}
	}
	rd.Process.Signal(syscall.SIGTERM)
	if err := rd.Wait(); err != nil {
		t.Fatalf("reader process failed: %v (it reports damaged or invented frames on stderr)", err)
	}

	// The journal: contiguous from 1, every payload as written.
	crcs := make([]uint32, last+1)
	r, err := reader.Open(dir, reader.Options{})
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 256)
	var n uint64
	for {
		f, ok, err := r.TryNext()
		if err != nil {
			t.Fatalf("after crash loop, reading seq %d: %v", n+1, err)
		}
		if !ok {
			break
		}
		n++
		if f.Seq != n || !bytes.Equal(f.Payload, expectedPayload(f.Seq, buf)) {
			t.Fatalf("frame %d: seq %d, payload match %v", n, f.Seq, bytes.Equal(f.Payload, expectedPayload(f.Seq, buf)))
		}
		crcs[n] = f.CRC
	}
	r.Close()
	if n != last {
		t.Fatalf("journal holds %d frames, writer resumed at %d", n, last)
	}
	// Every frame the live reader saw is present and identical.
	data, err := os.ReadFile(seen)
	if err != nil {
		t.Fatal(err)
	}
	var seenN int
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		var seq uint64
		var crc uint32
		if _, err := fmt.Sscanf(sc.Text(), "%d %d", &seq, &crc); err != nil {
			t.Fatalf("seen line %q", sc.Text())
		}
		seenN++
		if seq != uint64(seenN) {
			t.Fatalf("reader saw seq %d as its frame #%d", seq, seenN)
		}
		if seq > last || crcs[seq] != crc {
			t.Fatalf("reader saw seq %d (crc %d); the recovered journal has %d frames, crc %d there", seq, crc, last, crcs[min(seq, last)])
		}
	}
	if seenN == 0 {
		t.Fatal("the live reader saw no frames")
	}
	rep, err := verify.Journal(dir, verify.Options{})
	if err != nil || !rep.OK() {
		t.Fatalf("verify after crash loop: %v %+v", err, rep.Problems)
	}
	broken, _ := filepath.Glob(filepath.Join(dir, "*"+journal.BrokenExt+"*"))
	t.Logf("%d SIGKILLs (durability %s, reader wait %s): %d frames in %d segments, live reader saw %d, torn tails cut: %d",
		iters, durability, waitStrategy, last, len(rep.Segments), seenN, len(broken))
}
