package panel

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mxgrid/mxgrid/internal/fspermtest"

	"github.com/mxgrid/mxgrid/admin"
	"github.com/mxgrid/mxgrid/internal/keycheck"
	"github.com/mxgrid/mxgrid/internal/testenv"

	"github.com/mxgrid/mxgrid/clientip"
)

// loggedIn asserts the client's session opens a page and returns the
// page's CSRF token.
func (c *client) loggedIn(what string) string {
	c.t.Helper()
	rec := c.get("/panel/account")
	if rec.Code != http.StatusOK {
		c.t.Fatalf("%s: account page %d (%s), want 200", what, rec.Code, rec.Header().Get("Location"))
	}
	m := csrfRE.FindStringSubmatch(rec.Body.String())
	if m == nil {
		c.t.Fatalf("%s: page without a CSRF token", what)
	}
	return m[1]
}

// loggedOut asserts the client gets the login page.
func (c *client) loggedOut(what string) {
	c.t.Helper()
	if rec := c.get("/panel/account"); rec.Code != http.StatusSeeOther || rec.Header().Get("Location") != "/panel/login" {
		c.t.Errorf("%s: %d %s, want the login page", what, rec.Code, rec.Header().Get("Location"))
	}
}

// replay is a second browser holding a copy of c's session cookie, as an
// attacker who stole it would.
func (c *client) replay(f *fixture) *client {
	r := f.client(c.t)
	r.cookies[sessionCookie] = c.cookies[sessionCookie]
	return r
}

func TestSessionEnds(t *testing.T) {
	uf := newUserFixture(t)
	ctx := context.Background()

	t.Run("logout", func(t *testing.T) {
		c := uf.client(t)
		if rec := c.login("ann@alpha.example", testPassword); rec.Code != http.StatusSeeOther {
			t.Fatalf("login: %d", rec.Code)
		}
		csrf := c.loggedIn("after login")
		stolen := c.replay(uf.fixture)
		stolen.loggedIn("copy before logout")
		if rec := c.do("POST", "/panel/logout", url.Values{"csrf": {csrf}}); rec.Code != http.StatusSeeOther {
			t.Fatalf("logout: %d", rec.Code)
		}
		stolen.loggedOut("cookie replayed after logout")
	})

	t.Run("token deleted", func(t *testing.T) {
		tok, err := uf.svc.CreateToken(ctx, uf.op, admin.Token{ResellerID: uf.a.ID, Name: "panel"})
		if err != nil {
			t.Fatal(err)
		}
		c := uf.client(t)
		if rec := c.login("", tok.Secret); rec.Code != http.StatusSeeOther {
			t.Fatalf("token login: %d", rec.Code)
		}
		c.loggedIn("token session")
		if err := uf.svc.DeleteToken(ctx, uf.op, tok.ID); err != nil {
			t.Fatal(err)
		}
		c.loggedOut("cookie replayed after its token's deletion")
	})

	t.Run("token expired", func(t *testing.T) {
		start := time.Now()
		tok, err := uf.svc.CreateToken(ctx, uf.op, admin.Token{ResellerID: uf.a.ID, Name: "contractor", Expires: start.Add(10 * time.Minute)})
		if err != nil {
			t.Fatal(err)
		}
		c := uf.client(t)
		if rec := c.login("", tok.Secret); rec.Code != http.StatusSeeOther {
			t.Fatalf("token login: %d", rec.Code)
		}
		// Inside the idle timeout both times: only the expiry ends it.
		now := start.Add(9 * time.Minute)
		uf.p.now = func() time.Time { return now }
		defer func() { uf.p.now = time.Now }()
		c.loggedIn("a minute before the token expires")
		now = start.Add(11 * time.Minute)
		c.loggedOut("a minute after the token expired")
	})

	t.Run("operator token replaced", func(t *testing.T) {
		c := uf.client(t)
		if rec := c.login("", testOperatorToken); rec.Code != http.StatusSeeOther {
			t.Fatalf("operator token login: %d", rec.Code)
		}
		c.loggedIn("operator token session")
		// The token file is read at start; the session row outlives the
		// node. Restarted with the same token, the node keeps the session;
		// with a new one, the old token's session ends, as a deleted API
		// token's does.
		c.replay(uf.restart(t, testOperatorToken)).loggedIn("after a restart with the same token")
		const rotated = "rotated-operator-token-of-32-chars"
		next := uf.restart(t, rotated)
		c.replay(next).loggedOut("cookie replayed after the token file's token was replaced")
		n := next.client(t)
		if rec := n.login("", rotated); rec.Code != http.StatusSeeOther {
			t.Fatalf("login with the new token: %d", rec.Code)
		}
		n.loggedIn("new token session")
		// A rolling restart: a node not yet restarted holds the old token.
		// It refuses the new token's session but must not delete it, or
		// the operator is logged out of the nodes already restarted.
		n.replay(uf.restart(t, testOperatorToken)).loggedOut("new token's session on a node holding the old token")
		n.replay(next).loggedIn("new token's session back on a node holding the new token")
	})

	t.Run("user removed", func(t *testing.T) {
		u, err := uf.svc.CreateUser(ctx, uf.op, uf.a.ID, "temp@alpha.example", testPassword)
		if err != nil {
			t.Fatal(err)
		}
		c := uf.client(t)
		if rec := c.login("temp@alpha.example", testPassword); rec.Code != http.StatusSeeOther {
			t.Fatalf("login: %d", rec.Code)
		}
		c.loggedIn("before removal")
		if err := uf.svc.DeleteUser(ctx, uf.op, u.ID); err != nil {
			t.Fatal(err)
		}
		c.loggedOut("cookie replayed after the user's removal")
	})

	t.Run("idle and absolute timeouts", func(t *testing.T) {
		start := time.Now()
		now := start
		uf.p.now = func() time.Time { return now }
		defer func() { uf.p.now = time.Now }()
		idle := uf.p.cfg.IdleTimeout

		c := uf.client(t)
		if rec := c.login("ann@alpha.example", testPassword); rec.Code != http.StatusSeeOther {
			t.Fatalf("login: %d", rec.Code)
		}
		// Used within the idle timeout, the session lives on.
		for i := 1; i <= 3; i++ {
			now = start.Add(time.Duration(i) * (idle - time.Minute))
			c.loggedIn(fmt.Sprintf("used again after %v", now.Sub(start)))
		}
		now = now.Add(idle + time.Second)
		c.replay(uf.fixture).loggedOut(fmt.Sprintf("cookie replayed after %v idle", idle+time.Second))
		c.loggedOut("the idle session itself")

		// The absolute lifetime ends even a busy session.
		start = now
		c = uf.client(t)
		if rec := c.login("ann@alpha.example", testPassword); rec.Code != http.StatusSeeOther {
			t.Fatalf("login: %d", rec.Code)
		}
		for now = start; now.Sub(start) < uf.p.cfg.SessionTTL; now = now.Add(idle - time.Minute) {
			c.loggedIn(fmt.Sprintf("busy after %v", now.Sub(start)))
		}
		now = start.Add(uf.p.cfg.SessionTTL)
		c.loggedOut("after session_ttl")
	})
}

