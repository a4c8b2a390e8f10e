package panel

import (
	"bufio"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"net/textproto"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/mxgrid/mxgrid/admin"
	"github.com/mxgrid/mxgrid/clientip"
	"github.com/mxgrid/mxgrid/netguard"
	"github.com/mxgrid/mxgrid/replytext"
	"github.com/mxgrid/mxgrid/tenant"
)

// --- login

type loginData struct {
	Email string
}

func (p *Panel) loginForm(w http.ResponseWriter, r *http.Request) {
	if _, ok, _ := p.readSession(r); ok {
		http.Redirect(w, r, "/panel/", http.StatusSeeOther)
		return
	}
	p.renderLogin(w, r, http.StatusOK, "", "")
}

func (p *Panel) renderLogin(w http.ResponseWriter, r *http.Request, code int, email, msg string) {
	w.Header().Set("Cache-Control", "no-store")
	req := &request{w: w, r: r, sess: session{CSRF: p.preToken(w, r)}}
	p.render(req, code, "login", page{Title: "Log in", Error: msg, Data: loginData{Email: email}})
}

// login accepts an email and password, or an API token in the password
// field with the email left empty. Nothing typed into the form is logged:
// the account appears as a hash (people type passwords into the email
// field), and a successful login by its actor.
func (p *Panel) login(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, maxForm)
	if err := r.ParseForm(); err != nil {
		http.Error(w, "bad form", http.StatusBadRequest)
		return
	}
	if err := repeatedField(r); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	if !p.checkPre(r) {
		p.log.Warn("panel: login form without a valid CSRF token refused")
		http.Error(w, "this form has expired or did not come from the panel: reload the page and try again", http.StatusForbidden)
		return
	}
	email := strings.TrimSpace(r.PostFormValue("email"))
	secret := r.PostFormValue("password")
	ip := p.clientIP.Of(r)
	addr := clientip.LimitKey(ip)
	end, err := p.limits.turn(r.Context(), addr)
	if errors.Is(err, errTurnQueueFull) {
		w.Header().Set("Retry-After", "1")
		p.renderLogin(w, r, http.StatusTooManyRequests, "", "Too many logins at once. Try again in a moment.")
		return
	}
	if err != nil {
		return // the client went away
	}
	defer end()
	now := p.now()
	// Token logins have no account to protect: their secrets are 256-bit
	// random. Only the address limit counts them.
	account := ""
	if email != "" {
		account = p.accountKey(admin.LoginKey(email))
	}
	if until := p.limits.wait(account, addr, now); !until.IsZero() {
		p.log.Info("panel: login refused, too many failures", "account_hash", account, "client_ip", ip)
		w.Header().Set("Retry-After", strconv.Itoa(int(until.Sub(now)/time.Second)+1))
		p.renderLogin(w, r, http.StatusTooManyRequests, "",
			fmt.Sprintf("Too many failed attempts. Try again after %s.", until.UTC().Format("15:04:05 UTC")))
		return
	}
	var pr admin.Principal
	if email == "" {
		pr, err = p.svc.Authenticate(r.Context(), strings.TrimSpace(secret))
	} else {
		if !p.limits.tryHash() {
			w.Header().Set("Retry-After", "1")
			p.renderLogin(w, r, http.StatusTooManyRequests, "", "Too many logins at once. Try again in a moment.")
			return
		}
		pr, err = p.svc.AuthenticatePassword(r.Context(), email, secret)
		p.limits.doneHash()
	}
	if errors.Is(err, admin.ErrUnauthenticated) {
		p.limits.fail(account, addr, now)
		p.log.Info("panel: failed login", "account_hash", account, "client_ip", ip)
		// The email is not echoed back: it may be a password typed into
		// the wrong field.
		p.renderLogin(w, r, http.StatusUnauthorized, "", "The email and password (or the API token) did not match.")
		return
	}
	if err != nil {
		p.log.Error("panel: login", "err", err)
		p.renderLogin(w, r, http.StatusServiceUnavailable, "", "Logging in is not possible right now. Try again in a moment.")
		return
	}
	p.limits.succeed(account, addr)
	sess, err := p.newSession(r.Context(), pr)
	if err == nil {
		err = p.createSession(w, r, sess)
	}
	if err != nil {
		p.log.Error("panel: login", "err", err)
		p.renderLogin(w, r, http.StatusServiceUnavailable, "", "Logging in is not possible right now. Try again in a moment.")
		return
	}
	http.SetCookie(w, p.cookie(r, preCookie, "", -1))
	p.log.Info("panel: login", "actor", pr.Actor, "client_ip", ip)
	http.Redirect(w, r, "/panel/", http.StatusSeeOther)
}

