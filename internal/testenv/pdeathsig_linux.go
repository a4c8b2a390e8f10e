package testenv

import (
	"os/exec"
	"syscall"
)

// setPdeathsig makes the kernel kill the daemon when the test binary dies
// (e.g. a -timeout panic), so no clamd or memcached outlives its test run
// holding a port.
func setPdeathsig(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
