package admin_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/mxgrid/mxgrid/admin"
	"github.com/mxgrid/mxgrid/dnsresolver"
	"github.com/mxgrid/mxgrid/dnsresolver/dnstest"
	"github.com/mxgrid/mxgrid/internal/testenv"
	"github.com/mxgrid/mxgrid/store"
	"github.com/mxgrid/mxgrid/tenant"
)

// TestMXProofsOfNestedNamesOneAtATime: two resellers whose customers'
// example.net and mail.example.net both point their MX records at the
// cluster press "Check now" at the same moment, on two nodes sharing
// PostgreSQL, or on one node with SQLite. MX records prove no name under
// or above another reseller's active domain, so only one of them may
// become active; the other stays pending (its TXT token still proves
// it). Checked before the activation's transaction, each check found the
// other's name pending and both became active.
func TestMXProofsOfNestedNamesOneAtATime(t *testing.T) {
	const rounds = 30
	for _, tc := range []struct {
		name string
		// handles are the stores of the two nodes (one node: the same).
		handles func(t *testing.T) (*store.Store, *store.Store)
	}{
		{"sqlite", func(t *testing.T) (*store.Store, *store.Store) {
			st, err := store.Open(store.DefaultConfig(), t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { st.Close() })
			return st, st
		}},
		{"postgres", func(t *testing.T) (*store.Store, *store.Store) {
			dsn := testenv.PostgresDB(t)
			if dsn == "" {
				t.Skip("no PostgreSQL (run through scripts/test.sh)")
			}
			open := func() *store.Store {
				st, err := store.Open(store.Config{Driver: store.Postgres, DSN: dsn, Timeout: 30 * time.Second}, "")
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { st.Close() })
				return st
			}
			return open(), open()
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			dns := dnstest.Start(t)
			first, second := tc.handles(t)
			var nodes [2]*admin.Service
			for i, st := range []*store.Store{first, second} {
				nodes[i] = admin.NewService(store.NewTenants(st), admin.ServiceOptions{
					Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
					Ownership: admin.OwnershipOptions{
						DNS:     dnsresolver.Uncached(dnsresolver.Config{Server: dns.Addr}),
						MXHosts: []string{"mx1.mxgrid.test"},
					},
				})
			}
			op := admin.Operator("test")
			var (
				resellers [2]admin.Principal
				customers [2]int64
			)
			for i := range resellers {
				r, err := nodes[0].CreateReseller(ctx, op, tenant.Reseller{Name: fmt.Sprintf("R%d", i)})
				if err != nil {
					t.Fatal(err)
				}
				resellers[i] = admin.Principal{ResellerID: r.ID, Actor: r.Name}
				c, err := nodes[0].CreateCustomer(ctx, resellers[i], tenant.Customer{Name: "C"})
				if err != nil {
					t.Fatal(err)
				}
				customers[i] = c.ID
			}
			for round := range rounds {
				parent := fmt.Sprintf("example%d.net", round)
				names := [2]string{parent, "mail." + parent}
				var ids [2]int64
				for i, name := range names {
					dns.Add(t, name+". 300 IN MX 10 mx1.mxgrid.test.")
					d, err := nodes[i].CreateDomain(ctx, resellers[i], tenant.DomainRecord{CustomerID: customers[i], Name: name, Route: "192.0.2.1:25"})
					if err != nil {
						t.Fatal(err)
					}
					ids[i] = d.ID
				}
				var (
					wg    sync.WaitGroup
					start = make(chan struct{})
					errs  [2]error
				)
				for i := range nodes {
					wg.Go(func() {
						<-start
						_, errs[i] = nodes[i].VerifyDomain(ctx, resellers[i], ids[i])
					})
				}
				close(start)
				wg.Wait()
				active := 0
				for i := range nodes {
					if errs[i] != nil {
						t.Fatalf("round %d: check of %s: %v", round, names[i], errs[i])
					}
					d, err := nodes[0].GetDomain(ctx, op, ids[i])
					if err != nil {
						t.Fatal(err)
					}
					if d.Status == tenant.StatusActive {
						active++
					}
				}
				if active != 1 {
					t.Fatalf("round %d: %d of %s and %s active by their MX records, want one", round, active, names[0], names[1])
				}
			}
		})
	}
}
