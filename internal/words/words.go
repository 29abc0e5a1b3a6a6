// Package words hands out the atomic words of mapped mdjournal files — the
// control page's active segment, writer PID, futex notify word and waiter
// count, an index's published count — to the packages that store them (the
// writer) or wait on them (readers). The format package only reads them:
// nothing a library user holds can store into a shared mapping.
package words

import (
	"fmt"
	"unsafe"
)

// U64 returns the 8-byte word at m[off:], which must be 8-byte aligned.
func U64(m []byte, off int) *uint64 {
	check(m, off, 8)
	return (*uint64)(unsafe.Pointer(&m[off]))
}

// U32 returns the 4-byte word at m[off:], which must be 4-byte aligned.
func U32(m []byte, off int) *uint32 {
	check(m, off, 4)
	return (*uint32)(unsafe.Pointer(&m[off]))
}

func check(m []byte, off, n int) {
	if off < 0 || off+n > len(m) || uintptr(unsafe.Pointer(&m[off]))%uintptr(n) != 0 {
		panic(fmt.Sprintf("words: %d-byte word at %d of a %d-byte mapping is out of range or unaligned", n, off, len(m)))
	}
}
