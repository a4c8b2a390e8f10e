package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mxgrid/mxgrid/admin"
	"github.com/mxgrid/mxgrid/internal/testenv"
	"github.com/mxgrid/mxgrid/quarantine"
	"github.com/mxgrid/mxgrid/tenant"
	"github.com/mxgrid/mxgrid/tracking"
)

// TestQuarantineStore: the cap holds in the inserting statement, lists and
// reads are scoped, a release is claimed once however many try at once, a
// failed delivery puts the item back, delete and prune.
func TestQuarantineStore(t *testing.T) {
	eachDialect(t, (*Store).MigrateQuarantine, func(t *testing.T, s *Store) {
		ctx := context.Background()
		fx := seedTenants(t, s, 2, 1)
		own, other := tracking.Scope{ResellerID: fx.resellers[0]}, tracking.Scope{ResellerID: fx.resellers[1]}
		now := time.Now().UTC().Truncate(time.Microsecond)
		put := func(size int64, at time.Time) (int64, error) {
			ids, err := s.PutQuarantine(ctx, []quarantine.Item{{Time: at, QueueID: "Q", Domain: "a.example", DomainID: 5, CustomerID: fx.customers[0],
				Sender: "x@s.example", Recipients: []string{"bob@a.example", "ann@a.example"}, Subject: "Invoice", Size: size,
				Score: 7, Symbols: []string{"MODEL_SPAM"}, State: quarantine.StateHeld}}, []byte("gz"), size, 1000)
			if err != nil {
				return 0, err
			}
			return ids[0], nil
		}
		a, err := put(600, now)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := put(500, now); !errors.Is(err, quarantine.ErrOverCap) {
			t.Fatalf("over the cap: %v", err)
		}
		b, err := put(400, now.Add(-30*24*time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		list, err := s.ListQuarantine(ctx, quarantine.Filter{Scope: own, Search: "BOB@", Limit: 10})
		if err != nil || len(list) != 2 || list[0].ID != b || list[1].Recipients[1] != "ann@a.example" {
			t.Fatalf("list: %+v %v", list, err)
		}
		if l, _ := s.ListQuarantine(ctx, quarantine.Filter{Scope: other, Limit: 10}); len(l) != 0 {
			t.Fatalf("another reseller lists %+v", l)
		}
		if _, _, err := s.GetQuarantine(ctx, other, a); !errors.Is(err, tenant.ErrNotFound) {
			t.Fatalf("another reseller reads: %v", err)
		}
		if _, _, err := s.ClaimRelease(ctx, other, a, "x", now); !errors.Is(err, tenant.ErrNotFound) {
			t.Fatalf("another reseller releases: %v", err)
		}
		if err := s.DeleteQuarantine(ctx, other, a); !errors.Is(err, tenant.ErrNotFound) {
			t.Fatalf("another reseller deletes: %v", err)
		}

		// Ten releases at once: one claim.
		var wins atomic.Int32
		var wg sync.WaitGroup
		for range 10 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, body, err := s.ClaimRelease(ctx, own, a, "op", now)
				switch {
				case err == nil && string(body) == "gz":
					wins.Add(1)
				case !errors.Is(err, quarantine.ErrNotHeld):
					t.Errorf("claim: %v", err)
				}
			}()
		}
		wg.Wait()
		if wins.Load() != 1 {
			t.Fatalf("%d claims won, want 1", wins.Load())
		}
		// The delivery failed: back to held, and claimable again.
		if err := s.FinishRelease(ctx, quarantine.Item{ID: a, ReleasedBy: "op", ReleasedAt: now}, false, now); err != nil {
			t.Fatal(err)
		}
		claim, _, err := s.ClaimRelease(ctx, own, a, "op", now)
		if err != nil {
			t.Fatalf("claim after a failed delivery: %v", err)
		}
		if err := s.FinishRelease(ctx, claim, true, now); err != nil {
			t.Fatal(err)
		}
		if it, body, err := s.GetQuarantine(ctx, own, a); err != nil || it.State != quarantine.StateReleased || body != nil || it.ReleasedBy != "op" {
			t.Fatalf("after release: %+v %q %v", it, body, err)
		}
		if _, _, err := s.ClaimRelease(ctx, own, a, "op", now); !errors.Is(err, quarantine.ErrNotHeld) {
			t.Fatalf("second release: %v", err)
		}
		// Released bytes no longer count against the cap.
		if _, err := put(500, now); err != nil {
			t.Fatalf("after a release the cap has room: %v", err)
		}
		if n, err := s.PruneQuarantine(ctx, now.Add(-14*24*time.Hour), nil); err != nil || n != 1 {
			t.Fatalf("prune: %d %v", n, err)
		}
		if err := s.DeleteQuarantine(ctx, own, b); !errors.Is(err, tenant.ErrNotFound) {
			t.Fatalf("delete of a pruned item: %v", err)
		}
	})
}

