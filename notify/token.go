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
	Action    Action
	ItemID    int64 // 0 for an opt-out
	Recipient string
	Expires   time.Time
}

const tokenVersion = "v1"

// Errors of Parse: a link someone changed, and one too old.
var (
	ErrTampered = errors.New("notify: the link is not one we signed")
	ErrExpired  = errors.New("notify: the link has expired")
)

// maxToken bounds what Parse reads.
const maxToken = 1024

// Sign returns l's token under key.
func Sign(l Link, key []byte) string {
	payload := strings.Join([]string{tokenVersion, string(l.Action), strconv.FormatInt(l.ItemID, 10),
		// A quoted local part may hold "|": the address travels encoded.
		base64.RawURLEncoding.EncodeToString([]byte(l.Recipient)),
		strconv.FormatInt(l.Expires.Unix(), 10)}, "|")
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
	if len(f) != 5 || f[0] != tokenVersion {
		return Link{}, ErrTampered
	}
	id, err1 := strconv.ParseInt(f[2], 10, 64)
	exp, err2 := strconv.ParseInt(f[4], 10, 64)
	rcpt, err3 := base64.RawURLEncoding.DecodeString(f[3])
	if err1 != nil || err2 != nil || err3 != nil || id < 0 || (Action(f[1]) != ActionRelease && Action(f[1]) != ActionOptOut) {
		return Link{}, ErrTampered
	}
	l := Link{Action: Action(f[1]), ItemID: id, Recipient: string(rcpt), Expires: time.Unix(exp, 0).UTC()}
	if !now.Before(l.Expires) {
		return l, ErrExpired
	}
	return l, nil
}
