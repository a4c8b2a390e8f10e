// Package quarantine keeps mail between the tag and reject scores for
// domains whose policy says so (tag_action: quarantine) instead of
// delivering it tagged, and lets the customer release or delete it.
//
// A message is accepted (250) only after the store committed it, so
// nothing is lost; a release is recorded (held -> releasing, a conditional
// update) before the message is delivered, so a second or concurrent
// release, from any node, delivers nothing more.
package quarantine

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/mxgrid/mxgrid/internal/bytebudget"
	"github.com/mxgrid/mxgrid/internal/periodic"
	"github.com/mxgrid/mxgrid/tenant"
	"github.com/mxgrid/mxgrid/tracking"
)

// State is where an item is in its life.
type State string

const (
	StateHeld      State = "held"
	StateReleasing State = "releasing"
	// StateUnconfirmed: a release lost the customer's server after the
	// message was sent, so it may have been delivered; it is not
	// released again, and the retention removes it.
	StateUnconfirmed State = "unconfirmed"
	StateReleased    State = "released"
	StateDeleted     State = "deleted"
)

// Item is one quarantined message's metadata (the body is kept apart).
type Item struct {
	ID         int64
	Time       time.Time
	QueueID    string
	Domain     string
	DomainID   int64
	CustomerID int64
	Sender     string
	// SMTPUTF8: the sender's MAIL asked for SMTPUTF8 (RFC 6531), which a
	// release asks for again, as the live relay does: a UTF-8 header
	// field (RFC 6532) needs it. False for items held before quarantine
	// schema 5, or by a node not yet upgraded, which nothing recorded it
	// for: their release asks for it only for a non-ASCII address.
	SMTPUTF8   bool
	Recipients []string
	Subject    string
	MessageID  string
	Size       int64
	Score      float64
	Symbols    []string
	State      State
	// ReleasedBy names who released it (the audit actor).
	ReleasedBy string
	ReleasedAt time.Time
}

// Releasable is nil for a held item, else why it can be neither released
// nor deleted at now: ErrReleasing, an *AbandonedError or ErrNotHeld.
func (it Item) Releasable(now time.Time) error {
	switch it.State {
	case StateHeld:
		return nil
	case StateReleasing:
		if now.Sub(it.ReleasedAt) > ClaimAbandonedAfter {
			return &AbandonedError{Since: it.ReleasedAt, By: it.ReleasedBy}
		}
		return ErrReleasing
	case StateUnconfirmed:
		return &AbandonedError{Since: it.ReleasedAt, By: it.ReleasedBy}
	}
	return ErrNotHeld
}

// ClaimAbandonedAfter is an age no live release's claim reaches: the
// relay's default timeouts bound a delivery to about 17 minutes (two
// connects of 10 s, a dozen commands of 60 s with STARTTLS retried in
// clear, 5 minutes of data), and its outcome is written within seconds.
// A claim older than this was left by a node that stopped mid-release.
// It is also how long a release's caller is waited on (its HTTP answer).
const ClaimAbandonedAfter = 30 * time.Minute

// AwaitRelease lets the answer to a release, written to w, go out up to
// ClaimAbandonedAfter from now. The HTTP server's write timeout (90 s) is
// shorter than the relay lets a delivery take (up to 5 minutes for the
// data alone): a slow customer server's release finished, but its caller
// got a dropped connection instead of the outcome.
func AwaitRelease(w http.ResponseWriter) {
	// Unsupported only by a writer with no deadline to extend.
	_ = http.NewResponseController(w).SetWriteDeadline(time.Now().Add(ClaimAbandonedAfter))
}

// AbandonedError: the item's release began at Since and never finished
// (its node stopped during the delivery, or the customer's server was lost
// after the message was sent: StateUnconfirmed). Whether the customer's server
// took the message is unknown, so it is never released again (twice in a
// mailbox is worse than once in the quarantine) and retention removes it.
// Answered "being released right now", a claim hours old told every later
// caller to wait for a delivery that no node was making. It is also
// ErrNotHeld, not ErrReleasing.
type AbandonedError struct {
	Since time.Time
	By    string
}

func (e *AbandonedError) Error() string { return "quarantine: " + e.Message() }

// Message says so to whoever asked for a release or delete.
func (e *AbandonedError) Message() string {
	return "a release began at " + e.Since.UTC().Format(time.RFC3339) +
		" and did not finish (its node stopped, or lost the customer server after sending the message); whether the message was delivered is unknown, so it is not released again and is removed at the retention"
}

func (*AbandonedError) Is(target error) bool { return target == ErrNotHeld }

// Filter narrows a list; the scope comes from who asks.
type Filter struct {
	Scope      tracking.Scope
	DomainID   int64
	CustomerID int64
	// Search matches sender, recipients or subject (any case).
	Search string
	State  State
	// Before continues a previous page (ids descending).
	Before int64
	Limit  int
}

