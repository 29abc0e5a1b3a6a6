package benchkit

import (
	"bufio"
	"context"
	_ "embed"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"

	hdr "github.com/HdrHistogram/hdrhistogram-go"
	"golang.org/x/sys/unix"
)

// CFloorTransport is the row name of the C raw floor.
const CFloorTransport = "c-raw"

//go:embed cfloor/cfloor.c
var cfloorSource []byte

// BuildCFloor compiles the C raw floor (cfloor/cfloor.c: the Go raw
// transport's ping-pong written in C) with the machine's C compiler into
// dir and returns the program's path. It returns an error wrapping
// exec.ErrNotFound when there is no compiler.
func BuildCFloor(ctx context.Context, dir string) (string, error) {
	cc := os.Getenv("CC")
	if cc == "" {
		cc = "gcc"
	}
	if _, err := exec.LookPath(cc); err != nil {
		return "", fmt.Errorf("no C compiler (%s): %w", cc, err)
	}
	src := filepath.Join(dir, "cfloor.c")
	if err := os.WriteFile(src, cfloorSource, 0o600); err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "cfloor")
	out, err := exec.CommandContext(ctx, cc, "-std=c11", "-O2", "-Wall", "-Wextra", "-Werror", "-o", bin, src).CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("%s cfloor.c: %v: %s", cc, err, strings.TrimSpace(string(out)))
	}
	return bin, nil
}

// RunCFloor runs the compiled C floor once (warm unmeasured pings, then
// count measured ones) and records every ping's RTT/2 into h.
func RunCFloor(ctx context.Context, bin string, size, warm, count int, gapNS int64, cpuParent, cpuChild int, h *hdr.Histogram) error {
	cmd := exec.CommandContext(ctx, bin, strconv.Itoa(size), strconv.Itoa(warm), strconv.Itoa(count),
		strconv.FormatInt(gapNS, 10), strconv.Itoa(cpuParent), strconv.Itoa(cpuChild))
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return err
	}
	sc := bufio.NewScanner(out)
	n, want := 0, -1
	for sc.Scan() {
		line := sc.Text()
		if rest, ok := strings.CutPrefix(line, "samples "); ok {
			if want, err = strconv.Atoi(rest); err != nil {
				break
			}
			continue
		}
		v, perr := strconv.ParseInt(line, 10, 64)
		if perr != nil {
			err = fmt.Errorf("cfloor printed %q", line)
			break
		}
		h.RecordValue(max(v, 1))
		n++
	}
	if werr := cmd.Wait(); err == nil && werr != nil {
		err = fmt.Errorf("cfloor: %w", werr)
	}
	if err == nil && n != want {
		err = fmt.Errorf("cfloor printed %d samples, announced %d", n, want)
	}
	return err
}

// FSType names the file system holding path (tmpfs, ext4, xfs, btrfs,
// overlay, fuse, or its magic number in hex).
func FSType(path string) string {
	var st unix.Statfs_t
	if err := unix.Statfs(path, &st); err != nil {
		return "unknown (" + err.Error() + ")"
	}
	switch uint32(st.Type) {
	case unix.TMPFS_MAGIC:
		return "tmpfs"
	case unix.EXT4_SUPER_MAGIC:
		return "ext4"
	case unix.XFS_SUPER_MAGIC:
		return "xfs"
	case unix.BTRFS_SUPER_MAGIC:
		return "btrfs"
	case unix.OVERLAYFS_SUPER_MAGIC:
		return "overlay"
	case unix.FUSE_SUPER_MAGIC:
		return "fuse"
	case unix.HUGETLBFS_MAGIC:
		return "hugetlbfs"
	}
	return fmt.Sprintf("%#x", uint32(st.Type))
}
