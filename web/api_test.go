package web

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mxgrid/mxgrid/admin"
	"github.com/mxgrid/mxgrid/clientip"
	"github.com/mxgrid/mxgrid/dnsresolver"
	"github.com/mxgrid/mxgrid/dnsresolver/dnstest"
	"github.com/mxgrid/mxgrid/health"
	"github.com/mxgrid/mxgrid/quarantine"
	"github.com/mxgrid/mxgrid/spammap"
	"github.com/mxgrid/mxgrid/store"
	"github.com/mxgrid/mxgrid/tenant"
	"github.com/mxgrid/mxgrid/tracking"
	"github.com/mxgrid/mxgrid/verdict"
)

const operatorSecret = "operator-file-token-for-tests"

type apiFixture struct {
	t       *testing.T
	srv     *httptest.Server
	svc     *admin.Service
	op      admin.Principal
	tokens  map[string]string // principal -> bearer
	resA    tenant.Reseller
	resB    tenant.Reseller
	custA   tenant.Customer
	domA    tenant.DomainRecord
	tokA    admin.Token
	msgA    int64 // a message record of customer A's
	heldA   int64 // a quarantined message of customer A's
	q       *quarantine.Service
	changes atomic.Int64
	seq     atomic.Int64
	dns     *dnstest.Server
	st      *store.Store
}

