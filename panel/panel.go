// Package panel is the resellers' web control panel under /panel/:
// server-rendered pages over admin.Service, so every decision (validation,
// who may see and change what) is the admin API's own. Sessions are kept
// server-side behind an opaque cookie, every form carries a CSRF token, and the pages run no inline
// script or style (CSP without 'unsafe-inline').
package panel

import (
	"bytes"
	"context"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/mxgrid/mxgrid/admin"
	"github.com/mxgrid/mxgrid/clientip"
	"github.com/mxgrid/mxgrid/internal/ratelimit"
	"github.com/mxgrid/mxgrid/mailaddr"
	"github.com/mxgrid/mxgrid/netguard"
	"github.com/mxgrid/mxgrid/quarantine"
	"github.com/mxgrid/mxgrid/spammap"
	"github.com/mxgrid/mxgrid/tenant"
	"github.com/mxgrid/mxgrid/tracking"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// MapScoper renders white-label maps; *spammap.Scheduler implements it.
type MapScoper interface {
	Scoped(ctx context.Context, sc spammap.Scope) (*spammap.Map, error)
}

// Options are what the panel needs besides its config.
type Options struct {
	Service *admin.Service
	DataDir string
	// SMTPHostname is the EHLO name of "test route" sessions.
	SMTPHostname string
	// Guard vets "Test route" destinations like the relay's (tenant
	// networks, loops); nil refuses every non-public network.
	Guard *netguard.Guard
	Log   *slog.Logger
	// Sessions stores logins (*store.PanelSessions); nil keeps them in
	// memory, for a node without a database.
	Sessions SessionStore
	// ClientIP tells the client's address behind trusted proxies; nil
	// trusts none.
	ClientIP *clientip.Resolver
	// Misses limits each client address's logos and sessions that do
	// not exist, the node's other public lookups' too; nil gives the
	// panel a budget of its own.
	Misses *ratelimit.Misses
}

// Panel serves /panel/.
type Panel struct {
	cfg      Config
	svc      *admin.Service
	sign     signer
	limits   *loginLimits
	sessions SessionStore
	clientIP *clientip.Resolver
	pages    map[string]*template.Template
	helo     string
	log      *slog.Logger
	now      func() time.Time
	dialSMTP func(ctx context.Context, addr string) (net.Conn, error)
	// guard also tells a route test that a server's name is the cluster's.
	guard *netguard.Guard
	// routeTests limits "Test route" per reseller.
	routeTests *ratelimit.Limiter[int64]
	// takenEmails rations, per reseller, the answers that an address is
	// already a login (users.go).
	takenEmails *ratelimit.Limiter[int64]
	// logos holds the logos served lately (logo.go).
	logos  logoCache
	misses *ratelimit.Misses
}

// New builds the panel; it reads or creates the session key.
func New(cfg Config, opts Options) (*Panel, error) {
	key, err := loadKey(cfg.SessionKeyFile, opts.DataDir)
	if err != nil {
		return nil, err
	}
	pages, err := parsePages()
	if err != nil {
		return nil, err
	}
	log := opts.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	guard := opts.Guard
	if guard == nil {
		guard = netguard.New(nil, nil)
	}
	d := &net.Dialer{Timeout: 10 * time.Second}
	var sessions SessionStore = newMemorySessions()
	if opts.Sessions != nil {
		sessions = opts.Sessions
	}
	ips := opts.ClientIP
	if ips == nil {
		ips = clientip.New(nil)
	}
	misses := opts.Misses
	if misses == nil {
		misses = ratelimit.NewMisses(nil)
	}
	return &Panel{
		cfg: cfg, svc: opts.Service, sign: signer{key}, limits: newLoginLimits(cfg), sessions: sessions, clientIP: ips,
		pages: pages, helo: opts.SMTPHostname, log: log, now: time.Now, guard: guard,
		// A route test is a tenant route: same check as the relay's.
		dialSMTP:    func(ctx context.Context, addr string) (net.Conn, error) { return guard.Dial(ctx, d, addr, false) },
		routeTests:  ratelimit.New[int64](cfg.RouteTestBurst, cfg.RouteTestInterval, 0),
		takenEmails: ratelimit.New[int64](takenEmailBurst, takenEmailInterval, 0),
		misses:      misses,
	}, nil
}

var funcs = template.FuncMap{
	"when": func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04 UTC") },
	"join": strings.Join,
	"list": func(s ...string) []string { return s },
	"since": func(d string) string {
		return map[string]string{"1h": "the last hour", "24h": "the last 24 hours", "168h": "the last 7 days", "720h": "the last 30 days"}[d]
	},
	"statusClass": func(s tracking.Status) string {
		return map[tracking.Status]string{tracking.StatusDelivered: "ok", tracking.StatusDeferred: "warn", tracking.StatusRefused: "bad", tracking.StatusQuarantined: "warn"}[s]
	},
	"deferText": deferText,
	// A sender's domain in another script is followed by its A-label:
	// look-alike letters read as the domain they imitate.
	"sender": mailaddr.WithALabel,
	"num": func(n int64) string {
		s := strconv.FormatInt(n, 10)
		for i := len(s) - 3; i > 0; i -= 3 {
			s = s[:i] + "," + s[i:]
		}
		return s
	},
}

// parsePages builds one template set per page over the shared layout.
func parsePages() (map[string]*template.Template, error) {
	base, err := template.New("layout.html").Funcs(funcs).ParseFS(templateFS, "templates/layout.html", "templates/fields.html")
	if err != nil {
		return nil, fmt.Errorf("panel: templates: %w", err)
	}
	names, err := fs.Glob(templateFS, "templates/*.html")
	if err != nil {
		return nil, fmt.Errorf("panel: templates: %w", err)
	}
	pages := make(map[string]*template.Template)
	for _, n := range names {
		name := strings.TrimSuffix(strings.TrimPrefix(n, "templates/"), ".html")
		if name == "layout" || name == "fields" {
			continue
		}
		t, err := template.Must(base.Clone()).ParseFS(templateFS, n)
		if err != nil {
			return nil, fmt.Errorf("panel: template %s: %w", name, err)
		}
		pages[name] = t
	}
	return pages, nil
}

// Routes are the patterns Mount registers.
func (p *Panel) routes() map[string]http.HandlerFunc {
	a := p.authed
	return map[string]http.HandlerFunc{
		"GET /panel/{$}":         a(p.home),
		"GET /panel/login":       p.loginForm,
		"POST /panel/login":      p.login,
		"POST /panel/logout":     a(p.logout),
		"GET /panel/static/":     p.static,
		"GET /panel/logo/{slug}": p.logo,

		"GET /panel/resellers":  a(p.resellers),
		"POST /panel/resellers": a(p.createReseller),

		// A reseller's users: its own at /panel/users, any reseller's (for
		// the operator) under the reseller.
		"GET /panel/users":                 a(p.users),
		"POST /panel/users":                a(p.addUser),
		"GET /panel/resellers/{id}/users":  a(p.users),
		"POST /panel/resellers/{id}/users": a(p.addUser),
		"POST /panel/users/{id}/delete":    a(p.deleteUser),
		"GET /panel/account":               a(p.account),
		"POST /panel/account/password":     a(p.changePassword),

		"GET /panel/customers":                   a(p.customers),
		"POST /panel/customers":                  a(p.createCustomer),
		"GET /panel/customers/{id}":              a(p.customer),
		"POST /panel/customers/{id}":             a(p.updateCustomer),
		"POST /panel/customers/{id}/suspend":     a(p.suspendCustomer),
		"POST /panel/customers/{id}/delete":      a(p.deleteCustomer),
		"POST /panel/customers/{id}/domains":     a(p.createDomain),
		"GET /panel/domains/{id}":                a(p.domain),
		"POST /panel/domains/{id}":               a(p.updateDomain),
		"POST /panel/domains/{id}/delete":        a(p.deleteDomain),
		"POST /panel/domains/{id}/verify":        a(p.domainAction(p.svc.VerifyDomain)),
		"POST /panel/domains/{id}/approve":       a(p.domainAction(p.svc.ApproveDomain)),
		"POST /panel/domains/{id}/test-route":    a(p.testRoute),
		"POST /panel/domains/{id}/recipients":    a(p.addRecipient),
		"POST /panel/domains/{id}/import":        p.upload(p.ownDomain, p.importRecipients),
		"POST /panel/domains/{id}/recipients/rm": a(p.deleteRecipient),
		"GET /panel/domains/{id}/stats":          a(p.stats),

		"GET /panel/brand":       a(p.brand),
		"POST /panel/brand":      a(p.updateBrand),
		"POST /panel/brand/logo": a(p.uploadLogo),
		"GET /panel/map":         a(p.mapEmbed),

		"GET /panel/quarantine":               a(p.quarantineList),
		"GET /panel/quarantine/{id}":          a(p.quarantined),
		"POST /panel/quarantine/{id}/release": a(p.releaseQuarantined),
		"POST /panel/quarantine/{id}/delete":  a(p.deleteQuarantined),

		"GET /panel/messages":      a(p.messages),
		"GET /panel/messages/{id}": a(p.message),
	}
}

// Mount registers the panel's routes with handle (web.Server.Handle).
func (p *Panel) Mount(handle func(pattern string, h http.Handler)) {
	for pattern, h := range p.routes() {
		handle(pattern, p.secure(h))
	}
}

// secure sets the headers every panel answer carries.
func (p *Panel) secure(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hdr := w.Header()
		hdr.Set("X-Content-Type-Options", "nosniff")
		hdr.Set("Referrer-Policy", "same-origin")
		hdr.Set("X-Frame-Options", "DENY")
		h.ServeHTTP(w, r)
	})
}

