// Package notify sends quarantine digests: on a schedule, each recipient
// with held mail gets one email listing it, under its reseller's name,
// with signed, expiring one-click release links, through a configured
// smarthost. Digests are a singleton job (a lease in the shared store) and
// each recipient's digest of a period is recorded before it is sent, so
// even two nodes that both believe they lead send it once.
package notify

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"hash"
	"io"
	"log/slog"
	"mime"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/emersion/go-message/textproto"
	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"github.com/mxgrid/mxgrid/fsperm"
	"github.com/mxgrid/mxgrid/internal/keycheck"
	"github.com/mxgrid/mxgrid/internal/periodic"
	"github.com/mxgrid/mxgrid/mailaddr"
	"github.com/mxgrid/mxgrid/netguard"
	"github.com/mxgrid/mxgrid/quarantine"
	"github.com/mxgrid/mxgrid/replytext"
	"github.com/mxgrid/mxgrid/tenant"
	"github.com/mxgrid/mxgrid/tracking"
)

// Config is the `notify:` section.
type Config struct {
	// Smarthost (host:port) relays digests; empty sends none.
	Smarthost string `yaml:"smarthost"`
	// SmarthostTLS: starttls (required, the default) or none (a smarthost
	// on a trusted network only).
	SmarthostTLS string `yaml:"smarthost_tls"`
	// Username and PasswordFile authenticate (AUTH PLAIN, over TLS).
	Username     string `yaml:"username"`
	PasswordFile string `yaml:"password_file"`
	// From is the digests' sender address.
	From string `yaml:"from"`
	// DigestInterval is the period of one digest per recipient.
	DigestInterval time.Duration `yaml:"digest_interval"`
	// LinkTTL is how long a release link works.
	LinkTTL time.Duration `yaml:"link_ttl"`
	// CheckInterval is how often the leader looks for recipients whose
	// digest of the current period is not sent yet.
	CheckInterval time.Duration `yaml:"check_interval"`
	// LinkKeys sign links (base64, at least 32 bytes each): the first
	// signs, all verify. Every node needs the same keys; with none, a node
	// makes one at start and its links die with it.
	LinkKeys []string `yaml:"link_keys"`
	// MaxPerDomain bounds the digests one domain gets in a period. A
	// catch-all domain's quarantine holds spam for every address a
	// dictionary attack made up, and each would get a digest of its own,
	// a flood of them into the customer's catch-all mailbox every day.
	MaxPerDomain int `yaml:"max_per_domain"`
}

// Smarthost TLS modes.
const (
	TLSStartTLS = "starttls"
	TLSNone     = "none"
)

// DefaultConfig sends no digests until a smarthost is set.
func DefaultConfig() Config {
	return Config{SmarthostTLS: TLSStartTLS, DigestInterval: 24 * time.Hour, CheckInterval: 10 * time.Minute, LinkTTL: 7 * 24 * time.Hour,
		MaxPerDomain: 1000}
}

// Validate checks the section; messages name the key.
func (c Config) Validate() error {
	if c.Smarthost != "" {
		if _, err := netguard.ParseTarget(c.Smarthost); err != nil {
			return fmt.Errorf("smarthost: %w", err)
		}
	}
	// The address is the digests' MAIL FROM and From field; one the
	// smarthost refuses, or a CR LF go-smtp will not send, failed every
	// digest at run time, counted but otherwise unseen.
	if c.From != "" {
		if a, err := mailaddr.ParseDecoded(c.From); err != nil || a.IsNull() || a.SourceRouted() || !a.ASCII() || a.Domain == "" {
			return fmt.Errorf("from: %q is not an ASCII mailbox address", c.From)
		}
	}
	switch {
	case c.SmarthostTLS != TLSStartTLS && c.SmarthostTLS != TLSNone:
		return errors.New("smarthost_tls: must be starttls or none")
	case (c.Username == "") != (c.PasswordFile == ""):
		// Without a password file each digest's AUTH read "" and failed;
		// without a username the password was ignored and none was sent.
		return errors.New("username, password_file: set both or neither")
	case c.Username != "" && c.SmarthostTLS == TLSNone:
		return errors.New("username: AUTH needs smarthost_tls: starttls (the password would travel in clear)")
	case c.DigestInterval < time.Hour:
		return errors.New("digest_interval: at least 1h")
	case c.CheckInterval < periodic.MinInterval || c.CheckInterval > c.DigestInterval:
		return fmt.Errorf("check_interval: at least %s, at most digest_interval", periodic.MinInterval)
	case c.LinkTTL < time.Hour:
		return errors.New("link_ttl: at least 1h")
	case c.MaxPerDomain < 1:
		return errors.New("max_per_domain: at least 1")
	}
	_, err := c.Keys()
	return err
}

