package smtpd

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/base32"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"reflect"
	"slices"
	"sync"
	"syscall"
	"time"

	"github.com/emersion/go-smtp"
	"github.com/mxgrid/mxgrid/events"
	"github.com/mxgrid/mxgrid/internal/ratelimit"
	"github.com/mxgrid/mxgrid/mailaddr"
	"github.com/mxgrid/mxgrid/negcache"
	"github.com/mxgrid/mxgrid/relay"
	"github.com/mxgrid/mxgrid/scanner"
	"github.com/mxgrid/mxgrid/tenant"
)

// session is one SMTP connection after EHLO. go-smtp gives its methods no
// context, so each transaction carries its own, cancelled at Reset.
type session struct {
	srv      *Server
	conn     *smtp.Conn
	gate     *gateConn
	clientIP netip.Addr
	log      *slog.Logger
	logger   slog.Logger // what log points to
	logTo    connHandler // log's
	// counts are the connection's: RSET keeps them, and so does STARTTLS,
	// after which go-smtp starts a new session (a client would otherwise
	// get each budget twice on every connection).
	counts *connCounts

	// transaction state, cleared by Reset
	ctx      context.Context
	cancel   context.CancelFunc
	queueID  string
	from     mailaddr.Address
	mailOpts relay.MailOptions
	rcpts    []string
	// rcptDomains are rcpts' domains, in step: a transaction may carry
	// several domains of one customer sharing a route and a policy, and
	// each recipient's record and count belong to its own domain's id.
	rcptDomains []*tenant.Domain
	domain      *tenant.Domain
	// route is the transaction's destination, its first recipient's: with
	// per-recipient routes two recipients of one domain may differ.
	route relay.Route
	tx    Transaction
	// txRoute is where tx goes: route's once a recipient is accepted.
	txRoute relay.Route
	note    trackNote
}

func (s *Server) newSession(c *smtp.Conn) (smtp.Session, error) {
	nc := c.Conn()
	if tc, ok := nc.(*tls.Conn); ok {
		nc = tc.NetConn()
	}
	gate, _ := nc.(*gateConn)
	// Serve's connections keep their counts on the gateConn; a connection
	// from elsewhere gets its own, allocated only then.
	var counts *connCounts
	if gate != nil {
		counts = &gate.counts
	} else {
		counts = new(connCounts)
	}
	ip := addrIP(nc.RemoteAddr())
	s.metrics.sessions.Inc()
	ss := &session{
		srv:      s,
		conn:     c,
		gate:     gate,
		counts:   counts,
		clientIP: ip,
	}
	ss.logTo = connHandler{base: s.log.Handler(), clientIP: ip}
	// The Logger is held in the session too, copied out of slog.New
	// (which inlines, its Logger then on the stack): one allocation less
	// a connection.
	ss.logger = *slog.New(&ss.logTo)
	ss.log = &ss.logger
	return ss, nil
}

// connHandler is the connection's log handler: the server's with
// client_ip, made at the connection's first record logged, not at its
// start. Most connections of a node logging at warn log nothing, and
// the handler (with the address's text, the attribute and what the
// handler formats of it ahead) cost six allocations on each. Its records
// are the server's handler's WithAttrs, as slog.Logger.With makes them.
type connHandler struct {
	base     slog.Handler
	clientIP netip.Addr
	once     sync.Once
	h        slog.Handler
}

// Enabled is the server's: attributes do not change a level.
func (c *connHandler) Enabled(ctx context.Context, level slog.Level) bool {
	return c.base.Enabled(ctx, level)
}

func (c *connHandler) Handle(ctx context.Context, r slog.Record) error {
	return c.handler().Handle(ctx, r)
}

func (c *connHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return c.handler().WithAttrs(attrs)
}

func (c *connHandler) WithGroup(name string) slog.Handler {
	return c.handler().WithGroup(name)
}

// handler is made once, whichever goroutine logs first.
func (c *connHandler) handler() slog.Handler {
	c.once.Do(func() {
		c.h = c.base.WithAttrs([]slog.Attr{slog.String("client_ip", c.clientIP.String())})
	})
	return c.h
}

// begin starts a transaction, or reports false when the server is
// draining.
func (ss *session) begin() bool {
	if ss.ctx != nil {
		return true
	}
	if !ss.srv.transactions.begin() {
		return false
	}
	if ss.gate != nil {
		ss.gate.idle.Store(false)
	}
	ss.ctx, ss.cancel = context.WithCancel(ss.srv.txBase)
	ss.queueID = newQueueID()
	return true
}