// Errors the service answers with.
var (
	// ErrOverCap: the domain's quarantine is full (the policy falls back
	// to tag and deliver).
	ErrOverCap = errors.New("quarantine: the domain's quarantine is full")
	// ErrTooLarge: the message is larger than a held message may be to be
	// opened again (MaxMessage); it is not held, and the policy falls back
	// to tag and deliver.
	ErrTooLarge = errors.New("quarantine: the message is too large to hold")
	// ErrHoldUnknown: the hold's commit went out and its outcome could
	// not be learnt (the store stalled or lost just then); the message
	// may be held. Delivered tagged as well, it would be in the mailbox
	// and releasable from the quarantine a second time: the sender is to
	// try again later.
	ErrHoldUnknown = errors.New("quarantine: whether the message was held is unknown")
	// ErrNotHeld: the item was released or deleted already (a second or
	// concurrent release).
	ErrNotHeld = errors.New("quarantine: the message is no longer held")
	// ErrReleasing: another release is delivering the item right now; if
	// the customer's server does not take it, it stays held. It is also
	// ErrNotHeld (not held now), but not "released or deleted": answered
	// so, a second click, a colleague's release or a delete was told the
	// message was gone, and found it held again after that delivery failed.
	ErrReleasing error = releasingError{}
	// ErrDelivery: the customer's server did not take the released
	// message; it stays held.
	ErrDelivery = errors.New("quarantine: delivery failed, the message stays held")
	// ErrMaybeDelivered: a Deliverer lost the customer's server after
	// sending the whole message, so the server may have taken it. The
	// release is not undone: put back to held, the message was delivered
	// again by the next release, the customer having been told it was
	// not delivered. It is also ErrDelivery.
	ErrMaybeDelivered error = maybeDeliveredError{}
	// ErrRecordPending: the customer's server took the released message,
	// but the store did not answer while the release was recorded. The
	// release happened: the item returned with it is released, and the
	// node records it when the store answers again (RecordPending).
	// Answered as the store's failure, the caller was invited to try a
	// release again that could only answer 409, for a message in the
	// mailbox.
	ErrRecordPending = errors.New("quarantine: delivered, but the store did not answer to record it; the node records it when the store answers again")
	// ErrBusy: the messages open on this node (previews, releases) hold
	// quarantine.max_open_bytes; nothing was done, try again shortly.
	ErrBusy = errors.New("quarantine: too many held messages open on this node; try again shortly")
)

// RefusedError is a delivery that failed for good: the customer's server
// refused the message with a permanent (5xx) reply, or the domain is no
// longer served as the one that held it. A release tried again gets the
// same answer until someone changes the server or the domain.
type RefusedError struct {
	// Reply is the customer's server's answer (code and text), or why
	// nothing was sent, fit to show whoever asked for the release: not
	// the route or the session's detail that Err has for the logs, the
	// API and the panel.
	Reply string
	Err   error
}

func (e *RefusedError) Error() string { return e.Err.Error() }
func (e *RefusedError) Unwrap() error { return e.Err }

type maybeDeliveredError struct{}

func (maybeDeliveredError) Error() string {
	return "quarantine: the connection to the customer's server was lost after the message was sent, so it may have been delivered; it is not released again, and is removed at the retention"
}

func (maybeDeliveredError) Is(target error) bool { return target == ErrDelivery }

type releasingError struct{}

func (releasingError) Error() string {
	return "quarantine: the message is being released right now; if its delivery fails, it stays held"
}

func (releasingError) Is(target error) bool { return target == ErrNotHeld }

// Store persists items; *store.Store implements it. Items another scope
// does not own are tenant.ErrNotFound.
type Store interface {
	// PutQuarantine holds one message, its body gz once for its items,
	// counting cost against the domain's maxBytesPerDomain.
	PutQuarantine(ctx context.Context, items []Item, gz []byte, cost, maxBytesPerDomain int64) ([]int64, error)
	ListQuarantine(ctx context.Context, f Filter) ([]Item, error)
	GetQuarantine(ctx context.Context, scope tracking.Scope, id int64) (Item, []byte, error)
	// QuarantineItem is GetQuarantine without the body.
	QuarantineItem(ctx context.Context, scope tracking.Scope, id int64) (Item, error)
	// ClaimRelease moves a held item to releasing and returns it with its
	// body; an item being released is ErrReleasing, another not held
	// ErrNotHeld.
	ClaimRelease(ctx context.Context, scope tracking.Scope, id int64, by string, now time.Time) (Item, []byte, error)
	// FinishRelease records the outcome of claim (as ClaimRelease returned
	// it, and no later claim): released, or back to held when the
	// delivery failed (a later release tries again).
	FinishRelease(ctx context.Context, claim Item, delivered bool, now time.Time) error
	// UnconfirmRelease records that claim's delivery may have taken place
	// (StateUnconfirmed), if the item is still that claim's.
	UnconfirmRelease(ctx context.Context, claim Item) error
	// DeleteQuarantine refuses an item not held as ClaimRelease does.
	DeleteQuarantine(ctx context.Context, scope tracking.Scope, id int64) error
	// PruneQuarantine deletes items older than before, and hands expired
	// those it deleted while still held or releasing (an abandoned claim).
	PruneQuarantine(ctx context.Context, before time.Time, expired func([]Item)) (int64, error)
	// SharedNow is the clock of a database the nodes share; ok is false
	// for one that is the node's own.
	SharedNow(ctx context.Context) (now time.Time, ok bool, err error)
	// QuarantineTakesHolds makes a hold's writes and takes them back.
	QuarantineTakesHolds(ctx context.Context) error
}

