package tracking

import (
	"net/url"
	"reflect"
	"slices"
	"testing"
	"time"
	"unicode/utf8"
)

func TestParseQuery(t *testing.T) {
	now := time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)
	cur := Cursor{Time: now.Add(-time.Hour), ID: 9}
	f, errs := ParseQuery(url.Values{
		"recipient": {" bob@example.org "}, "sender": {"a@b.example"}, "domain_id": {"4"}, "customer_id": {"2"},
		"queue_id": {"Q1"}, "message_id": {"<m@x>"}, "ref": {"R"}, "status": {"deferred"},
		"since": {"24h"}, "until": {"2026-12-03T11:00:00Z"}, "cursor": {cur.String()}, "limit": {"20"},
	}, now)
	if errs != nil {
		t.Fatal(errs)
	}
	want := Filter{Recipient: "bob@example.org", Sender: "a@b.example", DomainID: 4, CustomerID: 2, QueueID: "Q1",
		MessageID: "<m@x>", Reference: "R", Status: StatusDeferred, Since: now.Add(-24 * time.Hour),
		Until: time.Date(2026, 12, 3, 11, 0, 0, 0, time.UTC), After: cur, Limit: 20}
	if !f.Since.Equal(want.Since) || !f.Until.Equal(want.Until) || !f.After.Time.Equal(cur.Time) {
		t.Fatalf("times: %+v", f)
	}
	f.Since, f.Until, f.After.Time, want.Since, want.Until, want.After.Time = time.Time{}, time.Time{}, time.Time{}, time.Time{}, time.Time{}, time.Time{}
	if !reflect.DeepEqual(f, want) {
		t.Fatalf("got %+v\nwant %+v", f, want)
	}
	if f, errs := ParseQuery(url.Values{}, now); errs != nil || f.Limit != DefaultLimit {
		t.Fatalf("empty query: %+v %v", f, errs)
	}
}

// A sender is logged as written, so its search asks for the other IDNA
// spellings of its domain too.
func TestParseQuerySenderSpellings(t *testing.T) {
	for _, tt := range []struct {
		sender string
		want   []string
	}{
		{"anna@b\u00fccher.example", []string{"anna@xn--bcher-kva.example"}},
		{"anna@xn--bcher-kva.example", []string{"anna@b\u00fccher.example"}},
		{"anna@B\u00dcCHER.example", []string{"anna@xn--bcher-kva.example", "anna@b\u00fccher.example"}},
		{"anna@example.org", nil},
		{"anna@[192.0.2.1]", nil},
		{"anna", nil},
	} {
		f, errs := ParseQuery(url.Values{"sender": {tt.sender}}, time.Now())
		if errs != nil || !slices.Equal(f.SenderSpellings, tt.want) {
			t.Errorf("sender=%s: spellings %q (%v), want %q", tt.sender, f.SenderSpellings, errs, tt.want)
		}
	}
}

func TestParseQueryRefuses(t *testing.T) {
	for key, v := range map[string]string{
		"domain_id": "-1", "customer_id": "x", "status": "lost", "since": "yesterday", "until": "-5h",
		"limit": "100000", "cursor": "abc", "recipient": "a\r\nb", "sender": "a\xff@b.example", "message_id": "<\xc3@x>",
		"queue_id": "\x00", "ref": "\xed\xa0\x80",
	} {
		if _, errs := ParseQuery(url.Values{key: {v}}, time.Now()); errs[key] == "" {
			t.Errorf("%s=%q accepted", key, v)
		}
	}
	if _, errs := ParseQuery(url.Values{"since": {"1h"}, "until": {"2h"}}, time.Now()); errs["until"] == "" {
		t.Error("until before since accepted")
	}
	// Year 1 is the zero time, which reads as no bound.
	for _, key := range []string{"since", "until"} {
		for _, v := range []string{"0001-01-01T00:00:00Z", "1969-12-31T23:59:59Z"} {
			if _, errs := ParseQuery(url.Values{key: {v}}, time.Now()); errs[key] == "" {
				t.Errorf("%s=%s accepted", key, v)
			}
		}
	}
}

// FuzzParseQuery: any query string parses or names the keys it refused,
// and a parsed filter is bounded.
func FuzzParseQuery(f *testing.F) {
	f.Add("recipient=bob%40example.org&since=24h&limit=10")
	f.Add("cursor=c1.MTIzLjQ1&status=refused")
	f.Fuzz(func(t *testing.T, raw string) {
		q, err := url.ParseQuery(raw)
		if err != nil {
			return
		}
		flt, errs := ParseQuery(q, time.Now())
		for k := range errs {
			if _, ok := q[k]; !ok && k != "until" {
				t.Fatalf("error on key %q not in the query %q", k, raw)
			}
		}
		if errs == nil && (flt.Limit <= 0 || flt.Limit > MaxLimit || len(flt.Recipient) > maxQueryText || !utf8.ValidString(flt.Sender)) {
			t.Fatalf("unbounded filter %+v", flt)
		}
	})
}
