package web

import (
	"encoding/json"
	"fmt"
	"net/http"
	"testing"
)

// A PATCH that changes nothing writes nothing: no new config version for
// every node to reload, no audit row. A provisioning script that sets
// every domain as it should be, every few minutes, made the whole cluster
// reload each of them each time.
func TestPatchThatChangesNothingWritesNothing(t *testing.T) {
	f := newAPIFixture(t)
	audit := func() int {
		t.Helper()
		code, body := f.do("operator", "GET", "/api/v1/audit?limit=1000", nil)
		if code != http.StatusOK {
			t.Fatalf("audit: %d %s", code, body)
		}
		var page struct {
			Items []json.RawMessage `json:"items"`
		}
		if err := json.Unmarshal(body, &page); err != nil {
			t.Fatalf("audit: %v %s", err, body)
		}
		return len(page.Items)
	}
	for _, tc := range []struct {
		path           string
		same, changing map[string]any
	}{
		{fmt.Sprintf("/api/v1/domains/%d", f.domA.ID),
			map[string]any{"route": f.domA.Route, "tls": f.domA.TLS, "policy": f.domA.Policy, "routes": f.domA.Routes},
			map[string]any{"route": "192.0.2.9:25"}},
		{fmt.Sprintf("/api/v1/customers/%d", f.custA.ID),
			map[string]any{"name": f.custA.Name, "policy": f.custA.Policy},
			map[string]any{"name": "renamed"}},
		{fmt.Sprintf("/api/v1/resellers/%d", f.resA.ID),
			map[string]any{"name": f.resA.Name},
			map[string]any{"name": "renamed"}},
	} {
		for _, body := range []map[string]any{{}, tc.same} {
			versions, rows := f.changes.Load(), audit()
			if code, out := f.do("operator", "PATCH", tc.path, body); code != http.StatusOK {
				t.Fatalf("PATCH %s %v: %d %s", tc.path, body, code, out)
			}
			if f.changes.Load() != versions || audit() != rows {
				t.Errorf("PATCH %s %v changed nothing but wrote: versions %d -> %d, audit rows %d -> %d",
					tc.path, body, versions, f.changes.Load(), rows, audit())
			}
		}
		versions, rows := f.changes.Load(), audit()
		if code, out := f.do("operator", "PATCH", tc.path, tc.changing); code != http.StatusOK {
			t.Fatalf("PATCH %s %v: %d %s", tc.path, tc.changing, code, out)
		}
		if f.changes.Load() == versions || audit() == rows {
			t.Errorf("PATCH %s %v: no new version or audit row", tc.path, tc.changing)
		}
	}
}
