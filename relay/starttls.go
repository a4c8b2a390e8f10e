package relay

import (
	"bufio"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/mxgrid/mxgrid/internal/rawsock"
	"github.com/mxgrid/mxgrid/netguard"
)

var errNoStartTLS = errors.New("server does not offer STARTTLS")

// errStartTLS marks a failure of STARTTLS itself (its reply, or the
// handshake): the only failure opportunistic TLS retries in clear text.
// One before it (a 421 greeting from a server at its connection limit)
// would only be met again, on a second connection.
var errStartTLS = errors.New("STARTTLS")

// handshake runs greeting, EHLO and (when tryTLS) STARTTLS by hand and
// returns a connection on which go-smtp's client can go on. go-smtp's own
// NewClientStartTLS always introduces itself as "localhost", which
// customer servers with HELO restrictions (Postfix
// reject_non_fqdn_helo_hostname) refuse; doing the first exchange here lets
// us say our real name. It is also where a loop shows: a downstream that
// greets or answers EHLO with a name ours reports (our own host name or a
// cluster member's) is this node, another running our configuration or a
// member, and the answer is a *netguard.LoopError.
//
// Without TLS, the EHLO done here stands: ehlo is the text of its reply's
// lines, from which the client is built (smtp.NewClientGreeted) rather
// than sending a second EHLO, which RFC 5321 §4.1.4 allows but which costs
// a round trip on every new connection. When tryTLS is set and the server
// offers no STARTTLS, the error is errNoStartTLS and the connection (still
// clear text) and ehlo are returned the same way. After STARTTLS, RFC 3207
// §4.2 says the client starts over with EHLO and the server sends no new
// greeting: ehlo is nil and the returned connection replays a synthetic
// 220 for the client to read.
func handshake(conn net.Conn, hostname string, ours func(name string) bool, route Route, timeout time.Duration, tryTLS bool) (_ net.Conn, ehlo []string, _ error) {
	_ = conn.SetDeadline(time.Now().Add(timeout))
	defer conn.SetDeadline(time.Time{})
	br := bufio.NewReader(conn)
	lines, err := readReply(br, 220)
	if err != nil {
		return nil, nil, fmt.Errorf("greeting: %w", err)
	}
	if err := checkLoop(conn, lines, ours, route, "greeting"); err != nil {
		return nil, nil, err
	}
	if _, err := fmt.Fprintf(conn, "EHLO %s\r\n", hostname); err != nil {
		return nil, nil, err
	}
	lines, err = readReply(br, 250)
	var refused *replyCodeError
	if errors.As(err, &refused) && refused.code/100 == 5 {
		// A server that does not know EHLO refuses it with 500 or 502;
		// RFC 5321 §3.2 has the client fall back to HELO, as Postfix
		// does. Without this its mail was deferred until it bounced.
		// HELO offers no extension, STARTTLS included.
		if _, err := fmt.Fprintf(conn, "HELO %s\r\n", hostname); err != nil {
			return nil, nil, err
		}
		if lines, err = readReply(br, 250); err != nil {
			return nil, nil, fmt.Errorf("HELO after EHLO was refused: %w", err)
		}
		if err := checkLoop(conn, lines, ours, route, "ehlo"); err != nil {
			return nil, nil, err
		}
		if answeredAhead(conn, br) {
			return nil, nil, errAnsweredAhead
		}
		plain := &replayConn{Conn: conn, rest: br, sock: rawsock.Wrap(conn)}
		if tryTLS {
			return plain, lines[:1], errNoStartTLS
		}
		return plain, lines[:1], nil
	}
	if err != nil {
		return nil, nil, fmt.Errorf("EHLO: %w", err)
	}
	if err := checkLoop(conn, lines, ours, route, "ehlo"); err != nil {
		return nil, nil, err
	}
	if answeredAhead(conn, br) {
		return nil, nil, errAnsweredAhead
	}
	offered := false
	for _, l := range lines {
		if strings.EqualFold(strings.TrimSpace(l), "STARTTLS") {
			offered = true
		}
	}
	plain := &replayConn{Conn: conn, rest: br, sock: rawsock.Wrap(conn)}
	switch {
	case !tryTLS:
		return plain, lines, nil
	case !offered:
		return plain, lines, errNoStartTLS
	}
	if _, err := conn.Write([]byte("STARTTLS\r\n")); err != nil {
		return nil, nil, fmt.Errorf("%w: %w", errStartTLS, err)
	}
	if _, err := readReply(br, 220); err != nil {
		return nil, nil, fmt.Errorf("%w: %w", errStartTLS, err)
	}
	if br.Buffered() > 0 {
		// RFC 3207 §5: data pipelined before the handshake is an attack.
		return nil, nil, fmt.Errorf("%w: server sent data before the TLS handshake", errStartTLS)
	}
	host, _, _ := net.SplitHostPort(route.Addr)
	// Certificates are not verified (see TLSOpportunistic); TLS 1.2 is the
	// floor so a downgrade is a handshake failure, not clear text.
	tc := tls.Client(conn, &tls.Config{ServerName: host, InsecureSkipVerify: true, MinVersion: tls.VersionTLS12}) //nolint:gosec // documented policy
	if err := tc.Handshake(); err != nil {
		return nil, nil, fmt.Errorf("%w: %w", errStartTLS, err)
	}
	return &replayConn{Conn: tc, r: bufio.NewReader(strings.NewReader("220 " + route.Addr + " ESMTP\r\n"))}, nil, nil
}

