package panel

import (
	"context"
	"crypto/tls"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/mxgrid/mxgrid/admin"
	"github.com/mxgrid/mxgrid/tenant"
)

// client is a browser stand-in: it keeps the cookies the panel sets.
type client struct {
	t       *testing.T
	mux     *http.ServeMux
	cookies map[string]*http.Cookie
	// remote is the connection's address (RemoteAddr).
	remote string
	header http.Header
	// https makes the requests arrive over TLS.
	https bool
}

func (f *fixture) client(t *testing.T) *client {
	mux := http.NewServeMux()
	f.p.Mount(mux.Handle)
	return &client{t: t, mux: mux, cookies: map[string]*http.Cookie{}, remote: "192.0.2.1:1234", header: http.Header{}}
}

// session is pr's session as a real login makes it (with its stamps), its
// CSRF token "tok".
func (f *fixture) session(t *testing.T, pr admin.Principal) session {
	t.Helper()
	sess, err := f.p.newSession(context.Background(), pr)
	if err != nil {
		t.Fatal(err)
	}
	sess.CSRF = "tok"
	return sess
}

// as gives the client a session of pr.
func (c *client) as(f *fixture, pr admin.Principal) *client {
	c.t.Helper()
	rec := httptest.NewRecorder()
	if err := f.p.createSession(rec, httptest.NewRequest("GET", "/", nil), f.session(c.t, pr)); err != nil {
		c.t.Fatal(err)
	}
	c.keep(rec.Result().Cookies())
	return c
}

func (c *client) keep(cs []*http.Cookie) {
	for _, ck := range cs {
		if ck.MaxAge < 0 {
			delete(c.cookies, ck.Name)
		} else {
			c.cookies[ck.Name] = ck
		}
	}
}

