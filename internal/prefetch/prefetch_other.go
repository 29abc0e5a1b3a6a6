//go:build !amd64

package prefetch

import "unsafe"

// Line is a no-op on this architecture.
func Line(p unsafe.Pointer) {}
