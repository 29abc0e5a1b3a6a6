//go:build !linux

package fsx

const mdjournalRequiresLinux = "mdjournal requires Linux (O_NOFOLLOW, fstat, fsync of directories)"

var _ int = mdjournalRequiresLinux
