package web

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/mxgrid/mxgrid/admin"
	"github.com/mxgrid/mxgrid/tenant"
)

// A maximal import body of one-character entries must not become millions
// of strings before the count is checked.
func TestImportListStopsAtTheLimit(t *testing.T) {
	entries := maxImportBody / 4 // `"a",` each: a body at the byte limit
	raw := []byte(`["a"` + strings.Repeat(`,"a"`, entries-1) + `]`)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	var l importList
	err := l.UnmarshalJSON(raw)
	runtime.ReadMemStats(&after)
	var fe tenant.FieldErrors
	if !errors.As(err, &fe) || fe["recipients"] == "" {
		t.Fatalf("%d entries: err %v, want a recipients field error", entries, err)
	}
	// Decoding all of them costs ~1 GB (measured before the bound); the
	// first admin.MaxImport cost a few MB.
	if got := after.TotalAlloc - before.TotalAlloc; got > 64<<20 {
		t.Errorf("decoding %d entries allocated %d MB before refusing, want < 64", entries, got>>20)
	}
	ok := importList{}
	if err := ok.UnmarshalJSON([]byte(`["a","b"]`)); err != nil || len(ok) != 2 || ok[1] != "b" {
		t.Errorf("two entries: %q, %v", ok, err)
	}
}

// Imports decoded at once are bounded per node (admin.Service's places,
// shared with the panel): the next is told to retry, and once one ends
// another is taken. The operator holds them here: a reseller may hold
// only its share (TestImportPlacesAreSharedBetweenResellers).
func TestImportsAtOnceAreBounded(t *testing.T) {
	f := newAPIFixture(t)
	srv := f.srv
	path := fmt.Sprintf("/api/v1/domains/%d/recipients/import", f.domA.ID)
	post := func(body string) int {
		req, err := http.NewRequest("POST", srv.URL+path, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer "+f.tokens["own"])
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	// Imports whose bodies have not come hold their slots while being
	// read. Their headers are written by hand: an HTTP client's transport
	// may keep them in its buffer until the body comes.
	const body = `{"recipients":["slow1"]}`
	var held []net.Conn
	for range admin.MaxConcurrentImports {
		c, err := net.Dial("tcp", srv.Listener.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		fmt.Fprintf(c, "POST %s HTTP/1.1\r\nHost: api\r\nAuthorization: Bearer %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n",
			path, f.tokens["operator"], len(body))
		held = append(held, c)
	}
	for deadline := time.Now().Add(10 * time.Second); f.svc.ImportsRunning() < admin.MaxConcurrentImports; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d held imports are being read after 10 s", f.svc.ImportsRunning(), admin.MaxConcurrentImports)
		}
	}
	if code := post(`{"recipients":["quick"]}`); code != http.StatusTooManyRequests {
		t.Fatalf("with %d imports being read, another got %d, want 429", admin.MaxConcurrentImports, code)
	}
	for i, c := range held {
		io.WriteString(c, body)
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatalf("held import %d: %v", i, err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("held import %d: status %d, want 200", i, resp.StatusCode)
		}
	}
	if code := post(`{"recipients":["after"]}`); code != http.StatusOK {
		t.Errorf("after the held imports ended: %d, want 200", code)
	}
	if _, err := f.svc.GetRecipient(t.Context(), admin.Operator("test"), f.domA.ID, "slow1"); err != nil {
		t.Errorf("the held import was not stored: %v", err)
	}
}

// TestImportPlacesAreSharedBetweenResellers: one reseller holds at most
// MaxImportsPerReseller of the node's import places, so its uploads in a
// loop cannot make every other tenant's imports answer 429.
func TestImportPlacesAreSharedBetweenResellers(t *testing.T) {
	f := newAPIFixture(t)
	ctx := t.Context()
	custB, err := f.svc.CreateCustomer(ctx, f.op, tenant.Customer{ResellerID: f.resB.ID, Name: "customer B"})
	if err != nil {
		t.Fatal(err)
	}
	domB, err := f.svc.CreateDomain(ctx, f.op, tenant.DomainRecord{CustomerID: custB.ID, Name: "b.example", Route: "127.0.0.1:2525"})
	if err != nil {
		t.Fatal(err)
	}
	post := func(who string, domain int64) int {
		code, _ := f.do(who, "POST", fmt.Sprintf("/api/v1/domains/%d/recipients/import", domain), map[string]any{"recipients": []string{"x"}})
		return code
	}
	a := admin.Principal{ResellerID: f.resA.ID, Actor: "a"}
	for range admin.MaxImportsPerReseller {
		done, err := f.svc.BeginImport(a)
		if err != nil {
			t.Fatal(err)
		}
		defer done()
	}
	if code := post("own", f.domA.ID); code != http.StatusTooManyRequests {
		t.Errorf("reseller A past its share: %d, want 429", code)
	}
	if code := post("other", domB.ID); code != http.StatusOK {
		t.Errorf("reseller B while A holds its share: %d, want 200", code)
	}
	if code := post("operator", f.domA.ID); code != http.StatusOK {
		t.Errorf("the operator while A holds its share: %d, want 200", code)
	}
}

// TestSearchesAtOnceAreBounded: with every search place of the node taken
// (admin.MaxConcurrentSearches), a search of the message log, the deferral
// view and the quarantine list answer 429 with Retry-After and read
// nothing; with one free they answer, and give their place back once
// written. Before, any number ran at once, each on a store connection the
// mail path shares and each holding its answer (a deferral view: up to
// 20,000 rows) until the client read it.
func TestSearchesAtOnceAreBounded(t *testing.T) {
	// A search waits this long for a place before 429.
	f := newAPIFixture(t, func(o *admin.ServiceOptions) { o.SearchWait = 50 * time.Millisecond })
	get := func(path string) (int, string) { return f.retryAfter("own", "GET", path) }
	var held []func()
	for range admin.MaxConcurrentSearches {
		done, err := f.svc.BeginSearch(context.Background(), f.op)
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, done)
	}
	paths := []string{"/api/v1/messages?sender=x%40sender.example", "/api/v1/deferrals?since=720h", "/api/v1/quarantine?q=invoice"}
	for _, path := range paths {
		if code, retry := get(path); code != http.StatusTooManyRequests || retry == "" {
			t.Errorf("%s with every search place taken: %d, Retry-After %q; want 429 with Retry-After", path, code, retry)
		}
	}
	held[0]()
	for _, path := range paths {
		if code, _ := get(path); code != http.StatusOK {
			t.Errorf("%s with a place free: %d, want 200", path, code)
		}
		if n := f.svc.SearchesRunning(); n != admin.MaxConcurrentSearches-1 {
			t.Errorf("%s: %d places taken after it, want %d (its own given back)", path, n, admin.MaxConcurrentSearches-1)
		}
	}
}

