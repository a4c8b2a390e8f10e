package apiclient

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"
)

// pagedServer serves ids 1..n under /api/v1/things in pages of at most
// pageSize, as the API does: next_after is set when a page is full. With
// newestFirst the ids go down from n, as the quarantine and the audit log
// list them. It records every query it was asked.
func pagedServer(t *testing.T, n, pageSize int, newestFirst bool, queries *[]string) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		*queries = append(*queries, r.URL.RawQuery)
		if r.Header.Get("Authorization") != "Bearer secret" {
			w.WriteHeader(http.StatusUnauthorized)
			fmt.Fprint(w, `{"error":"unauthenticated"}`)
			return
		}
		limit, _ := strconv.Atoi(r.URL.Query().Get("limit"))
		after, _ := strconv.Atoi(r.URL.Query().Get("after"))
		limit = min(limit, pageSize)
		var items []map[string]int
		next, step := after+1, 1
		if newestFirst {
			next, step = n, -1
			if after > 0 {
				next = after - 1
			}
		}
		for id := next; id >= 1 && id <= n && len(items) < limit; id += step {
			items = append(items, map[string]int{"id": id})
		}
		page := map[string]any{"items": items}
		if len(items) == limit {
			page["next_after"] = items[len(items)-1]["id"]
		}
		json.NewEncoder(w).Encode(page)
	}))
	t.Cleanup(srv.Close)
	return srv
}

func TestListFollowsPagesAndStopsAtLimit(t *testing.T) {
	var queries []string
	srv := pagedServer(t, 7, 3, false, &queries)
	c, err := New(srv.URL+"/", "secret", 5*time.Second, "test")
	if err != nil {
		t.Fatal(err)
	}
	ids := func(limit int) []int {
		t.Helper()
		queries = nil
		items, err := c.List(context.Background(), "/api/v1/things", map[string][]string{"name": {"x"}}, limit)
		if err != nil {
			t.Fatal(err)
		}
		var got []int
		for _, it := range items {
			var v struct{ ID int }
			json.Unmarshal(it, &v)
			got = append(got, v.ID)
		}
		return got
	}
	if got := ids(0); fmt.Sprint(got) != "[1 2 3 4 5 6 7]" {
		t.Fatalf("all: %v", got)
	}
	// The server's pages are smaller than asked: the cursor, not the page
	// size, decides when to stop; the filter goes along on every page.
	if want := "limit=1000&name=x|after=3&limit=1000&name=x|after=6&limit=1000&name=x"; strings.Join(queries, "|") != want {
		t.Fatalf("queries = %q, want %q", queries, want)
	}
	if got := ids(4); fmt.Sprint(got) != "[1 2 3 4]" {
		t.Fatalf("limit 4: %v", got)
	}
	if want := "limit=4&name=x|after=3&limit=1&name=x"; strings.Join(queries, "|") != want {
		t.Fatalf("queries = %q, want %q", queries, want)
	}
}

