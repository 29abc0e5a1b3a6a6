// Package layers holds only a test: it checks the layer rules of the tree
// with `go list`, so that a misplaced import fails CI instead of slowly
// eroding the design (README, "Layout").
package layers

import (
	"encoding/json"
	"os/exec"
	"strings"
	"testing"
)

const module = "github.com/mdjournal/mdjournal"

type pkg struct {
	ImportPath string
	Imports    []string
	Deps       []string
	Standard   bool
}

func list(t *testing.T, patterns ...string) []pkg {
	t.Helper()
	cmd := exec.Command("go", append([]string{"list", "-deps=false", "-json"}, patterns...)...)
	cmd.Dir = "../.."
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	var ps []pkg
	dec := json.NewDecoder(strings.NewReader(string(out)))
	for dec.More() {
		var p pkg
		if err := dec.Decode(&p); err != nil {
			t.Fatal(err)
		}
		ps = append(ps, p)
	}
	return ps
}

// libraries are the packages a user of the module imports.
var libraries = []string{"journal", "writer", "reader", "snapshot", "ring", "book", "booksnap", "replay", "wait",
	"lobster", "synth", "export", "stats", "itch", "moldudp64", "pin", "ship", "feed", "publish", "pipeline"}

// opsTools are the operator tools' engines: they may use each other and
// every library, but carry no command-line dependency either.
var opsTools = []string{"ops/verify", "ops/repair", "ops/retention", "ops/compress", "ops/inspect", "ops/maint"}

// cliOnly are dependencies that belong to commands (flags, terminals,
// progress bars, benchmark harness), never to a library's dependency graph.
var cliOnly = []string{"github.com/spf13/pflag", "github.com/schollz/progressbar", "golang.org/x/term",
	"github.com/HdrHistogram/hdrhistogram-go", "github.com/tidwall/wal", "github.com/prometheus/client_golang",
	"github.com/nats-io/nats-server"}

func TestLibrariesCarryNoCLIDependencies(t *testing.T) {
	var pats []string
	for _, l := range append(append([]string{}, libraries...), opsTools...) {
		pats = append(pats, "./"+l)
	}
	for _, p := range list(t, pats...) {
		lib := !strings.HasPrefix(p.ImportPath, module+"/ops/")
		for _, d := range p.Deps {
			for _, bad := range cliOnly {
				if d == bad || strings.HasPrefix(d, bad+"/") {
					t.Errorf("%s depends on %s (a command-line dependency)", p.ImportPath, d)
				}
			}
			if strings.HasPrefix(d, module+"/cmd/") || (lib && strings.HasPrefix(d, module+"/ops/")) {
				t.Errorf("%s depends on %s (libraries sit below commands and operator tools)", p.ImportPath, d)
			}
		}
	}
}

func TestFormatPackageIsPure(t *testing.T) {
	for _, p := range list(t, "./journal") {
		for _, d := range p.Imports {
			if strings.Contains(strings.SplitN(d, "/", 2)[0], ".") {
				t.Errorf("journal imports %s: the format package uses the standard library only", d)
			}
		}
	}
}

// internal/ holds ground-floor mechanics: they may use the format package,
// each other and third-party code, never a package above them.
func TestInternalImportsNothingAbove(t *testing.T) {
	for _, p := range list(t, "./internal/...") {
		if p.ImportPath == module+"/internal/layers" || p.ImportPath == module+"/internal/testutil" {
			continue
		}
		for _, d := range p.Imports {
			if !strings.HasPrefix(d, module+"/") {
				continue
			}
			rel := strings.TrimPrefix(d, module+"/")
			if rel != "journal" && !strings.HasPrefix(rel, "internal/") {
				t.Errorf("%s imports %s, which sits above internal/", p.ImportPath, d)
			}
		}
	}
}
