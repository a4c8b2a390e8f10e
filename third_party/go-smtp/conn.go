package smtp

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"io/ioutil"
	"math"
	"net"
	"net/textproto"
	"regexp"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emersion/go-sasl"
)

// Number of errors we'll tolerate per connection before closing. Defaults to 3.
const errThreshold = 3

type Conn struct {
	conn   net.Conn
	text   *textproto.Conn
	server *Server
	helo   string

	// textConn is what text points to, and rw what its buffers read and
	// write through: held here, they are not three allocations a
	// connection (mxgrid patch).
	textConn textproto.Conn
	rw       connRW

	// pending is where improperPipelining peeks into the socket (mxgrid
	// patch): a local array escapes to the heap through socketPeek's
	// closure, 112 bytes per command checked.
	pending [100]byte
	peek    socketPeek

	// Number of errors witnessed on this connection
	errCount int
	// junk counts the round trips spent on commands that moved no mail
	// since the last accepted message (see Server.MaxJunkCommands);
	// inGroup is set while the command at hand came pipelined behind the
	// previous one, which spent the round trip.
	junk    int
	inGroup bool
	// mailWaited is set when the open transaction's MAIL was a command
	// the client waited for: if the transaction ends without a message,
	// that round trip was junk too (mxgrid patch; see
	// transactionAbandoned). A message's reply ends the transaction
	// (reset), so the flag is read only while it is open.
	mailWaited bool
	// refused is set when the command at hand was answered 4xx or 5xx
	// (other than its message's reply): it moved no mail, and counts as
	// junk (mxgrid patch).
	refused bool
	// deferred is set when that answer was "452 4.5.3", a recipient to
	// send in another transaction (too many recipients, RFC 5321
	// §4.5.3.1.10; RFC 3463 X.5.3): flow control a client meets in bulk
	// when it pipelines a long recipient list, not an error (mxgrid
	// patch).
	deferred bool
	// freeDeferrals counts the deferrals let go free in groups this
	// session, up to MaxFreeDeferrals (mxgrid patch).
	freeDeferrals int
	// plainReplies is set while the client greeted with HELO: it
	// negotiated no enhanced status codes (RFC 2034 §3), so replies carry
	// none (mxgrid patch; upstream sent them to every client).
	plainReplies bool

	session    Session
	locker     sync.Mutex
	binarymime bool

	lineLimitReader lineLimitReader
	dataReader      dataReader // see newDataReader
	bdatPipe        *io.PipeWriter
	bdatStatus      *statusCollector // used for BDAT on LMTP
	dataResult      chan error
	bdatDone        chan struct{} // closed when the BDAT goroutine returns
	bytesReceived   int64         // counts total size of chunks when BDAT is used

	fromReceived bool
	recipients   []string
	didAuth      bool

	// midGroup is set while a command that may stand in the middle of a
	// pipelined group (RFC 2920 §3.1: RSET, MAIL, RCPT) is handled.
	midGroup bool

	// over is set once the server has said it is closing (mxgrid patch):
	// a 421 written, or Close (QUIT, too many errors, a failed TLS
	// handshake). handleConn then executes nothing the client pipelined
	// after: upstream went on with what it had read, so a MAIL after QUIT
	// reached a session already logged out (a nil dereference), and a
	// transaction answered 421 went on to deliver.
	over atomic.Bool
	// quit is set once the client said QUIT (closeLingering; mxgrid
	// patch). Only the connection's own goroutine reads and writes it.
	quit bool
}

func newConn(c net.Conn, s *Server) *Conn {
	sc := &Conn{
		server: s,
		conn:   c,
	}

	sc.init()
	return sc
}

func (c *Conn) init() {
	c.peek = socketPeek{}
	c.lineLimitReader = lineLimitReader{
		R:         c.conn,
		LineLimit: c.server.MaxLineLength,
	}
	c.rw = connRW{Reader: flushBeforeRead{c}, Writer: c.conn}
	if c.server.Debug != nil {
		c.rw = connRW{io.TeeReader(c.rw.Reader, c.server.Debug), io.MultiWriter(c.rw.Writer, c.server.Debug)}
	}

	// The buffers come from pools (mxgrid patch): a fresh 4 KiB reader
	// and writer per connection were a tenth of the bytes a node
	// allocated on one-message connections. The textproto.Conn is built
	// by hand, without the io.Closer NewConn would keep: the server never
	// closes it, it closes c.conn.
	c.releaseText()
	br := textReaders.Get().(*bufio.Reader)
	br.Reset(&c.rw)
	bw := textWriters.Get().(*bufio.Writer)
	bw.Reset(&c.rw)
	c.textConn = textproto.Conn{Reader: textproto.Reader{R: br}, Writer: textproto.Writer{W: bw}}
	c.text = &c.textConn
}

// connRW is what a connection's buffers read and write through.
type connRW struct {
	io.Reader
	io.Writer
}

// readBufferSize is the connection's read buffer (mxgrid patch; upstream
// 4 KiB). Commands need little, but a DATA body is read a buffer at a
// time: at 4 KiB a 5 KB message took two reads of the connection and a
// 100 KB one twenty-five. At 16 KiB most mail arrives in one or a few,
// for 12 KiB more per open connection (24 MB at a node's default 2,000).
const readBufferSize = 16 << 10

var (
	textReaders = sync.Pool{New: func() interface{} { return bufio.NewReaderSize(nil, readBufferSize) }}
	textWriters = sync.Pool{New: func() interface{} { return bufio.NewWriter(nil) }}
)

// releaseText returns the connection's buffers to their pools. Only the
// connection's own goroutine reads and writes c.text, so it releases them
// when it is done (handleConn) or replaces them (STARTTLS); c.text is nil
// afterwards, so a use after release fails loudly rather than sharing a
// buffer with another connection.
func (c *Conn) releaseText() {
	if c.text == nil {
		return
	}
	c.text.R.Reset(nil)
	textReaders.Put(c.text.R)
	c.text.W.Reset(nil)
	textWriters.Put(c.text.W)
	c.text = nil
}

// Commands are dispatched to the appropriate handler functions.
func (c *Conn) handle(cmd string, arg string) {
	// If panic happens during command handling - send 421 response
	// and close connection.
	defer func() {
		if err := recover(); err != nil {
			c.writeResponse(421, EnhancedCode{4, 0, 0}, "Internal server error")
			c.end()

			stack := debug.Stack()
			c.server.ErrorLog.Printf("panic serving %v: %v\n%s", c.conn.RemoteAddr(), err, stack)
		}
	}()

	if cmd == "" {
		c.protocolError(500, EnhancedCode{5, 5, 2}, "Error: bad syntax")
		return
	}

	cmd = strings.ToUpper(cmd)
	junk := isJunkCommand(cmd)
	if junk && c.tooMuchJunk() {
		return
	}
	c.refused, c.deferred = false, false
	defer func() {
		// A command refused moves no mail either (mxgrid patch): without
		// this, a MAIL nested in a transaction, or an address refused, now
		// and then held the connection for ever, each reply restarting
		// the command timeout. Counted once answered, as the reply says
		// whether it was refused; past the limit the 421 follows it, as
		// after too many errors. Pipelined or not, as Postfix counts its
		// smtpd_hard_error_limit: free in a group, a refusal cost the
		// client nothing, and one write of 20,000 bad RCPTs had the
		// backend refuse (and log) each, write after write. But for a
		// recipient deferred to another transaction, as Postfix spares
		// its recipient limit's overshoot: a sender pipelining 300
		// recipients past a limit of 100 was shown out with 421, its
		// accepted recipients' message too, on every retry. Up to
		// MaxFreeDeferrals a session, as Postfix's
		// smtpd_recipient_overshoot_limit: past it, a client pipelining
		// recipient after recipient it knows will be deferred is refused
		// like any other, instead of costing us a lookup each for ever.
		free := c.deferred && c.inGroup && c.freeDeferrals < MaxFreeDeferrals
		if free {
			c.freeDeferrals++
		}
		if !junk && c.refused && !free && !c.over.Load() {
			c.junk++
			c.overJunkLimit()
		}
	}()
	c.midGroup = cmd == "MAIL" || cmd == "RCPT" || cmd == "RSET"
	defer func() { c.midGroup = false }()
	switch cmd {
	case "SEND", "SOML", "SAML", "EXPN", "HELP", "TURN":
		// These commands are not implemented in any state
		c.writeResponse(502, EnhancedCode{5, 5, 1}, fmt.Sprintf("%v command not implemented", cmd))
	case "HELO", "EHLO", "LHLO":
		lmtp := cmd == "LHLO"
		enhanced := lmtp || cmd == "EHLO"
		if c.server.LMTP && !lmtp {
			c.writeResponse(500, EnhancedCode{5, 5, 1}, "This is a LMTP server, use LHLO")
			return
		}
		if !c.server.LMTP && lmtp {
			c.writeResponse(500, EnhancedCode{5, 5, 1}, "This is not a LMTP server")
			return
		}
		c.handleGreet(enhanced, arg)
	case "MAIL":
		c.handleMail(arg)
	case "RCPT":
		c.handleRcpt(arg)
	case "VRFY":
		if strings.TrimSpace(arg) == "" {
			// RFC 5321 §4.1.1.6: VRFY takes a string (mxgrid patch;
			// upstream answered 252 to nothing asked), as Postfix says.
			c.writeResponse(501, EnhancedCode{5, 5, 4}, "Syntax: VRFY address")
			return
		}
		c.writeResponse(252, EnhancedCode{2, 5, 0}, "Cannot VRFY user, but will accept message")
	case "NOOP":
		c.writeResponse(250, EnhancedCode{2, 0, 0}, "Ok")
	case "RSET": // Reset session
		if c.transactionAbandoned() {
			return
		}
		c.reset()
		c.writeResponse(250, EnhancedCode{2, 0, 0}, "Ok")
	case "BDAT":
		c.handleBdat(arg)
	case "DATA":
		c.handleData(arg)
	case "QUIT":
		c.writeResponse(221, EnhancedCode{2, 0, 0}, "Bye")
		c.quit = true
		c.end()
	case "AUTH":
		c.handleAuth(arg)
	case "STARTTLS":
		c.handleStartTLS(arg)
	default:
		// The client's four octets go back as printable ASCII (mxgrid
		// patch): upstream echoed them raw, a NUL, a bare CR or 8-bit
		// octets in our reply (RFC 5321 §4.2 keeps reply text printable).
		msg := fmt.Sprintf("Syntax errors, %v command unrecognized", replyText(cmd))
		c.protocolError(500, EnhancedCode{5, 5, 2}, msg)
	}
}