// errAnsweredAhead: the server sent more than its reply to EHLO before it
// was asked anything else.
var errAnsweredAhead = errors.New("server sent replies to commands not yet sent")

// answeredAhead reports whether anything waits after the reply just read,
// in br or in conn's socket. Nothing may: the client has sent nothing
// since. Such replies would be read as the next commands' own, every
// later reply one command late: MAIL took the stray 250, a recipient the
// server refused was answered 250 to the sender, and the refusal went to
// the next recipient, one the server had taken (a permanent bounce).
func answeredAhead(conn net.Conn, br *bufio.Reader) bool {
	return br.Buffered() > 0 || socketPending(conn)
}

// checkLoop looks for a name of ours (see ours) as the first word of a
// greeting or EHLO reply, where RFC 5321 §4.2 puts the server's own name.
func checkLoop(conn net.Conn, lines []string, ours func(name string) bool, route Route, stage string) error {
	if len(lines) == 0 {
		return nil
	}
	name, _, _ := strings.Cut(lines[0], " ")
	if ours(name) {
		t, _ := netguard.ParseTarget(route.Addr)
		peer, _ := netip.ParseAddrPort(conn.RemoteAddr().String())
		return &netguard.LoopError{Target: t, Addr: peer, DetectedBy: stage}
	}
	return nil
}

// replyCodeError is a whole, well-formed reply of another code than the
// one wanted.
type replyCodeError struct {
	code int
	line string
}

func (e *replyCodeError) Error() string { return fmt.Sprintf("unexpected reply %q", e.line) }

// readReply reads one possibly multi-line reply and checks its code: a
// reply of another code is read to its end and returned as a
// *replyCodeError. It reads no more than go-smtp's client does
// (smtp.MaxReplyBytes, and lines no longer than br's buffer): a server
// that never ends a reply, or a line, must not hold the handshake in
// memory until the timeout.
func readReply(br *bufio.Reader, want int) ([]string, error) {
	var lines []string
	first := 0
	for read := 0; ; {
		raw, err := br.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			return nil, fmt.Errorf("reply line longer than %d bytes", br.Size())
		}
		if err != nil {
			return nil, err
		}
		if read += len(raw); read > smtp.MaxReplyBytes {
			return nil, fmt.Errorf("reply longer than %d bytes: %w", smtp.MaxReplyBytes, smtp.ErrReplyTooLong)
		}
		line := strings.TrimRight(string(raw), "\r\n")
		if len(line) < 3 {
			return nil, fmt.Errorf("malformed reply %q", line)
		}
		var code int
		if _, err := fmt.Sscanf(line[:3], "%d", &code); err != nil {
			return nil, fmt.Errorf("malformed reply %q", line)
		}
		if len(lines) == 0 {
			first = code
		} else if code != first {
			return nil, fmt.Errorf("reply code changed within a reply: %q", line)
		}
		// A bare code ("250") is a line of empty text, as textproto
		// reads it: dropping it would make an EHLO reply's first
		// extension pass for the server's name.
		text := ""
		if len(line) > 4 {
			text = line[4:]
		}
		lines = append(lines, text)
		if len(line) == 3 || line[3] != '-' {
			if code != want {
				return nil, &replyCodeError{code: code, line: line}
			}
			return lines, nil
		}
	}
}

// replayConn serves a synthetic greeting first (after STARTTLS), then
// whatever was already buffered from the server (in clear text), then the
// connection itself.
type replayConn struct {
	net.Conn
	r    *bufio.Reader
	rest *bufio.Reader
	// sock, when not nil, reads and writes a clear-text connection's
	// socket without the scheduler's system call bookkeeping (rawsock).
	sock *rawsock.Conn
}

func (c *replayConn) Write(p []byte) (int, error) {
	if c.sock != nil {
		return c.sock.Write(p)
	}
	return c.Conn.Write(p)
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
	if c.sock != nil {
		return c.sock.Read(p)
	}
	return c.Conn.Read(p)
}