// TestIdleTimeoutCountsFromTheLastUse, over real HTTP: a session used
// within panel.idle_timeout lives on, however short the timeout the
// config allows (1m). LastSeen was written back at most once a minute, so
// with idle_timeout: 1m a session used 40 s after login ended at 80 s,
// 40 s after its last use.
func TestIdleTimeoutCountsFromTheLastUse(t *testing.T) {
	for _, idle := range []time.Duration{time.Minute, 2 * time.Minute, 30 * time.Minute} {
		t.Run(idle.String(), func(t *testing.T) {
			uf := newUserFixture(t)
			uf.p.cfg.IdleTimeout = idle
			start := time.Now()
			var mu sync.Mutex
			now := start
			uf.p.now = func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
			at := func(d time.Duration) { mu.Lock(); now = start.Add(d); mu.Unlock() }
			mux := http.NewServeMux()
			uf.p.Mount(mux.Handle)
			srv := httptest.NewServer(mux)
			defer srv.Close()
			jar, _ := cookiejar.New(nil)
			hc := &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
			get := func(path string) (int, string) {
				t.Helper()
				resp, err := hc.Get(srv.URL + path)
				if err != nil {
					t.Fatal(err)
				}
				var body bytes.Buffer
				body.ReadFrom(resp.Body)
				resp.Body.Close()
				return resp.StatusCode, body.String()
			}
			_, form := get("/panel/login")
			m := csrfRE.FindStringSubmatch(form)
			if m == nil {
				t.Fatal("login form without a CSRF token")
			}
			resp, err := hc.PostForm(srv.URL+"/panel/login", url.Values{"csrf": {m[1]}, "email": {"ann@alpha.example"}, "password": {testPassword}})
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusSeeOther {
				t.Fatalf("login: %d", resp.StatusCode)
			}
			// Used every two thirds of the timeout: never idle that long.
			step := idle * 2 / 3
			var last time.Duration
			for i := 1; i <= 5; i++ {
				last = time.Duration(i) * step
				at(last)
				if code, _ := get("/panel/account"); code != http.StatusOK {
					t.Fatalf("used again %v after login, %v after its last use: %d, want 200", last, step, code)
				}
			}
			at(last + idle + time.Second)
			if code, _ := get("/panel/account"); code != http.StatusSeeOther {
				t.Errorf("%v unused: %d, want the login page", idle+time.Second, code)
			}
		})
	}
}

