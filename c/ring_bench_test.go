package ctest

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mdjournal/mdjournal/internal/clock"
	"github.com/mdjournal/mdjournal/ring"
	"github.com/mdjournal/mdjournal/wait"
)

// init runs the Go consumer process of BenchmarkRingConsumerLatency when
// the test binary is re-executed with MDJ_CRING_LAT="PATH N WAIT": it reads
// N timestamped records and prints "p50=… p99=…" (ns from the producer's
// CLOCK_MONOTONIC stamp to the read), exactly as tests/ring.c's lat does.
func init() {
	spec := os.Getenv("MDJ_CRING_LAT")
	if spec == "" {
		return
	}
	var path, ws string
	var n int
	if _, err := fmt.Sscanf(spec, "%s %d %s", &path, &n, &ws); err != nil {
		fmt.Println("bad spec", err)
		os.Exit(2)
	}
	st, _ := wait.Parse(ws)
	c, err := ring.NewConsumer(path, ring.ConsumerOptions{Wait: st, AttachTimeout: 30 * time.Second})
	if err != nil {
		fmt.Println(err)
		os.Exit(2)
	}
	fmt.Println("attached")
	d := make([]int64, n)
	for i := range d {
		b, err := c.Read()
		if err != nil || len(b) < 8 {
			fmt.Println("read:", err)
			os.Exit(2)
		}
		d[i] = clock.Nanotime() - int64(binary.LittleEndian.Uint64(b))
		c.Release()
	}
	slices.Sort(d)
	fmt.Printf("p50=%d p99=%d\n", d[n/2], d[n*99/100])
	c.Close()
	os.Exit(0)
}

// latRun streams n 16-byte records, each after a sleep of gap (so the
// consumer finds the ring empty before each and waits with its strategy,
// and the producer does not hold a CPU the consumer needs), to the
// consumer process cmd; it returns the consumer's p50 and p99 in ns.
func latRun(b *testing.B, cmd *exec.Cmd, path string, n int, gap time.Duration) (p50, p99 float64) {
	out, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	defer cmd.Process.Kill()
	br := bufio.NewReader(out)
	p, err := ring.NewProducer(path, 1<<16, ring.ProducerOptions{Wait: wait.Futex, Linger: 10 * time.Second})
	if err != nil {
		b.Fatal(err)
	}
	if l, _ := br.ReadString('\n'); l != "attached\n" {
		b.Fatalf("consumer: %q", l)
	}
	var rec [16]byte
	for range n {
		time.Sleep(gap) // pacing only (the stamp is taken after it): the producer leaves the CPU to the consumer
		binary.LittleEndian.PutUint64(rec[:], uint64(clock.Nanotime()))
		if err := p.Write(rec[:]); err != nil {
			b.Fatal(err)
		}
	}
	if err := p.Close(); err != nil {
		b.Fatal(err)
	}
	l, _ := br.ReadString('\n')
	if err := cmd.Wait(); err != nil {
		b.Fatalf("consumer: %v %q", err, l)
	}
	if _, err := fmt.Sscanf(strings.TrimSpace(l), "p50=%g p99=%g", &p50, &p99); err != nil {
		b.Fatalf("consumer output %q: %v", l, err)
	}
	return p50, p99
}

// BenchmarkRingConsumerLatency: one-way latency (producer stamp to
// consumer read, CLOCK_MONOTONIC, median and 99th percentile) of the C
// consumer (tests/ring.c lat, mdj_ring_read) beside the Go consumer
// (ring.Consumer.Read in a re-executed test binary), both fed by the same
// Go producer in this process, one record after each 50 µs sleep, b.N records each
// (at least 2000), with the wait strategy MDJ_CRING_WAIT (default spin;
// futex measures the wake-up path). Reported: c-p50-ns, go-p50-ns and
// their ratio c/go-p50 (below 1: the C consumer is faster). Alternating
// the two in one run keeps machine load comparable; on a loaded 2-core VM
// the absolute numbers are noisy, the ratio less so.
func BenchmarkRingConsumerLatency(b *testing.B) {
	bin := needRing(b)
	ws := os.Getenv("MDJ_CRING_WAIT")
	if ws == "" {
		ws = "spin"
	}
	n := max(b.N, 2000)
	dir := ringDir(b)
	var c50, c99, g50, g99 []float64
	for round := range 3 {
		path := filepath.Join(dir, "lat"+strconv.Itoa(round))
		p50, p99 := latRun(b, exec.Command(bin, "-wait", ws, "-attach", "30000", "lat", path, strconv.Itoa(n)), path, n, 50*time.Microsecond)
		c50, c99 = append(c50, p50), append(c99, p99)
		gpath := path + "go"
		g := exec.Command(os.Args[0], "-test.run=^$")
		g.Env = append(os.Environ(), fmt.Sprintf("MDJ_CRING_LAT=%s %d %s", gpath, n, ws))
		p50, p99 = latRun(b, g, gpath, n, 50*time.Microsecond)
		g50, g99 = append(g50, p50), append(g99, p99)
	}
	med := func(v []float64) float64 { slices.Sort(v); return v[len(v)/2] }
	b.ReportMetric(med(c50), "c-p50-ns")
	b.ReportMetric(med(g50), "go-p50-ns")
	b.ReportMetric(med(c50)/med(g50), "c/go-p50")
	b.ReportMetric(med(c99), "c-p99-ns")
	b.ReportMetric(med(g99), "go-p99-ns")
	b.ReportMetric(0, "ns/op")
}
