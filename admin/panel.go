package admin

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/mxgrid/mxgrid/mailaddr"
	"github.com/mxgrid/mxgrid/tenant"
)

// What the reseller panel needs beyond the API's objects: white label,
// suspension, panel users, public map scopes and per-domain activity. The
// same Principal rules apply: a reseller sees and changes only its own.

// User is a panel login of a reseller. Only the argon2id hash of the
// password is stored.
type User struct {
	ID         int64     `json:"id"`
	ResellerID int64     `json:"reseller_id"`
	Email      string    `json:"email"`
	Hash       string    `json:"-"`
	Created    time.Time `json:"created"`
}

// Logo is a reseller's uploaded logo.
type Logo struct {
	ContentType string
	Data        []byte
	Updated     time.Time
}

// Counts are one domain's SMTP transaction outcomes over a period.
type Counts struct {
	Accepted int64 `json:"accepted"`
	Tagged   int64 `json:"tagged"`
	// Rejected counts spam and policy refusals (5xx at DATA).
	Rejected int64 `json:"rejected"`
	Virus    int64 `json:"virus"`
	Tempfail int64 `json:"tempfail"`
}

// Refused is one refused message as the panel shows it: never its body.
type Refused struct {
	Time     time.Time `json:"time"`
	ClientIP string    `json:"client_ip"`
	Verdict  string    `json:"verdict"`
	Score    float64   `json:"score"`
	Symbols  []string  `json:"symbols"`
	Country  string    `json:"country,omitempty"`
}

// Activity is a domain's counts and its most recent refusals.
type Activity struct {
	Day     Counts    `json:"day"`
	Month   Counts    `json:"month"`
	Refused []Refused `json:"refused"`
}

// PanelStore persists the panel's objects; store.Tenants implements it.
// Errors follow the Store contract.
type PanelStore interface {
	ResellerBySlug(ctx context.Context, slug string) (tenant.Reseller, error)
	CustomerByMapKey(ctx context.Context, key string) (tenant.Customer, error)
	PutLogo(ctx context.Context, resellerID int64, l Logo, a AuditEntry) error
	GetLogo(ctx context.Context, resellerID int64) (Logo, error)
	HasLogo(ctx context.Context, resellerID int64) (bool, error)
	CreateUser(ctx context.Context, u *User, a AuditEntry) error
	GetUser(ctx context.Context, id int64) (User, error)
	UserByEmail(ctx context.Context, email string) (User, error)
	// UserEmailsWithLocal lists the stored login emails whose part
	// before the first "@" is local, exactly.
	UserEmailsWithLocal(ctx context.Context, local string) ([]string, error)
	ListUsers(ctx context.Context, resellerID int64) ([]User, error)
	// SetUserPassword replaces a user's password hash.
	SetUserPassword(ctx context.Context, id int64, hash string, a AuditEntry) error
	// DeleteUser removes a user. With keepLast it refuses, with ErrLastUser
	// and in the same transaction, to remove the reseller's last user, so
	// two concurrent removals cannot both pass a count taken before either.
	DeleteUser(ctx context.Context, id int64, keepLast bool, a AuditEntry) error
}

// ErrLastUser refuses a reseller's removal of its own last panel user,
// which would lock it out of the panel until the operator made another.
var ErrLastUser = fmt.Errorf("%w: a reseller's last user can be removed only by the operator", tenant.ErrConflict)

// ActivityStore reads what happened to a domain's mail; store.Store
// implements it.
type ActivityStore interface {
	DomainCounts(ctx context.Context, domainID int64, since time.Time) (Counts, error)
	RefusedEvents(ctx context.Context, domainID int64, limit int) ([]Refused, error)
}

// ErrPanelUnconfigured is returned by panel operations on a service built
// without a PanelStore or ActivityStore.
var ErrPanelUnconfigured = errors.New("panel storage not configured")

// Logo limits: raster formats only (SVG can carry script), small enough to
// serve from the database on every page.
const MaxLogoBytes = 256 << 10

var logoTypes = map[string]bool{"image/png": true, "image/jpeg": true, "image/gif": true, "image/webp": true}

