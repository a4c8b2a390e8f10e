// Package admin is the tenant administration behind the HTTP API, the
// reseller panel and the token CLI: it validates and authorizes every
// change (resellers, customers, domains, recipients, tokens, panel users,
// logos) and audits it. The SMTP hot path never calls it: nodes see a
// change through tenant's snapshot reload.
package admin

import (
	"bytes"
	"cmp"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"golang.org/x/net/idna"

	"github.com/mxgrid/mxgrid/fsperm"
	"github.com/mxgrid/mxgrid/internal/keycheck"
	"github.com/mxgrid/mxgrid/internal/ratelimit"
	"github.com/mxgrid/mxgrid/mailaddr"
	"github.com/mxgrid/mxgrid/tenant"
)

// Store persists tenants. Every write commits the change, an audit entry
// and a bump of the tenant config version in one transaction, and returns
// the new version. A write of an existing customer's or domain's takes
// owner, the reseller the service found holding it: held by another by
// then (the operator moved it, or its customer, since), it writes nothing
// and returns ErrStale. The service reads the object again: a reseller
// finds it gone from its view (404), the operator, who sees every
// reseller's, writes it where it went, as a moment later. Get/Update/Delete of a missing row return ErrNotFound; a
// duplicate (domain name, recipient) or a delete of a parent that still has
// children returns an error wrapping ErrConflict; a database that cannot be
// reached returns an error wrapping ErrUnavailable. store.Tenants
// implements it.
type Store interface {
	ListResellers(ctx context.Context, f Filter) ([]tenant.Reseller, error)
	GetReseller(ctx context.Context, id int64) (tenant.Reseller, error)
	CreateReseller(ctx context.Context, r *tenant.Reseller, a AuditEntry) (uint64, error)
	UpdateReseller(ctx context.Context, r *tenant.Reseller, a AuditEntry) (uint64, error)
	DeleteReseller(ctx context.Context, id int64, a AuditEntry) (uint64, error)
	// ResellerUsage counts what a reseller holds against its quota. The
	// writes that add domains or recipients enforce the quota in their
	// own transaction, failing with a *tenant.QuotaError.
	ResellerUsage(ctx context.Context, id int64) (Usage, error)

	ListCustomers(ctx context.Context, f Filter) ([]tenant.Customer, error)
	GetCustomer(ctx context.Context, id int64) (tenant.Customer, error)
	CreateCustomer(ctx context.Context, c *tenant.Customer, a AuditEntry) (uint64, error)
	UpdateCustomer(ctx context.Context, c *tenant.Customer, a AuditEntry) (uint64, error)
	DeleteCustomer(ctx context.Context, id, owner int64, a AuditEntry) (uint64, error)

	ListDomains(ctx context.Context, f Filter) ([]tenant.DomainRecord, error)
	GetDomain(ctx context.Context, id int64) (tenant.DomainRecord, error)
	// CreateDomain, TakeOverDomain and UpdateDomain write d under
	// d.CustomerID held by d.ResellerID (when set: the service sets it
	// from the customer it checked); a customer gone or held by another
	// reseller by then is ErrParentGone, and so is a missing reseller
	// for CreateCustomer, UpdateCustomer, CreateToken, CreateUser and
	// PutLogo.
	CreateDomain(ctx context.Context, d *tenant.DomainRecord, a AuditEntry) (uint64, error)
	// UpdateDomain's owner is the domain's before the write; d.ResellerID
	// is its customer's, who holds it after.
	UpdateDomain(ctx context.Context, d *tenant.DomainRecord, owner int64, a AuditEntry) (uint64, error)
	DeleteDomain(ctx context.Context, id, owner int64, a AuditEntry) (uint64, error)
	DomainByName(ctx context.Context, name string) (tenant.DomainRecord, error)
	// DeleteLapsedClaim deletes domain id only while it is still pending
	// since before pendingBefore; otherwise tenant.ErrNotFound. In the
	// same transaction it marks the name taken over and keeps the
	// holder's claim clock, as a delete of a pending domain does.
	DeleteLapsedClaim(ctx context.Context, id int64, pendingBefore time.Time, a AuditEntry) (uint64, error)
	// TakeOverDomain is CreateDomain of d in place of domain lapsedID,
	// removed as DeleteLapsedClaim removes it (audited with lapse), in
	// one transaction: a create refused (the reseller's quota) leaves the
	// claim as it was, and a claim proven or removed meanwhile is
	// tenant.ErrNotFound with nothing created.
	TakeOverDomain(ctx context.Context, d *tenant.DomainRecord, lapsedID int64, pendingBefore time.Time, lapse, create AuditEntry) (uint64, error)
	// ActivateDomain is UpdateDomain for d made active, one activation at
	// a time across the nodes sharing the store. With byMX it fails with
	// ErrNotProvenByMX, writing nothing, when in its transaction the name
	// turns out to be one MX records may not prove: taken over from a
	// lapsed claim or freed by an active domain's delete or rename since
	// it was last active, or under or above another reseller's active
	// domain.
	ActivateDomain(ctx context.Context, d *tenant.DomainRecord, byMX bool, a AuditEntry) (uint64, error)

	// ListRecipients needs f.DomainID.
	ListRecipients(ctx context.Context, f Filter) ([]Recipient, error)
	GetRecipient(ctx context.Context, domainID int64, local string) (Recipient, error)
	// AddRecipients inserts locals, skipping those already present, or with
	// replace makes the list exactly locals. It returns how many were added.
	AddRecipients(ctx context.Context, domainID, owner int64, locals []string, replace bool, a AuditEntry) (int, uint64, error)
	DeleteRecipient(ctx context.Context, domainID, owner int64, local string, a AuditEntry) (uint64, error)

	ListTokens(ctx context.Context, f Filter) ([]Token, error)
	GetToken(ctx context.Context, id int64) (Token, error)
	TokenByHash(ctx context.Context, hash string) (Token, error)
	CreateToken(ctx context.Context, t *Token, a AuditEntry) error
	DeleteToken(ctx context.Context, id int64, a AuditEntry) error

	ListAudit(ctx context.Context, f Filter) ([]AuditEntry, error)
}