func (c *Conn) Server() *Server {
	return c.server
}

func (c *Conn) Session() Session {
	c.locker.Lock()
	defer c.locker.Unlock()
	return c.session
}

func (c *Conn) setSession(session Session) {
	c.locker.Lock()
	defer c.locker.Unlock()
	c.session = session
}

// Close ends the session and closes the connection at once; the
// connection's own goroutine ends a session with end instead, and closes
// the connection lingering once handleConn returns.
func (c *Conn) Close() error {
	c.end()
	return c.conn.Close()
}

// end says the connection is over and logs its session out, leaving the
// socket to handleConn (mxgrid patch).
func (c *Conn) end() {
	c.over.Store(true)
	c.locker.Lock()
	defer c.locker.Unlock()

	c.stopBdat()

	if c.session != nil {
		c.session.Logout()
		c.session = nil
	}
}

// A lingering close reads and discards what the client still sends, for
// at most lingerTime and lingerBytes, once our side is shut down.
const (
	lingerTime  = 2 * time.Second
	lingerBytes = 64 << 10
)

// closeLingering sends what replies wait in the buffer, shuts down our
// side of the connection, and discards the client's input until it closes
// its side or the linger bounds are spent, before it closes the socket
// (mxgrid patch). Closing a socket with input unread sends a TCP reset,
// and the client's kernel then drops what it had not handed to the client
// yet: a client that pipelined thousands of commands, or a message behind
// DATA, lost the 421 or 554 that ended its session and saw a reset
// instead, as after a crash. Apache and nginx close so ("lingering
// close"); bounded, so a client cannot hold the goroutine. Under TLS the
// close_notify goes first and the socket below is drained.
func (c *Conn) closeLingering() {
	c.text.W.Flush()
	// A client that said QUIT and sent nothing behind it (it must not:
	// QUIT ends a pipelined group) has nothing a reset could take: the
	// close goes at once, sparing every ordinary session a shutdown and a
	// wait for the client's own close.
	if c.quit && c.text.R.Buffered() == 0 && c.peek.pending(c.conn, c.pending[:]) == 0 {
		c.conn.Close()
		return
	}
	if tc, ok := c.conn.(*tls.Conn); ok {
		tc.CloseWrite()
	}
	sock := c.conn
	for {
		u, ok := sock.(interface{ NetConn() net.Conn })
		if !ok {
			break
		}
		sock = u.NetConn()
	}
	if cw, ok := sock.(interface{ CloseWrite() error }); ok && cw.CloseWrite() == nil {
		sock.SetReadDeadline(time.Now().Add(lingerTime))
		io.CopyN(io.Discard, sock, lingerBytes)
	}
	c.conn.Close()
}

// stopBdat ends a BDAT transfer in progress and returns once the
// backend's Data has (mxgrid patch). Upstream closed the pipe and went on
// to the session's Reset or Logout while Data, in its own goroutine, was
// still running: Data and Reset then used the session at once, and a
// pipelined next transaction could begin before the old Data was done.
// Data sees ErrDataReset at its next read, so the wait is short. The
// goroutine never takes c.locker, which the callers hold.
func (c *Conn) stopBdat() {
	if c.bdatPipe == nil {
		return
	}
	c.bdatPipe.CloseWithError(ErrDataReset)
	c.bdatPipe = nil
	<-c.bdatDone
}

// TLSConnectionState returns the connection's TLS connection state.
// Zero values are returned if the connection doesn't use TLS.
func (c *Conn) TLSConnectionState() (state tls.ConnectionState, ok bool) {
	tc, ok := c.conn.(*tls.Conn)
	if !ok {
		return
	}
	return tc.ConnectionState(), true
}

func (c *Conn) Hostname() string {
	return c.helo
}

func (c *Conn) Conn() net.Conn {
	return c.conn
}

func (c *Conn) authAllowed() bool {
	_, isTLS := c.TLSConnectionState()
	return isTLS || c.server.AllowInsecureAuth
}

func isJunkCommand(cmd string) bool {
	switch cmd {
	case "NOOP", "RSET", "VRFY", "HELO", "EHLO", "LHLO", "SEND", "SOML", "SAML", "EXPN", "HELP", "TURN":
		return true
	}
	return false
}

// tooMuchJunk counts a command that moves no mail and, past the limit,
// says goodbye instead of running it. A command pipelined behind another
// (RFC 2920) is not counted: what the limit bounds is the time a client
// holds its connection, one round trip per command it had to wait for,
// and a client may pipeline thousands of NOOPs in one write.
func (c *Conn) tooMuchJunk() bool {
	if c.inGroup {
		return false
	}
	c.junk++
	return c.overJunkLimit()
}

// MaxFreeDeferrals is how many recipients deferred to another transaction
// (452 4.5.3) a session may have pipelined before each further one counts
// as junk: Postfix's smtpd_recipient_overshoot_limit, 1000 (mxgrid
// patch).
const MaxFreeDeferrals = 1000

// transactionAbandoned counts, when a transaction ends without a message
// (RSET, or EHLO or HELO starting over, a BDAT transfer before its LAST
// included), the round trip its MAIL cost, if the client waited for it,
// and says goodbye past the limit. MAIL moves no mail by itself: without
// this a client that wrote "MAIL FROM, RSET" in one go every so often
// held its connection for ever, the MAIL uncounted as a command that is
// not junk and the RSET as one pipelined (mxgrid patch).
func (c *Conn) transactionAbandoned() bool {
	waited := c.fromReceived && c.mailWaited
	c.mailWaited = false
	if !waited {
		return false
	}
	c.junk++
	return c.overJunkLimit()
}

// overJunkLimit says goodbye once the junk count is past the limit.
func (c *Conn) overJunkLimit() bool {
	limit, reason := c.server.MaxJunkCommands, ErrTooMuchJunk
	if s := c.server.StressJunkCommands; s > 0 && (limit <= 0 || s < limit) && c.stressed() {
		if limit <= 0 || c.junk <= limit {
			reason = errTooMuchJunkStressed
		}
		limit = s
	}
	if limit <= 0 || c.junk <= limit {
		return false
	}
	c.closing(reason)
	c.writeResponse(421, EnhancedCode{4, 7, 0}, "Too many commands without a message, closing connection")
	c.end()
	return true
}

// stressed says whether c runs under the stress limits now.
func (c *Conn) stressed() bool {
	return c.server.Stressed != nil && c.server.Stressed(c)
}

