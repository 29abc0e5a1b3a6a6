package nats_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/mdjournal/mdjournal/internal/testutil"
	"github.com/mdjournal/mdjournal/journal"
	"github.com/mdjournal/mdjournal/reader"
	"github.com/mdjournal/mdjournal/writer"
)

var bin struct {
	once               sync.Once
	server, journalctl string
	err                error
}

// binaries builds nats-server (the go.mod tool) and journalctl once per
// test binary run.
func binaries(t *testing.T) (string, string) {
	t.Helper()
	bin.once.Do(func() {
		dir, err := os.MkdirTemp("", "mdj-nats-bin-")
		if err != nil {
			bin.err = err
			return
		}
		root := testutil.RepoRoot(t)
		bin.server, bin.journalctl = filepath.Join(dir, "nats-server"), filepath.Join(dir, "journalctl")
		for _, b := range [][2]string{{bin.server, "github.com/nats-io/nats-server/v2"}, {bin.journalctl, "./cmd/journalctl"}} {
			cmd := exec.Command("go", "build", "-o", b[0], b[1])
			cmd.Dir = root
			if out, err := cmd.CombinedOutput(); err != nil {
				bin.err = fmt.Errorf("go build %s: %v\n%s", b[1], err, out)
				return
			}
		}
	})
	if bin.err != nil {
		t.Fatal(bin.err)
	}
	return bin.server, bin.journalctl
}

func rounds(t *testing.T) int {
	if s := os.Getenv("MDJ_NATS_ROUNDS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			t.Fatalf("MDJ_NATS_ROUNDS=%q", s)
		}
		return n
	}
	if testing.Short() {
		return 6 // the -race pass: the full 20 run in the plain pass
	}
	return 20
}

// freePort returns a loopback port nobody listens on now.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// proc is a child process: its stderr goes to a file shown on failure.
type proc struct {
	cmd  *exec.Cmd
	name string
	errf string
	done chan struct{}
}

func start(t *testing.T, name string, path string, args ...string) *proc {
	t.Helper()
	p := &proc{name: name, errf: filepath.Join(t.TempDir(), "stderr"), done: make(chan struct{})}
	f, err := os.Create(p.errf)
	if err != nil {
		t.Fatal(err)
	}
	p.cmd = exec.Command(path, args...)
	p.cmd.Stderr, p.cmd.Stdout = f, f
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.cmd.Wait(); f.Close(); close(p.done) }()
	t.Cleanup(func() { p.cmd.Process.Kill(); <-p.done })
	return p
}

func (p *proc) stderr() string { b, _ := os.ReadFile(p.errf); return string(b) }

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// kill9 kills p with SIGKILL; it must not have exited before.
func (p *proc) kill9(t *testing.T) {
	t.Helper()
	if p.exited() {
		t.Fatalf("%s exited on its own (%v):\n%s", p.name, p.cmd.ProcessState, p.stderr())
	}
	p.cmd.Process.Kill()
	<-p.done
}

// wait waits (bounded) for p to exit and returns its exit code.
func (p *proc) wait(t *testing.T, d time.Duration) int {
	t.Helper()
	select {
	case <-p.done:
		return p.cmd.ProcessState.ExitCode()
	case <-time.After(d):
		t.Fatalf("%s did not exit within %v:\n%s", p.name, d, p.stderr())
		return -1
	}
}

// server starts one nats-server with JetStream on 127.0.0.1.
func server(t *testing.T, path, store string, port int, extra ...string) *proc {
	t.Helper()
	args := append([]string{"-js", "-a", "127.0.0.1", "-p", strconv.Itoa(port), "-sd", store}, extra...)
	p := start(t, "nats-server", path, args...)
	waitFor(t, 20*time.Second, "nats-server on port "+strconv.Itoa(port), func() bool {
		c, err := net.Dial("tcp", "127.0.0.1:"+strconv.Itoa(port))
		if err == nil {
			c.Close()
		}
		return err == nil
	})
	return p
}

func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(d); !cond(); time.Sleep(2 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
	}
}