func (p *Panel) logout(req *request) error {
	if err := p.endSession(req.r.Context(), req.sess); err != nil {
		return err
	}
	http.SetCookie(req.w, p.cookie(req.r, sessionCookie, "", -1))
	return redirect(req, "/panel/login", "")
}

func (p *Panel) home(req *request) error {
	if req.sess.P.Operator {
		return redirect(req, "/panel/resellers", "")
	}
	return redirect(req, "/panel/customers", "")
}

// searchBox is a list page's search box, q.
type searchBox struct {
	Q       string
	refused error // admin.CheckSearch's field error, keyed "q"
}

// readSearch reads q and vets it with the service's own check, so that a
// search the service would refuse is the page's form error at the box
// rather than an error page naming the API's parameter.
func readSearch(req *request) searchBox {
	q := req.r.URL.Query().Get("q")
	return searchBox{Q: q, refused: admin.CheckSearch("q", q)}
}

// show marks a page whose search was refused: 400, the reason at the box
// (the templates show Fields["q"] there) and at the top.
func (s searchBox) show(code int, msg string, fe tenant.FieldErrors) (int, string, tenant.FieldErrors) {
	var bad tenant.FieldErrors
	if !errors.As(s.refused, &bad) {
		return code, msg, fe
	}
	fe = maps.Clone(fe)
	if fe == nil {
		fe = tenant.FieldErrors{}
	}
	maps.Copy(fe, bad)
	if msg == "" {
		msg = "The search is not valid: " + bad["q"] + "."
	}
	return http.StatusBadRequest, msg, fe
}

// --- resellers (operator)

type resellersData struct {
	Resellers []tenant.Reseller
	Form      resellerForm
}

type resellerForm struct{ Name, Slug, Email string }

func (p *Panel) resellers(req *request) error {
	return p.renderResellers(req, http.StatusOK, resellerForm{}, "", nil)
}

func (p *Panel) renderResellers(req *request, code int, f resellerForm, msg string, fe tenant.FieldErrors) error {
	search := readSearch(req)
	var list []tenant.Reseller
	if search.refused == nil {
		var err error
		if list, err = p.svc.ListResellers(req.r.Context(), req.sess.P, admin.Filter{Limit: admin.MaxPageSize, Name: search.Q}); err != nil {
			return err
		}
	}
	code, msg, fe = search.show(code, msg, fe)
	p.render(req, code, "resellers", page{Title: "Resellers", Nav: "resellers", Error: msg, Fields: fe,
		Data: resellersData{Resellers: list, Form: f}})
	return nil
}

// createReseller makes a reseller and its first panel user.
func (p *Panel) createReseller(req *request) error {
	f := resellerForm{Name: req.r.PostFormValue("name"), Slug: req.r.PostFormValue("slug"), Email: req.r.PostFormValue("email")}
	ctx := req.r.Context()
	if f.Email != "" {
		// What can be wrong with the user without a store is refused
		// before the reseller is made; only a taken email (or a quota)
		// can still leave a reseller without its user.
		if _, fe := admin.CheckNewUser(f.Email, req.r.PostFormValue("password")); len(fe) > 0 {
			return p.renderResellers(req, http.StatusBadRequest, f, "Please correct the highlighted fields.", fe)
		}
	}
	res, err := p.svc.CreateReseller(ctx, req.sess.P, tenant.Reseller{Name: f.Name, Slug: f.Slug})
	if err == nil && f.Email != "" {
		if _, uerr := p.svc.CreateUser(ctx, req.sess.P, res.ID, f.Email, req.r.PostFormValue("password")); uerr != nil {
			// The reseller exists; say so, and what is wrong with the user.
			return p.formError(uerr, func(msg string, fe tenant.FieldErrors) error {
				return p.renderResellers(req, http.StatusBadRequest, f, "The reseller was created, but not its user: "+msg, fe)
			})
		}
	}
	if err != nil {
		return p.formError(err, func(msg string, fe tenant.FieldErrors) error {
			return p.renderResellers(req, http.StatusBadRequest, f, msg, fe)
		})
	}
	return redirect(req, "/panel/resellers", "created")
}

// formError re-renders a form for input errors (FieldErrors, conflicts,
// quotas) and passes others on.
func (p *Panel) formError(err error, again func(msg string, fe tenant.FieldErrors) error) error {
	var fe tenant.FieldErrors
	switch {
	case errors.As(err, &fe):
		return again("Please correct the highlighted fields.", fe)
	case errors.Is(err, tenant.ErrConflict):
		return again(strings.TrimPrefix(err.Error(), "conflict: "), nil)
	case errors.Is(err, tenant.ErrQuotaExceeded):
		return again(err.Error(), nil)
	}
	return err
}

