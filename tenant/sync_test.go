package tenant

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mxgrid/mxgrid/internal/fspermtest"

	"github.com/mxgrid/mxgrid/health"
	"github.com/prometheus/client_golang/prometheus"
)

// fakeLoader fails with err, or returns data; it has no change log, so
// every reload reads everything, unless deltas holds the next delta.
type fakeLoader struct {
	data   Data
	err    error
	deltas []Delta
}

func (f *fakeLoader) Load(context.Context) (Data, error) { return f.data, f.err }

func (f *fakeLoader) LoadSince(_ context.Context, version uint64) (Delta, error) {
	if f.err != nil {
		return Delta{}, f.err
	}
	if len(f.deltas) == 0 {
		if version == f.data.Version {
			return Delta{Data: Data{Version: version}}, nil
		}
		return Delta{}, ErrChangesGone
	}
	d := f.deltas[0]
	f.deltas = f.deltas[1:]
	return d, nil
}

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
		Recipients: map[int64]Recipients{4: PackRecipients([]string{"bob"})},
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
		// wantPartial: the directory says the store's domains are
		// missing, so SMTP defers domains it does not find.
		wantPartial bool
	}{
		{"store down, no file, no static", false, nil, health.NotReady, false, "", true},
		{"store down, no file, static", false, []*Domain{static}, health.Degraded, false, "static.test:25", true},
		{"store down, file", true, nil, health.OK, true, "store.test:25", false},
		{"store down, file and static: config wins", true, []*Domain{static}, health.OK, true, "static.test:25", false},
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
			if p := s.Directory().Partial(); p != tc.wantPartial {
				t.Errorf("directory partial = %v, want %v", p, tc.wantPartial)
			}
		})
	}
}

func TestSyncerReloadAndStaleness(t *testing.T) {
	dir := t.TempDir()
	l := &fakeLoader{data: storeData(1, "one.test:25")}
	s, h := newTestSyncer(t, dir, l, nil)
	if s.Directory().Partial() {
		t.Fatal("loaded from the store, yet partial")
	}
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

// TestSnapshotJournal: deltas are appended to the journal, not rewritten
// into the snapshot; a node started with the store down replays them (a
// torn last line ignored); a journal grown past half the snapshot is
// folded back into it.
func TestSnapshotJournal(t *testing.T) {
	dir := t.TempDir()
	l := &fakeLoader{data: storeData(1, "one.test:25")}
	s, _ := newTestSyncer(t, dir, l, nil)
	base, err := os.ReadFile(filepath.Join(dir, SnapshotFile))
	if err != nil {
		t.Fatal(err)
	}
	renamed := l.data.Domains[1]
	renamed.Name = "moved.example"
	l.deltas = []Delta{
		{Data: Data{Version: 2, Domains: []DomainRecord{renamed}, Recipients: map[int64]Recipients{4: PackRecipients([]string{"carol"})}}},
		{Data: Data{Version: 3}, RemovedDomains: []int64{3}},
	}
	for range 2 {
		if err := s.Reload(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	served := func(s *Syncer) []string {
		var names []string
		for d := range s.Directory().Snapshot().All() {
			names = append(names, d.Name)
		}
		return names
	}
	if got := served(s); len(got) != 1 || got[0] != "moved.example" || s.Directory().Snapshot().Version != 3 {
		t.Fatalf("after the deltas: %v at version %d", got, s.Directory().Snapshot().Version)
	}
	if after, _ := os.ReadFile(filepath.Join(dir, SnapshotFile)); string(after) != string(base) {
		t.Fatal("a delta rewrote the snapshot file")
	}
	journal := filepath.Join(dir, SnapshotJournal)
	if b, err := os.ReadFile(journal); err != nil || strings.Count(string(b), "\n") != 2 {
		t.Fatalf("journal %q, %v: want two lines", b, err)
	}
	if fi, err := os.Stat(journal); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("journal mode %v, %v", fi.Mode(), err)
	}
	j, err := os.OpenFile(journal, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	j.WriteString(`{"version":4,"removed":["moved.exa`) // a crash mid-append
	j.Close()

	down := &fakeLoader{err: errors.New("down")}
	restarted, _ := newTestSyncer(t, dir, down, nil)
	d, ok := restarted.Directory().Lookup("moved.example")
	if got := served(restarted); !ok || len(got) != 1 || !d.AcceptsRecipient("carol") || d.AcceptsRecipient("bob") ||
		restarted.Directory().Snapshot().Version != 3 {
		t.Fatalf("from the file and journal: %v at version %d", got, restarted.Directory().Snapshot().Version)
	}

	s.files.journalBytes = minCompact + 1
	l.deltas = []Delta{{Data: Data{Version: 5}, RemovedDomains: []int64{4}}}
	if err := s.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(journal); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("journal not folded into the snapshot: %v", err)
	}
	again, _ := newTestSyncer(t, dir, down, nil)
	if got := served(again); len(got) != 0 || again.Directory().Snapshot().Version != 5 {
		t.Fatalf("after compaction: %v at version %d", got, again.Directory().Snapshot().Version)
	}
}

// TestSnapshotFileAgeIsNeverInTheFuture: the file's saved time comes from
// the clock of whoever wrote it (this node before NTP stepped it back,
// another machine's copy). Taken as is, a time ahead of now made the
// snapshot's age negative, and /readyz called it fresh for as long as the
// clock lagged, however long the store stayed down.
func TestSnapshotFileAgeIsNeverInTheFuture(t *testing.T) {
	for _, tc := range []struct {
		name  string
		saved time.Duration // relative to now
		down  time.Duration // store down for this long after start
		want  health.Level
	}{
		{"saved just now, store down briefly", 0, time.Second, health.OK},
		{"saved just now, store down long", 0, time.Hour, health.Degraded},
		{"saved a day ago", -24 * time.Hour, 0, health.Degraded},
		{"saved a day ahead, store down long", 24 * time.Hour, time.Hour, health.Degraded},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			start := time.Now()
			if err := newSnapshotFiles(dir, "").writeBase(7, start.Add(tc.saved), nil); err != nil {
				t.Fatal(err)
			}
			s, h := newTestSyncer(t, dir, &fakeLoader{err: errors.New("down")}, nil)
			s.now = func() time.Time { return start.Add(tc.down) }
			s.report()
			if lvl, conds := h.Report(); lvl != tc.want {
				t.Errorf("readiness %v %v, want %v", lvl, conds, tc.want)
			}
			if age := s.Age(); age < 0 {
				t.Errorf("snapshot age %v", age)
			}
		})
	}
}

