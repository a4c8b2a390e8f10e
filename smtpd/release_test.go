package smtpd_test

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mxgrid/mxgrid/internal/smtptest"
	"github.com/mxgrid/mxgrid/quarantine"
	"github.com/mxgrid/mxgrid/relay"
	"github.com/mxgrid/mxgrid/smtpd"
	"github.com/mxgrid/mxgrid/store"
	"github.com/mxgrid/mxgrid/tenant"
	"github.com/mxgrid/mxgrid/tracking"
)

// directory is a tenant snapshot of one domain, or of none.
type directory map[string]*tenant.Domain

func (d directory) Lookup(name string) (*tenant.Domain, bool) {
	dom, ok := d[name]
	return dom, ok
}

// TestReleaseOnlyWhileTheNameIsTheSameDomain: a released message goes to
// its domain's current server only while the name is still the domain (by
// id) that held it, and that domain still the customer's that held it. A
// name deleted, re-created by another tenant, or the domain moved to
// another customer (perhaps another reseller's, while the message stays in
// the old customer's quarantine) gets nothing: no connection to its
// server, whose address the error does not name either.
func TestReleaseOnlyWhileTheNameIsTheSameDomain(t *testing.T) {
	for _, tc := range []struct {
		name        string
		nowID       int64 // the id a.example has now; 0: not served
		nowCustomer int64
		delivered   bool
	}{
		{"same domain", 7, 3, true},
		{"name re-created by another domain", 8, 3, false},
		{"deleted", 0, 3, false},
		{"domain moved to another customer", 7, 4, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sink := smtptest.StartSink(t)
			dir := directory{}
			if tc.nowID != 0 {
				dir["a.example"] = &tenant.Domain{Name: "a.example", ID: tc.nowID, CustomerID: tc.nowCustomer,
					Route: tenant.Route{Addr: sink.Addr, TLS: tenant.TLSNone}}
			}
			rel := relay.New(relay.DefaultConfig(), "mx.mxgrid.test", smtptest.Guard(), slog.New(slog.DiscardHandler), prometheus.NewRegistry())
			r := smtpd.Releaser{Directory: dir, Relay: smtpd.Relay{Relay: rel}}
			_, err := r.Deliver(context.Background(), quarantine.HeldDomain{ID: 7, CustomerID: 3, Name: "a.example"}, "s@x.example",
				[]string{"bob@a.example"}, []byte("Subject: x\r\n\r\nx\r\n"))
			if tc.delivered {
				if err != nil || len(sink.Messages()) != 1 {
					t.Fatalf("release: %v, %d delivered; want 1", err, len(sink.Messages()))
				}
				return
			}
			if err == nil || sink.Connections() != 0 {
				t.Fatalf("release: %v, %d connections to the name's server; want an error and none", err, sink.Connections())
			}
		})
	}
}

// TestReleaseOf8BitNeeds8BITMIME: a released message follows the live
// rule (RFC 6152 §3): 8-bit content goes only to a server that offers
// 8BITMIME.
func TestReleaseOf8BitNeeds8BITMIME(t *testing.T) {
	for _, tc := range []struct {
		name      string
		offer     bool
		msg       string
		delivered bool
	}{
		{"7-bit", false, "Subject: x\r\n\r\nx\r\n", true},
		{"8-bit", false, "Subject: x\r\n\r\ncaf\xc3\xa9\r\n", false},
		{"8-bit, 8BITMIME offered", true, "Subject: x\r\n\r\ncaf\xc3\xa9\r\n", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sink := startRawSink(t)
			if !tc.offer {
				sink.withhold8BitMIME()
			}
			dir := directory{"a.example": {Name: "a.example", ID: 7, Route: tenant.Route{Addr: sink.Addr, TLS: tenant.TLSNone}}}
			rel := relay.New(relay.DefaultConfig(), "mx.mxgrid.test", smtptest.Guard(), slog.New(slog.DiscardHandler), prometheus.NewRegistry())
			r := smtpd.Releaser{Directory: dir, Relay: smtpd.Relay{Relay: rel}}
			_, err := r.Deliver(context.Background(), quarantine.HeldDomain{ID: 7, Name: "a.example"}, "s@x.example",
				[]string{"bob@a.example"}, []byte(tc.msg))
			if tc.delivered {
				if err != nil || len(sink.messages()) != 1 {
					t.Fatalf("release: %v, %d delivered; want 1", err, len(sink.messages()))
				}
				return
			}
			var re *relay.Error
			if !errors.As(err, &re) || re.Code != 554 || re.Enhanced != [3]int{5, 6, 3} || len(sink.commands("DATA")) != 0 {
				t.Fatalf("release: %v, DATA sent %d times; want 554 5.6.3 and none", err, len(sink.commands("DATA")))
			}
		})
	}
}

// TestReleaseLostAfterTheMessageIsNotReleasedAgain: the customer's server
// read a released message to its end and was lost before its reply (here
// it never answers, and the relay's data timeout ends the wait), so it may
// have taken the message. The release is not undone: put back to held and
// answered "stays held", the message was delivered again by the next
// click, a second copy in the recipient's mailbox.
func TestReleaseLostAfterTheMessageIsNotReleasedAgain(t *testing.T) {
	ctx := context.Background()
	sink := smtptest.StartSink(t)
	gate := sink.GateData()
	read := make(chan struct{})
	go func() {
		<-gate.Entered
		close(read)
	}()
	dir := directory{"a.example": {Name: "a.example", ID: 7, CustomerID: 3, Route: tenant.Route{Addr: sink.Addr, TLS: tenant.TLSNone}}}
	rcfg := relay.DefaultConfig()
	rcfg.DataTimeout = 300 * time.Millisecond
	rel := relay.New(rcfg, "mx.mxgrid.test", smtptest.Guard(), slog.New(slog.DiscardHandler), prometheus.NewRegistry())
	st, err := store.Open(store.DefaultConfig(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if err := st.MigrateQuarantine(ctx); err != nil {
		t.Fatal(err)
	}
	svc := quarantine.New(quarantine.DefaultConfig(), st, smtpd.Releaser{Directory: dir, Relay: smtpd.Relay{Relay: rel}}, nil)
	ids, err := svc.Hold(ctx, quarantine.Item{Domain: "a.example", DomainID: 7, CustomerID: 3, Sender: "s@x.example",
		Recipients: []string{"bob@a.example"}}, strings.NewReader("Subject: x\r\n\r\nx\r\n"))
	if err != nil {
		t.Fatal(err)
	}
	op := tracking.Scope{Operator: true}
	_, _, err = svc.Release(ctx, op, ids[0], "op")
	<-read
	if !errors.Is(err, quarantine.ErrMaybeDelivered) || !errors.Is(err, quarantine.ErrDelivery) {
		t.Fatalf("release lost after the message's end: %v", err)
	}
	if _, _, err := svc.Release(ctx, op, ids[0], "op"); !errors.Is(err, quarantine.ErrNotHeld) || sink.Connections() != 1 {
		t.Fatalf("second release: %v, %d connections to the customer's server; want not held and 1", err, sink.Connections())
	}
}
