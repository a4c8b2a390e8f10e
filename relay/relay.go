// Package relay delivers a message to the customer's own mail server during
// the inbound SMTP session, so the sender hears the customer's answer: 250
// only after the downstream 250, the downstream's own 4xx/5xx otherwise, and
// 451 4.4.1 when the downstream cannot be reached. No node ever holds a
// message.
//
// A Transaction mirrors the inbound one: it is opened at the first accepted
// recipient, each recipient is forwarded as the sender gives it (so a
// recipient the customer's server refuses is refused to the sender at RCPT
// time, and no recipient is accepted that cannot be delivered), and DATA is
// streamed once the scan has passed.
package relay

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/emersion/go-smtp"
	"github.com/mxgrid/mxgrid/mailaddr"
	"github.com/mxgrid/mxgrid/netguard"
	"github.com/mxgrid/mxgrid/replytext"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// TLSMode is how a route uses STARTTLS.
type TLSMode string

const (
	// TLSNone never starts TLS (a customer server on a private link).
	TLSNone TLSMode = "none"
	// TLSOpportunistic uses STARTTLS when offered, without verifying the
	// certificate, like Postfix's "may" level: most customer servers have
	// self-signed certificates, and encryption without authentication still
	// defeats passive capture.
	TLSOpportunistic TLSMode = "opportunistic"
	// TLSRequired refuses to send in clear text (Postfix's "encrypt"):
	// no STARTTLS or a failed handshake is a temporary failure.
	TLSRequired TLSMode = "required"
)

// Route is where a domain's mail goes.
type Route struct {
	Addr string // host:port
	TLS  TLSMode
	// Trusted routes come from the operator's static configuration: they
	// may reach any network, and only the loop checks apply. Tenant routes
	// (from the store) may not reach non-public networks unless
	// allowed_route_networks lists them.
	Trusted bool
}

// Config is the `relay:` section.
type Config struct {
	ConnectTimeout time.Duration `yaml:"connect_timeout"`
	// CommandTimeout bounds each downstream command's reply. Shorter than
	// RFC 5321's 5 minutes because the sender is waiting on the other side.
	CommandTimeout time.Duration `yaml:"command_timeout"`
	// DataTimeout bounds the message's body and the downstream's final
	// reply after it, together.
	DataTimeout time.Duration `yaml:"data_timeout"`
	// AllowedRouteNetworks are CIDR prefixes tenant routes may reach even
	// though they are loopback, private, link-local and so on (a customer
	// server on the operator's private network).
	AllowedRouteNetworks []string `yaml:"allowed_route_networks"`
	// Cache keeps downstream sessions open between transactions.
	Cache CacheConfig `yaml:"cache"`
	// ReleaseAfterIdle hands a transaction's session back (to the cache,
	// or closed) once the sender has left it idle this long after its
	// recipients were accepted; the sender's next step sends MAIL and
	// every accepted recipient again. Without it, one client allowed 50
	// connections held 50 sessions on its customer's server by accepting
	// a recipient and idling in each, and a customer server limiting
	// connections per client (Postfix: 50) answered everyone else's mail
	// 421 meanwhile. A body read slowly, and the scan, are idle time too.
	ReleaseAfterIdle time.Duration `yaml:"release_after_idle"`
}

// DefaultConfig returns timeouts that keep the sender's own timeouts
// (RFC 5321 §4.5.3.2: 5 min per command, 10 min after DATA) out of reach.
func DefaultConfig() Config {
	return Config{ConnectTimeout: 10 * time.Second, CommandTimeout: 60 * time.Second, DataTimeout: 5 * time.Minute, Cache: DefaultCacheConfig(), ReleaseAfterIdle: 10 * time.Second}
}

// Validate checks the section; messages name the key.
func (c Config) Validate() error {
	switch {
	case c.ConnectTimeout <= 0:
		return errors.New("connect_timeout: must be positive")
	case c.CommandTimeout <= 0:
		return errors.New("command_timeout: must be positive")
	case c.DataTimeout <= 0:
		return errors.New("data_timeout: must be positive")
	case c.ReleaseAfterIdle <= 0 || c.ReleaseAfterIdle > maxIdleTimeout:
		return errors.New("release_after_idle: must be positive and at most 5m")
	}
	if _, err := netguard.ParseAllowedNetworks(c.AllowedRouteNetworks); err != nil {
		return fmt.Errorf("allowed_route_networks%w", err)
	}
	if err := c.Cache.Validate(); err != nil {
		return fmt.Errorf("cache.%w", err)
	}
	return nil
}

// ErrorKind says what went wrong, for message tracking and the deferral
// view (the code says only what the sender hears).
type ErrorKind int

const (
	// KindReplied: the customer's server answered with this reply.
	KindReplied ErrorKind = iota
	// KindUnreachable: no connection (refused, no route, TLS failed, the
	// route not allowed at connect).
	KindUnreachable
	// KindLost: the connection broke or timed out mid-transaction.
	KindLost
	// KindRefusedLocally: we would not relay (a loop, a feature the
	// customer's server lacks).
	KindRefusedLocally
)

// Error is a delivery failure with the reply the sender should get.
type Error struct {
	Kind     ErrorKind
	Code     int
	Enhanced [3]int
	// Message is safe to show the sender.
	Message string
	// BeforeRcpt: the failure came before the customer's server answered
	// the recipient (no connection, MAIL refused), or it answered that
	// its transaction, holding recipients already, takes no more
	// (recipientLimit), so it says nothing about the recipient.
	BeforeRcpt bool
	// Err is the underlying cause, for logs only.
	Err error
	// MaybeTaken: the message's end was sent and the session was lost
	// before a reply, so the customer's server may have taken it. The
	// sender retries anyway (RFC 5321 §6.1 accepts the duplicate); a
	// quarantine release must not.
	MaybeTaken bool
}

