package itch

import (
	"fmt"
	"math"
	"strconv"
)

// PriceScale is the number of decimal digits of a Price4: the fixed-point
// int64 with scale 4 that Int64 returns is the price times 10^4.
const PriceScale = 4

// Price8Scale is the number of decimal digits of a Price8.
const Price8Scale = 8

// Price4 is a 4-byte unsigned price with 4 implied decimal digits
// (1234500 is 123.4500).
type Price4 uint32

// Price8 is an 8-byte unsigned price with 8 implied decimal digits (the MWCB
// decline levels).
type Price8 uint64

// Int64 returns the price as int64 fixed point with scale 4 (the same
// integer; never fails).
func (p Price4) Int64() int64 { return int64(p) }

// Price4FromInt64 converts an int64 fixed-point price with scale 4 to the
// wire type; it fails with ErrRange if v is negative or above 2^32-1.
func Price4FromInt64(v int64) (Price4, error) {
	if v < 0 || v > math.MaxUint32 {
		return 0, fmt.Errorf("%w: price %d (scale 4) does not fit the 4-byte price field", ErrRange, v)
	}
	return Price4(v), nil
}

// String formats the price with its 4 decimal digits, e.g. "123.4500".
func (p Price4) String() string { return formatFixed(uint64(p), PriceScale) }

// Int64 returns the price as int64 fixed point with scale 8; it fails with
// ErrRange above 2^63-1.
func (p Price8) Int64() (int64, error) {
	if p > math.MaxInt64 {
		return 0, fmt.Errorf("%w: price %d (scale 8) does not fit int64", ErrRange, uint64(p))
	}
	return int64(p), nil
}

// String formats the price with its 8 decimal digits.
func (p Price8) String() string { return formatFixed(uint64(p), Price8Scale) }

func formatFixed(v uint64, scale int) string {
	s := strconv.FormatUint(v, 10)
	for len(s) <= scale {
		s = "0" + s
	}
	return s[:len(s)-scale] + "." + s[len(s)-scale:]
}

// ParsePrice4 parses a decimal price such as "123.45" or "0.0001" into a
// Price4. It accepts at most 4 decimal digits (no rounding) and fails with
// ErrRange on anything else or a value above 429496.7295.
func ParsePrice4(s string) (Price4, error) {
	bad := func() (Price4, error) {
		return 0, fmt.Errorf("%w: price %q is not a decimal with at most 4 fraction digits that fits 4 bytes", ErrRange, s)
	}
	var v uint64
	digits, frac, dot := 0, 0, false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '.' && !dot:
			dot = true
		case c >= '0' && c <= '9':
			if dot {
				frac++
				if frac > PriceScale {
					return bad()
				}
			}
			digits++
			v = v*10 + uint64(c-'0')
			if v > math.MaxUint32 {
				return bad()
			}
		default:
			return bad()
		}
	}
	if digits == 0 {
		return bad()
	}
	for ; frac < PriceScale; frac++ {
		v *= 10
	}
	if v > math.MaxUint32 {
		return bad()
	}
	return Price4(v), nil
}