// TestSearchPlacesAreSharedBetweenResellers: one reseller holds at most
// MaxSearchesPerReseller of the node's search places, so its slow clients
// cannot make every other tenant's searches wait and get 429.
func TestSearchPlacesAreSharedBetweenResellers(t *testing.T) {
	f := newAPIFixture(t, func(o *admin.ServiceOptions) { o.SearchWait = 50 * time.Millisecond })
	get := func(who string) int {
		req, err := http.NewRequest("GET", f.srv.URL+"/api/v1/messages?sender=x%40sender.example", nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer "+f.tokens[who])
		resp, err := f.srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	// Reseller A's slow clients hold its share.
	a := admin.Principal{ResellerID: f.resA.ID, Actor: "a"}
	for range admin.MaxSearchesPerReseller {
		done, err := f.svc.BeginSearch(context.Background(), a)
		if err != nil {
			t.Fatal(err)
		}
		defer done()
	}
	if code := get("own"); code != http.StatusTooManyRequests {
		t.Errorf("reseller A past its share: %d, want 429", code)
	}
	if code := get("other"); code != http.StatusOK {
		t.Errorf("reseller B while A holds its share: %d, want 200", code)
	}
}

// TestRequestPlacesAreTheResellers: a reseller holding all its request
// places waits, then gets 429 on every route, while another reseller and
// the operator are served; a place given back serves the next request.
func TestRequestPlacesAreTheResellers(t *testing.T) {
	f := newAPIFixture(t, func(o *admin.ServiceOptions) { o.SearchWait = 50 * time.Millisecond })
	a := admin.Principal{ResellerID: f.resA.ID, Actor: "a"}
	var held []func()
	for range admin.MaxRequestsPerReseller {
		done, err := f.svc.BeginRequest(context.Background(), a)
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, done)
	}
	for _, path := range []string{"/api/v1/domains", fmt.Sprintf("/api/v1/domains/%d", f.domA.ID), "/api/v1/messages"} {
		if code, body := f.do("own", "GET", path, nil); code != http.StatusTooManyRequests {
			t.Errorf("reseller A past its request places, %s: %d %s, want 429", path, code, body)
		}
		for _, who := range []string{"other", "operator"} {
			if code, _ := f.do(who, "GET", path, nil); code == http.StatusTooManyRequests {
				t.Errorf("%s while reseller A holds its places, %s: 429", who, path)
			}
		}
	}
	held[0]()
	if code, body := f.do("own", "GET", "/api/v1/domains", nil); code != http.StatusOK {
		t.Errorf("reseller A with a place free: %d %s, want 200", code, body)
	}
	// The request gave its place back: one is free again.
	done, err := f.svc.BeginRequest(context.Background(), a)
	if err != nil {
		t.Errorf("the served request kept its place: %v", err)
	} else {
		done()
	}
	for _, done := range held[1:] {
		done()
	}
}

// A refused import entry is quoted in the answer only in part: entries are
// as long as the body, and one of 30 MiB of DEL bytes, quoted whole, made
// a 150 MB answer (2.6 GB allocated) from one request.
func TestImportErrorQuotesLittleOfTheEntry(t *testing.T) {
	f := newAPIFixture(t)
	huge := strings.Repeat("\x7f", 8<<20)
	for _, entry := range []string{huge, "bob@" + huge, huge + " ", strings.Repeat(" ", 8<<20) + "b\x7fb"} {
		code, out := f.do("own", "POST", fmt.Sprintf("/api/v1/domains/%d/recipients/import", f.domA.ID),
			`{"recipients":["ok","`+entry+`"]}`)
		if code != http.StatusBadRequest || !strings.Contains(string(out), `"recipients[1]":"\"`) || len(out) > 1024 {
			t.Errorf("an entry of %d bytes: %d, answer of %d bytes, want 400 naming recipients[1] in under 1 KiB: %.300s",
				len(entry), code, len(out), out)
		}
	}
}
