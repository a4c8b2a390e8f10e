package auth

import (
	"bytes"
	"cmp"
	"context"
	"crypto"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/mxgrid/mxgrid/scanner"
)

// ARC (RFC 8617) lets a forwarder or mailing list that changed a message
// vouch for the authentication results it saw before the change. We verify
// the chain and record the result (arc=pass/fail/none in our
// Authentication-Results, ARC_* symbols); it does not override DMARC: any
// sender can build a valid chain, so trusting one is a decision about
// which sealers to believe, which we leave to the operator's weights.

// maxARCSets bounds the chains we verify. RFC 8617 5.2 fails a chain of
// more than 50 sets, but each set costs a key lookup and up to
// maxKeyRecords verifications in the sender's choice of DNS: 50 made 51
// lookups and 150 verifications per message. Real chains carry a handful
// (a list, a forwarder, a provider's internal hops: 1 to 3, rarely 5);
// a longer one fails before anything is looked up, as one past 50 would.
const maxARCSets = 10

// maxInstanceLength is more digits than an int holds.
const maxInstanceLength = 20

type arcSet struct {
	seal, sig, results *rawField
}

// rawField is a header field as received: its name and everything after
// the colon, folding included, for canonicalisation.
type rawField struct {
	name, value string
	tags        map[string]string
}

// headerFields splits the raw header of a message into fields, in order.
// A value is a slice of the header, continuation lines included, rather
// than a concatenation per line, which a header folded into many lines
// would make quadratic.
func headerFields(raw []byte) []*rawField {
	end := bytes.Index(raw, []byte("\r\n\r\n"))
	if end < 0 {
		end = len(raw)
	}
	head := string(raw[:end])
	// segment is part of a field's value, head[start:end]; a field has
	// one unless a line that is no field split its continuation lines.
	type segment struct{ field, start, end int }
	var (
		out      []*rawField
		segments []segment
	)
	for pos := 0; pos < len(head); {
		next := len(head)
		if i := strings.Index(head[pos:], "\r\n"); i >= 0 {
			next = pos + i + 2
		}
		line := head[pos:next]
		switch {
		case (line[0] == ' ' || line[0] == '\t') && len(out) > 0:
			if last := &segments[len(segments)-1]; last.end == pos {
				last.end = next
			} else {
				segments = append(segments, segment{len(out) - 1, pos, next})
			}
		default:
			if name, _, ok := strings.Cut(line, ":"); ok {
				out = append(out, &rawField{name: name})
				segments = append(segments, segment{len(out) - 1, pos + len(name) + 1, next})
			}
		}
		pos = next
	}
	for i := 0; i < len(segments); {
		f := out[segments[i].field]
		j := i + 1
		for j < len(segments) && segments[j].field == segments[i].field {
			j++
		}
		if j == i+1 {
			f.value = head[segments[i].start:segments[i].end]
		} else {
			var b strings.Builder
			for _, s := range segments[i:j] {
				b.WriteString(head[s.start:s.end])
			}
			f.value = b.String()
		}
		f.value = strings.TrimSuffix(f.value, "\r\n")
		i = j
	}
	return out
}

// arcNames are ARC's header fields, lower-cased.
var arcNames = [...]string{"arc-seal", "arc-message-signature", "arc-authentication-results"}

// hasARCFields reports whether msg's parsed header has a field of ARC's,
// to decide where the checks run; verifyARC reads the raw header itself.
func hasARCFields(msg *scanner.Message) bool {
	h := &msg.Header
	return h.Has("Arc-Seal") || h.Has("Arc-Message-Signature") || h.Has("Arc-Authentication-Results")
}

// isARCName reports whether a lower-cased field name is one of ARC's.
func isARCName(lower string) bool {
	return slices.Contains(arcNames[:], lower)
}

// hasARCField reports whether any of headerFields(head) is named as
// isARCName lists, without building them. A line that starts with white
// space, a continuation or not, cannot be named so.
func hasARCField(head []byte) bool {
	if end := bytes.Index(head, []byte("\r\n\r\n")); end >= 0 {
		head = head[:end]
	}
	for len(head) > 0 {
		line, rest, _ := bytes.Cut(head, []byte("\r\n"))
		head = rest
		name, _, ok := bytes.Cut(line, []byte(":"))
		if !ok {
			continue
		}
		if ascii(name) {
			// strings.ToLower on ASCII, without the copy.
			for _, arc := range arcNames {
				if len(name) == len(arc) && bytes.EqualFold(name, []byte(arc)) {
					return true
				}
			}
		} else if isARCName(strings.ToLower(string(name))) {
			// Non-ASCII can lower-case to ASCII (U+0130 to i).
			return true
		}
	}
	return false
}

