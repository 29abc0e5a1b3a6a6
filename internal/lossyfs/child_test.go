package lossyfs

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mdjournal/mdjournal/internal/testutil"
	"golang.org/x/sys/unix"
)

// The tests drive file I/O through child processes (re-executions of the
// test binary) whenever memory mapped from the mount is involved: the test
// process serves the mount and must never fault on it (see the package
// documentation). A child runs a small script, one command per element:
//
//	open PATH [create]       open read-write (O_CREAT, 0644)
//	mmap LEN                 map the open file MAP_SHARED read-write
//	fill OFF LEN BYTE        store BYTE into the mapping
//	pattern OFF LEN          store pat(i) at each mapped offset i
//	populate                 MADV_POPULATE_WRITE the whole mapping
//	msync OFF LEN sync|async msync the mapping range
//	munmap
//	write OFF LEN BYTE       pwrite(2)
//	fsync | fdatasync
//	fallocate MODE OFF LEN
//	fsyncdir PATH
//	flock                    flock(LOCK_EX|LOCK_NB); prints "flock ok" or "flock busy"
//	close
//	tryclose                 close, ignoring its error (a failed write-back)
//	ready                    print "ready", wait for a line on stdin
//	say WORD                 print WORD
//	mount DIR                Mount on DIR; print "unavailable" if the error
//	                         wraps ErrUnavailable, then the error or "mounted"
//	records N                store record i (64 bytes of rec(i) at 64*i) and
//	                         msync(MS_SYNC) its page, printing "ack i", for
//	                         i < N; print "eio" and stop at the first failure
//
// Every failure prints "error: ..." and exits 1.

const childRole = "lossyfs-child"
const scriptEnv = "LOSSYFS_SCRIPT"

// childDeadline bounds every wait on a child: a hang fails the test instead
// of stalling it.
const childDeadline = 30 * time.Second

func TestMain(m *testing.M) {
	if testutil.Role() == childRole {
		os.Exit(runChild(strings.Split(os.Getenv(scriptEnv), ";")))
	}
	os.Exit(m.Run())
}

// pat is the byte stored at offset i by "pattern": it differs between
// neighbouring bytes and between pages, so a misplaced page shows.
func pat(i int) byte { return byte(i*7 + i/pageSize*13 + 1) }

const recordSize = 64

// rec is the byte of record i (never zero).
func rec(i int) byte { return byte(i%250 + 1) }