// Error is one printable line: the cause quotes the customer's server,
// and the text reaches more than logs (a refused release's answer in the
// panel and the API), where a bidirectional override, ESC or a reply's
// line breaks must not act.
func (e *Error) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("%d %d.%d.%d %s: %s", e.Code, e.Enhanced[0], e.Enhanced[1], e.Enhanced[2], e.Message, replytext.Printable(e.Err.Error()))
	}
	return fmt.Sprintf("%d %d.%d.%d %s", e.Code, e.Enhanced[0], e.Enhanced[1], e.Enhanced[2], e.Message)
}

func (e *Error) Unwrap() error { return e.Err }

// Temporary reports whether the sender should retry.
func (e *Error) Temporary() bool { return e.Code >= 400 && e.Code < 500 }

// Relay opens downstream transactions. It is safe for concurrent use.
type Relay struct {
	cfg      Config
	hostname string
	guard    *netguard.Guard
	log      *slog.Logger

	duration *prometheus.HistogramVec
	results  *prometheus.CounterVec
	refused  *prometheus.CounterVec
	loops    *prometheus.CounterVec
	cacheM   cacheMetrics
	// idleReleases counts sessions parked for an idle sender.
	idleReleases prometheus.Counter
	// cache is nil when relay.cache.enabled is false.
	cache *cache
}

// New returns a Relay that introduces itself as hostname and connects
// only where guard allows.
func New(cfg Config, hostname string, guard *netguard.Guard, log *slog.Logger, reg prometheus.Registerer) *Relay {
	f := promauto.With(reg)
	r := &Relay{
		cfg:      cfg,
		hostname: hostname,
		guard:    guard,
		log:      log,
		refused: f.NewCounterVec(prometheus.CounterOpts{
			Name: "mxgrid_relay_refused_dials_total",
			Help: "Tenant routes refused at connect time because they lead to a network tenants may not reach, by address class (loopback, private, link-local, ..., cluster: an address of this host or a cluster member).",
		}, []string{"class"}),
		loops: f.NewCounterVec(prometheus.CounterOpts{
			Name: "mxgrid_relay_loops_total",
			Help: "Relays refused with 554 5.4.6 because the route leads back to the cluster, by how it was detected (address, greeting, ehlo).",
		}, []string{"detected_by"}),
		duration: f.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "mxgrid_relay_duration_seconds",
			Help:    "Time from the DATA hand-off to the downstream's final reply, by outcome (delivered, tempfail, permfail).",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, []string{"outcome"}),
		results: f.NewCounterVec(prometheus.CounterOpts{
			Name: "mxgrid_relay_results_total",
			Help: "Downstream results by stage (connect, mail, rcpt, data) and outcome (ok, tempfail, permfail; refused_8bit: an 8-bit message not sent to a server without 8BITMIME, or one with an 8-bit header field sent with SMTPUTF8 to a server without SMTPUTF8).",
		}, []string{"stage", "outcome"}),
		cacheM: newCacheMetrics(f),
		idleReleases: f.NewCounter(prometheus.CounterOpts{
			Name: "mxgrid_relay_idle_releases_total",
			Help: "Downstream sessions handed back (cached or closed) because the sender left its accepted recipients idle for relay.release_after_idle; its next step sends MAIL and the recipients again.",
		}),
	}
	if cfg.Cache.Enabled {
		r.cache = newCache(cfg.Cache, r.cacheM)
	}
	return r
}

// ours reports whether name, as a downstream introduces itself, is this
// node's host name or a cluster member's.
func (r *Relay) ours(name string) bool { return r.guard.IsClusterName(name, r.hostname) }

// Run expires idle cached sessions until ctx ends, then closes every one
// left: the node runs it as one of its parts and stops it after SMTP, so
// no transaction is in flight by then (one handed back later is closed).
func (r *Relay) Run(ctx context.Context) error {
	if r.cache != nil {
		r.cache.run(ctx)
	}
	return nil
}

// MailOptions carries the sender's MAIL parameters that matter downstream.
type MailOptions struct {
	Size int64
	// Slack is the part of Size that estimates what we add to the
	// message (our header fields), more than they usually take: a server
	// whose SIZE limit Size passes by no more than Slack is declared its
	// limit instead (sendMail).
	Slack int64
	UTF8  bool
}

// Transaction is one downstream SMTP transaction. It is not safe for
// concurrent use: the inbound session drives it step by step.
type Transaction struct {
	r *Relay
	// ctx is the inbound transaction's: it bounds every step, and a
	// session taken on after a stale one must be bound by it too.
	ctx   context.Context
	route Route
	from  mailaddr.Address
	opts  MailOptions
	// withoutUTF8: the sender asked for SMTPUTF8 (opts.UTF8), the
	// session's server does not offer it, and the transaction goes on
	// without it while nothing in it needs it (ASCII local parts, a
	// message whose header fields are 7-bit). It is the current
	// session's: a new connection may reach a server that offers other
	// extensions.
	withoutUTF8 bool
	// mailFrom is from as the current session's MAIL writes it: in
	// A-labels while withoutUTF8 (fitUTF8 sets it).
	mailFrom mailaddr.Address
	// s is nil after a stale cached session was dropped and no new
	// connection could be made, and while the transaction is parked.
	s    *session
	stop func() bool
	// tls: the last session the transaction used started TLS.
	tls bool
	// parked: the session was handed back while the sender idled
	// (ReleaseAfterIdle); the sender's next step sends the transaction
	// again.
	parked bool
	// idle parks the transaction when it fires. armed: it runs between
	// the sender's steps. A step that finds it fired waits on idleDone
	// for park to finish, so park never runs beside a step.
	idle     *time.Timer
	armed    bool
	idleDone sync.WaitGroup
	// mailAccepted: the downstream took MAIL, so RCPT goes alone.
	mailAccepted bool
	// accepted are the recipients the downstream took, for a replay;
	// first is its array while there is one, which is nearly always.
	accepted []mailaddr.Address
	first    [1]mailaddr.Address
	// reusable is false once the session's state is unknown: a network
	// error or timeout, a 421, or DATA begun without its final reply.
	reusable bool
	closed   bool
	// broken is why the transaction cannot go on: a RCPT that timed out,
	// found the connection broken or got 421. A reply may still be on its
	// way, so the connection is out of step: the next command would read
	// it as its own (a refused recipient answered 250, that refusal read
	// as the reply to DATA). Every later step answers this instead.
	broken *Error
	// full is the customer's server's answer that the transaction takes
	// no more recipients (recipientLimit): every later recipient gets it
	// unsent.
	full *Error
}

