package tenant

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/mxgrid/mxgrid/health"
	"github.com/prometheus/client_golang/prometheus"
)

// fakeLoader fails with err, or returns data.
type fakeLoader struct {
	data Data
	err  error
}

func (f *fakeLoader) Load(context.Context) (Data, error) { return f.data, f.err }

func storeData(version uint64, route string) Data {
	tag := 3.0
	return Data{
		Version:   version,
		Resellers: []Reseller{{ID: 1, Policy: Policy{TagScore: &tag}}},
		Customers: []Customer{{ID: 2, ResellerID: 1}},
		Domains: []DomainRecord{
			{ID: 3, CustomerID: 2, Name: "shared.example", Route: route, TLS: "none"},
			{ID: 4, CustomerID: 2, Name: "store.example", Route: route, TLS: "none"},
		},
		Recipients: map[int64][]string{4: {"bob"}},
	}
}

func newTestSyncer(t *testing.T, dir string, l Loader, static []*Domain) (*Syncer, *health.Registry) {
	t.Helper()
	h := health.New()
	s, err := NewSyncer(context.Background(), SyncConfig{ReloadInterval: time.Second, StaleAfter: 2}, SyncOptions{
		Loader: l, Static: static, DataDir: dir, Health: h,
		Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Registry: prometheus.NewRegistry(),
	})
	if err != nil {
		t.Fatal(err)
	}
	return s, h
}

func TestSyncerStartsFromStoreFileOrNothing(t *testing.T) {
	down := errors.New("connection refused")
	static, err := StaticDomain{Name: "shared.example", Route: "static.test:25", TLS: "none"}.Build()
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name       string
		seedFile   bool // an earlier run with the store up wrote the file
		static     []*Domain
		wantLevel  health.Level
		wantStore  bool // store.example is served
		wantShared string
	}{
		{"store down, no file, no static", false, nil, health.NotReady, false, ""},
		{"store down, no file, static", false, []*Domain{static}, health.Degraded, false, "static.test:25"},
		{"store down, file", true, nil, health.OK, true, "store.test:25"},
		{"store down, file and static: config wins", true, []*Domain{static}, health.OK, true, "static.test:25"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			if tc.seedFile {
				newTestSyncer(t, dir, &fakeLoader{data: storeData(7, "store.test:25")}, nil)
			}
			s, h := newTestSyncer(t, dir, &fakeLoader{err: down}, tc.static)
			if lvl, conds := h.Report(); lvl != tc.wantLevel {
				t.Errorf("readiness %v %v, want %v", lvl, conds, tc.wantLevel)
			}
			d, ok := s.Directory().Lookup("store.example")
			if ok != tc.wantStore {
				t.Errorf("store.example served = %v, want %v", ok, tc.wantStore)
			}
			if ok && (d.AcceptsRecipient("alice") || !d.AcceptsRecipient("bob") || d.Policy.TagScore == nil || *d.Policy.TagScore != 3) {
				t.Errorf("store.example from the file lost its recipients or inherited policy: %+v", d)
			}
			got := ""
			if shared, ok := s.Directory().Lookup("shared.example"); ok {
				got = shared.Route.Addr
			}
			if got != tc.wantShared {
				t.Errorf("shared.example routes to %q, want %q", got, tc.wantShared)
			}
		})
	}
}

func TestSyncerReloadAndStaleness(t *testing.T) {
	dir := t.TempDir()
	l := &fakeLoader{data: storeData(1, "one.test:25")}
	s, h := newTestSyncer(t, dir, l, nil)
	now := time.Now()
	s.now = func() time.Time { return now }

	l.data = storeData(2, "two.test:25")
	if err := s.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	if d, _ := s.Directory().Lookup("store.example"); d.Route.Addr != "two.test:25" || s.Directory().Snapshot().Version != 2 {
		t.Fatalf("reload did not swap: %+v", d)
	}
	// The file is replaced whole: no temp files left beside it.
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 || entries[0].Name() != SnapshotFile {
		t.Fatalf("data dir holds %v, want only %s", entries, SnapshotFile)
	}
	if _, err := os.Stat(filepath.Join(dir, SnapshotFile)); err != nil {
		t.Fatal(err)
	}

	l.err = errors.New("down")
	for _, tc := range []struct {
		after time.Duration
		want  health.Level
	}{{time.Second, health.OK}, {3 * time.Second, health.Degraded}} {
		now = now.Add(tc.after)
		if err := s.Reload(context.Background()); err == nil {
			t.Fatal("reload with the store down succeeded")
		}
		s.report()
		if lvl, conds := h.Report(); lvl != tc.want {
			t.Errorf("after %v down: %v %v, want %v", tc.after, lvl, conds, tc.want)
		}
	}
	if _, ok := s.Directory().Lookup("store.example"); !ok {
		t.Fatal("a failed reload dropped the snapshot")
	}
}