// Reset ends the transaction: a downstream transaction still open gets QUIT,
// so nothing is delivered that the sender was not told about.
func (ss *session) Reset() {
	if ss.tx != nil {
		if ss.note.outcome == "" || ss.note.outcome == OutcomeReadError {
			// Recipients reached the customer's server and no message
			// followed: junk, as Postfix counts RSET, even pipelined,
			// where go-smtp does not count it (see Mail). A BDAT
			// transfer given up (RSET or EHLO before LAST) is one too:
			// its Data has ended with a read error by now. Uncounted,
			// "RCPT, BDAT 0, RSET, MAIL" in one write had the customer's
			// server asked about a recipient every round trip, for ever.
			ss.counts.abandoned++
		}
		ss.tx.Close()
		ss.tx = nil
	}
	if ss.ctx != nil {
		ss.cancel()
		ss.ctx, ss.cancel = nil, nil
		ss.srv.transactions.end()
		if ss.gate != nil {
			ss.gate.dataDeadline.Store(0)
			ss.gate.idle.Store(true)
		}
	}
	ss.queueID, ss.from, ss.rcpts, ss.rcptDomains, ss.domain = "", mailaddr.Address{}, nil, nil, nil
	ss.route, ss.txRoute = relay.Route{}, relay.Route{}
	ss.mailOpts = relay.MailOptions{}
	ss.note = trackNote{}
}

// Closing hears why go-smtp closes the connection when one of its limits
// does: counted, and logged, so that an operator sees clients shown out.
func (ss *session) Closing(reason error) {
	limit := "other"
	switch {
	case errors.Is(reason, smtp.ErrTooManyErrors):
		limit = "errors"
	case errors.Is(reason, smtp.ErrTooMuchJunk):
		limit = "junk_commands"
	case errors.Is(reason, smtp.ErrCommandTimedOut):
		limit = "command_timeout"
		if ss.gate != nil && ss.gate.stressDeadline.Load() {
			limit = "stress_command_timeout"
		}
	}
	if errors.Is(reason, smtp.ErrStressed) {
		limit = "stress_" + limit
	}
	ss.srv.metrics.shownOut.WithLabelValues(limit).Inc()
	ss.log.Info("closing the session: limit reached", "limit", limit)
}

func (ss *session) Logout() error {
	ss.Reset()
	return nil
}

func (ss *session) Mail(from string, opts *smtp.MailOptions) error {
	if ss.srv.transactions.draining.Load() {
		return errShuttingDown
	}
	if ss.counts.abandoned >= ss.srv.cfg.MaxJunkCommands {
		// MAIL, RCPT, RSET pipelined over and over had every RCPT
		// forwarded to the customer's server with no end: a pipelined
		// RSET costs the client no round trip, so go-smtp's junk count
		// passes it over.
		ss.srv.metrics.shownOut.WithLabelValues("junk_commands").Inc()
		ss.log.Info("closing the session: limit reached", "limit", "junk_commands", "abandoned_transactions", ss.counts.abandoned)
		return errTooManyAbandoned
	}
	addr, err := mailaddr.ParseDecoded(from)
	if err != nil {
		ss.log.Info("sender refused: bad address", "from", sanitizeClientText(from), "err", err)
		return addressError(err, true)
	}
	if !addr.ASCII() && (opts == nil || !opts.UTF8) {
		// RFC 6531 §3.5: relaying it without SMTPUTF8 would hand the
		// customer's server an address it was not told to expect.
		return errNeedsUTF8
	}
	ss.Reset()
	if !ss.begin() {
		return errShuttingDown
	}
	ss.from = addr
	if opts != nil {
		ss.mailOpts = relay.MailOptions{Size: opts.Size, UTF8: opts.UTF8}
		if opts.Size > 0 {
			// The customer's server gets the message with our fields on
			// top; declare room for them (RFC 1870 §5: SIZE is an estimate,
			// but strict servers refuse a message larger than declared).
			ss.mailOpts.Size += addedHeaderAllowance
			ss.mailOpts.Slack = addedHeaderAllowance
		}
	}
	return nil
}

