package smtpd

import (
	"crypto/tls"
	"fmt"
	"time"

	"github.com/emersion/go-smtp"
	"github.com/mxgrid/mxgrid/health"
)

// Stress is Postfix's answer to a server whose connections are all taken
// (postconf(5): smtpd_timeout = ${stress?{10}:{300}}s,
// smtpd_junk_command_limit and smtpd_hard_error_limit ${stress?{1}:...}),
// for one process: once open connections reach stressOnPercent of
// smtp.max_connections, every session, those already open included, gets
// smtp.stress_command_timeout for its next command or the next piece of
// its body (data_timeout still bounds the whole), and between messages
// stressJunkCommands commands that move no mail, and is closed at its
// first error; below stressOffPercent the usual limits return. Without it
// 40 clients at the per-IP limit, each sending a NOOP inside every
// command timeout, held all 2,000 connections for the ~200 minutes
// smtp.max_junk_commands allowed, and every other sender got 421 "too many
// connections". A body that keeps coming is never cut; one idle past the
// stress timeout is, as by Postfix (421 4.4.2, the sender retries):
// spared, a client that started a message and trickled its body held its
// slot for all of data_timeout.
const (
	stressOnPercent  = 80
	stressOffPercent = 60
	// stressJunkCommands is Postfix's stress limit of 1 counted as
	// go-smtp counts: Postfix checks junk_cmds++ > limit after the
	// command, so two pass and the third costs an error; go-smtp's limit
	// is the number answered. At 1 a sender saying EHLO, STARTTLS, EHLO
	// would be shown out before its first MAIL.
	stressJunkCommands = 2
	// healthStress is the component /readyz lists while under stress:
	// degraded, not unready, as the node still takes mail, and taking it
	// out of rotation would hand its load to the other nodes.
	healthStress = "smtp.stress"
)

// stressMarks are the open connections at which stress begins and below
// which it ends, rounded up: a node of 10 connections is stressed from 8
// until 5 are left.
func stressMarks(maxConns int) (on, off int) {
	return (maxConns*stressOnPercent + 99) / 100, (maxConns*stressOffPercent + 99) / 100
}

// updateStress enters or leaves stress for n open connections; it runs
// under s.mu as the count changes, so transitions (their log lines, the
// gauge and /readyz) cannot be reordered.
func (s *Server) updateStress(n int) {
	stressed := s.stressed.Load()
	switch {
	case !stressed && n >= s.stressOn:
		s.stressed.Store(true)
		s.metrics.stress.Set(1)
		timeout, lowered := s.idleTimeout()
		s.log.Warn("SMTP connections at the high-water mark: sessions between messages run under stress limits",
			"connections", n, "max_connections", s.cfg.MaxConnections, "command_timeout", timeout,
			"junk_commands", stressJunkCommands, "until_below", s.stressOff)
		if s.deps.Health != nil {
			s.deps.Health.Set(healthStress, health.Degraded, fmt.Sprintf(
				"connections reached %d of smtp.max_connections %d: sessions between messages get %s for a command, %d commands without a message, and are closed at their first error, until fewer than %d are open",
				n, s.cfg.MaxConnections, timeout, stressJunkCommands, s.stressOff))
		}
		if lowered {
			for c := range s.conns {
				c.retime(timeout, true)
			}
		}
	case stressed && n < s.stressOff:
		s.stressed.Store(false)
		s.metrics.stress.Set(0)
		s.log.Warn("SMTP connections below the low-water mark: usual session limits again", "connections", n, "max_connections", s.cfg.MaxConnections)
		if s.deps.Health != nil {
			s.deps.Health.Set(healthStress, health.OK, "")
		}
		for c := range s.conns {
			if c.stressDeadline.Load() {
				c.retime(s.cfg.CommandTimeout, false)
			}
		}
	}
}

// idleTimeout is how long a client between messages has for its next
// command, and whether stress lowered it.
func (s *Server) idleTimeout() (time.Duration, bool) {
	if s.stressed.Load() && s.cfg.StressCommandTimeout < s.cfg.CommandTimeout {
		return s.cfg.StressCommandTimeout, true
	}
	return s.cfg.CommandTimeout, false
}

// stressedConn tells go-smtp whether c runs under the stress limits: not
// while its message is underway.
func (s *Server) stressedConn(c *smtp.Conn) bool {
	if !s.stressed.Load() {
		return false
	}
	nc := c.Conn()
	if tc, ok := nc.(*tls.Conn); ok {
		nc = tc.NetConn()
	}
	gate, ok := nc.(*gateConn)
	return !ok || gate.dataDeadline.Load() == 0
}
