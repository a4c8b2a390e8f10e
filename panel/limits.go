package panel

import (
	"crypto/sha256"
	"encoding/hex"
	"sync"
	"time"
)

// loginLimits slow down password guessing without letting anyone lock an
// account out from elsewhere for long:
//   - per account, the first few failures are free, then each one makes the
//     account wait twice as long as the last (1 s … the maximum), whatever
//     address the guesses come from;
//   - per client address (an IPv6 /64), a fixed number of failures per
//     window, whatever the accounts;
//   - at most a few argon2id hashes at once on the node (each takes tens of
//     MiB): a login that would need one more is answered 429 at once.
//
// The tables are in memory on each node: behind a load balancer an attacker
// gets each limit once per node, still a handful of guesses per window.
type loginLimits struct {
	free       int
	maxBackoff time.Duration
	addrMax    int
	addrWindow time.Duration
	hashes     chan struct{}

	mu       sync.Mutex
	accounts map[string]*accountFailures
	addrs    map[string]*addrFailures
}

type accountFailures struct {
	n     int
	last  time.Time
	until time.Time
}

type addrFailures struct {
	n     int
	first time.Time
}

// maxTracked bounds each table: past it, stale entries are dropped, so a
// spray of names or addresses cannot grow memory without end.
const maxTracked = 100000

// forgetAfter is how long an account's failures are remembered after the
// last one.
const forgetAfter = 24 * time.Hour

func newLoginLimits(cfg Config) *loginLimits {
	return &loginLimits{
		free: cfg.LockoutFailures, maxBackoff: cfg.LockoutDuration,
		addrMax: cfg.AddressFailures, addrWindow: cfg.LockoutDuration,
		hashes:   make(chan struct{}, cfg.MaxPasswordHashes),
		accounts: make(map[string]*accountFailures), addrs: make(map[string]*addrFailures),
	}
}

// accountKey hashes an account name: the table holds nothing typed into
// the form, a password typed into the email field included.
func accountKey(name string) string {
	h := sha256.Sum256([]byte(name))
	return hex.EncodeToString(h[:12])
}

// wait returns until when the account or the address may not try; zero
// when both may.
func (l *loginLimits) wait(account, addr string, now time.Time) time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	var until time.Time
	if a := l.accounts[account]; account != "" && a != nil && now.Before(a.until) {
		until = a.until
	}
	if f := l.addrs[addr]; f != nil && f.n >= l.addrMax && now.Sub(f.first) < l.addrWindow {
		if end := f.first.Add(l.addrWindow); end.After(until) {
			until = end
		}
	}
	return until
}

// fail books a failure to the account (empty: none, as for token logins,
// whose secrets are unguessable) and to the address.
func (l *loginLimits) fail(account, addr string, now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if account != "" {
		if len(l.accounts) >= maxTracked {
			for k, a := range l.accounts {
				if now.Sub(a.last) > forgetAfter || !now.Before(a.until) && a.n <= l.free {
					delete(l.accounts, k)
				}
			}
		}
		a := l.accounts[account]
		if a == nil || now.Sub(a.last) > forgetAfter {
			a = &accountFailures{}
			l.accounts[account] = a
		}
		a.n++
		a.last = now
		if over := a.n - l.free; over > 0 {
			wait := l.maxBackoff
			if over <= 30 && time.Second<<(over-1) < l.maxBackoff {
				wait = time.Second << (over - 1)
			}
			a.until = now.Add(wait)
		}
	}
	if len(l.addrs) >= maxTracked {
		for k, f := range l.addrs {
			if now.Sub(f.first) >= l.addrWindow {
				delete(l.addrs, k)
			}
		}
	}
	f := l.addrs[addr]
	if f == nil || now.Sub(f.first) >= l.addrWindow {
		f = &addrFailures{first: now}
		l.addrs[addr] = f
	}
	f.n++
}

// succeed clears the account's failures (not the address's: one good
// password must not reset a spray from the same place).
func (l *loginLimits) succeed(account string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.accounts, account)
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