// newAPIFixture builds the API over a fresh store; opts adjust the service
// (a route guard, for instance).
func newAPIFixture(t *testing.T, opts ...func(*admin.ServiceOptions)) *apiFixture {
	t.Helper()
	ctx := context.Background()
	st, err := store.Open(store.DefaultConfig(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if err := st.MigrateEvents(ctx); err != nil {
		t.Fatal(err)
	}
	if err := st.MigrateDomainStats(ctx); err != nil {
		t.Fatal(err)
	}
	if err := st.MigrateTracking(ctx); err != nil {
		t.Fatal(err)
	}
	if err := st.MigrateQuarantine(ctx); err != nil {
		t.Fatal(err)
	}
	f := &apiFixture{t: t, op: admin.Operator("test"), dns: dnstest.Start(t), st: st}
	// Releases fail: this fixture has no route to deliver to.
	f.q = quarantine.New(quarantine.DefaultConfig(), st, failingDeliverer{}, nil)
	tn := store.NewTenants(st)
	so := admin.ServiceOptions{
		Panel:         tn,
		Activity:      st,
		Messages:      st,
		Quarantine:    f.q,
		OperatorToken: operatorSecret,
		Changed:       func(uint64) { f.changes.Add(1) },
		Log:           slog.New(slog.NewTextHandler(io.Discard, nil)),
		Ownership: admin.OwnershipOptions{
			DNS:      dnsresolver.Uncached(dnsresolver.Config{Server: f.dns.Addr}),
			MXHosts:  []string{"mx1.mxgrid.test", "mx2.mxgrid.test"},
			Reserved: []string{"reserved.test"},
		},
	}
	for _, o := range opts {
		o(&so)
	}
	f.svc = admin.NewService(tn, so)
	// The node's own root handler, which vets paths before its mux.
	s := New(health.New(), prometheus.NewRegistry(), slog.New(slog.DiscardHandler), DefaultLimits())
	MountAdminAPI(s.Handle, f.svc, clientip.New(nil), nil, slog.New(slog.NewTextHandler(io.Discard, nil)))
	f.srv = httptest.NewServer(s.Handler())
	t.Cleanup(f.srv.Close)

	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	f.resA, err = f.svc.CreateReseller(ctx, f.op, tenant.Reseller{Name: "reseller A"})
	must(err)
	f.resB, err = f.svc.CreateReseller(ctx, f.op, tenant.Reseller{Name: "reseller B"})
	must(err)
	f.custA, err = f.svc.CreateCustomer(ctx, f.op, tenant.Customer{ResellerID: f.resA.ID, Name: "customer A"})
	must(err)
	f.domA, err = f.svc.CreateDomain(ctx, f.op, tenant.DomainRecord{CustomerID: f.custA.ID, Name: "a.example", Route: "127.0.0.1:2525"})
	must(err)
	_, err = f.svc.AddRecipients(ctx, f.op, f.domA.ID, []string{"alice"}, false)
	must(err)
	f.tokA, err = f.svc.CreateToken(ctx, f.op, admin.Token{Name: "A", ResellerID: f.resA.ID})
	must(err)
	must(st.InsertTracking(ctx, []tracking.Record{{Time: time.Now(), QueueID: "QA", Sender: "x@sender.example",
		Recipient: "alice@a.example", DomainID: f.domA.ID, CustomerID: f.custA.ID, Status: tracking.StatusDelivered, ReplyCode: 250},
		{Time: time.Now(), QueueID: "QB", Sender: "x@sender.example", Recipient: "bob@a.example", DomainID: f.domA.ID,
			CustomerID: f.custA.ID, Status: tracking.StatusDeferred, DeferReason: tracking.DeferUnreachable, ReplyCode: 451}}))
	recs, _, err := st.SearchTracking(ctx, tracking.Filter{Scope: tracking.Scope{Operator: true}, QueueID: "QA"})
	must(err)
	f.msgA = recs[0].ID
	f.heldA = f.held()
	tokB, err := f.svc.CreateToken(ctx, f.op, admin.Token{Name: "B", ResellerID: f.resB.ID})
	must(err)
	f.tokens = map[string]string{
		"operator": operatorSecret,
		"own":      f.tokA.Secret,
		"other":    tokB.Secret,
		"none":     "",
		"bad":      "mxg_" + strings.Repeat("x", 43),
	}
	return f
}

func (f *apiFixture) next() int64 { return f.seq.Add(1) }

// held quarantines a message for customer A and returns its id.
func (f *apiFixture) held() int64 {
	f.t.Helper()
	ids, err := f.q.Hold(context.Background(), quarantine.Item{QueueID: "QH", Domain: "a.example", DomainID: f.domA.ID,
		CustomerID: f.custA.ID, Sender: "x@sender.example", Recipients: []string{"alice@a.example"}, Subject: "Invoice"},
		strings.NewReader("Subject: Invoice\r\n\r\nPlease pay.\r\n"))
	if err != nil {
		f.t.Fatal(err)
	}
	return ids[0]
}

// failingDeliverer injects a customer server that is down.
type failingDeliverer struct{}

func (failingDeliverer) Deliver(context.Context, quarantine.HeldDomain, string, bool, []string, []byte) (string, error) {
	return "", errors.New("customer server down")
}

// do sends a request as who and returns the status and body.
func (f *apiFixture) do(who, method, path string, body any) (int, []byte) {
	f.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		j, err := json.Marshal(b)
		if err != nil {
			f.t.Fatal(err)
		}
		rd = bytes.NewReader(j)
	}
	req, err := http.NewRequest(method, f.srv.URL+path, rd)
	if err != nil {
		f.t.Fatal(err)
	}
	if tok := f.tokens[who]; tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	resp, err := f.srv.Client().Do(req)
	if err != nil {
		f.t.Fatal(err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, out
}

// retryAfter sends a request without a body as who and returns its status
// and Retry-After.
func (f *apiFixture) retryAfter(who, method, path string) (int, string) {
	f.t.Helper()
	req, err := http.NewRequest(method, f.srv.URL+path, nil)
	if err != nil {
		f.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+f.tokens[who])
	resp, err := f.srv.Client().Do(req)
	if err != nil {
		f.t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode, resp.Header.Get("Retry-After")
}

// Fresh objects under reseller A, for destructive calls.
func (f *apiFixture) freshCustomer() int64 {
	c, err := f.svc.CreateCustomer(context.Background(), f.op, tenant.Customer{ResellerID: f.resA.ID, Name: "fresh"})
	if err != nil {
		f.t.Fatal(err)
	}
	return c.ID
}

func (f *apiFixture) freshDomain() int64 {
	d, err := f.svc.CreateDomain(context.Background(), f.op, tenant.DomainRecord{CustomerID: f.custA.ID, Name: fmt.Sprintf("fresh%d.example", f.next()), Route: "127.0.0.1:25"})
	if err != nil {
		f.t.Fatal(err)
	}
	return d.ID
}

// TestAPIAuthorizationMatrix calls every route as the operator, the owning
// reseller, another reseller, without a token and with a bad one.
func TestAPIAuthorizationMatrix(t *testing.T) {
	f := newAPIFixture(t)
	A, cA, dA := f.resA.ID, f.custA.ID, f.domA.ID
	type want struct{ operator, own, other int }
	p := func(format string, a ...any) func() string { return func() string { return fmt.Sprintf(format, a...) } }
	cases := []struct {
		method string
		path   func() string
		body   func() any
		want   want
		public bool
	}{
		{"GET", p("/api/v1/openapi.json"), nil, want{200, 200, 200}, true},
		{"GET", p("/api/v1/resellers"), nil, want{200, 200, 200}, false},
		{"POST", p("/api/v1/resellers"), func() any { return map[string]any{"name": "new"} }, want{201, 403, 403}, false},
		{"GET", p("/api/v1/resellers/%d", A), nil, want{200, 200, 404}, false},
		{"PATCH", p("/api/v1/resellers/%d", A), func() any { return map[string]any{"name": "reseller A"} }, want{200, 403, 404}, false},
		{"DELETE", p("/api/v1/resellers/%d", A), nil, want{409, 403, 404}, false},
		{"DELETE", func() string {
			r, err := f.svc.CreateReseller(context.Background(), f.op, tenant.Reseller{Name: "empty"})
			if err != nil {
				t.Fatal(err)
			}
			return fmt.Sprintf("/api/v1/resellers/%d", r.ID)
		}, nil, want{204, 404, 404}, false},
		{"GET", p("/api/v1/customers"), nil, want{200, 200, 200}, false},
		{"POST", p("/api/v1/customers"), func() any { return map[string]any{"name": "c", "reseller_id": A} }, want{201, 201, 400}, false},
		{"GET", p("/api/v1/customers/%d", cA), nil, want{200, 200, 404}, false},
		{"PATCH", p("/api/v1/customers/%d", cA), func() any { return map[string]any{"name": "customer A"} }, want{200, 200, 404}, false},
		{"DELETE", func() string { return fmt.Sprintf("/api/v1/customers/%d", f.freshCustomer()) }, nil, want{204, 204, 404}, false},
		{"GET", p("/api/v1/domains"), nil, want{200, 200, 200}, false},
		{"POST", p("/api/v1/domains"), func() any {
			return map[string]any{"name": fmt.Sprintf("n%d.example", f.next()), "customer_id": cA, "route": "127.0.0.1:25"}
		}, want{201, 201, 400}, false},
		{"GET", p("/api/v1/domains/%d", dA), nil, want{200, 200, 404}, false},
		{"PATCH", p("/api/v1/domains/%d", dA), func() any { return map[string]any{"route": "127.0.0.1:2525"} }, want{200, 200, 404}, false},
		{"DELETE", func() string { return fmt.Sprintf("/api/v1/domains/%d", f.freshDomain()) }, nil, want{204, 204, 404}, false},
		{"GET", p("/api/v1/domains/%d/activity", dA), nil, want{200, 200, 404}, false},
		{"POST", p("/api/v1/domains/%d/verify", dA), nil, want{200, 200, 404}, false},
		{"POST", p("/api/v1/domains/%d/approve", dA), nil, want{200, 403, 403}, false},
		{"GET", p("/api/v1/domains/%d/recipients", dA), nil, want{200, 200, 404}, false},
		{"POST", p("/api/v1/domains/%d/recipients", dA), func() any { return map[string]any{"local": fmt.Sprintf("u%d", f.next())} }, want{201, 201, 404}, false},
		{"POST", p("/api/v1/domains/%d/recipients/import", dA), func() any { return map[string]any{"recipients": []string{"bob", "carol@a.example"}} }, want{200, 200, 404}, false},
		{"GET", p("/api/v1/domains/%d/recipients/alice", dA), nil, want{200, 200, 404}, false},
		{"DELETE", func() string {
			l := fmt.Sprintf("gone%d", f.next())
			if _, err := f.svc.AddRecipients(context.Background(), f.op, dA, []string{l}, false); err != nil {
				t.Fatal(err)
			}
			return fmt.Sprintf("/api/v1/domains/%d/recipients/%s", dA, l)
		}, nil, want{204, 204, 404}, false},
		{"GET", p("/api/v1/tokens"), nil, want{200, 200, 200}, false},
		{"POST", p("/api/v1/tokens"), func() any { return map[string]any{"name": "t"} }, want{201, 201, 201}, false},
		{"GET", p("/api/v1/tokens/%d", f.tokA.ID), nil, want{200, 200, 404}, false},
		{"DELETE", func() string {
			tk, err := f.svc.CreateToken(context.Background(), f.op, admin.Token{Name: "doomed", ResellerID: A})
			if err != nil {
				t.Fatal(err)
			}
			return fmt.Sprintf("/api/v1/tokens/%d", tk.ID)
		}, nil, want{204, 204, 404}, false},
		{"GET", p("/api/v1/audit"), nil, want{200, 200, 200}, false},
		{"GET", p("/api/v1/messages"), nil, want{200, 200, 200}, false},
		{"GET", func() string { return fmt.Sprintf("/api/v1/messages/%d", f.msgA) }, nil, want{200, 200, 404}, false},
		{"GET", p("/api/v1/deferrals"), nil, want{200, 200, 200}, false},
		{"GET", p("/api/v1/quarantine"), nil, want{200, 200, 200}, false},
		{"GET", func() string { return fmt.Sprintf("/api/v1/quarantine/%d", f.heldA) }, nil, want{200, 200, 404}, false},
		{"DELETE", func() string { return fmt.Sprintf("/api/v1/quarantine/%d", f.held()) }, nil, want{204, 204, 404}, false},
		{"POST", func() string { return fmt.Sprintf("/api/v1/quarantine/%d/release", f.held()) }, nil, want{502, 502, 404}, false},
	}
	covered := map[string]bool{}
	for _, tc := range cases {
		pattern := tc.method + " " + tc.path()
		covered[routeKey(tc.method, tc.path())] = true
		for _, who := range []string{"operator", "own", "other", "none", "bad"} {
			want := map[string]int{"operator": tc.want.operator, "own": tc.want.own, "other": tc.want.other, "none": 401, "bad": 401}[who]
			if tc.public {
				want = 200
			}
			var body any
			if tc.body != nil {
				body = tc.body()
			}
			path := tc.path()
			code, out := f.do(who, tc.method, path, body)
			if code != want {
				t.Errorf("%s as %s: status %d, want %d (%s)", pattern, who, code, want, out)
			}
		}
	}
	// Every API route is in the matrix.
	a := &AdminAPI{svc: f.svc}
	for _, r := range a.routes() {
		if !covered[r.pattern] {
			t.Errorf("route %s missing from the authorization matrix", r.pattern)
		}
	}

	// Lists are scoped: reseller B sees none of A's objects.
	for _, path := range []string{"/api/v1/customers", "/api/v1/domains", "/api/v1/resellers", "/api/v1/tokens", "/api/v1/audit",
		"/api/v1/messages", fmt.Sprintf("/api/v1/messages?customer_id=%d", cA), fmt.Sprintf("/api/v1/messages?domain_id=%d", dA), "/api/v1/messages?queue_id=QA", "/api/v1/deferrals", "/api/v1/quarantine", fmt.Sprintf("/api/v1/quarantine?customer_id=%d", cA)} {
		_, out := f.do("other", "GET", path, nil)
		var pg struct{ Items []map[string]any }
		if err := json.Unmarshal(out, &pg); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		for _, it := range pg.Items {
			if strings.HasPrefix(path, "/api/v1/messages") || strings.HasPrefix(path, "/api/v1/deferrals") || strings.HasPrefix(path, "/api/v1/quarantine") {
				t.Errorf("reseller B's %s lists %v", path, it)
			}
			if rid, ok := it["reseller_id"]; ok && rid != float64(f.resB.ID) {
				t.Errorf("reseller B's %s lists %v", path, it)
			}
			if id, ok := it["id"]; ok && path == "/api/v1/resellers" && id != float64(f.resB.ID) {
				t.Errorf("reseller B's reseller list holds %v", it)
			}
		}
	}
}

// routeKey maps a concrete request to the pattern that serves it, by
// replacing numeric segments and recipient names with the path variables.
func routeKey(method, path string) string {
	segs := strings.Split(path, "/")
	for i, s := range segs {
		if i > 0 && segs[i-1] == "recipients" && s != "import" {
			segs[i] = "{local}"
		} else if s != "" && strings.Trim(s, "0123456789") == "" {
			segs[i] = "{id}"
		}
	}
	return method + " " + strings.Join(segs, "/")
}

// TestOpenAPIMatchesRoutes compares the mux's routes with the document's
// paths and methods, both ways.
func TestOpenAPIMatchesRoutes(t *testing.T) {
	var doc struct {
		Paths map[string]map[string]json.RawMessage `json:"paths"`
	}
	if err := json.Unmarshal(openAPIDoc, &doc); err != nil {
		t.Fatalf("openapi.json: %v", err)
	}
	var documented []string
	for path, ops := range doc.Paths {
		for method := range ops {
			if method == "parameters" {
				continue
			}
			documented = append(documented, strings.ToUpper(method)+" "+path)
		}
	}
	var routed []string
	MountAdminAPI(func(pattern string, _ http.Handler) { routed = append(routed, pattern) }, nil, nil, nil, nil)
	// The operator's map route lives with the map, under /api/v1 too.
	for _, pattern := range MapRoutes() {
		if strings.Contains(pattern, " /api/") {
			routed = append(routed, pattern)
		}
	}
	sort.Strings(documented)
	sort.Strings(routed)
	if strings.Join(documented, "\n") != strings.Join(routed, "\n") {
		t.Errorf("openapi.json and the routes differ:\ndocumented:\n%s\nrouted:\n%s", strings.Join(documented, "\n"), strings.Join(routed, "\n"))
	}
}

// TestOpenAPISchemasNameEveryField: the document's schemas of the API's
// objects list every field the API reads or answers in them. The Policy
// schema forbids other properties, and tag_action (quarantine or tag) was
// missing from it, so a client validating against the document refused
// the quarantine setting; a reseller's slug, a customer's map key and a
// pending domain's pending_since, which the public map URLs and the claim
// rules need, were answered but not documented.
func TestOpenAPISchemasNameEveryField(t *testing.T) {
	var doc struct {
		Components struct {
			Schemas map[string]struct {
				Properties map[string]json.RawMessage `json:"properties"`
			} `json:"schemas"`
		} `json:"components"`
	}
	if err := json.Unmarshal(openAPIDoc, &doc); err != nil {
		t.Fatalf("openapi.json: %v", err)
	}
	for schema, typ := range map[string]reflect.Type{
		"Policy":   reflect.TypeFor[tenant.Policy](),
		"Reseller": reflect.TypeFor[tenant.Reseller](),
		"Customer": reflect.TypeFor[tenant.Customer](),
		"Domain":   reflect.TypeFor[tenant.DomainRecord](),
	} {
		props := doc.Components.Schemas[schema].Properties
		for i := range typ.NumField() {
			name, _, _ := strings.Cut(typ.Field(i).Tag.Get("json"), ",")
			if _, ok := props[name]; !ok && name != "-" {
				t.Errorf("%s.%s (%q) is not a property of the %s schema", typ.Name(), typ.Field(i).Name, name, schema)
			}
		}
	}
}

// TestAPIBadInput: each kind of bad input gets its status and, for
// validation, the field that is wrong.
func TestAPIBadInput(t *testing.T) {
	f := newAPIFixture(t)
	dom := func(name string) map[string]any {
		return map[string]any{"name": name, "customer_id": f.custA.ID, "route": "127.0.0.1:25"}
	}
	cases := []struct {
		name      string
		method    string
		path      string
		body      any
		wantCode  int
		wantField string
	}{
		{"malformed JSON", "POST", "/api/v1/resellers", `{"name":`, 400, ""},
		{"not an object", "POST", "/api/v1/resellers", `[1,2]`, 400, ""},
		{"a string for the body", "POST", "/api/v1/resellers", `"Acme"`, 400, ""},
		// A null body was read as {}: a PATCH answered 200 and changed nothing.
		{"null for the body", "PATCH", fmt.Sprintf("/api/v1/domains/%d", f.domA.ID), `null`, 400, ""},
		// A body a route does not read was dropped: 200, its fields unseen.
		{"a field on a route that takes no body", "POST", fmt.Sprintf("/api/v1/domains/%d/approve", f.domA.ID), `{"reason":"checked by phone"}`, 400, ""},
		{"a list on a route that takes no body", "DELETE", fmt.Sprintf("/api/v1/domains/%d/recipients/nobody", f.domA.ID), `[]`, 400, ""},
		{"an empty object on a route that takes no body", "POST", fmt.Sprintf("/api/v1/domains/%d/approve", f.domA.ID), `{}`, 200, ""},
		{"empty body", "POST", "/api/v1/resellers", ``, 400, ""},
		{"trailing data", "POST", "/api/v1/resellers", `{"name":"x"} {"name":"y"}`, 400, ""},
		{"unknown field", "POST", "/api/v1/resellers", `{"name":"x","bogus":1}`, 400, ""},
		{"unknown policy field", "POST", "/api/v1/domains", `{"name":"u.example","customer_id":1,"route":"127.0.0.1:25","policy":{"tag":1}}`, 400, ""},
		{"wrong type", "POST", "/api/v1/customers", `{"name":"x","reseller_id":"1"}`, 400, "reseller_id"},
		{"wrong type in the policy", "PATCH", fmt.Sprintf("/api/v1/domains/%d", f.domA.ID), `{"policy":{"tag_score":"high"}}`, 400, "policy.tag_score"},
		{"a fraction for an id", "POST", "/api/v1/domains", `{"name":"f.example","customer_id":1.5,"route":"h:25"}`, 400, "customer_id"},
		{"missing name", "POST", "/api/v1/resellers", `{}`, 400, "name"},
		{"domain without dot", "POST", "/api/v1/domains", dom("localhost"), 400, "name"},
		{"domain with space", "POST", "/api/v1/domains", dom("exa mple.com"), 400, "name"},
		{"domain empty label", "POST", "/api/v1/domains", dom("a..example"), 400, "name"},
		{"domain too long", "POST", "/api/v1/domains", dom(strings.Repeat("a", 64) + ".example"), 400, "name"},
		{"domain empty", "POST", "/api/v1/domains", dom(""), 400, "name"},
		{"domain is an IPv4 address", "POST", "/api/v1/domains", dom("127.0.0.1"), 400, "name"},
		{"domain under a numeric top-level label", "POST", "/api/v1/domains", dom("mail.example.123"), 400, "name"},
		{"route not host:port", "POST", "/api/v1/domains", map[string]any{"name": "r.example", "customer_id": f.custA.ID, "route": "mail.example"}, 400, "route"},
		// Routes the relay cannot dial, once stored, deferred the domain's
		// mail for ever.
		{"route host with a space", "POST", "/api/v1/domains", map[string]any{"name": "r.example", "customer_id": f.custA.ID, "route": "mail host.example:25"}, 400, "route"},
		{"route port with a sign", "POST", "/api/v1/domains", map[string]any{"name": "r.example", "customer_id": f.custA.ID, "route": "mail.example:+25"}, 400, "route"},
		{"route rule not dialable", "POST", "/api/v1/domains", map[string]any{"name": "r.example", "customer_id": f.custA.ID, "route": "mail.example:25",
			"routes": []map[string]any{{"route": "10.1:25", "recipients": []string{"a"}}}}, 400, "routes[0].route"},
		{"bad tls", "POST", "/api/v1/domains", map[string]any{"name": "r.example", "customer_id": f.custA.ID, "route": "h:25", "tls": "maybe"}, 400, "tls"},
		{"missing customer", "POST", "/api/v1/domains", map[string]any{"name": "r.example", "route": "h:25"}, 400, "customer_id"},
		{"bad policy", "POST", "/api/v1/domains", map[string]any{"name": "r.example", "customer_id": f.custA.ID, "route": "h:25",
			"policy": map[string]any{"tag_score": 9, "reject_score": 5}}, 400, "policy.reject_score"},
		{"bad route rule", "POST", "/api/v1/domains", map[string]any{"name": "r.example", "customer_id": f.custA.ID, "route": "h:25",
			"routes": []map[string]any{{"recipients": []string{"a"}, "route": "h:25"}, {"recipients": []string{"a"}, "route": "nope"}}}, 400, "routes[1].route"},
		{"route rule claims a pattern twice", "PATCH", fmt.Sprintf("/api/v1/domains/%d", f.domA.ID), map[string]any{
			"routes": []map[string]any{{"recipients": []string{"a"}, "route": "h:25"}, {"recipients": []string{"A"}, "route": "i:25"}}}, 400, "routes[1].recipients[0]"},
		{"unknown route rule field", "PATCH", fmt.Sprintf("/api/v1/domains/%d", f.domA.ID), `{"routes":[{"recipients":["a"],"route":"h:25","via":"x"}]}`, 400, ""},
		{"bad ip list", "PATCH", fmt.Sprintf("/api/v1/domains/%d", f.domA.ID), map[string]any{"policy": map[string]any{"ip_block": []string{"10.0.0.0/33"}}}, 400, "policy.ip_block[0]"},
		// The list matches by the prefix's network bits: 10.1.2.3/8 let
		// all of 10/8 skip the filters where one address may have been
		// meant, as the config's network keys refuse; a zoned address
		// matched nothing.
		{"an IP list prefix with host bits set", "PATCH", fmt.Sprintf("/api/v1/domains/%d", f.domA.ID), map[string]any{"policy": map[string]any{"ip_allow": []string{"192.0.2.1", "10.1.2.3/8"}}}, 400, "policy.ip_allow[1]"},
		{"a zoned address in an IP list", "PATCH", fmt.Sprintf("/api/v1/domains/%d", f.domA.ID), map[string]any{"policy": map[string]any{"ip_block": []string{"fe80::1%eth0"}}}, 400, "policy.ip_block[0]"},
		// "*@spammer.example" (SpamAssassin's blacklist_from syntax) was
		// stored as the address with local part "*": it blocked nothing.
		{"a wildcard local part in a sender list", "PATCH", fmt.Sprintf("/api/v1/domains/%d", f.domA.ID), map[string]any{"policy": map[string]any{"sender_block": []string{"*@spammer.example"}}}, 400, "policy.sender_block[0]"},
		{"a glob in a sender list's local part", "PATCH", fmt.Sprintf("/api/v1/domains/%d", f.domA.ID), map[string]any{"policy": map[string]any{"sender_allow": []string{"ok@partner.example", "bill*@partner.example"}}}, 400, "policy.sender_allow[1]"},
		{"duplicate domain", "POST", "/api/v1/domains", dom("a.example"), 409, ""},
		{"duplicate domain other case", "POST", "/api/v1/domains", dom("A.Example."), 409, ""},
		{"duplicate via rename", "POST", "/api/v1/domains", dom("b.example"), 201, ""},
		{"rename onto existing", "PATCH", fmt.Sprintf("/api/v1/domains/%d", f.domA.ID), map[string]any{"name": "b.example"}, 409, ""},
		{"duplicate recipient", "POST", fmt.Sprintf("/api/v1/domains/%d/recipients", f.domA.ID), map[string]any{"local": "Alice"}, 409, ""},
		{"recipient of another domain", "POST", fmt.Sprintf("/api/v1/domains/%d/recipients", f.domA.ID), map[string]any{"local": "x@b.example"}, 400, "local"},
		{"import bad line", "POST", fmt.Sprintf("/api/v1/domains/%d/recipients/import", f.domA.ID), map[string]any{"recipients": []string{"ok", "bad local"}}, 400, "recipients[1]"},
		{"import over the limit", "POST", fmt.Sprintf("/api/v1/domains/%d/recipients/import", f.domA.ID), `{"recipients":["a"` + strings.Repeat(`,"a"`, admin.MaxImport) + `]}`, 400, "recipients"},
		{"import not an array", "POST", fmt.Sprintf("/api/v1/domains/%d/recipients/import", f.domA.ID), `{"recipients":"a"}`, 400, "recipients"},
		{"import entry not a string", "POST", fmt.Sprintf("/api/v1/domains/%d/recipients/import", f.domA.ID), `{"recipients":["a",7]}`, 400, "recipients[1]"},
		{"oversized body", "POST", "/api/v1/resellers", `{"name":"` + strings.Repeat("x", maxBody) + `"}`, 413, ""},
		{"oversized import", "POST", fmt.Sprintf("/api/v1/domains/%d/recipients/import", f.domA.ID), `{"recipients":["` + strings.Repeat("x", maxImportBody) + `"]}`, 413, ""},
		{"bad limit", "GET", "/api/v1/domains?limit=-1", nil, 400, "limit"},
		{"NUL in a name filter", "GET", "/api/v1/domains?name=a%00", nil, 400, "name"},
		{"invalid UTF-8 in a name filter", "GET", "/api/v1/customers?name=%C3", nil, 400, "name"},
		{"name filter too long", "GET", "/api/v1/resellers?name=" + strings.Repeat("x", 201), nil, 400, "name"},
		{"customer search too long, a rune across the limit", "GET", "/api/v1/customers?name=" + strings.Repeat("x", 199) + "%C3%A9", nil, 400, "name"},
		{"quarantine search too long", "GET", "/api/v1/quarantine?q=" + strings.Repeat("x", 201), nil, 400, "q"},
		{"NUL in the quarantine search", "GET", "/api/v1/quarantine?q=%00", nil, 400, "q"},
		{"quarantine domain filter not a number", "GET", "/api/v1/quarantine?domain_id=7x", nil, 400, "domain_id"},
		{"quarantine state unknown", "GET", "/api/v1/quarantine?state=gone", nil, 400, "state"},
		{"quarantine page too long", "GET", "/api/v1/quarantine?limit=10000", nil, 400, "limit"},
		{"invalid UTF-8 in the quarantine search", "GET", "/api/v1/quarantine?q=%FF", nil, 400, "q"},
		{"invalid UTF-8 in a message search", "GET", "/api/v1/messages?sender=%FF%40x.example", nil, 400, "sender"},
		{"non-numeric id", "GET", "/api/v1/domains/abc", nil, 404, ""},
		// The deferral view used to ignore the search's other filters and
		// answer every deferral.
		{"a search filter on the deferral view", "GET", "/api/v1/deferrals?recipient=bob%40a.example", nil, 400, "recipient"},
		{"a time range end on the deferral view", "GET", "/api/v1/deferrals?since=2h&until=1h", nil, 400, "until"},
		{"the deferral view's own filters", "GET", fmt.Sprintf("/api/v1/deferrals?since=1h&domain_id=%d", f.domA.ID), nil, 200, ""},
		// A parameter a route does not document, or a pair the query
		// parser skips, was dropped: the answer widened to everything.
		{"the quarantine's state misnamed", "GET", "/api/v1/quarantine?status=held", nil, 400, "status"},
		{"a message search by domain name", "GET", "/api/v1/messages?domain=a.example", nil, 400, "domain"},
		{"a name filter on the audit log", "GET", "/api/v1/audit?name=bakery", nil, 400, "name"},
		{"a customer filter on the resellers", "GET", fmt.Sprintf("/api/v1/resellers?customer_id=%d", f.custA.ID), nil, 400, "customer_id"},
		{"a parameter of one object", "GET", fmt.Sprintf("/api/v1/domains/%d?fields=all", f.domA.ID), nil, 400, "fields"},
		{"a filter with a bad escape", "GET", "/api/v1/quarantine?domain_id=%35%", nil, 400, ""},
		{"filters split by a semicolon", "GET", fmt.Sprintf("/api/v1/domains?name=x;customer_id=%d", f.custA.ID), nil, 400, ""},
		{"a filter given twice", "GET", fmt.Sprintf("/api/v1/quarantine?domain_id=%d&domain_id=%d", f.domA.ID, f.domA.ID+1), nil, 400, "domain_id"},
		{"the audit log of one reseller", "GET", fmt.Sprintf("/api/v1/audit?reseller_id=%d", f.resA.ID), nil, 200, ""},
		{"the tokens of one reseller", "GET", fmt.Sprintf("/api/v1/tokens?reseller_id=%d&name=A", f.resA.ID), nil, 200, ""},
		// Names reach the operator's pages, the CLI's tables, logs and the
		// audit trail: none may reverse what follows it or break its line.
		{"bidi override in a name", "POST", "/api/v1/customers", fmt.Sprintf(`{"name":"invoice\u202egpj.exe","reseller_id":%d}`, f.resA.ID), 400, "name"},
		{"bidi isolate in a name", "POST", "/api/v1/tokens", `{"name":"a\u2067b"}`, 400, "name"},
		{"line separator in a name", "POST", "/api/v1/resellers", `{"name":"a\u2028level=ERROR"}`, 400, "name"},
		// The decoder turns bytes that are not UTF-8 into U+FFFD: such a
		// name was stored as something the client never sent.
		{"invalid UTF-8 in a name", "POST", "/api/v1/customers", fmt.Sprintf("{\"name\":\"Acme\xff\",\"reseller_id\":%d}", f.resA.ID), 400, ""},
		{"a truncated UTF-8 sequence in a name", "POST", "/api/v1/resellers", "{\"name\":\"Caf\xc3\"}", 400, ""},
		{"an overlong UTF-8 slash in a list entry", "PATCH", fmt.Sprintf("/api/v1/domains/%d", f.domA.ID), "{\"policy\":{\"sender_block\":[\"a\xc0\xafb@x.example\"]}}", 400, ""},
		// So does an escape of half a surrogate pair.
		{"a lone high surrogate in a name", "POST", "/api/v1/resellers", `{"name":"Acme\ud800"}`, 400, ""},
		{"a lone low surrogate in a name", "POST", "/api/v1/resellers", `{"name":"\udc00Acme"}`, 400, ""},
		{"two high surrogates in a name", "POST", "/api/v1/resellers", `{"name":"\ud800\ud800"}`, 400, ""},
		{"a high surrogate before another escape", "POST", "/api/v1/resellers", `{"name":"\ud800\/"}`, 400, ""},
		{"a surrogate pair in a name", "POST", "/api/v1/resellers", `{"name":"Acme \ud83d\ude00 \u00e9\\u"}`, 201, ""},
		// A key given twice, in any case or spelling (Go's decoder folds
		// case and takes the last), means what a proxy or log reading the
		// first does not: refused.
		{"duplicate key", "POST", "/api/v1/customers", fmt.Sprintf(`{"name":"x","reseller_id":%d,"name":"y"}`, f.resA.ID), 400, ""},
		{"key again in another case", "POST", "/api/v1/customers", fmt.Sprintf(`{"name":"x","reseller_id":%d,"NAME":"y"}`, f.resA.ID), 400, ""},
		{"key again escaped", "POST", "/api/v1/customers", fmt.Sprintf(`{"name":"x","reseller_id":%d,"n\u0061me":"y"}`, f.resA.ID), 400, ""},
		{"key again through the Kelvin sign", "PATCH", fmt.Sprintf("/api/v1/domains/%d", f.domA.ID), `{"policy":{"sender_block":["a@b.example"],"sender_bloc\u212A":[]}}`, 400, ""},
		{"nested key again", "PATCH", fmt.Sprintf("/api/v1/domains/%d", f.domA.ID), `{"policy":{"tag_score":5,"Tag_Score":50}}`, 400, ""},
		{"import list again", "POST", fmt.Sprintf("/api/v1/domains/%d/recipients/import", f.domA.ID), `{"recipients":["a"],"recipients":["b"],"replace":true}`, 400, ""},
		// A null left the field as it was: 200, and nothing changed. Inside
		// a policy, null inherits.
		{"a customer set to null", "PATCH", fmt.Sprintf("/api/v1/domains/%d", f.domA.ID), `{"customer_id":null}`, 400, "customer_id"},
		{"the routes set to null", "PATCH", fmt.Sprintf("/api/v1/domains/%d", f.domA.ID), `{"routes":null,"tls":"none"}`, 400, "routes"},
		{"a policy set to null", "PATCH", fmt.Sprintf("/api/v1/customers/%d", f.custA.ID), `{"policy":null}`, 400, "policy"},
		{"a null recipient list replacing all", "POST", fmt.Sprintf("/api/v1/domains/%d/recipients/import", f.domA.ID), `{"recipients":null,"replace":true}`, 400, "recipients"},
		{"a policy field set to null", "PATCH", fmt.Sprintf("/api/v1/domains/%d", f.domA.ID), `{"policy":{"tag_score":null}}`, 200, ""},
		{"same key in sibling objects", "PATCH", fmt.Sprintf("/api/v1/domains/%d", f.domA.ID),
			`{"routes":[{"recipients":["a"],"route":"h:25"},{"recipients":["b"],"route":"i:25"}],"policy":{"sender_allow":["x@y.example"]}}`, 200, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			code, out := f.do("operator", tc.method, tc.path, tc.body)
			if code != tc.wantCode {
				t.Fatalf("status %d, want %d: %s", code, tc.wantCode, out)
			}
			if code < 400 {
				return
			}
			var e apiError
			if err := json.Unmarshal(out, &e); err != nil || e.Error == "" {
				t.Fatalf("error body %q is not {\"error\": ...}: %v", out, err)
			}
			if tc.wantField != "" && e.Fields[tc.wantField] == "" {
				t.Errorf("fields %v lack %q", e.Fields, tc.wantField)
			}
			if strings.Contains(string(out), "Go struct") || strings.Contains(string(out), "Go value") || strings.Contains(string(out), "Body.") {
				t.Errorf("the error names our Go types: %s", out)
			}
		})
	}
}

// TestAPISubjectTagIsText: a subject tag goes into every tagged subject
// of the domains under the policy, and one with U+202E ran them
// backwards in the recipients' mail readers; it was refused only control
// characters. Every level's policy refuses what names refuse, naming the
// field, and keeps taking a tag in any script.
func TestAPISubjectTagIsText(t *testing.T) {
	f := newAPIFixture(t)
	paths := []struct{ method, path string }{
		{"PATCH", fmt.Sprintf("/api/v1/resellers/%d", f.resA.ID)},
		{"PATCH", fmt.Sprintf("/api/v1/customers/%d", f.custA.ID)},
		{"PATCH", fmt.Sprintf("/api/v1/domains/%d", f.domA.ID)},
	}
	for _, p := range paths {
		// The tag goes into the Subject as written, so an encoded word
		// of it is what mail readers show: "=?utf-8?b?4oCu?=" is U+202E,
		// inside a word too for some readers, and in any charset.
		for _, tag := range []string{"[SPAM\u202e]", "[SPAM]\u2028", "\u2066[SPAM]", "[SPAM]\u0085",
			"=?utf-8?b?4oCu?=[SPAM]", "[SPAM=?UTF-8?Q?=E2=80=AE?=]", "=?gb18030?b?gTaqOA==?="} {
			code, out := f.do("operator", p.method, p.path, map[string]any{"policy": map[string]any{"subject_tag": tag}})
			var e apiError
			json.Unmarshal(out, &e)
			if code != 400 || e.Fields["policy.subject_tag"] == "" {
				t.Errorf("%s %s with subject_tag %q: %d %s; want 400 naming policy.subject_tag", p.method, p.path, tag, code, out)
			}
		}
		code, out := f.do("operator", p.method, p.path, map[string]any{"policy": map[string]any{"subject_tag": "[СПАМ]"}})
		if code != 200 || !strings.Contains(string(out), "[СПАМ]") {
			t.Errorf("%s %s with subject_tag [СПАМ]: %d %s; want 200", p.method, p.path, code, out)
		}
	}
}

// TestAPISQLMetacharacters puts SQL metacharacters in every string field:
// free text is stored verbatim, structured fields are refused, and the
// tables survive.
func TestAPISQLMetacharacters(t *testing.T) {
	f := newAPIFixture(t)
	const evil = `x'; DROP TABLE domains; -- "\%_`
	roundTrip := []struct{ method, path, field string }{
		{"POST", "/api/v1/resellers", "name"},
		{"POST", "/api/v1/customers", "name"},
		{"POST", "/api/v1/tokens", "name"},
	}
	for _, tc := range roundTrip {
		body := map[string]any{tc.field: evil}
		if tc.path == "/api/v1/customers" {
			body["reseller_id"] = f.resA.ID
		}
		code, out := f.do("operator", tc.method, tc.path, body)
		var got map[string]any
		json.Unmarshal(out, &got)
		if code != 201 || got[tc.field] != evil {
			t.Errorf("%s %s: %d %s; want 201 and the text verbatim", tc.method, tc.path, code, out)
		}
	}
	code, out := f.do("operator", "PATCH", fmt.Sprintf("/api/v1/domains/%d", f.domA.ID), map[string]any{"policy": map[string]any{"subject_tag": evil}})
	if code != 200 || !strings.Contains(string(out), `DROP TABLE`) {
		t.Errorf("subject_tag: %d %s", code, out)
	}
	refused := []struct {
		path  string
		body  map[string]any
		field string
	}{
		{"/api/v1/domains", map[string]any{"name": evil, "customer_id": f.custA.ID, "route": "h:25"}, "name"},
		{"/api/v1/domains", map[string]any{"name": "e.example", "customer_id": f.custA.ID, "route": evil}, "route"},
		{"/api/v1/domains", map[string]any{"name": "e.example", "customer_id": f.custA.ID, "route": "h:25", "tls": evil}, "tls"},
		{"/api/v1/domains", map[string]any{"name": "e.example", "customer_id": f.custA.ID, "route": "h:25", "policy": map[string]any{"virus_action": evil}}, "policy.virus_action"},
		{"/api/v1/domains", map[string]any{"name": "e.example", "customer_id": f.custA.ID, "route": "h:25", "policy": map[string]any{"sender_allow": []string{evil}}}, "policy.sender_allow[0]"},
		{"/api/v1/domains", map[string]any{"name": "e.example", "customer_id": f.custA.ID, "route": "h:25", "policy": map[string]any{"sender_block": []string{evil}}}, "policy.sender_block[0]"},
		{"/api/v1/domains", map[string]any{"name": "e.example", "customer_id": f.custA.ID, "route": "h:25", "policy": map[string]any{"ip_allow": []string{evil}}}, "policy.ip_allow[0]"},
		{"/api/v1/domains", map[string]any{"name": "e.example", "customer_id": f.custA.ID, "route": "h:25", "policy": map[string]any{"ip_block": []string{evil}}}, "policy.ip_block[0]"},
		{fmt.Sprintf("/api/v1/domains/%d/recipients", f.domA.ID), map[string]any{"local": evil}, "local"},
	}
	for _, tc := range refused {
		code, out := f.do("operator", "POST", tc.path, tc.body)
		var e apiError
		json.Unmarshal(out, &e)
		if code != 400 || e.Fields[tc.field] == "" {
			t.Errorf("POST %s with %s = %s: %d %s; want 400 naming it", tc.path, tc.field, evil, code, out)
		}
	}
	// Filters and path segments too. The filter is escaped: as it was
	// written raw, its ';' and "%_" made a query that does not parse,
	// whose name pair never reached the store (and is refused now).
	for _, path := range []string{
		"/api/v1/domains?name=" + url.QueryEscape(evil),
		"/api/v1/resellers?name=%25",
		fmt.Sprintf("/api/v1/domains/%d/recipients/x'%%3B--", f.domA.ID),
	} {
		code, out := f.do("operator", "GET", path, nil)
		if code != 200 && code != 404 {
			t.Errorf("GET %s: %d %s", path, code, out)
		}
	}
	_, out = f.do("operator", "GET", "/api/v1/resellers?name=%25", nil)
	if strings.Count(string(out), `"id"`) != 1 {
		t.Errorf("name=%% should match only the reseller whose name has a %%: %s", out)
	}
	if code, out := f.do("operator", "GET", fmt.Sprintf("/api/v1/domains/%d", f.domA.ID), nil); code != 200 {
		t.Fatalf("domains table damaged: %d %s", code, out)
	}
}

func TestOperatorOnly(t *testing.T) {
	f := newAPIFixture(t)
	guarded := OperatorOnly(f.svc, clientip.New(nil), nil, slog.New(slog.NewTextHandler(io.Discard, nil)))(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusAccepted)
	}))
	for who, want := range map[string]int{"operator": 202, "own": 403, "other": 403, "none": 401, "bad": 401} {
		req := httptest.NewRequest("POST", "/api/v1/map/regenerate", nil)
		if tok := f.tokens[who]; tok != "" {
			req.Header.Set("Authorization", "Bearer "+tok)
		}
		rec := httptest.NewRecorder()
		guarded.ServeHTTP(rec, req)
		if rec.Code != want {
			t.Errorf("%s: status %d, want %d", who, rec.Code, want)
		}
	}
}

