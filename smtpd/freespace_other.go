//go:build !(linux || darwin)

package smtpd

// freeBytes cannot tell here: a full disk then shows as a failed write
// (452 all the same, once the body arrived) instead of an early 452.
func freeBytes(string) (int64, bool) { return 0, false }
