// Package smtptest runs downstream mail servers (the customer's) in-process on
// loopback: a test sends over real SMTP and checks what the customer's
// server received. It needs no node, so leaf packages' tests (smtpd, relay,
// scanner) use it as well as the end-to-end tests.
package smtptest

import (
	"bytes"
	"cmp"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
	"github.com/mxgrid/mxgrid/netguard"
	"github.com/mxgrid/mxgrid/tenant"
)

// Loopback is where sinks listen; tenant routes may not go there by default.
var Loopback = netip.MustParsePrefix("127.0.0.0/8")

// Guard is a route guard that lets tenant routes reach loopback, for tests
// that build a relay without a node.
func Guard() *netguard.Guard { return netguard.New(nil, []netip.Prefix{Loopback}) }

// Domain is a static domain routed to addr with no TLS.
func Domain(name, addr string, recipients ...string) tenant.StaticDomain {
	return tenant.StaticDomain{Name: name, Route: addr, TLS: "none", Recipients: recipients}
}

// Received is one message as the downstream server got it.
type Received struct {
	From  string
	Rcpts []string
	Data  []byte
	// Size is the SIZE parameter the relay declared at MAIL (0: none).
	Size int64
	// UTF8 tells whether MAIL asked for SMTPUTF8.
	UTF8 bool
	// Conn numbers the connection it came over, from 1 in accept order
	// (across restarts), so a test can tell reused connections from new.
	Conn int
	// TLS tells whether that connection had started TLS.
	TLS bool
}

// Option configures a sink at start.
type Option func(*Sink)

// WithTLS offers STARTTLS with a fresh self-signed certificate.
func WithTLS() Option {
	return func(s *Sink) { s.tls = true }
}

// CloseIdleAfter makes the sink drop a client silent for d with "421 4.4.2
// Idle timeout", as customer servers do (Postfix's smtpd_timeout).
func CloseIdleAfter(d time.Duration) Option {
	return func(s *Sink) { s.idleTimeout = d }
}

// MaxMessageBytes makes the sink offer SIZE n and refuse a larger message,
// or a MAIL declaring one, with 552, as a customer's server with a size
// limit (64 MiB otherwise).
func MaxMessageBytes(n int64) Option {
	return func(s *Sink) { s.maxBytes = n }
}

// Sink is a downstream mail server (the customer's) that records every
// message it accepts. Its replies can be changed to inject failures.
type Sink struct {
	Addr string

	tls         bool
	idleTimeout time.Duration
	maxBytes    int64
	cert        *tls.Config

	mu        sync.Mutex
	received  []Received
	rcptErr   map[string]*smtp.SMTPError
	mailErr   *smtp.SMTPError
	dataErr   *smtp.SMTPError
	rsetReply string
	stall     time.Duration
	gate      *Gate
	stopped   chan struct{}
	conns     int
	open      int
	verbs     map[string]int
	// commandWrites counts the reads that brought commands.
	commandWrites int
	srv           *smtp.Server
	listener      net.Listener
}

// StartSink starts a sink on 127.0.0.1:0, stopped at the end of the test.
func StartSink(t testing.TB, opts ...Option) *Sink {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &Sink{Addr: l.Addr().String(), rcptErr: make(map[string]*smtp.SMTPError), verbs: make(map[string]int)}
	for _, o := range opts {
		o(s)
	}
	if s.tls {
		s.cert = &tls.Config{Certificates: []tls.Certificate{SelfSigned(t, "customer.test")}}
	}
	s.serve(l)
	t.Cleanup(s.Stop)
	return s
}

func (s *Sink) serve(l net.Listener) {
	srv := smtp.NewServer(smtp.BackendFunc(s.newSession))
	srv.Domain = "sink.test"
	srv.EnableSMTPUTF8 = true
	srv.MaxMessageBytes = cmp.Or(s.maxBytes, 64<<20)
	srv.MaxLineLength = 1 << 20
	srv.ReadTimeout = s.idleTimeout
	srv.TLSConfig = s.cert
	srv.AllowInsecureAuth = true
	srv.ErrorLog = discardLog{}
	s.mu.Lock()
	s.srv, s.listener, s.stopped = srv, l, make(chan struct{})
	s.mu.Unlock()
	go srv.Serve(&sinkListener{Listener: l, sink: s})
}

