package itch

import (
	"fmt"
	"time"
)

// Day anchors ITCH timestamps (nanoseconds since midnight) to a trading date
// in a time zone. The zero Day is midnight UTC on 1970-01-01.
//
// A timestamp is taken as the time elapsed since local midnight, so on the
// two days a year the clocks change (always a Sunday, when NASDAQ does not
// trade) wall-clock readings after 02:00 differ from it by an hour.
type Day struct{ midnight int64 }

// NewDay returns the Day of the given date at midnight in loc (use
// NewYork() for NASDAQ).
func NewDay(year int, month time.Month, day int, loc *time.Location) Day {
	return Day{midnight: time.Date(year, month, day, 0, 0, 0, 0, loc).UnixNano()}
}

// DayOf returns the Day of t's date in t's location.
func DayOf(t time.Time) Day {
	y, m, d := t.Date()
	return NewDay(y, m, d, t.Location())
}

// Midnight returns the Unix time in nanoseconds of the day's midnight.
func (d Day) Midnight() int64 { return d.midnight }

// UnixNano converts an ITCH timestamp to Unix time in nanoseconds.
func (d Day) UnixNano(ts uint64) int64 { return d.midnight + int64(ts) }

// Timestamp converts Unix time in nanoseconds to an ITCH timestamp of the
// day; it fails with ErrRange before midnight or 2^48 ns (about 78 hours)
// or more after it.
func (d Day) Timestamp(unixNano int64) (uint64, error) {
	ts := unixNano - d.midnight
	if ts < 0 || ts > MaxTimestamp {
		return 0, fmt.Errorf("%w: %d ns from midnight is not an ITCH timestamp", ErrRange, ts)
	}
	return uint64(ts), nil
}

// NewYork loads the America/New_York time zone, NASDAQ's. It needs the
// system's zoneinfo database, or a program that imports time/tzdata.
func NewYork() (*time.Location, error) { return time.LoadLocation("America/New_York") }
