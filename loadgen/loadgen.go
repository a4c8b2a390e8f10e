// Package loadgen sends mail to mxgrid nodes the way a real MTA would and
// counts what arrives at the other end.
//
// The sender (Run) keeps N SMTP sessions busy across one or several nodes.
// Like Postfix's queue manager it retries a 4xx later and on another node,
// moves on to the next node when one does not answer, and records every
// message's attempts and final outcome. The sink (Sink) is the customer's
// server: it counts the X-Loadgen-Id of every message it accepts, so a test
// can prove that nothing the sender was told "250" about was lost, and count
// duplicates.
package loadgen

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/textproto"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Config describes one load run.
type Config struct {
	// Targets are the nodes' SMTP addresses (host:port), like a domain's
	// equal-priority MX records.
	Targets []string
	// Sessions is the number of concurrent SMTP sessions.
	Sessions int
	// Messages is how many distinct messages to deliver.
	Messages int
	// Size is the synthetic message size in bytes; ignored with Corpus.
	Size int
	// Corpus, when set, is a directory of messages sent in turn, each with
	// an id header added.
	Corpus string
	// From and To are the envelope (To also in the synthetic header).
	From, To string
	// HELO is the name we introduce ourselves with.
	HELO string
	// RetryDelay is the wait after a first 4xx; it doubles per 4xx up to
	// MaxRetryDelay. Real MTAs wait minutes; load runs want seconds.
	RetryDelay, MaxRetryDelay time.Duration
	// NodeDownFor is how long a node that refused a connection is skipped.
	NodeDownFor time.Duration
	// IOTimeout bounds each read or write on a session.
	IOTimeout time.Duration
	// RunID prefixes every message id; random when empty.
	RunID string
	// OnProgress, when set, is called (from a session goroutine; keep it
	// short) each time a message reaches its final outcome, with the
	// number of final ones so far. Chaos tests time their faults with it.
	OnProgress func(final int)
	Log        *slog.Logger
}

// DefaultConfig is 50 sessions of 5 KB synthetic mail.
func DefaultConfig() Config {
	return Config{
		Sessions: 50, Messages: 1000, Size: 5 << 10,
		From: "loadgen@sender.test", To: "bob@example.org", HELO: "loadgen.sender.test",
		RetryDelay: 250 * time.Millisecond, MaxRetryDelay: 2 * time.Second,
		NodeDownFor: time.Second, IOTimeout: 60 * time.Second,
	}
}

func (c *Config) validate() error {
	switch {
	case len(c.Targets) == 0:
		return errors.New("no target nodes")
	case c.Sessions < 1:
		return errors.New("sessions: must be at least 1")
	case c.Messages < 1:
		return errors.New("messages: must be at least 1")
	case c.Corpus == "" && c.Size < 1:
		return errors.New("size: must be at least 1")
	case c.RetryDelay <= 0 || c.MaxRetryDelay < c.RetryDelay:
		return errors.New("retry delays: need 0 < retry <= max retry")
	case c.IOTimeout <= 0 || c.NodeDownFor < 0:
		return errors.New("timeouts: must be positive")
	case c.From == "" || c.To == "":
		return errors.New("from and to: must be set")
	}
	for _, t := range c.Targets {
		if _, _, err := net.SplitHostPort(t); err != nil {
			return fmt.Errorf("target %q: %w", t, err)
		}
	}
	return nil
}

// Outcome is where a message ended.
type Outcome int

const (
	// Pending: still not final when the run's context ended (4xx until
	// the end, or never tried).
	Pending Outcome = iota
	// Delivered: a node answered 250 at the end of DATA.
	Delivered
	// Rejected: a node answered 5xx; a real MTA would bounce it.
	Rejected
)

func (o Outcome) String() string {
	return [...]string{"pending", "delivered", "rejected"}[o]
}

