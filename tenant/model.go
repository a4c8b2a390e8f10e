package tenant

import (
	"cmp"
	"errors"
	"fmt"
	"maps"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/mxgrid/mxgrid/mailaddr"
	"github.com/mxgrid/mxgrid/netguard"
)

// The hierarchy: the operator runs the cluster and has resellers; a
// reseller has customers; a customer has domains; a domain optionally lists
// its recipients. Each level carries a Policy whose set fields override the
// level above.

// Reseller sells filtering to customers.
type Reseller struct {
	ID   int64  `json:"id"`
	Name string `json:"name"`
	// Slug names the reseller in public URLs (/map?reseller=SLUG); derived
	// from the name at creation unless given.
	Slug string `json:"slug"`
	// DisplayName and Accent are the white label the panel and the
	// reseller's map show (empty: the name and the default colour).
	DisplayName string `json:"display_name,omitempty"`
	Accent      string `json:"accent,omitempty"`
	Policy      Policy `json:"policy"`
	// Quota is the operator's override of the configured default quota
	// (SyncConfig.DefaultQuota); only the operator may set it.
	Quota   Quota     `json:"quota"`
	Created time.Time `json:"created"`
	Updated time.Time `json:"updated"`
	// Damaged is as DomainRecord's: its domains are not served.
	Damaged string `json:"-"`
}

// Quota caps what a reseller may provision: every node holds every
// tenant's domains and recipients in memory, so one reseller's bulk would
// cost all the others. A zero field takes the configured default; a zero
// default means no cap.
type Quota struct {
	// Domains counts pending domains too: a claim costs every node memory
	// and verification work before it is proven.
	Domains    int64 `json:"domains,omitempty" yaml:"domains"`
	Recipients int64 `json:"recipients,omitempty" yaml:"recipients"`
}

// Over resolves q's zero fields from def.
func (q Quota) Over(def Quota) Quota {
	return Quota{Domains: cmp.Or(q.Domains, def.Domains), Recipients: cmp.Or(q.Recipients, def.Recipients)}
}

// Validate checks an override or a default; keys are prefixed with prefix.
func (q Quota) Validate(prefix string) FieldErrors {
	fe := FieldErrors{}
	if q.Domains < 0 {
		fe[prefix+"domains"] = "must not be negative"
	}
	if q.Recipients < 0 {
		fe[prefix+"recipients"] = "must not be negative"
	}
	return fe
}

// Customer belongs to one reseller.
type Customer struct {
	ID         int64  `json:"id"`
	ResellerID int64  `json:"reseller_id"`
	Name       string `json:"name"`
	Policy     Policy `json:"policy"`
	// Suspended customers' domains leave the snapshot: their mail is
	// refused like an unknown domain's until they are resumed.
	Suspended bool `json:"suspended,omitempty"`
	// MapKey is the unguessable id of the customer's public map
	// (/map?customer=KEY), set at creation.
	MapKey  string    `json:"map_key,omitempty"`
	Created time.Time `json:"created"`
	Updated time.Time `json:"updated"`
	// Damaged is as DomainRecord's: its domains are not served.
	Damaged string `json:"-"`
}

// DomainRecord is a provisioned domain as stored and edited. ResellerID is
// the customer's, filled in by the store.
type DomainRecord struct {
	ID         int64  `json:"id"`
	CustomerID int64  `json:"customer_id"`
	ResellerID int64  `json:"reseller_id"`
	Name       string `json:"name"`
	Route      string `json:"route"`
	TLS        string `json:"tls"`
	// Routes send some recipients to other servers than Route; never nil
	// once normalised, so the API always shows a list.
	Routes []RouteRule `json:"routes"`
	Policy Policy      `json:"policy"`
	// Status is StatusPending until the reseller proves the name (see
	// admin/ownership.go); only active domains receive mail. The API shows
	// VerifyToken so the reseller can publish it; both are set by the
	// admin service, never taken from a request.
	Status      string `json:"status"`
	VerifyToken string `json:"verify_token,omitempty"`
	// PendingSince is when the name became pending (zero, and left out
	// of the JSON, once active): after OwnershipOptions.PendingClaimTTL
	// unproven, another reseller may claim the name. Set by the admin
	// service only.
	PendingSince time.Time `json:"pending_since,omitzero"`
	Created      time.Time `json:"created"`
	Updated      time.Time `json:"updated"`
	// Damaged is why the store could not read the row (its policy or
	// routes do not decode), set only in a Loader's Data: such a domain
	// is not served, and the others load.
	Damaged string `json:"-"`
}

