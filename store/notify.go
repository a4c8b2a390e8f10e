package store

import (
	"context"
	"database/sql"
	"errors"
	"time"
)

// Singleton jobs and digests. A lease row names who runs a job until when:
// two nodes that both believe they lead (a network partition) cannot both
// hold it. A digest is recorded (recipient, run) before it is sent, under
// a primary key, so even two runs at once send each recipient's digest
// once.

const notifyComponent = "notify"

var notifyMigrations = []Migration{{
	Version: 1,
	SQLite: `CREATE TABLE leases (name TEXT PRIMARY KEY, holder TEXT NOT NULL, expires_us INTEGER NOT NULL);
	CREATE TABLE digest_sent (recipient TEXT NOT NULL, run TEXT NOT NULL, at_us INTEGER NOT NULL, PRIMARY KEY (recipient, run));
	CREATE TABLE digest_optout (recipient TEXT PRIMARY KEY, at_us INTEGER NOT NULL);`,
	Postgres: `CREATE TABLE leases (name TEXT PRIMARY KEY, holder TEXT NOT NULL, expires_us BIGINT NOT NULL);
	CREATE TABLE digest_sent (recipient TEXT NOT NULL, run TEXT NOT NULL, at_us BIGINT NOT NULL, PRIMARY KEY (recipient, run));
	CREATE TABLE digest_optout (recipient TEXT PRIMARY KEY, at_us BIGINT NOT NULL);`,
}, {
	// A run reads the recipients its period already sent to, and old
	// periods' rows are pruned by age.
	Version:  2,
	SQLite:   `CREATE INDEX digest_sent_run ON digest_sent (run); CREATE INDEX digest_sent_at ON digest_sent (at_us);`,
	Postgres: `CREATE INDEX digest_sent_run ON digest_sent (run); CREATE INDEX digest_sent_at ON digest_sent (at_us);`,
}, {
	// Version 3 keeps opt-outs per domain as its customer holds it:
	// digest_optout named an address across all tenants, so an opt-out
	// outlived its domain's move to another tenant, whose users then got
	// no digest and could not see why. Those rows say nothing of which
	// domain and owner they were for, so none is carried over (their
	// recipients opt out again with the next digest's link); the table
	// stays for nodes not yet upgraded, which still read and write it.
	Version: 3,
	Common: `CREATE TABLE digest_optouts (domain_id BIGINT NOT NULL, customer_id BIGINT NOT NULL, recipient TEXT NOT NULL,
		at_us BIGINT NOT NULL, PRIMARY KEY (domain_id, customer_id, recipient));`,
}}

// MigrateNotify creates the lease and digest tables.
func (s *Store) MigrateNotify(ctx context.Context) error {
	return s.Migrate(ctx, notifyComponent, notifyMigrations)
}

