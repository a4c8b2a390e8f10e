package testenv

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// pgAdminTimeout bounds CREATE/DROP DATABASE against the shared server.
const pgAdminTimeout = 30 * time.Second

// PostgresDB creates a fresh, uniquely named database on the shared PostgreSQL
// server and returns its DSN. The database is dropped in t.Cleanup (forcibly,
// so connections the test left open do not block it). Tests of different
// packages run in parallel against one server; a database each keeps their
// schemas and rows apart.
func PostgresDB(t testing.TB) string {
	t.Helper()
	base := PostgresDSN(t)
	if base == "" {
		return ""
	}
	u, err := url.Parse(base)
	if err != nil {
		t.Fatalf("%s: %v", EnvPostgresDSN, err)
	}
	name := dbName(t.Name())

	ctx, cancel := context.WithTimeout(context.Background(), pgAdminTimeout)
	defer cancel()
	conn, err := pgx.Connect(ctx, base)
	if err != nil {
		t.Fatalf("PostgresDB: connect to shared server: %v", err)
	}
	defer conn.Close(ctx)
	// template0: nobody can be connected to it, so concurrent CREATE DATABASE
	// calls never fail with "source database is being accessed by other users".
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()+" TEMPLATE template0"); err != nil {
		t.Fatalf("PostgresDB: create database %s: %v", name, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), pgAdminTimeout)
		defer cancel()
		conn, err := pgx.Connect(ctx, base)
		if err != nil {
			t.Errorf("PostgresDB cleanup: connect: %v", err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)"); err != nil {
			t.Errorf("PostgresDB cleanup: drop database %s: %v", name, err)
		}
	})

	u.Path = "/" + name
	return u.String()
}

// dbName turns a test name into a valid, unique PostgreSQL database name:
// lower-case letters, digits and '_', at most 63 bytes (NAMEDATALEN-1), with a
// random suffix so reruns and same-named subtests in other packages differ.
func dbName(testName string) string {
	var b strings.Builder
	b.WriteString("t_")
	for _, r := range strings.ToLower(testName) {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9':
			b.WriteRune(r)
		default:
			b.WriteByte('_')
		}
	}
	prefix := b.String()
	const suffixLen = 1 + 12
	if len(prefix) > 63-suffixLen {
		prefix = prefix[:63-suffixLen]
	}
	var rnd [6]byte
	_, _ = rand.Read(rnd[:]) // never returns an error since Go 1.24
	return prefix + "_" + hex.EncodeToString(rnd[:])
}