// --- customers

type customersData struct {
	Charts *chartsView
	// Usage is a reseller's own, nil for the operator (who sees every
	// reseller's through the API).
	Usage     *admin.Usage
	Query     string
	Customers []customerRow
	Resellers []tenant.Reseller
	Form      customerForm
}

type customerRow struct {
	tenant.Customer
	Reseller string
}

type customerForm struct {
	Name       string
	ResellerID int64
}

func (p *Panel) customers(req *request) error {
	return p.renderCustomers(req, http.StatusOK, customerForm{}, "", nil)
}

func (p *Panel) renderCustomers(req *request, code int, f customerForm, msg string, fe tenant.FieldErrors) error {
	ctx := req.r.Context()
	search := readSearch(req)
	var list []tenant.Customer
	if search.refused == nil {
		var err error
		if list, err = p.svc.ListCustomers(ctx, req.sess.P, admin.Filter{Name: search.Q, Limit: admin.MaxPageSize}); err != nil {
			return err
		}
	}
	resellers, err := p.svc.ListResellers(ctx, req.sess.P, admin.Filter{Limit: admin.MaxPageSize})
	if err != nil {
		return err
	}
	names := make(map[int64]string, len(resellers))
	for _, r := range resellers {
		names[r.ID] = r.Name
	}
	rows := make([]customerRow, len(list))
	for i, c := range list {
		rows[i] = customerRow{c, names[c.ResellerID]}
	}
	charts, err := p.charts(req, 0, 0)
	if err != nil {
		return err
	}
	var usage *admin.Usage
	if !req.sess.P.Operator {
		u, err := p.svc.ResellerUsage(ctx, req.sess.P, req.sess.P.ResellerID)
		if err != nil {
			return err
		}
		usage = &u
	}
	code, msg, fe = search.show(code, msg, fe)
	p.render(req, code, "customers", page{Title: "Customers", Nav: "customers", Error: msg, Fields: fe,
		Data: customersData{Charts: charts, Usage: usage, Query: search.Q, Customers: rows, Resellers: resellers, Form: f}})
	return nil
}

func (p *Panel) createCustomer(req *request) error {
	f := customerForm{Name: req.r.PostFormValue("name")}
	if req.sess.P.Operator {
		f.ResellerID, _ = strconv.ParseInt(req.r.PostFormValue("reseller_id"), 10, 64)
	}
	c, err := p.svc.CreateCustomer(req.r.Context(), req.sess.P, tenant.Customer{Name: f.Name, ResellerID: f.ResellerID})
	if err != nil {
		return p.formError(err, func(msg string, fe tenant.FieldErrors) error {
			return p.renderCustomers(req, http.StatusBadRequest, f, msg, fe)
		})
	}
	return redirect(req, "/panel/customers/"+strconv.FormatInt(c.ID, 10), "created")
}

type customerData struct {
	Charts   *chartsView
	Customer tenant.Customer
	Domains  []tenant.DomainRecord
	Form     domainForm
	MapURL   string
}

type domainForm struct {
	Name, Route, TLS, TagScore, RejectScore, SubjectTag, VirusAction, TagAction string
}

func (p *Panel) customer(req *request) error {
	return p.renderCustomer(req, http.StatusOK, domainForm{TLS: "opportunistic"}, "", nil)
}

func (p *Panel) renderCustomer(req *request, code int, f domainForm, msg string, fe tenant.FieldErrors) error {
	id, err := pathID(req.r)
	if err != nil {
		return err
	}
	ctx := req.r.Context()
	c, err := p.svc.GetCustomer(ctx, req.sess.P, id)
	if err != nil {
		return err
	}
	doms, err := p.svc.ListDomains(ctx, req.sess.P, admin.Filter{CustomerID: id, Limit: admin.MaxPageSize})
	if err != nil {
		return err
	}
	charts, err := p.charts(req, 0, id)
	if err != nil {
		return err
	}
	p.render(req, code, "customer", page{Title: c.Name, Nav: "customers", Error: msg, Fields: fe,
		Data: customerData{Charts: charts, Customer: c, Domains: doms, Form: f, MapURL: p.baseURL(req.r) + "/map?customer=" + c.MapKey}})
	return nil
}

