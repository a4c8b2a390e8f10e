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
