package chaos_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"
)

// policies are the writer's durability policies, one per round in turn.
var policies = []string{"none", "async", "interval:3ms", "sync"}

const (
	readerName = "chaos"  // the named reader
	segSize    = "256KiB" // the smallest segment: many rolls, many files
)

// slow scales every deadline when the processes are race-instrumented.
func slow(d time.Duration) time.Duration {
	if raceEnabled {
		return 4 * d
	}
	return d
}

// counters are the summary's numbers.
type counters struct {
	mu sync.Mutex
	m  map[string]int64
}

func (c *counters) add(k string, n int64) {
	c.mu.Lock()
	if c.m == nil {
		c.m = map[string]int64{}
	}
	c.m[k] += n
	c.mu.Unlock()
}

func (c *counters) get(k string) int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.m[k]
}

// prefixed returns "name n" pairs of the counters starting with prefix.
func (c *counters) prefixed(prefix string) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var ks []string
	for k := range c.m {
		if strings.HasPrefix(k, prefix) {
			ks = append(ks, k)
		}
	}
	sort.Strings(ks)
	var b strings.Builder
	for _, k := range ks {
		fmt.Fprintf(&b, " %s=%d", strings.TrimPrefix(k, prefix), c.m[k])
	}
	if b.Len() == 0 {
		return " none"
	}
	return b.String()
}

// campaign is one chaos run: one journal, many rounds.
type campaign struct {
	t    *testing.T
	seed uint64
	art  string // artefacts: kept when the campaign fails
	dir  string // the campaign's journal
	run  *runner
	cnt  counters

	vmu        sync.Mutex
	violations []string
	vbase      int // violations before the current round
	// known: library defects this campaign found and found_test.go
	// reproduces on its own; they fail the test too (with a count and a
	// first example) but do not stop the campaign, so it explores on.
	knownHits map[string]*knownHit

	// digests[seq-1] is the FNV-1a digest of the JSON line of seq, as
	// first printed by any reader or dump of the campaign (0: not seen).
	dmu     sync.Mutex
	digests []uint64

	// per round
	wmu     sync.Mutex
	writer  *proc   // the current writer process
	outputs []*proc // readers and dumps of the round (their stdout is checked)
}

func (c *campaign) violate(round int, format string, args ...any) {
	msg := fmt.Sprintf("seed %#x round %d: ", c.seed, round) + fmt.Sprintf(format, args...)
	c.vmu.Lock()
	c.violations = append(c.violations, msg)
	c.vmu.Unlock()
}

type knownHit struct {
	count   int
	example string
}

// knownBugs names each defect found_test.go reproduces deterministically.
var knownBugs = map[string]string{
	"writer-removes-live-compress-temp":         "TestWriterOpenKeepsLiveCompressTemp: a writer open deletes the .seg.zst.tmp of a compress that holds the maintenance lock (format.md §1, §7)",
	"verify-races-prune":                        "TestVerifyDuringPruneNoFalseDamage: verify run while prune deletes the oldest segments reports them as damage (missing segment, unusable index, no such file)",
	"verify-id-from-damaged-header":             "TestVerifyIDFromDamagedHeader: a flipped bit in the journal_id of the first segment (its header_crc fails) makes verify report every other segment as 'files of two journals are mixed'",
	"short-sealed-segment-ok":                   "TestShortSealedSegment: a sealed segment cut short in the zeroes past its end marker: verify, inspect and recover say OK, every reader refuses the journal (format.md §2.1: file ≥ capacity is a header check)",
	"reader-no-journal-on-damaged-first-header": "TestReaderNamesDamagedFirstSegment: a reader says 'no journal in directory' when the first segment's header is damaged, instead of naming the file",
	"verify-races-writer-start":                 "TestVerifyDuringWriterStartNoFalseDamage: verify started while no writer held the lock, a writer opening meanwhile (recovery, new epoch, a segment activated): verify reports the new segment as damage",
	"verify-stateless-activated-as-prepared":    "TestActivatedSegmentWithoutStateIsDamage: an activated segment (first_seq set, checksummed) whose state records are both damaged is reported by verify as a torn 'not activated' segment the writer would move aside; the writer refuses it (format.md §2.2: damage)",
	"writer-open-panics-short-clean-segment":    "TestShortCleanLastSegment: a cleanly closed last segment cut short in the zeroes past its frames makes every writer open (gen, import, recover) panic: slice bounds out of range",
	"archive-cursor-checked":                    "TestArchiveCursorIsAHint: one flipped bit in a compressed segment's write_cursor (a hint, §2.1) makes the archive unreadable, and verify blames the archive header at 4096",
}

