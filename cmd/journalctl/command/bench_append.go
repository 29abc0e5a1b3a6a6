package command

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"

	"github.com/spf13/pflag"
	"github.com/tidwall/wal"

	"github.com/mdjournal/mdjournal/internal/clock"
	"github.com/mdjournal/mdjournal/internal/mmap"
	"github.com/mdjournal/mdjournal/journal"
	"github.com/mdjournal/mdjournal/writer"
)

type benchAppendOptions struct {
	size       int
	count      int
	rounds     int
	durability string
	json       bool
	noWAL      bool
}

func (o *benchAppendOptions) AddFlags(fs *pflag.FlagSet) {
	fs.IntVar(&o.size, "size", 64, "payload bytes per frame")
	fs.IntVar(&o.count, "count", 2_000_000, "frames per round (sync policy: count/1000)")
	fs.IntVar(&o.rounds, "rounds", 5, "rounds; the median round is reported")
	fs.StringVar(&o.durability, "durability", "none,async,interval:10ms,sync", "comma-separated policies")
	fs.BoolVar(&o.json, "json", false, "print JSON")
	fs.BoolVar(&o.noWAL, "no-wal", false, "skip the tidwall/wal comparison rows")
}

type appendResult struct {
	Name       string    `json:"name"`
	NsPerFrame float64   `json:"ns_per_frame"`
	FramesPerS float64   `json:"frames_per_s"`
	VsRaw      float64   `json:"ratio_to_raw"`
	RoundsNs   []float64 `json:"rounds_ns"`
}