// closing tells the session, if it listens, why the server closes.
func (c *Conn) closing(reason error) {
	if s, ok := c.Session().(ClosingSession); ok {
		s.Closing(reason)
	}
}

// answerTransaction sends a DATA or BDAT LAST reply; an accepted message
// starts the junk count over, as Postfix does.
func (c *Conn) answerTransaction(code int, enhCode EnhancedCode, msg string) {
	if code/100 == 2 {
		c.junk = 0
	}
	c.writeResponse(code, enhCode, msg)
	// The message was sent whole, refused or not: a transfer costs the
	// client the message, and a refused one does not start the count
	// over either.
	c.refused = false
}

// lineWaiting reports whether a whole command line is already buffered,
// so that reading it costs the client no round trip. A line only begun is
// not: its end is a round trip of its own.
func (c *Conn) lineWaiting() bool {
	buf, _ := c.text.R.Peek(c.text.R.Buffered())
	return bytes.IndexByte(buf, '\n') >= 0
}

// improperPipelining ends the session, when the server forbids it, of a
// client that sent more behind cmd than RFC 2920 allows (see
// Server.ForbidUnauthPipelining), and reports whether it did.
func (c *Conn) improperPipelining(cmd string) bool {
	if !c.server.ForbidUnauthPipelining {
		return false
	}
	cmd = strings.ToUpper(cmd)
	// A BDAT command's chunk follows it by definition (RFC 3030).
	if cmd == "BDAT" || (c.pipeliningNegotiated() && !mustEndGroup(cmd)) {
		return false
	}
	buffered := c.text.R.Buffered()
	if buffered > len(c.pending) {
		buffered = len(c.pending)
	}
	unexpected, _ := c.text.R.Peek(buffered)
	// Input behind the command may still be in the kernel: it came in a
	// later segment than the command, or after our read of it. Postfix
	// asks the socket too. After QUIT nothing more runs, so what follows
	// it is not worth the system call.
	if len(unexpected) == 0 && cmd != "QUIT" {
		unexpected = c.pending[:c.peek.pending(c.conn, c.pending[:])]
	}
	if len(unexpected) == 0 {
		return false
	}
	if f := c.server.ImproperPipelining; f != nil {
		f(c, cmd, unexpected)
	}
	c.writeResponse(554, EnhancedCode{5, 5, 0}, "Error: SMTP protocol synchronization")
	c.end()
	return true
}

// valueRefused answers 555 to a keyword that takes no value given one
// (SMTPUTF8, RFC 6531 §3.4; REQUIRETLS, RFC 8689 §4.2), as Postfix
// refuses "SMTPUTF8=yes", and reports whether it did (mxgrid patch).
func (c *Conn) valueRefused(key, value string) bool {
	if value == "" {
		return false
	}
	c.writeResponse(555, EnhancedCode{5, 5, 4}, key+" takes no value")
	return true
}

// ESMTP reports whether the client greeted with EHLO (or LHLO) rather
// than HELO, for the protocol a Received field names (RFC 3848; mxgrid
// patch).
func (c *Conn) ESMTP() bool { return c.pipeliningNegotiated() }

// pipeliningNegotiated: the client said EHLO (or LHLO), whose reply
// offers PIPELINING; HELO negotiates no extension.
func (c *Conn) pipeliningNegotiated() bool {
	return c.helo != "" && !c.plainReplies
}

// mustEndGroup names the commands a client must wait for the reply to
// before it sends more, pipelining or not: RFC 2920 §3.1's EHLO, DATA,
// VRFY, EXPN, TURN, QUIT and NOOP, HELO and LHLO as EHLO, STARTTLS (RFC
// 3207 §4.2) and AUTH (RFC 4954 §4), and the other commands that change
// the session's state or are unknown here, as Postfix treats them.
func mustEndGroup(cmd string) bool {
	switch cmd {
	case "MAIL", "RCPT", "RSET":
		return false
	}
	return true
}

// protocolError writes errors responses and closes the connection once too many
// have occurred.
func (c *Conn) protocolError(code int, ec EnhancedCode, msg string) {
	c.writeResponse(code, ec, msg)

	c.errCount++
	if over := c.errCount > errThreshold; over || c.stressed() {
		// 421, the reply that announces a close (RFC 5321 §3.8), as
		// Postfix sends it (mxgrid patch; upstream said 500, a permanent
		// refusal of the command, and then closed).
		if over {
			c.closing(ErrTooManyErrors)
		} else {
			c.closing(errTooManyErrorsStressed)
		}
		c.writeResponse(421, EnhancedCode{4, 7, 0}, "Too many errors, closing connection")
		c.end()
	}
}

// GREET state -> waiting for HELO
func (c *Conn) handleGreet(enhanced bool, arg string) {
	domain, err := parseHelloArgument(arg)
	if err != nil {
		verb := "HELO"
		if enhanced {
			verb = "EHLO"
		}
		c.writeResponse(501, EnhancedCode{5, 5, 2}, "Domain/address argument required for "+verb)
		return
	}
	if c.session != nil && c.transactionAbandoned() {
		return
	}
	// c.helo is populated before NewSession so
	// NewSession can access it via Conn.Hostname.
	c.helo = domain

	// RFC 5321: "An EHLO command MAY be issued by a client later in the session"
	if c.session != nil {
		// RFC 5321: "... the SMTP server MUST clear all buffers
		// and reset the state exactly as if a RSET command has been issued."
		c.reset()
	} else {
		sess, err := c.server.Backend.NewSession(c)
		if err != nil {
			c.helo = ""
			c.writeError(451, EnhancedCode{4, 0, 0}, err)
			return
		}

		c.setSession(sess)
	}
	c.plainReplies = !enhanced

	// RFC 5321 §4.1.1.1: the reply names the server first, where clients
	// look for it (Postfix's loop check); upstream put "Hello" there. HELO
	// negotiates no enhanced status codes, so its reply has none.
	hello := c.server.Domain + " Hello " + replyText(domain)
	if !enhanced {
		c.writeResponse(250, NoEnhancedCode, hello)
		return
	}

	caps := []string{
		"PIPELINING",
		"8BITMIME",
		"ENHANCEDSTATUSCODES",
		"CHUNKING",
	}
	if _, isTLS := c.TLSConnectionState(); c.server.TLSConfig != nil && !isTLS {
		caps = append(caps, "STARTTLS")
	}
	if c.authAllowed() {
		mechs := c.authMechanisms()

		authCap := "AUTH"
		for _, name := range mechs {
			authCap += " " + name
		}

		if len(mechs) > 0 {
			caps = append(caps, authCap)
		}
	}
	if c.server.EnableSMTPUTF8 {
		caps = append(caps, "SMTPUTF8")
	}
	if _, isTLS := c.TLSConnectionState(); isTLS && c.server.EnableREQUIRETLS {
		caps = append(caps, "REQUIRETLS")
	}
	if c.server.EnableBINARYMIME {
		caps = append(caps, "BINARYMIME")
	}
	if c.server.EnableDSN {
		caps = append(caps, "DSN")
	}
	if c.server.MaxMessageBytes > 0 {
		caps = append(caps, fmt.Sprintf("SIZE %v", c.server.MaxMessageBytes))
	} else {
		caps = append(caps, "SIZE")
	}
	if c.server.MaxRecipients > 0 {
		caps = append(caps, fmt.Sprintf("LIMITS RCPTMAX=%v", c.server.MaxRecipients))
	}
	if c.server.EnableRRVS {
		caps = append(caps, "RRVS")
	}
	if c.server.EnableDELIVERBY {
		if c.server.MinimumDeliverByTime == 0 {
			caps = append(caps, "DELIVERBY")
		} else {
			caps = append(caps, fmt.Sprintf("DELIVERBY %d", int(c.server.MinimumDeliverByTime.Seconds())))
		}
	}
	if c.server.EnableMTPRIORITY {
		if c.server.MtPriorityProfile == PriorityUnspecified {
			caps = append(caps, "MT-PRIORITY")
		} else {
			caps = append(caps, fmt.Sprintf("MT-PRIORITY %s", c.server.MtPriorityProfile))
		}
	}

	args := []string{hello}
	args = append(args, caps...)
	c.writeResponse(250, NoEnhancedCode, args...)
}

