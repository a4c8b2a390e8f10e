package store

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/mxgrid/mxgrid/admin"
)

// The events table holds only refused and tagged messages' sources; the
// panel's per-domain counts also need the accepted and tempfailed ones.
// Storing a row per message would grow with the mail; hourly counters per
// domain grow with the domains (24 x 30 rows per domain for the panel's
// longest view) and are incremented in batches by each node.

// domainStatsComponent names the counters' migrations in schema_migrations.
const domainStatsComponent = "domain_stats"

var domainStatsMigrations = []Migration{{
	Version: 1,
	SQLite: `CREATE TABLE domain_stats (domain TEXT NOT NULL, hour_us INTEGER NOT NULL,
		accepted INTEGER NOT NULL, tagged INTEGER NOT NULL, rejected INTEGER NOT NULL,
		virus INTEGER NOT NULL, tempfail INTEGER NOT NULL, PRIMARY KEY (domain, hour_us))`,
	Postgres: `CREATE TABLE domain_stats (domain TEXT NOT NULL, hour_us BIGINT NOT NULL,
		accepted BIGINT NOT NULL, tagged BIGINT NOT NULL, rejected BIGINT NOT NULL,
		virus BIGINT NOT NULL, tempfail BIGINT NOT NULL, PRIMARY KEY (domain, hour_us))`,
}, {
	// Version 2 keys the counters on the domain's id: keyed by name, a
	// reseller re-creating a name another had deleted saw the old owner's
	// statistics. Name-keyed counters cannot be attributed, so they go.
	Version: 2,
	SQLite: `DROP TABLE domain_stats;
	CREATE TABLE domain_stats (domain_id INTEGER NOT NULL, hour_us INTEGER NOT NULL,
		accepted INTEGER NOT NULL, tagged INTEGER NOT NULL, rejected INTEGER NOT NULL,
		virus INTEGER NOT NULL, tempfail INTEGER NOT NULL, PRIMARY KEY (domain_id, hour_us))`,
	Postgres: `DROP TABLE domain_stats;
	CREATE TABLE domain_stats (domain_id BIGINT NOT NULL, hour_us BIGINT NOT NULL,
		accepted BIGINT NOT NULL, tagged BIGINT NOT NULL, rejected BIGINT NOT NULL,
		virus BIGINT NOT NULL, tempfail BIGINT NOT NULL, PRIMARY KEY (domain_id, hour_us))`,
}}

// MigrateDomainStats creates or upgrades the counters table.
func (s *Store) MigrateDomainStats(ctx context.Context) error {
	return s.Migrate(ctx, domainStatsComponent, domainStatsMigrations)
}

// DomainHour is one domain's counts in one hour (Hour is truncated).
type DomainHour struct {
	DomainID int64
	Hour     time.Time
	admin.Counts
}

