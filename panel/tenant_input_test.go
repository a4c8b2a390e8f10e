package panel

import (
	"bytes"
	"context"
	"io"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/mxgrid/mxgrid/admin"
	"github.com/mxgrid/mxgrid/quarantine"
	"github.com/mxgrid/mxgrid/store"
	"github.com/mxgrid/mxgrid/tenant"
)

// TestCSVImportsShareTheNodesPlaces: the panel's CSV imports take the
// node's import places that the API's imports take (admin.BeginImport):
// with all of them taken, an upload is told to retry (429) and nothing is
// imported; once one is free, it goes through. Before, the panel read and
// stored any number of 8 MiB uploads at once.
func TestCSVImportsShareTheNodesPlaces(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	pr, _, d := f.resellerWithDomain(t, tenant.Reseller{Name: "alpha"}, tenant.DomainRecord{Name: "one.example", Route: "192.0.2.1:25"})
	upload := func() (int, string) {
		ct, body := csvUpload("tok", "alice\nbob\n")
		req := httptest.NewRequest("POST", "/panel/domains/"+itoa(d.ID)+"/import", strings.NewReader(body))
		req.Header.Set("Content-Type", ct)
		return f.serve(t, pr, req)
	}
	var held []func()
	for range admin.MaxConcurrentImports {
		done, err := f.svc.BeginImport(f.op)
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, done)
	}
	if code, body := upload(); code != http.StatusTooManyRequests || !strings.Contains(body, "imports are running") {
		t.Fatalf("with every import place taken: %d, want 429 saying why\n%s", code, body)
	}
	if _, err := f.svc.GetRecipient(ctx, pr, d.ID, "alice"); err == nil {
		t.Fatal("the refused upload was imported")
	}
	held[0]()
	if code, body := upload(); code != http.StatusOK {
		t.Fatalf("with a place free: %d\n%s", code, body)
	}
	if _, err := f.svc.GetRecipient(ctx, pr, d.ID, "alice"); err != nil {
		t.Fatalf("the upload was not imported: %v", err)
	}
	if n := f.svc.ImportsRunning(); n != admin.MaxConcurrentImports-1 {
		t.Errorf("%d places taken after the upload, want %d (its own given back)", n, admin.MaxConcurrentImports-1)
	}
}

