//go:build linux

// Package mmap wraps the few memory-mapping system calls mdjournal needs:
// mapping a file shared (read-only or read-write), reserving its blocks, syncing
// ranges and prefaulting pages. It holds no policy; callers decide what to map
// and when to sync.
package mmap

import (
	"errors"
	"fmt"
	"os"
	"sync/atomic"
	"unsafe"

	"golang.org/x/sys/unix"
)

// PageSize is the system page size; msync ranges are aligned down to it.
var PageSize = os.Getpagesize()

// Map maps size bytes of f with MAP_SHARED. A writable mapping uses
// PROT_READ|PROT_WRITE; a read-only one PROT_READ, so a bug in a reader can never
// store into the journal.
func Map(f *os.File, size int, writable bool) ([]byte, error) {
	if size <= 0 {
		return nil, fmt.Errorf("mmap %s: size %d", f.Name(), size)
	}
	prot := unix.PROT_READ
	if writable {
		prot |= unix.PROT_WRITE
	}
	b, err := unix.Mmap(int(f.Fd()), 0, size, prot, unix.MAP_SHARED)
	if err != nil {
		return nil, fmt.Errorf("mmap %s (%d bytes): %w", f.Name(), size, err)
	}
	return b, nil
}

// Unmap releases a mapping made by Map. Unmapping nil is a no-op.
func Unmap(b []byte) error {
	if b == nil {
		return nil
	}
	return unix.Munmap(b)
}

// Reserve allocates every block of f's first size bytes (fallocate mode 0), so a
// later store through a mapping can never hit an unallocated block: on a full
// disk that store would be a SIGBUS, while fallocate fails cleanly with ENOSPC.
func Reserve(f *os.File, size int64) error {
	for {
		err := unix.Fallocate(int(f.Fd()), 0, 0, size)
		if err == unix.EINTR {
			continue
		}
		if err == unix.EOPNOTSUPP || err == unix.ENOSYS {
			// tmpfs and some filesystems: fall back to extending the file;
			// the caller's prefault then allocates.
			return f.Truncate(size)
		}
		if err != nil {
			return fmt.Errorf("fallocate %s (%d bytes): %w", f.Name(), size, err)
		}
		return nil
	}
}

// Sync flushes b[off:off+n] to the file with msync. sync=true is MS_SYNC (returns
// once the pages are on stable storage); false is MS_ASYNC (on Linux since 2.6.19
// a no-op hint: dirty pages are already tracked). The range is widened to page
// boundaries as msync requires.
func Sync(b []byte, off, n int, sync bool) error {
	if n <= 0 {
		return nil
	}
	start := off &^ (PageSize - 1)
	end := off + n
	if end > len(b) {
		end = len(b)
	}
	flags := unix.MS_ASYNC
	if sync {
		flags = unix.MS_SYNC
	}
	for {
		err := unix.Msync(b[start:end], flags)
		if err == unix.EINTR {
			continue
		}
		return err
	}
}

// PopulateWrite prefaults b's pages writable without changing their contents
// (MADV_POPULATE_WRITE, Linux 5.14+). On older kernels it falls back to a read
// touch, which at least maps the page-cache pages.
func PopulateWrite(b []byte) error {
	if len(b) == 0 {
		return nil
	}
	err := unix.Madvise(b, unix.MADV_POPULATE_WRITE)
	if errors.Is(err, unix.EINVAL) {
		return PopulateRead(b)
	}
	return err
}

// TouchWrite makes the CPU store into every page of b once, without
// changing a byte: an atomic compare-and-swap of the page's first 8 bytes
// with zero for zero (a locked read-modify-write, so a concurrent store by
// another thread to the same bytes is never lost). b must start 8-aligned.
//
// PopulateWrite maps pages, but where a hypervisor backs guest memory
// lazily (free page reporting: the guest kernel knows a reported page is
// zero and does not clear it) the first store of each page still costs a
// host fault — measured 4–6 µs per 4 KiB page on a Firecracker VM, while a
// page touched once costs 20 ns. A writer moving through fresh pages pays
// that once per page on its hot path unless the page was touched before.
func TouchWrite(b []byte) {
	for off := 0; off+8 <= len(b); off += PageSize {
		atomic.CompareAndSwapUint64((*uint64)(unsafe.Pointer(&b[off])), 0, 0)
	}
}

// PopulateRead prefaults b's pages readable (MADV_POPULATE_READ); on kernels
// without it, it touches one byte per page.
func PopulateRead(b []byte) error {
	if len(b) == 0 {
		return nil
	}
	err := unix.Madvise(b, unix.MADV_POPULATE_READ)
	if errors.Is(err, unix.EINVAL) {
		var sink byte
		for i := 0; i < len(b); i += PageSize {
			sink ^= b[i]
		}
		_ = sink
		return nil
	}
	return err
}