// knownBug records an occurrence of a known defect.
func (c *campaign) knownBug(round int, name, format string, args ...any) {
	if _, ok := knownBugs[name]; !ok {
		panic("unknown known bug " + name)
	}
	c.vmu.Lock()
	defer c.vmu.Unlock()
	if c.knownHits == nil {
		c.knownHits = map[string]*knownHit{}
	}
	k := c.knownHits[name]
	if k == nil {
		k = &knownHit{example: fmt.Sprintf("seed %#x round %d: ", c.seed, round) + fmt.Sprintf(format, args...)}
		c.knownHits[name] = k
	}
	k.count++
}

// failedRound reports a violation in the current round.
func (c *campaign) failedRound() bool {
	c.vmu.Lock()
	defer c.vmu.Unlock()
	return len(c.violations) > c.vbase
}

func (c *campaign) violated() int {
	c.vmu.Lock()
	defer c.vmu.Unlock()
	return len(c.violations)
}

func digest(line []byte) uint64 {
	h := fnv.New64a()
	h.Write(line)
	return h.Sum64() | 1
}

// record notes that seq was printed as line by who; a different line for a
// seq seen before is a violation of invariant (b).
func (c *campaign) record(round int, seq uint64, line []byte, who string) bool {
	if seq == 0 {
		c.violate(round, "%s printed a frame with seq 0: %s", who, line)
		return false
	}
	d := digest(line)
	c.dmu.Lock()
	defer c.dmu.Unlock()
	for uint64(len(c.digests)) < seq {
		c.digests = append(c.digests, make([]uint64, max(1024, len(c.digests)))...)
	}
	switch old := c.digests[seq-1]; {
	case old == 0:
		c.digests[seq-1] = d
	case old != d:
		c.violate(round, "(b) seq %d maps to two contents over the campaign: %s printed %s (digest %#x), earlier output had digest %#x", seq, who, line, d, old)
		return false
	}
	return true
}

// known returns the recorded digest of seq (0: never seen).
func (c *campaign) known(seq uint64) uint64 {
	c.dmu.Lock()
	defer c.dmu.Unlock()
	if seq == 0 || seq > uint64(len(c.digests)) {
		return 0
	}
	return c.digests[seq-1]
}

// TestChaos is the adversarial campaign described in the package comment.
func TestChaos(t *testing.T) {
	seed, dur := config(t)
	t.Logf("chaos: seed %#x (rerun the same choices with -chaos.seed=%#x or MDJ_CHAOS_SEED=%#x), duration %v, race %v", seed, seed, seed, dur, raceEnabled)
	art, err := os.MkdirTemp("", fmt.Sprintf("mdj-chaos-%x-", seed))
	if err != nil {
		t.Fatal(err)
	}
	c := &campaign{t: t, seed: seed, art: art, dir: filepath.Join(art, "journal")}
	work := filepath.Join(art, "work")
	if err := os.MkdirAll(work, 0o750); err != nil {
		t.Fatal(err)
	}
	c.run = newRunner(work)
	t.Cleanup(func() {
		c.run.killAll()
		if t.Failed() {
			t.Logf("artefacts (journal, outputs, damaged copies) kept in %s", art)
		} else {
			os.RemoveAll(art)
		}
	})
	end := time.Now().Add(dur)
	started := time.Now()
	rounds := 0
	keep := keepGoing()
	for r := 0; r == 0 || time.Now().Before(end); r++ {
		if keep {
			// A round that ended in a violation may have left processes
			// behind: stop them before the next one starts.
			c.run.killAll()
		}
		c.round(r, time.Until(end))
		rounds++
		if c.violated() > 0 && !keep {
			break
		}
	}
	c.summary(rounds, time.Since(started))
	for _, v := range c.violations {
		t.Error(v)
	}
	var names []string
	for name := range c.knownHits {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		k := c.knownHits[name]
		t.Errorf("known defect hit %d times: %s\n  first: %s", k.count, knownBugs[name], k.example)
	}
}

func (c *campaign) summary(rounds int, took time.Duration) {
	c.dmu.Lock()
	var seen int64
	for _, d := range c.digests {
		if d != 0 {
			seen++
		}
	}
	c.dmu.Unlock()
	c.t.Logf("chaos summary: seed %#x, %d rounds in %v (policies %v in turn)", c.seed, rounds, took.Round(time.Millisecond), policies)
	c.t.Logf("  frames written (last seq of the journal): %d; distinct seqs whose content was recorded: %d", c.cnt.get("frames-written"), seen)
	c.t.Logf("  frames read: tailing readers printed %d lines, concurrent dumps %d, round-end dumps %d; named reader resumes checked %d",
		c.cnt.get("read/tail"), c.cnt.get("read/dump"), c.cnt.get("read/final-dump"), c.cnt.get("named-resume-checked"))
	c.t.Logf("  SIGKILLs by process kind:%s", c.cnt.prefixed("killed/"))
	c.t.Logf("  deaths by the campaign's SIGTERM (before the handler was installed):%s", c.cnt.prefixed("termed/"))
	c.t.Logf("  writer starts %d, round-end recoveries: gen %d, recover %d", c.cnt.get("start/writer"), c.cnt.get("recovery/gen"), c.cnt.get("recovery/recover"))
	c.t.Logf("  process outcomes:%s", c.cnt.prefixed("outcome/"))
	c.t.Logf("  damage injected: %d bit flips, %d truncations; by target:%s", c.cnt.get("flips"), c.cnt.get("truncations"), c.cnt.prefixed("target/"))
	c.t.Logf("  verify on damaged copies:%s", c.cnt.prefixed("verdict/"))
	c.t.Logf("  recover on damaged copies:%s", c.cnt.prefixed("recover/"))
}

