package tracking

import (
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/mxgrid/mxgrid/internal/queryval"
	"github.com/mxgrid/mxgrid/tenant"
	"golang.org/x/net/idna"
)

// DefaultLimit is a page when the query names none.
const DefaultLimit = 50

// maxQueryText bounds each text filter: an address or a Message-ID.
const maxQueryText = 998

// recipientQuery writes a searched recipient's domain as the provisioned
// name: smtpd logs a recipient at a U-label or another spelling IDNA maps
// to the domain (full-width letters or dots) under the domain's A-label,
// so "anna@bücher.example" found nothing where the log holds
// anna@xn--bcher-kva.example. A domain that is no name (an address
// literal) is searched as typed.
func recipientQuery(s string) string {
	at := strings.LastIndexByte(s, '@')
	if at < 0 {
		return s
	}
	if d, err := tenant.NormalizeDomain(s[at+1:]); err == nil {
		return s[:at+1] + d
	}
	return s
}

// otherSpellings are address with its domain in its other IDNA forms:
// the A-label and the U-label of "anna@Bücher.example" or of
// "anna@xn--bcher-kva.example", less the one typed. There are none for
// an ASCII name, an address literal or no domain.
func otherSpellings(address string) []string {
	at := strings.LastIndexByte(address, '@')
	if at < 0 {
		return nil
	}
	typed := address[at+1:]
	ascii, err := tenant.NormalizeDomain(typed)
	if err != nil {
		return nil
	}
	unicode, err := idna.Lookup.ToUnicode(ascii)
	if err != nil || unicode == ascii {
		return nil
	}
	var others []string
	for _, d := range []string{ascii, unicode} {
		if d != typed {
			others = append(others, address[:at+1]+d)
		}
	}
	return others
}

// ParseQuery reads a search from URL parameters (API, panel and CLI share
// them): recipient, sender, domain_id, customer_id, queue_id, message_id,
// ref, status, since, until (RFC 3339 or a duration back from now, "24h"),
// cursor, limit. Errors name the key. The scope is not read from the
// query: the caller sets it from who asks.
func ParseQuery(q url.Values, now time.Time) (Filter, map[string]string) {
	errs := map[string]string{}
	text := func(key string) string {
		v := strings.TrimSpace(q.Get(key))
		// Invalid UTF-8 matches nothing stored, and PostgreSQL fails on it.
		if len(v) > maxQueryText || strings.ContainsAny(v, "\x00\r\n") || !utf8.ValidString(v) {
			errs[key] = fmt.Sprintf("at most %d bytes of UTF-8 text on one line", maxQueryText)
			return ""
		}
		return v
	}
	id := func(key string) int64 { return queryval.PositiveInt(q, key, errs) }
	when := func(key string) time.Time {
		v := q.Get(key)
		if v == "" {
			return time.Time{}
		}
		if t, err := time.Parse(time.RFC3339, v); err == nil {
			// Before 1970 nothing was logged, and year 1 in UTC is the
			// zero time, which would be read as no bound at all: until
			// 0001-01-01T00:00:00Z listed everything, not nothing.
			if t.Before(time.Unix(0, 0)) {
				errs[key] = "must be 1970 or later"
				return time.Time{}
			}
			return t
		}
		if d, err := time.ParseDuration(v); err == nil && d > 0 && d < 100*365*24*time.Hour {
			return now.Add(-d)
		}
		errs[key] = "must be an RFC 3339 time or a duration back from now (24h)"
		return time.Time{}
	}
	f := Filter{
		Recipient: recipientQuery(text("recipient")), Sender: text("sender"),
		DomainID: id("domain_id"), CustomerID: id("customer_id"),
		QueueID: text("queue_id"), MessageID: text("message_id"), Reference: text("ref"),
		Since: when("since"), Until: when("until"), Limit: DefaultLimit,
	}
	f.SenderSpellings = otherSpellings(f.Sender)
	if s := q.Get("status"); s != "" {
		st, ok := ParseStatus(s)
		if !ok {
			errs["status"] = "must be delivered, refused, deferred or quarantined"
		}
		f.Status = st
	}
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n <= 0 || n > MaxLimit {
			errs["limit"] = fmt.Sprintf("must be 1 to %d", MaxLimit)
		} else {
			f.Limit = n
		}
	}
	c, err := ParseCursor(q.Get("cursor"))
	if err != nil {
		errs["cursor"] = "malformed: pass back the next_cursor of the previous page"
	}
	f.After = c
	if !f.Since.IsZero() && !f.Until.IsZero() && !f.Since.Before(f.Until) {
		errs["until"] = "must be after since"
	}
	if len(errs) > 0 {
		return f, errs
	}
	return f, nil
}
