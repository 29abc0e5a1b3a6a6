//go:build !race

package sweep_test

// raceEnabled: the processes are race-instrumented too (slower).
const raceEnabled = false
