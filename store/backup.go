package store

import (
	"bufio"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/mxgrid/mxgrid/fsperm"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// A backup file is self-describing, so that restore can refuse a wrong,
// corrupt or truncated file before it touches the target:
//
//	MXGRID-BACKUP 1 <sha256>\n   magic, format version, the manifest line's SHA-256
//	{"format":1,...}\n           the manifest (BackupManifest), one JSON line
//	<gzip stream>                the SQLite database, as VACUUM INTO wrote it
//
// `head -2 FILE` shows what a file holds; `tail -n +3 FILE | gunzip` is the
// database. The header covers the manifest, the manifest the database's
// size and SHA-256, and gzip has its own CRC and length, so a flipped bit
// or a cut-off copy is caught wherever it is.

const (
	backupMagic = "MXGRID-BACKUP"
	// BackupFormat is the version of the file layout written by Backup.
	BackupFormat = 1
	// maxManifest bounds the manifest line restore reads before trusting it.
	maxManifest = 1 << 20
)

// BackupManifest describes a backup.
type BackupManifest struct {
	Format  int       `json:"format"`
	Created time.Time `json:"created"`
	Driver  string    `json:"driver"`
	// Schema is each component's migration version in the copy, so a
	// restore by an older mxgrid that cannot read it is refused.
	Schema map[string]int `json:"schema"`
	// TenantVersion is the tenant config version in the copy.
	TenantVersion uint64 `json:"tenant_version"`
	// Rows counts the main tables' rows, for the operator's eyes.
	Rows map[string]int64 `json:"rows"`
	// Size and SHA256 are the database file's, before compression.
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
}

// knownSchemas is the newest version of each component this build has. A
// component added to the store must be listed here, or restore refuses
// backups that hold it (the backup-while-serving test catches that) and a
// node refuses a database that holds it (CheckSchema); one dropped stays.
func knownSchemas() map[string]int {
	last := func(ms []Migration) int { return ms[len(ms)-1].Version }
	return map[string]int{
		tenantsComponent:       last(tenantMigrations),
		routesComponent:        last(routeMigrations),
		eventsComponent:        last(eventMigrations),
		mapRollupComponent:     last(mapRollupMigrations),
		mapsComponent:          last(mapMigrations),
		domainStatsComponent:   last(domainStatsMigrations),
		panelSessionsComponent: last(panelSessionsMigrations),
		trackingComponent:      last(trackingMigrations),
		quarantineComponent:    last(quarantineMigrations),
		notifyComponent:        last(notifyMigrations),
	}
}

// schemaVersions is each component's newest applied migration.
func schemaVersions(ctx context.Context, db *sql.DB) (map[string]int, error) {
	rows, err := db.QueryContext(ctx, `SELECT component, MAX(version) FROM schema_migrations GROUP BY component`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string]int{}
	for rows.Next() {
		var (
			c string
			v int
		)
		if err := rows.Scan(&c, &v); err != nil {
			return nil, err
		}
		out[c] = v
	}
	return out, rows.Err()
}

// countedTables are the tables whose rows the manifest counts.
var countedTables = []string{"domains", "recipients", "api_tokens", "events", "maps"}

// SQLitePath is the database file of an sqlite store: the DSN when it
// names one, else mxgrid.db in the data directory.
func SQLitePath(cfg Config, dataDir string) string {
	if cfg.DSN != "" {
		return cfg.DSN
	}
	return filepath.Join(dataDir, "mxgrid.db")
}

// Backup writes a consistent copy of the SQLite database at dbPath to out
// while a node may be using it. It opens the file read-only (WAL lets a
// reader work beside the node's writer) and runs VACUUM INTO, which copies
// one read transaction's view: every table as of one instant. out is
// written under a temporary name and renamed, so it is either complete or
// absent.
func Backup(ctx context.Context, dbPath, out string, now time.Time) (BackupManifest, error) {
	m := BackupManifest{Format: BackupFormat, Created: now.UTC(), Driver: SQLite}
	if _, err := os.Stat(dbPath); err != nil {
		return m, fmt.Errorf("backup: no database at %s (is data_dir right?): %w", dbPath, err)
	}
	// The backup is renamed over out: `-out /dev/null`, run as root,
	// replaced the device with a file for every process on the machine.
	if fi, err := os.Lstat(out); err == nil && !fi.Mode().IsRegular() {
		return m, fmt.Errorf("backup: %s is a %s, not a file; the backup would replace it", out, fileKind(fi.Mode()))
	}
	scratch, err := privateScratch(filepath.Dir(out))
	if err != nil {
		return m, fmt.Errorf("backup: %w", err)
	}
	defer os.RemoveAll(scratch)
	copyPath := filepath.Join(scratch, "mxgrid.db")
	if err := vacuumInto(ctx, dbPath, copyPath); err != nil {
		return m, err
	}
	if err := describe(ctx, copyPath, &m); err != nil {
		return m, fmt.Errorf("backup: reading the copy: %w", err)
	}
	if m.Size, m.SHA256, err = hashFile(copyPath); err != nil {
		return m, fmt.Errorf("backup: %w", err)
	}
	if err := writeBackup(copyPath, out, m); err != nil {
		return m, fmt.Errorf("backup: %w", err)
	}
	return m, nil
}

// privateScratch makes a directory in dir that only this user can enter,
// for the uncompressed copy VACUUM INTO writes. SQLite creates that file
// with the umask's mode (0644 as a rule), and it holds every password and
// token hash: in out's directory it was readable by every local user
// while the backup ran. VACUUM INTO also wants a name that does not exist,
// which in a shared directory is a name another user can take first, as
// a symlink to a file of theirs.
func privateScratch(dir string) (string, error) {
	// MkdirTemp makes it 0700, which a umask can only narrow.
	return os.MkdirTemp(dir, ".mxgrid-backup-*")
}

// vacuumInto copies the live database through a read-only connection.
func vacuumInto(ctx context.Context, dbPath, to string) error {
	db, err := sql.Open("sqlite", "file:"+dbPath+"?mode=ro&_pragma=busy_timeout(10000)")
	if err != nil {
		return fmt.Errorf("backup: open %s: %w", dbPath, err)
	}
	defer db.Close()
	if _, err := db.ExecContext(ctx, `VACUUM INTO $1`, to); err != nil {
		return fmt.Errorf("backup: copy %s: %w", dbPath, err)
	}
	return nil
}

// describe fills m's schema versions, tenant version and row counts from
// the database at path.
func describe(ctx context.Context, path string, m *BackupManifest) error {
	db, err := sql.Open("sqlite", "file:"+path+"?mode=ro")
	if err != nil {
		return err
	}
	defer db.Close()
	if m.Schema, err = schemaVersions(ctx, db); err != nil {
		return fmt.Errorf("schema versions: %w", err)
	}
	m.Rows = map[string]int64{}
	for _, table := range countedTables {
		var exists int
		if err := db.QueryRowContext(ctx, `SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = $1`, table).Scan(&exists); err != nil {
			return err
		}
		if exists == 0 {
			continue // its component was never migrated on this node
		}
		var n int64
		// table is one of countedTables, never input.
		if err := db.QueryRowContext(ctx, `SELECT COUNT(*) FROM `+table).Scan(&n); err != nil {
			return fmt.Errorf("count %s: %w", table, err)
		}
		m.Rows[table] = n
	}
	if m.Schema[tenantsComponent] > 0 {
		var v int64
		if err := db.QueryRowContext(ctx, `SELECT version FROM tenant_version WHERE id = 1`).Scan(&v); err != nil {
			return fmt.Errorf("tenant version: %w", err)
		}
		m.TenantVersion = uint64(v)
	}
	return nil
}

func hashFile(path string) (int64, string, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, "", err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return 0, "", err
	}
	return n, hex.EncodeToString(h.Sum(nil)), nil
}