// TestPartialWhileUnconfirmed: a domain missing from a snapshot the store
// has not confirmed lately may have been provisioned since (the snapshot
// file is a day old, or this node lost the store while another node's API
// created the domain); the directory must say so, so that SMTP defers
// with 4xx instead of bouncing the new domain's mail with 550.
func TestPartialWhileUnconfirmed(t *testing.T) {
	const stale = 2 * time.Second // newTestSyncer: 2 intervals of 1 s
	for _, tc := range []struct {
		name     string
		fileAge  time.Duration // -1: no file
		storeUp  bool
		downFor  time.Duration // after start
		wantPart bool
	}{
		{"store up", -1, true, 0, false},
		{"store down, no file", -1, false, 0, true},
		{"store down, file just saved", 0, false, 0, false},
		{"store down, file a day old", 24 * time.Hour, false, 0, true},
		{"store down, file just saved, down long since", 0, false, 2 * stale, true},
		{"store lost after loading, briefly", -1, true, stale / 2, false},
		{"store lost after loading, long", -1, true, 2 * stale, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			start := time.Now()
			if tc.fileAge >= 0 {
				if err := newSnapshotFiles(dir, "").writeBase(7, start.Add(-tc.fileAge), nil); err != nil {
					t.Fatal(err)
				}
			}
			l := &fakeLoader{data: storeData(1, "one.test:25")}
			if !tc.storeUp {
				l.err = errors.New("down")
			}
			s, _ := newTestSyncer(t, dir, l, nil)
			if tc.downFor > 0 {
				l.err = errors.New("down")
				s.now = func() time.Time { return start.Add(tc.downFor) }
				if err := s.Reload(context.Background()); err == nil {
					t.Fatal("reload with the store down succeeded")
				}
				s.report()
			}
			if got := s.Directory().Partial(); got != tc.wantPart {
				t.Errorf("partial = %v, want %v", got, tc.wantPart)
			}
			if tc.wantPart && tc.storeUp {
				l.err = nil
				if err := s.Reload(context.Background()); err != nil {
					t.Fatal(err)
				}
				if s.Directory().Partial() {
					t.Error("still partial once the store answered again")
				}
			}
		})
	}
}

