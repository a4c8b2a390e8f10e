package demo

import (
	"fmt"
	"io"
	"net"

	"github.com/emersion/go-smtp"
)

// sink is the demo customer's mail server: it accepts and discards every
// message the nodes relay to it.
type sink struct {
	addr string
	srv  *smtp.Server
}

func startSink(addr string) (*sink, error) {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("demo: customer mail server: %w", err)
	}
	srv := smtp.NewServer(smtp.BackendFunc(func(*smtp.Conn) (smtp.Session, error) { return sinkSession{}, nil }))
	srv.Domain = "customer.mxgrid.demo"
	srv.MaxMessageBytes = 64 << 20
	srv.ErrorLog = discardLog{}
	go srv.Serve(l)
	return &sink{addr: l.Addr().String(), srv: srv}, nil
}

func (s *sink) Close() error { return s.srv.Close() }

type sinkSession struct{}

func (sinkSession) Reset()                               {}
func (sinkSession) Logout() error                        { return nil }
func (sinkSession) Mail(string, *smtp.MailOptions) error { return nil }
func (sinkSession) Rcpt(string, *smtp.RcptOptions) error { return nil }
func (sinkSession) Data(r io.Reader) error               { _, err := io.Copy(io.Discard, r); return err }

// discardLog silences go-smtp's own logger; the nodes log the relay side.
type discardLog struct{}

func (discardLog) Printf(string, ...any) {}
func (discardLog) Println(...any)        {}
