// Package auth authenticates the sender: SPF for the client IP against
// MAIL FROM and HELO (RFC 7208), every DKIM signature (RFC 6376), and DMARC
// with identifier alignment (RFC 7489), which go-msgauth leaves to us.
//
// Results become weighted symbols and RFC 8601 resinfo strings; the SMTP
// session writes them into our single Authentication-Results header after
// removing forged ones with StripOurAuthResults. A DMARC failure under
// p=reject refuses the message only where enforcement is on.
package auth

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"blitiri.com.ar/go/spf"
	"github.com/emersion/go-msgauth/dkim"
	"github.com/emersion/go-msgauth/dmarc"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"github.com/mxgrid/mxgrid/dnsresolver"
	"github.com/mxgrid/mxgrid/scanner"
)

// Weights returns the default weight of every symbol the check emits. SPF
// and DKIM alone prove little (forwarding breaks SPF, mailing lists break
// DKIM); DMARC, which ties them to the visible From, carries the weight.
func Weights() map[string]float64 {
	return map[string]float64{
		"SPF_PASS": -0.5, "SPF_FAIL": 2, "SPF_SOFTFAIL": 1, "SPF_NEUTRAL": 0, "SPF_NONE": 0.5,
		"SPF_TEMPERROR": 0, "SPF_PERMERROR": 0.5,
		"SPF_HELO_PASS": 0, "SPF_HELO_FAIL": 1, "SPF_HELO_SOFTFAIL": 0.3, "SPF_HELO_NEUTRAL": 0, "SPF_HELO_NONE": 0,
		"SPF_HELO_TEMPERROR": 0, "SPF_HELO_PERMERROR": 0,
		"DKIM_PASS": -0.5, "DKIM_FAIL": 1.5, "DKIM_TEMPERROR": 0, "DKIM_PERMERROR": 0.5, "DKIM_NONE": 0,
		"DMARC_PASS": -1, "DMARC_FAIL_REJECT": 4, "DMARC_FAIL_QUARANTINE": 3, "DMARC_FAIL_NONE": 0.5,
		"DMARC_NONE": 0, "DMARC_TEMPERROR": 0, "DMARC_PERMERROR": 0,
		"ARC_PASS": 0, "ARC_FAIL": 0.5, "ARC_NONE": 0, "ARC_TEMPERROR": 0,
	}
}

// Resolver is the DNS surface the check needs; *dnsresolver.Cached and
// *net.Resolver satisfy it.
type Resolver interface {
	spf.DNSResolver
}

// Check is SPF, DKIM and DMARC as one scanner.Check: DMARC needs the other
// two's results, and one check yields one set of Authentication-Results.
// Safe for concurrent use.
type Check struct {
	cfg     Config
	res     Resolver
	weights map[string]float64
	log     *slog.Logger
	results *prometheus.CounterVec
	// counters holds results' counters once used, by resultMethods and
	// resultNames: WithLabelValues hashes and looks up its labels, for
	// each of a message's five or so results: 100 ns each, 7% of the check's
	// time on cached DNS answers. A counter is made on first use as
	// before, so no series appears that never counted.
	counters [len(resultMethods)][len(resultNames)]atomic.Pointer[prometheus.Counter]
}

var (
	resultMethods = [...]string{"spf", "spf_helo", "dkim", "dmarc", "arc"}
	resultNames   = [...]string{"pass", "fail", "softfail", "neutral", "none", "temperror", "permerror"}
)

// count counts one result of method.
func (c *Check) count(method, result string) {
	i, j := slices.Index(resultMethods[:], method), slices.Index(resultNames[:], result)
	if i < 0 || j < 0 {
		c.results.WithLabelValues(method, result).Inc()
		return
	}
	p := &c.counters[i][j]
	ctr := p.Load()
	if ctr == nil {
		v := c.results.WithLabelValues(method, result)
		ctr = &v
		p.Store(ctr)
	}
	(*ctr).Inc()
}

var _ scanner.Check = (*Check)(nil)