// request is one authenticated request's context for handlers and pages.
type request struct {
	w    http.ResponseWriter
	r    *http.Request
	sess session
	// reseller is the logged-in reseller (zero for the operator), for the
	// white label.
	reseller tenant.Reseller
	hasLogo  bool
}

func (p *Panel) authed(fn func(*request) error) http.HandlerFunc {
	return p.upload(nil, fn)
}

// upload is authed for a form that carries a file to the object its path
// names: owns, the check that the session may write that object, runs
// before the body is read, so another tenant's id (or a missing one)
// answers "Not found" without its upload parsed (up to maxCSV, spooled to
// disk) first. Without owns, a POST's form is read first, as authed does.
func (p *Panel) upload(owns, fn func(*request) error) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		sess, ok, err := p.readSession(r)
		if err == nil && ok {
			ok, err = p.sessionCurrent(r.Context(), sess)
		}
		if refused := (sessionsRefused{}); errors.As(err, &refused) {
			w.Header().Set("Retry-After", ratelimit.RetryAfter(refused.Wait))
			http.Error(w, "Too many unknown sessions from this address; try again later.", http.StatusTooManyRequests)
			return
		}
		if err != nil {
			p.log.Warn("panel: session store unavailable", "err", err)
			http.Error(w, "The database is unavailable; try again in a moment.", http.StatusServiceUnavailable)
			return
		}
		if !ok {
			// None, expired, idle, logged out, or revoked since.
			http.SetCookie(w, p.cookie(r, sessionCookie, "", -1))
			if r.Method == http.MethodGet {
				http.Redirect(w, r, "/panel/login", http.StatusSeeOther)
			} else {
				http.Error(w, "your session has ended: log in again", http.StatusUnauthorized)
			}
			return
		}
		// url.Values drops the pairs it cannot read, and a page read the
		// rest: "?domain_id=%35%" (a bad escape) or "?q=x;y" listed the
		// whole quarantine or message log in place of what was asked for.
		// A parameter given twice is refused as a form field is
		// (repeatedField): a page read the first.
		q, err := url.ParseQuery(r.URL.RawQuery)
		if err == nil {
			for k, v := range q {
				if len(v) > 1 {
					err = fmt.Errorf("the parameter %.40q is given twice", k)
					break
				}
			}
		}
		if err != nil {
			p.fail(&request{w: w, r: r, sess: sess}, badInput{"This page's address is not valid (" + err.Error() + ")."})
			return
		}
		if r.Method == http.MethodPost && owns == nil && !p.readForm(&request{w: w, r: r, sess: sess}) {
			return
		}
		req := &request{w: w, r: r, sess: sess}
		done, err := p.svc.BeginRequest(r.Context(), sess.P)
		if err != nil {
			p.fail(req, err)
			return
		}
		defer done()
		// Every form but the logout may change something: it spends one of
		// the reseller's changes, as an API call that writes does.
		if r.Method == http.MethodPost && r.Pattern != "POST /panel/logout" {
			if err := p.svc.AllowChange(sess.P); err != nil {
				p.fail(req, err)
				return
			}
		}
		if !sess.P.Operator {
			res, err := p.svc.GetReseller(r.Context(), sess.P, sess.P.ResellerID)
			if err != nil {
				// The reseller was deleted, or the store is down.
				p.fail(req, err)
				return
			}
			req.reseller = res
			has, err := p.svc.HasLogo(r.Context(), res.ID)
			req.hasLogo = err == nil && has
		}
		if owns != nil {
			if err := owns(req); err != nil {
				p.fail(req, err)
				return
			}
			if !p.readForm(req) {
				return
			}
		}
		if err := fn(req); err != nil {
			p.fail(req, err)
		}
	}
}

