package panel

import (
	"bytes"
	"context"
	"errors"
	"image"
	"image/png"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mxgrid/mxgrid/admin"
	"github.com/mxgrid/mxgrid/quarantine"
	"github.com/mxgrid/mxgrid/spammap"
	"github.com/mxgrid/mxgrid/store"
	"github.com/mxgrid/mxgrid/tenant"
)

type fixture struct {
	st  *store.Store
	svc *admin.Service
	p   *Panel
	op  admin.Principal
	// dir is the node's data_dir (its session key); so the service's
	// options: restart builds the node again from them.
	dir string
	so  admin.ServiceOptions
}

// testOperatorToken is the fixture's operator token file token.
const testOperatorToken = "test-operator-token-of-32-characters"

// newFixture builds the panel over a fresh SQLite store; opts adjust the
// service (a quarantine, for instance).
func newFixture(t *testing.T, opts ...func(*store.Store, *admin.ServiceOptions)) *fixture {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	st, err := store.Open(store.DefaultConfig(), dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	for _, m := range []func(context.Context) error{st.MigrateEvents, st.MigrateMaps, st.MigrateDomainStats, st.MigratePanelSessions, st.MigrateQuarantine} {
		if err := m(ctx); err != nil {
			t.Fatal(err)
		}
	}
	so := admin.ServiceOptions{Panel: store.NewTenants(st), Activity: st, OperatorToken: testOperatorToken}
	for _, o := range opts {
		o(st, &so)
	}
	return startFixture(t, st, dir, so)
}

// startFixture builds the service and the panel over st and dir, as a node
// starting does.
func startFixture(t *testing.T, st *store.Store, dir string, so admin.ServiceOptions) *fixture {
	t.Helper()
	svc := admin.NewService(store.NewTenants(st), so)
	p, err := New(DefaultConfig(), Options{Service: svc, DataDir: dir, SMTPHostname: "mx.test", Sessions: st.PanelSessions()})
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{st: st, svc: svc, p: p, op: admin.Operator("test"), dir: dir, so: so}
}

// restart is f's node started again over the same store and data_dir
// with operator token file token tok.
func (f *fixture) restart(t *testing.T, tok string) *fixture {
	so := f.so
	so.OperatorToken = tok
	return startFixture(t, f.st, f.dir, so)
}

// get serves path to principal pr through the panel's routes.
// resellerWithDomain makes reseller r (by the operator) with one
// customer holding domain d, and returns the reseller's principal, the
// customer's id and the stored domain.
func (f *fixture) resellerWithDomain(t *testing.T, r tenant.Reseller, d tenant.DomainRecord) (admin.Principal, int64, tenant.DomainRecord) {
	t.Helper()
	ctx := context.Background()
	r, err := f.svc.CreateReseller(ctx, f.op, r)
	if err != nil {
		t.Fatal(err)
	}
	c, err := f.svc.CreateCustomer(ctx, f.op, tenant.Customer{ResellerID: r.ID, Name: "c"})
	if err != nil {
		t.Fatal(err)
	}
	d.CustomerID = c.ID
	if d, err = f.svc.CreateDomain(ctx, f.op, d); err != nil {
		t.Fatal(err)
	}
	return admin.Principal{ResellerID: r.ID, Actor: r.Name}, c.ID, d
}

func (f *fixture) get(t *testing.T, pr admin.Principal, path string) (int, string) {
	t.Helper()
	return f.serve(t, pr, httptest.NewRequest("GET", path, nil))
}

// post submits an empty form (with the session's CSRF token) to path as pr.
func (f *fixture) post(t *testing.T, pr admin.Principal, path string) (int, string) {
	t.Helper()
	req := httptest.NewRequest("POST", path, strings.NewReader("csrf=tok"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return f.serve(t, pr, req)
}

func (f *fixture) serve(t *testing.T, pr admin.Principal, req *http.Request) (int, string) {
	t.Helper()
	rec := f.record(t, pr, req)
	return rec.Code, rec.Body.String()
}

// record serves req to pr's session and returns the whole answer.
func (f *fixture) record(t *testing.T, pr admin.Principal, req *http.Request) *httptest.ResponseRecorder {
	t.Helper()
	mux := http.NewServeMux()
	f.p.Mount(mux.Handle)
	rec := httptest.NewRecorder()
	if err := f.p.createSession(rec, req, f.session(t, pr)); err != nil {
		t.Fatal(err)
	}
	for _, c := range rec.Result().Cookies() {
		req.AddCookie(c)
	}
	rec = httptest.NewRecorder()
	mux.ServeHTTP(rec, req)
	return rec
}

func pngBytes(t *testing.T) []byte {
	var b bytes.Buffer
	if err := png.Encode(&b, image.NewRGBA(image.Rect(0, 0, 4, 4))); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func TestLogoUpload(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	r, err := f.svc.CreateReseller(ctx, f.op, tenant.Reseller{Name: "R"})
	if err != nil {
		t.Fatal(err)
	}
	me := admin.Principal{ResellerID: r.ID, Actor: "r"}
	big := append(pngBytes(t), make([]byte, admin.MaxLogoBytes)...)
	tests := []struct {
		name    string
		data    []byte
		wantErr string
	}{
		{"png", pngBytes(t), ""},
		{"oversized", big, "at most 256 KB"},
		{"html", []byte("<html><script>alert(1)</script></html>"), "must be a PNG"},
		{"svg", []byte(`<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>`), "must be a PNG"},
		{"empty", nil, "required"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := f.svc.SetLogo(ctx, me, r.ID, tt.data)
			var fe tenant.FieldErrors
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("SetLogo: %v", err)
			case tt.wantErr != "" && (!errors.As(err, &fe) || !strings.Contains(fe["logo"], tt.wantErr)):
				t.Fatalf("SetLogo = %v, want a logo error containing %q", err, tt.wantErr)
			}
		})
	}
	// Another reseller cannot replace it.
	other, _ := f.svc.CreateReseller(ctx, f.op, tenant.Reseller{Name: "Other"})
	if err := f.svc.SetLogo(ctx, admin.Principal{ResellerID: other.ID}, r.ID, pngBytes(t)); !errors.Is(err, tenant.ErrNotFound) {
		t.Errorf("another reseller's SetLogo = %v, want not found", err)
	}
	rec := httptest.NewRecorder()
	mux := http.NewServeMux()
	f.p.Mount(mux.Handle)
	mux.ServeHTTP(rec, httptest.NewRequest("GET", "/panel/logo/"+r.Slug, nil))
	if rec.Code != 200 || rec.Header().Get("Content-Type") != "image/png" || !strings.Contains(rec.Header().Get("Content-Security-Policy"), "sandbox") {
		t.Errorf("logo served %d %q %q", rec.Code, rec.Header().Get("Content-Type"), rec.Header().Get("Content-Security-Policy"))
	}
}

func TestRecipientsCSV(t *testing.T) {
	tests := []struct {
		name     string
		csv      string
		wantGood []string
		wantBad  []int // line numbers
	}{
		{"header and good rows", "email\nalice@d.example\nbob\n", []string{"alice@d.example", "bob"}, nil},
		{"bad rows reported by line", "alice\nbad address\ncarol@other.example\n\"unterminated\ndave\n", []string{"alice"}, []int{2, 3, 4}},
		{"extra columns and blanks", "alice,Alice A\n\n  ,x\nbob@d.example,Bob\n", []string{"alice", "bob@d.example"}, nil},
		{"html in a row", "<script>alert(1)</script>\nok\n", []string{"ok"}, []int{1}},
		// Spreadsheets save "CSV UTF-8" with a byte order mark: the first
		// row was refused ("invalid character"), or its header imported
		// as a bad row.
		{"byte order mark before an address", "\ufeffalice\nbob\n", []string{"alice", "bob"}, nil},
		{"byte order mark before the header", "\ufeffEmail\nbob\n", []string{"bob"}, nil},
		{"byte order mark not at the start", "alice\n\ufeffbob\n", []string{"alice"}, []int{2}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			good, bad, err := parseRecipientsCSV(strings.NewReader(tt.csv), "d.example")
			if err != nil {
				t.Fatal(err)
			}
			if strings.Join(good, ",") != strings.Join(tt.wantGood, ",") {
				t.Errorf("good = %q, want %q", good, tt.wantGood)
			}
			var lines []int
			for _, b := range bad {
				lines = append(lines, b.Line)
			}
			if len(lines) != len(tt.wantBad) || (len(lines) > 0 && lines[0] != tt.wantBad[0]) {
				t.Errorf("bad lines = %v (%+v), want %v", lines, bad, tt.wantBad)
			}
		})
	}
}

// Every text field a reseller can fill is shown escaped on every page.
func TestTextFieldsEscaped(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	const evil = `<script>alert("x")</script><img src=x onerror=alert(1)>`
	r, err := f.svc.CreateReseller(ctx, f.op, tenant.Reseller{Name: evil, Slug: "evil"})
	if err != nil {
		t.Fatal(err)
	}
	me := admin.Principal{ResellerID: r.ID, Actor: evil}
	if _, err := f.svc.UpdateBrand(ctx, me, r.ID, evil, ""); err != nil {
		t.Fatal(err)
	}
	c, err := f.svc.CreateCustomer(ctx, me, tenant.Customer{Name: evil})
	if err != nil {
		t.Fatal(err)
	}
	tag := evil[:40]
	d, err := f.svc.CreateDomain(ctx, me, tenant.DomainRecord{CustomerID: c.ID, Name: "evil.example", Route: "127.0.0.1:25", Policy: tenant.Policy{SubjectTag: &tag}})
	if err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{"/panel/customers", "/panel/customers/" + itoa(c.ID), "/panel/domains/" + itoa(d.ID),
		"/panel/domains/" + itoa(d.ID) + "/stats", "/panel/brand", "/panel/map", "/panel/customers?q=" + "%3Cscript%3E",
		"/panel/users", "/panel/account"} {
		code, body := f.get(t, me, path)
		if code != 200 {
			t.Errorf("%s: status %d", path, code)
		}
		if strings.Contains(body, "<script>alert") || strings.Contains(body, "<img src=x") {
			t.Errorf("%s shows unescaped markup", path)
		}
	}
	code, body := f.get(t, f.op, "/panel/resellers")
	if code != 200 || strings.Contains(body, "<script>alert") || !strings.Contains(body, "&lt;script&gt;") {
		t.Errorf("resellers page: %d, escaped: %v", code, strings.Contains(body, "&lt;script&gt;"))
	}
}

// quarantineFixture is a panel with a quarantine to list (never to
// release) and a reseller R signed in.
func quarantineFixture(t *testing.T) (*fixture, admin.Principal) {
	t.Helper()
	f := newFixture(t, func(st *store.Store, o *admin.ServiceOptions) {
		o.Quarantine = quarantine.New(quarantine.DefaultConfig(), st, nil, nil)
	})
	r, err := f.svc.CreateReseller(context.Background(), f.op, tenant.Reseller{Name: "R", Slug: "r"})
	if err != nil {
		t.Fatal(err)
	}
	return f, admin.Principal{ResellerID: r.ID, Actor: "r"}
}

// A list page's search the service would refuse is a form error at the
// search box, never cut to fit: the customers page used to cut q at 200
// bytes, answering another search (and, mid-rune, refusing text the user
// never typed).
func TestSearchesAreRefusedNotCut(t *testing.T) {
	f, me := quarantineFixture(t)
	long := strings.Repeat("x", 199) + "é" // 201 bytes, a rune across the limit
	for _, page := range []struct {
		path string
		as   admin.Principal
	}{{"/panel/customers", me}, {"/panel/resellers", f.op}, {"/panel/quarantine", me}} {
		for _, tc := range []struct {
			name, q string
			code    int
			want    string // in the error at the box
		}{
			{"200 bytes", strings.Repeat("x", 200), 200, ""},
			{"201 bytes", strings.Repeat("x", 201), 400, "at most 200 bytes"},
			{"a rune across the limit", long, 400, "at most 200 bytes"},
			{"invalid UTF-8", "a\xff", 400, "must be UTF-8 text"},
		} {
			t.Run(page.path+"/"+tc.name, func(t *testing.T) {
				code, body := f.get(t, page.as, page.path+"?q="+url.QueryEscape(tc.q))
				if code != tc.code {
					t.Fatalf("status %d, want %d:\n%s", code, tc.code, body)
				}
				if tc.want != "" && !strings.Contains(body, `<p class="ferr">`+tc.want) {
					t.Errorf("no form error %q at the search box:\n%s", tc.want, body)
				}
			})
		}
	}
}

// The quarantine list's other filters are refused as the API refuses
// them (quarantine.ParseQuery), not dropped: a domain_id that did not
// parse listed the reseller's whole quarantine in its domain's place.
func TestQuarantineFiltersAreRefusedNotDropped(t *testing.T) {
	f, me := quarantineFixture(t)
	for _, tc := range []struct {
		query string
		code  int
		want  string // in the error
	}{
		{"domain_id=7&customer_id=3&state=released&after=9&limit=10", 200, ""},
		{"state=releasing", 200, ""},
		{"domain_id=7x", 400, "domain_id: must be a positive integer"},
		{"customer_id=-3", 400, "customer_id: must be a positive integer"},
		{"after=x", 400, "after: must be a positive integer"},
		{"state=gone", 400, "state: must be held, releasing, unconfirmed or released"},
		{"limit=51", 400, "limit: at most 50"},
		// Pairs the query parser cannot read were dropped, the rest
		// listed: every domain's held mail, or an unsearched list.
		{"domain_id=%35%", 400, "address is not valid"},
		{"q=invoice%zz", 400, "address is not valid"},
		{"domain_id=7;state=released", 400, "address is not valid"},
	} {
		t.Run(tc.query, func(t *testing.T) {
			code, body := f.get(t, me, "/panel/quarantine?"+tc.query)
			if code != tc.code {
				t.Fatalf("status %d, want %d:\n%s", code, tc.code, body)
			}
			if !strings.Contains(body, tc.want) {
				t.Errorf("no error %q:\n%s", tc.want, body)
			}
		})
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

type alwaysLeader struct{}

func (alwaysLeader) IsLeader() bool { return true }

// A reseller's map shows its customers' attack sources only.
func TestResellerMapShowsOnlyItsSources(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	now := time.Now().UTC()
	var evs []store.StoredEvent
	for _, rs := range []struct{ slug, domain, ip string }{{"alpha", "alpha.example", "81.2.69.7"}, {"beta", "beta.example", "89.160.20.9"}} {
		r, err := f.svc.CreateReseller(ctx, f.op, tenant.Reseller{Name: rs.slug, Slug: rs.slug, Accent: "#aa3300"})
		if err != nil {
			t.Fatal(err)
		}
		c, err := f.svc.CreateCustomer(ctx, f.op, tenant.Customer{Name: rs.slug + " customer", ResellerID: r.ID})
		if err != nil {
			t.Fatal(err)
		}
		d, err := f.svc.CreateDomain(ctx, f.op, tenant.DomainRecord{CustomerID: c.ID, Name: rs.domain, Route: "127.0.0.1:25"})
		if err != nil {
			t.Fatal(err)
		}
		for i := range 3 {
			evs = append(evs, store.StoredEvent{Time: now.Add(-time.Duration(i) * time.Minute), IP: netip.MustParseAddr(rs.ip),
				Domain: rs.domain, DomainID: d.ID, Verdict: "spam", Action: "reject", Country: "DE", Located: true, Lat: 50, Lon: 8})
		}
	}
	if err := f.st.InsertEvents(ctx, evs); err != nil {
		t.Fatal(err)
	}
	scoped := ScopedMaps(f.svc, f.storeScheduler(t))
	tests := []struct {
		kind, key    string
		want, absent string
		found        bool
	}{
		{"reseller", "alpha", "81.2.69.0/24", "89.160.20.0/24", true},
		{"reseller", "beta", "89.160.20.0/24", "81.2.69.0/24", true},
		{"reseller", "nobody", "", "", false},
		{"customer", strings.Repeat("0", 32), "", "", false},
	}
	for _, tt := range tests {
		m, found, err := scoped(ctx, tt.kind, tt.key)
		if err != nil || found != tt.found {
			t.Fatalf("%s=%s: found %v, err %v", tt.kind, tt.key, found, err)
		}
		if !found {
			continue
		}
		js := string(m.JSON)
		if m.Events != 3 || !strings.Contains(js, tt.want) || strings.Contains(js, tt.absent) || !strings.Contains(js, `"accent":"#aa3300"`) {
			t.Errorf("%s=%s: %d events, json %s", tt.kind, tt.key, m.Events, js)
		}
		// The public map names its scope as its URL does, without the
		// reseller's internal id.
		if want := `"scope":"` + tt.kind + ":" + tt.key + `"`; !strings.Contains(js, want) {
			t.Errorf("%s=%s: json %s, want %s", tt.kind, tt.key, js, want)
		}
		// The same period serves the held generation: same ETag.
		again, _, _ := scoped(ctx, tt.kind, tt.key)
		if again.ETag != m.ETag {
			t.Errorf("%s=%s regenerated within the period", tt.kind, tt.key)
		}
	}
}

// TestReusedSlugGetsItsOwnMap: a reseller deleted and another created with
// its slug in the same period is served a map of its own, not the old
// one's sources and brand (held and stored under the slug before).
func TestReusedSlugGetsItsOwnMap(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	pr, _, d := f.resellerWithDomain(t, tenant.Reseller{Name: "alpha", Slug: "alpha", Accent: "#aa3300"},
		tenant.DomainRecord{Name: "alpha.example", Route: "127.0.0.1:25"})
	if err := f.st.InsertEvents(ctx, []store.StoredEvent{{Time: time.Now().UTC(), IP: netip.MustParseAddr("192.0.2.7"),
		Domain: d.Name, DomainID: d.ID, Verdict: "spam", Action: "reject", Country: "DE", Located: true, Lat: 50, Lon: 8}}); err != nil {
		t.Fatal(err)
	}
	scoped := ScopedMaps(f.svc, f.storeScheduler(t))
	if m, found, err := scoped(ctx, "reseller", "alpha"); err != nil || !found || m.Events != 1 {
		t.Fatalf("the first holder's map: found %v, err %v, %+v", found, err, m)
	}
	if err := f.svc.DeleteDomain(ctx, f.op, d.ID); err != nil {
		t.Fatal(err)
	}
	if err := f.svc.DeleteCustomer(ctx, f.op, d.CustomerID); err != nil {
		t.Fatal(err)
	}
	if err := f.svc.DeleteReseller(ctx, f.op, pr.ResellerID); err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.CreateReseller(ctx, f.op, tenant.Reseller{Name: "new alpha", Slug: "alpha", Accent: "#0055aa"}); err != nil {
		t.Fatal(err)
	}
	m, found, err := scoped(ctx, "reseller", "alpha")
	if err != nil || !found {
		t.Fatalf("the new holder's map: found %v, err %v", found, err)
	}
	if js := string(m.JSON); m.Events != 0 || strings.Contains(js, "192.0.2.0/24") || !strings.Contains(js, `"accent":"#0055aa"`) {
		t.Errorf("the new holder of the slug is served %d events, json %s", m.Events, js)
	}
}

// TestScopedMapViewsReadLittle: /map?reseller= and /map?customer= are
// public; a view of a map already rendered this period reads the scope's
// row, not the reseller's domain records nor its logo, which only a
// render needs. Before, every view paged through all the reseller's
// domains and read the logo (up to 256 KiB) just to learn that it exists:
// ~540 KB allocated per view here, with one domain.
func TestScopedMapViewsReadLittle(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	pr, _, _ := f.resellerWithDomain(t, tenant.Reseller{Name: "alpha", Slug: "alpha"}, tenant.DomainRecord{Name: "alpha.example", Route: "127.0.0.1:25"})
	logo := pngBytes(t)
	logo = append(logo, make([]byte, admin.MaxLogoBytes-len(logo))...)
	if err := f.svc.SetLogo(ctx, pr, pr.ResellerID, logo); err != nil {
		t.Fatal(err)
	}
	customers, err := f.svc.ListCustomers(ctx, pr, admin.Filter{Limit: 1})
	if err != nil || len(customers) != 1 {
		t.Fatalf("customers %v, %v", customers, err)
	}
	scoped := ScopedMaps(f.svc, f.storeScheduler(t))
	for _, sc := range []struct{ kind, key string }{{"reseller", "alpha"}, {"customer", customers[0].MapKey}} {
		t.Run(sc.kind, func(t *testing.T) {
			m, found, err := scoped(ctx, sc.kind, sc.key)
			if err != nil || !found || !strings.Contains(string(m.Body), "/panel/logo/alpha") {
				t.Fatalf("first view: found %v, err %v; the render must show the logo", found, err)
			}
			const views = 20
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			for range views {
				if again, _, err := scoped(ctx, sc.kind, sc.key); err != nil || again.ETag != m.ETag {
					t.Fatalf("a later view: %v", err)
				}
			}
			runtime.ReadMemStats(&after)
			perView := (after.TotalAlloc - before.TotalAlloc) / views
			t.Logf("%d bytes allocated per view", perView)
			if perView > admin.MaxLogoBytes/4 {
				t.Errorf("%d bytes allocated per view of a rendered map, want under %d: the logo or the domains were read", perView, admin.MaxLogoBytes/4)
			}
		})
	}
}

// TestPanelPagesDoNotReadTheLogo: every page of a reseller's panel asks
// whether it has a logo (the header shows it); it must not read the logo
// (up to 256 KiB) to learn that. Before, each page read it: the brand
// page allocated ~616 KB with a logo of the maximal size, ~80 KB now.
func TestPanelPagesDoNotReadTheLogo(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	r, pr := f.resellerR(t)
	logo := pngBytes(t)
	logo = append(logo, make([]byte, admin.MaxLogoBytes-len(logo))...)
	if err := f.svc.SetLogo(ctx, pr, r.ID, logo); err != nil {
		t.Fatal(err)
	}
	const pages = 10
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for range pages {
		if code, body := f.get(t, pr, "/panel/brand"); code != http.StatusOK || !strings.Contains(body, "Current logo") {
			t.Fatalf("brand page: %d, shows the logo: %v", code, strings.Contains(body, "Current logo"))
		}
	}
	runtime.ReadMemStats(&after)
	perPage := (after.TotalAlloc - before.TotalAlloc) / pages
	t.Logf("%d bytes allocated per page", perPage)
	if perPage > admin.MaxLogoBytes {
		t.Errorf("%d bytes allocated per page, want under %d: the logo was read", perPage, admin.MaxLogoBytes)
	}
}

// FuzzParseRecipientsCSV: an uploaded file is a tenant's bytes. Whatever
// it holds, every recipient kept is one the domain accepts, the errors
// shown stay bounded and short, and nothing panics.
func FuzzParseRecipientsCSV(f *testing.F) {
	f.Add("email\nalice@d.example\nbob\n")
	f.Add("alice\nbad address\ncarol@other.example\n\"unterminated\ndave\n")
	f.Add("a,\"b\nc\",d\n\"\"\"x\"\"\"\n\r\n\xff\xfe\n")
	f.Fuzz(func(t *testing.T, in string) {
		good, bad, err := parseRecipientsCSV(strings.NewReader(in), "d.example")
		if err != nil {
			return
		}
		for _, g := range good {
			if _, err := tenant.NormalizeLocal(g, "d.example"); err != nil {
				t.Fatalf("kept %q, which the domain refuses: %v", g, err)
			}
		}
		if len(bad) > maxBadRows {
			t.Fatalf("%d bad rows reported, at most %d wanted", len(bad), maxBadRows)
		}
		for _, b := range bad {
			if len(b.Value) > 100+len("…") {
				t.Fatalf("bad row value of %d bytes shown", len(b.Value))
			}
		}
	})
}

// storeScheduler is a map scheduler over the fixture's store, always the
// leader.
func (f *fixture) storeScheduler(t *testing.T) *spammap.Scheduler {
	t.Helper()
	world, err := spammap.LoadWorld()
	if err != nil {
		t.Fatal(err)
	}
	sched, err := spammap.NewScheduler(spammap.DefaultConfig(), world, spammap.StoreEvents{Store: f.st}, f.st, alwaysLeader{},
		prometheus.NewRegistry(), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	return sched
}

// resellerR creates reseller R (slug r) and returns it and its principal.
func (f *fixture) resellerR(t *testing.T) (tenant.Reseller, admin.Principal) {
	t.Helper()
	r, err := f.svc.CreateReseller(context.Background(), f.op, tenant.Reseller{Name: "R", Slug: "r"})
	if err != nil {
		t.Fatal(err)
	}
	return r, admin.Principal{ResellerID: r.ID, Actor: "r"}
}

// TestSuspendFormSaysWhich: the suspend form says 1 (suspend) or 0
// (resume); anything else is refused and changes nothing. A form without
// the field resumed a suspended customer.
func TestSuspendFormSaysWhich(t *testing.T) {
	f := newFixture(t)
	pr, cid, _ := f.resellerWithDomain(t, tenant.Reseller{Name: "Alpha", Slug: "alpha"},
		tenant.DomainRecord{Name: "alpha.example", Route: "192.0.2.1:25"})
	c := f.client(t).as(f, pr)
	path := "/panel/customers/" + itoa(cid) + "/suspend"
	for _, tc := range []struct {
		form      []string
		code      int
		suspended bool
	}{
		{[]string{"suspend", "1"}, http.StatusSeeOther, true},
		{nil, http.StatusBadRequest, true},
		{[]string{"suspend", "yes"}, http.StatusBadRequest, true},
		{[]string{"suspend", "0"}, http.StatusSeeOther, false},
	} {
		rec := c.post(path, tc.form...)
		cust, err := f.svc.GetCustomer(context.Background(), f.op, cid)
		if rec.Code != tc.code || err != nil || cust.Suspended != tc.suspended {
			t.Errorf("suspend form %q: %d, suspended %v (%v); want %d, %v", tc.form, rec.Code, cust.Suspended, err, tc.code, tc.suspended)
		}
	}
}

// TestRepeatedFormFieldsAreRefused posts forms that give a field twice.
// The handlers read the first value; a proxy, a log or a WAF may read the
// last, so the form means two things: refused, as the API refuses a JSON
// key or a query parameter given twice, and nothing is changed.
func TestRepeatedFormFieldsAreRefused(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, func(st *store.Store, o *admin.ServiceOptions) {
		if err := st.MigrateTracking(ctx); err != nil {
			t.Fatal(err)
		}
		o.Messages = st
		o.Quarantine = quarantine.New(quarantine.DefaultConfig(), st, nil, nil)
	})
	pr, _, d := f.resellerWithDomain(t, tenant.Reseller{Name: "R"}, tenant.DomainRecord{Name: "rep.example", Route: "192.0.2.2:25"})
	if _, err := f.svc.AddRecipients(ctx, f.op, d.ID, []string{"alice", "bob"}, false); err != nil {
		t.Fatal(err)
	}
	dom := "/panel/domains/" + itoa(d.ID)
	c := f.client(t).as(f, pr)
	for _, tc := range []struct {
		name, path string
		form       url.Values
	}{
		{"recipient to remove", dom + "/recipients/rm", url.Values{"csrf": {"tok"}, "local": {"alice", "bob"}}},
		{"route", dom, url.Values{"csrf": {"tok"}, "name": {"rep.example"}, "route": {"192.0.2.3:25", "192.0.2.4:25"}, "tls": {"opportunistic"}}},
		{"CSRF token", dom + "/recipients", url.Values{"csrf": {"tok", "forged"}, "local": {"carol"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := c.do("POST", tc.path, tc.form)
			if rec.Code != http.StatusBadRequest || !strings.Contains(rec.Body.String(), "given twice") {
				t.Errorf("status %d, want 400 naming the field given twice:\n%s", rec.Code, rec.Body)
			}
		})
	}
	// A search form is a GET's query.
	for _, path := range []string{"/panel/messages?recipient=alice%40rep.example&recipient=bob%40rep.example", "/panel/quarantine?domain_id=" + itoa(d.ID) + "&domain_id=1"} {
		if rec := c.get(path); rec.Code != http.StatusBadRequest || !strings.Contains(rec.Body.String(), "given twice") {
			t.Errorf("GET %s: status %d, want 400 naming the parameter given twice:\n%s", path, rec.Code, rec.Body)
		}
	}
	login := f.client(t)
	m := csrfRE.FindStringSubmatch(login.get("/panel/login").Body.String())
	if m == nil {
		t.Fatal("login form without a CSRF token")
	}
	rec := login.do("POST", "/panel/login", url.Values{"csrf": {m[1]}, "email": {"a@rep.example", "b@rep.example"}, "password": {"x"}})
	if rec.Code != http.StatusBadRequest || !strings.Contains(rec.Body.String(), "given twice") {
		t.Errorf("login with the email twice: status %d, want 400 naming the field given twice:\n%s", rec.Code, rec.Body)
	}
	if r, err := f.svc.ListRecipients(ctx, f.op, d.ID, admin.Filter{Limit: admin.MaxPageSize}); err != nil || len(r) != 2 || r[0].Local != "alice" || r[1].Local != "bob" {
		t.Errorf("recipients after the forms: %+v %v, want alice and bob only", r, err)
	}
	if got, err := f.svc.GetDomain(ctx, f.op, d.ID); err != nil || got.Route != "192.0.2.2:25" {
		t.Errorf("domain after the forms: %+v %v", got, err)
	}
}

// TestFormsThatAreNotUTF8AreRefused: a form value that is not UTF-8 is
// refused (400) and nothing is saved, as an API body with such a string
// is. Before, a domain form's subject tag of "\xff\xfe[SPAM]" was saved as
// "\ufffd\ufffd[SPAM]", prefixed from then on to the subject of every
// tagged message of the domain, the bytes the reseller sent silently
// replaced.
func TestFormsThatAreNotUTF8AreRefused(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	pr, _, d := f.resellerWithDomain(t, tenant.Reseller{Name: "R"}, tenant.DomainRecord{Name: "utf.example", Route: "192.0.2.2:25"})
	c := f.client(t).as(f, pr)
	rec := c.do("POST", "/panel/domains/"+itoa(d.ID), url.Values{"csrf": {"tok"}, "name": {"utf.example"},
		"route": {"192.0.2.3:25"}, "tls": {"opportunistic"}, "subject_tag": {"\xff\xfe[SPAM]"}})
	if rec.Code != http.StatusBadRequest || !strings.Contains(rec.Body.String(), "UTF-8") {
		t.Errorf("a subject tag that is not UTF-8: status %d, want 400 saying so:\n%s", rec.Code, rec.Body)
	}
	if got, err := f.svc.GetDomain(ctx, f.op, d.ID); err != nil || got.Route != "192.0.2.2:25" || got.Policy.SubjectTag != nil {
		t.Errorf("domain after the form: route %s, subject tag %v, %v; want it unchanged", got.Route, got.Policy.SubjectTag, err)
	}
}

// The quarantine list's State box offers every state the list filters on
// and keeps the one asked for: it offered held and released only, so an
// item a release left unconfirmed (or releasing) could not be found from
// the panel, and a list of ?state=unconfirmed showed "held" in the box,
// its next search listing held mail.
func TestQuarantineStateBoxOffersEveryState(t *testing.T) {
	f, me := quarantineFixture(t)
	for _, st := range []quarantine.State{quarantine.StateHeld, quarantine.StateReleasing, quarantine.StateUnconfirmed, quarantine.StateReleased} {
		t.Run(string(st), func(t *testing.T) {
			code, body := f.get(t, me, "/panel/quarantine?state="+string(st))
			if code != 200 {
				t.Fatalf("status %d:\n%s", code, body)
			}
			if want := `<option value="` + string(st) + `" selected>`; !strings.Contains(body, want) {
				t.Errorf("no %s in the State box:\n%s", want, body)
			}
		})
	}
}
