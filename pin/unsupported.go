//go:build !linux

package pin

import "errors"

// Pinned is a goroutine bound to a CPU (Linux only).
type Pinned struct{}

// Thread fails: CPU affinity is implemented for Linux only.
func Thread(cpu int) (*Pinned, error) { return nil, errors.New("pin: Linux only") }

// CPU returns -1.
func (p *Pinned) CPU() int { return -1 }

// Release does nothing.
func (p *Pinned) Release() {}

// Available fails off Linux.
func Available() ([]int, error) { return nil, errors.New("pin: Linux only") }

// Current returns -1.
func Current() int { return -1 }