// TestJournalBelongsToItsBase: writeBase replaces the snapshot, then
// removes the journal. A crash between the two leaves the new snapshot
// beside the old one's journal. When the store went back in time
// (restored from a backup: every node restarted, as docs/backup.md says),
// the new snapshot's version is lower than the old journal's lines, which
// replay on top of it at the next start with the store down: domains the
// restored store never had, deleted ones back, routes of another history.
func TestJournalBelongsToItsBase(t *testing.T) {
	for _, tc := range []struct {
		name        string
		newVersion  uint64
		wantDomains []string
	}{
		{"store restored to an older version", 1, []string{"shared.example", "store.example"}},
		{"store moved on", 9, []string{"shared.example", "store.example"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			l := &fakeLoader{data: storeData(5, "old.test:25")}
			s, _ := newTestSyncer(t, dir, l, nil)
			l.deltas = []Delta{{Data: Data{Version: 6, Customers: []Customer{{ID: 2, ResellerID: 1}},
				Domains: []DomainRecord{{ID: 9, CustomerID: 2, Name: "other-history.example", Route: "old.test:25", TLS: "none"}}}}}
			if err := s.Reload(context.Background()); err != nil {
				t.Fatal(err)
			}
			journal := filepath.Join(dir, SnapshotJournal)
			old, err := os.ReadFile(journal)
			if err != nil {
				t.Fatal(err)
			}
			// The store comes back at another version: a full load, and a
			// crash right after the new snapshot took its place.
			newTestSyncer(t, dir, &fakeLoader{data: storeData(tc.newVersion, "new.test:25")}, nil)
			if err := os.WriteFile(journal, old, 0o600); err != nil {
				t.Fatal(err)
			}
			down, _ := newTestSyncer(t, dir, &fakeLoader{err: errors.New("down")}, nil)
			var got []string
			for d := range down.Directory().Snapshot().All() {
				got = append(got, d.Name)
				if d.Route.Addr != "new.test:25" {
					t.Errorf("%s routes to %s, from the old snapshot's journal", d.Name, d.Route.Addr)
				}
			}
			slices.Sort(got)
			if !slices.Equal(got, tc.wantDomains) {
				t.Errorf("served %v, want %v", got, tc.wantDomains)
			}
		})
	}
}

// TestJournalNeverSkipsAFailedDelta: a delta whose journal line could not
// be written (disk full, the file unwritable for a while) is applied in
// memory but missing from the journal. The next delta's line went on
// after the gap, so a restart with the store down replayed the snapshot
// without the lost change: here a deleted domain came back with its old
// route. After a failed append the next change rewrites the snapshot.
func TestJournalNeverSkipsAFailedDelta(t *testing.T) {
	for _, tc := range []struct {
		name    string
		breakIt func(t *testing.T, journal string) // make appending fail
	}{
		{"journal not a file", func(t *testing.T, journal string) {
			if err := os.Mkdir(journal, 0o700); err != nil {
				t.Fatal(err)
			}
		}},
		{"disk full", func(t *testing.T, journal string) {
			if _, err := os.Stat("/dev/full"); err != nil {
				t.Skip("no /dev/full")
			}
			fspermtest.Symlink(t, "/dev/full", journal)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			journal := filepath.Join(dir, SnapshotJournal)
			l := &fakeLoader{data: storeData(1, "one.test:25")}
			s, _ := newTestSyncer(t, dir, l, nil)
			tc.breakIt(t, journal)
			l.deltas = []Delta{{Data: Data{Version: 2}, RemovedDomains: []int64{3}}}
			if err := s.Reload(context.Background()); err != nil {
				t.Fatal(err)
			}
			if err := os.Remove(journal); err != nil { // space again
				t.Fatal(err)
			}
			l.deltas = []Delta{{Data: Data{Version: 3, Domains: []DomainRecord{{ID: 4, CustomerID: 2, Name: "store.example", Route: "three.test:25", TLS: "none"}}}}}
			if err := s.Reload(context.Background()); err != nil {
				t.Fatal(err)
			}
			down, _ := newTestSyncer(t, dir, &fakeLoader{err: errors.New("down")}, nil)
			if v := down.Directory().Snapshot().Version; v != 3 {
				t.Errorf("restarted at version %d, want 3", v)
			}
			if d, ok := down.Directory().Lookup("shared.example"); ok {
				t.Errorf("deleted shared.example is back, routed to %s", d.Route.Addr)
			}
			if d, ok := down.Directory().Lookup("store.example"); !ok || d.Route.Addr != "three.test:25" {
				t.Errorf("store.example: %+v, %v", d, ok)
			}
		})
	}
}

