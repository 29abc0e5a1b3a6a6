package powerloss_test

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mdjournal/mdjournal/ops/inspect"
	"github.com/mdjournal/mdjournal/ops/retention"
	"github.com/mdjournal/mdjournal/ops/verify"
	"github.com/mdjournal/mdjournal/reader"
	"golang.org/x/sys/unix"
)

// scriptChild runs the ';'-separated commands of PL_SCRIPT, printing one
// or more lines each (the targeted tests drive small steps with it):
//
//	flush PATH OFF LEN      map PATH shared and msync(MS_SYNC) [OFF,OFF+LEN):
//	                        the kernel writes those pages back (and only them),
//	                        as its flusher may at any time
//	verify DIR              "problem SEVERITY KIND FILE" per finding, then "verified N"
//	openclose DIR POLICY    writer.Open then Close: "recovery {json}"
//	openwait DIR POLICY     open, poll verify until no index finding (≤ 10 s), close:
//	                        "indexes LEFT after DURATION"
//	write DIR POLICY N [flushlock]
//	                        open, append N campaign frames (then fsync
//	                        journal.lock, as the kernel writing it back), Close:
//	                        "wrote LAST"
//	inspect DIR             "durability {json}" and "writer {json}"
//	read DIR                read from the start until nothing more: "read N last SEQ"
//	readers DIR             what reader.ListNamed, inspect.Journal, inspect.Stat
//	                        and a dry-run prune say about named readers:
//	                        "reader TOOL ..." lines
//	snapopen DIR SNAP       booksnap.OpenWriter, then close: "snapopen ok"
//
// A failure prints "err ..." and exits 1.
func scriptChild() int {
	for _, cmd := range strings.Split(os.Getenv("PL_SCRIPT"), ";") {
		a := strings.Fields(cmd)
		if len(a) == 0 {
			continue
		}
		if err := runCommand(a); err != nil {
			say("err %s: %v", a[0], err)
			return 1
		}
	}
	return 0
}

