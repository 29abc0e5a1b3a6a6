// Package scripts tests the shell scripts the Makefile runs, with a fake go
// command standing in for the toolchain so every branch is reached on purpose.
package scripts

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// fakeGo answers the four go commands scripts/fuzz-smoke.sh issues. Each
// fuzz run appends to $CALLS and behaves as $MODE says for that call number.
const fakeGo = `#!/usr/bin/env bash
case "$1 $2" in
"list -f") echo "$PKGDIR"; exit 0;;
"list "*) echo example.com/p; exit 0;;
"test -list") echo FuzzX; echo ok; exit 0;;
esac
echo x >>"$CALLS"
n=$(wc -l <"$CALLS")
mode=$(echo "$MODE" | cut -d, -f"$n")
case "$mode" in
pass) echo PASS; exit 0;;
deadline) echo '--- FAIL: FuzzX (3.01s)'; echo '    context deadline exceeded'; exit 1;;
finding) mkdir -p "$PKGDIR/testdata/fuzz/FuzzX"; printf 'go test fuzz v1\n[]byte("boom")\n' >"$PKGDIR/testdata/fuzz/FuzzX/abc123"
         echo '--- FAIL: FuzzX (0.20s)'; echo '    x_test.go:9: boom'; echo '    Failing input written to testdata/fuzz/FuzzX/abc123'; exit 1;;
deadline-panic) echo 'panic: runtime error'; echo '    context deadline exceeded'; exit 1;;
other) echo 'fuzzing process hung or terminated unexpectedly: exit status 2'; exit 1;;
esac
exit 3
`

func TestFuzzSmokeClassifies(t *testing.T) {
	script, err := filepath.Abs("../../scripts/fuzz-smoke.sh")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		mode   string
		ok     bool
		calls  int
		output []string
	}{
		{"pass", true, 1, []string{"0 engine deadline flake"}},
		{"deadline,pass", true, 2, []string{"context deadline exceeded", "golang/go#75804", "1 engine deadline flake"}},
		{"deadline,deadline", false, 2, []string{"FAIL: fuzz target example.com/p FuzzX"}},
		{"finding", false, 1, []string{"failing input", "abc123", `[]byte("boom")`, "go test -run '^FuzzX/abc123$' example.com/p"}},
		{"deadline-panic", false, 1, []string{"panic: runtime error", "FAIL: fuzz target"}},
		{"other", false, 1, []string{"hung or terminated unexpectedly", "FAIL: fuzz target"}},
	} {
		t.Run(tc.mode, func(t *testing.T) {
			dir := t.TempDir()
			goBin := filepath.Join(dir, "go")
			if err := os.WriteFile(goBin, []byte(fakeGo), 0o755); err != nil {
				t.Fatal(err)
			}
			calls := filepath.Join(dir, "calls")
			cmd := exec.Command("bash", script)
			cmd.Env = append(os.Environ(), "GO="+goBin, "MODE="+tc.mode, "CALLS="+calls,
				"PKGDIR="+filepath.Join(dir, "pkg"), "FUZZTIME=1s")
			out, err := cmd.CombinedOutput()
			if (err == nil) != tc.ok {
				t.Fatalf("exit error %v, want ok=%v; output:\n%s", err, tc.ok, out)
			}
			b, _ := os.ReadFile(calls)
			if n := strings.Count(string(b), "x"); n != tc.calls {
				t.Errorf("%d fuzz runs, want %d; output:\n%s", n, tc.calls, out)
			}
			for _, want := range tc.output {
				if !strings.Contains(string(out), want) {
					t.Errorf("output lacks %q:\n%s", want, out)
				}
			}
		})
	}
}