func (c *client) do(method, path string, form url.Values) *httptest.ResponseRecorder {
	c.t.Helper()
	var req *http.Request
	if form != nil {
		req = httptest.NewRequest(method, path, strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	} else {
		req = httptest.NewRequest(method, path, nil)
	}
	req.RemoteAddr = c.remote
	if c.https {
		req.TLS = &tls.ConnectionState{}
	}
	for k, v := range c.header {
		req.Header[k] = v
	}
	for _, ck := range c.cookies {
		req.AddCookie(ck)
	}
	rec := httptest.NewRecorder()
	c.mux.ServeHTTP(rec, req)
	c.keep(rec.Result().Cookies())
	return rec
}

func (c *client) get(path string) *httptest.ResponseRecorder { return c.do("GET", path, nil) }

// post sends the form with the session's CSRF token.
func (c *client) post(path string, kv ...string) *httptest.ResponseRecorder {
	form := url.Values{"csrf": {"tok"}}
	for i := 0; i+1 < len(kv); i += 2 {
		form.Set(kv[i], kv[i+1])
	}
	return c.do("POST", path, form)
}

var csrfRE = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// login goes through the login form as a browser does.
func (c *client) login(email, password string) *httptest.ResponseRecorder {
	c.t.Helper()
	m := csrfRE.FindStringSubmatch(c.get("/panel/login").Body.String())
	if m == nil {
		c.t.Fatal("login form without a CSRF token")
	}
	return c.do("POST", "/panel/login", url.Values{"csrf": {m[1]}, "email": {email}, "password": {password}})
}

const testPassword = "correct horse battery"

type userFixture struct {
	*fixture
	a, b        tenant.Reseller
	aUser       admin.Principal // a password login of reseller A
	bUser       admin.User
	aToken      admin.Principal // a token login of reseller A
	aUserRecord admin.User
}

func newUserFixture(t *testing.T) *userFixture {
	t.Helper()
	f := newFixture(t)
	ctx := context.Background()
	uf := &userFixture{fixture: f}
	var err error
	if uf.a, err = f.svc.CreateReseller(ctx, f.op, tenant.Reseller{Name: "Alpha", Slug: "alpha"}); err != nil {
		t.Fatal(err)
	}
	if uf.b, err = f.svc.CreateReseller(ctx, f.op, tenant.Reseller{Name: "Beta", Slug: "beta"}); err != nil {
		t.Fatal(err)
	}
	if uf.aUserRecord, err = f.svc.CreateUser(ctx, f.op, uf.a.ID, "ann@alpha.example", testPassword); err != nil {
		t.Fatal(err)
	}
	if uf.bUser, err = f.svc.CreateUser(ctx, f.op, uf.b.ID, "bob@beta.example", testPassword); err != nil {
		t.Fatal(err)
	}
	if uf.aUser, err = f.svc.AuthenticatePassword(ctx, "ann@alpha.example", testPassword); err != nil || uf.aUser.UserID != uf.aUserRecord.ID {
		t.Fatalf("AuthenticatePassword = %+v, %v", uf.aUser, err)
	}
	uf.aToken = admin.Principal{ResellerID: uf.a.ID, Actor: "token 1 (alpha)"}
	return uf
}

func (uf *userFixture) emails(t *testing.T, resellerID int64) []string {
	t.Helper()
	l, err := uf.svc.ListUsers(context.Background(), uf.op, resellerID)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, u := range l {
		out = append(out, u.Email)
	}
	return out
}

// A reseller sees, adds and removes only its own users; another
// reseller's answer "Not found" and stay as they were.
func TestUsersAuthorization(t *testing.T) {
	uf := newUserFixture(t)
	a := uf.client(t).as(uf.fixture, uf.aUser)
	bUsers := "/panel/resellers/" + itoa(uf.b.ID) + "/users"

	rec := a.get("/panel/users")
	if body := rec.Body.String(); rec.Code != 200 || !strings.Contains(body, "ann@alpha.example") || strings.Contains(body, "bob@beta.example") {
		t.Fatalf("own users page: %d\n%s", rec.Code, body)
	}
	for _, tc := range []struct {
		name, method, path string
	}{
		{"list B's users", "GET", bUsers},
		{"add to B", "POST", bUsers},
		{"remove B's user", "POST", "/panel/users/" + itoa(uf.bUser.ID) + "/delete"},
	} {
		var rec *httptest.ResponseRecorder
		if tc.method == "GET" {
			rec = a.get(tc.path)
		} else {
			rec = a.post(tc.path, "email", "mallory@alpha.example", "password", testPassword)
		}
		if body := rec.Body.String(); rec.Code != http.StatusNotFound || strings.Contains(body, "bob@beta.example") || strings.Contains(body, "Beta") {
			t.Errorf("%s: %d, want 404 revealing nothing\n%s", tc.name, rec.Code, body)
		}
	}
	if got := uf.emails(t, uf.b.ID); len(got) != 1 || got[0] != "bob@beta.example" {
		t.Errorf("B's users after A's attempts: %v", got)
	}
	if got := uf.emails(t, uf.a.ID); len(got) != 1 {
		t.Errorf("A's users after posting to B's page: %v", got)
	}

	// The operator reaches B's users from B's row.
	op := uf.client(t).as(uf.fixture, uf.op)
	if body := op.get("/panel/resellers").Body.String(); !strings.Contains(body, `href="`+bUsers+`"`) {
		t.Error("resellers page has no link to B's users")
	}
	if rec := op.get(bUsers); rec.Code != 200 || !strings.Contains(rec.Body.String(), "bob@beta.example") {
		t.Errorf("operator on B's users: %d", rec.Code)
	}
	if rec := op.get("/panel/users"); rec.Code != http.StatusSeeOther || rec.Header().Get("Location") != "/panel/resellers" {
		t.Errorf("operator at /panel/users: %d %s", rec.Code, rec.Header().Get("Location"))
	}
}

// Adding and removing: not yourself, not the last user unless operator.
func TestUsersAddRemove(t *testing.T) {
	uf := newUserFixture(t)
	a := uf.client(t).as(uf.fixture, uf.aUser)

	rec := a.post("/panel/users", "email", "Carl@Alpha.example", "password", "another long passphrase")
	if rec.Code != http.StatusSeeOther || rec.Header().Get("Location") != "/panel/users?ok=user" {
		t.Fatalf("add: %d %s\n%s", rec.Code, rec.Header().Get("Location"), rec.Body.String())
	}
	if got := uf.emails(t, uf.a.ID); len(got) != 2 || got[1] != "carl@alpha.example" {
		t.Fatalf("users after add: %v", got)
	}
	// The new user logs in with the initial password.
	if rec := uf.client(t).login("carl@alpha.example", "another long passphrase"); rec.Code != http.StatusSeeOther {
		t.Fatalf("new user's login: %d", rec.Code)
	}

	rec = a.post("/panel/users/" + itoa(uf.aUser.UserID) + "/delete")
	if rec.Code != http.StatusConflict || !strings.Contains(rec.Body.String(), "cannot remove your own login") {
		t.Errorf("removing yourself: %d\n%s", rec.Code, rec.Body.String())
	}
	carl, _ := uf.svc.ListUsers(context.Background(), uf.op, uf.a.ID)
	carlID := carl[1].ID
	carlSession := uf.client(t).as(uf.fixture, admin.Principal{ResellerID: uf.a.ID, UserID: carlID, Actor: "carl"})
	if rec := carlSession.get("/panel/customers"); rec.Code != 200 {
		t.Fatalf("carl's session before removal: %d", rec.Code)
	}
	rec = a.post("/panel/users/" + itoa(carlID) + "/delete")
	if rec.Code != http.StatusSeeOther {
		t.Fatalf("remove: %d\n%s", rec.Code, rec.Body.String())
	}
	// A removed user's session ends at its next request.
	if rec := carlSession.get("/panel/customers"); rec.Code != http.StatusSeeOther || rec.Header().Get("Location") != "/panel/login" {
		t.Errorf("removed user's session: %d %s", rec.Code, rec.Header().Get("Location"))
	}

	// Ann is now A's last user: a token session of A cannot remove her,
	// and the page offers no button; the operator can.
	tok := uf.client(t).as(uf.fixture, uf.aToken)
	if body := tok.get("/panel/users").Body.String(); strings.Contains(body, "/delete") || !strings.Contains(body, "last user") {
		t.Errorf("last user offered for removal:\n%s", body)
	}
	rec = tok.post("/panel/users/" + itoa(uf.aUser.UserID) + "/delete")
	if rec.Code != http.StatusConflict || !strings.Contains(rec.Body.String(), "last user can be removed only by the operator") {
		t.Errorf("removing the last user as a reseller: %d\n%s", rec.Code, rec.Body.String())
	}
	op := uf.client(t).as(uf.fixture, uf.op)
	rec = op.post("/panel/users/" + itoa(uf.aUser.UserID) + "/delete")
	if rec.Code != http.StatusSeeOther || rec.Header().Get("Location") != "/panel/resellers/"+itoa(uf.a.ID)+"/users?ok=unuser" {
		t.Errorf("operator removing the last user: %d %s", rec.Code, rec.Header().Get("Location"))
	}
	if got := uf.emails(t, uf.a.ID); len(got) != 0 {
		t.Errorf("users left: %v", got)
	}
}

// Bad passwords and addresses are refused with the reason, on the form.
func TestAddUserRefusals(t *testing.T) {
	uf := newUserFixture(t)
	a := uf.client(t).as(uf.fixture, uf.aUser)
	for _, tc := range []struct {
		name, email, password string
		code                  int
		want                  string
	}{
		{"short", "dan@alpha.example", "elevenchars", 400, "at least 12 characters"},
		{"short in runes", "dan@alpha.example", "ééééééééééé", 400, "at least 12 characters"},
		{"the email", "dan@alpha.example", "DAN@alpha.example", 400, "must not be the email address"},
		{"too long", "dan@alpha.example", strings.Repeat("x", admin.MaxPasswordLen+1), 400, "at most 256 bytes"},
		{"bad email", "not an address", testPassword, 400, "is not an email address"},
		{"taken", "bob@beta.example", testPassword, 400, "this email address is not available"},
		{"taken, spelt with fullwidth letters", "BOB@ｂｅｔａ.example", testPassword, 400, "this email address is not available"},
		{"fullwidth local part", "ｂob@beta.example", testPassword, 400, "only ASCII letters"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := a.post("/panel/users", "email", tc.email, "password", tc.password)
			if body := rec.Body.String(); rec.Code != tc.code || !strings.Contains(body, tc.want) || !strings.Contains(body, `id="new-user"`) {
				t.Errorf("%d, want %d with %q on the form\n%s", rec.Code, tc.code, tc.want, body)
			}
		})
	}
	if got := uf.emails(t, uf.a.ID); len(got) != 1 {
		t.Errorf("refused adds created users: %v", got)
	}
}

