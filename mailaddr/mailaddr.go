// Package mailaddr is the one SMTP mailbox type of mxgrid: envelope
// addresses are parsed into it at MAIL and RCPT and written downstream only
// from it, so no client text is ever pasted into another SMTP session.
//
// The grammar is RFC 5321 §4.1.2's Mailbox: a dot-string or quoted-string
// local part, and a domain or an address literal, extended to UTF-8 by
// RFC 6531 (SMTPUTF8). Control characters are refused everywhere, quoted
// or not: no legitimate address needs them and they are how commands and
// header lines get injected.
package mailaddr

import (
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/net/idna"
)

// MaxLength caps a whole mailbox. RFC 5321 §4.5.3.1 allows 64 octets of
// local part and 255 of domain; real SRS and VERP senders exceed the first,
// so only the sum is bounded, by the 512-octet command line it must fit.
const MaxLength = 480

// Errors wrapped by every parse failure, so callers can pick a reply.
var (
	// ErrSyntax is an address that is not an RFC 5321 mailbox.
	ErrSyntax = errors.New("invalid address syntax")
	// ErrControl is an address holding a control character (NUL, CR, LF,
	// any C0 or C1 control, DEL, a Unicode line or paragraph separator, a
	// bidirectional override) or invalid UTF-8.
	ErrControl = errors.New("control character in address")
	// ErrInvalidUTF8 is an address that is not UTF-8 (an 8-bit charset
	// such as Latin-1 wrote it). It is an ErrControl too, refused alike,
	// but a reply can name it: no control character is in it.
	ErrInvalidUTF8 = fmt.Errorf("%w: invalid UTF-8", ErrControl)
)

// Address is a mailbox, or the null reverse-path (<>) when both fields are
// empty. Local is the decoded local part (without quotes or backslashes);
// Domain is as given (without the root's trailing dot), or an address literal
// with its brackets.
type Address struct {
	Local  string
	Domain string
}

// IsNull reports the null reverse-path <> (bounces).
func (a Address) IsNull() bool { return a.Local == "" && a.Domain == "" }

// String is the wire form, without angle brackets: the local part quoted
// only when it is not a dot-string. The null address is "".
func (a Address) String() string {
	if a.IsNull() {
		return ""
	}
	return quoteLocal(a.Local) + "@" + a.Domain
}

// WithALabel is a mailbox in wire form (String's) as a person should read
// it where no mail client or browser shows it for them (a digest, the
// panel): a domain that is not ASCII is followed by its A-label,
// "service@аррӏе.example (xn--80ak6aa92e.example)". Written in Unicode
// alone, a domain of letters from another script that look Latin read
// exactly as the domain it imitates; browsers and mail readers show such
// names as A-labels for that reason. An ASCII domain, and a null or
// domainless address, are returned as they are.
func WithALabel(addr string) string {
	i := strings.LastIndexByte(addr, '@')
	if i < 0 || IsASCII(addr[i+1:]) {
		return addr
	}
	return addr + " (" + aLabel(addr[i+1:]) + ")"
}

// aLabel is domain's A-label or, for a name IDNA refuses, the name spelled
// out as Go quotes it.
func aLabel(domain string) string {
	a, err := idna.Lookup.ToASCII(domain)
	if err != nil || !IsASCII(a) {
		q := strconv.QuoteToASCII(domain)
		a = q[1 : len(q)-1]
	}
	return a
}

// WithALabels is WithALabel for a header field a person reads, a From or
// To of addresses with display names ("PayPal <service@аррӏе.example>,
// ..."): each address whose domain is not ASCII is followed by its
// A-label, after its closing '>' if it has one. The rest is as it is.
func WithALabels(field string) string {
	var b strings.Builder
	for {
		at := strings.IndexByte(field, '@')
		if at < 0 {
			if b.Len() == 0 {
				return field
			}
			b.WriteString(field)
			return b.String()
		}
		end := at + 1
		if k := strings.IndexFunc(field[end:], endsDomain); k >= 0 {
			end += k
		} else {
			end = len(field)
		}
		domain := field[at+1 : end]
		if IsASCII(domain) || domain == "" {
			b.WriteString(field[:end])
			field = field[end:]
			continue
		}
		if end < len(field) && field[end] == '>' {
			end++
		}
		b.WriteString(field[:end])
		b.WriteString(" (" + aLabel(domain) + ")")
		field = field[end:]
	}
}

// endsDomain reports a character that cannot be in a domain as a header
// field writes it: what comes after one.
func endsDomain(r rune) bool {
	return unicode.IsSpace(r) || strings.ContainsRune("<>,;:\"()[]@", r)
}

