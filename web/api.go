package web

import (
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/mxgrid/mxgrid/admin"
	"github.com/mxgrid/mxgrid/clientip"
	"github.com/mxgrid/mxgrid/internal/ratelimit"
	"github.com/mxgrid/mxgrid/quarantine"
	"github.com/mxgrid/mxgrid/tenant"
)

// The admin API: REST over JSON under /api/v1/, bearer tokens, every
// decision in admin.Service so the reseller panel behaves the same.

// Body limits: an object is small; a recipient import carries up to
// admin.MaxImport addresses of at most 254 bytes plus JSON quoting.
const (
	maxBody       = 64 << 10
	maxImportBody = 32 << 20
)

//go:embed openapi.json
var openAPIDoc []byte

// AdminAPI serves /api/v1/ for resellers, customers, domains, recipients,
// tokens and the audit log.
type AdminAPI struct {
	svc     *admin.Service
	log     *slog.Logger
	clients *clientip.Resolver
	// misses counts the bearer tokens each client address showed that
	// matched nothing: each was a store read over the connections the
	// mail path shares, thousands a second from one address.
	misses *ratelimit.Misses
}

func newAdminAPI(svc *admin.Service, clients *clientip.Resolver, misses *ratelimit.Misses, log *slog.Logger) *AdminAPI {
	if misses == nil {
		misses = ratelimit.NewMisses(nil)
	}
	return &AdminAPI{svc: svc, log: log, clients: clients, misses: misses}
}

// apiRoute is one pattern of the API; the OpenAPI test walks these.
type apiRoute struct {
	pattern string
	handler http.Handler
}

// MountAdminAPI registers every route of the admin API with handle
// (Server.Handle); clients tells the client address behind a request,
// misses limits its tokens that match nothing (nil: a budget of its own).
func MountAdminAPI(handle func(pattern string, h http.Handler), svc *admin.Service, clients *clientip.Resolver, misses *ratelimit.Misses, log *slog.Logger) {
	a := newAdminAPI(svc, clients, misses, log)
	for _, r := range a.routes() {
		handle(r.pattern, r.handler)
	}
}

func (a *AdminAPI) routes() []apiRoute {
	h := func(pattern string, fn apiHandler) apiRoute {
		if !hasBody[pattern] {
			fn = takesNoBody(fn)
		}
		return apiRoute{pattern, a.authed(takesOnly(queryParams[pattern], fn))}
	}
	return []apiRoute{
		{"GET /api/v1/openapi.json", http.HandlerFunc(serveOpenAPI)},

		h("GET /api/v1/resellers", list(a.svc.ListResellers, func(x tenant.Reseller) int64 { return x.ID })),
		h("POST /api/v1/resellers", create[resellerBody](a.svc.CreateReseller)),
		h("GET /api/v1/resellers/{id}", byID(a.getReseller)),
		h("PATCH /api/v1/resellers/{id}", update[resellerBody](a.svc.UpdateReseller)),
		h("DELETE /api/v1/resellers/{id}", remove(a.svc.DeleteReseller)),

		h("GET /api/v1/customers", list(a.svc.ListCustomers, func(x tenant.Customer) int64 { return x.ID })),
		h("POST /api/v1/customers", create[customerBody](a.svc.CreateCustomer)),
		h("GET /api/v1/customers/{id}", byID(a.svc.GetCustomer)),
		h("PATCH /api/v1/customers/{id}", update[customerBody](a.svc.UpdateCustomer)),
		h("DELETE /api/v1/customers/{id}", remove(a.svc.DeleteCustomer)),

		h("GET /api/v1/domains", list(a.svc.ListDomains, func(x tenant.DomainRecord) int64 { return x.ID })),
		h("POST /api/v1/domains", create[domainBody](a.svc.CreateDomain)),
		h("GET /api/v1/domains/{id}", byID(a.svc.GetDomain)),
		h("PATCH /api/v1/domains/{id}", update[domainBody](a.svc.UpdateDomain)),
		h("DELETE /api/v1/domains/{id}", remove(a.svc.DeleteDomain)),
		h("GET /api/v1/domains/{id}/activity", byID(a.domainActivity)),
		// verify and approve answer 200 with the domain, pending or active.
		h("POST /api/v1/domains/{id}/verify", byID(a.svc.VerifyDomain)),
		h("POST /api/v1/domains/{id}/approve", byID(a.svc.ApproveDomain)),

		h("GET /api/v1/domains/{id}/recipients", a.listRecipients),
		h("POST /api/v1/domains/{id}/recipients", a.createRecipient),
		h("POST /api/v1/domains/{id}/recipients/import", a.importRecipients),
		h("GET /api/v1/domains/{id}/recipients/{local}", a.getRecipient),
		h("DELETE /api/v1/domains/{id}/recipients/{local}", a.deleteRecipient),

		h("GET /api/v1/tokens", list(a.svc.ListTokens, func(x admin.Token) int64 { return x.ID })),
		h("POST /api/v1/tokens", create[tokenBody](a.svc.CreateToken)),
		h("GET /api/v1/tokens/{id}", byID(a.svc.GetToken)),
		h("DELETE /api/v1/tokens/{id}", remove(a.svc.DeleteToken)),

		h("GET /api/v1/audit", list(a.svc.ListAudit, func(x admin.AuditEntry) int64 { return x.ID })),

		h("GET /api/v1/messages", a.searchMessages),
		h("GET /api/v1/messages/{id}", a.getMessage),
		h("GET /api/v1/deferrals", a.listDeferrals),

		h("GET /api/v1/quarantine", a.listQuarantine),
		h("GET /api/v1/quarantine/{id}", a.getQuarantined),
		h("POST /api/v1/quarantine/{id}/release", a.releaseQuarantined),
		h("DELETE /api/v1/quarantine/{id}", a.deleteQuarantined),
	}
}

