package auth

import (
	"context"
	"fmt"
	"net"
	"slices"
	"strings"
	"time"
)

// clientNamesBudget bounds the time one SPF check spends on the client's
// own names. The ptr mechanism looks up the client IP's PTR names, then
// the addresses of up to 10 of them one after another, all in DNS that
// the client's operator runs: a sender whose reverse zone named ten hosts
// that never answer spent the check's deadline there, and the lookups the
// domain's record makes after its ptr term were abandoned. SPF temperror
// for the spoofed domain made DMARC temperror, and its p=reject escaped.
// A name that does not resolve in time is skipped, as one that fails to
// (RFC 7208 5.5).
const clientNamesBudget = time.Second

// ptrBudgetResolver is the resolver of one check_host, which runs its
// lookups one after another on one goroutine: the PTR lookup, and the
// address lookups of its names that follow it (each name once, as often
// as the answer lists it), share clientNamesBudget. Any other lookup ends
// that run: a name the client gave that the record names too
// ("a:mail.bank.example") gets its full time there.
type ptrBudgetResolver struct {
	Resolver
	deadline time.Time // set by the first PTR lookup
	names    []string  // the PTR names not yet looked up in this run
	// macros is set by a TXT answer holding a '%': a record read may
	// expand macros (RFC 7208 7), the sender's among them.
	macros bool
}

func (r *ptrBudgetResolver) budget(ctx context.Context) (context.Context, context.CancelFunc) {
	if r.deadline.IsZero() {
		r.deadline = time.Now().Add(clientNamesBudget)
	}
	return context.WithDeadline(ctx, r.deadline)
}

func (r *ptrBudgetResolver) LookupAddr(ctx context.Context, addr string) ([]string, error) {
	ctx, cancel := r.budget(ctx)
	defer cancel()
	names, err := r.Resolver.LookupAddr(ctx, addr)
	r.names = slices.Clone(names)
	return names, err
}

func (r *ptrBudgetResolver) LookupIPAddr(ctx context.Context, host string) ([]net.IPAddr, error) {
	i := slices.Index(r.names, host)
	if i < 0 {
		r.names = nil
		return r.Resolver.LookupIPAddr(ctx, host)
	}
	r.names = slices.Delete(r.names, i, i+1)
	ctx, cancel := r.budget(ctx)
	defer cancel()
	return r.Resolver.LookupIPAddr(ctx, host)
}

func (r *ptrBudgetResolver) LookupTXT(ctx context.Context, name string) ([]string, error) {
	r.names = nil
	txts, err := r.Resolver.LookupTXT(ctx, name)
	for _, t := range txts {
		if strings.IndexByte(t, '%') >= 0 {
			r.macros = true
			if isSPFRecord(t) {
				if longestMacro(t) > maxMacroBody {
					return nil, errLongMacro
				}
				// Every macro expansion needs "%{": counting them all,
				// "%%{" included, never counts fewer than the library
				// expands.
				if strings.Count(t, "%{") > maxMacros {
					return nil, errManyMacros
				}
			}
		}
		if len(t) > maxSPFRecord && isSPFRecord(t) {
			return nil, errLongRecord
		}
	}
	return txts, err
}

// maxSPFRecord bounds the bytes of an SPF record check_host reads. The
// library splits a record into terms and runs each through a series of
// regular expressions, with no regard for the deadline: a 60 KB record
// (a TXT answer over TCP holds 64 KB) of "x=y" modifiers that includes
// itself cost 83 ms of CPU and 19 MB of garbage per identity, twice a
// message, from a domain whose DNS the sender runs. RFC 7208 3.4 asks
// for records that fit a 512-byte answer.
const maxSPFRecord = 4096

var errLongRecord = fmt.Errorf("SPF record of over %d bytes", maxSPFRecord)

func (r *ptrBudgetResolver) LookupMX(ctx context.Context, name string) ([]*net.MX, error) {
	r.names = nil
	return r.Resolver.LookupMX(ctx, name)
}

// maxMacroBody bounds the body of an SPF macro ("ir" in "%{ir}") in a
// record check_host reads. blitiri.com.ar/go/spf builds a body one
// character at a time by string concatenation, in time and garbage
// quadratic in its length and deaf to the deadline; the delimiters may
// repeat, so a body of 20,000 '+' is valid, and a record including
// itself expanded it ten times: 2 GB of garbage and a second of CPU per
// identity, for every message from a domain whose DNS the sender runs.
// A body is a letter, a digit count, 'r' and the delimiters (seven
// meaningful): real ones are a few bytes long.
const maxMacroBody = 32

// errLongMacro is what LookupTXT answers for a record with a longer
// body. Not a *net.DNSError, so the library makes it a permerror, as it
// would the invalid macro it most likely is.
var errLongMacro = fmt.Errorf("SPF record has a macro body over %d bytes", maxMacroBody)

// maxMacros bounds the macros in a record check_host reads. Each costs
// the library a regexp match and a few allocations however short its
// body, and a body whose value is all delimiters expands to nothing: a
// term of 10,000 such macros before %{d} named the domain itself, so it
// was looked up, never void, and a record including itself ran it five
// times, 100 ms of CPU and 20 MB of garbage per identity and message.
// Real records hold a few (RFC 7208's examples at most three).
const maxMacros = 32

var errManyMacros = fmt.Errorf("SPF record has over %d macros", maxMacros)

// isSPFRecord reports a TXT string the library takes for an SPF record
// ("v=spf1", alone or before a space, in any case): only those are
// expanded.
func isSPFRecord(t string) bool {
	return len(t) >= 6 && strings.EqualFold(t[:6], "v=spf1") && (len(t) == 6 || t[6] == ' ')
}

// longestMacro is the length in bytes of the longest macro body in an
// SPF record, as the library reads one: after "%{", up to the '}' or the
// end of its space-separated term; "%%" is a literal '%'.
func longestMacro(record string) int {
	most := 0
	for i := 0; i < len(record); i++ {
		if record[i] != '%' || i+1 == len(record) {
			continue
		}
		i++
		if record[i] != '{' {
			continue
		}
		body := record[i+1:]
		if end := strings.IndexAny(body, "} "); end >= 0 {
			body = body[:end]
		}
		most = max(most, len(body))
		i += len(body)
	}
	return most
}
