package main

import (
	"bytes"
	"context"
	"os/exec"
	"strings"
	"testing"

	"github.com/mxgrid/mxgrid/store"
)

// TestMapRebuildCountsEventsWrittenAroundTheRollup: events a node of an
// older version wrote (straight into the table, without the rollup) are in
// the rollup after `mxgrid map rebuild`, and nothing is counted twice.
func TestMapRebuildCountsEventsWrittenAroundTheRollup(t *testing.T) {
	dataDir := t.TempDir()
	seedEvents(t, dataDir)
	ctx := context.Background()
	st, err := store.Open(store.DefaultConfig(), dataDir)
	if err != nil {
		t.Fatal(err)
	}
	const columns = `at_us, ip, node, provider, domain, verdict, action, score, symbols, located, country, country_name, city, lat, lon, accuracy_km, asn, as_org, domain_id`
	if _, err := st.DB.ExecContext(ctx, `INSERT INTO events (`+columns+`) SELECT `+columns+` FROM events`); err != nil {
		t.Fatal(err)
	}
	rolled := func() int64 {
		t.Helper()
		var n int64
		// Domain -1 is every domain's: the global map's rows.
		if err := st.DB.QueryRowContext(ctx, `SELECT COALESCE(SUM(n), 0) FROM map_hours WHERE domain_id = -1`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	if got := rolled(); got != 40 {
		t.Fatalf("before the rebuild the rollup counts %d events, want the 40 written through it", got)
	}
	st.Close()

	var stdout, stderr bytes.Buffer
	cmd := exec.Command(binary, "map", "rebuild", "-config", writeConfig(t, "data_dir: "+dataDir+"\n"))
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("map rebuild: %v: %s", err, stderr.String())
	}
	if !strings.Contains(stdout.String(), "rebuilt from 80 events") {
		t.Errorf("stdout %q", stdout.String())
	}
	st, err = store.Open(store.DefaultConfig(), dataDir)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if got := rolled(); got != 80 {
		t.Errorf("after the rebuild the rollup counts %d events, want 80", got)
	}
}