// READY state -> waiting for MAIL
func (c *Conn) handleMail(arg string) {
	if c.helo == "" {
		c.writeResponse(503, EnhancedCode{5, 5, 1}, "Please introduce yourself first.")
		return
	}
	if c.bdatPipe != nil {
		c.writeResponse(503, EnhancedCode{5, 5, 1}, "MAIL not allowed during message transfer")
		return
	}
	if c.fromReceived {
		// RFC 5321 §4.1.4: a transaction is open; DATA, RSET or EHLO ends
		// it. Upstream took the new sender but kept the old recipients, so
		// DATA went ahead for a session that had started over.
		c.writeResponse(503, EnhancedCode{5, 5, 1}, "Nested MAIL command")
		return
	}

	arg, ok := cutPrefixFold(arg, "FROM:")
	if !ok {
		c.writeResponse(501, EnhancedCode{5, 5, 2}, "Was expecting MAIL arg syntax of FROM:<address>")
		return
	}

	p := parser{s: strings.TrimSpace(arg)}
	from, err := p.parseReversePath()
	if err != nil {
		// The command is right and its address is not: RFC 3463's
		// address-syntax code, as Postfix answers it (mxgrid patch).
		c.writeResponse(501, EnhancedCode{5, 1, 7}, "bad sender address syntax")
		return
	}
	args, err := parseArgs(p.s)
	if err != nil {
		c.writeResponse(501, EnhancedCode{5, 5, 4}, "Unable to parse MAIL ESMTP parameters")
		return
	}

	opts := &MailOptions{}

	c.binarymime = false
	// This is where the Conn may put BODY=8BITMIME, but we already
	// read the DATA as bytes, so it does not effect our processing.
	for key, value := range args {
		switch key {
		case "SIZE":
			size, ok := parseSize(value)
			if !ok {
				c.writeResponse(501, EnhancedCode{5, 5, 4}, "Unable to parse SIZE as an integer")
				return
			}

			if c.server.MaxMessageBytes > 0 && size > c.server.MaxMessageBytes {
				c.writeResponse(552, EnhancedCode{5, 3, 4}, "Max message size exceeded")
				return
			}

			opts.Size = size
		case "SMTPUTF8":
			if !c.server.EnableSMTPUTF8 {
				c.writeResponse(555, EnhancedCode{5, 5, 4}, "SMTPUTF8 is not supported")
				return
			}
			if c.valueRefused(key, value) {
				return
			}
			opts.UTF8 = true
		case "REQUIRETLS":
			if !c.server.EnableREQUIRETLS {
				c.writeResponse(555, EnhancedCode{5, 5, 4}, "REQUIRETLS is not supported")
				return
			}
			if c.valueRefused(key, value) {
				return
			}
			opts.RequireTLS = true
		case "BODY":
			value = strings.ToUpper(value)
			switch BodyType(value) {
			case BodyBinaryMIME:
				if !c.server.EnableBINARYMIME {
					c.writeResponse(555, EnhancedCode{5, 5, 4}, "BINARYMIME is not supported")
					return
				}
				c.binarymime = true
			case Body7Bit, Body8BitMIME:
				// This space is intentionally left blank
			default:
				c.writeResponse(501, EnhancedCode{5, 5, 4}, "Unknown BODY value")
				return
			}
			opts.Body = BodyType(value)
		case "RET":
			if !c.server.EnableDSN {
				c.writeResponse(555, EnhancedCode{5, 5, 4}, "RET is not supported")
				return
			}
			value = strings.ToUpper(value)
			switch DSNReturn(value) {
			case DSNReturnFull, DSNReturnHeaders:
				// This space is intentionally left blank
			default:
				c.writeResponse(501, EnhancedCode{5, 5, 4}, "Unknown RET value")
				return
			}
			opts.Return = DSNReturn(value)
		case "ENVID":
			if !c.server.EnableDSN {
				c.writeResponse(555, EnhancedCode{5, 5, 4}, "ENVID is not supported")
				return
			}
			value, err := decodeXtext(value)
			if err != nil || value == "" || !isPrintableASCII(value) {
				c.writeResponse(501, EnhancedCode{5, 5, 4}, "Malformed ENVID parameter value")
				return
			}
			opts.EnvelopeID = value
		case "AUTH":
			if !c.authAllowed() || len(c.authMechanisms()) == 0 {
				// EHLO offered no AUTH (RFC 4954 §5 defines the
				// parameter for servers that do).
				c.writeResponse(555, EnhancedCode{5, 5, 4}, "AUTH is not supported")
				return
			}
			value, err := decodeXtext(value)
			if err != nil || value == "" {
				c.writeResponse(500, EnhancedCode{5, 5, 4}, "Malformed AUTH parameter value")
				return
			}
			if value == "<>" {
				value = ""
			} else {
				p := parser{s: value}
				value, err = p.parseMailbox()
				if err != nil || p.s != "" {
					c.writeResponse(500, EnhancedCode{5, 5, 4}, "Malformed AUTH parameter mailbox")
					return
				}
			}
			opts.Auth = &value
		default:
			c.writeResponse(555, EnhancedCode{5, 5, 4}, "Unknown MAIL FROM argument")
			return
		}
	}

	if err := c.Session().Mail(from, opts); err != nil {
		c.writeError(451, EnhancedCode{4, 0, 0}, err)
		return
	}

	// As Postfix answers: RFC 3463's address status codes (X.1.0 for the
	// sender, X.1.5 for a valid recipient), and no client text echoed.
	c.writeResponse(250, EnhancedCode{2, 1, 0}, "Ok")
	c.fromReceived = true
	c.mailWaited = !c.inGroup
}

// This regexp matches 'hexchar' token defined in
// https://tools.ietf.org/html/rfc4954#section-8 however it is intentionally
// relaxed by requiring only '+' to be present.  It allows us to detect
// malformed values such as +A or +HH and report them appropriately.
var hexcharRe = regexp.MustCompile(`\+[0-9A-F]?[0-9A-F]?`)

func decodeXtext(val string) (string, error) {
	if !strings.Contains(val, "+") {
		return val, nil
	}

	var replaceErr error
	decoded := hexcharRe.ReplaceAllStringFunc(val, func(match string) string {
		if len(match) != 3 {
			replaceErr = errors.New("incomplete hexchar")
			return ""
		}
		char, err := strconv.ParseInt(match, 16, 8)
		if err != nil {
			replaceErr = err
			return ""
		}

		return string(rune(char))
	})
	if replaceErr != nil {
		return "", replaceErr
	}

	return decoded, nil
}

// This regexp matches 'EmbeddedUnicodeChar' token defined in
// https://datatracker.ietf.org/doc/html/rfc6533.html#section-3
// however it is intentionally relaxed by requiring only '\x{HEX}' to be
// present.  It also matches disallowed characters in QCHAR and QUCHAR defined
// in above.
// So it allows us to detect malformed values and report them appropriately.
var eUOrDCharRe = regexp.MustCompile(`\\x[{][0-9A-F]+[}]|[[:cntrl:] \\+=]`)

// Decodes the utf-8-addr-xtext or the utf-8-addr-unitext form.
func decodeUTF8AddrXtext(val string) (string, error) {
	var replaceErr error
	decoded := eUOrDCharRe.ReplaceAllStringFunc(val, func(match string) string {
		if len(match) == 1 {
			replaceErr = errors.New("disallowed character:" + match)
			return ""
		}

		hexpoint := match[3 : len(match)-1]
		char, err := strconv.ParseUint(hexpoint, 16, 21)
		if err != nil {
			replaceErr = err
			return ""
		}
		switch len(hexpoint) {
		case 2:
			switch {
			// all xtext-specials
			case 0x01 <= char && char <= 0x09 ||
				0x11 <= char && char <= 0x19 ||
				char == 0x10 || char == 0x20 ||
				char == 0x2B || char == 0x3D || char == 0x7F:
			// 2-digit forms
			case char == 0x5C || 0x80 <= char && char <= 0xFF:
				// This space is intentionally left blank
			default:
				replaceErr = errors.New("illegal hexpoint:" + hexpoint)
				return ""
			}
		// 3-digit forms
		case 3:
			switch {
			case 0x100 <= char && char <= 0xFFF:
				// This space is intentionally left blank
			default:
				replaceErr = errors.New("illegal hexpoint:" + hexpoint)
				return ""
			}
		// 4-digit forms excluding surrogate
		case 4:
			switch {
			case 0x1000 <= char && char <= 0xD7FF:
			case 0xE000 <= char && char <= 0xFFFF:
				// This space is intentionally left blank
			default:
				replaceErr = errors.New("illegal hexpoint:" + hexpoint)
				return ""
			}
		// 5-digit forms
		case 5:
			switch {
			case 0x1_0000 <= char && char <= 0xF_FFFF:
				// This space is intentionally left blank
			default:
				replaceErr = errors.New("illegal hexpoint:" + hexpoint)
				return ""
			}
		// 6-digit forms
		case 6:
			switch {
			case 0x10_0000 <= char && char <= 0x10_FFFF:
				// This space is intentionally left blank
			default:
				replaceErr = errors.New("illegal hexpoint:" + hexpoint)
				return ""
			}
		// the other invalid forms
		default:
			replaceErr = errors.New("illegal hexpoint:" + hexpoint)
			return ""
		}

		return string(rune(char))
	})
	if replaceErr != nil {
		return "", replaceErr
	}

	return decoded, nil
}

