package panel

import (
	"context"
	"errors"
	"maps"
	"net/netip"
	"slices"
	"sync"
	"time"
)

// loginLimits slow down password guessing without letting anyone keep an
// account's user out from elsewhere. A lock on the account itself would be
// held for ever by one failure each time it expires, so no limit refuses a
// client for failures it did not make:
//   - per account and client address (an IPv6 /64), the first few failures
//     are free, then each one makes that client wait twice as long as the
//     last (1 s … the maximum);
//   - per client address, a fixed number of failures per window, whatever
//     the accounts, and per network (an IPv4 /24, an IPv6 /48) four times
//     that: whoever holds a /48 holds 65,536 /64s, each a fresh address
//     budget, and would otherwise get one guess per /64 on an account
//     under attack;
//   - per account, the same number of failures per window from all
//     addresses together; past it the account is under attack, and each
//     address that has failed on it gets one guess per maximum wait, while
//     an address that has not is let through: a guesser from many
//     addresses gets about one guess per address and window, the user
//     waits at most the maximum after a typo of its own;
//   - at most a few argon2id hashes at once on the node (each takes tens of
//     MiB): a login that would need one more is answered 429 at once. A
//     reseller's password forms take one of them at a time, and never the
//     last one free (tryFormHash);
//   - one attempt of an address checked at a time (turn), so attempts at
//     once count as they would one after another.
//
// The tables are in memory on each node: behind a load balancer an attacker
// gets each limit once per node, still a handful of guesses per window.
type loginLimits struct {
	free       int
	maxBackoff time.Duration
	windowMax  int
	window     time.Duration
	hashes     chan struct{}

	mu sync.Mutex
	// forms holds the resellers with a password form hashing (tryFormHash).
	forms map[int64]bool
	// turns holds the addresses with a login attempt being checked (turn).
	turns    map[string]*addrTurn
	pairs    map[string]*pairFailures
	accounts map[string]*windowFailures
	addrs    map[string]*windowFailures
	nets     map[string]*windowFailures
}

// networkShare is how many addresses' failures a network may spend.
const networkShare = 4

// pairFailures are one client address's failures on one account.
type pairFailures struct {
	n     int
	last  time.Time
	until time.Time
}

// windowFailures count failures in a fixed window from the first.
type windowFailures struct {
	n     int
	first time.Time
}

// maxTracked bounds each table (~20 MB at most): past it, stale entries
// are dropped and, if that is not enough, the oldest, so a spray of names
// or addresses (IPv6 has /64s without end) cannot grow memory without end.
// Dropping a live entry forgets failures that fresh addresses would have
// bought the sprayer anyway.
const maxTracked = 100000

// forgetAfter is how long a client's failures on an account are remembered
// after the last one.
const forgetAfter = 24 * time.Hour

func newLoginLimits(cfg Config) *loginLimits {
	return &loginLimits{
		free: cfg.LockoutFailures, maxBackoff: cfg.LockoutDuration,
		windowMax: cfg.AddressFailures, window: cfg.LockoutDuration,
		hashes:   make(chan struct{}, cfg.MaxPasswordHashes),
		forms:    make(map[int64]bool),
		turns:    make(map[string]*addrTurn),
		pairs:    make(map[string]*pairFailures),
		accounts: make(map[string]*windowFailures), addrs: make(map[string]*windowFailures),
		nets: make(map[string]*windowFailures),
	}
}

// networkKey is the network of a client's limit key (clientip.LimitKey):
// the /24 of an IPv4 address, the /48 of an IPv6 /64; other keys stand for
// themselves.
func networkKey(addr string) string {
	if p, err := netip.ParsePrefix(addr); err == nil && p.Addr().Is6() {
		n, _ := p.Addr().Prefix(48)
		return n.String()
	}
	if a, err := netip.ParseAddr(addr); err == nil && a.Is4() {
		n, _ := a.Prefix(24)
		return n.String()
	}
	return addr
}

// accountKey names an account in the limit tables and the log: the
// table holds nothing typed into the form, a password typed into the
// email field included. A MAC under the node's signing key, not a plain
// hash: a plain one in the log could be reversed with a dictionary (a
// mistyped password, or which addresses were tried), offline and fast.
func (p *Panel) accountKey(name string) string { return p.sign.stamp("login account", name) }

func pairKey(account, addr string) string { return account + "|" + addr }

// wait returns until when the address may not try the account; zero when
// it may.
func (l *loginLimits) wait(account, addr string, now time.Time) time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	var until time.Time
	if p := l.pairs[pairKey(account, addr)]; account != "" && p != nil && now.Sub(p.last) <= forgetAfter {
		until = p.until
		if l.full(l.accounts[account], now, l.windowMax) {
			until = later(until, p.last.Add(l.maxBackoff))
		}
	}
	if f := l.addrs[addr]; l.full(f, now, l.windowMax) {
		until = later(until, f.first.Add(l.window))
	}
	if f := l.nets[networkKey(addr)]; l.full(f, now, networkShare*l.windowMax) {
		until = later(until, f.first.Add(l.window))
	}
	if !now.Before(until) {
		return time.Time{}
	}
	return until
}

func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// full reports whether a window's max failures are used up.
func (l *loginLimits) full(f *windowFailures, now time.Time, max int) bool {
	return f != nil && f.n >= max && now.Sub(f.first) < l.window
}