// rngFor gives every goroutine of a round its own seeded stream.
func (c *campaign) rngFor(round int, role string) *rand.Rand {
	h := fnv.New64a()
	fmt.Fprintf(h, "%d/%s", round, role)
	return rand.New(rand.NewPCG(c.seed, h.Sum64()))
}

func sleepRand(ctx context.Context, rng *rand.Rand, lo, hi time.Duration) bool {
	d := lo + time.Duration(rng.Int64N(int64(hi-lo)+1))
	select {
	case <-ctx.Done():
		return false
	case <-time.After(d): // spaces out random events; synchronises nothing
		return true
	}
}

// round runs one round: processes under chaos, then a stop and the checks.
func (c *campaign) round(r int, remaining time.Duration) {
	rng := c.rngFor(r, "round")
	policy := policies[r%len(policies)]
	length := 3*time.Second + time.Duration(rng.Int64N(int64(5*time.Second)))
	length = max(min(length, remaining*2/3), 2*time.Second)
	c.cnt.add("policy/"+policy, 1)
	c.outputs = nil
	c.vmu.Lock()
	c.vbase = len(c.violations)
	c.vmu.Unlock()

	ctx, cancel := context.WithTimeout(context.Background(), length)
	defer cancel()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); c.superviseWriter(ctx, r, policy) }()
	if !c.waitJournal(r) {
		cancel()
		wg.Wait()
		c.stopWriter(r, false)
		return
	}
	for _, kind := range []string{"tail-named", "tail-end", "tail-seq"} {
		wg.Add(1)
		go func() { defer wg.Done(); c.superviseReader(ctx, r, kind) }()
	}
	for i := 0; i < 2; i++ {
		wg.Add(1)
		go func() { defer wg.Done(); c.maintain(ctx, r, fmt.Sprintf("maint%d", i)) }()
	}
	wg.Add(1)
	go func() { defer wg.Done(); c.inject(ctx, r) }()
	<-ctx.Done()
	wg.Wait()
	stopped := time.Now()
	c.finish(r, rng, policy)
	c.t.Logf("round %d: policy %s, %v under chaos, %v to stop and check; last seq %d, %d violations",
		r, policy, length.Round(time.Millisecond), time.Since(stopped).Round(time.Millisecond), c.cnt.get("frames-written"), c.violated())
}

// waitJournal waits until the journal has an activated segment (readers
// cannot open it before).
func (c *campaign) waitJournal(r int) bool {
	deadline := time.Now().Add(slow(30 * time.Second))
	for {
		if f, err := readFacts(c.dir, ""); err == nil && f.lastActivated() != nil {
			return true
		}
		if time.Now().After(deadline) {
			c.violate(r, "the writer created no activated segment in %s within %v", c.dir, slow(30*time.Second))
			return false
		}
		time.Sleep(5 * time.Millisecond) // polling the directory for a state, with a deadline
	}
}

// superviseWriter keeps a writer (journalctl gen) running until ctx ends:
// one the injector killed is restarted and must recover the journal.
func (c *campaign) superviseWriter(ctx context.Context, r int, policy string) {
	rng := c.rngFor(r, "writer")
	for ctx.Err() == nil {
		rate := 5000 + rng.IntN(25000)
		if testing.Short() {
			rate /= 8 // the race pass: every process is ~10x slower; keep the journal small
		}
		batch := []int{1, 1, 1, 4, 32}[rng.IntN(5)]
		p, err := c.run.start(r, "writer", "gen", "--dir", c.dir, "--count", "1000000000000", "--rate", fmt.Sprint(rate),
			"--seed", fmt.Sprint(1+rng.IntN(1000)), "--durability", policy, "--segment-size", segSize, "--batch", fmt.Sprint(batch))
		if err != nil {
			c.violate(r, "start writer: %v", err)
			return
		}
		c.cnt.add("start/writer", 1)
		c.wmu.Lock()
		c.writer = p
		c.wmu.Unlock()
		select {
		case <-p.done:
			c.judge(p)
			if c.failedRound() {
				return
			}
			sleepRand(ctx, rng, 0, 300*time.Millisecond)
		case <-ctx.Done():
			return // left running: the round's end stops it
		}
	}
}