func (p *Panel) updateCustomer(req *request) error {
	id, err := pathID(req.r)
	if err != nil {
		return err
	}
	name := req.r.PostFormValue("name")
	if _, err := p.svc.UpdateCustomer(req.r.Context(), req.sess.P, id, func(c *tenant.Customer) { c.Name = name }); err != nil {
		return p.formError(err, func(msg string, fe tenant.FieldErrors) error {
			return p.renderCustomer(req, http.StatusBadRequest, domainForm{TLS: "opportunistic"}, msg, fe)
		})
	}
	return redirect(req, req.r.URL.Path, "saved")
}

func (p *Panel) suspendCustomer(req *request) error {
	id, err := pathID(req.r)
	if err != nil {
		return err
	}
	// The form says 1 or 0; anything else (a form without the field)
	// resumed the customer, so a stale or hand-made form re-opened the
	// mail of a customer suspended for abuse.
	var suspend bool
	switch req.r.PostFormValue("suspend") {
	case "1":
		suspend = true
	case "0":
	default:
		return badInput{"The form must say whether to suspend (1) or resume (0) the customer."}
	}
	if _, err := p.svc.SetSuspended(req.r.Context(), req.sess.P, id, suspend); err != nil {
		return err
	}
	notice := "resumed"
	if suspend {
		notice = "suspended"
	}
	return redirect(req, "/panel/customers/"+strconv.FormatInt(id, 10), notice)
}

func (p *Panel) deleteCustomer(req *request) error {
	id, err := pathID(req.r)
	if err != nil {
		return err
	}
	if err := p.svc.DeleteCustomer(req.r.Context(), req.sess.P, id); err != nil {
		if errors.Is(err, tenant.ErrConflict) {
			return badInput{"Delete the customer's domains first."}
		}
		return err
	}
	return redirect(req, "/panel/customers", "deleted")
}

// --- domains

func (f domainForm) apply(d *tenant.DomainRecord) error {
	d.Name, d.Route, d.TLS = f.Name, strings.TrimSpace(f.Route), f.TLS
	fe := tenant.FieldErrors{}
	num := func(key, s string) *float64 {
		s = strings.TrimSpace(s)
		if s == "" {
			return nil
		}
		v, err := strconv.ParseFloat(s, 64)
		if err != nil {
			fe["policy."+key] = "must be a number"
			return nil
		}
		return &v
	}
	d.Policy.TagScore = num("tag_score", f.TagScore)
	d.Policy.RejectScore = num("reject_score", f.RejectScore)
	d.Policy.SubjectTag = optional(f.SubjectTag)
	d.Policy.VirusAction = optional(f.VirusAction)
	d.Policy.TagAction = optional(f.TagAction)
	if len(fe) > 0 {
		return fe
	}
	return nil
}

func readDomainForm(r *http.Request) domainForm {
	v := r.PostFormValue
	return domainForm{Name: v("name"), Route: v("route"), TLS: v("tls"), TagScore: v("tag_score"),
		RejectScore: v("reject_score"), SubjectTag: v("subject_tag"), VirusAction: v("virus_action"), TagAction: v("tag_action")}
}

func formOf(d tenant.DomainRecord) domainForm {
	f := domainForm{Name: d.Name, Route: d.Route, TLS: d.TLS}
	if d.Policy.TagScore != nil {
		f.TagScore = strconv.FormatFloat(*d.Policy.TagScore, 'g', -1, 64)
	}
	if d.Policy.RejectScore != nil {
		f.RejectScore = strconv.FormatFloat(*d.Policy.RejectScore, 'g', -1, 64)
	}
	if d.Policy.SubjectTag != nil {
		f.SubjectTag = *d.Policy.SubjectTag
	}
	if d.Policy.VirusAction != nil {
		f.VirusAction = *d.Policy.VirusAction
	}
	if d.Policy.TagAction != nil {
		f.TagAction = *d.Policy.TagAction
	}
	return f
}

