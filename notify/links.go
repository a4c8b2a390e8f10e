package notify

import (
	"context"
	"errors"
	"html/template"
	"log/slog"
	"net/http"
	"net/netip"
	"slices"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"github.com/mxgrid/mxgrid/clientip"
	"github.com/mxgrid/mxgrid/internal/ratelimit"
	"github.com/mxgrid/mxgrid/mailaddr"
	"github.com/mxgrid/mxgrid/quarantine"
	"github.com/mxgrid/mxgrid/replytext"
	"github.com/mxgrid/mxgrid/tenant"
	"github.com/mxgrid/mxgrid/tracking"
)

// The digest's links. GET shows a page with a button and changes nothing
// (mail scanners and link previews open links); POST acts. A link someone
// altered answers 403; an expired one 410; a release of a message already
// released or deleted 409, and delivers nothing.

// Releaser releases held mail; *quarantine.Service.
type Releaser interface {
	Item(ctx context.Context, scope tracking.Scope, id int64) (quarantine.Item, error)
	Release(ctx context.Context, scope tracking.Scope, id int64, by string) (quarantine.Item, string, error)
}

// OptOuts records opt-outs; *store.Store.
type OptOuts interface {
	OptOut(ctx context.Context, domainID, customerID int64, recipient string, now time.Time) error
}

// A client address (ratelimit.ClientKey) may make LinkBurst requests of
// digest links, pages and buttons alike, then one per linkInterval; past
// that it is answered 429 without a store read. Whoever held a valid link
// could open it without end, each time a read of its item over the
// connections the mail path shares. The burst is a whole digest's pages
// (maxDigestItems) opened at once, in tabs or by a link scanner, and each
// one's button pressed, so a person clicking through a digest never
// waits; 4 a second after it is faster than anyone reads a page. Altered
// and expired links spend it too: the check comes first, so a refusal
// costs not even a signature check.
const (
	LinkBurst       = 2 * maxDigestItems
	linkInterval    = time.Second / 4
	maxLinkClients  = 100_000
	linkRefusedHelp = "Digest link requests (/q/..., pages and actions alike) answered 429 without their store read: their client address (an IPv6 /64) had made 200, then more than 4 a second."
)

// Links serves /q/release/{token} and /q/optout/{token}.
type Links struct {
	keys    [][]byte
	release Releaser
	optOut  OptOuts
	domains Domains
	clients *clientip.Resolver
	limit   *ratelimit.Limiter[netip.Prefix]
	refused prometheus.Counter
	now     func() time.Time
	log     *slog.Logger
}

