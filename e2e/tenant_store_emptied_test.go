package e2e

import (
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mxgrid/mxgrid/internal/nodetest"
	"github.com/mxgrid/mxgrid/store"
	"github.com/mxgrid/mxgrid/tenant"
)

// TestEmptiedDatabaseDoesNotBounceStoredDomains: a node on the embedded
// SQLite store restarted with its database file gone or emptied (deleted
// as a cache, truncated by hand, a disk repair) found a new, empty store:
// its first load answered "no domains" as a success, the node wrote that
// over its snapshot file and refused every stored domain's mail with 550,
// reporting ready. A store that has never held a tenant while this node
// served stored domains is not believed: the snapshot file is served, the
// file kept, and /readyz says what happened.
func TestEmptiedDatabaseDoesNotBounceStoredDomains(t *testing.T) {
	for _, tc := range []struct {
		name string
		// damage is done to the stopped node's database file.
		damage func(t *testing.T, db string)
	}{
		{"database file removed", func(t *testing.T, db string) {
			for _, p := range []string{db, db + "-wal", db + "-shm"} {
				if err := os.Remove(p); err != nil && !os.IsNotExist(err) {
					t.Fatal(err)
				}
			}
		}},
		{"database file emptied", func(t *testing.T, db string) {
			for _, p := range []string{db + "-wal", db + "-shm"} {
				os.Remove(p)
			}
			if err := os.Truncate(db, 0); err != nil {
				t.Fatal(err)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sink := nodetest.StartSink(t)
			cfg := tenantClusterConfig(t, "node-a", "", "")
			cfg.Store = store.Config{Driver: store.SQLite, Timeout: 3 * time.Second}
			n := nodetest.Start(t, cfg, tenantNoChecks)
			res := tenantMustCreate(t, n, "/api/v1/resellers", map[string]any{"name": "R"})
			cust := tenantMustCreate(t, n, "/api/v1/customers", map[string]any{"name": "C", "reseller_id": res})
			tenantMustCreate(t, n, "/api/v1/domains", map[string]any{"name": "known.example", "customer_id": cust, "route": sink.Addr, "tls": "none"})
			tenantWaitAccepted(t, n, "x@known.example", 5*time.Second)
			n.Stop(t)

			tc.damage(t, store.SQLitePath(cfg.Store, cfg.DataDir))
			n2 := nodetest.Start(t, cfg, tenantNoChecks)
			if code := tenantRcpt(t, n2.SMTPAddr(), "x@known.example", true); code != 250 {
				t.Fatalf("restarted on an empty database: RCPT %d for a stored domain, want 250 from the snapshot file", code)
			}
			if got := len(sink.Messages()); got != 1 {
				t.Fatalf("sink holds %d messages, want 1", got)
			}
			resp, err := http.Get("http://" + n2.ManagementAddr() + "/readyz")
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 || !strings.Contains(string(body), "holds no tenants") {
				t.Fatalf("readyz %d %s: want degraded, naming the empty store", resp.StatusCode, body)
			}
			// The file (or its journal) still holds the domain for the
			// next restart: it was not overwritten with the empty store.
			base, err := os.ReadFile(filepath.Join(cfg.DataDir, tenant.SnapshotFile))
			if err != nil {
				t.Fatal(err)
			}
			journal, _ := os.ReadFile(filepath.Join(cfg.DataDir, tenant.SnapshotJournal))
			if !strings.Contains(string(base)+string(journal), "known.example") {
				t.Fatalf("the snapshot file lost the stored domain: %s", base)
			}
		})
	}
}
