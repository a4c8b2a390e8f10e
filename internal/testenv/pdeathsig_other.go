//go:build !linux

package testenv

import "os/exec"

// setPdeathsig has no portable equivalent outside Linux; t.Cleanup still stops
// the daemon on a normal exit.
func setPdeathsig(*exec.Cmd) {}