// Record is one message's history.
type Record struct {
	ID       string
	Outcome  Outcome
	Attempts int
	// Tempfails counts 4xx replies (and connections lost before the end
	// of DATA): the message was certainly not delivered then.
	Tempfails int
	// Uncertain counts attempts where the whole message was sent and the
	// connection died before the reply: the node may have relayed it, so
	// the retry may be a duplicate (RFC 5321 §6.1 accepts that risk).
	Uncertain int
	// Reply is the last reply, "code text".
	Reply string
	// Node is the target of the last attempt.
	Node string
	// Latency is from the first attempt's start to the final reply.
	Latency time.Duration

	first    time.Time
	lastNode int
}

// Result is a whole run.
type Result struct {
	Records []Record
	Elapsed time.Duration
	// TxLatency holds the duration (MAIL to final reply) of every
	// transaction that ended in 250.
	TxLatency []time.Duration
	// Replies counts every reply or failure seen, by "code x.y.z" or
	// "connect error" / "connection lost".
	Replies map[string]int
}

// Run sends cfg.Messages messages and returns when every one is final or
// ctx ends; messages still pending then are reported as Pending.
func Run(ctx context.Context, cfg Config) (*Result, error) {
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("loadgen: %w", err)
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	var templates []template
	if cfg.Corpus != "" {
		var err error
		if templates, err = loadCorpus(cfg.Corpus); err != nil {
			return nil, fmt.Errorf("loadgen: %w", err)
		}
	}
	if cfg.RunID == "" {
		var b [4]byte
		rand.Read(b[:])
		cfg.RunID = hex.EncodeToString(b[:])
	}
	r := &run{
		cfg:       cfg,
		templates: templates,
		records:   make([]Record, cfg.Messages),
		ready:     make(chan int, cfg.Messages),
		allFinal:  make(chan struct{}),
		down:      make([]time.Time, len(cfg.Targets)),
		replies:   make(map[string]int),
		remaining: cfg.Messages,
	}
	for i := range r.records {
		r.records[i].ID = fmt.Sprintf("%s-%06d", cfg.RunID, i)
		r.records[i].lastNode = -1
		r.ready <- i
	}
	start := time.Now()
	var wg sync.WaitGroup
	for w := range cfg.Sessions {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r.worker(ctx, w%len(cfg.Targets))
		}()
	}
	wg.Wait()
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, t := range r.timers {
		t.Stop()
	}
	return &Result{Records: r.records, Elapsed: time.Since(start), TxLatency: r.txLatency, Replies: r.replies}, nil
}

type run struct {
	cfg       Config
	templates []template
	ready     chan int
	allFinal  chan struct{}

	mu        sync.Mutex
	records   []Record
	remaining int
	down      []time.Time
	timers    []*time.Timer
	txLatency []time.Duration
	replies   map[string]int
}

// attempt is what one try at one message produced.
type attempt struct {
	code    int    // 0 when there was no reply
	reply   string // "code x.y.z text" or an error description
	dotSent bool   // the whole message went out
	err     error  // I/O error: the session is unusable
	took    time.Duration
}

func (r *run) worker(ctx context.Context, home int) {
	var s *session
	defer func() {
		if s != nil {
			s.quit()
		}
	}()
	for {
		var idx int
		select {
		case <-ctx.Done():
			return
		case <-r.allFinal:
			return
		case idx = <-r.ready:
		}
		node := r.pickNode(idx, home)
		if s != nil && s.node != node {
			s.quit()
			s = nil
		}
		if s == nil {
			var err error
			if s, err = r.connect(ctx, node); err != nil {
				r.finish(idx, node, attempt{reply: "connect error", err: err}, true)
				continue
			}
		}
		a := s.send(r.message(idx))
		r.finish(idx, s.node, a, false)
		if a.err != nil {
			s.close()
			s = nil
		}
	}
}

// pickNode prefers the next node after the one that failed last (so a
// retry goes elsewhere, as with equal-priority MX records), then the
// session's home node, skipping nodes recently found down.
func (r *run) pickNode(idx, home int) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := len(r.cfg.Targets)
	want := home
	if last := r.records[idx].lastNode; last >= 0 {
		want = (last + 1) % n
	}
	now := time.Now()
	for i := range n {
		k := (want + i) % n
		if now.After(r.down[k]) {
			return k
		}
	}
	return want
}