// RefusedShown is how many recent refusals a domain's page lists.
const RefusedShown = 100

var (
	slugRE   = regexp.MustCompile(`^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$`)
	accentRE = regexp.MustCompile(`^#[0-9a-f]{6}$`)
	mapKeyRE = regexp.MustCompile(`^[0-9a-f]{32}$`)
)

// Slugify derives a slug from a name: lower-case ASCII letters and digits,
// runs of anything else become one '-'.
func Slugify(name string) string {
	var b strings.Builder
	dash := false
	for _, r := range strings.ToLower(name) {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
			if dash && b.Len() > 0 {
				b.WriteByte('-')
			}
			dash = false
			b.WriteRune(r)
			if b.Len() >= 60 {
				break
			}
			continue
		}
		dash = true
	}
	if b.Len() == 0 {
		return "reseller"
	}
	return b.String()
}

// newMapKey is 128 random bits: a customer's map URL is its only secret.
func newMapKey() (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("map key: random: %w", err)
	}
	return hex.EncodeToString(b[:]), nil
}

// validateBrand checks and normalises the white-label fields.
func validateBrand(fe tenant.FieldErrors, r *tenant.Reseller) {
	r.Accent = strings.ToLower(strings.TrimSpace(r.Accent))
	if r.Accent != "" && !accentRE.MatchString(r.Accent) {
		fe["accent"] = "must be a colour like #1a7f64"
	}
	r.DisplayName = strings.TrimSpace(r.DisplayName)
	if len(r.DisplayName) > maxNameLen {
		fe["display_name"] = fmt.Sprintf("at most %d bytes", maxNameLen)
	} else if !isText(r.DisplayName) {
		fe["display_name"] = notText
	}
	if !slugRE.MatchString(r.Slug) {
		fe["slug"] = "1 to 63 lower-case letters, digits and inner '-'"
	}
}

func (s *Service) panelStore() (PanelStore, error) {
	if s.panel == nil {
		return nil, ErrPanelUnconfigured
	}
	return s.panel, nil
}

// UpdateBrand sets a reseller's display name and accent colour. Unlike the
// reseller's name and policy, its white label is the reseller's own to edit.
func (s *Service) UpdateBrand(ctx context.Context, p Principal, id int64, displayName, accent string) (tenant.Reseller, error) {
	if err := p.owns(id); err != nil {
		return tenant.Reseller{}, err
	}
	// Written only on the version read: a brand saved while the operator
	// lowers the quota must not put the old quota back.
	return untilFresh(func() (tenant.Reseller, error) {
		r, err := s.store.GetReseller(ctx, id)
		if err != nil {
			return tenant.Reseller{}, err
		}
		r.DisplayName, r.Accent = displayName, accent
		if err := validateReseller(&r); err != nil {
			return tenant.Reseller{}, err
		}
		v, err := s.store.UpdateReseller(ctx, &r, s.audit(p, id, "update", object("reseller", id, r.Name)+" brand",
			map[string]string{"display_name": r.DisplayName, "accent": r.Accent}))
		return r, s.committed(v, err)
	})
}

// SetLogo stores a reseller's logo after checking what the bytes are, not
// what the upload claimed.
func (s *Service) SetLogo(ctx context.Context, p Principal, id int64, data []byte) error {
	ps, err := s.panelStore()
	if err != nil {
		return err
	}
	if err := p.owns(id); err != nil {
		return err
	}
	if _, err := s.store.GetReseller(ctx, id); err != nil {
		return err
	}
	if len(data) > MaxLogoBytes {
		return tenant.FieldErrors{"logo": fmt.Sprintf("at most %d KB", MaxLogoBytes>>10)}
	}
	if len(data) == 0 {
		return tenant.FieldErrors{"logo": "required"}
	}
	ct := http.DetectContentType(data)
	if !logoTypes[ct] {
		return tenant.FieldErrors{"logo": "must be a PNG, JPEG, GIF or WebP image (got " + ct + ")"}
	}
	// The operator's reseller gone is not found, as it is a moment later.
	return p.loginGone(ps.PutLogo(ctx, id, Logo{ContentType: ct, Data: data},
		s.audit(p, id, "update", object("reseller", id, "")+" logo", map[string]any{"bytes": len(data), "type": ct})))
}