func decodeTypedAddress(val string) (DSNAddressType, string, error) {
	tv := strings.SplitN(val, ";", 2)
	if len(tv) != 2 || tv[0] == "" || tv[1] == "" {
		return "", "", errors.New("bad address")
	}
	aType, aAddr := strings.ToUpper(tv[0]), tv[1]

	var err error
	switch DSNAddressType(aType) {
	case DSNAddressTypeRFC822:
		aAddr, err = decodeXtext(aAddr)
		if err == nil && !isPrintableASCII(aAddr) {
			err = errors.New("illegal address:" + aAddr)
		}
	case DSNAddressTypeUTF8:
		aAddr, err = decodeUTF8AddrXtext(aAddr)
	default:
		err = errors.New("unknown address type:" + aType)
	}
	if err != nil {
		return "", "", err
	}

	return DSNAddressType(aType), aAddr, nil
}

func encodeXtext(raw string) string {
	var out strings.Builder
	out.Grow(len(raw))

	for _, ch := range raw {
		switch {
		case ch >= '!' && ch <= '~' && ch != '+' && ch != '=':
			// printable non-space US-ASCII except '+' and '='
			out.WriteRune(ch)
		default:
			out.WriteRune('+')
			out.WriteString(strings.ToUpper(strconv.FormatInt(int64(ch), 16)))
		}
	}
	return out.String()
}

// Encodes raw string to the utf-8-addr-xtext form in RFC 6533.
func encodeUTF8AddrXtext(raw string) string {
	var out strings.Builder
	out.Grow(len(raw))

	for _, ch := range raw {
		switch {
		case ch >= '!' && ch <= '~' && ch != '+' && ch != '=':
			// printable non-space US-ASCII except '+' and '='
			out.WriteRune(ch)
		default:
			out.WriteRune('\\')
			out.WriteRune('x')
			out.WriteRune('{')
			out.WriteString(strings.ToUpper(strconv.FormatInt(int64(ch), 16)))
			out.WriteRune('}')
		}
	}
	return out.String()
}

// Encodes raw string to the utf-8-addr-unitext form in RFC 6533.
func encodeUTF8AddrUnitext(raw string) string {
	var out strings.Builder
	out.Grow(len(raw))

	for _, ch := range raw {
		switch {
		case ch >= '!' && ch <= '~' && ch != '+' && ch != '=':
			// printable non-space US-ASCII except '+' and '='
			out.WriteRune(ch)
		case ch <= '\x7F':
			// other ASCII: CTLs, space and specials
			out.WriteRune('\\')
			out.WriteRune('x')
			out.WriteRune('{')
			out.WriteString(strings.ToUpper(strconv.FormatInt(int64(ch), 16)))
			out.WriteRune('}')
		default:
			// UTF-8 non-ASCII
			out.WriteRune(ch)
		}
	}
	return out.String()
}

func isPrintableASCII(val string) bool {
	for _, ch := range val {
		if ch < ' ' || '~' < ch {
			return false
		}
	}
	return true
}

// MAIL state -> waiting for RCPTs followed by DATA
func (c *Conn) handleRcpt(arg string) {
	if !c.fromReceived {
		c.writeResponse(503, EnhancedCode{5, 5, 1}, "Missing MAIL FROM command.")
		return
	}
	if c.bdatPipe != nil {
		c.writeResponse(503, EnhancedCode{5, 5, 1}, "RCPT not allowed during message transfer")
		return
	}

	arg, ok := cutPrefixFold(arg, "TO:")
	if !ok {
		c.writeResponse(501, EnhancedCode{5, 5, 2}, "Was expecting RCPT arg syntax of TO:<address>")
		return
	}

	p := parser{s: strings.TrimSpace(arg)}
	recipient, err := p.parseForwardPath()
	if err != nil {
		c.writeResponse(501, EnhancedCode{5, 1, 3}, "bad recipient address syntax")
		return
	}

	if c.server.MaxRecipients > 0 && len(c.recipients) >= c.server.MaxRecipients {
		c.writeResponse(452, EnhancedCode{4, 5, 3}, fmt.Sprintf("Maximum limit of %v recipients reached", c.server.MaxRecipients))
		return
	}

	args, err := parseArgs(p.s)
	if err != nil {
		c.writeResponse(501, EnhancedCode{5, 5, 4}, "Unable to parse RCPT ESMTP parameters")
		return
	}

	opts := &RcptOptions{}

	for key, value := range args {
		switch key {
		case "NOTIFY":
			if !c.server.EnableDSN {
				c.writeResponse(555, EnhancedCode{5, 5, 4}, "NOTIFY is not supported")
				return
			}
			notify := []DSNNotify{}
			for _, val := range strings.Split(value, ",") {
				notify = append(notify, DSNNotify(strings.ToUpper(val)))
			}
			if err := checkNotifySet(notify); err != nil {
				c.writeResponse(501, EnhancedCode{5, 5, 4}, "Malformed NOTIFY parameter value")
				return
			}
			opts.Notify = notify
		case "ORCPT":
			if !c.server.EnableDSN {
				c.writeResponse(555, EnhancedCode{5, 5, 4}, "ORCPT is not supported")
				return
			}
			aType, aAddr, err := decodeTypedAddress(value)
			if err != nil || aAddr == "" {
				c.writeResponse(501, EnhancedCode{5, 5, 4}, "Malformed ORCPT parameter value")
				return
			}
			opts.OriginalRecipientType = aType
			opts.OriginalRecipient = aAddr
		case "RRVS":
			if !c.server.EnableRRVS {
				c.writeResponse(555, EnhancedCode{5, 5, 4}, "RRVS is not supported")
				return
			}
			value, _, _ = strings.Cut(value, ";") // discard the no-support action
			rrvsTime, err := time.Parse(time.RFC3339, value)
			if err != nil {
				c.writeResponse(501, EnhancedCode{5, 5, 4}, "Malformed RRVS parameter value")
				return
			}
			opts.RequireRecipientValidSince = rrvsTime
		case "BY":
			if !c.server.EnableDELIVERBY {
				c.writeResponse(555, EnhancedCode{5, 5, 4}, "DELIVERBY is not supported")
				return
			}
			deliverBy := parseDeliverByArgument(value)
			if deliverBy == nil {
				c.writeResponse(501, EnhancedCode{5, 5, 4}, "Malformed BY parameter value")
				return
			}
			if c.server.MinimumDeliverByTime != 0 &&
				deliverBy.Mode == DeliverByReturn &&
				deliverBy.Time < c.server.MinimumDeliverByTime {
				c.writeResponse(501, EnhancedCode{5, 5, 4}, "BY parameter is below server minimum")
				return
			}
			opts.DeliverBy = deliverBy
		case "MT-PRIORITY":
			if !c.server.EnableMTPRIORITY {
				c.writeResponse(555, EnhancedCode{5, 5, 4}, "MT-PRIORITY is not supported")
				return
			}
			mtPriority, err := strconv.Atoi(value)
			if err != nil {
				c.writeResponse(501, EnhancedCode{5, 5, 4}, "Malformed MT-PRIORITY parameter value")
				return
			}
			if mtPriority < -9 || mtPriority > 9 {
				c.writeResponse(501, EnhancedCode{5, 5, 4}, "MT-PRIORITY is outside valid range")
				return
			}
			opts.MTPriority = &mtPriority
		default:
			c.writeResponse(555, EnhancedCode{5, 5, 4}, "Unknown RCPT TO argument")
			return
		}
	}

	if err := c.Session().Rcpt(recipient, opts); err != nil {
		c.writeError(451, EnhancedCode{4, 0, 0}, err)
		return
	}
	c.recipients = append(c.recipients, recipient)
	c.writeResponse(250, EnhancedCode{2, 1, 5}, "Ok")
}