// readForm reads a POST's form (a multipart one, an upload, with its own
// limit) and checks its CSRF token; false when the request was answered.
func (p *Panel) readForm(req *request) bool {
	if err := p.parseForm(req.w, req.r); err != nil {
		p.fail(req, err)
		return false
	}
	if !tokensEqual(req.sess.CSRF, req.r.PostFormValue("csrf")) {
		p.log.Warn("panel: form without a valid CSRF token refused", "path", req.r.URL.Path, "actor", req.sess.P.Actor)
		http.Error(req.w, "this form has expired or did not come from the panel: reload the page and try again", http.StatusForbidden)
		return false
	}
	return true
}

// sessionCurrent reports whether what the session logged in with still
// stands: the user with the same password, the API token (not expired), or
// the operator token file's same token. A session whose user or stored
// token was revoked, or whose token expired, is deleted.
func (p *Panel) sessionCurrent(ctx context.Context, sess session) (bool, error) {
	var err error
	current := true
	switch {
	case sess.P.UserID != 0:
		var u admin.User
		u, err = p.svc.GetUser(ctx, sess.P, sess.P.UserID)
		if err == nil {
			current = tokensEqual(sess.PW, p.passwordStamp(u.Hash))
		}
	case sess.P.TokenID != 0:
		var tk admin.Token
		tk, err = p.svc.GetToken(ctx, sess.P, sess.P.TokenID)
		if err == nil {
			current = !tk.Expired(p.now())
		}
	case fromTokenFile(sess.P):
		// The file is read at start and session rows outlive the process:
		// a token replaced in the file (nodes restarted) must end the
		// sessions opened with the old one, as deleting a stored token does.
		// The session is refused, not deleted: in a rolling restart a node
		// still holding the old token cannot tell a session of the new
		// token from a stale one, and deleting would log out, cluster-wide,
		// the operator who just logged in with the new token. A stale row
		// stays refused on every node holding the new token until it
		// expires.
		if !tokensEqual(sess.OT, p.operatorTokenStamp()) {
			return false, nil
		}
	}
	if errors.Is(err, tenant.ErrNotFound) {
		current, err = false, nil
	}
	if err != nil {
		return false, fmt.Errorf("checking the session's login: %w", err)
	}
	if !current {
		return false, p.endSession(ctx, sess)
	}
	return true, nil
}

