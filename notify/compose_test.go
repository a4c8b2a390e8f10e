package notify

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"mime/quotedprintable"
	"net/mail"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-message/textproto"

	"github.com/mxgrid/mxgrid/quarantine"
)

// TestComposeBrandStaysADisplayName: the reseller's name is the From
// field's display name whatever it holds; before, an ASCII name went in
// unquoted, so `Support <ceo@bank.example>, x` made the digest come from
// ceo@bank.example through the operator's smarthost.
func TestComposeBrandStaysADisplayName(t *testing.T) {
	d := &Digests{cfg: Config{From: "digest@mx.example", LinkTTL: time.Hour}, keys: [][]byte{[]byte("k")},
		baseURL: "https://mx.example", hostname: "mx.example", now: time.Now}
	items := []quarantine.Item{{ID: 1, Time: time.Now(), Sender: "s@x.example", Subject: "hi"}}
	for _, brand := range []string{`Support <ceo@bank.example>, x`, `a"b, <c@d.example>`, `Grüße; group:`, "plain", ""} {
		msg, err := mail.ReadMessage(strings.NewReader(string(d.compose("rcpt@a.example", brand, items, false))))
		if err != nil {
			t.Fatalf("%q: %v", brand, err)
		}
		from, err := mail.ParseAddressList(msg.Header.Get("From"))
		if err != nil || len(from) != 1 || from[0].Address != "digest@mx.example" {
			t.Errorf("brand %q: From %q parses as %v (%v), want digest@mx.example alone", brand, msg.Header.Get("From"), from, err)
		}
	}
}

// TestComposeHostileSubjectStaysOneLine: a held message's subject and
// sender are the sender's text; one that holds a Unicode line separator
// or a bidirectional override cannot start a line of its own (a fake
// "Release:" link under a mail client that breaks lines there) nor run
// the digest's own text backwards.
func TestComposeHostileSubjectStaysOneLine(t *testing.T) {
	d := &Digests{cfg: Config{From: "digest@mx.example", LinkTTL: time.Hour}, keys: [][]byte{[]byte("k")},
		baseURL: "https://mx.example", hostname: "mx.example", now: time.Now}
	items := []quarantine.Item{{ID: 1, Time: time.Now(), Sender: "s@x.example\u202e",
		Subject: "Invoice\u2028  Release: https://evil.example/q/release/x\u2029\u2066"}}
	_, body := readDigest(t, d.compose("rcpt@a.example", "R", items, false))
	for _, r := range []rune{0x2028, 0x2029, 0x202e, 0x2066} {
		if strings.ContainsRune(body, r) {
			t.Errorf("the digest holds U+%04X:\n%q", r, body)
		}
	}
}

// TestComposeHostileSubjectCannotWrapIntoAReleaseLine: a subject padded
// with a run of white space (spaces, tabs, no-break or ideographic spaces)
// before "Release: https://evil..." stayed on its line of the text, but a
// mail client wraps the run, and on a phone the attacker's link began a
// line of its own under the message's date, as the digest's own Release
// links do. A run of white space in a subject or sender is one space, and
// so is a run of the letters fonts draw blank (Hangul fillers, the blank
// braille pattern), which padded the subject as well as spaces did.
func TestComposeHostileSubjectCannotWrapIntoAReleaseLine(t *testing.T) {
	d := &Digests{cfg: Config{From: "digest@mx.example", LinkTTL: time.Hour}, keys: [][]byte{[]byte("k")},
		baseURL: "https://mx.example", hostname: "mx.example", now: time.Now}
	for name, pad := range map[string]string{
		"white space":   strings.Repeat(" ", 300) + strings.Repeat("\t", 50) + strings.Repeat("\u00a0", 50) + strings.Repeat("\u3000", 50),
		"blank braille": strings.Repeat("\u2800", 200),
		"hangul filler": strings.Repeat("\u3164", 100) + strings.Repeat("\uffa0", 100) + strings.Repeat("\u115f\u1160", 50),
	} {
		items := []quarantine.Item{{ID: 1, Time: time.Now(), Sender: "s@x.example", Subject: "Invoice" + pad + "Release: https://evil.example/q/release/x" + pad}}
		_, body := readDigest(t, d.compose("rcpt@a.example", "R", items, false))
		want := "\r\n  Subject: Invoice Release: https://evil.example/q/release/x\r\n"
		if !strings.Contains(body, want) {
			t.Errorf("%s: the digest does not list the subject as %q:\n%q", name, want, body)
		}
	}
}

