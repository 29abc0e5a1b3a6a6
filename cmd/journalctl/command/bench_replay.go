package command

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"text/tabwriter"

	"github.com/klauspost/compress/zstd"
	"github.com/spf13/pflag"

	"github.com/mdjournal/mdjournal/internal/clock"
	"github.com/mdjournal/mdjournal/ops/compress"
	"github.com/mdjournal/mdjournal/reader"
	"github.com/mdjournal/mdjournal/replay"
	"github.com/mdjournal/mdjournal/ring"
	"github.com/mdjournal/mdjournal/synth"
	"github.com/mdjournal/mdjournal/wait"
	"github.com/mdjournal/mdjournal/writer"
)

// benchReplay times replay (package replay) at --speed max into a
// ring drained by a consumer goroutine, from raw and from zstd-archived
// segments of the same synthetic journal, beside the same-run baseline of a
// plain reader loop over that journal (no ring). Rounds interleave all four.
func benchReplay(env *Env, args []string) error {
	var frames, rounds int
	var asJSON bool
	fs := flagSet(env, "bench replay", "[--frames N] [--rounds R] [--json]", func(fs *pflag.FlagSet) {
		fs.IntVar(&frames, "frames", 1<<20, "synthetic frames in the journal")
		fs.IntVar(&rounds, "rounds", 3, "rounds; the median round is reported")
		fs.BoolVar(&asJSON, "json", false, "print JSON")
	})
	if err := parse(fs, args); err != nil {
		return err
	}
	if err := noArgs(fs); err != nil {
		return err
	}
	if frames < 1000 || rounds < 1 {
		return usagef("--frames ≥ 1000, --rounds ≥ 1")
	}
	tmp, err := os.MkdirTemp("", "mdj-bench-replay-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	rawDir, zstdDir := filepath.Join(tmp, "raw"), filepath.Join(tmp, "zstd")
	for _, d := range []string{rawDir, zstdDir} {
		if err := replayJournal(d, frames); err != nil {
			return err
		}
	}
	if _, err := compress.All(zstdDir, compress.Options{Level: zstd.SpeedDefault}); err != nil {
		return err
	}
	shm := tmp
	if st, err := os.Stat(ring.DefaultDir); err == nil && st.IsDir() {
		if shm, err = os.MkdirTemp(ring.DefaultDir, "mdj-bench-replay-"); err != nil {
			return err
		}
		defer os.RemoveAll(shm)
	}
	names := []string{"raw: reader loop (baseline)", "raw: replay → ring → consumer", "zstd: reader loop", "zstd: replay → ring → consumer"}
	res := make([][]float64, len(names))
	for r := 0; r < rounds; r++ {
		for i, run := range []func() (float64, error){
			func() (float64, error) { return readLoop(rawDir, frames) },
			func() (float64, error) { return replayRound(env.Ctx, rawDir, filepath.Join(shm, "ring"), frames) },
			func() (float64, error) { return readLoop(zstdDir, frames) },
			func() (float64, error) { return replayRound(env.Ctx, zstdDir, filepath.Join(shm, "ring"), frames) },
		} {
			ns, err := run()
			if err != nil {
				return fmt.Errorf("%s: %w", names[i], err)
			}
			res[i] = append(res[i], ns)
		}
	}
	base := median(res[0])
	var out []appendResult
	for i, n := range names {
		m := median(res[i])
		out = append(out, appendResult{Name: n, NsPerFrame: m, FramesPerS: 1e9 / m, VsRaw: m / base, RoundsNs: res[i]})
	}
	if asJSON {
		return json.NewEncoder(env.Stdout).Encode(out)
	}
	tw := tabwriter.NewWriter(env.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "%d frames\tns/frame (median of %d)\tframes/s\tvs raw reader\t\n", frames, rounds)
	for _, r := range out {
		fmt.Fprintf(tw, "%s\t%.1f\t%.3gM\t%.2fx\t\n", r.Name, r.NsPerFrame, r.FramesPerS/1e6, r.VsRaw)
	}
	return tw.Flush()
}

// replayJournal writes frames synthetic frames in 8 MiB segments (so the
// zstd copy has many sealed, archivable segments).
func replayJournal(dir string, frames int) error {
	w, err := writer.Open(dir, writer.Options{SegmentSize: 8 << 20, NoRestate: true}) // exactly frames frames
	if err != nil {
		return err
	}
	g := synth.New(1, 16)
	for i := 0; i < frames; i++ {
		typ, id, p := g.Next()
		if _, err := w.Stage(typ, id, int64(i)*1000, p); err != nil {
			w.Close()
			return err
		}
		if i%256 == 255 {
			if err := w.Publish(); err != nil {
				w.Close()
				return err
			}
		}
	}
	return w.Close()
}

// readLoop is the baseline: every frame read (and CRC-checked) by a reader,
// nothing else. It returns ns per frame.
func readLoop(dir string, frames int) (float64, error) {
	start := clock.Nanotime()
	rd, err := reader.Open(dir, reader.Options{})
	if err != nil {
		return 0, err
	}
	defer rd.Close()
	n := 0
	for {
		_, ok, err := rd.TryNext()
		if err != nil {
			return 0, err
		}
		if !ok {
			break
		}
		n++
	}
	if n != frames {
		return 0, fmt.Errorf("read %d frames, want %d", n, frames)
	}
	return float64(clock.Nanotime()-start) / float64(n), nil
}

// replayRound replays dir once into a new ring that a goroutine drains
// (reading each record's seq word); the time runs from the start of the
// replay until the consumer reached the end of the stream.
func replayRound(ctx context.Context, dir, path string, frames int) (float64, error) {
	defer os.Remove(path)
	r, err := replay.New(replay.Options{Dir: dir, Ring: path, Wait: wait.Spin})
	if err != nil {
		return 0, err
	}
	defer r.Close()
	// The replay is attached: the consumer joins its generation at once,
	// before the clock starts.
	c, err := ring.NewConsumer(path, ring.ConsumerOptions{Wait: wait.Spin})
	if err != nil {
		return 0, err
	}
	defer c.Close()
	got := make(chan error, 1)
	var n, sum uint64
	var end int64
	go func() {
		for {
			rec, err := c.Read()
			if err == io.EOF {
				end = clock.Nanotime() // the last record consumed
				got <- nil
				return
			}
			if err != nil {
				got <- err
				return
			}
			sum += binary.LittleEndian.Uint64(rec[8:])
			c.Release()
			n++
		}
	}()
	start := clock.Nanotime()
	st, err := r.Run(ctx) // ends the stream and lingers until the consumer drained it
	if err != nil {
		return 0, err
	}
	if err := <-got; err != nil {
		return 0, err
	}
	el := end - start
	if n != st.Frames || n != uint64(frames) {
		return 0, fmt.Errorf("consumed %d, replayed %d, want %d", n, st.Frames, frames)
	}
	return float64(el) / float64(n), nil
}