// ErrParentGone is the store's refusal of a create or a move under a
// parent (a domain's customer, a customer's or a token's reseller) that
// is gone since the service checked it. The service answers it as its
// check answers a parent missing then. A domain's customer held by
// another reseller than the record's since is ErrStale: checked again, it
// is missing for a reseller, and the operator's domain goes under it.
var ErrParentGone = fmt.Errorf("%w: the object it goes under is gone", tenant.ErrNotFound)

// parentGone is err, or when the store found the parent gone, the answer
// of the service's own check: field is "no such what".
func parentGone(err error, field, what string) error {
	if errors.Is(err, ErrParentGone) {
		return tenant.FieldErrors{field: "no such " + what}
	}
	return err
}

// loginGone is err, or ErrUnauthenticated when the store found p's own
// reseller gone: p's login went with it, and a moment later
// authenticates no more.
func (p Principal) loginGone(err error) error {
	if !p.Operator && errors.Is(err, ErrParentGone) {
		return ErrUnauthenticated
	}
	return err
}

// resellerGone is err, or when the store found the reseller p writes for
// gone, the answer a moment later: loginGone's for p's own, "no such
// reseller" for the operator, as its check answers.
func (p Principal) resellerGone(err error) error {
	return parentGone(p.loginGone(err), "reseller_id", "reseller")
}

// Principal is who calls the service, from their token.
type Principal struct {
	Operator   bool
	ResellerID int64
	// UserID is the panel user of a password login, 0 for tokens: only
	// such a principal has a password to change, and a login to protect
	// from removing itself.
	UserID int64 `json:",omitempty"`
	// TokenID is the stored API token a principal authenticated with (0
	// for passwords and the operator token file): a panel session made
	// from it ends when the token is deleted.
	TokenID int64 `json:",omitempty"`
	// Actor names the principal in the audit log.
	Actor string
}

// Operator is the principal of the operator token file and of tools run on
// a node (the token CLI).
func Operator(actor string) Principal { return Principal{Operator: true, Actor: actor} }

// Service validates and authorizes every tenant operation; the HTTP API and
// the reseller panel both go through it.
type Service struct {
	store        Store
	operatorHash []byte
	changed      func(version uint64)
	log          *slog.Logger
	panel        PanelStore
	activity     ActivityStore
	messages     MessageLog
	quarantine   Quarantine
	checkRoute   func(ctx context.Context, route string) error
	own          *ownership
	// imports holds a place per recipient import running on this node,
	// through the API and the panel together (BeginImport).
	imports chan struct{}
	// searches holds a place per message-log or quarantine search being
	// run or answered on this node (BeginSearch).
	searches chan struct{}
	// searchesOf holds each reseller's share of searches.
	searchesOf *resellerPlaces
	// requestsOf holds each reseller's requests in flight (BeginRequest).
	requestsOf *resellerPlaces
	// importsOf holds each reseller's imports (BeginImport).
	importsOf *resellerPlaces
	// changes limits each reseller's rate of changes (AllowChange).
	changes *ratelimit.Limiter[int64]
	// searchWait is how long a search or a request waits for a place.
	searchWait time.Duration
	// charts holds the outcome charts summed lately (OutcomeCharts).
	charts chartCache
}

// ServiceOptions configure a Service.
type ServiceOptions struct {
	// OperatorToken, when set, authenticates as the operator without the
	// database, so the operator can still read the API during an outage.
	OperatorToken string
	// Changed is called after every committed change with the new config
	// version (the node reloads and announces it on the cluster).
	Changed func(version uint64)
	Log     *slog.Logger
	// Panel and Activity serve the reseller panel and the scoped maps;
	// without them those operations return ErrPanelUnconfigured.
	Panel    PanelStore
	Activity ActivityStore
	// Messages is message tracking's search; without it SearchMessages
	// returns ErrPanelUnconfigured.
	Messages MessageLog
	// Quarantine serves the quarantine operations; without it they return
	// ErrPanelUnconfigured.
	Quarantine Quarantine
	// CheckRoute vets a tenant route's destination (netguard's
	// Guard.CheckRoute: no loopback, private, link-local... networks, no
	// loop into the cluster); nil checks only the syntax.
	CheckRoute func(ctx context.Context, route string) error
	// Ownership configures how resellers' domains are proven.
	Ownership OwnershipOptions
	// SearchWait is how long a search (BeginSearch) or a request
	// (BeginRequest) waits for a place (0: DefaultSearchWait).
	SearchWait time.Duration
}

