package store

import (
	"context"
	"database/sql"
	"strconv"
	"unicode/utf8"

	"github.com/mxgrid/mxgrid/admin"
	"github.com/mxgrid/mxgrid/tenant"
)

// The reseller panel's rows (tenants migration 2): logos, panel users, and
// lookups by public keys.

var _ admin.PanelStore = (*Tenants)(nil)

func (t *Tenants) ResellerBySlug(ctx context.Context, slug string) (tenant.Reseller, error) {
	return getOne(ctx, t, "SELECT "+resellerCols+" FROM resellers WHERE slug = $1", slug, scanReseller)
}

func (t *Tenants) CustomerByMapKey(ctx context.Context, key string) (tenant.Customer, error) {
	return getOne(ctx, t, "SELECT "+customerCols+" FROM customers WHERE map_key = $1", key, scanCustomer)
}

// PutLogo replaces a reseller's logo. Logos are not tenant config: no
// version bump, nodes need not reload.
func (t *Tenants) PutLogo(ctx context.Context, resellerID int64, l admin.Logo, a admin.AuditEntry) error {
	now := nowUTC()
	_, err := t.writeTx(ctx, "logo of reseller "+strconv.FormatInt(resellerID, 10), a, nil, func(tx *sql.Tx) error {
		if err := t.lockParent(ctx, tx, resellerParent, resellerID, resellerID); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO reseller_logos (reseller_id, content_type, data, updated_us) VALUES ($1, $2, $3, $4)
			ON CONFLICT (reseller_id) DO UPDATE SET content_type = excluded.content_type, data = excluded.data, updated_us = excluded.updated_us`,
			resellerID, l.ContentType, l.Data, micros(now))
		return err
	})
	return err
}

// HasLogo reports whether the reseller has a logo, without reading it.
func (t *Tenants) HasLogo(ctx context.Context, resellerID int64) (bool, error) {
	return getOne(ctx, t, `SELECT EXISTS (SELECT 1 FROM reseller_logos WHERE reseller_id = $1)`, resellerID,
		func(sc interface{ Scan(...any) error }) (bool, error) {
			var has bool
			err := sc.Scan(&has)
			return has, err
		})
}

func (t *Tenants) GetLogo(ctx context.Context, resellerID int64) (admin.Logo, error) {
	return getOne(ctx, t, `SELECT content_type, data, updated_us FROM reseller_logos WHERE reseller_id = $1`, resellerID,
		func(sc interface{ Scan(...any) error }) (admin.Logo, error) {
			var (
				l  admin.Logo
				us int64
			)
			err := sc.Scan(&l.ContentType, &l.Data, &us)
			l.Updated = fromMicros(us)
			return l, err
		})
}

const userCols = `id, reseller_id, email, password, created_us`

func scanUser(sc interface{ Scan(...any) error }) (admin.User, error) {
	var (
		u   admin.User
		cre int64
	)
	err := sc.Scan(&u.ID, &u.ResellerID, &u.Email, &u.Hash, &cre)
	u.Created = fromMicros(cre)
	return u, err
}

func (t *Tenants) CreateUser(ctx context.Context, u *admin.User, a admin.AuditEntry) error {
	now := nowUTC()
	_, err := t.writeTx(ctx, "user "+u.Email, a, nil, func(tx *sql.Tx) error {
		if err := t.lockParent(ctx, tx, resellerParent, u.ResellerID, u.ResellerID); err != nil {
			return err
		}
		u.Created = now
		if err := tx.QueryRowContext(ctx, `INSERT INTO panel_users (reseller_id, email, password, created_us) VALUES ($1, $2, $3, $4) RETURNING id`,
			u.ResellerID, u.Email, u.Hash, micros(now)).Scan(&u.ID); err != nil {
			return err
		}
		return capPerReseller(ctx, tx, "panel_users", "users", u.ResellerID)
	})
	return err
}

func (t *Tenants) UserByEmail(ctx context.Context, email string) (admin.User, error) {
	return getOne(ctx, t, "SELECT "+userCols+" FROM panel_users WHERE email = $1", email, scanUser)
}

// UserEmailsWithLocal lists the stored login emails whose part before
// the first "@" is local. substr rather than LIKE: local may hold "%"
// and "_", and substr compares exactly on both dialects.
func (t *Tenants) UserEmailsWithLocal(ctx context.Context, local string) ([]string, error) {
	var out []string
	prefix := local + "@"
	err := t.query(ctx, "SELECT email FROM panel_users WHERE substr(email, 1, $2) = $1 ORDER BY id",
		[]any{prefix, utf8.RuneCountInString(prefix)}, func(rows *sql.Rows) error {
			var e string
			err := rows.Scan(&e)
			out = append(out, e)
			return err
		})
	return out, err
}

func (t *Tenants) ListUsers(ctx context.Context, resellerID int64) ([]admin.User, error) {
	return listOf(ctx, t, "SELECT "+userCols+" FROM panel_users WHERE reseller_id = $1 ORDER BY id", []any{resellerID}, scanUser)
}

func (t *Tenants) GetUser(ctx context.Context, id int64) (admin.User, error) {
	return getOne(ctx, t, "SELECT "+userCols+" FROM panel_users WHERE id = $1", id, scanUser)
}

// SetUserPassword replaces a user's hash. Panel users are not tenant config:
// no version bump.
func (t *Tenants) SetUserPassword(ctx context.Context, id int64, hash string, a admin.AuditEntry) error {
	_, err := t.writeTx(ctx, "user "+strconv.FormatInt(id, 10), a, nil, func(tx *sql.Tx) error {
		return expectRow(tx.ExecContext(ctx, `UPDATE panel_users SET password = $1 WHERE id = $2`, hash, id))
	})
	return err
}

func (t *Tenants) DeleteUser(ctx context.Context, id int64, keepLast bool, a admin.AuditEntry) error {
	_, err := t.writeTx(ctx, "user "+strconv.FormatInt(id, 10), a, nil, func(tx *sql.Tx) error {
		if keepLast {
			// Writing first takes the lock before anything is read: a no-op
			// update of the reseller's row locks it on PostgreSQL (and takes
			// SQLite's write lock), so concurrent removals of one reseller's
			// users count one after the other. Under READ COMMITTED, two
			// removals of its last two users could otherwise both count two.
			if err := expectRow(tx.ExecContext(ctx, `UPDATE resellers SET updated_us = updated_us
				WHERE id = (SELECT reseller_id FROM panel_users WHERE id = $1)`, id)); err != nil {
				return err
			}
			var n int
			if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM panel_users
				WHERE reseller_id = (SELECT reseller_id FROM panel_users WHERE id = $1)`, id).Scan(&n); err != nil {
				return err
			}
			if n <= 1 {
				return admin.ErrLastUser
			}
		}
		return expectRow(tx.ExecContext(ctx, `DELETE FROM panel_users WHERE id = $1`, id))
	})
	return err
}