// TestListFollowsNewestFirstPages: the quarantine and the audit log list
// newest first, so their cursor goes down. The client took that for a
// server looping and failed every list longer than a page: `mxgrid
// quarantine list` printed nothing but an error once more than 1,000
// messages were held.
func TestListFollowsNewestFirstPages(t *testing.T) {
	var queries []string
	srv := pagedServer(t, 7, 3, true, &queries)
	c, err := New(srv.URL, "secret", 5*time.Second, "test")
	if err != nil {
		t.Fatal(err)
	}
	items, err := c.List(context.Background(), "/api/v1/things", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	var got []int
	for _, it := range items {
		var v struct{ ID int }
		json.Unmarshal(it, &v)
		got = append(got, v.ID)
	}
	if fmt.Sprint(got) != "[7 6 5 4 3 2 1]" {
		t.Fatalf("got %v, want every id newest first", got)
	}
	if want := "limit=1000|after=5&limit=1000|after=2&limit=1000"; strings.Join(queries, "|") != want {
		t.Fatalf("queries = %q, want %q", queries, want)
	}
}

func TestErrorsCarryTheAPIsReasons(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/invalid":
			w.WriteHeader(http.StatusBadRequest)
			fmt.Fprint(w, `{"error":"invalid input","fields":{"route":"want host:port","name":"required"}}`)
		case "/loop":
			fmt.Fprint(w, `{"items":[{"id":1}],"next_after":1}`)
		case "/turn":
			// Down from 9 to 5, then back up to 9.
			next := map[string]string{"": "9", "9": "5", "5": "9"}[r.URL.Query().Get("after")]
			fmt.Fprintf(w, `{"items":[{"id":%s}],"next_after":%[1]s}`, next)
		default:
			// Not the API: a proxy's error page.
			w.WriteHeader(http.StatusBadGateway)
			fmt.Fprint(w, "<html>bad gateway</html>")
		}
	}))
	defer srv.Close()
	c, err := New(srv.URL, "secret", 5*time.Second, "test")
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	_, err = c.Do(ctx, "POST", "/invalid", nil, map[string]string{})
	var ae *Error
	if !errors.As(err, &ae) || ae.Status != 400 || err.Error() != "invalid input (HTTP 400)\n  name: required\n  route: want host:port" {
		t.Fatalf("400: %q", err)
	}
	_, err = c.Do(ctx, "GET", "/elsewhere", nil, nil)
	if !errors.As(err, &ae) || err.Error() != "not an mxgrid API answer: Bad Gateway (HTTP 502)" {
		t.Fatalf("502: %q", err)
	}
	if _, err := c.List(ctx, "/loop", nil, 0); err == nil || !strings.Contains(err.Error(), "does not advance") {
		t.Fatalf("a cursor that does not advance: %v", err)
	}
	if _, err := c.List(ctx, "/turn", nil, 0); err == nil || !strings.Contains(err.Error(), "does not advance") {
		t.Fatalf("a cursor that turns back: %v", err)
	}
	for _, base := range []string{"127.0.0.1:8025", "ftp://host", "http://"} {
		if _, err := New(base, "t", time.Second, ""); err == nil {
			t.Errorf("New(%q) accepted", base)
		}
	}
}

func TestRequestsTimeOut(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-release
	}))
	defer srv.Close()
	defer close(release)
	c, _ := New(srv.URL, "secret", 200*time.Millisecond, "test")
	start := time.Now()
	_, err := c.Do(context.Background(), "GET", "/api/v1/resellers", nil, nil)
	if !errors.Is(err, context.DeadlineExceeded) || time.Since(start) > 5*time.Second {
		t.Fatalf("hung server: %v after %v", err, time.Since(start))
	}
}

// TestBusyIsTriedAgain: a node answering 429 (its searches, imports or
// renders all taken; nothing was done) gets the request again after its
// Retry-After, body and all, up to busyAttempts times; then the 429 is the
// caller's. A CLI paging through results stopped at the first 429.
func TestBusyIsTriedAgain(t *testing.T) {
	for _, tt := range []struct {
		name      string
		busyFirst int // 429s before a 200
		wantCalls int
		wantErr   bool
	}{
		{"busy once", 1, 2, false},
		{"busy twice", 2, 3, false},
		{"busy throughout", 10, busyAttempts, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var calls int
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				calls++
				if b, _ := io.ReadAll(r.Body); string(b) != `{"name":"x"}` {
					t.Errorf("attempt %d sent %q", calls, b)
				}
				if calls <= tt.busyFirst {
					w.Header().Set("Retry-After", "0")
					w.WriteHeader(http.StatusTooManyRequests)
					fmt.Fprint(w, `{"error":"busy"}`)
					return
				}
				fmt.Fprint(w, `{"id":7}`)
			}))
			defer srv.Close()
			c, err := New(srv.URL, "secret", 5*time.Second, "test")
			if err != nil {
				t.Fatal(err)
			}
			data, err := c.Do(context.Background(), "POST", "/api/v1/resellers", nil, map[string]string{"name": "x"})
			var ae *Error
			switch {
			case calls != tt.wantCalls:
				t.Fatalf("%d requests, want %d", calls, tt.wantCalls)
			case tt.wantErr && (!errors.As(err, &ae) || ae.Status != http.StatusTooManyRequests):
				t.Fatalf("after %d busy answers: %v, want the 429", calls, err)
			case !tt.wantErr && (err != nil || string(data) != `{"id":7}`):
				t.Fatalf("%q %v", data, err)
			}
		})
	}
}
