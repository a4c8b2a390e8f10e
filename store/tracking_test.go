package store

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mxgrid/mxgrid/admin"
	"github.com/mxgrid/mxgrid/tenant"
	"github.com/mxgrid/mxgrid/tracking"
	"github.com/mxgrid/mxgrid/verdict"
)

// eachDialect runs fn on a fresh SQLite and a fresh PostgreSQL store, each
// migrated by migrate.
func eachDialect(t *testing.T, migrate func(*Store, context.Context) error, fn func(t *testing.T, s *Store)) {
	for _, tc := range dialects {
		t.Run(tc.name, func(t *testing.T) {
			s := tc.open(t)
			if err := migrate(s, context.Background()); err != nil {
				t.Fatal(err)
			}
			fn(t, s)
		})
	}
}

// tenantFixture is n resellers with customersEach customers each.
type tenantFixture struct{ resellers, customers []int64 }

func seedTenants(t testing.TB, s *Store, n, customersEach int) tenantFixture {
	t.Helper()
	ctx := context.Background()
	ts := NewTenants(s)
	a := admin.AuditEntry{Actor: "test", Action: "create", Object: "x"}
	var f tenantFixture
	for i := range n {
		r := tenant.Reseller{Name: fmt.Sprint("R", i), Slug: fmt.Sprint("r", i)}
		if _, err := ts.CreateReseller(ctx, &r, a); err != nil {
			t.Fatal(err)
		}
		f.resellers = append(f.resellers, r.ID)
		for j := range customersEach {
			c := tenant.Customer{ResellerID: r.ID, Name: fmt.Sprint("C", j)}
			if _, err := ts.CreateCustomer(ctx, &c, a); err != nil {
				t.Fatal(err)
			}
			f.customers = append(f.customers, c.ID)
		}
	}
	return f
}

// TestTrackingStore runs the message log's contract on both dialects:
// search by each filter, tenant scope, stable cursor paging, get by id
// within scope, and retention.
func TestTrackingStore(t *testing.T) {
	eachDialect(t, (*Store).MigrateTracking, testTrackingContract)
}

