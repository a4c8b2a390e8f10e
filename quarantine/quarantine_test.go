package quarantine_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mxgrid/mxgrid/internal/testenv"
	"github.com/mxgrid/mxgrid/quarantine"
	"github.com/mxgrid/mxgrid/store"
	"github.com/mxgrid/mxgrid/tracking"
)

// recorder is a customer's server that takes everything, or nothing.
type recorder struct {
	fail bool
	got  []string
	held []quarantine.HeldDomain
}

func (r *recorder) Deliver(_ context.Context, domain quarantine.HeldDomain, _ string, _ bool, rcpts []string, msg []byte) (string, error) {
	r.held = append(r.held, domain)
	if r.fail {
		return "", errors.New("connection refused")
	}
	r.got = append(r.got, domain.Name+" "+strings.Join(rcpts, ",")+" "+string(msg))
	return "250 2.0.0 queued", nil
}

// TestRetentionAndCapWithInjectedClock: on a real SQLite store, the cap
// refuses what would pass it, released bytes free room, a failed delivery
// keeps the message held, and pruning by the service's clock removes what
// is older than the retention and nothing younger.
func TestRetentionAndCapWithInjectedClock(t *testing.T) {
	ctx := context.Background()
	st := openStore(t)
	clock := time.Date(2027, 3, 1, 9, 0, 0, 0, time.UTC)
	cfg := quarantine.DefaultConfig()
	cfg.MaxBytesPerDomain = 2 << 20
	downstream := &recorder{}
	svc := quarantine.New(cfg, st, downstream, func() time.Time { return clock })
	op := tracking.Scope{Operator: true}
	hold := func(size int) (int64, error) {
		ids, err := svc.Hold(ctx, quarantine.Item{Domain: "a.example", DomainID: 1, Sender: "s@x.example", Recipients: []string{"bob@a.example"}},
			strings.NewReader(strings.Repeat("x", size)))
		if err != nil {
			return 0, err
		}
		return ids[0], nil
	}
	old, err := hold(1 << 20)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := hold(1<<20 + 1); !errors.Is(err, quarantine.ErrOverCap) {
		t.Fatalf("over the cap: %v", err)
	}
	clock = clock.Add(10 * 24 * time.Hour)
	young, err := hold(1 << 19)
	if err != nil {
		t.Fatal(err)
	}
	downstream.fail = true
	if _, _, err := svc.Release(ctx, op, young, "op"); !errors.Is(err, quarantine.ErrDelivery) {
		t.Fatalf("release to a server that is down: %v", err)
	}
	if it, msg, err := opened(svc, young); err != nil || it.State != quarantine.StateHeld || len(msg) != 1<<19 {
		t.Fatalf("after a failed release: %v %d %v", it.State, len(msg), err)
	}
	// Day 15: the first message is past the 14-day retention, the second
	// is 5 days old.
	clock = clock.Add(5 * 24 * time.Hour)
	if n, err := svc.Prune(ctx); err != nil || n != 1 {
		t.Fatalf("prune: %d %v", n, err)
	}
	if _, err := svc.Item(ctx, op, old); err == nil {
		t.Fatal("the expired message is still there")
	}
	downstream.fail = false
	if _, reply, err := svc.Release(ctx, op, young, "op"); err != nil || reply != "250 2.0.0 queued" || len(downstream.got) != 1 {
		t.Fatalf("release: %q %v %d", reply, err, len(downstream.got))
	}
	// Released bytes no longer count: a message of the whole cap, but its
	// row's share, fits.
	if _, err := hold(2<<20 - 1<<10); err != nil {
		t.Fatalf("after release and prune the cap has room: %v", err)
	}
}

// TestRecipientsApart: a message to two recipients is held once per
// recipient; releasing one delivers to that recipient only.
func TestRecipientsApart(t *testing.T) {
	ctx := context.Background()
	st := openStore(t)
	downstream := &recorder{}
	svc := quarantine.New(quarantine.DefaultConfig(), st, downstream, nil)
	ids, err := svc.Hold(ctx, quarantine.Item{Domain: "a.example", DomainID: 1, Sender: "s@x.example",
		Recipients: []string{"ann@a.example", "bob@a.example"}}, strings.NewReader("Subject: x\r\n\r\nx\r\n"))
	if err != nil || len(ids) != 2 {
		t.Fatalf("hold: %v %v", ids, err)
	}
	op := tracking.Scope{Operator: true}
	if _, _, err := svc.Release(ctx, op, ids[0], "ann"); err != nil {
		t.Fatal(err)
	}
	if len(downstream.got) != 1 || !strings.HasPrefix(downstream.got[0], "a.example ann@a.example ") {
		t.Fatalf("delivered %q, want ann only", downstream.got)
	}
	if it, err := svc.Item(ctx, op, ids[1]); err != nil || it.State != quarantine.StateHeld {
		t.Fatalf("bob's copy: %v %v", it.State, err)
	}
}

// TestManyRecipientsOneMessageAgainstTheCap: a 1 MiB message to 60
// recipients, under a 2 MiB cap, is held for each of them: it counts once.
// Counted per copy (60 MiB), it was refused and delivered tagged instead.
func TestManyRecipientsOneMessageAgainstTheCap(t *testing.T) {
	ctx := context.Background()
	cfg := quarantine.DefaultConfig()
	cfg.MaxBytesPerDomain = 2 << 20
	svc := quarantine.New(cfg, openStore(t), &recorder{}, nil)
	rcpts := make([]string, 60)
	for i := range rcpts {
		rcpts[i] = fmt.Sprintf("user%d@a.example", i)
	}
	msg := []byte("Subject: x\r\n\r\n" + strings.Repeat("x", 1<<20))
	ids, err := svc.Hold(ctx, quarantine.Item{Domain: "a.example", DomainID: 1, Sender: "s@x.example", Recipients: rcpts}, bytes.NewReader(msg))
	if err != nil || len(ids) != 60 {
		t.Fatalf("hold: %d ids, %v", len(ids), err)
	}
	op := tracking.Scope{Operator: true}
	if _, _, err := svc.Release(ctx, op, ids[0], "op"); err != nil {
		t.Fatal(err)
	}
	if it, got, err := opened(svc, ids[59]); err != nil || it.State != quarantine.StateHeld || !bytes.Equal(got, msg) {
		t.Fatalf("the last recipient's copy after the first's release: %v, %d bytes, %v", it.State, len(got), err)
	}
	if _, err := svc.Hold(ctx, quarantine.Item{Domain: "a.example", DomainID: 1, Sender: "s@x.example", Recipients: rcpts[:1]}, bytes.NewReader(msg)); !errors.Is(err, quarantine.ErrOverCap) {
		t.Fatalf("a second 1 MiB message against the 2 MiB cap: %v", err)
	}
}

