package command

import (
	"bytes"
	"context"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// natsServer runs a real nats-server with JetStream in this process, on
// 127.0.0.1 and a free port; opts may set authentication.
func natsServer(t *testing.T, edit func(*server.Options)) *server.Server {
	t.Helper()
	o := &server.Options{Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: t.TempDir(), NoLog: true, NoSigs: true}
	if edit != nil {
		edit(o)
	}
	s, err := server.NewServer(o)
	if err != nil {
		t.Fatal(err)
	}
	go s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats-server did not start")
	}
	t.Cleanup(func() { s.Shutdown(); s.WaitForShutdown() })
	return s
}

// runCtx executes journalctl in-process with a context the test controls.
func runCtx(ctx context.Context, args ...string) (int, string, string) {
	var out, errb bytes.Buffer
	code := Run(&Env{Stdin: strings.NewReader(""), Stdout: &out, Stderr: &errb, Ctx: ctx}, args)
	return code, out.String(), errb.String()
}

type result struct {
	code     int
	out, err string
}

func goRun(ctx context.Context, args ...string) <-chan result {
	ch := make(chan result, 1)
	go func() {
		c, o, e := runCtx(ctx, args...)
		ch <- result{c, o, e}
	}()
	return ch
}

// ship and mirror through a real server: `journalctl dump` of origin and
// replica print the same bytes; ship exits 0 on its signal with a summary.
func TestShipMirrorDumpIdentical(t *testing.T) {
	s := natsServer(t, nil)
	origin, replica := t.TempDir(), t.TempDir()
	if code, out, errs := run(t, "gen", "--dir", origin, "--count", "30000", "--instruments", "5", "--segment-size", "256KiB", "--clock", "synthetic"); code != 0 {
		t.Fatalf("gen: %d %s %s", code, out, errs)
	}
	_, out, _ := run(t, "verify", "--dir", origin, "--json")
	last := regexp.MustCompile(`"last_seq": (\d+)`).FindStringSubmatch(out)
	if last == nil {
		t.Fatalf("verify: %s", out)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	shipped := goRun(ctx, "ship", "--dir", origin, "--nats", s.ClientURL(), "--stream", "DEMO", "--batch-bytes", "64KiB", "--quiet")
	code, out, errs := runCtx(context.Background(), "mirror", "--dir", replica, "--nats", s.ClientURL(), "--stream", "DEMO",
		"--segment-size", "256KiB", "--until-seq", last[1], "--quiet")
	if code != 0 || !strings.Contains(out, "last_seq="+last[1]) {
		t.Fatalf("mirror: %d %q %q", code, out, errs)
	}
	for _, format := range []string{"text", "json"} {
		_, a, _ := run(t, "dump", "--dir", origin, "--format", format)
		_, b, _ := run(t, "dump", "--dir", replica, "--format", format)
		if a != b || len(a) < 1000 {
			t.Fatalf("dump --format %s of origin (%d bytes) and replica (%d bytes) differ", format, len(a), len(b))
		}
	}
	if code, out, _ := run(t, "verify", "--dir", replica); code != 0 {
		t.Fatalf("verify replica: %d %s", code, out)
	}
	cancel()
	r := <-shipped
	if r.code != 0 || !strings.Contains(r.out, "acked_seq="+last[1]) {
		t.Fatalf("ship: %d %q %q", r.code, r.out, r.err)
	}
}

// A message deleted from the stream: the mirror exits 1 naming the seqs.
func TestMirrorGapExit1(t *testing.T) {
	s := natsServer(t, nil)
	origin := t.TempDir()
	run(t, "gen", "--dir", origin, "--count", "20000", "--instruments", "3", "--clock", "synthetic")
	ctx, cancel := context.WithCancel(context.Background())
	shipped := goRun(ctx, "ship", "--dir", origin, "--nats", s.ClientURL(), "--stream", "GAP", "--batch-bytes", "64KiB", "--quiet")
	nc, err := nats.Connect(s.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	var st jetstream.Stream
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		if st, err = js.Stream(context.Background(), "GAP"); err == nil {
			if info, err := st.Info(context.Background()); err == nil && info.State.Msgs > 0 {
				m, err := st.GetMsg(context.Background(), info.State.LastSeq)
				if err == nil && m.Header.Get("Mdj-Last") == "20000" {
					break
				}
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("the shipper did not ship 20000 frames in 20 s")
		}
	}
	cancel()
	<-shipped
	m, err := st.GetMsg(context.Background(), 5)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.DeleteMsg(context.Background(), 5); err != nil {
		t.Fatal(err)
	}
	want := "seqs " + m.Header.Get("Mdj-First") + ".." + m.Header.Get("Mdj-Last") + " (stream message 6)"
	code, out, errs := runCtx(context.Background(), "mirror", "--dir", t.TempDir(), "--nats", s.ClientURL(), "--stream", "GAP", "--quiet")
	if code != ExitData || !strings.Contains(errs, "gap") || !strings.Contains(errs, want) {
		t.Fatalf("mirror over a deleted message: exit %d, stderr %q (want %q), stdout %q", code, errs, want, out)
	}
	first, _ := strconv.Atoi(m.Header.Get("Mdj-First"))
	if !strings.Contains(out, "last_seq="+strconv.Itoa(first-1)+" ") {
		t.Fatalf("the replica should end right before the gap: %q", out)
	}
}

// Usage errors exit 2; a password in the URL is never printed.
func TestShipMirrorUsageAndSecrets(t *testing.T) {
	dir := t.TempDir()
	for _, args := range [][]string{
		{"ship", "--dir", dir, "--stream", "S"},
		{"ship", "--dir", dir, "--nats", "nats://127.0.0.1:1"},
		{"ship", "--dir", dir, "--nats", "nats://127.0.0.1:1", "--stream", "S", "--batch-bytes", "1KiB"},
		{"ship", "--dir", dir, "--nats", "nats://127.0.0.1:1", "--stream", "S", "--replicas", "7"},
		{"ship", "--dir", dir, "--nats", "nats://127.0.0.1:1", "--stream", "S", "--storage", "tape"},
		{"ship", "--dir", dir, "--nats", "nats://127.0.0.1:1", "--stream", "S", "--tls-cert", "c.pem"},
		{"mirror", "--dir", dir, "--stream", "S"},
		{"mirror", "--dir", dir, "--nats", "nats://127.0.0.1:1", "--stream", "S", "--durability", "often"},
		{"mirror", "--nats", "nats://127.0.0.1:1", "--stream", "S"},
	} {
		if code, _, errs := run(t, args...); code != ExitUsage || errs == "" {
			t.Errorf("%q: exit %d, want 2", args, code)
		}
	}
	s := natsServer(t, func(o *server.Options) { o.Username, o.Password = "md", "s3cr3t-pw" })
	url := strings.Replace(s.ClientURL(), "nats://", "nats://md:s3cr3t-pw@", 1)
	ctx, cancel := context.WithCancel(context.Background())
	res := goRun(ctx, "mirror", "--dir", t.TempDir(), "--nats", url, "--stream", "NONE")
	for deadline := time.Now().Add(10 * time.Second); s.NumClients() == 0; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the mirror did not connect")
		}
	}
	cancel() // connected (it prints where it mirrors from before it runs) and waiting for the stream
	r := <-res
	if strings.Contains(r.out+r.err, "s3cr3t") || !strings.Contains(r.err, "nats://127.0.0.1") {
		t.Fatalf("output %q %q: the password is shown or the server is not named", r.out, r.err)
	}
	if r.code != 0 {
		t.Fatalf("mirror stopped by its signal: exit %d (%s)", r.code, r.err)
	}
}
