package web

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/mxgrid/mxgrid/admin"
	"github.com/mxgrid/mxgrid/internal/quarantinetest"
	"github.com/mxgrid/mxgrid/internal/smtptest"
	"github.com/mxgrid/mxgrid/quarantine"
	"github.com/mxgrid/mxgrid/relay"
	"github.com/mxgrid/mxgrid/smtpd"
	"github.com/mxgrid/mxgrid/store"
	"github.com/mxgrid/mxgrid/tenant"
	"github.com/mxgrid/mxgrid/tracking"
)

// TestAPIReleaseAndAllowSender: "release and allow the sender" delivers
// the message and puts its sender on the domain's allow list, or does
// neither, through the node's real release path (the tenant directory
// loaded from the store, the relay, a customer's server over SMTP). A
// sender no allow list can hold (a quoted local part with a space) used to
// be delivered and then answered 400: the message was out, the list
// unchanged, and a retry answered 409. A release refused by the customer's
// server, or refused because the domain moved to another customer, used to
// leave the sender allowed all the same: its next spam went through
// unheld, though nothing had been released.
func TestAPIReleaseAndAllowSender(t *testing.T) {
	for _, tt := range []struct {
		name, sender string
		refused      bool // the customer's server refuses the message
		moved        bool // the domain moved to another of its reseller's customers
		code         int
		released     bool
	}{
		{"plain sender", "News@Sender.example", false, false, 200, true},
		{"sender no allow list can hold", `"a b"@sender.example`, false, false, 400, false},
		{"customer's server refuses", "News@Sender.example", true, false, 502, false},
		{"domain moved to another customer", "News@Sender.example", false, true, 502, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			customer := smtptest.StartSink(t)
			if tt.refused {
				customer.RejectData(&smtp.SMTPError{Code: 554, EnhancedCode: smtp.EnhancedCode{5, 7, 1}, Message: "not wanted"})
			}
			f, q, syncer := releasingAPIFixture(t, customer)
			ids, err := q.Hold(ctx, quarantine.Item{Domain: "a.example", DomainID: f.domA.ID, CustomerID: f.custA.ID,
				Sender: tt.sender, Recipients: []string{"alice@a.example"}}, strings.NewReader("Subject: x\r\n\r\nx\r\n"))
			if err != nil {
				t.Fatal(err)
			}
			if tt.moved {
				other, err := f.svc.CreateCustomer(ctx, f.op, tenant.Customer{ResellerID: f.resA.ID, Name: "customer A2"})
				if err != nil {
					t.Fatal(err)
				}
				if _, err := f.svc.UpdateDomain(ctx, f.op, f.domA.ID, func(d *tenant.DomainRecord) { d.CustomerID = other.ID }); err != nil {
					t.Fatal(err)
				}
			}
			if err := syncer.Reload(ctx); err != nil {
				t.Fatal(err)
			}

			code, out := f.do("own", "POST", fmt.Sprintf("/api/v1/quarantine/%d/release", ids[0]), map[string]any{"allow_sender": true})
			if delivered := len(customer.Messages()); code != tt.code || (delivered == 1) != tt.released {
				t.Fatalf("release and allow: %d %s, delivered %d; want %d, delivered %v", code, out, delivered, tt.code, tt.released)
			}
			it, err := q.Item(ctx, tracking.Scope{Operator: true}, ids[0])
			if err != nil || (it.State == quarantine.StateReleased) != tt.released {
				t.Errorf("state %s, %v; want released %v", it.State, err, tt.released)
			}
			d, err := f.svc.GetDomain(ctx, f.op, f.domA.ID)
			if err != nil || slices.Contains(d.Policy.SenderAllow, "news@sender.example") != tt.released {
				t.Errorf("allow list %v, %v; want the sender on it only after a release", d.Policy.SenderAllow, err)
			}
		})
	}
}

// releasingAPIFixture is the API over the node's real release path: the
// tenant directory loaded from the store, the relay, and customer's
// server as customer A's route.
func releasingAPIFixture(t *testing.T, customer *smtptest.Sink) (*apiFixture, *quarantine.Service, *tenant.Syncer) {
	t.Helper()
	return releasingAPIFixtureOver(t, customer, nil)
}

