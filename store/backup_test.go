package store

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/mxgrid/mxgrid/admin"
	"github.com/mxgrid/mxgrid/tenant"
)

// seededStore is a SQLite store with every component migrated, a domain
// with route rules, events and a map.
func seededStore(t *testing.T) (*Store, string) {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	st, err := Open(DefaultConfig(), dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	for _, migrate := range []func(context.Context) error{st.MigrateEvents, st.MigrateMaps, st.MigrateDomainStats, st.MigratePanelSessions, st.MigrateTracking, st.MigrateQuarantine, st.MigrateNotify} {
		if err := migrate(ctx); err != nil {
			t.Fatal(err)
		}
	}
	ts := NewTenants(st)
	a := admin.AuditEntry{Actor: "test", Action: "create", Object: "x"}
	r := tenant.Reseller{Name: "R", Slug: "r"}
	if _, err := ts.CreateReseller(ctx, &r, a); err != nil {
		t.Fatal(err)
	}
	c := tenant.Customer{ResellerID: r.ID, Name: "C", MapKey: "k1"}
	if _, err := ts.CreateCustomer(ctx, &c, a); err != nil {
		t.Fatal(err)
	}
	d := tenant.DomainRecord{CustomerID: c.ID, Name: "split.example", Route: "127.0.0.1:25", TLS: "none",
		Routes: []tenant.RouteRule{{Recipients: []string{"bob"}, Route: "127.0.0.1:26"}}}
	if _, err := ts.CreateDomain(ctx, &d, a); err != nil {
		t.Fatal(err)
	}
	if err := ts.CreateToken(ctx, &admin.Token{Name: "ci", Hash: "abc"}, a); err != nil {
		t.Fatal(err)
	}
	insertEvents(t, st, 0, 50)
	if _, err := st.PutMap(ctx, MapRecord{Scope: "global", GeneratedAt: time.Unix(1700000000, 0), ETag: `"e1"`, Events: 50,
		JSON: []byte(`{"points":[]}`), Drawing: []byte("<svg/>"), Body: []byte("<p>map</p>")}); err != nil {
		t.Fatal(err)
	}
	return st, filepath.Join(dir, "mxgrid.db")
}

func insertEvents(t testing.TB, st *Store, from, n int) {
	t.Helper()
	evs := make([]StoredEvent, n)
	for i := range evs {
		evs[i] = StoredEvent{Time: time.Unix(1700000000+int64(from+i), 0), IP: netip.MustParseAddr("192.0.2.1"),
			Node: "n", Domain: "split.example", Verdict: "spam", Action: "reject", Score: 20, Symbols: []string{"FIXED"}}
	}
	if err := st.InsertEvents(context.Background(), evs); err != nil {
		t.Error(err)
	}
}

// TestBackupRestoreWhileWriting: a backup taken while events are written
// restores to a database with the same tenants, map and a consistent
// event count (the manifest's, from the same instant as the copy).
func TestBackupRestoreWhileWriting(t *testing.T) {
	ctx := context.Background()
	st, dbPath := seededStore(t)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			insertEvents(t, st, 1000+i*10, 10)
		}
	}()
	out := filepath.Join(t.TempDir(), "mxgrid.backup")
	m, err := Backup(ctx, dbPath, out, time.Now())
	close(stop)
	wg.Wait()
	if err != nil {
		t.Fatal(err)
	}
	if m.Rows["domains"] != 1 || m.Rows["api_tokens"] != 1 || m.Rows["maps"] != 1 || m.Rows["events"] < 50 || m.TenantVersion != 3 {
		t.Fatalf("manifest %+v", m)
	}
	if want := knownSchemas(); !reflect.DeepEqual(m.Schema, want) {
		t.Fatalf("manifest schema %v, want every component at this build's version %v", m.Schema, want)
	}

	target := filepath.Join(t.TempDir(), "data", "mxgrid.db")
	rm, err := Restore(ctx, out, target)
	if err != nil {
		t.Fatal(err)
	}
	if rm.SHA256 != m.SHA256 {
		t.Fatalf("restore read manifest %+v", rm)
	}
	got, err := Open(DefaultConfig(), filepath.Dir(target))
	if err != nil {
		t.Fatal(err)
	}
	defer got.Close()
	want, wantData := NewTenants(st), tenant.Data{}
	if wantData, err = want.Load(ctx); err != nil {
		t.Fatal(err)
	}
	gotData, err := NewTenants(got).Load(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(gotData, wantData) {
		t.Fatalf("restored tenants differ:\n got %+v\nwant %+v", gotData, wantData)
	}
	n, err := got.CountEvents(ctx)
	if err != nil || n != m.Rows["events"] {
		t.Fatalf("restored %d events (%v), manifest says %d", n, err, m.Rows["events"])
	}
	wm, _, _ := st.GetMap(ctx, "global")
	gm, ok, err := got.GetMap(ctx, "global")
	if err != nil || !ok || !reflect.DeepEqual(gm, wm) {
		t.Fatalf("restored map %+v, %v, %v", gm, ok, err)
	}
}

