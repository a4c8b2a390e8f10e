package panel

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/mxgrid/mxgrid/admin"
	"github.com/mxgrid/mxgrid/fsperm"
	"github.com/mxgrid/mxgrid/internal/keycheck"
)

// Sessions live server-side (SessionStore: the panel_sessions table, shared
// by a cluster on PostgreSQL): the cookie is an opaque random ID, and a
// session ends at its next request once it is logged out, idle longer than
// panel.idle_timeout, older than panel.session_ttl, its user removed or
// its password changed (the row keeps a stamp of the password hash), the
// API token it logged in with deleted or expired, or, for a login with
// the operator token file, the file's token replaced (the row keeps a
// stamp of the token's hash). The signing key only protects the login
// form's CSRF cookie and the stamps.

const (
	sessionCookie = "mxg_panel"
	// preCookie carries the login form's CSRF token before there is a
	// session (double submit, signed).
	preCookie = "mxg_pre"
	// KeyFile is the node's own signing key in data_dir.
	KeyFile = "panel-session.key"
)

// SessionStore keeps sessions by the hash of their cookie;
// *store.PanelSessions implements it.
type SessionStore interface {
	// PutSession stores a session of owner and ends owner's oldest
	// sessions beyond its newest keep.
	PutSession(ctx context.Context, id, owner string, data []byte, expires time.Time, keep int) error
	// UpdateSession rewrites a live session and reports false, writing
	// nothing, when there is none: a write back of a session read before
	// another node's logout must not bring it back.
	UpdateSession(ctx context.Context, id string, data []byte, expires time.Time) (bool, error)
	// GetSession returns nil, nil for no (or no longer a) session.
	GetSession(ctx context.Context, id string) ([]byte, error)
	DeleteSession(ctx context.Context, id string) error
}

// session is what the store holds for one login.
type session struct {
	P       admin.Principal `json:"p"`
	Created int64           `json:"t"`
	// LastSeen is refreshed at most once per touchInterval, sparing the
	// store a write per page view.
	LastSeen int64  `json:"l"`
	Expires  int64  `json:"e"`
	CSRF     string `json:"c"`
	// PW is stamp(the user's password hash) for a password login.
	PW string `json:"w,omitempty"`
	// OT is stamp(the operator token's hash) for a login with the
	// operator token file.
	OT string `json:"o,omitempty"`
	// id is the store key (hash of the cookie), not stored.
	id string
}

// maxSessions is how many sessions one login (a user, an API token, the
// operator token file) keeps: a new one ends the oldest beyond it. A
// person uses a few browsers; without a bound, a script logging in over
// and over grew the session table without end, and an attacker holding a
// password could open sessions faster than anyone noticed.
const maxSessions = 20

// owner names the login a session belongs to, for maxSessions.
func owner(pr admin.Principal) string {
	switch {
	case pr.UserID != 0:
		return "user:" + strconv.FormatInt(pr.UserID, 10)
	case pr.TokenID != 0:
		return "token:" + strconv.FormatInt(pr.TokenID, 10)
	}
	return "operator"
}

// touchEvery bounds how stale LastSeen may be: an idle timeout is honoured
// to within this.
const touchEvery = time.Minute

// touchInterval is how stale a request lets LastSeen grow before writing
// it back: touchEvery, or a thirtieth of a shorter idle timeout. At a
// minute stale, idle_timeout: 1m ended sessions used seconds before.
func (p *Panel) touchInterval() time.Duration { return min(touchEvery, p.cfg.IdleTimeout/30) }

// sessionKey is the store key of a cookie value: a leaked table gives no
// cookie that works.
func sessionKey(cookieValue string) string {
	h := sha256.Sum256([]byte(cookieValue))
	return hex.EncodeToString(h[:])
}