// queryParams are the query parameters openapi.json documents for each
// route ("GET /api/v1/quarantine"): the only ones the route takes;
// hasBody the routes it documents a request body for.
var queryParams, hasBody = documentedRequests(openAPIDoc)

func documentedRequests(doc []byte) (map[string][]string, map[string]bool) {
	type param struct{ Name, In string }
	var d struct {
		Paths map[string]map[string]json.RawMessage `json:"paths"`
	}
	if err := json.Unmarshal(doc, &d); err != nil {
		panic("openapi.json: " + err.Error()) // embedded, and read by TestOpenAPIMatchesRoutes
	}
	out, body := map[string][]string{}, map[string]bool{}
	for path, ops := range d.Paths {
		var shared []param
		if raw, ok := ops["parameters"]; ok {
			if err := json.Unmarshal(raw, &shared); err != nil {
				panic("openapi.json: " + path + ": " + err.Error())
			}
		}
		for method, raw := range ops {
			if method == "parameters" {
				continue
			}
			var op struct {
				Parameters  []param
				RequestBody json.RawMessage `json:"requestBody"`
			}
			if err := json.Unmarshal(raw, &op); err != nil {
				panic("openapi.json: " + method + " " + path + ": " + err.Error())
			}
			key := strings.ToUpper(method) + " " + path
			out[key] = []string{}
			body[key] = op.RequestBody != nil
			for _, p := range append(slices.Clone(shared), op.Parameters...) {
				if p.In == "query" {
					out[key] = append(out[key], p.Name)
				}
			}
		}
	}
	return out, body
}

// takesOnly refuses a request whose query the route cannot read whole: a
// parameter it does not document, or a pair url.ParseQuery skips (a bad
// escape, a ';'). Either was dropped, and a dropped filter silently widened
// the answer to everything the token may see: "?status=held" (the
// quarantine's is state), "?domain=x" (domain_id), a name on the audit log
// (which has none), or "?domain_id=%35%" listed every domain's. A
// parameter given twice is refused too, as a JSON key given twice is: the
// handlers read the first, and a proxy or log reading the last sees
// another request.
func takesOnly(known []string, fn apiHandler) apiHandler {
	return func(w http.ResponseWriter, r *http.Request, p admin.Principal) error {
		q, err := url.ParseQuery(r.URL.RawQuery)
		if err != nil {
			return badRequest{"query: " + err.Error()}
		}
		fe := tenant.FieldErrors{}
		for k, vs := range q {
			switch {
			case !slices.Contains(known, k):
				fe[k] = "not a parameter of this request; it takes " + paramList(known)
			case len(vs) > 1:
				fe[k] = "given more than once"
			}
		}
		if len(fe) > 0 {
			return fe
		}
		return fn(w, r, p)
	}
}