// readerArgs are the flags of a tailing reader of kind.
func (c *campaign) readerArgs(rng *rand.Rand, kind string) ([]string, uint64) {
	args := []string{"tail", "--dir", c.dir, "--format", "json", "--wait", []string{"backoff", "futex"}[rng.IntN(2)]}
	var resume uint64
	switch kind {
	case "tail-named":
		// From the start the first time; after that the stored position
		// decides (format.md §13) and --from is ignored.
		args = append(args, "--name", readerName, "--from", "start")
		if f, err := readFacts(c.dir, readerName); err == nil && f.posSeq > 0 {
			resume = f.posSeq + 1
		}
	case "tail-end":
		args = append(args, "--from", "end")
	case "tail-seq":
		from := "start"
		if f, err := readFacts(c.dir, ""); err == nil && rng.IntN(3) > 0 {
			if a := f.activated(); len(a) > 0 {
				s := a[max(0, len(a)-1-rng.IntN(3))]
				seq := s.firstSeq
				if n := len(s.frames); n > 0 && s.frames[0].typ != typeEnd {
					seq = s.frames[rng.IntN(n)].seq // a frame that exists: the reader has something to print
				}
				from = fmt.Sprintf("seq:%d", seq)
			}
		}
		args = append(args, "--from", from)
	}
	return args, resume
}

// superviseReader keeps one tailing reader running until ctx ends; a
// killed one is restarted (the named one resumes after its position).
func (c *campaign) superviseReader(ctx context.Context, r int, kind string) {
	rng := c.rngFor(r, kind)
	for ctx.Err() == nil {
		args, resume := c.readerArgs(rng, kind)
		p, err := c.run.start(r, kind, args...)
		if err != nil {
			c.violate(r, "start %s: %v", kind, err)
			return
		}
		p.resumeFrom = resume
		c.cnt.add("start/"+kind, 1)
		c.wmu.Lock()
		c.outputs = append(c.outputs, p)
		c.wmu.Unlock()
		select {
		case <-p.done:
			c.judge(p)
			sleepRand(ctx, rng, 20*time.Millisecond, 400*time.Millisecond)
		case <-ctx.Done():
			return
		}
	}
}

// maintain runs maintenance and checking commands alongside, one at a
// time, at random moments, until ctx ends. Two of these loops run, so
// maintenance commands meet on the lock.
func (c *campaign) maintain(ctx context.Context, r int, role string) {
	rng := c.rngFor(r, role)
	for sleepRand(ctx, rng, 50*time.Millisecond, 600*time.Millisecond) {
		var kind string
		var args []string
		switch x := rng.IntN(100); {
		case x < 22:
			kind, args = "compress", []string{"compress", "--dir", c.dir, "--level", []string{"fastest", "default"}[rng.IntN(2)], "--chunk", []string{"64KiB", "1MiB"}[rng.IntN(2)]}
		case x < 44:
			// Mostly a retention that keeps what the named reader needs
			// anyway; sometimes one that would not, which prune must refuse
			// on its own (format.md §13 positions; README prune).
			keep := []int{1, 2, 3, 4, 6, 10}[rng.IntN(6)]
			kind, args = "prune", []string{"prune", "--dir", c.dir, "--keep-segments", fmt.Sprint(keep)}
		case x < 56:
			kind, args = "recover-dry", []string{"recover", "--dir", c.dir, "--dry-run"}
		case x < 68:
			kind, args = "stat", []string{"stat", "--dir", c.dir, "--json"}
		case x < 88:
			kind, args = "verify", []string{"verify", "--dir", c.dir, "--json"}
		default:
			from := "start"
			if f, err := readFacts(c.dir, ""); err == nil && rng.IntN(2) == 0 {
				if a := f.activated(); len(a) > 0 {
					from = fmt.Sprintf("seq:%d", a[rng.IntN(len(a))].firstSeq)
				}
			}
			kind, args = "dump", []string{"dump", "--dir", c.dir, "--format", "json", "--from", from, "--count", fmt.Sprint(1000 + rng.IntN(20000))}
		}
		p, err := c.run.start(r, kind, args...)
		if err != nil {
			c.violate(r, "start %s: %v", kind, err)
			return
		}
		if kind == "dump" {
			c.wmu.Lock()
			c.outputs = append(c.outputs, p)
			c.wmu.Unlock()
		}
		if !p.wait(slow(60 * time.Second)) {
			c.violate(r, "%v did not finish within %v (hang)", p, slow(60*time.Second))
			p.kill()
			<-p.done
			return
		}
		c.judge(p)
	}
}

