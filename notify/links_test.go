package notify

import (
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/mxgrid/mxgrid/clientip"

	"github.com/mxgrid/mxgrid/internal/metrictest"
	"github.com/mxgrid/mxgrid/internal/quarantinetest"
	"github.com/mxgrid/mxgrid/internal/smtptest"
	"github.com/mxgrid/mxgrid/quarantine"
	"github.com/mxgrid/mxgrid/relay"
	"github.com/mxgrid/mxgrid/smtpd"
	"github.com/mxgrid/mxgrid/store"
	"github.com/mxgrid/mxgrid/tenant"
	"github.com/mxgrid/mxgrid/tracking"
)

// TestReleaseLinkDeliversToItsRecipientOnly: a message held for two
// recipients is held once per recipient, and the release link in one
// recipient's digest delivers to that recipient alone (Proxmox Mail
// Gateway's rule): the other's copy stays held until its own link, or an
// admin, releases it, so nobody can push held mail into colleagues'
// mailboxes, and nobody gets it twice. A link used on the other
// recipient's item releases nothing, nor does one for a message a node
// from before per-recipient holding held for several recipients at once.
// Real store, relay and customer server.
func TestReleaseLinkDeliversToItsRecipientOnly(t *testing.T) {
	ctx := context.Background()
	st, q, customer := releasingQuarantine(t, quarantine.DefaultConfig())
	ids, err := q.Hold(ctx, quarantine.Item{Domain: "a.example", DomainID: 7, CustomerID: 3, Sender: "s@x.example",
		Recipients: []string{"ann@a.example", "bob@a.example"}}, strings.NewReader("Subject: x\r\n\r\nx\r\n"))
	if err != nil || len(ids) != 2 {
		t.Fatalf("hold: %v %v, want one item per recipient", ids, err)
	}
	key := bytes.Repeat([]byte("k"), 32)
	mux := http.NewServeMux()
	NewLinks([][]byte{key}, q, nil, nil, nil, nil, nil, nil).Mount(func(p string, h http.Handler) { mux.Handle(p, h) })
	ann, bob := ids[0], ids[1]
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write([]byte("Subject: y\r\n\r\ny\r\n"))
	zw.Close()
	both, err := st.PutQuarantine(ctx, []quarantine.Item{{Time: time.Now(), Domain: "a.example", DomainID: 7, CustomerID: 3, Sender: "s@x.example",
		Recipients: []string{"ann@a.example", "bob@a.example"}, State: quarantine.StateHeld}}, gz.Bytes(), 0, 1<<30)
	if err != nil {
		t.Fatal(err)
	}
	shared := both[0]

	for _, step := range []struct {
		name      string
		item      int64
		recipient string // the link's
		code      int
		delivered []string // recipients of the customer's messages so far
		held      []int64  // items still held
	}{
		{"ann's link for bob's copy", bob, "ann@a.example", http.StatusNotFound, nil, []int64{ann, bob, shared}},
		{"ann's link for a message held for both at once", shared, "ann@a.example", http.StatusConflict, nil, []int64{ann, bob, shared}},
		{"ann's link", ann, "ann@a.example", http.StatusOK, []string{"ann@a.example"}, []int64{bob, shared}},
		{"ann's link again", ann, "ann@a.example", http.StatusConflict, []string{"ann@a.example"}, []int64{bob, shared}},
		{"bob's link", bob, "bob@a.example", http.StatusOK, []string{"ann@a.example", "bob@a.example"}, []int64{shared}},
	} {
		tok := Sign(Link{Action: ActionRelease, ItemID: step.item, Recipient: step.recipient, Expires: time.Now().Add(time.Hour)}, key)
		rec := httptest.NewRecorder()
		mux.ServeHTTP(rec, httptest.NewRequest("POST", "/q/release/"+tok, nil))
		var delivered []string
		for _, m := range customer.Messages() {
			delivered = append(delivered, m.Rcpts...)
		}
		if rec.Code != step.code || !slices.Equal(delivered, step.delivered) {
			t.Fatalf("%s: %d, the customer's server got mail for %q; want %d, %q", step.name, rec.Code, delivered, step.code, step.delivered)
		}
		for _, id := range []int64{ann, bob, shared} {
			it, err := q.Item(ctx, tracking.Scope{Operator: true}, id)
			if err != nil || (it.State == quarantine.StateHeld) != slices.Contains(step.held, id) {
				t.Errorf("%s: item %d (%s) %s, %v", step.name, id, it.Recipients, it.State, err)
			}
		}
	}
}