func (ss *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	if ss.srv.transactions.draining.Load() {
		ss.srv.metrics.rcpts.WithLabelValues("draining").Inc()
		return errShuttingDown
	}
	if ss.counts.unknown >= ss.srv.cfg.MaxUnknownRecipients {
		// A dictionary attack: stop answering questions about mailboxes.
		ss.srv.metrics.rcpts.WithLabelValues("unknown_budget").Inc()
		// go-smtp closes the connection after the 421.
		ss.log.Info("too many unknown recipients, closing", "queue_id", ss.queueID, "unknown", ss.counts.unknown)
		return errTooManyUnknown
	}
	if mailaddr.IsPostmaster(to) {
		if ss.srv.cfg.Postmaster == "" {
			ss.counts.unknown++
			ss.srv.metrics.rcpts.WithLabelValues("no_postmaster").Inc()
			return errNoPostmaster
		}
		to = ss.srv.cfg.Postmaster
	}
	rcpt, err := mailaddr.ParseDecoded(to)
	if err != nil || rcpt.IsNull() {
		ss.srv.metrics.rcpts.WithLabelValues("bad_address").Inc()
		ss.log.Info("recipient refused: bad address", "queue_id", ss.queueID, "rcpt", sanitizeClientText(to), "err", err)
		return addressError(err, false)
	}
	if !rcpt.ASCII() && !ss.mailOpts.UTF8 {
		ss.srv.metrics.rcpts.WithLabelValues("bad_address").Inc()
		return errNeedsUTF8
	}
	if rcpt.SourceRouted() && !ss.srv.cfg.AllowSourceRouting {
		ss.srv.metrics.rcpts.WithLabelValues("source_routed").Inc()
		ss.log.Info("recipient refused: source routing", "queue_id", ss.queueID, "rcpt", rcpt.String())
		return errSourceRouted
	}
	dom, found := ss.srv.deps.Directory.Lookup(rcpt.LookupDomain())
	if !found {
		if reason, ok := ss.srv.unservable(rcpt.LookupDomain()); ok {
			// Provisioned, but its stored record does not build: the
			// customer's mail waits at the sender (451) while an
			// operator repairs the record, rather than bouncing as no
			// one's.
			ss.srv.metrics.rcpts.WithLabelValues("domain_unservable").Inc()
			ss.log.Warn("recipient deferred: the domain's stored record cannot be served", "queue_id", ss.queueID, "rcpt", rcpt.String(), "reason", reason)
			return errDomainUnservable
		}
	}
	if !found && ss.srv.directoryPartial() {
		// The store has not confirmed the domain list lately (or ever):
		// the domain may have been provisioned since. A 5xx would bounce
		// its mail for good; a 4xx has senders retry, by which time the
		// store or another MX has it. Not counted as unknown: the client
		// guessed nothing.
		ss.srv.metrics.rcpts.WithLabelValues("tenants_unconfirmed").Inc()
		ss.log.Info("recipient deferred: unknown domain, and the tenant domain list is not confirmed by the store", "queue_id", ss.queueID, "rcpt", rcpt.String())
		return errTenantsUnconfirmed
	}
	if !found {
		ss.counts.unknown++
		ss.srv.metrics.rcpts.WithLabelValues("unknown_domain").Inc()
		ss.log.Info("recipient refused: unknown domain", "queue_id", ss.queueID, "rcpt", rcpt.String())
		return errUnknownDomain
	}
	if l := ss.srv.unknownByClient; l != nil && !l.Ready(ss.unknownKey(dom), time.Now()) {
		ss.srv.metrics.rcpts.WithLabelValues("client_unknown_budget").Inc()
		ss.log.Info("too many unknown recipients from this client, closing", "queue_id", ss.queueID)
		return errClientTooManyUnknown
	}
	if !mailaddr.IsASCII(rcpt.Domain) {
		// A U-label, or a compatibility form IDNA maps to the domain
		// (full-width letters, the Kelvin sign): the customer's server
		// gets the name it was provisioned with, not a spelling it may not
		// know, and the negative cache and duplicates see one name.
		rcpt.Domain = dom.Name
	}
	// Its wire form, made once: the duplicate check and the accepted list
	// want the same string.
	text := rcpt.String()
	if ss.accepted(text) {
		// Accepted already: the customer's server gets it once, and it is
		// tracked and quarantined once (a tenant's lists compare local
		// parts without case, as this does).
		ss.srv.metrics.rcpts.WithLabelValues("duplicate").Inc()
		return nil
	}
	// Before the mailbox lookup: a blocked sender hears one refusal for
	// every recipient, so it learns nothing of which mailboxes exist.
	if ss.blocked(dom) {
		ss.srv.metrics.rcpts.WithLabelValues("blocked").Inc()
		ss.log.Info("recipient refused: sender on the domain's block list", "queue_id", ss.queueID, "from", ss.from.String(), "rcpt", rcpt.String())
		ss.trackRcpt(rcpt, dom, errBlocked, nil)
		return errBlocked
	}
	if !dom.AcceptsRecipient(rcpt.Local) {
		ss.refusedMailbox(dom)
		ss.srv.metrics.rcpts.WithLabelValues("unknown_user").Inc()
		ss.trackRcpt(rcpt, dom, errUnknownUser, nil)
		return errUnknownUser
	}
	if ss.domain != nil && dom.CustomerID != ss.domain.CustomerID {
		// A refusal or verdict books to one tenant; a recipient of
		// another goes in its own transaction, so it never books to ours.
		ss.srv.metrics.rcpts.WithLabelValues("other_tenant").Inc()
		return errOtherTenant
	}
	route := relayRoute(dom.RouteFor(rcpt.Local))
	if ss.domain != nil && route != ss.route {
		// RFC 5321 §3.3: one transaction, one destination for us; the
		// sender's MTA retries this recipient in its own transaction.
		ss.srv.metrics.rcpts.WithLabelValues("other_route").Inc()
		return errOtherRoute
	}
	if ss.domain != nil && dom != ss.domain && !reflect.DeepEqual(dom.Policy, ss.domain.Policy) {
		// One verdict answers for every recipient of the transaction, so
		// they must share one policy: otherwise one domain's allow list,
		// scores or virus action would decide for another's recipients.
		ss.srv.metrics.rcpts.WithLabelValues("other_policy").Inc()
		return errOtherPolicy
	}
	if ss.domain != nil && dom != ss.domain && ss.mayQuarantine() {
		// A held message is one domain's: its quarantine quota pays for
		// it and its users release it.
		ss.srv.metrics.rcpts.WithLabelValues("other_quarantine").Inc()
		return errOtherQuarantine
	}
	if max := dom.Policy.MaxMessageSize; max != nil && ss.mailOpts.Size-ss.mailOpts.Slack > *max {
		// RFC 1870 §6.2: the declared size is too large for this
		// recipient. Taken, the customer's server was asked about it and
		// the whole message sent, only for Data to refuse it the same.
		ss.srv.metrics.rcpts.WithLabelValues("too_large").Inc()
		return errDomainTooLarge(dom.Name, *max)
	}
	cacheKey := negcache.Key(route.Addr, rcpt.Local+"@"+rcpt.LookupDomain())
	if r, ok := ss.srv.negCache.Get(cacheKey); ok {
		ss.refusedMailbox(dom)
		ss.srv.metrics.rcpts.WithLabelValues("negative_cache").Inc()
		ss.log.Info("recipient refused: customer server refused it recently", "queue_id", ss.queueID, "rcpt", rcpt.String())
		ss.trackRcpt(rcpt, dom, cachedRefusal(r), nil)
		return cachedRefusal(r)
	}
	if ss.tx != nil && ss.domain == nil && route != ss.txRoute {
		// Open for a route whose every recipient was refused: the checks
		// above bind a transaction to its first accepted recipient's
		// route, so this recipient must not go into another server's
		// transaction (delivered there, and that server's refusal cached
		// as this route's).
		ss.abortDownstream()
	}
	if ss.tx == nil {
		tx, err := ss.srv.deps.Relay.Open(ss.ctx, route, ss.from, ss.mailOpts)
		if err != nil {
			return ss.rcptFailed(rcpt, dom, "", err)
		}
		ss.tx, ss.txRoute = tx, route
	}
	if err := ss.tx.Rcpt(rcpt); err != nil {
		return ss.rcptFailed(rcpt, dom, cacheKey, err)
	}
	ss.domain = dom
	ss.route = route
	ss.rcpts = append(ss.rcpts, text)
	ss.rcptDomains = append(ss.rcptDomains, dom)
	ss.srv.metrics.rcpts.WithLabelValues("accepted").Inc()
	return nil
}

