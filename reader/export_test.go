package reader

import "time"

// SetFutexTimeout replaces the bound of one futex sleep for a test and
// returns a function that restores it.
func SetFutexTimeout(d time.Duration) (restore func()) {
	old := futexTimeout.Swap(int64(d))
	return func() { futexTimeout.Store(old) }
}

// SetBeforeBlock installs a hook run between the futex sleeper's last
// re-check and its sleep; it returns a function that removes it.
func SetBeforeBlock(f func(*Reader)) (restore func()) {
	beforeBlock = f
	return func() { beforeBlock = nil }
}