// appender writes frames to the origin (paced at a few hundred thousand a
// second: the pause paces load, it synchronises nothing) until stopped.
type appender struct {
	w    *writer.Writer
	stop chan struct{}
	done chan error
	n    atomic.Uint64
}

func startAppender(t *testing.T, dir string) *appender {
	t.Helper()
	w, err := writer.Open(dir, writer.Options{SegmentSize: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	a := &appender{w: w, stop: make(chan struct{}), done: make(chan error, 1)}
	go func() {
		var d journal.InstrumentDef
		d.SetSymbol("KILL")
		d.PriceScale, d.TickSize = 4, 1
		if _, err := w.Append(journal.TypeInstrumentDef, 1, 1, d.Encode(make([]byte, 32))); err != nil {
			a.done <- err
			return
		}
		p := make([]byte, 200)
		for i := uint64(1); ; i++ {
			select {
			case <-a.stop:
				a.done <- w.Close()
				return
			default:
			}
			seq := w.LastSeq() + 1
			n := 1 + int(seq*31%190)
			for k := range p[:n] {
				p[k] = byte(seq + uint64(k))
			}
			if _, err := w.StageSource(journal.TypeRaw, 1, time.Now().UnixNano(), p[:n], int64(seq), seq); err != nil {
				a.done <- err
				return
			}
			if i%50 == 0 {
				if err := w.Publish(); err != nil {
					a.done <- err
					return
				}
				a.n.Store(w.LastSeq())
				time.Sleep(100 * time.Microsecond)
			}
		}
	}()
	return a
}

// finish stops the appender and returns the origin's last seq.
func (a *appender) finish(t *testing.T) uint64 {
	t.Helper()
	close(a.stop)
	if err := <-a.done; err != nil {
		t.Fatal(err)
	}
	return a.w.LastSeq()
}

// campaign is one origin shipped through servers at urls and mirrored.
type campaign struct {
	t                        *testing.T
	journalctl               string
	urls, stream             string
	origin, replica          string
	shipArgs                 []string
	shipper, mirror          *proc
	shipperKills, mirrorKill int
}

func (c *campaign) startShipper() {
	args := append([]string{"ship", "--dir", c.origin, "--nats", c.urls, "--stream", c.stream, "--batch-bytes", "64KiB", "--max-inflight", "4", "--ack-timeout", "2s"}, c.shipArgs...)
	c.shipper = start(c.t, "journalctl ship", c.journalctl, args...)
}

func (c *campaign) startMirror(extra ...string) {
	args := append([]string{"mirror", "--dir", c.replica, "--nats", c.urls, "--stream", c.stream, "--segment-size", "1MiB"}, extra...)
	c.mirror = start(c.t, "journalctl mirror", c.journalctl, args...)
}

// killRounds kills the shipper or the mirror (at random) with SIGKILL at a
// random moment in the next 60 ms (the sleep picks the moment; it
// synchronises nothing) and restarts it, n times.
func (c *campaign) killRounds(n int, rng *rand.Rand, between func(i int)) {
	for i := 0; i < n; i++ {
		time.Sleep(time.Duration(rng.IntN(60)) * time.Millisecond)
		if rng.IntN(2) == 0 {
			c.shipper.kill9(c.t)
			c.shipperKills++
			c.startShipper()
		} else {
			c.mirror.kill9(c.t)
			c.mirrorKill++
			c.startMirror()
		}
		if between != nil {
			between(i)
		}
	}
}

// settle lets the shipper and a final mirror reach last, stops them, and
// checks: the replica equals the origin byte for byte (dump and stored
// frames), the stream's messages tile 1..last without gap or repeat.
func (c *campaign) settle(last uint64) {
	t := c.t
	t.Helper()
	c.mirror.kill9(t)
	c.startMirror("--until-seq", strconv.FormatUint(last, 10))
	if code := c.mirror.wait(t, 120*time.Second); code != 0 {
		t.Fatalf("final mirror: exit %d\n%s", code, c.mirror.stderr())
	}
	if c.shipper.exited() {
		t.Fatalf("the shipper exited:\n%s", c.shipper.stderr())
	}
	c.shipper.cmd.Process.Signal(syscall.SIGTERM)
	if code := c.shipper.wait(t, 30*time.Second); code != 0 {
		t.Fatalf("shipper: exit %d on SIGTERM\n%s", code, c.shipper.stderr())
	}
	dump := func(dir string) string {
		out, err := exec.Command(c.journalctl, "dump", "--dir", dir, "--format", "json").Output()
		if err != nil {
			t.Fatalf("dump %s: %v", dir, err)
		}
		return string(out)
	}
	a, b := dump(c.origin), dump(c.replica)
	if a != b || strings.Count(a, "\n") != int(last) {
		t.Fatalf("dump of origin (%d lines) and replica (%d lines) differ (origin last seq %d)", strings.Count(a, "\n"), strings.Count(b, "\n"), last)
	}
	sameFrames(t, c.origin, c.replica)
	nc, err := nats.Connect(c.urls)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	st, err := js.Stream(context.Background(), c.stream)
	if err != nil {
		t.Fatal(err)
	}
	tiles(t, st, last)
	t.Logf("%d frames; shipper killed %d times, mirror %d times", last, c.shipperKills, c.mirrorKill)
}

// sameFrames compares every frame as stored (header, payload, trailer,
// padding, CRC).
func sameFrames(t *testing.T, a, b string) {
	t.Helper()
	ra, err := reader.Open(a, reader.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer ra.Close()
	rb, err := reader.Open(b, reader.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer rb.Close()
	ba, bb := make([]byte, journal.MaxFrameSize), make([]byte, journal.MaxFrameSize)
	for n := 0; ; n++ {
		fa, oka, erra := ra.TryNext()
		fb, okb, errb := rb.TryNext()
		if erra != nil || errb != nil || oka != okb {
			t.Fatalf("frame %d: origin %v %v, replica %v %v", n, oka, erra, okb, errb)
		}
		if !oka {
			return
		}
		if !bytes.Equal(ba[:journal.PutStored(ba, &fa)], bb[:journal.PutStored(bb, &fb)]) {
			t.Fatalf("seq %d differs between origin and replica", fa.Seq)
		}
	}
}

// tiles reads every message straight from the server and checks that the
// frames' seqs run 1..last, each exactly once.
func tiles(t *testing.T, st jetstream.Stream, last uint64) {
	t.Helper()
	ctx := context.Background()
	info, err := st.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	next := uint64(1)
	for s := info.State.FirstSeq; s <= info.State.LastSeq; s++ {
		m, err := st.GetMsg(ctx, s)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			t.Fatalf("stream message %d is missing", s)
		}
		if err != nil {
			t.Fatal(err)
		}
		for off := 0; off < len(m.Data); {
			if seq := binary.LittleEndian.Uint64(m.Data[off+8:]); seq != next {
				t.Fatalf("stream message %d holds seq %d where %d was due (a duplicate or a gap)", s, seq, next)
			}
			next++
			off += (int(binary.LittleEndian.Uint32(m.Data[off+4:])) + 7) &^ 7
		}
	}
	if next-1 != last {
		t.Fatalf("the stream holds seqs 1..%d, the origin 1..%d", next-1, last)
	}
}

// Shipper and mirror processes killed with SIGKILL at random moments while
// the origin is written: the replica ends equal to the origin byte for
// byte, and the stream holds every seq exactly once.
func TestKillShipperAndMirror(t *testing.T) {
	srvPath, jc := binaries(t)
	port := freePort(t)
	server(t, srvPath, t.TempDir(), port)
	c := &campaign{t: t, journalctl: jc, urls: "nats://127.0.0.1:" + strconv.Itoa(port), stream: "KILL",
		origin: t.TempDir(), replica: t.TempDir()}
	app := startAppender(t, c.origin)
	waitFor(t, 10*time.Second, "the first frames", func() bool { return app.n.Load() > 0 })
	c.startShipper()
	c.startMirror()
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 16))
	c.killRounds(rounds(t), rng, nil)
	c.settle(app.finish(t))
}

// A three-node JetStream cluster on loopback holds the stream with three
// replicas; one node (the stream's leader, then a random one) is killed
// with SIGKILL mid-stream and restarted, while shipper and mirror are also
// killed: same result.
func TestClusterNodeKilled(t *testing.T) {
	if testing.Short() {
		t.Skip("-short (the -race pass): the cluster campaign runs in the plain pass and in make nats")
	}
	srvPath, jc := binaries(t)
	const n = 3
	ports, cports := make([]int, n), make([]int, n)
	for i := range ports {
		ports[i], cports[i] = freePort(t), freePort(t)
	}
	var routes []string
	for _, p := range cports {
		routes = append(routes, "nats://127.0.0.1:"+strconv.Itoa(p))
	}
	stores := make([]string, n)
	nodes := make([]*proc, n)
	startNode := func(i int) {
		nodes[i] = server(t, srvPath, stores[i], ports[i], "--cluster_name", "mdj", "--name", "n"+strconv.Itoa(i),
			"--cluster", "nats://127.0.0.1:"+strconv.Itoa(cports[i]), "--routes", strings.Join(routes, ","))
	}
	for i := range nodes {
		stores[i] = t.TempDir()
		startNode(i)
	}
	var urls []string
	for _, p := range ports {
		urls = append(urls, "nats://127.0.0.1:"+strconv.Itoa(p))
	}
	c := &campaign{t: t, journalctl: jc, urls: strings.Join(urls, ","), stream: "R3", origin: t.TempDir(), replica: t.TempDir(),
		shipArgs: []string{"--replicas", "3"}}
	app := startAppender(t, c.origin)
	waitFor(t, 10*time.Second, "the first frames", func() bool { return app.n.Load() > 0 })
	c.startShipper()
	c.startMirror()
	nc, err := nats.Connect(c.urls, nats.MaxReconnects(-1))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	var st jetstream.Stream
	waitFor(t, 60*time.Second, "the R3 stream with acknowledged messages", func() bool {
		if c.shipper.exited() {
			t.Fatalf("shipper exited:\n%s", c.shipper.stderr())
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		if st, err = js.Stream(ctx, "R3"); err != nil {
			return false
		}
		info, err := st.Info(ctx)
		return err == nil && info.State.Msgs > 20 && info.Cluster != nil && info.Cluster.Leader != ""
	})
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 3))
	victim := func(i int) int {
		if i > 0 {
			return rng.IntN(n)
		}
		leader := st.CachedInfo().Cluster.Leader // the stream's leader first
		for k := range nodes {
			if leader == "n"+strconv.Itoa(k) {
				return k
			}
		}
		return 0
	}
	nodeKills := max(2, rounds(t)/10)
	c.killRounds(rounds(t)/2, rng, nil)
	for i := 0; i < nodeKills; i++ {
		k := victim(i)
		time.Sleep(time.Duration(rng.IntN(100)) * time.Millisecond) // a random moment mid-stream
		nodes[k].kill9(t)
		c.killRounds(2, rng, nil) // the cluster runs on two nodes meanwhile
		startNode(k)
		waitFor(t, 60*time.Second, "the restarted node to be current", func() bool {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			defer cancel()
			info, err := st.Info(ctx)
			if err != nil || info.Cluster == nil {
				return false
			}
			cur := 0
			for _, r := range info.Cluster.Replicas {
				if r.Current {
					cur++
				}
			}
			return cur == n-1 && info.Cluster.Leader != ""
		})
	}
	c.settle(app.finish(t))
}

