package command

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"text/tabwriter"
	"time"

	hdr "github.com/HdrHistogram/hdrhistogram-go"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/spf13/pflag"

	"github.com/mdjournal/mdjournal/cmd/journalctl/internal/benchkit"
	"github.com/mdjournal/mdjournal/journal"
	"github.com/mdjournal/mdjournal/reader"
	"github.com/mdjournal/mdjournal/ship"
	"github.com/mdjournal/mdjournal/wait"
	"github.com/mdjournal/mdjournal/writer"
)

type benchShipOptions struct {
	natsURL     string
	server      string
	frames      int
	rounds      int
	batchBytes  string
	maxInFlight int
	storage     string
	samples     int
	gap         time.Duration
	wait        string
	json        bool
}

func (o *benchShipOptions) AddFlags(fs *pflag.FlagSet) {
	fs.StringVar(&o.natsURL, "nats", "", "a running nats-server with JetStream (default: start --server on 127.0.0.1)")
	fs.StringVar(&o.server, "server", "", "nats-server binary to start (default: nats-server beside journalctl, then in PATH; build it with go build -o bin/ github.com/nats-io/nats-server/v2)")
	fs.IntVar(&o.frames, "frames", 2_000_000, "frames per throughput round (64-byte payloads)")
	fs.IntVar(&o.rounds, "rounds", 3, "rounds; medians are reported")
	fs.StringVar(&o.batchBytes, "batch-bytes", "512KiB", "frame bytes per message (shipper and baseline)")
	fs.IntVar(&o.maxInFlight, "max-inflight", ship.DefaultMaxInFlight, "unacknowledged messages (shipper and baseline)")
	fs.StringVar(&o.storage, "storage", "file", "stream storage: file|memory")
	fs.IntVar(&o.samples, "samples", 20_000, "latency samples per round")
	fs.DurationVar(&o.gap, "gap", 200*time.Microsecond, "pause between latency samples")
	fs.StringVar(&o.wait, "wait", "futex", "how the shipper's and the replica's readers wait: spin|yield|backoff|futex")
	fs.BoolVar(&o.json, "json", false, "print JSON")
}

