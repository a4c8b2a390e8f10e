package admin

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"net"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/net/publicsuffix"

	"github.com/mxgrid/mxgrid/internal/periodic"
	"github.com/mxgrid/mxgrid/tenant"
)

// VerifyPrefix starts the TXT record that proves a domain.
const VerifyPrefix = "mxgrid-verify="

// ErrNotAvailable is the neutral answer for a name the caller may not
// take: reserved, or held by another tenant. It says nothing about which.
var ErrNotAvailable = errors.New("this domain name is not available")

// ErrEmailNotAvailable is ErrNotAvailable's counterpart for panel logins.
var ErrEmailNotAvailable = errors.New("this email address is not available")

// ErrNotProvenByMX is the store's refusal to activate a domain by its MX
// records (Store.ActivateDomain) when they prove nothing of its name: it
// was taken over, or is under or above another reseller's active domain.
var ErrNotProvenByMX = fmt.Errorf("%w: MX records do not prove this name", tenant.ErrConflict)

// ErrBusy means too many on-demand checks run at once (HTTP 429).
var ErrBusy = errors.New("too many verifications in progress, retry later")

// ErrNoDNSAnswer is a check that read no proof because the domain's DNS
// answered neither its TXT nor its MX lookup (HTTP 502). The name's
// servers are its holder's, not ours, and what the lookups' errors say
// of our resolver (its address) is not for the caller: the text is fixed.
var ErrNoDNSAnswer = errors.New("the domain's DNS answered neither the TXT nor the MX lookup; check its name servers, then try again")

// DNS is the lookup surface ownership checks need; dnsresolver's uncached
// resolver and *net.Resolver provide it.
type DNS interface {
	LookupTXT(ctx context.Context, name string) ([]string, error)
	LookupMX(ctx context.Context, name string) ([]*net.MX, error)
}

// OwnershipOptions configure domain verification.
type OwnershipOptions struct {
	// DNS must not cache: a reseller who just published the record
	// presses "Check now" and expects it to count.
	DNS DNS
	// MXHosts are the cluster's MX host names (cluster.mx_hosts).
	MXHosts []string
	// Reserved are names no reseller may create, exactly or as a parent
	// (tenants.reserved_domains, the node's hostname, static domains).
	Reserved []string
	// MaxConcurrent bounds on-demand checks on the node (default 4); one
	// reseller runs one at a time.
	MaxConcurrent int
	// Timeout bounds one check's lookups (default 10s).
	Timeout time.Duration
	// PendingClaimTTL is how long a reseller's unproven claim keeps a name
	// from the other resellers (default tenant.DefaultPendingClaimTTL);
	// after it another reseller's create or rename replaces the claim.
	// Without a bound, any reseller could block a name for ever by
	// claiming it first.
	PendingClaimTTL time.Duration
	// Now is the clock (tests set it); default time.Now.
	Now func() time.Time
}

// builtinReserved are large mail providers: a reseller claiming them could
// only mean to capture mail of people who are no customer of ours.
var builtinReserved = []string{
	"gmail.com", "googlemail.com", "google.com", "outlook.com", "hotmail.com", "live.com",
	"msn.com", "microsoft.com", "yahoo.com", "ymail.com", "aol.com", "icloud.com", "me.com",
	"mac.com", "apple.com", "proton.me", "protonmail.com", "gmx.com", "gmx.net", "gmx.de",
	"web.de", "mail.ru", "yandex.ru", "yandex.com", "qq.com", "163.com", "zoho.com",
	"fastmail.com", "tutanota.com", "orange.fr", "free.fr", "t-online.de", "comcast.net",
}

// ownership holds the verification settings of a Service.
type ownership struct {
	dns      DNS
	mxHosts  map[string]bool
	reserved map[string]bool
	sem      chan struct{}
	timeout  time.Duration
	claimTTL time.Duration
	now      func() time.Time
	mu       sync.Mutex // serialises status writes of concurrent checks

	checkingMu sync.Mutex
	// checking holds the resellers with an on-demand check running: a
	// reseller whose names sit behind a name server that never answers
	// would otherwise hold every place for its timeout, again and again.
	checking map[int64]bool

	turnsMu sync.Mutex
	turns   verifyTurns
}

