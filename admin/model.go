package admin

import (
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/mxgrid/mxgrid/tenant"
)

// Recipient is one accepted local part of a domain.
type Recipient struct {
	ID       int64     `json:"id"`
	DomainID int64     `json:"domain_id"`
	Local    string    `json:"local"`
	Created  time.Time `json:"created"`
}

// Usage is what a reseller holds against its quota.
type Usage struct {
	Domains    Use `json:"domains"`
	Recipients Use `json:"recipients"`
}

// Use is one count and its cap; Quota 0 is no cap.
type Use struct {
	Used  int64 `json:"used"`
	Quota int64 `json:"quota"`
}

// Token is an API bearer token. Only its SHA-256 is stored; Secret is set
// once, in the answer to its creation.
type Token struct {
	ID int64 `json:"id"`
	// ResellerID scopes the token; 0 is an operator token.
	ResellerID int64     `json:"reseller_id,omitempty"`
	Name       string    `json:"name"`
	Hash       string    `json:"-"`
	Created    time.Time `json:"created"`
	// Expires, when set, is when the token stops authenticating: a token
	// handed to a script or a contractor need not outlive the job.
	Expires time.Time `json:"expires,omitzero"`
	Secret  string    `json:"token,omitempty"`
}

// Expired reports whether the token no longer authenticates at now.
func (t Token) Expired(now time.Time) bool {
	return !t.Expires.IsZero() && !now.Before(t.Expires)
}

// AuditEntry is one change: who, what, when.
type AuditEntry struct {
	ID   int64     `json:"id"`
	Time time.Time `json:"time"`
	// Actor names the token ("token 3 (ci)") or "operator (token file)".
	Actor string `json:"actor"`
	// ResellerID is the reseller whose data changed, 0 for operator-level
	// objects, so a reseller can read its own trail.
	ResellerID int64  `json:"reseller_id,omitempty"`
	Action     string `json:"action"` // create, update, delete, import
	Object     string `json:"object"` // "domain 12 example.com"
	Detail     string `json:"detail,omitempty"`
}

// Filter selects a page of a list. Zero fields do not filter.
type Filter struct {
	ResellerID int64
	CustomerID int64
	DomainID   int64
	// Name matches a case-insensitive substring of the name (or local part).
	Name string
	// After is the last ID of the previous page (keyset pagination: stable
	// under concurrent inserts, unlike offsets).
	After int64
	Limit int
}

// Page limits.
const (
	DefaultPageSize = 100
	MaxPageSize     = 1000
)

// Errors of authentication and authorization; the API maps them to 401 and
// 403.
var (
	ErrForbidden       = errors.New("forbidden")
	ErrUnauthenticated = errors.New("missing or invalid bearer token")
)

// Bounds on names: they end up in every page and audit entry. A search
// (a list's name filter, the quarantine's text) is no longer than a name.
const (
	maxNameLen   = 200
	maxEmailLen  = 254
	maxSearchLen = maxNameLen
)

// checkName validates a reseller's or customer's display name.
func checkName(fe tenant.FieldErrors, key, name string) {
	switch {
	case strings.TrimSpace(name) == "":
		fe[key] = "required"
	case len(name) > maxNameLen:
		fe[key] = fmt.Sprintf("at most %d bytes", maxNameLen)
	case !isText(name):
		fe[key] = notText
	}
}

// checkPolicyText refuses, in what a tenant writes, a subject tag that
// is no text by isText: Policy.Validate refuses only control characters
// in it, as it also vets the policies stored domains load with, and a
// tag with U+202E ran every tagged subject of the customer's backwards.
//
// Nor may it hold an RFC 2047 encoded word's "=?": the tag goes into the
// Subject as written, so mail readers show what its words decode to, and
// "=?utf-8?b?4oCu?=" is U+202E. A tag in any script is written as itself
// (smtpd encodes it).
func checkPolicyText(fe tenant.FieldErrors, p tenant.Policy) {
	if p.SubjectTag == nil {
		return
	}
	if _, said := fe["policy.subject_tag"]; said {
		return
	}
	switch {
	case !isText(*p.SubjectTag):
		fe["policy.subject_tag"] = notText
	case strings.Contains(*p.SubjectTag, "=?"):
		fe["policy.subject_tag"] = `must not hold "=?", which begins an encoded word (RFC 2047): write the tag's text itself, in any script`
	}
}

// notText is the field error of text isText refuses.
const notText = "must be UTF-8 text without control characters, line separators or bidirectional overrides"

// isText reports whether s is text any field may hold: no control
// characters (names reach logs, pages, the CLI's tables and audit
// entries), no Unicode line or paragraph separator (U+2028, U+2029: a new
// line for some log viewers and terminals), no bidirectional embedding,
// override or isolate (U+202A-U+202E, U+2066-U+2069: "invoice\u202egpj.exe"
// reads "invoiceexe.jpg", and the rest of a CLI table's line runs
// backwards), as package mailaddr refuses in addresses; and valid UTF-8
// (PostgreSQL refuses anything else in a parameter, SQLSTATE 22021).
func isText(s string) bool {
	return utf8.ValidString(s) && !strings.ContainsFunc(s, func(r rune) bool {
		return unicode.IsControl(r) || r == 0x2028 || r == 0x2029 || r >= 0x202a && r <= 0x202e || r >= 0x2066 && r <= 0x2069
	})
}

// CheckSearch vets the text a list is filtered by, under key; nothing
// stored can match what it refuses, and the database would fail on it.
// Callers refuse such text as it is: cut to fit, it would search for
// something else, and could end mid-rune.
func CheckSearch(key, s string) error {
	switch {
	case len(s) > maxSearchLen:
		return tenant.FieldErrors{key: fmt.Sprintf("at most %d bytes", maxSearchLen)}
	case !isText(s):
		return tenant.FieldErrors{key: notText}
	}
	return nil
}
