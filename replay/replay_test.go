package replay_test

import (
	"bytes"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mdjournal/mdjournal/cmd/replay/cli"
	"github.com/mdjournal/mdjournal/journal"
	"github.com/mdjournal/mdjournal/reader"
	"github.com/mdjournal/mdjournal/replay"
	"github.com/mdjournal/mdjournal/ring"
	"github.com/mdjournal/mdjournal/wait"
)

// The ring record is the frame exactly as stored: PutRecord rebuilds the
// segment's bytes (header, payload, zero padding) for every frame type and
// odd raw sizes, over a buffer full of garbage, and DecodeRecord accepts
// them and rejects damage.
func TestRecordIsStoredFrame(t *testing.T) {
	dir := t.TempDir()
	makeJournal(t, dir, 5000)
	rd, err := reader.Open(dir, reader.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Close()
	segs := map[uint64][]byte{}
	buf := make([]byte, journal.MaxFrameSize)
	odd := 0
	for n := 0; ; n++ {
		f, ok, err := rd.TryNext()
		if err != nil {
			t.Fatal(err)
		}
		if !ok {
			if n != 5000 {
				t.Fatalf("read %d frames", n)
			}
			break
		}
		img, ok := segs[f.Segment]
		if !ok {
			if img, err = os.ReadFile(journal.SegmentPath(dir, f.Segment)); err != nil {
				t.Fatal(err)
			}
			segs[f.Segment] = img
		}
		for i := range buf {
			buf[i] = 0xa5
		}
		k := replay.PutRecord(buf, &f)
		want := img[f.Offset : f.Offset+int64(replay.RecordLen(&f))]
		if k != len(want) || !bytes.Equal(buf[:k], want) {
			t.Fatalf("seq %d (%s, payload %d): record differs from the stored frame\n got %x\nwant %x", f.Seq, f.Type, len(f.Payload), buf[:k], want)
		}
		if (journal.FrameHeaderSize+len(f.Payload))%8 != 0 {
			odd++
		}
		g, err := replay.DecodeRecord(buf[:k])
		if err != nil || g.Seq != f.Seq || g.TS != f.TS || g.Type != f.Type || g.Instrument != f.Instrument || !bytes.Equal(g.Payload, f.Payload) {
			t.Fatalf("seq %d: decode %+v, %v", f.Seq, g, err)
		}
		// Damage in the payload, a truncated record, trailing bytes.
		if len(f.Payload) > 0 {
			buf[journal.FrameHeaderSize] ^= 1
			var re *replay.RecordError
			if _, err := replay.DecodeRecord(buf[:k]); !errors.As(err, &re) || re.Status != journal.FrameBadCRC {
				t.Fatalf("seq %d: flipped payload bit: %v", f.Seq, err)
			}
			buf[journal.FrameHeaderSize] ^= 1
		}
		if _, err := replay.DecodeRecord(buf[:k-8]); err == nil {
			t.Fatalf("seq %d: truncated record accepted", f.Seq)
		}
		if _, err := replay.DecodeRecord(buf[:k+8]); err == nil {
			t.Fatalf("seq %d: record with trailing bytes accepted", f.Seq)
		}
	}
	if odd == 0 {
		t.Fatal("the journal has no frame whose size is not a multiple of 8")
	}
	if _, err := replay.DecodeRecord(make([]byte, 40)); err == nil {
		t.Fatal("zero record accepted")
	}
	if _, err := replay.DecodeRecord(nil); err == nil {
		t.Fatal("empty record accepted")
	}
}

// filterCSV keeps the dump rows a --type/--instrument filter selects:
// rows of the given types, plus instrument_def rows, of the given ids.
func filterCSV(t *testing.T, dump string, types, ids map[string]bool) string {
	rows, err := csv.NewReader(strings.NewReader(dump)).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.SplitAfter(dump, "\n")
	var b strings.Builder
	b.WriteString(lines[0])
	for i, r := range rows[1:] {
		if ids[r[3]] && (types[r[2]] || r[2] == "instrument_def") {
			b.WriteString(lines[i+1])
		}
	}
	return b.String()
}

// Replayed frames printed by `journalctl ring` in another process are byte
// for byte what `journalctl dump` prints for the same range, from raw and
// from zstd-compressed segments, through a ring smaller than the data (so
// the producer waits for the consumer many times).
func TestReplayEqualsDump(t *testing.T) {
	const n = 20000
	raw, zst := t.TempDir(), t.TempDir()
	makeJournal(t, raw, n)
	makeJournal(t, zst, n)
	if k := compressSealed(t, zst); k < 3 {
		t.Fatalf("only %d segments compressed", k)
	}
	tEnd := time.Unix(0, synthTS0+12344*1000).UTC().Format(time.RFC3339Nano) // ts of seq 12345
	type tc struct {
		name   string
		replay []string
		dump   []string
		filter func(string) string
	}
	cases := []tc{
		{name: "all-text", dump: []string{"--format", "text"}},
		{name: "to-seq-json", replay: []string{"--to", "seq:7000"}, dump: []string{"--format", "json", "--to", "seq:7000"}},
		{name: "to-time-csv", replay: []string{"--to", "time:" + tEnd}, dump: []string{"--format", "csv", "--to", "time:" + tEnd}},
		{name: "filtered-csv", replay: []string{"--type", "trade,quote", "--instrument", "SYN0002,3"}, dump: []string{"--format", "csv"},
			filter: func(s string) string {
				return filterCSV(t, s, map[string]bool{"trade": true, "quote": true}, map[string]bool{"2": true, "3": true})
			}},
		{name: "filtered-raw-text", replay: []string{"--type", "raw,heartbeat", "--instrument", "0"}, dump: []string{"--format", "text"},
			filter: func(s string) string {
				var b strings.Builder
				for _, l := range strings.SplitAfter(s, "\n") {
					if strings.Contains(l, "  raw  ") || strings.Contains(l, "  heartbeat  ") {
						b.WriteString(l)
					}
				}
				return b.String()
			}},
	}
	for _, src := range []struct{ name, dir string }{{"raw", raw}, {"zstd", zst}} {
		for _, c := range cases {
			t.Run(src.name+"/"+c.name, func(t *testing.T) {
				code, want, errs := journalctl(t, append([]string{"dump", "--dir", raw}, c.dump...)...)
				if code != 0 {
					t.Fatalf("dump: %d %s", code, errs)
				}
				if c.filter != nil {
					want = c.filter(want)
				}
				format := c.dump[1]
				rp := ringPath(t)
				cons := startConsumer(t, rp, "--format", format).collect()
				code, sum, errs := replayCLI(t, append([]string{"--dir", src.dir, "--ring", rp, "--ring-size", "256KiB"}, c.replay...)...)
				if code != 0 {
					t.Fatalf("replay: exit %d: %s", code, errs)
				}
				got, ccode := cons.wait(t)
				if ccode != 0 {
					t.Fatalf("journalctl ring: exit %d: %s", ccode, cons.stderr.String())
				}
				if len(want) < 500 {
					t.Fatalf("expected output too small (%d bytes): the case tests nothing", len(want))
				}
				if got != want {
					gl, wl := strings.Split(got, "\n"), strings.Split(want, "\n")
					for i := range min(len(gl), len(wl)) {
						if gl[i] != wl[i] {
							t.Fatalf("line %d differs (%d vs %d lines)\n got %s\nwant %s", i+1, len(gl), len(wl), gl[i], wl[i])
						}
					}
					t.Fatalf("outputs differ: %d vs %d lines", len(gl), len(wl))
				}
				wantFrames := strings.Count(want, "\n")
				if format == "csv" {
					wantFrames--
				}
				if !strings.Contains(sum, fmt.Sprintf("frames=%d ", wantFrames)) || !strings.Contains(sum, "ended=end") {
					t.Fatalf("summary %q, want frames=%d", sum, wantFrames)
				}
			})
		}
	}
}

// drain consumes the ring at path in this process until EOF, returning
// the seqs of the frames it decoded. It attaches with ring.NewConsumer, as
// a user does: whether the replay already runs or not.
func drain(path string) (chan []uint64, chan error) {
	out, errc := make(chan []uint64, 1), make(chan error, 1)
	go func() {
		var seqs []uint64
		defer func() { out <- seqs }()
		c, err := ring.NewConsumer(path, ring.ConsumerOptions{Wait: wait.Backoff})
		if err != nil {
			errc <- err
			return
		}
		defer c.Close()
		for {
			rec, err := c.Read()
			if err != nil {
				if err == io.EOF {
					err = nil
				}
				errc <- err
				return
			}
			f, err := replay.DecodeRecord(rec)
			if err != nil {
				errc <- err
				return
			}
			seqs = append(seqs, f.Seq)
			c.Release()
		}
	}()
	return out, errc
}

func runDrained(t *testing.T, opts replay.Options) (replay.Stats, []uint64) {
	t.Helper()
	if opts.Ring == "" {
		opts.Ring = ringPath(t)
	}
	if opts.RingSize == 0 {
		opts.RingSize = replay.MinRingSize
	}
	r, err := replay.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	seqc, errc := drain(r.RingPath())
	st, err := r.Run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	return st, <-seqc
}

// wantRange checks that seqs are exactly from..to, after the preamble:
// the definitions in effect at the start, sent first, which carry seqs
// below from (makeJournal defines its instruments at seqs 1..4).
func wantRange(t *testing.T, seqs []uint64, from, to uint64) {
	t.Helper()
	for len(seqs) > 0 && seqs[0] < from && from > 1 {
		seqs = seqs[1:]
	}
	if len(seqs) != int(to-from+1) || seqs[0] != from || seqs[len(seqs)-1] != to {
		t.Fatalf("got %d frames %v..., want seqs %d..%d", len(seqs), seqs[:min(len(seqs), 3)], from, to)
	}
	for i, s := range seqs {
		if s != from+uint64(i) {
			t.Fatalf("frame %d has seq %d, want %d", i, s, from+uint64(i))
		}
	}
}

// --from and --to by seq and by time select exactly the range, mid-journal
// and across segments (raw and compressed).
func TestFromTo(t *testing.T) {
	dir := t.TempDir()
	makeJournal(t, dir, 12000)
	compressSealed(t, dir)
	tsOf := func(seq uint64) int64 { return synthTS0 + int64(seq-1)*1000 }
	_, seqs := runDrained(t, replay.Options{Dir: dir, From: reader.Seq(1234), To: replay.Bound{Seq: 9876, Set: true}})
	wantRange(t, seqs, 1234, 9876)
	_, seqs = runDrained(t, replay.Options{Dir: dir, From: reader.TimeNS(tsOf(2000)), To: replay.Bound{TS: tsOf(11000), Set: true}})
	wantRange(t, seqs, 2000, 11000)
	st, seqs := runDrained(t, replay.Options{Dir: dir, From: reader.Seq(11990)})
	wantRange(t, seqs, 11990, 12000)
	if st.Passes != 1 || st.Ended != replay.EndedRange {
		t.Fatalf("stats %+v", st)
	}
}

// --loop replays the range again and again: MaxPasses passes, each from
// --from to --to, the consumer seeing the seqs restart each time.
func TestLoop(t *testing.T) {
	dir := t.TempDir()
	makeJournal(t, dir, 3000)
	st, seqs := runDrained(t, replay.Options{Dir: dir, From: reader.Seq(100), To: replay.Bound{Seq: 2599, Set: true}, Loop: true, MaxPasses: 3})
	// Each pass: the 4 instruments' definitions (the preamble), then 2500 frames.
	const pass = 4 + 2500
	if st.Passes != 3 || st.Frames != 3*pass || len(seqs) != 3*pass || st.Preamble != 3*4 {
		t.Fatalf("passes %d frames %d consumed %d preamble %d", st.Passes, st.Frames, len(seqs), st.Preamble)
	}
	for p := range 3 {
		wantRange(t, seqs[p*pass:(p+1)*pass], 100, 2599)
	}
	// The command line: --loop --passes 4 to the end of the journal.
	rp := ringPath(t)
	cons := startConsumer(t, rp, "--format", "csv").collect()
	code, sum, errs := replayCLI(t, "--dir", dir, "--ring", rp, "--loop", "--passes", "4")
	if code != 0 || !strings.Contains(sum, "frames=12000 ") || !strings.Contains(sum, "passes=4 ") {
		t.Fatalf("replay --loop: exit %d %q %s", code, sum, errs)
	}
	out, ccode := cons.wait(t)
	if ccode != 0 || strings.Count(out, "\n1,2026-01-02T14:30:00Z,instrument_def,1,") != 4 || strings.Count(out, "\n") != 12001 {
		t.Fatalf("consumer: exit %d, %d lines", ccode, strings.Count(out, "\n"))
	}
}

// A loop whose filters select nothing ends after one pass instead of
// spinning over the journal for ever; a symbol the journal does not define
// is an error, never an empty replay.
func TestLoopOverNothingEnds(t *testing.T) {
	dir := t.TempDir()
	makeJournal(t, dir, 500)
	// Nothing is published, so nothing is undelivered: Run ends at once,
	// without a consumer, and removes its ring.
	rp := ringPath(t)
	st, err := replay.Run(context.Background(), replay.Options{Dir: dir, Ring: rp, Instruments: []string{"999"}, Loop: true})
	if err != nil || st.Passes != 1 || st.Frames != 0 || st.Skipped != 500 {
		t.Fatalf("stats %+v, %v", st, err)
	}
	if _, err := os.Stat(rp); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the ring is still there: %v", err)
	}
	if _, err := replay.New(replay.Options{Dir: dir, Ring: ringPath(t), Instruments: []string{"NOSUCH"}}); !errors.Is(err, reader.ErrUnknownInstrument) {
		t.Fatalf("unknown symbol: %v", err)
	}
}

