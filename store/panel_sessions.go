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

// PutSession inserts or replaces a session, and drops expired ones so the
// table does not grow with abandoned logins.
func (p *PanelSessions) PutSession(ctx context.Context, id string, data []byte, expires time.Time) error {
	ctx, cancel := p.ctx(ctx)
	defer cancel()
	now := time.Now().UnixMicro()
	if _, err := p.st.DB.ExecContext(ctx, `DELETE FROM panel_sessions WHERE expires_us < $1`, now); err != nil {
		return fail("expire panel sessions", err)
	}
	_, err := p.st.DB.ExecContext(ctx, `INSERT INTO panel_sessions (id, data, expires_us) VALUES ($1, $2, $3)
		ON CONFLICT (id) DO UPDATE SET data = excluded.data, expires_us = excluded.expires_us`,
		id, string(data), expires.UnixMicro())
	if err != nil {
		return fail("save panel session", err)
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
