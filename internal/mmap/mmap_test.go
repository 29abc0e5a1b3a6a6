//go:build linux

package mmap

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// TestTouchWriteChangesNothing: TouchWrite stores into every page of a
// shared file mapping and leaves every byte as it was — zero pages, pages
// with data in their first word, and a partial last page.
func TestTouchWriteChangesNothing(t *testing.T) {
	f, err := os.Create(filepath.Join(t.TempDir(), "f"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	const size = 64 << 10
	if err := f.Truncate(size); err != nil {
		t.Fatal(err)
	}
	m, err := Map(f, size, true)
	if err != nil {
		t.Fatal(err)
	}
	defer Unmap(m)
	for i := 0; i < size; i += PageSize * 2 { // every other page starts with data
		for j := 0; j < 16; j++ {
			m[i+j] = byte(i/PageSize + j + 1)
		}
	}
	want := bytes.Clone(m)
	TouchWrite(m)
	TouchWrite(m[8 : size-100]) // not page-aligned at either end
	if !bytes.Equal(m, want) {
		t.Fatal("TouchWrite changed the mapping's bytes")
	}
	b, err := os.ReadFile(f.Name())
	if err != nil || !bytes.Equal(b, want) {
		t.Fatalf("the file differs after TouchWrite (%v)", err)
	}
}