func TestSessionCookieIsOpaque(t *testing.T) {
	uf := newUserFixture(t)
	var values []string
	for range 2 {
		c := uf.client(t)
		if rec := c.login("ann@alpha.example", testPassword); rec.Code != http.StatusSeeOther {
			t.Fatalf("login: %d", rec.Code)
		}
		ck := c.cookies[sessionCookie]
		if ck == nil || !ck.HttpOnly || ck.SameSite != http.SameSiteLaxMode {
			t.Fatalf("session cookie %+v", ck)
		}
		values = append(values, ck.Value)
		raw, err := base64.RawURLEncoding.DecodeString(ck.Value)
		if err != nil || len(raw) != 48 {
			t.Errorf("cookie %q: want base64url of 48 random bytes (%v)", ck.Value, err)
		}
		// Nothing of the principal, in clear or encoded, and no signed
		// payload ("data.mac") to replay or tamper with.
		// Each long enough that 64 random characters hold it by chance
		// almost never ("ann" alone did, one run in forty).
		for _, leak := range []string{"ann@", "alpha", base64.RawURLEncoding.EncodeToString([]byte("ann@alpha")), "user", `"p"`, "."} {
			if strings.Contains(ck.Value, leak) || bytes.Contains(raw, []byte(leak)) && len(leak) > 2 {
				t.Errorf("cookie %q shows %q", ck.Value, leak)
			}
		}
		// A changed character is no session.
		forged := c.replay(uf.fixture)
		v := []byte(ck.Value)
		v[5] ^= 1
		forged.cookies[sessionCookie] = &http.Cookie{Name: sessionCookie, Value: string(v)}
		forged.loggedOut("a cookie with one character changed")
	}
	if values[0] == values[1] {
		t.Error("two logins got the same cookie")
	}
	// The store keeps a hash: its rows are no cookies.
	rows, err := uf.st.DB.Query(`SELECT id FROM panel_sessions`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	n := 0
	for rows.Next() {
		var id string
		rows.Scan(&id)
		n++
		for _, v := range values {
			if id == v {
				t.Errorf("panel_sessions holds the cookie value itself")
			}
		}
	}
	if n < 2 {
		t.Errorf("%d stored sessions, want the 2 logins", n)
	}
}

// Over HTTPS the panel's cookies take the __Host- prefix (Secure, Path=/,
// no Domain), which another host of the domain or a forged plain-HTTP
// answer cannot set; a bare-named cookie is not read there, so a login
// form token or session planted under it logs nobody in. Over plain HTTP
// (development) the bare names keep working.
func TestCookiesHostPrefixedOverHTTPS(t *testing.T) {
	uf := newUserFixture(t)
	for _, tc := range []struct {
		https        bool
		session, pre string
		path         string
	}{
		{false, sessionCookie, preCookie, "/panel/"},
		{true, "__Host-" + sessionCookie, "__Host-" + preCookie, "/"},
	} {
		t.Run(fmt.Sprintf("https=%v", tc.https), func(t *testing.T) {
			c := uf.client(t)
			c.https = tc.https
			c.get("/panel/login")
			if ck := c.cookies[tc.pre]; ck == nil || ck.Secure != tc.https || ck.Path != tc.path || ck.Domain != "" {
				t.Fatalf("login form cookie %+v, want %s Path=%s Secure=%v", ck, tc.pre, tc.path, tc.https)
			}
			if rec := c.login("ann@alpha.example", testPassword); rec.Code != http.StatusSeeOther {
				t.Fatalf("login: %d", rec.Code)
			}
			ck := c.cookies[tc.session]
			if ck == nil || ck.Secure != tc.https || ck.Path != tc.path || ck.Domain != "" || !ck.HttpOnly {
				t.Fatalf("session cookie %+v, want %s Path=%s Secure=%v", ck, tc.session, tc.path, tc.https)
			}
			csrf := c.loggedIn("after login")
			if !tc.https {
				return
			}
			// The same session under the bare name, as a sibling host
			// could set it: not read over HTTPS.
			tossed := uf.client(t)
			tossed.https = true
			tossed.cookies[sessionCookie] = &http.Cookie{Name: sessionCookie, Value: ck.Value}
			tossed.loggedOut("session cookie without the prefix over HTTPS")
			// An attacker's valid login form token planted under the bare
			// name: the login is refused (no login CSRF into its account).
			eve := uf.client(t)
			m := csrfRE.FindStringSubmatch(eve.get("/panel/login").Body.String())
			victim := uf.client(t)
			victim.https = true
			victim.cookies[preCookie] = eve.cookies[preCookie]
			rec := victim.do("POST", "/panel/login", url.Values{"csrf": {m[1]}, "email": {"bob@beta.example"}, "password": {testPassword}})
			if rec.Code != http.StatusForbidden || victim.cookies["__Host-"+sessionCookie] != nil {
				t.Errorf("login with a bare-named form token over HTTPS: %d, want 403 and no session", rec.Code)
			}
			// Logging out clears the prefixed cookie.
			if rec := c.do("POST", "/panel/logout", url.Values{"csrf": {csrf}}); rec.Code != http.StatusSeeOther {
				t.Fatalf("logout: %d", rec.Code)
			}
			if c.cookies[tc.session] != nil {
				t.Error("logout left the session cookie")
			}
		})
	}
}

func TestLoginLimits(t *testing.T) {
	t.Run("per account and address, doubling", func(t *testing.T) {
		uf := newUserFixture(t)
		start := time.Now()
		now := start
		uf.p.now = func() time.Time { return now }
		free := uf.p.cfg.LockoutFailures
		attempt := func(remote, password string) int {
			c := uf.client(t)
			c.remote = remote
			return c.login("ANN@alpha.example", password).Code
		}
		const guesser, user = "198.51.100.1:999", "198.51.100.2:999"
		for i := range free + 1 {
			if code := attempt(guesser, "wrong"); code != http.StatusUnauthorized {
				t.Fatalf("failure %d: %d, want 401", i+1, code)
			}
		}
		// The 6th failure started a 1 s wait for its address only.
		if code := attempt(guesser, testPassword); code != http.StatusTooManyRequests {
			t.Fatalf("right password during the backoff: %d, want 429", code)
		}
		if code := attempt(user, testPassword); code != http.StatusSeeOther {
			t.Fatalf("right password from another address during the backoff: %d, want 303", code)
		}
		now = now.Add(time.Second)
		if code := attempt(guesser, "wrong"); code != http.StatusUnauthorized {
			t.Fatalf("after 1 s: %d, want 401", code)
		}
		now = now.Add(time.Second) // the wait doubled to 2 s
		if code := attempt(guesser, testPassword); code != http.StatusTooManyRequests {
			t.Fatalf("1 s into a 2 s wait: %d, want 429", code)
		}
		now = now.Add(time.Second)
		if code := attempt(guesser, testPassword); code != http.StatusSeeOther {
			t.Fatalf("after the doubled wait, right password: %d, want 303", code)
		}
		// Another account is not held up by ann's failures.
		if uf.p.limits.wait(uf.p.accountKey("bob@beta.example"), "198.51.100.1", now) != (time.Time{}) {
			t.Error("bob waits for ann's failures")
		}
		// The longest wait is lockout_duration.
		for range 40 {
			uf.p.limits.fail(uf.p.accountKey("carol@x"), "y", now)
		}
		if w := uf.p.limits.wait(uf.p.accountKey("carol@x"), "y", now).Sub(now); w != uf.p.cfg.LockoutDuration {
			t.Errorf("longest wait %v, want %v", w, uf.p.cfg.LockoutDuration)
		}
	})

	// The audit's attack: one failure each time the wait ends held the
	// account for ever, from anywhere.
	t.Run("a guesser elsewhere does not keep the user out", func(t *testing.T) {
		uf := newUserFixture(t)
		start := time.Now()
		now := start
		uf.p.now = func() time.Time { return now }
		attempt := func(remote, password string) *httptest.ResponseRecorder {
			c := uf.client(t)
			c.remote = remote
			return c.login("ann@alpha.example", password)
		}
		const hours = 6
		guesses := 0
		for now.Sub(start) < hours*time.Hour {
			rec := attempt("203.0.113.7:1", "wrong")
			switch rec.Code {
			case http.StatusUnauthorized:
				guesses++
				if code := attempt("[2001:db8:5::1]:1", testPassword).Code; code != http.StatusSeeOther {
					t.Fatalf("user after %d guesses elsewhere: %d, want 303", guesses, code)
				}
			case http.StatusTooManyRequests:
				wait, err := strconv.Atoi(rec.Header().Get("Retry-After"))
				if err != nil {
					t.Fatal(err)
				}
				now = now.Add(time.Duration(wait) * time.Second)
			default:
				t.Fatalf("guess: %d", rec.Code)
			}
		}
		// The free failures, the doubling up to 15 min (1 s … 512 s), then
		// one per lockout_duration.
		if most := uf.p.cfg.LockoutFailures + 10 + hours*int(time.Hour/uf.p.cfg.LockoutDuration); guesses > most {
			t.Errorf("%d guesses in %d h from one address, want at most %d", guesses, hours, most)
		}
	})

	t.Run("per account, from many addresses", func(t *testing.T) {
		uf := newUserFixture(t)
		now := time.Now()
		uf.p.now = func() time.Time { return now }
		attempt := func(i int, password string) int {
			c := uf.client(t)
			c.remote = fmt.Sprintf("198.51.100.%d:999", i)
			return c.login("ann@alpha.example", password).Code
		}
		for i := range uf.p.cfg.AddressFailures {
			if code := attempt(i+1, "wrong"); code != http.StatusUnauthorized {
				t.Fatalf("guesser %d: %d, want 401", i+1, code)
			}
		}
		now = now.Add(time.Minute)
		for _, tt := range []struct {
			name     string
			addr     int
			password string
			want     int
		}{
			{"a guesser again", 1, "wrong", http.StatusTooManyRequests},
			{"a guesser with the password", 2, testPassword, http.StatusTooManyRequests},
			{"an address that never failed", 200, testPassword, http.StatusSeeOther},
		} {
			if code := attempt(tt.addr, tt.password); code != tt.want {
				t.Errorf("%s: %d, want %d", tt.name, code, tt.want)
			}
		}
		// The user who mistyped during the attack waits lockout_duration
		// from its failure at most, though the attack goes on.
		now = now.Add(uf.p.cfg.LockoutDuration - time.Minute)
		for i := range uf.p.cfg.AddressFailures {
			attempt(100+i, "wrong")
		}
		if code := attempt(3, testPassword); code != http.StatusSeeOther {
			t.Errorf("a guesser's address after lockout_duration: %d, want 303", code)
		}
	})

	t.Run("per address, IPv6 by /64, X-Forwarded-For only from proxies", func(t *testing.T) {
		uf := newUserFixture(t)
		uf.p.cfg.AddressFailures = 4
		uf.p.limits = newLoginLimits(uf.p.cfg)
		from := func(remote, xff string, email, password string) int {
			c := uf.client(t)
			c.remote = remote
			if xff != "" {
				c.header.Set("X-Forwarded-For", xff)
			}
			return c.login(email, password).Code
		}
		for i := range 4 {
			if code := from("[2001:db8:1:2::1]:5", "", fmt.Sprintf("nobody%d@x.example", i), "guess"); code != http.StatusUnauthorized {
				t.Fatalf("failure %d: %d", i+1, code)
			}
		}
		for _, tt := range []struct {
			name, remote, xff string
			want              int
		}{
			{"same address", "[2001:db8:1:2::1]:5", "", http.StatusTooManyRequests},
			{"same /64", "[2001:db8:1:2:ffff::9]:5", "", http.StatusTooManyRequests},
			{"same /64, forged X-Forwarded-For", "[2001:db8:1:2::1]:5", "203.0.113.9", http.StatusTooManyRequests},
			{"another /64", "[2001:db8:1:3::1]:5", "", http.StatusSeeOther},
		} {
			if code := from(tt.remote, tt.xff, "ann@alpha.example", testPassword); code != tt.want {
				t.Errorf("%s: %d, want %d", tt.name, code, tt.want)
			}
		}

		// Behind a trusted proxy, each client has its own budget.
		trusted, _ := clientip.ParseTrusted([]string{"10.0.0.0/8"})
		uf.p.clientIP = clientip.New(trusted)
		for i := range 4 {
			from("10.0.0.1:1", "203.0.113.1", fmt.Sprintf("nobody%d@x.example", i), "guess")
		}
		if code := from("10.0.0.1:1", "203.0.113.1", "ann@alpha.example", testPassword); code != http.StatusTooManyRequests {
			t.Errorf("limited client behind the proxy: %d, want 429", code)
		}
		if code := from("10.0.0.1:1", "203.0.113.2", "ann@alpha.example", testPassword); code != http.StatusSeeOther {
			t.Errorf("another client behind the same proxy: %d, want 303", code)
		}
	})
}

// Every spelling of a login email names one account: it logs in, and its
// failures count against that account. Were each spelling counted apart,
// a guesser would get the free failures once per spelling (one per
// fullwidth letter of the domain, or a trailing dot).
func TestLoginSpellingsShareOneAccount(t *testing.T) {
	uf := newUserFixture(t)
	now := time.Now()
	uf.p.now = func() time.Time { return now }
	attempt := func(remote, email, password string) int {
		c := uf.client(t)
		c.remote = remote
		return c.login(email, password).Code
	}
	if code := attempt("198.51.100.2:1", "ANN@ａｌｐｈａ.example.", testPassword); code != http.StatusSeeOther {
		t.Fatalf("fullwidth spelling, right password: %d, want 303", code)
	}
	// "alpha.example" with its i-th letter fullwidth, a new spelling each time.
	spelling := func(i int) string {
		d := []rune("alpha.example")
		i %= len(d)
		if d[i] == '.' {
			return "ann@alpha.example."
		}
		d[i] += 'ａ' - 'a'
		return "ann@" + string(d)
	}
	const guesser = "198.51.100.1:1"
	for i := range uf.p.cfg.LockoutFailures + 1 {
		if code := attempt(guesser, spelling(i), "wrong"); code != http.StatusUnauthorized {
			t.Fatalf("failure %d as %q: %d, want 401", i+1, spelling(i), code)
		}
	}
	if code := attempt(guesser, "ann@alpha.example", testPassword); code != http.StatusTooManyRequests {
		t.Errorf("after %d failures under other spellings: %d, want 429", uf.p.cfg.LockoutFailures+1, code)
	}
}

// TestLoginLimitTablesStayBounded: failures from more addresses than the
// tables hold, none of them stale, leave each table at maxTracked at most
// and keep the newest failures in force.
func TestLoginLimitTablesStayBounded(t *testing.T) {
	l := newLoginLimits(Config{LockoutFailures: 0, LockoutDuration: time.Hour, AddressFailures: 1, MaxPasswordHashes: 1})
	now := time.Date(2026, 12, 5, 0, 0, 0, 0, time.UTC)
	for i := range maxTracked + maxTracked/4 {
		now = now.Add(time.Millisecond)
		l.fail(fmt.Sprint("account", i), fmt.Sprintf("2001:db8:%x::/64", i), now)
	}
	for name, n := range map[string]int{"pairs": len(l.pairs), "accounts": len(l.accounts), "addresses": len(l.addrs), "networks": len(l.nets)} {
		if n > maxTracked {
			t.Errorf("%s table holds %d entries, more than %d", name, n, maxTracked)
		}
	}
	last := maxTracked + maxTracked/4 - 1
	if l.wait(fmt.Sprint("account", last), fmt.Sprintf("2001:db8:%x::/64", last), now).IsZero() {
		t.Error("the newest failure no longer holds its address back")
	}
	if !l.wait("account0", "2001:db8:0::/64", now).IsZero() {
		t.Error("the oldest failure is still held after the table overflowed")
	}
}

// TestLoginLimitPerNetwork: a network (an IPv4 /24, an IPv6 /48) may
// spend four addresses' failures a window, whichever of its addresses
// fail. Before, every /64 of a /48 was a fresh budget: 65,536 of them.
func TestLoginLimitPerNetwork(t *testing.T) {
	now := time.Date(2026, 12, 6, 0, 0, 0, 0, time.UTC)
	for _, tt := range []struct {
		name        string
		addr        func(i int) string
		other       string // an address of another network
		sameNetwork bool
	}{
		{"IPv6 /64s of one /48", func(i int) string { return fmt.Sprintf("2001:db8:7:%x::/64", i) }, "2001:db8:8::/64", true},
		{"IPv4 addresses of one /24", func(i int) string { return fmt.Sprintf("198.51.100.%d", i) }, "198.51.101.1", true},
		{"IPv6 /48s", func(i int) string { return fmt.Sprintf("2001:db8:%x::/64", i) }, "2001:db8:ffff::/64", false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			l := newLoginLimits(Config{LockoutFailures: 5, LockoutDuration: time.Hour, AddressFailures: 2, MaxPasswordHashes: 1})
			for i := range networkShare * 2 {
				l.fail("", tt.addr(i), now)
			}
			fresh := tt.addr(networkShare * 2)
			if held := !l.wait("", fresh, now).IsZero(); held != tt.sameNetwork {
				t.Errorf("a fresh address after its network's %d failures: held back %v, want %v", networkShare*2, held, tt.sameNetwork)
			}
			if !l.wait("", tt.other, now).IsZero() {
				t.Errorf("%s, of another network, is held back", tt.other)
			}
			if !l.wait("", fresh, now.Add(time.Hour)).IsZero() {
				t.Error("still held back after the window")
			}
		})
	}
}