func testTrackingContract(t *testing.T, s *Store) {
	ctx := context.Background()
	now := time.Now().UTC().Truncate(time.Microsecond)
	fx := seedTenants(t, s, 2, 1)
	customers, resellers := fx.customers, fx.resellers
	reseller1, reseller2 := tracking.Scope{ResellerID: resellers[0]}, tracking.Scope{ResellerID: resellers[1]}
	var recs []tracking.Record
	// Reseller 1 (its customer, domain 100) and reseller 2 (its customer,
	// domain 200), 30 records each, one a minute; the same recipient name
	// exists under both, as a re-created domain would.
	for i := range 60 {
		r := tracking.Record{
			Time: now.Add(-time.Duration(i) * time.Minute), Node: "n1", QueueID: fmt.Sprintf("Q%03d", i),
			ClientIP: netip.MustParseAddr("192.0.2.7"), HELO: "mx.sender.example", Sender: "Alice@Sender.example",
			Recipient: "bob@shared.example", Domain: "shared.example", DomainID: 100, CustomerID: customers[0], Size: 1234,
			MessageID: fmt.Sprintf("<m%d@sender.example>", i), Subject: "Invoice ü", Action: "deliver", Reason: verdict.ReasonSpam, Score: 1.5,
			Symbols: []string{"A", "B"}, Status: tracking.StatusDelivered, ReplyCode: 250, Reply: "2.0.0 ok",
			Downstream: "250 2.0.0 queued as ABC", TLSIn: true, Duration: 120 * time.Millisecond,
		}
		if i%2 == 1 {
			r.DomainID, r.CustomerID = 200, customers[1]
		}
		if i%3 == 0 {
			r.Status, r.ReplyCode, r.DeferReason, r.Downstream = tracking.StatusDeferred, 451, tracking.DeferUnreachable, ""
		}
		if i == 7 {
			r.Reference, r.Status = "REF7", tracking.StatusRefused
		}
		recs = append(recs, r)
	}
	if err := s.InsertTracking(ctx, recs); err != nil {
		t.Fatal(err)
	}
	search := func(f tracking.Filter) []tracking.Record {
		t.Helper()
		got, _, err := s.SearchTracking(ctx, f)
		if err != nil {
			t.Fatal(err)
		}
		return got
	}

	all := search(tracking.Filter{Scope: reseller1, Recipient: "BOB@shared.example"})
	if len(all) != 30 {
		t.Fatalf("reseller 1 found %d records by recipient, want its 30", len(all))
	}
	for i, r := range all {
		if r.CustomerID != customers[0] {
			t.Fatalf("reseller 1 sees customer %d's record", r.CustomerID)
		}
		if i > 0 && r.Time.After(all[i-1].Time) {
			t.Fatal("not newest first")
		}
	}
	want := recs[0]
	got := all[0]
	want.ID = got.ID
	if fmt.Sprintf("%+v", got) != fmt.Sprintf("%+v", want) {
		t.Fatalf("round trip:\n got %+v\nwant %+v", got, want)
	}
	if n := len(search(tracking.Filter{Scope: tracking.Scope{Operator: true}})); n != 60 {
		t.Fatalf("operator sees %d, want 60", n)
	}
	for _, tc := range []struct {
		name string
		f    tracking.Filter
		want int
	}{
		{"sender any case", tracking.Filter{Sender: "alice@sender.EXAMPLE"}, 30},
		{"status", tracking.Filter{Status: tracking.StatusDeferred}, 10}, // i%6 == 0
		{"queue id", tracking.Filter{QueueID: "Q004"}, 1},
		{"other tenant's queue id", tracking.Filter{QueueID: "Q003"}, 0},
		{"message id", tracking.Filter{MessageID: "<m8@sender.example>"}, 1},
		{"reference of another tenant", tracking.Filter{Reference: "REF7"}, 0},
		{"other tenant's domain", tracking.Filter{DomainID: 200}, 0},
		{"other tenant's customer", tracking.Filter{CustomerID: customers[1]}, 0},
		{"customer", tracking.Filter{CustomerID: customers[0]}, 30},
		{"time range", tracking.Filter{Since: now.Add(-10 * time.Minute), Until: now.Add(-time.Minute)}, 5},
	} {
		tc.f.Scope = reseller1
		if n := len(search(tc.f)); n != tc.want {
			t.Errorf("%s: %d records, want %d", tc.name, n, tc.want)
		}
	}

	// Since is inclusive and until exclusive to the nanosecond a query
	// names, though records are kept to the microsecond: cut to it, a
	// bound a nanosecond past a record took the record before it
	// (since) and left the record itself out (until).
	for _, tc := range []struct {
		name         string
		since, until time.Time
		want         []string
	}{
		{"exact", now.Add(-4 * time.Minute), now.Add(-2 * time.Minute), []string{"Q004"}},
		{"a nanosecond past", now.Add(-4*time.Minute + time.Nanosecond), now.Add(-2*time.Minute + time.Nanosecond), []string{"Q002"}},
	} {
		var got []string
		for _, r := range search(tracking.Filter{Scope: reseller1, Since: tc.since, Until: tc.until}) {
			got = append(got, r.QueueID)
		}
		if !slices.Equal(got, tc.want) {
			t.Errorf("time range %s: %v, want %v", tc.name, got, tc.want)
		}
	}

	// Pages of 7 walk all 30 once each, in order, even with new records
	// arriving between pages.
	seen := map[int64]bool{}
	var after tracking.Cursor
	pages := 0
	for {
		page, next, err := s.SearchTracking(ctx, tracking.Filter{Scope: reseller1, Limit: 7, After: after})
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range page {
			if seen[r.ID] {
				t.Fatalf("record %d on two pages", r.ID)
			}
			seen[r.ID] = true
		}
		pages++
		if pages == 1 {
			late := recs[0]
			late.ID, late.Time = 0, now.Add(time.Minute) // a new record
			if err := s.InsertTracking(ctx, []tracking.Record{late}); err != nil {
				t.Fatal(err)
			}
		}
		if next.IsZero() {
			break
		}
		after = next
	}
	if len(seen) != 30 || pages != 5 {
		t.Fatalf("paging saw %d records in %d pages, want 30 in 5", len(seen), pages)
	}

	// By id: one's own, never another reseller's.
	if _, err := s.GetTracking(ctx, reseller1, all[0].ID); err != nil {
		t.Fatal(err)
	}
	other := search(tracking.Filter{Scope: reseller2, Limit: 1})
	if len(other) != 1 || other[0].CustomerID != customers[1] {
		t.Fatalf("reseller 2 finds %+v", other)
	}
	if _, err := s.GetTracking(ctx, reseller1, other[0].ID); !errors.Is(err, tenant.ErrNotFound) {
		t.Fatalf("reseller 1 reading reseller 2's record: %v, want not found", err)
	}

	// Retention: records of earlier days go; today's stay.
	old := recs[0]
	old.ID, old.Time = 0, now.AddDate(0, 0, -40)
	if err := s.InsertTracking(ctx, []tracking.Record{old, old}); err != nil {
		t.Fatal(err)
	}
	n, err := s.PruneTracking(ctx, now.AddDate(0, 0, -30))
	if err != nil || n != 2 {
		t.Fatalf("pruned %d, %v; want the 2 old records", n, err)
	}
	if got := search(tracking.Filter{Scope: tracking.Scope{Operator: true}}); len(got) != 61 {
		t.Fatalf("%d records after pruning, want 61", len(got))
	}
}