// TestRestoreRefuses: a file that is not a complete, intact backup, or a
// target that already has a database, is refused with a message saying
// which, and the target directory is left exactly as it was (not there
// at all when restore had to create it).
// TestBackupKeepsWhatIsNotAFile: -out naming a device, a FIFO or a
// symlink is refused and left as it was; the backup was renamed over it
// (-out /dev/null, as root, replaced the device with a file).
func TestBackupKeepsWhatIsNotAFile(t *testing.T) {
	_, dbPath := seededStore(t)
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "link")
	if err := os.Symlink(filepath.Join(dir, "elsewhere"), link); err != nil {
		t.Fatal(err)
	}
	sub := filepath.Join(dir, "sub")
	if err := os.Mkdir(sub, 0o700); err != nil {
		t.Fatal(err)
	}
	// The error names what is there in words; it said "is a d---------".
	for out, want := range map[string]struct {
		mode os.FileMode
		kind string
	}{fifo: {os.ModeNamedPipe, "named pipe"}, link: {os.ModeSymlink, "symbolic link"}, sub: {os.ModeDir, "directory"}} {
		if _, err := Backup(context.Background(), dbPath, out, time.Now()); err == nil || !strings.Contains(err.Error(), "is a "+want.kind+", not a file") {
			t.Errorf("%s: %v, want refused as a %s, not a file", out, err, want.kind)
		}
		if fi, err := os.Lstat(out); err != nil || fi.Mode().Type() != want.mode {
			t.Errorf("%s was replaced: %v, %v", out, fi.Mode(), err)
		}
	}
}

// TestBackupCopyIsPrivate: the uncompressed copy VACUUM INTO writes (every
// password and token hash) goes in a directory only its owner can enter,
// whatever the umask; it was a 0644 file in out's directory, at a name
// another user could take first.
func TestBackupCopyIsPrivate(t *testing.T) {
	old := syscall.Umask(0)
	defer syscall.Umask(old)
	dir := t.TempDir()
	scratch, err := privateScratch(dir)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Lstat(scratch)
	if err != nil || !fi.IsDir() || fi.Mode().Perm() != 0o700 || filepath.Dir(scratch) != dir {
		t.Fatalf("scratch %s: %v, %v; want a 0700 directory in %s", scratch, fi.Mode(), err, dir)
	}
	if err := os.Remove(scratch); err != nil {
		t.Fatal(err)
	}

	_, dbPath := seededStore(t)
	out := filepath.Join(dir, "b.mxbackup")
	if _, err := Backup(context.Background(), dbPath, out, time.Now()); err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(dir)
	if err != nil || len(entries) != 1 || entries[0].Name() != "b.mxbackup" {
		t.Fatalf("out's directory after a backup: %v, %v; want only the backup", entries, err)
	}
	if fi, err := os.Stat(out); err != nil || fi.Mode().Perm()&0o077 != 0 {
		t.Fatalf("backup file: %v, %v; want readable by its owner alone", fi.Mode(), err)
	}
}