// refusedMailbox counts a refusal that says a mailbox of dom does not
// exist (the answer a harvester wants) against the session's and the
// client's budgets. An unknown domain counts against the session's alone:
// it says nothing of mailboxes, and a big provider's outbound address
// still sending to a domain that left us must not lose every other
// customer's mail.
func (ss *session) refusedMailbox(dom *tenant.Domain) {
	ss.counts.unknown++
	if l := ss.srv.unknownByClient; l != nil {
		l.Take(ss.unknownKey(dom), time.Now())
	}
}

// unknownKey is the client's budget of refused mailboxes with dom's
// customer. A tenant says which of its mailboxes exist, and its own server
// may refuse every recipient: kept per client across tenants, the budget
// let one tenant have any sender it could make write to it (a big
// provider's outbound address) answered 421 for every other tenant's
// mail. A harvester meets it within the tenant it probes.
func (ss *session) unknownKey(dom *tenant.Domain) clientTenant {
	return clientTenant{client: ratelimit.ClientKey(ss.clientIP), customer: dom.CustomerID}
}

// clientTenant keys smtp.client_unknown_recipients: a client (an IPv4
// address, an IPv6 /64) with one customer (0: the config file's domains).
type clientTenant struct {
	client   netip.Prefix
	customer int64
}

