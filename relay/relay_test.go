package relay

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
	"github.com/mxgrid/mxgrid/internal/smtptest"
	"github.com/mxgrid/mxgrid/mailaddr"
	"github.com/mxgrid/mxgrid/netguard"
	"github.com/prometheus/client_golang/prometheus"
)

// downstream records how each session arrived: HELO name, TLS, message.
type downstream struct {
	mu       sync.Mutex
	helo     []string
	tls      []bool
	messages []string
}

type dsSession struct {
	d   *downstream
	c   *smtp.Conn
	tls bool
}

func (s *dsSession) Reset()                                    {}
func (s *dsSession) Logout() error                             { return nil }
func (s *dsSession) Mail(string, *smtp.MailOptions) error      { return nil }
func (s *dsSession) Rcpt(to string, _ *smtp.RcptOptions) error { return nil }
func (s *dsSession) Data(r io.Reader) error {
	b, _ := io.ReadAll(r)
	_, tlsOn := s.c.TLSConnectionState()
	s.d.mu.Lock()
	defer s.d.mu.Unlock()
	s.d.helo = append(s.d.helo, s.c.Hostname())
	s.d.tls = append(s.d.tls, tlsOn)
	s.d.messages = append(s.d.messages, string(b))
	return nil
}

func startDownstream(t *testing.T, withTLS bool) (*downstream, string) {
	t.Helper()
	d := &downstream{}
	srv := smtp.NewServer(smtp.BackendFunc(func(c *smtp.Conn) (smtp.Session, error) { return &dsSession{d: d, c: c}, nil }))
	srv.Domain = "customer.test"
	srv.AllowInsecureAuth = true
	if withTLS {
		srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{smtptest.SelfSigned(t, "customer.test")}}
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	return d, l.Addr().String()
}

// loopbackGuard lets tenant routes reach the loopback downstreams of tests,
// as relay.allowed_route_networks: [127.0.0.0/8] would.
func loopbackGuard() *netguard.Guard {
	return netguard.New(nil, []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")})
}

func newRelay() *Relay {
	return New(DefaultConfig(), "mx1.mxgrid.test", loopbackGuard(), slog.New(slog.NewTextHandler(io.Discard, nil)), prometheus.NewRegistry())
}

func send(t *testing.T, r *Relay, route Route) error {
	t.Helper()
	tx, err := r.Begin(context.Background(), route, mailaddr.Address{Local: "a", Domain: "sender.test"}, MailOptions{})
	if err != nil {
		return err
	}
	defer tx.Close()
	if err := tx.Rcpt(mailaddr.Address{Local: "bob", Domain: "customer.test"}); err != nil {
		return err
	}
	_, err = tx.Data(strings.NewReader("Subject: hi\r\n\r\nbody\r\n"))
	return err
}

func TestTLSModes(t *testing.T) {
	tests := []struct {
		name      string
		serverTLS bool
		mode      TLSMode
		wantTLS   bool
		wantCode  int // 0: delivered
	}{
		{"none ignores offered STARTTLS", true, TLSNone, false, 0},
		{"opportunistic uses offered STARTTLS", true, TLSOpportunistic, true, 0},
		{"opportunistic falls back to clear text", false, TLSOpportunistic, false, 0},
		{"required uses STARTTLS", true, TLSRequired, true, 0},
		{"required refuses clear text", false, TLSRequired, false, 451},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, addr := startDownstream(t, tt.serverTLS)
			err := send(t, newRelay(), Route{Addr: addr, TLS: tt.mode})
			if tt.wantCode != 0 {
				var re *Error
				if !errors.As(err, &re) || re.Code != tt.wantCode {
					t.Fatalf("err = %v, want code %d", err, tt.wantCode)
				}
				if len(d.messages) != 0 {
					t.Fatal("message sent although the route's TLS mode forbids it")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(d.messages) != 1 || d.tls[0] != tt.wantTLS {
				t.Fatalf("delivered %d, tls %v; want 1 with tls=%v", len(d.messages), d.tls, tt.wantTLS)
			}
			// Customer servers with HELO checks refuse "localhost".
			if d.helo[0] != "mx1.mxgrid.test" {
				t.Errorf("HELO name %q, want our hostname", d.helo[0])
			}
		})
	}
}

func TestUnreachableAndCancelled(t *testing.T) {
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := l.Addr().String()
	l.Close()
	_, err := newRelay().Begin(context.Background(), Route{Addr: addr, TLS: TLSNone}, mailaddr.Address{Local: "a", Domain: "b.test"}, MailOptions{})
	var re *Error
	if !errors.As(err, &re) || re.Code != 451 || re.Enhanced != [3]int{4, 4, 1} {
		t.Fatalf("unreachable: %v, want 451 4.4.1", err)
	}

	// A server that accepts but never greets: cancelling the context must
	// unblock Begin at once rather than wait for the command timeout.
	silent, _ := net.Listen("tcp", "127.0.0.1:0")
	defer silent.Close()
	go func() {
		for {
			c, err := silent.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err = newRelay().Begin(ctx, Route{Addr: silent.Addr().String(), TLS: TLSNone}, mailaddr.Address{Local: "a", Domain: "b.test"}, MailOptions{})
	if !errors.As(err, &re) || !re.Temporary() {
		t.Fatalf("silent server: %v, want a temporary error", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("cancelled Begin took %v", d)
	}
}

func TestDownstreamErrorMapping(t *testing.T) {
	tests := []struct {
		name         string
		err          error
		wantCode     int
		wantEnhanced [3]int
	}{
		{"permanent with enhanced code", &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "no such user"}, 550, [3]int{5, 1, 1}},
		{"temporary without enhanced code", &smtp.SMTPError{Code: 451, EnhancedCode: smtp.NoEnhancedCode, Message: "later"}, 451, [3]int{4, 0, 0}},
		{"enhanced class contradicting the code", &smtp.SMTPError{Code: 450, EnhancedCode: smtp.EnhancedCode{5, 1, 1}}, 450, [3]int{4, 0, 0}},
		{"connection lost", io.ErrUnexpectedEOF, 451, [3]int{4, 4, 2}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := downstreamError(Route{Addr: "h:25"}, "RCPT", tt.err)
			if e.Code != tt.wantCode || e.Enhanced != tt.wantEnhanced || e.Message == "" {
				t.Fatalf("got %d %v %q", e.Code, e.Enhanced, e.Message)
			}
		})
	}
}