// TestTrackingWaiting: the deferral view holds a sender's retries until a
// later success of the same recipient and sender (and Message-ID) answers
// them; RCPT-time deferrals (no Message-ID) and the DATA-time ones of the
// same pair are one message.
func TestTrackingWaiting(t *testing.T) {
	eachDialect(t, (*Store).MigrateTracking, func(t *testing.T, s *Store) {
		ctx := context.Background()
		fx := seedTenants(t, s, 1, 1)
		r, c := struct{ ID int64 }{fx.resellers[0]}, struct{ ID int64 }{fx.customers[0]}
		t0 := time.Now().UTC().Add(-time.Hour).Truncate(time.Microsecond)
		rec := func(min int, rcpt, msgID string, st tracking.Status) tracking.Record {
			return tracking.Record{Time: t0.Add(time.Duration(min) * time.Minute), Sender: "a@s.example", Recipient: rcpt,
				MessageID: msgID, DomainID: 7, CustomerID: c.ID, Status: st, DeferReason: tracking.DeferUnreachable, Reply: "451 4.4.1 x"}
		}
		insert := func(recs ...tracking.Record) {
			t.Helper()
			if err := s.InsertTracking(ctx, recs); err != nil {
				t.Fatal(err)
			}
		}
		insert(
			rec(0, "bob@d.example", "", tracking.StatusDeferred),
			rec(5, "bob@d.example", "", tracking.StatusDeferred),
			rec(10, "Carol@d.example", "", tracking.StatusDeferred),
			rec(12, "carol@d.example", "<m1@s>", tracking.StatusDeferred),
			rec(20, "dave@d.example", "", tracking.StatusDeferred),
		)
		waiting := func(sc tracking.Scope) []tracking.Waiting {
			t.Helper()
			w, err := s.WaitingTracking(ctx, tracking.WaitingFilter{Scope: sc, Since: t0.Add(-time.Minute)})
			if err != nil {
				t.Fatal(err)
			}
			return w
		}
		own := tracking.Scope{ResellerID: r.ID}
		w := waiting(own)
		if len(w) != 3 || w[0].Recipient != "bob@d.example" || w[0].Attempts != 2 || !w[0].FirstSeen.Equal(t0) ||
			w[1].MessageID != "<m1@s>" || w[1].Attempts != 2 || w[2].Attempts != 1 {
			t.Fatalf("waiting %+v", w)
		}
		if got := waiting(tracking.Scope{ResellerID: r.ID + 1}); len(got) != 0 {
			t.Fatalf("another reseller sees %+v", got)
		}
		// bob's retry is delivered; carol's message is refused for
		// good (answered too); dave is still waiting.
		insert(rec(30, "BOB@d.example", "<m2@s>", tracking.StatusDelivered), rec(31, "carol@d.example", "<m1@s>", tracking.StatusRefused))
		if w := waiting(own); len(w) != 1 || w[0].Recipient != "dave@d.example" {
			t.Fatalf("after the retries: %+v", w)
		}
		insert(rec(40, "dave@d.example", "<m3@s>", tracking.StatusDelivered))
		if w := waiting(tracking.Scope{Operator: true}); len(w) != 0 {
			t.Fatalf("all answered, still waiting: %+v", w)
		}
	})
}