// newSession is a login's session for pr, with the stamps sessionCurrent
// checks it against at each request: the user's password hash, or the
// operator token file's token.
func (p *Panel) newSession(ctx context.Context, pr admin.Principal) (session, error) {
	sess := session{P: pr, CSRF: randomToken()}
	switch {
	case pr.UserID != 0:
		u, err := p.svc.GetUser(ctx, pr, pr.UserID)
		if err != nil {
			return session{}, err
		}
		sess.PW = p.passwordStamp(u.Hash)
	case fromTokenFile(pr):
		sess.OT = p.operatorTokenStamp()
	}
	return sess, nil
}

// fromTokenFile reports whether pr logged in with the operator token file:
// the operator's principal that is neither a user's nor a stored token's
// (admin.Service.Authenticate).
func fromTokenFile(pr admin.Principal) bool { return pr.Operator && pr.UserID == 0 && pr.TokenID == 0 }

func (p *Panel) passwordStamp(hash string) string { return p.sign.stamp("password", hash) }

// operatorTokenStamp is the stamp of the operator token file's token as
// this node read it at start; "" without one, which no session matches.
func (p *Panel) operatorTokenStamp() string {
	h := p.svc.OperatorTokenHash()
	if h == nil {
		return ""
	}
	return p.sign.stamp("operator token", hex.EncodeToString(h))
}

// createSession stores sess (its times set from now) and sets its cookie.
func (p *Panel) createSession(w http.ResponseWriter, r *http.Request, sess session) error {
	now := p.now()
	sess.Created, sess.LastSeen = now.Unix(), now.Unix()
	sess.Expires = now.Add(p.cfg.SessionTTL).Unix()
	value := randomToken() + randomToken() // 384 bits
	sess.id = sessionKey(value)
	b, err := json.Marshal(sess)
	if err != nil {
		return fmt.Errorf("panel: encode session: %w", err)
	}
	if err := p.sessions.PutSession(r.Context(), sess.id, owner(sess.P), b, time.Unix(sess.Expires, 0), maxSessions); err != nil {
		return fmt.Errorf("panel: save session: %w", err)
	}
	http.SetCookie(w, p.cookie(r, sessionCookie, value, int(p.cfg.SessionTTL/time.Second)))
	return nil
}

// updateSession writes back a session this request read; false when it
// ended meanwhile (logged out or revoked on any node), which stays so.
func (p *Panel) updateSession(ctx context.Context, sess session) (bool, error) {
	b, err := json.Marshal(sess)
	if err != nil {
		return false, fmt.Errorf("panel: encode session: %w", err)
	}
	ok, err := p.sessions.UpdateSession(ctx, sess.id, b, time.Unix(sess.Expires, 0))
	if err != nil {
		return false, fmt.Errorf("panel: save session: %w", err)
	}
	return ok, nil
}

// sessionsRefused: the client address showed too many session cookies
// that matched nothing; Wait is until it may show another.
type sessionsRefused struct{ Wait time.Duration }

func (e sessionsRefused) Error() string {
	return "too many unknown sessions from this address: try again later"
}

// readSession returns the request's live session. A session past its idle
// or absolute limit is deleted; ok is false for it as for none. A client
// address past its sessions that do not exist (p.misses) is refused with
// sessionsRefused, nothing looked up.
func (p *Panel) readSession(r *http.Request) (sess session, ok bool, err error) {
	c, cerr := r.Cookie(p.cookieName(r, sessionCookie))
	if cerr != nil || c.Value == "" || len(c.Value) > 256 {
		return session{}, false, nil
	}
	client, now := p.clientIP.Of(r), p.now()
	if wait := p.misses.Refused(client, "session", now); wait > 0 {
		return session{}, false, sessionsRefused{Wait: wait}
	}
	id := sessionKey(c.Value)
	b, err := p.sessions.GetSession(r.Context(), id)
	if err == nil && b == nil {
		// A browser's expired session misses once: its cookie is cleared.
		p.misses.Missed(client, now)
	}
	if err != nil || b == nil {
		return session{}, false, err
	}
	if err := json.Unmarshal(b, &sess); err != nil || sess.CSRF == "" {
		return session{}, false, nil
	}
	sess.id = id
	if !now.Before(time.Unix(sess.Expires, 0)) || now.Sub(time.Unix(sess.LastSeen, 0)) > p.cfg.IdleTimeout {
		return session{}, false, p.endSession(r.Context(), sess)
	}
	if now.Sub(time.Unix(sess.LastSeen, 0)) >= p.touchInterval() {
		sess.LastSeen = now.Unix()
		if ok, err := p.updateSession(r.Context(), sess); err != nil || !ok {
			return session{}, false, err
		}
	}
	return sess, true, nil
}

