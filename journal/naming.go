package journal

import (
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
)

// Naming, format.md §1.
const (
	SegmentExt = ".seg"
	ArchiveExt = ".seg.zst" // a sealed segment compressed (format.md §14)
	IndexExt   = ".idx"
	BrokenExt  = ".broken"
	TmpExt     = ".tmp" // a file being created; removed by the next writer open or maintenance command
	LockFile   = "journal.lock"
	CtlFile    = "journal.ctl"
	// MaintFile is the maintenance lock: compress, prune and recover hold it
	// exclusively, so no two maintenance commands interleave (format.md §7).
	MaintFile = "journal.maint"
	// ReadersDir holds named readers' position files (format.md §13).
	ReadersDir = "readers"
	// OrphanedPrefix names the directories recover moves cut-off files into
	// (orphaned-<UTC time>); nothing is ever deleted by a cut.
	OrphanedPrefix = "orphaned-"
)

// SegmentName is the file name of segment n: 20 decimal digits, so names sort
// in segment order.
func SegmentName(n uint64) string { return fmt.Sprintf("%020d%s", n, SegmentExt) }

// IndexName is the file name of segment n's sparse index.
func IndexName(n uint64) string { return fmt.Sprintf("%020d%s", n, IndexExt) }

// ArchiveName is the file name of segment n compressed.
func ArchiveName(n uint64) string { return fmt.Sprintf("%020d%s", n, ArchiveExt) }

// ParseSegmentName returns the number of a segment file name.
func ParseSegmentName(name string) (uint64, bool) {
	base, ok := strings.CutSuffix(name, SegmentExt)
	if !ok {
		return 0, false
	}
	return parseNumber(base)
}

// ParseArchiveName returns the number of a compressed segment file name.
func ParseArchiveName(name string) (uint64, bool) {
	base, ok := strings.CutSuffix(name, ArchiveExt)
	if !ok {
		return 0, false
	}
	return parseNumber(base)
}

// ParseIndexName returns the number of an index file name.
func ParseIndexName(name string) (uint64, bool) {
	base, ok := strings.CutSuffix(name, IndexExt)
	if !ok {
		return 0, false
	}
	return parseNumber(base)
}

func parseNumber(base string) (uint64, bool) {
	if len(base) != 20 {
		return 0, false
	}
	for _, c := range base {
		if c < '0' || c > '9' {
			return 0, false
		}
	}
	n, err := strconv.ParseUint(base, 10, 64)
	return n, err == nil && n > 0
}

// SegmentPath joins dir and SegmentName(n).
func SegmentPath(dir string, n uint64) string { return filepath.Join(dir, SegmentName(n)) }

// ArchivePath joins dir and ArchiveName(n).
func ArchivePath(dir string, n uint64) string { return filepath.Join(dir, ArchiveName(n)) }

// IndexPath joins dir and IndexName(n).
func IndexPath(dir string, n uint64) string { return filepath.Join(dir, IndexName(n)) }