// TestTrackingWaitingAnsweredByItsOwnDomain: a deferral is answered only
// by a later record of the same domain (by id). A name deleted by one
// tenant and created by another keeps its addresses: the other tenant's
// delivery of the sender's retry took the deferral off the first
// tenant's view, telling it what mail the other's customer received.
func TestTrackingWaitingAnsweredByItsOwnDomain(t *testing.T) {
	eachDialect(t, (*Store).MigrateTracking, func(t *testing.T, s *Store) {
		ctx := context.Background()
		fx := seedTenants(t, s, 2, 2)
		// Reseller 0 holds customers 0 and 1, reseller 1 customers 2 and 3.
		mine, sibling, theirs := fx.customers[0], fx.customers[1], fx.customers[2]
		t0 := time.Now().UTC().Add(-time.Hour).Truncate(time.Microsecond)
		for i, tc := range []struct {
			name string
			// The later record's customer, and whether it is of the
			// deferral's domain or of a domain of the same name made since.
			customer   int64
			sameDomain bool
			st         tracking.Status
			answered   bool
		}{
			{"delivered", mine, true, tracking.StatusDelivered, true},
			{"refused for good", mine, true, tracking.StatusRefused, true},
			{"domain moved to a sibling customer, delivered", sibling, true, tracking.StatusDelivered, true},
			{"name re-created by another tenant, delivered there", theirs, false, tracking.StatusDelivered, false},
			{"name re-created by another tenant, refused there", theirs, false, tracking.StatusRefused, false},
			{"name re-created for a sibling customer, delivered there", sibling, false, tracking.StatusDelivered, false},
		} {
			rcpt, dom := fmt.Sprintf("bob@n%d.example", i), int64(100+2*i)
			later := dom
			if !tc.sameDomain {
				later++
			}
			rec := func(min int, domain, customer int64, st tracking.Status) tracking.Record {
				return tracking.Record{Time: t0.Add(time.Duration(min) * time.Minute), Sender: "a@s.example", Recipient: rcpt,
					DomainID: domain, CustomerID: customer, Status: st, DeferReason: tracking.DeferUnreachable}
			}
			if err := s.InsertTracking(ctx, []tracking.Record{rec(0, dom, mine, tracking.StatusDeferred), rec(30, later, tc.customer, tc.st)}); err != nil {
				t.Fatal(err)
			}
			for _, sc := range []tracking.Scope{{ResellerID: fx.resellers[0]}, {Operator: true}} {
				w, err := s.WaitingTracking(ctx, tracking.WaitingFilter{Scope: sc, CustomerID: mine, Since: t0.Add(-time.Minute)})
				if err != nil {
					t.Fatal(err)
				}
				waiting := slices.ContainsFunc(w, func(x tracking.Waiting) bool { return x.Recipient == rcpt })
				if waiting == tc.answered {
					t.Errorf("%s, seen by %+v: still waiting %t, want %t", tc.name, sc, waiting, !tc.answered)
				}
			}
		}
	})
}