// Deliverer sends a released message to its domain's current route. The
// domain is named and identified: a name deleted or renamed since the
// message was held may be another tenant's domain now, and a domain moved
// to another customer (the message stays in the old customer's quarantine)
// may be another reseller's, whose server must not get the message (nor
// the releasing tenant an error naming that server), so a Deliverer
// delivers only while name is still domain id of customer CustomerID.
// smtputf8 is the held item's SMTPUTF8. A failure that trying again
// cannot mend is a *RefusedError.
type Deliverer interface {
	Deliver(ctx context.Context, domain HeldDomain, sender string, smtputf8 bool, rcpts []string, msg []byte) (reply string, err error)
}

// HeldDomain is the domain that held a message: its id, its customer and
// its name then.
type HeldDomain struct {
	ID         int64
	CustomerID int64
	Name       string
}

// Config is the `quarantine:` section.
type Config struct {
	// MaxBytesPerDomain caps a domain's held mail (uncompressed sizes);
	// past it the policy falls back to tag and deliver.
	MaxBytesPerDomain int64 `yaml:"max_bytes_per_domain"`
	// Retention: held items older than this are deleted.
	Retention     time.Duration `yaml:"retention"`
	PruneInterval time.Duration `yaml:"prune_interval"`
	// MaxOpenBytes bounds the held messages a node has open at once, for
	// previews and releases, at openFactor times their size; past it a
	// request waits up to openWait, then ErrBusy. Each GET of a preview decompressed and parsed its message
	// unbounded: a tenant (or a digest recipient) asking for a 25 MB
	// message a hundred times at once could take the node, and the mail
	// it filters, down.
	MaxOpenBytes int64 `yaml:"max_open_bytes"`
}

// DefaultConfig keeps 14 days, 1 GiB per domain.
func DefaultConfig() Config {
	return Config{MaxBytesPerDomain: 1 << 30, Retention: 14 * 24 * time.Hour, PruneInterval: time.Hour, MaxOpenBytes: 128 << 20}
}

// Validate checks the section; messages name the key.
func (c Config) Validate() error {
	switch {
	case c.MaxBytesPerDomain < 1<<20:
		return errors.New("max_bytes_per_domain: at least 1 MiB")
	case c.Retention < time.Hour:
		return errors.New("retention: at least 1h")
	case c.PruneInterval < periodic.MinInterval:
		return fmt.Errorf("prune_interval: at least %s", periodic.MinInterval)
	case c.MaxOpenBytes < 1<<20:
		return errors.New("max_open_bytes: at least 1 MiB")
	}
	return nil
}

// Tracker records a release in message tracking; *tracking.Recorder.
// Room says how many records Record takes before it drops the oldest.
type Tracker interface {
	Record(tracking.Record)
	Room() (free, size int)
}

// Service is the quarantine's one door: smtpd holds, the API, panel and
// CLI (through admin) list, preview, release and delete.
type Service struct {
	cfg     Config
	store   Store
	deliver Deliverer
	tracker Tracker
	now     func() time.Time
	// opened is what open messages hold of cfg.MaxOpenBytes.
	opened *bytebudget.Budget
	// owners, when set, has each reseller's items hold at most its share
	// (shareOf) of opened.
	owners   Owners
	sharesMu sync.Mutex
	shares   map[int64]*bytebudget.Budget
	log      *slog.Logger
	// pending are outcomes of releases the store did not take in time,
	// oldest first, for RecordPending to write.
	pendingMu sync.Mutex
	pending   []pendingOutcome
	// pendingStopped is why outcomes are no longer kept (GiveUpPending):
	// a release still running when the node stopped gives its own up.
	pendingStopped string
}