func newOwnership(o OwnershipOptions) *ownership {
	ow := &ownership{dns: o.DNS, mxHosts: map[string]bool{}, reserved: map[string]bool{}, timeout: o.Timeout,
		claimTTL: cmp.Or(o.PendingClaimTTL, tenant.DefaultPendingClaimTTL), now: o.Now, checking: map[int64]bool{}}
	if ow.timeout <= 0 {
		ow.timeout = 10 * time.Second
	}
	if ow.now == nil {
		ow.now = time.Now
	}
	n := o.MaxConcurrent
	if n <= 0 {
		n = 4
	}
	ow.sem = make(chan struct{}, n)
	for _, h := range o.MXHosts {
		if n, err := tenant.NormalizeDomain(strings.TrimSuffix(h, ".")); err == nil {
			ow.mxHosts[n] = true
			// The MX hosts' registered domain is ours too: a tenant must
			// not capture its mail.
			if reg, err := publicsuffix.EffectiveTLDPlusOne(n); err == nil {
				ow.reserved[reg] = true
			}
		}
	}
	for _, r := range append(append([]string{}, builtinReserved...), o.Reserved...) {
		if n, err := tenant.NormalizeDomain(strings.TrimSuffix(r, ".")); err == nil {
			ow.reserved[n] = true
		}
	}
	return ow
}

// isReserved reports whether name or one of its parents is reserved.
func (ow *ownership) isReserved(name string) bool {
	for n := name; n != ""; {
		if ow.reserved[n] {
			return true
		}
		_, rest, ok := strings.Cut(n, ".")
		if !ok {
			break
		}
		n = rest
	}
	return false
}

// newVerifyToken returns the random value of a domain's TXT proof.
func newVerifyToken() (string, error) {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("verify token: %w", err)
	}
	return hex.EncodeToString(b), nil
}

// proof is what DNS showed of a domain's ownership.
type proof int

const (
	noProof proof = iota
	provenByTXT
	// provenByMX: the store still decides whether MX records may prove
	// the name (Store.ActivateDomain), as it activates it.
	provenByMX
)

// proven reports what DNS proves of d: its TXT token is published, or all
// its most-preferred MX records point at the cluster's MX hosts (and no
// wildcard's). A lookup error is returned only when no proof could be
// read.
func (ow *ownership) proven(ctx context.Context, d tenant.DomainRecord) (proof, error) {
	if ow.dns == nil {
		return noProof, errors.New("ownership: no resolver configured")
	}
	ctx, cancel := context.WithTimeout(ctx, ow.timeout)
	defer cancel()
	txts, txtErr := ow.dns.LookupTXT(ctx, d.Name)
	for _, t := range txts {
		if d.VerifyToken != "" && strings.TrimSpace(t) == VerifyPrefix+d.VerifyToken {
			return provenByTXT, nil
		}
	}
	mxs, mxErr := ow.dns.LookupMX(ctx, d.Name)
	if ow.atCluster(mxs) && !ow.wildcardMX(ctx, d.Name) {
		return provenByMX, nil
	}
	if notFound(txtErr) && notFound(mxErr) {
		return noProof, nil
	}
	if txtErr != nil && mxErr != nil {
		return noProof, fmt.Errorf("ownership: lookup %s: %w: %w", d.Name, ErrNoDNSAnswer, errors.Join(txtErr, mxErr))
	}
	return noProof, nil
}

// atCluster reports whether all the most preferred of mxs name the
// cluster's MX hosts.
func (ow *ownership) atCluster(mxs []*net.MX) bool {
	if len(mxs) == 0 || len(ow.mxHosts) == 0 {
		return false
	}
	best := mxs[0].Pref
	for _, mx := range mxs {
		best = min(best, mx.Pref)
	}
	for _, mx := range mxs {
		if mx.Pref != best {
			continue
		}
		h, err := tenant.NormalizeDomain(strings.TrimSuffix(mx.Host, "."))
		if err != nil || !ow.mxHosts[h] {
			return false
		}
	}
	return true
}