// Upload limits: a CSV of recipients, a logo with form overhead.
const (
	maxForm      = 64 << 10
	maxCSV       = 8 << 20
	maxLogoForm  = admin.MaxLogoBytes + 16<<10
	memoryBuffer = 1 << 20
)

var errTooLarge = errors.New("upload too large")

func (p *Panel) parseForm(w http.ResponseWriter, r *http.Request) error {
	limit := int64(maxForm)
	switch {
	case strings.HasSuffix(r.URL.Path, "/import"):
		limit = maxCSV
	case strings.HasSuffix(r.URL.Path, "/logo"):
		// Over the logo limit by a margin, so a slightly larger file gets
		// the logo's own message rather than a generic one.
		limit = 2 * maxLogoForm
	}
	r.Body = http.MaxBytesReader(w, r.Body, limit)
	var err error
	if strings.HasPrefix(r.Header.Get("Content-Type"), "multipart/form-data") {
		err = r.ParseMultipartForm(memoryBuffer)
	} else {
		err = r.ParseForm()
	}
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return fmt.Errorf("%w: at most %d KB", errTooLarge, limit>>10)
	}
	if err != nil {
		return badInput{"the form could not be read: " + err.Error()}
	}
	if err := repeatedField(r); err != nil {
		return err
	}
	return notUTF8(r)
}

