package main

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mxgrid/mxgrid/geo/geotest"
)

// TestGeoIPUpdate: the command fetches over HTTP into --out, falls back to
// the previous month's file while this month's is not published, and a
// second run is a conditional no-op.
func TestGeoIPUpdate(t *testing.T) {
	dir := t.TempDir()
	fixture := filepath.Join(dir, "fixture.mmdb")
	geotest.WriteCity(t, fixture, geotest.Options{}, geotest.Known)
	body, err := os.ReadFile(fixture)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	prev := now.AddDate(0, 0, -now.Day()).Format("2006-01")
	var paths []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		paths = append(paths, r.URL.Path)
		if r.URL.Path != "/city-"+prev+".mmdb" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("ETag", `"x"`)
		if r.Header.Get("If-None-Match") == `"x"` {
			w.WriteHeader(http.StatusNotModified)
			return
		}
		w.Write(body)
	}))
	defer srv.Close()

	out := filepath.Join(dir, "geo", "city.mmdb")
	args := []string{"geoip", "update", "--out", out, "--url", srv.URL + "/city-{month}.mmdb"}
	var stdout, stderr bytes.Buffer
	if code := run(context.Background(), args, &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d: %s %s", code, stdout.String(), stderr.String())
	}
	if got, _ := os.ReadFile(out); !bytes.Equal(got, body) {
		t.Fatalf("%s not installed: %s", out, stdout.String())
	}
	stdout.Reset()
	if code := run(context.Background(), args, &stdout, &stderr); code != 0 || !strings.Contains(stdout.String(), "up to date") {
		t.Fatalf("second run: exit %d: %s %s", code, stdout.String(), stderr.String())
	}
	want := "/city-" + now.Format("2006-01") + ".mmdb /city-" + prev + ".mmdb"
	if got := strings.Join(paths, " "); got != want+" "+want {
		t.Errorf("requests %q, want %q twice", got, want)
	}
}