// A session opened with a token that expires adds no user: the user's
// password would let whoever held the token in after it expired. The page
// says why, not that only the operator may.
func TestExpiringTokenSessionAddsNoUser(t *testing.T) {
	uf := newUserFixture(t)
	ctx := context.Background()
	tk, err := uf.svc.CreateToken(ctx, uf.op, admin.Token{Name: "contractor", ResellerID: uf.a.ID, Expires: time.Now().Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	pr, err := uf.svc.Authenticate(ctx, tk.Secret)
	if err != nil {
		t.Fatal(err)
	}
	rec := uf.client(t).as(uf.fixture, pr).post("/panel/users", "email", "stays@alpha.example", "password", testPassword)
	if body := rec.Body.String(); rec.Code != http.StatusForbidden || !strings.Contains(body, "A login with a token that expires adds no panel user") {
		t.Errorf("add: %d, want 403 saying why\n%s", rec.Code, body)
	}
	if got := uf.emails(t, uf.a.ID); len(got) != 1 {
		t.Errorf("users of A: %v, want ann's alone", got)
	}
}

// Every form of the two pages needs the session's CSRF token.
func TestUsersCSRF(t *testing.T) {
	uf := newUserFixture(t)
	a := uf.client(t).as(uf.fixture, uf.aUser)
	for _, tc := range []struct{ path string }{
		{"/panel/users"},
		{"/panel/resellers/" + itoa(uf.a.ID) + "/users"},
		{"/panel/users/" + itoa(uf.aUser.UserID) + "/delete"},
		{"/panel/account/password"},
	} {
		for _, tok := range []string{"", "forged"} {
			form := url.Values{"email": {"eve@alpha.example"}, "password": {testPassword},
				"current": {testPassword}, "new": {"a brand new passphrase"}, "confirm": {"a brand new passphrase"}}
			if tok != "" {
				form.Set("csrf", tok)
			}
			if rec := a.do("POST", tc.path, form); rec.Code != http.StatusForbidden {
				t.Errorf("%s with csrf %q: %d, want 403", tc.path, tok, rec.Code)
			}
		}
	}
	if got := uf.emails(t, uf.a.ID); len(got) != 1 {
		t.Errorf("forged forms changed users: %v", got)
	}
	if rec := uf.client(t).login("ann@alpha.example", testPassword); rec.Code != http.StatusSeeOther {
		t.Errorf("the password changed without a CSRF token: login %d", rec.Code)
	}
}

// Changing the password: the new one logs in, the old one does not, other
// sessions end and this one goes on.
func TestChangePassword(t *testing.T) {
	uf := newUserFixture(t)
	const next = "a brand new passphrase"
	this, other := uf.client(t), uf.client(t)
	for _, c := range []*client{this, other} {
		if rec := c.login("ann@alpha.example", testPassword); rec.Code != http.StatusSeeOther || rec.Header().Get("Location") != "/panel/" {
			t.Fatalf("login: %d %s", rec.Code, rec.Header().Get("Location"))
		}
	}
	if body := this.get("/panel/account").Body.String(); !strings.Contains(body, `id="change-password"`) || !strings.Contains(body, "ann@alpha.example") {
		t.Fatalf("account page without the form:\n%s", body)
	}
	csrf := csrfRE.FindStringSubmatch(this.get("/panel/account").Body.String())[1]
	change := func(current, nw, confirm string) *httptest.ResponseRecorder {
		return this.do("POST", "/panel/account/password", url.Values{"csrf": {csrf}, "current": {current}, "new": {nw}, "confirm": {confirm}})
	}
	for _, tc := range []struct {
		name, current, new, confirm string
		want                        string
	}{
		{"wrong current", "not my password", next, next, "does not match your current password"},
		{"confirmation differs", testPassword, next, next + "!", "the two new passwords differ"},
		{"short", testPassword, "short", "short", "at least 12 characters"},
		{"the email", testPassword, "ann@alpha.example", "ann@alpha.example", "must not be the email address"},
		{"unchanged", testPassword, testPassword, testPassword, "must differ from the current password"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := change(tc.current, tc.new, tc.confirm)
			if rec.Code != http.StatusBadRequest || !strings.Contains(rec.Body.String(), tc.want) {
				t.Errorf("%d, want 400 with %q\n%s", rec.Code, tc.want, rec.Body.String())
			}
		})
	}
	// A copy of this very session's cookie, taken by whoever the user
	// changes the password to shut out.
	stolen := this.replay(uf.fixture)
	stolen.loggedIn("stolen copy before the change")
	rec := change(testPassword, next, next)
	if rec.Code != http.StatusSeeOther || rec.Header().Get("Location") != "/panel/account?ok=password" {
		t.Fatalf("change: %d %s\n%s", rec.Code, rec.Header().Get("Location"), rec.Body.String())
	}
	// This session was re-issued; the other one has ended.
	if rec := this.get("/panel/account?ok=password"); rec.Code != 200 || !strings.Contains(rec.Body.String(), "Password changed") {
		t.Errorf("this session after the change: %d", rec.Code)
	}
	if rec := other.get("/panel/customers"); rec.Code != http.StatusSeeOther || rec.Header().Get("Location") != "/panel/login" {
		t.Errorf("other session after the change: %d %s", rec.Code, rec.Header().Get("Location"))
	}
	stolen.loggedOut("stolen copy of the changing session's cookie after the change")
	if rec := uf.client(t).login("ann@alpha.example", testPassword); rec.Code != http.StatusUnauthorized {
		t.Errorf("old password: %d, want 401", rec.Code)
	}
	if rec := uf.client(t).login("ann@alpha.example", next); rec.Code != http.StatusSeeOther {
		t.Errorf("new password: %d, want 303", rec.Code)
	}
}

// Repeated wrong current passwords lock the form like the login: the free
// failures, then one more starts the backoff.
func TestChangePasswordLockout(t *testing.T) {
	uf := newUserFixture(t)
	a := uf.client(t).as(uf.fixture, uf.aUser)
	frozen := time.Now()
	uf.p.now = func() time.Time { return frozen }
	var rec *httptest.ResponseRecorder
	for range uf.p.cfg.LockoutFailures + 2 {
		rec = a.post("/panel/account/password", "current", "wrong guess", "new", "a brand new passphrase", "confirm", "a brand new passphrase")
	}
	if rec.Code != http.StatusTooManyRequests {
		t.Errorf("after %d wrong guesses: %d, want 429", uf.p.cfg.LockoutFailures+1, rec.Code)
	}
	if rec := a.post("/panel/account/password", "current", testPassword, "new", "a brand new passphrase", "confirm", "a brand new passphrase"); rec.Code != http.StatusTooManyRequests {
		t.Errorf("right password while locked: %d, want 429", rec.Code)
	}
}

// Token sessions have no password: a note, and a refusal if posted anyway.
func TestAccountForTokens(t *testing.T) {
	uf := newUserFixture(t)
	for _, pr := range []admin.Principal{uf.aToken, uf.op} {
		c := uf.client(t).as(uf.fixture, pr)
		rec := c.get("/panel/account")
		if body := rec.Body.String(); rec.Code != 200 || !strings.Contains(body, "tokens have no password") || strings.Contains(body, `id="change-password"`) {
			t.Errorf("%s: account page %d\n%s", pr.Actor, rec.Code, body)
		}
		rec = c.post("/panel/account/password", "current", testPassword, "new", "a brand new passphrase", "confirm", "a brand new passphrase")
		if rec.Code != http.StatusBadRequest || !strings.Contains(rec.Body.String(), "tokens have no password") {
			t.Errorf("%s: change posted: %d", pr.Actor, rec.Code)
		}
	}
}

// What a user or reseller typed comes back escaped on the users pages.
func TestUsersPagesEscaped(t *testing.T) {
	f := newFixture(t)
	const evil = `<script>alert("x")</script>`
	r, err := f.svc.CreateReseller(context.Background(), f.op, tenant.Reseller{Name: evil, Slug: "evil"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.CreateUser(context.Background(), f.op, r.ID, "o'brien&co@evil.example", testPassword); err != nil {
		t.Fatal(err)
	}
	op := f.client(t).as(f, f.op)
	path := "/panel/resellers/" + itoa(r.ID) + "/users"
	rec := op.get(path)
	body := rec.Body.String()
	if rec.Code != 200 || strings.Contains(body, "<script>alert") || !strings.Contains(body, "&lt;script&gt;") || !strings.Contains(body, "o&#39;brien&amp;co@evil.example") {
		t.Errorf("users page: %d\n%s", rec.Code, body)
	}
	rec = op.post(path, "email", evil+"@evil.example", "password", testPassword)
	if body := rec.Body.String(); rec.Code != 400 || strings.Contains(body, "<script>alert") {
		t.Errorf("refused email re-rendered: %d\n%s", rec.Code, body)
	}
}

// Adding a user and changing a password hash like a login (argon2id, ~19
// MiB each) and share the login's places (panel.max_password_hashes): a
// reseller posting the add-user form many times at once cost the node one
// hash each, without bound. With every place taken, both forms answer 429
// and change nothing.
func TestPasswordFormsShareTheHashPlaces(t *testing.T) {
	uf := newUserFixture(t)
	a := uf.client(t).as(uf.fixture, uf.aUser)
	const next = "a brand new passphrase"
	for uf.p.limits.tryHash() {
	}
	for _, tc := range []struct {
		name, path string
		form       []string
	}{
		{"add user", "/panel/users", []string{"email", "dan@alpha.example", "password", testPassword}},
		{"change password", "/panel/account/password", []string{"current", testPassword, "new", next, "confirm", next}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := a.post(tc.path, tc.form...)
			if rec.Code != http.StatusTooManyRequests || rec.Header().Get("Retry-After") == "" {
				t.Errorf("with every hash place taken: %d (Retry-After %q), want 429 with Retry-After\n%s",
					rec.Code, rec.Header().Get("Retry-After"), rec.Body.String())
			}
		})
	}
	for range uf.p.cfg.MaxPasswordHashes {
		uf.p.limits.doneHash()
	}
	if got := uf.emails(t, uf.a.ID); len(got) != 1 {
		t.Errorf("users after refused adds: %v", got)
	}
	if rec := uf.client(t).login("ann@alpha.example", testPassword); rec.Code != http.StatusSeeOther {
		t.Errorf("the password changed while refused: login %d", rec.Code)
	}
	// With a place free, both go through.
	if rec := a.post("/panel/users", "email", "dan@alpha.example", "password", testPassword); rec.Code != http.StatusSeeOther {
		t.Errorf("add with a free place: %d", rec.Code)
	}
	if rec := a.post("/panel/account/password", "current", testPassword, "new", next, "confirm", next); rec.Code != http.StatusSeeOther {
		t.Errorf("change with a free place: %d\n%s", rec.Code, rec.Body.String())
	}
}

// A reseller's password forms hash one at a time and never take the
// node's last hash place, which is the logins': sharing every place with
// them, a reseller posting the add-user form in a loop (at its cap of
// users each add still hashes before it is refused) held them all, and
// every other tenant's login answered 429.
func TestPasswordFormsLeaveLoginsAPlace(t *testing.T) {
	uf := newUserFixture(t)
	a := uf.client(t).as(uf.fixture, uf.aUser)
	add := func(c *client, email string) int {
		return c.post("/panel/users", "email", email, "password", testPassword).Code
	}
	// One of the default two places held, by a login or a form.
	if !uf.p.limits.tryHash() {
		t.Fatal("no hash place free")
	}
	if code := add(a, "dan@alpha.example"); code != http.StatusTooManyRequests {
		t.Errorf("A adds a user with the last place free: %d, want 429", code)
	}
	if rec := uf.client(t).login("bob@beta.example", testPassword); rec.Code != http.StatusSeeOther {
		t.Errorf("B logs in with the last place free: %d, want 303", rec.Code)
	}
	uf.p.limits.doneHash()

	// With more places, each reseller's forms hold one.
	cfg := DefaultConfig()
	cfg.MaxPasswordHashes = 4
	uf.p.limits = newLoginLimits(cfg)
	done, ok := uf.p.limits.tryFormHash(uf.a.ID)
	if !ok {
		t.Fatal("no place for A's form")
	}
	if code := add(a, "dan@alpha.example"); code != http.StatusTooManyRequests {
		t.Errorf("A adds a user while another of its forms hashes: %d, want 429", code)
	}
	bUser, err := uf.svc.AuthenticatePassword(context.Background(), "bob@beta.example", testPassword)
	if err != nil {
		t.Fatal(err)
	}
	if code := add(uf.client(t).as(uf.fixture, bUser), "eve@beta.example"); code != http.StatusSeeOther {
		t.Errorf("B adds a user while A's form hashes: %d, want 303", code)
	}
	done()
	if code := add(a, "dan@alpha.example"); code != http.StatusSeeOther {
		t.Errorf("A adds a user once its form is done: %d, want 303", code)
	}
	if got := uf.emails(t, uf.a.ID); len(got) != 2 {
		t.Errorf("A's users: %v", got)
	}
}

// Panel logins are one namespace across resellers, so "this email address
// is not available" tells a reseller that someone somewhere logs in with
// it. The answer names no holder, and a reseller gets only a few of them:
// past takenEmailBurst, adding any user (taken address or free) answers
// 429 until the bucket refills, so a list of addresses cannot be sorted
// into users and others. The operator is not rationed.
func TestTakenEmailsAreRationed(t *testing.T) {
	uf := newUserFixture(t)
	now := time.Now()
	uf.p.now = func() time.Time { return now }
	a := uf.client(t).as(uf.fixture, uf.aUser)
	add := func(c *client, path, email string) *httptest.ResponseRecorder {
		return c.post(path, "email", email, "password", testPassword)
	}
	for i := range takenEmailBurst {
		if rec := add(a, "/panel/users", "bob@beta.example"); rec.Code != http.StatusBadRequest || !strings.Contains(rec.Body.String(), "not available") {
			t.Fatalf("taken address %d of the burst: %d, want 400 not available", i+1, rec.Code)
		}
	}
	for _, email := range []string{"bob@beta.example", "free@alpha.example"} {
		rec := add(a, "/panel/users", email)
		if body := rec.Body.String(); rec.Code != http.StatusTooManyRequests || rec.Header().Get("Retry-After") == "" || strings.Contains(body, "not available") {
			t.Errorf("%s past the burst: %d (Retry-After %q), want 429 saying nothing of the address", email, rec.Code, rec.Header().Get("Retry-After"))
		}
	}
	if got := uf.emails(t, uf.a.ID); len(got) != 1 {
		t.Errorf("A's users while rationed: %v", got)
	}
	// The operator adding to A is not rationed; another reseller has its own bucket.
	op := uf.client(t).as(uf.fixture, uf.op)
	if rec := add(op, "/panel/resellers/"+itoa(uf.a.ID)+"/users", "bob@beta.example"); rec.Code != http.StatusBadRequest {
		t.Errorf("operator: %d, want 400", rec.Code)
	}
	// One interval later, one more answer.
	now = now.Add(takenEmailInterval)
	if rec := add(a, "/panel/users", "free@alpha.example"); rec.Code != http.StatusSeeOther {
		t.Errorf("after the interval: %d, want 303", rec.Code)
	}
}

// The new-reseller form checks its first user before making the reseller:
// a weak password or a malformed email used to leave a reseller without a
// user behind ("The reseller was created, but not its user"), and each
// retry of the form made another. A taken email, which only the store
// knows, still can.
func TestNewResellerChecksItsUserFirst(t *testing.T) {
	uf := newUserFixture(t)
	op := uf.client(t).as(uf.fixture, uf.op)
	for _, tc := range []struct {
		name, email, password string
		want                  string
	}{
		{"weak password", "gina@gamma.example", "short", "at least 12 characters"},
		{"bad email", "not an address", testPassword, "is not an email address"},
		{"look-alike local part", "ｇina@gamma.example", testPassword, "only ASCII letters"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := op.post("/panel/resellers", "name", "Gamma "+tc.name, "slug", "", "email", tc.email, "password", tc.password)
			if body := rec.Body.String(); rec.Code != http.StatusBadRequest || !strings.Contains(body, tc.want) || strings.Contains(body, "was created") {
				t.Errorf("%d, want 400 with %q and nothing created\n%s", rec.Code, tc.want, body)
			}
		})
	}
	list, err := uf.svc.ListResellers(context.Background(), uf.op, admin.Filter{Limit: admin.MaxPageSize})
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 2 {
		t.Errorf("resellers after refused forms: %+v, want Alpha and Beta only", list)
	}
	rec := op.post("/panel/resellers", "name", "Gamma", "email", "gina@gamma.example", "password", testPassword)
	if rec.Code != http.StatusSeeOther {
		t.Fatalf("a good form: %d\n%s", rec.Code, rec.Body.String())
	}
}