// takesNoBody refuses a body on a route that reads none, unless it is an
// empty object: its fields were dropped, and the call answered as if
// they had been read ({"reason": ...} on an approve). A client that
// always sends {} is served.
func takesNoBody(fn apiHandler) apiHandler {
	return func(w http.ResponseWriter, r *http.Request, p admin.Principal) error {
		if r.ContentLength != 0 {
			if err := decode(w, r, maxBody, &struct{}{}); err != nil {
				return err
			}
		}
		return fn(w, r, p)
	}
}

func paramList(known []string) string {
	if len(known) == 0 {
		return "none"
	}
	return strings.Join(known, ", ")
}

func serveOpenAPI(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Write(openAPIDoc)
}

// apiError is the body of every error answer.
type apiError struct {
	Error  string            `json:"error"`
	Fields map[string]string `json:"fields,omitempty"`
	// Quota details a refusal by a reseller's quota.
	Quota *tenant.QuotaError `json:"quota,omitempty"`
}

// errBodyTooLarge and errBadRequest are the handler-side input errors.
var errBodyTooLarge = errors.New("request body too large")

type badRequest struct{ msg string }

func (e badRequest) Error() string { return e.msg }

// OperatorOnly guards h with the operator's bearer token, for operator
// actions that live outside the admin API (regenerating the map); like the
// API's routes, h takes no body and only the query parameters openapi.json
// documents for its route.
func OperatorOnly(svc *admin.Service, clients *clientip.Resolver, misses *ratelimit.Misses, log *slog.Logger) func(http.Handler) http.Handler {
	a := newAdminAPI(svc, clients, misses, log)
	return func(h http.Handler) http.Handler {
		serve := func(w http.ResponseWriter, r *http.Request, _ admin.Principal) error {
			h.ServeHTTP(w, r)
			return nil
		}
		return a.authed(func(w http.ResponseWriter, r *http.Request, p admin.Principal) error {
			if !p.Operator {
				return fmt.Errorf("%w: only the operator may do this", admin.ErrForbidden)
			}
			// The route takes what openapi.json documents for it (r.Pattern
			// is the mux's route, "POST /api/v1/map/regenerate"), as the
			// API's own routes do: a query or body it does not read was
			// answered as if it had been.
			return takesOnly(queryParams[r.Pattern], takesNoBody(serve))(w, r, p)
		})
	}
}

// authed authenticates the bearer token, runs fn and maps its error.
func (a *AdminAPI) authed(fn func(w http.ResponseWriter, r *http.Request, p admin.Principal) error) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		// The scheme is case-insensitive (RFC 9110 §11.1): "bearer" too.
		scheme, secret, _ := strings.Cut(r.Header.Get("Authorization"), " ")
		if !strings.EqualFold(scheme, "Bearer") {
			a.fail(w, r, admin.ErrUnauthenticated)
			return
		}
		p, err := a.authenticate(r, strings.TrimSpace(secret))
		if err != nil {
			a.fail(w, r, err)
			return
		}
		done, err := a.svc.BeginRequest(r.Context(), p)
		if err != nil {
			a.fail(w, r, err)
			return
		}
		defer done()
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			if err := a.svc.AllowChange(p); err != nil {
				a.fail(w, r, err)
				return
			}
		}
		if err := fn(w, r, p); err != nil {
			a.fail(w, r, err)
		}
	})
}

// authFailuresError: the client address showed too many tokens that
// matched nothing; Wait is until it may show another.
type authFailuresError struct{ Wait time.Duration }

func (e authFailuresError) Error() string {
	return "too many failed authentications from this address: try again later"
}

// authenticate looks secret up, unless r's client address showed too
// many tokens that matched nothing.
func (a *AdminAPI) authenticate(r *http.Request, secret string) (admin.Principal, error) {
	client, now := a.clients.Of(r), time.Now()
	if wait := a.misses.Refused(client, "api_token", now); wait > 0 {
		return admin.Principal{}, authFailuresError{Wait: wait}
	}
	p, err := a.svc.Authenticate(r.Context(), secret)
	if errors.Is(err, admin.ErrUnauthenticated) {
		a.misses.Missed(client, now)
	}
	return p, err
}