// TestTrackingWaitingFloodHidesNoDomain: the deferral view reads at most
// tracking.MaxWaitingRows deferrals, and it read the oldest: deferrals
// one domain piled up early in the window (its own domain routed to a
// dead server, or a greylisting one, costs a tenant nothing) took every
// place, so the other tenants' waiting mail left the operator's view and
// mxgrid_tracking_waiting_messages, and a reseller's flooded domain hid
// its other customers' deferrals and its own newest ones.
func TestTrackingWaitingFloodHidesNoDomain(t *testing.T) {
	eachDialect(t, (*Store).MigrateTracking, func(t *testing.T, s *Store) {
		// What the view reads of a flood is tested here, not how fast:
		// under -race, SQLite took longer than the store's 5 s to insert
		// the 20,000 rows and to read them.
		s.Timeout = time.Minute
		ctx := context.Background()
		fx := seedTenants(t, s, 2, 2)
		// The flood is reseller 0's (customer 0); customer 1 is its
		// sibling, customer 2 another reseller's.
		flooder, sibling, other := fx.customers[0], fx.customers[1], fx.customers[2]
		t0 := time.Now().UTC().Add(-2 * time.Hour).Truncate(time.Microsecond)
		rec := func(at time.Time, sender, rcpt string, domain, customer int64) tracking.Record {
			return tracking.Record{Time: at, Sender: sender, Recipient: rcpt, DomainID: domain, CustomerID: customer,
				Status: tracking.StatusDeferred, DeferReason: tracking.DeferUnreachable}
		}
		flood := make([]tracking.Record, 0, tracking.MaxWaitingRows)
		for i := range tracking.MaxWaitingRows {
			flood = append(flood, rec(t0.Add(time.Duration(i)*time.Millisecond), fmt.Sprintf("s%d@x.example", i), "a@flood.example", 1, flooder))
		}
		if err := s.InsertTracking(ctx, flood); err != nil {
			t.Fatal(err)
		}
		if s.Dialect == Postgres {
			// As autovacuum does a partition this busy: without
			// statistics the planner looks answers up through the
			// domain index, once per deferral, over 20,000 rows of
			// one domain (half a minute).
			if _, err := s.DB.ExecContext(ctx, "ANALYZE message_log"); err != nil {
				t.Fatal(err)
			}
		}
		newest := rec(t0.Add(time.Hour+time.Minute), "last@x.example", "a@flood.example", 1, flooder)
		if err := s.InsertTracking(ctx, []tracking.Record{
			rec(t0.Add(time.Hour), "p@partner.example", "bob@sibling.example", 2, sibling),
			rec(t0.Add(time.Hour), "p@partner.example", "bob@other.example", 3, other),
			newest,
		}); err != nil {
			t.Fatal(err)
		}
		for _, tc := range []struct {
			name  string
			scope tracking.Scope
			want  []string
		}{
			{"operator", tracking.Scope{Operator: true}, []string{"bob@sibling.example", "bob@other.example", "last@x.example"}},
			{"the flooding reseller", tracking.Scope{ResellerID: fx.resellers[0]}, []string{"bob@sibling.example", "last@x.example"}},
			{"the other reseller", tracking.Scope{ResellerID: fx.resellers[1]}, []string{"bob@other.example"}},
		} {
			w, err := s.WaitingTracking(ctx, tracking.WaitingFilter{Scope: tc.scope, Since: t0.Add(-time.Minute)})
			if err != nil {
				t.Fatal(err)
			}
			if len(w) > tracking.MaxWaitingRows {
				t.Errorf("%s: %d messages, past the bound of %d rows", tc.name, len(w), tracking.MaxWaitingRows)
			}
			for _, want := range tc.want {
				if !slices.ContainsFunc(w, func(x tracking.Waiting) bool { return x.Recipient == want || x.Sender == want }) {
					t.Errorf("%s: %s's deferral is not in the view of %d messages", tc.name, want, len(w))
				}
			}
			if !slices.IsSortedFunc(w, func(a, b tracking.Waiting) int { return a.FirstSeen.Compare(b.FirstSeen) }) {
				t.Errorf("%s: not oldest first", tc.name)
			}
		}
	})
}