// TestOpenMessagesShareMaxOpenBytes: previews and releases open held
// messages within the node's max_open_bytes (openFactor times each size);
// one that does not fit waits for it, and past the wait gets ErrBusy and
// nothing changes (a release refused so
// leaves its item held), and reading an item's fields opens nothing. A
// message larger than the whole budget still opens, alone. Unbounded, a
// hundred previews of a 25 MB message at once could take a node down.
func TestOpenMessagesShareMaxOpenBytes(t *testing.T) {
	ctx := context.Background()
	cfg := quarantine.DefaultConfig()
	cfg.MaxOpenBytes = 1 << 20
	downstream := &recorder{}
	svc := quarantine.New(cfg, openStore(t), downstream, nil)
	op := tracking.Scope{Operator: true}
	hold := func(size int) int64 {
		t.Helper()
		ids, err := svc.Hold(ctx, quarantine.Item{Domain: "a.example", DomainID: 1, Sender: "s@x.example", Recipients: []string{"bob@a.example"}},
			strings.NewReader("Subject: x\r\n\r\n"+strings.Repeat("x", size)))
		if err != nil {
			t.Fatal(err)
		}
		return ids[0]
	}
	a, b, huge := hold(200<<10), hold(200<<10), hold(2<<20)

	inside, leave := make(chan struct{}), make(chan struct{})
	go svc.Open(ctx, op, a, func(quarantine.Item, []byte) { close(inside); <-leave })
	<-inside
	// a holds 600 KiB of the 1 MiB: b's 600 KiB do not fit. A request
	// waits for them (here until its client leaves), then is refused.
	impatient := func() context.Context {
		c, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
		t.Cleanup(cancel)
		return c
	}
	if _, err := svc.Open(impatient(), op, b, func(quarantine.Item, []byte) { t.Error("opened past max_open_bytes") }); !errors.Is(err, quarantine.ErrBusy) {
		t.Fatalf("second preview while the bytes are spent: %v", err)
	}
	if _, _, err := svc.Release(impatient(), op, b, "op"); !errors.Is(err, quarantine.ErrBusy) {
		t.Fatalf("release while the bytes are spent: %v", err)
	}
	if it, err := svc.Item(ctx, op, b); err != nil || it.State != quarantine.StateHeld || len(downstream.got) != 0 {
		t.Fatalf("after the refused release: %v %v, %d delivered", it.State, err, len(downstream.got))
	}
	// A patient request is served once a's bytes are back.
	time.AfterFunc(100*time.Millisecond, func() { close(leave) })
	for _, id := range []int64{b, huge} {
		it, msg, err := opened(svc, id)
		if err != nil || it.ID != id || !bytes.HasPrefix(msg, []byte("Subject: x\r\n")) {
			t.Fatalf("open %d once the bytes were back: item %d, %d bytes, %v", id, it.ID, len(msg), err)
		}
	}
	if _, _, err := svc.Release(ctx, op, b, "op"); err != nil || len(downstream.got) != 1 {
		t.Fatalf("release once the bytes were back: %v, %d delivered", err, len(downstream.got))
	}
}

// resellers maps customers to their resellers, as the store does.
type resellers map[int64]int64

func (r resellers) ResellerOf(_ context.Context, customerID int64) (int64, error) {
	return r[customerID], nil
}

// TestOneResellerCannotHoldEveryOpenByte: the messages one reseller's
// customers have open (releases to their own servers, however slowly
// those answer, and previews) hold at most half of max_open_bytes, so
// another reseller's previews and releases still open. Shared unbounded,
// a tenant releasing two big held messages at a time to a server of its
// own that answered each RCPT after a minute with 451 (the message held
// again, to be released again) held every open byte of the node, and
// every other tenant's previews, releases and digest links got 429. The
// owner is the item's, whoever asks: the operator and digest links too.
func TestOneResellerCannotHoldEveryOpenByte(t *testing.T) {
	ctx := context.Background()
	cfg := quarantine.DefaultConfig()
	cfg.MaxOpenBytes = 1 << 20
	downstream := &heldUp{entered: make(chan struct{}), proceed: make(chan struct{})}
	svc := quarantine.New(cfg, openStore(t), downstream, nil)
	// Customers 1 and 2 are one reseller's, customer 3 another's.
	svc.ShareOpensAmong(resellers{1: 10, 2: 10, 3: 20})
	op := tracking.Scope{Operator: true}
	hold := func(customer int64, size int) int64 {
		t.Helper()
		ids, err := svc.Hold(ctx, quarantine.Item{Domain: "a.example", DomainID: customer, CustomerID: customer, Sender: "s@x.example",
			Recipients: []string{"bob@a.example"}}, strings.NewReader("Subject: x\r\n\r\n"+strings.Repeat("x", size)))
		if err != nil {
			t.Fatal(err)
		}
		return ids[0]
	}
	// 600 KiB and 420 KiB open: together all but 4 KiB of the budget.
	big, second, other := hold(1, 200<<10), hold(2, 140<<10), hold(3, 2<<10)
	impatient := func() context.Context {
		c, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
		t.Cleanup(cancel)
		return c
	}
	released := make(chan error, 2)
	go func() { _, _, err := svc.Release(ctx, op, big, "op"); released <- err }()
	<-downstream.entered
	go func() { _, _, err := svc.Release(impatient(), op, second, "op"); released <- err }()
	inFlight := 1
	select {
	case err := <-released:
		if !errors.Is(err, quarantine.ErrBusy) {
			t.Errorf("the reseller's second release while its first holds its share: %v, want ErrBusy", err)
		}
	case <-downstream.entered:
		inFlight++
		t.Error("the reseller's second release opened past its share of max_open_bytes")
	}
	if _, err := svc.Open(impatient(), op, other, func(quarantine.Item, []byte) {}); err != nil {
		t.Errorf("another reseller's preview while the first's releases are delivered: %v", err)
	}
	close(downstream.proceed)
	for range inFlight {
		if err := <-released; err != nil {
			t.Errorf("release: %v", err)
		}
	}
}

// opened returns an item and its message, read through Open.
func opened(svc *quarantine.Service, id int64) (quarantine.Item, []byte, error) {
	var msg []byte
	it, err := svc.Open(context.Background(), tracking.Scope{Operator: true}, id, func(_ quarantine.Item, m []byte) { msg = m })
	return it, msg, err
}

// openStore is a fresh SQLite store with the quarantine table.
func openStore(t *testing.T) *store.Store {
	t.Helper()
	return quarantineStore(t, store.DefaultConfig(), t.TempDir())
}

// openPostgresStore opens a private PostgreSQL database with the
// quarantine.
func openPostgresStore(t *testing.T) *store.Store {
	t.Helper()
	return quarantineStore(t, store.Config{Driver: store.Postgres, DSN: testenv.PostgresDB(t), Timeout: 5 * time.Second}, "")
}