// pendingOutcome is a release's outcome waiting for the store: the claim
// as ClaimRelease returned it, whether the customer's server took the
// message, and when it answered.
type pendingOutcome struct {
	claim     Item
	delivered bool
	at        time.Time
}

// maxPending bounds the outcomes a node keeps for a store that does not
// answer: a few hundred bytes each. Past it the oldest is given up (its
// item reads, as before, as a release whose outcome is unknown).
const maxPending = 1000

// openFactor is what an open message costs per byte of its size: the
// compressed copy read from the store, the message decompressed, and what
// its reader makes of it (a preview's parse, a delivery's copy).
const openFactor = 3

// Owners says which reseller a customer is of; *store.Store.
type Owners interface {
	ResellerOf(ctx context.Context, customerID int64) (int64, error)
}

// ShareOpensAmong gives each reseller at most half of max_open_bytes for
// its customers' items, whoever opens them (o says whose an item is).
// Shared whole, one tenant releasing two big held messages at a time to a
// server of its own that answered each RCPT after a minute with 451 (the
// message held again, to be released again) kept every open byte of the
// node, and every other tenant's previews, releases and digest links
// answered 429.
func (s *Service) ShareOpensAmong(o Owners) { s.owners = o }

// shareOf is reseller's part of max_open_bytes, made at its first open: a
// few bytes per reseller that ever opened one on this node.
func (s *Service) shareOf(reseller int64) *bytebudget.Budget {
	s.sharesMu.Lock()
	defer s.sharesMu.Unlock()
	b, ok := s.shares[reseller]
	if !ok {
		b = bytebudget.New(s.cfg.MaxOpenBytes / 2)
		s.shares[reseller] = b
	}
	return b
}

// TrackReleases makes every release and delete a message-tracking record
// (one per recipient: a release delivered with the customer server's
// reply, a delete still quarantined, saying who deleted it).
func (s *Service) TrackReleases(t Tracker) { s.tracker = t }

// New returns a service; deliver may be nil on a node that only holds.
func New(cfg Config, st Store, deliver Deliverer, now func() time.Time) *Service {
	if now == nil {
		now = time.Now
	}
	return &Service{cfg: cfg, store: st, deliver: deliver, now: now, opened: bytebudget.New(cfg.MaxOpenBytes),
		shares: map[int64]*bytebudget.Budget{}, log: slog.New(slog.DiscardHandler)}
}

// LogTo logs what becomes of the outcomes the store did not take in time.
func (s *Service) LogTo(l *slog.Logger) { s.log = l }

// Hold stores the message read from msg, compressed as it is read (the
// message is never held whole uncompressed: a spooled one stays on disk),
// once for all its recipients, with one item per recipient (each is
// released or deleted on its own: one recipient's release link delivers to
// that recipient only), and returns the ids, or ErrOverCap, ErrTooLarge,
// or the store's error; the caller answers 250 only on success.
//
// it.Size, when known, sizes the compressed copy's buffer: grown by
// doubling instead, a 20 MB message that does not compress left 8 and 16
// MB buffers behind it, garbage the memory budget does not count.
func (s *Service) Hold(ctx context.Context, it Item, msg io.Reader) ([]int64, error) {
	// smtp.max_message_bytes may pass MaxMessage: such a message, held,
	// could never be released.
	if it.Size > MaxMessage {
		return nil, ErrTooLarge
	}
	var gz bytes.Buffer
	if it.Size > 0 {
		// Deflate's worst case: stored blocks, 5 bytes per 64 KiB, and
		// gzip's header and trailer.
		gz.Grow(int(it.Size + it.Size>>12 + 64))
	}
	zw := gzip.NewWriter(&gz)
	size, err := io.Copy(zw, io.LimitReader(msg, MaxMessage+1))
	if err != nil {
		return nil, fmt.Errorf("quarantine: compress: %w", err)
	}
	if size > MaxMessage {
		return nil, ErrTooLarge
	}
	if err := zw.Close(); err != nil {
		return nil, fmt.Errorf("quarantine: compress: %w", err)
	}
	it.Time, it.Size, it.State = s.now().UTC(), size, StateHeld
	// The sender wrote these: raw 8-bit bytes or a NUL failed the insert
	// on PostgreSQL, and control characters reached every reader.
	it.Subject, it.MessageID = tracking.Clip(it.Subject), tracking.Clip(it.MessageID)
	items := make([]Item, len(it.Recipients))
	for i, r := range it.Recipients {
		items[i] = it
		items[i].Recipients = []string{r}
	}
	return s.store.PutQuarantine(ctx, items, gz.Bytes(), heldCost(size, items), s.cfg.MaxBytesPerDomain)
}

// rowOverhead is about what an item's row costs beyond its text: its
// numbers, the row's header and its index entries.
const rowOverhead = 200

