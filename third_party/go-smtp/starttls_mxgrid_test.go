package smtp

import (
	"bufio"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestSTARTTLSStartsClean: what the client sent in clear text after
// STARTTLS is never executed under TLS (RFC 3207 §4.2, CVE-2011-0411's
// command injection), the transaction and EHLO are forgotten, and
// STARTTLS takes no parameters (RFC 3207 §4: 501; upstream started TLS
// with a client that meant something else).
func TestSTARTTLSStartsClean(t *testing.T) {
	cert, err := tls.X509KeyPair(localhostCert, localhostKey)
	if err != nil {
		t.Fatal(err)
	}
	const ehlo = "EHLO c.test\r\n"
	for _, tc := range []struct {
		name string
		// clear is sent, then, after its first n replies, a TLS handshake
		// if handshake, then secure under TLS; want is every reply until
		// the server closes the connection.
		clear     string
		n         int
		handshake bool
		secure    string
		want      []string
		envelope  []string
	}{
		{name: "pipelined after STARTTLS", clear: ehlo + "STARTTLS\r\nRSET\r\nMAIL FROM:<injected@evil.test>\r\n", n: 2,
			handshake: true, secure: "MAIL FROM:<a@example.org>\r\nQUIT\r\n",
			want: []string{"250", "220", "503", "221"}},
		{name: "transaction forgotten", clear: ehlo + "MAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.org>\r\nSTARTTLS\r\n", n: 4,
			handshake: true, secure: ehlo + "RCPT TO:<b@example.org>\r\nDATA\r\nQUIT\r\n",
			want: []string{"250", "250", "250", "220", "250", "503", "503", "221"}, envelope: []string{"MAIL a@example.org", "RCPT b@example.org"}},
		{name: "parameter", clear: ehlo + "STARTTLS now\r\nMAIL FROM:<a@example.org>\r\nQUIT\r\n",
			want: []string{"250", "501", "250", "221"}, envelope: []string{"MAIL a@example.org"}},
		{name: "longer word", clear: ehlo + "STARTTLSX\r\nMAIL FROM:<a@example.org>\r\nQUIT\r\n",
			want: []string{"250", "501", "250", "221"}, envelope: []string{"MAIL a@example.org"}},
		{name: "twice", clear: ehlo + "STARTTLS\r\n", n: 2, handshake: true, secure: "STARTTLS\r\nQUIT\r\n",
			want: []string{"250", "220", "503", "221"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			log := &envelopeLog{}
			s := NewServer(BackendFunc(func(*Conn) (Session, error) { return envelopeLogSession{log}, nil }))
			s.Domain = "localhost"
			s.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}}
			go s.Serve(l)
			defer s.Close()
			c, err := net.Dial("tcp", l.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			// Short: a server that wrongly keeps the connection open is
			// read until it stops answering.
			c.SetDeadline(time.Now().Add(3 * time.Second))
			r := bufio.NewReader(c)
			r.ReadString('\n')
			fmt.Fprint(c, tc.clear)
			got := replyCodes(r, tc.n)
			if tc.handshake {
				sc := tls.Client(c, &tls.Config{InsecureSkipVerify: true})
				if err := sc.Handshake(); err != nil {
					t.Fatalf("handshake after %v: %v", got, err)
				}
				fmt.Fprint(sc, tc.secure)
				r = bufio.NewReader(sc)
			}
			got = append(got, replyCodes(r, -1)...)
			if strings.Join(got, " ") != strings.Join(tc.want, " ") {
				t.Errorf("replies %v, want %v", got, tc.want)
			}
			if took := log.took(); strings.Join(took, " ") != strings.Join(tc.envelope, " ") {
				t.Errorf("backend took %q, want %q", took, tc.envelope)
			}
		})
	}
}

// replyCodes reads the codes of up to n replies (n < 0: until the server
// closes the connection or stops answering), skipping continuation lines
// and anything that is not a reply (a TLS alert).
func replyCodes(r *bufio.Reader, n int) []string {
	var codes []string
	for n < 0 || len(codes) < n {
		line, err := r.ReadString('\n')
		if err != nil {
			return codes
		}
		if len(line) < 4 || line[3] == '-' || strings.Trim(line[:3], "0123456789") != "" {
			continue
		}
		codes = append(codes, line[:3])
	}
	return codes
}

// TestFailedHandshakeClosesTheConnection: after a failed TLS handshake
// neither side knows where the stream stands, so the server closes the
// connection, as Postfix does. Upstream wrote "550 Handshake error" in
// clear text after its TLS alert and went on executing clear-text
// commands: a session that had asked for TLS carried on without it.
func TestFailedHandshakeClosesTheConnection(t *testing.T) {
	cert, err := tls.X509KeyPair(localhostCert, localhostKey)
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	log := &envelopeLog{}
	s := NewServer(BackendFunc(func(*Conn) (Session, error) { return envelopeLogSession{log}, nil }))
	s.Domain = "localhost"
	s.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}}
	go s.Serve(l)
	defer s.Close()
	c, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(3 * time.Second))
	r := bufio.NewReader(c)
	r.ReadString('\n')
	fmt.Fprint(c, "EHLO c.test\r\nSTARTTLS\r\n")
	if got := replyCodes(r, 2); strings.Join(got, " ") != "250 220" {
		t.Fatalf("replies %v, want 250 220", got)
	}
	// A whole record, so the server reads no further: a ClientHello of
	// length 0, which the server refuses with an alert.
	c.Write([]byte("\x16\x03\x01\x00\x04\x01\x00\x00\x00"))
	alert := make([]byte, 7)
	if _, err := io.ReadFull(r, alert); err != nil || alert[0] != 0x15 {
		t.Fatalf("read %q (%v), want a TLS alert", alert, err)
	}
	fmt.Fprint(c, "MAIL FROM:<clear@example.org>\r\n")
	// The MAIL line may arrive after the close: then the close is a reset.
	rest, err := io.ReadAll(r)
	if len(rest) > 0 || err != nil && !errors.Is(err, syscall.ECONNRESET) {
		t.Errorf("after the alert: %q, %v; want the connection closed", rest, err)
	}
	if took := log.took(); len(took) != 0 {
		t.Errorf("backend took %q after a failed handshake", took)
	}
}