func runCommand(a []string) error {
	switch a[0] {
	case "flush":
		off, _ := strconv.Atoi(a[2])
		n, _ := strconv.Atoi(a[3])
		f, err := os.OpenFile(a[1], os.O_RDWR, 0)
		if err != nil {
			return err
		}
		defer f.Close()
		st, err := f.Stat()
		if err != nil {
			return err
		}
		m, err := unix.Mmap(int(f.Fd()), 0, int(st.Size()), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
		if err != nil {
			return err
		}
		defer unix.Munmap(m)
		if err := unix.Msync(m[off:off+n], unix.MS_SYNC); err != nil {
			return err
		}
		say("flushed")
	case "verify":
		rep, err := verify.Journal(a[1], verify.Options{})
		if err != nil {
			return err
		}
		for _, p := range rep.Problems {
			say("problem %s %s %s %s", p.Severity, verify.Kind(p.Err), filepath.Base(p.Err.File), strings.ReplaceAll(p.Err.Reason, "\n", " "))
		}
		say("verified %d", len(rep.Problems))
	case "openclose":
		w, _, err := openCampaignWriter(a[1], a[2], segSize, "")
		if err != nil {
			return err
		}
		b, _ := json.Marshal(w.Recovery())
		say("recovery %s", b)
		return w.Close()
	case "openwait":
		// Open, wait (bounded) until verify finds no index problem, close.
		w, _, err := openCampaignWriter(a[1], a[2], segSize, "")
		if err != nil {
			return err
		}
		start := time.Now()
		left := -1
		for time.Since(start) < 10*time.Second {
			rep, err := verify.Journal(a[1], verify.Options{})
			if err != nil {
				w.Close()
				return err
			}
			left = 0
			for _, p := range rep.Problems {
				if p.Severity == verify.Index {
					left++
				}
			}
			if left == 0 {
				break
			}
			time.Sleep(time.Millisecond) // polling observable state, bounded above
		}
		say("indexes %d after %s", left, time.Since(start).Round(time.Millisecond))
		return w.Close()
	case "write":
		n, _ := strconv.Atoi(a[3])
		w, _, err := openCampaignWriter(a[1], a[2], segSize, "")
		if err != nil {
			return err
		}
		buf := make([]byte, 512)
		err = defineInstruments(w)
		for i := 0; i < n && err == nil; i++ {
			err = stageOne(w, buf)
		}
		if err == nil {
			err = w.Publish()
		}
		if err == nil && len(a) > 4 && a[4] == "flushlock" {
			// The kernel writes the lock file (holding this PID) back.
			if f, ferr := os.Open(filepath.Join(a[1], "journal.lock")); ferr == nil {
				err = f.Sync()
				f.Close()
			}
		}
		last := w.LastSeq()
		if cerr := w.Close(); err == nil {
			err = cerr
		}
		say("wrote %d", last)
		return err
	case "inspect":
		rep, err := inspect.Journal(a[1], inspect.Options{})
		if err != nil {
			return err
		}
		d, _ := json.Marshal(rep.Durability)
		w, _ := json.Marshal(rep.Writer)
		say("durability %s", d)
		say("writer %s", w)
	case "read":
		r, err := reader.Open(a[1], reader.Options{})
		if err != nil {
			return err
		}
		defer r.Close()
		var n int
		for {
			_, ok, err := r.TryNext()
			if err != nil {
				say("read error %v", err)
				break
			}
			if !ok {
				break
			}
			n++
		}
		say("read %d last %d", n, r.LastSeq())
	case "readers":
		named, err := reader.ListNamed(a[1])
		if err != nil {
			say("reader listnamed error %v", err)
		}
		for _, n := range named {
			say("reader listnamed %s seq %d epoch %d", n.Name, n.Seq, n.Epoch)
		}
		if ir, err := inspect.Journal(a[1], inspect.Options{}); err == nil {
			for _, r := range ir.Readers {
				say("reader inspect %s error %q", r.Name, r.Error)
			}
		}
		if sr, err := inspect.Stat(a[1]); err == nil {
			for _, r := range sr.Readers {
				say("reader stat %s error %q", r.Name, r.Error)
			}
		}
		if _, err := retention.Prune(a[1], retention.Options{KeepSegments: 1, DryRun: true}); err != nil {
			say("reader prune error %v", err)
		}
	case "snapopen":
		w, m, err := openCampaignWriter(a[1], "none", segSize, a[2])
		if err != nil {
			return err
		}
		err = w.Close()
		if cerr := m.Close(); err == nil {
			err = cerr
		}
		say("snapopen ok")
		return err
	default:
		say("err unknown command %q", a[0])
		os.Exit(2)
	}
	return nil
}

// runScript runs a script child to completion and returns its lines; a
// failed command fails the test.
func runScript(t *testing.T, cmds ...string) []string {
	t.Helper()
	lines, err := tryScript(t, cmds...)
	if err != nil {
		t.Fatalf("script %q: %v: %q", cmds, err, lines)
	}
	return lines
}

func tryScript(t *testing.T, cmds ...string) ([]string, error) {
	t.Helper()
	c := startChild(t, "script", "PL_SCRIPT="+strings.Join(cmds, ";"))
	select {
	case <-c.done:
	case <-time.After(2 * time.Minute):
		c.kill(t)
		t.Fatalf("script %q did not finish within 2 minutes", cmds)
	}
	lines := c.rest(t)
	if c.err != nil {
		return lines, fmt.Errorf("%w (stderr: %s)", c.err, c.stderr.head(3))
	}
	return lines, nil
}

// linesWith returns the lines that start with prefix.
func linesWith(lines []string, prefix string) []string {
	var out []string
	for _, l := range lines {
		if strings.HasPrefix(l, prefix) {
			out = append(out, l)
		}
	}
	return out
}
