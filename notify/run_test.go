package notify

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/mxgrid/mxgrid/internal/metrictest"
	"github.com/mxgrid/mxgrid/internal/smtptest"
	"github.com/mxgrid/mxgrid/quarantine"
	"github.com/mxgrid/mxgrid/store"
)

// brandedStore is the real store's digest records, with every customer's
// brand "R" (the tenant tables are not needed here).
type brandedStore struct{ *store.Store }

func (brandedStore) BrandOf(context.Context, int64) (string, error) { return "R", nil }

// TestDigestRunsAreBounded: a catch-all domain whose quarantine holds spam
// for thirty made-up addresses gets notify.max_per_domain digests a
// period, not thirty, and the rest are counted; another domain still gets
// its own. A run keeps at most maxRunItems held items in memory, and the
// recipients it left go in the next check's run, not never. Before, every
// recipient with held mail got a digest every period (a flood into the
// customer's catch-all mailbox), and the leader held every held item of
// every quarantine in memory at once.
func TestDigestRunsAreBounded(t *testing.T) {
	ctx := context.Background()
	st := notifyStore(t)
	smarthost := smtptest.StartSink(t)
	now := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	var held items
	add := func(domain string, id int64, n int) {
		for i := range n {
			held = append(held, quarantine.Item{ID: id + int64(i), Time: now, Domain: domain, DomainID: id, CustomerID: 3,
				Recipients: []string{fmt.Sprintf("r%02d@%s", i, domain)}, Sender: "s@x.example", Subject: "spam"})
		}
	}
	add("catchall.example", 100, 30) // newest first, as List pages
	add("b.example", 10, 2)
	reg := prometheus.NewRegistry()
	d, err := New(Config{Smarthost: smarthost.Addr, SmarthostTLS: TLSNone, DigestInterval: 24 * time.Hour, CheckInterval: 10 * time.Minute,
		LinkTTL: 24 * time.Hour, MaxPerDomain: 10}, Options{
		Store: brandedStore{st}, Items: held, BaseURL: "https://mx.example", Hostname: "mx.example", Holder: "n1",
		Domains: domains{
			"catchall.example": {Name: "catchall.example", ID: 100, CustomerID: 3},
			"b.example":        {Name: "b.example", ID: 10, CustomerID: 3},
		},
		Now: func() time.Time { return now }, Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	d.maxRunItems = 8
	for i, want := range []int{8, 4, 0} {
		if n, err := d.RunOnce(ctx); err != nil || n != want {
			t.Fatalf("run %d sent %d digests (%v), want %d", i+1, n, err, want)
		}
	}
	perDomain := map[string]int{}
	to := map[string]bool{}
	for _, m := range smarthost.Messages() {
		for _, r := range m.Rcpts {
			if to[r] {
				t.Errorf("%s got two digests in one period", r)
			}
			to[r] = true
			perDomain[r[strings.IndexByte(r, '@')+1:]]++
		}
	}
	if perDomain["catchall.example"] != 10 || perDomain["b.example"] != 2 {
		t.Errorf("digests per domain %v, want catchall.example 10, b.example 2", perDomain)
	}
	if got := metrictest.Gauge(t, reg, "mxgrid_notify_capped_messages", ""); got != 20 {
		t.Errorf("mxgrid_notify_capped_messages = %v, want 20", got)
	}
}

// notifyStore is a SQLite store with the notify schema, closed at the
// end of the test.
func notifyStore(t *testing.T) *store.Store {
	t.Helper()
	st, err := store.Open(store.DefaultConfig(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if err := st.MigrateNotify(context.Background()); err != nil {
		t.Fatal(err)
	}
	return st
}

// digestsFor makes a Digests whose only held mail is one message to each
// of rcpts, sent through smarthost, and the registry its metrics are on.
func digestsFor(t *testing.T, smarthost string, rcpts ...string) (*Digests, *prometheus.Registry) {
	t.Helper()
	st := notifyStore(t)
	now := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	var held items
	for i, r := range rcpts {
		held = append(held, quarantine.Item{ID: int64(i + 1), Time: now, Domain: "b.example", DomainID: 10, CustomerID: 3,
			Recipients: []string{r}, Sender: "s@x.example", Subject: "spam"})
	}
	reg := prometheus.NewRegistry()
	d, err := New(Config{Smarthost: smarthost, SmarthostTLS: TLSNone, DigestInterval: 24 * time.Hour, CheckInterval: 10 * time.Minute,
		LinkTTL: 24 * time.Hour, MaxPerDomain: 10}, Options{
		Store: brandedStore{st}, Items: held, BaseURL: "https://mx.example", Hostname: "mx.example", Holder: "n1",
		Domains: domains{"b.example": {Name: "b.example", ID: 10, CustomerID: 3}},
		Now:     func() time.Time { return now }, Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	return d, reg
}

// TestDigestNotTakenIsSentAtTheNextCheck: a digest is recorded before it
// is sent, so that it goes once, but one the smarthost cannot have taken
// (unreachable, or a 4xx) was lost for the whole period (a day): a
// smarthost restarting at the leader's check cost every recipient that
// day's digest. It is now forgotten again and sent at a later check. One
// refused with 5xx is not sent again that period, and none is ever sent
// twice.
func TestDigestNotTakenIsSentAtTheNextCheck(t *testing.T) {
	ctx := context.Background()
	deferred := func(t *testing.T, reg *prometheus.Registry) float64 {
		return metrictest.Counter(t, reg, "mxgrid_notify_digests_total", "deferred")
	}
	t.Run("4xx at the end of data", func(t *testing.T) {
		smarthost := smtptest.StartSink(t)
		d, reg := digestsFor(t, smarthost.Addr, "a@b.example")
		smarthost.RejectData(&smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "try later"})
		if n, err := d.RunOnce(ctx); err != nil || n != 0 || deferred(t, reg) != 1 {
			t.Fatalf("run against a 451: sent %d (%v), deferred %v; want 0, 1", n, err, deferred(t, reg))
		}
		smarthost.RejectData(nil)
		if n, err := d.RunOnce(ctx); err != nil || n != 1 || len(smarthost.Messages()) != 1 {
			t.Fatalf("next check: sent %d (%v), smarthost has %d; want 1 each", n, err, len(smarthost.Messages()))
		}
		if n, err := d.RunOnce(ctx); err != nil || n != 0 {
			t.Fatalf("check after it was taken: sent %d (%v), want 0", n, err)
		}
	})
	t.Run("smarthost down", func(t *testing.T) {
		smarthost := smtptest.StartSink(t)
		d, reg := digestsFor(t, smarthost.Addr, "a@b.example", "c@b.example")
		smarthost.Stop()
		if n, err := d.RunOnce(ctx); err != nil || n != 0 {
			t.Fatalf("run while down: sent %d (%v), want 0", n, err)
		}
		// The run stops at the first: the second would wait out the same timeout.
		if got := deferred(t, reg); got != 1 {
			t.Errorf("deferred %v while the smarthost was down, want 1", got)
		}
		smarthost.Restart(t)
		if n, err := d.RunOnce(ctx); err != nil || n != 2 {
			t.Fatalf("run after the restart: sent %d (%v), want 2", n, err)
		}
	})
	t.Run("5xx", func(t *testing.T) {
		smarthost := smtptest.StartSink(t)
		d, reg := digestsFor(t, smarthost.Addr, "a@b.example")
		smarthost.RejectRcpt("a@b.example", &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "no such user"})
		for range 2 {
			if n, err := d.RunOnce(ctx); err != nil || n != 0 {
				t.Fatalf("run against a 550: sent %d (%v), want 0", n, err)
			}
		}
		if got := metrictest.Counter(t, reg, "mxgrid_notify_digests_total", "failed"); got != 1 || deferred(t, reg) != 0 {
			t.Errorf("failed %v, deferred %v; want the refusal counted once and not tried again this period", got, deferred(t, reg))
		}
	})
}

// TestDigestToAnSMTPUTF8Mailbox: mail held for a non-ASCII mailbox (from
// an SMTPUTF8 transaction) got its digest sent without SMTPUTF8, so the
// smarthost refused the address (or would have passed on a UTF-8 To field
// a server may not take). It is sent with SMTPUTF8 now.
func TestDigestToAnSMTPUTF8Mailbox(t *testing.T) {
	smarthost := smtptest.StartSink(t)
	d, _ := digestsFor(t, smarthost.Addr, "jürgen@b.example")
	if n, err := d.RunOnce(context.Background()); err != nil || n != 1 {
		t.Fatalf("sent %d (%v), want 1", n, err)
	}
	if m := smarthost.Messages(); len(m) != 1 || len(m[0].Rcpts) != 1 || m[0].Rcpts[0] != "jürgen@b.example" || !m[0].UTF8 {
		t.Fatalf("smarthost got %+v, want one digest to jürgen@b.example with SMTPUTF8", m)
	}
}

// stopAfterMark is the real store, with the node told to stop (ctx
// cancelled) as a digest's record is written, before the digest is sent.
type stopAfterMark struct {
	brandedStore
	stop context.CancelFunc
}

func (s stopAfterMark) MarkDigest(ctx context.Context, recipient, run string, now time.Time) (bool, error) {
	first, err := s.brandedStore.MarkDigest(ctx, recipient, run, now)
	s.stop()
	return first, err
}

// TestDigestCutByShutdownIsSentLater: a digest recorded and then not
// sent because the node was stopping (its dial cancelled) is forgotten
// again, so the next leader's check sends it. Forgotten with the stopping
// run's context, the record stayed, and the recipient got no digest that
// period.
func TestDigestCutByShutdownIsSentLater(t *testing.T) {
	smarthost := smtptest.StartSink(t)
	d, _ := digestsFor(t, smarthost.Addr, "a@b.example")
	ctx, cancel := context.WithCancel(context.Background())
	d.store = stopAfterMark{brandedStore: d.store.(brandedStore), stop: cancel}
	if n, _ := d.RunOnce(ctx); n != 0 {
		t.Fatalf("the stopping run sent %d digests", n)
	}
	d.store = d.store.(stopAfterMark).brandedStore
	if n, err := d.RunOnce(context.Background()); err != nil || n != 1 || len(smarthost.Messages()) != 1 {
		t.Fatalf("next check: sent %d (%v), smarthost has %d; want 1 each", n, err, len(smarthost.Messages()))
	}
}

// TestOptedOutRecipientsTakeNoDigestPlace: recipients who opted out get no
// digest, and so take none of their domain's max_per_domain digests nor of
// a run's held items. Counted before the opt-out was read, ten colleagues
// who opted out, with mail held newer than hers, used up their domain's
// ten digests every period, and a recipient who wanted hers never got one.
func TestOptedOutRecipientsTakeNoDigestPlace(t *testing.T) {
	ctx := context.Background()
	var rcpts []string
	for i := range 10 {
		rcpts = append(rcpts, fmt.Sprintf("out%d@b.example", i))
	}
	for _, tc := range []struct {
		name     string
		runItems int
	}{{"domain's cap", maxRunItems}, {"run's items", 10}} {
		t.Run(tc.name, func(t *testing.T) {
			smarthost := smtptest.StartSink(t)
			d, _ := digestsFor(t, smarthost.Addr, append(rcpts, "wants@b.example")...)
			d.maxRunItems = tc.runItems
			for _, r := range rcpts {
				if err := d.store.(brandedStore).OptOut(ctx, 10, 3, r, d.now()); err != nil {
					t.Fatal(err)
				}
			}
			for range 2 {
				if _, err := d.RunOnce(ctx); err != nil {
					t.Fatal(err)
				}
			}
			if m := smarthost.Messages(); len(m) != 1 || len(m[0].Rcpts) != 1 || m[0].Rcpts[0] != "wants@b.example" {
				t.Fatalf("smarthost got %+v, want one digest, to wants@b.example", m)
			}
		})
	}
}

// brandFails is the real store, whose read of the brand fails while down.
type brandFails struct {
	brandedStore
	down *bool
}

func (s brandFails) BrandOf(ctx context.Context, customerID int64) (string, error) {
	if *s.down {
		return "", errors.New("store: brand: connection reset")
	}
	return s.brandedStore.BrandOf(ctx, customerID)
}

// TestDigestWhoseBrandCannotBeReadIsSentLater: a digest recorded and then
// not sent because the store failed to give its brand (nothing reached the
// smarthost) is forgotten again and sent at the next check. It was left
// recorded, and counted failed as a digest the smarthost refused: a blip
// of the store during the run cost its recipients that period's digest.
func TestDigestWhoseBrandCannotBeReadIsSentLater(t *testing.T) {
	smarthost := smtptest.StartSink(t)
	d, reg := digestsFor(t, smarthost.Addr, "a@b.example")
	down := true
	d.store = brandFails{brandedStore: d.store.(brandedStore), down: &down}
	if n, _ := d.RunOnce(context.Background()); n != 0 {
		t.Fatalf("the run without a brand sent %d digests", n)
	}
	if got := metrictest.Counter(t, reg, "mxgrid_notify_digests_total", "failed"); got != 0 {
		t.Errorf("failed %v: nothing reached the smarthost", got)
	}
	down = false
	if n, err := d.RunOnce(context.Background()); err != nil || n != 1 || len(smarthost.Messages()) != 1 {
		t.Fatalf("next check: sent %d (%v), smarthost has %d; want 1 each", n, err, len(smarthost.Messages()))
	}
}

// TestDigestOfARunCutShortSaysThereIsMore: a run stops keeping held items
// at maxRunItems, and the recipients it kept some of may have older ones
// past that point. Their digests said "1 message(s)" for a recipient with
// two held, as if the list were whole; they now say there are more.
func TestDigestOfARunCutShortSaysThereIsMore(t *testing.T) {
	smarthost := smtptest.StartSink(t)
	// Newest first: a's second message comes after the run is cut.
	d, _ := digestsFor(t, smarthost.Addr, "a@b.example", "c@b.example", "e@b.example", "a@b.example")
	d.maxRunItems = 3
	if n, err := d.RunOnce(context.Background()); err != nil || n != 3 {
		t.Fatalf("sent %d digests (%v), want 3", n, err)
	}
	for _, m := range smarthost.Messages() {
		hdr, body := readDigest(t, m.Data)
		more := strings.Contains(hdr.Get("Subject"), "more than") && strings.Contains(body, "your provider can show you the others")
		if want := m.Rcpts[0] == "a@b.example"; more != want {
			t.Errorf("%s's digest (%q) says there are more: %v, want %v", m.Rcpts[0], hdr.Get("Subject"), more, want)
		}
	}
}
