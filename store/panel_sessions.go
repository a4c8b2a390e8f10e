package store

import (
	"context"
	"database/sql"
	"errors"
	"time"
)

// Panel sessions live server-side so that logging out, removing a user or
// deleting a token ends them at once; the browser holds only an opaque
// random ID. Rows are keyed by a hash of that ID, so a copy of the
// database yields no usable cookie.

const panelSessionsComponent = "panel_sessions"

var panelSessionsMigrations = []Migration{{
	Version: 1,
	Common: `CREATE TABLE panel_sessions (
		id TEXT PRIMARY KEY,
		data TEXT NOT NULL,
		expires_us BIGINT NOT NULL);
	CREATE INDEX panel_sessions_expires ON panel_sessions (expires_us)`,
}, {
	// Sessions are kept per login (a user, a token) only up to a number:
	// a script logging in over and over grew the table, and the sessions
	// a stolen password opened, without end. Rows from before have no
	// owner and are left to expire.
	Version: 2,
	Common: `ALTER TABLE panel_sessions ADD COLUMN owner TEXT NOT NULL DEFAULT '';
	ALTER TABLE panel_sessions ADD COLUMN created_us BIGINT NOT NULL DEFAULT 0;
	CREATE INDEX panel_sessions_owner ON panel_sessions (owner, created_us)`,
}}

// MigratePanelSessions creates or updates the panel_sessions table.
func (s *Store) MigratePanelSessions(ctx context.Context) error {
	return s.Migrate(ctx, panelSessionsComponent, panelSessionsMigrations)
}

// PanelSessions is the panel's session table (panel.SessionStore).
type PanelSessions struct{ st *Store }

// PanelSessions returns the session table of s.
func (s *Store) PanelSessions() *PanelSessions { return &PanelSessions{st: s} }

func (p *PanelSessions) ctx(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, p.st.Timeout)
}

// PutSession inserts or replaces a session of owner (the login it
// belongs to), drops expired ones so the table does not grow with
// abandoned logins, and keeps owner's newest keep sessions (this one
// always among them), ending the older ones.
func (p *PanelSessions) PutSession(ctx context.Context, id, owner string, data []byte, expires time.Time, keep int) error {
	ctx, cancel := p.ctx(ctx)
	defer cancel()
	now := time.Now().UnixMicro()
	if _, err := p.st.DB.ExecContext(ctx, `DELETE FROM panel_sessions WHERE expires_us < $1`, now); err != nil {
		return fail("expire panel sessions", err)
	}
	_, err := p.st.DB.ExecContext(ctx, `INSERT INTO panel_sessions (id, data, expires_us, owner, created_us) VALUES ($1, $2, $3, $4, $5)
		ON CONFLICT (id) DO UPDATE SET data = excluded.data, expires_us = excluded.expires_us, owner = excluded.owner, created_us = excluded.created_us`,
		id, string(data), expires.UnixMicro(), owner, now)
	if err != nil {
		return fail("save panel session", err)
	}
	_, err = p.st.DB.ExecContext(ctx, `DELETE FROM panel_sessions WHERE owner = $1 AND id <> $2 AND id NOT IN (
		SELECT id FROM panel_sessions WHERE owner = $1 AND id <> $2 ORDER BY created_us DESC, id DESC LIMIT $3)`,
		owner, id, keep-1)
	if err != nil {
		return fail("end older panel sessions", err)
	}
	return nil
}

// UpdateSession rewrites a live session, and only one: a session deleted
// (logged out) on another node since this one read it stays deleted.
func (p *PanelSessions) UpdateSession(ctx context.Context, id string, data []byte, expires time.Time) (bool, error) {
	ctx, cancel := p.ctx(ctx)
	defer cancel()
	res, err := p.st.DB.ExecContext(ctx, `UPDATE panel_sessions SET data = $2, expires_us = $3 WHERE id = $1 AND expires_us >= $4`,
		id, string(data), expires.UnixMicro(), time.Now().UnixMicro())
	if err != nil {
		return false, fail("update panel session", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fail("update panel session", err)
	}
	return n > 0, nil
}

// GetSession returns a session's data; nil without error when there is
// none (never created, ended or expired).
func (p *PanelSessions) GetSession(ctx context.Context, id string) ([]byte, error) {
	ctx, cancel := p.ctx(ctx)
	defer cancel()
	var data string
	err := p.st.DB.QueryRowContext(ctx, `SELECT data FROM panel_sessions WHERE id = $1 AND expires_us >= $2`,
		id, time.Now().UnixMicro()).Scan(&data)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fail("read panel session", err)
	}
	return []byte(data), nil
}

// DeleteSession ends a session.
func (p *PanelSessions) DeleteSession(ctx context.Context, id string) error {
	ctx, cancel := p.ctx(ctx)
	defer cancel()
	if _, err := p.st.DB.ExecContext(ctx, `DELETE FROM panel_sessions WHERE id = $1`, id); err != nil {
		return fail("delete panel session", err)
	}
	return nil
}