// TestFailedSnapshotWriteIsNotJournaled: a node that started from its
// snapshot file (store down) loads everything when the store returns, and
// rewrites the file; when that write fails, the old file stays. The deltas
// that followed were appended to the old file's journal, after the gap
// between its version and the full load's, so a restart with the store
// down served neither the old state nor the new one: here a domain
// deleted in the gap came back.
func TestFailedSnapshotWriteIsNotJournaled(t *testing.T) {
	dir := t.TempDir()
	base := filepath.Join(dir, SnapshotFile)
	newTestSyncer(t, dir, &fakeLoader{data: storeData(1, "one.test:25")}, nil)
	l := &fakeLoader{err: errors.New("down")}
	s, _ := newTestSyncer(t, dir, l, nil) // serves the file

	// The store returns at version 3 without shared.example, and the
	// new snapshot cannot replace the old one.
	old, err := os.ReadFile(base)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(base); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(base, "busy"), 0o700); err != nil {
		t.Fatal(err)
	}
	data := storeData(3, "one.test:25")
	data.Domains = data.Domains[1:]
	l.err, l.data = nil, data
	if err := s.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(base); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(base, old, 0o600); err != nil {
		t.Fatal(err)
	}

	l.deltas = []Delta{{Data: Data{Version: 4, Domains: []DomainRecord{{ID: 4, CustomerID: 2, Name: "store.example", Route: "four.test:25", TLS: "none"}}}}}
	if err := s.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	down, _ := newTestSyncer(t, dir, &fakeLoader{err: errors.New("down")}, nil)
	if d, ok := down.Directory().Lookup("shared.example"); ok {
		t.Errorf("shared.example, deleted before the failed write, is back at version %d, routed to %s",
			down.Directory().Snapshot().Version, d.Route.Addr)
	}
}

// TestSnapshotFileOfANewerFormatIsRefused: a node started on a snapshot
// file a newer version wrote (a downgrade while the store is down) must
// not serve what it can read of it as the whole: a layout it does not
// know may hold the domains, recipients or policy elsewhere. Its own
// files, and those of versions before the format was written, load.
func TestSnapshotFileOfANewerFormatIsRefused(t *testing.T) {
	down := errors.New("connection refused")
	for _, tc := range []struct {
		name   string
		format string // the file's "format" member, "" for none
		served bool
	}{
		{"this format", `"format":1,`, true},
		{"before the format was written", "", true},
		{"newer format", `"format":2,`, false},
		{"not a format", `"format":"2",`, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			path, b := writtenSnapshot(t, dir)
			b = []byte(`{` + tc.format + strings.TrimPrefix(strings.Replace(string(b), `"format":1,`, "", 1), "{"))
			if err := os.WriteFile(path, b, 0o600); err != nil {
				t.Fatal(err)
			}
			s, h := newTestSyncer(t, dir, &fakeLoader{err: down}, nil)
			if _, ok := s.Directory().Lookup("store.example"); ok != tc.served {
				t.Fatalf("store.example served = %v, want %v (file %s)", ok, tc.served, b)
			}
			if lvl, _ := h.Report(); !tc.served && lvl != health.NotReady {
				t.Errorf("readiness %v, want not ready", lvl)
			}
		})
	}
}

