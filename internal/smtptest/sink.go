// Package smtptest runs downstream mail servers (the customer's) in-process on
// loopback: a test sends over real SMTP and checks what the customer's
// server received. It needs no node, so leaf packages' tests (smtpd, relay,
// scanner) use it as well as the end-to-end tests.
package smtptest

import (
	"bytes"
	"errors"
	"io"
	"net"
	"net/netip"
	"sync"
	"testing"

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
}

// Sink is a downstream mail server (the customer's) that records every
// message it accepts. Its replies can be changed to inject failures.
type Sink struct {
	Addr string

	mu       sync.Mutex
	received []Received
	rcptErr  map[string]*smtp.SMTPError
	dataErr  *smtp.SMTPError
	srv      *smtp.Server
	listener net.Listener
}

// StartSink starts a sink on 127.0.0.1:0, stopped at the end of the test.
func StartSink(t testing.TB) *Sink {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &Sink{Addr: l.Addr().String(), listener: l, rcptErr: make(map[string]*smtp.SMTPError)}
	s.srv = smtp.NewServer(smtp.BackendFunc(func(*smtp.Conn) (smtp.Session, error) { return &sinkSession{sink: s}, nil }))
	s.srv.Domain = "sink.test"
	s.srv.EnableSMTPUTF8 = true
	s.srv.MaxMessageBytes = 64 << 20
	s.srv.MaxLineLength = 1 << 20
	s.srv.ErrorLog = discardLog{}
	go s.srv.Serve(l)
	t.Cleanup(func() { s.srv.Close() })
	return s
}

// Stop closes the sink's listener and connections; later connections are
// refused, which is what a downed customer server looks like.
// The listener is closed here too: Serve runs in its own goroutine, and a
// server closed before Serve registered the listener would go on accepting.
func (s *Sink) Stop() {
	s.srv.Close()
	s.listener.Close()
}

// RejectRcpt makes the sink answer err for recipient rcpt.
func (s *Sink) RejectRcpt(rcpt string, err *smtp.SMTPError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rcptErr[rcpt] = err
}

// RejectData makes the sink answer err at the end of every DATA (nil: accept).
func (s *Sink) RejectData(err *smtp.SMTPError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.dataErr = err
}

// Messages returns a copy of what was accepted so far.
func (s *Sink) Messages() []Received {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Received(nil), s.received...)
}

type sinkSession struct {
	sink  *Sink
	from  string
	size  int64
	rcpts []string
}

func (ss *sinkSession) Reset()        { ss.from, ss.rcpts = "", nil }
func (ss *sinkSession) Logout() error { return nil }

func (ss *sinkSession) Mail(from string, opts *smtp.MailOptions) error {
	ss.from = from
	if opts != nil {
		ss.size = opts.Size
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

func (ss *sinkSession) Data(r io.Reader) error {
	var b bytes.Buffer
	if _, err := io.Copy(&b, r); err != nil {
		return err
	}
	ss.sink.mu.Lock()
	defer ss.sink.mu.Unlock()
	if ss.sink.dataErr != nil {
		return ss.sink.dataErr
	}
	ss.sink.received = append(ss.sink.received, Received{From: ss.from, Rcpts: ss.rcpts, Data: b.Bytes(), Size: ss.size})
	return nil
}

type discardLog struct{}

func (discardLog) Printf(string, ...interface{}) {}
func (discardLog) Println(...interface{})        {}

var errNoHeaderEnd = errors.New("message has no header/body separator")

// StripPrepended removes the n header fields we prepended (each possibly
// folded) from data, for byte-for-byte comparison with what was sent.
func StripPrepended(data []byte, names ...string) ([]byte, error) {
	if bytes.Index(data, []byte("\r\n\r\n")) < 0 {
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