func checkNotifySet(values []DSNNotify) error {
	if len(values) == 0 {
		return errors.New("Malformed NOTIFY parameter value")
	}

	seen := map[DSNNotify]struct{}{}
	for _, val := range values {
		switch val {
		case DSNNotifyNever, DSNNotifyDelayed, DSNNotifyFailure, DSNNotifySuccess:
			if _, ok := seen[val]; ok {
				return errors.New("Malformed NOTIFY parameter value")
			}
		default:
			return errors.New("Malformed NOTIFY parameter value")
		}
		seen[val] = struct{}{}
	}
	if _, ok := seen[DSNNotifyNever]; ok && len(seen) > 1 {
		return errors.New("Malformed NOTIFY parameter value")
	}

	return nil
}

func (c *Conn) handleAuth(arg string) {
	if c.helo == "" {
		c.writeResponse(503, EnhancedCode{5, 5, 1}, "Please introduce yourself first.")
		return
	}
	if c.didAuth {
		c.writeResponse(503, EnhancedCode{5, 5, 1}, "Already authenticated")
		return
	}
	if len(c.authMechanisms()) == 0 {
		// Not offered, with or without TLS (mxgrid patch; upstream said
		// "523 TLS is required" before TLS, as if STARTTLS would open
		// it). An error, as in Postfix: a client guessing passwords at an
		// MX is soon shown out.
		c.protocolError(ErrAuthUnsupported.Code, ErrAuthUnsupported.EnhancedCode, ErrAuthUnsupported.Message)
		return
	}

	parts := strings.Fields(arg)
	if len(parts) == 0 {
		c.writeResponse(502, EnhancedCode{5, 5, 4}, "Missing parameter")
		return
	}

	if !c.authAllowed() {
		c.writeResponse(523, EnhancedCode{5, 7, 10}, "TLS is required")
		return
	}

	mechanism := strings.ToUpper(parts[0])

	// Parse client initial response if there is one
	var ir []byte
	if len(parts) > 1 {
		var err error
		ir, err = decodeSASLResponse(parts[1])
		if err != nil {
			c.writeResponse(454, EnhancedCode{4, 7, 0}, "Invalid base64 data")
			return
		}
	}

	sasl, err := c.auth(mechanism)
	if err != nil {
		c.writeError(454, EnhancedCode{4, 7, 0}, err)
		return
	}

	response := ir
	for {
		challenge, done, err := sasl.Next(response)
		if err != nil {
			c.writeError(454, EnhancedCode{4, 7, 0}, err)
			return
		}

		if done {
			break
		}

		encoded := ""
		if len(challenge) > 0 {
			encoded = base64.StdEncoding.EncodeToString(challenge)
		}
		c.writeResponse(334, NoEnhancedCode, encoded)

		encoded, err = c.readLine()
		if err != nil {
			return // TODO: error handling
		}

		if encoded == "*" {
			// https://tools.ietf.org/html/rfc4954#page-4
			c.writeResponse(501, EnhancedCode{5, 0, 0}, "Negotiation cancelled")
			return
		}

		response, err = decodeSASLResponse(encoded)
		if err != nil {
			c.writeResponse(454, EnhancedCode{4, 7, 0}, "Invalid base64 data")
			return
		}
	}

	c.writeResponse(235, EnhancedCode{2, 0, 0}, "Authentication succeeded")
	c.didAuth = true
}

func decodeSASLResponse(s string) ([]byte, error) {
	if s == "=" {
		return []byte{}, nil
	}
	return base64.StdEncoding.DecodeString(s)
}

func (c *Conn) authMechanisms() []string {
	if authSession, ok := c.Session().(AuthSession); ok {
		return authSession.AuthMechanisms()
	}
	return nil
}

func (c *Conn) auth(mech string) (sasl.Server, error) {
	if authSession, ok := c.Session().(AuthSession); ok {
		return authSession.Auth(mech)
	}
	return nil, ErrAuthUnknownMechanism
}

func (c *Conn) handleStartTLS(arg string) {
	if arg != "" {
		// RFC 3207 §4: no parameters (mxgrid patch; upstream started TLS
		// with a client that meant something else).
		c.writeResponse(501, EnhancedCode{5, 5, 4}, "Syntax: STARTTLS takes no parameters")
		return
	}
	if _, isTLS := c.TLSConnectionState(); isTLS {
		c.writeResponse(503, EnhancedCode{5, 5, 1}, "Already running in TLS")
		return
	}

	if c.server.TLSConfig == nil {
		c.writeResponse(502, EnhancedCode{5, 5, 1}, "TLS not supported")
		return
	}

	if c.server.StartingTLS != nil {
		c.server.StartingTLS(c.conn)
	}
	c.writeResponse(220, EnhancedCode{2, 0, 0}, "Ready to start TLS")

	// Upgrade to TLS
	tlsConn := tls.Server(c.conn, c.server.TLSConfig)

	if err := tlsConn.Handshake(); err != nil {
		// Neither side knows where the stream stands: a clear-text reply
		// would follow a TLS alert, and clear-text commands would be
		// taken from a client that asked for TLS. Close, as Postfix does
		// (mxgrid patch; upstream answered 550 and read on).
		c.end()
		return
	}

	c.conn = tlsConn
	c.init()

	// Reset all state and close the previous Session.
	// This is different from just calling reset() since we want the Backend to
	// be able to see the information about TLS connection in the
	// ConnectionState object passed to it. reset comes first (mxgrid
	// patch) so that a BDAT transfer's Data has returned before its
	// session is logged out.
	c.reset()
	if session := c.Session(); session != nil {
		session.Logout()
		c.setSession(nil)
	}
	c.helo = ""
	c.didAuth = false
}

// DATA
func (c *Conn) handleData(arg string) {
	if arg != "" {
		c.writeResponse(501, EnhancedCode{5, 5, 4}, "DATA command should not have any arguments")
		return
	}
	if c.bdatPipe != nil {
		c.writeResponse(503, EnhancedCode{5, 5, 1}, "DATA not allowed during message transfer")
		return
	}
	if c.binarymime {
		c.writeResponse(502, EnhancedCode{5, 5, 1}, "DATA not allowed for BINARYMIME messages")
		return
	}

	if !c.fromReceived || len(c.recipients) == 0 {
		c.writeResponse(503, EnhancedCode{5, 5, 1}, "Missing RCPT TO command.")
		return
	}

	// We have recipients, go to accept data
	c.writeResponse(354, NoEnhancedCode, "Go ahead. End your data with <CR><LF>.<CR><LF>")

	defer c.reset()

	// A body's lines are not limited (mxgrid patch), as BDAT's never were
	// and as Postfix takes them: nothing here holds a line (the body is
	// bounded by MaxMessageBytes), and legitimate mail carries lines of
	// hundreds of KB (a data: image in HTML). Upstream closed the
	// connection at MaxLineLength, before the sender could read the
	// refusal, so its MTA retried for days what it could not deliver.
	c.lineLimitReader.LineLimit = 0
	defer func() {
		c.lineLimitReader.LineLimit = c.server.MaxLineLength
		c.lineLimitReader.curLineLength = 0
	}()

	if c.server.LMTP {
		c.handleDataLMTP()
		return
	}

	r := newDataReader(c)
	code, enhancedCode, msg := dataErrorToStatus(c.Session().Data(r))
	r.limited = false
	_, err := io.Copy(ioutil.Discard, r) // Make sure all the data has been consumed
	c.answerTransaction(code, enhancedCode, msg)
	if err != nil {
		// The end of the body was never read (a read timed out, the
		// client went away), so what follows is no command: close
		// (mxgrid patch; upstream read the rest of the body as commands).
		c.over.Store(true)
	}
}