// Begin readies a transaction to route: an idle cached session, or a new
// connection (greeting, EHLO, TLS per the route). MAIL FROM goes with the
// first recipient, in one write when the server offers PIPELINING (RFC
// 2920), so a cached session costs the sender no round trip before its
// RCPT. ctx bounds the whole transaction: cancelling it closes the
// connection, which unblocks any command in flight.
//
// MAIL FROM is written from the parsed address (quoted again where its
// local part needs it) and carries only the parameters we decide: BODY
// when the server offers 8BITMIME, SIZE and SMTPUTF8. Nothing the sender
// typed reaches the customer's server as protocol text. Whether the
// message is 8-bit is known only at Data, which refuses it then.
func (r *Relay) Begin(ctx context.Context, route Route, from mailaddr.Address, opts MailOptions) (*Transaction, error) {
	// mailFrom is fitUTF8's before every MAIL; set here too, so that no
	// MAIL can ever go as the null sender <> for want of it.
	t := &Transaction{r: r, ctx: ctx, route: route, from: from, mailFrom: from, opts: opts}
	t.accepted = t.first[:0]
	if s := r.cached(cacheKey{route: route, helo: r.hostname}); s != nil {
		t.use(s)
	} else {
		r.cacheM.misses.Inc()
		if err := t.dial(); err != nil {
			return nil, err
		}
	}
	if err := t.fitUTF8(); err != nil {
		t.Close()
		return nil, err
	}
	return t, nil
}

// fitUTF8 decides, for the current session, whether MAIL carries the
// SMTPUTF8 the sender asked for, and refuses what cannot go without it:
// the sender, to, and the recipients a replay sends again. It is asked
// before every MAIL: decided once at Begin, a cached session replaced by
// a new connection to a server without SMTPUTF8 had MAIL ask for it
// anyway (go-smtp's client refuses to write that, which read as a lost
// connection: 451 for mail that could go).
func (t *Transaction) fitUTF8(to ...mailaddr.Address) *Error {
	t.mailFrom, t.withoutUTF8 = t.from, false
	if !t.opts.UTF8 {
		return nil
	}
	ok, _ := t.s.client.Extension("SMTPUTF8")
	if ok {
		return nil
	}
	// RFC 6531 §3.4 forbids only what needs SMTPUTF8: many senders ask
	// for it on every message, and mail that needs it nowhere goes
	// without it, as Postfix sends it: an ASCII local part at a UTF-8
	// domain goes with the domain's A-labels.
	t.withoutUTF8 = true
	from, e := t.onWire(t.from)
	if e != nil {
		return e
	}
	for _, a := range slices.Concat(to, t.accepted) {
		if _, e := t.onWire(a); e != nil {
			return e
		}
	}
	t.mailFrom = from
	return nil
}

// onWire is a as the current session's MAIL or RCPT writes it: as it
// came, or, going without SMTPUTF8, with its domain in A-labels
// (mailaddr.ALabels, built from the parsed domain: no sender's text is
// pasted). A local part that is not ASCII, or a domain without a valid
// A-label, needs the SMTPUTF8 the server lacks.
func (t *Transaction) onWire(a mailaddr.Address) (mailaddr.Address, *Error) {
	if !t.withoutUTF8 {
		return a, nil
	}
	w, err := a.ALabels()
	if err != nil {
		e := errNeedsSMTPUTF8()
		e.Err = err
		return a, e
	}
	return w, nil
}

// errNeedsSMTPUTF8 refuses what needs SMTPUTF8 for a server without it
// (RFC 6531 §3.2): a relay cannot downgrade it, so refusing is the only
// honest answer.
func errNeedsSMTPUTF8() *Error {
	return &Error{Kind: KindRefusedLocally, Code: 550, Enhanced: [3]int{5, 6, 7}, Message: "the customer's server does not support SMTPUTF8"}
}

func (r *Relay) cached(key cacheKey) *session {
	if r.cache == nil {
		return nil
	}
	return r.cache.get(key)
}

// use makes s the transaction's session, closed if ctx ends.
func (t *Transaction) use(s *session) {
	t.s = s
	t.stop = context.AfterFunc(t.ctx, s.closeConn)
	t.reusable = true
	t.tls = s.tls
	s.uses++
}

// dial gives the transaction a new connection.
func (t *Transaction) dial() error {
	s, err := t.r.connect(t.ctx, t.route)
	if err != nil {
		t.r.results.WithLabelValues("connect", "tempfail").Inc()
		return err
	}
	s.key = cacheKey{route: t.route, helo: t.r.hostname}
	t.use(s)
	return nil
}

// mail sends MAIL FROM with the first recipient. A cached session that
// fails it is dropped and the pair sent once more on a new connection:
// nothing was accepted on the old one, so nothing is delivered twice, and
// the sender hears the new try's answer, as if the cache had been empty.
// It returns the RCPT's own error, or as err why there is no transaction
// (no connection, MAIL refused).
func (t *Transaction) mail(to mailaddr.Address) (rcptErr error, err *Error) {
	if t.s == nil {
		if err := t.dial(); err != nil {
			return nil, t.beforeRcpt(err)
		}
	}
	if e := t.fitUTF8(to); e != nil {
		return nil, e
	}
	mailErr, rcptErr := t.sendMail(to)
	if mailErr != nil && t.s.uses > 1 {
		e := t.downstream("MAIL", mailErr)
		t.r.cacheM.stale.Inc()
		t.r.log.Debug("cached session failed before MAIL, reconnecting", "route", t.route.Addr, "uses", t.s.uses, "err", mailErr)
		// Whatever its state, it is not trusted again.
		t.reusable = false
		t.release()
		if t.ctx.Err() != nil {
			return nil, t.beforeRcpt(e)
		}
		if err := t.dial(); err != nil {
			return nil, t.beforeRcpt(err)
		}
		if e := t.fitUTF8(to); e != nil {
			return nil, e
		}
		mailErr, rcptErr = t.sendMail(to)
	}
	if mailErr != nil {
		e := t.downstream("MAIL", mailErr)
		t.r.results.WithLabelValues("mail", outcome(e)).Inc()
		if !t.reusable {
			// Out of step or closing: the sender's next recipient
			// begins again on a new connection, not on this one.
			t.release()
		}
		return nil, t.beforeRcpt(e)
	}
	if t.s.uses > 1 {
		t.r.cacheM.hits.Inc()
	}
	t.mailAccepted = true
	return rcptErr, nil
}

