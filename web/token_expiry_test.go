package web

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mxgrid/mxgrid/admin"
)

// A token created with an expiry answers 401 from then on, as an unknown
// token does, and a create whose expiry is not a future time is refused.
func TestTokenExpiry(t *testing.T) {
	var (
		mu    sync.Mutex
		clock = time.Now()
	)
	at := func(t time.Time) {
		mu.Lock()
		defer mu.Unlock()
		clock = t
	}
	f := newAPIFixture(t, func(o *admin.ServiceOptions) {
		o.Ownership.Now = func() time.Time {
			mu.Lock()
			defer mu.Unlock()
			return clock
		}
	})
	start := clock
	expires := start.Add(time.Hour).Add(123456789 * time.Nanosecond)

	code, body := f.do("own", "POST", "/api/v1/tokens", map[string]any{"name": "contractor", "expires": expires.Format(time.RFC3339Nano)})
	if code != http.StatusCreated {
		t.Fatalf("create: %d %s", code, body)
	}
	var created admin.Token
	if err := json.Unmarshal(body, &created); err != nil {
		t.Fatal(err)
	}
	// Kept to the microsecond, as the answer says.
	if want := expires.UTC().Truncate(time.Microsecond); !created.Expires.Equal(want) || created.Secret == "" {
		t.Fatalf("created %+v, want expires %v and a secret", created, want)
	}
	f.tokens["contractor"] = created.Secret
	path := fmt.Sprintf("/api/v1/tokens/%d", created.ID)
	code, body = f.do("own", "GET", path, nil)
	if code != http.StatusOK || !strings.Contains(string(body), `"expires":"`+created.Expires.Format(time.RFC3339Nano)+`"`) {
		t.Fatalf("GET %s: %d %s, want the expiry shown", path, code, body)
	}
	// A token without one shows none.
	if code, body = f.do("own", "GET", fmt.Sprintf("/api/v1/tokens/%d", f.tokA.ID), nil); code != http.StatusOK || strings.Contains(string(body), "expires") {
		t.Fatalf("token without expiry: %d %s", code, body)
	}

	for _, step := range []struct {
		at   time.Time
		want int
	}{
		{start, http.StatusOK},
		{created.Expires.Add(-time.Microsecond), http.StatusOK},
		{created.Expires, http.StatusUnauthorized},
		{created.Expires.Add(24 * time.Hour), http.StatusUnauthorized},
	} {
		at(step.at)
		if code, body := f.do("contractor", "GET", "/api/v1/customers", nil); code != step.want {
			t.Errorf("at expiry%+v: %d %s, want %d", step.at.Sub(created.Expires), code, body, step.want)
		}
	}
	// The expired token's answer is the unknown token's.
	_, expired := f.do("contractor", "GET", "/api/v1/customers", nil)
	if _, unknown := f.do("bad", "GET", "/api/v1/customers", nil); string(expired) != string(unknown) {
		t.Errorf("expired token answered %s, an unknown one %s", expired, unknown)
	}
	at(start)

	for _, tc := range []struct {
		name    string
		expires any
	}{
		{"past", start.Add(-time.Minute).Format(time.RFC3339)},
		{"now", start.Format(time.RFC3339Nano)},
		{"not a time", "tomorrow"},
		{"date only", start.Add(48 * time.Hour).Format(time.DateOnly)},
		{"number", start.Add(time.Hour).Unix()},
	} {
		code, body := f.do("own", "POST", "/api/v1/tokens", map[string]any{"name": "bad " + tc.name, "expires": tc.expires})
		if code != http.StatusBadRequest || !strings.Contains(string(body), "expires") {
			t.Errorf("%s: %d %s, want 400 naming expires", tc.name, code, body)
		}
	}
}

// A token that expires (or a panel session opened with it) cannot make a
// credential that outlives it: a token it creates expires no later, and it
// adds no panel user, whose password never expires. A contractor's token
// for a day minted a token without expiry, or a login, and kept the
// reseller's data for ever.
func TestExpiringTokenMakesNothingThatOutlivesIt(t *testing.T) {
	f := newAPIFixture(t)
	expires := time.Now().Add(time.Hour).UTC().Truncate(time.Second)
	code, body := f.do("own", "POST", "/api/v1/tokens", map[string]any{"name": "contractor", "expires": expires.Format(time.RFC3339)})
	if code != http.StatusCreated {
		t.Fatalf("create: %d %s", code, body)
	}
	var contractor admin.Token
	if err := json.Unmarshal(body, &contractor); err != nil {
		t.Fatal(err)
	}
	f.tokens["contractor"] = contractor.Secret
	for _, tc := range []struct {
		name    string
		expires any
	}{{"never", nil}, {"later", expires.Add(time.Second).Format(time.RFC3339)}} {
		req := map[string]any{"name": "minted " + tc.name}
		if tc.expires != nil {
			req["expires"] = tc.expires
		}
		if code, body := f.do("contractor", "POST", "/api/v1/tokens", req); code != http.StatusBadRequest || !strings.Contains(string(body), "expires") {
			t.Errorf("a token expiring %s, created with one expiring at %s: %d %s, want 400 naming expires", tc.name, expires, code, body)
		}
	}
	if code, body := f.do("contractor", "POST", "/api/v1/tokens", map[string]any{"name": "helper", "expires": expires.Format(time.RFC3339)}); code != http.StatusCreated {
		t.Errorf("a token expiring with its creator: %d %s, want 201", code, body)
	}
	p, err := f.svc.Authenticate(context.Background(), contractor.Secret)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.CreateUser(context.Background(), p, f.resA.ID, "stays@a.example", "correct horse battery"); !errors.Is(err, admin.ErrForbidden) {
		t.Errorf("a panel user added with an expiring token: %v, want ErrForbidden", err)
	}
	if us, err := f.svc.ListUsers(context.Background(), f.op, f.resA.ID); err != nil || len(us) != 0 {
		t.Errorf("users of A: %+v %v, want none", us, err)
	}
}
