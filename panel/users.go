package panel

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/mxgrid/mxgrid/admin"
	"github.com/mxgrid/mxgrid/clientip"
	"github.com/mxgrid/mxgrid/tenant"
)

// --- a reseller's panel users

type usersData struct {
	Reseller tenant.Reseller
	Users    []userRow
	Form     userForm
	// Action is where the add form posts: the page's own path.
	Action string
}

type userRow struct {
	admin.User
	Self bool
	// Removable says whether to offer the remove button; the service
	// decides either way.
	Removable bool
}

type userForm struct{ Email string }

// usersReseller is the reseller whose users a request is about: the one in
// the path (another reseller's answers "Not found"), else the logged-in
// reseller's own. The operator has none of its own.
func (p *Panel) usersReseller(req *request) (tenant.Reseller, bool, error) {
	if req.r.PathValue("id") == "" {
		if req.sess.P.Operator {
			return tenant.Reseller{}, false, nil
		}
		return req.reseller, true, nil
	}
	id, err := pathID(req.r)
	if err != nil {
		return tenant.Reseller{}, false, err
	}
	res, err := p.svc.GetReseller(req.r.Context(), req.sess.P, id)
	if err != nil {
		return tenant.Reseller{}, false, fmt.Errorf("reseller %d: %w", id, err)
	}
	return res, true, nil
}

func usersPath(req *request, resellerID int64) string {
	if req.sess.P.Operator {
		return "/panel/resellers/" + strconv.FormatInt(resellerID, 10) + "/users"
	}
	return "/panel/users"
}

func (p *Panel) users(req *request) error {
	res, ok, err := p.usersReseller(req)
	if err != nil {
		return err
	}
	if !ok {
		// The operator's users are token holders; resellers' users are
		// reached from the Resellers page.
		return redirect(req, "/panel/resellers", "")
	}
	return p.renderUsers(req, http.StatusOK, res, userForm{}, "", nil)
}

func (p *Panel) renderUsers(req *request, code int, res tenant.Reseller, f userForm, msg string, fe tenant.FieldErrors) error {
	list, err := p.svc.ListUsers(req.r.Context(), req.sess.P, res.ID)
	if err != nil {
		return err
	}
	rows := make([]userRow, len(list))
	for i, u := range list {
		self := u.ID == req.sess.P.UserID
		rows[i] = userRow{User: u, Self: self, Removable: !self && (req.sess.P.Operator || len(list) > 1)}
	}
	nav := "users"
	if req.sess.P.Operator {
		nav = "resellers"
	}
	p.render(req, code, "users", page{Title: "Users", Nav: nav, Error: msg, Fields: fe,
		Data: usersData{Reseller: res, Users: rows, Form: f, Action: usersPath(req, res.ID)}})
	return nil
}

// Panel logins are one namespace over all resellers (an email logs in
// without naming its reseller), so adding a user whose address is a login
// anywhere answers "not available": neutral, naming no holder, but it
// says the address is someone's login. A reseller gets takenEmailBurst
// such answers, then one per takenEmailInterval (per node); past them
// every add answers 429 before the address is looked at, so a list of
// addresses cannot be sorted into logins and others. The operator, who
// sees every login, is not rationed.
const (
	takenEmailBurst    = 5
	takenEmailInterval = 10 * time.Minute
)

// addUser creates a panel login with an initial password that its owner
// is expected to change under Account.
func (p *Panel) addUser(req *request) error {
	res, ok, err := p.usersReseller(req)
	if err != nil {
		return err
	}
	if !ok {
		return badInput{"Add users to a reseller from its page under Resellers."}
	}
	f := userForm{Email: req.r.PostFormValue("email")}
	rationed := !req.sess.P.Operator
	if rationed && !p.takenEmails.Ready(res.ID, p.now()) {
		req.w.Header().Set("Retry-After", strconv.Itoa(int(takenEmailInterval/time.Second)))
		return p.renderUsers(req, http.StatusTooManyRequests, res, f,
			"Too many addresses that are already in use were tried. Try again later.", nil)
	}
	done, ok := p.limits.tryFormHash(req.sess.P.ResellerID)
	if !ok {
		return hashesBusy(req, func(msg string) error { return p.renderUsers(req, http.StatusTooManyRequests, res, f, msg, nil) })
	}
	defer done()
	if _, err := p.svc.CreateUser(req.r.Context(), req.sess.P, res.ID, f.Email, req.r.PostFormValue("password")); err != nil {
		if rationed && errors.Is(err, admin.ErrEmailNotAvailable) {
			p.takenEmails.Take(res.ID, p.now())
		}
		return p.formError(err, func(msg string, fe tenant.FieldErrors) error {
			return p.renderUsers(req, http.StatusBadRequest, res, f, msg, fe)
		})
	}
	return redirect(req, usersPath(req, res.ID), "user")
}

