package notify

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"strconv"
	"strings"
	"time"
)

// Links in digests carry a signed token: what to do (release, opt out),
// to which item, for which recipient, until when. HMAC-SHA256 over a
// versioned payload; signed with the first configured key, verified with
// any (keys rotate by adding the new one first and dropping the old one a
// link lifetime later).

// Action is what a link does.
type Action string

const (
	ActionRelease Action = "release"
	ActionOptOut  Action = "optout"
)

// Link is a token's content.
type Link struct {
	Action Action
	// ItemID is a release's held item, or an opt-out's domain (0: a
	// config file's domain).
	ItemID int64
	// CustomerID is an opt-out's domain's customer: the opt-out is the
	// domain's as that customer holds it (0: a release, or a config
	// file's domain).
	CustomerID int64
	Recipient  string
	Expires    time.Time
}

// Token versions: v2 is an opt-out naming its domain and customer; a v1
// opt-out named neither and is refused as expired. Release links stay
// v1, which nodes from before v2 still read during an upgrade.
const (
	tokenVersion   = "v1"
	tokenVersionV2 = "v2"
)

// Errors of Parse: a link someone changed, and one too old.
var (
	ErrTampered = errors.New("notify: the link is not one we signed")
	ErrExpired  = errors.New("notify: the link has expired")
)

// maxToken bounds what Parse reads.
const maxToken = 1024

// Sign returns l's token under key.
func Sign(l Link, key []byte) string {
	fields := []string{tokenVersion, string(l.Action), strconv.FormatInt(l.ItemID, 10),
		// A quoted local part may hold "|": the address travels encoded.
		base64.RawURLEncoding.EncodeToString([]byte(l.Recipient)),
		strconv.FormatInt(l.Expires.Unix(), 10)}
	if l.Action == ActionOptOut {
		fields[0] = tokenVersionV2
		fields = append(fields, strconv.FormatInt(l.CustomerID, 10))
	}
	payload := strings.Join(fields, "|")
	m := hmac.New(sha256.New, key)
	m.Write([]byte(payload))
	return base64.RawURLEncoding.EncodeToString([]byte(payload)) + "." + base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// Parse verifies token with keys and returns its link; now decides expiry.
func Parse(token string, keys [][]byte, now time.Time) (Link, error) {
	if len(token) > maxToken {
		return Link{}, ErrTampered
	}
	p64, s64, ok := strings.Cut(token, ".")
	if !ok {
		return Link{}, ErrTampered
	}
	payload, err1 := base64.RawURLEncoding.DecodeString(p64)
	sig, err2 := base64.RawURLEncoding.DecodeString(s64)
	if err1 != nil || err2 != nil {
		return Link{}, ErrTampered
	}
	valid := false
	for _, k := range keys {
		m := hmac.New(sha256.New, k)
		m.Write(payload)
		if hmac.Equal(m.Sum(nil), sig) {
			valid = true
			break
		}
	}
	if !valid {
		return Link{}, ErrTampered
	}
	// Signed by us, so well-formed; checked anyway (a key leak must not
	// become a crash).
	f := strings.Split(string(payload), "|")
	var (
		customer int64
		err4     error
	)
	switch {
	case len(f) == 5 && f[0] == tokenVersion:
	case len(f) == 6 && f[0] == tokenVersionV2 && Action(f[1]) == ActionOptOut:
		customer, err4 = strconv.ParseInt(f[5], 10, 64)
		if customer < 0 {
			err4 = ErrTampered
		}
	default:
		return Link{}, ErrTampered
	}
	id, err1 := strconv.ParseInt(f[2], 10, 64)
	exp, err2 := strconv.ParseInt(f[4], 10, 64)
	rcpt, err3 := base64.RawURLEncoding.DecodeString(f[3])
	if err1 != nil || err2 != nil || err3 != nil || err4 != nil || id < 0 || (Action(f[1]) != ActionRelease && Action(f[1]) != ActionOptOut) {
		return Link{}, ErrTampered
	}
	l := Link{Action: Action(f[1]), ItemID: id, CustomerID: customer, Recipient: string(rcpt), Expires: time.Unix(exp, 0).UTC()}
	// An opt-out signed before v2 could stop the digests of whoever holds
	// its address's domain now, another tenant perhaps.
	if !now.Before(l.Expires) || (l.Action == ActionOptOut && f[0] == tokenVersion) {
		return l, ErrExpired
	}
	return l, nil
}