// sendMail sends MAIL with the first recipient, after RSET when the
// session's last transaction was left open: the RSET travels with them
// rather than delaying the reply to the sender who left it open.
func (t *Transaction) sendMail(to mailaddr.Address) (mailErr, rcptErr error) {
	reset := t.s.inTransaction
	t.s.inTransaction = true
	// fitUTF8 has checked to and set mailFrom for this session.
	to, _ = t.onWire(to)
	return t.s.client.MailRcpt(reset, t.mailFrom.String(), &smtp.MailOptions{Size: t.declaredSize(), UTF8: t.opts.UTF8 && !t.withoutUTF8}, to.String(), nil)
}

// declaredSize is the SIZE MAIL declares (RFC 1870): the sender's with our
// slack, but no more than the session's server takes when the sender's own
// size fits. Declared over it, a message the server would have taken (our
// fields take less than the slack) was refused 552 for good at MAIL; if it
// does not fit after all, the server refuses it at the end of the data.
func (t *Transaction) declaredSize() int64 {
	size := t.opts.Size
	if t.opts.Slack <= 0 {
		return size
	}
	ok, param := t.s.client.Extension("SIZE")
	limit, err := strconv.ParseInt(param, 10, 64)
	if !ok || err != nil || limit <= 0 || size <= limit {
		return size
	}
	return max(limit, size-t.opts.Slack)
}

// beforeRcpt marks a failure that came before the recipient was answered.
func (t *Transaction) beforeRcpt(err error) *Error {
	var e *Error
	if !errors.As(err, &e) {
		e = unreachable(t.route, err)
	}
	e.BeforeRcpt = true
	return e
}

// connect opens the session per the route's TLS mode. Like Postfix's "may"
// level, opportunistic TLS falls back to a fresh clear-text connection when
// STARTTLS fails (errStartTLS): refusing would block mail to servers with
// broken TLS, and the fallback is no worse than TLSNone.
func (r *Relay) connect(ctx context.Context, route Route) (*session, error) {
	t, err := r.session(ctx, route, route.TLS != TLSNone)
	if route.TLS != TLSOpportunistic || !errors.Is(err, errStartTLS) {
		return t, err
	}
	r.log.Info("opportunistic TLS failed, relaying in clear text", "route", route.Addr, "err", err)
	return r.session(ctx, route, false)
}

func (r *Relay) session(ctx context.Context, route Route, tryTLS bool) (*session, error) {
	d := net.Dialer{Timeout: r.cfg.ConnectTimeout}
	conn, err := r.guard.Dial(ctx, &d, route.Addr, route.Trusted)
	if err != nil {
		return nil, r.dialError(route, err)
	}
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	fail := func(e *Error) (*session, error) {
		stop()
		conn.Close()
		return nil, e
	}
	hsConn, ehlo, err := handshake(conn, r.hostname, r.ours, route, r.cfg.CommandTimeout, tryTLS)
	var loop *netguard.LoopError
	switch {
	case errors.As(err, &loop):
		return fail(r.loopError(route, loop))
	case errors.Is(err, errNoStartTLS) && route.TLS == TLSOpportunistic:
		// The server said it has no TLS; its greeting is used up, so
		// continue on this connection through a replayed greeting.
	case err != nil && !errors.Is(err, errStartTLS) && !errors.Is(err, errNoStartTLS):
		return fail(unreachable(route, err))
	case err != nil:
		if errors.Is(err, errNoStartTLS) {
			// TLS is required and not offered, but the clear-text session
			// is sound: it ends with QUIT (RFC 5321 §4.1.1.10), as Postfix
			// ends it. Closed without, the customer's Postfix logged "lost
			// connection after EHLO" at each retry, which fail2ban's
			// postfix filter (mode aggressive) bans the node for.
			(&session{client: smtp.NewClientGreeted(hsConn, r.hostname, strings.Join(ehlo, "\n"))}).quit()
		}
		return fail(&Error{Kind: KindUnreachable, Code: 451, Enhanced: [3]int{4, 7, 5}, Message: "TLS with customer mail server failed, try again later",
			Err: fmt.Errorf("relay to %s: %w", route.Addr, err)})
	}
	// The connection is wrapped (replayConn) whether or not TLS started,
	// so it is recorded here rather than asked of the connection.
	s := &session{conn: hsConn, raw: conn, tls: tryTLS && err == nil}
	s.closeConn = func() { hsConn.Close() }
	if ehlo != nil {
		// In clear text the handshake's EHLO stands: the client goes on
		// from its reply, without a second EHLO's round trip.
		s.client = smtp.NewClientGreeted(hsConn, r.hostname, strings.Join(ehlo, "\n"))
	} else {
		s.client = smtp.NewClient(hsConn)
	}
	s.client.SetWriteBufferSize(writeBufferSize)
	s.client.CommandTimeout = r.cfg.CommandTimeout
	s.client.SubmissionTimeout = r.cfg.DataTimeout
	if ehlo == nil {
		// RFC 3207 §4.2: after STARTTLS the client starts over with EHLO;
		// its failure is the TLS session's (errStartTLS), which
		// opportunistic TLS retries in clear text.
		if err := s.client.Hello(r.hostname); err != nil {
			return fail(unreachable(route, fmt.Errorf("%w: EHLO: %w", errStartTLS, err)))
		}
		// As answeredAhead, under TLS: the client's buffer, and the TLS
		// layer, which holds a record that came in one segment with the
		// EHLO reply's (unread asks both, and the socket).
		if s.unread() {
			return fail(unreachable(route, fmt.Errorf("%w: %w", errStartTLS, errAnsweredAhead)))
		}
	}
	if !stop() {
		// ctx ended during EHLO and closed the connection.
		s.client.Close()
		return nil, unreachable(route, ctx.Err())
	}
	return s, nil
}