func (c *Conn) handleBdat(arg string) {
	size, last, msg := parseBdat(arg)
	if msg != "" {
		// Where the chunk ends is unknown, so what follows is no command:
		// close (mxgrid patch; upstream read the chunk as commands).
		c.writeResponse(501, EnhancedCode{5, 5, 4}, msg)
		c.over.Store(true)
		return
	}

	if c.plainReplies {
		// HELO offered no CHUNKING, and RFC 3030 2 lets a client use
		// BDAT only after EHLO did (mxgrid patch; upstream took the
		// message). Its chunk follows all the same.
		c.writeResponse(503, EnhancedCode{5, 5, 1}, "BDAT needs EHLO: CHUNKING was not offered")
		c.skipChunk(size)
		return
	}

	if !c.fromReceived || len(c.recipients) == 0 {
		c.writeResponse(503, EnhancedCode{5, 5, 1}, "Missing RCPT TO command.")
		// The chunk follows the command even when the command is rejected.
		c.skipChunk(size)
		return
	}

	if c.bdatStatus == nil && c.server.LMTP {
		c.bdatStatus = c.createStatusCollector()
	}

	if c.bdatPipe == nil {
		var r *io.PipeReader
		r, c.bdatPipe = io.Pipe()

		c.dataResult = make(chan error, 1)
		done := make(chan struct{})
		c.bdatDone = done
		// Taken here: c.Session() locks c.locker, which stopBdat's
		// callers hold while they wait for this goroutine.
		session := c.Session()

		go func() {
			defer close(done)
			defer func() {
				if err := recover(); err != nil {
					c.handlePanic(err, c.bdatStatus)

					c.dataResult <- errPanic
					r.CloseWithError(errPanic)
				}
			}()

			var err error
			if !c.server.LMTP {
				err = session.Data(r)
			} else {
				lmtpSession, ok := session.(LMTPSession)
				if !ok {
					err = session.Data(r)
					for _, rcpt := range c.recipients {
						c.bdatStatus.SetStatus(rcpt, err)
					}
				} else {
					err = lmtpSession.LMTPData(r, c.bdatStatus)
				}
			}

			c.dataResult <- err
			r.CloseWithError(err)
		}()
	}

	if c.server.MaxMessageBytes != 0 && c.bytesReceived+int64(size) > c.server.MaxMessageBytes {
		c.writeResponse(552, EnhancedCode{5, 3, 4}, "Max message size exceeded")
		// The backend's Data hears why the transfer ends, as it does from
		// DATA's reader, even when this is the transfer's first chunk
		// (mxgrid patch): upstream told it only ErrDataReset, as if the
		// client had given up, or, for a first chunk, nothing at all.
		c.bdatPipe.CloseWithError(ErrDataTooLarge)

		// Discard chunk itself without passing it to backend.
		c.skipChunk(size)

		c.reset()
		return
	}

	c.lineLimitReader.LineLimit = 0
	defer func() {
		c.lineLimitReader.LineLimit = c.server.MaxLineLength
	}()

	chunk := &bdatChunk{r: c.text.R, n: int64(size)}
	// Through a lent buffer (mxgrid patch): io.Copy allocated 32 KiB per
	// chunk, so a client pipelining "BDAT 1" commands, ten octets each,
	// had the server allocate some 3,000 times what it sent. The pipe's
	// Write returns only once its reader is done with the bytes.
	buf := bdatBuffers.Get().(*[]byte)
	_, err := io.CopyBuffer(c.bdatPipe, chunk, *buf)
	bdatBuffers.Put(buf)
	if err != nil && chunk.err == nil {
		// Backend might return an error early using CloseWithError without consuming
		// the whole chunk.
		io.Copy(ioutil.Discard, chunk)
	}
	if chunk.err != nil {
		// The chunk could not be read (a timeout, a broken connection):
		// what follows is the rest of it, no command, so close, and the
		// backend's Data sees ErrDataReset (mxgrid patch; upstream
		// answered 554, a permanent refusal, and read the rest of the
		// chunk as commands).
		if ne, ok := chunk.err.(net.Error); ok && ne.Timeout() {
			c.writeResponse(421, EnhancedCode{4, 4, 2}, "Timeout reading the chunk, closing connection")
		} else {
			c.writeResponse(421, EnhancedCode{4, 4, 0}, "Error reading the chunk, closing connection")
		}
		return
	}
	if err != nil {
		c.writeResponse(dataErrorToStatus(err))

		if err == errPanic {
			c.end()
		}

		c.reset()
		return
	}

	c.bytesReceived += int64(size)

	if last {
		c.bdatPipe.Close()

		err := <-c.dataResult

		if c.server.LMTP {
			c.bdatStatus.fillRemaining(err)
			for i, rcpt := range c.recipients {
				code, enchCode, msg := dataErrorToStatus(<-c.bdatStatus.status[i])
				c.writeResponse(code, enchCode, "<"+rcpt+"> "+msg)
			}
		} else {
			c.answerTransaction(dataErrorToStatus(err))
		}

		if err == errPanic {
			c.end()
			return
		}

		c.reset()
	} else {
		c.writeResponse(250, EnhancedCode{2, 0, 0}, "Continue")
	}
}

// bdatBuffers lend handleBdat the buffer a chunk is copied through.
var bdatBuffers = sync.Pool{New: func() interface{} { b := make([]byte, 32<<10); return &b }}

// parseBdat parses BDAT's arguments; msg is set when they are malformed.
func parseBdat(arg string) (size uint64, last bool, msg string) {
	args := strings.Fields(arg)
	if len(args) == 0 {
		return 0, false, "Missing chunk size argument"
	}
	if len(args) > 2 {
		return 0, false, "Too many arguments"
	}
	if len(args) == 2 {
		if !strings.EqualFold(args[1], "LAST") {
			return 0, false, "Unknown BDAT argument"
		}
		last = true
	}
	// ParseUint instead of Atoi so we will not accept negative values.
	size, err := strconv.ParseUint(args[0], 10, 32)
	if err != nil {
		return 0, false, "Malformed size argument"
	}
	return size, last, ""
}

// skipChunk reads and drops the chunk of a refused BDAT command. If it
// cannot be read to its end, what follows is no command: the connection
// closes (mxgrid patch). A chunk need hold no line end, so the line limit
// is off meanwhile (upstream's discard could fail on it).
func (c *Conn) skipChunk(size uint64) {
	c.lineLimitReader.LineLimit = 0
	defer func() { c.lineLimitReader.LineLimit = c.server.MaxLineLength }()
	if _, err := io.Copy(ioutil.Discard, &bdatChunk{r: c.text.R, n: int64(size)}); err != nil {
		c.over.Store(true)
	}
}

// bdatChunk reads a BDAT chunk of n octets from r and keeps the error
// of reading it, so that a failed io.Copy tells the client's side from the
// backend's. The connection ending before the chunk does is such an error
// (io.ErrUnexpectedEOF): io.LimitReader took it for the chunk's end, and a
// BDAT LAST chunk cut short was delivered as the whole message.
type bdatChunk struct {
	r   io.Reader
	n   int64
	err error
}

func (r *bdatChunk) Read(b []byte) (int, error) {
	if r.err != nil {
		return 0, r.err
	}
	if r.n <= 0 {
		return 0, io.EOF
	}
	if int64(len(b)) > r.n {
		b = b[:r.n]
	}
	n, err := r.r.Read(b)
	r.n -= int64(n)
	switch {
	case err == io.EOF && r.n > 0:
		err = io.ErrUnexpectedEOF
	case err == io.EOF:
		err = nil // the chunk's last octets; the next Read says EOF
	}
	r.err = err
	return n, err
}

// ErrDataReset is returned by Reader pased to Data function if client does not
// send another BDAT command and instead closes connection or issues RSET command.
var ErrDataReset = errors.New("smtp: message transmission aborted")

var errPanic = &SMTPError{
	Code:         421,
	EnhancedCode: EnhancedCode{4, 0, 0},
	Message:      "Internal server error",
}

func (c *Conn) handlePanic(err interface{}, status *statusCollector) {
	if status != nil {
		status.fillRemaining(errPanic)
	}

	stack := debug.Stack()
	c.server.ErrorLog.Printf("panic serving %v: %v\n%s", c.conn.RemoteAddr(), err, stack)
}

func (c *Conn) createStatusCollector() *statusCollector {
	rcptCounts := make(map[string]int, len(c.recipients))

	status := &statusCollector{
		statusMap: make(map[string]chan error, len(c.recipients)),
		status:    make([]chan error, 0, len(c.recipients)),
	}
	for _, rcpt := range c.recipients {
		rcptCounts[rcpt]++
	}
	// Create channels with buffer sizes necessary to fit all
	// statuses for a single recipient to avoid deadlocks.
	for rcpt, count := range rcptCounts {
		status.statusMap[rcpt] = make(chan error, count)
	}
	for _, rcpt := range c.recipients {
		status.status = append(status.status, status.statusMap[rcpt])
	}

	return status
}

type statusCollector struct {
	// Contains map from recipient to list of channels that are used for that
	// recipient.
	statusMap map[string]chan error

	// Contains channels from statusMap, in the same
	// order as Conn.recipients.
	status []chan error
}

// fillRemaining sets status for all recipients SetStatus was not called for before.
func (s *statusCollector) fillRemaining(err error) {
	// Amount of times certain recipient was specified is indicated by the channel
	// buffer size, so once we fill it, we can be confident that we sent
	// at least as much statuses as needed. Extra statuses will be ignored anyway.
chLoop:
	for _, ch := range s.statusMap {
		for {
			select {
			case ch <- err:
			default:
				continue chLoop
			}
		}
	}
}

