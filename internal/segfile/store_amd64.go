//go:build linux && amd64

package segfile

// storeRelease stores v at p with release semantics. On amd64 (TSO) an
// ordinary aligned MOV is a release store: no earlier store becomes visible
// after it, and the Go compiler emits stores in program order and never
// moves one across a call. sync/atomic's Store is an XCHG there, a full
// barrier costing ~6 ns, which the publish path pays once per batch (the
// cursor store), not once per frame (format.md §4).
func storeRelease(p *uint64, v uint64) { *p = v }
