package smtp

import (
	"fmt"
	"strings"
	"testing"
)

// parseMailboxReference is parseMailbox as it was before the mailbox
// shared the command line's text: built byte by byte, its local part by
// parseLocalPartReference.
func (p *parser) parseMailboxReference() (string, error) {
	localPart, err := p.parseLocalPartReference()
	if err != nil {
		return "", fmt.Errorf("in local-part: %v", err)
	} else if localPart == "" {
		return "", fmt.Errorf("local-part is empty")
	}

	if err := p.expectByte('@'); err != nil {
		return "", err
	}

	var sb strings.Builder
	sb.WriteString(localPart)
	sb.WriteByte('@')

	for {
		ch, ok := p.peekByte()
		if !ok {
			break
		}
		if ch == ' ' || ch == '\t' || ch == '>' {
			break
		}
		// "a@@b" is no mailbox: a backend taking the last @ as the
		// separator read the local part "a@" at "b". ("a@b@c" stays
		// for the backend, which refuses or quotes source routes.)
		if ch == '@' && strings.HasSuffix(sb.String(), "@") {
			return "", fmt.Errorf("empty domain before @")
		}
		p.readByte()
		sb.WriteByte(ch)
	}

	if strings.HasSuffix(sb.String(), "@") {
		return "", fmt.Errorf("domain is empty")
	}

	return sb.String(), nil
}

// parseLocalPartReference is parseLocalPart as it was then.
func (p *parser) parseLocalPartReference() (string, error) {
	var sb strings.Builder

	if p.acceptByte('"') { // quoted-string
		for {
			ch, ok := p.readByte()
			switch ch {
			case '\\':
				ch, ok = p.readByte()
			case '"':
				return sb.String(), nil
			}
			if !ok {
				return "", fmt.Errorf("malformed quoted-string")
			}
			sb.WriteByte(ch)
		}
	} else { // dot-string
		for {
			ch, ok := p.peekByte()
			if !ok {
				return sb.String(), nil
			}
			switch ch {
			case '@':
				return sb.String(), nil
			case '(', ')', '<', '>', '[', ']', ':', ';', '\\', ',', '"', ' ', '\t':
				return "", fmt.Errorf("malformed dot-string")
			}
			p.readByte()
			sb.WriteByte(ch)
		}
	}
}

// FuzzParseMailboxMatchesReference: the mailbox shared with the command
// line is the one the byte-by-byte builder made, with the same error and
// the same text left for the parameters, on hostile paths too.
func FuzzParseMailboxMatchesReference(f *testing.F) {
	for _, s := range []string{"a@b", `"a\"b"@c`, `"a\\"@b`, "a@@b", "a@b@c", "x.@y.", "a@[IPv6:::1]> SIZE=1",
		"\u00fc@\u00e9", "a\x00@b\r", `"a@"@b`, "@b", "a@", `"unterminated`, "a b@c", "a@b\tBODY=8BITMIME"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, r := parser{s: s}, parser{s: s}
		got, err := p.parseMailbox()
		want, rerr := r.parseMailboxReference()
		if got != want || fmt.Sprint(err) != fmt.Sprint(rerr) || p.s != r.s {
			t.Fatalf("parseMailbox(%q) = %q, %v, rest %q; reference %q, %v, rest %q", s, got, err, p.s, want, rerr, r.s)
		}
	})
}
