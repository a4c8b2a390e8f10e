package relay

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/textproto"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mxgrid/mxgrid/internal/smtptest"
	"github.com/mxgrid/mxgrid/mailaddr"
	"github.com/prometheus/client_golang/prometheus"
)

// downstreamTLS is what a recordingDownstream does with STARTTLS.
type downstreamTLS int

const (
	noStartTLS     downstreamTLS = iota // not offered
	workingTLS                          // offered, and the handshake works
	brokenStartTLS                      // offered, then the connection closes after its 220
)

// recordingDownstream is a customer's server on a real socket that records
// every command line of every connection, before and after STARTTLS.
type recordingDownstream struct {
	addr string
	mu   sync.Mutex
	cmds [][]string // per connection, in order
}

func startRecordingDownstream(t *testing.T, mode downstreamTLS) *recordingDownstream {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cfg := &tls.Config{Certificates: []tls.Certificate{smtptest.SelfSigned(t, "customer.test")}}
	d := &recordingDownstream{addr: l.Addr().String()}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var open []net.Conn
	t.Cleanup(func() {
		l.Close()
		mu.Lock()
		for _, c := range open {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			open = append(open, c)
			mu.Unlock()
			d.mu.Lock()
			d.cmds = append(d.cmds, nil)
			n := len(d.cmds) - 1
			d.mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				d.serve(c, n, mode, cfg)
			}()
		}
	}()
	return d
}

func (d *recordingDownstream) serve(c net.Conn, n int, mode downstreamTLS, cfg *tls.Config) {
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	r := bufio.NewReader(c)
	io.WriteString(c, "220 customer.test ESMTP\r\n")
	inTLS := false
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		line = strings.TrimSuffix(line, "\r\n")
		d.mu.Lock()
		d.cmds[n] = append(d.cmds[n], line)
		d.mu.Unlock()
		verb, _, _ := strings.Cut(line, " ")
		switch strings.ToUpper(verb) {
		case "EHLO":
			ehlo := "250-customer.test\r\n"
			if mode != noStartTLS && !inTLS {
				ehlo += "250-STARTTLS\r\n"
			}
			io.WriteString(c, ehlo+"250 PIPELINING\r\n")
		case "STARTTLS":
			io.WriteString(c, "220 2.0.0 ready\r\n")
			if mode == brokenStartTLS {
				return
			}
			tc := tls.Server(c, cfg)
			if tc.Handshake() != nil {
				return
			}
			c, r, inTLS = tc, bufio.NewReader(tc), true
		case "DATA":
			io.WriteString(c, "354 go ahead\r\n")
			if skipData(r) != nil {
				return
			}
			io.WriteString(c, "250 2.0.0 queued\r\n")
		case "QUIT":
			io.WriteString(c, "221 bye\r\n")
			return
		default:
			io.WriteString(c, "250 ok\r\n")
		}
	}
}

// verbs is each connection's command verbs, in order.
func (d *recordingDownstream) verbs() [][]string {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := make([][]string, len(d.cmds))
	for i, cmds := range d.cmds {
		for _, line := range cmds {
			verb, arg, _ := strings.Cut(line, " ")
			if verb == "EHLO" {
				verb += " " + arg // our name, every time
			}
			out[i] = append(out[i], verb)
		}
	}
	return out
}

// TestOneEHLOPerSession: a new connection to the customer's server costs
// one EHLO in clear text, and EHLO, STARTTLS, EHLO with TLS (RFC 3207
// §4.2 requires the second). The relay's own first exchange, done by hand
// to check for loops, used to be followed by go-smtp's EHLO on every clear
// text connection: a round trip for nothing, on each new connection.
func TestOneEHLOPerSession(t *testing.T) {
	const ehlo = "EHLO mx1.mxgrid.test"
	mail := []string{"MAIL", "RCPT", "DATA"}
	plain := append([]string{ehlo}, mail...)
	withTLS := append([]string{ehlo, "STARTTLS", ehlo}, mail...)
	for _, tc := range []struct {
		name    string
		server  downstreamTLS
		route   TLSMode
		want    [][]string
		wantTLS bool
	}{
		{"TLS none, STARTTLS offered", workingTLS, TLSNone, [][]string{plain}, false},
		{"opportunistic, STARTTLS not offered", noStartTLS, TLSOpportunistic, [][]string{plain}, false},
		{"opportunistic", workingTLS, TLSOpportunistic, [][]string{withTLS}, true},
		{"required", workingTLS, TLSRequired, [][]string{withTLS}, true},
		{"opportunistic, STARTTLS failed, clear text again", brokenStartTLS, TLSOpportunistic, [][]string{{ehlo, "STARTTLS"}, plain}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := startRecordingDownstream(t, tc.server)
			r := New(DefaultConfig(), "mx1.mxgrid.test", loopbackGuard(), slog.New(slog.NewTextHandler(io.Discard, nil)), prometheus.NewRegistry())
			route := Route{Addr: d.addr, TLS: tc.route}
			tx, err := r.Begin(context.Background(), route, mailaddr.Address{Local: "a", Domain: "sender.test"}, MailOptions{})
			if err != nil {
				t.Fatal(err)
			}
			defer tx.Close()
			if err := tx.Rcpt(mailaddr.Address{Local: "bob", Domain: "customer.test"}); err != nil {
				t.Fatal(err)
			}
			if _, err := tx.Data(message("Subject: one\r\n\r\nbody\r\n")); err != nil {
				t.Fatal(err)
			}
			if tx.TLS() != tc.wantTLS {
				t.Errorf("Transaction.TLS() = %v, want %v", tx.TLS(), tc.wantTLS)
			}
			if got := d.verbs(); !slices.EqualFunc(got, tc.want, slices.Equal) {
				t.Errorf("customer's server got %q, want %q", got, tc.want)
			}
		})
	}
}

