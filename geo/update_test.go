package geo

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mxgrid/mxgrid/geo/geotest"
)

// fixtureServer serves one payload like a download site: ETag and
// Last-Modified, 304 to a matching conditional request. It records the
// conditional headers it was sent.
type fixtureServer struct {
	mu      sync.Mutex
	body    []byte
	etag    string
	gotINM  []string
	auth    []string
	srv     *httptest.Server
	fullGET int
}

func newFixtureServer(t *testing.T) *fixtureServer {
	f := &fixtureServer{}
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		defer f.mu.Unlock()
		f.gotINM = append(f.gotINM, r.Header.Get("If-None-Match"))
		if u, p, ok := r.BasicAuth(); ok {
			f.auth = append(f.auth, u+":"+p)
		}
		w.Header().Set("ETag", f.etag)
		w.Header().Set("Last-Modified", "Mon, 01 Jun 2026 00:00:00 GMT")
		if r.Header.Get("If-None-Match") == f.etag {
			w.WriteHeader(http.StatusNotModified)
			return
		}
		f.fullGET++
		w.Write(f.body)
	}))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fixtureServer) serve(body []byte, etag string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.body, f.etag = body, etag
}

func gz(t testing.TB, b []byte) []byte {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	zw.Write(b)
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// tarGz packs files (name, content) like MaxMind's downloads.
func tarGz(t testing.TB, files ...[2]string) []byte {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, f := range files {
		if err := tw.WriteHeader(&tar.Header{Name: f[0], Mode: 0o644, Size: int64(len(f[1])), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		tw.Write([]byte(f[1]))
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return gz(t, buf.Bytes())
}

func cityFixture(t *testing.T, records []geotest.Record, epoch int64) []byte {
	p := filepath.Join(t.TempDir(), "city.mmdb")
	geotest.WriteCity(t, p, geotest.Options{BuildEpoch: epoch}, records)
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestUpdateFormats: plain, gzipped and tar.gz downloads all end as the
// same verified file; junk and the wrong kind of database are refused and
// leave no file.
func TestUpdateFormats(t *testing.T) {
	city := cityFixture(t, geotest.Known, 0)
	asnPath := filepath.Join(t.TempDir(), "asn.mmdb")
	geotest.WriteASN(t, asnPath, geotest.Options{}, geotest.KnownASN)
	asn, _ := os.ReadFile(asnPath)
	tests := []struct {
		name    string
		body    []byte
		wantErr string
	}{
		{"mmdb", city, ""},
		{"mmdb.gz", gz(t, city), ""},
		{"tar.gz", tarGz(t, [2]string{"GeoLite2-City_20260601/COPYRIGHT.txt", "c"}, [2]string{"GeoLite2-City_20260601/GeoLite2-City.mmdb", string(city)}), ""},
		{"tar.gz without mmdb", tarGz(t, [2]string{"README", "x"}), "no .mmdb file"},
		{"html error page", []byte("<html>quota exceeded</html>"), "not a valid mmdb"},
		{"asn instead of city", asn, "is an ASN database"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixtureServer(t)
			f.serve(tt.body, `"v1"`)
			path := filepath.Join(t.TempDir(), "geo", "city.mmdb")
			res, err := Update(context.Background(), UpdateOptions{URL: f.srv.URL + "/db", Path: path})
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err %v, want %q", err, tt.wantErr)
				}
				if _, err := os.Stat(path); !os.IsNotExist(err) {
					t.Fatalf("a refused download left %s (%v)", path, err)
				}
				entries, _ := os.ReadDir(filepath.Dir(path))
				if len(entries) != 0 {
					t.Fatalf("temporary files left: %v", entries)
				}
				return
			}
			if err != nil || !res.Changed || res.Type != "GeoLite2-City" || res.Size != int64(len(city)) {
				t.Fatalf("Update = %+v, %v", res, err)
			}
			if got, _ := os.ReadFile(path); !bytes.Equal(got, city) {
				t.Fatal("installed file differs from the served database")
			}
		})
	}
}

// TestUpdateConditionalAndHotReload: the second run asks with the ETag and
// a 304 changes nothing; a new release replaces the file atomically and a
// running Locator serves it without a restart. A failed update keeps the
// old file serving.
func TestUpdateConditionalAndHotReload(t *testing.T) {
	f := newFixtureServer(t)
	path := filepath.Join(t.TempDir(), "city.mmdb")
	opts := UpdateOptions{URL: f.srv.URL + "/dbip-city-lite.mmdb.gz", Path: path, Username: "42", Password: "key"}
	ctx := context.Background()

	f.serve(gz(t, cityFixture(t, geotest.Known, 1_700_000_000)), `"v1"`)
	if res, err := Update(ctx, opts); err != nil || !res.Changed {
		t.Fatalf("first update: %+v %v", res, err)
	}

	cfg := DefaultConfig()
	cfg.Database, cfg.ReloadInterval, cfg.CacheSize = path, 5*time.Millisecond, 0
	l := newTestLocator(t, cfg, Options{})
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- l.Run(runCtx) }()
	defer func() { cancel(); <-done }()
	if loc, _ := mustLookup(t, l, "81.2.69.142"); loc.City != "London" {
		t.Fatalf("before: %+v", loc)
	}

	if res, err := Update(ctx, opts); err != nil || res.Changed {
		t.Fatalf("unchanged update: %+v %v", res, err)
	}
	moved := append([]geotest.Record(nil), geotest.Known...)
	moved[0].City = "Manchester"
	f.serve(gz(t, cityFixture(t, moved, 1_800_000_000)), `"v2"`)
	if res, err := Update(ctx, opts); err != nil || !res.Changed {
		t.Fatalf("new release: %+v %v", res, err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		if loc, _ := mustLookup(t, l, "81.2.69.142"); loc.City == "Manchester" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the running locator never served the updated file")
		}
		time.Sleep(5 * time.Millisecond)
	}

	f.serve([]byte("truncated"), `"v3"`)
	if _, err := Update(ctx, opts); err == nil {
		t.Fatal("a broken release was installed")
	}
	if loc, _ := mustLookup(t, l, "81.2.69.142"); loc.City != "Manchester" {
		t.Fatalf("after a failed update: %+v", loc)
	}

	f.mu.Lock()
	defer f.mu.Unlock()
	if want := []string{"", `"v1"`, `"v1"`, `"v2"`}; strings.Join(f.gotINM, " ") != strings.Join(want, " ") {
		t.Errorf("If-None-Match sent %q, want %q", f.gotINM, want)
	}
	if f.fullGET != 3 || len(f.auth) != 4 || f.auth[0] != "42:key" {
		t.Errorf("full downloads %d (want 3), auth %q", f.fullGET, f.auth)
	}
}

// FuzzUnpackMMDB: any download, compressed or archived or not, is copied
// or refused without a panic, and never yields more than it holds after
// decompression limits.
func FuzzUnpackMMDB(f *testing.F) {
	f.Add([]byte("plain"))
	f.Add(gz(f, []byte("zipped")))
	f.Add(tarGz(f, [2]string{"a/b.mmdb", "inside"}))
	f.Add(tarGz(f, [2]string{"README", "x"}))
	f.Fuzz(func(t *testing.T, data []byte) {
		var out bytes.Buffer
		const limit = 1 << 20
		n, err := unpackMMDB(bufio.NewReader(bytes.NewReader(data)), &out, limit)
		if err == nil && (n != int64(out.Len()) || n > limit) {
			t.Fatalf("reported %d bytes, wrote %d", n, out.Len())
		}
	})
}

// TestUpdateStateIgnoresAPlantedTempName: the state file was written
// through the fixed name <database>.state.tmp, following a symlink there,
// so another user of a shared directory could have the operator's update
// overwrite any file the operator may write.
func TestUpdateStateIgnoresAPlantedTempName(t *testing.T) {
	f := newFixtureServer(t)
	f.serve(cityFixture(t, geotest.Known, 0), `"v1"`)
	dir := t.TempDir()
	path := filepath.Join(dir, "city.mmdb")
	victim := filepath.Join(t.TempDir(), "victim")
	if err := os.WriteFile(victim, []byte("keep"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(victim, path+".state.tmp"); err != nil {
		t.Fatal(err)
	}
	if _, err := Update(context.Background(), UpdateOptions{URL: f.srv.URL + "/db", Path: path}); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(victim); string(got) != "keep" {
		t.Fatalf("the symlink's target was written: %q", got)
	}
	if b, err := os.ReadFile(path + ".state"); err != nil || !strings.Contains(string(b), `v1`) {
		t.Fatalf("state %q, %v", b, err)
	}
}
