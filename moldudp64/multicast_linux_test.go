//go:build linux

package moldudp64

import (
	"bytes"
	"errors"
	"net"
	"net/netip"
	"os"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/mdjournal/mdjournal/internal/testutil"
)

const roleMulticast = "moldudp64-multicast"

// TestMulticastNetns runs a whole multicast session — sender, group member,
// re-request server, 5% of packets dropped — inside a network namespace of
// its own: the test binary re-executes itself with CLONE_NEWNET, so no
// multicast packet ever leaves a namespace the test did not create. Skipped
// (loudly) where namespaces cannot be created.
func TestMulticastNetns(t *testing.T) {
	if testutil.Role() == roleMulticast {
		multicastChild(t)
		return
	}
	host, err := os.Readlink("/proc/self/ns/net")
	if err != nil {
		t.Skipf("SKIP multicast: cannot read this process's network namespace: %v", err)
	}
	cmd := testutil.Command(t, "TestMulticastNetns", roleMulticast, "MDJ_HOST_NETNS="+host)
	cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWNET, Pdeathsig: syscall.SIGKILL}
	var out bytes.Buffer
	cmd.Stdout = &out
	if err := cmd.Start(); err != nil {
		if errors.Is(err, syscall.EPERM) || errors.Is(err, syscall.EINVAL) {
			t.Skipf("SKIP multicast: not permitted to create a network namespace here (%v); multicast join and delivery are untested", err)
		}
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("multicast child: %v\n%s", err, out.String())
	}
	if !bytes.Contains(out.Bytes(), []byte("multicast-ok")) {
		t.Fatalf("multicast child did not report success:\n%s", out.String())
	}
	t.Log(lastLine(out.String()))
}

func lastLine(s string) string {
	for _, l := range bytes.Split([]byte(s), []byte("\n")) {
		if bytes.HasPrefix(l, []byte("multicast-ok")) {
			return string(l)
		}
	}
	return ""
}

func multicastChild(t *testing.T) {
	ns, err := os.Readlink("/proc/self/ns/net")
	if err != nil || ns == os.Getenv("MDJ_HOST_NETNS") {
		t.Fatalf("refusing to send multicast: not in a private network namespace (%q, %v)", ns, err)
	}
	// A new namespace has only lo, down, without MULTICAST.
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

	group := netip.MustParseAddr("239.192.77.1")
	feed, err := Listen(netip.AddrPortFrom(group, 0), ConnOptions{ReuseAddr: true, RecvBuffer: 8 << 20, Timestamps: true})
	if err != nil {
		t.Fatal(err)
	}
	defer feed.Close()
	if err := feed.JoinGroup(group, lo.Index); err != nil {
		t.Fatal(err)
	}
	dst := netip.AddrPortFrom(group, feed.LocalAddr().Port())

	store := NewMemStore(1)
	sc, err := Listen(netip.AddrPortFrom(loopback, 0), ConnOptions{MulticastInterface: lo.Index, MulticastLoop: true, SendBuffer: 4 << 20})
	if err != nil {
		t.Fatal(err)
	}
	defer sc.Close()
	snd, err := NewSender(sc, dst, SenderOptions{Session: testSession, Store: store, DropRate: 0.05, Seed: 11})
	if err != nil {
		t.Fatal(err)
	}
	srvConn := listen(t, ConnOptions{})
	server, err := NewServer(srvConn, store, ServerOptions{Session: testSession})
	if err != nil {
		t.Fatal(err)
	}
	stopSrv := make(chan struct{})
	srvDone := make(chan struct{})
	go func() {
		defer close(srvDone)
		for {
			select {
			case <-stopSrv:
				return
			default:
			}
			if _, err := server.Poll(20 * time.Millisecond); err != nil {
				t.Error(err)
				return
			}
		}
	}()

	r := &recorder{t: t}
	rc := NewRequestClient(listen(t, ConnOptions{RecvBuffer: 8 << 20}), srvConn.LocalAddr())
	seq, err := NewSequencer(r.handle, SequencerOptions{Next: 1, Requester: rc})
	if err != nil {
		t.Fatal(err)
	}
	rcv := NewReceiver(feed, rc, seq, nil)
	const n = 5000
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		feedMessages(t, snd, 1, n, 9)
		endAndTick(t, snd, stop, &wg)
	}()
	run(t, rcv, 20*time.Second)
	close(stop)
	wg.Wait()
	close(stopSrv)
	<-srvDone
	r.expect(t, "m 1..5000", "eos 5001")
	c := seq.Counters()
	if c.Gaps != 0 || c.Recovered == 0 || snd.Counters().Dropped == 0 {
		t.Fatalf("%+v %+v", c, snd.Counters())
	}
	os.Stdout.WriteString("multicast-ok: group " + dst.String() + " on lo (index " + strconv.Itoa(lo.Index) + "): " +
		strconv.FormatUint(c.Messages, 10) + " messages, " + strconv.FormatUint(snd.Counters().Dropped, 10) +
		" packets dropped by the sender, " + strconv.FormatUint(c.Recovered, 10) + " messages recovered, " +
		strconv.FormatUint(c.Duplicates, 10) + " duplicates\n")
}
