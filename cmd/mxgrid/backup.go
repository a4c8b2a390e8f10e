package main

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/mxgrid/mxgrid/config"
	"github.com/mxgrid/mxgrid/store"
)

// runBackup copies the embedded SQLite store of a node, running or not,
// into one self-checking file (see store.Backup). The tenant snapshot file
// is left out on purpose: a node rebuilds it from the store at start.
func runBackup(ctx context.Context, args []string, stdout io.Writer) error {
	fs := newFlagSet("backup")
	path := fs.String("config", "", "YAML configuration `file` (its data_dir and store sections are used)")
	out := fs.String("out", "", "backup `file` to write (a file there is replaced atomically; anything else there is refused)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *out == "" || fs.NArg() > 0 {
		return fmt.Errorf("%w: mxgrid backup [-config FILE] -out FILE", errUsage)
	}
	cfg, err := sqliteConfig(*path)
	if err != nil {
		return err
	}
	m, err := store.Backup(ctx, store.SQLitePath(cfg.Store, cfg.DataDir), *out, time.Now())
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "backup %s: %s\n", *out, summary(m))
	return nil
}

// runRestore puts a backup into a data directory that has no database yet.
func runRestore(ctx context.Context, args []string, stdout io.Writer) error {
	fs := newFlagSet("restore")
	path := fs.String("config", "", "YAML configuration `file` of the node to restore (its data_dir and store sections)")
	dataDir := fs.String("data-dir", "", "restore into this `directory` instead of the config's data_dir")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return fmt.Errorf("%w: mxgrid restore [-config FILE] [-data-dir DIR] BACKUP-FILE", errUsage)
	}
	cfg, err := sqliteConfig(*path)
	if err != nil {
		return err
	}
	target := store.SQLitePath(cfg.Store, cfg.DataDir)
	if *dataDir != "" {
		target = filepath.Join(*dataDir, filepath.Base(target))
	}
	m, err := store.Restore(ctx, fs.Arg(0), target)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "restored %s into %s: %s\n", fs.Arg(0), target, summary(m))
	return nil
}

// sqliteConfig loads the config and refuses a PostgreSQL store, whose
// backups are PostgreSQL's own tools' job.
func sqliteConfig(path string) (config.Config, error) {
	cfg, err := config.Load(path)
	if err != nil {
		return cfg, err
	}
	if cfg.Store.Driver != store.SQLite {
		return cfg, fmt.Errorf("store.driver is %s: back it up with pg_dump and restore with pg_restore (docs/backup.md)", cfg.Store.Driver)
	}
	return cfg, nil
}

// summary is one line an operator can check a backup by.
func summary(m store.BackupManifest) string {
	var schema, rows []string
	for c, v := range m.Schema {
		schema = append(schema, fmt.Sprintf("%s v%d", c, v))
	}
	for t, n := range m.Rows {
		rows = append(rows, fmt.Sprintf("%s %d", t, n))
	}
	sort.Strings(schema)
	sort.Strings(rows)
	return fmt.Sprintf("taken %s, %d bytes (sha256 %s), tenant config version %d; rows: %s; schema: %s",
		m.Created.Format(time.RFC3339), m.Size, m.SHA256[:16], m.TenantVersion, strings.Join(rows, ", "), strings.Join(schema, ", "))
}