// LogoBySlug is a reseller's logo for public pages (the map, the login
// page): logos are meant to be seen.
func (s *Service) LogoBySlug(ctx context.Context, slug string) (Logo, error) {
	ps, err := s.panelStore()
	if err != nil {
		return Logo{}, err
	}
	if !slugRE.MatchString(slug) {
		return Logo{}, tenant.ErrNotFound
	}
	r, err := ps.ResellerBySlug(ctx, slug)
	if err != nil {
		return Logo{}, err
	}
	return ps.GetLogo(ctx, r.ID)
}

// HasLogo reports whether a reseller has a logo without reading it (up to
// MaxLogoBytes): the panel asks on every page, a map's render for its
// brand. Logos are public: any reseller's may be asked about.
func (s *Service) HasLogo(ctx context.Context, resellerID int64) (bool, error) {
	ps, err := s.panelStore()
	if err != nil {
		return false, err
	}
	return ps.HasLogo(ctx, resellerID)
}

// SetSuspended suspends or resumes a customer: its domains leave or return
// to every node's snapshot.
func (s *Service) SetSuspended(ctx context.Context, p Principal, id int64, suspended bool) (tenant.Customer, error) {
	return s.UpdateCustomer(ctx, p, id, func(c *tenant.Customer) { c.Suspended = suspended })
}

// NormalizeEmail validates a login email and returns its one spelling:
// the local part lower-cased, the domain as its lower-case A-label.
// Logins are one namespace over all resellers and the panel shows them
// side by side, so two spellings that look alike must not be two logins.
// The local part must be printable ASCII: NFKC and case folding would
// merge fullwidth "ａdmin" with "admin" but not Cyrillic "аdmin" (U+0430),
// and no folding catches every confusable, while a login needs no
// internationalized local part. The domain goes through IDNA, which maps
// fullwidth letters and the Kelvin sign to ASCII and shows any other
// non-ASCII name as xn--, visibly different from its look-alike.
// Uniqueness is the store's, on this form.
func NormalizeEmail(s string) (string, error) {
	// Checked before lower-casing, which turns invalid UTF-8 into U+FFFD:
	// two different inputs would name one account.
	if !isText(s) {
		return "", fmt.Errorf("%q is not an email address", s)
	}
	local, dom, ok := strings.Cut(strings.TrimSpace(s), "@")
	if !ok || local == "" || strings.ContainsAny(local, " \t<>\"") {
		return "", fmt.Errorf("%q is not an email address", s)
	}
	if !mailaddr.IsASCII(local) {
		return "", fmt.Errorf("%q cannot be a login: the part before @ may hold only ASCII letters, digits and punctuation, no accented or look-alike letters", s)
	}
	// IDNA refuses "@", spaces, "<", ">" and quotes in the domain.
	ascii, err := tenant.NormalizeDomain(dom)
	if err != nil {
		return "", fmt.Errorf("%q is not an email address", s)
	}
	e := strings.ToLower(local) + "@" + ascii
	if len(e) > maxEmailLen {
		return "", fmt.Errorf("%q is not an email address: longer than %d bytes", s, maxEmailLen)
	}
	return e, nil
}

// loginSpellings lists the stored spellings a login may be under: as
// typed, lower-cased, then the normal form. Logins made before
// NormalizeEmail refused non-ASCII local parts and stored domains as
// A-labels were stored as typed, lower-cased ("jörg@bücher.de"): they
// still log in so, but no new login can be made so. Rewriting them
// instead could merge two existing logins. The spelling as typed comes
// first because such a login can share its normal form with one made
// before it ("admin@ｅxample.com" beside "admin@example.com"): tried
// second, the older spelling would reach the other account and its
// owner could no longer log in at all.
func loginSpellings(email string) []string {
	var out []string
	if isText(email) {
		out = append(out, strings.ToLower(strings.TrimSpace(email)))
	}
	if e, err := NormalizeEmail(email); err == nil && !slices.Contains(out, e) {
		out = append(out, e)
	}
	return out
}