// notUTF8 refuses a form with a value that is not UTF-8, as the API
// refuses such a string in a body: a field the service checks no further
// (a domain's subject tag) was stored with the bytes replaced by U+FFFD.
// The login form is not vetted so: a password set before may hold any
// bytes.
func notUTF8(r *http.Request) error {
	for k, vs := range r.PostForm {
		for _, v := range vs {
			if !utf8.ValidString(v) {
				return badInput{fmt.Sprintf("the form field %.40q is not UTF-8 text", k)}
			}
		}
	}
	return nil
}

// repeatedField refuses a form that gives a field twice: the handlers
// read the first value, a proxy, a log or a WAF may read the last, so
// `local=alice&local=bob` removed alice where the log showed bob. The API
// refuses a JSON key or a query parameter given twice alike.
func repeatedField(r *http.Request) error {
	for k, v := range r.PostForm {
		if len(v) > 1 {
			return badInput{fmt.Sprintf("the form field %.40q is given twice", k)}
		}
	}
	if r.MultipartForm != nil {
		for k, v := range r.MultipartForm.File {
			if len(v) > 1 || len(r.PostForm[k]) > 0 {
				return badInput{fmt.Sprintf("the form field %.40q is given twice", k)}
			}
		}
	}
	return nil
}

type badInput struct{ msg string }

func (e badInput) Error() string { return e.msg }

// page is what every template gets.
type page struct {
	Title    string
	Nav      string
	CSRF     string
	Nonce    string
	Operator bool
	Actor    string
	Brand    brandView
	Notice   string
	Error    string
	Fields   tenant.FieldErrors
	Data     any
}

type brandView struct {
	Name   string
	Accent string
	Logo   string
}

func (p *Panel) brandOf(req *request) brandView {
	if req == nil || req.sess.P.Operator || req.reseller.ID == 0 {
		return brandView{Name: "mxgrid"}
	}
	b := brandView{Name: req.reseller.DisplayName, Accent: req.reseller.Accent}
	if b.Name == "" {
		b.Name = req.reseller.Name
	}
	if req.hasLogo {
		b.Logo = "/panel/logo/" + url.PathEscape(req.reseller.Slug) + "?v=" + strconv.FormatInt(req.reseller.Updated.Unix(), 10)
	}
	return b
}

// notices are the fixed messages a redirect may name (?ok=...): nothing
// user-supplied travels in the URL.
var notices = map[string]string{
	"created":   "Created.",
	"saved":     "Saved.",
	"deleted":   "Deleted.",
	"suspended": "Customer suspended: its mail is refused until you resume it.",
	"resumed":   "Customer resumed: its mail flows again.",
	"logo":      "Logo uploaded.",
	"added":     "Recipient added.",
	"removed":   "Recipient removed.",
	"user":      "User added.",
	"unuser":    "User removed: their sessions end at their next request.",
	"password":  "Password changed. Your other sessions have ended.",
	"released":  "Released: the message was delivered to the customer's server.",
	"allowed":   "Released, and the sender is now on the domain's allow list.",
}

// render writes a page with status code.
func (p *Panel) render(req *request, code int, name string, pg page) {
	t := p.pages[name]
	nonce := randomToken()
	pg.Nonce = nonce
	if req != nil {
		pg.CSRF = req.sess.CSRF
		pg.Operator = req.sess.P.Operator
		pg.Actor = req.sess.P.Actor
		if pg.Notice == "" {
			pg.Notice = notices[req.r.URL.Query().Get("ok")]
		}
	}
	pg.Brand = p.brandOf(req)
	var buf bytes.Buffer
	if err := t.ExecuteTemplate(&buf, "layout.html", pg); err != nil {
		p.log.Error("panel: render", "page", name, "err", err)
		http.Error(req.w, "internal error", http.StatusInternalServerError)
		return
	}
	w := req.w
	// The one inline <style> (the brand's colour) is allowed by its nonce;
	// scripts only from our own static files.
	w.Header().Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self' 'nonce-"+nonce+
		"'; img-src 'self' data:; form-action 'self'; base-uri 'none'; frame-src 'self'; frame-ancestors 'none'")
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(code)
	w.Write(buf.Bytes())
}