// TestMapRegenerateTakesOnlyWhatItDocuments: the operator's map route
// refuses a query parameter or a body it does not read (400, no map
// drawn), as the admin API's routes do; it answered 200 and ignored them.
func TestMapRegenerateTakesOnlyWhatItDocuments(t *testing.T) {
	f := newAPIFixture(t)
	for _, tc := range []struct {
		name, query, body string
		want              int
	}{
		{"plain", "", "", http.StatusOK},
		{"empty object", "", "{}", http.StatusOK},
		{"unknown parameter", "?scope=global", "", http.StatusBadRequest},
		{"query that does not parse", "?%zz", "", http.StatusBadRequest},
		{"body with a key", "", `{"scope": "global"}`, http.StatusBadRequest},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := &fixedMap{m: &spammap.Map{}}
			h := MapHandlers(src, MapOptions{Operator: OperatorOnly(f.svc, clientip.New(nil), nil, slog.New(slog.DiscardHandler))})
			req := httptest.NewRequest("POST", "/api/v1/map/regenerate"+tc.query, strings.NewReader(tc.body))
			req.Header.Set("Authorization", "Bearer "+f.tokens["operator"])
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			drawn := int32(0)
			if tc.want == http.StatusOK {
				drawn = 1
			}
			if rec.Code != tc.want || src.regen.Load() != drawn {
				t.Errorf("status %d, %d maps drawn (%s); want %d, %d", rec.Code, src.regen.Load(), rec.Body, tc.want, drawn)
			}
		})
	}
}

