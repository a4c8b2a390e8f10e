package geo

import (
	"testing"

	"github.com/mxgrid/mxgrid/health"
)

// TestEmbeddedDatabase: with no geo.database a node locates public
// addresses by country from the built-in DB-IP file and is not degraded.
func TestEmbeddedDatabase(t *testing.T) {
	reg := health.New()
	l := newTestLocator(t, DefaultConfig(), Options{Health: reg})
	if level, conds := reg.Report(); level != health.OK {
		t.Fatalf("health %v %+v, want OK", level, conds)
	}
	tests := []struct {
		addr, country string
		layer         Layer
	}{
		{"8.8.8.8", "US", LayerFile},
		{"81.2.69.142", "GB", LayerFile},
		{"2a00:1450:4001:80b::200e", "DE", LayerFile}, // the IPv6 tree is embedded too
		{"10.1.2.3", "", LayerNone},
	}
	for _, tt := range tests {
		loc, layer := mustLookup(t, l, tt.addr)
		if loc.Country != tt.country || layer != tt.layer || loc.Located != (tt.country != "") {
			t.Errorf("%s: %+v from %s, want country %q from %s", tt.addr, loc, layer, tt.country, tt.layer)
		}
		if tt.country != "" && loc.CountryName == "" {
			t.Errorf("%s: no country name", tt.addr)
		}
	}
	dbs := l.Databases()
	if len(dbs) != 1 || dbs[0].Path != EmbeddedPath || !dbs[0].Loaded || dbs[0].Built.IsZero() {
		t.Fatalf("Databases() = %+v", dbs)
	}
}

// TestConfiguredDatabaseWins: a configured file replaces the embedded one
// entirely, even while it cannot be loaded (the operator asked for it).
func TestConfiguredDatabaseWins(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Database = t.TempDir() + "/missing.mmdb"
	reg := health.New()
	l := newTestLocator(t, cfg, Options{Health: reg})
	if loc, layer := mustLookup(t, l, "8.8.8.8"); loc.Located || layer != LayerNone {
		t.Fatalf("got %+v from %s, want nothing", loc, layer)
	}
	if level, _ := reg.Report(); level != health.Degraded {
		t.Fatalf("health %v, want Degraded", level)
	}
}