// New builds the check from a validated config with AuthservID filled in.
// Metrics go to reg.
func New(cfg Config, res Resolver, log *slog.Logger, reg prometheus.Registerer) (*Check, error) {
	if cfg.AuthservID == "" {
		return nil, errors.New("auth: authserv_id is empty (set it, or fill in the SMTP hostname)")
	}
	w := Weights()
	for k, v := range cfg.Weights {
		w[k] = v
	}
	results := promauto.With(reg).NewCounterVec(prometheus.CounterOpts{
		Name: "mxgrid_auth_results_total",
		Help: "Authentication results by method (spf, spf_helo, dkim, dmarc) and RFC 8601 result (pass, fail, softfail, neutral, none, temperror, permerror). DKIM counts every signature.",
	}, []string{"method", "result"})
	return &Check{cfg: cfg, res: res, weights: w, log: log.With("component", "auth"), results: results}, nil
}

// Name implements scanner.Check.
func (c *Check) Name() string { return "auth" }

// Stage is the pipeline stage for this check, under auth.on_error
// (accept by default: authentication adds evidence, its absence is no
// reason to hold mail) and auth.timeout.
func (c *Check) Stage() scanner.Stage {
	return scanner.NewStage(c, c.cfg.StageConfig)
}

// outcome is one method's result, in RFC 8601 terms.
type outcome struct {
	method string // spf, dkim, dmarc
	result string // pass, fail, softfail, neutral, none, temperror, permerror
	// props are "smtp.mailfrom=..." etc.; a method has at most two
	// (DKIM's header.d and header.i), and an empty key is none.
	props  [2]prop
	reason string // reason= text, or a comment for DMARC's policy
	symbol string
	detail string
}

type prop struct{ key, value string }

// symbolName is prefix + upper-cased result ("SPF_" and "pass" make
// SPF_PASS), taken from knownSymbols for the symbols there are rather than
// built per message.
func symbolName(prefix, result string) string {
	if name, ok := knownSymbols[[2]string{prefix, result}]; ok {
		return name
	}
	return prefix + strings.ToUpper(result)
}

// knownSymbols maps every split of a symbol name after an underscore,
// prefix and lower-cased rest, to the name.
var knownSymbols = func() map[[2]string]string {
	m := map[[2]string]string{}
	for name := range Weights() {
		for i := range len(name) {
			if name[i] == '_' {
				m[[2]string{name[:i+1], strings.ToLower(name[i+1:])}] = name
			}
		}
	}
	return m
}()

// spfResult is SPF for one identity: the domain checked, for alignment.
type spfResult struct {
	outcome
	domain string
}

// dkimResult is one signature's verification.
type dkimResult struct {
	outcome
	domain string
	// testing: the key says its domain is testing DKIM (t=y), and RFC
	// 6376 3.6.1 has its mail treated as unsigned "even should the
	// signature fail to verify": the result is reported, but neither
	// scores nor authenticates anything.
	testing bool
}

// verified reports whether d is a signature that authenticates its domain.
func (d dkimResult) verified() bool { return d.result == "pass" && !d.testing }

// methods is what one message's methods found; the goroutines that run
// them share it. A method not run has an empty outcome.method.
type methods struct {
	wg    sync.WaitGroup
	spf   spfResults
	dkims []dkimResult
	arc   outcome
	// policies are the author domains' DMARC records, fromErr why
	// the From domains could not all be read (lookupPolicies).
	policies []authorPolicy
	fromErr  error
}