func TestLoginLogsNothingTyped(t *testing.T) {
	uf := newUserFixture(t)
	var logs testenv.SyncBuffer
	uf.p.log = slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	const (
		inEmail    = "Hunter2-Typed-In-Email"
		inPassword = "S3cret-typed-in-password"
	)
	c := uf.client(t)
	rec := c.login(inEmail, inPassword)
	if rec.Code != http.StatusUnauthorized {
		t.Fatalf("login: %d", rec.Code)
	}
	if body := rec.Body.String(); strings.Contains(body, inEmail) || strings.Contains(body, inPassword) {
		t.Error("the failed login page shows what was typed")
	}
	c.login("ann@alpha.example", inPassword) // a known account, wrong password
	c.login("", inPassword)                  // a token login
	if rec := c.login("ann@alpha.example", testPassword); rec.Code != http.StatusSeeOther {
		t.Fatalf("good login: %d", rec.Code)
	}
	out := logs.String()
	if !strings.Contains(out, "failed login") || !strings.Contains(out, "account_hash") {
		t.Fatalf("failed logins not logged:\n%s", out)
	}
	for _, typed := range []string{inEmail, strings.ToLower(inEmail), inPassword, testPassword} {
		if strings.Contains(out, typed) {
			t.Errorf("the log holds %q:\n%s", typed, out)
		}
	}
	// Nor a plain hash of it: a dictionary run over the log's
	// account_hash values would find a password typed into the email
	// field (or the addresses tried) at billions of guesses a second.
	for _, typed := range []string{inEmail, "ann@alpha.example"} {
		// Any truncation of the hash starts with these 12 bytes.
		h := sha256.Sum256([]byte(strings.ToLower(typed)))
		if strings.Contains(out, hex.EncodeToString(h[:12])) {
			t.Errorf("the log holds an unkeyed hash of %q:\n%s", typed, out)
		}
	}
	// Only a successful login names its account (as the actor).
	for _, line := range strings.Split(out, "\n") {
		if strings.Contains(line, "failed login") && strings.Contains(line, "ann@") {
			t.Errorf("a failed login names the account: %s", line)
		}
	}
}