// accepted reports whether rcpt (an address's String) was accepted
// already, compared as the recipient lists compare local parts
// (mailaddr.FoldLocal): under strings.EqualFold's Unicode folding a Kelvin
// sign matched a k, and a recipient the lists refuse was answered 250 as a
// duplicate without reaching the customer's server.
func (ss *session) accepted(rcpt string) bool {
	folded := mailaddr.FoldLocal(rcpt)
	for _, r := range ss.rcpts {
		if mailaddr.FoldLocal(r) == folded {
			return true
		}
	}
	return false
}

// rcptFailed answers a recipient the relay could not open or the customer's
// server refused. cacheKey is set when the refusal may have come from RCPT
// itself; it is remembered only when it did, since only then does it speak
// about the recipient (a refused MAIL speaks about the sender).
func (ss *session) rcptFailed(to mailaddr.Address, dom *tenant.Domain, cacheKey string, err error) error {
	what := "recipient refused by downstream"
	// answered: the customer's server itself replied to RCPT.
	answered := false
	if re := (*relay.Error)(nil); errors.As(err, &re) {
		switch {
		case re.Kind == relay.KindRefusedLocally:
			// Our own refusal (SMTPUTF8 the customer's server lacks)
			// says nothing about the mailbox: not cached, not counted.
			cacheKey, what = "", "recipient refused for the customer's server"
		case re.BeforeRcpt:
			cacheKey = ""
		}
		answered = cacheKey != "" && re.Kind == relay.KindReplied
	}
	reply := toSMTP(ss.log, err)
	ss.trackRcpt(to, dom, reply, err)
	result := "downstream_refused"
	switch enhanced := [3]int(reply.EnhancedCode); {
	case answered && (negcache.NoSuchMailbox(enhanced) || reply.Code >= 500 && enhanced[1] == 0 && enhanced[2] == 0):
		// "550 5.1.1", or a 5xx without a detail (a server without
		// enhanced codes: "550 no such user"), or "450 4.1.1": a
		// customer's server that verifies recipients (Postfix's
		// reject_unverified_recipient answers 450 by default) says "no
		// such mailbox" as a 4xx. Uncounted, it let a harvester have
		// every guess forwarded and answered, without limit.
		ss.refusedMailbox(dom)
		ss.srv.negCache.Add(cacheKey, negcache.Reply{Code: reply.Code, Enhanced: enhanced, Message: reply.Message})
	case answered:
		// Other refusals (greylisting, a full disk, a policy's 5.7.1:
		// a customer's Postfix refuses a sender at RCPT, or every
		// recipient while its relay_domains lacks the domain) say
		// nothing of mailboxes, so the client's budget does not pay:
		// it did, and a big provider's outbound address was answered
		// 421 for every customer's mail once one customer's server
		// refused it a hundred times. Each was still a RCPT forwarded
		// and answered, which the session's budget bounds.
		ss.counts.unknown++
	}
	if reply.Code < 500 {
		result = "downstream_tempfail"
		// A broken downstream connection cannot take more recipients.
		if ss.tx != nil && ss.tx.Recipients() == 0 {
			ss.tx.Close()
			ss.tx = nil
		}
	}
	ss.srv.metrics.rcpts.WithLabelValues(result).Inc()
	ss.log.Info(what, "queue_id", ss.queueID, "rcpt", to.String(), "reply", reply.Error(), "err", err)
	return reply
}

