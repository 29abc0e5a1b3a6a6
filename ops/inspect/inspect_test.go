package inspect_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mdjournal/mdjournal/internal/testutil"
	"github.com/mdjournal/mdjournal/journal"
	"github.com/mdjournal/mdjournal/ops/inspect"
	"github.com/mdjournal/mdjournal/stats"
)

var testdata = filepath.Join("..", "..", "testdata", "journal")

func TestJournalStats(t *testing.T) {
	r, err := inspect.Journal(filepath.Join(testdata, "clean"), inspect.Options{Frames: true})
	if err != nil {
		t.Fatal(err)
	}
	facts := testutil.ReadFacts(t, filepath.Join(testdata, "clean"))
	if !r.OK || r.Frames != int64(facts.Total) || len(r.Segments) != 3 || len(r.FrameList) != facts.Total {
		t.Fatalf("ok %v frames %d segments %d list %d", r.OK, r.Frames, len(r.Segments), len(r.FrameList))
	}
	var total int64
	for _, tc := range r.Types {
		total += tc.Frames
	}
	if total != r.Frames || len(r.Instruments) != 1 || r.Instruments[0].Symbol != "AMZN" || r.Instruments[0].Frames != r.Frames {
		t.Fatalf("types sum %d, instruments %+v", total, r.Instruments)
	}
	// The largest silence, found independently from the reader's timestamps.
	var bigSeq uint64
	var big int64
	for seq := uint64(2); seq <= facts.LastSeq; seq++ {
		if d := facts.TS[seq] - facts.TS[seq-1]; d > big {
			big, bigSeq = d, seq-1
		}
	}
	if len(r.TimeGaps) != 10 || r.TimeGaps[0].GapUS < r.TimeGaps[9].GapUS || r.TimeGaps[0].AfterSeq != bigSeq || r.TimeGaps[0].GapUS != float64(big)/1e3 {
		t.Fatalf("time gaps %+v, want the largest after seq %d (%d ns)", r.TimeGaps, bigSeq, big)
	}
	var sum int64
	for _, c := range r.Profile.Counts {
		sum += c
	}
	if sum != r.Frames || r.Profile.BucketSeconds != 30 {
		t.Fatalf("profile sums to %d over %v s buckets", sum, r.Profile.BucketSeconds)
	}
	if f := r.FrameList[0]; f.Offset != 4096 || f.Seq != 1 || f.File != journal.SegmentName(1) {
		t.Fatalf("first frame %+v", f)
	}
	if r.Durability.Segment != 3 || !r.Durability.Clean || r.Durability.Seq != facts.LastSeq {
		t.Fatalf("durability %+v", r.Durability)
	}
}

func TestJournalGapsFromDamage(t *testing.T) {
	r, err := inspect.Journal(filepath.Join(testdata, "missing-segment"), inspect.Options{Hex: true})
	if err != nil {
		t.Fatal(err)
	}
	clean := testutil.ReadFacts(t, filepath.Join(testdata, "clean"))
	if r.OK || len(r.SeqGaps) != 1 || r.SeqGaps[0].After != clean.FirstSeq[2]-1 || r.SeqGaps[0].Next != clean.FirstSeq[3] {
		t.Fatalf("gaps %+v; segment 2 held seqs %d..%d", r.SeqGaps, clean.FirstSeq[2], clean.FirstSeq[3]-1)
	}
	if p := r.Problems[0]; p.Kind != "missing" || p.Hex != "" || !strings.Contains(p.Hint, "backup") {
		t.Fatalf("problem %+v", p)
	}
}

func TestHexdump(t *testing.T) {
	b := []byte("MDJSEG\x00\x00\x02\x00\x00\x00abcdefghijklmnopqrstuv")
	got := inspect.HexBytes(b, 20, 64)
	want := "" +
		" 00000000  4d 44 4a 53 45 47 00 00  02 00 00 00 61 62 63 64  |MDJSEG......abcd|\n" +
		">00000010  65 66 67 68 69 6a 6b 6c  6d 6e 6f 70 71 72 73 74  |efghijklmnopqrst|\n" +
		" 00000020  75 76                                             |uv|\n"
	if got != want {
		t.Fatalf("got\n%s\nwant\n%s", got, want)
	}
}

