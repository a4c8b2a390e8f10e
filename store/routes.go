package store

import (
	"context"
	"database/sql"
	"encoding/json"

	"github.com/mxgrid/mxgrid/tenant"
)

// routesComponent names the per-recipient route rules' migrations. They
// are their own component rather than a tenants version so that they
// evolve apart from the hierarchy's tables; they are migrated right after
// the tenants component, whose domains table they refer to.
const routesComponent = "tenant_routes"

// routeMigrations create one row per domain that has rules: the rules as
// JSON text, like policies, since only Go reads them and they are always
// read and written whole. Deleting the domain deletes its rules.
var routeMigrations = []Migration{{
	Version: 1,
	SQLite: `CREATE TABLE domain_routes (
		domain_id INTEGER PRIMARY KEY REFERENCES domains (id) ON DELETE CASCADE,
		rules TEXT NOT NULL)`,
	Postgres: `CREATE TABLE domain_routes (
		domain_id BIGINT PRIMARY KEY REFERENCES domains (id) ON DELETE CASCADE,
		rules TEXT NOT NULL)`,
}}

func decodeRoutes(s string) ([]tenant.RouteRule, error) {
	rules := []tenant.RouteRule{}
	err := json.Unmarshal([]byte(s), &rules)
	return rules, err
}

// putRoutes makes domainID's stored rules exactly rules, in the domain's
// write transaction. A domain without rules has no row.
func putRoutes(ctx context.Context, tx *sql.Tx, domainID int64, rules []tenant.RouteRule) error {
	if len(rules) == 0 {
		_, err := tx.ExecContext(ctx, `DELETE FROM domain_routes WHERE domain_id = $1`, domainID)
		return err
	}
	b, err := json.Marshal(rules)
	if err != nil {
		return err
	}
	_, err = tx.ExecContext(ctx, `INSERT INTO domain_routes (domain_id, rules) VALUES ($1, $2)
		ON CONFLICT (domain_id) DO UPDATE SET rules = excluded.rules`, domainID, string(b))
	return err
}