func (ss *session) Data(r io.Reader) (reply error) {
	ss.note.start = time.Now()
	defer func() { ss.trackData(reply) }()
	if ss.gate != nil {
		ss.gate.dataDeadline.Store(time.Now().Add(ss.srv.cfg.DataTimeout).UnixNano())
	}
	res := reservation{budget: ss.srv.budget}
	defer res.release()
	inMemory, spooled := int64(holdFactor), int64(spoolFactor)
	holdable := ss.mayQuarantine()
	if holdable {
		inMemory, spooled = inMemory+quarantineFactor, spooled+quarantineFactor
	}
	b, err := readBody(r, &res, inMemory, ss.srv.spool)
	if b != nil {
		// Every path out of the transaction, a panic's included, removes
		// a spooled body.
		defer b.close()
	}
	if err != nil {
		// The data deadline stays: go-smtp reads what is left of the body
		// to its end before it answers, and data_timeout bounds that too.
		// Cleared, a client trickling the rest kept the connection (and
		// its answer) for as long as it liked; Reset clears it.
		if errors.Is(err, os.ErrDeadlineExceeded) {
			ss.note.clientSlow = true
			ss.countTransaction(OutcomeReadError, errDataTimeout)
			if ss.gate != nil && ss.gate.stressDeadline.Load() {
				ss.log.Info("message body stopped coming under stress", "queue_id", ss.queueID, "stress_command_timeout", ss.srv.cfg.StressCommandTimeout)
			} else {
				ss.log.Info("message body timed out", "queue_id", ss.queueID, "data_timeout", ss.srv.cfg.DataTimeout)
			}
			return errDataTimeout
		}
		if errors.Is(err, errSpoolFull) || diskFull(err) {
			ss.abortDownstream()
			ss.countTransaction(OutcomeNoResources, errNoResources)
			ss.log.Warn("message deferred: spool directory low on free space", "queue_id", ss.queueID, "dir", ss.srv.spool.dir, "err", err)
			return errNoResources
		}
		if errors.Is(err, smtp.ErrDataTooLarge) {
			ss.countTransaction(OutcomeTooLarge, errTooLarge)
			return errTooLarge
		}
		if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, smtp.ErrDataReset) {
			// The client went away, or gave the transfer up (RSET, EHLO
			// or STARTTLS during BDAT): no fault of ours, and nobody hears
			// the reply.
			ss.note.clientGone = true
			ss.countTransaction(OutcomeReadError, errLocal)
			ss.log.Info("message body not received", "queue_id", ss.queueID, "err", err)
			return errLocal
		}
		if errors.Is(err, net.ErrClosed) && ss.srv.transactions.draining.Load() {
			// The shutdown grace ran out with the body still coming, and
			// the node closed the connection: the sender retries another
			// MX. Ours, but no fault.
			ss.countTransaction(OutcomeReadError, errShuttingDown)
			ss.log.Info("message body cut off: the shutdown grace ran out", "queue_id", ss.queueID)
			return errShuttingDown
		}
		reply := toSMTP(ss.log, fmt.Errorf("read DATA: %w", err))
		ss.countTransaction(OutcomeReadError, reply)
		return reply
	}
	if ss.gate != nil {
		ss.gate.dataDeadline.Store(0)
	}
	if b.bare > 0 {
		if ss.srv.cfg.BareNewline == BareNewlineReject {
			ss.abortDownstream()
			ss.countTransaction(OutcomeBareNewline, errBareNewline)
			ss.log.Info("message refused: bare CR or LF", "queue_id", ss.queueID, "bare_newlines", b.bare)
			return errBareNewline
		}
		ss.log.Info("bare CR or LF normalised to CRLF", "queue_id", ss.queueID, "bare_newlines", b.bare)
	}
	if max := ss.domain.Policy.MaxMessageSize; max != nil && b.size > *max {
		reply := errDomainTooLarge(ss.domain.Name, *max)
		ss.countTransaction(OutcomeTooLarge, reply)
		return reply
	}
	if b.spooled() {
		if spooled*b.size > ss.srv.cfg.MemoryBudget {
			// The budget could never pay for holding it: it is scanned
			// as any message, and if its verdict says quarantine it is
			// tagged and delivered (counted), since waiting would defer
			// it for ever.
			spooled, holdable = spoolFactor, false
		}
		if !res.wait(ss.ctx, spooled*b.size, ss.srv.cfg.SpoolWait) {
			return ss.deferForBudget()
		}
	}
	start := time.Now()
	ss.srv.rate.add(start)
	ss.note.size = b.size
	sent, outcome, verdict := ss.deliver(b, holdable, &res)
	ss.countTransaction(outcome, sent)
	// Config domains (id 0) belong to no tenant and have no panel page.
	if ss.srv.deps.Outcomes != nil {
		for i, d := range ss.rcptDomains {
			if d.ID != 0 && !slices.Contains(ss.rcptDomains[:i], d) {
				ss.srv.deps.Outcomes.Count(d.ID, outcome)
			}
		}
	}
	ss.srv.metrics.duration.WithLabelValues(replyClass(sent.Code)).Observe(time.Since(start).Seconds())
	ss.srv.metrics.size.Observe(float64(b.size))
	// Info evaluates its arguments before it asks the handler: rendering
	// them (the sorted symbols above all) cost ~1 % of the CPU of a node
	// that logs at warn and above. Typed attributes, not key-value pairs:
	// the same fields, without an allocation to box each value.
	if ctx := context.Background(); ss.log.Enabled(ctx, slog.LevelInfo) {
		ss.log.LogAttrs(ctx, slog.LevelInfo, "transaction",
			slog.String("queue_id", ss.queueID), slog.String("helo", ss.helo()), slog.String("from", ss.from.String()), slog.Any("rcpts", ss.rcpts),
			slog.Int64("size", b.size), slog.Bool("spooled", b.spooled()), slog.String("action", verdict.Action.String()), slog.Float64("score", verdict.Score),
			slog.Any("symbols", scanner.SymbolNames(verdict.TopSymbols(8))), slog.String("outcome", string(outcome)),
			slog.String("reply", replyLine(sent)),
			slog.Duration("duration", time.Since(start)))
	}
	return sent
}