// writeBackup writes header, manifest and the compressed database to a
// temporary file beside out, syncs it and renames it to out.
func writeBackup(dbCopy, out string, m BackupManifest) (err error) {
	manifest, err := json.Marshal(m)
	if err != nil {
		return err
	}
	src, err := os.Open(dbCopy)
	if err != nil {
		return err
	}
	defer src.Close()
	tmp, err := os.CreateTemp(filepath.Dir(out), ".mxgrid-backup-*.part")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	w := bufio.NewWriter(tmp)
	sum := sha256.Sum256(manifest)
	fmt.Fprintf(w, "%s %d %x\n%s\n", backupMagic, BackupFormat, sum, manifest)
	zw := gzip.NewWriter(w)
	if _, err := io.Copy(zw, src); err != nil {
		return err
	}
	if err := zw.Close(); err != nil {
		return err
	}
	if err := w.Flush(); err != nil {
		return err
	}
	if err := tmp.Sync(); err != nil {
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), out)
}

// ErrBadBackup marks a file restore refuses: not a backup, corrupt,
// truncated, or made by a newer mxgrid.
var ErrBadBackup = errors.New("unusable backup")

func badBackup(file, format string, args ...any) error {
	return fmt.Errorf("%w: %s: %s", ErrBadBackup, file, fmt.Sprintf(format, args...))
}