// Rcpt forwards one recipient, written from the parsed address and with no
// parameters; the first goes with MAIL FROM. A refusal is returned as
// *Error carrying the downstream's own code, so "550 5.1.1 no such user"
// reaches the sender.
func (t *Transaction) Rcpt(to mailaddr.Address) error {
	t.wake()
	defer t.armIdle()
	if t.broken != nil {
		// Not sent: nothing here speaks about this recipient.
		e := *t.broken
		e.BeforeRcpt = true
		return &e
	}
	if t.full != nil {
		// The server takes no more: asked, it would refuse this one too,
		// a round trip for nothing (for a parked transaction, two: its
		// MAIL and recipients sent again first).
		e := *t.full
		return &e
	}
	if t.parked {
		if e := t.resume(); e != nil {
			return e
		}
	}
	// Without a session, mail connects and asks the new one
	// (fitUTF8): withoutUTF8 is then a dropped session's answer.
	wire := to
	if t.s != nil {
		var e *Error
		if wire, e = t.onWire(to); e != nil {
			return e
		}
	}
	var err error
	if t.mailAccepted {
		if t.s.unread() {
			// A reply waits that nobody asked for: read as this
			// recipient's, a recipient the server refused was answered
			// 250, and its refusal read as the next command's.
			err = errStrayReply
		} else {
			err = t.s.client.Rcpt(wire.String(), nil)
		}
	} else {
		var e *Error
		if err, e = t.mail(to); e != nil {
			return e
		}
	}
	if err != nil {
		e := t.downstream("RCPT", err)
		// Not sent: nothing here speaks about this recipient.
		e.BeforeRcpt = err == errStrayReply
		if recipientLimit(e) {
			// RFC 5321 §4.5.3.1.10: 452, and RFC 821's 552 for it read
			// as 452: the recipients it refuses go in another
			// transaction, where a 552 bounced them.
			e.Code, e.Enhanced = 452, [3]int{4, 5, 3}
			if len(t.accepted) > 0 {
				// The transaction is full. Before any recipient it is
				// no limit of the transaction's (a recipient rate
				// limit): each is forwarded and answered again, a
				// refusal the sender's budget counts.
				e.BeforeRcpt = true
				full := *e
				t.full = &full
			}
		}
		t.r.results.WithLabelValues("rcpt", outcome(e)).Inc()
		if !t.reusable {
			// Out of step or closing: closed here, nothing more sent.
			t.broken = e
			t.release()
		}
		return e
	}
	t.r.results.WithLabelValues("rcpt", "ok").Inc()
	t.accepted = append(t.accepted, to)
	return nil
}

// recipientLimit reports whether a refused RCPT's reply says the
// transaction takes no more recipients: 452 or 552 with RFC 3463's X.5.3
// "too many recipients" (Postfix's smtpd_recipient_limit, sendmail's and
// Exchange's limits answer so), or with no enhanced code and that text
// (older Exim's "452 too many recipients"). It says nothing about the
// recipient.
func recipientLimit(e *Error) bool {
	if e.Kind != KindReplied || e.Code != 452 && e.Code != 552 {
		return false
	}
	switch sub, detail := e.Enhanced[1], e.Enhanced[2]; {
	case sub == 5 && detail == 3:
		return true
	case sub == 0 && detail == 0:
		return strings.Contains(strings.ToLower(e.Message), "too many recipients")
	}
	return false
}

// Recipients is how many recipients the downstream accepted.
func (t *Transaction) Recipients() int { return len(t.accepted) }

// TLS reports whether the session to the customer's server is encrypted
// (the last one the transaction used, once it has none).
func (t *Transaction) TLS() bool { return t.tls }

// EightBit answers what Data may need to know of a message's bytes >= 0x80
// before it sends it. Each question is asked only of a server whose
// missing extension makes the answer matter, so an ordinary transaction
// pays for neither.
type EightBit interface {
	// Any reports whether the message holds a byte >= 0x80; asked of a
	// server without 8BITMIME or SMTPUTF8.
	Any() bool
	// InHeader reports whether a header field holds one: the message's
	// own, a MIME part's or an attached message's (RFC 6532 §3), which
	// only SMTPUTF8 may carry. It is asked only when the sender asked for
	// SMTPUTF8, the server does not offer it, and Any is true; the
	// message may be read again for it. An error is the message's
	// (a spool file that cannot be read).
	InHeader() (bool, error)
}