// releasingAPIFixtureOver is releasingAPIFixture whose quarantine reaches
// the store through wrap (nil: directly), to inject the store's failures.
func releasingAPIFixtureOver(t *testing.T, customer *smtptest.Sink, wrap func(*store.Store) quarantine.Store) (*apiFixture, *quarantine.Service, *tenant.Syncer) {
	t.Helper()
	ctx := context.Background()
	var (
		q      *quarantine.Service
		syncer *tenant.Syncer
	)
	f := newAPIFixture(t, func(o *admin.ServiceOptions) {
		var err error
		syncer, err = tenant.NewSyncer(ctx, tenant.DefaultSyncConfig(), tenant.SyncOptions{Loader: o.Panel.(*store.Tenants),
			DataDir: t.TempDir(), Timeout: 10 * time.Second, Log: slog.New(slog.DiscardHandler), Registry: prometheus.NewRegistry()})
		if err != nil {
			t.Fatal(err)
		}
		rel := relay.New(relay.DefaultConfig(), "mx.mxgrid.test", smtptest.Guard(), slog.New(slog.DiscardHandler), prometheus.NewRegistry())
		var qs quarantine.Store = o.Activity.(*store.Store)
		if wrap != nil {
			qs = wrap(o.Activity.(*store.Store))
		}
		q = quarantine.New(quarantine.DefaultConfig(), qs,
			smtpd.Releaser{Directory: syncer.Directory(), Relay: smtpd.Relay{Relay: rel}}, nil)
		o.Quarantine = q
	})
	if _, err := f.svc.UpdateDomain(ctx, f.op, f.domA.ID, func(d *tenant.DomainRecord) {
		d.Route, d.TLS = customer.Addr, string(tenant.TLSNone)
	}); err != nil {
		t.Fatal(err)
	}
	return f, q, syncer
}

// TestAPIQuarantineBusyIsRetried: a preview or release refused because the
// node's held messages open at once fill quarantine.max_open_bytes answers
// 429 with Retry-After, as other "try again shortly" refusals do, not 500.
func TestAPIQuarantineBusyIsRetried(t *testing.T) {
	a := &AdminAPI{log: slog.New(slog.DiscardHandler)}
	rec := httptest.NewRecorder()
	a.fail(rec, httptest.NewRequest("GET", "/api/v1/quarantine/1", nil), fmt.Errorf("preview: %w", quarantine.ErrBusy))
	if rec.Code != http.StatusTooManyRequests || rec.Header().Get("Retry-After") == "" {
		t.Fatalf("busy quarantine: %d, Retry-After %q", rec.Code, rec.Header().Get("Retry-After"))
	}
}

// TestAPIReleaseInProgressIsSaidSo: while a release's delivery is under
// way, a second release or a delete of the message answers 409 saying it
// is being released, not that it was released or deleted already: that
// answer was wrong whenever the delivery then failed, and the message,
// which the caller took for gone, was held again. Real HTTP requests
// racing on one node, through the relay to a customer's server.
func TestAPIReleaseInProgressIsSaidSo(t *testing.T) {
	ctx := context.Background()
	customer := smtptest.StartSink(t)
	gate := customer.GateData()
	f, _, syncer := releasingAPIFixture(t, customer)
	if err := syncer.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	id := f.held()
	release := fmt.Sprintf("/api/v1/quarantine/%d/release", id)
	type answer struct {
		code int
		body []byte
	}
	first := make(chan answer, 1)
	go func() {
		code, body := f.do("own", "POST", release, nil)
		first <- answer{code, body}
	}()
	<-gate.Entered
	for _, req := range []struct{ method, path string }{{"POST", release}, {"DELETE", fmt.Sprintf("/api/v1/quarantine/%d", id)}} {
		code, body := f.do("own", req.method, req.path, nil)
		if code != http.StatusConflict || !strings.Contains(string(body), "being released") {
			t.Errorf("%s %s during the release: %d %s, want 409 saying it is being released", req.method, req.path, code, body)
		}
	}
	gate.Reply <- &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "try again later"}
	if a := <-first; a.code != http.StatusBadGateway {
		t.Fatalf("the release the customer's server refused: %d %s, want 502", a.code, a.body)
	}
	go func() {
		<-gate.Entered
		gate.Reply <- nil
	}()
	if code, body := f.do("own", "POST", release, nil); code != http.StatusOK || len(customer.Messages()) != 1 {
		t.Fatalf("release after the failed one: %d %s, delivered %d; want 200, once", code, body, len(customer.Messages()))
	}
}