// LoginKey names the account a login attempt is for, for counting
// failures per account: spellings that log in to one account
// ("ANN@ｅxample.com", "ann@example.com") must share one budget.
func LoginKey(email string) string {
	if e, err := NormalizeEmail(email); err == nil {
		return e
	}
	return strings.ToLower(strings.TrimSpace(email))
}

// legacySpellingTaken reports whether a login stored before
// NormalizeEmail's rule is another spelling of the normal email e
// ("ann@bücher.de" of "ann@xn--bcher-kva.de"). The store's UNIQUE
// compares stored text and cannot see it; such a twin would also take
// the older login's place in AuthenticatePassword for every spelling
// but its own. Such logins are no longer made, so checking before the
// insert leaves no race.
func legacySpellingTaken(ctx context.Context, ps PanelStore, e string) (bool, error) {
	local, _, _ := strings.Cut(e, "@")
	stored, err := ps.UserEmailsWithLocal(ctx, local)
	if err != nil {
		return false, err
	}
	return slices.ContainsFunc(stored, func(old string) bool {
		n, err := NormalizeEmail(old)
		return err == nil && n == e && old != e
	}), nil
}

// CheckNewUser vets a new login's email and password as CreateUser does,
// without a store: the email's one spelling, and the field errors (empty
// when both are fine). A form that creates something else first checks
// its user here, so that a refused user does not leave that behind.
func CheckNewUser(email, password string) (string, tenant.FieldErrors) {
	fe := tenant.FieldErrors{}
	e, err := NormalizeEmail(email)
	if err != nil {
		fe["email"] = err.Error()
	}
	if msg := PasswordProblem(e, password); msg != "" {
		fe["password"] = msg
	}
	return e, fe
}

// CreateUser adds a panel login to a reseller: the operator for any, a
// reseller for itself.
func (s *Service) CreateUser(ctx context.Context, p Principal, resellerID int64, email, password string) (User, error) {
	ps, err := s.panelStore()
	if err != nil {
		return User{}, err
	}
	if !p.Operator {
		resellerID = p.ResellerID
	}
	// A password never expires.
	if until, err := s.loginExpires(ctx, p); err != nil {
		return User{}, err
	} else if !until.IsZero() {
		return User{}, fmt.Errorf("%w: a login with a token that expires adds no panel user, whose password would outlive it", ErrForbidden)
	}
	e, fe := CheckNewUser(email, password)
	if _, err := s.store.GetReseller(ctx, resellerID); errors.Is(err, tenant.ErrNotFound) && !p.Operator {
		return User{}, p.resellerGone(ErrParentGone)
	} else if errors.Is(err, tenant.ErrNotFound) {
		fe["reseller_id"] = "no such reseller"
	} else if err != nil {
		return User{}, err
	}
	if len(fe) > 0 {
		return User{}, fe
	}
	// Emails are unique across resellers: say nothing of whose it is.
	notAvailable := fmt.Errorf("%w: %w", tenant.ErrConflict, ErrEmailNotAvailable)
	if taken, err := legacySpellingTaken(ctx, ps, e); err != nil {
		return User{}, err
	} else if taken {
		return User{}, notAvailable
	}
	hash, err := HashPassword(password)
	if err != nil {
		return User{}, err
	}
	u := User{ResellerID: resellerID, Email: e, Hash: hash}
	if err := ps.CreateUser(ctx, &u, s.audit(p, resellerID, "create", "user "+e, nil)); err != nil {
		if errors.Is(err, tenant.ErrConflict) {
			return User{}, notAvailable
		}
		return User{}, p.resellerGone(err)
	}
	return u, nil
}

// ListUsers lists a reseller's panel logins.
func (s *Service) ListUsers(ctx context.Context, p Principal, resellerID int64) ([]User, error) {
	ps, err := s.panelStore()
	if err != nil {
		return nil, err
	}
	if err := p.owns(resellerID); err != nil {
		return nil, err
	}
	return ps.ListUsers(ctx, resellerID)
}