// ErrNeedsUTF8 is an address that cannot be written without SMTPUTF8
// (RFC 6531): a local part that is not ASCII, or a domain with no valid
// A-label.
var ErrNeedsUTF8 = errors.New("address needs SMTPUTF8")

// strictIDNA converts a domain for a server without SMTPUTF8: UTS #46's
// lookup mapping (case, compatibility forms), as tenant.NormalizeDomain
// and the SPF and DMARC checks read the domain, so the A-label sent is the
// name they judged; then IDNA2008's rules on every label (no transitional
// mapping of ß or ς to ss or σ, the bidi and joiner rules, hyphens, LDH
// output) and DNS lengths, which the lookup profile does not check.
var strictIDNA = idna.New(
	idna.MapForLookup(),
	idna.Transitional(false),
	idna.BidiRule(),
	idna.CheckHyphens(true),
	idna.CheckJoiners(true),
	idna.StrictDomainName(true),
	idna.VerifyDNSLength(true),
)

// ALabels is a with its domain in A-labels (RFC 5890), as a server
// without SMTPUTF8 may be given it, the way Postfix's SMTP client sends
// a UTF-8 domain to one. Only the domain can be converted: a local part
// that is not ASCII, or a domain IDNA refuses, is an ErrNeedsUTF8. An
// ASCII address (an address literal among them) is returned as it is.
// The result is built as a parsed address is, so it is one too (its
// length checked again: an A-label is longer than its U-label).
func (a Address) ALabels() (Address, error) {
	if !IsASCII(a.Local) {
		return Address{}, fmt.Errorf("%w: the local part is not ASCII", ErrNeedsUTF8)
	}
	if IsASCII(a.Domain) {
		return a, nil
	}
	d, err := strictIDNA.ToASCII(a.Domain)
	if err != nil {
		return Address{}, fmt.Errorf("%w: the domain has no A-label: %w", ErrNeedsUTF8, err)
	}
	if !IsASCII(d) {
		// Not expected of ToASCII without an error; never written.
		return Address{}, fmt.Errorf("%w: the domain has no A-label", ErrNeedsUTF8)
	}
	b, err := build(a.Local, d)
	if err != nil {
		return Address{}, fmt.Errorf("%w: in A-labels: %w", ErrNeedsUTF8, err)
	}
	return b, nil
}

// SourceRouted reports a local part that asks the next hop to route
// further (%-hack, UUCP bang path, or an embedded @), like Postfix's
// allow_untrusted_routing check.
func (a Address) SourceRouted() bool {
	return strings.ContainsAny(a.Local, "@%!")
}

// ASCII reports an address that needs no SMTPUTF8 (RFC 6531) to be sent.
func (a Address) ASCII() bool { return IsASCII(a.Local) && IsASCII(a.Domain) }

// IsASCII reports a string of US-ASCII only.
func IsASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

// FoldLocal is a local part as mailbox lists compare it: lower-cased, but
// a character outside ASCII never folds into ASCII (the Kelvin sign into
// k, U+0130 into i). "Kate" spelled with a Kelvin sign is another mailbox
// to the customer's server, so it must not pass kate's entry in a
// recipient list (and reach that server as a guess the list was there to
// stop).
func FoldLocal(s string) string {
	if IsASCII(s) {
		return strings.ToLower(s)
	}
	return strings.Map(func(r rune) rune {
		if l := unicode.ToLower(r); r < utf8.RuneSelf || l >= utf8.RuneSelf {
			return l
		}
		return r
	}, s)
}

// IsPostmaster reports the local part postmaster, in any ASCII case. The
// length test keeps Unicode folding out: every character outside ASCII
// takes two or more octets, so no ten-octet string of one ("poſtmaſter",
// with the long s that strings.EqualFold folds to s) has ten characters.
func IsPostmaster(local string) bool {
	return len(local) == len("postmaster") && strings.EqualFold(local, "postmaster")
}

// LookupDomain is the domain in the form the directory keys on.
func (a Address) LookupDomain() string { return strings.ToLower(a.Domain) }