// A stream whose messages were deleted or altered behind the mirror's back:
// the mirror process reports the exact seq range and exits 1.
func TestMirrorProcessStopsOnAlteredStream(t *testing.T) {
	srvPath, jc := binaries(t)
	port := freePort(t)
	server(t, srvPath, t.TempDir(), port)
	url := "nats://127.0.0.1:" + strconv.Itoa(port)
	origin := t.TempDir()
	app := startAppender(t, origin)
	waitFor(t, 10*time.Second, "frames", func() bool { return app.n.Load() > 20000 })
	last := app.finish(t)
	c := &campaign{t: t, journalctl: jc, urls: url, stream: "ALTER", origin: origin, replica: t.TempDir()}
	c.startShipper()
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	ctx := context.Background()
	var st jetstream.Stream
	waitFor(t, 30*time.Second, "everything shipped", func() bool {
		if st, err = js.Stream(ctx, "ALTER"); err != nil {
			return false
		}
		info, err := st.Info(ctx)
		if err != nil || info.State.Msgs == 0 {
			return false
		}
		m, err := st.GetMsg(ctx, info.State.LastSeq)
		return err == nil && m.Header.Get("Mdj-Last") == strconv.FormatUint(last, 10)
	})
	c.shipper.cmd.Process.Signal(syscall.SIGTERM)
	c.shipper.wait(t, 30*time.Second)
	info, _ := st.Info(ctx)
	msgs := info.State.LastSeq

	// Deleted: message 3.
	m3, _ := st.GetMsg(ctx, 3)
	if err := st.DeleteMsg(ctx, 3); err != nil {
		t.Fatal(err)
	}
	c.startMirror()
	if code := c.mirror.wait(t, 60*time.Second); code != 1 {
		t.Fatalf("mirror over a deleted message: exit %d\n%s", code, c.mirror.stderr())
	}
	want := fmt.Sprintf("gap in the shipped sequence numbers: seqs %s..%s (stream message 4)", m3.Header.Get("Mdj-First"), m3.Header.Get("Mdj-Last"))
	if !strings.Contains(c.mirror.stderr(), want) {
		t.Fatalf("mirror stderr does not name the range (%q):\n%s", want, c.mirror.stderr())
	}

	// Altered: message 3 put back with one bit flipped in a frame, at the
	// end; the original of the last message deleted so it comes right after.
	mLast, _ := st.GetMsg(ctx, msgs)
	h := nats.Header{}
	for k, v := range mLast.Header {
		if !strings.HasPrefix(k, "Nats-Expected") {
			h[k] = v
		}
	}
	h.Set("Nats-Msg-Id", "altered")
	data := append([]byte(nil), mLast.Data...)
	data[len(data)/2] ^= 0x04
	if err := st.DeleteMsg(ctx, msgs); err != nil {
		t.Fatal(err)
	}
	if _, err := js.PublishMsg(ctx, &nats.Msg{Subject: "mdjournal.ALTER", Header: h, Data: data}); err != nil {
		t.Fatal(err)
	}
	// A replica that already holds everything up to the altered message.
	c.replica = t.TempDir()
	rw, err := writer.Open(c.replica, writer.Options{NoRestate: true, JournalID: journalIDOf(t, origin)})
	if err != nil {
		t.Fatal(err)
	}
	first, _ := strconv.ParseUint(mLast.Header.Get("Mdj-First"), 10, 64)
	r, _ := reader.Open(origin, reader.Options{})
	for {
		f, ok, err := r.TryNext()
		if err != nil || !ok || f.Seq >= first {
			break
		}
		if err := rw.Copy(&f); err != nil {
			t.Fatal(err)
		}
	}
	r.Close()
	rw.Close()
	c.startMirror()
	if code := c.mirror.wait(t, 60*time.Second); code != 1 {
		t.Fatalf("mirror over an altered message: exit %d\n%s", code, c.mirror.stderr())
	}
	want = fmt.Sprintf("damaged message: seqs %s..%s (stream message %d)", mLast.Header.Get("Mdj-First"), mLast.Header.Get("Mdj-Last"), msgs+1)
	if !strings.Contains(c.mirror.stderr(), want) || !strings.Contains(c.mirror.stderr(), "fails its CRC") {
		t.Fatalf("mirror stderr does not name the range (%q):\n%s", want, c.mirror.stderr())
	}
}

func journalIDOf(t *testing.T, dir string) uint64 {
	t.Helper()
	b := testutil.ReadFileAt(t, journal.SegmentPath(dir, 1), 16, 8)
	return binary.LittleEndian.Uint64(b)
}