// fail maps a service error to a page, as the API maps it to a status.
func (p *Panel) fail(req *request, err error) {
	var (
		fe        tenant.FieldErrors
		bad       badInput
		abandoned *quarantine.AbandonedError
		code      int
		msg       string
	)
	switch {
	case errors.As(err, &fe):
		code, msg = http.StatusBadRequest, "Please correct the fields below: "+fe.Error()
	case errors.As(err, &bad):
		code, msg = http.StatusBadRequest, bad.msg
	case errors.Is(err, errTooLarge):
		code, msg = http.StatusRequestEntityTooLarge, err.Error()
	case errors.Is(err, tenant.ErrNotFound):
		code, msg = http.StatusNotFound, "Not found."
	case errors.Is(err, admin.ErrForbidden):
		code, msg = http.StatusForbidden, forbidden(err)
	case errors.Is(err, tenant.ErrQuotaExceeded):
		code, msg = http.StatusForbidden, err.Error()
	case errors.Is(err, tenant.ErrConflict):
		code, msg = http.StatusConflict, strings.TrimPrefix(err.Error(), "conflict: ")
	case errors.Is(err, admin.ErrSearchesBusy):
		req.w.Header().Set("Retry-After", "5")
		code, msg = http.StatusTooManyRequests, "Too many searches are running on this server right now. Try again in a moment."
	case errors.Is(err, admin.ErrRequestsBusy):
		req.w.Header().Set("Retry-After", "5")
		code, msg = http.StatusTooManyRequests, "Your account has too many requests running on this server right now. Try again in a moment."
	case errors.Is(err, admin.ErrChangesBusy):
		req.w.Header().Set("Retry-After", "5")
		code, msg = http.StatusTooManyRequests, "Your account made too many changes on this server in a short time. Try again in a moment."
	case errors.Is(err, admin.ErrBusy):
		code, msg = http.StatusTooManyRequests, "Other checks are running (a reseller runs one at a time). Try again in a moment."
	case errors.As(err, &abandoned):
		code, msg = http.StatusConflict, "The message is not released again: "+abandoned.Message()+"."
	case errors.Is(err, quarantine.ErrReleasing):
		code, msg = http.StatusConflict, "The message is being released right now. If its delivery fails, it stays held: reload its page in a moment."
	case errors.Is(err, quarantine.ErrNotHeld):
		code, msg = http.StatusConflict, "The message is no longer held: it was released or deleted already."
	case errors.Is(err, quarantine.ErrBusy):
		code, msg = http.StatusTooManyRequests, "Too many held messages are open on this server right now. Try again in a moment."
	case errors.Is(err, quarantine.ErrDelivery):
		// The customer's server, not the panel: the reseller can act on it.
		p.log.Warn("panel: release failed", "path", req.r.URL.Path, "err", err)
		code, msg = http.StatusBadGateway, err.Error()
	case errors.Is(err, admin.ErrNoDNSAnswer):
		code, msg = http.StatusBadGateway, "The domain's DNS answered neither the TXT nor the MX lookup. Check its name servers, then try again."
	case errors.Is(err, tenant.ErrUnavailable):
		p.log.Warn("panel: tenant store unavailable", "path", req.r.URL.Path, "err", err)
		code, msg = http.StatusServiceUnavailable, "The database is unavailable; mail keeps flowing, but changes cannot be saved now. Try again in a moment."
	default:
		p.log.Error("panel", "method", req.r.Method, "path", req.r.URL.Path, "err", err)
		code, msg = http.StatusInternalServerError, "Something went wrong on our side."
	}
	if req.sess.CSRF == "" {
		http.Error(req.w, msg, code)
		return
	}
	p.render(req, code, "error", page{Title: "Error", Error: msg, Fields: fe})
}

// forbidden is the sentence an admin.ErrForbidden gives as its reason
// ("forbidden: only the operator may do this"): not every refusal is the
// operator's to make (a login with a token that expires adds no users).
func forbidden(err error) string {
	s := err.Error()
	if i := strings.LastIndex(s, admin.ErrForbidden.Error()+": "); i >= 0 {
		s = s[i+len(admin.ErrForbidden.Error())+2:]
	}
	if s == "" {
		return "This is not allowed."
	}
	return strings.ToUpper(s[:1]) + s[1:] + "."
}

func redirect(req *request, path, notice string) error {
	if notice != "" {
		path += "?ok=" + notice
	}
	http.Redirect(req.w, req.r, path, http.StatusSeeOther)
	return nil
}

func pathID(r *http.Request) (int64, error) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id <= 0 {
		return 0, tenant.ErrNotFound
	}
	return id, nil
}