// TestReleaseLinkWhenTheNodeIsBusy: a release refused because the node's
// quarantine.max_open_bytes is spent by other open messages answers 429
// with Retry-After and leaves the message held; once they are closed the
// same link releases it. Before, the recipient was told 502, that its
// mail server had not taken the message, and the node logged a failed
// delivery that was never tried.
func TestReleaseLinkWhenTheNodeIsBusy(t *testing.T) {
	ctx := context.Background()
	cfg := quarantine.DefaultConfig()
	cfg.MaxOpenBytes = 1 << 20
	_, q, customer := releasingQuarantine(t, cfg)
	hold := func(body string) int64 {
		ids, err := q.Hold(ctx, quarantine.Item{Domain: "a.example", DomainID: 7, CustomerID: 3, Sender: "s@x.example",
			Recipients: []string{"ann@a.example"}}, strings.NewReader("Subject: x\r\n\r\n"+body+"\r\n"))
		if err != nil {
			t.Fatal(err)
		}
		return ids[0]
	}
	big, mine := hold(strings.Repeat("y", 400<<10)), hold("x") // 3 x 400 KiB: all of max_open_bytes
	key := bytes.Repeat([]byte("k"), 32)
	mux := http.NewServeMux()
	NewLinks([][]byte{key}, q, nil, nil, nil, nil, nil, nil).Mount(func(p string, h http.Handler) { mux.Handle(p, h) })
	tok := Sign(Link{Action: ActionRelease, ItemID: mine, Recipient: "ann@a.example", Expires: time.Now().Add(time.Hour)}, key)
	post := func() *httptest.ResponseRecorder {
		rec := httptest.NewRecorder()
		mux.ServeHTTP(rec, httptest.NewRequest("POST", "/q/release/"+tok, nil))
		return rec
	}
	opened, closeIt := make(chan struct{}), make(chan struct{})
	go q.Open(ctx, tracking.Scope{Operator: true}, big, func(quarantine.Item, []byte) {
		close(opened)
		<-closeIt
	})
	<-opened
	rec := post()
	close(closeIt)
	if rec.Code != http.StatusTooManyRequests || rec.Header().Get("Retry-After") == "" {
		t.Fatalf("with max_open_bytes spent: %d, Retry-After %q; want 429 with Retry-After", rec.Code, rec.Header().Get("Retry-After"))
	}
	if it, err := q.Item(ctx, tracking.Scope{Operator: true}, mine); err != nil || it.State != quarantine.StateHeld || len(customer.Messages()) != 0 {
		t.Fatalf("after the busy answer: %s, %v, %d delivered; want still held, nothing delivered", it.State, err, len(customer.Messages()))
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		rec = post()
		if rec.Code != http.StatusTooManyRequests || time.Now().After(deadline) {
			break
		}
	}
	if rec.Code != http.StatusOK || len(customer.Messages()) != 1 {
		t.Fatalf("once the other message is closed: %d, %d delivered; want 200, 1", rec.Code, len(customer.Messages()))
	}
}

// releasingQuarantine is a quarantine on a fresh SQLite store that
// releases a.example's mail (domain 7 of customer 3) to customer, a real
// SMTP server, through the node's relay.
func releasingQuarantine(t *testing.T, cfg quarantine.Config) (*store.Store, *quarantine.Service, *smtptest.Sink) {
	t.Helper()
	return releasingQuarantineOver(t, cfg, nil)
}

