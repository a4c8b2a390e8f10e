package node_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/smtp"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mxgrid/mxgrid/config"
	"github.com/mxgrid/mxgrid/health"
	"github.com/mxgrid/mxgrid/internal/nodetest"
	"github.com/mxgrid/mxgrid/internal/smtptest"
	"github.com/mxgrid/mxgrid/internal/testenv"
	"github.com/mxgrid/mxgrid/node"
	"github.com/mxgrid/mxgrid/scanner"
	"github.com/mxgrid/mxgrid/store"
)

type spamCheck struct{}

func (spamCheck) Name() string { return "always_spam" }
func (spamCheck) Check(context.Context, *scanner.Envelope, *scanner.Message) (scanner.Result, error) {
	return scanner.Result{Symbols: []scanner.Symbol{{Name: "TEST_SPAM", Score: 50}}}, nil
}

// TestStartsWhileDatabaseIsDown: a node started during a PostgreSQL outage
// filters mail at once (static domains), and once the database is back it
// creates its tables and stores the spam sources it kept in its buffer.
func TestStartsWhileDatabaseIsDown(t *testing.T) {
	pg := testenv.StartPostgres(t)
	pg.Stop()
	sink := nodetest.StartSink(t)
	cfg := nodetest.Config(t)
	cfg.Domains = append(cfg.Domains, nodetest.Domain("example.org", sink.Addr))
	cfg.Store = store.Config{Driver: store.Postgres, DSN: pg.DSN, Timeout: time.Second}
	cfg.Events.FlushInterval = 100 * time.Millisecond
	n := nodetest.Start(t, cfg, []scanner.Stage{{Check: spamCheck{}}})

	err := smtp.SendMail(n.SMTPAddr(), nil, "spammer@sender.test", []string{"bob@example.org"},
		[]byte("Subject: offer\r\n\r\nbuy now\r\n"))
	if err == nil || !strings.Contains(err.Error(), "550") {
		t.Fatalf("spam during the outage: %v, want a 550", err)
	}
	if level, conds := n.Health().Report(); level.String() != "degraded" {
		t.Fatalf("readiness during the outage = %s %v, want degraded", level, conds)
	}

	pg.Start()
	st, err := store.Open(cfg.Store, "")
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	deadline := time.Now().Add(30 * time.Second)
	for {
		if count, err := st.CountEvents(context.Background()); err == nil && count == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the event recorded during the outage never reached the database")
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// TestDNSDownIsDegradedAndMailFlows: a node whose DNS server stops
// answering keeps relaying (authentication gives temperror) and says so in
// its readiness, as degraded. The node passed its resolver to the checks,
// which only reported the resolver they built themselves: /readyz stayed
// "ok" through a DNS outage, which the metrics alone showed.
func TestDNSDownIsDegradedAndMailFlows(t *testing.T) {
	n, sink := nodetest.StartWithSink(t, nil) // DNS at a port that refuses
	msg := []byte("From: alice@sender.test\r\nTo: bob@example.org\r\nSubject: hi\r\n\r\nhello\r\n")
	deadline := time.Now().Add(10 * time.Second)
	for sent := 1; ; sent++ {
		if code, text := smtptest.Send(t, n.SMTPAddr(), "alice@sender.test", "bob@example.org", msg); code != 250 {
			t.Fatalf("message %d with DNS down: %d %s", sent, code, text)
		}
		level, conds := n.Health().Report()
		if level == health.Degraded && strings.Contains(fmt.Sprint(conds), "dns") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %d messages with DNS down, readiness %s %v; want degraded naming dns", sent, level, conds)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if got := len(sink.Messages()); got == 0 {
		t.Fatal("nothing relayed")
	}
}

// TestDegradedConditionsAreMetrics: what /readyz lists shows in /metrics
// too, so an alert sees a node running without its GeoIP database or its
// DNS server while mail flows; only the management /readyz said so.
func TestDegradedConditionsAreMetrics(t *testing.T) {
	n, _ := nodetest.StartWithSink(t, func(cfg *config.Config) {
		cfg.Geo.Database = filepath.Join(t.TempDir(), "missing.mmdb")
	})
	msg := []byte("From: alice@sender.test\r\nTo: bob@example.org\r\nSubject: hi\r\n\r\nhello\r\n")
	if code, text := smtptest.Send(t, n.SMTPAddr(), "alice@sender.test", "bob@example.org", msg); code != 250 {
		t.Fatalf("mail with GeoIP and DNS missing: %d %s", code, text)
	}
	level, conds := n.Health().Report()
	if level != health.Degraded {
		t.Fatalf("readiness %s %v, want degraded", level, conds)
	}
	for _, c := range conds {
		if got := metric(t, n, `mxgrid_health_level{component="`+c.Component+`"}`); got != float64(health.Degraded) {
			t.Errorf("%s is %s in /readyz, %v in /metrics", c.Component, c.Level, got)
		}
	}
}

// TestRefusesADatabaseANewerVersionMigrated: rolled back onto a database a
// newer mxgrid migrated, a node does not start (mxgrid serve exits non-zero)
// and says which schema and versions; it ran on the unknown tables.
func TestRefusesADatabaseANewerVersionMigrated(t *testing.T) {
	cfg := nodetest.Config(t)
	st, err := store.Open(cfg.Store, cfg.DataDir)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := st.CheckSchema(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := st.DB.ExecContext(ctx, `INSERT INTO schema_migrations (component, version, applied_at) VALUES ('tenants', 999, $1)`, time.Now().UTC()); err != nil {
		t.Fatal(err)
	}
	st.Close()
	n, err := node.New(ctx, cfg, node.Options{Log: slog.New(slog.DiscardHandler)})
	if err == nil {
		stopped, stop := context.WithCancel(ctx)
		stop()
		n.Run(stopped)
		t.Fatal("node started on a schema newer than it knows")
	}
	if want := "tenants schema is version 999, newer than this mxgrid knows"; !strings.Contains(err.Error(), want) {
		t.Fatalf("start error = %q, want it to say %q", err, want)
	}
}
