package panel

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mxgrid/mxgrid/admin"
	"github.com/mxgrid/mxgrid/internal/quarantinetest"
	"github.com/mxgrid/mxgrid/quarantine"
	"github.com/mxgrid/mxgrid/store"
	"github.com/mxgrid/mxgrid/tenant"
	"github.com/mxgrid/mxgrid/tracking"
)

// customerServer takes every message, or none while down.
type customerServer struct{ down bool }

func (s *customerServer) Deliver(context.Context, quarantine.HeldDomain, string, bool, []string, []byte) (string, error) {
	if s.down {
		return "", errors.New("451 4.4.1 customer mail server unreachable")
	}
	return "250 2.0.0 queued", nil
}

// TestQuarantineReleaseFailuresAreExplained: a release the customer's
// server refuses, and one of a message released or deleted already, tell
// the reseller what happened (as the API's 502 and 409 do); both answered
// "Something went wrong on our side" (500) and an error in the log. A
// release abandoned by a node that stopped says so, not "being released".
func TestQuarantineReleaseFailuresAreExplained(t *testing.T) {
	ctx := context.Background()
	var (
		q      *quarantine.Service
		shared *store.Store
	)
	server := &customerServer{}
	f := newFixture(t, func(st *store.Store, o *admin.ServiceOptions) {
		q = quarantine.New(quarantine.DefaultConfig(), st, server, nil)
		o.Quarantine, shared = q, st
	})
	r, err := f.svc.CreateReseller(ctx, f.op, tenant.Reseller{Name: "R"})
	if err != nil {
		t.Fatal(err)
	}
	c, err := f.svc.CreateCustomer(ctx, f.op, tenant.Customer{ResellerID: r.ID, Name: "C"})
	if err != nil {
		t.Fatal(err)
	}
	hold := func() string {
		ids, err := q.Hold(ctx, quarantine.Item{Domain: "c.example", DomainID: 1, CustomerID: c.ID, Sender: "s@x.example",
			Recipients: []string{"bob@c.example"}, Subject: "Invoice"}, strings.NewReader("Subject: Invoice\r\n\r\nPay.\r\n"))
		if err != nil {
			t.Fatal(err)
		}
		return itoa(ids[0])
	}
	me := admin.Principal{ResellerID: r.ID, Actor: "r"}
	released := hold()
	if code, _ := f.post(t, me, "/panel/quarantine/"+released+"/release"); code != http.StatusSeeOther {
		t.Fatalf("release: %d", code)
	}
	server.down = true
	held := hold()
	// Another node sharing the store is delivering this one: if that
	// delivery fails, it is held again, so it is not "released already".
	releasing := hold()
	claimed, _ := strconv.ParseInt(releasing, 10, 64)
	if _, _, err := shared.ClaimRelease(ctx, tracking.Scope{Operator: true}, claimed, "other node", time.Now()); err != nil {
		t.Fatal(err)
	}
	// A node that stopped during its delivery, long ago: no release is
	// under way, and whether the message was delivered is unknown.
	abandoned := hold()
	claimed, _ = strconv.ParseInt(abandoned, 10, 64)
	if _, _, err := shared.ClaimRelease(ctx, tracking.Scope{Operator: true}, claimed, "dead node", time.Now().Add(-2*quarantine.ClaimAbandonedAfter)); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name, id, action string
		code             int
		says             string
	}{
		{"server down", held, "release", http.StatusBadGateway, "stays held"},
		{"released already", released, "release", http.StatusConflict, "no longer held"},
		{"being released", releasing, "release", http.StatusConflict, "being released right now"},
		{"delete of one being released", releasing, "delete", http.StatusConflict, "being released right now"},
		{"release abandoned", abandoned, "release", http.StatusConflict, "did not finish (its node stopped, or lost the customer server after sending the message); whether the message was delivered is unknown"},
		{"delete of one abandoned", abandoned, "delete", http.StatusConflict, "did not finish"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			code, body := f.post(t, me, "/panel/quarantine/"+tt.id+"/"+tt.action)
			if code != tt.code || !strings.Contains(body, tt.says) {
				t.Errorf("release: %d, want %d saying %q:\n%.300s", code, tt.code, tt.says, body)
			}
		})
	}
	if it, err := q.Item(ctx, tracking.Scope{Operator: true}, 2); err != nil || it.State != quarantine.StateHeld {
		t.Errorf("after the failed release: %v %v, want held", it.State, err)
	}
}

// gatedServer takes each message when the test says: entered tells that a
// delivery started, proceed lets it finish.
type gatedServer struct{ entered, proceed chan struct{} }

func (s gatedServer) Deliver(context.Context, quarantine.HeldDomain, string, bool, []string, []byte) (string, error) {
	s.entered <- struct{}{}
	<-s.proceed
	return "250 2.0.0 queued", nil
}