// quarantineStore opens the store cfg names with the quarantine schema,
// closed at the end of the test.
func quarantineStore(t *testing.T, cfg store.Config, dataDir string) *store.Store {
	t.Helper()
	st, err := store.Open(cfg, dataDir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if err := st.MigrateQuarantine(context.Background()); err != nil {
		t.Fatal(err)
	}
	return st
}

// TestExpiryOnANodeWhoseClockIsAheadKeepsHeldMail: on PostgreSQL every
// node runs expiry against the one shared quarantine. A node whose clock
// ran 15 days ahead deleted, at its next run, mail held for a day by its
// peers with a 14-day retention. The database's clock, which every node
// reads alike, now sets the cutoff; the node's own skew does not count.
func TestExpiryOnANodeWhoseClockIsAheadKeepsHeldMail(t *testing.T) {
	ctx := context.Background()
	st := openPostgresStore(t)
	at := func(d time.Duration) func() time.Time { return func() time.Time { return time.Now().Add(d) } }
	day := 24 * time.Hour
	hold := func(clock func() time.Time, queueID string) {
		svc := quarantine.New(quarantine.DefaultConfig(), st, &recorder{}, clock)
		if _, err := svc.Hold(ctx, quarantine.Item{QueueID: queueID, Domain: "a.example", DomainID: 1, Sender: "s@x.example",
			Recipients: []string{"bob@a.example"}}, strings.NewReader("Subject: x\r\n\r\nx\r\n")); err != nil {
			t.Fatal(err)
		}
	}
	hold(at(-day), "FRESH")
	hold(at(-15*day), "EXPIRED")
	ahead := quarantine.New(quarantine.DefaultConfig(), st, &recorder{}, at(15*day))
	if n, err := ahead.Prune(ctx); err != nil || n != 1 {
		t.Fatalf("expiry by the node 15 days ahead deleted %d items (%v), want the one 15 days old", n, err)
	}
	items, err := ahead.List(ctx, quarantine.Filter{Scope: tracking.Scope{Operator: true}})
	if err != nil {
		t.Fatal(err)
	}
	if len(items) != 1 || items[0].QueueID != "FRESH" {
		t.Fatalf("held after the expiry: %+v, want FRESH", items)
	}
}

// TestHeldTextIsOnePrintableLine: the subject and Message-ID a sender
// wrote are held as one printable line of valid UTF-8, as message
// tracking keeps them. A raw 8-bit subject used to fail the insert on
// PostgreSQL (SQLSTATE 22021: the message was delivered tagged instead and
// the quarantine reported failing), and control characters reached the
// API, the CLI's terminal and every other reader.
func TestHeldTextIsOnePrintableLine(t *testing.T) {
	stores := map[string]*store.Store{"sqlite": openStore(t), "postgres": openPostgresStore(t)}
	tests := []struct{ name, subject, messageID, wantSubject, wantMessageID string }{
		{"plain", "Invoice 7", "<a@x.example>", "Invoice 7", "<a@x.example>"},
		{"raw Latin-1", "caf\xe9 cr\xe8me", "<caf\xe9@x.example>", "caf? cr?me", "<caf?@x.example>"},
		{"NUL", "a\x00b", "<a\x00b@x.example>", "a b", "<a b@x.example>"},
		{"terminal escapes", "\x1b[31mRED\x1b]0;title\a", "<e@x>", " [31mRED ]0;title ", "<e@x>"},
		{"header injection", "hi\r\nBcc: victim@example.org", "<h@x>\r\nX: y", "hi  Bcc: victim@example.org", "<h@x>  X: y"},
		{"too long", strings.Repeat("é", 600), "<l@x>", strings.Repeat("é", 499), "<l@x>"},
	}
	for name, st := range stores {
		svc := quarantine.New(quarantine.DefaultConfig(), st, &recorder{}, nil)
		for _, tt := range tests {
			t.Run(name+"/"+tt.name, func(t *testing.T) {
				ids, err := svc.Hold(context.Background(), quarantine.Item{Domain: "a.example", DomainID: 1, Sender: "s@x.example",
					Recipients: []string{"bob@a.example"}, Subject: tt.subject, MessageID: tt.messageID}, strings.NewReader("Subject: x\r\n\r\nx\r\n"))
				if err != nil {
					t.Fatalf("hold: %v", err)
				}
				it, err := svc.Item(context.Background(), tracking.Scope{Operator: true}, ids[0])
				if err != nil {
					t.Fatal(err)
				}
				if it.Subject != tt.wantSubject || it.MessageID != tt.wantMessageID {
					t.Errorf("held subject %.60q, Message-ID %q; want %.60q, %q", it.Subject, it.MessageID, tt.wantSubject, tt.wantMessageID)
				}
			})
		}
	}
}

// TestReleaseNamesTheDomainThatHeldIt: a release hands the Deliverer the
// id of the domain that held the message with its name, so a name deleted
// or re-created since (perhaps by another tenant) is not delivered to
// (smtpd's TestReleaseOnlyWhileTheNameIsTheSameDomain); a refused
// delivery leaves the message held.
func TestReleaseNamesTheDomainThatHeldIt(t *testing.T) {
	ctx := context.Background()
	op := tracking.Scope{Operator: true}
	downstream := &recorder{fail: true}
	svc := quarantine.New(quarantine.DefaultConfig(), openStore(t), downstream, nil)
	ids, err := svc.Hold(ctx, quarantine.Item{Domain: "a.example", DomainID: 7, CustomerID: 1, Sender: "s@x.example",
		Recipients: []string{"bob@a.example"}}, strings.NewReader("Subject: x\r\n\r\nx\r\n"))
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err = svc.Release(ctx, op, ids[0], "op"); !errors.Is(err, quarantine.ErrDelivery) {
		t.Fatalf("release: %v, want ErrDelivery", err)
	}
	if want := (quarantine.HeldDomain{ID: 7, CustomerID: 1, Name: "a.example"}); len(downstream.held) != 1 || downstream.held[0] != want {
		t.Errorf("Deliverer got %v, want %v", downstream.held, want)
	}
	if it, err := svc.Item(ctx, op, ids[0]); err != nil || it.State != quarantine.StateHeld {
		t.Fatalf("after the refused release: %v %v, want held", it.State, err)
	}
}

// TestDamagedBodyIsAnErrorNotAMessage: a held item whose stored body is
// corrupt or gone (a restore from a partial backup, a hand-edited table)
// is refused with an error by a release (nothing delivered, the item
// stays held) and by a preview. The preview used to get no message and
// no error, as for a released item: an empty message shown as if it
// were the mail.
func TestDamagedBodyIsAnErrorNotAMessage(t *testing.T) {
	for _, tc := range []struct {
		name   string
		damage string
	}{
		{"corrupt", `UPDATE quarantine_bodies SET body = x'1f8b0800dead'`},
		{"truncated", `UPDATE quarantine_bodies SET body = substr(body, 1, length(body) - 9)`},
		{"missing", `DELETE FROM quarantine_bodies`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			st := openStore(t)
			downstream := &recorder{}
			svc := quarantine.New(quarantine.DefaultConfig(), st, downstream, nil)
			id := holdOne(t, svc)
			if _, err := st.DB.ExecContext(ctx, tc.damage); err != nil {
				t.Fatal(err)
			}
			if _, _, err := svc.Release(ctx, tracking.Scope{Operator: true}, id, "op"); err == nil {
				t.Error("release of a damaged message succeeded")
			}
			if len(downstream.held) != 0 {
				t.Errorf("delivered %d times", len(downstream.held))
			}
			if _, msg, err := opened(svc, id); err == nil {
				t.Errorf("preview of a damaged message: no error, %d bytes", len(msg))
			}
			if it, err := svc.Item(ctx, tracking.Scope{Operator: true}, id); err != nil || it.State != quarantine.StateHeld {
				t.Errorf("after the failed release: %v %v", it.State, err)
			}
		})
	}
}

