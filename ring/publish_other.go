//go:build !amd64

package ring

import (
	"sync/atomic"
	"unsafe"
)

// plainStoresOK is false off amd64: a plain store is not a release store
// there, so every publication is a sequentially consistent atomic store
// (which also gives the futex protocol its StoreLoad order).
const plainStoresOK = false

func storePlain(p unsafe.Pointer, v uint64) { atomic.StoreUint64((*uint64)(p), v) }
