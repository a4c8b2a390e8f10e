package node_test

import (
	"context"
	"net/smtp"
	"strings"
	"testing"
	"time"

	"github.com/mxgrid/mxgrid/internal/nodetest"
	"github.com/mxgrid/mxgrid/internal/testenv"
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
