package pipeline

import (
	"os"
	"path/filepath"
	"testing"
)

// TestMarkerRefusesPlantedSymlink: a symlink planted at a marker's
// temporary name (another user's file as the target) is refused; the
// target is never truncated or written.
func TestMarkerRefusesPlantedSymlink(t *testing.T) {
	dir := t.TempDir()
	victim := filepath.Join(t.TempDir(), "victim")
	if err := os.WriteFile(victim, []byte("keep me\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "engine.done")
	if err := os.Symlink(victim, path+".tmp"); err != nil {
		t.Fatal(err)
	}
	err := writeMarker(path, 42)
	if b, _ := os.ReadFile(victim); string(b) != "keep me\n" {
		t.Fatalf("the symlink's target was written: %q (writeMarker: %v)", b, err)
	}
	if err != nil {
		return // refused outright: fine
	}
	// The symlink itself was removed (unlink never follows) and the marker
	// written as a new regular file.
	if v, ok, rerr := readMarker(path); rerr != nil || !ok || v != 42 {
		t.Fatalf("marker after replacing the symlink: %d %v %v", v, ok, rerr)
	}
	if fi, err := os.Lstat(path); err != nil || !fi.Mode().IsRegular() {
		t.Fatalf("marker is not a regular file: %v %v", fi, err)
	}
}
