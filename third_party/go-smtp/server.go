package smtp

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"log"
	"net"
	"os"
	"sync"
	"time"
)

var ErrServerClosed = errors.New("smtp: server already closed")

// Logger interface is used by Server to report unexpected internal errors.
type Logger interface {
	Printf(format string, v ...interface{})
	Println(v ...interface{})
}

// A SMTP server.
type Server struct {
	// The type of network, "tcp" or "unix".
	Network string
	// TCP or Unix address to listen on.
	Addr string
	// The server TLS configuration.
	TLSConfig *tls.Config
	// StartingTLS, when set, is called with the connection's clear-text
	// conn once STARTTLS is accepted, before its 220 and the handshake:
	// from then on nothing may be written to that conn in clear text
	// (mxgrid patch: the node's shutdown goodbye is written below go-smtp).
	StartingTLS func(net.Conn)
	// Enable LMTP mode, as defined in RFC 2033.
	LMTP bool

	Domain        string
	MaxRecipients int
	// MaxJunkCommands is how many commands that move no mail (NOOP, RSET,
	// VRFY, HELO, EHLO and the unimplemented ones such as HELP) a client
	// may send since its last accepted message, each waited for: ones
	// pipelined behind another (RFC 2920) come free. The next gets 421
	// 4.7.0 and the connection closes (mxgrid patch, after Postfix's
	// smtpd_junk_command_limit). Upstream had no limit, so a client could
	// hold a connection for ever with a NOOP now and then. Zero means no
	// limit.
	MaxJunkCommands int
	// Stressed, when set, says whether c runs under the stress limits
	// now; it is asked whenever a junk command or an error is counted
	// (mxgrid patch, after Postfix's stress-adaptive
	// smtpd_junk_command_limit and smtpd_hard_error_limit, 1 under
	// stress). Under them StressJunkCommands replaces MaxJunkCommands
	// when lower, and the first error closes the connection, where
	// three are let go otherwise. A server whose connections are all
	// taken sheds the clients that hold one without sending mail.
	Stressed           func(c *Conn) bool
	StressJunkCommands int
	// ForbidUnauthPipelining ends the session of a client that sends more
	// behind a command than RFC 2920 allows: anything behind a command
	// when it did not say EHLO (no PIPELINING negotiated), or behind one
	// after which a client must wait for the reply (EHLO, HELO, DATA,
	// STARTTLS, AUTH, NOOP, QUIT...: mustEndGroup). Input read along with
	// the command counts, and so does input still in the socket when the
	// connection exposes it (syscall.Conn; not TLS), peeked at without
	// consuming it as Postfix does: a message sent behind its DATA without
	// waiting for the 354, as the SMTP-smuggling probes and blind spam
	// senders do, is caught whether it came in the command's segment or a
	// later one.
	// The client gets "554 5.5.0 Error: SMTP protocol synchronization"
	// and the connection closes (mxgrid patch, after Postfix's
	// smtpd_forbid_unauth_pipelining, on by default since Postfix 3.9).
	ForbidUnauthPipelining bool
	// ImproperPipelining, when set, is told of each such client before
	// its connection closes, with the command and the start of what
	// followed it (at most 100 octets, as the client sent them), which
	// is the connection's buffer: it may not be kept past the call.
	ImproperPipelining func(c *Conn, after string, unexpected []byte)
	MaxMessageBytes    int64
	MaxLineLength      int
	AllowInsecureAuth  bool
	Debug              io.Writer
	ErrorLog           Logger
	ReadTimeout        time.Duration
	WriteTimeout       time.Duration

	// Advertise SMTPUTF8 (RFC 6531) capability.
	// Should be used only if backend supports it.
	EnableSMTPUTF8 bool

	// Advertise REQUIRETLS (RFC 8689) capability.
	// Should be used only if backend supports it.
	EnableREQUIRETLS bool

	// Advertise BINARYMIME (RFC 3030) capability.
	// Should be used only if backend supports it.
	EnableBINARYMIME bool

	// Advertise DSN (RFC 3461) capability.
	// Should be used only if backend supports it.
	EnableDSN bool

	// Advertise RRVS (RFC 7293) capability.
	// Should be used only if backend supports it.
	EnableRRVS bool

	// Advertise DELIVERBY (RFC 2852) capability.
	// Should be used only if backend supports it.
	EnableDELIVERBY bool
	// The minimum time, with seconds precision, that a client
	// may specify in the BY argument with return mode.
	// A zero value indicates no set minimum.
	// Only use if DELIVERBY is enabled.
	MinimumDeliverByTime time.Duration

	// Advertise MT-PRIORITY (RFC 6710) capability.
	// Should only be used if backend supports it.
	EnableMTPRIORITY bool
	// The priority profile mapping as defined
	// in RFC 6710 section 10.2.
	//
	// Default value of NONE to advertise no specific profile.
	MtPriorityProfile PriorityProfile

	// The server backend.
	Backend Backend

	wg   sync.WaitGroup
	done chan struct{}
	// handoff passes an accepted connection to a worker waiting for one
	// (mxgrid, see worker).
	handoff chan net.Conn

	locker    sync.Mutex
	listeners []net.Listener
	conns     map[*Conn]struct{}
}

