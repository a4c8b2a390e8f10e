package web

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
)

// A request under /api/ that no route takes is answered in JSON, as every
// route answers, with the mux's status and Allow; other paths keep the
// mux's own answers.
func TestAPIUnroutedAnswersJSON(t *testing.T) {
	f := newAPIFixture(t)
	tests := []struct {
		method, path string
		status       int
		allow        []string
	}{
		{"GET", "/api/v1/nothing", http.StatusNotFound, nil},
		{"GET", "/api/v2/domains", http.StatusNotFound, nil},
		{"PUT", "/api/v1/domains", http.StatusMethodNotAllowed, []string{"GET", "POST"}},
		{"POST", "/api/v1/domains/1", http.StatusMethodNotAllowed, []string{"DELETE", "GET", "PATCH"}},
		// Not canonical: refused before the mux (see canonicalOnly).
		{"DELETE", "/api/v1/domains/1/recipients/..", http.StatusNotFound, nil},
	}
	for _, tt := range tests {
		req, err := http.NewRequest(tt.method, f.srv.URL+tt.path, nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer "+f.tokens["operator"])
		resp, err := f.srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var body apiError
		decodeErr := json.NewDecoder(resp.Body).Decode(&body)
		resp.Body.Close()
		if resp.StatusCode != tt.status || resp.Header.Get("Content-Type") != "application/json" || decodeErr != nil || body.Error == "" {
			t.Errorf("%s %s: %d %q %+v %v, want %d in JSON", tt.method, tt.path, resp.StatusCode, resp.Header.Get("Content-Type"), body, decodeErr, tt.status)
		}
		for _, m := range tt.allow {
			if !strings.Contains(resp.Header.Get("Allow"), m) {
				t.Errorf("%s %s: Allow %q, want %s in it", tt.method, tt.path, resp.Header.Get("Allow"), m)
			}
		}
	}
	// Outside the API the mux answers as before.
	resp, err := f.srv.Client().Get(f.srv.URL + "/nothing")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound || strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		t.Errorf("GET /nothing: %d %q, want the mux's plain 404", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
}