// fail books a failure to the account (empty: none, as for token logins,
// whose secrets are unguessable) and to the address.
func (l *loginLimits) fail(account, addr string, now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if account != "" {
		trim(l.pairs, func(p *pairFailures) bool {
			return now.Sub(p.last) > forgetAfter || !now.Before(p.until) && p.n <= l.free
		}, func(p *pairFailures) time.Time { return p.last })
		k := pairKey(account, addr)
		p := l.pairs[k]
		if p == nil || now.Sub(p.last) > forgetAfter {
			p = &pairFailures{}
			l.pairs[k] = p
		}
		p.n++
		p.last = now
		if over := p.n - l.free; over > 0 {
			wait := l.maxBackoff
			if over <= 30 && time.Second<<(over-1) < l.maxBackoff {
				wait = time.Second << (over - 1)
			}
			p.until = now.Add(wait)
		}
		l.count(l.accounts, account, now)
	}
	l.count(l.addrs, addr, now)
	l.count(l.nets, networkKey(addr), now)
}

func (l *loginLimits) count(m map[string]*windowFailures, key string, now time.Time) {
	trim(m, func(f *windowFailures) bool { return now.Sub(f.first) >= l.window },
		func(f *windowFailures) time.Time { return f.first })
	f := m[key]
	if f == nil || now.Sub(f.first) >= l.window {
		f = &windowFailures{first: now}
		m[key] = f
	}
	f.n++
}

// succeed clears the address's failures on the account (not the account's
// nor the address's counts: one good password must not reset a guesser
// elsewhere or a spray from the same place).
func (l *loginLimits) succeed(account, addr string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.pairs, pairKey(account, addr))
}

// maxTurnQueue bounds the attempts of one address holding or waiting for
// its turn: unbounded, someone behind a victim's address with a valid
// account of their own (whose logins no failure limit slows) queued the
// victim's login behind as many password hashes as they sent at once.
const maxTurnQueue = 8

// errTurnQueueFull answers an attempt past maxTurnQueue: 429, try again.
var errTurnQueueFull = errors.New("panel: too many login attempts from this address at once")

// addrTurn is one address's turn at having a login attempt checked: ch
// holds a token while one is; users counts the attempts holding or
// waiting for it, so that the last one out drops it from the table.
type addrTurn struct {
	ch    chan struct{}
	users int
}

// turn waits until no other attempt of addr is being checked (a login, a
// password change), then returns the end of its own turn; an error when
// ctx ends first. The limits are checked before the password and a
// failure booked after it: attempts of one address at once were each
// checked against none of the others' failures, so with
// max_password_hashes: 16 one address had 16 guesses at an account at
// once, and 16 again every lockout_duration where it gets one. In turn,
// each is checked against the failures of those before it. Other
// addresses are not held up.
func (l *loginLimits) turn(ctx context.Context, addr string) (end func(), err error) {
	l.mu.Lock()
	t := l.turns[addr]
	if t != nil && t.users >= maxTurnQueue {
		l.mu.Unlock()
		return nil, errTurnQueueFull
	}
	if t == nil {
		t = &addrTurn{ch: make(chan struct{}, 1)}
		l.turns[addr] = t
	}
	t.users++
	l.mu.Unlock()
	leave := func() {
		l.mu.Lock()
		defer l.mu.Unlock()
		if t.users--; t.users == 0 {
			delete(l.turns, addr)
		}
	}
	select {
	case t.ch <- struct{}{}:
		return func() { <-t.ch; leave() }, nil
	case <-ctx.Done():
		leave()
		return nil, ctx.Err()
	}
}

// tryHash takes a place to compute a password hash, or reports false when
// all are taken; release with doneHash.
func (l *loginLimits) tryHash() bool {
	select {
	case l.hashes <- struct{}{}:
		return true
	default:
		return false
	}
}

func (l *loginLimits) doneHash() { <-l.hashes }

// tryFormHash takes a place to hash for a password form (adding a user,
// changing a password) of reseller (0: the operator), or reports false;
// call done when the hash is computed. A reseller's forms take one place at
// a time, and only while another stays free on the node: its forms are its
// own to repeat (at its cap of users each add still hashes before it is
// refused), and taking the places as logins do let a reseller posting them
// in a loop hold every one, so that every other tenant's login got 429.
// The operator's take any place, as its logins do.
func (l *loginLimits) tryFormHash(reseller int64) (done func(), ok bool) {
	if reseller == 0 {
		return l.doneHash, l.tryHash()
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.forms[reseller] || cap(l.hashes) > 1 && len(l.hashes) >= cap(l.hashes)-1 || !l.tryHash() {
		return nil, false
	}
	l.forms[reseller] = true
	return func() {
		l.mu.Lock()
		delete(l.forms, reseller)
		l.mu.Unlock()
		l.doneHash()
	}, true
}

// trim makes room in a full table: it drops the entries that are stale
// and, if fewer than a tenth were, the oldest by since until nine tenths
// are left. A table kept full by fresh entries is then sorted once per
// tenth of maxTracked failures, not scanned on every one.
func trim[V any](m map[string]V, stale func(V) bool, since func(V) time.Time) {
	if len(m) < maxTracked {
		return
	}
	for k, v := range m {
		if stale(v) {
			delete(m, k)
		}
	}
	keep := maxTracked * 9 / 10
	if len(m) <= keep {
		return
	}
	keys := slices.Collect(maps.Keys(m))
	slices.SortFunc(keys, func(a, b string) int { return since(m[a]).Compare(since(m[b])) })
	for _, k := range keys[:len(keys)-keep] {
		delete(m, k)
	}
}