// Check implements scanner.Check.
// The pipeline's deadline (auth.timeout) ends lookups still out, as
// temperror results.
func (c *Check) Check(ctx context.Context, env *scanner.Envelope, msg *scanner.Message) (scanner.Result, error) {
	m := &methods{}
	// The MAIL FROM identity is checked on this goroutine, which would
	// only wait, after ARC, when ARC has no fields to verify (most mail):
	// a goroutine less to start and wake for every message. With ARC
	// fields it goes alongside, so neither's lookups wait for the other's.
	spfHere := c.cfg.SPF && !(c.cfg.ARC && hasARCFields(msg))
	switch {
	case !c.cfg.SPF:
	case isDomain(env.HELO) && spfDomain(mailFromSender(env)) == env.HELO:
		// A sender at its own HELO name (a null sender always is): one
		// check_host is most often both identities' result. Under ARC it
		// goes alongside too, when its answers are not cached.
		spfHere = false
		tryCached(ctx, &m.wg, &m.spf, func(ctx context.Context) spfResults { return c.checkSPFBoth(ctx, env) })
	default:
		if !spfHere {
			m.wg.Add(1)
			go func() {
				defer m.wg.Done()
				m.spf.mailFrom = c.checkSPF(ctx, env, env.MailFrom, "smtp.mailfrom", "SPF_")
			}()
		}
		if isDomain(env.HELO) {
			// RFC 7208 2.3: the HELO identity is checked as
			// postmaster@helo, separately from MAIL FROM.
			tryCached(ctx, &m.wg, &m.spf.helo, func(ctx context.Context) spfResult {
				return c.checkSPF(ctx, env, heloSender(env), "smtp.helo", "SPF_HELO_")
			})
		}
	}
	if c.cfg.DKIM {
		if unsignedInMemory(msg) {
			// Nothing to look up: not worth a goroutine.
			m.dkims = noDKIM()
		} else {
			tryCached(ctx, &m.wg, &m.dkims, func(ctx context.Context) []dkimResult { return c.checkDKIM(ctx, msg) })
		}
	}
	if c.cfg.DMARC {
		m.policies, m.fromErr = c.lookupPolicies(ctx, msg, &m.wg)
	}
	if c.cfg.ARC {
		// On this goroutine, which would only wait: still alongside the
		// others, one goroutine fewer.
		result, reason := c.verifyARC(ctx, msg)
		m.arc = outcome{method: "arc", result: result, reason: reason, symbol: symbolName("ARC_", result)}
	}
	if spfHere {
		m.spf.mailFrom = c.checkSPF(ctx, env, env.MailFrom, "smtp.mailfrom", "SPF_")
	}
	m.wg.Wait()

	var buf [8]outcome
	outs := buf[:0]
	if m.spf.mailFrom.method != "" {
		outs = append(outs, m.spf.mailFrom.outcome)
	}
	if m.spf.helo.method != "" {
		outs = append(outs, m.spf.helo.outcome)
	}
	for _, d := range m.dkims {
		outs = append(outs, d.outcome)
	}
	if m.arc.method != "" {
		outs = append(outs, m.arc)
	}
	var res scanner.Result
	if c.cfg.DMARC {
		var mailFrom *spfResult
		if m.spf.mailFrom.method != "" {
			mailFrom = &m.spf.mailFrom
		}
		d := evaluateDMARC(m.policies, m.fromErr, mailFrom, m.dkims)
		outs = append(outs, d.outcome)
		if d.disposition == "reject" && (c.cfg.DMARCEnforce || env.DMARCEnforce) {
			// RFC 7489 6.7 and 7.3: say it is the domain's DMARC policy.
			res.Reject = fmt.Sprintf("message from %s rejected by its domain's DMARC policy", d.fromDomain)
		}
	}
	res.AuthResults = resinfos(outs)
	res.SenderAuthenticated = senderAuthenticated(env.MailFrom, m.spf.mailFrom, m.dkims)
	if len(outs) > 0 {
		res.Symbols = make([]scanner.Symbol, 0, len(outs))
	}
outcomes:
	for _, o := range outs {
		method := o.method
		if strings.HasPrefix(o.symbol, "SPF_HELO_") {
			method = "spf_helo"
		}
		c.count(method, o.result)
		// One symbol per name: two passing signatures are not twice the
		// evidence. Details accumulate.
		for i := range res.Symbols {
			if res.Symbols[i].Name == o.symbol {
				res.Symbols[i].Detail += ", " + o.detail
				continue outcomes
			}
		}
		res.Symbols = append(res.Symbols, scanner.Symbol{Name: o.symbol, Score: c.weights[o.symbol], Detail: o.detail})
	}
	return res, nil
}

// tryCached sets *out to what check finds from the resolver's cache
// alone, on this goroutine; when an answer it needed was not cached, check
// runs again on a goroutine of its own (wg), free to wait for the server
// alongside the other methods. Most answers a busy node needs are cached,
// and a goroutine started and woken for each method of each message cost
// more than their lookups.
func tryCached[T any](ctx context.Context, wg *sync.WaitGroup, out *T, check func(context.Context) T) {
	var probe dnsresolver.CacheProbe
	if v := check(dnsresolver.CacheOnly(ctx, &probe)); !probe.Missed() {
		*out = v
		return
	}
	wg.Go(func() { *out = check(ctx) })
}