// deferForBudget answers 452 4.3.1 for a body whose scan the memory budget
// cannot hold within smtp.spool_wait: nothing was relayed, so the
// sender's retry delivers it once.
func (ss *session) deferForBudget() *smtp.SMTPError {
	ss.abortDownstream()
	ss.srv.metrics.budgetRefusals.Inc()
	ss.countTransaction(OutcomeNoResources, errNoResources)
	ss.log.Warn("message deferred: memory budget spent", "queue_id", ss.queueID, "in_flight", ss.srv.budget.Used())
	return errNoResources
}

// deliver scans and relays one message and returns the sender's reply.
// holdable says whether the memory budget paid for holding it in the
// quarantine; res is what the transaction holds of the budget, cut to
// what the relay holds once the scan is done.
func (ss *session) deliver(b *body, holdable bool, res *reservation) (*smtp.SMTPError, Outcome, scanner.Verdict) {
	msg := b.parse(ss.srv.parser)
	ss.note.noteMessage(msg)
	if msg.HeaderTooLarge {
		// Refused, not cut: what a customer's server would read past the
		// limit was never scanned.
		ss.abortDownstream()
		ss.log.Info("message refused: header too large", "queue_id", ss.queueID)
		return errHeaderTooLarge, OutcomeTooLarge, scanner.Verdict{}
	}
	if hops := len(msg.Header.Values("Received")); hops > ss.srv.cfg.MaxHops {
		// Counted before the scan: a looping message is refused without
		// costing a scan on every turn, and never relayed.
		ss.abortDownstream()
		ss.log.Warn("message refused: too many hops, mail loop?", "queue_id", ss.queueID, "received_fields", hops)
		return errTooManyHops, OutcomeTooManyHops, scanner.Verdict{}
	}
	env := &scanner.Envelope{
		QueueID:  ss.queueID,
		ClientIP: ss.clientIP,
		// The A-label: SPF looks the name up in the DNS, and the checks
		// write it into our Authentication-Results header, which must
		// stay 7-bit for a customer's server without 8BITMIME.
		HELO:     asciiName(ss.helo()),
		MailFrom: ss.from.String(),
		Rcpts:    ss.rcpts,
		Domain:   ss.domain.Name,
	}
	if enforce := ss.domain.Policy.DMARCEnforce; enforce != nil {
		env.DMARCEnforce = *enforce
	}
	_, env.TLS = ss.conn.TLSConnectionState()
	policy := ss.policy()
	if ss.ownMail(msg) {
		policy.ClientAllowlisted = true
	}
	v := ss.srv.deps.Scanner.Scan(ss.ctx, env, msg, policy)
	ss.note.verdict, ss.note.scanned = v, true
	if reply, outcome, refused := verdictReply(v, ss.queueID, ss.srv.deps.WhyURL); refused {
		if v.Action == scanner.Reject {
			ss.record(v, msg)
		}
		ss.abortDownstream()
		return reply, outcome, v
	}
	if v.Action == scanner.Tag {
		ss.record(v, msg)
	}
	head, off := ss.compose(msg, v, policy)
	if ss.quarantines(v) {
		if held, outcome, ok := ss.hold(v, holdable, int64(len(head))+b.size, &relayed{head: head, rest: msg.Reader(off)}); ok {
			ss.abortDownstream()
			return held, outcome, v
		}
	}
	// Our fields, then the message from its file or memory: a spooled
	// body is never copied whole.
	// The scan, its parse and the quarantine are done with: relaying
	// holds our fields and the body, none of a spooled one. How long it
	// takes is the customer's server's to say (up to relay.data_timeout,
	// reading slowly or sitting on its reply), so the reservation is cut
	// to that: kept whole, a tenant's server sitting on a few big
	// messages held the node's whole memory_budget, and every other
	// tenant's mail heard 452. The relay is given the body, not the
	// parsed message, which the garbage collector may now take.
	res.to(int64(len(head)) + b.held())
	reply, err := ss.tx.Data(&relayed{head: head, rest: b.reader(off)}, &relayedBits{head: head, b: b, off: off})
	ss.note.downstream, ss.note.relayErr = reply, err
	if err != nil {
		ss.note.downstream = customerReply(err)
		r := toSMTP(ss.log, err)
		ss.log.Warn("downstream refused message", "queue_id", ss.queueID, "err", err)
		return r, relayRefused(r), v
	}
	delivered, outcome := deliveredReply(v, ss.queueID, reply)
	return delivered, outcome, v
}

