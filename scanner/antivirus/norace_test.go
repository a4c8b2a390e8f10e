//go:build !race

package antivirus

const raceEnabled = false
