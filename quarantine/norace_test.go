//go:build !race

package quarantine_test

const raceEnabled = false
