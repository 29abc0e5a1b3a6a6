//go:build linux

package wire_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/mdjournal/mdjournal/feed"
	"github.com/mdjournal/mdjournal/internal/testutil"
	"github.com/mdjournal/mdjournal/lobster"
	"github.com/mdjournal/mdjournal/publish"
	"github.com/mdjournal/mdjournal/writer"
)

const roleMulticast = "wire-multicast"

// TestMulticastNetns publishes a LOBSTER excerpt to an IPv4 multicast
// group (1 % of packets dropped, 1 % reordered, re-requests by unicast)
// and receives it with a feed that joins the group, inside a network
// namespace the test creates (the test binary re-executes itself with
// CLONE_NEWNET), so no multicast packet leaves it. The received journal
// must hold the source's frames. Skipped, saying so, where namespaces
// cannot be created.
func TestMulticastNetns(t *testing.T) {
	if testutil.Role() == roleMulticast {
		multicastChild(t)
		return
	}
	host, err := os.Readlink("/proc/self/ns/net")
	if err != nil {
		t.Skipf("SKIP multicast: cannot read this process's network namespace: %v", err)
	}
	p := dataPairs(t)[0]
	src := importSource(t, p)
	dst := filepath.Join(t.TempDir(), "received")
	cmd := testutil.Command(t, "TestMulticastNetns", roleMulticast, "MDJ_HOST_NETNS="+host,
		"MDJ_WIRE_SRC="+src, "MDJ_WIRE_DIR="+dst, "MDJ_WIRE_DATE="+p.date.String())
	cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWNET, Pdeathsig: syscall.SIGKILL}
	var out bytes.Buffer
	cmd.Stdout = &out
	if err := cmd.Start(); err != nil {
		if errors.Is(err, syscall.EPERM) || errors.Is(err, syscall.EINVAL) {
			t.Skipf("SKIP multicast: not permitted to create a network namespace here (%v); the feed's multicast join is untested", err)
		}
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("multicast child: %v\n%s", err, out.String())
	}
	i := strings.Index(out.String(), "multicast-ok")
	if i < 0 {
		t.Fatalf("the multicast child did not report success:\n%s", out.String())
	}
	t.Log(strings.SplitN(out.String()[i:], "\n", 2)[0])
	// The parent checks the journal again, in its own namespace.
	checkSame(t, readAll(t, src), readAll(t, dst), true, 0, time.Now().UnixNano())
}

func multicastChild(t *testing.T) {
	ns, err := os.Readlink("/proc/self/ns/net")
	if err != nil || ns == os.Getenv("MDJ_HOST_NETNS") {
		t.Fatalf("refusing to send multicast: not in a private network namespace (%q, %v)", ns, err)
	}
	// A new namespace has only lo, down and without MULTICAST.
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	ifr, err := unix.NewIfreq("lo")
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFFLAGS, ifr); err != nil {
		t.Fatal(err)
	}
	ifr.SetUint16(ifr.Uint16() | unix.IFF_UP | unix.IFF_MULTICAST)
	if err := unix.IoctlIfreq(fd, unix.SIOCSIFFLAGS, ifr); err != nil {
		t.Fatal(err)
	}
	unix.Close(fd)
	lo, err := net.InterfaceByName("lo")
	if err != nil {
		t.Fatal(err)
	}
	date, err := lobster.ParseDate(os.Getenv("MDJ_WIRE_DATE"))
	if err != nil {
		t.Fatal(err)
	}

	group := netip.MustParseAddr("239.192.14.1")
	w, err := writer.Open(os.Getenv("MDJ_WIRE_DIR"), writer.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	rr := freeUDP(t)
	f, err := feed.New(w, feed.Options{Listen: netip.AddrPortFrom(group, 0), Group: group, Interface: lo.Index, Rerequest: rr, Day: nyDay(t, date)})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	to := netip.AddrPortFrom(group, f.LocalAddr().Port())
	p, err := publish.Open(publish.Options{To: to, Interface: lo.Index, Loop: true, RerequestListen: rr, DropRate: 0.01, ReorderRate: 0.01,
		Seed: 21, MaxPayload: packetLimit(), Linger: time.Hour, HeartbeatInterval: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	fdone := make(chan error, 1)
	go func() { fdone <- f.Run(ctx) }()
	pctx, pcancel := context.WithCancel(ctx)
	pdone := make(chan error, 1)
	var pst publish.Stats
	go func() {
		var err error
		pst, err = p.Run(pctx, publish.JournalSource{Dir: os.Getenv("MDJ_WIRE_SRC")})
		pdone <- err
	}()
	if err := <-fdone; err != nil {
		t.Fatal(err)
	}
	pcancel()
	if err := <-pdone; err != nil {
		t.Fatal(err)
	}
	st := f.Stats()
	if st.Gaps != 0 || st.Sequencer.Recovered == 0 || pst.Sender.Dropped == 0 {
		t.Fatalf("feed %+v, publisher %+v", st.Sequencer, pst.Sender)
	}
	checkSame(t, readAll(t, os.Getenv("MDJ_WIRE_SRC")), readAll(t, os.Getenv("MDJ_WIRE_DIR")), true, 0, time.Now().UnixNano())
	fmt.Printf("multicast-ok: group %s on lo (index %d): %d messages, %d frames, %d packets dropped by the publisher, %d messages recovered by re-request\n",
		to, lo.Index, st.Sequencer.Messages, st.Frames, pst.Sender.Dropped, st.Sequencer.Recovered)
}
