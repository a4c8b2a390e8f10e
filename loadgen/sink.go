package loadgen

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"sync"
	"time"

	"github.com/emersion/go-smtp"
)

// SinkConfig configures the counting SMTP server that stands in for the
// customer's mail server in load and chaos tests.
type SinkConfig struct {
	// Listen is host:port; only loopback addresses are allowed, as the
	// sink accepts any mail from anyone.
	Listen string
	// Report is the file every accepted id is appended to, one per line,
	// before the 250 is sent. An existing file is read at start, so a sink
	// restarted after an outage keeps counting where it stopped.
	Report string
	// Grace is how long a stop waits for transactions in flight, so a
	// stopped sink never takes a message without answering 250.
	Grace time.Duration
	Log   *slog.Logger
}

// Sink counts the ids of the messages it accepts.
type Sink struct {
	cfg  SinkConfig
	srv  *smtp.Server
	l    net.Listener
	mu   sync.Mutex
	file *os.File
	// counts is how many times each id was accepted; "" counts messages
	// that carried no id.
	counts map[string]int
	total  int
	// stopped is set when Run returns: go-smtp cannot close the sessions
	// that outlived the grace, so they are refused when they end.
	stopped bool
}

// NewSink opens the report and binds the listener.
func NewSink(cfg SinkConfig) (*Sink, error) {
	host, _, err := net.SplitHostPort(cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("sink listen %q: %w", cfg.Listen, err)
	}
	if ip, err := netip.ParseAddr(host); err != nil || !ip.IsLoopback() {
		return nil, fmt.Errorf("sink listen %q: only loopback addresses are allowed (the sink accepts any mail)", cfg.Listen)
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.Grace <= 0 {
		cfg.Grace = 5 * time.Second
	}
	s := &Sink{cfg: cfg, counts: make(map[string]int)}
	if cfg.Report != "" {
		counts, total, err := ReadReport(cfg.Report)
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return nil, err
		}
		if counts != nil {
			s.counts, s.total = counts, total
		}
		// O_APPEND and no buffering: each accepted id is in the kernel
		// before its 250, so even a killed sink leaves a true count.
		if s.file, err = os.OpenFile(cfg.Report, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644); err != nil {
			return nil, fmt.Errorf("sink report: %w", err)
		}
	}
	s.srv = smtp.NewServer(smtp.BackendFunc(func(*smtp.Conn) (smtp.Session, error) { return &sinkSession{s: s}, nil }))
	s.srv.Domain = "sink.loadgen.test"
	s.srv.EnableSMTPUTF8 = true
	s.srv.MaxMessageBytes = 64 << 20
	s.srv.MaxLineLength = 1 << 20
	s.srv.ReadTimeout = time.Minute
	s.srv.WriteTimeout = time.Minute
	s.srv.ErrorLog = logAdapter{cfg.Log}
	if s.l, err = net.Listen("tcp", cfg.Listen); err != nil {
		if s.file != nil {
			s.file.Close()
		}
		return nil, fmt.Errorf("sink listen: %w", err)
	}
	return s, nil
}

// Addr is the bound address.
func (s *Sink) Addr() string { return s.l.Addr().String() }

// Run serves until ctx is cancelled, then stops accepting and lets
// transactions in flight finish within the grace period.
func (s *Sink) Run(ctx context.Context) error {
	errc := make(chan error, 1)
	go func() { errc <- s.srv.Serve(s.l) }()
	select {
	case err := <-errc:
		s.closeFile()
		return fmt.Errorf("sink: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), s.cfg.Grace)
	defer cancel()
	// An expired grace leaves sessions open (go-smtp's Close does nothing
	// once Shutdown has begun); closeFile makes them refuse their message.
	err := s.srv.Shutdown(sctx)
	<-errc
	s.closeFile()
	if err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("sink shutdown: %w", err)
	}
	return nil
}

func (s *Sink) closeFile() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stopped = true
	if s.file != nil {
		s.file.Close()
		s.file = nil
	}
}

// Counts returns a copy of the per-id counts and the total accepted.
func (s *Sink) Counts() (map[string]int, int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]int, len(s.counts))
	for k, v := range s.counts {
		out[k] = v
	}
	return out, s.total
}

func (s *Sink) accept(id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopped {
		return &smtp.SMTPError{Code: 421, EnhancedCode: smtp.EnhancedCode{4, 3, 2}, Message: "sink stopped"}
	}
	if s.file != nil {
		line := id
		if line == "" {
			line = "-"
		}
		if _, err := s.file.WriteString(line + "\n"); err != nil {
			// Not recorded means not accepted: the sender retries.
			s.cfg.Log.Error("sink report write failed", "err", err)
			return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "sink cannot record the message"}
		}
	}
	s.counts[id]++
	s.total++
	return nil
}

// ReadReport reads a sink report file into per-id counts ("" for messages
// without an id) and the total.
func ReadReport(path string) (map[string]int, int, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, 0, fmt.Errorf("sink report: %w", err)
	}
	defer f.Close()
	counts := make(map[string]int)
	total := 0
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		id := sc.Text()
		if id == "" {
			continue // blank lines carry nothing (a hand-edited report)
		}
		if id == "-" {
			id = ""
		}
		counts[id]++
		total++
	}
	if err := sc.Err(); err != nil {
		return nil, 0, fmt.Errorf("sink report %s: %w", path, err)
	}
	return counts, total, nil
}

type sinkSession struct{ s *Sink }

func (ss *sinkSession) Reset()                               {}
func (ss *sinkSession) Logout() error                        { return nil }
func (ss *sinkSession) Mail(string, *smtp.MailOptions) error { return nil }
func (ss *sinkSession) Rcpt(string, *smtp.RcptOptions) error { return nil }
func (ss *sinkSession) Data(r io.Reader) error {
	var b bytes.Buffer
	if _, err := io.Copy(&b, r); err != nil {
		// A body cut short (the relaying node died) is no message: go-smtp
		// answers the error and nothing is counted.
		return err
	}
	return ss.s.accept(HeaderID(b.Bytes()))
}

type logAdapter struct{ log *slog.Logger }

func (a logAdapter) Printf(format string, v ...any) {
	a.log.Debug("smtp", "detail", fmt.Sprintf(format, v...))
}
func (a logAdapter) Println(v ...any) { a.log.Debug("smtp", "detail", fmt.Sprint(v...)) }