// Data streams the message and returns the downstream's final reply text.
// Only a nil error means the customer's server took responsibility.
//
// RFC 6152 §3: 8-bit data must not be relayed to a server that did not
// offer 8BITMIME. Such a message (one in which eightBit.Any finds a byte
// >= 0x80; what the sender declared does not count, as many declare
// BODY=8BITMIME for every message) is refused with 554 5.6.3 and
// nothing is sent, rather than downgraded: a MIME rewrite would break DKIM
// signatures and send content our scan never saw. eightBit is asked only
// of such servers, so what it costs is paid by their transactions alone.
// The transaction stays open without DATA, and Close ends it as it ends
// any refused message (RSET with the session's next MAIL, or QUIT), so
// the session stays reusable.
func (t *Transaction) Data(msg io.Reader, eightBit EightBit) (string, error) {
	t.wake()
	if t.broken != nil {
		return "", t.broken
	}
	if t.parked {
		if e := t.resume(); e != nil {
			t.r.results.WithLabelValues("data", outcome(e)).Inc()
			return "", e
		}
	}
	if e := t.needsUTF8(eightBit); e != nil {
		result := "refused_8bit"
		if e.Temporary() {
			result = outcome(e)
		}
		t.r.results.WithLabelValues("data", result).Inc()
		e.Err = fmt.Errorf("relay to %s: %w", t.route.Addr, e.Err)
		return "", e
	}
	if ok, _ := t.s.client.Extension("8BITMIME"); !ok && eightBit.Any() {
		t.r.results.WithLabelValues("data", "refused_8bit").Inc()
		return "", &Error{Kind: KindRefusedLocally, Code: 554, Enhanced: [3]int{5, 6, 3}, Message: "the customer's server does not accept 8-bit mail",
			Err: fmt.Errorf("relay to %s: 8-bit message, and the server does not offer 8BITMIME", t.route.Addr)}
	}
	start := time.Now()
	reply, err := t.data(msg, eightBit)
	// Both are outcomes; a success is "delivered" in the duration and "ok"
	// in the per-stage results, like the other stages' successes.
	durationOutcome, resultOutcome := "delivered", "ok"
	if err != nil {
		durationOutcome = outcome(err)
		resultOutcome = durationOutcome
	}
	t.r.duration.WithLabelValues(durationOutcome).Observe(time.Since(start).Seconds())
	t.r.results.WithLabelValues("data", resultOutcome).Inc()
	if err != nil {
		return "", err
	}
	return reply, nil
}

// needsUTF8 refuses a message that needs the SMTPUTF8 the session's
// server lacks: one with an 8-bit header field. An 8-bit body alone goes
// without it, as Postfix sends it (RFC 6531 §3.4 forbids only what needs
// SMTPUTF8; the 8BITMIME check still applies).
func (t *Transaction) needsUTF8(eightBit EightBit) *Error {
	if !t.withoutUTF8 || !eightBit.Any() {
		return nil
	}
	inHeader, err := eightBit.InHeader()
	if err != nil {
		return &Error{Kind: KindRefusedLocally, Code: 451, Enhanced: [3]int{4, 3, 0}, Message: "local error reading the message, try again later",
			Err: fmt.Errorf("reading the message for 8-bit header fields: %w", err)}
	}
	if !inHeader {
		return nil
	}
	e := errNeedsSMTPUTF8()
	e.Err = errors.New("8-bit header field in a message sent with SMTPUTF8, and the server does not offer it")
	return e
}

func (t *Transaction) data(msg io.Reader, eightBit EightBit) (string, *Error) {
	var w *smtp.DataCommand
	var err error
	if t.s.unread() {
		// A reply nobody asked for (a stray one, or the 421 of a server
		// that timed the session out while the sender sent its body and
		// the scan ran) would be read as DATA's: the session is out of
		// step, as lost, and nothing was delivered on it.
		err = errStrayReply
	} else {
		w, err = t.s.client.Data()
	}
	if err != nil && lostSession(err) && t.ctx.Err() == nil {
		// The session waited idle while the sender sent its body and
		// the scan ran, and the server timed it out (Postfix's
		// smtpd_timeout: 300 s, 10 s under stress): a 451 for it had a
		// slow sender fail at every try. Without the body nothing was
		// delivered, so the transaction goes again on a new connection.
		lost := t.downstream("DATA", err)
		t.release()
		t.r.log.Info("downstream session lost before DATA, sending the transaction again", "route", t.route.Addr, "err", err)
		if rerr := t.replay(eightBit); rerr != nil {
			t.r.log.Info("downstream transaction could not be sent again", "route", t.route.Addr, "err", rerr)
			return "", lost
		}
		w, err = t.s.client.Data()
	}
	if err != nil {
		return "", t.downstream("DATA", err)
	}
	// From here until the final reply the session's state is unknown; a
	// broken DATA is never retried (never deliver twice), and its
	// session is never reused.
	t.reusable = false
	// go-smtp's client clears the DATA command's deadline once the 354 is
	// read and sets the final reply's only after the body: a server that
	// stops reading the body (its window full) or reads it a byte at a
	// time held the write, the sender waiting for our answer and this
	// goroutine for ever. The body and the final reply share data_timeout,
	// so the sender's answer comes within it however the server reads.
	deadline := time.Now().Add(t.r.cfg.DataTimeout)
	_ = t.s.conn.SetDeadline(deadline)
	buf := copyBuffers.Get().(*[]byte)
	// A message with a WriteTo is hidden behind a plain Reader so that
	// io.CopyBuffer uses buf: an io.MultiReader's allocates 32 KiB for
	// every message. Hiding one without (smtpd's) was an allocation too.
	src := msg
	if _, ok := msg.(io.WriterTo); ok {
		src = struct{ io.Reader }{msg}
	}
	_, err = io.CopyBuffer(w, src, *buf)
	copyBuffers.Put(buf)
	if err != nil {
		// Never end the data after a failed copy: when the message could
		// not be read to its end (a spool file's read error), the
		// end-of-data line had the server commit the part sent, a
		// truncated message, while the sender heard 451 and sent it
		// again. A connection closed mid-data aborts the transaction
		// (RFC 5321 §3.8); release closes it again, harmlessly.
		t.s.client.Close()
		return "", t.downstream("DATA", err)
	}
	if t.s.unread() {
		// The server answered before the end of the data was sent (with
		// its 354, or while the body came): no answer to a message it
		// does not have. Read after the dot as that answer, an early
		// 250 was the sender's 250 while the server's real answer (a
		// refusal) waited unread. The data is not ended, so the server
		// cannot take the message: the connection closed mid-data
		// aborts the transaction (RFC 5321 §3.8), and the sender tries
		// again.
		t.s.client.Close()
		return "", t.downstream("end of DATA", errAnsweredEarly)
	}
	t.s.client.SubmissionTimeout = max(time.Until(deadline), time.Nanosecond)
	resp, err := w.CloseWithResponse()
	// The final reply, whatever its code, ends the transaction (RFC 5321
	// §4.1.1.4), so the session needs no RSET before the next one.
	t.reusable = true
	t.s.inTransaction = false
	if err != nil {
		// Asked only here: the *SMTPError errors.As fills escapes, an
		// allocation for every message if it were declared above.
		if se := (*smtp.SMTPError)(nil); errors.As(err, &se) && se.Code/100 == 2 {
			// go-smtp wants 250, but any 2xx here is the server taking
			// the message, as Postfix's smtp client reads it: a 451 for
			// it had the sender send again what was delivered. The
			// session, which answered oddly, is not reused.
			t.reusable = false
			return se.Message, nil
		}
		e := t.downstream("end of DATA", err)
		e.MaybeTaken = e.Kind == KindLost
		return "", e
	}
	return resp.StatusText, nil
}

