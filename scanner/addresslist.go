package scanner

import (
	"iter"
	"strings"
)

// MaxAddressBytes bounds an element of an address list worth giving to
// net/mail's parser: real addresses, display name included, stay well
// under 1 KB, and the parser's error can quote what it refused three
// times over (2.6 MB for an element of 0.9 MB).
const MaxAddressBytes = 4 << 10

// AddressListElements yields the elements of an address list (RFC 5322
// 3.4) in order: the text between its top-level commas, those outside
// quoted strings, comments, angle brackets and domain literals, blank
// ones skipped as net/mail skips them; a group's members are elements. A reader that wants a few
// addresses parses those one by one (mail.ParseAddress) and stops:
// net/mail's ParseAddressList parses every address before answering, and
// a From of 75,000 addresses (975 KB) cost it 15 MB. An element the split
// gets wrong is one mail.ParseAddress refuses.
func AddressListElements(v string) iter.Seq[string] {
	return func(yield func(string) bool) {
		comments := 0 // nesting depth
		quoted, angle, literal := false, false, false
		start := 0
		next := func(end int) bool {
			elem := v[start:end]
			start = end + 1
			return strings.Trim(elem, " \t\r\n") == "" || yield(elem)
		}
		for i := 0; i < len(v); i++ {
			switch c := v[i]; {
			case c == '\\' && (quoted || comments > 0):
				i++
			case quoted:
				quoted = c != '"'
			case comments > 0:
				switch c {
				case '(':
					comments++
				case ')':
					comments--
				}
			case c == '"':
				quoted = true
			case c == '(':
				comments = 1
			case literal:
				literal = c != ']'
			case c == '[':
				literal = true
			case angle:
				angle = c != '>'
			case c == '<':
				angle = true
			case c == ':':
				// A group's name (RFC 5322 3.4: "name: a, b;"), which
				// net/mail drops, giving the group's addresses.
				start = i + 1
			case c == ',' || c == ';':
				if !next(i) {
					return
				}
			}
		}
		next(len(v))
	}
}

// SimpleAddress reads an address in the shapes nearly all mail uses,
// "local@domain", "<local@domain>" and "Words of a name <local@domain>",
// all in ASCII atoms with single spaces between the words, for which
// mail.ParseAddress (go-message's and net/mail's) cannot but answer that
// name and address; it answers !ok for anything else, for the parser to
// judge. Without RFC 2047's "=?" a word is not decoded, so cannot fail to
// be. The parser allocates about ten times per address, this not at all,
// and every message's From is read so (and its To where no envelope
// says the recipient).
func SimpleAddress(v string) (name, addr string, ok bool) {
	v = strings.Trim(v, " \t")
	if before, angle, found := strings.Cut(v, "<"); found {
		spec, found := strings.CutSuffix(angle, ">")
		if !found {
			return "", "", false
		}
		if name = strings.TrimRight(before, " \t"); name != "" {
			for word := range strings.SplitSeq(name, " ") {
				if !atoms(word) || strings.ContainsAny(word, "=?") {
					return "", "", false
				}
			}
		}
		v = spec
	}
	local, domain, found := strings.Cut(v, "@")
	if !found || !dotAtom(local) || !dotAtom(domain) {
		return "", "", false
	}
	return name, v, true
}

// dotAtom reports an RFC 5322 dot-atom in ASCII: atoms joined by single
// dots.
func dotAtom(s string) bool {
	return atoms(s) && s[0] != '.' && s[len(s)-1] != '.' && !strings.Contains(s, "..")
}

// atoms reports a non-empty run of ASCII atext (RFC 5322 3.2.3) and dots.
func atoms(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !atomChar[s[i]] {
			return false
		}
	}
	return true
}

// atomChar is atoms' test of one byte, a table for a loop run on every
// address.
var atomChar = func() (set [256]bool) {
	for c := byte('!'); c <= '~'; c++ {
		set[c] = strings.IndexByte(`()<>[]:;@\,"`, c) < 0
	}
	return set
}()