func (p *Panel) endSession(ctx context.Context, sess session) error {
	if err := p.sessions.DeleteSession(ctx, sess.id); err != nil {
		return fmt.Errorf("panel: end session: %w", err)
	}
	return nil
}

// memorySessions serves a node without a database: sessions last until
// the process ends and work on that node only.
type memorySessions struct {
	mu sync.Mutex
	m  map[string]memorySession
}

type memorySession struct {
	owner   string
	data    []byte
	created time.Time
	expires time.Time
}

func newMemorySessions() *memorySessions { return &memorySessions{m: make(map[string]memorySession)} }

func (s *memorySessions) PutSession(_ context.Context, id, owner string, data []byte, expires time.Time, keep int) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now()
	var others []string
	for k, v := range s.m {
		switch {
		case now.After(v.expires):
			delete(s.m, k)
		case v.owner == owner && k != id:
			others = append(others, k)
		}
	}
	s.m[id] = memorySession{owner: owner, data: data, created: now, expires: expires}
	if len(others) >= keep {
		slices.SortFunc(others, func(a, b string) int { return s.m[a].created.Compare(s.m[b].created) })
		for _, k := range others[:len(others)-(keep-1)] {
			delete(s.m, k)
		}
	}
	return nil
}

func (s *memorySessions) UpdateSession(_ context.Context, id string, data []byte, expires time.Time) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.m[id]
	if !ok || time.Now().After(v.expires) {
		return false, nil
	}
	v.data, v.expires = data, expires
	s.m[id] = v
	return true, nil
}

func (s *memorySessions) GetSession(_ context.Context, id string) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.m[id]
	if !ok || time.Now().After(v.expires) {
		return nil, nil
	}
	return v.data, nil
}

func (s *memorySessions) DeleteSession(_ context.Context, id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.m, id)
	return nil
}

type signer struct{ key []byte }

// loadKey reads the configured key file, or the node's own key in dataDir,
// created on first start.
func loadKey(path, dataDir string) ([]byte, error) {
	if path != "" {
		b, err := fsperm.ReadSecret(path)
		if err != nil {
			return nil, fmt.Errorf("panel.session_key_file: %w", err)
		}
		k := strings.TrimSpace(string(b))
		if len(k) < 32 {
			return nil, fmt.Errorf("panel.session_key_file: %s holds %d characters; use at least 32 random ones", path, len(k))
		}
		// Whoever guesses it forges any reseller's session cookie.
		if err := keycheck.TextProblem(k); err != nil {
			return nil, fmt.Errorf("panel.session_key_file: %s: %w; use 32 or more random characters (mxgrid keygen prints some)", path, err)
		}
		return []byte(k), nil
	}
	p := filepath.Join(dataDir, KeyFile)
	b, err := readOwnKey(p)
	// A file cut short or overwritten (64 zero bytes after a crash) is
	// made anew as a missing one is: signing with it, anyone could forge
	// a session cookie. Sessions signed with the old key end.
	if err == nil && len(b) >= 64 && keycheck.TextProblem(string(b)) == nil {
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
	if err := writeOwnKey(p, k); err != nil {
		return nil, fmt.Errorf("panel: session key: %w", err)
	}
	return k, nil
}

// maxOwnKey bounds the node's own key file: it writes 64 characters.
const maxOwnKey = 4 << 10

// readOwnKey reads the node's own key file, which only the node writes:
// anything there but a regular file of a key's size (a symbolic link to
// another file or a device, a FIFO, a file of gigabytes) is not its key,
// and reads as none, so that a new key replaces it. Followed, a link used
// another file's content as the key, or read /dev/zero until the node
// ran out of memory. What is read is what was checked: the open file
// (fsperm.OpenOwn), not a path a link or FIFO may have replaced after an
// Lstat (a FIFO so swapped in blocked the start for good).
func readOwnKey(p string) ([]byte, error) {
	f, err := fsperm.OpenOwn(p, os.O_RDONLY, 0)
	if errors.Is(err, fsperm.ErrNotRegular) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxOwnKey+1))
	if err != nil || len(b) > maxOwnKey {
		return nil, err
	}
	return b, nil
}