func (p *Panel) deleteUser(req *request) error {
	id, err := pathID(req.r)
	if err != nil {
		return err
	}
	ctx := req.r.Context()
	// Read first for the reseller to return to; another reseller's user
	// is "Not found" here already.
	u, err := p.svc.GetUser(ctx, req.sess.P, id)
	if err != nil {
		return fmt.Errorf("user %d: %w", id, err)
	}
	if err := p.svc.DeleteUser(ctx, req.sess.P, id); err != nil {
		return fmt.Errorf("removing user %d: %w", id, err)
	}
	p.log.Info("panel: user removed", "actor", req.sess.P.Actor, "user", u.Email)
	return redirect(req, usersPath(req, u.ResellerID), "unuser")
}

// hashesBusy answers a form that would compute an argon2id hash (~19 MiB)
// while the node's places for them (panel.max_password_hashes) are all
// taken to it (tryFormHash). Adding a user and changing a password share
// those places with the logins: a reseller posting the add-user form many
// times at once had the node compute every hash together.
func hashesBusy(req *request, again func(msg string) error) error {
	req.w.Header().Set("Retry-After", "1")
	return again("Too many password operations at once on this node. Try again in a moment.")
}

// --- the logged-in user's own account

type accountData struct {
	// Password is set for a password login; tokens have no password.
	Password bool
	Email    string
}

func (p *Panel) account(req *request) error {
	return p.renderAccount(req, http.StatusOK, "", nil)
}

func (p *Panel) renderAccount(req *request, code int, msg string, fe tenant.FieldErrors) error {
	var data accountData
	if req.sess.P.UserID != 0 {
		u, err := p.svc.GetUser(req.r.Context(), req.sess.P, req.sess.P.UserID)
		if err != nil {
			return fmt.Errorf("user %d: %w", req.sess.P.UserID, err)
		}
		data = accountData{Password: true, Email: u.Email}
	}
	p.render(req, code, "account", page{Title: "Account", Nav: "account", Error: msg, Fields: fe, Data: data})
	return nil
}

// changePassword checks the current password (with the login's lockout,
// so a borrowed session cannot guess it at leisure), sets the new one, and
// keeps this session with the new password's stamp: every other
// session of the user then fails its check and ends.
func (p *Panel) changePassword(req *request) error {
	if req.sess.P.UserID == 0 {
		return badInput{"You logged in with an API token: tokens have no password to change."}
	}
	r := req.r
	ip := p.clientIP.Of(r)
	// The login's limits, under an account key of its own: a borrowed
	// session cannot guess the current password at leisure.
	key := p.accountKey("password-change|" + strconv.FormatInt(req.sess.P.UserID, 10))
	addr := clientip.LimitKey(ip)
	end, err := p.limits.turn(r.Context(), addr)
	if errors.Is(err, errTurnQueueFull) {
		return p.renderAccount(req, http.StatusTooManyRequests, "Too many attempts at once. Try again in a moment.", nil)
	}
	if err != nil {
		return nil // the client went away
	}
	defer end()
	now := p.now()
	if until := p.limits.wait(key, addr, now); !until.IsZero() {
		return p.renderAccount(req, http.StatusTooManyRequests,
			fmt.Sprintf("Too many wrong current passwords. Try again after %s.", until.UTC().Format("15:04:05 UTC")), nil)
	}
	current, next := r.PostFormValue("current"), r.PostFormValue("new")
	if next != r.PostFormValue("confirm") {
		return p.renderAccount(req, http.StatusBadRequest, "Please correct the highlighted fields.",
			tenant.FieldErrors{"confirm": "the two new passwords differ"})
	}
	done, ok := p.limits.tryFormHash(req.sess.P.ResellerID)
	if !ok {
		return hashesBusy(req, func(msg string) error { return p.renderAccount(req, http.StatusTooManyRequests, msg, nil) })
	}
	defer done()
	u, err := p.svc.ChangePassword(r.Context(), req.sess.P, current, next)
	if err != nil {
		var fe tenant.FieldErrors
		if errors.As(err, &fe) && fe["current"] != "" {
			p.limits.fail(key, addr, now)
			p.log.Info("panel: wrong current password", "actor", req.sess.P.Actor, "client_ip", ip)
		}
		return p.formError(err, func(msg string, fe tenant.FieldErrors) error {
			return p.renderAccount(req, http.StatusBadRequest, msg, fe)
		})
	}
	p.limits.succeed(key, addr)
	sess := req.sess
	sess.PW = p.passwordStamp(u.Hash)
	kept, err := p.updateSession(r.Context(), sess)
	if err != nil {
		return fmt.Errorf("keeping this session: %w", err)
	}
	p.log.Info("panel: password changed", "actor", req.sess.P.Actor, "client_ip", ip)
	if !kept {
		// Logged out on another node while the password changed: the
		// session stays ended.
		http.SetCookie(req.w, p.cookie(r, sessionCookie, "", -1))
		return redirect(req, "/panel/login", "")
	}
	// A new cookie for this browser: the stamp ends the user's other
	// sessions, but a copy of this one's cookie (the very thief a
	// password change is meant to shut out) would otherwise live on.
	fresh := sess
	fresh.CSRF = randomToken()
	if err := p.createSession(req.w, r, fresh); err != nil {
		return fmt.Errorf("re-issuing this session: %w", err)
	}
	if err := p.endSession(r.Context(), sess); err != nil {
		return err
	}
	return redirect(req, "/panel/account", "password")
}