// NewService returns a service over st.
func NewService(st Store, opts ServiceOptions) *Service {
	s := &Service{store: st, changed: opts.Changed, log: opts.Log, panel: opts.Panel, activity: opts.Activity,
		messages: opts.Messages, quarantine: opts.Quarantine, checkRoute: opts.CheckRoute, own: newOwnership(opts.Ownership),
		imports: make(chan struct{}, MaxConcurrentImports), searches: make(chan struct{}, MaxConcurrentSearches),
		searchesOf: newResellerPlaces(MaxSearchesPerReseller), requestsOf: newResellerPlaces(MaxRequestsPerReseller),
		importsOf: newResellerPlaces(MaxImportsPerReseller), changes: ratelimit.New[int64](ChangeBurst, ChangeInterval, 0)}
	if s.log == nil {
		s.log = slog.Default()
	}
	s.searchWait = cmp.Or(opts.SearchWait, DefaultSearchWait)
	if opts.OperatorToken != "" {
		h := sha256.Sum256([]byte(opts.OperatorToken))
		s.operatorHash = h[:]
	}
	return s
}

// OperatorTokenHash is the SHA-256 of the operator token file's token (nil
// without one). The panel binds a session made with that token to it: the
// file is read at start, and a session row outlives the process, so without
// the binding rotating the token (new file, nodes restarted) left every
// session opened with the old one working until its session_ttl.
func (s *Service) OperatorTokenHash() []byte { return bytes.Clone(s.operatorHash) }

// tokenPrefix marks mxgrid tokens so secret scanners and people recognise them.
const tokenPrefix = "mxg_"

// NewTokenSecret returns a fresh random token and its stored hash. 32 random
// bytes make brute force hopeless, which is why a plain SHA-256 (no slow KDF)
// is enough to keep a leaked database from yielding usable tokens.
func NewTokenSecret() (secret, hash string, err error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", "", fmt.Errorf("token: random: %w", err)
	}
	secret = tokenPrefix + base64.RawURLEncoding.EncodeToString(b[:])
	return secret, HashToken(secret), nil
}

// HashToken is the stored form of a token.
func HashToken(secret string) string {
	h := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(h[:])
}

// Authenticate maps a bearer token to its principal.
func (s *Service) Authenticate(ctx context.Context, secret string) (Principal, error) {
	if secret == "" {
		return Principal{}, ErrUnauthenticated
	}
	h := sha256.Sum256([]byte(secret))
	if s.operatorHash != nil && subtle.ConstantTimeCompare(h[:], s.operatorHash) == 1 {
		return Operator("operator (token file)"), nil
	}
	if !strings.HasPrefix(secret, tokenPrefix) {
		return Principal{}, ErrUnauthenticated
	}
	t, err := s.store.TokenByHash(ctx, hex.EncodeToString(h[:]))
	if errors.Is(err, tenant.ErrNotFound) {
		return Principal{}, ErrUnauthenticated
	}
	if err != nil {
		return Principal{}, err
	}
	// An expired token is refused as an unknown one is: the caller learns
	// nothing about which tokens once existed.
	if t.Expired(s.own.now()) {
		return Principal{}, ErrUnauthenticated
	}
	actor := fmt.Sprintf("token %d (%s)", t.ID, t.Name)
	if t.ResellerID == 0 {
		p := Operator(actor)
		p.TokenID = t.ID
		return p, nil
	}
	return Principal{ResellerID: t.ResellerID, TokenID: t.ID, Actor: actor}, nil
}

// scope checks a list's filter and restricts it to the principal's
// reseller. A reseller's filter naming another reseller selects nothing
// (mine is false): replaced by the reseller's own id, as it was, the
// answer listed the reseller's own objects as the other's, where a filter
// naming another tenant's customer or domain finds nothing.
func (p Principal) scope(f Filter) (_ Filter, mine bool, _ error) {
	if err := CheckSearch("name", f.Name); err != nil {
		return f, false, err
	}
	if !p.Operator {
		if f.ResellerID != 0 && f.ResellerID != p.ResellerID {
			return f, false, nil
		}
		f.ResellerID = p.ResellerID
	}
	if f.Limit <= 0 || f.Limit > MaxPageSize {
		f.Limit = DefaultPageSize
	}
	return f, true, nil
}

// scoped is fetch's page of f within p's scope, empty when f names what
// p may not see.
func scoped[T any](ctx context.Context, p Principal, f Filter, fetch func(context.Context, Filter) ([]T, error)) ([]T, error) {
	f, mine, err := p.scope(f)
	if err != nil {
		return nil, err
	}
	if !mine {
		return []T{}, nil
	}
	return fetch(ctx, f)
}

// owns reports whether p may see resellerID's data. Another reseller's
// objects are reported as not found, so their existence does not leak.
func (p Principal) owns(resellerID int64) error {
	if p.Operator || p.ResellerID == resellerID {
		return nil
	}
	return tenant.ErrNotFound
}

func (p Principal) operatorOnly() error {
	if p.Operator {
		return nil
	}
	return fmt.Errorf("%w: only the operator may do this", ErrForbidden)
}

func (s *Service) audit(p Principal, resellerID int64, action, object string, detail any) AuditEntry {
	a := AuditEntry{Actor: p.Actor, ResellerID: resellerID, Action: action, Object: object}
	if detail != nil {
		b, err := json.Marshal(detail)
		if err == nil {
			a.Detail = string(b)
		}
	}
	return a
}

// committed reports a change to the node (reload and announce).
func (s *Service) committed(version uint64, err error) error {
	if err == nil && s.changed != nil {
		s.changed(version)
	}
	return err
}

func object(kind string, id int64, name string) string {
	return kind + " " + strconv.FormatInt(id, 10) + " " + name
}

// --- resellers

