package tenant

import (
	"maps"
	"os"
	"slices"
	"strings"
	"testing"
	"time"
)

// FuzzSnapshotFiles: the snapshot file and its journal are read at start,
// before the store answers, from whatever a crash, a full disk or another
// version left in data_dir. Reading them must fail or succeed, never
// panic or hang, and what it accepts must survive being written again.
func FuzzSnapshotFiles(f *testing.F) {
	dir := f.TempDir()
	tag := 4.5
	d, fe := newDomain(domainSpec{ID: 3, CustomerID: 2, Source: "store", Name: "example.org", Route: "mx.example.org:25", TLS: "none",
		Known: PackRecipients([]string{"bob", "alice"}), Policy: Policy{TagScore: &tag}})
	if len(fe) > 0 {
		f.Fatal(fe)
	}
	files := newSnapshotFiles(dir, "")
	if err := files.writeBase(7, time.Unix(1e9, 0), map[string]*Domain{d.Name: d}); err != nil {
		f.Fatal(err)
	}
	if err := files.appendDelta(8, time.Unix(1e9+1, 0), map[string]*Domain{}, []string{d.Name}); err != nil {
		f.Fatal(err)
	}
	base, _ := os.ReadFile(files.base)
	journal, _ := os.ReadFile(files.journal)
	f.Add(base, journal)
	f.Add(base, []byte(`{"version":9,"put":[{"name":"b.example","route":"10.0.0.1:25","tls":"none"}]}`+"\n"))
	f.Add(base[:len(base)/2], []byte(nil))
	f.Add([]byte(`{"version":1,"domains":[{"name":"a.example","route":"x:1","tls":"none"},{"name":"A.example","route":"x:1","tls":"none"}]}`), []byte(nil))
	f.Add([]byte(`{"domains":null}`), []byte("\n\n"))

	f.Fuzz(func(t *testing.T, base, journal []byte) {
		dir := t.TempDir()
		files := newSnapshotFiles(dir, "")
		if err := os.WriteFile(files.base, base, 0o600); err != nil {
			t.Fatal(err)
		}
		if len(journal) > 0 {
			if err := os.WriteFile(files.journal, journal, 0o600); err != nil {
				t.Fatal(err)
			}
		}
		version, saved, domains, err := files.read()
		if err != nil {
			return
		}
		for name, d := range domains {
			if n, err := NormalizeDomain(name); err != nil || n != name || d.Name != name {
				t.Fatalf("domain %q held under %q", d.Name, name)
			}
		}
		again := newSnapshotFiles(t.TempDir(), "")
		if err := again.writeBase(version, saved, domains); err != nil {
			t.Fatal(err)
		}
		v2, _, d2, err := again.read()
		if err != nil {
			written, _ := os.ReadFile(again.base)
			t.Fatalf("a snapshot read back fails after writing: %v\n%s", err, written)
		}
		if v2 != version || !slices.Equal(slices.Sorted(maps.Keys(d2)), slices.Sorted(maps.Keys(domains))) {
			t.Fatalf("round trip changed the snapshot: version %d -> %d, %d -> %d domains", version, v2, len(domains), len(d2))
		}
		for name, d := range domains {
			if !slices.Equal(slices.Collect(d.Recipients.All()), slices.Collect(d2[name].Recipients.All())) {
				t.Fatalf("%s: recipients changed in the round trip", name)
			}
		}
	})
}

// TestSnapshotFileOfAnotherStoreIsRefused: a snapshot file copied from
// another deployment (a data_dir restored onto the wrong machine, a
// cloned VM image) was served whole by a node whose own store was down
// at start: another cluster's domains accepted and relayed to their
// routes. The file names the store it was written from; a node reading
// it for another store refuses it. Files written before the store was
// recorded still load.
func TestSnapshotFileOfAnotherStoreIsRefused(t *testing.T) {
	d, fe := newDomain(domainSpec{ID: 3, CustomerID: 2, Source: "store", Name: "example.org", Route: "mx.example.org:25", TLS: "none"})
	if len(fe) > 0 {
		t.Fatal(fe)
	}
	for _, tc := range []struct {
		name           string
		written, local string
		ok             bool
	}{
		{"same store", "postgres db.a:5432/mxgrid", "postgres db.a:5432/mxgrid", true},
		{"another store", "postgres db.b:5432/mxgrid", "postgres db.a:5432/mxgrid", false},
		{"written before the store was recorded", "", "postgres db.a:5432/mxgrid", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			w := newSnapshotFiles(dir, tc.written)
			if err := w.writeBase(7, time.Unix(1e9, 0), map[string]*Domain{d.Name: d}); err != nil {
				t.Fatal(err)
			}
			_, _, got, err := newSnapshotFiles(dir, tc.local).read()
			if tc.ok && (err != nil || got[d.Name] == nil) {
				t.Fatalf("read = %v, %v; want the domain", got, err)
			}
			if !tc.ok && (err == nil || !strings.Contains(err.Error(), tc.written)) {
				t.Fatalf("read = %v, %v; want an error naming the other store", got, err)
			}
		})
	}
}
