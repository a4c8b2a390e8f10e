package panel

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/mxgrid/mxgrid/tenant"
)

// Sessions are stateless: the cookie carries the principal, its expiry
// and the session's CSRF token, signed with HMAC-SHA256 under a key every
// node serving one hostname must share (panel.session_key_file). Nothing is
// stored server-side, so any node with the key serves any session.
//
// A password login's session also carries a stamp of the user's password
// hash, checked against the store on every request (one primary-key read
// beside the reseller's): changing the password ends the user's other
// sessions, and removing a user ends all of its sessions, at their next
// request. Token sessions carry no stamp and last until they expire.

const (
	sessionCookie = "mxg_panel"
	// preCookie carries the login form's CSRF token before there is a
	// session (double submit, signed like the session).
	preCookie = "mxg_pre"
	keyFile   = "panel-session.key"
)

type session struct {
	P       tenant.Principal `json:"p"`
	Expires int64            `json:"e"`
	CSRF    string           `json:"c"`
	// PW is stamp(the user's password hash) for a password login.
	PW string `json:"w,omitempty"`
}

type signer struct{ key []byte }

// loadKey reads the configured key file, or the node's own key in dataDir,
// created on first start.
func loadKey(path, dataDir string) ([]byte, error) {
	if path != "" {
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("panel.session_key_file: %w", err)
		}
		k := strings.TrimSpace(string(b))
		if len(k) < 32 {
			return nil, fmt.Errorf("panel.session_key_file: %s holds %d characters; use at least 32 random ones", path, len(k))
		}
		return []byte(k), nil
	}
	p := filepath.Join(dataDir, keyFile)
	b, err := os.ReadFile(p)
	if err == nil && len(b) >= 64 {
		return b, nil
	}
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("panel: session key: %w", err)
	}
	var raw [32]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return nil, fmt.Errorf("panel: session key: %w", err)
	}
	k := []byte(hex.EncodeToString(raw[:]))
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return nil, fmt.Errorf("panel: session key: %w", err)
	}
	if err := os.WriteFile(p, k, 0o600); err != nil {
		return nil, fmt.Errorf("panel: session key: %w", err)
	}
	return k, nil
}

func (s signer) sign(purpose string, payload []byte) string {
	mac := hmac.New(sha256.New, s.key)
	mac.Write([]byte(purpose))
	mac.Write([]byte{0})
	mac.Write(payload)
	enc := base64.RawURLEncoding
	return enc.EncodeToString(payload) + "." + enc.EncodeToString(mac.Sum(nil))
}

// verify returns the payload of a value signed for purpose.
func (s signer) verify(purpose, v string) ([]byte, bool) {
	p64, m64, ok := strings.Cut(v, ".")
	if !ok {
		return nil, false
	}
	enc := base64.RawURLEncoding
	payload, err1 := enc.DecodeString(p64)
	got, err2 := enc.DecodeString(m64)
	if err1 != nil || err2 != nil {
		return nil, false
	}
	mac := hmac.New(sha256.New, s.key)
	mac.Write([]byte(purpose))
	mac.Write([]byte{0})
	mac.Write(payload)
	return payload, hmac.Equal(got, mac.Sum(nil))
}

// stamp is a short MAC of a password hash: it changes with the password,
// and the cookie (signed, not encrypted) shows nothing derived from the
// hash without the key.
func (s signer) stamp(hash string) string {
	mac := hmac.New(sha256.New, s.key)
	mac.Write([]byte("password"))
	mac.Write([]byte{0})
	mac.Write([]byte(hash))
	return base64.RawURLEncoding.EncodeToString(mac.Sum(nil)[:16])
}

func randomToken() string {
	var b [24]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(fmt.Sprintf("crypto/rand: %v", err)) // documented never to fail on Linux
	}
	return base64.RawURLEncoding.EncodeToString(b[:])
}

func cookie(r *http.Request, name, value string, maxAge int) *http.Cookie {
	return &http.Cookie{Name: name, Value: value, Path: "/panel/", MaxAge: maxAge, HttpOnly: true,
		// Lax, not Strict: a link to the panel from a mail still arrives
		// logged in; cross-site POSTs are refused by SameSite and by the
		// CSRF token besides.
		SameSite: http.SameSiteLaxMode, Secure: r.TLS != nil || r.Header.Get("X-Forwarded-Proto") == "https"}
}

func (s signer) readSession(r *http.Request, now time.Time) (session, bool) {
	c, err := r.Cookie(sessionCookie)
	if err != nil {
		return session{}, false
	}
	payload, ok := s.verify("session", c.Value)
	if !ok {
		return session{}, false
	}
	var sess session
	if json.Unmarshal(payload, &sess) != nil || now.Unix() >= sess.Expires || sess.CSRF == "" {
		return session{}, false
	}
	return sess, true
}

func (s signer) writeSession(w http.ResponseWriter, r *http.Request, sess session, ttl time.Duration) error {
	b, err := json.Marshal(sess)
	if err != nil {
		return fmt.Errorf("panel: encode session: %w", err)
	}
	http.SetCookie(w, cookie(r, sessionCookie, s.sign("session", b), int(ttl/time.Second)))
	return nil
}

// preToken returns the login form's CSRF token, setting its cookie when
// the browser has none yet.
func (s signer) preToken(w http.ResponseWriter, r *http.Request) string {
	if c, err := r.Cookie(preCookie); err == nil {
		if tok, ok := s.verify("pre", c.Value); ok {
			return string(tok)
		}
	}
	tok := randomToken()
	http.SetCookie(w, cookie(r, preCookie, s.sign("pre", []byte(tok)), 3600))
	return tok
}

// checkPre verifies the login form's token against its cookie.
func (s signer) checkPre(r *http.Request) bool {
	c, err := r.Cookie(preCookie)
	if err != nil {
		return false
	}
	tok, ok := s.verify("pre", c.Value)
	return ok && tokensEqual(string(tok), r.PostFormValue("csrf"))
}

func tokensEqual(a, b string) bool {
	return a != "" && subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}

// lockout counts failed logins per account and client address. It is in
// memory on each node: behind a load balancer an attacker gets the limit
// once per node, still a handful of guesses per window against argon2id.
type lockout struct {
	max    int
	period time.Duration

	mu    sync.Mutex
	fails map[string]*failures
}

type failures struct {
	n     int
	first time.Time
	until time.Time
}

// maxTracked bounds the table: past it, entries whose window has passed
// are dropped, so a spray of addresses cannot grow memory without end.
const maxTracked = 100000

func newLockout(max int, period time.Duration) *lockout {
	return &lockout{max: max, period: period, fails: make(map[string]*failures)}
}

// locked reports whether key may not try now, and until when.
func (l *lockout) locked(key string, now time.Time) (bool, time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	f := l.fails[key]
	if f == nil || !now.Before(f.until) {
		return false, time.Time{}
	}
	return true, f.until
}

func (l *lockout) fail(key string, now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.fails) >= maxTracked {
		for k, f := range l.fails {
			if now.Sub(f.first) > l.period && !now.Before(f.until) {
				delete(l.fails, k)
			}
		}
	}
	f := l.fails[key]
	if f == nil || now.Sub(f.first) > l.period {
		f = &failures{first: now}
		l.fails[key] = f
	}
	f.n++
	if f.n >= l.max {
		f.until = now.Add(l.period)
		f.n = 0
		f.first = now
	}
}

func (l *lockout) succeed(key string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.fails, key)
}