// releasingQuarantineOver is releasingQuarantine whose service reaches the
// store through wrap (nil: directly), to inject the store's failures.
func releasingQuarantineOver(t *testing.T, cfg quarantine.Config, wrap func(*store.Store) quarantine.Store) (*store.Store, *quarantine.Service, *smtptest.Sink) {
	t.Helper()
	st, err := store.Open(store.DefaultConfig(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if err := st.MigrateQuarantine(context.Background()); err != nil {
		t.Fatal(err)
	}
	customer := smtptest.StartSink(t)
	dir := domains{"a.example": {Name: "a.example", ID: 7, CustomerID: 3, Route: tenant.Route{Addr: customer.Addr, TLS: tenant.TLSNone}}}
	rel := relay.New(relay.DefaultConfig(), "mx.mxgrid.test", smtptest.Guard(), slog.New(slog.DiscardHandler), prometheus.NewRegistry())
	var qs quarantine.Store = st
	if wrap != nil {
		qs = wrap(st)
	}
	return st, quarantine.New(cfg, qs, smtpd.Releaser{Directory: dir, Relay: smtpd.Relay{Relay: rel}}, nil), customer
}

// holdForAnn holds one message of domain 7 for ann@a.example, as the
// digest links' tests release it, and returns its items' ids.
func holdForAnn(t *testing.T, q *quarantine.Service) []int64 {
	t.Helper()
	ids, err := q.Hold(context.Background(), quarantine.Item{Domain: "a.example", DomainID: 7, CustomerID: 3, Sender: "s@x.example",
		Recipients: []string{"ann@a.example"}}, strings.NewReader("Subject: x\r\n\r\nx\r\n"))
	if err != nil {
		t.Fatal(err)
	}
	return ids
}

// TestLinkPagesCannotBeFramed: a link's page asks for one click that acts
// (release, opt out), so no other site may frame it and put its own
// content over the button.
func TestLinkPagesCannotBeFramed(t *testing.T) {
	key := bytes.Repeat([]byte("k"), 32)
	mux := http.NewServeMux()
	dir := domains{"a.example": {Name: "a.example", ID: 7, CustomerID: 3}}
	NewLinks([][]byte{key}, nil, nil, dir, nil, nil, nil, nil).Mount(func(p string, h http.Handler) { mux.Handle(p, h) })
	optOut := Sign(Link{Action: ActionOptOut, ItemID: 7, CustomerID: 3, Recipient: "ann@a.example", Expires: time.Now().Add(time.Hour)}, key)
	for _, path := range []string{"/q/optout/" + optOut, "/q/release/altered"} {
		rec := httptest.NewRecorder()
		mux.ServeHTTP(rec, httptest.NewRequest("GET", path, nil))
		h := rec.Header()
		if !strings.Contains(h.Get("Content-Security-Policy"), "frame-ancestors 'none'") || h.Get("X-Frame-Options") != "DENY" ||
			h.Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("GET %s: %d, CSP %q, X-Frame-Options %q, X-Content-Type-Options %q; want framing refused and nosniff",
				path, rec.Code, h.Get("Content-Security-Policy"), h.Get("X-Frame-Options"), h.Get("X-Content-Type-Options"))
		}
	}
}

// gatedReleaseLink holds one message for ann@a.example in a quarantine
// whose customer server holds its final reply at gate, and serves the
// links (with writeTimeout, if any); link releases the message.
func gatedReleaseLink(t *testing.T, writeTimeout time.Duration) (q *quarantine.Service, customer *smtptest.Sink, gate *smtptest.Gate, id int64, srv *httptest.Server, link string) {
	t.Helper()
	_, q, customer = releasingQuarantine(t, quarantine.DefaultConfig())
	gate = customer.GateData()
	ids := holdForAnn(t, q)
	srv, linkTo := serveLinks(t, q, writeTimeout)
	return q, customer, gate, ids[0], srv, linkTo(ids[0])
}

// serveLinks serves q's links (with writeTimeout, if any); linkTo gives
// the release link of ann@a.example's item id.
func serveLinks(t *testing.T, q *quarantine.Service, writeTimeout time.Duration) (srv *httptest.Server, linkTo func(id int64) string) {
	t.Helper()
	key := bytes.Repeat([]byte("k"), 32)
	mux := http.NewServeMux()
	NewLinks([][]byte{key}, q, nil, nil, nil, nil, nil, nil).Mount(func(p string, h http.Handler) { mux.Handle(p, h) })
	srv = httptest.NewUnstartedServer(mux)
	srv.Config.WriteTimeout = writeTimeout
	srv.Start()
	t.Cleanup(srv.Close)
	return srv, func(id int64) string {
		return srv.URL + "/q/release/" + Sign(Link{Action: ActionRelease, ItemID: id, Recipient: "ann@a.example", Expires: time.Now().Add(time.Hour)}, key)
	}
}

// TestReleaseLinkWhileItIsBeingReleased: a release link opened, or its
// button pressed again (a double click), while the message's delivery is
// under way says it is being released, not that it was: the second
// click's page is the one the browser shows, and when the delivery then
// failed it showed "Already released" for a message still held.
func TestReleaseLinkWhileItIsBeingReleased(t *testing.T) {
	ctx := context.Background()
	q, customer, gate, id, srv, link := gatedReleaseLink(t, 0)
	open := func(method string) (int, string) { return fetch(t, srv, method, link) }
	first := make(chan int, 1)
	go func() {
		code, _ := open("POST")
		first <- code
	}()
	<-gate.Entered
	for _, method := range []string{"GET", "POST"} {
		if code, body := open(method); code != http.StatusConflict || !strings.Contains(body, "Being released") {
			t.Errorf("%s during the release: %d %s, want 409 saying it is being released", method, code, body)
		}
	}
	gate.Reply <- &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "try again later"}
	if code := <-first; code != http.StatusBadGateway {
		t.Fatalf("the release the customer's server refused: %d, want 502", code)
	}
	if it, err := q.Item(ctx, tracking.Scope{Operator: true}, id); err != nil || it.State != quarantine.StateHeld || len(customer.Messages()) != 0 {
		t.Fatalf("after the refused release: %q %v, %d delivered; want held, none", it.State, err, len(customer.Messages()))
	}
}

