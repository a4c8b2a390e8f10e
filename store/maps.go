package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// MapRecord is one rendered generation of the public map for a scope
// ("global"; per-reseller scopes later). Nodes serve exactly these bytes, so
// every node answers with the same body and ETag.
type MapRecord struct {
	Scope       string
	GeneratedAt time.Time
	ETag        string
	// Events is how many events the map aggregates.
	Events int
	// JSON, Drawing and Body are the artefacts spammap renders: the public
	// JSON, the SVG drawing, and the HTML page's body.
	JSON, Drawing, Body []byte
}

// mapsComponent names the maps table's migrations in schema_migrations.
const mapsComponent = "maps"

// mapMigrations create the maps table: one row per scope, replaced at each
// generation. Time is Unix microseconds in a BIGINT, as for events, so the
// "newer wins" comparison is numeric in both dialects.
var mapMigrations = []Migration{{
	Version: 1,
	SQLite: `CREATE TABLE maps (
		scope TEXT PRIMARY KEY,
		generated_us INTEGER NOT NULL,
		etag TEXT NOT NULL,
		events INTEGER NOT NULL,
		json BLOB NOT NULL,
		drawing BLOB NOT NULL,
		body BLOB NOT NULL)`,
	Postgres: `CREATE TABLE maps (
		scope TEXT PRIMARY KEY,
		generated_us BIGINT NOT NULL,
		etag TEXT NOT NULL,
		events BIGINT NOT NULL,
		json BYTEA NOT NULL,
		drawing BYTEA NOT NULL,
		body BYTEA NOT NULL)`,
}}

// MigrateMaps creates or upgrades the maps table.
func (s *Store) MigrateMaps(ctx context.Context) error {
	return s.Migrate(ctx, mapsComponent, mapMigrations)
}

// PutMap stores a generation for its scope. An older generation never
// replaces a newer one: a leader that lost its leadership mid-render (a
// partition, a slow scan) cannot roll the map back. It reports whether the
// row was written.
func (s *Store) PutMap(ctx context.Context, r MapRecord) (bool, error) {
	ctx, cancel := context.WithTimeout(ctx, s.Timeout)
	defer cancel()
	// ON CONFLICT ... DO UPDATE ... WHERE is the same in SQLite (3.24+) and
	// PostgreSQL (9.5+).
	res, err := s.DB.ExecContext(ctx, `INSERT INTO maps (scope, generated_us, etag, events, json, drawing, body)
		VALUES ($1, $2, $3, $4, $5, $6, $7)
		ON CONFLICT (scope) DO UPDATE SET generated_us = excluded.generated_us, etag = excluded.etag,
			events = excluded.events, json = excluded.json, drawing = excluded.drawing, body = excluded.body
		WHERE maps.generated_us <= excluded.generated_us`,
		r.Scope, r.GeneratedAt.UnixMicro(), r.ETag, r.Events, r.JSON, r.Drawing, r.Body)
	if err != nil {
		return false, fail(fmt.Sprintf("put map %s", r.Scope), err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fail(fmt.Sprintf("put map %s", r.Scope), err)
	}
	return n > 0, nil
}

// MapVersion returns the scope's current generation time and ETag, without
// the artefacts: nodes poll it and fetch the bytes only when it changes. ok
// is false when the scope has no map yet.
func (s *Store) MapVersion(ctx context.Context, scope string) (generatedAt time.Time, etag string, ok bool, err error) {
	ctx, cancel := context.WithTimeout(ctx, s.Timeout)
	defer cancel()
	var us int64
	err = s.DB.QueryRowContext(ctx, `SELECT generated_us, etag FROM maps WHERE scope = $1`, scope).Scan(&us, &etag)
	if errors.Is(err, sql.ErrNoRows) {
		return time.Time{}, "", false, nil
	}
	if err != nil {
		return time.Time{}, "", false, fail(fmt.Sprintf("map version %s", scope), err)
	}
	return time.UnixMicro(us).UTC(), etag, true, nil
}

// GetMap returns the scope's current generation; ok is false when there is
// none yet.
func (s *Store) GetMap(ctx context.Context, scope string) (r MapRecord, ok bool, err error) {
	ctx, cancel := context.WithTimeout(ctx, s.Timeout)
	defer cancel()
	var us, events int64
	err = s.DB.QueryRowContext(ctx, `SELECT generated_us, etag, events, json, drawing, body FROM maps WHERE scope = $1`, scope).
		Scan(&us, &r.ETag, &events, &r.JSON, &r.Drawing, &r.Body)
	if errors.Is(err, sql.ErrNoRows) {
		return MapRecord{}, false, nil
	}
	if err != nil {
		return MapRecord{}, false, fail(fmt.Sprintf("get map %s", scope), err)
	}
	r.Scope = scope
	r.GeneratedAt = time.UnixMicro(us).UTC()
	r.Events = int(events)
	return r, true, nil
}