// rssBytes reads the process's resident set from /proc.
func rssBytes(t *testing.T) int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Skipf("no /proc: %v", err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return kb << 10
		}
	}
	t.Skip("no VmRSS")
	return 0
}

// TestGuessesAtOnceMeetTheLockout, over real sockets: wrong passwords
// for one account posted at once from one address get the free failures
// and the first wait's one, as they would one after another, however many
// hashes the node runs at once. Each was checked before any of them had
// failed, so with max_password_hashes: 16 all 16 were tried, and again
// every lockout_duration where one address should get one guess.
func TestGuessesAtOnceMeetTheLockout(t *testing.T) {
	const guesses = 16
	uf := newUserFixture(t)
	uf.p.cfg.MaxPasswordHashes = guesses
	uf.p.limits = newLoginLimits(uf.p.cfg)
	now := time.Now()
	uf.p.now = func() time.Time { return now } // no wait runs out meanwhile
	mux := http.NewServeMux()
	uf.p.Mount(mux.Handle)
	srv := httptest.NewServer(mux)
	defer srv.Close()

	type prepared struct {
		hc   *http.Client
		form url.Values
	}
	ps := make([]prepared, guesses)
	for i := range ps {
		hc, csrf := loginFormClient(t, srv.URL)
		ps[i] = prepared{hc: hc, form: url.Values{"csrf": {csrf}, "email": {"ann@alpha.example"}, "password": {fmt.Sprintf("guess number %d", i)}}}
	}
	codes := atOnce(t, len(ps), func(i int) (*http.Response, error) {
		return ps[i].hc.PostForm(srv.URL+"/panel/login", ps[i].form)
	})
	tried := 0
	for _, c := range codes {
		switch c {
		case http.StatusUnauthorized:
			tried++
		case http.StatusTooManyRequests:
		default:
			t.Errorf("a guess answered %d, want 401 or 429", c)
		}
	}
	if want := uf.p.cfg.LockoutFailures + 1; tried != want {
		t.Errorf("%d of %d guesses at once were tried (401), want %d: the free failures and the one that starts the first wait", tried, guesses, want)
	}
}