// TryLease takes or renews the lease name for holder until now+ttl, if it
// is free, expired or already holder's.
func (s *Store) TryLease(ctx context.Context, name, holder string, ttl time.Duration, now time.Time) (bool, error) {
	ctx, cancel := context.WithTimeout(ctx, s.Timeout)
	defer cancel()
	if _, err := s.DB.ExecContext(ctx, `INSERT INTO leases (name, holder, expires_us) VALUES ($1, '', 0) ON CONFLICT (name) DO NOTHING`, name); err != nil {
		return false, fail("lease "+name, err)
	}
	res, err := s.DB.ExecContext(ctx, `UPDATE leases SET holder = $2, expires_us = $3 WHERE name = $1 AND (holder = $2 OR expires_us < $4)`,
		name, holder, now.Add(ttl).UnixMicro(), now.UnixMicro())
	if err != nil {
		return false, fail("lease "+name, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fail("lease "+name, err)
	}
	return n == 1, nil
}

// MarkDigest records recipient's digest of run; false means it was
// recorded already (sent, or being sent, by another run).
func (s *Store) MarkDigest(ctx context.Context, recipient, run string, now time.Time) (bool, error) {
	ctx, cancel := context.WithTimeout(ctx, s.Timeout)
	defer cancel()
	res, err := s.DB.ExecContext(ctx, `INSERT INTO digest_sent (recipient, run, at_us) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING`,
		recipient, run, now.UnixMicro())
	if err != nil {
		return false, fail("record a digest", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fail("record a digest", err)
	}
	return n == 1, nil
}

// UnmarkDigest forgets recipient's digest of run, one the smarthost cannot
// have taken, so that a later check sends it.
func (s *Store) UnmarkDigest(ctx context.Context, recipient, run string) error {
	ctx, cancel := context.WithTimeout(ctx, s.Timeout)
	defer cancel()
	if _, err := s.DB.ExecContext(ctx, `DELETE FROM digest_sent WHERE recipient = $1 AND run = $2`, recipient, run); err != nil {
		return fail("forget a digest", err)
	}
	return nil
}

// DigestsSent lists the recipients whose digest of run is recorded.
func (s *Store) DigestsSent(ctx context.Context, run string) ([]string, error) {
	ctx, cancel := context.WithTimeout(ctx, s.Timeout)
	defer cancel()
	rows, err := s.DB.QueryContext(ctx, `SELECT recipient FROM digest_sent WHERE run = $1`, run)
	if err != nil {
		return nil, fail("digests sent", err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var r string
		if err := rows.Scan(&r); err != nil {
			return nil, fail("digests sent", err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fail("digests sent", err)
	}
	return out, nil
}

// PruneDigests forgets digests recorded before before: a record only has
// to outlive its period.
func (s *Store) PruneDigests(ctx context.Context, before time.Time) (int64, error) {
	ctx, cancel := context.WithTimeout(ctx, s.Timeout)
	defer cancel()
	res, err := s.DB.ExecContext(ctx, `DELETE FROM digest_sent WHERE at_us < $1`, before.UnixMicro())
	if err != nil {
		return 0, fail("prune digests", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fail("prune digests", err)
	}
	return n, nil
}

// OptOut stops digests to recipient of domain domainID while customer
// customerID holds it: a domain re-created (a new id) or moved to another
// customer has other mailboxes of the name.
func (s *Store) OptOut(ctx context.Context, domainID, customerID int64, recipient string, now time.Time) error {
	ctx, cancel := context.WithTimeout(ctx, s.Timeout)
	defer cancel()
	if _, err := s.DB.ExecContext(ctx, `INSERT INTO digest_optouts (domain_id, customer_id, recipient, at_us) VALUES ($1, $2, $3, $4)
		ON CONFLICT DO NOTHING`, domainID, customerID, recipient, now.UnixMicro()); err != nil {
		return fail("opt out", err)
	}
	return nil
}

// OptedOut reports whether recipient of domain domainID asked for no
// digests while customer customerID held it.
func (s *Store) OptedOut(ctx context.Context, domainID, customerID int64, recipient string) (bool, error) {
	ctx, cancel := context.WithTimeout(ctx, s.Timeout)
	defer cancel()
	var one int
	err := s.DB.QueryRowContext(ctx, `SELECT 1 FROM digest_optouts WHERE domain_id = $1 AND customer_id = $2 AND recipient = $3`,
		domainID, customerID, recipient).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fail("opt-out", err)
	}
	return true, nil
}

// BrandOf is the white-label name a customer's mail goes out under: its
// reseller's display name, as the panel shows it, or its name when it has
// none ("" for the operator's own domains).
func (s *Store) BrandOf(ctx context.Context, customerID int64) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, s.Timeout)
	defer cancel()
	var name string
	err := s.DB.QueryRowContext(ctx, `SELECT COALESCE(NULLIF(r.display_name, ''), r.name) FROM customers c JOIN resellers r ON r.id = c.reseller_id WHERE c.id = $1`, customerID).Scan(&name)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	if err != nil {
		return "", fail("brand", err)
	}
	return name, nil
}
