package ctest

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestTopReadmeShowsTestedExample: the project README's "From C and C++"
// example is the c/README.md example that TestReadmeExample compiles with
// -Werror and runs, character for character, so the one newcomers copy is
// the one that is tested.
func TestTopReadmeShowsTestedExample(t *testing.T) {
	want, err := readmeExample()
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(cDir, "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	i := strings.Index(s, "## From C and C++")
	if i < 0 {
		t.Fatal(`README.md has no "## From C and C++" section`)
	}
	s = s[i:]
	j := strings.Index(s, "```c\n")
	if j < 0 {
		t.Fatal(`README.md "From C and C++" has no ` + "```c block")
	}
	s = s[j+5:]
	k := strings.Index(s, "```\n")
	if k < 0 {
		t.Fatal("README.md: unterminated ```c block")
	}
	if got := s[:k]; got != want {
		t.Fatalf("README.md's C example differs from c/README.md's (the tested one):\n--- README.md\n%s\n--- c/README.md\n%s", got, want)
	}
}