// TestAPIAuthSchemeIgnoresCase: the Authorization scheme is
// case-insensitive (RFC 9110 §11.1); the token is not.
func TestAPIAuthSchemeIgnoresCase(t *testing.T) {
	f := newAPIFixture(t)
	tok := f.tokens["own"]
	for _, tc := range []struct {
		header string
		want   int
	}{
		{"Bearer " + tok, 200},
		{"bearer " + tok, 200},
		{"BEARER " + tok, 200},
		{"Bearer  " + tok, 200},
		{"Bearer " + strings.ToUpper(tok), 401},
		{"Basic " + tok, 401},
		{"Bearer" + tok, 401},
		{tok, 401},
	} {
		req, err := http.NewRequest("GET", f.srv.URL+"/api/v1/domains", nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", tc.header)
		resp, err := f.srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tc.want {
			t.Errorf("Authorization: %.12q...: %d, want %d", tc.header, resp.StatusCode, tc.want)
		}
		if resp.Header.Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("Authorization: %.12q...: answered without nosniff", tc.header)
		}
	}
}

// TestMessageSearchByAnyDomainSpelling searches the message log for a
// recipient of an IDN domain. A recipient at a non-ASCII spelling of the
// domain is logged at the provisioned A-label (smtpd), so a search typed
// as the customer reads the name found nothing: "no such message" for
// mail that was delivered.
func TestMessageSearchByAnyDomainSpelling(t *testing.T) {
	f := newAPIFixture(t)
	ctx := context.Background()
	if err := f.st.InsertTracking(ctx, []tracking.Record{{Time: time.Now(), QueueID: "QIDN", Sender: "x@sender.example",
		Recipient: "anna@xn--bcher-kva.example", DomainID: f.domA.ID, CustomerID: f.custA.ID, Status: tracking.StatusDelivered, ReplyCode: 250}}); err != nil {
		t.Fatal(err)
	}
	for _, rcpt := range []string{"anna@xn--bcher-kva.example", "anna@bücher.example", "anna@BÜCHER.example", "anna@bücher\uff0eexample", "anna@xn--bcher-kva.example."} {
		code, out := f.do("own", "GET", "/api/v1/messages?recipient="+url.QueryEscape(rcpt), nil)
		if code != 200 || !strings.Contains(string(out), `"queue_id":"QIDN"`) {
			t.Errorf("recipient=%s: %d %s, want the message", rcpt, code, out)
		}
	}
	// A sender is logged as it was written: the same one at either
	// spelling of its domain is found by both.
	if err := f.st.InsertTracking(ctx, []tracking.Record{
		{Time: time.Now(), QueueID: "QU", Sender: "jan@m\u00fcller.example", Recipient: "a@a.example", DomainID: f.domA.ID, CustomerID: f.custA.ID, Status: tracking.StatusDelivered, ReplyCode: 250},
		{Time: time.Now(), QueueID: "QA", Sender: "jan@xn--mller-kva.example", Recipient: "a@a.example", DomainID: f.domA.ID, CustomerID: f.custA.ID, Status: tracking.StatusDelivered, ReplyCode: 250},
	}); err != nil {
		t.Fatal(err)
	}
	for _, sender := range []string{"jan@m\u00fcller.example", "jan@xn--mller-kva.example", "JAN@M\u00dcLLER.example"} {
		code, out := f.do("own", "GET", "/api/v1/messages?sender="+url.QueryEscape(sender), nil)
		if code != 200 || !strings.Contains(string(out), `"queue_id":"QU"`) || !strings.Contains(string(out), `"queue_id":"QA"`) {
			t.Errorf("sender=%s: %d %s, want both messages", sender, code, out)
		}
	}
}

