package smtp

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// cutPrefixFold is a version of strings.CutPrefix which is case-insensitive.
func cutPrefixFold(s, prefix string) (string, bool) {
	if len(s) < len(prefix) || !strings.EqualFold(s[:len(prefix)], prefix) {
		return "", false
	}
	return s[len(prefix):], true
}

func parseCmd(line string) (cmd string, arg string, err error) {
	line = strings.TrimRight(line, "\r\n")

	l := len(line)
	switch {
	case l >= 8 && strings.EqualFold(line[:8], "STARTTLS"):
		// mxgrid patch: what follows is an argument, which STARTTLS must
		// not have (RFC 3207 §4); upstream dropped it, and took
		// "STARTTLSX" for STARTTLS.
		if l > 8 && line[8] != ' ' {
			return "", "", fmt.Errorf("mangled command: %q", line)
		}
		return "STARTTLS", strings.TrimSpace(line[8:]), nil
	case l == 0:
		return "", "", nil
	case l < 4:
		return "", "", fmt.Errorf("command too short: %q", line)
	case l == 4:
		return strings.ToUpper(line), "", nil
	case l == 5:
		// Too long to be only command, too short to have args
		return "", "", fmt.Errorf("mangled command: %q", line)
	}

	// If we made it here, command is long enough to have args
	if line[4] != ' ' {
		// There wasn't a space after the command?
		return "", "", fmt.Errorf("mangled command: %q", line)
	}

	return strings.ToUpper(line[0:4]), strings.TrimSpace(line[5:]), nil
}

// Takes the arguments proceeding a command and files them
// into a map[string]string after uppercasing each key.  Sample arg
// string:
//
//	" BODY=8BITMIME SIZE=1024 SMTPUTF8"
//
// The leading space is mandatory.
// parseArgs reads the ESMTP parameters of MAIL or RCPT. A "KEY=" of no
// value and a keyword given twice are refused (mxgrid patch): RFC 5321
// §4.1.2's esmtp-value is one character or more, and RFC 5321 §4.1.1.11
// keeps a keyword to one use. Upstream read "KEY=" as the bare keyword,
// so "SMTPUTF8=" passed for SMTPUTF8, and kept the last of two SIZE
// parameters, whichever the server would have refused.
func parseArgs(s string) (map[string]string, error) {
	// Made for the first parameter (mxgrid patch): most MAIL and RCPT
	// commands have none, and the empty map was an allocation each.
	var argMap map[string]string
	for _, arg := range strings.Fields(s) {
		if argMap == nil {
			argMap = make(map[string]string)
		}
		m := strings.Split(arg, "=")
		if len(m) > 2 || len(m) == 2 && m[1] == "" {
			return nil, fmt.Errorf("failed to parse arg string: %q", arg)
		}
		key := strings.ToUpper(m[0])
		if _, dup := argMap[key]; dup {
			return nil, fmt.Errorf("parameter %q given twice", key)
		}
		argMap[key] = ""
		if len(m) == 2 {
			argMap[key] = m[1]
		}
	}
	return argMap, nil
}

func parseHelloArgument(arg string) (string, error) {
	domain := arg
	if idx := strings.IndexRune(arg, ' '); idx >= 0 {
		domain = arg[:idx]
	}
	if domain == "" {
		return "", fmt.Errorf("invalid domain")
	}
	return domain, nil
}

// Parses the BY argument defined in RFC2852 section 4.
// Returns pointer to options or nil if invalid.
func parseDeliverByArgument(arg string) *DeliverByOptions {
	secondsStr, modeStr, ok := strings.Cut(arg, ";")
	if !ok {
		return nil
	}
	modeStr, traceValue := strings.CutSuffix(modeStr, "T")
	if modeStr != string(DeliverByNotify) && modeStr != string(DeliverByReturn) {
		return nil
	}
	modeValue := DeliverByMode(modeStr)
	secondsValue, err := strconv.Atoi(secondsStr)
	if err != nil || (modeValue == DeliverByReturn && secondsValue < 1) {
		return nil
	}
	return &DeliverByOptions{
		Time:  time.Duration(secondsValue) * time.Second,
		Mode:  modeValue,
		Trace: traceValue,
	}
}

