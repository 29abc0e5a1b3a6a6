// Package clock exposes the runtime's monotonic clock (CLOCK_MONOTONIC via
// the vDSO, ~20 ns) as a plain int64. CLOCK_MONOTONIC is system-wide, so
// stamps taken in one process can be compared with readings in another:
// that is how cross-process latency is measured.
package clock

import _ "unsafe" // for go:linkname

// Nanotime returns CLOCK_MONOTONIC in nanoseconds.
//
//go:linkname Nanotime runtime.nanotime
func Nanotime() int64