func TestDetect(t *testing.T) {
	for _, c := range []struct {
		name string
		data string
		kind string
	}{
		{"x", journal.SegmentMagic, inspect.KindSegment},
		{"x", journal.IndexMagic, inspect.KindIndex},
		{"x", "MDJSNAP\x00", inspect.KindSnapshot},
		{"x", "MDJRING\x00", inspect.KindRing},
		{"x", journal.CtlMagic, inspect.KindControl},
		{"x", "MDJPOS\x00\x00", inspect.KindPosition},
		{"00000000000000000001.seg", "garbage!", inspect.KindSegment},
		{"x", "garbage!", inspect.KindUnknown},
	} {
		if k, _ := inspect.Detect(c.name, []byte(c.data)); k != c.kind {
			t.Errorf("%q %q: %s, want %s", c.name, c.data, k, c.kind)
		}
	}
}

// seeds returns real files of every kind from testdata, plus short ones.
func seeds(t testing.TB) [][]byte {
	var out [][]byte
	for _, p := range []string{"clean/00000000000000000003.seg", "clean/00000000000000000001.idx", "clean/journal.ctl", "clean/readers/archiver.pos",
		"bad-magic/00000000000000000003.seg", "cursor-past-capacity/00000000000000000003.seg"} {
		b, err := os.ReadFile(filepath.Join(testdata, p))
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, b, b[:4096], b[:100])
	}
	snap := make([]byte, 8192)
	copy(snap, "MDJSNAP\x00\x01\x00\x00\x00\x00\x10\x00\x00")
	ring := make([]byte, 4096+64)
	copy(ring, "MDJRING\x00\x01\x00\x00\x00\x00\x10\x00\x00\x40")
	return append(out, snap, ring, nil, []byte("MDJSEG\x00\x00"))
}

func TestDecodeNeverPanicsOnTruncations(t *testing.T) {
	for _, s := range seeds(t) {
		for _, n := range []int{0, 7, 8, 63, 64, 129, 4095, 4096, 4097, 8191} {
			if n <= len(s) {
				inspect.Decode("00000000000000000003.seg", s[:n], inspect.Options{Frames: true, Hex: true})
				inspect.Decode("x", s[:n], inspect.Options{Frames: true, Hex: true})
			}
		}
	}
}

func FuzzDecode(f *testing.F) {
	for _, s := range seeds(f) {
		if len(s) > 16384 {
			s = s[:16384] // keep the corpus small; the header and first frames matter
		}
		f.Add("00000000000000000003.seg", s)
		f.Add("x.snap", s)
	}
	f.Fuzz(func(t *testing.T, name string, data []byte) {
		r := inspect.Decode(name, data, inspect.Options{Frames: true, Hex: true})
		for _, p := range r.Problems {
			if strings.Contains(p.Reason, "internal error") {
				t.Fatalf("decoder panicked: %s", p.Reason)
			}
		}
	})
}

// TestInspectStatsFile: a stage's stats file (format.md §15) is detected by
// its magic and printed field by field from stats.HeaderLayout; a truncated
// one is a "truncated" problem at its size, never a crash.
func TestInspectStatsFile(t *testing.T) {
	dir := t.TempDir()
	p, err := stats.Create(dir, "engine", 0)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := p.Counter("orders")
	c.Add(7)
	path := stats.Path(dir, "engine")
	r, err := inspect.File(path, inspect.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if r.Kind != inspect.KindStats || len(r.Problems) != 0 {
		t.Fatalf("kind %q, problems %v", r.Kind, r.Problems)
	}
	got := map[string]string{}
	for _, f := range r.Fields {
		got[f.Name] = f.Value
	}
	if !strings.Contains(got["stage"], "engine") || got["counters"] != "1" || got["version"] != "1" {
		t.Fatalf("fields %v", got)
	}
	p.Close()
	if err := os.Truncate(path, 5000); err != nil {
		t.Fatal(err)
	}
	r, err = inspect.File(path, inspect.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Problems) != 1 || r.Problems[0].Kind != "truncated" || r.Problems[0].Offset != 5000 {
		t.Fatalf("truncated stats file: %+v", r.Problems)
	}
}