// TestMessageSaysWhyItsVerdictDecided: a virus delivered tagged (the
// domain's virus_action: tag) and spam delivered tagged differ only in
// the verdict's reason. The panel showed it; the API, and so the CLI,
// left it out, and read both as "delivered, action tag".
func TestMessageSaysWhyItsVerdictDecided(t *testing.T) {
	f := newAPIFixture(t)
	ctx := context.Background()
	if err := f.st.InsertTracking(ctx, []tracking.Record{{Time: time.Now(), QueueID: "QVIRUS", Sender: "x@sender.example",
		Recipient: "alice@a.example", DomainID: f.domA.ID, CustomerID: f.custA.ID, Action: "tag", Reason: verdict.ReasonVirus,
		Status: tracking.StatusDelivered, ReplyCode: 250}}); err != nil {
		t.Fatal(err)
	}
	code, out := f.do("own", "GET", "/api/v1/messages?queue_id=QVIRUS", nil)
	var page struct {
		Items []struct {
			ID     int64  `json:"id"`
			Reason string `json:"reason"`
		} `json:"items"`
	}
	if err := json.Unmarshal(out, &page); code != 200 || err != nil || len(page.Items) != 1 || page.Items[0].Reason != "virus" {
		t.Fatalf("search: %d %s (%v), want one message with reason virus", code, out, err)
	}
	code, out = f.do("own", "GET", fmt.Sprintf("/api/v1/messages/%d", page.Items[0].ID), nil)
	if code != 200 || !strings.Contains(string(out), `"reason":"virus"`) {
		t.Fatalf("get: %d %s, want reason virus", code, out)
	}
	// A clean message has no reason, and says none.
	if code, out := f.do("own", "GET", "/api/v1/messages?queue_id=QA", nil); code != 200 || strings.Contains(string(out), `"reason"`) {
		t.Fatalf("clean message: %d %s", code, out)
	}
}