func TestRestoreRefuses(t *testing.T) {
	ctx := context.Background()
	_, dbPath := seededStore(t)
	good := filepath.Join(t.TempDir(), "good.backup")
	m, err := Backup(ctx, dbPath, good, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(good)
	if err != nil {
		t.Fatal(err)
	}
	headerLen := bytes.IndexByte(raw, '\n') + 1
	bodyStart := headerLen + bytes.IndexByte(raw[headerLen:], '\n') + 1
	flip := func(at int) []byte {
		b := bytes.Clone(raw)
		b[at] ^= 0x40
		return b
	}
	// withManifest is the backup a build with another manifest would write:
	// its header matches the edited manifest.
	withManifest := func(edit func(string) string) []byte {
		man := edit(string(raw[headerLen : bodyStart-1]))
		head := fmt.Sprintf("%s %d %x\n%s\n", backupMagic, BackupFormat, sha256.Sum256([]byte(man)), man)
		return append([]byte(head), raw[bodyStart:]...)
	}
	// A payload that decompresses fine but is not this manifest's database.
	var other bytes.Buffer
	zw := gzip.NewWriter(&other)
	zw.Write(bytes.Repeat([]byte{'x'}, int(m.Size)))
	zw.Close()
	for _, tc := range []struct {
		name string
		file []byte
		want string
	}{
		{"empty file", nil, "not an mxgrid backup"},
		{"not a backup", []byte("SQLite format 3\x00 and so on\n"), "not an mxgrid backup"},
		{"newer format", append([]byte(backupMagic+" 9 0\n"), raw[headerLen:]...), "format 9 is newer"},
		{"cut in the manifest", raw[:headerLen+10], "truncated or corrupt manifest"},
		{"cut before the database", raw[:bodyStart], "the database is missing or corrupt"},
		{"cut in the database", raw[:bodyStart+(len(raw)-bodyStart)/2], "truncated"},
		{"cut in the gzip trailer", raw[:len(raw)-3], "truncated"},
		{"flipped bit in the database", flip(bodyStart + (len(raw)-bodyStart)/2), "corrupt"},
		{"flipped bit in the header", flip(3), "not an mxgrid backup"},
		{"flipped bit in the manifest", flip(headerLen + 2), "corrupt manifest"},
		{"other database", append(bytes.Clone(raw[:bodyStart]), other.Bytes()...), "SHA-256"},
		{"trailing garbage", append(bytes.Clone(raw), "garbage"...), "data follows the end"},
		{"newer schema", withManifest(func(s string) string {
			return strings.Replace(s, fmt.Sprintf(`"tenants":%d`, m.Schema["tenants"]), `"tenants":99`, 1)
		}), "tenants schema version 99, newer than this mxgrid knows"},
		{"unknown component", withManifest(func(s string) string { return strings.Replace(s, `"schema":{`, `"schema":{"spool":1,`, 1) }),
			"spool schema this mxgrid does not know"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := filepath.Join(t.TempDir(), "x.backup")
			if err := os.WriteFile(in, tc.file, 0o600); err != nil {
				t.Fatal(err)
			}
			dir := t.TempDir()
			sentinel := filepath.Join(dir, "tenants.snapshot.json")
			os.WriteFile(sentinel, []byte("{}"), 0o600)
			_, err := Restore(ctx, in, filepath.Join(dir, "mxgrid.db"))
			if !errors.Is(err, ErrBadBackup) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err %v, want ErrBadBackup saying %q", err, tc.want)
			}
			if names := dirNames(t, dir); !reflect.DeepEqual(names, []string{"tenants.snapshot.json"}) {
				t.Fatalf("target directory now holds %v", names)
			}
			// A new node's data directory, which restore creates.
			fresh := filepath.Join(t.TempDir(), "srv")
			if _, err := Restore(ctx, in, filepath.Join(fresh, "new-node-data", "mxgrid.db")); !errors.Is(err, ErrBadBackup) {
				t.Fatalf("into a new directory: err %v, want ErrBadBackup", err)
			}
			if _, err := os.Lstat(fresh); !errors.Is(err, os.ErrNotExist) {
				t.Fatalf("the refused restore left %s behind (%v)", fresh, err)
			}
		})
	}

	t.Run("target has a database", func(t *testing.T) {
		for _, existing := range []string{"mxgrid.db", "mxgrid.db-wal"} {
			dir := t.TempDir()
			old := filepath.Join(dir, existing)
			os.WriteFile(old, []byte("precious"), 0o600)
			_, err := Restore(ctx, good, filepath.Join(dir, "mxgrid.db"))
			if err == nil || !strings.Contains(err.Error(), "already exists") {
				t.Fatalf("%s: err %v, want a refusal", existing, err)
			}
			if b, _ := os.ReadFile(old); string(b) != "precious" || !reflect.DeepEqual(dirNames(t, dir), []string{existing}) {
				t.Fatalf("%s: the target directory changed", existing)
			}
		}
	})
}

func dirNames(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	sort.Strings(names)
	return names
}