func (s *Service) ListResellers(ctx context.Context, p Principal, f Filter) ([]tenant.Reseller, error) {
	return scoped(ctx, p, f, func(ctx context.Context, f Filter) ([]tenant.Reseller, error) {
		if !p.Operator {
			// A reseller lists itself only.
			r, err := s.store.GetReseller(ctx, p.ResellerID)
			if err != nil || r.ID <= f.After || !strings.Contains(strings.ToLower(r.Name), strings.ToLower(f.Name)) {
				return []tenant.Reseller{}, ignoreNotFound(err)
			}
			return []tenant.Reseller{r}, nil
		}
		return s.store.ListResellers(ctx, f)
	})
}

func (s *Service) GetReseller(ctx context.Context, p Principal, id int64) (tenant.Reseller, error) {
	if err := p.owns(id); err != nil {
		return tenant.Reseller{}, err
	}
	return s.store.GetReseller(ctx, id)
}

// ResellerUsage is what reseller id holds against its quota: the
// operator's for any reseller, a reseller's for itself.
func (s *Service) ResellerUsage(ctx context.Context, p Principal, id int64) (Usage, error) {
	if err := p.owns(id); err != nil {
		return Usage{}, err
	}
	return s.store.ResellerUsage(ctx, id)
}

func (s *Service) CreateReseller(ctx context.Context, p Principal, r tenant.Reseller) (tenant.Reseller, error) {
	if err := p.operatorOnly(); err != nil {
		return tenant.Reseller{}, err
	}
	derived := r.Slug == ""
	if derived {
		r.Slug = Slugify(r.Name)
	}
	if err := validateReseller(&r); err != nil {
		return tenant.Reseller{}, err
	}
	base := r.Slug
	for n := 2; ; n++ {
		v, err := s.store.CreateReseller(ctx, &r, s.audit(p, 0, "create", "reseller "+r.Name, r))
		// Names need not be unique, slugs must: a derived slug that is
		// taken gets a number, a chosen one is the caller's conflict.
		if derived && errors.Is(err, tenant.ErrConflict) && n < 100 {
			r.Slug = base + "-" + strconv.Itoa(n)
			continue
		}
		return r, s.committed(v, err)
	}
}

// UpdateReseller applies patch to the stored reseller and saves it.
func (s *Service) UpdateReseller(ctx context.Context, p Principal, id int64, patch func(*tenant.Reseller)) (tenant.Reseller, error) {
	if err := p.owns(id); err != nil {
		return tenant.Reseller{}, err
	}
	if err := p.operatorOnly(); err != nil {
		return tenant.Reseller{}, err
	}
	return untilFresh(func() (tenant.Reseller, error) {
		r, err := s.store.GetReseller(ctx, id)
		if err != nil {
			return tenant.Reseller{}, err
		}
		old := r
		read := r.Updated
		patch(&r)
		r.ID, r.Updated = id, read
		if err := validateReseller(&r); err != nil {
			return tenant.Reseller{}, err
		}
		if reflect.DeepEqual(r, old) {
			return old, nil
		}
		v, err := s.store.UpdateReseller(ctx, &r, s.audit(p, id, "update", object("reseller", id, r.Name), r))
		return r, s.committed(v, err)
	})
}

func (s *Service) DeleteReseller(ctx context.Context, p Principal, id int64) error {
	if err := p.owns(id); err != nil {
		return err
	}
	if err := p.operatorOnly(); err != nil {
		return err
	}
	v, err := s.store.DeleteReseller(ctx, id, s.audit(p, id, "delete", object("reseller", id, ""), nil))
	return s.committed(v, err)
}

func validateReseller(r *tenant.Reseller) error {
	fe := r.Policy.Validate("policy.")
	maps.Copy(fe, r.Quota.Validate("quota."))
	checkName(fe, "name", r.Name)
	checkPolicyText(fe, r.Policy)
	validateBrand(fe, r)
	return fe.Err()
}

// --- customers

func (s *Service) ListCustomers(ctx context.Context, p Principal, f Filter) ([]tenant.Customer, error) {
	return scoped(ctx, p, f, s.store.ListCustomers)
}

func (s *Service) GetCustomer(ctx context.Context, p Principal, id int64) (tenant.Customer, error) {
	c, err := s.store.GetCustomer(ctx, id)
	if err != nil {
		return tenant.Customer{}, err
	}
	if err := p.owns(c.ResellerID); err != nil {
		return tenant.Customer{}, err
	}
	return c, nil
}

func (s *Service) CreateCustomer(ctx context.Context, p Principal, c tenant.Customer) (tenant.Customer, error) {
	if !p.Operator {
		if c.ResellerID != 0 && c.ResellerID != p.ResellerID {
			return tenant.Customer{}, tenant.FieldErrors{"reseller_id": "must be your own reseller id or omitted"}
		}
		c.ResellerID = p.ResellerID
	}
	if err := s.validateCustomer(ctx, &c); err != nil {
		return tenant.Customer{}, err
	}
	key, err := newMapKey()
	if err != nil {
		return tenant.Customer{}, err
	}
	c.MapKey = key
	v, err := s.store.CreateCustomer(ctx, &c, s.audit(p, c.ResellerID, "create", "customer "+c.Name, c))
	return c, s.committed(v, p.resellerGone(err))
}