// Parse parses a mailbox in wire form, without angle brackets.
func Parse(s string) (Address, error) {
	if err := checkText(s); err != nil {
		return Address{}, err
	}
	var local, rest string
	if strings.HasPrefix(s, `"`) {
		l, n, err := unquote(s)
		if err != nil {
			return Address{}, err
		}
		local, rest = l, s[n:]
	} else {
		i := strings.IndexByte(s, '@')
		if i < 0 {
			return Address{}, fmt.Errorf("%w: no @", ErrSyntax)
		}
		local, rest = s[:i], s[i:]
		if !isDotString(local) {
			return Address{}, fmt.Errorf("%w: local part is not a dot-string", ErrSyntax)
		}
	}
	if !strings.HasPrefix(rest, "@") {
		return Address{}, fmt.Errorf("%w: no @ after the local part", ErrSyntax)
	}
	return build(local, rest[1:])
}

// ParseReversePath parses MAIL FROM's argument: "" or "<>" is the null
// sender, anything else a mailbox.
func ParseReversePath(s string) (Address, error) {
	if s == "" || s == "<>" {
		return Address{}, nil
	}
	return Parse(s)
}

// ParseDecoded parses an address whose local part has already been
// unquoted, as go-smtp hands MAIL and RCPT arguments to its backend
// (`"a b"@x` arrives as `a b@x`). The last @ separates the domain, since a
// domain never holds one; the quoting String needs is derived again from
// the decoded local part. The empty string is the null reverse-path.
func ParseDecoded(s string) (Address, error) {
	if s == "" {
		return Address{}, nil
	}
	if err := checkText(s); err != nil {
		return Address{}, err
	}
	i := strings.LastIndexByte(s, '@')
	if i < 0 {
		return Address{}, fmt.Errorf("%w: no @", ErrSyntax)
	}
	return build(s[:i], s[i+1:])
}

// v6Tag starts an IPv6 address literal, as build spells it.
const v6Tag = "[IPv6:"

func build(local, domain string) (Address, error) {
	if local == "" {
		return Address{}, fmt.Errorf("%w: empty local part", ErrSyntax)
	}
	if !validQuotedContent(local) {
		return Address{}, fmt.Errorf("%w: local part holds a character no quoting allows", ErrSyntax)
	}
	if d, ok := strings.CutSuffix(domain, "."); ok && !strings.HasPrefix(domain, "[") {
		// The root's dot ("example.org."), which Postfix and Sendmail
		// drop too: refused, the sender's mail bounced for good. One dot
		// only: "example.org.." and "a@." stay errors.
		domain = d
	}
	if len(domain) > len(v6Tag) && strings.EqualFold(domain[:len(v6Tag)], v6Tag) {
		// ABNF strings are case-insensitive (RFC 5234 §2.3), so
		// "[ipv6:...]" is an RFC 5321 literal too: refused, the sender's
		// mail bounced for good. Written back in the RFC's spelling.
		domain = v6Tag + domain[len(v6Tag):]
	}
	if err := checkDomain(domain); err != nil {
		return Address{}, err
	}
	// String's length, without building it: a dot-string needs no copy.
	if len(quoteLocal(local))+len("@")+len(domain) > MaxLength {
		return Address{}, fmt.Errorf("%w: longer than %d octets", ErrSyntax, MaxLength)
	}
	return Address{Local: local, Domain: domain}, nil
}

// checkText refuses controls and invalid UTF-8 before any parsing, so the
// reason given is the control character, not a derived syntax error.
func checkText(s string) error {
	if len(s) > 4*MaxLength {
		return fmt.Errorf("%w: longer than %d octets", ErrSyntax, MaxLength)
	}
	for i, r := range s {
		if r == utf8.RuneError {
			if _, size := utf8.DecodeRuneInString(s[i:]); size <= 1 {
				return fmt.Errorf("%w at offset %d", ErrInvalidUTF8, i)
			}
		}
		if isControl(r) {
			return fmt.Errorf("%w: %U at offset %d", ErrControl, r, i)
		}
	}
	return nil
}

// isControl also takes in the Unicode characters that end a line for some
// readers (U+2028, U+2029) and the bidirectional embeddings, overrides and
// isolates (U+202A-U+202E, U+2066-U+2069), with which an address shown in
// the panel, a log or a mail client reads as another one (CVE-2021-42574,
// "Trojan Source"). No mailbox needs them. The zero-width joiners stay:
// Persian and Indic names use them.
func isControl(r rune) bool {
	switch {
	case r < 0x20, r == 0x7f, r >= 0x80 && r < 0xa0:
		return true
	case r == 0x2028, r == 0x2029, r >= 0x202a && r <= 0x202e, r >= 0x2066 && r <= 0x2069:
		return true
	}
	return false
}