// connect dials preferred, then the others in turn, like an MTA walking
// its MX list; each node that does not answer is skipped for a while.
func (r *run) connect(ctx context.Context, preferred int) (*session, error) {
	n := len(r.cfg.Targets)
	var errs []error
	for i := range n {
		k := (preferred + i) % n
		r.mu.Lock()
		skip := i > 0 && time.Now().Before(r.down[k])
		r.mu.Unlock()
		if skip {
			continue
		}
		s, err := dialSession(ctx, r.cfg, k)
		if err == nil {
			return s, nil
		}
		errs = append(errs, err)
		r.mu.Lock()
		r.down[k] = time.Now().Add(r.cfg.NodeDownFor)
		r.mu.Unlock()
	}
	return nil, fmt.Errorf("no node answered: %w", errors.Join(errs...))
}

func (r *run) message(idx int) (string, template) {
	id := r.records[idx].ID // set before Run starts the workers, never written after
	if len(r.templates) > 0 {
		return id, r.templates[idx%len(r.templates)]
	}
	return id, synthetic(r.cfg.Size, id, uint64(idx), r.cfg.From, r.cfg.To)
}

// finish books an attempt and either makes the message final or schedules
// its retry: at once on another node when the node went away, after a
// growing delay when a node answered 4xx.
func (r *run) finish(idx, node int, a attempt, connectFailed bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	rec := &r.records[idx]
	now := time.Now()
	if rec.first.IsZero() {
		rec.first = now.Add(-a.took)
	}
	rec.Attempts++
	rec.lastNode = node
	rec.Node = r.cfg.Targets[node]
	rec.Reply = a.reply
	key := a.reply
	if a.code != 0 {
		key = replyKey(a.reply)
	} else if !connectFailed {
		key = "connection lost"
	}
	r.replies[key]++
	final := false
	var delay time.Duration
	switch {
	case a.code >= 200 && a.code < 300:
		rec.Outcome, final = Delivered, true
		r.txLatency = append(r.txLatency, a.took)
	case a.code >= 500:
		rec.Outcome, final = Rejected, true
	case a.code == 0 && a.dotSent:
		rec.Uncertain++
	case a.code == 0:
		rec.Tempfails++
		if connectFailed {
			delay = r.cfg.RetryDelay
		}
	default:
		rec.Tempfails++
		delay = r.cfg.RetryDelay << min(rec.Tempfails-1, 16)
		delay = min(delay, r.cfg.MaxRetryDelay)
	}
	if final {
		rec.Latency = now.Sub(rec.first)
		r.remaining--
		if r.cfg.OnProgress != nil {
			r.cfg.OnProgress(len(r.records) - r.remaining)
		}
		if r.remaining == 0 {
			close(r.allFinal)
		}
		return
	}
	if delay == 0 {
		r.ready <- idx // capacity Messages: never blocks
		return
	}
	r.timers = append(r.timers, time.AfterFunc(delay, func() { r.ready <- idx }))
}

// replyKey is "code x.y.z" from "code x.y.z text", for counting.
func replyKey(reply string) string {
	f := strings.Fields(reply)
	if len(f) >= 2 && strings.Count(f[1], ".") == 2 {
		return f[0] + " " + f[1]
	}
	if len(f) >= 1 {
		return f[0]
	}
	return reply
}

// session is one SMTP connection to one node.
type session struct {
	cfg  Config
	node int
	conn net.Conn
	tp   *textproto.Conn
	bw   *bufio.Writer
}