// TestDomainFormRefusedChangesNothing: a domain form with a number that
// does not parse is refused (400 naming the field) and nothing of it is
// saved. Before, the other fields were saved and the bad score became
// "inherit", behind the error page.
func TestDomainFormRefusedChangesNothing(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	tag := 5.0
	pr, _, d := f.resellerWithDomain(t, tenant.Reseller{Name: "alpha"}, tenant.DomainRecord{Name: "one.example", Route: "192.0.2.1:25",
		Policy: tenant.Policy{TagScore: &tag}})
	form := url.Values{"csrf": {"tok"}, "name": {"one.example"}, "route": {"192.0.2.99:25"}, "tls": {"opportunistic"}, "tag_score": {"5,5"}}
	req := httptest.NewRequest("POST", "/panel/domains/"+itoa(d.ID), strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if code, body := f.serve(t, pr, req); code != http.StatusBadRequest || !strings.Contains(body, "must be a number") {
		t.Fatalf("a score that is not a number: %d, want 400 naming it\n%s", code, body)
	}
	got, err := f.svc.GetDomain(ctx, pr, d.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Route != "192.0.2.1:25" || got.Policy.TagScore == nil || *got.Policy.TagScore != 5 {
		t.Fatalf("the refused form was saved: route %s, tag_score %v", got.Route, got.Policy.TagScore)
	}
}

// TestSearchesShareTheNodesPlaces: the message log and the quarantine
// list take the node's search places that the API's searches take
// (admin.BeginSearch): with all of them taken, each page is told to retry
// (429, Retry-After); once one is free, it answers and gives its place
// back. Before, any number of these pages ran at once, each holding a
// store connection and its answer (the message log's deferral view: up to
// 20,000 rows).
func TestSearchesShareTheNodesPlaces(t *testing.T) {
	f := newFixture(t, func(st *store.Store, o *admin.ServiceOptions) {
		if err := st.MigrateTracking(context.Background()); err != nil {
			t.Fatal(err)
		}
		o.Messages = st
		o.Quarantine = quarantine.New(quarantine.DefaultConfig(), st, nil, nil)
		o.SearchWait = 50 * time.Millisecond // before 429
	})
	pr, _, _ := f.resellerWithDomain(t, tenant.Reseller{Name: "alpha"}, tenant.DomainRecord{Name: "one.example", Route: "192.0.2.1:25"})
	get := func(path string) (int, string, http.Header) {
		rec := f.record(t, pr, httptest.NewRequest("GET", path, nil))
		return rec.Code, rec.Body.String(), rec.Header()
	}
	var held []func()
	for range admin.MaxConcurrentSearches {
		done, err := f.svc.BeginSearch(context.Background(), f.op)
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, done)
	}
	paths := []string{"/panel/messages?sender=x%40sender.example", "/panel/quarantine?q=invoice"}
	for _, path := range paths {
		code, body, hdr := get(path)
		if code != http.StatusTooManyRequests || hdr.Get("Retry-After") == "" || !strings.Contains(body, "Too many searches") {
			t.Errorf("%s with every search place taken: %d, Retry-After %q; want 429 with Retry-After saying why\n%s", path, code, hdr.Get("Retry-After"), body)
		}
	}
	held[0]()
	for _, path := range paths {
		if code, body, _ := get(path); code != http.StatusOK {
			t.Errorf("%s with a place free: %d\n%s", path, code, body)
		}
		if n := f.svc.SearchesRunning(); n != admin.MaxConcurrentSearches-1 {
			t.Errorf("%s: %d places taken after it, want %d (its own given back)", path, n, admin.MaxConcurrentSearches-1)
		}
	}
}

// TestRequestPlacesOfAReseller: panel pages share the reseller's request
// places with its API tokens; past them a page waits, then says why with
// 429, and the operator is still served.
func TestRequestPlacesOfAReseller(t *testing.T) {
	f := newFixture(t, func(_ *store.Store, o *admin.ServiceOptions) { o.SearchWait = 50 * time.Millisecond })
	pr, _, _ := f.resellerWithDomain(t, tenant.Reseller{Name: "alpha"}, tenant.DomainRecord{Name: "one.example", Route: "192.0.2.1:25"})
	var held []func()
	for range admin.MaxRequestsPerReseller {
		done, err := f.svc.BeginRequest(context.Background(), pr)
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, done)
	}
	rec := f.record(t, pr, httptest.NewRequest("GET", "/panel/customers", nil))
	if rec.Code != http.StatusTooManyRequests || rec.Header().Get("Retry-After") == "" || !strings.Contains(rec.Body.String(), "too many requests") {
		t.Errorf("reseller past its request places: %d, Retry-After %q; want 429 with Retry-After saying why\n%s", rec.Code, rec.Header().Get("Retry-After"), rec.Body)
	}
	if rec := f.record(t, f.op, httptest.NewRequest("GET", "/panel/customers", nil)); rec.Code != http.StatusOK {
		t.Errorf("operator while the reseller holds its places: %d", rec.Code)
	}
	held[0]()
	if rec := f.record(t, pr, httptest.NewRequest("GET", "/panel/customers", nil)); rec.Code != http.StatusOK {
		t.Errorf("reseller with a place free: %d\n%s", rec.Code, rec.Body)
	}
	for _, done := range held[1:] {
		done()
	}
}

// readCounter counts the bytes read from a request body.
type readCounter struct {
	r io.Reader
	n int
}

func (c *readCounter) Read(b []byte) (int, error) {
	n, err := c.r.Read(b)
	c.n += n
	return n, err
}

