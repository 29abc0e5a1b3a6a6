package chaos_test

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// proc is one journalctl process of the campaign.
type proc struct {
	id        int
	kind      string // writer, recovery, tail-named, tail-end, tail-seq, dump, compress, prune, recover-dry, stat, verify, …
	args      []string
	round     int
	out, errf string // files holding its stdout and stderr
	cmd       *exec.Cmd
	started   time.Time

	judged atomic.Bool // its end was classified
	killed atomic.Bool // the campaign sent SIGKILL
	termed atomic.Bool // the campaign sent SIGTERM

	done chan struct{}
	ws   syscall.WaitStatus

	// resumeFrom: a named reader restarted after its stored position P
	// must print P+1 first (0: nothing to check).
	resumeFrom uint64
}

// runner starts and tracks processes.
type runner struct {
	self string // the test binary, run as journalctl
	work string // where outputs go
	next atomic.Int64

	mu   sync.Mutex
	live map[*proc]bool
}

func newRunner(work string) *runner {
	self, err := os.Executable()
	if err != nil {
		self = os.Args[0]
	}
	return &runner{self: self, work: work, live: map[*proc]bool{}}
}

// start runs journalctl args as kind.
func (r *runner) start(round int, kind string, args ...string) (*proc, error) {
	id := int(r.next.Add(1))
	p := &proc{id: id, kind: kind, args: args, round: round, done: make(chan struct{}),
		out:  filepath.Join(r.work, fmt.Sprintf("%07d-%s.out", id, kind)),
		errf: filepath.Join(r.work, fmt.Sprintf("%07d-%s.err", id, kind))}
	fo, err := os.Create(p.out)
	if err != nil {
		return nil, err
	}
	defer fo.Close()
	fe, err := os.Create(p.errf)
	if err != nil {
		return nil, err
	}
	defer fe.Close()
	p.cmd = exec.Command(r.self, args...)
	p.cmd.Env = append(os.Environ(), execEnv+"=journalctl")
	p.cmd.Stdout, p.cmd.Stderr = fo, fe
	if err := p.cmd.Start(); err != nil {
		return nil, err
	}
	p.started = time.Now()
	r.mu.Lock()
	r.live[p] = true
	r.mu.Unlock()
	go func() {
		p.cmd.Wait()
		if st := p.cmd.ProcessState; st != nil {
			p.ws = st.Sys().(syscall.WaitStatus)
		}
		r.mu.Lock()
		delete(r.live, p)
		r.mu.Unlock()
		close(p.done)
	}()
	return p, nil
}

// running returns the live processes whose kind passes keep.
func (r *runner) running(keep func(kind string) bool) []*proc {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []*proc
	for p := range r.live {
		if keep(p.kind) {
			out = append(out, p)
		}
	}
	// Deterministic order for the seeded choice.
	for i := 1; i < len(out); i++ {
		for j := i; j > 0 && out[j].id < out[j-1].id; j-- {
			out[j], out[j-1] = out[j-1], out[j]
		}
	}
	return out
}

// killAll SIGKILLs every live process (test cleanup).
func (r *runner) killAll() {
	for _, p := range r.running(func(string) bool { return true }) {
		p.kill()
		<-p.done
	}
}

func (p *proc) kill() {
	p.killed.Store(true)
	p.cmd.Process.Signal(syscall.SIGKILL)
}

func (p *proc) term() {
	p.termed.Store(true)
	p.cmd.Process.Signal(syscall.SIGTERM)
}

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// wait waits up to d for the process to end.
func (p *proc) wait(d time.Duration) bool {
	select {
	case <-p.done:
		return true
	case <-time.After(d):
		return false
	}
}

func (p *proc) stdout() []byte {
	b, _ := os.ReadFile(p.out)
	return b
}

func (p *proc) stderr() string {
	b, _ := os.ReadFile(p.errf)
	return string(b)
}

func (p *proc) String() string {
	return fmt.Sprintf("%s #%d (journalctl %s)", p.kind, p.id, strings.Join(p.args, " "))
}

// exit describes how a finished process ended.
type exit struct {
	signaled bool
	sig      syscall.Signal
	code     int
	stderr   string
}

func (p *proc) exit() exit {
	e := exit{stderr: p.stderr()}
	if p.ws.Signaled() {
		e.signaled, e.sig = true, p.ws.Signal()
	} else {
		e.code = p.ws.ExitStatus()
	}
	return e
}

// crashMarks are what a Go process prints when it dies of a panic, a fatal
// runtime error or a race the detector saw.
var crashMarks = []string{"panic:", "goroutine ", "fatal error:", "DATA RACE", "SIGBUS", "SIGSEGV"}

// basicVerdict applies the rules every process obeys (invariant d): a
// signal death only from a signal the campaign sent, no panic or runtime
// crash, exit status 0, 1 or 2. It returns "killed" or "termed" for a
// death the campaign caused, "" otherwise, and a violation if any.
func (p *proc) basicVerdict() (string, string) {
	e := p.exit()
	if e.signaled {
		switch {
		case e.sig == syscall.SIGKILL && p.killed.Load():
			return "killed", ""
		case e.sig == syscall.SIGTERM && p.termed.Load():
			return "termed", ""
		}
		return "", fmt.Sprintf("%v died of signal %v that the campaign did not send; stderr: %s", p, e.sig, excerpt(e.stderr))
	}
	for _, m := range crashMarks {
		if strings.Contains(e.stderr, m) {
			return "", fmt.Sprintf("%v exited %d after a crash (%q on stderr): %s", p, e.code, m, excerpt(e.stderr))
		}
	}
	if e.code < 0 || e.code > 2 {
		return "", fmt.Sprintf("%v exited with status %d (only 0, 1, 2 are defined): %s", p, e.code, excerpt(e.stderr))
	}
	return "", ""
}

func excerpt(s string) string {
	s = strings.TrimSpace(s)
	if len(s) > 1500 {
		s = s[:1500] + "…"
	}
	if s == "" {
		return "(empty)"
	}
	return s
}

// completeLines returns the lines of b that end in a newline (a process
// killed in the middle of a write leaves a partial last line: dropped).
func completeLines(b []byte) [][]byte {
	if i := bytes.LastIndexByte(b, '\n'); i >= 0 {
		b = b[:i]
	} else {
		return nil
	}
	if len(b) == 0 {
		return nil
	}
	return bytes.Split(b, []byte{'\n'})
}

// lineSeq returns the seq of a JSON frame line ({"seq":N,...}).
func lineSeq(l []byte) (uint64, bool) {
	const pre = `{"seq":`
	if !bytes.HasPrefix(l, []byte(pre)) {
		return 0, false
	}
	var n uint64
	i := len(pre)
	for ; i < len(l) && l[i] >= '0' && l[i] <= '9'; i++ {
		n = n*10 + uint64(l[i]-'0')
	}
	if i == len(pre) || i >= len(l) || l[i] != ',' {
		return 0, false
	}
	return n, true
}

// lastLineSeq returns the seq of the last complete line of a file, reading
// only its tail.
func lastLineSeq(path string) (uint64, bool) {
	f, err := os.Open(path)
	if err != nil {
		return 0, false
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil || st.Size() == 0 {
		return 0, false
	}
	n := min(st.Size(), 8192)
	b := make([]byte, n)
	if _, err := f.ReadAt(b, st.Size()-n); err != nil {
		return 0, false
	}
	ls := completeLines(b)
	if len(ls) == 0 {
		return 0, false
	}
	return lineSeq(ls[len(ls)-1])
}