// Keys decodes LinkKeys; with none it makes a random one.
func (c Config) Keys() ([][]byte, error) {
	if len(c.LinkKeys) == 0 {
		k := make([]byte, 32)
		rand.Read(k)
		return [][]byte{k}, nil
	}
	keys := make([][]byte, len(c.LinkKeys))
	for i, s := range c.LinkKeys {
		k, err := base64.StdEncoding.DecodeString(s)
		if err != nil || len(k) < 32 {
			return nil, fmt.Errorf("link_keys[%d]: base64 of at least 32 random bytes (mxgrid keygen)", i)
		}
		// Whoever has the key signs links that release held mail: one
		// typed or copied ("AAAA…", a phrase) is refused as gossip's is.
		if err := keycheck.KeyProblem(k); err != nil {
			return nil, fmt.Errorf("link_keys[%d]: %w", i, err)
		}
		keys[i] = k
	}
	return keys, nil
}

// Store is what digests need of the shared store; *store.Store.
type Store interface {
	TryLease(ctx context.Context, name, holder string, ttl time.Duration, now time.Time) (bool, error)
	MarkDigest(ctx context.Context, recipient, run string, now time.Time) (bool, error)
	UnmarkDigest(ctx context.Context, recipient, run string) error
	DigestsSent(ctx context.Context, run string) ([]string, error)
	PruneDigests(ctx context.Context, before time.Time) (int64, error)
	OptedOut(ctx context.Context, domainID, customerID int64, recipient string) (bool, error)
	BrandOf(ctx context.Context, customerID int64) (string, error)
}

// Lister lists held mail; *quarantine.Service.
type Lister interface {
	List(ctx context.Context, f quarantine.Filter) ([]quarantine.Item, error)
}

// Domains finds the domain that serves a name now; *tenant.Directory.
type Domains interface {
	Lookup(name string) (*tenant.Domain, bool)
}

// Digests sends the digests.
type Digests struct {
	cfg         Config
	maxRunItems int
	keys        [][]byte
	store       Store
	items       Lister
	domains     Domains
	baseURL     string
	hostname    string
	holder      string
	leader      func() bool
	now         func() time.Time
	log         *slog.Logger
	sent        *prometheus.CounterVec
	capped      prometheus.Gauge
}

// Options are a Digests' collaborators.
type Options struct {
	Store Store
	Items Lister
	// Domains is the tenant directory: a digest lists only what the
	// domain now serving the recipient's name held.
	Domains Domains
	// Keys, when set, are the link keys (else cfg's): the node verifies
	// digests that come back to it (Owns) with the same.
	Keys [][]byte
	// BaseURL is http.public_url: links point there.
	BaseURL string
	// Hostname introduces us to the smarthost; Holder names this node in
	// the lease.
	Hostname, Holder string
	Leader           func() bool
	Now              func() time.Time
	Log              *slog.Logger
	Registerer       prometheus.Registerer
}