func (s *statusCollector) SetStatus(rcptTo string, err error) {
	ch := s.statusMap[rcptTo]
	if ch == nil {
		panic("SetStatus is called for recipient that was not specified before")
	}

	select {
	case ch <- err:
	default:
		// There enough buffer space to fit all statuses at once, if this is
		// not the case - backend is doing something wrong.
		panic("SetStatus is called more times than particular recipient was specified")
	}
}

func (c *Conn) handleDataLMTP() {
	r := newDataReader(c)
	status := c.createStatusCollector()

	done := make(chan bool, 1)

	lmtpSession, ok := c.Session().(LMTPSession)
	if !ok {
		// Fallback to using a single status for all recipients.
		err := c.Session().Data(r)
		r.limited = false
		io.Copy(ioutil.Discard, r) // Make sure all the data has been consumed
		for _, rcpt := range c.recipients {
			status.SetStatus(rcpt, err)
		}
		done <- true
	} else {
		go func() {
			defer func() {
				if err := recover(); err != nil {
					status.fillRemaining(&SMTPError{
						Code:         421,
						EnhancedCode: EnhancedCode{4, 0, 0},
						Message:      "Internal server error",
					})

					stack := debug.Stack()
					c.server.ErrorLog.Printf("panic serving %v: %v\n%s", c.conn.RemoteAddr(), err, stack)
					done <- false
				}
			}()

			status.fillRemaining(lmtpSession.LMTPData(r, status))
			r.limited = false
			io.Copy(ioutil.Discard, r) // Make sure all the data has been consumed
			done <- true
		}()
	}

	for i, rcpt := range c.recipients {
		code, enchCode, msg := dataErrorToStatus(<-status.status[i])
		c.writeResponse(code, enchCode, "<"+rcpt+"> "+msg)
	}

	// If done gets false, the panic occurred in LMTPData and the connection
	// should be closed.
	if !<-done {
		c.end()
	}
}

func dataErrorToStatus(err error) (code int, enchCode EnhancedCode, msg string) {
	if err != nil {
		if smtperr, ok := err.(*SMTPError); ok {
			return smtperr.Code, smtperr.EnhancedCode, smtperr.Message
		} else {
			return 554, EnhancedCode{5, 0, 0}, "Error: transaction failed: " + err.Error()
		}
	}

	return 250, EnhancedCode{2, 0, 0}, "OK: queued"
}

func (c *Conn) Reject() {
	c.writeResponse(421, EnhancedCode{4, 4, 5}, "Too busy. Try again later.")
	c.Close()
}

func (c *Conn) greet() {
	protocol := "ESMTP"
	if c.server.LMTP {
		protocol = "LMTP"
	}
	c.writeResponse(220, NoEnhancedCode, c.server.Domain+" "+protocol+" Service Ready")
}

func (c *Conn) writeResponse(code int, enhCode EnhancedCode, text ...string) {
	if code == 421 {
		c.over.Store(true) // RFC 5321 §3.8: the server closes after a 421
	}
	if code >= 400 {
		c.refused = true
		c.deferred = code == 452 && enhCode == EnhancedCode{4, 5, 3}
	}
	// TODO: error handling
	if c.server.WriteTimeout != 0 {
		c.conn.SetWriteDeadline(time.Now().Add(c.server.WriteTimeout))
	}

	// All responses must include an enhanced code, if it is missing - use
	// a generic code X.0.0.
	if enhCode == EnhancedCodeNotSet {
		cat := code / 100
		switch cat {
		case 2, 4, 5:
			enhCode = EnhancedCode{cat, 0, 0}
		default:
			enhCode = NoEnhancedCode
		}
	}
	if c.plainReplies {
		enhCode = NoEnhancedCode
	}

	writeReply(c.text.W, code, enhCode, text)
	// A reply to a command in the middle of a pipelined group waits for
	// the group's last while more of the group is already read (mxgrid
	// patch): a client that pipelines MAIL, RCPT and DATA gets the three
	// replies in one write, as Postfix's smtpd sends them, not three. A
	// 421 is sent at once: the connection closes after it. Whatever waits
	// is sent before the connection is read again (flushBeforeRead).
	if c.midGroup && code != 421 && c.text.R.Buffered() > 0 {
		return
	}
	c.text.W.Flush()
}

// flushBeforeRead sends the replies held back for a pipelined group before
// a read of the connection, the read that may wait for the client: RFC
// 2920 §3.1 (7), "MUST send all pending responses immediately whenever the
// local TCP input buffer is emptied". So a client that sends part of a
// group and waits still gets every reply owed to it.
type flushBeforeRead struct{ c *Conn }

func (r flushBeforeRead) Read(b []byte) (int, error) {
	if w := r.c.text.W; w.Buffered() > 0 {
		if err := w.Flush(); err != nil {
			return 0, err
		}
	}
	return r.c.lineLimitReader.Read(b)
}

// writeReply writes a reply's lines to w without flushing, so a multi-line
// reply (EHLO's, ten lines or more) leaves in one write, not one per line
// as with textproto's PrintfLine (mxgrid patch). The bytes are upstream's:
// each text line, and each "\n" inside one, is a line; only the last
// carries the enhanced code.
func writeReply(w *bufio.Writer, code int, enhCode EnhancedCode, text []string) {
	if len(text) == 0 {
		text = emptyReplyText // upstream's Join and Split make one empty line of none
	}
	// The lines are cut out one at a time and the numbers appended to the
	// buffer (AvailableBuffer), not Split and Fprintf: every command gets
	// a reply, and their slices and boxed numbers were what writing one
	// allocated.
	for i, t := range text {
		for more := true; more; {
			var line string
			line, t, more = strings.Cut(t, "\n")
			w.Write(strconv.AppendInt(w.AvailableBuffer(), int64(code), 10))
			if more || i < len(text)-1 {
				w.WriteByte('-')
			} else {
				w.WriteByte(' ')
				if enhCode != NoEnhancedCode {
					for k, n := range enhCode {
						w.Write(strconv.AppendInt(w.AvailableBuffer(), int64(n), 10))
						if k < len(enhCode)-1 {
							w.WriteByte('.')
						}
					}
					w.WriteByte(' ')
				}
			}
			w.WriteString(line)
			w.WriteString("\r\n")
		}
	}
}

var emptyReplyText = []string{""}

func (c *Conn) writeError(code int, enhCode EnhancedCode, err error) {
	if smtpErr, ok := err.(*SMTPError); ok {
		c.writeResponse(smtpErr.Code, smtpErr.EnhancedCode, smtpErr.Message)
	} else {
		c.writeResponse(code, enhCode, err.Error())
	}
}

// Reads a line of input
func (c *Conn) readLine() (string, error) {
	if c.server.ReadTimeout != 0 {
		if err := c.conn.SetReadDeadline(time.Now().Add(c.server.ReadTimeout)); err != nil {
			return "", err
		}
	}

	// Not textproto's ReadLine (mxgrid patch): through bufio.ReadLine it
	// returns what it has of a line, as a line and without the error,
	// when the read fails in the middle (a timeout). The start of a
	// command was then executed as one ("MAI" answered 500), the reply
	// reset the client's deadline, and a client trickling a command a
	// byte at a time was never timed out. The line ends as there:
	// LF, or CRLF.
	line, err := c.text.R.ReadString('\n')
	if err != nil {
		return "", err
	}
	line = strings.TrimSuffix(line, "\n")
	return strings.TrimSuffix(line, "\r"), nil
}

func (c *Conn) reset() {
	c.locker.Lock()
	defer c.locker.Unlock()

	c.stopBdat()
	c.bdatStatus = nil
	c.bytesReceived = 0

	if c.session != nil {
		c.session.Reset()
	}

	c.fromReceived = false
	c.recipients = nil
}

// parseSize reads an RFC 1870 size-value, 1*20DIGIT. One past int64 (the
// grammar allows 20 digits) reads as the largest int64, so that it is
// answered 552 like any size over the limit, not 501 (RFC 1870 §6.1).
func parseSize(v string) (int64, bool) {
	if v == "" || len(v) > 20 || strings.Trim(v, "0123456789") != "" {
		return 0, false
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return math.MaxInt64, true
	}
	return n, true
}

// replyText is client text fit to repeat in a reply: printable ASCII
// (RFC 5321 §4.2), other bytes as '?', and short enough that the reply
// line stays within 512 octets (§4.5.3.1.5).
func replyText(s string) string {
	const max = 255
	if len(s) > max {
		s = s[:max]
	}
	b := []byte(s)
	for i, c := range b {
		if c <= ' ' || c >= 0x7f {
			b[i] = '?'
		}
	}
	return string(b)
}
