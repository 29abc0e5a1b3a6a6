package wire_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mdjournal/mdjournal/feed"
	"github.com/mdjournal/mdjournal/internal/testutil"
	"github.com/mdjournal/mdjournal/lobster"
	"github.com/mdjournal/mdjournal/publish"
	"github.com/mdjournal/mdjournal/reader"
	"github.com/mdjournal/mdjournal/writer"
)

const roleFeed = "wire-feed"

// TestKillResume kills the feed handler — a separate process writing the
// journal — with SIGKILL twice while the publisher streams a LOBSTER
// excerpt (paced, 1 % of packets dropped, 1 % reordered), restarting it
// each time on the same journal and port. Each restart must resume from
// the journal's last source_seq (not from the start) and re-request what
// it missed; at the end the received journal must hold exactly the
// source's frames: nothing twice, nothing missing, same order.
func TestKillResume(t *testing.T) {
	if testutil.Role() == roleFeed {
		feedChild(t)
		return
	}
	ps := dataPairs(t)
	p := ps[0]
	if !fullRun() {
		for _, q := range ps {
			if strings.HasPrefix(q.name, "AAPL") {
				p = q
			}
		}
	}
	src := importSource(t, p)
	sf := readAll(t, src)
	dst := filepath.Join(t.TempDir(), "received")
	listen, rr := freeUDP(t), freeUDP(t)
	env := []string{"MDJ_WIRE_DIR=" + dst, "MDJ_WIRE_LISTEN=" + listen.String(), "MDJ_WIRE_RR=" + rr.String(), "MDJ_WIRE_DATE=" + p.date.String()}

	// Pace the excerpt to about 4 s (a full day: about 20 s).
	span := float64(sf[len(sf)-1].ts-sf[0].ts) / 1e9
	speed := span / 4
	if fullRun() {
		speed = span / 20
	}

	c1, next1 := startFeed(t, env)
	if next1 != 1 {
		t.Fatalf("a new journal resumes at message %d, want 1", next1)
	}
	pub, err := publish.Open(publish.Options{To: listen, RerequestListen: rr, Speed: speed, DropRate: 0.01, ReorderRate: 0.01, Seed: 5,
		MaxPayload: packetLimit(), Linger: time.Hour, HeartbeatInterval: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pdone := make(chan error, 1)
	go func() {
		_, err := pub.Run(ctx, publish.JournalSource{Dir: src})
		if errors.Is(err, context.Canceled) {
			err = nil
		}
		pdone <- err
	}()

	c := c1
	for k, frac := range []int{3, 6} {
		waitFrames(t, dst, uint64(len(sf)*frac/10))
		if err := c.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		c.Wait()
		had := lastSourceSeq(t, dst)
		var next uint64
		c, next = startFeed(t, env)
		if had == 0 || (next != had && next != had+1) {
			t.Fatalf("restart %d resumes at message %d; the journal's last source_seq is %d", k+1, next, had)
		}
		t.Logf("kill -9 #%d: the journal held messages up to %d; the restarted feed resumes at %d", k+1, had, next)
	}
	if err := c.Wait(); err != nil {
		t.Fatalf("the last feed process: %v", err)
	}
	cancel()
	if err := <-pdone; err != nil {
		t.Fatal(err)
	}
	got := readAll(t, dst)
	checkSame(t, sf, got, false, 0, time.Now().UnixNano())
	checkBooks(t, sf, got)
	t.Logf("%s: %d frames received across 3 processes, identical to the source", p.name, len(got))
}

// startFeed starts a feed process and waits for its READY line; it
// returns the process and the message it resumes at.
func startFeed(t *testing.T, env []string) (*exec.Cmd, uint64) {
	t.Helper()
	cmd := testutil.Command(t, "TestKillResume", roleFeed, env...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill() })
	line := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if strings.HasPrefix(sc.Text(), "READY ") {
				line <- sc.Text()
			}
		}
		close(line)
	}()
	select {
	case l, ok := <-line:
		if !ok {
			t.Fatal("the feed process ended without READY")
		}
		var next uint64
		var skip int
		if _, err := fmt.Sscanf(l, "READY %d %d", &next, &skip); err != nil {
			t.Fatalf("%q: %v", l, err)
		}
		return cmd, next
	case <-time.After(30 * time.Second):
		t.Fatal("no READY from the feed process in 30 s")
	}
	return nil, 0
}

// feedChild is the feed process: it writes the journal until the end of
// the session.
func feedChild(t *testing.T) {
	date, err := lobster.ParseDate(os.Getenv("MDJ_WIRE_DATE"))
	if err != nil {
		t.Fatal(err)
	}
	w, err := writer.Open(os.Getenv("MDJ_WIRE_DIR"), writer.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	f, err := feed.New(w, feed.Options{Listen: netip.MustParseAddrPort(os.Getenv("MDJ_WIRE_LISTEN")),
		Rerequest: netip.MustParseAddrPort(os.Getenv("MDJ_WIRE_RR")), Day: nyDay(t, date)})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r := f.Resume()
	fmt.Printf("READY %d %d\n", r.Next, r.Skip)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if err := f.Run(ctx); err != nil {
		t.Fatal(err)
	}
	if s := f.Stats(); s.Gaps != 0 {
		t.Fatalf("%d gaps", s.Gaps)
	}
}

// waitFrames waits until the journal has published n frames.
func waitFrames(t *testing.T, dir string, n uint64) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		if last := publishedSeq(t, dir); last >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the journal did not reach %d frames in 60 s", n)
		}
		time.Sleep(5 * time.Millisecond) // polling an observable state, with a deadline
	}
}

func publishedSeq(t *testing.T, dir string) uint64 {
	r, err := reader.Open(dir, reader.Options{From: reader.End()})
	if errors.Is(err, reader.ErrNoJournal) {
		return 0
	}
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	return r.LastSeq()
}

// lastSourceSeq returns the source_seq of the journal's last frame that
// has one.
func lastSourceSeq(t *testing.T, dir string) uint64 {
	var last uint64
	for _, f := range readAll(t, dir) {
		if f.sourceSeq != 0 {
			last = f.sourceSeq
		}
	}
	return last
}
