package prefetch

import "unsafe"

// Line prefetches the cache line holding p into all cache levels
// (PREFETCHT0). It never faults and changes no memory.
//
//go:noescape
func Line(p unsafe.Pointer)