// errStrayReply: a reply waited before a command was sent, which would
// have been read as that command's.
var errStrayReply = errors.New("server sent a reply nobody asked for")

// errAnsweredEarly: the server sent a reply before the end of the data.
var errAnsweredEarly = errors.New("server answered before the end of the data")

// lostSession reports whether a command's failure says the session is gone
// (a 421, the connection closed or broken, no reply in time) rather than
// that the server refused the command.
func lostSession(err error) bool {
	var se *smtp.SMTPError
	return !errors.As(err, &se) || se.Code == 421
}

// replay opens a new session and sends MAIL and every recipient the lost
// one accepted. The sender was told they were accepted, so a refusal of
// any of them fails the replay (the sender hears 451 and tries again) rather
// than delivering to some.
func (t *Transaction) replay(eightBit EightBit) error {
	if len(t.accepted) == 0 {
		return errors.New("no recipient to send again")
	}
	if s := t.r.cached(cacheKey{route: t.route, helo: t.r.hostname}); s != nil {
		t.use(s)
		mailErr, err := t.sendAgain(eightBit)
		if mailErr == nil && (err == nil || !lostSession(err)) || t.ctx.Err() != nil {
			return cmp.Or(mailErr, err)
		}
		// A cached session that failed, or refused MAIL (its RSET
		// refused with it: the session a park left open is the
		// freshest, so nearly always the one taken back), is not the
		// server's answer: one more try on a new connection, as mail
		// does.
		t.r.cacheM.stale.Inc()
		t.release()
	}
	if err := t.dial(); err != nil {
		return err
	}
	return cmp.Or(t.sendAgain(eightBit))
}

// sendAgain sends MAIL and every accepted recipient on the transaction's
// new session; mailErr is MAIL's own failure. Until every recipient is
// taken the session is not reused: a failure leaves it in a transaction of
// recipients only some took.
func (t *Transaction) sendAgain(eightBit EightBit) (mailErr, err error) {
	t.reusable = false
	if ok, _ := t.s.client.Extension("8BITMIME"); !ok && eightBit.Any() {
		return nil, errors.New("the new session does not offer 8BITMIME")
	}
	if e := t.fitUTF8(); e != nil {
		return nil, e
	}
	if e := t.needsUTF8(eightBit); e != nil {
		return nil, e
	}
	if mailErr, err = t.sendMail(t.accepted[0]); mailErr != nil {
		return mailErr, nil
	}
	for _, to := range t.accepted[1:] {
		if err != nil {
			break
		}
		// fitUTF8 has checked every accepted recipient.
		w, _ := t.onWire(to)
		err = t.s.client.Rcpt(w.String(), nil)
	}
	t.reusable = err == nil
	return nil, err
}

// notYet answers EightBit before the message has come: nothing in it is
// 8-bit yet, and Data asks again once it has.
type notYet struct{}

func (notYet) Any() bool               { return false }
func (notYet) InHeader() (bool, error) { return false, nil }

// armIdle starts the idle clock when a step of the sender's leaves
// recipients accepted on a live session.
func (t *Transaction) armIdle() {
	if t.s == nil || t.broken != nil || len(t.accepted) == 0 {
		return
	}
	t.armed = true
	t.idleDone.Add(1)
	if t.idle == nil {
		t.idle = time.AfterFunc(t.r.cfg.ReleaseAfterIdle, t.park)
	} else {
		t.idle.Reset(t.r.cfg.ReleaseAfterIdle)
	}
}

// wake stops the idle clock as a step begins; when it has fired, the step
// waits for park to be done with the session.
func (t *Transaction) wake() {
	if !t.armed {
		return
	}
	t.armed = false
	if t.idle.Stop() {
		t.idleDone.Done()
	} else {
		t.idleDone.Wait()
	}
}

// park hands the session of an idle sender back: to the cache, where its
// next user (this transaction's next step, or another sender's) ends the
// open transaction with RSET, or closed.
func (t *Transaction) park() {
	defer t.idleDone.Done()
	t.r.idleReleases.Inc()
	t.release()
	t.parked = true
}

// resume sends a parked transaction again. The sender was told its
// recipients were accepted, so a refusal now is answered 4xx: the sender
// tries again, and hears the refusal at RCPT then. What the message needs
// of the new session is Data's to ask after it, so that a message the
// server cannot take is refused as it is without a release (554 5.6.3,
// 550 5.6.7, counted refused_8bit), not answered "connection lost".
func (t *Transaction) resume() *Error {
	t.parked = false
	err := t.replay(notYet{})
	if err == nil {
		return nil
	}
	if t.s != nil {
		t.release()
	}
	var e *Error
	if !errors.As(err, &e) {
		e = downstreamError(t.route, "MAIL and RCPT sent again", err)
		e.Code, e.Enhanced[0] = 451, 4
	}
	// Whatever was refused, it was not the recipient of the step that
	// resumed, nor of any later one (t.broken).
	e.BeforeRcpt = true
	t.r.log.Info("downstream transaction could not be sent again after the sender idled", "route", t.route.Addr, "err", err)
	t.broken = e
	return e
}

// writeBufferSize is the downstream client's write buffer: a message of
// up to ~16 KB with our headers (bench-smtp.sh's are 5 KB) leaves with its
// end-of-data line in one write, not one per 4 KiB (go-smtp's default),
// and a large one in a quarter of the writes. The cost: 12 KiB more per
// session, cached ones included.
const writeBufferSize = 16 << 10