// optional is a form's select or text field as a policy value: empty
// inherits.
func optional(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

func (p *Panel) createDomain(req *request) error {
	cid, err := pathID(req.r)
	if err != nil {
		return err
	}
	f := readDomainForm(req.r)
	d := tenant.DomainRecord{CustomerID: cid}
	err = f.apply(&d)
	if err == nil {
		d, err = p.svc.CreateDomain(req.r.Context(), req.sess.P, d)
	}
	if err != nil {
		return p.formError(err, func(msg string, fe tenant.FieldErrors) error {
			return p.renderCustomer(req, http.StatusBadRequest, f, msg, fe)
		})
	}
	return redirect(req, "/panel/domains/"+strconv.FormatInt(d.ID, 10), "created")
}

type domainData struct {
	Domain tenant.DomainRecord
	// ClaimHeldUntil is when a pending domain's name stops being kept
	// from the other resellers (zero when active); ClaimLapsed, that it
	// has passed.
	ClaimHeldUntil time.Time
	ClaimLapsed    bool
	Customer       tenant.Customer
	Form           domainForm
	Recipients     []admin.Recipient
	Test           *routeTest
	Import         *importReport
}

type routeTest struct {
	OK         bool
	Transcript []string
}

type importReport struct {
	Added int
	Good  int
	Bad   []badRow
}

type badRow struct {
	Line  int
	Value string
	Error string
}

func (p *Panel) domain(req *request) error {
	return p.renderDomain(req, http.StatusOK, nil, "", nil, func(d *domainData) {})
}

func (p *Panel) renderDomain(req *request, code int, f *domainForm, msg string, fe tenant.FieldErrors, extra func(*domainData)) error {
	id, err := pathID(req.r)
	if err != nil {
		return err
	}
	ctx := req.r.Context()
	d, err := p.svc.GetDomain(ctx, req.sess.P, id)
	if err != nil {
		return err
	}
	c, err := p.svc.GetCustomer(ctx, req.sess.P, d.CustomerID)
	if err != nil {
		return err
	}
	rcpts, err := p.svc.ListRecipients(ctx, req.sess.P, id, admin.Filter{Limit: admin.MaxPageSize})
	if err != nil {
		return err
	}
	data := domainData{Domain: d, ClaimHeldUntil: p.svc.ClaimHeldUntil(d), ClaimLapsed: p.svc.ClaimLapsed(d), Customer: c,
		Form: formOf(d), Recipients: rcpts}
	if f != nil {
		data.Form = *f
	}
	extra(&data)
	p.render(req, code, "domain", page{Title: d.Name, Nav: "customers", Error: msg, Fields: fe, Data: data})
	return nil
}

func (p *Panel) updateDomain(req *request) error {
	id, err := pathID(req.r)
	if err != nil {
		return err
	}
	f := readDomainForm(req.r)
	// The form is read whole before anything is saved: UpdateDomain's
	// patch cannot refuse, and a score that is not a number became
	// "inherit" with the rest of the form saved behind the error page.
	if err := f.apply(&tenant.DomainRecord{}); err != nil {
		return p.formError(err, func(msg string, fe tenant.FieldErrors) error {
			return p.renderDomain(req, http.StatusBadRequest, &f, msg, fe, func(*domainData) {})
		})
	}
	_, err = p.svc.UpdateDomain(req.r.Context(), req.sess.P, id, func(d *tenant.DomainRecord) {
		name := d.Name
		f.apply(d) // checked above
		if f.Name == "" {
			d.Name = name
		}
	})
	if err != nil {
		return p.formError(err, func(msg string, fe tenant.FieldErrors) error {
			return p.renderDomain(req, http.StatusBadRequest, &f, msg, fe, func(*domainData) {})
		})
	}
	return redirect(req, req.r.URL.Path, "saved")
}

// domainAction runs verify ("Check now") or approve (operator) and shows
// the domain again with its status.
func (p *Panel) domainAction(act func(context.Context, admin.Principal, int64) (tenant.DomainRecord, error)) func(*request) error {
	return func(req *request) error {
		id, err := pathID(req.r)
		if err != nil {
			return err
		}
		if _, err := act(req.r.Context(), req.sess.P, id); err != nil {
			return err
		}
		return redirect(req, "/panel/domains/"+strconv.FormatInt(id, 10), "")
	}
}

func (p *Panel) deleteDomain(req *request) error {
	id, err := pathID(req.r)
	if err != nil {
		return err
	}
	d, err := p.svc.GetDomain(req.r.Context(), req.sess.P, id)
	if err != nil {
		return err
	}
	if err := p.svc.DeleteDomain(req.r.Context(), req.sess.P, id); err != nil {
		return err
	}
	return redirect(req, "/panel/customers/"+strconv.FormatInt(d.CustomerID, 10), "deleted")
}

// testRoute opens an SMTP session to each of the domain's routes (its own
// and its recipient rules', each server once, at most maxTestedRoutes)
// and shows what each answered: the greeting and EHLO replies, then QUIT.
// OK only when every one answered. Only lines that are SMTP replies are
// shown, so pointing a route at some other service reveals no more than
// "not an SMTP server".
func (p *Panel) testRoute(req *request) error {
	id, err := pathID(req.r)
	if err != nil {
		return err
	}
	d, err := p.svc.GetDomain(req.r.Context(), req.sess.P, id)
	if err != nil {
		return err
	}
	if wait := p.routeTests.Take(req.sess.P.ResellerID, p.now()); wait > 0 {
		secs := int((wait + time.Second - 1) / time.Second)
		req.w.Header().Set("Retry-After", strconv.Itoa(secs))
		return p.renderDomain(req, http.StatusTooManyRequests, nil,
			fmt.Sprintf("Too many route tests. Try again in %d seconds.", secs), nil, func(*domainData) {})
	}
	ctx, cancel := context.WithTimeout(req.r.Context(), 15*time.Second)
	defer cancel()
	routes := distinctRoutes(d)
	skipped := len(routes) - maxTestedRoutes
	routes = routes[:min(len(routes), maxTestedRoutes)]
	// At once, so that a server that does not answer does not use up the
	// others' time.
	tests := make([]routeTest, len(routes))
	var wg sync.WaitGroup
	for i, route := range routes {
		wg.Go(func() { tests[i] = p.smtpProbe(ctx, route) })
	}
	wg.Wait()
	test := routeTest{OK: true}
	for _, one := range tests {
		test.OK = test.OK && one.OK
		test.Transcript = append(test.Transcript, one.Transcript...)
	}
	if skipped > 0 {
		test.Transcript = append(test.Transcript, fmt.Sprintf("%d more servers of recipient rules not tested", skipped))
	}
	return p.renderDomain(req, http.StatusOK, nil, "", nil, func(dd *domainData) { dd.Test = &test })
}

// maxTestedRoutes bounds the servers one "Test route" connects to: a
// domain may have 100 recipient rules, and one click must not become a
// hundred connections.
const maxTestedRoutes = 5

// distinctRoutes lists d's route, then its recipient rules' routes, each
// once.
func distinctRoutes(d tenant.DomainRecord) []string {
	routes := []string{d.Route}
	for _, r := range d.Routes {
		if !slices.Contains(routes, r.Route) {
			routes = append(routes, r.Route)
		}
	}
	return routes
}

// maxProbeReply bounds what a route test reads of the server's replies
// (its greeting, its EHLO and QUIT replies), as the relay bounds a
// customer's server: a reseller's own server may be anything.
const maxProbeReply = 16 << 10

func (p *Panel) smtpProbe(ctx context.Context, addr string) routeTest {
	var t routeTest
	note := func(s string) { t.Transcript = append(t.Transcript, s) }
	note("connecting to " + addr)
	conn, err := p.dialSMTP(ctx, addr)
	switch {
	case errors.Is(err, netguard.ErrRefused) || errors.Is(err, netguard.ErrLoop):
		note("not tested: " + replytext.Truncate(err.Error(), 200))
		return t
	case err != nil:
		note("connection failed: " + shortErr(err))
		return t
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		conn.SetDeadline(dl)
	}
	limited := &io.LimitedReader{R: conn, N: maxProbeReply}
	r, w := textproto.NewReader(bufio.NewReader(limited)), textproto.NewWriter(bufio.NewWriter(conn))
	reply := func() (int, bool) {
		code, msg, err := r.ReadResponse(0)
		switch {
		case err != nil && limited.N <= 0:
			note(fmt.Sprintf("the server's replies are longer than %d KiB: not tested further", maxProbeReply>>10))
			return 0, false
		case err != nil && code == 0:
			note("no SMTP reply: " + shortErr(err))
			return 0, false
		}
		for _, l := range strings.Split(msg, "\n") {
			note(strconv.Itoa(code) + " " + replytext.Sanitize(l, 200))
		}
		// The relay refuses a server that introduces itself with a name
		// of this cluster (554 5.4.6): the test must not call it OK.
		first, _, _ := strings.Cut(msg, "\n")
		if name, _, _ := strings.Cut(first, " "); p.guard.IsClusterName(name, p.helo) {
			note("this is a server of this filtering cluster, not the customer's: mail would loop, and is refused with 554 5.4.6")
			return code, false
		}
		return code, true
	}
	code, ok := reply()
	if !ok || code != 220 {
		return t
	}
	note("EHLO " + p.helo)
	if err := w.PrintfLine("EHLO %s", p.helo); err != nil {
		note("write failed: " + shortErr(err))
		return t
	}
	code, ok = reply()
	t.OK = ok && code == 250
	note("QUIT")
	if w.PrintfLine("QUIT") == nil {
		reply()
	}
	return t
}

func shortErr(err error) string {
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return "timed out"
	}
	return replytext.Truncate(err.Error(), 200)
}