func benchAppend(env *Env, args []string) error {
	var o benchAppendOptions
	fs := flagSet(env, "bench append", "[--size B] [--count N] [--rounds R] [--durability P,...] [--no-wal] [--json]", o.AddFlags)
	if err := parse(fs, args); err != nil {
		return err
	}
	if o.size < 0 || o.size > journal.MaxPayload || o.count < 1000 || o.rounds < 1 {
		return usagef("--size 0..%d, --count ≥ 1000, --rounds ≥ 1", journal.MaxPayload)
	}
	var pols []writer.Durability
	for _, p := range strings.Split(o.durability, ",") {
		d, err := writer.ParseDurability(strings.TrimSpace(p))
		if err != nil {
			return usagef("--durability: %v", err)
		}
		pols = append(pols, d)
	}
	tmp, err := os.MkdirTemp("", "mdj-bench-append-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	raw := make([]float64, 0, o.rounds)
	res := make([][]float64, len(pols))
	for r := 0; r < o.rounds; r++ {
		// Interleave baseline and policies in every round so machine noise
		// hits them alike.
		ns, err := rawStoreRound(tmp, o.size, o.count)
		if err != nil {
			return err
		}
		raw = append(raw, ns)
		for i, d := range pols {
			n := o.count
			if d.Mode == writer.Sync {
				n = max(o.count/1000, 200)
			}
			ns, err := appendRound(filepath.Join(tmp, fmt.Sprintf("j%d-%d", r, i)), d, o.size, n)
			if err != nil {
				return err
			}
			res[i] = append(res[i], ns)
		}
	}
	rawMed := median(raw)
	// tidwall/wal, a well-known Go WAL, on the same payloads in the same
	// rounds: one Write per entry, as our one Append per frame. Fewer
	// entries (one write(2) each; with sync also an fsync each), reported
	// per entry like everything else.
	walN := [2]int{max(o.count/10, 1000), max(o.count/10000, 50)}
	var walRes [2][]float64
	for r := 0; r < o.rounds && !o.noWAL; r++ {
		for k, noSync := range []bool{true, false} {
			ns, err := walRound(filepath.Join(tmp, fmt.Sprintf("wal%d-%d", r, k)), noSync, o.size, walN[k])
			if err != nil {
				return fmt.Errorf("tidwall/wal: %w", err)
			}
			walRes[k] = append(walRes[k], ns)
		}
	}
	out := []appendResult{{Name: fmt.Sprintf("raw %d-byte stores (baseline)", o.size), NsPerFrame: rawMed, FramesPerS: 1e9 / rawMed, VsRaw: 1, RoundsNs: raw}}
	for i, d := range pols {
		m := median(res[i])
		out = append(out, appendResult{Name: "append " + d.String(), NsPerFrame: m, FramesPerS: 1e9 / m, VsRaw: m / rawMed, RoundsNs: res[i]})
	}
	if !o.noWAL {
		for k, name := range []string{"tidwall/wal NoSync", "tidwall/wal (fsync per write)"} {
			m := median(walRes[k])
			out = append(out, appendResult{Name: name, NsPerFrame: m, FramesPerS: 1e9 / m, VsRaw: m / rawMed, RoundsNs: walRes[k]})
		}
	}
	// The target: append (policy none) ≥ 20× faster than
	// tidwall/wal without sync.
	var speedup float64
	if !o.noWAL {
		for i, d := range pols {
			if d.Mode == writer.None {
				speedup = median(walRes[0]) / median(res[i])
			}
		}
	}
	if o.json {
		return json.NewEncoder(env.Stdout).Encode(out)
	}
	tw := tabwriter.NewWriter(env.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "\tns/frame (median of %d)\tframes/s\tvs raw\t\n", o.rounds)
	for _, r := range out {
		fmt.Fprintf(tw, "%s\t%.1f\t%.3gM\t%.2fx\t\n", r.Name, r.NsPerFrame, r.FramesPerS/1e6, r.VsRaw)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if speedup > 0 {
		met := "NOT MET"
		if speedup >= 20 {
			met = "met"
		}
		fmt.Fprintf(env.Stdout, "append (none) is %.1fx faster than tidwall/wal NoSync (target ≥ 20x: %s)\n", speedup, met)
	}
	return nil
}

// walRound times count tidwall/wal Writes of size-byte entries into a new
// log at dir; noSync false is the library default (fsync after each write).
func walRound(dir string, noSync bool, size, count int) (float64, error) {
	opts := *wal.DefaultOptions
	opts.NoSync = noSync
	l, err := wal.Open(dir, &opts)
	if err != nil {
		return 0, err
	}
	payload := make([]byte, size)
	start := clock.Nanotime()
	for i := 1; i <= count; i++ {
		if err := l.Write(uint64(i), payload); err != nil {
			l.Close()
			return 0, err
		}
	}
	ns := float64(clock.Nanotime()-start) / float64(count)
	err = l.Close()
	os.RemoveAll(dir)
	return ns, err
}

// rawStoreRound: size-byte stores into a prefaulted 64 MiB shared mapping.
func rawStoreRound(tmp string, size, count int) (float64, error) {
	const region = 64 << 20
	f, err := os.Create(filepath.Join(tmp, "raw"))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	if err := mmap.Reserve(f, region); err != nil {
		return 0, err
	}
	m, err := mmap.Map(f, region, true)
	if err != nil {
		return 0, err
	}
	defer mmap.Unmap(m)
	mmap.PopulateWrite(m)
	mmap.TouchWrite(m) // PopulateWrite alone leaves a lazily backed page's first store slow
	payload := make([]byte, size)
	off := 0
	start := clock.Nanotime()
	for i := 0; i < count; i++ {
		if off+size > region {
			off = 0
		}
		copy(m[off:off+size], payload)
		off += size
	}
	return float64(clock.Nanotime()-start) / float64(count), nil
}

func appendRound(dir string, d writer.Durability, size, count int) (float64, error) {
	w, err := writer.Open(dir, writer.Options{Durability: d})
	if err != nil {
		return 0, err
	}
	// The raw baseline's region is prefaulted before its clock starts; the
	// writer's first segment is too (its background goroutine would still
	// be at it), so both store into prefaulted pages.
	if err := w.Prefault(); err != nil {
		w.Close()
		return 0, err
	}
	payload := make([]byte, size)
	start := clock.Nanotime()
	for i := 0; i < count; i++ {
		if _, err := w.Append(journal.TypeRaw, 1, int64(i), payload); err != nil {
			w.Close()
			return 0, err
		}
	}
	ns := float64(clock.Nanotime()-start) / float64(count)
	err = w.Close()
	os.RemoveAll(dir)
	return ns, err
}