// heldCost is what a message of size bytes and its items count against
// the domain's cap: the message once, and each item's row. A row keeps its sender's text
// per recipient: counted as the message alone, a 2 KB spam (a 998-byte
// subject and Message-ID) to 100 recipients stored 200 KB of rows for 2 KB
// of the cap, and a 1 GiB cap let a domain's quarantine pass 100 GiB.
func heldCost(size int64, items []Item) int64 {
	cost := size
	for _, it := range items {
		cost += rowOverhead + int64(len(it.QueueID)+len(it.Domain)+len(it.Sender)+len(it.Subject)+len(it.MessageID))
		for _, r := range it.Recipients {
			cost += int64(len(r)) + 1
		}
		for _, sym := range it.Symbols {
			cost += int64(len(sym)) + 1
		}
	}
	return cost
}

// List returns a page of the scope's items, newest first.
func (s *Service) List(ctx context.Context, f Filter) ([]Item, error) {
	if f.Limit <= 0 {
		f.Limit = 100
	}
	return s.store.ListQuarantine(ctx, f)
}

// Ready reports whether the store takes holds: it makes a hold's writes
// and takes them back, holding nothing.
func (s *Service) Ready(ctx context.Context) error {
	return s.store.QuarantineTakesHolds(ctx)
}

// Item returns an item without opening its message.
func (s *Service) Item(ctx context.Context, scope tracking.Scope, id int64) (Item, error) {
	return s.store.QuarantineItem(ctx, scope, id)
}

// Open calls fn with an item and its message (nil once released or
// deleted: it lives at the customer, or nowhere), within the node's
// max_open_bytes, and returns the item; ErrBusy when the bytes are spent.
// msg is fn's only while it runs.
func (s *Service) Open(ctx context.Context, scope tracking.Scope, id int64, fn func(it Item, msg []byte)) (Item, error) {
	it, err := s.store.QuarantineItem(ctx, scope, id)
	if err != nil {
		return it, err
	}
	done, err := s.reserveOpen(ctx, it)
	if err != nil {
		return it, err
	}
	defer done()
	it, gz, err := s.store.GetQuarantine(ctx, scope, id)
	if err != nil {
		return it, err
	}
	var msg []byte
	if gz == nil && (it.State == StateHeld || it.State == StateReleasing || it.State == StateUnconfirmed) {
		// Its body lost (a partial restore, a hand-edited table): shown
		// as no message, it looked like a released item's, or an empty
		// mail.
		return it, fmt.Errorf("quarantine: held message %d: its body is missing from the store", id)
	}
	if gz != nil {
		if msg, err = gunzip(gz, it.Size); err != nil {
			return it, err
		}
	}
	fn(it, msg)
	return it, nil
}

// openWait is how long opening a message waits for its share of
// max_open_bytes: a preview or release of a big message takes a second or
// two, so a few at once (two admins, a release racing a preview) are
// served in turn; past it, ErrBusy.
const openWait = 5 * time.Second

// reserveOpen takes an open message's share of max_open_bytes, waiting up
// to openWait (or until ctx ends), and returns what gives it back. A
// message larger than the whole budget takes all of it: it opens, alone.
// With owners, it first takes its reseller's share of the bytes (all of
// the share when it is larger), within the same wait.
func (s *Service) reserveOpen(ctx context.Context, it Item) (func(), error) {
	n := min(openFactor*max(it.Size, 1), s.cfg.MaxOpenBytes)
	deadline := time.Now().Add(openWait)
	giveShare := func() {}
	if s.owners != nil {
		reseller, err := s.owners.ResellerOf(ctx, it.CustomerID)
		if err != nil {
			return nil, fmt.Errorf("quarantine: whose message %d is: %w", it.ID, err)
		}
		share := s.shareOf(reseller)
		own := min(n, s.cfg.MaxOpenBytes/2)
		if !share.ReserveWait(ctx, own, openWait) {
			return nil, ErrBusy
		}
		giveShare = func() { share.Release(own) }
	}
	if !s.opened.ReserveWait(ctx, n, time.Until(deadline)) {
		giveShare()
		return nil, ErrBusy
	}
	return func() { s.opened.Release(n); giveShare() }, nil
}