func (p *Panel) addRecipient(req *request) error {
	id, err := pathID(req.r)
	if err != nil {
		return err
	}
	local := req.r.PostFormValue("local")
	if _, err := p.svc.AddRecipients(req.r.Context(), req.sess.P, id, []string{local}, false); err != nil {
		return p.formError(err, func(msg string, fe tenant.FieldErrors) error {
			return p.renderDomain(req, http.StatusBadRequest, nil, msg, fe, func(*domainData) {})
		})
	}
	return redirect(req, "/panel/domains/"+strconv.FormatInt(id, 10), "added")
}

func (p *Panel) deleteRecipient(req *request) error {
	id, err := pathID(req.r)
	if err != nil {
		return err
	}
	if err := p.svc.DeleteRecipient(req.r.Context(), req.sess.P, id, req.r.PostFormValue("local")); err != nil {
		return err
	}
	return redirect(req, "/panel/domains/"+strconv.FormatInt(id, 10), "removed")
}

// ownDomain is an upload's check that the session may see the domain its
// path names (its handler then writes it through the service, which checks
// again).
func (p *Panel) ownDomain(req *request) error {
	id, err := pathID(req.r)
	if err != nil {
		return err
	}
	_, err = p.svc.GetDomain(req.r.Context(), req.sess.P, id)
	return err
}