func (a *AdminAPI) fail(w http.ResponseWriter, r *http.Request, err error) {
	var (
		fe        tenant.FieldErrors
		bad       badRequest
		qe        *tenant.QuotaError
		abandoned *quarantine.AbandonedError
		failures  authFailuresError
		code      int
		body      = apiError{Error: err.Error()}
	)
	switch {
	case errors.As(err, &failures):
		w.Header().Set("Retry-After", ratelimit.RetryAfter(failures.Wait))
		code = http.StatusTooManyRequests
	case errors.As(err, &fe):
		code, body = http.StatusBadRequest, apiError{Error: "invalid input", Fields: fe}
	case errors.As(err, &qe):
		// 403, not 409: the request is valid and the name free, but this
		// reseller may hold no more; clients take 409 for a name taken.
		code, body.Quota = http.StatusForbidden, qe
	case errors.As(err, &bad):
		code = http.StatusBadRequest
	case errors.Is(err, errBodyTooLarge):
		code = http.StatusRequestEntityTooLarge
	case errors.Is(err, admin.ErrUnauthenticated):
		w.Header().Set("WWW-Authenticate", `Bearer realm="mxgrid"`)
		code = http.StatusUnauthorized
	case errors.Is(err, admin.ErrForbidden):
		code = http.StatusForbidden
	case errors.Is(err, tenant.ErrNotFound):
		code, body = http.StatusNotFound, apiError{Error: "not found"}
	case errors.Is(err, tenant.ErrConflict):
		code = http.StatusConflict
	case errors.Is(err, quarantine.ErrDelivery):
		a.log.Warn("admin API: release failed", "path", r.URL.Path, "err", err)
		code, body = http.StatusBadGateway, apiError{Error: err.Error()}
	case errors.Is(err, admin.ErrNoDNSAnswer):
		code, body = http.StatusBadGateway, apiError{Error: admin.ErrNoDNSAnswer.Error()}
	case errors.As(err, &abandoned):
		code, body = http.StatusConflict, apiError{Error: abandoned.Message()}
	case errors.Is(err, quarantine.ErrReleasing):
		code, body = http.StatusConflict, apiError{Error: "the message is being released right now: if its delivery fails, it stays held"}
	case errors.Is(err, quarantine.ErrNotHeld):
		code, body = http.StatusConflict, apiError{Error: "the message is no longer held: released or deleted already"}
	case errors.Is(err, admin.ErrBusy), errors.Is(err, quarantine.ErrBusy):
		w.Header().Set("Retry-After", "5")
		code = http.StatusTooManyRequests
	case errors.Is(err, tenant.ErrUnavailable):
		// The node keeps filtering mail from its snapshot; only changes wait.
		a.log.Warn("admin API: tenant store unavailable", "method", r.Method, "path", r.URL.Path, "err", err)
		w.Header().Set("Retry-After", "5")
		code, body = http.StatusServiceUnavailable, apiError{Error: "the tenant database is unavailable; mail keeps flowing from the last snapshot, but changes cannot be saved now: try again later"}
	default:
		a.log.Error("admin API", "method", r.Method, "path", r.URL.Path, "err", err)
		code, body = http.StatusInternalServerError, apiError{Error: "internal error"}
	}
	writeJSON(w, code, body)
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(v)
}