func ascii(b []byte) bool {
	for _, c := range b {
		if c >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

// parseTags reads a tag-list (RFC 6376 3.2): "a=b; c=d". A value loses
// its white space (folding included); a tag given twice keeps its last
// value. Only the tags some caller reads, tagNames, are kept: RFC 6376 3.2
// has unrecognised tags ignored. The list is read in one pass, values
// sliced from v and only those with white space copied: splitting it into
// tags and each value into words cost 8-15 MB for a field of 0.9 MB, and
// a map entry per tag a sender names.
func parseTags(v string) map[string]string {
	m := map[string]string{}
	for rest, more := v, true; more; {
		var part string
		part, rest, more = strings.Cut(rest, ";")
		k, val, ok := strings.Cut(part, "=")
		if k = strings.TrimSpace(k); ok && slices.Contains(tagNames[:], k) {
			m[k] = val
		}
	}
	for k, val := range m {
		m[k] = withoutSpace(val)
	}
	return m
}

// tagNames are the tags read from a signature (ARC's, or a DKIM one's h=)
// or a key record.
var tagNames = [...]string{"a", "b", "bh", "c", "cv", "d", "h", "i", "k", "p", "s", "v"}

// withoutSpace is s without its white space, as strings.Fields sees it.
func withoutSpace(s string) string {
	if strings.IndexFunc(s, unicode.IsSpace) < 0 {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	for word := range strings.FieldsFuncSeq(s, unicode.IsSpace) {
		b.WriteString(word)
	}
	return b.String()
}

// verifyARC returns the chain's result: "none" (no ARC fields), "pass" or
// "fail", with a reason for fail.
func (c *Check) verifyARC(ctx context.Context, msg *scanner.Message) (result, reason string) {
	head, err := msg.Head()
	if err != nil {
		return "fail", err.Error()
	}
	if !hasARCField(head) {
		// Most mail: no fields to split out and look at.
		return "none", ""
	}
	fields := headerFields(head)
	sets := map[int]*arcSet{}
	max := 0
	for _, f := range fields {
		var slot **rawField
		name := strings.ToLower(f.name)
		if !isARCName(name) {
			continue
		}
		if name == "arc-authentication-results" {
			// AAR is not a tag-list; only its leading i= matters.
			i, _, _ := strings.Cut(strings.TrimSpace(f.value), ";")
			f.tags = parseTags(i)
		} else {
			f.tags = parseTags(f.value)
		}
		// The sender chooses the length of i: a number is read from no
		// more than a number has (strconv's error would copy the rest),
		// and quoted as far as publicReason keeps (0.9 MB quoted whole
		// took 4 MB).
		i := f.tags["i"]
		n, err := strconv.Atoi(i[:min(len(i), maxInstanceLength+1)])
		if err != nil || n < 1 || len(i) > maxInstanceLength {
			return "fail", "bad instance " + strconv.Quote(i[:min(len(i), maxReason)])
		}
		if n > maxARCSets {
			return "fail", fmt.Sprintf("instance %d: chains of more than %d ARC sets are not verified", n, maxARCSets)
		}
		s := sets[n]
		if s == nil {
			s = &arcSet{}
			sets[n] = s
		}
		switch name {
		case "arc-seal":
			slot = &s.seal
		case "arc-message-signature":
			slot = &s.sig
		default:
			slot = &s.results
		}
		if *slot != nil {
			return "fail", fmt.Sprintf("two %s for instance %d", f.name, n)
		}
		*slot = f
		if n > max {
			max = n
		}
	}
	if max == 0 {
		return "none", ""
	}
	for i := 1; i <= max; i++ {
		s := sets[i]
		if s == nil || s.seal == nil || s.sig == nil || s.results == nil {
			return "fail", fmt.Sprintf("instance %d incomplete", i)
		}
		cv := strings.ToLower(s.seal.tags["cv"])
		if (i == 1 && cv != "none") || (i > 1 && cv != "pass") {
			return "fail", fmt.Sprintf("instance %d cv=%s", i, cv)
		}
	}
	// A key its DNS could not give now is no failure: failing the chain
	// then scored every list and forwarder's mail during a DNS outage. The
	// other signatures are still checked, and one that does not verify
	// fails the chain whatever could not be looked up.
	var unverified string
	// Only the newest message signature must verify (RFC 8617 5.2): older
	// ones were broken by the very changes ARC exists to vouch for.
	if err := c.verifyAMS(ctx, msg, fields, sets[max].sig); err != nil {
		reason := fmt.Sprintf("ARC-Message-Signature i=%d: %v", max, err)
		if !errors.Is(err, errKeyUnavailable) {
			return "fail", reason
		}
		unverified = reason
	}
	canon := canonicalSets(sets, max)
	for i := max; i >= 1; i-- {
		if err := c.verifySeal(ctx, sets[i].seal, canon, i); err != nil {
			reason := fmt.Sprintf("ARC-Seal i=%d: %v", i, err)
			if !errors.Is(err, errKeyUnavailable) {
				return "fail", reason
			}
			unverified = cmp.Or(unverified, reason)
		}
	}
	if unverified != "" {
		return "temperror", unverified
	}
	return "pass", ""
}

// errKeyUnavailable marks a key lookup that DNS could not answer now
// (a timeout, SERVFAIL, a resolver that is down), as against a key that
// does not exist.
var errKeyUnavailable = errors.New("key unavailable")

func (c *Check) verifyAMS(ctx context.Context, msg *scanner.Message, fields []*rawField, ams *rawField) error {
	t := ams.tags
	headerCanon, bodyCanon, _ := strings.Cut(strings.ToLower(t["c"]), "/")
	if headerCanon == "" {
		headerCanon = "simple"
	}
	if bodyCanon == "" {
		bodyCanon = "simple"
	}
	bh, err := bodyHash(msg, bodyCanon == "relaxed")
	if err != nil {
		return err
	}
	if base64.StdEncoding.EncodeToString(bh) != t["bh"] {
		return errors.New("body hash does not match")
	}
	// RFC 6376 5.4.2: each name in h= takes the last unused instance of
	// its field, and nothing once none is left. The instances are listed
	// by name once, so that a name costs a map lookup: searching the
	// fields for each name cost h= times the fields, which the sender
	// chooses (a 208 KB header of 100,000 names and 1,000 fields took
	// 0.8 s of CPU, a 1 MB one four times longer, before any DNS lookup).
	// Field names are ASCII (RFC 5322 2.2), so lower-casing them is the
	// comparison RFC 6376 3.4 asks for.
	unused := map[string][]*rawField{}
	for _, f := range fields {
		if f != ams {
			name := strings.ToLower(f.name)
			unused[name] = append(unused[name], f)
		}
	}
	var in bytes.Buffer
	for rest, more := t["h"], true; more; {
		var name string
		name, rest, more = strings.Cut(rest, ":")
		name = strings.ToLower(strings.TrimSpace(name))
		if fs := unused[name]; len(fs) > 0 {
			f := fs[len(fs)-1]
			unused[name] = fs[:len(fs)-1]
			in.WriteString(canonicalHeader(f.name, f.value, headerCanon == "relaxed"))
		}
	}
	in.WriteString(strings.TrimSuffix(canonicalHeader(ams.name, withoutSignature(ams.value), headerCanon == "relaxed"), "\r\n"))
	sum := sha256.Sum256(in.Bytes())
	return c.verifySignature(ctx, t, sum[:])
}

// canonicalSet is one ARC set's fields as the seals sign them, relaxed:
// the AAR and AMS, the seal as later seals sign it and as its own
// signature covers it (b= empty, no CRLF).
type canonicalSet struct {
	results, sig, seal, unsignedSeal []byte
}

// canonicalSets canonicalises sets 1..max once: seal i signs every set up
// to i, and canonicalising them anew for each seal cost the square of the
// chain. 50 sets padded to 644 KB made 660 MB of copies and 0.6 s of CPU
// per message, with a chain any sender can sign.
func canonicalSets(sets map[int]*arcSet, max int) []canonicalSet {
	out := make([]canonicalSet, max+1)
	for i := 1; i <= max; i++ {
		s := sets[i]
		out[i] = canonicalSet{
			results:      []byte(canonicalHeader(s.results.name, s.results.value, true)),
			sig:          []byte(canonicalHeader(s.sig.name, s.sig.value, true)),
			seal:         []byte(canonicalHeader(s.seal.name, s.seal.value, true)),
			unsignedSeal: []byte(strings.TrimSuffix(canonicalHeader(s.seal.name, withoutSignature(s.seal.value), true), "\r\n")),
		}
	}
	return out
}

// verifySeal checks ARC-Seal i, seal, over the ARC sets 1..i.
func (c *Check) verifySeal(ctx context.Context, seal *rawField, canon []canonicalSet, i int) error {
	h := sha256.New()
	for k := 1; k <= i; k++ {
		h.Write(canon[k].results)
		h.Write(canon[k].sig)
		if k < i {
			h.Write(canon[k].seal)
		}
	}
	h.Write(canon[i].unsignedSeal)
	return c.verifySignature(ctx, seal.tags, h.Sum(nil))
}

// verifySignature checks b= over the data whose SHA-256 digest is sum,
// with the key published at s._domainkey.d, for a=rsa-sha256 or
// a=ed25519-sha256.
func (c *Check) verifySignature(ctx context.Context, t map[string]string, sum []byte) error {
	sig, err := base64.StdEncoding.DecodeString(t["b"])
	if err != nil || len(sig) == 0 {
		return errors.New("unreadable signature")
	}
	if t["s"] == "" || t["d"] == "" {
		return errors.New("no selector or domain")
	}
	txts, err := c.res.LookupTXT(ctx, t["s"]+"._domainkey."+t["d"])
	if err != nil {
		if dnsErr, ok := errors.AsType[*net.DNSError](err); ok && !dnsErr.IsNotFound && (dnsErr.IsTemporary || dnsErr.IsTimeout) {
			return fmt.Errorf("%w: %w", errKeyUnavailable, err)
		}
		return fmt.Errorf("key: %w", err)
	}
	if len(txts) == 0 {
		return errors.New("no usable key")
	}
	// A selector may publish more than one record (a key being rolled
	// over): each is tried, as RFC 6376 3.6.2.2 allows, up to a few, since
	// the sender's DNS chooses how many and each costs a verification.
	var first error
	for _, txt := range txts[:min(len(txts), maxKeyRecords)] {
		err := verifyWithKey(parseTags(txt), strings.ToLower(t["a"]), sum, sig)
		if err == nil {
			return nil
		}
		first = cmp.Or(first, err)
	}
	return first
}

// maxKeyRecords bounds the key records tried for one signature.
const maxKeyRecords = 3

// verifyWithKey checks sig over the SHA-256 digest sum with the key of
// one key record, for the signature's algorithm alg.
func verifyWithKey(key map[string]string, alg string, sum, sig []byte) error {
	pub, err := base64.StdEncoding.DecodeString(key["p"])
	if err != nil || len(pub) == 0 {
		return errors.New("no usable key")
	}
	if err := keyAllows(key, alg); err != nil {
		return err
	}
	switch alg {
	case "rsa-sha256":
		k, err := x509.ParsePKIXPublicKey(pub)
		rk, ok := k.(*rsa.PublicKey)
		if err != nil || !ok {
			return errors.New("not an RSA key")
		}
		if err := checkRSAKeySize(pub); err != nil {
			return err
		}
		if err := rsa.VerifyPKCS1v15(rk, crypto.SHA256, sum, sig); err != nil {
			return errors.New("signature does not verify")
		}
	case "ed25519-sha256":
		if len(pub) != ed25519.PublicKeySize || !ed25519.Verify(ed25519.PublicKey(pub), sum, sig) {
			return errors.New("signature does not verify")
		}
	default:
		return fmt.Errorf("algorithm %q", alg)
	}
	return nil
}

// keyAllows checks a key record's own tags (RFC 6376 3.6.1) against the
// signature's algorithm, e.g. "ed25519-sha256": a record of another
// version is no key, and the key type (k=, "rsa" when absent) and the
// hashes it may be used with (h=, any when absent) bind it, so that a key
// published for one use does not verify another.
func keyAllows(key map[string]string, alg string) error {
	if v, ok := key["v"]; ok && v != "DKIM1" {
		return fmt.Errorf("key record version %q", v)
	}
	keyType, hash, _ := strings.Cut(alg, "-")
	if k := cmp.Or(strings.ToLower(key["k"]), "rsa"); k != keyType {
		return fmt.Errorf("key of type %q for %s", k, alg)
	}
	if h, ok := key["h"]; ok && !slices.Contains(strings.Split(strings.ToLower(h), ":"), hash) {
		return fmt.Errorf("key not for %s (h=%s)", hash, h)
	}
	return nil
}

// withoutSignature empties the b= tag's value, keeping everything else
// as received (RFC 6376 3.7).
func withoutSignature(v string) string {
	parts := strings.Split(v, ";")
	for i, p := range parts {
		if k, _, ok := strings.Cut(p, "="); ok && strings.TrimSpace(k) == "b" {
			parts[i] = p[:strings.Index(p, "=")+1]
		}
	}
	return strings.Join(parts, ";")
}

// canonicalHeader is RFC 6376 3.4.1 (simple) or 3.4.2 (relaxed), with the
// terminating CRLF. Relaxed, the value is unfolded (each CRLF removed) and
// its runs of blanks become one space, none at either end, in one pass:
// splitting it into words first allocated 16 bytes per word, eight times
// a value of one-letter words.
func canonicalHeader(name, value string, relaxed bool) string {
	if !relaxed {
		return name + ":" + value + "\r\n"
	}
	var b strings.Builder
	b.Grow(len(name) + len(value) + 3)
	b.WriteString(strings.ToLower(strings.TrimSpace(name)))
	b.WriteByte(':')
	blank, words := false, false
	for i := 0; i < len(value); i++ {
		switch c := value[i]; {
		case c == '\r' && i+1 < len(value) && value[i+1] == '\n':
			i++
		case c == ' ' || c == '\t':
			blank = true
		default:
			if blank && words {
				b.WriteByte(' ')
			}
			blank, words = false, true
			b.WriteByte(c)
		}
	}
	b.WriteString("\r\n")
	return b.String()
}