// importRecipients reads a CSV upload (one address or local part in the
// first column of each row). Rows that pass the same check the service
// applies are imported; the others are reported with their line numbers.
func (p *Panel) importRecipients(req *request) error {
	id, err := pathID(req.r)
	if err != nil {
		return err
	}
	ctx := req.r.Context()
	d, err := p.svc.GetDomain(ctx, req.sess.P, id)
	if err != nil {
		return err
	}
	file, _, err := req.r.FormFile("csv")
	if err != nil {
		return badInput{"Choose a CSV file to upload."}
	}
	defer file.Close()
	// The node's import places are shared with the API's imports: each
	// holds up to admin.MaxImport addresses and one long transaction.
	done, err := p.svc.BeginImport(req.sess.P)
	if err != nil {
		req.w.Header().Set("Retry-After", "5")
		return p.renderDomain(req, http.StatusTooManyRequests, nil,
			fmt.Sprintf("%d recipient imports are running on this node. Try again in a moment.", admin.MaxConcurrentImports), nil, func(*domainData) {})
	}
	defer done()
	good, bad, err := parseRecipientsCSV(file, d.Name)
	if err != nil {
		return badInput{err.Error()}
	}
	rep := &importReport{Good: len(good), Bad: bad}
	if len(good) > 0 {
		if rep.Added, err = p.svc.AddRecipients(ctx, req.sess.P, id, good, false); err != nil {
			return err
		}
	}
	code := http.StatusOK
	if len(bad) > 0 {
		code = http.StatusUnprocessableEntity
	}
	return p.renderDomain(req, code, nil, "", nil, func(dd *domainData) { dd.Import = rep })
}

// maxBadRows bounds the report of a file that is not a recipient list.
const maxBadRows = 200

func parseRecipientsCSV(r io.Reader, domain string) (good []string, bad []badRow, err error) {
	br := bufio.NewReader(r)
	// Spreadsheets save "CSV UTF-8" with a byte order mark, which is no
	// part of the first row: it made a valid first address a bad row.
	if bom, err := br.Peek(3); err == nil && string(bom) == "\ufeff" {
		br.Discard(3)
	}
	cr := csv.NewReader(br)
	cr.FieldsPerRecord = -1
	cr.TrimLeadingSpace = true
	cr.ReuseRecord = true
	for {
		rec, err := cr.Read()
		if err == io.EOF {
			return good, bad, nil
		}
		if err != nil {
			var pe *csv.ParseError
			if errors.As(err, &pe) {
				if len(bad) < maxBadRows {
					bad = append(bad, badRow{Line: pe.Line, Error: "not valid CSV: " + pe.Err.Error()})
				}
				continue
			}
			return nil, nil, fmt.Errorf("reading the CSV: %w", err)
		}
		line, _ := cr.FieldPos(0)
		v := strings.TrimSpace(rec[0])
		if v == "" || line == 1 && isHeader(v) {
			continue
		}
		if len(good) >= admin.MaxImport {
			return nil, nil, fmt.Errorf("at most %d recipients per file", admin.MaxImport)
		}
		if _, nerr := tenant.NormalizeLocal(v, domain); nerr != nil {
			if len(bad) < maxBadRows {
				bad = append(bad, badRow{Line: line, Value: replytext.Truncate(v, 100), Error: nerr.Error()})
			}
			continue
		}
		good = append(good, v)
	}
}

func isHeader(v string) bool {
	switch strings.ToLower(v) {
	case "email", "address", "recipient", "local", "local_part", "e-mail":
		return true
	}
	return false
}

// --- stats