func (s *Service) UpdateCustomer(ctx context.Context, p Principal, id int64, patch func(*tenant.Customer)) (tenant.Customer, error) {
	return untilFresh(func() (tenant.Customer, error) {
		c, err := s.GetCustomer(ctx, p, id)
		if err != nil {
			return tenant.Customer{}, err
		}
		old := c
		owner, read := c.ResellerID, c.Updated
		patch(&c)
		c.ID, c.Updated = id, read
		if !p.Operator && c.ResellerID != owner {
			return tenant.Customer{}, tenant.FieldErrors{"reseller_id": "only the operator may move a customer to another reseller"}
		}
		if err := s.validateCustomer(ctx, &c); err != nil {
			return tenant.Customer{}, err
		}
		if reflect.DeepEqual(c, old) {
			return old, nil
		}
		v, err := s.store.UpdateCustomer(ctx, &c, s.audit(p, c.ResellerID, "update", object("customer", id, c.Name), c))
		return c, s.committed(v, p.resellerGone(err))
	})
}

func (s *Service) DeleteCustomer(ctx context.Context, p Principal, id int64) error {
	return untilFreshErr(func() error {
		c, err := s.GetCustomer(ctx, p, id)
		if err != nil {
			return err
		}
		v, err := s.store.DeleteCustomer(ctx, id, c.ResellerID, s.audit(p, c.ResellerID, "delete", object("customer", id, c.Name), nil))
		return s.committed(v, err)
	})
}

func (s *Service) validateCustomer(ctx context.Context, c *tenant.Customer) error {
	fe := c.Policy.Validate("policy.")
	checkName(fe, "name", c.Name)
	checkPolicyText(fe, c.Policy)
	if c.ResellerID <= 0 {
		fe["reseller_id"] = "required"
	} else if _, err := s.store.GetReseller(ctx, c.ResellerID); errors.Is(err, tenant.ErrNotFound) {
		fe["reseller_id"] = "no such reseller"
	} else if err != nil {
		return err
	}
	return fe.Err()
}

// --- domains

func (s *Service) ListDomains(ctx context.Context, p Principal, f Filter) ([]tenant.DomainRecord, error) {
	f.Name = domainSearch(f.Name)
	return scoped(ctx, p, f, s.store.ListDomains)
}

// domainSearch writes a non-ASCII name filter in A-labels, as domain names
// are stored: "bücher" or "BÜCHER.example" found nothing beside
// xn--bcher-kva.example. Text IDNA refuses, or whose A-labels are longer
// than a search, is searched as typed (CheckSearch judges it), and so is
// text that is not UTF-8, which IDNA would take as U+FFFD and answer for.
func domainSearch(name string) string {
	if mailaddr.IsASCII(name) || !utf8.ValidString(name) {
		return name
	}
	a, err := idna.Lookup.ToASCII(name)
	if err != nil || len(a) > maxSearchLen {
		return name
	}
	return a
}

func (s *Service) GetDomain(ctx context.Context, p Principal, id int64) (tenant.DomainRecord, error) {
	d, err := s.store.GetDomain(ctx, id)
	if err != nil {
		return tenant.DomainRecord{}, err
	}
	if err := p.owns(d.ResellerID); err != nil {
		return tenant.DomainRecord{}, err
	}
	return d, nil
}

// CreateDomain creates d: active at once for the operator, pending with a
// fresh verification token for a reseller.
func (s *Service) CreateDomain(ctx context.Context, p Principal, d tenant.DomainRecord) (tenant.DomainRecord, error) {
	return untilFresh(func() (tenant.DomainRecord, error) { return s.createDomainOnce(ctx, p, d) })
}

func (s *Service) createDomainOnce(ctx context.Context, p Principal, d tenant.DomainRecord) (tenant.DomainRecord, error) {
	if err := s.validateDomain(ctx, p, &d); err != nil {
		return tenant.DomainRecord{}, err
	}
	if err := s.setOwnership(p, &d, ""); err != nil {
		return tenant.DomainRecord{}, err
	}
	audit := s.audit(p, d.ResellerID, "create", "domain "+d.Name, d)
	v, err := s.store.CreateDomain(ctx, &d, audit)
	if errors.Is(err, tenant.ErrConflict) && !errors.Is(err, tenant.ErrStale) && !p.Operator {
		if held, lapsedBefore, ok := s.lapsed(ctx, d.ResellerID, d.Name); ok {
			v, err = s.store.TakeOverDomain(ctx, &d, held.ID, lapsedBefore, lapseAudit(held), audit)
			if err == nil {
				s.logLapse(held, d.ResellerID)
			} else if errors.Is(err, tenant.ErrNotFound) && !errors.Is(err, ErrParentGone) {
				err = tenant.ErrConflict // proven or removed meanwhile: the name stays unavailable
			}
		}
	}
	if errors.Is(err, tenant.ErrStale) {
		return d, err // the customer changed hands: check it again (CreateDomain)
	}
	return d, s.committed(v, parentGone(neutralConflict(err), "customer_id", "customer"))
}

// setOwnership sets d's status and token. A reseller's new name (oldName
// differs) is refused when reserved and otherwise starts pending; an
// unchanged name keeps the status it had.
func (s *Service) setOwnership(p Principal, d *tenant.DomainRecord, oldName string) error {
	if d.Name == oldName {
		return nil
	}
	if p.Operator {
		d.Status, d.VerifyToken = tenant.StatusActive, ""
		return nil
	}
	if s.own.isReserved(d.Name) {
		return neutralConflict(tenant.ErrConflict)
	}
	tok, err := newVerifyToken()
	if err != nil {
		return err
	}
	d.Status, d.VerifyToken, d.PendingSince = tenant.StatusPending, tok, s.own.now()
	return nil
}

// neutralConflict hides whose name a unique-name conflict is with: the
// answer is the same for a reserved name, one's own and another tenant's.
func neutralConflict(err error) error {
	if errors.Is(err, tenant.ErrConflict) {
		return fmt.Errorf("%w: %w", tenant.ErrConflict, ErrNotAvailable)
	}
	return err
}

