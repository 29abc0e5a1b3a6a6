//go:build race

package chaos_test

// raceEnabled: the processes are race-instrumented too (slower).
const raceEnabled = true