// flakyFinish is the real store whose FinishRelease fails its first
// failures calls, as a database blip would.
type flakyFinish struct {
	*store.Store
	failures int
	calls    int
}

func (f *flakyFinish) FinishRelease(ctx context.Context, claim quarantine.Item, delivered bool, now time.Time) error {
	f.calls++
	if f.calls <= f.failures {
		return errors.New("injected: database is locked")
	}
	return f.Store.FinishRelease(ctx, claim, delivered, now)
}

// TestReleaseOutcomeSurvivesABlip: writing a release's outcome is retried.
// Written once, a failure left the item releasing for good: after the
// customer's server refused, it could be neither released again nor
// deleted; after a delivery, it still counted against the domain's cap.
func TestReleaseOutcomeSurvivesABlip(t *testing.T) {
	for _, tc := range []struct {
		name      string
		refuse    bool
		wantState quarantine.State
	}{
		{"customer's server refuses", true, quarantine.StateHeld},
		{"delivered", false, quarantine.StateReleased},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			st := &flakyFinish{Store: openStore(t), failures: 1}
			downstream := &recorder{fail: tc.refuse}
			svc := quarantine.New(quarantine.DefaultConfig(), st, downstream, nil)
			op := tracking.Scope{Operator: true}
			id := holdOne(t, svc)
			_, _, err := svc.Release(ctx, op, id, "op")
			if (err != nil) != tc.refuse {
				t.Fatalf("release: %v", err)
			}
			it, err := svc.Item(ctx, op, id)
			if err != nil || it.State != tc.wantState {
				t.Fatalf("after the release: %q %v, want %q", it.State, err, tc.wantState)
			}
			if tc.refuse {
				downstream.fail = false
				if _, _, err := svc.Release(ctx, op, id, "op"); err != nil {
					t.Fatalf("second release once the server takes it: %v", err)
				}
			}
			if len(downstream.got) != 1 {
				t.Errorf("delivered %d times, want once", len(downstream.got))
			}
		})
	}
}

// lostClaimReply is the real store whose ClaimRelease takes effect but
// answers an error, once: the reply to its update lost (the connection to
// PostgreSQL broken after the statement went out, or the store's timeout
// passing just as it committed).
type lostClaimReply struct {
	*store.Store
	lost bool
}

func (l *lostClaimReply) ClaimRelease(ctx context.Context, scope tracking.Scope, id int64, by string, now time.Time) (quarantine.Item, []byte, error) {
	it, body, err := l.Store.ClaimRelease(ctx, scope, id, by, now)
	if err == nil && !l.lost {
		l.lost = true
		return it, nil, errors.New("injected: claim a release: timeout: context deadline exceeded")
	}
	return it, body, err
}

// TestReleaseWhoseClaimFailedCanBeTriedAgain: a release whose claim
// failed delivered nothing, so the message must stay releasable. A claim
// that took effect though its reply was lost left the item releasing:
// the next release was told a delivery was under way, and half an hour
// later that an earlier release had not finished and whether it was
// delivered was unknown, so it was never released, and the retention
// deleted mail the customer had asked for and never got.
func TestReleaseWhoseClaimFailedCanBeTriedAgain(t *testing.T) {
	ctx := context.Background()
	st := &lostClaimReply{Store: openStore(t)}
	downstream := &recorder{}
	svc := quarantine.New(quarantine.DefaultConfig(), st, downstream, nil)
	op := tracking.Scope{Operator: true}
	id := holdOne(t, svc)
	if _, _, err := svc.Release(ctx, op, id, "op"); err == nil {
		t.Fatal("the release whose claim failed succeeded")
	}
	if len(downstream.got) != 0 {
		t.Fatal("the release whose claim failed delivered")
	}
	if it, err := svc.Item(ctx, op, id); err != nil || it.State != quarantine.StateHeld {
		t.Fatalf("after the failed claim: %q %v, want held", it.State, err)
	}
	if _, _, err := svc.Release(ctx, op, id, "op"); err != nil {
		t.Fatalf("the release tried again: %v", err)
	}
	if len(downstream.got) != 1 {
		t.Errorf("delivered %d times, want once", len(downstream.got))
	}
}

// trackLog collects the message-tracking records the service makes.
type trackLog []tracking.Record

func (l *trackLog) Record(r tracking.Record) { *l = append(*l, r) }

func (l *trackLog) Room() (free, size int) { return math.MaxInt, math.MaxInt }

// TestReleaseAndDeleteAreTracked: a release and a delete each leave a
// message-tracking record naming who did it, so that a
// customer asking after a message finds it held and then released or
// deleted, and by whom; a delete refused (the item is gone already)
// records nothing.
func TestReleaseAndDeleteAreTracked(t *testing.T) {
	ctx := context.Background()
	op := tracking.Scope{Operator: true}
	var log trackLog
	svc := quarantine.New(quarantine.DefaultConfig(), openStore(t), &recorder{}, nil)
	svc.TrackReleases(&log)
	hold := func() int64 {
		ids, err := svc.Hold(ctx, quarantine.Item{Domain: "a.example", DomainID: 7, CustomerID: 1, Sender: "s@x.example",
			Recipients: []string{"bob@a.example"}, QueueID: "Q1"}, strings.NewReader("Subject: x\r\n\r\nx\r\n"))
		if err != nil {
			t.Fatal(err)
		}
		return ids[0]
	}
	released, deleted := hold(), hold()
	if _, _, err := svc.Release(ctx, op, released, "alice@reseller"); err != nil {
		t.Fatal(err)
	}
	if err := svc.Delete(ctx, op, deleted, "bob@customer"); err != nil {
		t.Fatal(err)
	}
	if err := svc.Delete(ctx, op, deleted, "bob@customer"); err == nil {
		t.Fatal("a deleted item was deleted again")
	}
	want := []struct {
		rcpt   string
		status tracking.Status
		reply  string
	}{
		{"bob@a.example", tracking.StatusDelivered, "released from the quarantine by alice@reseller"},
		{"bob@a.example", tracking.StatusQuarantined, "deleted from the quarantine by bob@customer"},
	}
	if len(log) != len(want) {
		t.Fatalf("%d records, want %d: %+v", len(log), len(want), log)
	}
	for i, w := range want {
		r := log[i]
		if r.Recipient != w.rcpt || r.Status != w.status || r.Reply != w.reply || r.QueueID != "Q1" || r.DomainID != 7 || r.CustomerID != 1 {
			t.Errorf("record %d = %s %s %q (queue %s, domain %d, customer %d), want %s %s %q of Q1, domain 7, customer 1",
				i, r.Recipient, r.Status, r.Reply, r.QueueID, r.DomainID, r.CustomerID, w.rcpt, w.status, w.reply)
		}
	}
}