// New creates a new SMTP server.
func NewServer(be Backend) *Server {
	return &Server{
		// Doubled maximum line length per RFC 5321 (Section 4.5.3.1.6)
		MaxLineLength: 2000,

		Backend:  be,
		done:     make(chan struct{}, 1),
		handoff:  make(chan net.Conn),
		ErrorLog: log.New(os.Stderr, "smtp/server ", log.LstdFlags),
		conns:    make(map[*Conn]struct{}),
	}
}

// Serve accepts incoming connections on the Listener l.
func (s *Server) Serve(l net.Listener) error {
	s.locker.Lock()
	select {
	case <-s.done:
		// mxgrid: Shutdown ran before l was registered, so it did not
		// close l, and Accept would wait for ever.
		s.locker.Unlock()
		l.Close()
		return nil
	default:
	}
	s.listeners = append(s.listeners, l)
	s.locker.Unlock()

	var tempDelay time.Duration // how long to sleep on accept failure

	for {
		c, err := l.Accept()
		if err != nil {
			select {
			case <-s.done:
				// we called Close()
				return nil
			default:
			}
			if ne, ok := err.(net.Error); ok && ne.Temporary() {
				if tempDelay == 0 {
					tempDelay = 5 * time.Millisecond
				} else {
					tempDelay *= 2
				}
				if max := 1 * time.Second; tempDelay > max {
					tempDelay = max
				}
				s.ErrorLog.Printf("accept error: %s; retrying in %s", err, tempDelay)
				time.Sleep(tempDelay)
				continue
			}
			return err
		}

		select {
		case s.handoff <- c:
		default:
			s.wg.Add(1)
			go s.worker(c)
		}
	}
}

// workerIdle is how long a worker waits for its next connection.
const workerIdle = 2 * time.Second

// worker serves c, then each connection handed to it, until none comes
// for workerIdle or the server closes (mxgrid). Upstream starts a
// goroutine per connection, whose stack then grows by doubling and copying
// as a transaction goes deep: with a connection per message that was 2.6 %
// of a node's CPU. A worker keeps its grown stack for the next connection
// (a GC halves an idle one's at most once per cycle).
func (s *Server) worker(c net.Conn) {
	defer s.wg.Done()
	idle := time.NewTimer(workerIdle)
	defer idle.Stop()
	for {
		if err := s.handleConn(newConn(c, s)); err != nil {
			s.ErrorLog.Printf("error handling %v: %s", c.RemoteAddr(), err)
		}
		idle.Reset(workerIdle)
		select {
		case c = <-s.handoff:
		case <-idle.C:
			return
		case <-s.done:
			return
		}
	}
}