// senderAuthenticated reports whether the envelope sender is vouched for:
// SPF passed for its domain (the MAIL FROM identity; a null sender's
// postmaster@HELO is not it), or a verified DKIM signature's domain is its
// domain's organisation, as DMARC's relaxed alignment judges. A bounce
// domain of the same company signs as the company.
func senderAuthenticated(mailFrom string, spfRes spfResult, dkims []dkimResult) bool {
	domain := spfDomain(mailFrom) // the name SPF checked, and DKIM's to align with
	if domain == "" {
		return false
	}
	if spfRes.method != "" && spfRes.result == "pass" {
		return true
	}
	for _, d := range dkims {
		if d.verified() && aligned(d.domain, domain, dmarc.AlignmentRelaxed) {
			return true
		}
	}
	return false
}

// spfResults are SPF's results for the MAIL FROM and HELO identities.
type spfResults struct{ mailFrom, helo spfResult }

// mailFromSender is the sender check_host gets for the MAIL FROM identity:
// a null MAIL FROM is checked as postmaster@HELO (RFC 7208 2.4).
func mailFromSender(env *scanner.Envelope) string {
	if env.MailFrom == "" {
		return heloSender(env)
	}
	return env.MailFrom
}

// heloSender is the sender check_host gets for the HELO identity
// (RFC 7208 2.3).
func heloSender(env *scanner.Envelope) string { return "postmaster@" + env.HELO }

// spfDomain is the domain check_host checks for sender: what follows the
// last '@' (a quoted local part may hold one; the library splits at the
// first, and would check a domain made of the local part's tail), in
// lower-case A-labels (RFC 8616 4: an SMTPUTF8 sender's domain is looked
// up as its A-label; looked up in UTF-8 it had no record, SPF none, and an
// IDN sender's pass never aligned with its DMARC policy).
func spfDomain(sender string) string {
	at := strings.LastIndexByte(sender, '@')
	if at < 0 {
		return ""
	}
	return aLabels(strings.TrimSuffix(sender[at+1:], "."))
}

// spfSender is the sender check_host gets, whose spfDomain is domain (not
// empty: sender holds an '@'): its local part and domain. A local part
// holding an '@' goes as "postmaster", as a missing one does (RFC 7208
// 4.3): only %{l} and %{s} macros see it.
func spfSender(sender, domain string) string {
	at := strings.LastIndexByte(sender, '@')
	local := sender[:at]
	switch {
	case strings.IndexByte(local, '@') >= 0:
		local = "postmaster"
	case sender[at+1:] == domain:
		return sender // most senders: nothing to rewrite, nothing to allocate
	}
	return local + "@" + domain
}

// arSender is sender as Authentication-Results names it: a UTF-8 domain
// as the A-labels check_host got (domain, spfDomain's). Written raw, it
// made our own header field 8-bit, and a sender at a UTF-8 domain with an
// ASCII local part, whose envelope goes to a customer's server without
// SMTPUTF8 as A-labels, had its 7-bit message refused 550 5.6.7 for it.
func arSender(sender, domain string) string {
	if isPrintableASCII(sender) || domain == "" || !isPrintableASCII(domain) {
		return sender
	}
	return sender[:strings.LastIndexByte(sender, '@')+1] + domain
}

// checkSPF runs check_host for one identity; an empty sender is a null
// MAIL FROM.
func (c *Check) checkSPF(ctx context.Context, env *scanner.Envelope, sender, ptype, symbolPrefix string) spfResult {
	if sender == "" {
		sender = heloSender(env)
	}
	r, _ := c.runSPF(ctx, env, sender)
	return r.of(env, sender, ptype, symbolPrefix)
}

// checkSPFBoth checks MAIL FROM and HELO where both name the domain HELO
// names: check_host then reads the same records for each, and its result
// can differ between them only where a record expands the sender's local
// part (%{s} or %{l}, RFC 7208 7.2). Without a macro in the TXT answers
// it read, the first run stands for the second, the same lookups, record
// parsing and matching again.
func (c *Check) checkSPFBoth(ctx context.Context, env *scanner.Envelope) spfResults {
	mailFrom, helo := mailFromSender(env), heloSender(env)
	r, macros := c.runSPF(ctx, env, mailFrom)
	out := spfResults{mailFrom: r.of(env, mailFrom, "smtp.mailfrom", "SPF_")}
	if macros && mailFrom != helo {
		r, _ = c.runSPF(ctx, env, helo)
	}
	out.helo = r.of(env, helo, "smtp.helo", "SPF_HELO_")
	return out
}