// TestRecipientAtAnySpellingOfItsDomain adds recipients written with their
// domain as the customer spells it. The SMTP session takes mail for
// anna@bücher.example at the domain stored as xn--bcher-kva.example, but
// the API refused to list her there ("not an address at"), nor at
// a.example with a trailing dot, which the domain's own name may have.
func TestRecipientAtAnySpellingOfItsDomain(t *testing.T) {
	f := newAPIFixture(t)
	idn, err := f.svc.CreateDomain(context.Background(), f.op, tenant.DomainRecord{CustomerID: f.custA.ID, Name: "bücher.example", Route: "127.0.0.1:25"})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		dom   int64
		local string
		want  string
	}{
		{idn.ID, "anna@bücher.example", "anna"},
		{idn.ID, "Ben@BÜCHER.Example", "ben"},
		{idn.ID, "cleo@XN--BCHER-KVA.example", "cleo"},
		{f.domA.ID, "dora@a.example.", "dora"},
		{f.domA.ID, "emil@a\uff0eexample", "emil"},
	} {
		code, out := f.do("own", "POST", fmt.Sprintf("/api/v1/domains/%d/recipients", tc.dom), map[string]any{"local": tc.local})
		if code != 201 || !strings.Contains(string(out), `"local":"`+tc.want+`"`) {
			t.Errorf("add %s: %d %s, want 201 as %s", tc.local, code, out, tc.want)
		}
	}
	if code, out := f.do("own", "POST", fmt.Sprintf("/api/v1/domains/%d/recipients", idn.ID), map[string]any{"local": "anna@buecher.example"}); code != 400 {
		t.Errorf("an address at another domain: %d %s, want 400", code, out)
	}
}