func runChild(script []string) int {
	var f *os.File
	var m []byte
	out := bufio.NewWriter(os.Stdout)
	in := bufio.NewReader(os.Stdin)
	say := func(s string) { fmt.Fprintln(out, s); out.Flush() }
	fail := func(format string, a ...any) int {
		say("error: " + fmt.Sprintf(format, a...))
		return 1
	}
	for _, line := range script {
		w := strings.Fields(line)
		if len(w) == 0 {
			continue
		}
		num := func(i int) int {
			v, err := strconv.ParseInt(w[i], 0, 64)
			if err != nil {
				panic(fmt.Sprintf("bad number in %q", line))
			}
			return int(v)
		}
		var err error
		switch w[0] {
		case "open":
			flags := os.O_RDWR
			if len(w) > 2 && w[2] == "create" {
				flags |= os.O_CREATE
			}
			f, err = os.OpenFile(w[1], flags, 0o644)
		case "mmap":
			m, err = unix.Mmap(int(f.Fd()), 0, num(1), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
		case "fill":
			off, n := num(1), num(2)
			for i := off; i < off+n; i++ {
				m[i] = byte(num(3))
			}
		case "pattern":
			off, n := num(1), num(2)
			for i := off; i < off+n; i++ {
				m[i] = pat(i)
			}
		case "populate":
			err = unix.Madvise(m, unix.MADV_POPULATE_WRITE)
		case "msync":
			flag := unix.MS_ASYNC
			if w[3] == "sync" {
				flag = unix.MS_SYNC
			}
			err = unix.Msync(m[num(1):num(1)+num(2)], flag)
		case "munmap":
			err = unix.Munmap(m)
			m = nil
		case "write":
			b := make([]byte, num(2))
			for i := range b {
				b[i] = byte(num(3))
			}
			_, err = f.WriteAt(b, int64(num(1)))
		case "fsync":
			err = unix.Fsync(int(f.Fd()))
		case "fdatasync":
			err = unix.Fdatasync(int(f.Fd()))
		case "fallocate":
			err = unix.Fallocate(int(f.Fd()), uint32(num(1)), int64(num(2)), int64(num(3)))
		case "fsyncdir":
			var d *os.File
			if d, err = os.Open(w[1]); err == nil {
				err = d.Sync()
				d.Close()
			}
		case "flock":
			err = unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
			switch err {
			case nil:
				say("flock ok")
			case unix.EWOULDBLOCK:
				say("flock busy")
				err = nil
			}
		case "close":
			err = f.Close()
		case "tryclose":
			f.Close()
		case "ready":
			say("ready")
			if _, err := in.ReadString('\n'); err != nil {
				return fail("ready: stdin: %v", err)
			}
		case "say":
			say(w[1])
		case "mount":
			fsys, err := Mount(w[1], Options{})
			if errors.Is(err, ErrUnavailable) {
				say("unavailable")
			}
			if err != nil {
				say(err.Error())
				return 0
			}
			fsys.Unmount()
			say("mounted")
		case "records":
			for i := range num(1) {
				off := i * recordSize
				for j := off; j < off+recordSize; j++ {
					m[j] = rec(i)
				}
				if err := unix.Msync(m[off&^(pageSize-1):off+recordSize], unix.MS_SYNC); err != nil {
					say("eio")
					break
				}
				say(fmt.Sprintf("ack %d", i))
			}
		default:
			return fail("unknown command %q", line)
		}
		if err != nil {
			return fail("%s: %v", line, err)
		}
	}
	return 0
}

// child is a running script.
type child struct {
	t     *testing.T
	cmd   *exec.Cmd
	stdin io.WriteCloser
	lines chan string
	done  chan error
}

// startChild runs script in a child process whose working directory is dir.
func startChild(t *testing.T, dir string, script ...string) *child {
	t.Helper()
	return startChildAs(t, "", nil, dir, script...)
}

// startChildAs is startChild with another copy of the test binary (""
// means this one) run with other credentials (nil means ours).
func startChildAs(t *testing.T, binary string, cred *syscall.Credential, dir string, script ...string) *child {
	t.Helper()
	cmd := testutil.Command(t, "TestMain", childRole, scriptEnv+"="+strings.Join(script, ";"),
		// A -race binary otherwise sleeps a second at exit.
		"GORACE="+strings.TrimSpace(os.Getenv("GORACE")+" atexit_sleep_ms=0"))
	cmd.Dir = dir
	if binary != "" {
		cmd.Path, cmd.Args[0] = binary, binary
	}
	if cred != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	c := &child{t: t, cmd: cmd, stdin: stdin, lines: make(chan string, 16), done: make(chan error, 1)}
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			c.lines <- sc.Text()
		}
		close(c.lines)
		c.done <- cmd.Wait()
	}()
	t.Cleanup(func() {
		if c.cmd.ProcessState == nil {
			c.cmd.Process.Kill()
		}
	})
	return c
}

// expect reads the child's next line and fails the test unless it is want.
func (c *child) expect(want string) {
	c.t.Helper()
	select {
	case got, ok := <-c.lines:
		if !ok {
			c.t.Fatalf("child exited (%v) while the test waited for %q", <-c.done, want)
		}
		if got != want {
			c.t.Fatalf("child said %q, want %q", got, want)
		}
	case <-time.After(childDeadline):
		c.cmd.Process.Kill()
		c.t.Fatalf("child said nothing for %v while the test waited for %q", childDeadline, want)
	}
}

// resume lets a child waiting in "ready" go on.
func (c *child) resume() {
	c.t.Helper()
	if _, err := io.WriteString(c.stdin, "go\n"); err != nil {
		c.t.Fatal(err)
	}
}

// kill sends SIGKILL and waits for the child to be gone: its files are
// closed and its mappings torn down when this returns.
func (c *child) kill() {
	c.t.Helper()
	if err := c.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		c.t.Fatal(err)
	}
	err := c.wait()
	if ws, ok := c.cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		c.t.Fatalf("child did not die of SIGKILL: %v", err)
	}
}

// wait waits (bounded) for the child to exit and returns its error.
func (c *child) wait() error {
	c.t.Helper()
	timeout := time.After(childDeadline)
	for {
		select {
		case line, ok := <-c.lines:
			if ok {
				c.t.Errorf("child said %q before exiting", line)
				continue
			}
			return <-c.done
		case <-timeout:
			c.cmd.Process.Kill()
			c.t.Fatalf("child did not exit within %v", childDeadline)
		}
	}
}

// success waits for the child to exit and fails the test unless it exited 0.
func (c *child) success() {
	c.t.Helper()
	if err := c.wait(); err != nil {
		c.t.Fatalf("child: %v", err)
	}
}
