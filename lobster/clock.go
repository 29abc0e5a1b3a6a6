package lobster

import (
	"fmt"
	"sync"
	"time"
)

// Exchange is the time zone LOBSTER times are in (NASDAQ).
const Exchange = "America/New_York"

// midnight returns the Unix nanoseconds of 00:00 wall-clock time on d in loc,
// as extrapolated from noon: LOBSTER (like ITCH) counts "seconds after
// midnight" as a wall-clock time of day, so on a DST-change day 09:30 must
// still map to 09:30 local, which midnight + 9.5h would not (the change happens
// at 02:00, long before the session).
func midnight(d Date, loc *time.Location) int64 {
	noon := time.Date(d.Year, d.Month, d.Day, 12, 0, 0, 0, loc)
	return noon.UnixNano() - 12*int64(time.Hour)
}

// exchangeLocation loads the exchange zone once: LoadLocation reads and
// parses the zone file on every call.
var exchangeLocation = sync.OnceValues(func() (*time.Location, error) { return time.LoadLocation(Exchange) })

func location(loc *time.Location) (*time.Location, error) {
	if loc != nil {
		return loc, nil
	}
	l, err := exchangeLocation()
	if err != nil {
		return nil, fmt.Errorf("lobster: %w", err)
	}
	return l, nil
}
