//go:build race

package quarantine_test

// raceEnabled: the race detector makes sync.Pool drop what it is given at
// random and adds its own allocations, so allocation bounds mean nothing
// under it.
const raceEnabled = true