// TestDomainListFilterByUnicodeName filters the domain list by a name as
// the customer spells it: the list searches the stored A-label names, so
// "bücher" found nothing beside xn--bcher-kva.example.
func TestDomainListFilterByUnicodeName(t *testing.T) {
	f := newAPIFixture(t)
	if _, err := f.svc.CreateDomain(context.Background(), f.op, tenant.DomainRecord{CustomerID: f.custA.ID, Name: "bücher.example", Route: "127.0.0.1:25"}); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"bücher", "BÜCHER.example", "xn--bcher-kva"} {
		code, out := f.do("own", "GET", "/api/v1/domains?name="+url.QueryEscape(name), nil)
		if code != 200 || !strings.Contains(string(out), `"name":"xn--bcher-kva.example"`) || strings.Contains(string(out), `"name":"a.example"`) {
			t.Errorf("name=%s: %d %s, want xn--bcher-kva.example alone", name, code, out)
		}
	}
}

// TestAPIBadTokensLimitedPerClient: every bearer token shown to the API is
// looked up in the store, over the connections the mail path shares, and
// one client address had thousands a second looked up that matched
// nothing (6,500 a second measured over loopback, keep-alive). Past a
// burst of failures an address is answered 429 without a lookup, as the
// panel's login limits an address's token guesses; another address is
// served.
func TestAPIBadTokensLimitedPerClient(t *testing.T) {
	f := newAPIFixture(t)
	get := func(local, who string) *http.Response {
		t.Helper()
		d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(local)}}
		c := &http.Client{Transport: &http.Transport{DialContext: d.DialContext}}
		req, err := http.NewRequest("GET", f.srv.URL+"/api/v1/domains", nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer "+f.tokens[who])
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp
	}
	var last *http.Response
	for range 200 {
		last = get("127.0.0.1", "bad")
	}
	if last.StatusCode != http.StatusTooManyRequests || last.Header.Get("Retry-After") == "" {
		t.Errorf("200th bad token from one address: %d (Retry-After %q), want 429 with Retry-After", last.StatusCode, last.Header.Get("Retry-After"))
	}
	if resp := get("127.0.0.2", "own"); resp.StatusCode != http.StatusOK {
		t.Errorf("a valid token from another address: %d", resp.StatusCode)
	}
}
