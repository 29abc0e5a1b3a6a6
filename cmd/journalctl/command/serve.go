package command

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/spf13/pflag"

	"github.com/mdjournal/mdjournal/ops/inspect"
	"github.com/mdjournal/mdjournal/stats"
)

type serveOptions struct {
	metrics string
	dirs    []string
	stats   string
}

func (o *serveOptions) AddFlags(fs *pflag.FlagSet) {
	fs.StringVar(&o.metrics, "metrics", "", "address to serve Prometheus metrics on, e.g. 127.0.0.1:9464 (:0 picks a port; the first line printed says which)")
	fs.StringArrayVar(&o.dirs, "dir", nil, "a journal directory (repeat for several)")
	fs.StringVar(&o.stats, "stats", "", "directory of pipeline stages' stats files (journalctl top's --stats)")
}

// runServe exports the journals' state and the stages' counters and
// latency histograms for Prometheus at /metrics. Each scrape reads them
// afresh (inspect.Stat reads headers and indexes only; stats files are
// mapped), so the endpoint keeps no state of its own.
func runServe(env *Env, args []string) error {
	var o serveOptions
	fs := flagSet(env, "serve", "--metrics ADDR --dir D [--dir D2 ...] [--stats DIR]", o.AddFlags)
	if err := parse(fs, args); err != nil {
		return err
	}
	if err := noArgs(fs); err != nil {
		return err
	}
	if o.metrics == "" {
		return usagef("--metrics ADDR is required")
	}
	if len(o.dirs) == 0 && o.stats == "" {
		return usagef("give at least one --dir or --stats")
	}
	if _, _, err := net.SplitHostPort(o.metrics); err != nil {
		return usagef("--metrics %q: want HOST:PORT (%v)", o.metrics, err)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(&collector{dirs: o.dirs, stats: o.stats})
	ln, err := net.Listen("tcp", o.metrics)
	if err != nil {
		return err
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError}))
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	fmt.Fprintf(env.Stdout, "serving metrics on http://%s/metrics\n", ln.Addr())
	if f, ok := env.Stdout.(interface{ Sync() error }); ok {
		f.Sync()
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	select {
	case err := <-done:
		return err
	case <-env.Ctx.Done():
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
		if err := <-done; err != nil && !errors.Is(err, http.ErrServerClosed) {
			return err
		}
		return nil
	}
}

// collector reads journals and stats files at every scrape.
type collector struct {
	dirs  []string
	stats string
}

var (
	descUp         = prometheus.NewDesc("mdjournal_journal_up", "1 if the journal could be read at this scrape.", []string{"journal"}, nil)
	descLastSeq    = prometheus.NewDesc("mdjournal_last_seq", "Sequence number of the journal's last published frame.", []string{"journal"}, nil)
	descDurableSeq = prometheus.NewDesc("mdjournal_durable_seq", "Last sequence number known to be on stable storage.", []string{"journal"}, nil)
	descLogBytes   = prometheus.NewDesc("mdjournal_log_bytes", "Bytes of frames in the journal's segments.", []string{"journal"}, nil)
	descDiskBytes  = prometheus.NewDesc("mdjournal_disk_bytes", "Disk space allocated to the journal directory.", []string{"journal"}, nil)
	descSegments   = prometheus.NewDesc("mdjournal_segments", "Segment files by kind: raw, compressed, prepared.", []string{"journal", "kind"}, nil)
	descWriter     = prometheus.NewDesc("mdjournal_writer_up", "1 if a writer holds the journal's lock.", []string{"journal"}, nil)
	descRate       = prometheus.NewDesc("mdjournal_frames_per_second", "Frames per second over the last minute of event time.", []string{"journal"}, nil)
	descLagFrames  = prometheus.NewDesc("mdjournal_reader_lag_frames", "Frames a named reader is behind the journal's last frame.", []string{"journal", "reader"}, nil)
	descLagSeconds = prometheus.NewDesc("mdjournal_reader_lag_seconds", "Event time a named reader is behind the journal's last frame.", []string{"journal", "reader"}, nil)
	descStageUp    = prometheus.NewDesc("mdjournal_stage_up", "1 if the stage's process is alive (it beat within a second).", []string{"stage"}, nil)
	descStageValue = prometheus.NewDesc("mdjournal_stage_value", "A stage's counter or gauge, by name.", []string{"stage", "name"}, nil)
	descStageHist  = prometheus.NewDesc("mdjournal_stage_latency_seconds", "A stage's latency histogram, by name.", []string{"stage", "name"}, nil)
)