// staleRetries bounds how often a read-modify-write is redone after
// another write to the same object came between its read and its write.
const staleRetries = 8

// UpdateDomain applies patch to the domain as stored and writes it. Like
// every update, it is written only on the version patched: when another
// write (a concurrent release adding to the allow list, a proof
// activating the name) came in between, the domain is read and patched
// again, so neither change is lost.
func (s *Service) UpdateDomain(ctx context.Context, p Principal, id int64, patch func(*tenant.DomainRecord)) (tenant.DomainRecord, error) {
	return untilFresh(func() (tenant.DomainRecord, error) { return s.updateDomainOnce(ctx, p, id, patch) })
}

// untilFresh runs a read-modify-write until it is not refused as stale,
// at most staleRetries times.
func untilFresh[T any](readModifyWrite func() (T, error)) (T, error) {
	for range staleRetries - 1 {
		v, err := readModifyWrite()
		if !errors.Is(err, tenant.ErrStale) {
			return v, err
		}
	}
	return readModifyWrite()
}

// untilFreshErr is untilFresh for a write that returns only an error.
func untilFreshErr(readWrite func() error) error {
	_, err := untilFresh(func() (struct{}, error) { return struct{}{}, readWrite() })
	return err
}

func (s *Service) updateDomainOnce(ctx context.Context, p Principal, id int64, patch func(*tenant.DomainRecord)) (tenant.DomainRecord, error) {
	d, err := s.GetDomain(ctx, p, id)
	if err != nil {
		return tenant.DomainRecord{}, err
	}
	old := d
	patch(&d)
	d.ID = id
	// Status, token and version are the service's, whatever the request said.
	d.Status, d.VerifyToken, d.Updated = old.Status, old.VerifyToken, old.Updated
	if err := s.validateDomain(ctx, p, &d); err != nil {
		return tenant.DomainRecord{}, err
	}
	if err := s.setOwnership(p, &d, old.Name); err != nil {
		return tenant.DomainRecord{}, err
	}
	if reflect.DeepEqual(d, old) {
		return old, nil
	}
	audit := s.audit(p, d.ResellerID, "update", object("domain", id, d.Name), d)
	v, err := s.store.UpdateDomain(ctx, &d, old.ResellerID, audit)
	if errors.Is(err, tenant.ErrConflict) && !errors.Is(err, tenant.ErrStale) && d.Name != old.Name && s.takeLapsedClaim(ctx, p, d.ResellerID, d.Name) {
		v, err = s.store.UpdateDomain(ctx, &d, old.ResellerID, audit)
	}
	if errors.Is(err, tenant.ErrStale) {
		return d, err // not a name conflict: read again (UpdateDomain)
	}
	return d, s.committed(v, parentGone(neutralConflict(err), "customer_id", "customer"))
}

func (s *Service) DeleteDomain(ctx context.Context, p Principal, id int64) error {
	return untilFreshErr(func() error {
		d, err := s.GetDomain(ctx, p, id)
		if err != nil {
			return err
		}
		v, err := s.store.DeleteDomain(ctx, id, d.ResellerID, s.audit(p, d.ResellerID, "delete", object("domain", id, d.Name), nil))
		return s.committed(v, err)
	})
}

// validateDomain checks d and that its customer exists and belongs to p;
// it sets d.ResellerID from the customer.
func (s *Service) validateDomain(ctx context.Context, p Principal, d *tenant.DomainRecord) error {
	var fe tenant.FieldErrors
	if err := d.Normalize(); err != nil {
		fe = err.(tenant.FieldErrors)
	} else {
		fe = tenant.FieldErrors{}
	}
	checkPolicyText(fe, d.Policy)
	if d.CustomerID > 0 {
		c, err := s.store.GetCustomer(ctx, d.CustomerID)
		switch {
		case errors.Is(err, tenant.ErrNotFound) || (err == nil && p.owns(c.ResellerID) != nil):
			fe["customer_id"] = "no such customer"
		case err != nil:
			return err
		default:
			d.ResellerID = c.ResellerID
		}
	}
	s.checkRoutes(ctx, d, fe)
	return fe.Err()
}

// routeChecksTimeout bounds all of a domain's route checks together. Each
// lookup is bounded (netguard), but a domain has up to 101 routes and a
// tenant may name hosts under a name server that never answers: checked
// one after another, they held the request for minutes.
const routeChecksTimeout = 10 * time.Second

// checkRoutes vets the destinations of d's routes whose syntax passed,
// naming the field ("route", "routes[1].route"): each distinct route once,
// all at the same time.
func (s *Service) checkRoutes(ctx context.Context, d *tenant.DomainRecord, fe tenant.FieldErrors) {
	if s.checkRoute == nil {
		return
	}
	fields := map[string][]string{}
	add := func(key, route string) {
		if _, bad := fe[key]; !bad {
			fields[route] = append(fields[route], key)
		}
	}
	add("route", d.Route)
	for i, r := range d.Routes {
		add(fmt.Sprintf("routes[%d].route", i), r.Route)
	}
	ctx, cancel := context.WithTimeout(ctx, routeChecksTimeout)
	defer cancel()
	var (
		mu sync.Mutex
		wg sync.WaitGroup
	)
	for route, keys := range fields {
		wg.Go(func() {
			if err := s.checkRoute(ctx, route); err != nil {
				mu.Lock()
				defer mu.Unlock()
				for _, k := range keys {
					fe[k] = err.Error()
				}
			}
		})
	}
	wg.Wait()
}