// TestHeldMessageCanBeOpenedAgain: a message is held only if a release
// and a preview can open it again. smtp.max_message_bytes may be set past
// the 64 MiB a held message is opened within (with a memory_budget to
// match): such a message was held with 250 and then refused by every
// release ("stored message too large"), lost. Now Hold refuses it
// (ErrTooLarge), stores nothing, and smtpd delivers it tagged.
func TestHeldMessageCanBeOpenedAgain(t *testing.T) {
	ctx := context.Background()
	op := tracking.Scope{Operator: true}
	cfg := quarantine.DefaultConfig()
	cfg.MaxBytesPerDomain = 1 << 30
	downstream := &recorder{}
	svc := quarantine.New(cfg, openStore(t), downstream, nil)
	hold := func(size int64, declared int64) ([]int64, error) {
		return svc.Hold(ctx, quarantine.Item{Domain: "a.example", DomainID: 1, Sender: "s@x.example", Recipients: []string{"bob@a.example"},
			Size: declared}, io.LimitReader(zeros{}, size))
	}
	for _, declared := range []int64{0, quarantine.MaxMessage + 1} {
		if ids, err := hold(quarantine.MaxMessage+1, declared); !errors.Is(err, quarantine.ErrTooLarge) {
			t.Fatalf("a message past MaxMessage (size given %d): %v %v, want ErrTooLarge", declared, ids, err)
		}
	}
	if items, err := svc.List(ctx, quarantine.Filter{Scope: op}); err != nil || len(items) != 0 {
		t.Fatalf("after the refused holds the quarantine lists %d items (%v), want none", len(items), err)
	}
	ids, err := hold(quarantine.MaxMessage, quarantine.MaxMessage)
	if err != nil {
		t.Fatalf("a message of MaxMessage bytes: %v", err)
	}
	if _, _, err := svc.Release(ctx, op, ids[0], "op"); err != nil || len(downstream.got) != 1 {
		t.Fatalf("release of a message of MaxMessage bytes: %v, %d delivered", err, len(downstream.got))
	}
}

// zeros reads as endless zero bytes.
type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

// TestDeliveredReleaseIsTrackedWhenItsStateIsNot: a release the customer's
// server took is in the message log even when the store could not record
// it on the item (every retry failed). It was not: the log showed the
// message quarantined for good, though it sat in the recipient's mailbox,
// and the item itself, left releasing, can never be released again to
// add the record.
func TestDeliveredReleaseIsTrackedWhenItsStateIsNot(t *testing.T) {
	ctx := context.Background()
	var log trackLog
	downstream := &recorder{}
	svc := quarantine.New(quarantine.DefaultConfig(), &flakyFinish{Store: openStore(t), failures: 1000}, downstream, nil)
	svc.TrackReleases(&log)
	ids, err := svc.Hold(ctx, quarantine.Item{Domain: "a.example", DomainID: 7, CustomerID: 1, Sender: "s@x.example",
		Recipients: []string{"bob@a.example"}, QueueID: "Q1"}, strings.NewReader("Subject: x\r\n\r\nx\r\n"))
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := svc.Release(ctx, tracking.Scope{Operator: true}, ids[0], "alice@reseller"); err == nil {
		t.Fatal("release: no error, though its outcome could not be recorded")
	}
	if len(downstream.got) != 1 {
		t.Fatalf("delivered %d times, want once", len(downstream.got))
	}
	if len(log) != 1 || log[0].Status != tracking.StatusDelivered || log[0].Downstream != "250 2.0.0 queued" {
		t.Fatalf("tracked %+v, want the delivery", log)
	}
}

// TestExpiryIsTracked: a message the retention deletes while still held
// leaves a message-tracking record, as a delete by hand does; one that was
// released or deleted before has its record already and gets no other.
// The log showed an expired message quarantined for good, though the
// quarantine no longer had it.
func TestExpiryIsTracked(t *testing.T) {
	ctx := context.Background()
	op := tracking.Scope{Operator: true}
	clock := time.Date(2027, 3, 1, 9, 0, 0, 0, time.UTC)
	var log trackLog
	svc := quarantine.New(quarantine.DefaultConfig(), openStore(t), &recorder{}, func() time.Time { return clock })
	svc.TrackReleases(&log)
	hold := func(rcpt string) int64 {
		ids, err := svc.Hold(ctx, quarantine.Item{Domain: "a.example", DomainID: 7, CustomerID: 1, Sender: "s@x.example",
			Recipients: []string{rcpt}, QueueID: "Q1"}, strings.NewReader("Subject: x\r\n\r\nx\r\n"))
		if err != nil {
			t.Fatal(err)
		}
		return ids[0]
	}
	hold("held@a.example")
	released, deleted := hold("released@a.example"), hold("deleted@a.example")
	if _, _, err := svc.Release(ctx, op, released, "op"); err != nil {
		t.Fatal(err)
	}
	if err := svc.Delete(ctx, op, deleted, "op"); err != nil {
		t.Fatal(err)
	}
	log = nil
	clock = clock.Add(quarantine.DefaultConfig().Retention + time.Hour)
	if n, err := svc.Prune(ctx); err != nil || n != 3 {
		t.Fatalf("prune: %d %v, want 3", n, err)
	}
	if len(log) != 1 || log[0].Recipient != "held@a.example" || log[0].Status != tracking.StatusQuarantined ||
		log[0].Reply != "deleted from the quarantine after the retention" || log[0].QueueID != "Q1" || log[0].DomainID != 7 {
		t.Fatalf("tracked %+v, want the expiry of the item still held", log)
	}
}

// holdOne holds a small message for bob@a.example and returns its id.
func holdOne(t *testing.T, svc *quarantine.Service) int64 {
	t.Helper()
	ids, err := svc.Hold(context.Background(), quarantine.Item{Domain: "a.example", DomainID: 1, Sender: "s@x.example",
		Recipients: []string{"bob@a.example"}}, strings.NewReader("Subject: hi\r\n\r\nbody\r\n"))
	if err != nil {
		t.Fatal(err)
	}
	return ids[0]
}

// slowTracking is message tracking's store, slow (each write takes a few
// milliseconds) or down (every write fails).
type slowTracking struct {
	down   bool
	stored atomic.Int64
}

func (s *slowTracking) InsertTracking(_ context.Context, recs []tracking.Record) error {
	if s.down {
		return errors.New("tracking store down")
	}
	time.Sleep(2 * time.Millisecond)
	s.stored.Add(int64(len(recs)))
	return nil
}

func (s *slowTracking) PruneTracking(context.Context, time.Time) (int64, error) { return 0, nil }