// parser parses command arguments defined in RFC 5321 section 4.1.2.
type parser struct {
	s string
}

func (p *parser) peekByte() (byte, bool) {
	if len(p.s) == 0 {
		return 0, false
	}
	return p.s[0], true
}

func (p *parser) readByte() (byte, bool) {
	ch, ok := p.peekByte()
	if ok {
		p.s = p.s[1:]
	}
	return ch, ok
}

func (p *parser) acceptByte(ch byte) bool {
	got, ok := p.peekByte()
	if !ok || got != ch {
		return false
	}
	p.readByte()
	return true
}

func (p *parser) expectByte(ch byte) error {
	if !p.acceptByte(ch) {
		if len(p.s) == 0 {
			return fmt.Errorf("expected '%v', got EOF", string(ch))
		} else {
			return fmt.Errorf("expected '%v', got '%v'", string(ch), string(p.s[0]))
		}
	}
	return nil
}

func (p *parser) parseReversePath() (string, error) {
	if strings.HasPrefix(p.s, "<>") {
		p.s = strings.TrimPrefix(p.s, "<>")
		return "", nil
	}
	return p.parsePath()
}

// parseForwardPath is parsePath plus "<Postmaster>", the one forward-path
// without a domain (RFC 5321 §4.1.1.3, case-insensitive), which reaches
// the backend as "postmaster" (mxgrid patch; upstream answered it 501,
// a syntax error, though §4.5.1 says every server must take it).
func (p *parser) parseForwardPath() (string, error) {
	const postmaster = "<postmaster>"
	if len(p.s) >= len(postmaster) && strings.EqualFold(p.s[:len(postmaster)], postmaster) {
		p.s = p.s[len(postmaster):]
		return "postmaster", nil
	}
	return p.parsePath()
}

func (p *parser) parsePath() (string, error) {
	hasBracket := p.acceptByte('<')
	if p.acceptByte('@') {
		i := strings.IndexByte(p.s, ':')
		if i < 0 {
			return "", fmt.Errorf("malformed a-d-l")
		}
		p.s = p.s[i+1:]
	}
	mbox, err := p.parseMailbox()
	if err != nil {
		return "", fmt.Errorf("in mailbox: %v", err)
	}
	if hasBracket {
		if err := p.expectByte('>'); err != nil {
			return "", err
		}
	}
	return mbox, nil
}

func (p *parser) parseMailbox() (string, error) {
	start := p.s
	quoted := strings.HasPrefix(p.s, `"`)
	localPart, err := p.parseLocalPart()
	if err != nil {
		return "", fmt.Errorf("in local-part: %v", err)
	} else if localPart == "" {
		return "", fmt.Errorf("local-part is empty")
	}

	if err := p.expectByte('@'); err != nil {
		return "", err
	}

	domainStart := p.s
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
		if ch == '@' && endsDomainless(domainStart[:len(domainStart)-len(p.s)]) {
			return "", fmt.Errorf("empty domain before @")
		}
		p.readByte()
	}
	domain := domainStart[:len(domainStart)-len(p.s)]
	if endsDomainless(domain) {
		return "", fmt.Errorf("domain is empty")
	}

	// A dot-string local part is the mailbox's text as sent, which the
	// mailbox can share rather than copy (mxgrid patch: built byte by
	// byte, it was four allocations an address).
	if !quoted {
		return start[:len(start)-len(p.s)], nil
	}
	return localPart + "@" + domain, nil
}

// endsDomainless reports whether the domain read so far leaves an @ the
// last character of the mailbox: nothing read yet, or an @ last.
func endsDomainless(domain string) bool {
	return domain == "" || domain[len(domain)-1] == '@'
}

func (p *parser) parseLocalPart() (string, error) {
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
	} else { // dot-string, read as sent
		start := p.s
		for {
			ch, ok := p.peekByte()
			if !ok || ch == '@' {
				return start[:len(start)-len(p.s)], nil
			}
			switch ch {
			case '(', ')', '<', '>', '[', ']', ':', ';', '\\', ',', '"', ' ', '\t':
				return "", fmt.Errorf("malformed dot-string")
			}
			p.readByte()
		}
	}
}
