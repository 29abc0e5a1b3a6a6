package reader

import "time"

// SetFutexTimeout replaces the bound of one futex sleep for a test and
// returns a function that restores it.
func SetFutexTimeout(d time.Duration) (restore func()) {
	old := futexTimeout
	futexTimeout = d
	return func() { futexTimeout = old }
}