// Restore puts the database of backup file in at dbPath, which must not
// exist: restore never overwrites. The whole file is checked first (header,
// manifest, gzip CRC, size, SHA-256, SQLite integrity_check, schema
// versions) in a temporary file beside dbPath; only a backup that passes
// becomes dbPath, by a hard link that fails if dbPath appeared meanwhile.
// On any failure nothing in the directory has changed, and a directory
// made for the restore is removed again.
func Restore(ctx context.Context, in, dbPath string) (m BackupManifest, err error) {
	for _, p := range []string{dbPath, dbPath + "-wal", dbPath + "-shm"} {
		if _, err := os.Lstat(p); err == nil {
			return m, fmt.Errorf("restore: %s already exists: restore only into a data directory without a database (move the old one away first)", p)
		} else if !errors.Is(err, os.ErrNotExist) {
			return m, fmt.Errorf("restore: %w", err)
		}
	}
	f, err := os.Open(in)
	if err != nil {
		return m, fmt.Errorf("restore: %w", err)
	}
	defer f.Close()
	br := bufio.NewReader(f)
	m, err = readHeader(br, in)
	if err != nil {
		return m, err
	}
	dir := filepath.Dir(dbPath)
	made := missingDirs(dir)
	if err := os.MkdirAll(dir, fsperm.DirMode); err != nil {
		return m, fmt.Errorf("restore: create data directory: %w", err)
	}
	defer func() {
		if err != nil {
			// Left behind, an empty directory owned by whoever restored
			// keeps the node's user from a later restore into it.
			for _, d := range made {
				os.Remove(d)
			}
		}
	}()
	tmp, err := os.CreateTemp(dir, ".mxgrid-restore-*.db")
	if err != nil {
		return m, fmt.Errorf("restore: %w", err)
	}
	tmpPath := tmp.Name()
	defer os.Remove(tmpPath) // after the link, only the extra name goes
	if err := unpack(br, tmp, in, m); err != nil {
		tmp.Close()
		return m, err
	}
	if err := tmp.Close(); err != nil {
		return m, fmt.Errorf("restore: %w", err)
	}
	if err := checkDatabase(ctx, tmpPath, in, m); err != nil {
		return m, err
	}
	if err := os.Link(tmpPath, dbPath); err != nil {
		return m, fmt.Errorf("restore: %w", err)
	}
	// The new name must survive a crash too.
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
	return m, nil
}

func readHeader(br *bufio.Reader, in string) (BackupManifest, error) {
	var m BackupManifest
	line, err := readLine(br, 128)
	fields := strings.Fields(line)
	if err != nil || len(fields) == 0 || fields[0] != backupMagic {
		return m, badBackup(in, "not an mxgrid backup (it does not start with %q)", backupMagic)
	}
	if len(fields) != 3 {
		return m, badBackup(in, "corrupt header line %q", line)
	}
	v, err := strconv.Atoi(fields[1])
	if err != nil || v < 1 {
		return m, badBackup(in, "corrupt header line %q", line)
	}
	if v > BackupFormat {
		return m, badBackup(in, "backup format %d is newer than this mxgrid reads (%d): restore with the mxgrid that made it", v, BackupFormat)
	}
	line, err = readLine(br, maxManifest)
	if err != nil {
		return m, badBackup(in, "truncated or corrupt manifest: %v", err)
	}
	if sum := sha256.Sum256([]byte(line)); hex.EncodeToString(sum[:]) != fields[2] {
		return m, badBackup(in, "corrupt manifest: its SHA-256 does not match the header's")
	}
	if err := json.Unmarshal([]byte(line), &m); err != nil {
		return m, badBackup(in, "corrupt manifest: %v", err)
	}
	if _, err := hex.DecodeString(m.SHA256); err != nil || len(m.SHA256) != 2*sha256.Size || m.Size <= 0 || m.Driver != SQLite {
		return m, badBackup(in, "corrupt manifest: driver %q, size %d, sha256 %q", m.Driver, m.Size, m.SHA256)
	}
	known := knownSchemas()
	for c, v := range m.Schema {
		have, ok := known[c]
		if !ok {
			return m, badBackup(in, "it holds a %s schema this mxgrid does not know: restore with the mxgrid that made it", c)
		}
		if v > have {
			return m, badBackup(in, "it holds %s schema version %d, newer than this mxgrid knows (%d): restore with the mxgrid that made it", c, v, have)
		}
	}
	return m, nil
}