// runSPF runs check_host for sender, leaving the identity's property and
// symbol to of; macros reports a '%' in a TXT answer it read.
func (c *Check) runSPF(ctx context.Context, env *scanner.Envelope, sender string) (r spfResult, macros bool) {
	domain := spfDomain(sender)
	r = spfResult{domain: domain}
	r.method = "spf"
	var (
		result spf.Result
		err    error
	)
	if !env.ClientIP.IsValid() || domain == "" {
		result, err = spf.None, errors.New("no client IP or no domain to check")
	} else {
		res := &ptrBudgetResolver{Resolver: c.res}
		// The library reports why in err even on pass ("matched ip");
		// the Result alone is the verdict.
		result, err = spf.CheckHostWithSender(net.IP(env.ClientIP.Unmap().AsSlice()), env.HELO, spfSender(sender, domain),
			spf.WithResolver(res), spf.WithContext(ctx))
		macros = res.macros
	}
	r.result = string(result)
	r.detail = domain
	if err != nil && result != spf.Pass && result != spf.Fail && result != spf.SoftFail && result != spf.Neutral {
		r.reason = err.Error()
	}
	return r, macros
}

// of is r as the result for one identity: sender's, named ptype in
// Authentication-Results, its symbol symbolPrefix and the result.
func (r spfResult) of(env *scanner.Envelope, sender, ptype, symbolPrefix string) spfResult {
	r.props[0] = prop{ptype, arSender(sender, r.domain)}
	if ptype == "smtp.helo" {
		r.props[0] = prop{ptype, env.HELO}
	}
	r.symbol = symbolName(symbolPrefix, r.result)
	return r
}

// checkDKIM verifies every signature (up to max_signatures).
// maxDKIMHeader is the largest header DKIM verification reads. go-msgauth
// joins a field's continuation lines by concatenating each to the last, in
// time quadratic in the field's length, and without looking at ctx: a
// 156 KB header folded into one-character lines cost 1.2 s of CPU, which
// a sender could repeat on every connection. Postfix keeps 100 KB of a
// header (header_size_limit); real headers stay far below 64 KiB.
const maxDKIMHeader = 64 << 10

func (c *Check) checkDKIM(ctx context.Context, msg *scanner.Message) []dkimResult {
	if msg.BodyOffset > maxDKIMHeader {
		return []dkimResult{{outcome: outcome{method: "dkim", result: "permerror",
			reason: fmt.Sprintf("header of %d bytes is too large to verify", msg.BodyOffset), symbol: "DKIM_PERMERROR"}}}
	}
	head, err := msg.Head()
	if err != nil {
		return []dkimResult{{outcome: outcome{method: "dkim", result: "permerror", reason: err.Error(), symbol: "DKIM_PERMERROR"}}}
	}
	if n := mostSignedNames(head, c.cfg.MaxSignatures); n > maxSignedNames {
		return []dkimResult{{outcome: outcome{method: "dkim", result: "permerror",
			reason: fmt.Sprintf("a signature lists %d header fields", n), symbol: "DKIM_PERMERROR"}}}
	}
	lookup := boundedKeyLookup(func(name string) ([]string, error) { return c.res.LookupTXT(ctx, name) })
	r, release := msg.BufferedReader(0)
	defer release()
	verifs, err := dkim.VerifyWithOptions(r, &dkim.VerifyOptions{
		LookupTXT:        lookup,
		MaxVerifications: c.cfg.MaxSignatures,
	})
	if err != nil && !errors.Is(err, dkim.ErrTooManySignatures) {
		// The header could not be read at all: no signature can be judged.
		return []dkimResult{{outcome: outcome{method: "dkim", result: "permerror", reason: err.Error(), symbol: "DKIM_PERMERROR"}}}
	}
	if len(verifs) == 0 {
		return noDKIM()
	}
	out := make([]dkimResult, 0, len(verifs))
	for _, v := range verifs {
		d := dkimResult{domain: strings.ToLower(v.Domain)}
		d.method = "dkim"
		// RFC 8601 2.7.1. A body hash mismatch is neither temp nor perm
		// in go-msgauth's terms: any other error is a plain fail.
		switch {
		case v.Err == nil:
			d.result = "pass"
		case dkim.IsTempFail(v.Err):
			d.result = "temperror"
		case dkim.IsPermFail(v.Err):
			d.result = "permerror"
		default:
			d.result = "fail"
		}
		if v.Err != nil {
			d.reason = strings.TrimPrefix(v.Err.Error(), "dkim: ")
		}
		d.testing = v.Testing
		n := 0
		if v.Domain != "" {
			d.props[n] = prop{"header.d", v.Domain}
			n++
		}
		if v.Identifier != "" {
			d.props[n] = prop{"header.i", v.Identifier}
		}
		d.symbol = symbolName("DKIM_", d.result)
		d.detail = d.domain
		if d.testing {
			d.symbol = "DKIM_NONE"
			d.detail = d.domain + " (testing)"
			if d.reason == "" {
				d.reason = "key in testing mode"
			} else {
				d.reason += "; key in testing mode"
			}
		}
		out = append(out, d)
	}
	return out
}

