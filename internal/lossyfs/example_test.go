package lossyfs_test

import (
	"fmt"
	"log"
	"os"
	"os/exec"
	"path/filepath"

	"github.com/mdjournal/mdjournal/internal/lossyfs"
)

// A power-loss campaign round: serve the mount in this process, run the
// writer as a child process, kill it, cut the power, remount the durable
// state and check it with another child. (Not run by go test: it needs root
// and /dev/fuse; the package's tests cover the same steps and skip loudly
// without them.)
func Example() {
	dir, err := os.MkdirTemp("", "lossyfs")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)

	fsys, err := lossyfs.Mount(dir, lossyfs.Options{})
	if err != nil {
		log.Fatal(err) // errors.Is(err, lossyfs.ErrUnavailable): skip loudly
	}

	// The writer maps files of the mount: it must be another process.
	writer := exec.Command("journal-writer", "--dir", filepath.Join(dir, "j"))
	if err := writer.Start(); err != nil {
		log.Fatal(err)
	}
	// ... at a random moment:
	writer.Process.Kill()
	writer.Wait() // its files are closed: the mount can be unmounted

	dropped := fsys.PowerCut()
	if err := fsys.Unmount(); err != nil {
		log.Fatal(err)
	}
	fmt.Printf("dropped %d bytes in %d files, %d namespace operations; %d write-backs refused at unmount\n",
		dropped.WriteBytes, dropped.Files, dropped.NamespaceOps, fsys.Stats().RejectedRequests)

	after, err := fsys.Remount(dir) // the durable state only
	if err != nil {
		log.Fatal(err)
	}
	defer after.Unmount()
	check := exec.Command("journal-checker", "--dir", filepath.Join(dir, "j"))
	if err := check.Run(); err != nil {
		log.Fatal(err)
	}
}