// loginFormClient is a browser of its own (cookies, redirects not
// followed) that has opened the login form at base, and the form's CSRF
// token.
func loginFormClient(t *testing.T, base string) (*http.Client, string) {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	hc := &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := hc.Get(base + "/panel/login")
	if err != nil {
		t.Fatal(err)
	}
	var body bytes.Buffer
	body.ReadFrom(resp.Body)
	resp.Body.Close()
	m := csrfRE.FindStringSubmatch(body.String())
	if m == nil {
		t.Fatal("no CSRF token")
	}
	return hc, m[1]
}

// atOnce makes n requests together, each do(i) on a goroutine of its own
// released at one moment, and returns their status codes by i.
func atOnce(t *testing.T, n int, do func(i int) (*http.Response, error)) []int {
	codes := make([]int, n)
	var wg sync.WaitGroup
	startGun := make(chan struct{})
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-startGun
			resp, err := do(i)
			if err != nil {
				t.Error(err)
				return
			}
			resp.Body.Close()
			codes[i] = resp.StatusCode
		}()
	}
	close(startGun)
	wg.Wait()
	return codes
}

// TestParallelFailedLogins: 32 clients at once, over real sockets, with
// unknown emails (each costs an argon2id hash) from 32 addresses behind a
// trusted proxy, so only the hash limit stands between them and memory.
func TestParallelFailedLogins(t *testing.T) {
	const clients = 32
	uf := newUserFixture(t)
	trusted, _ := clientip.ParseTrusted([]string{"127.0.0.0/8", "::1"})
	uf.p.clientIP = clientip.New(trusted)
	mux := http.NewServeMux()
	uf.p.Mount(mux.Handle)
	srv := httptest.NewServer(mux)
	defer srv.Close()

	// Each client fetches its login form first, so the posts start together.
	type prepared struct {
		hc   *http.Client
		form url.Values
		ip   string
	}
	ps := make([]prepared, clients)
	for i := range ps {
		hc, csrf := loginFormClient(t, srv.URL)
		ps[i] = prepared{hc: hc, ip: fmt.Sprintf("203.0.113.%d", i+1),
			form: url.Values{"csrf": {csrf}, "email": {fmt.Sprintf("nobody%d@unknown.example", i)}, "password": {"guess"}}}
	}

	runtimeGC()
	base := rssBytes(t)
	peak := base
	stop := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		for {
			if r := rssBytes(t); r > peak {
				peak = r
			}
			select {
			case <-stop:
				return
			case <-time.After(2 * time.Millisecond):
			}
		}
	}()
	codes := atOnce(t, len(ps), func(i int) (*http.Response, error) {
		req, _ := http.NewRequest("POST", srv.URL+"/panel/login", strings.NewReader(ps[i].form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("X-Forwarded-For", ps[i].ip)
		return ps[i].hc.Do(req)
	})
	close(stop)
	<-sampled

	count := map[int]int{}
	for _, c := range codes {
		count[c]++
	}
	grew := peak - base
	t.Logf("%d parallel failed logins: %d × 401, %d × 429; RSS %d MiB before, peak %d MiB (+%d MiB)",
		clients, count[http.StatusUnauthorized], count[http.StatusTooManyRequests], base>>20, peak>>20, grew>>20)
	if count[http.StatusUnauthorized]+count[http.StatusTooManyRequests] != clients {
		t.Errorf("answers %v, want only 401 and 429", count)
	}
	if count[http.StatusUnauthorized] < 1 || count[http.StatusTooManyRequests] < 1 {
		t.Errorf("answers %v: want some hashed (401) and the rest refused (429) beyond max_password_hashes", count)
	}
	if grew >= 100<<20 {
		t.Errorf("RSS grew by %d MiB, want < 100", grew>>20)
	}
}

func runtimeGC() {
	runtime.GC()
	debug.FreeOSMemory()
}

// logoutBetween is a session store on which, for one session, another
// node's logout lands between this node's read of the row and its write
// back of the row (the minute's LastSeen refresh, or a password change
// re-stamping the session).
type logoutBetween struct {
	SessionStore
	armed bool
}

func (s *logoutBetween) GetSession(ctx context.Context, id string) ([]byte, error) {
	b, err := s.SessionStore.GetSession(ctx, id)
	if s.armed && b != nil {
		s.armed = false
		if derr := s.SessionStore.DeleteSession(ctx, id); derr != nil {
			return nil, derr
		}
	}
	return b, err
}

// TestLogoutNotUndoneByAConcurrentWrite: a stolen cookie kept busy on one
// node must not bring its session back from a logout on another: the
// write back of a session read before the logout finds no row, and the
// session stays ended.
func TestLogoutNotUndoneByAConcurrentWrite(t *testing.T) {
	for _, tc := range []struct {
		name string
		// write is the stolen cookie's request that writes its session
		// back after reading it.
		write func(uf *userFixture, stolen *client, csrf string, now *time.Time)
	}{
		{"last-seen refresh", func(_ *userFixture, stolen *client, _ string, now *time.Time) {
			*now = now.Add(touchEvery + time.Second)
			stolen.get("/panel/account")
		}},
		{"password change", func(_ *userFixture, stolen *client, csrf string, _ *time.Time) {
			stolen.do("POST", "/panel/account/password", url.Values{"csrf": {csrf},
				"current": {testPassword}, "new": {"another long passphrase"}, "confirm": {"another long passphrase"}})
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			uf := newUserFixture(t)
			now := time.Now()
			uf.p.now = func() time.Time { return now }
			store := &logoutBetween{SessionStore: uf.p.sessions}
			uf.p.sessions = store
			c := uf.client(t)
			if rec := c.login("ann@alpha.example", testPassword); rec.Code != http.StatusSeeOther {
				t.Fatalf("login: %d", rec.Code)
			}
			stolen := c.replay(uf.fixture)
			csrf := stolen.loggedIn("stolen cookie before logout")
			store.armed = true
			tc.write(uf, stolen, csrf, &now)
			if store.armed {
				t.Fatal("the request never read its session")
			}
			stolen.loggedOut("stolen cookie after a logout that raced its write")
		})
	}
}

// TestSessionsPerLoginAreBounded: a login past maxSessions of one user
// ends that user's oldest session, and only the oldest; other users'
// sessions stay. Logging in over and over grew the session table, and a
// stolen password's sessions, without end.
func TestSessionsPerLoginAreBounded(t *testing.T) {
	uf := newUserFixture(t)
	memory, err := New(DefaultConfig(), Options{Service: uf.svc, DataDir: uf.dir, SMTPHostname: "mx.test"})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		p    *Panel
	}{{"store", uf.p}, {"memory", memory}} {
		t.Run(tc.name, func(t *testing.T) {
			f := *uf.fixture
			f.p = tc.p
			login := func(email string) *client {
				c := f.client(t)
				if rec := c.login(email, testPassword); rec.Code != http.StatusSeeOther {
					t.Fatalf("login of %s: %d", email, rec.Code)
				}
				return c
			}
			bob := login("bob@beta.example")
			var ann []*client
			for range maxSessions + 1 {
				ann = append(ann, login("ann@alpha.example"))
			}
			ann[0].loggedOut("the oldest session past the bound")
			for i, c := range ann[1:] {
				c.loggedIn(fmt.Sprintf("session %d of %d", i+2, len(ann)))
			}
			bob.loggedIn("another user's session")
		})
	}
}

