package quarantine

import (
	"fmt"
	"net/url"

	"github.com/mxgrid/mxgrid/internal/queryval"
)

// ParseQuery reads a list's filter from URL parameters: domain_id,
// customer_id, q (sender, recipient or subject; taken as it is, the
// admin service vets it), state (held, releasing, unconfirmed or released; empty for
// any), after (the last, smallest, id already seen: pages go newest
// first) and limit (1 to maxLimit; 0 when absent, for the caller's
// default). The admin API and the panel share it so that both refuse the
// same input, naming the key: a value dropped instead would silently
// change the list (a bad domain_id, the whole quarantine for one
// domain's). The scope is not read from the query: the caller sets it
// from who asks.
func ParseQuery(q url.Values, maxLimit int) (Filter, map[string]string) {
	errs := map[string]string{}
	num := func(key string) int64 { return queryval.PositiveInt(q, key, errs) }
	f := Filter{DomainID: num("domain_id"), CustomerID: num("customer_id"), Search: q.Get("q"), Before: num("after"), Limit: int(num("limit"))}
	if f.Limit > maxLimit {
		errs["limit"] = fmt.Sprintf("at most %d", maxLimit)
	}
	switch st := State(q.Get("state")); st {
	case "", StateHeld, StateReleasing, StateUnconfirmed, StateReleased:
		f.State = st
	default:
		errs["state"] = "must be held, releasing, unconfirmed or released"
	}
	if len(errs) > 0 {
		return f, errs
	}
	return f, nil
}