// wildcardMX reports whether name's MX records may come from a wildcard
// (`*.parent MX ...`): a random name beside it has MX records too. Such
// records prove nothing about who holds name: a customer with a wildcard
// MX at the cluster would otherwise let any reseller prove any name under
// its own. The TXT token still proves. A failed lookup counts as no
// wildcard: the claimant cannot make the customer's name servers fail,
// and a resolver that answers only the names it knows must not block
// every MX proof.
func (ow *ownership) wildcardMX(ctx context.Context, name string) bool {
	_, parent, ok := strings.Cut(name, ".")
	if !ok {
		return true
	}
	label := make([]byte, 8)
	if _, err := rand.Read(label); err != nil {
		return true
	}
	mxs, _ := ow.dns.LookupMX(ctx, "mxgrid-probe-"+hex.EncodeToString(label)+"."+parent)
	return len(mxs) > 0
}

func notFound(err error) bool {
	var de *net.DNSError
	return err == nil || (errors.As(err, &de) && de.IsNotFound)
}

// VerifyDomain checks DNS for p's pending domain now and activates it when
// proven. Concurrent checks are bounded, on the node and to one per
// reseller: beyond the bound, ErrBusy.
func (s *Service) VerifyDomain(ctx context.Context, p Principal, id int64) (tenant.DomainRecord, error) {
	d, err := s.GetDomain(ctx, p, id)
	if err != nil {
		return tenant.DomainRecord{}, err
	}
	if d.Status == tenant.StatusActive {
		return d, nil
	}
	if !s.own.startCheck(d.ResellerID) {
		return tenant.DomainRecord{}, ErrBusy
	}
	defer s.own.endCheck(d.ResellerID)
	got, err := s.verify(ctx, d)
	if err != nil {
		return tenant.DomainRecord{}, err
	}
	// verify reads the domain again by id once DNS has answered, up to the
	// check's timeout later: the operator may have given it to another
	// reseller meanwhile, whose record it is now. A proof activates it
	// whoever asked, as the leader's next round would.
	if err := p.owns(got.ResellerID); err != nil {
		return tenant.DomainRecord{}, err
	}
	return got, nil
}

// startCheck takes the reseller's place and one of the node's for an
// on-demand check, or reports false when either is taken; release with
// endCheck.
func (ow *ownership) startCheck(reseller int64) bool {
	ow.checkingMu.Lock()
	defer ow.checkingMu.Unlock()
	if ow.checking[reseller] {
		return false
	}
	select {
	case ow.sem <- struct{}{}:
		ow.checking[reseller] = true
		return true
	default:
		return false
	}
}

func (ow *ownership) endCheck(reseller int64) {
	ow.checkingMu.Lock()
	defer ow.checkingMu.Unlock()
	delete(ow.checking, reseller)
	<-ow.sem
}

// verify activates d when DNS proves it. A name MX records may not prove
// stays pending, as it is when nothing proves it: the answer says nothing
// of another tenant's names.
func (s *Service) verify(ctx context.Context, d tenant.DomainRecord) (tenant.DomainRecord, error) {
	how, err := s.own.proven(ctx, d)
	if err != nil || how == noProof {
		return d, err
	}
	got, err := s.activate(ctx, Operator("verify"), d, "verify", how == provenByMX)
	if errors.Is(err, ErrNotProvenByMX) {
		return got, nil
	}
	return got, err
}

// ClaimHeldUntil is when d's claim on its name stops keeping it from the
// other resellers if d is still unproven; zero for an active domain.
func (s *Service) ClaimHeldUntil(d tenant.DomainRecord) time.Time {
	if d.Status != tenant.StatusPending || d.PendingSince.IsZero() {
		return time.Time{}
	}
	return d.PendingSince.Add(s.own.claimTTL)
}

// ClaimLapsed reports whether d is an unproven claim that another
// reseller's create or rename may replace now, as takeLapsedClaim judges.
func (s *Service) ClaimLapsed(d tenant.DomainRecord) bool {
	return !s.ClaimHeldUntil(d).IsZero() && d.PendingSince.Before(s.own.now().Add(-s.own.claimTTL))
}

