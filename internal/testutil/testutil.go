// Package testutil holds helpers shared by mdjournal's tests: re-executing
// the test binary as a separate helper process, and locating the shared real
// market data.
package testutil

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// HelperEnv is the environment variable that selects a helper role in a
// re-executed test binary.
const HelperEnv = "MDJ_TEST_HELPER"

// Role returns the helper role this process was started for ("" in the
// normal test run).
func Role() string { return os.Getenv(HelperEnv) }

// Command returns a command that re-runs the current test binary as a helper
// process: only testName runs, with HelperEnv=role and the extra env.
func Command(t testing.TB, testName, role string, env ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^"+testName+"$", "-test.count=1", "-test.timeout=10m")
	cmd.Env = append(append(os.Environ(), HelperEnv+"="+role), env...)
	cmd.Stderr = os.Stderr
	return cmd
}

// SharedData returns the path of ../shared/data/<sub> found by walking up
// from the working directory, or skips the test with a clear message.
func SharedData(t testing.TB, sub string) string {
	t.Helper()
	dir, _ := os.Getwd()
	for {
		p := filepath.Join(dir, "..", "shared", "data", sub)
		if st, err := os.Stat(p); err == nil && st.IsDir() {
			return p
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Skipf("real market data not found: no ../shared/data/%s above the working directory", sub)
		}
		dir = parent
	}
}

// PatchFile writes b at offset off of path: a deliberate, precise damage.
func PatchFile(t testing.TB, path string, off int64, b []byte) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt(b, off); err != nil {
		t.Fatal(err)
	}
}

// ReadFileAt returns n bytes of path at offset off (zeroes past the end).
func ReadFileAt(t testing.TB, path string, off int64, n int) []byte {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b := make([]byte, n)
	f.ReadAt(b, off)
	return b
}