// TestComposeHostileSubjectCannotPassForAReleaseLine: a held message's
// subject had a line of its own, indented as the Release line under it,
// so a subject "Release: https://evil..." read as a second release link
// for the message, the first one, with no wrapping needed. Every line
// that reads as a release link is the digest's own.
func TestComposeHostileSubjectCannotPassForAReleaseLine(t *testing.T) {
	d := &Digests{cfg: Config{From: "digest@mx.example", LinkTTL: time.Hour}, keys: [][]byte{[]byte("k")},
		baseURL: "https://mx.example", hostname: "mx.example", now: time.Now}
	for _, subject := range []string{"Release: https://evil.example/q/release/x", "  release:  https://evil.example/", "RELEASE https://evil.example/"} {
		items := []quarantine.Item{{ID: 1, Time: time.Now(), Sender: "s@x.example", Subject: subject}}
		_, body := readDigest(t, d.compose("rcpt@a.example", "R", items, false))
		for _, line := range strings.Split(body, "\r\n") {
			l := strings.ToLower(strings.TrimSpace(line))
			if strings.HasPrefix(l, "release") && !strings.HasPrefix(l, "release: https://mx.example/q/release/") {
				t.Errorf("subject %q makes a line that reads as a release link: %q\n%q", subject, line, body)
			}
		}
	}
}

// readDigest parses a composed digest and returns its header and its
// body's text, decoded as its Content-Transfer-Encoding says.
func readDigest(t *testing.T, raw []byte) (mail.Header, string) {
	t.Helper()
	msg, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	r := msg.Body
	if strings.EqualFold(msg.Header.Get("Content-Transfer-Encoding"), "quoted-printable") {
		r = quotedprintable.NewReader(r)
	}
	body, err := io.ReadAll(r)
	if err != nil {
		t.Fatalf("decoding the body: %v", err)
	}
	return msg.Header, string(body)
}

// TestComposeLinesFitSMTP: no line of a digest is longer than the 998
// octets RFC 5322 and 5321 allow, whatever the sender put in a held
// message, and the text a reader sees is still whole. Before, the body went
// as 8bit lines of the sender's text: a 998-byte subject (two spaces of
// indent made 1000) or a long recipient's release link made a line a
// strict smarthost (Exim's message_linelength_limit) refuses the digest
// for, so one spam with a long subject cost its recipient every digest
// while it was held.
func TestComposeLinesFitSMTP(t *testing.T) {
	longLocal := `"` + strings.Repeat("a", 400) + `"`
	for _, tc := range []struct {
		name, rcpt, subject, sender string
	}{
		{"998-byte ASCII subject", "rcpt@a.example", strings.Repeat("S", 998), "s@x.example"},
		{"998-byte UTF-8 subject", "rcpt@a.example", strings.Repeat("é", 499), "s@x.example"},
		{"a long recipient's links", longLocal + "@" + strings.Repeat("d", 60) + ".example", "hi", "s@x.example"},
		{"a long sender", "rcpt@a.example", "hi", longLocal + "@" + strings.Repeat("x", 60) + ".example"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			key := []byte("k")
			d := &Digests{cfg: Config{From: "digest@mx.example", LinkTTL: time.Hour}, keys: [][]byte{key},
				baseURL: "https://quarantine.filter.mx.example", hostname: "mx.example", now: time.Now}
			items := []quarantine.Item{{ID: 7, Time: time.Now(), Sender: tc.sender, Subject: tc.subject}}
			raw := d.compose(tc.rcpt, "Reseller", items, false)
			for i, line := range strings.Split(string(raw), "\r\n") {
				if len(line) > 998 {
					t.Errorf("line %d is %d octets, over 998: %.80q...", i+1, len(line), line)
				}
			}
			_, body := readDigest(t, raw)
			for _, want := range []string{tc.subject, tc.sender, tc.rcpt} {
				if !strings.Contains(body, want) {
					t.Errorf("the decoded digest lacks %.40q...", want)
				}
			}
			links := regexp.MustCompile(`https://quarantine\.filter\.mx\.example/q/(release|optout)/([A-Za-z0-9_.-]+)`).FindAllStringSubmatch(body, -1)
			if len(links) != 2 {
				t.Fatalf("the decoded digest has %d links, want 2:\n%s", len(links), body)
			}
			for _, l := range links {
				link, err := Parse(l[2], [][]byte{key}, time.Now())
				if err != nil || string(link.Action) != l[1] || link.Recipient != tc.rcpt {
					t.Errorf("link %s: %+v, %v; want a %s link for %q", l[0], link, err, l[1], tc.rcpt)
				}
			}
		})
	}
}