// takeLapsedClaim removes another reseller's claim on name that has stayed
// unproven past PendingClaimTTL, so that p, renaming a domain of reseller
// resellerID, may have the name; it reports whether it did. A create
// takes the claim over in its own transaction (Store.TakeOverDomain):
// refused past its reseller's quota, it leaves the claim as it was.
// The removal is audited to the claim's holder, without naming who asked
// (lapseAudit), and marks the name taken over: TXT proof only
// (Store.ActivateDomain). Only a reseller takes a claim over: the
// operator deletes what it wants.
func (s *Service) takeLapsedClaim(ctx context.Context, p Principal, resellerID int64, name string) bool {
	if p.Operator {
		return false
	}
	held, lapsedBefore, ok := s.lapsed(ctx, resellerID, name)
	if !ok {
		return false
	}
	v, err := s.store.DeleteLapsedClaim(ctx, held.ID, lapsedBefore, lapseAudit(held))
	if err != nil {
		// Proven or removed meanwhile: the name stays unavailable.
		return false
	}
	s.logLapse(held, resellerID)
	_ = s.committed(v, nil)
	return true
}

// lapseAudit is the entry, in its holder's trail, of held's claim giving
// way to another tenant's, whom it does not name.
func lapseAudit(held tenant.DomainRecord) AuditEntry {
	return AuditEntry{Actor: "ownership", ResellerID: held.ResellerID, Action: "lapse", Object: object("domain", held.ID, held.Name),
		Detail: fmt.Sprintf("unproven since %s; another tenant claimed the name", held.PendingSince.Format(time.RFC3339))}
}

func (s *Service) logLapse(held tenant.DomainRecord, claimedBy int64) {
	s.log.Info("a lapsed domain claim gave way to another reseller's", "domain", held.Name, "domain_id", held.ID,
		"held_by", held.ResellerID, "claimed_by", claimedBy, "pending_since", held.PendingSince)
}

// lapsed finds the claim on name that resellerID may take over: another
// reseller's, pending since before lapsedBefore.
func (s *Service) lapsed(ctx context.Context, resellerID int64, name string) (held tenant.DomainRecord, lapsedBefore time.Time, ok bool) {
	held, err := s.store.DomainByName(ctx, name)
	if err != nil || held.ResellerID == resellerID || held.Status != tenant.StatusPending {
		return held, lapsedBefore, false
	}
	lapsedBefore = s.own.now().Add(-s.own.claimTTL)
	return held, lapsedBefore, held.PendingSince.Before(lapsedBefore)
}

// ApproveDomain activates a domain without proof; operator only.
func (s *Service) ApproveDomain(ctx context.Context, p Principal, id int64) (tenant.DomainRecord, error) {
	if err := p.operatorOnly(); err != nil {
		return tenant.DomainRecord{}, err
	}
	d, err := s.GetDomain(ctx, p, id)
	if err != nil {
		return tenant.DomainRecord{}, err
	}
	if d.Status == tenant.StatusActive {
		return d, nil
	}
	return s.activate(ctx, p, d, "approve", false)
}

// activate makes d active, unless it was renamed or given a new token
// since it was read; byMX has the store refuse it (ErrNotProvenByMX, d
// returned as it is stored) when MX records may not prove its name.
func (s *Service) activate(ctx context.Context, p Principal, d tenant.DomainRecord, action string, byMX bool) (tenant.DomainRecord, error) {
	s.own.mu.Lock()
	defer s.own.mu.Unlock()
	return untilFresh(func() (tenant.DomainRecord, error) {
		// Re-read: the domain may have been renamed or deleted meanwhile,
		// and a proof of the old name proves nothing about the new one.
		cur, err := s.store.GetDomain(ctx, d.ID)
		if err != nil {
			return tenant.DomainRecord{}, err
		}
		if cur.Name != d.Name || cur.VerifyToken != d.VerifyToken {
			return cur, nil
		}
		pending := cur
		cur.Status, cur.PendingSince = tenant.StatusActive, time.Time{}
		v, err := s.store.ActivateDomain(ctx, &cur, byMX, s.audit(p, cur.ResellerID, action, object("domain", cur.ID, cur.Name), nil))
		if err != nil {
			return pending, err
		}
		return cur, s.committed(v, nil)
	})
}