// inject kills a random process of the campaign at random moments.
func (c *campaign) inject(ctx context.Context, r int) {
	rng := c.rngFor(r, "inject")
	for sleepRand(ctx, rng, 100*time.Millisecond, 900*time.Millisecond) {
		ps := c.run.running(func(kind string) bool { return kind != "recovery" })
		if len(ps) == 0 {
			continue
		}
		// The writer is picked a third of the time, a maintenance command
		// (short-lived, so rarely running) a third of the time when one
		// runs, else any process.
		var p *proc
		switch rng.IntN(3) {
		case 0:
			for _, q := range ps {
				if q.kind == "writer" {
					p = q
				}
			}
		case 1:
			var ms []*proc
			for _, q := range ps {
				if q.kind != "writer" && !strings.HasPrefix(q.kind, "tail-") {
					ms = append(ms, q)
				}
			}
			if len(ms) > 0 {
				p = ms[rng.IntN(len(ms))]
			}
		}
		if p == nil {
			p = ps[rng.IntN(len(ps))]
		}
		p.kill()
	}
}

// verifyJSON is `journalctl verify --json`.
type verifyJSON struct {
	OK         bool          `json:"ok"`
	JournalID  string        `json:"journal_id"`
	Segments   int           `json:"segments"`
	Frames     int64         `json:"frames"`
	FirstSeq   uint64        `json:"first_seq"`
	LastSeq    uint64        `json:"last_seq"`
	WriterLive bool          `json:"writer_live"`
	Problems   []problemJSON `json:"problems"`
}

type problemJSON struct {
	Severity string `json:"severity"`
	File     string `json:"file"`
	Offset   int64  `json:"offset"`
	Kind     string `json:"kind"`
	Reason   string `json:"reason"`
}

func (p problemJSON) String() string {
	return fmt.Sprintf("%s %s @%d %s: %s", p.Severity, p.File, p.Offset, p.Kind, p.Reason)
}

func parseVerify(b []byte) (verifyJSON, error) {
	var v verifyJSON
	err := json.Unmarshal(b, &v)
	return v, err
}

// overtaken reports whether a reader's error is the documented outcome of
// a reader that prune overtook (README, prune: "a reader already inside
// the pruned range … fails with … ErrMissing naming the missing file";
// reader.Open before the first retained frame: ErrOutOfRange).
func overtaken(stderr string) bool {
	return strings.Contains(stderr, "missing") || strings.Contains(stderr, "before the first retained frame") ||
		strings.Contains(stderr, "out of range")
}

// judge classifies how a process ended (invariant d, and each verb's
// documented outcomes).
func (c *campaign) judge(p *proc) {
	if !p.judged.CompareAndSwap(false, true) {
		return
	}
	how, v := p.basicVerdict()
	if v != "" {
		c.violate(p.round, "(d) %s", v)
		return
	}
	if how != "" {
		c.cnt.add(how+"/"+p.kind, 1)
		return
	}
	e := p.exit()
	label := ""
	bad := ""
	switch p.kind {
	case "writer":
		if e.code == 0 && p.termed.Load() {
			label = "stopped"
		} else {
			bad = "the writer failed (a writer restarted after kill -9 must recover the journal)"
		}
	case "recovery":
		if e.code == 0 {
			label = "ok"
		} else {
			bad = "recovery after the round failed"
		}
	case "tail-named", "tail-end", "tail-seq":
		switch {
		case e.code == 0 && p.termed.Load():
			label = "stopped"
		case e.code == 1 && p.kind != "tail-named" && overtaken(e.stderr):
			label = "overtaken-by-prune"
		default:
			bad = "a tailing reader failed"
			if p.kind == "tail-named" {
				bad = "the named reader failed (prune must keep what it needs; a kill -9 reissues nothing)"
			}
		}
	case "dump":
		switch {
		case e.code == 0:
			label = "ok"
		case e.code == 1 && overtaken(e.stderr):
			label = "overtaken-by-prune"
		default:
			bad = "dump failed"
		}
	case "compress", "prune":
		switch {
		case e.code == 0:
			label = "ok"
		case e.code == 1 && strings.Contains(e.stderr, "another maintenance command is running"):
			label = "busy"
		case p.kind == "compress" && e.code == 1 && strings.Contains(e.stderr, ".seg.zst.tmp") && strings.Contains(e.stderr, "no such file or directory"):
			c.knownBug(p.round, "writer-removes-live-compress-temp", "%v: %s", p, excerpt(e.stderr))
			return
		default:
			bad = p.kind + " failed"
		}
	case "recover-dry":
		switch {
		case e.code == 0:
			label = "ok"
		case e.code == 1 && strings.Contains(e.stderr, "a live writer holds the journal lock"):
			label = "writer-live"
		case e.code == 1 && notRepairedRaced(string(p.stdout())) != "":
			c.knownBug(p.round, notRepairedRaced(string(p.stdout())), "%v: %s", p, excerpt(string(p.stdout())))
			return
		default:
			bad = "recover --dry-run failed"
		}
	case "stat":
		if e.code == 0 {
			label = "ok"
		} else {
			bad = "stat failed"
		}
	case "verify":
		vj, err := parseVerify(p.stdout())
		switch {
		case err != nil:
			bad = fmt.Sprintf("verify printed no JSON (%v)", err)
		case e.code == 0 && vj.OK && len(vj.Problems) == 0:
			label = "ok"
		case e.code == 1 && !vj.OK && allTorn(vj.Problems):
			// Right after a writer was killed and before the next one
			// opened: what a crash leaves (format.md §8: torn severity).
			label = "torn-between-writers"
		case e.code == 1 && !vj.WriterLive && racedWriterStart(vj.Problems):
			c.knownBug(p.round, "verify-races-writer-start", "%v: %v", p, vj.Problems)
			return
		case e.code == 1 && vanished(vj.Problems):
			c.knownBug(p.round, "verify-races-prune", "%v: %v", p, vj.Problems)
			return
		default:
			bad = fmt.Sprintf("verify on the campaign's journal (exit %d) reported %v", e.code, vj.Problems)
		}
	default:
		if e.code == 0 {
			label = "ok"
		} else {
			bad = p.kind + " failed"
		}
	}
	if bad != "" {
		c.violate(p.round, "(d) %v: %s: exit %d, stderr: %s", p, bad, e.code, excerpt(e.stderr))
		return
	}
	c.cnt.add("outcome/"+p.kind+":"+label, 1)
}

