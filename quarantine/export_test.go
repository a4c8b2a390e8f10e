package quarantine

import "time"

// SetTrackingStall shortens how long an expiry waits on a stalled message
// tracker, for the test's life.
func SetTrackingStall(d time.Duration) (restore func()) {
	old := trackingStall
	trackingStall = d
	return func() { trackingStall = old }
}

// SetFinishBackoff shortens the waits between writes of a release's
// outcome, for the test's life.
func SetFinishBackoff(d time.Duration) (restore func()) {
	old := finishBackoff
	finishBackoff = d
	return func() { finishBackoff = old }
}

// OpenFactor is what max_open_bytes counts an open message per byte.
const OpenFactor = openFactor
