//go:build !linux

package futex

// mdjournal maps files MAP_SHARED, waits on futexes and reserves blocks
// with fallocate: Linux only. This declaration makes a build for another
// operating system fail with a message that says so.
const mdjournalRequiresLinux = "mdjournal requires Linux (mmap, futex, fallocate, flock)"

var _ int = mdjournalRequiresLinux