// countTransaction counts one finished DATA transaction by its outcome and
// its reply's class.
func (ss *session) countTransaction(outcome Outcome, reply *smtp.SMTPError) {
	ss.note.outcome = outcome
	if reply.Code/100 == 2 {
		ss.counts.abandoned = 0 // an accepted message starts the count over, as junk's
	}
	ss.srv.metrics.transactions.WithLabelValues(string(outcome), replyClass(reply.Code)).Inc()
}

func (ss *session) abortDownstream() {
	if ss.tx != nil {
		ss.tx.Close()
		ss.tx = nil
	}
}

// record hands a refused or tagged message's source to the recorder. The
// Received fields go along so the recorder can look past trusted
// forwarders (events.trusted_relays).
func (ss *session) record(v scanner.Verdict, msg *scanner.Message) {
	if ss.srv.deps.Recorder == nil {
		return
	}
	names := topSymbolNames(v, 5)
	ss.srv.deps.Recorder.Record(events.Event{
		Time:     time.Now().UTC(),
		ClientIP: ss.clientIP,
		Node:     ss.srv.deps.Node,
		Provider: ss.srv.deps.Provider,
		Domain:   ss.domain.Name,
		DomainID: ss.domain.ID,
		Verdict:  v.Reason,
		Action:   v.Action.String(),
		Score:    v.Score,
		Symbols:  names,
		Received: msg.Header.Values("Received"),
	})
}

var queueIDEncoding = base32.NewEncoding("0123456789BCDFGHJKLMNPQRSTVWXYZA").WithPadding(base32.NoPadding)

// newQueueID is the reference id given to the sender and logged, so a
// customer's complaint can be matched to one log line: 13 characters, as
// always, of 32 bits of time (units of 2^22 ns, about 4 ms, wrapping every
// 208 days) then 32 random bits. The time first keeps the message log's
// index on queue ids append-mostly, as Postfix's long queue ids do: a
// random id put each of a batch's rows on its own index page, and every
// page touched is written again at each commit. The random half still
// makes an id unguessable (the public /why page answers by id) and ids
// unique: two messages in the same 4 ms share an id with odds 2^-32.
func newQueueID() string {
	var b [8]byte
	binary.BigEndian.PutUint32(b[:4], uint32(time.Now().UnixNano()>>22))
	rand.Read(b[4:])
	return queueIDEncoding.EncodeToString(b[:])
}

// improperPipelining hears of a client go-smtp is about to close for
// input behind a command where RFC 2920 forbids it
// (smtp.forbid_unauth_pipelining), with or without a session yet: a
// client writing its whole conversation at once is caught at its EHLO.
func (s *Server) improperPipelining(c *smtp.Conn, after string, unexpected []byte) {
	s.metrics.shownOut.WithLabelValues("pipelining").Inc()
	s.log.Info("closing the session: improper command pipelining",
		"client_ip", addrIP(c.Conn().RemoteAddr()).String(), "after", sanitizeClientText(after),
		"unexpected", sanitizeClientText(string(unexpected)))
}
