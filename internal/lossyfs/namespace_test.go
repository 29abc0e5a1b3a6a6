package lossyfs

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// TestNamespace: directory entries survive a power cut exactly when the
// directory holding them was fsynced after the change. Each case runs on a
// fresh mount, builds a durable starting tree (then Sync), changes it, cuts
// the power, and compares the whole remounted tree with the expected one.
func TestNamespace(t *testing.T) {
	x := fileDesc([]byte("x"))
	cases := []struct {
		name  string
		setup func(t *testing.T, p func(string) string) // made durable by Sync
		do    func(t *testing.T, p func(string) string)
		want  map[string]string
		check func(t *testing.T, p func(string) string)
		// dropped is the number of durable names of directories the
		// image had to drop to stay a tree.
		dropped int
	}{
		{name: "create, fsync file, no dir fsync: no name",
			do: func(t *testing.T, p func(string) string) {
				writeFile(t, p("f"), 0, []byte("x"), true)
			},
			want: map[string]string{}},
		{name: "create, fsync file, fsync dir",
			do: func(t *testing.T, p func(string) string) {
				writeFile(t, p("f"), 0, []byte("x"), true)
				fsyncPath(t, p("."))
			},
			want: map[string]string{"f": x}},
		{name: "create, fsync dir only: name without data",
			do: func(t *testing.T, p func(string) string) {
				writeFile(t, p("f"), 0, []byte("x"), false)
				fsyncPath(t, p("."))
			},
			want: map[string]string{"f": fileDesc(nil)}},
		{name: "rename, no dir fsync",
			setup: func(t *testing.T, p func(string) string) { writeFile(t, p("f"), 0, []byte("x"), false) },
			do:    func(t *testing.T, p func(string) string) { must(t, os.Rename(p("f"), p("g"))) },
			want:  map[string]string{"f": x}},
		{name: "rename, dir fsync",
			setup: func(t *testing.T, p func(string) string) { writeFile(t, p("f"), 0, []byte("x"), false) },
			do: func(t *testing.T, p func(string) string) {
				must(t, os.Rename(p("f"), p("g")))
				fsyncPath(t, p("."))
			},
			want: map[string]string{"g": x}},
		{name: "rename over a file, no dir fsync",
			setup: func(t *testing.T, p func(string) string) {
				writeFile(t, p("f"), 0, []byte("x"), false)
				writeFile(t, p("g"), 0, []byte("old"), false)
			},
			do:   func(t *testing.T, p func(string) string) { must(t, os.Rename(p("f"), p("g"))) },
			want: map[string]string{"f": x, "g": fileDesc([]byte("old"))}},
		{name: "rename over a file, dir fsync",
			setup: func(t *testing.T, p func(string) string) {
				writeFile(t, p("f"), 0, []byte("x"), false)
				writeFile(t, p("g"), 0, []byte("old"), false)
			},
			do: func(t *testing.T, p func(string) string) {
				must(t, os.Rename(p("f"), p("g")))
				fsyncPath(t, p("."))
			},
			want: map[string]string{"g": x}},
		{name: "rename across directories, both fsynced",
			setup: twoDirs,
			do: func(t *testing.T, p func(string) string) {
				must(t, os.Rename(p("d1/f"), p("d2/f")))
				fsyncPath(t, p("d1"))
				fsyncPath(t, p("d2"))
			},
			want: map[string]string{"d1": "dir", "d2": "dir", "d2/f": x}},
		{name: "rename across directories, only destination fsynced: two names",
			setup: twoDirs,
			do: func(t *testing.T, p func(string) string) {
				must(t, os.Rename(p("d1/f"), p("d2/f")))
				fsyncPath(t, p("d2"))
			},
			want: map[string]string{"d1": "dir", "d2": "dir", "d1/f": x, "d2/f": x},
			check: func(t *testing.T, p func(string) string) {
				if ino(t, p("d1/f")) != ino(t, p("d2/f")) {
					t.Error("the two names do not name one inode")
				}
			}},
		{name: "rename across directories, only source fsynced: no name",
			setup: twoDirs,
			do: func(t *testing.T, p func(string) string) {
				must(t, os.Rename(p("d1/f"), p("d2/f")))
				fsyncPath(t, p("d1"))
			},
			want: map[string]string{"d1": "dir", "d2": "dir"}},
		{name: "unlink, no dir fsync: undone",
			setup: func(t *testing.T, p func(string) string) { writeFile(t, p("f"), 0, []byte("x"), false) },
			do:    func(t *testing.T, p func(string) string) { must(t, os.Remove(p("f"))) },
			want:  map[string]string{"f": x}},
		{name: "unlink, dir fsync",
			setup: func(t *testing.T, p func(string) string) { writeFile(t, p("f"), 0, []byte("x"), false) },
			do: func(t *testing.T, p func(string) string) {
				must(t, os.Remove(p("f")))
				fsyncPath(t, p("."))
			},
			want: map[string]string{}},
		{name: "unlink, no dir fsync, data fsynced through an open descriptor",
			setup: func(t *testing.T, p func(string) string) { writeFile(t, p("f"), 0, []byte("x"), false) },
			do: func(t *testing.T, p func(string) string) {
				f, err := os.OpenFile(p("f"), os.O_RDWR, 0)
				must(t, err)
				defer f.Close()
				must(t, os.Remove(p("f")))
				must(t, write(f, 0, "y"))
				must(t, f.Sync())
			},
			want: map[string]string{"f": fileDesc([]byte("y"))}},
		{name: "link, no dir fsync",
			setup: func(t *testing.T, p func(string) string) { writeFile(t, p("f"), 0, []byte("x"), false) },
			do:    func(t *testing.T, p func(string) string) { must(t, os.Link(p("f"), p("g"))) },
			want:  map[string]string{"f": x}},
		{name: "link, dir fsync",
			setup: func(t *testing.T, p func(string) string) { writeFile(t, p("f"), 0, []byte("x"), false) },
			do: func(t *testing.T, p func(string) string) {
				must(t, os.Link(p("f"), p("g")))
				fsyncPath(t, p("."))
			},
			want: map[string]string{"f": x, "g": x},
			check: func(t *testing.T, p func(string) string) {
				var st syscall.Stat_t
				must(t, syscall.Stat(p("f"), &st))
				if st.Nlink != 2 || ino(t, p("g")) != st.Ino {
					t.Errorf("nlink %d, inodes %d and %d: want one inode with two links", st.Nlink, st.Ino, ino(t, p("g")))
				}
			}},
		{name: "symlink, no dir fsync",
			do:   func(t *testing.T, p func(string) string) { must(t, os.Symlink("target", p("s"))) },
			want: map[string]string{}},
		{name: "symlink, dir fsync",
			do: func(t *testing.T, p func(string) string) {
				must(t, os.Symlink("target", p("s")))
				fsyncPath(t, p("."))
			},
			want: map[string]string{"s": "link -> target"}},
		{name: "mkdir, parent fsynced, file in it fsynced, subdirectory not",
			do: func(t *testing.T, p func(string) string) {
				must(t, os.Mkdir(p("d"), 0o755))
				fsyncPath(t, p("."))
				writeFile(t, p("d/f"), 0, []byte("x"), true)
			},
			want: map[string]string{"d": "dir"}},
		{name: "mkdir, parent and subdirectory fsynced",
			do: func(t *testing.T, p func(string) string) {
				must(t, os.Mkdir(p("d"), 0o755))
				writeFile(t, p("d/f"), 0, []byte("x"), true)
				fsyncPath(t, p("d"))
				fsyncPath(t, p("."))
			},
			want: map[string]string{"d": "dir", "d/f": x}},
		{name: "subdirectory fsynced, parent not: unreachable",
			do: func(t *testing.T, p func(string) string) {
				must(t, os.Mkdir(p("d"), 0o755))
				writeFile(t, p("d/f"), 0, []byte("x"), true)
				fsyncPath(t, p("d"))
			},
			want: map[string]string{}},
		{name: "rmdir, no fsync: undone",
			setup: func(t *testing.T, p func(string) string) { must(t, os.Mkdir(p("d"), 0o755)) },
			do:    func(t *testing.T, p func(string) string) { must(t, os.Remove(p("d"))) },
			want:  map[string]string{"d": "dir"}},
		{name: "rmdir, fsync",
			setup: func(t *testing.T, p func(string) string) { must(t, os.Mkdir(p("d"), 0o755)) },
			do: func(t *testing.T, p func(string) string) {
				must(t, os.Remove(p("d")))
				fsyncPath(t, p("."))
			},
			want: map[string]string{}},
		{name: "segment creation: tmp, fallocate, write, fsync, link, unlink tmp, fsync dir",
			do:   segmentSequence(true),
			want: map[string]string{"seg": fileDesc(append([]byte("hdr"), make([]byte, 1<<16-3)...))}},
		{name: "segment creation without the final dir fsync",
			do:   segmentSequence(false),
			want: map[string]string{}},
		{name: "directory renames that would leave a cycle: each directory keeps one name",
			setup: func(t *testing.T, p func(string) string) {
				must(t, os.MkdirAll(p("a/b"), 0o755))
			},
			do: func(t *testing.T, p func(string) string) {
				// durable: /{a}, a{b}, b{}
				must(t, os.Rename(p("a/b"), p("b")))
				fsyncPath(t, p(".")) // durable: /{a,b}, a{b}: b named twice
				must(t, os.Rename(p("a"), p("b/a")))
				fsyncPath(t, p("b")) // durable: b{a}: a cycle a -> b -> a
			},
			want: map[string]string{"a": "dir", "b": "dir"}, dropped: 2},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			fsys := mountT(t)
			p := func(name string) string { return filepath.Join(fsys.Mountpoint(), name) }
			if c.setup != nil {
				c.setup(t, p)
			}
			must(t, fsys.Sync())
			c.do(t, p)
			old := fsys
			fsys, _ = cutT(t, old)
			if got := old.Image().DroppedDirNames(); got != c.dropped {
				t.Errorf("image dropped %d directory names, want %d", got, c.dropped)
			}
			if d := diffTree(tree(t, fsys.Mountpoint()), c.want); d != "" {
				t.Errorf("tree after the cut differs:\n%s", d)
			}
			if c.check != nil {
				c.check(t, p)
			}
		})
	}
}

func twoDirs(t *testing.T, p func(string) string) {
	must(t, os.Mkdir(p("d1"), 0o755))
	must(t, os.Mkdir(p("d2"), 0o755))
	writeFile(t, p("d1/f"), 0, []byte("x"), false)
}

// segmentSequence is how the journal writer creates a segment.
func segmentSequence(fsyncDir bool) func(t *testing.T, p func(string) string) {
	return func(t *testing.T, p func(string) string) {
		f, err := os.OpenFile(p("seg.tmp"), os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o644)
		must(t, err)
		defer f.Close()
		must(t, unix.Fallocate(int(f.Fd()), 0, 0, 1<<16))
		must(t, write(f, 0, "hdr"))
		must(t, f.Sync())
		must(t, os.Link(p("seg.tmp"), p("seg")))
		must(t, os.Remove(p("seg.tmp")))
		if fsyncDir {
			fsyncPath(t, p("."))
		}
	}
}