// decode reads one JSON object into v: bounded, unknown fields refused,
// strings valid UTF-8, no key twice in an object and no outer key null
// (keyCheck), nothing after it.
func decode(w http.ResponseWriter, r *http.Request, limit int64, v any) error {
	keys := &keyCheck{r: http.MaxBytesReader(w, r.Body, limit)}
	dec := json.NewDecoder(keys)
	dec.DisallowUnknownFields()
	err := dec.Decode(v)
	if err == nil && dec.Decode(&struct{}{}) != io.EOF {
		err = errors.New("one JSON object expected, found more data after it")
	}
	if err == nil && keys.notUTF8 {
		err = errors.New("a string is not valid UTF-8")
	}
	if err == nil && keys.unpaired {
		err = errors.New(`a string escapes half of a UTF-16 surrogate pair (\ud800-\udfff)`)
	}
	if err == nil && keys.dup != "" {
		err = fmt.Errorf("key %q is given twice in one object (keys are matched regardless of case)", keys.dup)
	}
	if err == nil && len(keys.nulls) > 0 {
		fe := tenant.FieldErrors{}
		for _, k := range keys.nulls {
			fe[k] = "must not be null (leave the key out instead)"
		}
		err = fe
	}
	var (
		mbe *http.MaxBytesError
		fe  tenant.FieldErrors
		ute *json.UnmarshalTypeError
	)
	switch {
	case keys.notObject && !errors.As(err, &mbe):
		return badRequest{"request body: a JSON object is required"}
	case err == nil:
		return nil
	case errors.As(err, &fe):
		return fe
	case errors.As(err, &ute) && ute.Field != "":
		// Named by its JSON path: encoding/json's own message names
		// our Go types ("Go struct field domainBody.customer_id").
		return tenant.FieldErrors{ute.Field: "must be " + jsonKind(ute.Type)}
	case errors.As(err, &mbe):
		return fmt.Errorf("%w: at most %d bytes", errBodyTooLarge, mbe.Limit)
	case errors.Is(err, io.EOF):
		return badRequest{"request body: a JSON object is required"}
	}
	return badRequest{"request body: " + err.Error()}
}

// rfc3339 is a request body's time. time.Time's own decoding error names
// neither the key nor the form it wants ("parsing time ... as 2006-01-02");
// this one is an UnmarshalTypeError, which decode reports by key.
type rfc3339 struct{ time.Time }

func (t *rfc3339) UnmarshalJSON(b []byte) error {
	var s string
	if json.Unmarshal(b, &s) == nil {
		if v, err := time.Parse(time.RFC3339, s); err == nil {
			t.Time = v
			return nil
		}
	}
	return &json.UnmarshalTypeError{Value: "not an RFC 3339 time", Type: reflect.TypeFor[rfc3339]()}
}

// jsonKind says what JSON value fits a Go type, for a client.
func jsonKind(t reflect.Type) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t == reflect.TypeFor[rfc3339]() {
		return "a time in RFC 3339 form, such as 2027-03-01T00:00:00Z"
	}
	switch t.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "an integer"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Slice, reflect.Array:
		return "an array"
	}
	return "an object"
}

// pathID parses the {id} path segment; a malformed one names no object.
func pathID(r *http.Request) (int64, error) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id <= 0 {
		return 0, tenant.ErrNotFound
	}
	return id, nil
}

// page is a list answer. NextAfter, when set, is the `after` of the next page.
type page[T any] struct {
	Items     []T   `json:"items"`
	NextAfter int64 `json:"next_after,omitempty"`
}

// filter parses the list query: limit, after, name, reseller_id, customer_id.
func filter(r *http.Request) (admin.Filter, error) {
	q := r.URL.Query()
	fe := tenant.FieldErrors{}
	num := func(key string) int64 {
		s := q.Get(key)
		if s == "" {
			return 0
		}
		v, err := strconv.ParseInt(s, 10, 64)
		if err != nil || v < 0 {
			fe[key] = "must be a non-negative integer"
		}
		return v
	}
	f := admin.Filter{
		Limit: int(num("limit")), After: num("after"), Name: q.Get("name"),
		ResellerID: num("reseller_id"), CustomerID: num("customer_id"),
	}
	if f.Limit > admin.MaxPageSize {
		fe["limit"] = fmt.Sprintf("at most %d", admin.MaxPageSize)
	}
	if f.Limit == 0 {
		f.Limit = admin.DefaultPageSize
	}
	if len(fe) > 0 {
		return f, fe
	}
	return f, nil
}

// list runs a list call and writes the page.
func list[T any](fetch func(context.Context, admin.Principal, admin.Filter) ([]T, error), id func(T) int64) apiHandler {
	return func(w http.ResponseWriter, r *http.Request, p admin.Principal) error {
		f, err := filter(r)
		if err != nil {
			return err
		}
		items, err := fetch(r.Context(), p, f)
		if err != nil {
			return err
		}
		pg := page[T]{Items: items}
		if len(items) == f.Limit {
			pg.NextAfter = id(items[len(items)-1])
		}
		writeJSON(w, http.StatusOK, pg)
		return nil
	}
}