// maxSignedNames bounds the header field names one DKIM-Signature's h=
// may list. go-msgauth searches the whole header for each name, in time
// h= times the fields and without looking at ctx: within maxDKIMHeader,
// 29,000 names over 990 fields cost about 0.5 s of CPU per signature,
// with a key in the sender's own DNS. Signers list a dozen or two; those
// that oversign list each field twice.
const maxSignedNames = 256

// mostSignedNames is the most names an h= lists among the first limit
// DKIM-Signature fields of head, read as go-msgauth reads them (see
// unsignedHeader: a field is its first line and the continuation lines
// after it, its name what comes before its first colon) and their tags
// split as it splits them: one name more than the colons in h=.
func mostSignedNames(head []byte, limit int) int {
	most := 0
	var field []byte // the field being read, its lines each ended by CRLF
	done := func() {
		name, value, ok := bytes.Cut(field, []byte(":"))
		if ok && bytes.EqualFold(bytes.TrimSpace(name), []byte(dkimSignature)) {
			most = max(most, strings.Count(parseTags(string(value))["h"], ":")+1)
			limit--
		}
		field = field[:0]
	}
	for len(head) > 0 && limit > 0 {
		line, rest, _ := bytes.Cut(head, []byte("\n"))
		head = rest
		line = bytes.TrimSuffix(line, []byte("\r"))
		if len(line) == 0 {
			break
		}
		if len(field) > 0 && line[0] != ' ' && line[0] != '\t' {
			done()
		}
		field = append(append(field, line...), "\r\n"...)
	}
	if limit > 0 {
		done()
	}
	return most
}

func noDKIM() []dkimResult {
	return []dkimResult{{outcome: outcome{method: "dkim", result: "none", symbol: "DKIM_NONE"}}}
}

// unsignedInMemory reports a message for which checkDKIM can only find
// no signature: held in memory, whose body cannot fail to read, with an
// unsignedHeader. It spares most mail VerifyWithOptions's copy of every
// header line and its read of the body.
func unsignedInMemory(msg *scanner.Message) bool {
	return msg.Raw != nil && unsignedHeader(msg.Raw)
}

// unsignedHeader reports whether go-msgauth's VerifyWithOptions, reading
// raw, would read a whole header without a DKIM-Signature field: lines end
// at LF, less one CR before it (bufio.Reader.ReadLine), a blank line ends
// the header and EOF before it is an error; a field's name is what comes
// before its first colon, trimmed, compared with strings.EqualFold. A
// field whose first line has no colon could take its name from the next
// line: it answers false, leaving the message to VerifyWithOptions.
func unsignedHeader(raw []byte) bool {
	first := true
	for {
		line, rest, ok := bytes.Cut(raw, []byte("\n"))
		if !ok {
			return false
		}
		raw = rest
		line = bytes.TrimSuffix(line, []byte("\r"))
		switch {
		case len(line) == 0:
			return true
		case !first && (line[0] == ' ' || line[0] == '\t'):
			continue // a continuation: its field's name is on its first line
		}
		first = false
		name, _, ok := bytes.Cut(line, []byte(":"))
		if !ok || bytes.EqualFold(bytes.TrimSpace(name), []byte(dkimSignature)) {
			return false
		}
	}
}

// dkimSignature is the field go-msgauth verifies.
const dkimSignature = "DKIM-Signature"

// isDomain reports whether a HELO argument is a domain name we can check,
// not an address literal ("[192.0.2.1]") or garbage.
// A name that cannot be an IP address is not given to net.ParseIP, whose
// error for it allocates: every message's HELO is asked about.
func isDomain(s string) bool {
	return s != "" && !strings.HasPrefix(s, "[") && strings.Contains(s, ".") && !(dnsresolver.MayBeIP(s) && net.ParseIP(s) != nil)
}
