package web

import (
	"encoding/json"
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