// --- recipients

// MaxImport bounds one bulk import.
const MaxImport = 100000

// MaxConcurrentImports bounds the recipient imports a node reads and
// stores at once, through the API (a 32 MiB JSON body) and the panel (an
// 8 MiB CSV upload) together: each holds up to MaxImport strings and
// writes them in one transaction. Two at once cost at most ~130 MB.
const MaxConcurrentImports = 2

// MaxImportsPerReseller is how many of the node's import places one
// reseller may hold: one tenant uploading in a loop held both, and every
// other tenant's imports got 429. The operator is bounded by
// MaxConcurrentImports alone.
const MaxImportsPerReseller = MaxConcurrentImports / 2

// ErrImportsBusy: MaxConcurrentImports imports are running on this node,
// or MaxImportsPerReseller of the reseller's (HTTP 429). It is an ErrBusy.
var ErrImportsBusy = fmt.Errorf("%w: %d recipient imports are running on this node", ErrBusy, MaxConcurrentImports)

// BeginImport takes one of the node's import places for p before an
// import's list is read; done gives it back. With none free for p or on
// the node it fails at once with ErrImportsBusy: the client retries.
func (s *Service) BeginImport(p Principal) (done func(), err error) {
	node := func() (func(), error) { return take(s.imports, ErrImportsBusy) }
	if p.Operator {
		return node()
	}
	own := func() (func(), error) { return take(s.importsOf.of(p.ResellerID), ErrImportsBusy) }
	return inTurn(own, node)
}

// take takes one of places, or fails at once with busy when none is free.
func take(places chan struct{}, busy error) (done func(), err error) {
	select {
	case places <- struct{}{}:
		return func() { <-places }, nil
	default:
		return nil, busy
	}
}

// ImportsRunning is how many import places are taken.
func (s *Service) ImportsRunning() int { return len(s.imports) }

func (s *Service) ListRecipients(ctx context.Context, p Principal, domainID int64, f Filter) ([]Recipient, error) {
	if _, err := s.GetDomain(ctx, p, domainID); err != nil {
		return nil, err
	}
	return scoped(ctx, p, f, func(ctx context.Context, f Filter) ([]Recipient, error) {
		f.ResellerID = 0
		f.DomainID = domainID
		return s.store.ListRecipients(ctx, f)
	})
}

func (s *Service) GetRecipient(ctx context.Context, p Principal, domainID int64, local string) (Recipient, error) {
	d, err := s.GetDomain(ctx, p, domainID)
	if err != nil {
		return Recipient{}, err
	}
	l, err := tenant.NormalizeLocal(local, d.Name)
	if err != nil {
		return Recipient{}, tenant.ErrNotFound
	}
	return s.store.GetRecipient(ctx, domainID, l)
}

// AddRecipients adds (or with replace, sets) a domain's recipients; the
// answer says how many were new. Every entry is checked before any is
// stored, so a bad line rejects the whole import.
func (s *Service) AddRecipients(ctx context.Context, p Principal, domainID int64, locals []string, replace bool) (int, error) {
	return untilFresh(func() (int, error) { return s.addRecipientsOnce(ctx, p, domainID, locals, replace) })
}

func (s *Service) addRecipientsOnce(ctx context.Context, p Principal, domainID int64, locals []string, replace bool) (int, error) {
	d, err := s.GetDomain(ctx, p, domainID)
	if err != nil {
		return 0, err
	}
	if len(locals) > MaxImport {
		return 0, tenant.FieldErrors{"recipients": fmt.Sprintf("at most %d per request", MaxImport)}
	}
	if len(locals) == 0 && !replace {
		return 0, tenant.FieldErrors{"recipients": "required"}
	}
	norm := make([]string, 0, len(locals))
	seen := make(map[string]bool, len(locals))
	for i, l := range locals {
		n, err := tenant.NormalizeLocal(l, d.Name)
		if err != nil {
			return 0, tenant.FieldErrors{fmt.Sprintf("recipients[%d]", i): err.Error()}
		}
		if !seen[n] {
			seen[n] = true
			norm = append(norm, n)
		}
	}
	action := "import"
	if replace {
		action = "replace"
	}
	added, v, err := s.store.AddRecipients(ctx, domainID, d.ResellerID, norm, replace,
		s.audit(p, d.ResellerID, action, object("domain", domainID, d.Name)+" recipients", map[string]int{"count": len(norm)}))
	return added, s.committed(v, err)
}

func (s *Service) DeleteRecipient(ctx context.Context, p Principal, domainID int64, local string) error {
	return untilFreshErr(func() error {
		d, err := s.GetDomain(ctx, p, domainID)
		if err != nil {
			return err
		}
		l, err := tenant.NormalizeLocal(local, d.Name)
		if err != nil {
			return tenant.ErrNotFound
		}
		v, err := s.store.DeleteRecipient(ctx, domainID, d.ResellerID, l, s.audit(p, d.ResellerID, "delete", object("domain", domainID, d.Name)+" recipient "+l, nil))
		return s.committed(v, err)
	})
}

// --- tokens

func (s *Service) ListTokens(ctx context.Context, p Principal, f Filter) ([]Token, error) {
	return scoped(ctx, p, f, s.store.ListTokens)
}

func (s *Service) GetToken(ctx context.Context, p Principal, id int64) (Token, error) {
	t, err := s.store.GetToken(ctx, id)
	if err != nil {
		return Token{}, err
	}
	if !p.Operator && t.ResellerID != p.ResellerID {
		return Token{}, tenant.ErrNotFound
	}
	return t, nil
}

