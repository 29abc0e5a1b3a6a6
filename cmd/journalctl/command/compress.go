package command

import (
	"encoding/json"
	"fmt"
	"text/tabwriter"

	"github.com/spf13/pflag"

	"github.com/mdjournal/mdjournal/journal"
	"github.com/mdjournal/mdjournal/ops/compress"
	"github.com/mdjournal/mdjournal/writer"
)

type compressOptions struct {
	dir   string
	level string
	chunk string
	json  bool
}

func (o *compressOptions) AddFlags(fs *pflag.FlagSet) {
	fs.StringVar(&o.dir, "dir", "", "journal directory")
	fs.StringVar(&o.level, "level", "default", "fastest|default|better|best")
	fs.StringVar(&o.chunk, "chunk", "1MiB", "raw bytes per independently decompressible chunk (seek granularity)")
	fs.BoolVar(&o.json, "json", false, "print JSON")
}

func runCompress(env *Env, args []string) error {
	var o compressOptions
	fs := flagSet(env, "compress", "--dir D [--level fastest|default|better|best] [--chunk SIZE] [--json]", o.AddFlags)
	if err := parseDirVerb(fs, args, &o.dir); err != nil {
		return err
	}
	level, err := compress.ParseLevel(o.level)
	if err != nil {
		return usagef("--level: %v", err)
	}
	chunk, err := parseSizeFlag("--chunk", o.chunk)
	if err != nil {
		return err
	}
	if chunk < 64<<10 || chunk > 64<<20 {
		return usagef("--chunk must be between 64KiB and 64MiB")
	}
	results, err := compress.All(o.dir, compress.Options{Level: level, Chunk: int(chunk), Stop: func() bool { return env.Ctx.Err() != nil }})
	if err != nil {
		return err
	}
	var raw, file, arch int64
	for _, r := range results {
		raw += r.RawBytes
		file += r.FileRaw
		arch += r.Archived
	}
	if o.json {
		segs := []compressSegmentJSON{}
		for _, r := range results {
			segs = append(segs, compressSegmentJSON{Segment: r.Segment, RawBytes: r.RawBytes, FileRaw: r.FileRaw, Archived: r.Archived, Chunks: r.Chunks, Frames: r.Frames})
		}
		return json.NewEncoder(env.Stdout).Encode(compressJSON{Segments: segs, RawBytes: raw, RawFileBytes: file, ArchivedBytes: arch})
	}
	tw := tabwriter.NewWriter(env.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "segment\tframes\tdata\tarchive\tratio\tchunks\t\n")
	for _, r := range results {
		fmt.Fprintf(tw, "%d\t%d\t%s\t%s\t%.2fx\t%d\t\n", r.Segment, r.Frames, humanBytes(r.RawBytes), humanBytes(r.Archived), float64(r.RawBytes)/float64(r.Archived), r.Chunks)
	}
	tw.Flush()
	if len(results) == 0 {
		fmt.Fprintln(env.Stdout, "nothing to compress: no sealed raw segment")
		return nil
	}
	fmt.Fprintf(env.Stdout, "compressed %d segments: %s of data (%s on disk) -> %s, ratio %.2fx (%.2fx of disk)\n",
		len(results), humanBytes(raw), humanBytes(file), humanBytes(arch), float64(raw)/float64(arch), float64(file)/float64(arch))
	return nil
}

// segmentSizeFlag reads --segment-size: a size from 256KiB to 1GiB.
func segmentSizeFlag(s string) (int64, error) {
	n, err := writer.ParseSize(s)
	if err != nil || n < journal.MinSegmentSize || n > journal.MaxSegmentSize {
		return 0, usagef("--segment-size %q: want a size from 256KiB to 1GiB (e.g. 64MiB)", s)
	}
	return n, nil
}

func parseSizeFlag(name, s string) (int64, error) {
	n, err := writer.ParseSize(s)
	if err != nil {
		return 0, usagef("%s: %v", name, err)
	}
	return n, nil
}

// humanBytes renders a byte count with a binary unit.
func humanBytes(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.2f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.2f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}

// compressJSON is the stable --json shape of compress (README): segments is
// [] (never null) when there was nothing to compress.
type compressJSON struct {
	Segments      []compressSegmentJSON `json:"segments"`
	RawBytes      int64                 `json:"raw_bytes"`
	RawFileBytes  int64                 `json:"raw_file_bytes"`
	ArchivedBytes int64                 `json:"archived_bytes"`
}

type compressSegmentJSON struct {
	Segment  uint64 `json:"segment"`
	RawBytes int64  `json:"raw_bytes"`
	FileRaw  int64  `json:"raw_file_bytes"`
	Archived int64  `json:"archived_bytes"`
	Chunks   int    `json:"chunks"`
	Frames   int64  `json:"frames"`
}