// TestExpiryWaitsForTrackingRoom: the expiry of many held messages puts
// its records no faster than message tracking writes them, so it pushes
// none out of the buffer (there, the records of the mail of the last
// seconds); with tracking's store down it waits only trackingStall, then
// ends as before.
func TestExpiryWaitsForTrackingRoom(t *testing.T) {
	defer quarantine.SetTrackingStall(200 * time.Millisecond)()
	const items, rcpts = 10, 30
	for _, down := range []bool{false, true} {
		t.Run(fmt.Sprintf("tracking down %v", down), func(t *testing.T) {
			ctx := context.Background()
			clock := time.Date(2027, 3, 1, 9, 0, 0, 0, time.UTC)
			cfg := tracking.DefaultConfig()
			cfg.Buffer, cfg.BatchSize, cfg.FlushInterval = 50, 10, 10*time.Millisecond
			st := &slowTracking{down: down}
			rec, err := tracking.NewRecorder(cfg, st, nil, nil, nil)
			if err != nil {
				t.Fatal(err)
			}
			rctx, stop := context.WithCancel(ctx)
			ran := make(chan error, 1)
			go func() { ran <- rec.Run(rctx) }()
			svc := quarantine.New(quarantine.DefaultConfig(), openStore(t), &recorder{}, func() time.Time { return clock })
			svc.TrackReleases(rec)
			for i := range items {
				to := make([]string, rcpts)
				for j := range to {
					to[j] = fmt.Sprintf("r%d.%d@a.example", i, j)
				}
				if _, err := svc.Hold(ctx, quarantine.Item{Domain: "a.example", DomainID: 7, CustomerID: 1, Sender: "s@x.example",
					Recipients: to, QueueID: "Q1"}, strings.NewReader("Subject: x\r\n\r\nx\r\n")); err != nil {
					t.Fatal(err)
				}
			}
			clock = clock.Add(quarantine.DefaultConfig().Retention + time.Hour)
			// An item per recipient.
			if n, err := svc.Prune(ctx); err != nil || n != items*rcpts {
				t.Fatalf("prune: %d %v, want %d", n, err, items*rcpts)
			}
			stop()
			<-ran
			if got := st.stored.Load(); !down && got != items*rcpts {
				t.Errorf("tracking stored %d expiry records, want %d: the expiry pushed records out of its buffer", got, items*rcpts)
			}
		})
	}
}

// callerLeaves is a customer's server that takes the message and, before
// its reply reaches us, sees the releasing caller go away (a browser tab
// closed, a proxy's or the CLI's timeout); like the relay, it loses the
// reply when the delivery's context ends: the connection is closed.
type callerLeaves struct {
	leave     context.CancelFunc
	delivered int
}

func (c *callerLeaves) Deliver(ctx context.Context, _ quarantine.HeldDomain, _ string, _ bool, _ []string, _ []byte) (string, error) {
	c.delivered++
	c.leave()
	if err := ctx.Err(); err != nil {
		return "", err
	}
	return "250 2.0.0 queued", nil
}

// TestReleaseOutlivesItsCaller: a release whose caller goes away while
// the customer's server takes the message ends as it would have: released,
// once. The delivery ran in the request's context, whose end closed the
// connection before the server's 250 was read: the item went back to
// held, and the next release delivered the message a second time.
func TestReleaseOutlivesItsCaller(t *testing.T) {
	op := tracking.Scope{Operator: true}
	ctx, leave := context.WithCancel(context.Background())
	downstream := &callerLeaves{leave: leave}
	svc := quarantine.New(quarantine.DefaultConfig(), openStore(t), downstream, nil)
	ids, err := svc.Hold(ctx, quarantine.Item{Domain: "a.example", DomainID: 7, CustomerID: 1, Sender: "s@x.example",
		Recipients: []string{"bob@a.example"}}, strings.NewReader("Subject: x\r\n\r\nx\r\n"))
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := svc.Release(ctx, op, ids[0], "op"); err != nil {
		t.Errorf("release whose caller left: %v", err)
	}
	if _, _, err := svc.Release(context.Background(), op, ids[0], "op"); !errors.Is(err, quarantine.ErrNotHeld) {
		t.Errorf("second release: %v, want ErrNotHeld", err)
	}
	if downstream.delivered != 1 {
		t.Errorf("delivered %d times, want once", downstream.delivered)
	}
}

// heldUp is a customer's server that takes each message when the test
// says: entered tells that a delivery started, proceed lets it finish.
type heldUp struct {
	entered, proceed chan struct{}
	delivered        atomic.Int32
}

func (h *heldUp) Deliver(context.Context, quarantine.HeldDomain, string, bool, []string, []byte) (string, error) {
	h.entered <- struct{}{}
	<-h.proceed
	h.delivered.Add(1)
	return "250 2.0.0 queued", nil
}

// lostReply is the real store whose first FinishRelease is written but
// answered with an error, as a connection lost after its commit would
// be; between the two, meanwhile runs.
type lostReply struct {
	*store.Store
	meanwhile func()
	calls     int
}

func (l *lostReply) FinishRelease(ctx context.Context, claim quarantine.Item, delivered bool, now time.Time) error {
	l.calls++
	err := l.Store.FinishRelease(ctx, claim, delivered, now)
	if l.calls == 1 && err == nil {
		l.meanwhile()
		return errors.New("injected: connection reset after the commit")
	}
	return err
}

// TestRetriedOutcomeFinishesOnlyItsOwnClaim: a failed release's outcome
// whose write is retried, though the first write was done (its reply lost),
// does not touch the claim another release made in between. The retry
// put that claim back to held while its delivery was under way, so a
// third release delivered the message as well: twice.
func TestRetriedOutcomeFinishesOnlyItsOwnClaim(t *testing.T) {
	ctx := context.Background()
	op := tracking.Scope{Operator: true}
	st := openStore(t)
	slow := &heldUp{entered: make(chan struct{}), proceed: make(chan struct{})}
	other := quarantine.New(quarantine.DefaultConfig(), st, slow, nil)
	third := &recorder{}
	later := quarantine.New(quarantine.DefaultConfig(), st, third, nil)
	ids, err := other.Hold(ctx, quarantine.Item{Domain: "a.example", DomainID: 7, CustomerID: 1, Sender: "s@x.example",
		Recipients: []string{"bob@a.example"}}, strings.NewReader("Subject: x\r\n\r\nx\r\n"))
	if err != nil {
		t.Fatal(err)
	}
	otherDone := make(chan error, 1)
	flaky := &lostReply{Store: st, meanwhile: func() {
		go func() {
			_, _, err := other.Release(ctx, op, ids[0], "other node")
			otherDone <- err
		}()
		<-slow.entered
	}}
	refused := quarantine.New(quarantine.DefaultConfig(), flaky, &recorder{fail: true}, nil)
	if _, _, err := refused.Release(ctx, op, ids[0], "first"); !errors.Is(err, quarantine.ErrDelivery) {
		t.Fatalf("first release: %v, want ErrDelivery", err)
	}
	if _, _, err := later.Release(ctx, op, ids[0], "third"); !errors.Is(err, quarantine.ErrNotHeld) {
		t.Errorf("release while another delivers: %v, want ErrNotHeld", err)
	}
	close(slow.proceed)
	if err := <-otherDone; err != nil {
		t.Fatalf("the other node's release: %v", err)
	}
	if n := int(slow.delivered.Load()) + len(third.got); n != 1 {
		t.Errorf("delivered %d times, want once", n)
	}
}