// TestUploadOwnerCheckedBeforeTheBodyIsRead: a CSV upload to another
// reseller's domain, or to one that does not exist, answers "Not found"
// without a byte of the body read, whatever the body holds; the owner's
// own upload is read and imported. Before, every multipart body was parsed
// (up to maxCSV, spooled to disk) before the domain's owner was checked:
// B's id with a body that did not parse answered 400 "could not be read".
func TestUploadOwnerCheckedBeforeTheBodyIsRead(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	pa, _, dA := f.resellerWithDomain(t, tenant.Reseller{Name: "alpha"}, tenant.DomainRecord{Name: "alpha.example", Route: "192.0.2.1:25"})
	_, _, dB := f.resellerWithDomain(t, tenant.Reseller{Name: "beta"}, tenant.DomainRecord{Name: "beta.example", Route: "192.0.2.2:25"})
	ct, good := csvUpload("tok", "mallory\n")
	for _, tc := range []struct {
		name, id, ctype, body string
	}{
		{"B's domain, a good upload", itoa(dB.ID), ct, good},
		{"B's domain, a body that does not parse", itoa(dB.ID), "multipart/form-data; boundary=x", "not a multipart body"},
		{"B's domain, no boundary", itoa(dB.ID), "multipart/form-data", good},
		{"a missing domain, a body that does not parse", "987654", "multipart/form-data; boundary=x", "not a multipart body"},
	} {
		body := &readCounter{r: strings.NewReader(tc.body)}
		req := httptest.NewRequest("POST", "/panel/domains/"+tc.id+"/import", body)
		req.Header.Set("Content-Type", tc.ctype)
		code, page := f.serve(t, pa, req)
		if code != http.StatusNotFound || strings.Contains(page, "beta.example") {
			t.Errorf("%s: %d, want 404 revealing nothing\n%s", tc.name, code, page)
		}
		if body.n != 0 {
			t.Errorf("%s: %d bytes of the body read before the owner was checked", tc.name, body.n)
		}
	}
	if _, err := f.svc.GetRecipient(ctx, f.op, dB.ID, "mallory"); err == nil {
		t.Error("A's upload was imported into B's domain")
	}
	req := httptest.NewRequest("POST", "/panel/domains/"+itoa(dA.ID)+"/import", strings.NewReader(good))
	req.Header.Set("Content-Type", ct)
	if code, page := f.serve(t, pa, req); code != http.StatusOK {
		t.Fatalf("A's upload to its own domain: %d\n%s", code, page)
	}
	if _, err := f.svc.GetRecipient(ctx, pa, dA.ID, "mallory"); err != nil {
		t.Errorf("A's upload to its own domain was not imported: %v", err)
	}
	// Without the session's CSRF token, the owner's upload is still refused.
	ct, noToken := csvUpload("", "trudy\n")
	req = httptest.NewRequest("POST", "/panel/domains/"+itoa(dA.ID)+"/import", strings.NewReader(noToken))
	req.Header.Set("Content-Type", ct)
	if code, _ := f.serve(t, pa, req); code != http.StatusForbidden {
		t.Errorf("A's upload without the CSRF token: %d, want 403", code)
	}
	if _, err := f.svc.GetRecipient(ctx, pa, dA.ID, "trudy"); err == nil {
		t.Error("an upload without the CSRF token was imported")
	}
}

// csvUpload is a multipart form as the import page posts it: the CSRF
// token (none when empty) and the file.
func csvUpload(csrf, csv string) (contentType, body string) {
	var b bytes.Buffer
	mw := multipart.NewWriter(&b)
	if csrf != "" {
		mw.WriteField("csrf", csrf)
	}
	fw, _ := mw.CreateFormFile("csv", "list.csv")
	fw.Write([]byte(csv))
	mw.Close()
	return mw.FormDataContentType(), b.String()
}
