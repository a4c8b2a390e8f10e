package admin_test

import (
	"context"
	"errors"
	"testing"

	"github.com/mxgrid/mxgrid/admin"
	"github.com/mxgrid/mxgrid/store"
	"github.com/mxgrid/mxgrid/tenant"
)

// The users operations keep resellers apart and protect the last login,
// over the real SQLite store.
func TestServiceUsers(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	st, err := store.Open(store.DefaultConfig(), dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	ts := store.NewTenants(st)
	svc := admin.NewService(ts, admin.ServiceOptions{Panel: ts})
	op := admin.Operator("test")
	a, err := svc.CreateReseller(ctx, op, tenant.Reseller{Name: "A"})
	if err != nil {
		t.Fatal(err)
	}
	b, err := svc.CreateReseller(ctx, op, tenant.Reseller{Name: "B"})
	if err != nil {
		t.Fatal(err)
	}
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