// kill -9 of the consumer: once the ring is full, replay exits 1 saying
// the consumer died.
func TestConsumerKilled(t *testing.T) {
	dir := t.TempDir()
	makeJournal(t, dir, 20000) // ~1.4 MB of records: 5 rings' worth
	rp := ringPath(t)
	cons := startConsumer(t, rp)
	type res struct {
		code     int
		out, err string
	}
	done := make(chan res, 1)
	go func() {
		code, out, errs := replayCLI(t, "--dir", dir, "--ring", rp, "--ring-size", "256KiB", "--wait", "futex")
		done <- res{code, out, errs}
	}()
	firstLine(t, cons.stdout) // attached and consuming; it stalls once its stdout pipe is full
	if err := cons.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	select {
	case r := <-done:
		if r.code != 1 || !strings.Contains(r.err, "consumer died") {
			t.Fatalf("replay after the consumer's death: exit %d, stderr %q", r.code, r.err)
		}
		if strings.Contains(r.out, "frames=20000 ") {
			t.Fatalf("replay claims to have written everything: %s", r.out)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("replay did not notice the dead consumer")
	}
}

func TestBadFlagsExit2(t *testing.T) {
	dir := t.TempDir()
	for _, args := range [][]string{
		{},
		{"--dir", dir},
		{"--ring", "x"},
		{"--dir", dir, "--ring", "x", "--speed", "fast"},
		{"--dir", dir, "--ring", "x", "--speed", "0x"},
		{"--dir", dir, "--ring", "x", "--speed", "-2x"},
		{"--dir", dir, "--ring", "x", "--speed", "NaNx"},
		{"--dir", dir, "--ring", "x", "--from", "yesterday"},
		{"--dir", dir, "--ring", "x", "--from", "end"},
		{"--dir", dir, "--ring", "x", "--to", "start"},
		{"--dir", dir, "--ring", "x", "--from", "seq:10", "--to", "seq:5"},
		{"--dir", dir, "--ring", "x", "--type", "trade,bogus"},
		{"--dir", dir, "--ring", "x", "--type", "segment_end"},
		{"--dir", dir, "--ring", "x", "--instrument", "ABCDEFGHIJKLMNOPQ"},
		{"--dir", dir, "--ring", "x", "--ring-size", "100KiB"},
		{"--dir", dir, "--ring", "x", "--ring-size", "1000000"},
		{"--dir", dir, "--ring", "x", "--ring-size", "huge"},
		{"--dir", dir, "--ring", "x", "--wait", "sleepy"},
		{"--dir", dir, "--ring", "x", "--passes", "3"},
		{"--dir", dir, "--ring", "x", "--loop", "--passes", "-1"},
		{"--dir", dir, "--ring", "x", "--bogus"},
		{"--dir", dir, "--ring", "x", "extra"},
	} {
		code, out, errs := replayCLI(t, args...)
		if code != cli.ExitUsage || !strings.HasPrefix(errs, "replay: ") || out != "" {
			t.Errorf("%q: exit %d, stderr %q, stdout %q", args, code, errs, out)
		}
	}
	if code, _, _ := replayCLI(t, "--help"); code != 0 {
		t.Errorf("--help: exit %d", code)
	}
}

// A missing journal is a data problem (exit 1) that names the directory.
func TestMissingJournalExit1(t *testing.T) {
	missing := t.TempDir() + "/nope"
	code, _, errs := replayCLI(t, "--dir", missing, "--ring", ringPath(t))
	if code != cli.ExitData || !strings.Contains(errs, "nope") {
		t.Fatalf("exit %d %q", code, errs)
	}
}