// benchShip measures origin → replica through JetStream on loopback:
// throughput of 64-byte-payload frames beside nats.go publishing the same
// bytes in the same message sizes and window to the same stream, and the
// latency from an append on the origin to the frame being readable on the
// replica (--linger 0) beside the same run's NATS request-reply round trip
// halved.
func benchShip(env *Env, args []string) error {
	var o benchShipOptions
	fs := flagSet(env, "bench ship", "[--nats URL | --server PATH] [--frames N] [--rounds R] [--batch-bytes SIZE] [--max-inflight N] [--storage file|memory] [--samples N] [--gap DUR] [--json]", o.AddFlags)
	if err := parse(fs, args); err != nil {
		return err
	}
	batch, err := parseSizeFlag("--batch-bytes", o.batchBytes)
	if err != nil {
		return err
	}
	storage, err := parseStorage(o.storage)
	if err != nil {
		return err
	}
	ws, err := wait.Parse(o.wait)
	if err != nil {
		return usagef("--wait: %v", err)
	}
	if o.frames < 10_000 || o.rounds < 1 || o.samples < 1000 || batch < 64<<10 || batch > 1000<<10 || o.maxInFlight < 1 || o.gap < 0 {
		return usagef("--frames ≥ 10000, --rounds ≥ 1, --samples ≥ 1000, --batch-bytes 64KiB..1000KiB, --max-inflight ≥ 1, --gap ≥ 0")
	}
	tmp, err := os.MkdirTemp("", "mdj-bench-ship-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	url := o.natsURL
	if url == "" {
		stop, u, err := startBenchServer(o.server, filepath.Join(tmp, "nats"))
		if err != nil {
			return err
		}
		defer stop()
		url = u
	}
	nc, err := nats.Connect(url)
	if err != nil {
		return fmt.Errorf("connecting to %s: %w", redactURLs(url), err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	ctx := env.Ctx
	const stream = "MDJBENCH"
	js.DeleteStream(ctx, stream)
	st, err := ship.EnsureStream(ctx, js, ship.StreamConfig{Name: stream, Storage: storage}, true)
	if err != nil {
		return err
	}
	defer js.DeleteStream(context.Background(), stream)
	b := &shipBench{env: env, o: o, js: js, nc: nc, st: st, stream: stream, tmp: tmp, batch: int(batch), wait: ws}
	var res []shipRound
	for r := 0; r < o.rounds; r++ {
		x, err := b.throughput(ctx, r)
		if err != nil {
			return err
		}
		res = append(res, x)
	}
	base, jl := benchkit.NewHistogram(), benchkit.NewHistogram()
	var p50s []float64
	for r := 0; r < o.rounds; r++ {
		hb, hj, err := b.latency(ctx, r)
		if err != nil {
			return err
		}
		base.Merge(hb)
		jl.Merge(hj)
		p50s = append(p50s, float64(hj.ValueAtQuantile(50))/float64(hb.ValueAtQuantile(50)))
	}
	return b.report(res, benchkit.Summarize("NATS request-reply RTT/2 (baseline)", base), benchkit.Summarize("append on origin → readable on replica", jl), median(p50s))
}

// startBenchServer starts a nats-server with JetStream on a free loopback
// port and returns how to stop it and its URL.
func startBenchServer(path, store string) (func(), string, error) {
	if path == "" {
		if self, err := selfCommand(); err == nil {
			if p := filepath.Join(filepath.Dir(self), "nats-server"); fileExists(p) {
				path = p
			}
		}
	}
	if path == "" {
		p, err := exec.LookPath("nats-server")
		if err != nil {
			return nil, "", usagef("no nats-server: give --nats URL or --server PATH (go build -o bin/ github.com/nats-io/nats-server/v2)")
		}
		path = p
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, "", err
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	cmd := exec.Command(path, "-js", "-a", "127.0.0.1", "-p", strconv.Itoa(port), "-sd", store)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, "", err
	}
	stop := func() { cmd.Process.Signal(syscall.SIGTERM); cmd.Wait() }
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if c, err := net.Dial("tcp", "127.0.0.1:"+strconv.Itoa(port)); err == nil {
			c.Close()
			return stop, "nats://127.0.0.1:" + strconv.Itoa(port), nil
		}
		if time.Now().After(deadline) {
			stop()
			return nil, "", errors.New("nats-server did not start within 20 s")
		}
	}
}

func fileExists(p string) bool { st, err := os.Stat(p); return err == nil && st.Mode().IsRegular() }

type shipBench struct {
	env    *Env
	o      benchShipOptions
	js     jetstream.JetStream
	nc     *nats.Conn
	st     jetstream.Stream
	stream string
	tmp    string
	batch  int
	wait   wait.Strategy
}

type shipRound struct {
	Baseline float64 `json:"baseline_frames_per_s"` // nats.go publishing the same messages
	Ship     float64 `json:"ship_frames_per_s"`     // origin → stream, acknowledged
	Mirror   float64 `json:"mirror_frames_per_s"`   // stream → replica
	EndToEnd float64 `json:"e2e_frames_per_s"`      // origin → replica, shipper and mirror together
}

// origin writes n frames with 64-byte raw payloads (96 bytes stored) and
// returns the journal's stored frames cut into messages as the shipper
// cuts them (whole frames, at most batch bytes).
func (b *shipBench) origin(dir string, n int) ([][]byte, error) {
	w, err := writer.Open(dir, writer.Options{})
	if err != nil {
		return nil, err
	}
	p := make([]byte, 64)
	for i := 1; i <= n; i++ {
		p[0], p[1], p[2] = byte(i), byte(i>>8), byte(i>>16)
		if _, err := w.Stage(journal.TypeRaw, 1, int64(i), p); err != nil {
			w.Close()
			return nil, err
		}
		if i%256 == 0 {
			if err := w.Publish(); err != nil {
				w.Close()
				return nil, err
			}
		}
	}
	if err := w.Close(); err != nil {
		return nil, err
	}
	r, err := reader.Open(dir, reader.Options{})
	if err != nil {
		return nil, err
	}
	defer r.Close()
	var msgs [][]byte
	cur := make([]byte, 0, b.batch)
	for {
		f, ok, err := r.TryNext()
		if err != nil {
			return nil, err
		}
		if !ok {
			break
		}
		if len(cur)+journal.StoredLen(&f) > b.batch {
			msgs = append(msgs, cur)
			cur = make([]byte, 0, b.batch)
		}
		n := len(cur)
		cur = cur[:n+journal.StoredLen(&f)]
		journal.PutStored(cur[n:], &f)
	}
	return append(msgs, cur), nil
}

func (b *shipBench) purge(ctx context.Context) error { return b.st.Purge(ctx) }

func (b *shipBench) throughput(ctx context.Context, round int) (shipRound, error) {
	var res shipRound
	dir := filepath.Join(b.tmp, fmt.Sprintf("origin-%d", round))
	defer os.RemoveAll(dir)
	msgs, err := b.origin(dir, b.o.frames)
	if err != nil {
		return res, err
	}
	n := float64(b.o.frames)
	subject := ship.DefaultSubject(b.stream)
	// Baseline: the same bytes, the same message sizes, the same window.
	if err := b.purge(ctx); err != nil {
		return res, err
	}
	start := time.Now()
	var window []jetstream.PubAckFuture
	for _, m := range msgs {
		if len(window) == b.o.maxInFlight {
			if err := awaitAck(ctx, window[0]); err != nil {
				return res, err
			}
			window = window[1:]
		}
		f, err := b.js.PublishMsgAsync(&nats.Msg{Subject: subject, Data: m})
		if err != nil {
			return res, err
		}
		window = append(window, f)
	}
	for _, f := range window {
		if err := awaitAck(ctx, f); err != nil {
			return res, err
		}
	}
	res.Baseline = n / time.Since(start).Seconds()

	// Ship only: origin → stream, until the last frame is acknowledged.
	if err := b.purge(ctx); err != nil {
		return res, err
	}
	last := uint64(b.o.frames)
	sh, err := ship.NewShipper(dir, b.js, ship.Options{Stream: b.stream, Name: "bench", BatchBytes: b.batch, MaxInFlight: b.o.maxInFlight, Wait: b.wait})
	if err != nil {
		return res, err
	}
	start = time.Now()
	if err := runUntil(ctx, sh.Run, func() bool { return sh.Stats().AckedSeq == last }); err != nil {
		return res, fmt.Errorf("ship: %w", err)
	}
	res.Ship = n / time.Since(start).Seconds()

	// Mirror only: the stream the shipper filled → a new replica.
	rep := filepath.Join(b.tmp, fmt.Sprintf("replica-%d", round))
	defer os.RemoveAll(rep)
	m, err := ship.NewMirror(rep, b.js, ship.MirrorOptions{Stream: b.stream, StopAt: last, Writer: writer.Options{}})
	if err != nil {
		return res, err
	}
	start = time.Now()
	if err := m.Run(ctx); err != nil {
		return res, fmt.Errorf("mirror: %w", err)
	}
	res.Mirror = n / time.Since(start).Seconds()

	// End to end: shipper and mirror together, from an empty stream.
	if err := b.purge(ctx); err != nil {
		return res, err
	}
	os.RemoveAll(rep)
	sh, _ = ship.NewShipper(dir, b.js, ship.Options{Stream: b.stream, Name: "bench-e2e", BatchBytes: b.batch, MaxInFlight: b.o.maxInFlight, Wait: b.wait})
	m, _ = ship.NewMirror(rep, b.js, ship.MirrorOptions{Stream: b.stream, StopAt: last, Writer: writer.Options{}})
	sctx, cancel := context.WithCancel(ctx)
	shipErr := make(chan error, 1)
	start = time.Now()
	go func() { shipErr <- sh.Run(sctx) }()
	err = m.Run(ctx)
	res.EndToEnd = n / time.Since(start).Seconds()
	cancel()
	if err2 := <-shipErr; err == nil {
		err = err2
	}
	if err != nil {
		return res, fmt.Errorf("end to end: %w", err)
	}
	return res, nil
}

func awaitAck(ctx context.Context, f jetstream.PubAckFuture) error {
	select {
	case <-f.Ok():
		return nil
	case err := <-f.Err():
		return err
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(30 * time.Second):
		return errors.New("no acknowledgement within 30 s")
	}
}

// runUntil runs fn until done holds (polled every 100 µs), then cancels it.
func runUntil(ctx context.Context, fn func(context.Context) error, done func() bool) error {
	c, cancel := context.WithCancel(ctx)
	ch := make(chan error, 1)
	go func() { ch <- fn(c) }()
	for !done() {
		select {
		case err := <-ch:
			cancel()
			if err == nil {
				err = errors.New("stopped early")
			}
			return err
		case <-ctx.Done():
			cancel()
			return ctx.Err()
		case <-time.After(100 * time.Microsecond):
		}
	}
	cancel()
	return <-ch
}

// latency measures, with --linger 0, append on the origin → frame readable
// on the replica (the frame's timestamp is its append time; the replica's
// reader runs in this process, on the same clock), and the same run's NATS
// request-reply round trip halved.
func (b *shipBench) latency(ctx context.Context, round int) (*hdr.Histogram, *hdr.Histogram, error) {
	hb, hj := benchkit.NewHistogram(), benchkit.NewHistogram()
	warm := b.o.samples / 10
	// Baseline: request-reply with a 96-byte body (a stored frame's size).
	sub, err := b.nc.Subscribe("mdjbench.echo", func(m *nats.Msg) { m.Respond(m.Data) })
	if err != nil {
		return nil, nil, err
	}
	body := make([]byte, 96)
	for i := 0; i < warm+b.o.samples; i++ {
		t0 := time.Now()
		if _, err := b.nc.Request("mdjbench.echo", body, 5*time.Second); err != nil {
			sub.Unsubscribe()
			return nil, nil, err
		}
		if i >= warm {
			hb.RecordValue(max(1, time.Since(t0).Nanoseconds()/2))
		}
		pause(b.o.gap)
	}
	sub.Unsubscribe()

	if err := b.purge(ctx); err != nil {
		return nil, nil, err
	}
	dir := filepath.Join(b.tmp, fmt.Sprintf("lat-origin-%d", round))
	rep := filepath.Join(b.tmp, fmt.Sprintf("lat-replica-%d", round))
	defer os.RemoveAll(dir)
	defer os.RemoveAll(rep)
	w, err := writer.Open(dir, writer.Options{})
	if err != nil {
		return nil, nil, err
	}
	defer w.Close()
	if err := w.Prefault(); err != nil {
		return nil, nil, err
	}
	p := make([]byte, 64)
	if _, err := w.Append(journal.TypeRaw, 1, time.Now().UnixNano(), p); err != nil { // seq 1 creates the replica
		return nil, nil, err
	}
	c, cancel := context.WithCancel(ctx)
	defer cancel()
	sh, _ := ship.NewShipper(dir, b.js, ship.Options{Stream: b.stream, Name: "lat", BatchBytes: b.batch, MaxInFlight: b.o.maxInFlight, Wait: b.wait})
	m, _ := ship.NewMirror(rep, b.js, ship.MirrorOptions{Stream: b.stream})
	errs := make(chan error, 2)
	go func() { errs <- sh.Run(c) }()
	go func() { errs <- m.Run(c) }()
	var r *reader.Reader
	for deadline := time.Now().Add(30 * time.Second); r == nil; time.Sleep(time.Millisecond) {
		if r, err = reader.Open(rep, reader.Options{Wait: b.wait}); err != nil && time.Now().After(deadline) {
			return nil, nil, fmt.Errorf("replica: %w", err)
		}
	}
	defer r.Close()
	if _, err := r.NextContext(c); err != nil {
		return nil, nil, err
	}
	got := make(chan error, 1)
	go func() {
		for i := 0; i < warm+b.o.samples; i++ {
			f, err := r.NextContext(c)
			if err != nil {
				got <- err
				return
			}
			if i >= warm {
				hj.RecordValue(max(1, time.Now().UnixNano()-f.TS))
			}
		}
		got <- nil
	}()
	for i := 0; i < warm+b.o.samples; i++ {
		if _, err := w.Append(journal.TypeRaw, 1, time.Now().UnixNano(), p); err != nil {
			return nil, nil, err
		}
		pause(b.o.gap)
	}
	select {
	case err := <-got:
		if err != nil {
			return nil, nil, err
		}
	case err := <-errs:
		return nil, nil, fmt.Errorf("shipper or mirror stopped: %v", err)
	case <-time.After(60 * time.Second):
		return nil, nil, errors.New("the replica did not receive every sample within 60 s")
	}
	cancel()
	<-errs
	<-errs
	return hb, hj, nil
}

// pause paces the samples (it synchronises nothing).
func pause(d time.Duration) {
	if d > 0 {
		time.Sleep(d)
	}
}

func (b *shipBench) report(res []shipRound, base, jl benchkit.Latency, p50ratio float64) error {
	pick := func(f func(shipRound) float64) float64 {
		var v []float64
		for _, r := range res {
			v = append(v, f(r))
		}
		return median(v)
	}
	var ratios [3][]float64
	for _, r := range res {
		ratios[0] = append(ratios[0], r.Ship/r.Baseline)
		ratios[1] = append(ratios[1], r.Mirror/r.Baseline)
		ratios[2] = append(ratios[2], r.EndToEnd/r.Baseline)
	}
	baseM := pick(func(r shipRound) float64 { return r.Baseline })
	if b.o.json {
		return json.NewEncoder(b.env.Stdout).Encode(map[string]any{"rounds": res, "frames": b.o.frames, "batch_bytes": b.batch,
			"max_inflight": b.o.maxInFlight, "storage": b.o.storage, "baseline_median": baseM,
			"ship_ratio_median": median(ratios[0]), "mirror_ratio_median": median(ratios[1]), "e2e_ratio_median": median(ratios[2]),
			"latency_baseline": base, "latency": jl, "latency_p50_ratio_median": p50ratio})
	}
	tw := tabwriter.NewWriter(b.env.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "throughput, 64 B payloads (96 B frames), %d frames × %d rounds, %d B messages, %d in flight, %s storage\tframes/s (median)\tvs baseline (median of rounds)\t\n",
		b.o.frames, b.o.rounds, b.batch, b.o.maxInFlight, b.o.storage)
	fmt.Fprintf(tw, "nats.go publish of the same messages (baseline)\t%.0f\t1.00x\t\n", baseM)
	fmt.Fprintf(tw, "ship: origin → stream, acknowledged\t%.0f\t%.2fx\t\n", pick(func(r shipRound) float64 { return r.Ship }), median(ratios[0]))
	fmt.Fprintf(tw, "mirror: stream → replica\t%.0f\t%.2fx\t\n", pick(func(r shipRound) float64 { return r.Mirror }), median(ratios[1]))
	fmt.Fprintf(tw, "origin → replica (ship and mirror together)\t%.0f\t%.2fx\t\n", pick(func(r shipRound) float64 { return r.EndToEnd }), median(ratios[2]))
	tw.Flush()
	fmt.Fprintln(b.env.Stdout)
	tw = tabwriter.NewWriter(b.env.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "latency, --linger 0, %d×%d samples, %v apart\tp50\tp99\tp99.9\tmax\tp50 vs baseline\t\n", b.o.rounds, b.o.samples, b.o.gap)
	for _, l := range []benchkit.Latency{base, jl} {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t\n", l.Name, ns(l.P50), ns(l.P99), ns(l.P999), ns(l.Max), benchkit.Ratio(l.P50, base.P50))
	}
	tw.Flush()
	fmt.Fprintf(b.env.Stdout, "median over rounds of the per-round p50 ratio replica/baseline: %.2fx\n", p50ratio)
	return nil
}