// TestQuarantineMigrationHoldsEachRecipientApart: a message held for
// several recipients at once before messages were held per recipient (a
// store upgraded, or an older backup restored) is still held for each
// recipient apart after the migration, so one recipient's release (a
// digest link) delivers to that recipient alone. Rows no longer held keep
// their history.
func TestQuarantineMigrationHoldsEachRecipientApart(t *testing.T) {
	firstVersion := func(s *Store, ctx context.Context) error {
		return s.Migrate(ctx, quarantineComponent, quarantineMigrations[:1])
	}
	eachDialect(t, firstVersion, func(t *testing.T, s *Store) {
		ctx := context.Background()
		op := tracking.Scope{Operator: true}
		now := time.Now().UTC().Truncate(time.Microsecond)
		type row struct {
			state      quarantine.State
			recipients string
		}
		cases := []struct {
			name  string
			state quarantine.State
			old   []string
			want  []row // the original row (same id) first
		}{
			{"held for three", quarantine.StateHeld, []string{"ann@a.example", "bob@a.example", "cy@a.example"},
				[]row{{quarantine.StateHeld, "ann@a.example"}, {quarantine.StateHeld, "bob@a.example"}, {quarantine.StateHeld, "cy@a.example"}}},
			{"held for one", quarantine.StateHeld, []string{"dan@a.example"}, []row{{quarantine.StateHeld, "dan@a.example"}}},
			{"released to two", quarantine.StateReleased, []string{"eve@a.example", "fay@a.example"},
				[]row{{quarantine.StateReleased, "eve@a.example fay@a.example"}}},
			// SQL cannot tell a space inside quotes from a separator.
			{"held for a quoted name and one", quarantine.StateHeld, []string{`"gil lee"@a.example`, "hal@a.example"},
				[]row{{quarantine.StateHeld, `"gil lee"@a.example hal@a.example`}}},
		}
		first := map[string]int64{}
		for _, tc := range cases {
			var body []byte
			if tc.state == quarantine.StateHeld {
				body = []byte("gz " + tc.name)
			}
			first[tc.name] = putOwnBody(t, s, quarantine.Item{Time: now, QueueID: tc.name, Domain: "a.example", DomainID: 5, CustomerID: 3,
				Sender: "x@s.example", Recipients: tc.old, Subject: "Invoice", Size: 10, Score: 7,
				Symbols: []string{"MODEL_SPAM"}, State: tc.state}, body)
		}
		if err := s.MigrateQuarantine(ctx); err != nil {
			t.Fatal(err)
		}
		list, err := s.ListQuarantine(ctx, quarantine.Filter{Scope: op, Limit: 100})
		if err != nil {
			t.Fatal(err)
		}
		slices.Reverse(list) // oldest first: each original row before its copies
		for _, tc := range cases {
			var got []row
			for _, it := range list {
				if it.QueueID != tc.name {
					continue
				}
				if len(got) == 0 && it.ID != first[tc.name] {
					t.Errorf("%s: the first row is %d, want the original %d", tc.name, it.ID, first[tc.name])
				}
				_, body, err := s.GetQuarantine(ctx, op, it.ID)
				if err != nil || (it.State == quarantine.StateHeld) != (string(body) == "gz "+tc.name) ||
					it.Sender != "x@s.example" || it.Subject != "Invoice" || it.Size != 10 || !it.Time.Equal(now) {
					t.Errorf("%s: row %d %+v, body %q, %v", tc.name, it.ID, it, body, err)
				}
				got = append(got, row{it.State, strings.Join(it.Recipients, " ")})
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("%s: rows %v, want %v", tc.name, got, tc.want)
			}
		}
	})
}

// putOwnBody inserts a row as quarantine versions 1 and 2 wrote them, the
// body in the row itself: rows held before bodies were shared, or written
// by a node of an older version during a rolling upgrade.
func putOwnBody(t *testing.T, s *Store, it quarantine.Item, body []byte) int64 {
	t.Helper()
	var id int64
	if err := s.DB.QueryRow(`INSERT INTO quarantine (at_us, queue_id, domain, domain_id, customer_id, sender, recipients,
		subject, message_id, size, score, symbols, state, released_by, released_us, body)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, '', 0, $14) RETURNING id`,
		it.Time.UnixMicro(), it.QueueID, it.Domain, it.DomainID, it.CustomerID, it.Sender, strings.Join(it.Recipients, " "),
		it.Subject, it.MessageID, it.Size, it.Score, strings.Join(it.Symbols, " "), string(it.State), body).Scan(&id); err != nil {
		t.Fatal(err)
	}
	return id
}

// TestQuarantineRecipientsKeepQuotedSpaces: a recipient whose quoted local
// part holds a space (smtpd takes `"bob smith"@example.org`) is read back
// whole. It was read as two addresses, `"bob` and `smith"@a.example`: its
// digest went to neither and a release delivered to neither.
func TestQuarantineRecipientsKeepQuotedSpaces(t *testing.T) {
	eachDialect(t, (*Store).MigrateQuarantine, func(t *testing.T, s *Store) {
		ctx := context.Background()
		for _, rcpts := range [][]string{
			{`"bob smith"@a.example`},
			{`"bob smith"@a.example`, "ann@a.example"},
			{`"a\" b"@a.example`, `"c d\\"@a.example`},
			{"ann@a.example", "bob@a.example"},
		} {
			ids, err := s.PutQuarantine(ctx, []quarantine.Item{{Time: time.Now(), Domain: "a.example", DomainID: 5, CustomerID: 3,
				Sender: "x@s.example", Recipients: rcpts, State: quarantine.StateHeld}}, []byte("gz"), 0, 1<<30)
			if err != nil {
				t.Fatal(err)
			}
			it, _, err := s.GetQuarantine(ctx, tracking.Scope{Operator: true}, ids[0])
			if err != nil || !slices.Equal(it.Recipients, rcpts) {
				t.Errorf("held for %q, read back as %q, %v", rcpts, it.Recipients, err)
			}
		}
	})
}