// vanished: every finding is a file that disappeared under verify (a
// concurrent prune or compress), or torn.
func vanished(ps []problemJSON) bool {
	for _, p := range ps {
		if p.Severity != "torn" && p.Kind != "missing" && !strings.Contains(p.Reason, "no such file or directory") {
			return false
		}
	}
	return true
}

// notRepairedRaced: recover --dry-run (which plans from a verify run and
// takes no lock) refused only files that disappeared under it (prune), or
// only the segment a writer starting meanwhile was filling. It returns the
// known defect, "" otherwise.
func notRepairedRaced(out string) string {
	var vanished, started, n int
	for _, l := range strings.Split(out, "\n") {
		if !strings.HasPrefix(l, "NOT REPAIRED") {
			continue
		}
		n++
		switch {
		case strings.Contains(l, "no such file or directory") || strings.Contains(l, "is missing"):
			vanished++
		case strings.Contains(l, "but a valid frame follows") || strings.Contains(l, "not the last one"):
			started++
		}
	}
	switch {
	case n > 0 && vanished == n:
		return "verify-races-prune"
	case n > 0 && started == n:
		return "verify-races-writer-start"
	}
	return ""
}

// racedWriterStart: the findings are those of a segment a writer that
// opened during verify activated and filled after verify listed it as
// prepared (verify saw no live writer when it started).
func racedWriterStart(ps []problemJSON) bool {
	n := 0
	for _, p := range ps {
		switch {
		case p.Severity == "torn":
		case strings.Contains(p.Reason, "in a segment that is not the last one") || strings.Contains(p.Reason, "but a later segment is") ||
			strings.Contains(p.Reason, "but a valid frame follows"):
			// (a persistent finding would also fail the round-end verify, c)
			n++
		default:
			return false
		}
	}
	return n > 0
}

func allTorn(ps []problemJSON) bool {
	for _, p := range ps {
		if p.Severity != "torn" {
			return false
		}
	}
	return true
}

// runSync runs a command to its end (hard deadline) and judges it.
func (c *campaign) runSync(r int, kind string, args ...string) *proc {
	p, err := c.run.start(r, kind, args...)
	if err != nil {
		c.violate(r, "start %s: %v", kind, err)
		return nil
	}
	if !p.wait(slow(90 * time.Second)) {
		c.violate(r, "%v did not finish within %v (hang)", p, slow(90*time.Second))
		p.kill()
		<-p.done
		return nil
	}
	return p
}

// stopWriter stops the round's writer: SIGKILL (kill) or SIGTERM.
func (c *campaign) stopWriter(r int, kill bool) bool {
	c.wmu.Lock()
	w := c.writer
	c.wmu.Unlock()
	if w == nil || w.exited() {
		return true // the injector killed it last; it was judged already
	}
	if kill {
		w.kill()
	} else {
		w.term()
	}
	if !w.wait(slow(60 * time.Second)) {
		c.violate(r, "%v did not stop within %v of SIGTERM (hang)", w, slow(60*time.Second))
		w.kill()
		<-w.done
		return false
	}
	<-w.done
	return true
}