// AddDomainStats adds each row's counts to the stored ones, in one
// transaction: several nodes add to the same rows, so it is an upsert that
// sums, never a replace.
func (s *Store) AddDomainStats(ctx context.Context, rows []DomainHour) error {
	if len(rows) == 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, s.Timeout)
	defer cancel()
	tx, err := s.DB.BeginTx(ctx, nil)
	if err != nil {
		return fail("add domain stats", err)
	}
	defer tx.Rollback()
	for _, r := range rows {
		if _, err := tx.ExecContext(ctx, `INSERT INTO domain_stats (domain_id, hour_us, accepted, tagged, rejected, virus, tempfail)
			VALUES ($1, $2, $3, $4, $5, $6, $7)
			ON CONFLICT (domain_id, hour_us) DO UPDATE SET accepted = domain_stats.accepted + excluded.accepted,
				tagged = domain_stats.tagged + excluded.tagged, rejected = domain_stats.rejected + excluded.rejected,
				virus = domain_stats.virus + excluded.virus, tempfail = domain_stats.tempfail + excluded.tempfail`,
			r.DomainID, r.Hour.Truncate(time.Hour).UnixMicro(), r.Accepted, r.Tagged, r.Rejected, r.Virus, r.Tempfail); err != nil {
			return fail(fmt.Sprintf("add domain stats %d", r.DomainID), err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fail("add domain stats: commit", err)
	}
	return nil
}

// DomainCounts sums a domain's counters from the hour holding since.
func (s *Store) DomainCounts(ctx context.Context, domainID int64, since time.Time) (admin.Counts, error) {
	ctx, cancel := context.WithTimeout(ctx, s.Timeout)
	defer cancel()
	var c admin.Counts
	err := s.DB.QueryRowContext(ctx, `SELECT COALESCE(SUM(accepted), 0), COALESCE(SUM(tagged), 0), COALESCE(SUM(rejected), 0),
		COALESCE(SUM(virus), 0), COALESCE(SUM(tempfail), 0) FROM domain_stats WHERE domain_id = $1 AND hour_us >= $2`,
		domainID, since.Truncate(time.Hour).UnixMicro()).Scan(&c.Accepted, &c.Tagged, &c.Rejected, &c.Virus, &c.Tempfail)
	if err != nil {
		return c, fail(fmt.Sprintf("domain counts %d", domainID), err)
	}
	return c, nil
}

// PruneDomainStats deletes counters older than before.
func (s *Store) PruneDomainStats(ctx context.Context, before time.Time) error {
	ctx, cancel := context.WithTimeout(ctx, s.Timeout)
	defer cancel()
	if _, err := s.DB.ExecContext(ctx, `DELETE FROM domain_stats WHERE hour_us < $1`, before.UnixMicro()); err != nil {
		return fail("prune domain stats", err)
	}
	return nil
}

// RefusedEvents returns a domain's most recent refused messages, newest
// first, from the events table (events_domain_id index).
func (s *Store) RefusedEvents(ctx context.Context, domainID int64, limit int) ([]admin.Refused, error) {
	ctx, cancel := context.WithTimeout(ctx, s.Timeout)
	defer cancel()
	rows, err := s.DB.QueryContext(ctx, `SELECT at_us, ip, verdict, score, symbols, country FROM events
		WHERE domain_id = $1 AND action = 'reject' ORDER BY at_us DESC, id DESC LIMIT $2`, domainID, limit)
	if err != nil {
		return nil, fail(fmt.Sprintf("refused events %d", domainID), err)
	}
	defer rows.Close()
	out := []admin.Refused{}
	for rows.Next() {
		var (
			r       admin.Refused
			us      int64
			symbols string
		)
		if err := rows.Scan(&us, &r.ClientIP, &r.Verdict, &r.Score, &symbols, &r.Country); err != nil {
			return nil, fail(fmt.Sprintf("refused events %d: scan", domainID), err)
		}
		r.Time = time.UnixMicro(us).UTC()
		if symbols != "" {
			r.Symbols = strings.Split(symbols, " ")
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fail(fmt.Sprintf("refused events %d", domainID), err)
	}
	return out, nil
}

// RecentDomainSources is RecentSources restricted to domains: the newest
// events of any of them (by domain id), at most limit, none before since,
// in RecentSources' order. However many domains a reseller has, the set is
// one parameter of one query (an array on PostgreSQL, a JSON array on
// SQLite), so the rows stream: nothing is held per event.
func (s *Store) RecentDomainSources(ctx context.Context, domains []int64, limit int, since time.Time, fn func(Source) error) error {
	if len(domains) == 0 {
		return nil
	}
	in, set := domainSet(s.Dialect, domains)
	q := `SELECT ` + sourceColumns + ` FROM events WHERE at_us >= $1 AND domain_id ` + in + ` ORDER BY at_us DESC, id DESC`
	args := []any{since.UnixMicro(), set}
	if limit > 0 {
		q += ` LIMIT $3`
		args = append(args, limit)
	}
	return s.scanSources(ctx, "domain events", q, args, fn)
}

// domainSet returns the condition on domain_id that matches the set bound
// as $2, and the value to bind: a literal IN list would need a parameter
// per domain, past SQLite's and PostgreSQL's limits for a large reseller.
func domainSet(dialect string, domains []int64) (string, any) {
	if dialect == Postgres {
		return `= ANY($2)`, domains
	}
	var b strings.Builder
	b.WriteByte('[')
	for i, d := range domains {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.FormatInt(d, 10))
	}
	b.WriteByte(']')
	return `IN (SELECT value FROM json_each($2))`, b.String()
}

// OutcomeSeries sums the counters of scope's domains from since, in steps
// of step (a whole number of hours; buckets start at since + k*step), and
// returns the non-empty buckets in time order. A customer's and a
// reseller's domains are those they own now.
func (s *Store) OutcomeSeries(ctx context.Context, scope admin.OutcomeScope, since time.Time, step time.Duration) ([]admin.Bucket, error) {
	ctx, cancel := context.WithTimeout(ctx, s.Timeout)
	defer cancel()
	if step < time.Hour || step%time.Hour != 0 {
		return nil, fmt.Errorf("store: outcome series step %s is not whole hours", step)
	}
	from, stepUS := since.Truncate(time.Hour).UnixMicro(), step.Microseconds()
	where, arg := "1 = 1", any(nil)
	switch {
	case scope.DomainID != 0:
		where, arg = "domain_id = $3", scope.DomainID
	case scope.CustomerID != 0:
		where, arg = "domain_id IN (SELECT id FROM domains WHERE customer_id = $3)", scope.CustomerID
	case scope.ResellerID != 0:
		where, arg = "domain_id IN (SELECT d.id FROM domains d JOIN customers c ON c.id = d.customer_id WHERE c.reseller_id = $3)", scope.ResellerID
	case !scope.All:
		return nil, nil // an empty scope sees nothing
	}
	args := []any{from, stepUS}
	if arg != nil {
		args = append(args, arg)
	}
	rows, err := s.DB.QueryContext(ctx, `SELECT (hour_us - $1) / $2 AS b, SUM(accepted), SUM(tagged), SUM(rejected), SUM(virus), SUM(tempfail)
		FROM domain_stats WHERE hour_us >= $1 AND `+where+` GROUP BY b ORDER BY b`, args...)
	if err != nil {
		return nil, fail("outcome series", err)
	}
	defer rows.Close()
	var out []admin.Bucket
	for rows.Next() {
		var (
			k int64
			b admin.Bucket
		)
		if err := rows.Scan(&k, &b.Accepted, &b.Tagged, &b.Rejected, &b.Virus, &b.Tempfail); err != nil {
			return nil, fail("outcome series: scan", err)
		}
		b.Start = time.UnixMicro(from + k*stepUS).UTC()
		out = append(out, b)
	}
	if err := rows.Err(); err != nil {
		return nil, fail("outcome series", err)
	}
	return out, nil
}