func (p *Panel) static(w http.ResponseWriter, r *http.Request) {
	name := strings.TrimPrefix(r.URL.Path, "/panel/")
	b, err := staticFS.ReadFile(name)
	if err != nil {
		http.NotFound(w, r)
		return
	}
	switch {
	case strings.HasSuffix(name, ".css"):
		w.Header().Set("Content-Type", "text/css; charset=utf-8")
	case strings.HasSuffix(name, ".js"):
		w.Header().Set("Content-Type", "text/javascript; charset=utf-8")
	default:
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Cache-Control", "public, max-age=300")
	w.Write(b)
}

// logo serves a reseller's logo with the type sniffed at upload, never an
// HTML or SVG type, and a CSP that forbids everything should a browser
// render it as a document anyway.
func (p *Panel) logo(w http.ResponseWriter, r *http.Request) {
	slug, client, now := r.PathValue("slug"), p.clientIP.Of(r), p.now()
	if wait := p.misses.Refused(client, "logo", now); wait > 0 {
		w.Header().Set("Retry-After", ratelimit.RetryAfter(wait))
		http.Error(w, "too many logos that do not exist asked from this address, try again later", http.StatusTooManyRequests)
		return
	}
	l, err := p.logos.get(r.Context(), slug, now, func(ctx context.Context) (admin.Logo, error) {
		return p.svc.LogoBySlug(ctx, slug)
	})
	if err != nil {
		if errors.Is(err, tenant.ErrNotFound) {
			p.misses.Missed(client, now)
		} else {
			p.log.Warn("panel: logo", "err", err)
		}
		http.NotFound(w, r)
		return
	}
	h := w.Header()
	h.Set("Content-Type", l.logo.ContentType)
	h.Set("Content-Security-Policy", "default-src 'none'; sandbox")
	// Asked again at each use, answered 304 while unchanged: kept for an
	// hour by browsers and caches in front of the node, a slug freed and
	// taken by another reseller showed the first one's logo on the new
	// one's map and panel that long.
	h.Set("Cache-Control", "no-cache")
	h.Set("ETag", l.etag)
	if noneMatch(r.Header.Get("If-None-Match"), l.etag) {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	h.Set("Content-Length", strconv.Itoa(len(l.logo.Data)))
	w.Write(l.logo.Data)
}

// noneMatch reports whether an If-None-Match field names etag (RFC 9110
// §13.1.2: a list of tags, weak ones compared by their opaque part, or
// "*"). http.ServeContent would judge it too, but copies each answer
// through a buffer of its own.
func noneMatch(field, etag string) bool {
	for tag := range strings.SplitSeq(field, ",") {
		tag = strings.TrimPrefix(strings.TrimSpace(tag), "W/")
		if tag == etag || tag == "*" {
			return true
		}
	}
	return false
}

// ScopedMaps resolves /map?reseller=SLUG and /map?customer=KEY to the
// scope's white-label map (web.MapOptions.Scoped).
func ScopedMaps(svc *admin.Service, maps MapScoper) func(ctx context.Context, kind, key string) (*spammap.Map, bool, error) {
	return func(ctx context.Context, kind, key string) (*spammap.Map, bool, error) {
		var (
			sc  admin.MapScope
			err error
		)
		if kind == "reseller" {
			sc, err = svc.ResellerMap(ctx, key)
		} else {
			sc, err = svc.CustomerMap(ctx, key)
		}
		if errors.Is(err, tenant.ErrNotFound) {
			return nil, false, nil
		}
		if err != nil {
			return nil, false, err
		}
		// The domains and the logo are read for a render only: every view
		// of a map already rendered read all the reseller's domain records
		// and its logo (up to 256 KiB), on a public URL.
		m, err := maps.Scoped(ctx, spammap.Scope{Key: sc.Key, Name: sc.Name, Resolve: func(ctx context.Context) ([]int64, spammap.Brand, error) {
			brand := spammap.Brand{Name: sc.Reseller.DisplayName, Accent: sc.Reseller.Accent}
			if brand.Name == "" {
				brand.Name = sc.Reseller.Name
			}
			if has, err := svc.HasLogo(ctx, sc.Reseller.ID); err == nil && has {
				brand.Logo = "/panel/logo/" + url.PathEscape(sc.Reseller.Slug)
			}
			ids, err := svc.MapDomains(ctx, sc)
			return ids, brand, err
		}})
		return m, err == nil, err
	}
}
