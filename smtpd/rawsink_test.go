package smtpd_test

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"
)

// rawSink is a customer server that records the exact bytes it receives.
// Unlike smtptest.Sink (a go-smtp server, which parses and so normalises
// what it sees), it lets a test assert what went over the wire: command
// lines as sent, and message bodies still dot-stuffed. Its end of data is
// strictly <CRLF>.<CRLF>.
type rawSink struct {
	Addr string
	ln   net.Listener

	mu     sync.Mutex
	conns  int
	lines  []string // every command line, CRLF removed
	bodies [][]byte // each DATA body as received (dot-stuffed, terminator removed)
	refuse map[string]string
	// pipelining: EHLO offers PIPELINING (the relay then sends MAIL with
	// the first RCPT in one write; lines are read one by one either way).
	pipelining bool
	// no8BitMIME: EHLO does not offer 8BITMIME (RFC 6152).
	no8BitMIME bool
	// noSMTPUTF8: EHLO does not offer SMTPUTF8 (RFC 6531).
	noSMTPUTF8 bool
	// rcptLimit, when above 0, is how many recipients a transaction
	// takes; every RCPT past it gets rcptLimitReply, as Postfix's
	// smtpd_recipient_limit answers "452 4.5.3 Error: too many recipients".
	rcptLimit      int
	rcptLimitReply string
}

func startRawSink(t testing.TB) *rawSink {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &rawSink{Addr: ln.Addr().String(), ln: ln, refuse: map[string]string{}}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.mu.Lock()
			s.conns++
			s.mu.Unlock()
			go s.serve(c)
		}
	}()
	return s
}

// refuseRcpt makes "RCPT TO:<addr>" get reply (a full reply line).
func (s *rawSink) refuseRcpt(addr, reply string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.refuse["RCPT TO:<"+addr+">"] = reply
}

// refuseSender makes "MAIL FROM:<addr>", whatever its parameters, get
// reply; a RCPT pipelined after it gets 503, as from a real server.
func (s *rawSink) refuseSender(addr, reply string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.refuse["MAIL FROM:<"+addr+">"] = reply
}

func (s *rawSink) offerPipelining() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.pipelining = true
}

func (s *rawSink) withhold8BitMIME() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.no8BitMIME = true
}

func (s *rawSink) withholdSMTPUTF8() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.noSMTPUTF8 = true
}

// limitRecipients makes every transaction take n recipients, and answer
// each RCPT past them reply (a full reply line).
func (s *rawSink) limitRecipients(n int, reply string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rcptLimit, s.rcptLimitReply = n, reply
}

func (s *rawSink) serve(c net.Conn) {
	defer c.Close()
	c.SetDeadline(time.Now().Add(30 * time.Second))
	r := bufio.NewReader(c)
	fmt.Fprint(c, "220 customer.test ESMTP\r\n")
	inTransaction := false
	rcpts := 0
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		line = strings.TrimSuffix(line, "\r\n")
		s.mu.Lock()
		s.lines = append(s.lines, line)
		addr, _, _ := strings.Cut(line, ">")
		reply, refused := s.refuse[addr+">"]
		ehlo := "250-customer.test\r\n"
		if s.pipelining {
			ehlo += "250-PIPELINING\r\n"
		}
		if !s.no8BitMIME {
			ehlo += "250-8BITMIME\r\n"
		}
		if !s.noSMTPUTF8 {
			ehlo += "250-SMTPUTF8\r\n"
		}
		ehlo += "250 SIZE 100000000\r\n"
		full := s.rcptLimit > 0 && rcpts >= s.rcptLimit
		fullReply := s.rcptLimitReply
		s.mu.Unlock()
		verb := strings.ToUpper(line[:min(4, len(line))])
		switch {
		case verb == "EHLO":
			fmt.Fprint(c, ehlo)
		case verb == "MAIL" && refused:
			fmt.Fprint(c, reply+"\r\n")
		case verb == "MAIL":
			inTransaction, rcpts = true, 0
			fmt.Fprint(c, "250 ok\r\n")
		case verb == "RCPT" && !inTransaction:
			fmt.Fprint(c, "503 5.5.1 MAIL first\r\n")
		case verb == "RCPT" && refused:
			fmt.Fprint(c, reply+"\r\n")
		case verb == "RCPT" && full:
			fmt.Fprint(c, fullReply+"\r\n")
		case verb == "RCPT":
			rcpts++
			fmt.Fprint(c, "250 ok\r\n")
		case verb == "DATA":
			fmt.Fprint(c, "354 go ahead\r\n")
			var body bytes.Buffer
			for {
				l, err := r.ReadString('\n')
				if err != nil {
					return
				}
				if l == ".\r\n" && (body.Len() == 0 || bytes.HasSuffix(body.Bytes(), []byte("\r\n"))) {
					break
				}
				body.WriteString(l)
			}
			s.mu.Lock()
			s.bodies = append(s.bodies, body.Bytes())
			s.mu.Unlock()
			inTransaction = false
			fmt.Fprint(c, "250 2.0.0 queued\r\n")
		case verb == "RSET":
			inTransaction = false
			fmt.Fprint(c, "250 ok\r\n")
		case verb == "QUIT":
			fmt.Fprint(c, "221 bye\r\n")
			return
		default:
			fmt.Fprint(c, "250 ok\r\n")
		}
	}
}

// commands returns the recorded lines that start with prefix.
func (s *rawSink) commands(prefix string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, l := range s.lines {
		if strings.HasPrefix(l, prefix) {
			out = append(out, l)
		}
	}
	return out
}

func (s *rawSink) messages() [][]byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([][]byte(nil), s.bodies...)
}

func (s *rawSink) connections() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.conns
}

// relayOne sends msg from alice to bob through n, after EHLO helo when
// helo is set, and returns what the customer's server received for it.
func relayOne(t *testing.T, n *testNode, sink *rawSink, helo, msg string) []byte {
	t.Helper()
	before := len(sink.messages())
	c := dial(t, n.SMTPAddr())
	if helo != "" {
		c.cmd(250, "EHLO %s", helo)
	}
	c.cmd(250, "MAIL FROM:<alice@sender.test>")
	c.cmd(250, "RCPT TO:<bob@example.org>")
	c.data(250, msg)
	got := sink.messages()
	if len(got) != before+1 {
		t.Fatalf("customer server got %d messages, want 1", len(got)-before)
	}
	return got[before]
}