// VerifyPending re-checks up to limit pending domains and returns how many
// it activated; the cluster leader runs it every tenants.verify_interval.
// A round shares its checks out among the resellers with pending domains
// (verifyTurns): one reseller's pile of unprovable names, however large,
// cannot delay another's check past its claim's lifetime.
func (s *Service) VerifyPending(ctx context.Context, limit int) (int, error) {
	var pending []tenant.DomainRecord
	for f := (Filter{Limit: MaxPageSize}); ; {
		page, err := s.store.ListDomains(ctx, f)
		if err != nil {
			return 0, err
		}
		for _, d := range page {
			if d.Status == tenant.StatusPending {
				pending = append(pending, d)
			}
		}
		if len(page) < f.Limit {
			break
		}
		f.After = page[len(page)-1].ID
	}
	s.own.turnsMu.Lock()
	due := s.own.turns.next(pending, limit)
	s.own.turnsMu.Unlock()
	if len(due) == 0 {
		return 0, nil
	}
	var (
		n    atomic.Int32
		wg   sync.WaitGroup
		slot = make(chan struct{}, verifyRoundConcurrency)
	)
	for _, d := range due {
		slot <- struct{}{}
		wg.Go(func() {
			defer func() { <-slot }()
			got, err := s.verify(ctx, d)
			if err != nil {
				s.log.Debug("domain verification", "domain_id", d.ID, "err", err)
			} else if got.Status == tenant.StatusActive {
				n.Add(1)
			}
		})
	}
	wg.Wait()
	return int(n.Load()), nil
}

// verifyTurns remember where rounds stopped, so that each goes on from
// there: the last reseller served, and each reseller's last domain
// checked.
type verifyTurns struct {
	reseller int64
	upTo     map[int64]int64
}

// next picks up to limit of pending (in id order) for a round: one domain
// of each reseller in turn, starting after the last reseller served, each
// reseller's going on after its last checked and wrapping around. A
// reseller with one pending name has it checked every round while fewer
// resellers than limit have any.
func (t *verifyTurns) next(pending []tenant.DomainRecord, limit int) []tenant.DomainRecord {
	byReseller := map[int64][]tenant.DomainRecord{}
	for _, d := range pending {
		byReseller[d.ResellerID] = append(byReseller[d.ResellerID], d)
	}
	resellers := slices.Sorted(maps.Keys(byReseller))
	first, _ := slices.BinarySearch(resellers, t.reseller+1)
	resellers = slices.Concat(resellers[first:], resellers[:first])
	queues := make([][]tenant.DomainRecord, len(resellers))
	upTo := make(map[int64]int64, len(resellers))
	for i, r := range resellers {
		ds := byReseller[r]
		next, _ := slices.BinarySearchFunc(ds, t.upTo[r]+1, func(d tenant.DomainRecord, id int64) int {
			return cmp.Compare(d.ID, id)
		})
		queues[i] = slices.Concat(ds[next:], ds[:next])
		upTo[r] = t.upTo[r]
	}
	var due []tenant.DomainRecord
	for depth := 0; len(due) < limit; depth++ {
		took := false
		for i, q := range queues {
			if len(due) == limit {
				break
			}
			if depth < len(q) {
				due = append(due, q[depth])
				upTo[resellers[i]] = q[depth].ID
				t.reseller = resellers[i]
				took = true
			}
		}
		if !took {
			break
		}
	}
	// Resellers with nothing pending drop out: the table holds only those
	// that still wait.
	t.upTo = upTo
	return due
}

// verifyRoundConcurrency is how many checks of a round run at once: each
// may wait out its timeout on a name server that never answers, and one
// after another a round of 100 such names took 17 minutes.
const verifyRoundConcurrency = 16

// RunVerifier re-checks pending domains every interval until ctx ends,
// while leader reports true (one node checks, not all).
func (s *Service) RunVerifier(ctx context.Context, interval time.Duration, perRound int, leader func() bool) {
	periodic.Every(ctx, interval, nil, func(ctx context.Context) {
		if leader != nil && !leader() {
			return
		}
		if n, err := s.VerifyPending(ctx, perRound); err != nil {
			s.log.Warn("domain verification round", "err", err)
		} else if n > 0 {
			s.log.Info("domains verified", "count", n)
		}
	})
}
