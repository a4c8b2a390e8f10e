package rules

import (
	"net/mail"
	"strings"
	"time"
)

// parseDate reads an RFC 5322 date and returns the instant and the
// written UTC offset in seconds. The common shape ("Tue, 27 Aug 2002
// 13:41:46 +0200 (CEST)") is read by hand; anything else goes to
// net/mail, which tries a dozen layouts and allocates an error for every
// one that does not fit — a third of the allocations of a whole scan when
// it read every Date and Received stamp.
func parseDate(s string) (t time.Time, offset int, err error) {
	if t, offset, ok := parseCommonDate(s); ok {
		return t, offset, nil
	}
	t, err = mail.ParseDate(s)
	if err != nil {
		return time.Time{}, 0, err
	}
	_, offset = t.Zone()
	return t, offset, nil
}

var weekdays = [...]string{"Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"}

var months = [...]string{"Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"}

// parseCommonDate accepts only what net/mail would accept with the same
// result: "[Day, ]D Mon YYYY HH:MM[:SS] ±HHMM[ (comment)]".
func parseCommonDate(s string) (time.Time, int, bool) {
	p := dateScanner{s: strings.Trim(s, " ")}
	if len(p.s) >= 4 && p.s[3] == ',' {
		if !oneOf(p.s[:3], weekdays[:]) {
			return time.Time{}, 0, false
		}
		p.s = p.s[4:]
		if !p.space() {
			return time.Time{}, 0, false
		}
	}
	day, ok := p.number(1, 2)
	ok = ok && p.space()
	mon := 0
	if ok && len(p.s) >= 3 {
		for i, m := range months {
			if p.s[:3] == m {
				mon = i + 1
			}
		}
		p.s = p.s[3:]
	}
	ok = ok && mon > 0 && p.space()
	year, ok2 := p.number(4, 4)
	ok = ok && ok2 && p.space()
	hour, ok2 := p.number(2, 2)
	ok = ok && ok2 && p.char(':')
	minute, ok2 := p.number(2, 2)
	ok = ok && ok2
	sec := 0
	if ok && p.peek(':') {
		p.char(':')
		sec, ok = p.number(2, 2)
	}
	ok = ok && p.space() && len(p.s) >= 5 && (p.s[0] == '+' || p.s[0] == '-')
	if !ok {
		return time.Time{}, 0, false
	}
	sign := 1
	if p.s[0] == '-' {
		sign = -1
	}
	p.s = p.s[1:]
	zh, ok := p.number(2, 2)
	zm, ok2 := p.number(2, 2)
	if !ok || !ok2 || zh > 23 || zm > 59 || hour > 23 || minute > 59 || sec > 59 || day < 1 {
		return time.Time{}, 0, false
	}
	if rest := strings.Trim(p.s, " "); rest != "" && !simpleComment(rest) {
		return time.Time{}, 0, false
	}
	utc := time.Date(year, time.Month(mon), day, hour, minute, sec, 0, time.UTC)
	if utc.Day() != day { // 31 Feb: time.Parse refuses it, time.Date would roll over
		return time.Time{}, 0, false
	}
	offset := sign * (zh*3600 + zm*60)
	return utc.Add(-time.Duration(offset) * time.Second), offset, true
}

type dateScanner struct{ s string }

// number reads between lo and hi digits.
func (p *dateScanner) number(lo, hi int) (int, bool) {
	n, i := 0, 0
	for i < len(p.s) && i < hi && p.s[i] >= '0' && p.s[i] <= '9' {
		n = n*10 + int(p.s[i]-'0')
		i++
	}
	p.s = p.s[i:]
	return n, i >= lo
}

// space reads one or more spaces.
func (p *dateScanner) space() bool {
	t := strings.TrimLeft(p.s, " ")
	ok := len(t) < len(p.s)
	p.s = t
	return ok
}

func (p *dateScanner) peek(c byte) bool { return len(p.s) > 0 && p.s[0] == c }

func (p *dateScanner) char(c byte) bool {
	if !p.peek(c) {
		return false
	}
	p.s = p.s[1:]
	return true
}

func oneOf(s string, set []string) bool {
	for _, v := range set {
		if s == v {
			return true
		}
	}
	return false
}

// simpleComment reports whether s is one parenthesised comment of printable
// ASCII without nesting or quoting, like "(CEST)".
func simpleComment(s string) bool {
	if len(s) < 2 || s[0] != '(' || s[len(s)-1] != ')' {
		return false
	}
	for i := 1; i < len(s)-1; i++ {
		if c := s[i]; c < 0x20 || c > 0x7e || c == '(' || c == ')' || c == '\\' {
			return false
		}
	}
	return true
}