// Domain status. A reseller could otherwise create any name (gmail.com, the
// node's own hostname, another tenant's domain) and receive its mail at
// once; a pending domain is left out of the snapshot, so RCPT refuses it
// like an unknown one and nothing is relayed.
const (
	StatusPending = "pending"
	StatusActive  = "active"
)

// DefaultPendingClaimTTL is how long an unproven claim keeps a name from
// other resellers: three days for a customer to publish a DNS record.
const DefaultPendingClaimTTL = 72 * time.Hour

// Data is everything a snapshot is built from, read in one consistent
// transaction.
type Data struct {
	Version    uint64
	Resellers  []Reseller
	Customers  []Customer
	Domains    []DomainRecord
	Recipients map[int64]Recipients // domain id -> local parts
}

// Delta is what changed in the store after a version, read in one
// consistent transaction: the current rows of every changed reseller,
// customer and domain, every domain under a changed reseller or customer
// (its effective policy, or whether it is served at all, follows theirs),
// and the ids of the deleted ones. A node applies it to the snapshot it
// holds instead of reloading everything.
type Delta struct {
	Data
	RemovedResellers, RemovedCustomers, RemovedDomains []int64
}

// Errors of the tenant data's store (tenant.Loader and admin.Store); the
// API maps them to statuses.
var (
	ErrNotFound = errors.New("not found")
	ErrConflict = errors.New("conflict")
	// ErrStale: the object changed after it was read, so a write based on
	// that reading was not made; read it again and redo the change.
	ErrStale = fmt.Errorf("%w: changed since it was read", ErrConflict)
	// ErrChangesGone: the store no longer keeps the changes after the
	// version asked for (the node was away too long, too much changed, or
	// the store was restored to an older copy); load everything instead.
	ErrChangesGone = errors.New("tenant changes since that version are no longer kept")
	// ErrUnavailable wraps store failures: the database is down or
	// unreachable, so writes cannot be committed now.
	ErrUnavailable = errors.New("tenant database unavailable")
	// ErrQuotaExceeded: the write would leave a reseller over its quota
	// (QuotaError says which and by how much).
	ErrQuotaExceeded = errors.New("quota exceeded")
)

// QuotaError is a write refused by a reseller's quota.
type QuotaError struct {
	// What is "domains", "recipients" or "customers" (capped by the
	// domain quota), or "tokens" or "users" (a fixed cap per reseller).
	What  string `json:"what"`
	Quota int64  `json:"quota"`
	// Used is what the reseller held before the write, After what it
	// would have held.
	Used  int64 `json:"used"`
	After int64 `json:"after"`
}

func (e *QuotaError) Error() string {
	return fmt.Sprintf("quota exceeded for %s: %d of %d in use, this change would make %d (delete some, or ask the operator to raise the quota)",
		e.What, e.Used, e.Quota, e.After)
}

func (e *QuotaError) Unwrap() error { return ErrQuotaExceeded }

// FieldErrors maps a field (dotted path, "policy.tag_score") to what is
// wrong with it.
type FieldErrors map[string]string

func (fe FieldErrors) Error() string {
	keys := make([]string, 0, len(fe))
	for k := range fe {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + ": " + fe[k]
	}
	return "invalid input: " + strings.Join(parts, "; ")
}

// first returns the alphabetically first problem, for config errors that
// name one key.
func (fe FieldErrors) first() error {
	var key string
	for k := range fe {
		if key == "" || k < key {
			key = k
		}
	}
	return fmt.Errorf("%s: %s", key, fe[key])
}

// Err is fe as an error, nil when there is no problem.
func (fe FieldErrors) Err() error {
	if len(fe) == 0 {
		return nil
	}
	return fe
}

// Virus actions.
const (
	VirusReject = "reject"
	VirusTag    = "tag"

	// Policy.TagAction values.
	TagDeliver    = "tag"
	TagQuarantine = "quarantine"
)

// Bounds on free-text and list fields: they end up in every node's memory
// and in gossip-triggered reloads, so nothing is unbounded.
const (
	maxSubjectTagLen = 64
	maxListLen       = 10000
	maxListEntryLen  = 254
	maxMessageSize   = 1 << 30
)