func (s *Server) handleConn(c *Conn) error {
	s.locker.Lock()
	s.conns[c] = struct{}{}
	s.locker.Unlock()

	defer func() {
		c.end()
		c.closeLingering()
		c.releaseText()

		s.locker.Lock()
		delete(s.conns, c)
		s.locker.Unlock()
	}()

	if tlsConn, ok := c.conn.(*tls.Conn); ok {
		if d := s.ReadTimeout; d != 0 {
			c.conn.SetReadDeadline(time.Now().Add(d))
		}
		if d := s.WriteTimeout; d != 0 {
			c.conn.SetWriteDeadline(time.Now().Add(d))
		}
		if err := tlsConn.Handshake(); err != nil {
			return err
		}
	}

	c.greet()

	for {
		c.inGroup = c.lineWaiting()
		line, err := c.readLine()
		if err == nil {
			if cmd, arg, err := parseCmd(line); err != nil {
				// A line that does not parse is an unknown command, which
				// a client must wait on like any (mxgrid patch): unchecked,
				// the chunk behind a "BDAT\t20 LAST" ran as commands, and
				// so did anything pipelined behind "XCLIENT ...". The
				// whole line names it: never a command allowed in a group.
				if c.improperPipelining(line) {
					return nil
				}
				c.protocolError(501, EnhancedCode{5, 5, 2}, "Bad command")
			} else if c.improperPipelining(cmd) {
				return nil
			} else {
				c.handle(cmd, arg)
			}
			if c.over.Load() {
				return nil // see Conn.over
			}
		} else {
			if err == io.EOF || errors.Is(err, net.ErrClosed) {
				return nil
			}
			if err == ErrTooLongLine {
				// A syntax error (RFC 5321 §4.2.4: 500 includes "command
				// line too long"; RFC 3463 X.5.2), not X.4.0, a network
				// or routing status (mxgrid patch).
				c.writeResponse(500, EnhancedCode{5, 5, 2}, "Too long line, closing connection")
				return nil
			}

			if neterr, ok := err.(net.Error); ok && neterr.Timeout() {
				c.closing(ErrCommandTimedOut)
				c.writeResponse(421, EnhancedCode{4, 4, 2}, "Idle timeout, bye bye")
				return nil
			}

			c.writeResponse(421, EnhancedCode{4, 4, 0}, "Connection error, sorry")
			return err
		}
	}
}

func (s *Server) network() string {
	if s.Network != "" {
		return s.Network
	}
	if s.LMTP {
		return "unix"
	}
	return "tcp"
}

// ListenAndServe listens on the network address s.Addr and then calls Serve
// to handle requests on incoming connections.
//
// If s.Addr is blank and LMTP is disabled, ":smtp" is used.
func (s *Server) ListenAndServe() error {
	network := s.network()

	addr := s.Addr
	if !s.LMTP && addr == "" {
		addr = ":smtp"
	}

	l, err := net.Listen(network, addr)
	if err != nil {
		return err
	}

	return s.Serve(l)
}

// ListenAndServeTLS listens on the TCP network address s.Addr and then calls
// Serve to handle requests on incoming TLS connections.
//
// If s.Addr is blank and LMTP is disabled, ":smtps" is used.
func (s *Server) ListenAndServeTLS() error {
	network := s.network()

	addr := s.Addr
	if !s.LMTP && addr == "" {
		addr = ":smtps"
	}

	l, err := tls.Listen(network, addr, s.TLSConfig)
	if err != nil {
		return err
	}

	return s.Serve(l)
}

// Close immediately closes all active listeners and connections.
//
// Close returns any error returned from closing the server's underlying
// listener(s).
func (s *Server) Close() error {
	select {
	case <-s.done:
		return ErrServerClosed
	default:
		close(s.done)
	}

	var err error
	s.locker.Lock()
	for _, l := range s.listeners {
		if lerr := l.Close(); lerr != nil && err == nil {
			err = lerr
		}
	}

	for conn := range s.conns {
		conn.Close()
	}
	s.locker.Unlock()

	return err
}

// Shutdown gracefully shuts down the server without interrupting any
// active connections. Shutdown works by first closing all open
// listeners and then waiting indefinitely for connections to return to
// idle and then shut down.
// If the provided context expires before the shutdown is complete,
// Shutdown returns the context's error, otherwise it returns any
// error returned from closing the Server's underlying Listener(s).
func (s *Server) Shutdown(ctx context.Context) error {
	select {
	case <-s.done:
		return ErrServerClosed
	default:
		close(s.done)
	}

	var err error
	s.locker.Lock()
	for _, l := range s.listeners {
		if lerr := l.Close(); lerr != nil && err == nil {
			err = lerr
		}
	}
	s.locker.Unlock()

	connDone := make(chan struct{})
	go func() {
		defer close(connDone)
		s.wg.Wait()
	}()

	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-connDone:
		return err
	}
}
