package admin_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/mxgrid/mxgrid/admin"
	"github.com/mxgrid/mxgrid/store"
	"github.com/mxgrid/mxgrid/tenant"
)

// The users operations keep resellers apart and protect the last login,
// over the real SQLite store.
// twoResellers is a service over a real SQLite store holding resellers A
// and B.
func twoResellers(t *testing.T) (*store.Tenants, *admin.Service, tenant.Reseller, tenant.Reseller) {
	t.Helper()
	ctx := context.Background()
	st, err := store.Open(store.DefaultConfig(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	ts := store.NewTenants(st)
	svc := admin.NewService(ts, admin.ServiceOptions{Panel: ts})
	op := admin.Operator("test")
	var rs [2]tenant.Reseller
	for i, name := range []string{"A", "B"} {
		if rs[i], err = svc.CreateReseller(ctx, op, tenant.Reseller{Name: name}); err != nil {
			t.Fatal(err)
		}
	}
	return ts, svc, rs[0], rs[1]
}

func TestServiceUsers(t *testing.T) {
	ctx := context.Background()
	_, svc, a, b := twoResellers(t)
	op := admin.Operator("test")
	const pw = "correct horse battery"
	ua, err := svc.CreateUser(ctx, op, a.ID, "ann@a.example", pw)
	if err != nil {
		t.Fatal(err)
	}
	ub, err := svc.CreateUser(ctx, op, b.ID, "bob@b.example", pw)
	if err != nil {
		t.Fatal(err)
	}
	pa, err := svc.AuthenticatePassword(ctx, "ann@a.example", pw)
	if err != nil || pa.UserID != ua.ID || pa.ResellerID != a.ID {
		t.Fatalf("AuthenticatePassword = %+v, %v", pa, err)
	}

	if _, err := svc.GetUser(ctx, pa, ub.ID); !errors.Is(err, tenant.ErrNotFound) {
		t.Errorf("GetUser(another reseller's) = %v, want ErrNotFound", err)
	}
	if err := svc.DeleteUser(ctx, pa, ub.ID); !errors.Is(err, tenant.ErrNotFound) {
		t.Errorf("DeleteUser(another reseller's) = %v, want ErrNotFound", err)
	}
	if _, err := svc.ListUsers(ctx, pa, b.ID); !errors.Is(err, tenant.ErrNotFound) {
		t.Errorf("ListUsers(another reseller) = %v, want ErrNotFound", err)
	}
	if err := svc.DeleteUser(ctx, pa, ua.ID); !errors.Is(err, tenant.ErrConflict) {
		t.Errorf("DeleteUser(self) = %v, want ErrConflict", err)
	}
	token := admin.Principal{ResellerID: a.ID, Actor: "token"}
	if err := svc.DeleteUser(ctx, token, ua.ID); !errors.Is(err, admin.ErrLastUser) {
		t.Errorf("DeleteUser(last, as reseller) = %v, want ErrLastUser", err)
	}
	if _, err := svc.ChangePassword(ctx, token, pw, "another long passphrase"); !errors.Is(err, admin.ErrForbidden) {
		t.Errorf("ChangePassword(token) = %v, want ErrForbidden", err)
	}
	var fe tenant.FieldErrors
	if _, err := svc.ChangePassword(ctx, pa, "wrong", "another long passphrase"); !errors.As(err, &fe) || fe["current"] == "" {
		t.Errorf("ChangePassword(wrong current) = %v", err)
	}
	if _, err := svc.ChangePassword(ctx, pa, pw, "another long passphrase"); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.AuthenticatePassword(ctx, "ann@a.example", pw); !errors.Is(err, admin.ErrUnauthenticated) {
		t.Errorf("old password after change: %v", err)
	}
	if _, err := svc.AuthenticatePassword(ctx, "ann@a.example", "another long passphrase"); err != nil {
		t.Errorf("new password after change: %v", err)
	}
	if err := svc.DeleteUser(ctx, op, ua.ID); err != nil {
		t.Errorf("operator removing the last user: %v", err)
	}
}

// A login email has one spelling: look-alike local parts are refused and
// domains are stored as lower-case A-labels, so no reseller can make a
// login that reads as another's.
func TestNormalizeEmail(t *testing.T) {
	for _, tt := range []struct {
		in, want string // want "": refused
	}{
		{"Ann@Example.COM", "ann@example.com"},
		{" ann@example.com. ", "ann@example.com"},
		{"o'brien&co@evil.example", "o'brien&co@evil.example"},
		{"ann@ｅｘａｍｐｌｅ.com", "ann@example.com"},            // fullwidth domain: IDNA maps it to ASCII
		{"ann@\u212aelvin.example", "ann@kelvin.example"}, // the Kelvin sign
		{"ann@bücher.de", "ann@xn--bcher-kva.de"},
		{"ann@ex\u0430mple.com", "ann@xn--exmple-4nf.com"}, // Cyrillic a: shown as xn--, not as example.com
		{"ａdmin@example.com", ""},                          // fullwidth a
		{"\u0430dmin@example.com", ""},                     // Cyrillic a
		{"jörg@example.de", ""},
		{"not an address", ""},
		{"a@b@example.com", ""},
		{"@example.com", ""},
		{"ann@localhost", ""},
	} {
		got, err := admin.NormalizeEmail(tt.in)
		if tt.want == "" {
			if err == nil {
				t.Errorf("NormalizeEmail(%q) = %q, want an error", tt.in, got)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("NormalizeEmail(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
}

// Uniqueness holds on the normal form, every spelling logs in to the one
// account, and a login stored before the rule (as typed, lower-cased)
// still logs in.
func TestLoginEmailSpellings(t *testing.T) {
	ctx := context.Background()
	ts, svc, a, b := twoResellers(t)
	op := admin.Operator("test")
	const pw = "correct horse battery"
	u, err := svc.CreateUser(ctx, op, a.ID, "Admin@Example.com", pw)
	if err != nil || u.Email != "admin@example.com" {
		t.Fatalf("CreateUser = %+v, %v", u, err)
	}
	other := admin.Principal{ResellerID: b.ID, Actor: "b"}
	for _, email := range []string{"ADMIN@ｅxample.com", "admin@EXAMPLE.COM."} {
		if _, err := svc.CreateUser(ctx, other, b.ID, email, pw); !errors.Is(err, admin.ErrEmailNotAvailable) {
			t.Errorf("CreateUser(%q) = %v, want ErrEmailNotAvailable", email, err)
		}
	}
	var fe tenant.FieldErrors
	if _, err := svc.CreateUser(ctx, other, b.ID, "ａdmin@example.com", pw); !errors.As(err, &fe) || !strings.Contains(fe["email"], "ASCII") {
		t.Errorf("CreateUser(fullwidth local part) = %v, want a field error on email", err)
	}
	for _, email := range []string{"admin@example.com", "ADMIN@ｅxample.com", " admin@example.com. "} {
		if p, err := svc.AuthenticatePassword(ctx, email, pw); err != nil || p.UserID != u.ID {
			t.Errorf("AuthenticatePassword(%q) = %+v, %v; want user %d", email, p, err, u.ID)
		}
	}

	// What CreateUser stored before the rule, written to the store
	// directly, each with a password of its own. "admin@ｅxample.com" was
	// a second login beside "admin@example.com".
	olds := map[string]int64{}
	for _, stored := range []string{"jörg@bücher.de", "ann@bücher.de", "admin@ｅxample.com"} {
		hash, err := admin.HashPassword(pw + stored)
		if err != nil {
			t.Fatal(err)
		}
		old := admin.User{ResellerID: b.ID, Email: stored, Hash: hash}
		if err := ts.CreateUser(ctx, &old, admin.AuditEntry{Actor: "test"}); err != nil {
			t.Fatal(err)
		}
		olds[stored] = old.ID
	}
	for _, tt := range []struct{ email, owner string }{
		{"JÖRG@BÜCHER.DE", "jörg@bücher.de"},
		{"Ann@Bücher.de", "ann@bücher.de"},
		// Its own spelling still reaches the older login, not the one
		// made before it that shares its normal form.
		{"ADMIN@ｅxample.com", "admin@ｅxample.com"},
	} {
		if p, err := svc.AuthenticatePassword(ctx, tt.email, pw+tt.owner); err != nil || p.UserID != olds[tt.owner] {
			t.Errorf("old login %q as %q: %+v, %v; want user %d", tt.owner, tt.email, p, err, olds[tt.owner])
		}
	}
	if p, err := svc.AuthenticatePassword(ctx, "ADMIN@EXAMPLE.COM", pw); err != nil || p.UserID != u.ID {
		t.Errorf("AuthenticatePassword(ADMIN@EXAMPLE.COM) = %+v, %v; want user %d", p, err, u.ID)
	}
	// Uniqueness holds against the old spellings too: the UNIQUE
	// compares stored text, so "ann@xn--bcher-kva.de" would be a second
	// login for "ann@bücher.de" and take its place at the login form.
	for _, email := range []string{"ann@xn--bcher-kva.de", "ANN@BÜCHER.DE", "ann@bücher.de."} {
		if _, err := svc.CreateUser(ctx, op, a.ID, email, pw); !errors.Is(err, admin.ErrEmailNotAvailable) {
			t.Errorf("CreateUser(%q) beside the old ann@bücher.de = %v, want ErrEmailNotAvailable", email, err)
		}
	}
	// The same local part at another domain is another login.
	if _, err := svc.CreateUser(ctx, op, a.ID, "ann@buecher.de", pw); err != nil {
		t.Errorf("CreateUser(ann@buecher.de) = %v", err)
	}
}
