package lobster

import (
	"errors"
	"math"
)

var (
	errSyntax = errors.New("invalid number")
	errRange  = errors.New("number out of range")
)

// parseInt parses an optionally negative decimal integer without allocating
// (strconv would need a string).
func parseInt(b []byte) (int64, error) {
	neg := false
	if len(b) > 0 && b[0] == '-' {
		neg, b = true, b[1:]
	}
	if len(b) == 0 {
		return 0, errSyntax
	}
	var u uint64
	for _, c := range b {
		d := c - '0'
		if d > 9 {
			return 0, errSyntax
		}
		if u > (math.MaxInt64-uint64(d))/10 {
			return 0, errRange
		}
		u = u*10 + uint64(d)
	}
	if neg {
		return -int64(u), nil
	}
	return int64(u), nil
}

// parseTime parses seconds after midnight ("34200.004241176") into exact
// nanoseconds, using only integer arithmetic on the digits.
//
// LOBSTER writes times as the shortest decimal of a float64, so a few values
// carry float noise past the nanosecond: AMZN L=5 line 67823 reads
// "43002.632812672004", the float64 one ulp above the one nearest to
// 43002.632812672 (ITCH times are integer nanoseconds). Digits past the 9th
// are therefore rounded to the nearest nanosecond (half up), and rounded
// reports that it happened so callers can count it.
func parseTime(b []byte) (ns int64, rounded bool, err error) {
	intPart, frac := b, []byte(nil)
	for i, c := range b {
		if c == '.' {
			intPart, frac = b[:i], b[i+1:]
			break
		}
	}
	if len(intPart) == 0 || intPart[0] == '-' {
		return 0, false, errSyntax
	}
	sec, err := parseInt(intPart)
	if err != nil {
		return 0, false, err
	}
	if sec > math.MaxInt64/1_000_000_000-1 {
		return 0, false, errRange
	}
	for i, c := range frac {
		d := int64(c - '0')
		if c < '0' || c > '9' {
			return 0, false, errSyntax
		}
		switch {
		case i < 9:
			ns = ns*10 + d
		case i == 9:
			rounded = true
			if d >= 5 {
				ns++ // may reach 1e9: the sum below carries into the seconds
			}
		}
	}
	for i := len(frac); i < 9; i++ {
		ns *= 10
	}
	return sec*1e9 + ns, rounded, nil
}

// fields splits a CSV line (no quoting in LOBSTER files) into dst, returning
// the number of fields, or -1 if there are more than len(dst).
func fields(line []byte, dst [][]byte) int {
	n := 0
	start := 0
	for i := 0; i <= len(line); i++ {
		if i == len(line) || line[i] == ',' {
			if n == len(dst) {
				return -1
			}
			dst[n] = line[start:i]
			n++
			start = i + 1
		}
	}
	return n
}