// TestReadReplyAsTextproto: the lines readReply gives, joined, are the
// text go-smtp's client would have read itself, which NewClientGreeted
// takes the extensions from: a line of a bare code included, or the first
// extension would pass for the server's name.
func TestReadReplyAsTextproto(t *testing.T) {
	for _, reply := range []string{
		"250 customer.test\r\n",
		"250-customer.test\r\n250-PIPELINING\r\n250 SIZE 1000\r\n",
		"250-\r\n250 PIPELINING\r\n",
	} {
		lines, err := readReply(bufio.NewReader(strings.NewReader(reply)), 250)
		if err != nil {
			t.Fatalf("%q: %v", reply, err)
		}
		_, want, err := textproto.NewReader(bufio.NewReader(strings.NewReader(reply))).ReadResponse(250)
		if err != nil {
			t.Fatal(err)
		}
		if got := strings.Join(lines, "\n"); got != want {
			t.Errorf("%q: read as %q, textproto reads %q", reply, got, want)
		}
	}
}

// TestTLSRequiredNotOfferedSaysQuit: a route that requires TLS, to a
// server that offers no STARTTLS, is refused (451 4.7.5), but the clear
// text session is sound and ends with QUIT (RFC 5321 §4.1.1.10). Closed
// without it, the customer's Postfix logged "lost connection after EHLO"
// at every retry, the line fail2ban's postfix filter (mode aggressive)
// bans the node's address for.
func TestTLSRequiredNotOfferedSaysQuit(t *testing.T) {
	d := startRecordingDownstream(t, noStartTLS)
	r := New(DefaultConfig(), "mx1.mxgrid.test", loopbackGuard(), slog.New(slog.NewTextHandler(io.Discard, nil)), prometheus.NewRegistry())
	_, err := r.Begin(context.Background(), Route{Addr: d.addr, TLS: TLSRequired}, mailaddr.Address{Local: "a", Domain: "sender.test"}, MailOptions{})
	var re *Error
	if !errors.As(err, &re) || re.Code != 451 || re.Enhanced != [3]int{4, 7, 5} {
		t.Fatalf("Begin = %v, want 451 4.7.5", err)
	}
	want := [][]string{{"EHLO mx1.mxgrid.test", "QUIT"}}
	if got := d.verbs(); !slices.EqualFunc(got, want, slices.Equal) {
		t.Errorf("customer's server got %q, want %q", got, want)
	}
}

// TestRefusalBeforeSTARTTLSIsNotRetriedInClearText: opportunistic TLS
// retries in clear text when STARTTLS itself fails, as Postfix's "may"
// level does. A server that refuses before STARTTLS (a 421 greeting at
// its connection limit, a 421 to EHLO) was connected to a second time,
// to refuse again: against a real Postfix at its
// smtpd_client_connection_count_limit every deferred recipient cost two
// connections (1022 refusals for 511 deferrals), doubling the load on a
// server that had said it was overloaded, and was logged as a TLS failure.
func TestRefusalBeforeSTARTTLSIsNotRetriedInClearText(t *testing.T) {
	for _, tt := range []struct{ name, greeting, ehlo string }{
		{"421 greeting", "421 4.7.0 customer.test Error: too many connections\r\n", ""},
		{"421 to EHLO", "220 customer.test ESMTP\r\n", "421 4.3.2 busy\r\n"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			addr, conns := rawDownstream(t, tt.greeting, tt.ehlo)
			_, err := guardedRelay(loopbackGuard()).Begin(context.Background(), Route{Addr: addr, TLS: TLSOpportunistic}, mailaddr.Address{Local: "a", Domain: "sender.test"}, MailOptions{})
			var re *Error
			if !errors.As(err, &re) || re.Code != 451 || re.Enhanced != [3]int{4, 4, 1} {
				t.Errorf("Begin = %v, want 451 4.4.1 (unreachable, not a TLS failure)", err)
			}
			if n := conns.Load(); n != 1 {
				t.Errorf("%d connections, want 1", n)
			}
		})
	}
}