// Validate checks p; keys are prefixed with prefix ("policy." in the API).
func (p Policy) Validate(prefix string) FieldErrors {
	fe := FieldErrors{}
	score := func(key string, v *float64) {
		// The scanner acts only on scores above 0: a tag_score of 0 would
		// tag (and quarantine) nothing at all, not everything.
		if v != nil && !(*v > 0 && *v <= 1e6) {
			fe[prefix+key] = "must be a number above 0 (and at most 1000000)"
		}
	}
	score("tag_score", p.TagScore)
	score("reject_score", p.RejectScore)
	if p.TagScore != nil && p.RejectScore != nil && *p.RejectScore < *p.TagScore {
		fe[prefix+"reject_score"] = "must not be below tag_score"
	}
	if p.SubjectTag != nil {
		if len(*p.SubjectTag) > maxSubjectTagLen {
			fe[prefix+"subject_tag"] = fmt.Sprintf("at most %d bytes", maxSubjectTagLen)
		} else if hasControl(*p.SubjectTag) {
			fe[prefix+"subject_tag"] = "must not contain control characters (it goes into a header)"
		}
	}
	if p.VirusAction != nil && *p.VirusAction != VirusReject && *p.VirusAction != VirusTag {
		fe[prefix+"virus_action"] = "must be reject or tag"
	}
	if p.TagAction != nil && *p.TagAction != TagDeliver && *p.TagAction != TagQuarantine {
		fe[prefix+"tag_action"] = "must be tag or quarantine"
	}
	if p.MaxMessageSize != nil && (*p.MaxMessageSize < 1024 || *p.MaxMessageSize > maxMessageSize) {
		fe[prefix+"max_message_size"] = fmt.Sprintf("must be between 1024 and %d bytes", maxMessageSize)
	}
	list := func(key string, l []string, check func(string) error) {
		if len(l) > maxListLen {
			fe[prefix+key] = fmt.Sprintf("at most %d entries", maxListLen)
			return
		}
		for i, e := range l {
			if err := check(e); err != nil {
				fe[fmt.Sprintf("%s%s[%d]", prefix, key, i)] = err.Error()
				return
			}
		}
	}
	list("sender_allow", p.SenderAllow, checkSender)
	list("sender_block", p.SenderBlock, checkSender)
	list("ip_allow", p.IPAllow, checkIP)
	list("ip_block", p.IPBlock, checkIP)
	return fe
}

// Over returns p with its unset fields taken from base: the domain's policy
// over its customer's over its reseller's.
func (p Policy) Over(base Policy) Policy {
	return Policy{
		TagScore:       pick(p.TagScore, base.TagScore),
		RejectScore:    pick(p.RejectScore, base.RejectScore),
		SubjectTag:     pick(p.SubjectTag, base.SubjectTag),
		VirusAction:    pick(p.VirusAction, base.VirusAction),
		TagAction:      pick(p.TagAction, base.TagAction),
		DMARCEnforce:   pick(p.DMARCEnforce, base.DMARCEnforce),
		MaxMessageSize: pick(p.MaxMessageSize, base.MaxMessageSize),
		SenderAllow:    pickList(p.SenderAllow, base.SenderAllow),
		SenderBlock:    pickList(p.SenderBlock, base.SenderBlock),
		IPAllow:        pickList(p.IPAllow, base.IPAllow),
		IPBlock:        pickList(p.IPBlock, base.IPBlock),
	}
}

// pick is own when set, else base: nil inherits.
func pick[T any](own, base *T) *T {
	if own != nil {
		return own
	}
	return base
}

// pickList is pick for lists: nil inherits, an empty list clears.
func pickList[T any](own, base []T) []T {
	if own != nil {
		return own
	}
	return base
}

func checkSender(s string) error {
	if s == "" || len(s) > maxListEntryLen || hasControl(s) || strings.ContainsAny(s, " \t") {
		return fmt.Errorf("%q is not an address or a domain", s)
	}
	local, dom, hasAt := strings.Cut(s, "@")
	if !hasAt {
		dom = local
	} else if local == "" {
		return fmt.Errorf("%q has an empty local part", s)
	} else if strings.Contains(local, "*") {
		// matchesSender compares a whole address: "*@spammer.example",
		// as SpamAssassin's lists write a domain, matched only the
		// sender whose local part is "*", so it blocked nothing.
		return fmt.Errorf("%q: entries have no wildcards; the domain alone (%s) matches every address at it and its subdomains", s, dom)
	}
	if _, err := NormalizeDomain(dom); err != nil {
		return fmt.Errorf("%q: %w", s, err)
	}
	return nil
}

