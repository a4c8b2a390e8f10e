package smtpd

import (
	"bytes"
	"context"
	"errors"
	"fmt"

	"github.com/mxgrid/mxgrid/mailaddr"
	"github.com/mxgrid/mxgrid/quarantine"
	"github.com/mxgrid/mxgrid/relay"
)

// Releaser delivers messages released from the quarantine through the
// relay to their domain's current route, as a live transaction would
// (quarantine.Deliverer).
type Releaser struct {
	Directory Directory
	Relay     Relayer
}

// errNoLongerServed: the name is not the domain that held the message any
// more (deleted, renamed, moved to another customer, suspended or awaiting
// proof, perhaps another tenant's now), so nothing of it reaches the name's
// current server.
var errNoLongerServed = errors.New("no longer served as the domain that held it (deleted, renamed, moved, suspended or awaiting proof)")

// Deliver sends msg from sender to rcpts; every recipient must be accepted
// (a partial delivery would need a second release for the rest). The name,
// the id and the customer are checked in the one lookup that gives the
// route: a moved domain keeps its id, but its held mail stays in the old
// customer's quarantine, whose reseller may no longer be the domain's.
//
// smtputf8 is whether the sender asked for SMTPUTF8: the relay then asks
// the customer's server for it and refuses (550 5.6.7) a message with a
// UTF-8 header field to a server without it, as on the live path. An item
// held before that was recorded asks for it only for a non-ASCII address,
// as releases did: inferred from 8-bit header fields instead, the raw
// Latin-1 headers of a legacy sender who never asked for it, which the
// live path passes on, would be refused.
func (r Releaser) Deliver(ctx context.Context, held quarantine.HeldDomain, sender string, smtputf8 bool, rcpts []string, msg []byte) (string, error) {
	domain := held.Name
	dom, ok := r.Directory.Lookup(domain)
	if !ok || dom.ID != held.ID || dom.CustomerID != held.CustomerID || len(rcpts) == 0 {
		return "", &quarantine.RefusedError{Reply: errNoLongerServed.Error(), Err: fmt.Errorf("release to %s: %w", domain, errNoLongerServed)}
	}
	from, err := mailaddr.ParseReversePath(sender)
	if err != nil {
		return "", fmt.Errorf("release: sender %q: %w", sender, err)
	}
	to := make([]mailaddr.Address, len(rcpts))
	for i, s := range rcpts {
		if to[i], err = mailaddr.Parse(s); err != nil {
			return "", fmt.Errorf("release: recipient %q: %w", s, err)
		}
	}
	utf8 := smtputf8 || !from.ASCII()
	for _, a := range to {
		utf8 = utf8 || !a.ASCII()
	}
	tx, err := r.Relay.Open(ctx, relayRoute(dom.RouteFor(to[0].Local)), from, relay.MailOptions{Size: int64(len(msg)), UTF8: utf8})
	if err != nil {
		return "", refusal(fmt.Errorf("release to %s: %w", domain, err))
	}
	defer tx.Close()
	for _, a := range to {
		if err := tx.Rcpt(a); err != nil {
			return "", refusal(fmt.Errorf("release to %s: %w", a.String(), err))
		}
	}
	reply, err := tx.Data(bytes.NewReader(msg), heldBits(msg))
	if re := (*relay.Error)(nil); errors.As(err, &re) && re.MaybeTaken {
		return "", fmt.Errorf("release to %s: %w: %w", domain, quarantine.ErrMaybeDelivered, err)
	}
	return reply, refusal(err)
}

// refusal makes err, when the relay says the customer's server refused
// for good (5xx), a quarantine.RefusedError: the recipient of a digest
// was told to try again later, and got the same refusal each time. A 5xx
// whose enhanced code RFC 3463 calls a persistent transient failure is
// not for good: a full mailbox (552 5.2.2, as many servers say it) takes
// the release once the recipient has made room.
func refusal(err error) error {
	if re := (*relay.Error)(nil); errors.As(err, &re) && re.Code >= 500 && re.Code < 600 && !persistentTransient[re.Enhanced] {
		reply := *re
		reply.Err = nil
		return &quarantine.RefusedError{Reply: reply.Error(), Err: err}
	}
	return err
}

// persistentTransient are the enhanced codes RFC 3463 gives only (or, for
// X.2.2, "should") as persistent transient failures, in their 5.x.x form:
// mailbox full, mail system full, no answer from host, bad connection,
// directory server failure, mail system congestion.
var persistentTransient = map[[3]int]bool{
	{5, 2, 2}: true, {5, 3, 1}: true, {5, 4, 1}: true, {5, 4, 2}: true, {5, 4, 3}: true, {5, 4, 5}: true,
}
