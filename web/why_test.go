package web

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/mxgrid/mxgrid/clientip"
	"github.com/mxgrid/mxgrid/store"
	"github.com/mxgrid/mxgrid/tracking"
	"github.com/mxgrid/mxgrid/verdict"
)

// TestWhyPage: a refusal's reference explains it in plain words with the
// domain only (no local part, no subject); unknown, malformed and expired
// references answer 404; each client address is rate limited.
func TestWhyPage(t *testing.T) {
	ctx := context.Background()
	st, err := store.Open(store.DefaultConfig(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if err := st.MigrateTracking(ctx); err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)
	base := tracking.Record{Sender: "a@sender.example", Recipient: "secret.person@bakery.example", Domain: "bakery.example",
		Subject: "Private matter", Status: tracking.StatusRefused, ReplyCode: 554, Action: "reject"}
	virus, old, spam := base, base, base
	virus.Time, virus.Reference, virus.Reason, virus.QueueID = now.Add(-time.Hour), "0123456789BCD", verdict.ReasonVirus, "0123456789BCD"
	old.Time, old.Reference, old.Reason = now.AddDate(0, 0, -40), "ZZZZZZZZZZZZZ", verdict.ReasonSpam
	spam.Time, spam.Reference, spam.Reason, spam.ReplyCode = now.Add(-time.Minute), "BBBBBBBBBBBBB", verdict.ReasonSpam, 550
	if err := st.InsertTracking(ctx, []tracking.Record{virus, old, spam}); err != nil {
		t.Fatal(err)
	}
	clock := now
	h := NewWhyHandler(st, WhyOptions{MaxAge: 30 * 24 * time.Hour, Burst: 3, Interval: time.Minute,
		Clients: clientip.New([]netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}), Now: func() time.Time { return clock }})
	mux := http.NewServeMux()
	mux.Handle("GET /why/{ref}", h)
	srv := httptest.NewServer(mux)
	defer srv.Close()
	var header http.Header
	get := func(ref, client string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest("GET", srv.URL+"/why/"+ref, nil)
		req.Header.Set("X-Forwarded-For", client)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		header = resp.Header
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}

	code, body := get("0123456789BCD", "192.0.2.1")
	if header.Get("X-Content-Type-Options") != "nosniff" || !strings.Contains(header.Get("Content-Security-Policy"), "frame-ancestors 'none'") {
		t.Errorf("the page may be sniffed or framed: %v", header)
	}
	if code != 200 || !strings.Contains(body, "bakery.example") || !strings.Contains(body, "malware") {
		t.Fatalf("virus refusal: %d\n%s", code, body)
	}
	for _, secret := range []string{"secret.person", "Private matter", "a@sender.example"} {
		if strings.Contains(body, secret) {
			t.Errorf("the page reveals %q", secret)
		}
	}
	if code, body := get("BBBBBBBBBBBBB", "192.0.2.1"); code != 200 || !strings.Contains(body, "spam") || !strings.Contains(body, "DKIM") {
		t.Fatalf("spam refusal: %d\n%s", code, body)
	}
	for i, ref := range []string{"ZZZZZZZZZZZZZ" /* expired */, "CCCCCCCCCCCCC" /* unknown */, "short", "0123456789bcd", "%3Cscript%3E"} {
		if code, _ := get(ref, fmt.Sprintf("198.51.100.%d", i+10)); code != 404 {
			t.Errorf("reference %q: %d, want 404", ref, code)
		}
	}
	// 192.0.2.1 spent 2 of 3; the third passes, the fourth waits.
	if code, _ := get("0123456789BCD", "192.0.2.1"); code != 200 {
		t.Fatalf("within the burst: %d", code)
	}
	req, _ := http.NewRequest("GET", srv.URL+"/why/0123456789BCD", nil)
	req.Header.Set("X-Forwarded-For", "192.0.2.1")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("over the burst: %d, Retry-After %q", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	if code, _ := get("0123456789BCD", "192.0.2.2"); code != 200 {
		t.Fatalf("another address is limited too: %d", code)
	}
	// An IPv6 client cannot escape by rotating addresses inside its /64.
	for i := range 3 {
		get("CCCCCCCCCCCCC", "2001:db8::"+string(rune('1'+i)))
	}
	if code, _ := get("CCCCCCCCCCCCC", "2001:db8::9"); code != http.StatusTooManyRequests {
		t.Fatalf("fourth address of one /64: %d, want 429", code)
	}
	clock = clock.Add(time.Minute)
	if code, _ := get("0123456789BCD", "192.0.2.1"); code != 200 {
		t.Fatalf("a token back after the interval: %d", code)
	}
}