func dialSession(ctx context.Context, cfg Config, node int) (*session, error) {
	d := net.Dialer{Timeout: 5 * time.Second}
	conn, err := d.DialContext(ctx, "tcp", cfg.Targets[node])
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", cfg.Targets[node], err)
	}
	s := &session{cfg: cfg, node: node, conn: conn, tp: textproto.NewConn(conn), bw: bufio.NewWriterSize(conn, 16<<10)}
	conn.SetDeadline(time.Now().Add(cfg.IOTimeout))
	if _, _, err := s.tp.ReadResponse(220); err != nil {
		conn.Close()
		return nil, fmt.Errorf("greeting from %s: %w", cfg.Targets[node], err)
	}
	if _, _, err := s.cmd("EHLO " + cfg.HELO); err != nil {
		conn.Close()
		return nil, fmt.Errorf("EHLO to %s: %w", cfg.Targets[node], err)
	}
	return s, nil
}

// cmd sends one line and reads the reply; err is an I/O error only, any
// reply code is returned as it came.
func (s *session) cmd(line string) (int, string, error) {
	s.conn.SetDeadline(time.Now().Add(s.cfg.IOTimeout))
	if _, err := s.bw.WriteString(line + "\r\n"); err != nil {
		return 0, "", err
	}
	if err := s.bw.Flush(); err != nil {
		return 0, "", err
	}
	return s.tp.ReadResponse(0)
}

// send runs one transaction. MAIL, RCPT and DATA go out in one write
// (PIPELINING, RFC 2920), as Postfix sends them; the replies come back in
// order.
func (s *session) send(id string, body template) attempt {
	start := time.Now()
	a := s.transact(id, body)
	a.took = time.Since(start)
	return a
}

func (s *session) transact(id string, body template) attempt {
	s.conn.SetDeadline(time.Now().Add(s.cfg.IOTimeout))
	fmt.Fprintf(s.bw, "MAIL FROM:<%s>\r\nRCPT TO:<%s>\r\nDATA\r\n", s.cfg.From, s.cfg.To)
	if err := s.bw.Flush(); err != nil {
		return attempt{err: err, reply: "write: " + err.Error()}
	}
	for _, stage := range []string{"MAIL", "RCPT"} {
		code, msg, err := s.tp.ReadResponse(0)
		if code == 0 {
			return attempt{err: err, reply: stage + ": " + errText(err)}
		}
		if code >= 300 {
			// The DATA that followed is answered 5xx (no valid recipient)
			// or 503; read it so the session stays in step, then RSET.
			s.tp.ReadResponse(0)
			if _, _, err := s.cmd("RSET"); err != nil {
				return attempt{code: code, reply: reply(code, msg), err: err}
			}
			return attempt{code: code, reply: reply(code, msg)}
		}
	}
	code, msg, err := s.tp.ReadResponse(0)
	if code == 0 {
		return attempt{err: err, reply: "DATA: " + errText(err)}
	}
	if code != 354 {
		return attempt{code: code, reply: reply(code, msg)}
	}
	fmt.Fprintf(s.bw, "%s: %s\r\n", IDHeader, id)
	s.bw.Write(body)
	s.bw.WriteString(".\r\n")
	if err := s.bw.Flush(); err != nil {
		// Some of the message may have been sent, but not its end: the
		// node cannot have relayed it.
		return attempt{err: err, reply: "write body: " + err.Error()}
	}
	code, msg, err = s.tp.ReadResponse(0)
	if code == 0 {
		return attempt{err: err, dotSent: true, reply: "end of DATA: " + errText(err)}
	}
	return attempt{code: code, reply: reply(code, msg), dotSent: true}
}

func reply(code int, msg string) string {
	return strconv.Itoa(code) + " " + strings.ReplaceAll(msg, "\n", " / ")
}

func errText(err error) string {
	if err == nil {
		return "no reply"
	}
	return err.Error()
}

func (s *session) quit() {
	s.conn.SetDeadline(time.Now().Add(2 * time.Second))
	s.bw.WriteString("QUIT\r\n")
	if s.bw.Flush() == nil {
		s.tp.ReadResponse(221)
	}
	s.conn.Close()
}

func (s *session) close() { s.conn.Close() }