// NewLinks serves links signed with keys; an opt-out link acts only while
// domains (the tenant directory) has its domain as its customer held it.
// Requests are limited per client address as clients tells it (nil: the
// connection's peer); refusals are counted with reg (nil: not exported).
func NewLinks(keys [][]byte, r Releaser, o OptOuts, domains Domains, clients *clientip.Resolver, reg prometheus.Registerer, now func() time.Time, log *slog.Logger) *Links {
	if clients == nil {
		clients = clientip.New(nil)
	}
	if now == nil {
		now = time.Now
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	refused := promauto.With(reg).NewCounter(prometheus.CounterOpts{Name: "mxgrid_notify_link_requests_refused_total", Help: linkRefusedHelp})
	return &Links{keys: keys, release: r, optOut: o, domains: domains, clients: clients,
		limit: ratelimit.New[netip.Prefix](LinkBurst, linkInterval, maxLinkClients), refused: refused, now: now, log: log}
}

// Mount registers the routes with handle.
func (l *Links) Mount(handle func(pattern string, h http.Handler)) {
	handle("GET /q/{action}/{token}", http.HandlerFunc(l.serve))
	handle("POST /q/{action}/{token}", http.HandlerFunc(l.serve))
}

var linkPage = template.Must(template.New("link").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><meta name="robots" content="noindex">
<title>{{.Title}}</title><style>body{font:16px/1.5 system-ui,sans-serif;max-width:36rem;margin:3rem auto;padding:0 1rem;color:#222}button{font:inherit;padding:.5rem 1.2rem}</style></head>
<body><h1>{{.Title}}</h1><p>{{.Text}}</p>{{if .Button}}<form method="post"><button id="confirm">{{.Button}}</button></form>{{end}}</body></html>`))

type linkView struct{ Title, Text, Button string }

func (l *Links) page(w http.ResponseWriter, code int, v linkView) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	// The page's one button acts: framed by another site, a decoy over
	// it could have the recipient release spam or opt out unknowingly.
	w.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'")
	w.Header().Set("X-Frame-Options", "DENY")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Referrer-Policy", "no-referrer")
	w.WriteHeader(code)
	linkPage.Execute(w, v)
}

func (l *Links) serve(w http.ResponseWriter, r *http.Request) {
	now := l.now()
	if wait := l.limit.Take(ratelimit.ClientKey(l.clients.Of(r)), now); wait > 0 {
		l.refused.Inc()
		w.Header().Set("Retry-After", ratelimit.RetryAfter(wait))
		l.page(w, http.StatusTooManyRequests, linkView{Title: "Try again in a moment", Text: "Too many quarantine pages were opened from your address. Nothing was changed."})
		return
	}
	link, err := Parse(r.PathValue("token"), l.keys, now)
	switch {
	case errors.Is(err, ErrExpired):
		l.page(w, http.StatusGone, linkView{Title: "This link has expired", Text: "Ask for a new digest, or ask your provider to release the message."})
		return
	case err != nil || string(link.Action) != r.PathValue("action"):
		l.page(w, http.StatusForbidden, linkView{Title: "This link is not valid", Text: "It was changed or did not come from us."})
		return
	}
	if link.Action == ActionOptOut {
		l.serveOptOut(w, r, link)
		return
	}
	ctx := r.Context()
	op := tracking.Scope{Operator: true} // the signature authorizes
	it, err := l.release.Item(ctx, op, link.ItemID)
	if err == nil && !slices.ContainsFunc(it.Recipients, func(s string) bool { return mailbox(s) == mailbox(link.Recipient) }) {
		err = tenant.ErrNotFound // a link is for its recipient's messages only
	}
	if err != nil {
		if !errors.Is(err, tenant.ErrNotFound) {
			l.log.Warn("release link", "err", err)
			l.page(w, http.StatusServiceUnavailable, linkView{Title: "Try again later", Text: "The quarantine is not reachable right now."})
			return
		}
		l.page(w, http.StatusNotFound, linkView{Title: "Message not found", Text: "It was deleted or has expired."})
		return
	}
	if len(it.Recipients) != 1 {
		// Held for several recipients at once (by a node from before
		// messages were held per recipient, during a rolling upgrade; the
		// store's migration splits the rows it finds): a release delivers
		// to every recipient of an item, and this link speaks for one.
		l.page(w, http.StatusConflict, linkView{Title: "Ask your provider", Text: "This message was held for several recipients at once; your provider can release it."})
		return
	}
	if err := it.Releasable(l.now()); err != nil {
		l.notHeld(w, err)
		return
	}
	// Only a POST acts: the GET route also takes HEAD, which link
	// checkers and mail gateways' scanners send to every link in a mail.
	if r.Method != http.MethodPost {
		l.page(w, http.StatusOK, linkView{Title: "Release this message?", Text: "From " + mailaddr.WithALabel(it.Sender) + ": " + it.Subject, Button: "Release it to my mailbox"})
		return
	}
	quarantine.AwaitRelease(w)
	_, _, err = l.release.Release(ctx, op, link.ItemID, "digest link for "+link.Recipient)
	if errors.Is(err, quarantine.ErrRecordPending) {
		// Delivered: "try again later" sent the recipient after a message
		// in their mailbox, to be told it was released already.
		l.page(w, http.StatusOK, linkView{Title: "Released", Text: "The message is on its way to your mailbox; the quarantine shows it released once its database answers again."})
		return
	}
	if err != nil {
		if errors.Is(err, quarantine.ErrNotHeld) {
			l.notHeld(w, err)
			return
		}
		if errors.Is(err, quarantine.ErrBusy) {
			// Nothing was tried: the node's max_open_bytes is spent for now.
			w.Header().Set("Retry-After", "5")
			l.page(w, http.StatusTooManyRequests, linkView{Title: "Try again in a moment", Text: "Many held messages are being opened right now; yours stays in the quarantine."})
			return
		}
		l.log.Warn("release link", "item", link.ItemID, "err", err)
		if errors.Is(err, quarantine.ErrMaybeDelivered) {
			l.page(w, http.StatusBadGateway, linkView{Title: "Delivery not confirmed", Text: "The connection to your mail server was lost after the message was sent, so it may be in your mailbox. It is not released again; ask your provider if you did not get it."})
			return
		}
		if refused := (*quarantine.RefusedError)(nil); errors.As(err, &refused) {
			l.page(w, http.StatusBadGateway, linkView{Title: "Not delivered", Text: "Your mail server refused the message for good, so releasing it again will not help: " +
				replytext.Sanitize(refused.Reply, 300) + ". It stays in the quarantine; ask your provider about it."})
			return
		}
		l.page(w, http.StatusBadGateway, linkView{Title: "Not delivered yet", Text: "Your mail server did not take the message; it stays in the quarantine. Try again later."})
		return
	}
	l.page(w, http.StatusOK, linkView{Title: "Released", Text: "The message is on its way to your mailbox."})
}

// notHeld answers a release of an item not held (err is ErrNotHeld or
// ErrReleasing). One being released is not said to be released: a double
// click's second request answered so, and the page it left showed the
// message released though the first request's delivery failed and it
// stayed held.
func (l *Links) notHeld(w http.ResponseWriter, err error) {
	if abandoned := (*quarantine.AbandonedError)(nil); errors.As(err, &abandoned) {
		l.page(w, http.StatusConflict, linkView{Title: "Release did not finish", Text: "A release of this message began at " +
			abandoned.Since.UTC().Format(time.RFC3339) + " and did not finish. Whether it reached your mailbox is unknown, so it is not released again; it is removed from the quarantine when its retention ends. Ask your provider if you did not get it."})
		return
	}
	if errors.Is(err, quarantine.ErrReleasing) {
		l.page(w, http.StatusConflict, linkView{Title: "Being released", Text: "This message is being delivered to your mailbox right now. If your mail server does not take it, it stays in the quarantine: open this link again in a moment."})
		return
	}
	l.page(w, http.StatusConflict, linkView{Title: "Already released", Text: "This message was released (or deleted) already; it is not delivered again."})
}

func (l *Links) serveOptOut(w http.ResponseWriter, r *http.Request, link Link) {
	rcpt := mailbox(link.Recipient)
	// The domain's mailboxes are another tenant's once it is deleted and
	// its name created again, or moved to another customer: the former
	// owner's link must not stop their digests.
	if dom, ok := l.domains.Lookup(recipientDomain(rcpt)); !ok || dom.ID != link.ItemID || dom.CustomerID != link.CustomerID {
		l.page(w, http.StatusGone, linkView{Title: "This link no longer works", Text: "Ask your provider about quarantine digests."})
		return
	}
	if r.Method != http.MethodPost {
		l.page(w, http.StatusOK, linkView{Title: "Stop quarantine digests?", Text: "No more digests to " + link.Recipient + ". Held mail stays available through your provider.", Button: "Stop the digests"})
		return
	}
	if err := l.optOut.OptOut(r.Context(), link.ItemID, link.CustomerID, rcpt, l.now()); err != nil {
		l.log.Warn("opt-out link", "err", err)
		l.page(w, http.StatusServiceUnavailable, linkView{Title: "Try again later", Text: "This could not be saved right now."})
		return
	}
	l.page(w, http.StatusOK, linkView{Title: "Digests stopped", Text: "You will get no more quarantine digests."})
}
