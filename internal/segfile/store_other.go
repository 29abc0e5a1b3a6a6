//go:build linux && !amd64

package segfile

import "sync/atomic"

// storeRelease stores v at p with (at least) release semantics.
func storeRelease(p *uint64, v uint64) { atomic.StoreUint64(p, v) }