// TestAPIAbandonedReleaseIsSaidSo: a claim left by a node that stopped
// during its delivery, older than any live release can be, is answered
// 409 saying when that release began and that its delivery is unknown, to
// a release (with or without allowing the sender) and a delete. It was
// answered "being released right now" until retention removed it.
func TestAPIAbandonedReleaseIsSaidSo(t *testing.T) {
	f := newAPIFixture(t)
	id := f.held()
	began := time.Now().Add(-2 * quarantine.ClaimAbandonedAfter).UTC()
	if _, _, err := f.st.ClaimRelease(context.Background(), tracking.Scope{Operator: true}, id, "dead node", began); err != nil {
		t.Fatal(err)
	}
	release := fmt.Sprintf("/api/v1/quarantine/%d/release", id)
	for _, req := range []struct {
		method, path string
		body         any
	}{{"POST", release, nil}, {"POST", release, map[string]any{"allow_sender": true}}, {"DELETE", fmt.Sprintf("/api/v1/quarantine/%d", id), nil}} {
		code, body := f.do("own", req.method, req.path, req.body)
		var answer apiError
		if err := json.Unmarshal(body, &answer); code != http.StatusConflict || err != nil ||
			!strings.Contains(answer.Error, "began at "+began.Format(time.RFC3339)) || !strings.Contains(answer.Error, "unknown") {
			t.Errorf("%s %s %v of an abandoned release: %d %s, want 409 saying when it began and that its delivery is unknown", req.method, req.path, req.body, code, body)
		}
	}
}

