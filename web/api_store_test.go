package web

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/mxgrid/mxgrid/admin"
	"github.com/mxgrid/mxgrid/clientip"
	"github.com/mxgrid/mxgrid/internal/testenv"
	"github.com/mxgrid/mxgrid/store"
)

// TestAdminAPIStoreErrorsOnPostgres: over PostgreSQL, a store error that is
// not a connection failure (a column the query reads is gone: a bug) answers
// 500 and the log carries its cause, while a dropped connection and then an
// unreachable database answer 503 with Retry-After: only an outage says "try
// again later".
func TestAdminAPIStoreErrorsOnPostgres(t *testing.T) {
	pg := testenv.StartPostgres(t)
	st, err := store.Open(store.Config{Driver: store.Postgres, DSN: pg.DSN, Timeout: 3 * time.Second}, "")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	var logs testenv.SyncBuffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	svc := admin.NewService(store.NewTenants(st), admin.ServiceOptions{OperatorToken: operatorSecret, Log: log})
	mux := http.NewServeMux()
	MountAdminAPI(mux.Handle, svc, clientip.New(nil), nil, log)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	list := func() *http.Response {
		t.Helper()
		req, err := http.NewRequest("GET", srv.URL+"/api/v1/resellers", nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer "+operatorSecret)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	if resp := list(); resp.StatusCode != http.StatusOK {
		t.Fatalf("healthy store: %d, want 200", resp.StatusCode)
	}

	tests := []struct {
		name       string
		inject     func()
		code       int
		retryAfter string
		logged     []string // in the log line of the failed request
	}{{
		name: "schema bug",
		inject: func() {
			if _, err := st.DB.ExecContext(context.Background(), `ALTER TABLE resellers RENAME COLUMN accent TO accent_gone`); err != nil {
				t.Fatal(err)
			}
		},
		code:   http.StatusInternalServerError,
		logged: []string{"level=ERROR", `column \"accent\" does not exist`, "42703"},
	}, {
		// The pooled connection is ended by the server (SQLSTATE 57P01),
		// or found dead and redialled in vain.
		name: "connection dropped",
		inject: func() {
			if _, err := st.DB.ExecContext(context.Background(), `ALTER TABLE resellers RENAME COLUMN accent_gone TO accent`); err != nil {
				t.Fatal(err)
			}
			pg.Stop()
		},
		code: http.StatusServiceUnavailable, retryAfter: "5",
		logged: []string{"level=WARN", "tenant store unavailable", "store: query: "},
	}, {
		name:   "database unreachable",
		inject: func() {},
		code:   http.StatusServiceUnavailable, retryAfter: "5",
		logged: []string{"level=WARN", "tenant store unavailable", "dial tcp"},
	}}
	for _, tt := range tests {
		tt.inject()
		before := len(logs.String())
		resp := list()
		if resp.StatusCode != tt.code || resp.Header.Get("Retry-After") != tt.retryAfter {
			t.Errorf("%s: %d Retry-After %q, want %d %q", tt.name, resp.StatusCode, resp.Header.Get("Retry-After"), tt.code, tt.retryAfter)
		}
		logged := logs.String()[before:]
		for _, want := range tt.logged {
			if !strings.Contains(logged, want) {
				t.Errorf("%s: log lacks %q:\n%s", tt.name, want, logged)
			}
		}
	}
}