// TestAbandonedClaimIsSaidSo: a release whose node stopped mid-delivery
// leaves its claim, which nothing finishes. While it is young it may be
// a live release, answered "being released"; older than any live release
// can be, a release or delete says when the release began and that its
// delivery is unknown (it answered "being released right now" for ever),
// and when retention removes it the message log says so: its log ended at
// "quarantined", as if no release had been tried.
func TestAbandonedClaimIsSaidSo(t *testing.T) {
	ctx := context.Background()
	op := tracking.Scope{Operator: true}
	st := openStore(t)
	began := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	now := began
	svc := quarantine.New(quarantine.DefaultConfig(), st, &recorder{}, func() time.Time { return now })
	var log trackLog
	svc.TrackReleases(&log)
	ids, err := svc.Hold(ctx, quarantine.Item{Domain: "a.example", DomainID: 7, CustomerID: 1, Sender: "s@x.example",
		Recipients: []string{"bob@a.example"}, QueueID: "Q1"}, strings.NewReader("Subject: x\r\n\r\nx\r\n"))
	if err != nil {
		t.Fatal(err)
	}
	// The node that claimed it stopped before the outcome was written.
	if _, _, err := st.ClaimRelease(ctx, op, ids[0], "dead node", began); err != nil {
		t.Fatal(err)
	}
	tries := map[string]func() error{
		"release": func() error { _, _, err := svc.Release(ctx, op, ids[0], "op"); return err },
		"delete":  func() error { return svc.Delete(ctx, op, ids[0], "op") },
	}
	for _, age := range []time.Duration{time.Minute, quarantine.ClaimAbandonedAfter} {
		now = began.Add(age)
		for name, try := range tries {
			if err := try(); !errors.Is(err, quarantine.ErrReleasing) {
				t.Errorf("%s of a claim %s old: %v, want ErrReleasing", name, age, err)
			}
		}
	}
	now = began.Add(quarantine.ClaimAbandonedAfter + time.Second)
	for name, try := range tries {
		var abandoned *quarantine.AbandonedError
		err := try()
		if !errors.As(err, &abandoned) || errors.Is(err, quarantine.ErrReleasing) || !errors.Is(err, quarantine.ErrNotHeld) ||
			!abandoned.Since.Equal(began) || !strings.Contains(err.Error(), "2026-03-01T09:00:00Z") || !strings.Contains(err.Error(), "unknown") {
			t.Errorf("%s of an abandoned claim: %v, want an AbandonedError since %s", name, err, began)
		}
	}
	if it, err := svc.Item(ctx, op, ids[0]); err != nil || it.State != quarantine.StateReleasing {
		t.Fatalf("after the refused tries: %q %v, want still releasing", it.State, err)
	}
	if len(log) != 0 {
		t.Fatalf("refused tries recorded %+v", log)
	}
	now = began.Add(quarantine.DefaultConfig().Retention + time.Hour)
	if n, err := svc.Prune(ctx); err != nil || n != 1 {
		t.Fatalf("prune: %d, %v; want the abandoned claim removed", n, err)
	}
	if len(log) != 1 || log[0].Status != tracking.StatusQuarantined || log[0].QueueID != "Q1" ||
		!strings.Contains(log[0].Reply, "after the retention") || !strings.Contains(log[0].Reply, "dead node") ||
		!strings.Contains(log[0].Reply, "2026-03-01T09:00:00Z") || !strings.Contains(log[0].Reply, "unknown") {
		t.Errorf("records of the removed claim: %+v, want one, quarantined, saying its delivery is unknown", log)
	}
}

// TestHeldRowsCountAgainstTheCap: a message is stored once, but each of
// its recipients' items keeps the sender, the recipient, the subject and
// the Message-ID in a row of its own, and those count against the cap too.
// Counted as the message alone, a spammer's 2 KB message (a 998-byte
// subject and Message-ID) to 100 recipients stored 200 KB of rows for 2
// KB of the cap: a 1 GiB cap let a domain's quarantine grow past 100 GiB.
func TestHeldRowsCountAgainstTheCap(t *testing.T) {
	ctx := context.Background()
	const maxBytes = 1 << 20
	cfg := quarantine.DefaultConfig()
	cfg.MaxBytesPerDomain = maxBytes
	svc := quarantine.New(cfg, openStore(t), &recorder{}, nil)
	subject, msgID := strings.Repeat("s", 998), "<"+strings.Repeat("m", 996)+">"
	msg := "Subject: " + subject + "\r\nMessage-ID: " + msgID + "\r\n\r\nx\r\n"
	rcpts := make([]string, 100)
	for i := range rcpts {
		rcpts[i] = fmt.Sprintf("%s%02d@a.example", strings.Repeat("r", 62), i)
	}
	var stored int64
	for holds := 0; ; holds++ {
		it := quarantine.Item{QueueID: "Q", Domain: "a.example", DomainID: 1, Sender: strings.Repeat("x", 64) + "@spam.example",
			Recipients: rcpts, Subject: subject, MessageID: msgID, Symbols: []string{"BAYES_SPAM", "URIBL_BLACK"}}
		ids, err := svc.Hold(ctx, it, strings.NewReader(msg))
		if errors.Is(err, quarantine.ErrOverCap) {
			if holds == 0 {
				t.Fatal("the first message was refused")
			}
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		stored += int64(len(msg))
		for _, r := range rcpts[:len(ids)] {
			stored += int64(len(it.QueueID) + len(it.Domain) + len(it.Sender) + len(r) + len(subject) + len(msgID) + len("BAYES_SPAM URIBL_BLACK"))
		}
		if stored > maxBytes {
			t.Fatalf("%d messages held: %d bytes of messages and rows under a cap of %d", holds+1, stored, maxBytes)
		}
	}
}

// TestOpenAllocatesWhatItIsCounted: opening a held message (a preview, a
// release) allocates about what max_open_bytes counts for it, openFactor
// times its size. The message was decompressed into a buffer grown by
// doubling: a 25 MB message allocated 108 MB on SQLite and 128 MB on
// PostgreSQL, against the 75 MB counted, the rest garbage no budget saw.
func TestOpenAllocatesWhatItIsCounted(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation bounds mean nothing under the race detector")
	}
	msg := make([]byte, 8<<20)
	rand.Read(msg) // incompressible: the stored copy is as large
	svc := quarantine.New(quarantine.DefaultConfig(), openStore(t), &recorder{}, nil)
	ids, err := svc.Hold(context.Background(), quarantine.Item{Domain: "a.example", DomainID: 1, Sender: "s@x.example",
		Recipients: []string{"bob@a.example"}, Size: int64(len(msg))}, bytes.NewReader(msg))
	if err != nil {
		t.Fatal(err)
	}
	open := func() uint64 {
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		if _, _, err := opened(svc, ids[0]); err != nil {
			t.Fatal(err)
		}
		runtime.ReadMemStats(&after)
		return after.TotalAlloc - before.TotalAlloc
	}
	open() // the store's statements prepared
	if got, counted := open(), uint64(quarantine.OpenFactor*len(msg)); got > counted+1<<20 {
		t.Errorf("opening a %d-byte message allocated %d bytes, %.1f times its size; max_open_bytes counts %d",
			len(msg), got, float64(got)/float64(len(msg)), counted)
	}
}