// Release delivers a held item to its domain's current route, exactly
// once: the claim is recorded first, and only the caller that made it
// delivers. A failed delivery puts the item back (held). A delivery the
// store did not answer to record returns the item released and
// ErrRecordPending.
func (s *Service) Release(ctx context.Context, scope tracking.Scope, id int64, by string) (Item, string, error) {
	if s.deliver == nil {
		return Item{}, "", errors.New("quarantine: this node cannot deliver")
	}
	it, err := s.store.QuarantineItem(ctx, scope, id)
	if err != nil {
		return it, "", err
	}
	// The bytes before the claim: a release refused for them leaves the
	// item held as it was.
	done, err := s.reserveOpen(ctx, it)
	if err != nil {
		return it, "", err
	}
	defer done()
	now := s.now().UTC()
	it, gz, err := s.store.ClaimRelease(ctx, scope, id, by, now)
	if err != nil {
		if !errors.Is(err, ErrNotHeld) && !errors.Is(err, tenant.ErrNotFound) {
			// The claim may have taken effect though its reply was lost
			// (a broken connection, the store's timeout as it committed).
			// Left so, the item read as being released, then as a release
			// that never finished, which nothing releases again: mail the
			// customer asked for was kept from it until the retention
			// deleted it. Nothing was delivered, so it goes back to held,
			// if the claim is there, and only that claim.
			uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
			defer cancel()
			if uerr := s.finishRelease(uctx, Item{ID: id, ReleasedBy: by, ReleasedAt: now}, false); uerr != nil {
				err = fmt.Errorf("%w (and putting it back to held if it was claimed: %w)", err, uerr)
			}
		}
		return it, "", s.claimed(ctx, scope, id, err)
	}
	// From the claim on, the release is the node's, not its caller's: a
	// caller going away (a tab closed, a proxy's timeout) ended the
	// delivery, whose connection closed before the customer's server
	// replied to a message it may have taken, and the item went back to
	// held for a second delivery. The relay's timeouts bound it.
	dctx := context.WithoutCancel(ctx)
	msg, err := gunzip(gz, it.Size)
	var reply string
	why := err // what kept the message from the customer's server
	if err == nil {
		if reply, err = s.deliver.Deliver(dctx, HeldDomain{ID: it.DomainID, CustomerID: it.CustomerID, Name: it.Domain}, it.Sender, it.SMTPUTF8, it.Recipients, msg); err != nil && !errors.Is(err, ErrMaybeDelivered) {
			why, err = err, fmt.Errorf("%w: %w", ErrDelivery, err)
		}
	}
	// Each outcome is tracked before the item's, which may fail to be
	// written: the log says what happened to the message whatever the
	// item says, and tracking's queue retries its writes. A release that
	// did not deliver is tracked too: the log of a message released and
	// never received said "quarantined" and nothing more, neither the
	// release nor why the customer's server did not take it.
	if errors.Is(err, ErrMaybeDelivered) {
		s.track(it, tracking.StatusQuarantined, "a release by "+by+" lost the customer's server after the message was sent: whether it was delivered is unknown, and it is not released again", reply)
		// Not back to held: whether it was delivered is unknown, and
		// twice in a mailbox is worse than once in the quarantine. Nor
		// left releasing, which read as a delivery under way for half
		// an hour; so left only if this cannot be written.
		uctx, cancel := context.WithTimeout(dctx, 10*time.Second)
		defer cancel()
		if uerr := s.store.UnconfirmRelease(uctx, it); uerr != nil {
			s.log.Warn("quarantine: a release that may have been delivered stays releasing", "item", id, "err", uerr)
		}
		return it, reply, fmt.Errorf("quarantine: release %d: %w", id, err)
	}
	delivered := err == nil
	if delivered {
		s.track(it, tracking.StatusDelivered, "released from the quarantine by "+by, reply)
	} else {
		s.track(it, tracking.StatusQuarantined, "a release by "+by+" was not delivered, still quarantined ("+why.Error()+")", reply)
	}
	fctx, cancel := context.WithTimeout(dctx, 10*time.Second)
	defer cancel()
	if ferr := s.finishRelease(fctx, it, delivered); ferr != nil {
		// Left releasing, the item became a release "whose delivery is
		// unknown" half an hour later, though this node knew the outcome.
		s.keepPending(pendingOutcome{claim: it, delivered: delivered, at: s.now().UTC()}, ferr)
		if delivered {
			// Not the store's error itself: the caller is to answer as
			// for a release, not as for a store that is down.
			err = fmt.Errorf("%w (%v)", ErrRecordPending, ferr)
		}
	}
	if delivered {
		it.State, it.ReleasedBy = StateReleased, by
	}
	if err != nil {
		return it, reply, fmt.Errorf("quarantine: release %d: %w", id, err)
	}
	return it, reply, nil
}

// keepPending keeps an outcome the store did not take (err), for
// RecordPending.
func (s *Service) keepPending(p pendingOutcome, err error) {
	s.log.Warn("quarantine: a release's outcome could not be recorded; kept to record when the store answers again",
		"id", p.claim.ID, "delivered", p.delivered, "err", err)
	s.pendingMu.Lock()
	defer s.pendingMu.Unlock()
	if s.pendingStopped != "" {
		// A release that outlived the node's stop: nothing records it
		// any more, and it says so as the others did.
		s.giveUp(p, s.pendingStopped)
		return
	}
	if len(s.pending) == maxPending {
		s.giveUp(s.pending[0], "too many releases' outcomes are waiting for the store")
		s.pending = s.pending[1:]
	}
	s.pending = append(s.pending, p)
}

