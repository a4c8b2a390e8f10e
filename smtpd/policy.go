package smtpd

import (
	"io"
	"net/netip"
	"strings"

	"github.com/mxgrid/mxgrid/mailaddr"
	"github.com/mxgrid/mxgrid/netguard"
	"github.com/mxgrid/mxgrid/scanner"
	"github.com/mxgrid/mxgrid/tenant"
)

// policy merges the node defaults with the transaction's domain policy.
func (ss *session) policy() scanner.Policy {
	p := ss.srv.deps.Policy
	dp := ss.domain.Policy
	if dp.TagScore != nil {
		p.TagScore = *dp.TagScore
	}
	if dp.RejectScore != nil {
		p.RejectScore = *dp.RejectScore
	}
	if dp.SubjectTag != nil {
		p.SubjectTag = *dp.SubjectTag
	}
	p.TagViruses = dp.VirusAction != nil && *dp.VirusAction == tenant.VirusTag
	p.ClientAllowlisted = matchesIP(ss.domain.Lists.IPAllow, ss.clientIP)
	p.SenderAllowlisted = matchesSender(ss.domain.Lists.SenderAllow, ss.from)
	return p
}

// ownMail reports whether msg is mail this cluster wrote for the
// transaction's one recipient (Deps.OwnMail).
func (ss *session) ownMail(msg *scanner.Message) bool {
	own := ss.srv.deps.OwnMail
	return own != nil && len(ss.rcpts) == 1 &&
		own(ss.rcpts[0], msg.Header, func() io.Reader { return msg.Reader(int64(msg.BodyOffset)) })
}

// blocked reports whether dom's block lists refuse this client or sender;
// checked at RCPT so a blocked sender never sends its message. A client
// whose IPv6 address carries an IPv4 one (6to4, NAT64) is that IPv4 host
// to the block list, as to the per-client limits: a blocked host came
// back in through its 6to4 site. The allow list is not widened so.
func (ss *session) blocked(dom *tenant.Domain) bool {
	return matchesIP(dom.Lists.IPBlock, ss.clientIP) || matchesIP(dom.Lists.IPBlock, netguard.Embedded(ss.clientIP)) ||
		matchesSender(dom.Lists.SenderBlock, ss.from)
}

// matchesIP reports whether ip is in one of the prefixes of list, parsed
// once per snapshot (tenant.Lists).
func matchesIP(list []netip.Prefix, ip netip.Addr) bool {
	for _, p := range list {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// matchesSender matches the envelope sender against addresses
// ("alice@example.com") and domains ("example.com", which also covers its
// subdomains), case-insensitively: list is lower-cased when the snapshot
// is built (tenant.Lists). The domain is the parsed one: a quoted
// local part holding "@allowed.example" does not make the sender match.
// Both sides name domains by their A-labels, so no spelling of a listed
// domain (U-label, A-label, full-width letters) escapes its entry.
func matchesSender(list []string, from mailaddr.Address) bool {
	if len(list) == 0 || from.IsNull() {
		return false
	}
	domain, err := tenant.NormalizeDomain(from.Domain)
	if err != nil {
		domain = from.LookupDomain() // an address literal, a one-label name
	}
	addr := strings.ToLower(from.Local) + "@" + domain
	for _, e := range list {
		switch {
		case strings.Contains(e, "@"):
			if e == addr {
				return true
			}
		case domain == e || strings.HasSuffix(domain, "."+e):
			return true
		}
	}
	return false
}
