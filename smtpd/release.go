package smtpd

import (
	"bytes"
	"context"
	"errors"
	"fmt"

	"github.com/mxgrid/mxgrid/mailaddr"
	"github.com/mxgrid/mxgrid/relay"
)

// Releaser delivers messages released from the quarantine through the
// relay to their domain's current route, as a live transaction would
// (quarantine.Deliverer).
type Releaser struct {
	Directory Directory
	Relay     Relayer
}

// errNoLongerProvisioned: the domain was removed since the message was held.
var errNoLongerProvisioned = errors.New("the domain is no longer provisioned")

// Deliver sends msg from sender to rcpts; every recipient must be accepted
// (a partial delivery would need a second release for the rest).
func (r Releaser) Deliver(ctx context.Context, domain, sender string, rcpts []string, msg []byte) (string, error) {
	dom, ok := r.Directory.Lookup(domain)
	if !ok || len(rcpts) == 0 {
		return "", fmt.Errorf("release to %s: %w", domain, errNoLongerProvisioned)
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
	utf8 := !from.ASCII()
	for _, a := range to {
		utf8 = utf8 || !a.ASCII()
	}
	tx, err := r.Relay.Open(ctx, relayRoute(dom.RouteFor(to[0].Local)), from, relay.MailOptions{Size: int64(len(msg)), UTF8: utf8})
	if err != nil {
		return "", fmt.Errorf("release to %s: %w", domain, err)
	}
	defer tx.Close()
	for _, a := range to {
		if err := tx.Rcpt(a); err != nil {
			return "", fmt.Errorf("release to %s: %w", a.String(), err)
		}
	}
	return tx.Data(bytes.NewReader(msg))
}