// finish ends a round: stop the writer (SIGKILL or SIGTERM), snapshot the
// journal for the damage phase, recover, verify, let the readers catch up,
// stop them, dump, and check every printed frame.
func (c *campaign) finish(r int, rng *rand.Rand, policy string) {
	t0 := time.Now()
	var phases []string
	mark := func(name string) {
		phases = append(phases, fmt.Sprintf("%s %v", name, time.Since(t0).Round(time.Millisecond)))
		t0 = time.Now()
	}
	defer func() { c.t.Logf("round %d end phases: %s", r, strings.Join(phases, ", ")) }()
	killWriter := rng.IntN(2) == 0
	c.stopWriter(r, killWriter)
	// The writer supervisor judged nothing after ctx ended: judge it here.
	c.wmu.Lock()
	w := c.writer
	c.wmu.Unlock()
	if w != nil {
		c.judge(w)
	}
	if c.failedRound() {
		return
	}

	// The journal as the crash (or the clean stop) left it: the damage
	// phase works on copies of it.
	snap := filepath.Join(c.art, "snapshot")
	os.RemoveAll(snap)
	if err := copyTree(c.dir, snap); err != nil {
		c.violate(r, "copy the journal: %v", err)
		return
	}

	// Before any recovery: a kill -9 leaves only what format.md §8 calls
	// torn (repairable) findings, never damage.
	if p := c.runSync(r, "verify-before-recovery", "verify", "--dir", c.dir, "--json"); p != nil {
		c.checkVerify(r, p, true)
	}
	f, err := readFacts(c.dir, "")
	if err != nil {
		c.violate(r, "read the journal: %v", err)
		return
	}
	if last := f.lastActivated(); last != nil && !last.current().clean() {
		// The writer died: recover with a writer open (gen --count 0) or
		// with journalctl recover; either must succeed.
		if rng.IntN(2) == 0 {
			c.cnt.add("recovery/gen", 1)
			if p := c.runSync(r, "recovery", "gen", "--dir", c.dir, "--count", "0", "--durability", policy, "--segment-size", segSize); p != nil {
				c.judge(p)
			}
		} else {
			c.cnt.add("recovery/recover", 1)
			if p := c.runSync(r, "recovery", "recover", "--dir", c.dir, "--json"); p != nil {
				c.judge(p)
			}
		}
	}
	mark("stop+recover")
	// Fresh frames after the recovery: every live reader, wherever it
	// started, has something to reach.
	if p := c.runSync(r, "recovery", "gen", "--dir", c.dir, "--count", fmt.Sprint(1+rng.IntN(100)), "--durability", policy, "--segment-size", segSize, "--seed", fmt.Sprint(1+rng.IntN(1000))); p != nil {
		c.judge(p)
	}
	// (c) verify is OK on the live journal.
	p := c.runSync(r, "verify-after-recovery", "verify", "--dir", c.dir, "--json")
	if p == nil {
		return
	}
	vj := c.checkVerify(r, p, false)
	if c.failedRound() {
		return
	}
	c.cnt.add("frames-written", int64(vj.LastSeq)-c.cnt.get("frames-written"))

	// The readers still running must reach the end (a live reader is woken
	// or polls within 100 ms, format.md §6).
	readers := c.run.running(func(k string) bool { return strings.HasPrefix(k, "tail-") })
	deadline := time.Now().Add(slow(30 * time.Second))
	for _, rd := range readers {
		for {
			if seq, ok := lastLineSeq(rd.out); (ok && seq >= vj.LastSeq) || rd.exited() {
				break
			}
			if time.Now().After(deadline) {
				seq, _ := lastLineSeq(rd.out)
				c.violate(r, "%v did not reach the journal's last seq %d within %v of the writer's stop (it printed up to %d)", rd, vj.LastSeq, slow(30*time.Second), seq)
				break
			}
			time.Sleep(10 * time.Millisecond) // polling its output for a state, with a deadline
		}
	}
	for _, rd := range readers {
		if rng.IntN(4) == 0 {
			rd.kill()
		} else {
			rd.term()
		}
	}
	for _, rd := range readers {
		if !rd.wait(slow(20 * time.Second)) {
			c.violate(r, "%v did not stop within %v of SIGTERM (hang)", rd, slow(20*time.Second))
			rd.kill()
		}
		<-rd.done
		c.judge(rd)
	}
	if c.failedRound() {
		return
	}
	mark("readers")

	// The reference: dump of the whole retained journal.
	d := c.runSync(r, "final-dump", "dump", "--dir", c.dir, "--format", "json", "--from", "start")
	if d == nil {
		return
	}
	if how, v := d.basicVerdict(); v != "" || how != "" || d.exit().code != 0 {
		c.violate(r, "(a) dump of the quiet journal failed: %v %s exit %d: %s", d, v, d.exit().code, excerpt(d.exit().stderr))
		return
	}
	ref := map[uint64][]byte{}
	lines := completeLines(d.stdout())
	c.cnt.add("read/final-dump", int64(len(lines)))
	var prev uint64
	for i, l := range lines {
		seq, ok := lineSeq(l)
		if !ok {
			c.violate(r, "(a) dump printed a line that is not a frame: %q", l)
			return
		}
		if (i == 0 && seq != vj.FirstSeq) || (i > 0 && seq != prev+1) {
			c.violate(r, "(a) dump of the quiet journal: line %d has seq %d after %d (verify says seq %d..%d)", i, seq, prev, vj.FirstSeq, vj.LastSeq)
			return
		}
		prev = seq
		ref[seq] = l
		c.record(r, seq, l, "final dump")
	}
	if prev != vj.LastSeq {
		c.violate(r, "(a) dump of the quiet journal ends at seq %d, verify says %d", prev, vj.LastSeq)
	}
	c.checkOutputs(r, ref)
	mark(fmt.Sprintf("dump+check (%d frames retained)", len(ref)))

	// Damage on copies of the snapshot.
	if !c.failedRound() {
		c.damagePhase(r, snap)
	}
	mark("damage")
	if !c.failedRound() {
		c.cleanWork()
	}
}

