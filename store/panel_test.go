package store

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/mxgrid/mxgrid/admin"
	"github.com/mxgrid/mxgrid/tenant"
)

// TestPanelUserStore is the panel users' part of the admin.PanelStore
// contract, run on both dialects.
func TestPanelUserStore(t *testing.T) {
	for _, tc := range dialects {
		t.Run(tc.name, func(t *testing.T) {
			testPanelUsers(t, NewTenants(tc.open(t)))
		})
	}
}

func testPanelUsers(t *testing.T, ts *Tenants) {
	ctx := context.Background()
	audit := admin.AuditEntry{Actor: "test", Action: "x", Object: "user"}
	r := tenant.Reseller{Name: "r", Slug: "r"}
	if _, err := ts.CreateReseller(ctx, &r, audit); err != nil {
		t.Fatal(err)
	}
	var users []admin.User
	for _, e := range []string{"a@r.example", "b@r.example"} {
		u := admin.User{ResellerID: r.ID, Email: e, Hash: "h-" + e}
		if err := ts.CreateUser(ctx, &u, audit); err != nil || u.ID == 0 {
			t.Fatalf("CreateUser(%s): id %d, %v", e, u.ID, err)
		}
		users = append(users, u)
	}
	dup := admin.User{ResellerID: r.ID, Email: "a@r.example", Hash: "x"}
	if err := ts.CreateUser(ctx, &dup, audit); !errors.Is(err, tenant.ErrConflict) {
		t.Fatalf("duplicate email: %v, want ErrConflict", err)
	}
	var more []int64
	// Exactly the local part: LIKE's "%" and "_" mean themselves, and
	// "a@" is not a prefix of "ba@".
	for _, e := range []string{"a@bücher.de", "ba@r.example", "%@r.example", "a_b@r.example"} {
		u := admin.User{ResellerID: r.ID, Email: e, Hash: "h"}
		if err := ts.CreateUser(ctx, &u, audit); err != nil {
			t.Fatal(err)
		}
		more = append(more, u.ID)
	}
	for local, want := range map[string][]string{
		"a": {"a@r.example", "a@bücher.de"}, "%": {"%@r.example"}, "a_b": {"a_b@r.example"}, "axb": nil, "": nil,
	} {
		if got, err := ts.UserEmailsWithLocal(ctx, local); err != nil || !slices.Equal(got, want) {
			t.Errorf("UserEmailsWithLocal(%q) = %q, %v; want %q", local, got, err, want)
		}
	}
	for _, id := range more {
		if err := ts.DeleteUser(ctx, id, false, audit); err != nil {
			t.Fatal(err)
		}
	}
	if u, err := ts.GetUser(ctx, users[1].ID); err != nil || u.Email != "b@r.example" || u.ResellerID != r.ID || u.Created.IsZero() {
		t.Fatalf("GetUser = %+v, %v", u, err)
	}
	if _, err := ts.GetUser(ctx, 9999); !errors.Is(err, tenant.ErrNotFound) {
		t.Fatalf("GetUser(missing): %v, want ErrNotFound", err)
	}

	if err := ts.SetUserPassword(ctx, users[0].ID, "new-hash", audit); err != nil {
		t.Fatal(err)
	}
	if u, _ := ts.UserByEmail(ctx, "a@r.example"); u.Hash != "new-hash" {
		t.Fatalf("hash after SetUserPassword = %q", u.Hash)
	}
	if err := ts.SetUserPassword(ctx, 9999, "x", audit); !errors.Is(err, tenant.ErrNotFound) {
		t.Fatalf("SetUserPassword(missing): %v, want ErrNotFound", err)
	}

	// keepLast removes all but the last; without it (the operator) the
	// last goes too.
	if err := ts.DeleteUser(ctx, users[0].ID, true, audit); err != nil {
		t.Fatal(err)
	}
	if err := ts.DeleteUser(ctx, users[1].ID, true, audit); !errors.Is(err, admin.ErrLastUser) || !errors.Is(err, tenant.ErrConflict) {
		t.Fatalf("removing the last user with keepLast: %v, want ErrLastUser", err)
	}
	if l, err := ts.ListUsers(ctx, r.ID); err != nil || len(l) != 1 {
		t.Fatalf("ListUsers = %+v, %v; want the last one", l, err)
	}
	if err := ts.DeleteUser(ctx, users[1].ID, false, audit); err != nil {
		t.Fatal(err)
	}
	for _, keep := range []bool{true, false} {
		if err := ts.DeleteUser(ctx, users[1].ID, keep, audit); !errors.Is(err, tenant.ErrNotFound) {
			t.Fatalf("DeleteUser(gone, keepLast %v): %v, want ErrNotFound", keep, err)
		}
	}
	if l, err := ts.ListUsers(ctx, r.ID); err != nil || len(l) != 0 {
		t.Fatalf("ListUsers = %+v, %v; want none", l, err)
	}
	if d, err := ts.Load(ctx); err != nil || d.Version != 1 {
		t.Fatalf("users changed the config version: %d, %v", d.Version, err)
	}
}

// TestHasLogo: whether a reseller has a logo, on both dialects, without
// the logo (the panel asks on every page).
func TestHasLogo(t *testing.T) {
	for _, tc := range dialects {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			ts := NewTenants(tc.open(t))
			audit := admin.AuditEntry{Actor: "test", Action: "x", Object: "reseller"}
			r := tenant.Reseller{Name: "r", Slug: "r"}
			if _, err := ts.CreateReseller(ctx, &r, audit); err != nil {
				t.Fatal(err)
			}
			if has, err := ts.HasLogo(ctx, r.ID); err != nil || has {
				t.Fatalf("before a logo: %v, %v; want false", has, err)
			}
			if err := ts.PutLogo(ctx, r.ID, admin.Logo{ContentType: "image/png", Data: []byte("\x89PNG")}, audit); err != nil {
				t.Fatal(err)
			}
			if has, err := ts.HasLogo(ctx, r.ID); err != nil || !has {
				t.Fatalf("with a logo: %v, %v; want true", has, err)
			}
			if has, err := ts.HasLogo(ctx, r.ID+1); err != nil || has {
				t.Fatalf("another reseller: %v, %v; want false", has, err)
			}
		})
	}
}