// GetUser returns one panel user, if it belongs to p's reseller.
func (s *Service) GetUser(ctx context.Context, p Principal, id int64) (User, error) {
	ps, err := s.panelStore()
	if err != nil {
		return User{}, err
	}
	u, err := ps.GetUser(ctx, id)
	if err != nil {
		return User{}, err
	}
	if err := p.owns(u.ResellerID); err != nil {
		return User{}, err
	}
	return u, nil
}

// DeleteUser removes a panel user. Nobody removes their own login (a
// slip would lock them out mid-session), and only the operator removes a
// reseller's last one: a reseller cannot lock itself out of the panel.
func (s *Service) DeleteUser(ctx context.Context, p Principal, id int64) error {
	ps, err := s.panelStore()
	if err != nil {
		return err
	}
	u, err := s.GetUser(ctx, p, id)
	if err != nil {
		return err
	}
	if p.UserID == id {
		return fmt.Errorf("%w: you cannot remove your own login", tenant.ErrConflict)
	}
	return ps.DeleteUser(ctx, id, !p.Operator, s.audit(p, u.ResellerID, "delete", "user "+u.Email, nil))
}

// ChangePassword sets a password-logged-in user's own password after
// checking the current one, and returns the user as stored (its new hash
// is what ends the user's other panel sessions).
func (s *Service) ChangePassword(ctx context.Context, p Principal, current, next string) (User, error) {
	ps, err := s.panelStore()
	if err != nil {
		return User{}, err
	}
	if p.UserID == 0 || p.Operator {
		return User{}, fmt.Errorf("%w: only a user who logged in with a password has one to change", ErrForbidden)
	}
	u, err := s.GetUser(ctx, p, p.UserID)
	if err != nil {
		return User{}, err
	}
	ok := false
	if len(current) <= MaxPasswordLen {
		if ok, err = CheckPassword(u.Hash, current); err != nil {
			return User{}, fmt.Errorf("user %d: %w", u.ID, err)
		}
	}
	if !ok {
		return User{}, tenant.FieldErrors{"current": "does not match your current password"}
	}
	if msg := PasswordProblem(u.Email, next); msg != "" {
		return User{}, tenant.FieldErrors{"new": msg}
	}
	if next == current {
		return User{}, tenant.FieldErrors{"new": "must differ from the current password"}
	}
	hash, err := HashPassword(next)
	if err != nil {
		return User{}, err
	}
	if err := ps.SetUserPassword(ctx, u.ID, hash, s.audit(p, u.ResellerID, "update", "user "+u.Email+" password", nil)); err != nil {
		return User{}, err
	}
	u.Hash = hash
	return u, nil
}

// dummyHash makes a login for an unknown address cost what a known one
// costs, so response times do not tell which addresses exist.
var dummyHash = func() string {
	h, err := HashPassword("timing-equaliser")
	if err != nil {
		panic(err) // crypto/rand failing at start is not recoverable
	}
	return h
}()

// AuthenticatePassword maps a panel user's email and password to its
// principal; every failure is ErrUnauthenticated.
func (s *Service) AuthenticatePassword(ctx context.Context, email, password string) (Principal, error) {
	ps, err := s.panelStore()
	if err != nil {
		return Principal{}, err
	}
	if len(password) > MaxPasswordLen {
		return Principal{}, ErrUnauthenticated
	}
	var u User
	err = tenant.ErrNotFound
	for _, e := range loginSpellings(email) {
		if u, err = ps.UserByEmail(ctx, e); !errors.Is(err, tenant.ErrNotFound) {
			break
		}
	}
	hash := u.Hash
	switch {
	case errors.Is(err, tenant.ErrNotFound):
		hash = dummyHash
	case err != nil:
		return Principal{}, err
	}
	ok, herr := CheckPassword(hash, password)
	if herr != nil {
		return Principal{}, fmt.Errorf("user %d: %w", u.ID, herr)
	}
	if !ok || err != nil {
		return Principal{}, ErrUnauthenticated
	}
	return Principal{ResellerID: u.ResellerID, UserID: u.ID, Actor: fmt.Sprintf("user %d (%s)", u.ID, u.Email)}, nil
}