// Stop closes the sink's listener and connections; later connections are
// refused, which is what a downed customer server looks like.
// The listener is closed here too: Serve runs in its own goroutine, and a
// server closed before Serve registered the listener would go on accepting.
func (s *Sink) Stop() {
	s.mu.Lock()
	srv, l, stopped := s.srv, s.listener, s.stopped
	s.srv = nil
	s.mu.Unlock()
	if srv == nil {
		return
	}
	close(stopped)
	srv.Close()
	l.Close()
}

// Restart stops the sink and starts it again on the same address, as a
// customer server restarted under load: every connection is cut, and what
// it received so far is kept.
func (s *Sink) Restart(t testing.TB) {
	t.Helper()
	s.Stop()
	var err error
	for range 50 {
		var l net.Listener
		if l, err = net.Listen("tcp", s.Addr); err == nil {
			s.serve(l)
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("restarting sink on %s: %v", s.Addr, err)
}

// RejectRcpt makes the sink answer err for recipient rcpt.
func (s *Sink) RejectRcpt(rcpt string, err *smtp.SMTPError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rcptErr[rcpt] = err
}

// RejectMail makes the sink answer err to every MAIL (nil: accept).
func (s *Sink) RejectMail(err *smtp.SMTPError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.mailErr = err
}

// RejectData makes the sink answer err at the end of every DATA (nil: accept).
func (s *Sink) RejectData(err *smtp.SMTPError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.dataErr = err
}

// RefuseRset makes the sink answer every RSET with reply (a whole reply
// line without CRLF; "": accept). It works on clear-text connections
// only: the command is recognised on the wire, at the start of a read
// (alone, or first of a pipelined group).
func (s *Sink) RefuseRset(reply string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rsetReply = reply
}

// Stall makes the sink sit on each message's final reply for d (0: answer
// at once), then refuse it with 451 without keeping it: a server that
// hangs after the message and never commits it.
func (s *Sink) Stall(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stall = d
}

// Gate holds each message's final reply until the test gives it: Entered
// tells that a message was read, Reply (nil: accept) answers it, as a
// server that takes its time over the message.
type Gate struct {
	Entered <-chan struct{}
	Reply   chan<- *smtp.SMTPError

	entered chan struct{}
	reply   chan *smtp.SMTPError
}

// GateData makes the sink hold every message's final reply at the
// returned gate.
func (s *Sink) GateData() *Gate {
	g := &Gate{entered: make(chan struct{}), reply: make(chan *smtp.SMTPError)}
	g.Entered, g.Reply = g.entered, g.reply
	s.mu.Lock()
	defer s.mu.Unlock()
	s.gate = g
	return g
}

// Messages returns a copy of what was accepted so far.
func (s *Sink) Messages() []Received {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Received(nil), s.received...)
}

// Connections is how many connections the sink accepted.
func (s *Sink) Connections() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.conns
}

// Open is how many of its connections the sink has not closed yet.
func (s *Sink) Open() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.open
}

// Commands is how many times the sink was sent the command verb (EHLO,
// RSET, MAIL...) on clear-text connections. A read is taken as commands
// when every line of it starts with an upper-case verb, which tells a
// client's commands, pipelined or not, from a message's lines.
func (s *Sink) Commands(verb string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.verbs[verb]
}

// CommandWrites is how many reads brought commands: the client's writes,
// and with them its round trips, since a client waits for the replies
// before it writes again.
func (s *Sink) CommandWrites() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.commandWrites
}

// sinkListener numbers the connections and lets RefuseRset see them.
type sinkListener struct {
	net.Listener
	sink *Sink
}

func (l *sinkListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	l.sink.mu.Lock()
	l.sink.conns++
	l.sink.open++
	id := l.sink.conns
	l.sink.mu.Unlock()
	return &sinkConn{Conn: c, sink: l.sink, id: id}, nil
}

type sinkConn struct {
	net.Conn
	sink   *Sink
	id     int
	closed sync.Once
}

func (c *sinkConn) Close() error {
	c.closed.Do(func() {
		c.sink.mu.Lock()
		c.sink.open--
		c.sink.mu.Unlock()
	})
	return c.Conn.Close()
}

var rset = []byte("RSET\r\n")

// Read counts commands and answers an RSET itself, unseen by the server,
// while RefuseRset is on; go-smtp's server always accepts RSET.
func (c *sinkConn) Read(p []byte) (int, error) {
	for {
		n, err := c.Conn.Read(p)
		if err == nil {
			c.count(p[:n])
		}
		if err != nil || !bytes.HasPrefix(p[:n], rset) {
			return n, err
		}
		c.sink.mu.Lock()
		reply := c.sink.rsetReply
		c.sink.mu.Unlock()
		if reply == "" {
			return n, nil
		}
		if _, err := c.Conn.Write([]byte(reply + "\r\n")); err != nil {
			return 0, err
		}
		if rest := copy(p, p[len(rset):n]); rest > 0 {
			return rest, nil
		}
	}
}