// readLine reads one '\n'-terminated line of at most max bytes.
func readLine(br *bufio.Reader, max int) (string, error) {
	var b []byte
	for {
		chunk, err := br.ReadSlice('\n')
		b = append(b, chunk...)
		if len(b) > max {
			return "", fmt.Errorf("line longer than %d bytes", max)
		}
		switch {
		case err == nil:
			return strings.TrimSuffix(string(b), "\n"), nil
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		case errors.Is(err, io.EOF):
			return "", io.ErrUnexpectedEOF
		default:
			return "", err
		}
	}
}

// missingDirs is dir and those of its parents that do not exist,
// deepest first.
func missingDirs(dir string) []string {
	var missing []string
	for d := dir; ; d = filepath.Dir(d) {
		if _, err := os.Lstat(d); !errors.Is(err, os.ErrNotExist) {
			return missing
		}
		missing = append(missing, d)
		if filepath.Dir(d) == d {
			return missing
		}
	}
}

// unpack decompresses the database into dst and checks its size and hash
// against the manifest.
func unpack(r *bufio.Reader, dst *os.File, in string, m BackupManifest) error {
	zr, err := gzip.NewReader(r)
	if err != nil {
		return badBackup(in, "the database is missing or corrupt: %v", err)
	}
	// One member only: anything after it is damage, not more database.
	zr.Multistream(false)
	h := sha256.New()
	// One byte over the manifest's size is enough to see a file that
	// holds more than it claims.
	n, err := io.Copy(io.MultiWriter(dst, h), io.LimitReader(zr, m.Size+1))
	switch {
	case (errors.Is(err, io.ErrUnexpectedEOF) || err == nil) && n < m.Size:
		return badBackup(in, "truncated: the database ends after %d of %d bytes", n, m.Size)
	case errors.Is(err, io.ErrUnexpectedEOF):
		return badBackup(in, "truncated: the compressed stream ends early")
	case errors.Is(err, gzip.ErrChecksum) || errors.Is(err, gzip.ErrHeader):
		return badBackup(in, "corrupt: %v", err)
	case err != nil:
		var pe *os.PathError
		if errors.As(err, &pe) {
			return fmt.Errorf("restore: %w", err) // our disk, not the file
		}
		return badBackup(in, "corrupt: %v", err)
	case n > m.Size:
		return badBackup(in, "corrupt: the database is larger than its manifest says (%d bytes)", m.Size)
	}
	// Read to the end of the stream so gzip verifies its CRC and length.
	if _, err := io.Copy(io.Discard, zr); err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) {
			return badBackup(in, "truncated: the compressed stream ends early")
		}
		return badBackup(in, "corrupt: %v", err)
	}
	// gzip read from r's buffer without going past the member's end.
	if _, err := r.ReadByte(); !errors.Is(err, io.EOF) {
		return badBackup(in, "corrupt: data follows the end of the database")
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != m.SHA256 {
		return badBackup(in, "corrupt: the database's SHA-256 is %s, the manifest says %s", got, m.SHA256)
	}
	if err := dst.Sync(); err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	return nil
}

// checkDatabase runs SQLite's own integrity check and compares the schema
// versions with the manifest's.
func checkDatabase(ctx context.Context, path, in string, m BackupManifest) error {
	db, err := sql.Open("sqlite", "file:"+path+"?mode=ro")
	if err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	defer db.Close()
	var res string
	if err := db.QueryRowContext(ctx, `PRAGMA integrity_check`).Scan(&res); err != nil {
		return badBackup(in, "the database cannot be read: %v", err)
	}
	if res != "ok" {
		return badBackup(in, "the database fails SQLite's integrity check: %s", res)
	}
	var got BackupManifest
	if err := describe(ctx, path, &got); err != nil {
		return badBackup(in, "the database cannot be read: %v", err)
	}
	for c, v := range m.Schema {
		if got.Schema[c] != v {
			return badBackup(in, "the database has %s schema version %d, the manifest says %d", c, got.Schema[c], v)
		}
	}
	return nil
}

// fileKind names what a path that is not a regular file is, in words:
// FileMode's String is "d---------" for a directory.
func fileKind(m os.FileMode) string {
	switch {
	case m.IsDir():
		return "directory"
	case m&os.ModeSymlink != 0:
		return "symbolic link"
	case m&os.ModeNamedPipe != 0:
		return "named pipe"
	case m&os.ModeSocket != 0:
		return "socket"
	case m&os.ModeDevice != 0:
		return "device"
	}
	return "special file"
}
