package relay

import (
	"bufio"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"
)

var errNoStartTLS = errors.New("server does not offer STARTTLS")

// startTLS runs greeting, EHLO and STARTTLS by hand and returns a connection
// on which go-smtp's client can start as on a fresh one. go-smtp's own
// NewClientStartTLS always introduces itself as "localhost", which customer
// servers with HELO restrictions (Postfix reject_non_fqdn_helo_hostname)
// refuse; doing the pre-TLS part here lets us say our real name.
//
// After STARTTLS, RFC 3207 §4.2 says the client starts over with EHLO and
// the server sends no new greeting, so the returned connection replays a
// synthetic 220 for the client to read. When the server offers no STARTTLS,
// the returned error is errNoStartTLS and the connection (still clear text)
// is returned in the same replayable state.
func startTLS(conn net.Conn, hostname string, route Route, timeout time.Duration) (net.Conn, error) {
	_ = conn.SetDeadline(time.Now().Add(timeout))
	defer conn.SetDeadline(time.Time{})
	br := bufio.NewReader(conn)
	if _, err := readReply(br, 220); err != nil {
		return nil, fmt.Errorf("greeting: %w", err)
	}
	if _, err := fmt.Fprintf(conn, "EHLO %s\r\n", hostname); err != nil {
		return nil, err
	}
	lines, err := readReply(br, 250)
	if err != nil {
		return nil, fmt.Errorf("EHLO: %w", err)
	}
	offered := false
	for _, l := range lines {
		if strings.EqualFold(strings.TrimSpace(l), "STARTTLS") {
			offered = true
		}
	}
	if !offered {
		return &replayConn{Conn: conn, r: bufio.NewReader(strings.NewReader("220 " + route.Addr + " ESMTP\r\n")), rest: br}, errNoStartTLS
	}
	if _, err := conn.Write([]byte("STARTTLS\r\n")); err != nil {
		return nil, err
	}
	if _, err := readReply(br, 220); err != nil {
		return nil, fmt.Errorf("STARTTLS: %w", err)
	}
	if br.Buffered() > 0 {
		// RFC 3207 §5: data pipelined before the handshake is an attack.
		return nil, errors.New("server sent data before the TLS handshake")
	}
	host, _, _ := net.SplitHostPort(route.Addr)
	// Certificates are not verified (see TLSOpportunistic); TLS 1.2 is the
	// floor so a downgrade is a handshake failure, not clear text.
	tc := tls.Client(conn, &tls.Config{ServerName: host, InsecureSkipVerify: true, MinVersion: tls.VersionTLS12}) //nolint:gosec // documented policy
	if err := tc.Handshake(); err != nil {
		return nil, err
	}
	return &replayConn{Conn: tc, r: bufio.NewReader(strings.NewReader("220 " + route.Addr + " ESMTP\r\n"))}, nil
}

// readReply reads one possibly multi-line reply and checks its code.
func readReply(br *bufio.Reader, want int) ([]string, error) {
	var lines []string
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			return nil, err
		}
		line = strings.TrimRight(line, "\r\n")
		if len(line) < 3 {
			return nil, fmt.Errorf("malformed reply %q", line)
		}
		var code int
		if _, err := fmt.Sscanf(line[:3], "%d", &code); err != nil {
			return nil, fmt.Errorf("malformed reply %q", line)
		}
		if code != want {
			return nil, fmt.Errorf("unexpected reply %q", line)
		}
		if len(line) > 4 {
			lines = append(lines, line[4:])
		}
		if len(line) == 3 || line[3] != '-' {
			return lines, nil
		}
	}
}

// replayConn serves a synthetic greeting first, then whatever was already
// buffered from the server, then the connection itself.
type replayConn struct {
	net.Conn
	r    *bufio.Reader
	rest *bufio.Reader
}

func (c *replayConn) Read(p []byte) (int, error) {
	if c.r != nil {
		if n, _ := c.r.Read(p); n > 0 {
			return n, nil
		}
		c.r = nil
	}
	if c.rest != nil {
		if c.rest.Buffered() > 0 {
			return c.rest.Read(p)
		}
		c.rest = nil
	}
	return c.Conn.Read(p)
}
