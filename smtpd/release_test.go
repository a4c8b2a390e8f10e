package smtpd_test

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mxgrid/mxgrid/internal/smtptest"
	"github.com/mxgrid/mxgrid/internal/testenv"
	"github.com/mxgrid/mxgrid/quarantine"
	"github.com/mxgrid/mxgrid/relay"
	"github.com/mxgrid/mxgrid/scanner"
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
			_, err := r.Deliver(context.Background(), quarantine.HeldDomain{ID: 7, CustomerID: 3, Name: "a.example"}, "s@x.example", false,
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
			_, err := r.Deliver(context.Background(), quarantine.HeldDomain{ID: 7, Name: "a.example"}, "s@x.example", false,
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

// TestReleaseAsksForSMTPUTF8AsTheSenderDid: a held message whose sender
// asked for SMTPUTF8 is released with it, as the live relay sends it: to a
// server offering it with the parameter, and to one without it refused for
// good (550 5.6.7) when a header field is UTF-8 (RFC 6532), the item held
// still. The release asked for SMTPUTF8 only for a non-ASCII address, so
// a UTF-8 Subject went to either without it. An item whose sender did not
// ask (or held before that was recorded) is released as before: its raw
// Latin-1 Subject, passed on live, is not refused. A sender at a UTF-8
// domain (ASCII local part) of a 7-bit message goes to a server without
// SMTPUTF8 as the domain's A-labels, as on the live path.
func TestReleaseAsksForSMTPUTF8AsTheSenderDid(t *testing.T) {
	const (
		utf8Subject   = "Subject: Gr\xc3\xbc\xc3\x9fe\r\n\r\nx\r\n"
		latin1Subject = "Subject: Gr\xfc\xdfe\r\n\r\nx\r\n"
		asciiSubject  = "Subject: hello\r\n\r\nx\r\n"
	)
	for _, db := range []struct {
		name string
		cfg  func(t *testing.T) store.Config
	}{
		{"sqlite", func(*testing.T) store.Config { return store.DefaultConfig() }},
		{"postgres", func(t *testing.T) store.Config {
			return store.Config{Driver: store.Postgres, DSN: testenv.PostgresDB(t), Timeout: 5 * time.Second}
		}},
	} {
		for _, tc := range []struct {
			name      string
			smtputf8  bool // the sender's MAIL asked for it
			offer     bool // the customer's server offers it
			msg       string
			delivered bool
			// sender is the held sender, and mail what MAIL gives it;
			// s@x.example both when "".
			sender, mail string
		}{
			{"asked, UTF-8 Subject, offered", true, true, utf8Subject, true, "", ""},
			{"asked, UTF-8 Subject, not offered", true, false, utf8Subject, false, "", ""},
			{"not asked, Latin-1 Subject, offered", false, true, latin1Subject, true, "", ""},
			{"not asked, Latin-1 Subject, not offered", false, false, latin1Subject, true, "", ""},
			{"asked, IDN sender, ASCII message, not offered", true, false, asciiSubject, true, "info@bücher.example", "info@xn--bcher-kva.example"},
			{"asked, IDN sender, UTF-8 Subject, not offered", true, false, utf8Subject, false, "info@bücher.example", ""},
		} {
			t.Run(db.name+"/"+tc.name, func(t *testing.T) {
				ctx := context.Background()
				sink := startRawSink(t)
				if !tc.offer {
					sink.withholdSMTPUTF8()
				}
				dir := directory{"a.example": {Name: "a.example", ID: 7, CustomerID: 3, Route: tenant.Route{Addr: sink.Addr, TLS: tenant.TLSNone}}}
				rel := relay.New(relay.DefaultConfig(), "mx.mxgrid.test", smtptest.Guard(), slog.New(slog.DiscardHandler), prometheus.NewRegistry())
				svc := quarantine.New(quarantine.DefaultConfig(), openQuarantine(t, db.cfg(t)), smtpd.Releaser{Directory: dir, Relay: smtpd.Relay{Relay: rel}}, nil)
				sender, mail := cmp.Or(tc.sender, "s@x.example"), cmp.Or(tc.mail, "s@x.example")
				ids, err := svc.Hold(ctx, quarantine.Item{Domain: "a.example", DomainID: 7, CustomerID: 3, Sender: sender,
					SMTPUTF8: tc.smtputf8, Recipients: []string{"bob@a.example"}}, strings.NewReader(tc.msg))
				if err != nil {
					t.Fatal(err)
				}
				op := tracking.Scope{Operator: true}
				_, _, err = svc.Release(ctx, op, ids[0], "op")
				it, ierr := svc.Item(ctx, op, ids[0])
				if ierr != nil {
					t.Fatal(ierr)
				}
				if tc.delivered {
					if err != nil || len(sink.messages()) != 1 || it.State != quarantine.StateReleased {
						t.Fatalf("release: %v, %d delivered, %s; want 1, released", err, len(sink.messages()), it.State)
					}
					// SMTPUTF8 only where it was asked for and offered.
					want := tc.smtputf8 && tc.offer
					if mails := sink.commands("MAIL "); len(mails) != 1 || strings.HasSuffix(mails[0], " SMTPUTF8") != want ||
						!strings.HasPrefix(mails[0], "MAIL FROM:<"+mail+">") {
						t.Errorf("MAIL lines %q, want one from <%s> asking for SMTPUTF8: %v", mails, mail, want)
					}
					return
				}
				var refused *quarantine.RefusedError
				if !errors.As(err, &refused) || !strings.HasPrefix(refused.Reply, "550 5.6.7 ") || len(sink.commands("DATA")) != 0 {
					t.Fatalf("release: %v, DATA sent %d times; want refused for good (550 5.6.7) and none", err, len(sink.commands("DATA")))
				}
				if it.State != quarantine.StateHeld {
					t.Fatalf("after a refused release the item is %s, want held", it.State)
				}
			})
		}
	}
}

// TestSMTPUTF8IsHeldWithTheMessage: whether the sender's MAIL asked for
// SMTPUTF8 is held with the message, and its release asks the customer's
// server for it only then. It was not kept, and a message with a UTF-8
// Subject came out of the quarantine without it.
func TestSMTPUTF8IsHeldWithTheMessage(t *testing.T) {
	for _, asked := range []bool{true, false} {
		t.Run(fmt.Sprintf("asked %v", asked), func(t *testing.T) {
			ctx := context.Background()
			sink := smtptest.StartSink(t)
			cfg := testConfig(t)
			d := smtptest.Domain("example.org", sink.Addr, "bob")
			d.TagAction = ptr(tenant.TagQuarantine)
			cfg.Domains = append(cfg.Domains, d)
			deps := configDeps(t, cfg, []scanner.Stage{{Check: scoreCheck{score: 8}}})
			st := openQuarantine(t, store.DefaultConfig())
			deps.Quarantine = quarantine.New(quarantine.DefaultConfig(), st, nil, nil)
			n := startWith(t, cfg, deps)
			c := dial(t, n.SMTPAddr())
			mail := "MAIL FROM:<alice@sender.test>"
			if asked {
				mail += " SMTPUTF8"
			}
			c.cmd(250, "%s", mail)
			c.cmd(250, "RCPT TO:<bob@example.org>")
			c.data(250, strings.Replace(testMessage, "Subject: quarterly report", "Subject: Gr\xc3\xbc\xc3\x9fe", 1))

			op := tracking.Scope{Operator: true}
			held, err := st.ListQuarantine(ctx, quarantine.Filter{Scope: op, Limit: 10})
			if err != nil || len(held) != 1 || held[0].SMTPUTF8 != asked {
				t.Fatalf("held %+v, %v; want one item, SMTPUTF8 %v", held, err, asked)
			}
			dir := directory{"example.org": {Name: "example.org", ID: held[0].DomainID, CustomerID: held[0].CustomerID,
				Route: tenant.Route{Addr: sink.Addr, TLS: tenant.TLSNone}}}
			rel := relay.New(relay.DefaultConfig(), "mx.mxgrid.test", smtptest.Guard(), slog.New(slog.DiscardHandler), prometheus.NewRegistry())
			svc := quarantine.New(quarantine.DefaultConfig(), st, smtpd.Releaser{Directory: dir, Relay: smtpd.Relay{Relay: rel}}, nil)
			if _, _, err := svc.Release(ctx, op, held[0].ID, "op"); err != nil {
				t.Fatal(err)
			}
			if got := sink.Messages(); len(got) != 1 || got[0].UTF8 != asked {
				t.Fatalf("the customer's server got %+v; want one message, SMTPUTF8 %v", got, asked)
			}
		})
	}
}

// openQuarantine opens a store of cfg (SQLite in a temporary directory)
// with the quarantine.
func openQuarantine(t *testing.T, cfg store.Config) *store.Store {
	t.Helper()
	st, err := store.Open(cfg, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if err := st.MigrateQuarantine(context.Background()); err != nil {
		t.Fatal(err)
	}
	return st
}

// TestReleaseLostAfterTheMessageIsNotReleasedAgain: the customer's server
// read a released message to its end and was lost before its reply (here
// it never answers, and the relay's data timeout ends the wait), so it may
// have taken the message. The release is not undone: put back to held and
// answered "stays held", the message was delivered again by the next
// click, a second copy in the recipient's mailbox. Nor is it answered as
// under way: left releasing, the next release and delete, a digest link
// opened again, were told for half an hour that the message was being
// delivered right now and to try again in a moment, though no node was
// delivering it.
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
	svc := quarantine.New(quarantine.DefaultConfig(), openQuarantine(t, store.DefaultConfig()), smtpd.Releaser{Directory: dir, Relay: smtpd.Relay{Relay: rel}}, nil)
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
	var unconfirmed *quarantine.AbandonedError
	if _, _, err := svc.Release(ctx, op, ids[0], "op"); !errors.As(err, &unconfirmed) || sink.Connections() != 1 {
		t.Fatalf("second release: %v, %d connections to the customer's server; want a release that did not finish and 1", err, sink.Connections())
	}
	if err := svc.Delete(ctx, op, ids[0], "op"); !errors.As(err, &unconfirmed) {
		t.Fatalf("delete: %v, want a release that did not finish", err)
	}
	if it, err := svc.Item(ctx, op, ids[0]); err != nil || it.State != quarantine.StateUnconfirmed {
		t.Fatalf("item %+v (%v), want it unconfirmed", it, err)
	}
}