type statsData struct {
	Charts   *chartsView
	Domain   tenant.DomainRecord
	Activity admin.Activity
}

func (p *Panel) stats(req *request) error {
	id, err := pathID(req.r)
	if err != nil {
		return err
	}
	ctx := req.r.Context()
	d, err := p.svc.GetDomain(ctx, req.sess.P, id)
	if err != nil {
		return err
	}
	a, err := p.svc.DomainActivity(ctx, req.sess.P, id, p.now())
	if err != nil {
		return err
	}
	charts, err := p.charts(req, id, 0)
	if err != nil {
		return err
	}
	p.render(req, http.StatusOK, "stats", page{Title: d.Name + " · activity", Nav: "customers", Data: statsData{Charts: charts, Domain: d, Activity: a}})
	return nil
}

// --- brand and map

type brandData struct {
	Reseller tenant.Reseller
	HasLogo  bool
	MaxKB    int
}

func (p *Panel) brand(req *request) error {
	return p.renderBrand(req, http.StatusOK, req.reseller, "", nil)
}

func (p *Panel) renderBrand(req *request, code int, r tenant.Reseller, msg string, fe tenant.FieldErrors) error {
	if req.sess.P.Operator {
		return badInput{"The white label belongs to a reseller: log in as one to edit it."}
	}
	p.render(req, code, "brand", page{Title: "White label", Nav: "brand", Error: msg, Fields: fe,
		Data: brandData{Reseller: r, HasLogo: req.hasLogo, MaxKB: admin.MaxLogoBytes >> 10}})
	return nil
}

func (p *Panel) updateBrand(req *request) error {
	if req.sess.P.Operator {
		return badInput{"The white label belongs to a reseller: log in as one to edit it."}
	}
	name, accent := req.r.PostFormValue("display_name"), req.r.PostFormValue("accent")
	if _, err := p.svc.UpdateBrand(req.r.Context(), req.sess.P, req.sess.P.ResellerID, name, accent); err != nil {
		r := req.reseller
		r.DisplayName, r.Accent = name, accent
		return p.formError(err, func(msg string, fe tenant.FieldErrors) error {
			return p.renderBrand(req, http.StatusBadRequest, r, msg, fe)
		})
	}
	return redirect(req, "/panel/brand", "saved")
}

func (p *Panel) uploadLogo(req *request) error {
	if req.sess.P.Operator {
		return badInput{"The white label belongs to a reseller: log in as one to edit it."}
	}
	file, _, err := req.r.FormFile("logo")
	if err != nil {
		return badInput{"Choose an image to upload."}
	}
	defer file.Close()
	data, err := io.ReadAll(io.LimitReader(file, admin.MaxLogoBytes+1))
	if err != nil {
		return fmt.Errorf("reading the logo: %w", err)
	}
	if err := p.svc.SetLogo(req.r.Context(), req.sess.P, req.sess.P.ResellerID, data); err != nil {
		return p.formError(err, func(msg string, fe tenant.FieldErrors) error {
			return p.renderBrand(req, http.StatusBadRequest, req.reseller, msg, fe)
		})
	}
	return redirect(req, "/panel/brand", "logo")
}

type mapData struct {
	ResellerURL string
	Customers   []customerMap
}

type customerMap struct {
	Name string
	URL  string
}

func (p *Panel) mapEmbed(req *request) error {
	ctx := req.r.Context()
	var data mapData
	if !req.sess.P.Operator {
		data.ResellerURL = p.baseURL(req.r) + "/map?reseller=" + req.reseller.Slug
	}
	list, err := p.svc.ListCustomers(ctx, req.sess.P, admin.Filter{Limit: admin.MaxPageSize})
	if err != nil {
		return err
	}
	for _, c := range list {
		data.Customers = append(data.Customers, customerMap{Name: c.Name, URL: p.baseURL(req.r) + "/map?customer=" + c.MapKey})
	}
	p.render(req, http.StatusOK, "map", page{Title: "Map", Nav: "map", Data: data})
	return nil
}

// baseURL is the panel's own origin as the browser reached it, for embed
// codes that point back at this cluster.
func (p *Panel) baseURL(r *http.Request) string {
	scheme := "http"
	if p.clientIP.HTTPS(r) {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}

// charts are the outcome charts of a domain, a customer or (both 0) the
// logged-in reseller as a whole.
func (p *Panel) charts(req *request, domainID, customerID int64) (*chartsView, error) {
	c, err := p.svc.OutcomeCharts(req.r.Context(), req.sess.P, domainID, customerID, p.now())
	if err != nil {
		return nil, err
	}
	return newChartsView(c), nil
}