// checkVerify judges a round-end verify: OK after recovery; only torn
// findings before it (a crash leaves nothing else).
func (c *campaign) checkVerify(r int, p *proc, beforeRecovery bool) verifyJSON {
	how, v := p.basicVerdict()
	if v != "" || how != "" {
		c.violate(r, "(d) %v: %s %s", p, how, v)
		return verifyJSON{}
	}
	e := p.exit()
	vj, err := parseVerify(p.stdout())
	if err != nil {
		c.violate(r, "%v printed no JSON: %v; stderr %s", p, err, excerpt(e.stderr))
		return vj
	}
	if beforeRecovery {
		if !allTorn(vj.Problems) {
			c.violate(r, "verify right after the writer's stop (journal copy in %s) reports more than torn findings: %v", filepath.Join(c.art, "snapshot"), vj.Problems)
		}
		if len(vj.Problems) > 0 {
			c.cnt.add("outcome/verify-before-recovery:torn", 1)
		}
		return vj
	}
	if e.code != 0 || !vj.OK || len(vj.Problems) > 0 {
		c.violate(r, "(c) verify of the live journal after recovery: exit %d, problems %v, stderr %s", e.code, vj.Problems, excerpt(e.stderr))
	}
	return vj
}

// checkOutputs checks what every reader and dump of the round printed:
// (a) each line equals the reference dump's line of that seq, (b) no seq
// has two contents over the campaign, each process printed contiguous seqs,
// and a resumed named reader started right after its stored position.
func (c *campaign) checkOutputs(r int, ref map[uint64][]byte) {
	c.wmu.Lock()
	outs := c.outputs
	c.wmu.Unlock()
	for _, p := range outs {
		<-p.done
		lines := completeLines(p.stdout())
		who := p.String()
		if strings.HasPrefix(p.kind, "tail-") {
			c.cnt.add("read/tail", int64(len(lines)))
		} else {
			c.cnt.add("read/dump", int64(len(lines)))
		}
		var prev uint64
		for i, l := range lines {
			seq, ok := lineSeq(l)
			if !ok {
				c.violate(r, "%s printed a line that is not a frame: %q", who, l)
				return
			}
			if i > 0 && seq != prev+1 {
				c.violate(r, "%s printed seq %d after %d: a reader never skips or repeats a frame", who, seq, prev)
				return
			}
			if i == 0 && p.resumeFrom != 0 {
				c.cnt.add("named-resume-checked", 1)
				if seq != p.resumeFrom {
					c.violate(r, "%s resumed at seq %d; its stored position said %d was consumed (format.md §13: resume at seq + 1)", who, seq, p.resumeFrom-1)
					return
				}
			}
			prev = seq
			if want, ok := ref[seq]; ok && !bytes.Equal(want, l) {
				c.violate(r, "(a) %s printed seq %d as\n  %s\nbut dump of the journal has\n  %s", who, seq, l, want)
				return
			}
			if !c.record(r, seq, l, who) {
				return
			}
		}
	}
}

// cleanWork removes the outputs of finished processes.
func (c *campaign) cleanWork() {
	live := map[string]bool{}
	for _, p := range c.run.running(func(string) bool { return true }) {
		live[p.out], live[p.errf] = true, true
	}
	ents, _ := os.ReadDir(c.run.work)
	for _, e := range ents {
		if p := filepath.Join(c.run.work, e.Name()); !live[p] {
			os.Remove(p)
		}
	}
}