// TestReleaseSlowerThanTheWriteTimeoutIsAnswered: the release form whose
// delivery outlasts the HTTP server's write timeout (a slow customer
// server; the relay allows it minutes) still redirects to the released
// message: the connection was cut instead, and the reseller saw an error
// for a message that was delivered.
func TestReleaseSlowerThanTheWriteTimeoutIsAnswered(t *testing.T) {
	server := gatedServer{entered: make(chan struct{}), proceed: make(chan struct{})}
	f, me, id := oneHeldInvoice(t, nil, server)
	mux := http.NewServeMux()
	f.p.Mount(mux.Handle)
	const writeTimeout = 100 * time.Millisecond
	srv := httptest.NewUnstartedServer(mux)
	srv.Config.WriteTimeout = writeTimeout
	srv.Start()
	t.Cleanup(srv.Close)
	req := httptest.NewRequest("POST", "/panel/quarantine/"+strconv.FormatInt(id, 10)+"/release", nil)
	login := httptest.NewRecorder()
	if err := f.p.createSession(login, req, f.session(t, me)); err != nil {
		t.Fatal(err)
	}
	post, err := http.NewRequest("POST", srv.URL+req.URL.Path, strings.NewReader("csrf=tok"))
	if err != nil {
		t.Fatal(err)
	}
	post.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for _, c := range login.Result().Cookies() {
		post.AddCookie(c)
	}
	client := srv.Client()
	client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	answered := make(chan string, 1)
	go func() {
		resp, err := client.Do(post)
		if err != nil {
			answered <- err.Error()
			return
		}
		resp.Body.Close()
		answered <- fmt.Sprint(resp.StatusCode, " ", resp.Header.Get("Location"))
	}()
	<-server.entered
	// The customer's server is slow: the write timeout passes mid-delivery.
	<-time.After(3 * writeTimeout)
	close(server.proceed)
	if a := <-answered; !strings.HasPrefix(a, "303 ") || !strings.Contains(a, "released") {
		t.Errorf("release outlasting the write timeout answered %q, want 303 to the released message", a)
	}
}

// TestReleaseDeliveredWhileTheStoreIsDownSaysSo: a release the customer's
// server took, whose recording the store did not answer, showed the
// store's outage ("try again later") for a message in the mailbox. It
// shows the released message, saying its record is pending.
func TestReleaseDeliveredWhileTheStoreIsDownSaysSo(t *testing.T) {
	f, me, id := oneHeldInvoice(t, func(st *store.Store) quarantine.Store { return quarantinetest.NewRecordingDown(st) }, &customerServer{})
	code, body := f.post(t, me, "/panel/quarantine/"+itoa(id)+"/release")
	if code != http.StatusOK || !strings.Contains(body, "was delivered") || !strings.Contains(body, "released") || strings.Contains(body, "try again") {
		t.Fatalf("release delivered while the store is down: %d, want 200 saying it was delivered:\n%.2000s", code, body)
	}
}

// TestReleaseAndAllowDeliveredButNotAllowedSaysSo: "release and allow"
// whose message was delivered but whose allow-list write failed showed
// "try again in a moment": a retry could only say the message was no
// longer held, and the sender was never allowed. It shows the released
// message, saying the sender is to be allowed on the domain's page.
func TestReleaseAndAllowDeliveredButNotAllowedSaysSo(t *testing.T) {
	f, me, id := oneHeldInvoice(t, func(st *store.Store) quarantine.Store { return quarantinetest.DomainsGoneAfterRecording{Store: st} }, &customerServer{})
	req := httptest.NewRequest("POST", "/panel/quarantine/"+itoa(id)+"/release", strings.NewReader("csrf=tok&allow=1"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	code, body := f.serve(t, me, req)
	if code != http.StatusOK || !strings.Contains(body, "was delivered") || !strings.Contains(body, "allow list") ||
		strings.Contains(body, "now on the domain") || strings.Contains(strings.ToLower(body), "try again") {
		t.Fatalf("release delivered, sender not allowed: %d, want 200 saying so:\n%.2000s", code, body)
	}
}

// oneHeldInvoice is a panel fixture whose quarantine, over the store as
// wrap makes it (nil: the store itself), delivers to deliver; it holds one
// message of reseller me's domain c.example, id.
func oneHeldInvoice(t *testing.T, wrap func(*store.Store) quarantine.Store, deliver quarantine.Deliverer) (f *fixture, me admin.Principal, id int64) {
	t.Helper()
	var q *quarantine.Service
	f = newFixture(t, func(st *store.Store, o *admin.ServiceOptions) {
		var qs quarantine.Store = st
		if wrap != nil {
			qs = wrap(st)
		}
		q = quarantine.New(quarantine.DefaultConfig(), qs, deliver, nil)
		o.Quarantine = q
	})
	me, customer, dom := f.resellerWithDomain(t, tenant.Reseller{Name: "R"}, tenant.DomainRecord{Name: "c.example", Route: "127.0.0.1:2525"})
	ids, err := q.Hold(context.Background(), quarantine.Item{Domain: "c.example", DomainID: dom.ID, CustomerID: customer, Sender: "s@x.example",
		Recipients: []string{"bob@c.example"}, Subject: "Invoice"}, strings.NewReader("Subject: Invoice\r\n\r\nPay.\r\n"))
	if err != nil {
		t.Fatal(err)
	}
	return f, me, ids[0]
}