// checkIP takes what the config's network keys take: parseIPs matches a
// prefix by its network bits, so 10.1.2.3/8 let all of 10/8 skip the
// filters (or be refused) where one address may have been meant, and a
// zoned address, which no client's is, matched nothing.
func checkIP(s string) error {
	_, err := netguard.ParsePrefix(s)
	return err
}

func hasControl(s string) bool {
	return strings.ContainsFunc(s, unicode.IsControl)
}

// Normalize validates d in place (the name becomes its ASCII form, the
// rules their normalised form) as newDomain will build it.
func (d *DomainRecord) Normalize() error {
	if d.TLS == "" {
		d.TLS = string(TLSOpportunistic)
	}
	dom, fe := newDomain(domainSpec{Name: d.Name, Route: d.Route, TLS: d.TLS, Routes: d.Routes})
	checkInput(fe, dom.Name, d.Route, d.Routes)
	if _, bad := fe["name"]; !bad {
		d.Name = dom.Name
	}
	if d.CustomerID <= 0 {
		fe["customer_id"] = "required"
	}
	maps.Copy(fe, d.Policy.Validate("policy."))
	if len(fe) == 0 {
		d.Routes = dom.Routes.normalized()
	}
	return fe.Err()
}

// NormalizeLocal validates a recipient's local part (or a full address at
// domain) and returns it lower-cased, as AcceptsRecipient compares.
func NormalizeLocal(s, domain string) (string, error) {
	s = strings.TrimSpace(s)
	local, dom, hasAt := strings.Cut(s, "@")
	local = mailaddr.FoldLocal(local)
	if hasAt && !atDomain(dom, domain) {
		return "", fmt.Errorf("%s is not an address at %s", quoted(s), domain)
	}
	if local == "" || len(local) > 64 {
		return "", fmt.Errorf("%s: a local part has 1 to 64 characters", quoted(s))
	}
	for _, r := range local {
		// RFC 5322 atext plus '.', the dot-atom form; quoted local parts are
		// not worth the trouble in a recipient list.
		if r > 0x7e || r <= ' ' || strings.ContainsRune(`"(),:;<>@[\]`, r) {
			return "", fmt.Errorf("%s: invalid character %q in a local part", quoted(s), r)
		}
	}
	return local, nil
}

// atDomain reports whether dom is a spelling of domain (its stored name,
// an A-label) as the SMTP session reads it (Directory.Lookup): the
// customer writes anna@bücher.example, not its A-label.
func atDomain(dom, domain string) bool {
	n, err := NormalizeDomain(dom)
	return err == nil && n == domain
}

// maxQuoted is how much of a refused value an error quotes.
const maxQuoted = 100

// quoted is s quoted for an error, cut to maxQuoted bytes. Errors reach
// API answers and panel pages, and an import's entries are as long as its
// body: one entry of 30 MiB of DEL bytes, quoted whole (four bytes each),
// made a 150 MB answer and 2.6 GB of allocations from one request.
func quoted(s string) string {
	if len(s) <= maxQuoted {
		return strconv.Quote(s)
	}
	n := maxQuoted
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return strconv.Quote(s[:n]) + "..."
}

// checkDNSName enforces RFC 1035 host syntax on an ASCII name, which
// idna.Lookup does not (it accepts empty and over-long labels): the API
// must not store a domain no MX record can name.
func checkDNSName(name string) error {
	if len(name) > 253 {
		return errors.New("longer than 253 bytes")
	}
	labels := strings.Split(name, ".")
	for _, label := range labels {
		switch {
		case label == "":
			return fmt.Errorf("%q has an empty label", name)
		case len(label) > 63:
			return fmt.Errorf("%q has a label longer than 63 bytes", name)
		case label[0] == '-' || label[len(label)-1] == '-':
			return fmt.Errorf("%q has a label starting or ending with '-'", name)
		}
		for _, r := range label {
			if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
				return fmt.Errorf("%q: invalid character %q", name, r)
			}
		}
	}
	// No top-level domain is all digits (RFC 3696 §2): such a name is an
	// IPv4 address ("127.0.0.1") or could be mistaken for one.
	if strings.Trim(labels[len(labels)-1], "0123456789") == "" {
		return fmt.Errorf("%q ends in an all-numeric label: an address, not a domain name", name)
	}
	return nil
}