// TestReleaseLinkOfAnAbandonedRelease: a release link of a message whose
// release was begun by a node that stopped during the delivery, long ago,
// says when that release began and that whether it reached the mailbox is
// unknown, not that it is being delivered right now: that page, opened
// again "in a moment" as it asked, said the same until retention.
func TestReleaseLinkOfAnAbandonedRelease(t *testing.T) {
	ctx := context.Background()
	st, q, customer := releasingQuarantine(t, quarantine.DefaultConfig())
	ids := holdForAnn(t, q)
	began := time.Now().Add(-2 * quarantine.ClaimAbandonedAfter).UTC()
	if _, _, err := st.ClaimRelease(ctx, tracking.Scope{Operator: true}, ids[0], "dead node", began); err != nil {
		t.Fatal(err)
	}
	key := bytes.Repeat([]byte("k"), 32)
	h := NewLinks([][]byte{key}, q, nil, nil, nil, nil, nil, nil)
	link := "/q/release/" + Sign(Link{Action: ActionRelease, ItemID: ids[0], Recipient: "ann@a.example", Expires: time.Now().Add(time.Hour)}, key)
	mux := http.NewServeMux()
	h.Mount(func(p string, h http.Handler) { mux.Handle(p, h) })
	for _, method := range []string{"GET", "POST"} {
		rec := httptest.NewRecorder()
		mux.ServeHTTP(rec, httptest.NewRequest(method, link, nil))
		if body := rec.Body.String(); rec.Code != http.StatusConflict || !strings.Contains(body, began.Format(time.RFC3339)) ||
			!strings.Contains(body, "unknown") || strings.Contains(body, "right now") {
			t.Errorf("%s of an abandoned release: %d %s, want 409 saying when it began and that its delivery is unknown", method, rec.Code, body)
		}
	}
	if len(customer.Messages()) != 0 {
		t.Errorf("delivered %d, want none", len(customer.Messages()))
	}
}

