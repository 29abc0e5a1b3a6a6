//go:build amd64

package ring

import "unsafe"

// plainStoresOK: on amd64 (x86-TSO) a plain aligned 8-byte MOV is a release
// store: stores become visible in program order and are never reordered
// with earlier loads. Go's compiler keeps stores in program order (they are
// chained through the SSA memory state), so a record header stored after
// its payload is seen after it. Only StoreLoad order is missing, which the
// futex protocol gets from the waiter's membarrier (see membarrier.go).
const plainStoresOK = true

// storePlain stores v at p with one MOVQ: the publication store of a record
// header or of head on the fast path.
func storePlain(p unsafe.Pointer, v uint64) { *(*uint64)(p) = v }