// TestDigestIsKnownForItsOwnRecipientOnly: a digest coming back through
// its recipient's MX is known by its signature, under any of the link
// keys and in any case of the recipient's address, while its links work;
// the same digest with its body changed, for another recipient, under
// another key, or older than the links is not.
func TestDigestIsKnownForItsOwnRecipientOnly(t *testing.T) {
	old, cur := bytes.Repeat([]byte("o"), 32), bytes.Repeat([]byte("n"), 32)
	written := time.Date(2026, 12, 7, 6, 0, 0, 0, time.UTC)
	d := &Digests{cfg: Config{From: "digest@mx.example", LinkTTL: time.Hour}, keys: [][]byte{cur, old},
		baseURL: "https://mx.example", hostname: "mx.example", now: func() time.Time { return written }}
	raw := d.compose("ann@a.example", "R", []quarantine.Item{{ID: 1, Time: time.Now(), Sender: "s@x.example", Subject: "hi"}}, false)
	head, body, _ := bytes.Cut(raw, []byte("\r\n\r\n"))
	h, err := textproto.ReadHeader(bufio.NewReader(bytes.NewReader(append(head, "\r\n\r\n"...))))
	if err != nil {
		t.Fatal(err)
	}
	now := written.Add(59 * time.Minute)
	owns := func(keys [][]byte, rcpt string, body []byte) bool {
		return Owns(keys, time.Hour, now, rcpt, h, func() io.Reader { return bytes.NewReader(body) })
	}
	for _, tc := range []struct {
		name string
		keys [][]byte
		rcpt string
		body []byte
		want bool
	}{
		{"as sent", [][]byte{old, cur}, "ann@a.example", body, true},
		{"another case", [][]byte{cur}, "Ann@A.example", body, true},
		{"body changed", [][]byte{cur}, "ann@a.example", bytes.Replace(body, []byte("hi"), []byte("ho"), 1), false},
		{"another recipient", [][]byte{cur}, "bob@a.example", body, false},
		{"another key", [][]byte{old}, "ann@a.example", body, false},
	} {
		if got := owns(tc.keys, tc.rcpt, tc.body); got != tc.want {
			t.Errorf("%s: owned %v, want %v", tc.name, got, tc.want)
		}
	}
	for _, at := range []time.Time{written.Add(time.Hour), written.Add(-time.Hour)} {
		if now = at; owns([][]byte{cur}, "ann@a.example", body) {
			t.Errorf("owned at %s, written at %s with links of an hour", at, written)
		}
	}
	now = written
	sig := h.Get(signatureField)
	h.Set(signatureField, fmt.Sprint(written.Add(10*time.Minute).Unix())+sig[strings.IndexByte(sig, '.'):])
	if owns([][]byte{cur}, "ann@a.example", body) {
		t.Error("owned with its time changed")
	}
	h.Del(signatureField)
	if owns([][]byte{cur}, "ann@a.example", body) {
		t.Error("a message without the signature is owned")
	}
}

// TestSpellHours: the digest tells its reader how long its links work in
// words ("Links work for 168h0m0s" before).
func TestSpellHours(t *testing.T) {
	for _, tt := range []struct {
		d    time.Duration
		want string
	}{
		{7 * 24 * time.Hour, "7 days"},
		{24 * time.Hour, "1 day"},
		{36 * time.Hour, "36 hours"},
		{time.Hour, "1 hour"},
		{90 * time.Minute, "2 hours"},
		{47*time.Hour + 40*time.Minute, "2 days"},
	} {
		if got := spellHours(tt.d); got != tt.want {
			t.Errorf("spellHours(%v) = %q, want %q", tt.d, got, tt.want)
		}
	}
}