// MapScope is what a public per-reseller or per-customer map covers.
type MapScope struct {
	// Key names the stored map: "reseller:SLUG:ID" or "customer:KEY:ID",
	// ID the reseller's.
	Key string
	// Name is the scope as the public map shows it: "reseller:SLUG" or
	// "customer:KEY", what its URL already says. Internal ids stay out of
	// a page anyone may fetch.
	Name     string
	Reseller tenant.Reseller
	// domains selects the domains covered (MapDomains).
	domains Filter
}

// MapDomains lists the ids of the domains sc covers, which only a render
// of its map needs: a reseller may have thousands, and the map is public.
// Ids, not names: a name deleted by one tenant and created by another must
// not carry the old owner's events into the new map.
func (s *Service) MapDomains(ctx context.Context, sc MapScope) ([]int64, error) {
	return s.domainIDs(ctx, sc.domains)
}

// ResellerMap resolves /map?reseller=SLUG. Unknown slugs are ErrNotFound.
func (s *Service) ResellerMap(ctx context.Context, slug string) (MapScope, error) {
	ps, err := s.panelStore()
	if err != nil {
		return MapScope{}, err
	}
	if !slugRE.MatchString(slug) {
		return MapScope{}, tenant.ErrNotFound
	}
	r, err := ps.ResellerBySlug(ctx, slug)
	if err != nil {
		return MapScope{}, err
	}
	// With the id: a slug freed by a deleted reseller and taken by a new
	// one must not serve the old one's map (its brand and sources) for
	// the rest of the period.
	return MapScope{Key: "reseller:" + r.Slug + ":" + strconv.FormatInt(r.ID, 10), Name: "reseller:" + r.Slug,
		Reseller: r, domains: Filter{ResellerID: r.ID}}, nil
}

// CustomerMap resolves /map?customer=KEY.
func (s *Service) CustomerMap(ctx context.Context, key string) (MapScope, error) {
	ps, err := s.panelStore()
	if err != nil {
		return MapScope{}, err
	}
	if !mapKeyRE.MatchString(key) {
		return MapScope{}, tenant.ErrNotFound
	}
	c, err := ps.CustomerByMapKey(ctx, key)
	if err != nil {
		return MapScope{}, err
	}
	r, err := s.store.GetReseller(ctx, c.ResellerID)
	if err != nil {
		return MapScope{}, err
	}
	// With the reseller's id: a customer moved to another reseller shows
	// its new reseller's brand from the move on, not at the next period.
	return MapScope{Key: "customer:" + key + ":" + strconv.FormatInt(r.ID, 10), Name: "customer:" + key,
		Reseller: r, domains: Filter{CustomerID: c.ID}}, nil
}

// domainIDs pages through every domain the filter selects.
func (s *Service) domainIDs(ctx context.Context, f Filter) ([]int64, error) {
	var out []int64
	f.Limit = MaxPageSize
	for {
		page, err := s.store.ListDomains(ctx, f)
		if err != nil {
			return nil, err
		}
		for _, d := range page {
			out = append(out, d.ID)
		}
		if len(page) < f.Limit {
			return out, nil
		}
		f.After = page[len(page)-1].ID
	}
}

// DomainActivity is a domain's counts over the last 24 hours and 30 days and
// its most recent refusals, for its owner only.
func (s *Service) DomainActivity(ctx context.Context, p Principal, domainID int64, now time.Time) (Activity, error) {
	if s.activity == nil {
		return Activity{}, ErrPanelUnconfigured
	}
	d, err := s.GetDomain(ctx, p, domainID)
	if err != nil {
		return Activity{}, err
	}
	var a Activity
	if a.Day, err = s.activity.DomainCounts(ctx, d.ID, now.Add(-24*time.Hour)); err != nil {
		return a, err
	}
	if a.Month, err = s.activity.DomainCounts(ctx, d.ID, now.Add(-30*24*time.Hour)); err != nil {
		return a, err
	}
	a.Refused, err = s.activity.RefusedEvents(ctx, d.ID, RefusedShown)
	return a, err
}