// TestSnapshotTempFilesSweptAtStart: a node killed while it wrote the
// snapshot (at each start, after each full load) left its temporary file,
// the size of every domain's recipients, in data_dir for ever; a crash
// loop filled the disk with them.
func TestSnapshotTempFilesSweptAtStart(t *testing.T) {
	dir := t.TempDir()
	for _, name := range []string{SnapshotFile + ".tmp123", "notes.txt"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte("{"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	newTestSyncer(t, dir, &fakeLoader{err: errors.New("connection refused")}, nil)
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if !slices.Equal(names, []string{"notes.txt"}) {
		t.Errorf("data_dir after start: %v, want only notes.txt", names)
	}
}

// TestUnusableSnapshotFileIsNamed: with the store down, a snapshot file
// that cannot be read (truncated, damaged, another format) leaves the
// node without tenants, and readiness says the file was refused and why;
// it said there was no snapshot file, sending the operator after a file
// that was there.
func TestUnusableSnapshotFileIsNamed(t *testing.T) {
	dir := t.TempDir()
	path, b := writtenSnapshot(t, dir)
	if err := os.WriteFile(path, b[:len(b)/2], 0o600); err != nil {
		t.Fatal(err)
	}
	_, h := newTestSyncer(t, dir, &fakeLoader{err: errors.New("connection refused")}, nil)
	level, conds := h.Report()
	if level != health.NotReady || len(conds) != 1 {
		t.Fatalf("readiness %v %v, want not ready", level, conds)
	}
	if r := conds[0].Reason; !strings.Contains(r, SnapshotFile) || !strings.Contains(r, "unexpected EOF") || strings.Contains(r, "no snapshot file") {
		t.Errorf("reason %q does not say the snapshot file was refused, and why", r)
	}
}

// writtenSnapshot has a syncer loaded from a store write its snapshot
// file into dir, and returns the file's path and bytes.
func writtenSnapshot(t *testing.T, dir string) (string, []byte) {
	t.Helper()
	newTestSyncer(t, dir, &fakeLoader{data: storeData(7, "store.test:25")}, nil)
	path := filepath.Join(dir, SnapshotFile)
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return path, b
}

// TestInvalidStoredDomainIsLeftOut: a domain row the API would refuse
// (restored from an old backup, edited by hand in SQL) is not served, and
// it does not stop the load or delta it came in: that failed whole, so a
// starting node served no stored domain at all and a running one stayed
// on its version for good (a deleted domain still accepted, a new one
// never), every other tenant held hostage by one row.
func TestInvalidStoredDomainIsLeftOut(t *testing.T) {
	data := storeData(1, "one.test:25")
	injected := "[SPAM]\r\nX-Spam-Status: No"
	data.Domains = append(data.Domains, DomainRecord{ID: 5, CustomerID: 2, Name: "bad.example", Route: "no port", TLS: "none"},
		DomainRecord{ID: 7, CustomerID: 2, Name: "tagged.example", Route: "tagged.test:25", TLS: "none", Policy: Policy{SubjectTag: &injected}},
		DomainRecord{ID: 8, CustomerID: 2, Name: "disabled.example", Route: "disabled.test:25", TLS: "none", Status: "disabled"})
	l := &fakeLoader{data: data}
	s, h := newTestSyncer(t, t.TempDir(), l, nil)
	// Degraded, not down: the others are served, and the operator is told.
	if lvl, conds := h.Report(); lvl != health.Degraded || !strings.Contains(conds[0].Reason, "3 stored domains") {
		t.Fatalf("after a full load with one invalid domain: %v %v", lvl, conds)
	}
	if _, ok := s.Directory().Lookup("store.example"); !ok {
		t.Fatal("one invalid domain kept the valid ones from being served")
	}
	if _, ok := s.Directory().Lookup("bad.example"); ok {
		t.Fatal("an invalid domain is served")
	}
	// Provisioned all the same: its mail is deferred (smtpd), not refused
	// as no one's.
	if why, ok := s.Directory().Unservable("BAD.example"); !ok || !strings.Contains(why, "route") {
		t.Fatalf("bad.example unservable = %v (%q), want listed with the route's problem", ok, why)
	}
	// A subject tag with a line break would have failed every tagged
	// message's header rewrite (relaying the sender's own header).
	if why, ok := s.Directory().Unservable("tagged.example"); !ok || !strings.Contains(why, "subject_tag") {
		t.Fatalf("tagged.example unservable = %v (%q), want listed with the subject tag's problem", ok, why)
	}
	// A status the store never writes, set by hand, was served as active.
	if _, ok := s.Directory().Lookup("disabled.example"); ok {
		t.Fatal("a domain of an unknown status is served")
	}
	if why, ok := s.Directory().Unservable("disabled.example"); !ok || !strings.Contains(why, "disabled") {
		t.Fatalf("disabled.example unservable = %v (%q), want listed with its status", ok, why)
	}

	// A delta: store.example's row turns invalid, shared.example is
	// deleted and a new domain comes; the old store.example must go, not
	// stay as it was.
	l.data.Version = 2
	l.deltas = []Delta{{
		Data: Data{Version: 2, Domains: []DomainRecord{
			{ID: 4, CustomerID: 2, Name: "store.example", Route: "store.test:25", TLS: "sometimes"},
			{ID: 6, CustomerID: 2, Name: "new.example", Route: "new.test:25", TLS: "none"},
		}},
		RemovedDomains: []int64{3},
	}}
	if err := s.Reload(context.Background()); err != nil {
		t.Fatalf("a delta with one invalid domain: %v", err)
	}
	if v := s.Directory().Snapshot().Version; v != 2 {
		t.Errorf("version %d, want 2", v)
	}
	for name, want := range map[string]bool{"new.example": true, "shared.example": false, "store.example": false} {
		if _, ok := s.Directory().Lookup(name); ok != want {
			t.Errorf("%s served = %v, want %v", name, ok, want)
		}
	}
	for name, want := range map[string]bool{"store.example": true, "bad.example": true, "shared.example": false} {
		if _, ok := s.Directory().Unservable(name); ok != want {
			t.Errorf("%s unservable = %v, want %v", name, ok, want)
		}
	}

	// Repaired, and bad.example deleted: nothing is left unservable.
	l.data.Version = 3
	l.deltas = []Delta{{
		Data:           Data{Version: 3, Domains: []DomainRecord{{ID: 4, CustomerID: 2, Name: "store.example", Route: "store.test:25", TLS: "none"}}},
		RemovedDomains: []int64{5, 7, 8},
	}}
	if err := s.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, ok := s.Directory().Lookup("store.example"); !ok {
		t.Error("the repaired store.example is not served")
	}
	for _, name := range []string{"store.example", "bad.example"} {
		if _, ok := s.Directory().Unservable(name); ok {
			t.Errorf("%s still unservable", name)
		}
	}
	if lvl, conds := h.Report(); lvl != health.OK {
		t.Errorf("after the repair: %v %v", lvl, conds)
	}
}

// TestEmptyStoreDoesNotReplaceStoredDomains: a store that has never held
// a tenant (version 0, nothing in it: a SQLite file deleted or emptied and
// made anew, a PostgreSQL database dropped and created again) answered a
// full load as any store does, and the node swapped its stored domains
// for nothing, refusing their mail with 550 while reporting ready, and
// overwrote the snapshot file that still held them. It is not believed
// while the node serves stored domains, at start from the file as while
// running; a fresh install (no stored domain known) takes it, and so does
// a node once the store holds a version of its own.
func TestEmptyStoreDoesNotReplaceStoredDomains(t *testing.T) {
	empty := Data{}
	for _, tc := range []struct {
		name string
		// seed is the store an earlier run loaded (its file in dir); nil
		// for none.
		seed *Data
		// running: the store empties under a node that loaded seed.
		running   bool
		wantKnown bool // store.example still served
		wantLevel health.Level
	}{
		{"fresh install: no file", nil, false, false, health.OK},
		{"file with stored domains, empty store at start", &Data{}, false, true, health.Degraded},
		{"store emptied under a running node", &Data{}, true, true, health.Degraded},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			l := &fakeLoader{data: storeData(7, "store.test:25")}
			var s *Syncer
			var h *health.Registry
			switch {
			case tc.seed == nil:
				l.data = empty
				s, h = newTestSyncer(t, dir, l, nil)
			case tc.running:
				s, h = newTestSyncer(t, dir, l, nil)
				l.data = empty
				if err := s.Reload(context.Background()); err == nil {
					t.Fatal("reload from an empty store succeeded")
				}
				s.report()
			default:
				newTestSyncer(t, dir, l, nil)
				l.data = empty
				s, h = newTestSyncer(t, dir, l, nil)
			}
			if _, ok := s.Directory().Lookup("store.example"); ok != tc.wantKnown {
				t.Fatalf("store.example served = %v, want %v", ok, tc.wantKnown)
			}
			level, conds := h.Report()
			if level != tc.wantLevel {
				t.Fatalf("readiness %v %v, want %v", level, conds, tc.wantLevel)
			}
			if tc.wantLevel == health.Degraded && (len(conds) != 1 || !strings.Contains(conds[0].Reason, "holds no tenants")) {
				t.Fatalf("readiness %v does not say the store is empty", conds)
			}
			if !tc.wantKnown {
				return
			}
			// The file keeps the domains for the next restart.
			down := &fakeLoader{err: errors.New("down")}
			again, _ := newTestSyncer(t, dir, down, nil)
			if _, ok := again.Directory().Lookup("store.example"); !ok {
				t.Fatal("the snapshot file lost the stored domains")
			}
			// Once the store holds a version of its own (the operator
			// made the new database theirs), it is the store again.
			l.data = Data{Version: 1, Resellers: []Reseller{{ID: 1}}}
			if err := s.Reload(context.Background()); err != nil {
				t.Fatal(err)
			}
			if _, ok := s.Directory().Lookup("store.example"); ok {
				t.Fatal("a store written since is still not believed")
			}
			if level, conds := h.Report(); level != health.OK {
				t.Fatalf("readiness %v %v after the store was written", level, conds)
			}
		})
	}
}