// TestReleaseLinkSlowerThanTheWriteTimeoutIsAnswered: a release link's
// POST whose delivery outlasts the HTTP server's write timeout (a slow
// customer server; the relay allows it minutes) still shows its page:
// the connection was cut instead, and the recipient saw an error for a
// message on its way to the mailbox.
func TestReleaseLinkSlowerThanTheWriteTimeoutIsAnswered(t *testing.T) {
	const writeTimeout = 100 * time.Millisecond
	_, _, gate, _, srv, link := gatedReleaseLink(t, writeTimeout)
	answered := make(chan string, 1)
	go func() {
		resp, err := srv.Client().Post(link, "", nil)
		if err != nil {
			answered <- err.Error()
			return
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		answered <- fmt.Sprint(resp.StatusCode, " ", string(body), " ", err)
	}()
	<-gate.Entered
	// The customer's server is slow: the write timeout passes mid-delivery.
	<-time.After(3 * writeTimeout)
	gate.Reply <- nil
	if a := <-answered; !strings.HasPrefix(a, "200 ") || !strings.Contains(a, "on its way to your mailbox") {
		t.Errorf("release outlasting the write timeout answered %q, want 200 released", a)
	}
}

// TestReleaseLinkRefusedForGoodIsFinal: a release the customer's server
// refused for good (a 5xx), or of a domain no longer served as the one
// that held the message, said "Try again later", and the recipient tried
// again and again for the same answer. It now says the refusal is final,
// with the server's reply (its code and text, one printable line; not the
// route the API and the panel show too); a temporary refusal still says
// to try again later.
func TestReleaseLinkRefusedForGoodIsFinal(t *testing.T) {
	post := func(srv *httptest.Server, link string) (int, string) { return fetch(t, srv, "POST", link) }
	for _, tc := range []struct {
		name       string
		reply      *smtp.SMTPError
		final      bool
		wantInPage string
	}{
		{"4xx", &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "busy, come back"}, false, "Try again later"},
		{"5xx", &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "mailbox \x1b[31mgone"}, true, "550 5.1.1 mailbox [31mgone."},
		// RFC 3463: a full mailbox is a persistent transient failure, given
		// as 552 5.2.2 by many servers; the recipient who makes room can
		// release it.
		{"5xx mailbox full", &smtp.SMTPError{Code: 552, EnhancedCode: smtp.EnhancedCode{5, 2, 2}, Message: "mailbox full"}, false, "Try again later"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, gate, _, srv, link := gatedReleaseLink(t, 0)
			go func() {
				<-gate.Entered
				gate.Reply <- tc.reply
			}()
			code, body := post(srv, link)
			if code != http.StatusBadGateway || !strings.Contains(body, tc.wantInPage) ||
				strings.Contains(body, "Try again later") == tc.final || strings.Contains(body, "will not help") != tc.final ||
				strings.ContainsAny(body, "\x1b") || strings.Contains(body, "127.0.0.1") {
				t.Fatalf("%d %s\nwant 502 with %q, final %v", code, body, tc.wantInPage, tc.final)
			}
		})
	}
	t.Run("domain no longer served", func(t *testing.T) {
		// Held by domain 8, which was deleted: releasingQuarantine's
		// directory has the name as domain 7 now, another domain.
		_, q, customer := releasingQuarantine(t, quarantine.DefaultConfig())
		ids, err := q.Hold(context.Background(), quarantine.Item{Domain: "a.example", DomainID: 8, CustomerID: 3, Sender: "s@x.example",
			Recipients: []string{"ann@a.example"}}, strings.NewReader("Subject: x\r\n\r\nx\r\n"))
		if err != nil {
			t.Fatal(err)
		}
		srv, linkTo := serveLinks(t, q, 0)
		code, body := post(srv, linkTo(ids[0]))
		if code != http.StatusBadGateway || strings.Contains(body, "Try again later") || !strings.Contains(body, "no longer served") ||
			len(customer.Messages()) != 0 {
			t.Fatalf("%d %s\nwant 502, final, saying the domain is no longer served", code, body)
		}
	})
}