// Describe sends the descriptors (the collector is checked by the registry).
func (c *collector) Describe(ch chan<- *prometheus.Desc) { prometheus.DescribeByCollect(c, ch) }

// Collect reads every journal and stats file.
func (c *collector) Collect(ch chan<- prometheus.Metric) {
	g := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	for _, dir := range c.dirs {
		s, err := inspect.Stat(dir)
		if err != nil {
			g(descUp, 0, dir)
			continue
		}
		g(descUp, 1, dir)
		g(descLastSeq, float64(s.LastSeq), dir)
		g(descDurableSeq, float64(s.DurableSeq), dir)
		g(descLogBytes, float64(s.LogBytes), dir)
		g(descDiskBytes, float64(s.DiskAllocated), dir)
		g(descSegments, float64(s.SegmentsRaw), dir, "raw")
		g(descSegments, float64(s.SegmentsZst), dir, "compressed")
		g(descSegments, float64(s.SegmentsPrep), dir, "prepared")
		g(descWriter, b2f(s.WriterLive), dir)
		g(descRate, s.FramesPerSec, dir)
		for _, r := range s.Readers {
			if r.Name == "?" {
				continue
			}
			g(descLagFrames, float64(r.LagFrames), dir, r.Name)
			g(descLagSeconds, r.LagUS/1e6, dir, r.Name)
		}
	}
	if c.stats == "" {
		return
	}
	paths, err := stats.List(c.stats)
	if err != nil {
		return
	}
	now := time.Now()
	for _, p := range paths {
		s, err := stats.Read(p)
		if err != nil {
			continue
		}
		g(descStageUp, b2f(s.Alive(now)), s.Stage)
		for _, cv := range s.Counters {
			g(descStageValue, float64(cv.Value), s.Stage, cv.Label)
		}
		for i := range s.Histograms {
			h := &s.Histograms[i]
			buckets, count, sum := promBuckets(h)
			ch <- prometheus.MustNewConstHistogram(descStageHist, count, sum, buckets, s.Stage, h.Label)
		}
	}
}

// promBounds are the histogram's bucket upper bounds in ns: powers of two
// from 64 ns to 2^34 ns (17 s). Each is an edge of stats' log-linear
// buckets, so a cumulative count is exact for the values below the bound
// (a value equal to it, 1 ns on, falls in the next).
var promBounds = func() []uint64 {
	var b []uint64
	for v := uint64(64); v <= 1<<34; v <<= 1 {
		b = append(b, v)
	}
	return b
}()

// promBuckets turns a stats histogram into Prometheus's cumulative buckets
// (le in seconds), its count and an estimated sum (each bucket's midpoint).
func promBuckets(h *stats.HistogramValue) (map[float64]uint64, uint64, float64) {
	out := make(map[float64]uint64, len(promBounds))
	var count uint64
	var sum float64
	for i, c := range h.Buckets {
		if c == 0 {
			continue
		}
		lo, hi := stats.BucketBounds(i)
		count += c
		sum += float64(c) * (float64(lo) + float64(hi)) / 2 / 1e9
	}
	for _, le := range promBounds {
		var n uint64
		for i, c := range h.Buckets {
			if _, hi := stats.BucketBounds(i); hi < le {
				n += c
			}
		}
		out[float64(le)/1e9] = n
	}
	return out, count, sum
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