// isAtext is RFC 5321's atext, with RFC 6531's UTF8-non-ascii.
func isAtext(r rune) bool {
	switch {
	case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9':
		return true
	case r >= 0x80:
		return !isControl(r)
	}
	return strings.ContainsRune("!#$%&'*+-/=?^_`{|}~", r)
}

func isDotString(s string) bool {
	if s == "" {
		return false
	}
	// SplitSeq, not Split: String asks this of every address it writes,
	// several times a message, and a slice of atoms each time was garbage.
	for atom := range strings.SplitSeq(s, ".") {
		if atom == "" {
			return false
		}
		for _, r := range atom {
			if !isAtext(r) {
				return false
			}
		}
	}
	return true
}

// validQuotedContent reports whether every character can appear in a
// quoted-string, directly (qtextSMTP) or as a quoted-pair: printable ASCII
// and UTF-8, no controls.
func validQuotedContent(s string) bool {
	for _, r := range s {
		if isControl(r) || r == utf8.RuneError {
			return false
		}
	}
	return true
}

// quoteLocal writes a local part as a dot-string when it is one, else as a
// quoted-string escaping only `"` and `\` (RFC 5321 §4.1.2 asks senders to
// quote only when needed).
func quoteLocal(l string) string {
	if isDotString(l) {
		return l
	}
	var b strings.Builder
	b.WriteByte('"')
	for i := 0; i < len(l); i++ {
		if l[i] == '"' || l[i] == '\\' {
			b.WriteByte('\\')
		}
		b.WriteByte(l[i])
	}
	b.WriteByte('"')
	return b.String()
}

// unquote reads a quoted-string at the start of s and returns its content
// and the number of octets consumed.
func unquote(s string) (string, int, error) {
	var b strings.Builder
	for i := 1; i < len(s); i++ {
		switch s[i] {
		case '"':
			return b.String(), i + 1, nil
		case '\\':
			i++
			if i == len(s) {
				return "", 0, fmt.Errorf("%w: unterminated quoted-pair", ErrSyntax)
			}
		}
		b.WriteByte(s[i])
	}
	return "", 0, fmt.Errorf("%w: unterminated quoted-string", ErrSyntax)
}

// checkDomain accepts a domain name (LDH labels, or U-labels under
// SMTPUTF8) or an IPv4/IPv6 address literal.
func checkDomain(d string) error {
	if d == "" {
		return fmt.Errorf("%w: empty domain", ErrSyntax)
	}
	if len(d) > 255 {
		return fmt.Errorf("%w: domain longer than 255 octets", ErrSyntax)
	}
	if strings.HasPrefix(d, "[") {
		return checkLiteral(d)
	}
	for label := range strings.SplitSeq(d, ".") {
		if label == "" || len(label) > 63 {
			return fmt.Errorf("%w: empty or over-long domain label", ErrSyntax)
		}
		if label[0] == '-' || label[len(label)-1] == '-' {
			return fmt.Errorf("%w: domain label starts or ends with a hyphen", ErrSyntax)
		}
		for _, r := range label {
			ok := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' ||
				r >= 0x80 && !isControl(r) && r != utf8.RuneError && !isUnicodeSpaceOrPunct(r)
			if !ok {
				return fmt.Errorf("%w: %q in domain", ErrSyntax, r)
			}
		}
	}
	return nil
}

// isUnicodeSpaceOrPunct refuses the non-ASCII characters that would let a
// domain look like it ends earlier than it does (spaces, full-width
// brackets and stops are mapped to ASCII by some IDNA implementations).
func isUnicodeSpaceOrPunct(r rune) bool {
	switch r {
	case 0xa0, 0x1680, 0x2028, 0x2029, 0x202f, 0x205f, 0x3000, 0xfeff,
		0x3002, 0xff0e, 0xff61, // ideographic and full-width full stops
		0xff1c, 0xff1e, 0xff20: // full-width <, >, @
		return true
	}
	return r >= 0x2000 && r <= 0x200f
}

func checkLiteral(d string) error {
	if !strings.HasSuffix(d, "]") {
		return fmt.Errorf("%w: unterminated address literal", ErrSyntax)
	}
	inner := d[1 : len(d)-1]
	if v6, ok := strings.CutPrefix(inner, "IPv6:"); ok {
		a, err := netip.ParseAddr(v6)
		if err != nil || !a.Is6() || a.Zone() != "" {
			return fmt.Errorf("%w: bad IPv6 address literal", ErrSyntax)
		}
		return nil
	}
	a, err := netip.ParseAddr(inner)
	if err != nil || !a.Is4() {
		return fmt.Errorf("%w: bad address literal", ErrSyntax)
	}
	return nil
}