func (s *Service) giveUp(p pendingOutcome, why string) {
	s.log.Error("quarantine: a release's outcome is not recorded, given up: "+why+"; the item reads as a release whose delivery is unknown",
		"id", p.claim.ID, "delivered", p.delivered, "outcome_at", p.at, "released_by", p.claim.ReleasedBy)
}

// PendingRecords is how many releases' outcomes wait for the store.
func (s *Service) PendingRecords() int {
	s.pendingMu.Lock()
	defer s.pendingMu.Unlock()
	return len(s.pending)
}

// RecordPending writes the outcomes the store did not take when their
// releases ended, oldest first, stopping at the first the store still
// does not take (the rest wait for the next call). One whose claim is
// older than ClaimAbandonedAfter is given up: by then every reader has
// been told its release did not finish. The node calls it on a loop.
func (s *Service) RecordPending(ctx context.Context) {
	s.pendingMu.Lock()
	todo := slices.Clone(s.pending)
	s.pendingMu.Unlock()
	var done []pendingOutcome
	for _, p := range todo {
		if s.now().Sub(p.claim.ReleasedAt) > ClaimAbandonedAfter {
			s.giveUp(p, "the store did not answer for "+ClaimAbandonedAfter.String()+" since the release began")
			done = append(done, p)
			continue
		}
		// Released when the customer's server took it, not when the store
		// came back.
		if err := s.store.FinishRelease(ctx, p.claim, p.delivered, p.at); err != nil {
			break
		}
		s.log.Info("quarantine: a release's outcome the store did not take is recorded", "id", p.claim.ID, "delivered", p.delivered, "outcome_at", p.at)
		done = append(done, p)
	}
	s.pendingMu.Lock()
	defer s.pendingMu.Unlock()
	s.pending = slices.DeleteFunc(s.pending, func(p pendingOutcome) bool {
		return slices.ContainsFunc(done, func(d pendingOutcome) bool {
			return d.claim.ID == p.claim.ID && d.claim.ReleasedAt.Equal(p.claim.ReleasedAt)
		})
	})
}

// GiveUpPending gives up every outcome still waiting for the store, as
// the node stops (why), logging each: they are lost with the node.
func (s *Service) GiveUpPending(why string) {
	s.pendingMu.Lock()
	defer s.pendingMu.Unlock()
	for _, p := range s.pending {
		s.giveUp(p, why)
	}
	s.pending, s.pendingStopped = nil, why
}

// claimed turns the store's ErrNotHeld into what the item is now: a
// release still under way, one abandoned, or one that may have delivered.
func (s *Service) claimed(ctx context.Context, scope tracking.Scope, id int64, err error) error {
	if !errors.Is(err, ErrNotHeld) {
		return err
	}
	if cur, rerr := s.store.QuarantineItem(ctx, scope, id); rerr == nil && (cur.State == StateReleasing || cur.State == StateUnconfirmed) {
		return cur.Releasable(s.now())
	}
	return err
}

// track records what became of held item it, one record per recipient,
// beside the one that recorded it held: status and what says what, and
// downstream is the customer server's reply, if any. The sender was told
// 250 when the message was held, whatever happened to it since, quoting
// the queue id as the reference the message log finds it by: each record
// carries it, or a search by the reference found the hold and not what
// became of the message.
func (s *Service) track(it Item, status tracking.Status, what, downstream string) {
	if s.tracker == nil {
		return
	}
	for _, rcpt := range it.Recipients {
		s.tracker.Record(tracking.Record{Time: s.now().UTC(), QueueID: it.QueueID, Sender: it.Sender, Recipient: rcpt,
			Domain: it.Domain, DomainID: it.DomainID, CustomerID: it.CustomerID, Size: it.Size, MessageID: it.MessageID,
			Subject: it.Subject, Score: it.Score, Symbols: it.Symbols, Status: status, ReplyCode: 250,
			Reply: what, Downstream: downstream, Reference: it.QueueID})
	}
}

// finishAttempts and finishBackoff: how often, and how far apart, a
// release's outcome is written before it is given up. A write lost to a
// database blip left the item releasing, which nothing releases or deletes
// again: a message the customer's server refused could no longer be
// released at all, until expiry took it. finishBackoff is a var for the
// tests.
const finishAttempts = 4

var finishBackoff = 250 * time.Millisecond

