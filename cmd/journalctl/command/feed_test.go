package command

import (
	"bytes"
	"context"
	"net/netip"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mdjournal/mdjournal/internal/testutil"
	"github.com/mdjournal/mdjournal/moldudp64"
)

// lockedBuffer is a bytes.Buffer safe for a verb writing and a test
// reading at once.
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

// freeUDPPort returns a UDP address on 127.0.0.1 that was free a moment ago.
func freeUDPPort(t *testing.T) string {
	t.Helper()
	c, err := moldudp64.Listen(netip.MustParseAddrPort("127.0.0.1:0"), moldudp64.ConnOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return "udp://" + c.LocalAddr().String()
}

// startVerbAsync runs a verb in a goroutine with a context of its own
// (cancelled by wait's caller through the returned cancel, as SIGINT
// would); wait returns its exit code.
func startVerbAsync(args ...string) (stdout, stderr *lockedBuffer, cancel context.CancelFunc, wait func() int) {
	stdout, stderr = &lockedBuffer{}, &lockedBuffer{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int, 1)
	go func() {
		done <- Run(&Env{Stdin: strings.NewReader(""), Stdout: stdout, Stderr: stderr, Ctx: ctx}, args)
	}()
	return stdout, stderr, cancel, func() int { return <-done }
}

// waitListening waits until the feed verb says it listens (it binds its
// socket before it prints the line).
func waitListening(t *testing.T, stderr *lockedBuffer, addr string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(stderr.String(), "listening on "+addr) {
		if time.Now().After(deadline) {
			t.Fatalf("the feed did not start listening in 30 s:\n%s", stderr)
		}
		time.Sleep(5 * time.Millisecond) // polling observable output, with a deadline
	}
}

// summaryInt returns the integer value of key=N in a summary line.
func summaryInt(t *testing.T, line, key string) int64 {
	t.Helper()
	m := regexp.MustCompile(`(?:^| )` + regexp.QuoteMeta(key) + `=(\d+)`).FindStringSubmatch(line)
	if m == nil {
		t.Fatalf("no %s= in %q", key, line)
	}
	v, _ := strconv.ParseInt(m[1], 10, 64)
	return v
}

func amznWireExcerpt(t *testing.T) (msg, ob string) {
	root := testutil.RepoRoot(t)
	return filepath.Join(root, "testdata/lobster/AMZN_2012-06-21_34200000_57600000_message_5.csv.gz"),
		filepath.Join(root, "testdata/lobster/AMZN_2012-06-21_34200000_57600000_orderbook_5.csv.gz")
}

// TestPublishFeed runs `journalctl feed` (keeping a snapshot, interval
// durability) and `journalctl publish` (2 % of packets dropped, 2 %
// reordered, re-requests on) on 127.0.0.1: both exit 0, the feed reports
// no gap and every message, and the received journal verifies with its
// snapshot and prints the same book as the source at the end.
func TestPublishFeed(t *testing.T) {
	msg, ob := amznWireExcerpt(t)
	dir := t.TempDir()
	src, dst := filepath.Join(dir, "src"), filepath.Join(dir, "dst")
	if code, out, errs := run(t, "import", "--dir", src, msg, "--orderbook", ob); code != 0 {
		t.Fatalf("import: %d %s %s", code, out, errs)
	}
	listen, rr := freeUDPPort(t), freeUDPPort(t)
	snap := filepath.Join(dir, "books.snap")
	fout, ferr, fcancel, fwait := startVerbAsync("feed", "--dir", dst, "--listen", listen, "--rerequest", rr, "--date", "2012-06-21",
		"--snapshot", snap, "--depth", "5", "--durability", "interval:5ms")
	defer fcancel()
	waitListening(t, ferr, listen)
	pbuf, pebuf, pcancel, pwait := startVerbAsync("publish", "--from", src, "--to", listen, "--rerequest-listen", rr, "--drop", "0.02", "--reorder", "0.02", "--linger", "1m")
	defer pcancel()
	if c := fwait(); c != 0 {
		t.Fatalf("feed: exit %d\n%s%s", c, fout, ferr)
	}
	pcancel() // lingering: the session is complete, exit 0
	if c := pwait(); c != 0 {
		t.Fatalf("publish: exit %d\n%s%s", c, pbuf, pebuf)
	}
	pout, perr := pbuf.String(), pebuf.String()
	fl := fout.String()
	if summaryInt(t, fl, "gaps") != 0 || summaryInt(t, fl, "messages") != summaryInt(t, pout, "messages") || summaryInt(t, fl, "recovered") == 0 ||
		summaryInt(t, pout, "dropped") == 0 || summaryInt(t, fl, "frames") != summaryInt(t, pout, "frames") {
		t.Fatalf("feed: %s\npublish: %s", fl, pout)
	}
	if !strings.Contains(ferr.String(), "listening on "+listen) || !strings.Contains(perr, "re-requests on "+rr) {
		t.Fatalf("stderr:\n%s%s", ferr, perr)
	}
	if code, out, _ := run(t, "verify", "--dir", dst, "--snapshot", snap); code != 0 {
		t.Fatalf("verify: %s", out)
	}
	_, a, _ := run(t, "book", "--dir", src, "--instrument", "AMZN", "--depth", "0", "--json")
	_, b, _ := run(t, "book", "--dir", dst, "--instrument", "AMZN", "--depth", "0", "--json")
	if a != b || a == "" {
		t.Fatalf("books differ:\n%s\n%s", a, b)
	}
}

// TestFeedGapExit1: without a re-request server, packets the publisher
// drops are gaps: the feed logs each, writes gap frames that dump shows,
// reports gaps= in its summary and exits 1.
func TestFeedGapExit1(t *testing.T) {
	msg, ob := amznWireExcerpt(t)
	dst := filepath.Join(t.TempDir(), "dst")
	listen := freeUDPPort(t)
	fout, ferr, fcancel, fwait := startVerbAsync("feed", "--dir", dst, "--listen", listen, "--date", "2012-06-21", "--gap-timeout", "50ms")
	defer fcancel()
	waitListening(t, ferr, listen)
	code, pout, perr := run(t, "publish", msg, "--orderbook", ob, "--to", listen, "--drop", "0.05", "--seed", "9", "--linger", "0s")
	if code != 0 {
		t.Fatalf("publish: %d %s %s", code, pout, perr)
	}
	if c := fwait(); c != ExitData {
		t.Fatalf("feed: exit %d, want 1\n%s%s", c, fout, ferr)
	}
	gaps := summaryInt(t, fout.String(), "gaps")
	if gaps == 0 || int64(strings.Count(ferr.String(), "GAP: ")) != gaps || !strings.Contains(ferr.String(), "could not be recovered") {
		t.Fatalf("feed:\n%s%s", fout, ferr)
	}
	_, dump, _ := run(t, "dump", "--dir", dst, "--format", "csv")
	if n := int64(strings.Count(dump, ",gap,")); n != gaps {
		t.Fatalf("dump shows %d gap frames, the feed reported %d", n, gaps)
	}
	if summaryInt(t, fout.String(), "lost") != summaryInt(t, pout, "messages")-summaryInt(t, fout.String(), "messages") {
		t.Fatalf("lost + delivered != sent:\n%s%s", fout, pout)
	}
}

func TestPublishFeedUsage(t *testing.T) {
	dir := t.TempDir()
	for _, args := range [][]string{
		{"feed", "--dir", dir},
		{"feed", "--dir", dir, "--listen", "localhost:5"},
		{"feed", "--dir", dir, "--listen", "udp://127.0.0.1:5", "--group", "10.0.0.1"},
		{"feed", "--dir", dir, "--listen", "udp://127.0.0.1:5", "--iface", "lo"},
		{"feed", "--dir", dir, "--listen", "udp://127.0.0.1:5", "--depth", "5"},
		{"feed", "--dir", dir, "--listen", "udp://127.0.0.1:5", "--date", "21/06/2012"},
		{"feed", "--dir", dir, "--listen", "udp://127.0.0.1:5", "--session", "WAYTOOLONGSESSION"},
		{"feed", "--listen", "udp://127.0.0.1:5"},
		{"publish", "--from", dir},
		{"publish", "--to", "udp://127.0.0.1:5"},
		{"publish", "--to", "udp://127.0.0.1:5", "--from", dir, "x.csv"},
		{"publish", "--to", "udp://127.0.0.1:5", "--from", dir, "--speed", "fast"},
		{"publish", "--to", "udp://127.0.0.1:5", "--from", dir, "--drop", "1.5"},
		{"publish", "--to", "udp://127.0.0.1:5", "--from", dir, "--drop", "0.6", "--reorder", "0.6"},
		{"publish", "--to", "udp://[::1]:5", "--from", dir},
		{"publish", "--to", "udp://127.0.0.1:5", "--from", dir, "--orderbook", "x"},
	} {
		code, _, stderr := run(t, args...)
		if code != ExitUsage || stderr == "" {
			t.Errorf("%q: exit %d (%q), want 2 with a message", args, code, stderr)
		}
	}
}