// maybeTaken is a customer's server lost after the whole message was sent.
type maybeTaken struct{}

func (maybeTaken) Deliver(context.Context, quarantine.HeldDomain, string, bool, []string, []byte) (string, error) {
	return "", fmt.Errorf("release to bob@a.example: connection reset after the end of data: %w", quarantine.ErrMaybeDelivered)
}

// TestUndeliveredReleaseIsTracked: a release the customer's server did not
// take leaves a message-tracking record saying so, and why, as one it took
// does: asked why a message released from the quarantine never arrived,
// support found it quarantined and nothing more, neither the release nor
// the server's refusal. One whose delivery is unknown (the connection lost
// after the message was sent) says that.
func TestUndeliveredReleaseIsTracked(t *testing.T) {
	for _, tc := range []struct {
		name    string
		deliver quarantine.Deliverer
		want    []string
	}{
		{"refused", &recorder{fail: true}, []string{"a release by alice@reseller was not delivered, still quarantined", "connection refused"}},
		{"maybe taken", maybeTaken{}, []string{"a release by alice@reseller", "whether it was delivered is unknown"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var log trackLog
			svc := quarantine.New(quarantine.DefaultConfig(), openStore(t), tc.deliver, nil)
			svc.TrackReleases(&log)
			ids, err := svc.Hold(context.Background(), quarantine.Item{Domain: "a.example", DomainID: 7, CustomerID: 1, Sender: "s@x.example",
				Recipients: []string{"bob@a.example"}, QueueID: "Q1"}, strings.NewReader("Subject: x\r\n\r\nx\r\n"))
			if err != nil {
				t.Fatal(err)
			}
			if _, _, err := svc.Release(context.Background(), tracking.Scope{Operator: true}, ids[0], "alice@reseller"); !errors.Is(err, quarantine.ErrDelivery) {
				t.Fatalf("release: %v, want a failed delivery", err)
			}
			if len(log) != 1 {
				t.Fatalf("tracked %+v, want the release", log)
			}
			r := log[0]
			for _, w := range tc.want {
				if !strings.Contains(r.Reply, w) {
					t.Errorf("tracked %q, want it to say %q", r.Reply, w)
				}
			}
			if r.Status != tracking.StatusQuarantined || r.Recipient != "bob@a.example" || r.Reference != "Q1" {
				t.Errorf("tracked %s for %s [ref %s], want quarantined for bob@a.example [ref Q1]", r.Status, r.Recipient, r.Reference)
			}
		})
	}
}

// TestOutcomesTheStoreDidNotTakeAreRecordedLater: a release whose outcome
// the store did not answer to record (every retry failed) was left
// releasing, and read half an hour later as a release "whose delivery is
// unknown", though the node knew it. The node keeps the outcome and
// records it when the store answers again: delivered, the item is
// released; refused, it is held again. One still unrecorded when its
// claim is abandoned is given up.
func TestOutcomesTheStoreDidNotTakeAreRecordedLater(t *testing.T) {
	defer quarantine.SetFinishBackoff(time.Millisecond)()
	ctx := context.Background()
	clock := time.Date(2027, 3, 1, 9, 0, 0, 0, time.UTC)
	st := &flakyFinish{Store: openStore(t), failures: math.MaxInt}
	downstream := &recorder{}
	svc := quarantine.New(quarantine.DefaultConfig(), st, downstream, func() time.Time { return clock })
	op := tracking.Scope{Operator: true}
	delivered, refused, abandoned := holdOne(t, svc), holdOne(t, svc), holdOne(t, svc)
	it, _, err := svc.Release(ctx, op, delivered, "op")
	if !errors.Is(err, quarantine.ErrRecordPending) || it.State != quarantine.StateReleased {
		t.Fatalf("delivered, not recorded: %s %v; want released, its record pending", it.State, err)
	}
	downstream.fail = true
	if _, _, err := svc.Release(ctx, op, refused, "op"); !errors.Is(err, quarantine.ErrDelivery) || errors.Is(err, quarantine.ErrRecordPending) {
		t.Fatalf("refused, not recorded: %v; want a failed delivery", err)
	}
	if n := svc.PendingRecords(); n != 2 {
		t.Fatalf("%d pending, want 2", n)
	}
	deliveredAt := clock
	clock = clock.Add(10 * time.Minute)
	calls := st.calls
	svc.RecordPending(ctx)
	if st.calls != calls+1 {
		t.Fatalf("the store still down: %d writes, want the round to end at the first failure", st.calls-calls)
	}
	calls = st.calls
	st.failures = 0
	svc.RecordPending(ctx)
	for id, want := range map[int64]quarantine.State{delivered: quarantine.StateReleased, refused: quarantine.StateHeld} {
		if it, err := svc.Item(ctx, op, id); err != nil || it.State != want {
			t.Errorf("item %d once the store answers: %s %v, want %s", id, it.State, err, want)
		}
	}
	if it, err := svc.Item(ctx, op, delivered); err != nil || !it.ReleasedAt.Equal(deliveredAt) {
		t.Errorf("released at %v, %v; want %v, when the customer's server took it", it.ReleasedAt, err, deliveredAt)
	}
	if n := svc.PendingRecords(); n != 0 || st.calls != calls+2 {
		t.Fatalf("%d pending after %d writes, want none after 2", n, st.calls-calls)
	}

	st.failures = math.MaxInt
	downstream.fail = false
	if _, _, err := svc.Release(ctx, op, abandoned, "op"); !errors.Is(err, quarantine.ErrRecordPending) {
		t.Fatal(err)
	}
	clock = clock.Add(quarantine.ClaimAbandonedAfter + time.Second)
	st.failures = 0
	calls = st.calls
	svc.RecordPending(ctx)
	if n := svc.PendingRecords(); n != 0 || st.calls != calls {
		t.Fatalf("past the abandoned claim's age: %d pending, %d writes; want given up", n, st.calls-calls)
	}
	if it, err := svc.Item(ctx, op, abandoned); err != nil || it.State != quarantine.StateReleasing {
		t.Fatalf("given up: %s %v, want left releasing", it.State, err)
	}

	st.failures = math.MaxInt
	if _, _, err := svc.Release(ctx, op, holdOne(t, svc), "op"); !errors.Is(err, quarantine.ErrRecordPending) {
		t.Fatal(err)
	}
	svc.GiveUpPending("the node stopped")
	if n := svc.PendingRecords(); n != 0 {
		t.Fatalf("%d pending after the node gave them up", n)
	}
	// A release that outlives the stop (its HTTP request past the
	// server's grace) gives its outcome up at once, logged: kept, nothing
	// would ever record it or say so.
	var logged bytes.Buffer
	svc.LogTo(slog.New(slog.NewTextHandler(&logged, nil)))
	if _, _, err := svc.Release(ctx, op, holdOne(t, svc), "op"); !errors.Is(err, quarantine.ErrRecordPending) {
		t.Fatal(err)
	}
	if n := svc.PendingRecords(); n != 0 || !strings.Contains(logged.String(), "given up: the node stopped") {
		t.Fatalf("a release after the stop: %d pending, logged %q; want given up, said so", n, logged.String())
	}
}