// TestAPIReleaseSlowerThanTheWriteTimeoutIsAnswered: a release whose
// customer's server takes longer than the HTTP server's write timeout (the
// relay allows 5 minutes for the data alone, the server 90 s to answer)
// answers its caller: the connection was cut when the answer was written,
// and the caller never learnt that the message was delivered.
func TestAPIReleaseSlowerThanTheWriteTimeoutIsAnswered(t *testing.T) {
	customer := smtptest.StartSink(t)
	gate := customer.GateData()
	f, _, syncer := releasingAPIFixture(t, customer)
	if err := syncer.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	id := f.held()
	const writeTimeout = 100 * time.Millisecond
	srv := httptest.NewUnstartedServer(f.srv.Config.Handler)
	srv.Config.WriteTimeout = writeTimeout
	srv.Start()
	t.Cleanup(srv.Close)
	req, err := http.NewRequest("POST", fmt.Sprintf("%s/api/v1/quarantine/%d/release", srv.URL, id), nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+f.tokens["own"])
	answered := make(chan string, 1)
	go func() {
		resp, err := srv.Client().Do(req)
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
	if a := <-answered; !strings.HasPrefix(a, "200 ") || !strings.Contains(a, `"released"`) {
		t.Errorf("release outlasting the write timeout answered %q, want 200 released", a)
	}
}

// TestReleaseAndAllowOutlivesItsCaller: "release and allow the sender" is
// one decision, carried out whole when its caller goes away while the
// customer's server takes the message: the message is released and the
// sender allowed. The allow list was changed in the caller's context,
// ended by then: the message went out and its sender stayed off the list,
// the answer saying so reaching nobody.
func TestReleaseAndAllowOutlivesItsCaller(t *testing.T) {
	customer := smtptest.StartSink(t)
	gate := customer.GateData()
	f, q, syncer := releasingAPIFixture(t, customer)
	if err := syncer.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	id := f.held()
	ctx, leave := context.WithCancel(context.Background())
	go func() {
		<-gate.Entered
		leave()
		gate.Reply <- nil
	}()
	if _, err := f.svc.ReleaseQuarantined(ctx, admin.Principal{ResellerID: f.resA.ID, Actor: "r"}, id, true); err != nil {
		t.Errorf("release and allow whose caller left: %v", err)
	}
	it, err := q.Item(context.Background(), tracking.Scope{Operator: true}, id)
	if err != nil || it.State != quarantine.StateReleased || len(customer.Messages()) != 1 {
		t.Fatalf("state %s, %v, delivered %d; want released, once", it.State, err, len(customer.Messages()))
	}
	d, err := f.svc.GetDomain(context.Background(), f.op, f.domA.ID)
	if err != nil || !slices.Contains(d.Policy.SenderAllow, "x@sender.example") {
		t.Errorf("allow list %v, %v; want the released message's sender on it", d.Policy.SenderAllow, err)
	}
}

// TestAPIQuarantinePreviewCutsLongHeaders: a held message's preview shows
// its From, To, Subject and Date and its attachments' names, all written by
// the sender, who may make each nearly a megabyte (the header's bound).
// They were answered whole: a 600 KB From made a 600 KB answer, and a page
// of the panel one screen after another of it above the Release button.
// Each is cut as the stored Subject is, to 998 bytes.
func TestAPIQuarantinePreviewCutsLongHeaders(t *testing.T) {
	f := newAPIFixture(t)
	long := func(s string) string { return strings.Repeat(s, 200_000/len(s)) }
	msg := "From: " + long("Bank ") + "<a@b.example>\r\nTo: " + long("b@c.example, ") + "x@c.example\r\n" +
		"Subject: " + long("Invoice ") + "\r\nDate: " + long("Mon ") + "\r\nMIME-Version: 1.0\r\n" +
		"Content-Type: multipart/mixed; boundary=BB\r\n\r\n" +
		"--BB\r\nContent-Type: text/plain\r\n\r\nhello\r\n" +
		"--BB\r\nContent-Type: application/octet-stream\r\n" +
		"Content-Disposition: attachment; filename=\"" + long("invoice") + ".exe\"\r\n\r\nAAAA\r\n--BB--\r\n"
	ids, err := f.q.Hold(context.Background(), quarantine.Item{Domain: "a.example", DomainID: f.domA.ID, CustomerID: f.custA.ID,
		Sender: "a@b.example", Recipients: []string{"alice@a.example"}}, strings.NewReader(msg))
	if err != nil {
		t.Fatal(err)
	}
	code, out := f.do("own", "GET", fmt.Sprintf("/api/v1/quarantine/%d", ids[0]), nil)
	var got struct {
		Preview struct {
			From, To, Subject, Date string
			Text                    string
			Attachments             []string
		} `json:"preview"`
	}
	if err := json.Unmarshal(out, &got); code != http.StatusOK || err != nil {
		t.Fatalf("GET: %d %v %.300s", code, err, out)
	}
	pv := got.Preview
	if pv.Text != "hello" || len(pv.Attachments) != 1 {
		t.Fatalf("preview text %q, attachments %d: not the message held", pv.Text, len(pv.Attachments))
	}
	for _, v := range []struct{ name, s string }{{"From", pv.From}, {"To", pv.To}, {"Subject", pv.Subject}, {"Date", pv.Date}, {"attachment", pv.Attachments[0]}} {
		if len(v.s) == 0 || len(v.s) > 998 {
			t.Errorf("preview's %s is %d bytes, want 1 to 998", v.name, len(v.s))
		}
	}
}

// TestAPIReleaseDeliveredWhileTheStoreIsDown: the customer's server took
// a released message, and then the store did not answer while its release
// was recorded. The API answered 503 "the tenant database is unavailable
// ... try again later", though the message was in the mailbox; the item
// stayed releasing, and half an hour later was a release that "did not
// finish, whether delivered is unknown", for good. Now the answer is the
// release's (200, released) saying its record is pending, and the node
// records it once the store answers again.
func TestAPIReleaseDeliveredWhileTheStoreIsDown(t *testing.T) {
	ctx := context.Background()
	customer := smtptest.StartSink(t)
	var st *quarantinetest.RecordingDown
	f, q, syncer := releasingAPIFixtureOver(t, customer, func(s *store.Store) quarantine.Store {
		st = quarantinetest.NewRecordingDown(s)
		return st
	})
	if err := syncer.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	id := f.held()
	code, out := f.do("own", "POST", fmt.Sprintf("/api/v1/quarantine/%d/release", id), nil)
	var got struct {
		ID            int64  `json:"id"`
		State         string `json:"state"`
		RecordPending bool   `json:"record_pending"`
		Notice        string `json:"notice"`
	}
	if err := json.Unmarshal(out, &got); err != nil || code != http.StatusOK || got.ID != id || got.State != "released" ||
		!got.RecordPending || got.Notice == "" || strings.Contains(string(out), "try again") {
		t.Fatalf("release delivered while the store is down: %d %s (%v); want 200 released, its record pending", code, out, err)
	}
	if n := len(customer.Messages()); n != 1 {
		t.Fatalf("delivered %d times, want once", n)
	}
	if it, err := q.Item(ctx, tracking.Scope{Operator: true}, id); err != nil || it.State != quarantine.StateReleasing {
		t.Fatalf("while the store is down: %s %v, want still releasing", it.State, err)
	}
	q.RecordPending(ctx) // a tick of the node's loop, the store still down
	if n := q.PendingRecords(); n != 1 {
		t.Fatalf("%d records pending while the store is down, want 1", n)
	}
	st.Down.Store(false)
	q.RecordPending(ctx)
	if it, err := q.Item(ctx, tracking.Scope{Operator: true}, id); err != nil || it.State != quarantine.StateReleased || q.PendingRecords() != 0 {
		t.Fatalf("once the store answers: %s %v, %d pending; want released, none pending", it.State, err, q.PendingRecords())
	}
	if code, out := f.do("own", "POST", fmt.Sprintf("/api/v1/quarantine/%d/release", id), nil); code != http.StatusConflict || len(customer.Messages()) != 1 {
		t.Fatalf("second release: %d %s, delivered %d; want 409, once", code, out, len(customer.Messages()))
	}
}

// TestAPIReleaseDeliveredButSenderNotAllowed: "release and allow" whose
// message the customer's server took, but whose allow-list write then
// failed, answered 503 "changes cannot be saved now: try again later": a
// retry could only answer 409, and the sender was never allowed. Now the
// answer is the release's (200, released), saying the sender is to be
// allowed again, not the release repeated.
func TestAPIReleaseDeliveredButSenderNotAllowed(t *testing.T) {
	ctx := context.Background()
	customer := smtptest.StartSink(t)
	var st quarantinetest.DomainsGoneAfterRecording
	f, q, syncer := releasingAPIFixtureOver(t, customer, func(s *store.Store) quarantine.Store {
		st = quarantinetest.DomainsGoneAfterRecording{Store: s}
		return st
	})
	if err := syncer.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	ids, err := q.Hold(ctx, quarantine.Item{Domain: "a.example", DomainID: f.domA.ID, CustomerID: f.custA.ID,
		Sender: "news@sender.example", Recipients: []string{"alice@a.example"}}, strings.NewReader("Subject: x\r\n\r\nx\r\n"))
	if err != nil {
		t.Fatal(err)
	}
	code, out := f.do("own", "POST", fmt.Sprintf("/api/v1/quarantine/%d/release", ids[0]), map[string]any{"allow_sender": true})
	var got struct {
		State            string `json:"state"`
		SenderNotAllowed bool   `json:"sender_not_allowed"`
		RecordPending    bool   `json:"record_pending"`
		Notice           string `json:"notice"`
	}
	if err := json.Unmarshal(out, &got); err != nil || code != http.StatusOK || got.State != "released" || !got.SenderNotAllowed ||
		got.RecordPending || !strings.Contains(got.Notice, "allow list") || strings.Contains(got.Notice, "try again") {
		t.Fatalf("release delivered, allow list not saved: %d %s (%v); want 200 released, the sender not allowed", code, out, err)
	}
	if n := len(customer.Messages()); n != 1 {
		t.Fatalf("delivered %d times, want once", n)
	}
	if err := st.Restore(ctx); err != nil {
		t.Fatal(err)
	}
	if d, err := f.svc.GetDomain(ctx, f.op, f.domA.ID); err != nil || slices.Contains(d.Policy.SenderAllow, "news@sender.example") {
		t.Fatalf("allow list %v, %v; want the sender not on it", d.Policy.SenderAllow, err)
	}
}