// copyBuffers hold the buffers messages are copied downstream through.
var copyBuffers = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

// downstream maps a failed command's error for the sender, and marks the
// session unfit for reuse unless the server answered with a refusal that
// leaves it usable (a 4xx or 5xx other than 421, RFC 5321 §3.8). Any
// other code (354 to RCPT, 250 to DATA) is no answer to the command
// sent: the server is somewhere else in the dialogue, and every later
// reply may be another command's.
func (t *Transaction) downstream(stage string, err error) *Error {
	var se *smtp.SMTPError
	if !errors.As(err, &se) || se.Code == 421 || se.Code < 400 || se.Code >= 600 {
		t.reusable = false
	}
	return downstreamError(t.route, stage, err)
}

// Close ends the transaction without delivering anything more: the
// session goes back to the cache when it is sound and has room (a
// transaction left open on it is ended by the RSET its next use sends
// first), and is otherwise closed politely. It is safe to call more than
// once.
func (t *Transaction) Close() {
	t.wake()
	if t.closed {
		return
	}
	t.closed = true
	if t.s != nil {
		t.release()
	}
}

// release hands the session back to the cache or closes it.
func (t *Transaction) release() {
	s := t.s
	t.s = nil
	// stop is false when ctx ended and closed the connection.
	if !t.stop() || !t.reusable {
		// Its state is unknown (a reply may still be on its way): no
		// QUIT to read a stale reply for, just close.
		s.client.Close()
		return
	}
	if !t.r.keep(s) {
		s.quit()
	}
}

// keep caches s for another transaction; false when there is no room.
// Nothing is sent: a transaction left open on s (refused recipients, a
// refused message, the sender gone) cannot deliver anything without DATA,
// and the RSET that ends it goes with the next MAIL.
func (r *Relay) keep(s *session) bool {
	return r.cache != nil && r.cache.room(s) && r.cache.put(s)
}

// dialError maps a failed guarded dial: a loop is permanent (554 5.4.6,
// RFC 3463 "routing loop detected"), a refused network temporary (451
// 4.4.4, so the sender retries while the operator, alerted by the metric,
// fixes the route or allows the network), anything else unreachable.
func (r *Relay) dialError(route Route, err error) *Error {
	var loop *netguard.LoopError
	var refused *netguard.RefusedError
	switch {
	case errors.As(err, &loop):
		return r.loopError(route, loop)
	case errors.As(err, &refused):
		r.refused.WithLabelValues(string(refused.Class)).Inc()
		r.log.Warn("tenant route refused at connect", "route", route.Addr, "addr", refused.Addr, "class", refused.Class)
		return &Error{Kind: KindUnreachable, Code: 451, Enhanced: [3]int{4, 4, 4}, Message: "customer route not allowed, try again later",
			Err: fmt.Errorf("relay to %s: %w", route.Addr, err)}
	}
	return unreachable(route, err)
}

func (r *Relay) loopError(route Route, loop *netguard.LoopError) *Error {
	r.loops.WithLabelValues(loop.DetectedBy).Inc()
	r.log.Warn("mail loop: route leads back to the cluster", "route", route.Addr, "addr", loop.Addr, "detected_by", loop.DetectedBy)
	return &Error{Kind: KindRefusedLocally, Code: 554, Enhanced: [3]int{5, 4, 6}, Message: "routing loop detected",
		Err: fmt.Errorf("relay to %s: %w", route.Addr, loop)}
}

func unreachable(route Route, err error) *Error {
	return &Error{Kind: KindUnreachable, Code: 451, Enhanced: [3]int{4, 4, 1}, Message: "customer mail server unreachable, try again later",
		Err: fmt.Errorf("relay to %s: %w", route.Addr, err)}
}

// maxReplyText bounds a downstream's reply text passed on to the sender,
// well within RFC 5321's 512-octet reply line.
const maxReplyText = 400

// downstreamError maps a client error to the sender's reply: the
// downstream's own SMTP reply when it gave one, 451 4.4.2 for a connection
// lost mid-transaction (the sender must retry: nothing was accepted).
// A downstream 421 becomes 451: 421 says the session it is given in
// closes (RFC 5321 §3.8), and the session closing is the customer's, not
// the sender's, which stays open for its next transaction.
func downstreamError(route Route, stage string, err error) *Error {
	var se *smtp.SMTPError
	if errors.As(err, &se) && se.Code >= 400 && se.Code < 600 {
		code := se.Code
		if code == 421 {
			code = 451
		}
		e := &Error{Kind: KindReplied, Code: code, Message: replytext.Reply(se.Message, maxReplyText), Err: fmt.Errorf("relay to %s: %s: %w", route.Addr, stage, err)}
		if se.EnhancedCode != smtp.NoEnhancedCode && se.EnhancedCode != smtp.EnhancedCodeNotSet && se.EnhancedCode[0] == code/100 && enhancedPart(se.EnhancedCode[1]) && enhancedPart(se.EnhancedCode[2]) {
			e.Enhanced = [3]int(se.EnhancedCode)
		} else {
			e.Enhanced = [3]int{code / 100, 0, 0}
		}
		if e.Message == "" {
			e.Message = "customer mail server refused"
		}
		return e
	}
	return &Error{Kind: KindLost, Code: 451, Enhanced: [3]int{4, 4, 2}, Message: "connection to customer mail server lost, try again later",
		Err: fmt.Errorf("relay to %s: %s: %w", route.Addr, stage, err)}
}

// enhancedPart reports whether n is a valid subject or detail of an
// enhanced status code: one to three digits (RFC 3463 §2). go-smtp's
// client parses any integer there, and the code is written into our reply
// as it is: "5.-1.1" or "5.1.1000" from the customer's server made ours
// malformed.
func enhancedPart(n int) bool { return n >= 0 && n <= 999 }

func outcome(e *Error) string {
	if e.Temporary() {
		return "tempfail"
	}
	return "permfail"
}
