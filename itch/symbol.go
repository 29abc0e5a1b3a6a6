package itch

import (
	"bytes"
	"fmt"
)

// SymbolLen is the size of a stock symbol field.
const SymbolLen = 8

// Symbol is a stock symbol as sent: 8 ASCII bytes, padded with spaces on the
// right.
type Symbol [SymbolLen]byte

// ParseSymbol pads s with spaces to a Symbol. It fails with ErrRange if s is
// longer than 8 bytes or holds a byte that is not printable ASCII.
func ParseSymbol(s string) (Symbol, error) {
	var sym Symbol
	if len(s) > SymbolLen {
		return sym, fmt.Errorf("%w: symbol %q is longer than %d bytes", ErrRange, s, SymbolLen)
	}
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e {
			return sym, fmt.Errorf("%w: symbol %q has a byte that is not printable ASCII", ErrRange, s)
		}
	}
	copy(sym[:], s)
	for i := len(s); i < SymbolLen; i++ {
		sym[i] = ' '
	}
	return sym, nil
}

// Bytes returns the symbol without its trailing space padding, sharing s's
// storage.
func (s *Symbol) Bytes() []byte { return bytes.TrimRight(s[:], " ") }

// String returns the symbol without its trailing space padding.
func (s Symbol) String() string { return string(bytes.TrimRight(s[:], " ")) }