// countingSessions counts the sessions read.
type countingSessions struct {
	SessionStore
	reads atomic.Int32
}

func (c *countingSessions) GetSession(ctx context.Context, id string) ([]byte, error) {
	c.reads.Add(1)
	return c.SessionStore.GetSession(ctx, id)
}

// TestUnknownSessionsLimitedPerClient: any value of the panel's session
// cookie is looked up in the store, over the connections the mail path
// shares, and a client sending made-up ones had a read made per request.
// Past 50 sessions that do not exist an address is answered 429 with
// Retry-After and nothing is read; another address's session still
// opens its pages.
func TestUnknownSessionsLimitedPerClient(t *testing.T) {
	f := newFixture(t)
	_, pr := f.resellerR(t)
	counting := &countingSessions{SessionStore: f.p.sessions}
	f.p.sessions = counting
	mux := http.NewServeMux()
	f.p.Mount(mux.Handle)
	var last *httptest.ResponseRecorder
	for i := range 200 {
		req := httptest.NewRequest("GET", "/panel/", nil)
		req.RemoteAddr = "198.51.100.7:40000"
		req.AddCookie(&http.Cookie{Name: sessionCookie, Value: "made-up-" + strconv.Itoa(i)})
		last = httptest.NewRecorder()
		mux.ServeHTTP(last, req)
	}
	if n := counting.reads.Load(); n > 60 {
		t.Errorf("200 made-up sessions from one address: %d store reads, want at most 60", n)
	}
	if last.Code != http.StatusTooManyRequests || last.Header().Get("Retry-After") == "" {
		t.Errorf("200th made-up session: %d (Retry-After %q), want 429 with Retry-After", last.Code, last.Header().Get("Retry-After"))
	}
	if code, _ := f.get(t, pr, "/panel/brand"); code != http.StatusOK {
		t.Errorf("a session from another address: %d", code)
	}
}

// TestSessionKeyFileRefusesTypedKeys: whoever guesses the key forges any
// reseller's session cookie. A file long enough but typed ("xxxx…", a word
// repeated) was taken; it is now refused, naming the file, never the key.
func TestSessionKeyFileRefusesTypedKeys(t *testing.T) {
	for _, tt := range []struct{ name, key, want string }{
		{"generated", "7hD0kqjrD2tmCUmXO4AdJC/I0g9reiS9X1/fUDQGy4Y=", ""},
		{"short", "abc", "holds 3 characters"},
		{"one character", strings.Repeat("x", 48), "weak key: only 1 different characters"},
		{"a word repeated", strings.Repeat("panel-session:", 4), "weak key: repeats every 14 characters"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "panel.key")
			if err := os.WriteFile(path, []byte(tt.key+"\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			k, err := loadKey(path, t.TempDir())
			if tt.want == "" {
				if err != nil || string(k) != tt.key {
					t.Fatalf("loadKey = %q, %v; want the key", k, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), path) || strings.Contains(err.Error(), tt.key) {
				t.Fatalf("loadKey error %v: want it to name %s and hold %q, without the key", err, path, tt.want)
			}
		})
	}
}

// TestOwnSessionKeyIsMadeAnewWhenWeak: the node's own key in data_dir was
// used whatever it held once it had 64 bytes, so a file overwritten with
// zeros (or by hand with one character) signed sessions anyone could
// forge. It is made anew, as a missing or short one is; a sound one is
// kept across restarts.
func TestOwnSessionKeyIsMadeAnewWhenWeak(t *testing.T) {
	for _, tt := range []struct {
		name string
		held []byte
		kept bool
	}{
		{"zeros", make([]byte, 64), false},
		{"one character", []byte(strings.Repeat("a", 64)), false},
		{"cut short", []byte("0123456789abcdef"), false},
		{"generated", []byte("8d3f0c6b1e2a94c7b5f0e1d2c3b4a5968778695a4b3c2d1e0f9e8d7c6b5a4938"), true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, KeyFile)
			if err := os.WriteFile(path, tt.held, 0o600); err != nil {
				t.Fatal(err)
			}
			k, err := loadKey("", dir)
			if err != nil {
				t.Fatal(err)
			}
			if kept := bytes.Equal(k, tt.held); kept != tt.kept {
				t.Fatalf("loadKey kept the file's key: %v, want %v", kept, tt.kept)
			}
			if err := keycheck.TextProblem(string(k)); err != nil {
				t.Fatalf("loadKey gave a weak key: %v", err)
			}
			if onDisk, _ := os.ReadFile(path); !bytes.Equal(onDisk, k) {
				t.Fatalf("the key on disk is not the one in use")
			}
		})
	}
}