// count records the verbs of read when it is commands.
func (c *sinkConn) count(read []byte) {
	lines, ok := bytes.CutSuffix(read, []byte("\r\n"))
	if !ok {
		return
	}
	var verbs []string
	for line := range bytes.SplitSeq(lines, []byte("\r\n")) {
		verb, _, _ := bytes.Cut(line, []byte(" "))
		if len(verb) < 4 || len(verb) > 8 || bytes.ContainsFunc(verb, func(r rune) bool { return r < 'A' || r > 'Z' }) {
			return
		}
		verbs = append(verbs, string(verb))
	}
	c.sink.mu.Lock()
	defer c.sink.mu.Unlock()
	c.sink.commandWrites++
	for _, v := range verbs {
		c.sink.verbs[v]++
	}
}

func (s *Sink) newSession(c *smtp.Conn) (smtp.Session, error) {
	ss := &sinkSession{sink: s}
	nc := c.Conn()
	if tc, ok := nc.(*tls.Conn); ok {
		ss.tls = true
		nc = tc.NetConn()
	}
	if sc, ok := nc.(*sinkConn); ok {
		ss.conn = sc.id
	}
	return ss, nil
}

type sinkSession struct {
	sink  *Sink
	conn  int
	tls   bool
	from  string
	size  int64
	utf8  bool
	rcpts []string
}

func (ss *sinkSession) Reset()        { ss.from, ss.rcpts, ss.size, ss.utf8 = "", nil, 0, false }
func (ss *sinkSession) Logout() error { return nil }

func (ss *sinkSession) Mail(from string, opts *smtp.MailOptions) error {
	ss.sink.mu.Lock()
	err := ss.sink.mailErr
	ss.sink.mu.Unlock()
	if err != nil {
		return err
	}
	ss.from = from
	if opts != nil {
		ss.size, ss.utf8 = opts.Size, opts.UTF8
	}
	return nil
}

func (ss *sinkSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	ss.sink.mu.Lock()
	err := ss.sink.rcptErr[to]
	ss.sink.mu.Unlock()
	if err != nil {
		return err
	}
	ss.rcpts = append(ss.rcpts, to)
	return nil
}

var errStalled = &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "stalled"}

func (ss *sinkSession) Data(r io.Reader) error {
	var b bytes.Buffer
	if _, err := io.Copy(&b, r); err != nil {
		return err
	}
	ss.sink.mu.Lock()
	stall, gate, stopped := ss.sink.stall, ss.sink.gate, ss.sink.stopped
	ss.sink.mu.Unlock()
	if gate != nil {
		select {
		case gate.entered <- struct{}{}:
		case <-stopped:
			return errStalled
		}
		select {
		case err := <-gate.reply:
			if err != nil {
				return err
			}
		case <-stopped:
			return errStalled
		}
	}
	if stall > 0 {
		select {
		case <-time.After(stall):
		case <-stopped:
		}
		return errStalled
	}
	ss.sink.mu.Lock()
	defer ss.sink.mu.Unlock()
	if ss.sink.dataErr != nil {
		return ss.sink.dataErr
	}
	ss.sink.received = append(ss.sink.received, Received{From: ss.from, Rcpts: ss.rcpts, Data: b.Bytes(), Size: ss.size, UTF8: ss.utf8, Conn: ss.conn, TLS: ss.tls})
	return nil
}

type discardLog struct{}

func (discardLog) Printf(string, ...interface{}) {}
func (discardLog) Println(...interface{})        {}

var errNoHeaderEnd = errors.New("message has no header/body separator")

// StripPrepended removes the n header fields we prepended (each possibly
// folded) from data, for byte-for-byte comparison with what was sent.
func StripPrepended(data []byte, names ...string) ([]byte, error) {
	if !bytes.Contains(data, []byte("\r\n\r\n")) {
		return nil, errNoHeaderEnd
	}
	for _, name := range names {
		prefix := []byte(name + ":")
		if !bytes.HasPrefix(bytes.ToLower(data), bytes.ToLower(prefix)) {
			return nil, errors.New("message does not start with " + name)
		}
		end := 0
		for {
			i := bytes.Index(data[end:], []byte("\r\n"))
			end += i + 2
			if end >= len(data) || (data[end] != ' ' && data[end] != '\t') {
				break
			}
		}
		data = data[end:]
	}
	return data, nil
}
