package command

import (
	"encoding/json"
	"fmt"
	"runtime"
	"runtime/debug"

	"github.com/spf13/pflag"

	"github.com/mdjournal/mdjournal/journal"
	"github.com/mdjournal/mdjournal/ring"
	"github.com/mdjournal/mdjournal/snapshot"
)

type versionOptions struct{ json bool }

func (o *versionOptions) AddFlags(fs *pflag.FlagSet) {
	fs.BoolVar(&o.json, "json", false, "print one JSON object")
}

// versionInfo is what `journalctl version` reports: which build this is
// and which file formats it reads and writes.
type versionInfo struct {
	Module          string `json:"module"`
	Version         string `json:"version"`
	Revision        string `json:"revision"`
	RevisionTime    string `json:"revision_time,omitempty"`
	Modified        bool   `json:"modified"`
	Go              string `json:"go"`
	JournalFormat   uint32 `json:"journal_format"`
	SnapshotFormat  uint32 `json:"snapshot_format"`
	RingFormat      uint32 `json:"ring_format"`
	OperatingSystem string `json:"os"`
}

func buildVersion() versionInfo {
	v := versionInfo{Module: "github.com/mdjournal/mdjournal", Version: "(devel)", Revision: "unknown", Go: runtime.Version(),
		JournalFormat: journal.Version, SnapshotFormat: snapshot.Version, RingFormat: ring.Version,
		OperatingSystem: runtime.GOOS + "/" + runtime.GOARCH}
	if bi, ok := debug.ReadBuildInfo(); ok {
		if bi.Main.Version != "" {
			v.Version = bi.Main.Version
		}
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				v.Revision = s.Value
			case "vcs.time":
				v.RevisionTime = s.Value
			case "vcs.modified":
				v.Modified = s.Value == "true"
			}
		}
	}
	return v
}

func runVersion(env *Env, args []string) error {
	var o versionOptions
	fs := flagSet(env, "version", "[--json]", o.AddFlags)
	if err := parse(fs, args); err != nil {
		return err
	}
	if err := noArgs(fs); err != nil {
		return err
	}
	v := buildVersion()
	if o.json {
		return json.NewEncoder(env.Stdout).Encode(v)
	}
	mod := ""
	if v.Modified {
		mod = " (modified)"
	}
	fmt.Fprintf(env.Stdout, "journalctl %s %s\nrevision %s%s %s\nformats: journal %d, snapshot %d, ring %d\n",
		v.Version, v.OperatingSystem, v.Revision, mod, v.RevisionTime, v.JournalFormat, v.SnapshotFormat, v.RingFormat)
	fmt.Fprintf(env.Stdout, "built with %s\n", v.Go)
	return nil
}