// writeOwnKey puts k in place whole (temp file, fsync, rename): a crash
// leaves the old key or the new one, and a symbolic link at p is
// replaced, never written through (os.WriteFile overwrote the file it
// pointed at).
func writeOwnKey(p string, k []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(p), KeyFile+".tmp*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // fails harmlessly after the rename
	if _, err := tmp.Write(k); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), p)
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

// stamp is a short MAC of a secret's hash (purpose says which secret): it
// changes with the secret, and the session row shows nothing derived from
// the hash without the key.
func (s signer) stamp(purpose, hash string) string {
	mac := hmac.New(sha256.New, s.key)
	mac.Write([]byte(purpose))
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

// hostPrefix names the panel's cookies when the browser came over HTTPS
// (directly or through a trusted proxy). A browser keeps a __Host- cookie
// only when it is Secure, with Path=/ and no Domain, from this very host:
// another host under the same domain (a customer's site at
// www.example.com beside panel.example.com) or a plain-HTTP answer forged
// on the path could otherwise set a cookie of the bare name that the
// panel read as its own, such as its own login form's token, a login CSRF
// (the victim then works in the attacker's account). Over plain HTTP
// (development, tests) no Secure cookie can be set, so the bare name and
// Path=/panel/ stay, and a bare-named cookie is never read over HTTPS.
const hostPrefix = "__Host-"

// cookieName is the name under which r's browser holds the cookie name.
func (p *Panel) cookieName(r *http.Request, name string) string {
	if p.clientIP.HTTPS(r) {
		return hostPrefix + name
	}
	return name
}

// cookie marks itself Secure when the browser came over HTTPS, so it is
// never sent back in clear text, and then takes the __Host- prefix.
func (p *Panel) cookie(r *http.Request, name, value string, maxAge int) *http.Cookie {
	c := &http.Cookie{Name: name, Value: value, Path: "/panel/", MaxAge: maxAge, HttpOnly: true,
		// Lax, not Strict: a link to the panel from a mail still arrives
		// logged in; cross-site POSTs are refused by SameSite and by the
		// CSRF token besides.
		SameSite: http.SameSiteLaxMode}
	if p.clientIP.HTTPS(r) {
		c.Name, c.Path, c.Secure = hostPrefix+name, "/", true
	}
	return c
}

// preToken returns the login form's CSRF token, setting its cookie when
// the browser has none yet.
func (p *Panel) preToken(w http.ResponseWriter, r *http.Request) string {
	if c, err := r.Cookie(p.cookieName(r, preCookie)); err == nil {
		if tok, ok := p.sign.verify("pre", c.Value); ok {
			return string(tok)
		}
	}
	tok := randomToken()
	http.SetCookie(w, p.cookie(r, preCookie, p.sign.sign("pre", []byte(tok)), 3600))
	return tok
}

// checkPre verifies the login form's token against its cookie.
func (p *Panel) checkPre(r *http.Request) bool {
	c, err := r.Cookie(p.cookieName(r, preCookie))
	if err != nil {
		return false
	}
	tok, ok := p.sign.verify("pre", c.Value)
	return ok && tokensEqual(string(tok), r.PostFormValue("csrf"))
}

func tokensEqual(a, b string) bool {
	return a != "" && subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}