// TestOwnSessionKeyIsTheNodesOwnFile: the key file in data_dir was read
// and written wherever its name led. A symbolic link there was followed
// both ways: to a file of 64 characters elsewhere, which then signed the
// sessions, and, when what it found was weak, to overwrite that file with
// a new key; a link to /dev/zero (or a file of gigabytes) was read until
// the node ran out of memory. Only a regular file of a key's size is
// read; anything else is replaced by a new key (sessions signed with the
// old one end), and a link's target is left as it was.
func TestOwnSessionKeyIsTheNodesOwnFile(t *testing.T) {
	strong := "8d3f0c6b1e2a94c7b5f0e1d2c3b4a5968778695a4b3c2d1e0f9e8d7c6b5a4938"
	for _, tt := range []struct {
		name string
		// plant puts something at path; outside is a file beside the
		// data directory that it may point at.
		plant   func(t *testing.T, path, outside string)
		outside string // what outside holds
	}{
		{"link to a weak file elsewhere", func(t *testing.T, path, outside string) {
			fspermtest.Symlink(t, outside, path)
		}, "root:x:0:0:root:/root:/bin/sh\n"},
		{"link to a strong file elsewhere", func(t *testing.T, path, outside string) {
			fspermtest.Symlink(t, outside, path)
		}, strong},
		{"file larger than any key", func(t *testing.T, path, _ string) {
			if err := os.WriteFile(path, []byte(strings.Repeat(strong, 2000)), 0o600); err != nil {
				t.Fatal(err)
			}
		}, ""},
		// Nothing is at the link's end: it is replaced, not created.
		{"dangling link", func(t *testing.T, path, outside string) {
			os.Remove(outside)
			fspermtest.Symlink(t, outside, path)
		}, ""},
		// Opened, a FIFO with no writer blocked the start for good.
		{"FIFO", func(t *testing.T, path, _ string) {
			fspermtest.FIFO(t, path)
		}, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir, elsewhere := t.TempDir(), t.TempDir()
			path, outside := filepath.Join(dir, KeyFile), filepath.Join(elsewhere, "file")
			if err := os.WriteFile(outside, []byte(tt.outside), 0o644); err != nil {
				t.Fatal(err)
			}
			tt.plant(t, path, outside)
			var (
				k    []byte
				err  error
				done = make(chan struct{})
			)
			go func() { k, err = loadKey("", dir); close(done) }()
			select {
			case <-done:
			case <-time.After(5 * time.Second):
				t.Fatal("loadKey still blocked after 5 s")
			}
			if err != nil {
				t.Fatal(err)
			}
			if bytes.Contains([]byte(tt.outside), k) || len(k) > 128 {
				t.Fatalf("loadKey used what it found (%d bytes) as the key", len(k))
			}
			if b, _ := os.ReadFile(outside); string(b) != tt.outside {
				t.Fatalf("the file the link pointed at was overwritten: %q", b)
			}
			fi, err := os.Lstat(path)
			if err != nil || !fi.Mode().IsRegular() {
				t.Fatalf("key file %v, %v: want a regular file", fi, err)
			}
			if onDisk, _ := os.ReadFile(path); !bytes.Equal(onDisk, k) {
				t.Fatalf("the key on disk is not the one in use")
			}
		})
	}
	// A directory cannot be replaced by a file: the node refuses to start,
	// naming it, as it did.
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, KeyFile), 0o700); err != nil {
		t.Fatal(err)
	}
	if _, err := loadKey("", dir); err == nil || !strings.Contains(err.Error(), KeyFile) {
		t.Fatalf("loadKey over a directory: %v, want refused naming it", err)
	}
}

// TestTurnQueueIsBounded: an address has at most maxTurnQueue attempts
// holding or waiting for its turn; one more is refused at once (429),
// while another address's attempt goes ahead, and the queue drains.
func TestTurnQueueIsBounded(t *testing.T) {
	l := newLoginLimits(Config{LockoutFailures: 5, LockoutDuration: time.Hour, AddressFailures: 20, MaxPasswordHashes: 1})
	ctx := context.Background()
	end, err := l.turn(ctx, "192.0.2.1")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for range maxTurnQueue - 1 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if e, err := l.turn(ctx, "192.0.2.1"); err != nil {
				t.Error(err)
			} else {
				e()
			}
		}()
	}
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(time.Millisecond) {
		l.mu.Lock()
		users := l.turns["192.0.2.1"].users
		l.mu.Unlock()
		if users == maxTurnQueue {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d attempts queued, want %d", users, maxTurnQueue)
		}
	}
	if _, err := l.turn(ctx, "192.0.2.1"); !errors.Is(err, errTurnQueueFull) {
		t.Errorf("attempt past the queue: %v, want errTurnQueueFull", err)
	}
	other, err := l.turn(ctx, "198.51.100.1")
	if err != nil {
		t.Fatalf("another address waited on this one's queue: %v", err)
	}
	other()
	end()
	wg.Wait()
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.turns) != 0 {
		t.Errorf("%d addresses left in the turn table after every attempt ended", len(l.turns))
	}
}