// TestOutcomeSeries: hourly and daily buckets per domain, customer,
// reseller and for all, on both dialects; a reseller's sum leaves the
// other reseller's domains out.
func TestOutcomeSeries(t *testing.T) {
	eachDialect(t, (*Store).MigrateDomainStats, func(t *testing.T, s *Store) {
		ctx := context.Background()
		fx := seedTenants(t, s, 2, 1)
		custs, ress := fx.customers, fx.resellers
		var doms [2]int64
		for i, c := range custs {
			d := tenant.DomainRecord{CustomerID: c, Name: fmt.Sprintf("d%d.example", i), Route: "192.0.2.1:25", TLS: "none"}
			if _, err := NewTenants(s).CreateDomain(ctx, &d, admin.AuditEntry{Actor: "test", Action: "create", Object: "x"}); err != nil {
				t.Fatal(err)
			}
			doms[i] = d.ID
		}
		day := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
		if err := s.AddDomainStats(ctx, []DomainHour{
			{DomainID: doms[0], Hour: day.Add(1 * time.Hour), Counts: admin.Counts{Accepted: 3, Rejected: 1}},
			{DomainID: doms[0], Hour: day.Add(5 * time.Hour), Counts: admin.Counts{Accepted: 2, Virus: 1}},
			{DomainID: doms[0], Hour: day.Add(26 * time.Hour), Counts: admin.Counts{Tagged: 4}},
			{DomainID: doms[1], Hour: day.Add(1 * time.Hour), Counts: admin.Counts{Accepted: 100}},
		}); err != nil {
			t.Fatal(err)
		}
		series := func(sc admin.OutcomeScope, step time.Duration) []admin.Bucket {
			t.Helper()
			b, err := s.OutcomeSeries(ctx, sc, day, step)
			if err != nil {
				t.Fatal(err)
			}
			return b
		}
		hourly := series(admin.OutcomeScope{DomainID: doms[0]}, time.Hour)
		if len(hourly) != 3 || !hourly[0].Start.Equal(day.Add(time.Hour)) || hourly[0].Accepted != 3 || hourly[0].Rejected != 1 || hourly[2].Tagged != 4 {
			t.Fatalf("hourly %+v", hourly)
		}
		for _, sc := range []admin.OutcomeScope{{CustomerID: custs[0]}, {ResellerID: ress[0]}} {
			daily := series(sc, 24*time.Hour)
			if len(daily) != 2 || !daily[0].Start.Equal(day) || daily[0].Accepted != 5 || daily[0].Virus != 1 || daily[1].Tagged != 4 {
				t.Fatalf("%+v daily %+v", sc, daily)
			}
		}
		if all := series(admin.OutcomeScope{All: true}, 24*time.Hour); len(all) != 2 || all[0].Accepted != 105 {
			t.Fatalf("all %+v", all)
		}
		if none := series(admin.OutcomeScope{}, time.Hour); len(none) != 0 {
			t.Fatalf("empty scope sees %+v", none)
		}
	})
}

