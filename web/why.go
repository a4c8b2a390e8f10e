package web

import (
	"context"
	_ "embed"
	"html/template"
	"log/slog"
	"net/http"
	"net/netip"
	"strings"
	"time"

	"github.com/mxgrid/mxgrid/clientip"
	"github.com/mxgrid/mxgrid/internal/ratelimit"
	"github.com/mxgrid/mxgrid/tracking"
	"github.com/mxgrid/mxgrid/verdict"
)

// The public "why was I refused" page: every refusal's reply carries
// <http.public_url>/why/<ref>. The page explains in plain words and
// reveals no content and no recipient beyond the domain. A reference is
// the refusal's time (32 bits, ~4 ms units) then 32 random bits: guessing
// one means 2^32 tries per 4 ms of a refusal's time, so the page needs no
// login; it is rate limited per client address all the same, so nobody
// probes references in bulk.

//go:embed templates/why.html
var whyHTML string

var whyTmpl = template.Must(template.New("why").Parse(whyHTML))

// RefusalSource finds a refusal by its reference; *store.Store.
type RefusalSource interface {
	SearchTracking(ctx context.Context, f tracking.Filter) ([]tracking.Record, tracking.Cursor, error)
}

// WhyOptions configure the page.
type WhyOptions struct {
	// MaxAge: older references answer 404, as unknown ones do.
	MaxAge time.Duration
	// Burst and Interval limit each client address (IPv6 by /64).
	Burst    int
	Interval time.Duration
	Clients  *clientip.Resolver
	Log      *slog.Logger
	Now      func() time.Time
}

// WhyHandler serves GET /why/{ref}.
type WhyHandler struct {
	src   RefusalSource
	opts  WhyOptions
	limit *ratelimit.Limiter[netip.Prefix]
}

// maxWhyClients bounds the rate limiter's table.
const maxWhyClients = 100_000

// NewWhyHandler serves refusals from src.
func NewWhyHandler(src RefusalSource, opts WhyOptions) *WhyHandler {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	return &WhyHandler{src: src, opts: opts, limit: ratelimit.New[netip.Prefix](opts.Burst, opts.Interval, maxWhyClients)}
}

// validRef: a queue id is 13 characters of our base32 alphabet.
func validRef(ref string) bool {
	if len(ref) != 13 {
		return false
	}
	for i := 0; i < len(ref); i++ {
		if !strings.ContainsRune("0123456789BCDFGHJKLMNPQRSTVWXYZA", rune(ref[i])) {
			return false
		}
	}
	return true
}

func (h *WhyHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Robots-Tag", "noindex")
	// No other site frames it, and no browser reads it as anything but
	// the HTML it is: it carries text from the refused message's world.
	w.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	if wait := h.limit.Take(ratelimit.ClientKey(h.opts.Clients.Of(r)), h.opts.Now()); wait > 0 {
		w.Header().Set("Retry-After", ratelimit.RetryAfter(wait))
		http.Error(w, "too many requests, try again later", http.StatusTooManyRequests)
		return
	}
	ref := r.PathValue("ref")
	if !validRef(ref) {
		http.NotFound(w, r)
		return
	}
	recs, _, err := h.src.SearchTracking(r.Context(), tracking.Filter{
		Scope: tracking.Scope{Operator: true}, Reference: ref, Status: tracking.StatusRefused,
		Since: h.opts.Now().Add(-h.opts.MaxAge), Limit: 1,
	})
	if err != nil {
		h.opts.Log.Warn("why page: looking a reference up", "err", err)
		http.Error(w, "temporarily unavailable, try again later", http.StatusServiceUnavailable)
		return
	}
	if len(recs) == 0 {
		http.NotFound(w, r)
		return
	}
	rec := recs[0]
	reason, advice := explain(rec)
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	whyTmpl.Execute(w, map[string]any{
		"When": rec.Time.UTC().Format("2 January 2006, 15:04 MST"), "Domain": rec.Domain, "Ref": ref,
		"Reason": reason, "Advice": advice, "ReplyCode": rec.ReplyCode,
	})
}

// explain says in plain words why rec was refused and what the sender can
// do. It reads the verdict's typed reason, never the reply text, which
// quotes the message's own content (a virus name, a policy's detail).
func explain(rec tracking.Record) (reason, advice string) {
	switch rec.Reason {
	case verdict.ReasonVirus:
		return "The message carried malware (a virus or a dangerous attachment).",
			"Scan the sending computer with an up-to-date antivirus, then send the message again without the infected attachment."
	case verdict.ReasonPolicy:
		return "The message broke the recipient's mail policy (for example a forbidden attachment type, or a sender the recipient blocks).",
			"Send the content another way (a link to a file share instead of the attachment) or ask the recipient to allow your address."
	case verdict.ReasonSpam:
		return "The message looked like spam to our filter.",
			"Check that your domain publishes SPF and signs with DKIM, that your sending server is not on a blocklist, and remove link shorteners or tracking links; then send again."
	}
	return "The recipient's mail server or our filter refused the message.",
		"Check the address, or contact the recipient another way."
}
