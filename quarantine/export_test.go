package quarantine

import "time"

// SetTrackingStall shortens how long an expiry waits on a stalled message
// tracker, for the test's life.
func SetTrackingStall(d time.Duration) (restore func()) {
	old := trackingStall
	trackingStall = d
	return func() { trackingStall = old }
}

// OpenFactor is what max_open_bytes counts an open message per byte.
const OpenFactor = openFactor