// TestTrackingSearchUsesCaselessIndexes: on SQLite a search by recipient
// or sender is served by its NOCASE index (migration 2), not a scan, and
// finds the record whatever the case of either side.
func TestTrackingSearchUsesCaselessIndexes(t *testing.T) {
	s := openSQLite(t)
	ctx := context.Background()
	if err := s.MigrateTracking(ctx); err != nil {
		t.Fatal(err)
	}
	rec := tracking.Record{Time: time.Now(), Node: "n1", QueueID: "Q1", Sender: "Alice@Example.NET", Recipient: "Bob@Example.ORG",
		Domain: "example.org", Status: tracking.StatusDelivered, ReplyCode: 250}
	if err := s.InsertTracking(ctx, []tracking.Record{rec}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		f     tracking.Filter
		index string
	}{
		{tracking.Filter{Recipient: "bob@example.org"}, "message_log_rcpt"},
		{tracking.Filter{Sender: "ALICE@example.net"}, "message_log_sender"},
	} {
		tc.f.Scope = tracking.Scope{Operator: true}
		got, _, err := s.SearchTracking(ctx, tc.f)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 1 || got[0].QueueID != "Q1" {
			t.Errorf("%+v found %+v", tc.f, got)
		}
		col, arg := "recipient", tc.f.Recipient
		if tc.f.Sender != "" {
			col, arg = "sender", tc.f.Sender
		}
		if p := queryPlan(t, s, `SELECT id FROM message_log WHERE `+s.caselessEquals(col, "?")+` ORDER BY at_us DESC, id DESC`, arg); !strings.Contains(p, "INDEX "+tc.index+" (") {
			t.Errorf("search by %s: plan %q does not use %s", col, p, tc.index)
		}
	}
	// The deferral view asks, per deferral, for a later answer to the
	// same recipient: through the index, not a scan of the log.
	plan := queryPlan(t, s, s.waitingSQL([]string{"d.at_us >= $1", "d.status = $2"}, 3), 0, "deferred", 10)
	if !strings.Contains(plan, "SEARCH s USING INDEX message_log_rcpt (") && !strings.Contains(plan, "SEARCH s USING INDEX message_log_sender (") {
		t.Errorf("deferral view: plan %q does not look later answers up by recipient or sender", plan)
	}
}

func queryPlan(t *testing.T, s *Store, q string, args ...any) string {
	t.Helper()
	rows, err := s.DB.QueryContext(context.Background(), "EXPLAIN QUERY PLAN "+q, args...)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var plan []string
	for rows.Next() {
		var id, parent, unused int
		var detail string
		if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
			t.Fatal(err)
		}
		plan = append(plan, detail)
	}
	return strings.Join(plan, "; ")
}

// TestTrackingBatchWhoseCommitReplyIsLostIsStoredOnce: on PostgreSQL a
// batch's commit can take effect while its reply never reaches the node
// (the connection lost after the COMMIT went out, the store's timeout
// passing meanwhile). Tracking's queue keeps a batch that failed and
// writes it again: every record of it (up to tracking.batch_size, 2,000)
// was in the log twice, two "delivered" for one message. The batch
// written again is now known stored, and stored once.
func TestTrackingBatchWhoseCommitReplyIsLostIsStoredOnce(t *testing.T) {
	s, proxy := openPostgresReplyCutter(t)
	ctx := context.Background()
	if err := s.MigrateTracking(ctx); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	recs := []tracking.Record{
		{Time: now, QueueID: "Q1", Recipient: "a@b.example", Status: tracking.StatusDelivered},
		{Time: now, QueueID: "Q2", Recipient: "c@b.example", Status: tracking.StatusDelivered},
	}
	writeLosingCommitReply(t, proxy, "message_log", func() error { return s.InsertTracking(ctx, recs) })
	for _, q := range []string{"Q1", "Q2"} {
		var n int
		if err := s.DB.QueryRowContext(ctx, `SELECT COUNT(*) FROM message_log WHERE queue_id = $1`, q).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n != 1 {
			t.Errorf("%s has %d records, want 1", q, n)
		}
	}
}