// finishRelease records the outcome, retrying within ctx.
func (s *Service) finishRelease(ctx context.Context, claim Item, delivered bool) error {
	var err error
	for i := range finishAttempts {
		if i > 0 {
			select {
			case <-ctx.Done():
				return err
			case <-time.After(finishBackoff << (i - 1)):
			}
		}
		if err = s.store.FinishRelease(ctx, claim, delivered, s.now().UTC()); err == nil {
			return nil
		}
	}
	return err
}

// Delete removes an item's message for good; by names who did, in the
// message log, where a customer asking after a message it never got
// finds it held and then deleted, and by whom, as it finds a release.
func (s *Service) Delete(ctx context.Context, scope tracking.Scope, id int64, by string) error {
	it, err := s.store.QuarantineItem(ctx, scope, id)
	if err != nil {
		return err
	}
	if err := s.store.DeleteQuarantine(ctx, scope, id); err != nil {
		return s.claimed(ctx, scope, id, err)
	}
	s.track(it, tracking.StatusQuarantined, "deleted from the quarantine by "+by, "")
	return nil
}

// Prune deletes items older than the retention; one still held is
// tracked as deleted, as a delete by hand is: the message log showed it
// quarantined for good, though the quarantine no longer had it. So is an
// abandoned release's, saying that its delivery is unknown: its log ended
// at "quarantined", as if no release had been tried. Quarantined, not
// delivered: nothing says the customer's server took it.
//
// The retention counts from the shared database's clock when there is
// one: every node expires the one quarantine, and one whose clock ran
// ahead deleted mail its peers held before its time.
func (s *Service) Prune(ctx context.Context) (int64, error) {
	now, shared, err := s.store.SharedNow(ctx)
	if err != nil {
		return 0, err
	}
	if !shared {
		now = s.now()
	}
	waiting := s.tracker != nil
	return s.store.PruneQuarantine(ctx, now.Add(-s.cfg.Retention), func(expired []Item) {
		for _, it := range expired {
			if waiting {
				waiting = s.awaitTracking(ctx, len(it.Recipients))
			}
			what := "deleted from the quarantine after the retention"
			if it.State == StateReleasing || it.State == StateUnconfirmed {
				what += "; a release by " + it.ReleasedBy + " began at " + it.ReleasedAt.UTC().Format(time.RFC3339) +
					" and did not finish (its node stopped, or the customer's server was lost after the message was sent): whether it was delivered is unknown"
			}
			s.track(it, tracking.StatusQuarantined, what, "")
		}
	})
}

// trackingStall is how long an expiry waits on message tracking that
// takes no record at all (its store down or stuck) before it records the
// rest of the run as mail does, dropping the oldest when the buffer is
// full. A var for the tests.
var trackingStall = 10 * time.Second

// awaitTracking waits until the tracker takes n more records without
// dropping any, and reports whether it did. An expiry of a backlog is
// records by the hundred thousand, put as fast as the store deletes; put
// at once they pushed out of the buffer the records of the mail of the
// last seconds, whose "where is my mail?" then had no answer. It gives up
// when the tracker makes no progress for trackingStall, or ctx ends.
func (s *Service) awaitTracking(ctx context.Context, n int) bool {
	free, size := s.tracker.Room()
	best, since := free, time.Now()
	for free < min(n, size) {
		select {
		case <-ctx.Done():
			return false
		case <-time.After(20 * time.Millisecond):
		}
		if free, _ = s.tracker.Room(); free > best {
			best, since = free, time.Now()
		} else if time.Since(since) > trackingStall {
			return false
		}
	}
	return true
}

// MaxMessage bounds a decompressed message: a corrupt or hostile row
// cannot make a node inflate gigabytes. Hold takes nothing larger.
const MaxMessage = 64 << 20

// gunzip decompresses a stored message of about size bytes (its item's
// Size) into one buffer of that size. Grown by doubling, as io.ReadAll
// grows one, opening a 25 MB message allocated 108 MB, not the 3 x its
// size max_open_bytes counts (openFactor); the buffers left behind are
// garbage no budget sees.
func gunzip(gz []byte, size int64) ([]byte, error) {
	zr, err := gzip.NewReader(bytes.NewReader(gz))
	if err != nil {
		return nil, fmt.Errorf("quarantine: stored message: %w", err)
	}
	var msg bytes.Buffer
	// Room for the end to be read without growing: ReadFrom grows the
	// buffer while less than bytes.MinRead is free.
	msg.Grow(int(min(max(size, 0), MaxMessage)) + bytes.MinRead)
	if _, err := msg.ReadFrom(io.LimitReader(zr, MaxMessage+1)); err != nil {
		return nil, fmt.Errorf("quarantine: stored message: %w", err)
	}
	if msg.Len() > MaxMessage {
		return nil, errors.New("quarantine: stored message too large")
	}
	return msg.Bytes(), nil
}