// CreateToken makes a token scoped to t.ResellerID (0: operator, which only
// the operator may create). The answer carries the secret, shown only once.
func (s *Service) CreateToken(ctx context.Context, p Principal, t Token) (Token, error) {
	if !p.Operator {
		if t.ResellerID != 0 && t.ResellerID != p.ResellerID {
			return Token{}, tenant.FieldErrors{"reseller_id": "must be your own reseller id or omitted"}
		}
		t.ResellerID = p.ResellerID
	}
	fe := tenant.FieldErrors{}
	checkName(fe, "name", t.Name)
	if t.ResellerID < 0 {
		fe["reseller_id"] = "must be a reseller id, or 0 for an operator token"
	} else if t.ResellerID > 0 {
		if _, err := s.store.GetReseller(ctx, t.ResellerID); errors.Is(err, tenant.ErrNotFound) && !p.Operator {
			return Token{}, p.resellerGone(ErrParentGone)
		} else if errors.Is(err, tenant.ErrNotFound) {
			fe["reseller_id"] = "no such reseller"
		} else if err != nil {
			return Token{}, err
		}
	}
	if !t.Expires.IsZero() {
		// Stored to the microsecond, so the answer shows what is kept.
		t.Expires = t.Expires.UTC().Truncate(time.Microsecond)
		if !t.Expires.After(s.own.now()) {
			fe["expires"] = "must be in the future"
		}
	}
	until, err := s.loginExpires(ctx, p)
	if err != nil {
		return Token{}, err
	}
	if !until.IsZero() && (t.Expires.IsZero() || t.Expires.After(until)) && fe["expires"] == "" {
		fe["expires"] = "required, and no later than " + until.Format(time.RFC3339Nano) + ", when the token creating it expires"
	}
	if len(fe) > 0 {
		return Token{}, fe
	}
	secret, hash, err := NewTokenSecret()
	if err != nil {
		return Token{}, err
	}
	t.Hash = hash
	t.ID = 0
	if err := s.store.CreateToken(ctx, &t, s.audit(p, t.ResellerID, "create", "token "+t.Name, nil)); err != nil {
		return Token{}, p.resellerGone(err)
	}
	t.Secret = secret
	return t, nil
}

// loginExpires is when p's login stops working: its API token's expiry,
// zero for a token that never expires, a password or the operator token
// file. A credential made by a login that expires must not outlive it: a
// contractor's token for a day minted one without expiry, or a panel
// user, and kept the reseller's data for ever.
func (s *Service) loginExpires(ctx context.Context, p Principal) (time.Time, error) {
	if p.TokenID == 0 {
		return time.Time{}, nil
	}
	t, err := s.store.GetToken(ctx, p.TokenID)
	if err != nil {
		return time.Time{}, err
	}
	return t.Expires, nil
}

func (s *Service) DeleteToken(ctx context.Context, p Principal, id int64) error {
	t, err := s.GetToken(ctx, p, id)
	if err != nil {
		return err
	}
	return s.store.DeleteToken(ctx, id, s.audit(p, t.ResellerID, "delete", object("token", id, t.Name), nil))
}

// ListAudit returns the audit trail, newest first; a reseller sees its own.
func (s *Service) ListAudit(ctx context.Context, p Principal, f Filter) ([]AuditEntry, error) {
	return scoped(ctx, p, f, s.store.ListAudit)
}

func ignoreNotFound(err error) error {
	if errors.Is(err, tenant.ErrNotFound) {
		return nil
	}
	return err
}

// ReadTokenFile reads the operator token file (admin.operator_token_file):
// the token alone, surrounding whitespace ignored. An empty path means no
// operator file token. A file others may read is logged on log, as
// cluster.secret_key_file is: whoever reads it has operator rights over
// every tenant through the API.
func ReadTokenFile(path string, log *slog.Logger) (string, error) {
	if path == "" {
		return "", nil
	}
	b, err := fsperm.ReadSecret(path)
	if err != nil {
		return "", fmt.Errorf("admin.operator_token_file: %w", err)
	}
	fsperm.WarnShared(log, "admin.operator_token_file", path)
	tok := strings.TrimSpace(string(b))
	// An Authorization header cannot carry a line break or a control
	// character, and a bearer token has no whitespace: a node that started
	// with such a token would refuse every request presenting it. The
	// error names the character, never the token.
	if i := strings.IndexFunc(tok, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }); i >= 0 {
		r, _ := utf8.DecodeRuneInString(tok[i:])
		what := "a control character"
		switch {
		case r == '\n' || r == '\r':
			what = "a line break"
		case unicode.IsSpace(r):
			what = "whitespace"
		}
		return "", fmt.Errorf("admin.operator_token_file: %s: the token holds %s (%U) at byte %d; the file must hold the token alone, on one line", path, what, r, i)
	}
	if len(tok) < 32 {
		return "", fmt.Errorf("admin.operator_token_file: %s holds %d characters; use at least 32 random ones (mxgrid token create --operator prints one)", path, len(tok))
	}
	// Whoever guesses it has every tenant: one typed ("aaaa…",
	// "passwordpassword…") is refused as a weak gossip key is.
	if err := keycheck.TextProblem(tok); err != nil {
		return "", fmt.Errorf("admin.operator_token_file: %s: %w; use 32 or more random characters (mxgrid token create --operator prints one)", path, err)
	}
	return tok, nil
}