// countingReleaser counts the store reads of the links it serves.
type countingReleaser struct {
	Releaser
	reads atomic.Int64
}

func (c *countingReleaser) Item(ctx context.Context, scope tracking.Scope, id int64) (quarantine.Item, error) {
	c.reads.Add(1)
	return c.Releaser.Item(ctx, scope, id)
}

func (c *countingReleaser) Release(ctx context.Context, scope tracking.Scope, id int64, by string) (quarantine.Item, string, error) {
	c.reads.Add(1)
	return c.Releaser.Release(ctx, scope, id, by)
}

// TestLinkRequestsLimitedPerClient: one valid link opened again and again
// from one client address (IPv6 by /64, behind a trusted proxy the
// forwarded one) reads its item LinkBurst times, then is answered 429
// with Retry-After and no store read, its button too; each of those reads
// went over the connections the mail path shares, as many a second as the
// address sent. Another address is served meanwhile, and the first gets
// one more request per linkInterval. Real store, HTTP server, relay and
// customer server; the clock stands still.
func TestLinkRequestsLimitedPerClient(t *testing.T) {
	_, q, customer := releasingQuarantine(t, quarantine.DefaultConfig())
	ids := holdForAnn(t, q)
	key := bytes.Repeat([]byte("k"), 32)
	counted := &countingReleaser{Releaser: q}
	trusted, err := clientip.ParseTrusted([]string{"127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	start := time.Now()
	var elapsed atomic.Int64
	now := func() time.Time { return start.Add(time.Duration(elapsed.Load())) }
	mux := http.NewServeMux()
	NewLinks([][]byte{key}, counted, nil, nil, clientip.New(trusted), reg, now, nil).Mount(func(p string, h http.Handler) { mux.Handle(p, h) })
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	link := srv.URL + "/q/release/" + Sign(Link{Action: ActionRelease, ItemID: ids[0], Recipient: "ann@a.example", Expires: start.Add(time.Hour)}, key)
	open := func(method, client string) *http.Response {
		t.Helper()
		req, err := http.NewRequest(method, link, nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("X-Forwarded-For", client)
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp
	}

	for i := range LinkBurst {
		if resp := open("GET", "2001:db8::1"); resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %d within the burst: %d", i, resp.StatusCode)
		}
	}
	if n := counted.reads.Load(); n != LinkBurst {
		t.Fatalf("%d store reads for %d pages", n, LinkBurst)
	}
	for _, req := range []struct{ method, client string }{{"GET", "2001:db8::1"}, {"POST", "2001:db8::1"}, {"GET", "2001:db8::2"}} {
		resp := open(req.method, req.client)
		if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" {
			t.Errorf("%s from %s past the burst: %d, Retry-After %q; want 429 with Retry-After", req.method, req.client, resp.StatusCode, resp.Header.Get("Retry-After"))
		}
	}
	if n := counted.reads.Load(); n != LinkBurst || len(customer.Messages()) != 0 {
		t.Fatalf("past the burst: %d store reads, %d delivered; want %d, none", n, len(customer.Messages()), LinkBurst)
	}
	if n := metrictest.Counter(t, reg, "mxgrid_notify_link_requests_refused_total", ""); n != 3 {
		t.Errorf("%v refusals counted, want 3", n)
	}
	if resp := open("POST", "2001:db8:1::1"); resp.StatusCode != http.StatusOK || len(customer.Messages()) != 1 {
		t.Fatalf("another /64's release: %d, %d delivered; want 200, 1", resp.StatusCode, len(customer.Messages()))
	}
	elapsed.Store(int64(linkInterval))
	if resp := open("GET", "2001:db8::1"); resp.StatusCode != http.StatusConflict {
		t.Fatalf("an interval later: %d, want 409 (released)", resp.StatusCode)
	}
}

// fetch asks srv for link with method and returns the answer's status
// code and body; a failed request is an error of the test, and 0.
func fetch(t *testing.T, srv *httptest.Server, method, link string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, link, nil)
	if err != nil {
		t.Error(err)
		return 0, ""
	}
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Error(err)
		return 0, ""
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// TestReleaseLinkDeliveredWhileTheStoreIsDown: a release link whose
// message the recipient's server took, the store not answering to record
// it, answered "Not delivered yet ... Try again later" (502) for a message
// in the mailbox. It says released, its record pending.
func TestReleaseLinkDeliveredWhileTheStoreIsDown(t *testing.T) {
	_, q, customer := releasingQuarantineOver(t, quarantine.DefaultConfig(), func(st *store.Store) quarantine.Store {
		return quarantinetest.NewRecordingDown(st)
	})
	ids := holdForAnn(t, q)
	key := bytes.Repeat([]byte("k"), 32)
	mux := http.NewServeMux()
	NewLinks([][]byte{key}, q, nil, nil, nil, nil, nil, nil).Mount(func(p string, h http.Handler) { mux.Handle(p, h) })
	tok := Sign(Link{Action: ActionRelease, ItemID: ids[0], Recipient: "ann@a.example", Expires: time.Now().Add(time.Hour)}, key)
	rec := httptest.NewRecorder()
	mux.ServeHTTP(rec, httptest.NewRequest("POST", "/q/release/"+tok, nil))
	if body := rec.Body.String(); rec.Code != http.StatusOK || !strings.Contains(body, "Released") || strings.Contains(body, "Try again") || len(customer.Messages()) != 1 {
		t.Fatalf("release delivered while the store is down: %d, delivered %d:\n%s", rec.Code, len(customer.Messages()), body)
	}
}

// recordedOptOuts counts the opt-outs made through it.
type recordedOptOuts struct{ n atomic.Int32 }

func (o *recordedOptOuts) OptOut(context.Context, int64, int64, string, time.Time) error {
	o.n.Add(1)
	return nil
}

// TestLinkHeadChangesNothing: only a POST acts. The mux gives a GET
// route's HEAD requests to the same handler, and link checkers and mail
// gateways' scanners send HEAD to every link in a mail; a HEAD released
// the message and opted the recipient out. Over a real socket, as a
// scanner would ask.
func TestLinkHeadChangesNothing(t *testing.T) {
	ctx := context.Background()
	_, q, customer := releasingQuarantine(t, quarantine.DefaultConfig())
	ids := holdForAnn(t, q)
	key := bytes.Repeat([]byte("k"), 32)
	var optOuts recordedOptOuts
	mux := http.NewServeMux()
	dir := domains{"a.example": {Name: "a.example", ID: 7, CustomerID: 3}}
	NewLinks([][]byte{key}, q, &optOuts, dir, nil, nil, nil, nil).Mount(func(p string, h http.Handler) { mux.Handle(p, h) })
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	exp := time.Now().Add(time.Hour)
	for _, path := range []string{
		"/q/release/" + Sign(Link{Action: ActionRelease, ItemID: ids[0], Recipient: "ann@a.example", Expires: exp}, key),
		"/q/optout/" + Sign(Link{Action: ActionOptOut, ItemID: 7, CustomerID: 3, Recipient: "ann@a.example", Expires: exp}, key),
	} {
		resp, err := http.Head(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("HEAD %s: %d, want 200 (the page's answer)", path[:12], resp.StatusCode)
		}
	}
	if it, err := q.Item(ctx, tracking.Scope{Operator: true}, ids[0]); err != nil || it.State != quarantine.StateHeld || len(customer.Messages()) != 0 {
		t.Errorf("after HEAD of the release link: %s, %v, %d delivered; want still held, nothing delivered", it.State, err, len(customer.Messages()))
	}
	if n := optOuts.n.Load(); n != 0 {
		t.Errorf("after HEAD of the opt-out link: %d opt-outs, want none", n)
	}
}