// TestQuarantineSearchText: the search finds a subject by the very text it
// holds, non-ASCII letters in either case included, and `%`, `_` and `\`
// are literal. Before, the search text was lower-cased in Go (Unicode)
// but the column by SQL's lower(), ASCII only on SQLite (and on a
// PostgreSQL database in the C locale): "Überweisung" did not find
// "Überweisung". Folding non-ASCII letters is the database's (ASCII only
// on SQLite) and not promised.
func TestQuarantineSearchText(t *testing.T) {
	eachDialect(t, (*Store).MigrateQuarantine, func(t *testing.T, s *Store) {
		ctx := context.Background()
		fx := seedTenants(t, s, 1, 1)
		scope := tracking.Scope{ResellerID: fx.resellers[0]}
		ids := map[string]int64{}
		for _, subject := range []string{"Überweisung fällig", "100% free", "a_b", `back\slash`, "plain"} {
			got, err := s.PutQuarantine(ctx, []quarantine.Item{{Time: time.Now(), QueueID: "Q", Domain: "a.example", DomainID: 5,
				CustomerID: fx.customers[0], Sender: "x@s.example", Recipients: []string{"bob@a.example"}, Subject: subject,
				State: quarantine.StateHeld}}, []byte("gz"), 0, 1<<30)
			if err != nil {
				t.Fatal(err)
			}
			ids[subject] = got[0]
		}
		for _, tc := range []struct {
			search string
			want   []string
		}{
			{"Überweisung", []string{"Überweisung fällig"}},
			{"weisung fäl", []string{"Überweisung fällig"}},
			{"%", []string{"100% free"}},
			{"_", []string{"a_b"}},
			{`\`, []string{`back\slash`}},
			{"PLAIN", []string{"plain"}},
		} {
			list, err := s.ListQuarantine(ctx, quarantine.Filter{Scope: scope, Search: tc.search, Limit: 10})
			if err != nil {
				t.Fatalf("%q: %v", tc.search, err)
			}
			var got []string
			for _, it := range list {
				got = append(got, it.Subject)
			}
			if strings.Join(got, "|") != strings.Join(tc.want, "|") {
				t.Errorf("search %q found %q, want %q", tc.search, got, tc.want)
			}
		}
	})
}

// TestNameFilterText: a list's name filter finds a customer by the very
// text of its name, non-ASCII letters included, with `%` and `_` literal
// (the same mismatch as TestQuarantineSearchText's: "Ölwerk" did not find
// "Ölwerk GmbH").
func TestNameFilterText(t *testing.T) {
	eachDialect(t, func(*Store, context.Context) error { return nil }, func(t *testing.T, s *Store) {
		ctx := context.Background()
		fx := seedTenants(t, s, 1, 0)
		ts := NewTenants(s)
		for _, name := range []string{"Ölwerk GmbH", "50% off", "x_y"} {
			c := tenant.Customer{ResellerID: fx.resellers[0], Name: name}
			if _, err := ts.CreateCustomer(ctx, &c, admin.AuditEntry{Actor: "test", Action: "create", Object: "x"}); err != nil {
				t.Fatal(err)
			}
		}
		for search, want := range map[string]string{"Ölwerk": "Ölwerk GmbH", "GMBH": "Ölwerk GmbH", "%": "50% off", "_": "x_y"} {
			list, err := ts.ListCustomers(ctx, admin.Filter{ResellerID: fx.resellers[0], Name: search, Limit: 10})
			if err != nil {
				t.Fatal(err)
			}
			if len(list) != 1 || list[0].Name != want {
				t.Errorf("name filter %q found %+v, want %q", search, list, want)
			}
		}
	})
}

// TestQuarantineHoldsOneBodyPerMessage: a message held for many recipients
// stores its body once, the domain's cap counts it once, and the body goes
// when its last item is released, deleted or pruned, even when its last
// two items are deleted at the same time. Stored per recipient, a 20 MB
// message to 60 recipients was 1.2 GB written before the 250, and past the
// 1 GiB default cap on its own: it was delivered tagged, not held.
func TestQuarantineHoldsOneBodyPerMessage(t *testing.T) {
	eachDialect(t, (*Store).MigrateQuarantine, func(t *testing.T, s *Store) {
		ctx := context.Background()
		op := tracking.Scope{Operator: true}
		now := time.Now().UTC().Truncate(time.Microsecond)
		const capBytes = 1000
		hold := func(queueID string, size int64, at time.Time, recipients ...string) ([]int64, error) {
			items := make([]quarantine.Item, len(recipients))
			for i, r := range recipients {
				items[i] = quarantine.Item{Time: at, QueueID: queueID, Domain: "a.example", DomainID: 5, CustomerID: 3,
					Sender: "x@s.example", Recipients: []string{r}, Subject: "Offer", Size: size, Score: 7, State: quarantine.StateHeld}
			}
			return s.PutQuarantine(ctx, items, []byte("gz "+queueID), size, capBytes)
		}
		count := func(query string) int {
			t.Helper()
			var n int
			if err := s.DB.QueryRow(query).Scan(&n); err != nil {
				t.Fatal(err)
			}
			return n
		}
		bodies := func() int { return count(`SELECT COUNT(*) FROM quarantine_bodies`) }
		orphans := func() int {
			return count(`SELECT COUNT(*) FROM quarantine_bodies b WHERE NOT EXISTS (SELECT 1 FROM quarantine q WHERE q.body_id = b.id)`)
		}
		bodyOf := func(id int64) string {
			t.Helper()
			_, body, err := s.GetQuarantine(ctx, op, id)
			if err != nil {
				t.Fatal(err)
			}
			return string(body)
		}

		many := make([]string, 60)
		for i := range many {
			many[i] = fmt.Sprintf("user%d@a.example", i)
		}
		big, err := hold("BIG", 400, now, many...)
		if err != nil || len(big) != 60 {
			t.Fatalf("a 400-byte message to 60 recipients under a 1000-byte cap: %d ids, %v", len(big), err)
		}
		if n := bodies(); n != 1 {
			t.Fatalf("%d bodies stored for one message, want 1", n)
		}
		for _, id := range []int64{big[0], big[59]} {
			if got := bodyOf(id); got != "gz BIG" {
				t.Fatalf("item %d body %q", id, got)
			}
		}
		// The cap counts the 400 bytes once: 400 + 500 fits, 900 + 200 does not.
		if _, err := hold("SECOND", 500, now, "ann@a.example", "bob@a.example"); err != nil {
			t.Fatalf("second message under the cap: %v", err)
		}
		if _, err := hold("OVER", 200, now, "ann@a.example"); !errors.Is(err, quarantine.ErrOverCap) {
			t.Fatalf("900 + 200 bytes against a 1000-byte cap: %v", err)
		}

		// One recipient's release leaves the others their body.
		claim, _, err := s.ClaimRelease(ctx, op, big[0], "op", now)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.FinishRelease(ctx, claim, true, now); err != nil {
			t.Fatal(err)
		}
		if got := bodyOf(big[1]); got != "gz BIG" || bodies() != 2 {
			t.Fatalf("after one recipient's release: body %q, %d bodies", got, bodies())
		}
		// The last recipients' deletes drop it, and free its bytes.
		for _, id := range big[1:] {
			if err := s.DeleteQuarantine(ctx, op, id); err != nil {
				t.Fatal(err)
			}
		}
		if bodies() != 1 || orphans() != 0 {
			t.Fatalf("after every recipient's copy went: %d bodies, %d unreferenced", bodies(), orphans())
		}
		if _, err := hold("AFTER", 200, now, "ann@a.example"); err != nil {
			t.Fatalf("500 + 200 bytes after the big message went: %v", err)
		}

		// A row with its own body (held before bodies were shared, or by a
		// node of the previous version in a rolling upgrade) counts
		// against the cap and is released as before.
		own := putOwnBody(t, s, quarantine.Item{Time: now, QueueID: "OWN", Domain: "a.example", DomainID: 5, CustomerID: 3,
			Sender: "x@s.example", Recipients: []string{"cy@a.example"}, Subject: "Offer", Size: 300, State: quarantine.StateHeld}, []byte("gz OWN"))
		if _, err := hold("FULL", 1, now, "ann@a.example"); !errors.Is(err, quarantine.ErrOverCap) {
			t.Fatalf("700 bytes shared + 300 of a row's own + 1 against 1000: %v", err)
		}
		claim, body, err := s.ClaimRelease(ctx, op, own, "op", now)
		if err != nil || string(body) != "gz OWN" {
			t.Fatalf("claim a row with its own body: %q %v", body, err)
		}
		if err := s.FinishRelease(ctx, claim, true, now); err != nil {
			t.Fatal(err)
		}

		// The last two copies of a message deleted at once: one of them
		// drops the body.
		for i := range 10 {
			pair, err := hold(fmt.Sprint("PAIR", i), 1, now, "ann@a.example", "bob@a.example")
			if err != nil {
				t.Fatal(err)
			}
			var wg sync.WaitGroup
			for _, id := range pair {
				wg.Add(1)
				go func() {
					defer wg.Done()
					if err := s.DeleteQuarantine(ctx, op, id); err != nil {
						t.Error(err)
					}
				}()
			}
			wg.Wait()
			if n := orphans(); n != 0 {
				t.Fatalf("round %d: %d bodies left without an item", i, n)
			}
		}

		// Pruned rows take their body with them.
		if _, err := hold("OLD", 10, now.Add(-30*24*time.Hour), "ann@a.example", "bob@a.example"); err != nil {
			t.Fatal(err)
		}
		before := bodies()
		if n, err := s.PruneQuarantine(ctx, now.Add(-14*24*time.Hour), nil); err != nil || n != 2 {
			t.Fatalf("prune: %d %v", n, err)
		}
		if bodies() != before-1 || orphans() != 0 {
			t.Fatalf("after the prune: %d bodies (before %d), %d unreferenced", bodies(), before, orphans())
		}
	})
}

// TestDeleteOfAnotherTenantsItemLocksNothing: on PostgreSQL a delete locks
// the item's shared body before it changes the item, so that two last
// copies dropped at once free it. The lock was taken before the scope was
// checked: a reseller deleting ids of another tenant's held mail locked
// that tenant's bodies, holding up its releases and deletes, and waited
// on a lock only an item that exists can have (a timing oracle). Now an
// item out of scope is not found before anything is locked.
func TestDeleteOfAnotherTenantsItemLocksNothing(t *testing.T) {
	s := openPostgres(t)
	ctx := context.Background()
	if err := s.MigrateQuarantine(ctx); err != nil {
		t.Fatal(err)
	}
	fx := seedTenants(t, s, 2, 1)
	owner, other := tracking.Scope{ResellerID: fx.resellers[0]}, tracking.Scope{ResellerID: fx.resellers[1]}
	ids, err := s.PutQuarantine(ctx, []quarantine.Item{{Time: time.Now(), QueueID: "Q", Domain: "a.example", DomainID: 5,
		CustomerID: fx.customers[0], Sender: "x@s.example", Recipients: []string{"bob@a.example"}, Size: 10, State: quarantine.StateHeld}},
		[]byte("gz"), 10, 1000)
	if err != nil {
		t.Fatal(err)
	}
	// The owner's own delete or release of the message, in flight.
	tx, err := s.DB.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	for _, lock := range []string{`SELECT id FROM quarantine_bodies WHERE id = (SELECT body_id FROM quarantine WHERE id = $1) FOR UPDATE`,
		`SELECT id FROM quarantine WHERE id = $1 FOR UPDATE`} {
		if _, err := tx.ExecContext(ctx, lock, ids[0]); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		name string
		id   int64
	}{{"another tenant's item", ids[0]}, {"an item that exists nowhere", ids[0] + 1000}} {
		dctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		start := time.Now()
		err := s.DeleteQuarantine(dctx, other, tc.id)
		cancel()
		if took := time.Since(start); !errors.Is(err, tenant.ErrNotFound) || took > time.Second {
			t.Errorf("another reseller deletes %s while its owner holds it: %v after %v; want not found at once", tc.name, err, took)
		}
	}
	if err := tx.Rollback(); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteQuarantine(ctx, owner, ids[0]); err != nil {
		t.Fatalf("the owner's delete: %v", err)
	}
}

// TestPruneFreesAbandonedReleases: a release whose node died (or whose
// database write failed) between the claim and the outcome leaves its item
// releasing; the item can be neither released nor deleted again, and
// prune skipped it, so it kept its body and its share of the domain's cap
// for ever. A claim older than the retention is dead (a delivery takes
// minutes at most): prune deletes it as it deletes any expired item, while
// a fresh claim, still delivering, is left alone. A fresh claim whose
// delivery may have taken place (unconfirmed: nothing delivers it any
// more) expires with its hold, as held mail does.
func TestPruneFreesAbandonedReleases(t *testing.T) {
	now := time.Now().UTC().Truncate(time.Microsecond)
	old := now.Add(-30 * 24 * time.Hour)
	for _, tc := range []struct {
		name        string
		claimedAt   time.Time
		unconfirmed bool
		pruned      bool
	}{
		{"claim abandoned long ago", old.Add(time.Hour), false, true},
		{"claim in progress", now, false, false},
		{"claim unconfirmed", now, true, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			eachDialect(t, (*Store).MigrateQuarantine, func(t *testing.T, s *Store) {
				ctx := context.Background()
				fx := seedTenants(t, s, 1, 1)
				scope := tracking.Scope{Operator: true}
				put := func() ([]int64, error) {
					return s.PutQuarantine(ctx, []quarantine.Item{{Time: old, QueueID: "Q", Domain: "a.example", DomainID: 5,
						CustomerID: fx.customers[0], Sender: "x@s.example", Recipients: []string{"bob@a.example"}, Size: 600,
						State: quarantine.StateHeld}}, []byte("gz"), 600, 1000)
				}
				ids, err := put()
				if err != nil {
					t.Fatal(err)
				}
				claim, _, err := s.ClaimRelease(ctx, scope, ids[0], "admin", tc.claimedAt)
				if err != nil {
					t.Fatal(err)
				}
				if tc.unconfirmed {
					// Another claim's is not this one's to change.
					stale := claim
					stale.ReleasedAt = stale.ReleasedAt.Add(-time.Second)
					for _, c := range []struct {
						claim quarantine.Item
						want  quarantine.State
					}{{stale, quarantine.StateReleasing}, {claim, quarantine.StateUnconfirmed}} {
						if err := s.UnconfirmRelease(ctx, c.claim); err != nil {
							t.Fatal(err)
						}
						if it, err := s.QuarantineItem(ctx, scope, ids[0]); err != nil || it.State != c.want {
							t.Fatalf("after unconfirming the claim at %v: %v (%v), want %v", c.claim.ReleasedAt, it.State, err, c.want)
						}
					}
				}
				// The node dies here: FinishRelease never runs.
				n, err := s.PruneQuarantine(ctx, now.Add(-14*24*time.Hour), nil)
				if err != nil {
					t.Fatal(err)
				}
				if got := n == 1; got != tc.pruned {
					t.Fatalf("pruned %d rows, want pruned=%v", n, tc.pruned)
				}
				var bodies int
				if err := s.DB.QueryRowContext(ctx, `SELECT COUNT(*) FROM quarantine_bodies`).Scan(&bodies); err != nil {
					t.Fatal(err)
				}
				if tc.pruned != (bodies == 0) {
					t.Fatalf("%d bodies left, pruned=%v", bodies, tc.pruned)
				}
				// The cap counts what is left: a second message fits only
				// once the abandoned one is gone.
				if _, err := put(); (err == nil) != tc.pruned {
					t.Fatalf("hold after prune: %v, pruned=%v", err, tc.pruned)
				}
			})
		})
	}
}

// TestQuarantineHoldIsCommittedDurably: the 250 for a held message follows
// PutQuarantine's commit, and the message exists nowhere else, so on
// SQLite (WAL) the commit runs with synchronous=FULL: under the store's
// NORMAL a commit reaches the disk only at the next checkpoint, and a
// power loss took back messages already acknowledged. The connection goes
// back to NORMAL afterwards, for tracking's batches.
func TestQuarantineHoldIsCommittedDurably(t *testing.T) {
	eachDialect(t, (*Store).MigrateQuarantine, func(t *testing.T, s *Store) {
		if s.Dialect != SQLite {
			t.Skip("PostgreSQL's synchronous_commit is the server's")
		}
		ctx := context.Background()
		const normal, full = 1, 2
		var during int
		beforeQuarantineCommit = func(ctx context.Context, tx *sql.Tx) {
			if err := tx.QueryRowContext(ctx, `PRAGMA synchronous`).Scan(&during); err != nil {
				t.Error(err)
			}
		}
		t.Cleanup(func() { beforeQuarantineCommit = nil })
		for _, tc := range []struct {
			name string
			max  int64
			err  error
		}{{"held", 1000, nil}, {"over the cap", 1, quarantine.ErrOverCap}} {
			during = 0
			_, err := s.PutQuarantine(ctx, []quarantine.Item{{Time: time.Now(), QueueID: "Q", Domain: "a.example", DomainID: 5,
				CustomerID: 1, Sender: "x@s.example", Recipients: []string{"bob@a.example"}, Size: 100,
				State: quarantine.StateHeld}}, []byte("gz"), 100, tc.max)
			if !errors.Is(err, tc.err) {
				t.Fatalf("%s: %v", tc.name, err)
			}
			if tc.err == nil && during != full {
				t.Errorf("%s: committed with synchronous=%d, want FULL (%d)", tc.name, during, full)
			}
			var after int
			if err := s.DB.QueryRowContext(ctx, `PRAGMA synchronous`).Scan(&after); err != nil {
				t.Fatal(err)
			}
			if after != normal {
				t.Errorf("%s: the store's connection left at synchronous=%d, want NORMAL (%d)", tc.name, after, normal)
			}
		}
	})
}

// TestPruneWorksInBatches: expiry deletes a backlog a batch at a time,
// each committed on its own. One statement for every expired item held
// SQLite's only connection (and every hold waiting for it) as long as it
// ran, and one that failed part way (the store's timeout on a large
// backlog; here a trigger refusing the last row) rolled everything back,
// the next round failing the same way: nothing was ever pruned.
func TestPruneWorksInBatches(t *testing.T) {
	for _, tc := range []struct {
		name       string
		poisonLast bool
		wantPruned int64
	}{
		{"whole backlog", false, 25},
		{"fault on the last row keeps the batches before it", true, 20},
	} {
		t.Run(tc.name, func(t *testing.T) {
			eachDialect(t, (*Store).MigrateQuarantine, func(t *testing.T, s *Store) {
				if tc.poisonLast && s.Dialect != SQLite {
					t.Skip("the fault is a SQLite trigger")
				}
				ctx := context.Background()
				old := pruneBatch
				pruneBatch = 10
				t.Cleanup(func() { pruneBatch = old })
				now := time.Now().UTC()
				put := func(at time.Time) int64 {
					ids, err := s.PutQuarantine(ctx, []quarantine.Item{{Time: at, QueueID: "Q", Domain: "a.example", DomainID: 5,
						CustomerID: 1, Sender: "x@s.example", Recipients: []string{"bob@a.example"}, Size: 10,
						State: quarantine.StateHeld}}, []byte("gz"), 10, 1<<20)
					if err != nil {
						t.Fatal(err)
					}
					return ids[0]
				}
				var last int64
				for range 25 {
					last = put(now.Add(-30 * 24 * time.Hour))
				}
				fresh := put(now)
				if tc.poisonLast {
					if _, err := s.DB.ExecContext(ctx, fmt.Sprintf(`CREATE TRIGGER poison BEFORE DELETE ON quarantine
						WHEN old.id = %d BEGIN SELECT RAISE(ABORT, 'injected fault'); END`, last)); err != nil {
						t.Fatal(err)
					}
				}
				n, err := s.PruneQuarantine(ctx, now.Add(-14*24*time.Hour), nil)
				if (err != nil) != tc.poisonLast {
					t.Fatalf("prune: %v", err)
				}
				if n != tc.wantPruned {
					t.Errorf("pruned %d, want %d", n, tc.wantPruned)
				}
				var rows, bodies int64
				if err := s.DB.QueryRowContext(ctx, `SELECT COUNT(*) FROM quarantine`).Scan(&rows); err != nil {
					t.Fatal(err)
				}
				if err := s.DB.QueryRowContext(ctx, `SELECT COUNT(*) FROM quarantine_bodies`).Scan(&bodies); err != nil {
					t.Fatal(err)
				}
				if left := 26 - tc.wantPruned; rows != left || bodies != left {
					t.Errorf("%d rows and %d bodies left, want %d of each", rows, bodies, left)
				}
				if _, err := s.QuarantineItem(ctx, tracking.Scope{Operator: true}, fresh); err != nil {
					t.Errorf("the item within the retention: %v", err)
				}
			})
		})
	}
}

// TestPruneSweepsOrphanBodiesInBatches: the bodies no item refers to any
// longer are swept pruneBatch ids at a time, each step a statement of its
// own. One statement over the whole body table held SQLite's only
// connection (and every hold waiting for it) while it read a table of
// millions, and when it failed part way (the store's timeout; here a
// trigger refusing the last body) nothing it had done was kept, and the
// next round began again from the start.
func TestPruneSweepsOrphanBodiesInBatches(t *testing.T) {
	eachDialect(t, (*Store).MigrateQuarantine, func(t *testing.T, s *Store) {
		if s.Dialect != SQLite {
			t.Skip("the fault is a SQLite trigger")
		}
		ctx := context.Background()
		old := pruneBatch
		pruneBatch = 10
		t.Cleanup(func() { pruneBatch = old })
		var last int64
		for range 25 {
			if err := s.DB.QueryRowContext(ctx, `INSERT INTO quarantine_bodies (size, body) VALUES (2, 'gz') RETURNING id`).Scan(&last); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := s.DB.ExecContext(ctx, fmt.Sprintf(`CREATE TRIGGER poison BEFORE DELETE ON quarantine_bodies
			WHEN old.id = %d BEGIN SELECT RAISE(ABORT, 'injected fault'); END`, last)); err != nil {
			t.Fatal(err)
		}
		if _, err := s.PruneQuarantine(ctx, time.Now().Add(-time.Hour), nil); err == nil {
			t.Fatal("prune: no error from the injected fault")
		}
		var left int64
		if err := s.DB.QueryRowContext(ctx, `SELECT COUNT(*) FROM quarantine_bodies`).Scan(&left); err != nil {
			t.Fatal(err)
		}
		if left != 5 {
			t.Errorf("%d orphan bodies left, want the last step's 5", left)
		}
	})
}

// TestHoldWhoseCommitReplyIsLostIsKnownHeld: on PostgreSQL a commit can
// take effect on the server while its reply never reaches the node (the
// connection lost after the COMMIT went out, or the server waiting past
// the store's timeout for a synchronous standby: a cancel then leaves the
// transaction committed locally). The hold answered an error for a
// message the quarantine held, and smtpd, told so, delivered it tagged
// as well: the customer found it in the mailbox, and again in the
// quarantine and its digest, releasable a second time. When the store
// cannot say either (it stalls past its timeout just then, as a
// PostgreSQL stopped mid-commit does), the hold is ErrHoldUnknown, for
// smtpd to answer 4xx: answered as a plain failure, the message was
// delivered tagged, and held once the server went on.
func TestHoldWhoseCommitReplyIsLostIsKnownHeld(t *testing.T) {
	s, proxy := openPostgresReplyCutter(t)
	ctx := context.Background()
	if err := s.MigrateQuarantine(ctx); err != nil {
		t.Fatal(err)
	}
	// Domain 6's commits fail for good, at the commit itself: asked
	// after such a failure, the store must not find the hold made.
	if _, err := s.DB.ExecContext(ctx, `CREATE FUNCTION refuse_commit() RETURNS trigger LANGUAGE plpgsql AS $$
		BEGIN IF NEW.domain_id = 6 THEN RAISE EXCEPTION 'refused at commit'; END IF; RETURN NULL; END $$;
		CREATE CONSTRAINT TRIGGER refuse_commit AFTER INSERT ON quarantine_bodies DEFERRABLE INITIALLY DEFERRED
		FOR EACH ROW EXECUTE FUNCTION refuse_commit();`); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { beforeQuarantineCommit = nil })
	const (
		held = iota
		notHeld
		unknown
	)
	for _, tc := range []struct {
		name     string
		domainID int64
		want     int
	}{{"reply lost", 5, held}, {"refused at commit", 6, notHeld}, {"reply lost, the store silent past its timeout", 7, unknown}} {
		stalled := make(chan struct{})
		beforeQuarantineCommit = func(context.Context, *sql.Tx) {
			if tc.want == unknown {
				// Whoever asks for the domain's lock after the commit
				// (the store's own check) waits past the timeout: a
				// session that queued for it first keeps it that long.
				stallDomainLock(t, s, proxy.direct, tc.domainID, stalled)
			}
			if tc.want != notHeld {
				proxy.cut()
			}
		}
		ids, err := s.PutQuarantine(ctx, []quarantine.Item{{Time: time.Now(), QueueID: "Q", Domain: "a.example", DomainID: tc.domainID,
			CustomerID: 1, Sender: "x@s.example", Recipients: []string{"bob@a.example"}, Size: 100,
			State: quarantine.StateHeld}}, []byte("gz"), 100, 1<<20)
		beforeQuarantineCommit = nil
		if tc.want == unknown {
			<-stalled
		}
		var heldIDs []int64
		rows, qerr := s.DB.QueryContext(ctx, `SELECT id FROM quarantine WHERE domain_id = $1 ORDER BY id`, tc.domainID)
		if qerr != nil {
			t.Fatal(qerr)
		}
		for rows.Next() {
			var id int64
			if err := rows.Scan(&id); err != nil {
				t.Fatal(err)
			}
			heldIDs = append(heldIDs, id)
		}
		rows.Close()
		switch tc.want {
		case held:
			if err != nil || !slices.Equal(ids, heldIDs) {
				t.Errorf("%s: the hold returned items %v (%v), the store holds %v", tc.name, ids, err, heldIDs)
			}
		case notHeld:
			if err == nil || errors.Is(err, quarantine.ErrHoldUnknown) || len(heldIDs) > 0 {
				t.Errorf("%s: the hold answered %v, the store holds %v", tc.name, err, heldIDs)
			}
		case unknown:
			if len(heldIDs) != 1 {
				t.Fatalf("%s: the store holds %v, want the one item the commit made", tc.name, heldIDs)
			}
			if !errors.Is(err, quarantine.ErrHoldUnknown) {
				t.Errorf("%s: the hold answered %v (items %v), not ErrHoldUnknown: the message would be delivered tagged and held too", tc.name, err, ids)
			}
		}
	}
}

// stallDomainLock queues a session, connected to dsn apart from s, for
// domainID's hold lock behind the hold in progress, and returns once it
// waits; the session keeps the lock for twice s's timeout once it has it,
// and stalled is closed when it let go.
func stallDomainLock(t *testing.T, s *Store, dsn string, domainID int64, stalled chan<- struct{}) {
	t.Helper()
	other, err := Open(Config{Driver: Postgres, DSN: dsn, Timeout: time.Minute}, "")
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	conn, err := other.DB.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var pid int
	if err := conn.QueryRowContext(ctx, `SELECT pg_backend_pid()`).Scan(&pid); err != nil {
		t.Fatal(err)
	}
	go func() {
		defer close(stalled)
		defer other.Close()
		defer conn.Close()
		tx, err := conn.BeginTx(ctx, nil)
		if err != nil {
			t.Error(err)
			return
		}
		defer tx.Rollback()
		if _, err := tx.ExecContext(ctx, holdLock, domainID); err != nil {
			t.Error(err)
			return
		}
		time.Sleep(2 * s.Timeout) // the stall itself, not a synchronisation
	}()
	for {
		var waiting bool
		if err := other.DB.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM pg_locks WHERE pid = $1 AND locktype = 'advisory' AND NOT granted)`, pid).Scan(&waiting); err != nil {
			t.Fatal(err)
		}
		if waiting {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// replyCutter passes TCP connections through to a server until cut: from
// then on, what the server sends on the connections open at that moment is
// dropped (their replies are lost), and new connections pass as before.
type replyCutter struct {
	addr string
	// direct is the server's DSN, bypassing the cutter (set by
	// openPostgresReplyCutter).
	direct string
	mu     sync.Mutex
	conns  []*atomic.Bool
}

func startReplyCutter(t *testing.T, target string) *replyCutter {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	p := &replyCutter{addr: ln.Addr().String()}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			srv, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			cut := new(atomic.Bool)
			p.mu.Lock()
			p.conns = append(p.conns, cut)
			p.mu.Unlock()
			go func() {
				io.Copy(srv, c)
				srv.Close()
			}()
			go func() {
				defer c.Close()
				buf := make([]byte, 32<<10)
				for {
					n, err := srv.Read(buf)
					if n > 0 && !cut.Load() {
						if _, err := c.Write(buf[:n]); err != nil {
							return
						}
					}
					if err != nil {
						return
					}
				}
			}()
		}
	}()
	return p
}

// cut loses the replies of every connection open now.
func (p *replyCutter) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		c.Store(true)
	}
}

// openPostgresReplyCutter opens a private PostgreSQL database through a
// replyCutter, with a short timeout: a cut reply fails its call soon.
func openPostgresReplyCutter(t *testing.T) (*Store, *replyCutter) {
	t.Helper()
	dsn, err := url.Parse(testenv.PostgresDB(t))
	if err != nil {
		t.Fatal(err)
	}
	proxy := startReplyCutter(t, dsn.Host)
	proxy.direct = dsn.String()
	dsn.Host = proxy.addr
	s, err := Open(Config{Driver: Postgres, DSN: dsn.String(), Timeout: time.Second}, "")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, proxy
}

// writeLosingCommitReply calls write, losing the reply to its commit of
// table's rows (the commit takes effect), then, as the batch queues do,
// calls it again until it succeeds; each of the pool's connections cut
// with the first fails once.
func writeLosingCommitReply(t *testing.T, proxy *replyCutter, table string, write func() error) {
	t.Helper()
	beforeInsertCommit = func(tb string) {
		if tb == table {
			proxy.cut()
		}
	}
	err := write()
	beforeInsertCommit = nil
	if err == nil {
		t.Fatal("the batch whose commit reply was lost was answered stored")
	}
	for try := 0; err != nil; try++ {
		if try == 10 {
			t.Fatalf("the batch written again: %v", err)
		}
		err = write()
	}
}

// TestDeleteBesidePruneDoesNotDeadlock: on PostgreSQL a delete (or a
// release's outcome) locked the item's body, then its row; expiry deletes
// its rows, then their bodies, the other way round. A delete of an expired
// item that expiry was deleting at that moment deadlocked with it, and
// PostgreSQL aborted one: the customer's delete failed with a store error,
// or the prune round did. Both now take the row first.
func TestDeleteBesidePruneDoesNotDeadlock(t *testing.T) {
	s := openPostgres(t)
	ctx := context.Background()
	if err := s.MigrateQuarantine(ctx); err != nil {
		t.Fatal(err)
	}
	ids, err := s.PutQuarantine(ctx, []quarantine.Item{{Time: time.Now().Add(-time.Hour), QueueID: "Q", Domain: "a.example", DomainID: 5,
		CustomerID: 1, Sender: "x@s.example", Recipients: []string{"bob@a.example"}, Size: 100, State: quarantine.StateHeld}},
		[]byte("gz"), 100, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	var body int64
	if err := s.DB.QueryRowContext(ctx, `SELECT body_id FROM quarantine WHERE id = $1`, ids[0]).Scan(&body); err != nil {
		t.Fatal(err)
	}
	// Expiry's batch, in its order: the rows, then their bodies.
	prune, err := s.DB.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer prune.Rollback()
	if _, err := prune.ExecContext(ctx, `DELETE FROM quarantine WHERE id = $1`, ids[0]); err != nil {
		t.Fatal(err)
	}
	deleted := make(chan error, 1)
	go func() { deleted <- s.DeleteQuarantine(ctx, tracking.Scope{Operator: true}, ids[0]) }()
	// The delete waits for the row expiry holds.
	for waiting := 0; waiting == 0; time.Sleep(10 * time.Millisecond) {
		if err := s.DB.QueryRowContext(ctx, `SELECT COUNT(*) FROM pg_locks WHERE NOT granted`).Scan(&waiting); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := prune.ExecContext(ctx, `DELETE FROM quarantine_bodies WHERE id = $1
		AND NOT EXISTS (SELECT 1 FROM quarantine WHERE body_id = $1)`, body); err != nil {
		t.Fatalf("expiry deleting the body: %v", err)
	}
	if err := prune.Commit(); err != nil {
		t.Fatalf("expiry: %v", err)
	}
	if err := <-deleted; !errors.Is(err, tenant.ErrNotFound) {
		t.Fatalf("the delete beside expiry: %v, want not found (expired)", err)
	}
}

// TestSMTPUTF8IsKeptWithTheItem: the sender's SMTPUTF8 is read back with
// its item (its release asks for it again). An item held before the
// upgrade, or written after it by a node not yet upgraded, which knows no
// such column, reads false: released as items were before.
func TestSMTPUTF8IsKeptWithTheItem(t *testing.T) {
	for _, d := range dialects {
		t.Run(d.name, func(t *testing.T) {
			ctx := context.Background()
			s := d.open(t)
			if err := s.Migrate(ctx, quarantineComponent, quarantineMigrations[:4]); err != nil {
				t.Fatal(err)
			}
			// As a node of the previous version holds a message.
			older := func() int64 {
				var id int64
				if err := s.DB.QueryRowContext(ctx, `INSERT INTO quarantine (at_us, queue_id, domain, domain_id, customer_id, sender, recipients,
					subject, message_id, size, score, symbols, state, released_by, released_us, body)
					VALUES (1, 'Q', 'a.example', 5, 3, 's@x.example', 'bob@a.example', 's', '', 2, 7, '', 'held', '', 0, 'gz') RETURNING id`).Scan(&id); err != nil {
					t.Fatal(err)
				}
				return id
			}
			before := older()
			if err := s.MigrateQuarantine(ctx); err != nil {
				t.Fatal(err)
			}
			during := older()
			ids, err := s.PutQuarantine(ctx, []quarantine.Item{{Time: time.Now(), QueueID: "N", Domain: "a.example", DomainID: 5,
				CustomerID: 3, Sender: "s@x.example", SMTPUTF8: true, Recipients: []string{"ann@a.example"}, Size: 2}}, []byte("gz"), 2, 1<<20)
			if err != nil {
				t.Fatal(err)
			}
			op := tracking.Scope{Operator: true}
			for id, want := range map[int64]bool{before: false, during: false, ids[0]: true} {
				if it, _, err := s.ClaimRelease(ctx, op, id, "op", time.Now()); err != nil || it.SMTPUTF8 != want {
					t.Errorf("item %d claimed: SMTPUTF8 %v, %v; want %v", id, it.SMTPUTF8, err, want)
				}
			}
		})
	}
}

// TestReleaseClaimStaysInTheScopeRead: a reseller's release of a held
// message whose customer the operator gives to another reseller (on
// another node) between the release's read of the item, in the
// reseller's scope, and its claim claims nothing: the message is the
// other reseller's now, and not found for this one, as it is a moment
// later. It stays held.
func TestReleaseClaimStaysInTheScopeRead(t *testing.T) {
	eachDialect(t, (*Store).MigrateQuarantine, func(t *testing.T, s *Store) {
		ctx := context.Background()
		fx := seedTenants(t, s, 2, 1)
		ids, err := s.PutQuarantine(ctx, []quarantine.Item{{Time: time.Now(), QueueID: "Q", Domain: "a.example", DomainID: 5,
			CustomerID: fx.customers[0], Sender: "x@s.example", Recipients: []string{"bob@a.example"}, Size: 10, State: quarantine.StateHeld}},
			[]byte("gz"), 10, 1000)
		if err != nil {
			t.Fatal(err)
		}
		beforeClaim = func() {
			ts := NewTenants(s)
			c, err := ts.GetCustomer(ctx, fx.customers[0])
			if err != nil {
				t.Fatal(err)
			}
			c.ResellerID = fx.resellers[1]
			if _, err := ts.UpdateCustomer(ctx, &c, admin.AuditEntry{Actor: "operator", Action: "update", Object: "x"}); err != nil {
				t.Fatal(err)
			}
		}
		t.Cleanup(func() { beforeClaim = nil })
		if _, _, err := s.ClaimRelease(ctx, tracking.Scope{ResellerID: fx.resellers[0]}, ids[0], "reseller 1", time.Now()); !errors.Is(err, tenant.ErrNotFound) {
			t.Errorf("claim after the move: %v, want not found", err)
		}
		if it, err := s.QuarantineItem(ctx, tracking.Scope{ResellerID: fx.resellers[1]}, ids[0]); err != nil || it.State != quarantine.StateHeld {
			t.Errorf("the other reseller's item: %+v, %v; want held", it, err)
		}
	})
}

// TestQuarantineTakesHoldsOnlyWhenItDoes: on PostgreSQL, the quarantine's
// readiness check fails on a database that answers reads but takes no
// writes (a read-only standby, as a primary's address may name after a
// failover), where holds fail, and passes on one that takes them, leaving
// nothing held.
func TestQuarantineTakesHoldsOnlyWhenItDoes(t *testing.T) {
	ctx := context.Background()
	dsn := testenv.PostgresDB(t)
	open := func() *Store { return openPostgresAt(t, dsn) }
	s := open()
	if err := s.MigrateQuarantine(ctx); err != nil {
		t.Fatal(err)
	}
	if err := s.QuarantineTakesHolds(ctx); err != nil {
		t.Fatalf("a store taking holds: %v", err)
	}
	if list, err := s.ListQuarantine(ctx, quarantine.Filter{Scope: tracking.Scope{Operator: true}, Limit: 10}); err != nil || len(list) != 0 {
		t.Fatalf("after the check: held %v, %v; want nothing", list, err)
	}
	if _, err := s.DB.ExecContext(ctx, `DO $$ BEGIN EXECUTE format('ALTER DATABASE %I SET default_transaction_read_only = on', current_database()); END $$`); err != nil {
		t.Fatal(err)
	}
	ro := open()
	if _, err := ro.ListQuarantine(ctx, quarantine.Filter{Scope: tracking.Scope{Operator: true}, Limit: 1}); err != nil {
		t.Fatalf("the read-only store does not answer a read: %v", err)
	}
	if _, err := ro.PutQuarantine(ctx, []quarantine.Item{{Domain: "a.example", DomainID: 5, CustomerID: 3}}, []byte("gz"), 10, 1<<20); err == nil {
		t.Fatal("the read-only store took a hold")
	}
	if err := ro.QuarantineTakesHolds(ctx); err == nil {
		t.Fatal("the check passes on a store that takes no holds")
	}
}
