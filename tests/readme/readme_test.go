// Package readme runs the README's shell examples as written, so a
// newcomer's first commands cannot rot. A block runs when the line before
// its opening fence is the marker below; it runs under bash -euo pipefail,
// in a scratch directory holding bin/ (journalctl and replay, built here)
// and testdata/ (the repository's), and must exit 0 within two minutes.
package readme

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const marker = "<!-- README example: run by tests/readme -->"

// examples returns the marked ```sh blocks of README.md with their line.
func examples(t *testing.T) (blocks []string, lines []int) {
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	ls := strings.Split(string(b), "\n")
	for i := 0; i+1 < len(ls); i++ {
		if strings.TrimSpace(ls[i]) != marker {
			continue
		}
		if ls[i+1] != "```sh" {
			t.Fatalf("README.md:%d: the marker must precede a ```sh fence, found %q", i+1, ls[i+1])
		}
		var body []string
		j := i + 2
		for ; j < len(ls) && ls[j] != "```"; j++ {
			body = append(body, ls[j])
		}
		if j == len(ls) {
			t.Fatalf("README.md:%d: unterminated block", i+2)
		}
		blocks, lines = append(blocks, strings.Join(body, "\n")+"\n"), append(lines, i+3)
	}
	return blocks, lines
}

func TestReadmeExamples(t *testing.T) {
	blocks, lines := examples(t)
	if len(blocks) < 4 {
		t.Fatalf("README.md has %d marked examples; the quick paths (replay, export, forensics) must stay marked", len(blocks))
	}
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Skipf("SKIPPED, NOT RUN: no bash to run the README's examples: %v", err)
	}
	repo, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	work := t.TempDir()
	bin := filepath.Join(work, "bin")
	build := exec.Command("go", "build", "-o", bin+"/", "./cmd/journalctl", "./cmd/replay")
	build.Dir = repo
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	if err := os.Symlink(filepath.Join(repo, "testdata"), filepath.Join(work, "testdata")); err != nil {
		t.Fatal(err)
	}
	for i, b := range blocks {
		t.Run(strings.ReplaceAll(firstCommand(b), " ", "_"), func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			cmd := exec.CommandContext(ctx, bash, "-euo", "pipefail", "-c", b)
			cmd.Dir = work
			cmd.Env = append(os.Environ(), "TMPDIR="+t.TempDir())
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("README.md:%d: the example failed: %v\n--- example\n%s--- output\n%s", lines[i], err, b, out)
			}
		})
	}
}

// firstCommand names a block by its first bin/ command.
func firstCommand(b string) string {
	for _, l := range strings.Split(b, "\n") {
		if i := strings.Index(l, "bin/"); i >= 0 {
			f := strings.Fields(l[i:])
			if len(f) >= 2 {
				return f[0] + " " + f[1]
			}
		}
	}
	return "example"
}