// New returns the digest job.
func New(cfg Config, opts Options) (*Digests, error) {
	keys := opts.Keys
	if len(keys) == 0 {
		var err error
		if keys, err = cfg.Keys(); err != nil {
			return nil, fmt.Errorf("notify: %w", err)
		}
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.From == "" {
		cfg.From = "quarantine@" + opts.Hostname
	}
	if cfg.Username != "" {
		// Read at each send, so that it can be rotated; read once here too,
		// so a missing or empty file stops the start rather than failing
		// every digest.
		pw, err := fsperm.ReadSecret(cfg.PasswordFile)
		if err == nil && strings.TrimSpace(string(pw)) == "" {
			err = fmt.Errorf("%s is empty", cfg.PasswordFile)
		}
		if err != nil {
			return nil, fmt.Errorf("notify.password_file: %w", err)
		}
	}
	if opts.Domains == nil {
		return nil, errors.New("notify: no tenant directory")
	}
	d := &Digests{cfg: cfg, keys: keys, store: opts.Store, items: opts.Items, domains: opts.Domains, baseURL: strings.TrimRight(opts.BaseURL, "/"),
		hostname: opts.Hostname, holder: opts.Holder, leader: opts.Leader, now: opts.Now, log: opts.Log.With("component", "digest"),
		maxRunItems: maxRunItems,
		sent: promauto.With(opts.Registerer).NewCounterVec(prometheus.CounterOpts{
			Name: "mxgrid_notify_digests_total",
			Help: "Quarantine digests by result: sent; deferred (the smarthost was unreachable or answered 4xx before it took the digest: sent at a later check); failed (refused with 5xx, or the connection lost after the digest's end: not sent again this period).",
		}, []string{"result"}),
		capped: promauto.With(opts.Registerer).NewGauge(prometheus.GaugeOpts{
			Name: "mxgrid_notify_capped_messages",
			Help: "Held messages the last digest run listed in no digest, their recipient's domain having had notify.max_per_domain digests this period (a catch-all domain under a dictionary attack).",
		})}
	// Every result from the start, so a rate over "deferred" is not
	// missing until the smarthost first fails.
	for _, result := range [...]string{"sent", "deferred", "failed"} {
		d.sent.WithLabelValues(result)
	}
	return d, nil
}

// Keys are the link keys in use (the link handler verifies with them).
func (d *Digests) Keys() [][]byte { return d.keys }

// leaseTTL covers one run.
const leaseTTL = 15 * time.Minute

// Run sends each period's digests until ctx ends.
func (d *Digests) Run(ctx context.Context) error {
	periodic.Every(ctx, d.cfg.CheckInterval, nil, func(ctx context.Context) {
		if _, err := d.RunOnce(ctx); err != nil && ctx.Err() == nil {
			d.log.Warn("digest run", "err", err)
		}
	})
	return nil
}

// RunOnce sends this period's digests not yet sent, when this node leads
// and holds the lease; it returns how many it sent.
func (d *Digests) RunOnce(ctx context.Context) (int, error) {
	if d.leader != nil && !d.leader() {
		return 0, nil
	}
	now := d.now()
	ok, err := d.store.TryLease(ctx, "digest", d.holder, leaseTTL, now)
	if err != nil || !ok {
		return 0, err
	}
	period := now.UTC().Truncate(d.cfg.DigestInterval)
	run := period.Format(time.RFC3339)
	// A record only has to outlive its period: older ones would pile up,
	// one a recipient a period, for ever.
	if _, err := d.store.PruneDigests(ctx, period.Add(-d.cfg.DigestInterval)); err != nil {
		return 0, err
	}
	sentBefore, err := d.store.DigestsSent(ctx, run)
	if err != nil {
		return 0, err
	}
	byRcpt, more, capped, err := d.held(ctx, sentBefore)
	if err != nil {
		return 0, err
	}
	d.capped.Set(float64(capped))
	rcpts := make([]string, 0, len(byRcpt))
	for r := range byRcpt {
		rcpts = append(rcpts, r)
	}
	sort.Strings(rcpts)
	sent := 0
	for _, rcpt := range rcpts {
		// Read before the record: failing once recorded, it was counted
		// as a digest the smarthost refused and left recorded, and a
		// blip of the store cost the recipient the period's digest.
		brand, err := d.store.BrandOf(ctx, byRcpt[rcpt][0].CustomerID)
		if err != nil {
			return sent, err
		}
		// Recorded first: a digest is sent at most once per period, even
		// by two runs at once. Only one the smarthost cannot have taken
		// is forgotten again, for a later check to send.
		first, err := d.store.MarkDigest(ctx, rcpt, run, now)
		if err != nil {
			return sent, err
		}
		if !first {
			continue
		}
		if err := d.send(ctx, rcpt, brand, byRcpt[rcpt], more[rcpt]); err != nil {
			var nt notTaken
			if !errors.As(err, &nt) {
				d.sent.WithLabelValues("failed").Inc()
				d.log.Warn("sending a digest", "recipient", rcpt, "err", err)
				continue
			}
			d.sent.WithLabelValues("deferred").Inc()
			d.log.Warn("sending a digest, deferred to the next check", "recipient", rcpt, "err", err)
			// Also when the run is being stopped, which may be why the
			// send failed (its dial cancelled): left recorded, the
			// digest was not sent that period at all.
			if err := d.store.UnmarkDigest(context.WithoutCancel(ctx), rcpt, run); err != nil {
				return sent, err
			}
			if nt.smarthostDown {
				// The rest would each wait out the same timeouts.
				return sent, nil
			}
			continue
		}
		d.sent.WithLabelValues("sent").Inc()
		sent++
	}
	return sent, nil
}

// maxDigestItems bounds the messages one digest lists. Anyone can have a
// recipient's quarantine fill (a domain holds up to max_bytes_per_domain,
// a gigabyte by default: hundreds of thousands of small messages), and
// each listed message is its sender, its subject (up to 998 bytes) and a
// signed link: the digest was built whole in memory, and past the smarthost's
// size limit refused, so flooding a recipient with spam also cost them the
// digest that would show them their real mail among it. No reader goes
// through more than this many entries of a mail anyway.
const maxDigestItems = 100

// maxRunItems bounds the held items one run keeps in memory, whatever the
// quarantines hold (a gigabyte a domain by default: hundreds of thousands
// of small messages, each to another made-up address of a catch-all
// domain). A run that reaches it sends what it kept, saying so to the
// recipients it kept some of whose older mail it did not keep; the
// recipients it left for later are the next check's (check_interval),
// since the recipients this period already sent to are skipped.
const maxRunItems = 50000

// held groups the held items by recipient (as mailbox folds it), newest
// first, at most maxDigestItems+1 per recipient (the one more tells
// compose that the list is cut), for recipients not in sent (their digest
// of this period is recorded), not opted out and not of a domain that had
// cfg.MaxPerDomain digests this period (it returns how many such items it
// left out), keeping at most d.maxRunItems items in all: past them it
// reads on only to learn which recipients it kept some of have older ones
// (more), which their digests say; cut there, a recipient with two held
// read "1 message(s)". Opted-out recipients are left out first: counted,
// they took their domain's digests and the run's items every period though
// they get no digest, and recipients who want theirs got none. It leaves
// out items of a domain that no longer serves its name as it did (deleted,
// renamed, moved to another customer, suspended or awaiting proof): the
// name's mailboxes may be another tenant's now, who must not read the old
// tenant's senders and subjects, and a release of them delivers nothing
// (smtpd.Releaser applies the same rule).
func (d *Digests) held(ctx context.Context, sent []string) (byRcpt map[string][]quarantine.Item, more map[string]bool, capped int, err error) {
	done := make(map[string]bool, len(sent))
	perDomain := map[string]int{}
	for _, r := range sent {
		done[r] = true
		perDomain[recipientDomain(r)]++
	}
	out := map[string][]quarantine.Item{}
	more = map[string]bool{}
	kept := 0
	f := quarantine.Filter{Scope: tracking.Scope{Operator: true}, State: quarantine.StateHeld, Limit: 500}
	for {
		page, err := d.items.List(ctx, f)
		if err != nil {
			return nil, nil, 0, err
		}
		for _, it := range page {
			if dom, ok := d.domains.Lookup(it.Domain); !ok || dom.ID != it.DomainID || dom.CustomerID != it.CustomerID {
				continue
			}
			for _, r := range it.Recipients {
				r = mailbox(r)
				if done[r] {
					continue
				}
				list, listed := out[r]
				if kept >= d.maxRunItems {
					if listed {
						// Its digest does without this older one,
						// but must not read as the whole list.
						more[r] = true
					}
					continue
				}
				if !listed {
					dom := recipientDomain(r)
					if perDomain[dom] >= d.cfg.MaxPerDomain {
						capped++
						continue
					}
					// After the cap: a catch-all domain's thousands
					// of made-up recipients cost no look-up each.
					optedOut, err := d.store.OptedOut(ctx, it.DomainID, it.CustomerID, r)
					if err != nil {
						return nil, nil, 0, err
					}
					if optedOut {
						done[r] = true
						continue
					}
					perDomain[dom]++
				}
				if len(list) <= maxDigestItems { // pages go newest first
					out[r] = append(list, it)
					kept++
				}
			}
		}
		if len(page) < f.Limit {
			return out, more, capped, nil
		}
		f.Before = page[len(page)-1].ID
	}
}

// mailbox is a recipient as digests group it, opt-outs record it and
// links match it: the local part folded as recipient lists fold it
// (mailaddr.FoldLocal: lower-cased, but no character outside ASCII folds
// into ASCII), the domain lower-cased. strings.ToLower and EqualFold fold
// the Kelvin sign into k and the long s into s: mail held for
// "\u212aate@a.example", another mailbox to the customer's server and to
// the domain's recipient list, was listed (sender, subject) in kate's
// digest, with a link that released it, and its opt-out opted kate out.
func mailbox(addr string) string {
	i := strings.LastIndexByte(addr, '@')
	if i < 0 {
		return mailaddr.FoldLocal(addr)
	}
	return mailaddr.FoldLocal(addr[:i]) + strings.ToLower(addr[i:])
}

// recipientDomain is the domain part of a recipient as mailbox folds it.
func recipientDomain(rcpt string) string {
	return rcpt[strings.LastIndexByte(rcpt, '@')+1:]
}

// spellHours says d, rounded to the hour, as the digest's reader would:
// "7 days", "1 day", "36 hours" (a Duration prints "168h0m0s").
func spellHours(d time.Duration) string {
	h := int64(d.Round(time.Hour) / time.Hour)
	n, unit := h, "hour"
	if h%24 == 0 {
		n, unit = h/24, "day"
	}
	if n != 1 {
		unit += "s"
	}
	return fmt.Sprintf("%d %s", n, unit)
}

// link is the URL of l signed, expiring after cfg.LinkTTL.
func (d *Digests) link(l Link) string {
	l.Expires = d.now().Add(d.cfg.LinkTTL)
	return d.baseURL + "/q/" + string(l.Action) + "/" + Sign(l, d.keys[0])
}

// compose writes the digest: text only, the held messages' details in the
// body (never in headers, where their hostile text could do harm). It
// lists the first maxDigestItems of items (newest first, as held gives
// them) and says when there are more: past those, or, with more, past all
// of items. Its opt-out link is for the domain and customer of items,
// which held gives only of the domain now serving the name.
func (d *Digests) compose(rcpt, brand string, items []quarantine.Item, more bool) []byte {
	if brand == "" {
		brand = "Mail filter"
	}
	brand = oneLine(brand)
	if len(items) > maxDigestItems {
		items, more = items[:maxDigestItems], true
	}
	count := fmt.Sprintf("%d message(s)", len(items))
	if more {
		count = fmt.Sprintf("more than %d messages", len(items))
	}
	// Quoted-printable, not 8bit: a held subject may be 998 bytes and a
	// link to a 480-byte recipient near 1000, and a line past 998 octets
	// (RFC 5322 2.1.1, 5321 4.5.3.1.6) has a strict smarthost (Exim's
	// message_linelength_limit) refuse the whole digest: one spam with a
	// long subject cost its recipient every digest while it was held. QP
	// folds lines at 76 without changing the text, and needs no 8BITMIME.
	var text bytes.Buffer
	body := quotedprintable.NewWriter(&text)
	fmt.Fprintf(body, "%s held these messages for %s because they look like spam.\r\n", brand, rcpt)
	io.WriteString(body, "If one is yours, open its release link: it is delivered to your mailbox.\r\n\r\n")
	if more {
		fmt.Fprintf(body, "More than %d messages are held for you: these are the newest %[1]d; your provider can show you the others.\r\n\r\n", len(items))
	}
	for _, it := range items {
		// The subject's line is labelled: bare, indented as the Release
		// line under it, a subject "Release: https://evil..." read as the
		// message's own release link.
		fmt.Fprintf(body, "%s  from %s\r\n  Subject: %s\r\n  Release: %s\r\n\r\n", it.Time.UTC().Format("2006-01-02 15:04 UTC"), oneLine(mailaddr.WithALabel(it.Sender)),
			oneLine(it.Subject), d.link(Link{Action: ActionRelease, ItemID: it.ID, Recipient: rcpt}))
	}
	optOut := Link{Action: ActionOptOut, ItemID: items[0].DomainID, CustomerID: items[0].CustomerID, Recipient: rcpt}
	fmt.Fprintf(body, "Links work for %s. No more of these digests: %s\r\n", spellHours(d.cfg.LinkTTL), d.link(optOut))
	body.Close()
	var b bytes.Buffer
	b.Grow(1024 + text.Len())
	// The brand is a display name only: quoted, or encoded without RFC
	// 2047's forbidden specials, so no name makes another address.
	fmt.Fprintf(&b, "From: %s\r\n", (&mail.Address{Name: brand + " quarantine", Address: d.cfg.From}).String())
	fmt.Fprintf(&b, "To: <%s>\r\n", rcpt)
	fmt.Fprintf(&b, "Subject: %s\r\n", mime.QEncoding.Encode("utf-8", fmt.Sprintf("%s: %s held for you", brand, count)))
	fmt.Fprintf(&b, "Date: %s\r\nMessage-ID: <digest-%d@%s>\r\n", d.now().Format(time.RFC1123Z), d.now().UnixNano(), d.hostname)
	at := d.now().Unix()
	sig, _ := bodyMACs(d.keys[:1], rcpt, at, bytes.NewReader(text.Bytes()))
	fmt.Fprintf(&b, "%s: %d.%s\r\n", signatureField, at, base64.RawURLEncoding.EncodeToString(sig[0]))
	b.WriteString("MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\nAuto-Submitted: auto-generated\r\n\r\n")
	b.Write(text.Bytes())
	return b.Bytes()
}

// A digest goes through the smarthost to its recipient's MX, which is
// this cluster, and was scanned there as any mail: a list of spam
// subjects and senders reads as spam does, so a recipient with much mail
// held had the digest tagged, or held in the very quarantine it reports
// on, never seen and listed in the next one. A digest carries a signature
// of its recipient, its time and its body (under the link keys, with a
// prefix no link's payload has), and the node it comes back to delivers
// it as an allow-listed client's mail (Owns) while its links work: an old
// digest sent again, whose subjects were written by spammers, is scanned.
const signatureField = "X-Mxgrid-Digest"

// signatureSkew is how far in the future a digest's time may be: the
// clocks of the node that wrote it and the one it comes back to differ.
const signatureSkew = 5 * time.Minute

// maxSignedBody bounds what Owns reads of a message claiming to be a
// digest: one lists at most maxDigestItems messages of a few KB each.
const maxSignedBody = 4 << 20

// bodyMACs are the signatures under each of keys of a digest for rcpt
// written at (Unix seconds) whose body is read from body; false when it is
// over maxSignedBody or cannot be read.
func bodyMACs(keys [][]byte, rcpt string, at int64, body io.Reader) ([][]byte, bool) {
	ws := make([]io.Writer, len(keys))
	macs := make([]hash.Hash, len(keys))
	for i, k := range keys {
		macs[i] = hmac.New(sha256.New, k)
		io.WriteString(macs[i], "digest\x00"+mailbox(rcpt)+"\x00"+strconv.FormatInt(at, 10)+"\x00")
		ws[i] = macs[i]
	}
	n, err := io.Copy(io.MultiWriter(ws...), io.LimitReader(body, maxSignedBody+1))
	if err != nil || n > maxSignedBody {
		return nil, false
	}
	out := make([][]byte, len(macs))
	for i, m := range macs {
		out[i] = m.Sum(nil)
	}
	return out, true
}

// Owns reports whether a message for rcpt, with header h and the body
// body returns, is a digest signed with one of keys less than maxAge
// (notify.link_ttl) before now. The body is read only when the header
// carries a signature of that age.
func Owns(keys [][]byte, maxAge time.Duration, now time.Time, rcpt string, h textproto.Header, body func() io.Reader) bool {
	ats, sig64, ok := strings.Cut(h.Get(signatureField), ".")
	at, err := strconv.ParseInt(ats, 10, 64)
	if !ok || err != nil {
		return false
	}
	if t := time.Unix(at, 0); !t.After(now.Add(-maxAge)) || t.After(now.Add(signatureSkew)) {
		return false
	}
	sig, err := base64.RawURLEncoding.DecodeString(sig64)
	if err != nil || len(sig) != sha256.Size {
		return false
	}
	macs, ok := bodyMACs(keys, rcpt, at, body())
	if !ok {
		return false
	}
	for _, m := range macs {
		if hmac.Equal(m, sig) {
			return true
		}
	}
	return false
}

// oneLine keeps a sender's text on its line of the digest, as it is
// drawn too (replytext.Sanitize): control characters, Unicode line and
// paragraph separators (a line break for some mail clients: a subject
// could start a "Release:" line of its own) and bidirectional embeddings,
// overrides and isolates (which run the text after them backwards) become
// spaces, and each run of white space one space: a client wraps a long
// run, and the text after it began a line of its own. The letters fonts
// draw blank (Hangul fillers, the blank braille pattern) count as white
// space: a run of them padded the text to a wrap as well as spaces did.
func oneLine(s string) string { return replytext.Sanitize(blankLetters.Replace(s), len(s)) }

// blankLetters maps the characters that are no white space to Unicode but
// are drawn as a blank to a space.
var blankLetters = strings.NewReplacer("\u115f", " ", "\u1160", " ", "\u2800", " ", "\u3164", " ", "\uffa0", " ")

// smtpTimeout bounds each smarthost command.
const smtpTimeout = 30 * time.Second

// notTaken is a send the smarthost cannot have taken: it failed before
// the digest's end was written, or the smarthost answered it with 4xx.
// smarthostDown: it failed before any transaction, so the run's other
// digests would fail the same way.
type notTaken struct {
	err           error
	smarthostDown bool
}

func (e notTaken) Error() string { return e.err.Error() }
func (e notTaken) Unwrap() error { return e.err }

// errNoSMTPUTF8: the digest of a non-ASCII mailbox needs SMTPUTF8.
var errNoSMTPUTF8 = errors.New("the recipient's mailbox is not ASCII, and the smarthost does not offer SMTPUTF8")

// deferrable reports whether a digest that failed with err before its end
// was written may be sent again: anything but the smarthost's 5xx, or a
// mailbox it cannot take, which would only fail again.
func deferrable(err error) bool {
	var se *smtp.SMTPError
	if errors.As(err, &se) {
		return se.Code/100 == 4
	}
	return !errors.Is(err, errNoSMTPUTF8)
}

// send mails one digest, under brand (more: items are not all the
// recipient's held mail). An error that is a notTaken leaves
// nothing at the smarthost; any other may (a connection lost after the
// digest's end) or is a refusal for good.
func (d *Digests) send(ctx context.Context, rcpt, brand string, items []quarantine.Item, more bool) error {
	msg := d.compose(rcpt, brand, items, more)
	c, err := d.dial(ctx)
	if err != nil {
		if deferrable(err) {
			return notTaken{err: err, smarthostDown: true}
		}
		return err
	}
	defer c.Close()
	if err := d.transaction(c, rcpt); err != nil {
		if deferrable(err) {
			return notTaken{err: err}
		}
		return err
	}
	w, err := c.Data()
	if err != nil {
		if deferrable(err) {
			return notTaken{err: fmt.Errorf("smarthost DATA: %w", err)}
		}
		return fmt.Errorf("smarthost DATA: %w", err)
	}
	if _, err := w.Write(msg); err != nil {
		// The end was not written: the smarthost drops what it got.
		return notTaken{err: fmt.Errorf("smarthost DATA: %w", err)}
	}
	if err := w.Close(); err != nil {
		var se *smtp.SMTPError
		if errors.As(err, &se) && se.Code/100 == 4 {
			return notTaken{err: fmt.Errorf("smarthost DATA: %w", err)}
		}
		return fmt.Errorf("smarthost DATA: %w", err)
	}
	// Taken: QUIT is a courtesy, its failure changes nothing.
	_ = c.Quit()
	return nil
}

// dial connects and greets the smarthost, with STARTTLS and AUTH as
// configured.
func (d *Digests) dial(ctx context.Context) (*smtp.Client, error) {
	dialer := net.Dialer{Timeout: smtpTimeout}
	conn, err := dialer.DialContext(ctx, "tcp", d.cfg.Smarthost)
	if err != nil {
		return nil, fmt.Errorf("smarthost %s: %w", d.cfg.Smarthost, err)
	}
	c := smtp.NewClient(conn)
	c.CommandTimeout, c.SubmissionTimeout = smtpTimeout, smtpTimeout
	fail := func(err error) (*smtp.Client, error) {
		c.Close()
		return nil, err
	}
	if err := c.Hello(d.hostname); err != nil {
		return fail(fmt.Errorf("smarthost EHLO: %w", err))
	}
	if d.cfg.SmarthostTLS == TLSStartTLS {
		host, _, _ := net.SplitHostPort(d.cfg.Smarthost)
		if err := c.StartTLS(&tls.Config{ServerName: host, MinVersion: tls.VersionTLS12}); err != nil {
			return fail(fmt.Errorf("smarthost STARTTLS: %w", err))
		}
	}
	if d.cfg.Username != "" {
		pw, err := fsperm.ReadSecret(d.cfg.PasswordFile)
		if err != nil {
			return fail(fmt.Errorf("smarthost password: %w", err))
		}
		if err := c.Auth(sasl.NewPlainClient("", d.cfg.Username, strings.TrimSpace(string(pw)))); err != nil {
			return fail(fmt.Errorf("smarthost AUTH: %w", err))
		}
	}
	return c, nil
}

// transaction sends MAIL and RCPT. A recipient with a non-ASCII mailbox
// (held from an SMTPUTF8 transaction) is sent with SMTPUTF8, as its
// digest's To field is UTF-8 (RFC 6531, 6532): without it a smarthost
// would refuse the address, or pass on a header it may not.
func (d *Digests) transaction(c *smtp.Client, rcpt string) error {
	var opts *smtp.MailOptions
	if !mailaddr.IsASCII(rcpt) {
		if ok, _ := c.Extension("SMTPUTF8"); !ok {
			return fmt.Errorf("smarthost: %w", errNoSMTPUTF8)
		}
		opts = &smtp.MailOptions{UTF8: true}
	}
	if err := c.Mail(d.cfg.From, opts); err != nil {
		return fmt.Errorf("smarthost MAIL: %w", err)
	}
	if err := c.Rcpt(rcpt, nil); err != nil {
		return fmt.Errorf("smarthost RCPT: %w", err)
	}
	return nil
}
