package smtpd_test

import (
	"bufio"
	"bytes"
	"context"
	"mime"
	"strings"
	"testing"

	"github.com/emersion/go-message/textproto"
	"github.com/mxgrid/mxgrid/config"
	"github.com/mxgrid/mxgrid/internal/smtptest"
	"github.com/mxgrid/mxgrid/scanner"
)

// scoreCheck gives every message the same score, so policy is what varies.
type scoreCheck struct {
	score float64
	virus string
	// senderAuthenticated stands for the auth check vouching for the
	// envelope sender, which a sender allow list needs.
	senderAuthenticated bool
}

func (scoreCheck) Name() string { return "fixed" }
func (c scoreCheck) Check(context.Context, *scanner.Envelope, *scanner.Message) (scanner.Result, error) {
	return scanner.Result{Symbols: []scanner.Symbol{{Name: "FIXED", Score: c.score}}, Virus: c.virus, SenderAuthenticated: c.senderAuthenticated}, nil
}

func startWithScore(t *testing.T, check scoreCheck, mutate func(*config.Config)) (*testNode, *smtptest.Sink) {
	t.Helper()
	return startStages(t, []scanner.Stage{{Check: check}}, mutate)
}

func ptr[T any](v T) *T { return &v }

func TestVerdictsOverSMTP(t *testing.T) {
	t.Run("spam above the reject score is refused and never relayed", func(t *testing.T) {
		n, sink := startWithScore(t, scoreCheck{score: 30}, nil)
		c := dial(t, n.SMTPAddr())
		c.cmd(250, "MAIL FROM:<spammer@sender.test>")
		c.cmd(250, "RCPT TO:<bob@example.org>")
		if msg := c.data(550, testMessage); !strings.Contains(msg, "5.7.1") || !strings.Contains(msg, "[ref ") {
			t.Errorf("reply %q lacks 5.7.1 or a reference id", msg)
		}
		if len(sink.Messages()) != 0 {
			t.Fatal("rejected spam reached the customer")
		}
	})
	t.Run("tagged mail carries headers and the subject prefix", func(t *testing.T) {
		n, sink := startWithScore(t, scoreCheck{score: 8}, nil)
		c := dial(t, n.SMTPAddr())
		c.cmd(250, "MAIL FROM:<a@sender.test>")
		c.cmd(250, "RCPT TO:<bob@example.org>")
		forged := []string{"X-Spam-Status: No, forged by the sender", "X-Spam-Level: forged by the sender", "X-Spam: No, forged by the sender",
			"X-Spamd-Result: default: False [-9.00 / 15.00]; forged by the sender", "x-spam-flag: NO, forged by the sender"}
		c.data(250, strings.Join(forged, "\r\n")+"\r\n"+testMessage)
		msgs := sink.Messages()
		if len(msgs) != 1 {
			t.Fatal("tagged mail not delivered")
		}
		d := msgs[0].Data
		for _, want := range []string{"X-Spam-Status: Yes, score=8.00", "X-Spam-Score: 8.00", "X-Spam-Symbols: FIXED(8.00)", "Subject: [SPAM] quarterly report"} {
			if !bytes.Contains(d, []byte(want)) {
				t.Errorf("tagged message lacks %q:\n%s", want, d)
			}
		}
		if bytes.Contains(d, []byte("forged by the sender")) {
			t.Errorf("a sender's own verdict field was passed on:\n%s", d)
		}
	})
	t.Run("virus is refused with 554 naming it", func(t *testing.T) {
		n, sink := startWithScore(t, scoreCheck{virus: "Eicar-Test-Signature"}, nil)
		c := dial(t, n.SMTPAddr())
		c.cmd(250, "MAIL FROM:<a@sender.test>")
		c.cmd(250, "RCPT TO:<bob@example.org>")
		if msg := c.data(554, testMessage); !strings.Contains(msg, "Eicar-Test-Signature") {
			t.Errorf("reply %q does not name the signature", msg)
		}
		if len(sink.Messages()) != 0 {
			t.Fatal("virus reached the customer")
		}
	})
}

func TestDomainPolicyOverSMTP(t *testing.T) {
	t.Run("ip block list refuses at RCPT", func(t *testing.T) {
		n, _ := startWithScore(t, scoreCheck{}, func(c *config.Config) { c.Domains[0].IPBlock = []string{"127.0.0.0/8"} })
		c := dial(t, n.SMTPAddr())
		c.cmd(250, "MAIL FROM:<a@partner.test>")
		c.cmd(550, "RCPT TO:<bob@example.org>")
	})
	// A dual-stack listener's logs show IPv4 clients as ::ffff:a.b.c.d;
	// a network copied in that form held no client, which is unmapped.
	// 2002:cb00:7105::/48 is 203.0.113.5's 6to4 site, 64:ff9b::cb00:7105
	// the same host through a NAT64 gateway.
	for _, src := range []string{"2002:cb00:7105:1::9", "64:ff9b::cb00:7105"} {
		t.Run("ip block list refuses the IPv4 host through "+src, func(t *testing.T) {
			n, _ := startWithScore(t, scoreCheck{}, func(c *config.Config) {
				c.SMTP.TrustedProxies = []string{"127.0.0.0/8"}
				c.Domains[0].IPBlock = []string{"203.0.113.5"}
			})
			c := greet(t, dialAs(t, n.SMTPAddr(), src))
			c.cmd(250, "MAIL FROM:<a@partner.test>")
			c.cmd(550, "RCPT TO:<bob@example.org>")
		})
	}
	t.Run("ip block list in the IPv4-mapped form refuses the IPv4 client", func(t *testing.T) {
		n, _ := startWithScore(t, scoreCheck{}, func(c *config.Config) { c.Domains[0].IPBlock = []string{"::ffff:127.0.0.0/104"} })
		c := dial(t, n.SMTPAddr())
		c.cmd(250, "MAIL FROM:<a@partner.test>")
		c.cmd(550, "RCPT TO:<bob@example.org>")
	})

	n, sink := startWithScore(t, scoreCheck{score: 30, senderAuthenticated: true}, func(c *config.Config) {
		d := &c.Domains[0]
		d.SenderAllow = []string{"partner.test"}
		d.SenderBlock = []string{"bad@sender.test"}
		d.MaxMessageSize = ptr(int64(1500))
	})
	c := dial(t, n.SMTPAddr())
	c.cmd(250, "MAIL FROM:<bad@sender.test>")
	c.cmd(550, "RCPT TO:<bob@example.org>")
	c.cmd(250, "RSET")
	c.cmd(250, "MAIL FROM:<sales@mail.partner.test>")
	c.cmd(250, "RCPT TO:<bob@example.org>")
	c.data(250, testMessage) // score 30 would reject; the sender is allowed
	c.cmd(250, "MAIL FROM:<sales@partner.test>")
	c.cmd(250, "RCPT TO:<bob@example.org>")
	if msg := c.data(552, testMessage+strings.Repeat("more text\r\n", 150)); !strings.Contains(msg, "example.org") {
		t.Errorf("per-domain size refusal %q does not say whose limit", msg)
	}
	if got := len(sink.Messages()); got != 1 {
		t.Fatalf("sink got %d messages, want the allowed one only", got)
	}
}

// TestDeclaredSizeOverTheDomainLimit: a MAIL whose SIZE passes its
// recipient's domain's max_message_size is refused at that RCPT (RFC 1870
// §6.2: 552 for a recipient the declared size is too large for), not
// forwarded: taken, the customer's server was asked about the recipient
// and the sender sent the whole message, up to smtp.max_message_bytes,
// only to hear the same 552 after its end.
func TestDeclaredSizeOverTheDomainLimit(t *testing.T) {
	for _, tc := range []struct {
		name string
		mail string
		rcpt int
	}{
		{"declared over the limit", "MAIL FROM:<alice@sender.test> SIZE=5000", 552},
		{"declared at the limit", "MAIL FROM:<alice@sender.test> SIZE=1500", 250},
		{"not declared", "MAIL FROM:<alice@sender.test>", 250},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n, sink := startNode(t, func(c *config.Config) { c.Domains[0].MaxMessageSize = ptr(int64(1500)) })
			c := dial(t, n.SMTPAddr())
			c.cmd(250, "%s", tc.mail)
			msg := c.cmd(tc.rcpt, "RCPT TO:<bob@example.org>")
			if tc.rcpt != 552 {
				return
			}
			if !strings.HasPrefix(msg, "5.3.4 ") || !strings.Contains(msg, "example.org") {
				t.Errorf("reply %q, want 5.3.4 naming the domain's limit", msg)
			}
			if got := sink.Commands("RCPT"); got != 0 {
				t.Errorf("customer's server was asked about %d recipients, want none", got)
			}
		})
	}
}

// Two domains on one route but with different policies cannot share a
// transaction: one verdict is given for all its recipients, so the other
// domain's allow list (or scores, or virus action) would decide for it.
func TestOtherPolicyIsAnotherTransaction(t *testing.T) {
	n, sink := startWithScore(t, scoreCheck{score: 30, senderAuthenticated: true}, func(c *config.Config) {
		other := smtptest.Domain("lenient.example", c.Domains[0].Route)
		other.SenderAllow = []string{"sender.test"}
		c.Domains = append(c.Domains, other)
	})
	c := dial(t, n.SMTPAddr())
	c.cmd(250, "MAIL FROM:<alice@sender.test>")
	c.cmd(250, "RCPT TO:<bob@example.org>")
	if msg := c.cmd(452, "RCPT TO:<carol@lenient.example>"); !strings.HasPrefix(msg, "4.5.3") {
		t.Errorf("other-policy reply %q, want 4.5.3", msg)
	}
	c.data(550, testMessage) // score 30: spam for example.org
	c.cmd(250, "MAIL FROM:<alice@sender.test>")
	c.cmd(250, "RCPT TO:<carol@lenient.example>")
	c.data(250, testMessage) // the allow list of lenient.example applies to its own recipient
	if got := sink.Messages(); len(got) != 1 || len(got[0].Rcpts) != 1 || got[0].Rcpts[0] != "carol@lenient.example" {
		t.Fatalf("sink got %+v, want one message for carol only", got)
	}
}

// TestNonASCIISubjectTagStaysSevenBit: a subject tag in another script (a
// reseller's "[СПАМ]") goes into the Subject as an RFC 2047 encoded word.
// Written raw, it made every tagged 7-bit message 8-bit: refused with 554
// 5.6.3 for a customer's server without 8BITMIME, and UTF-8 in a header
// without SMTPUTF8 (RFC 6532) for the others. Before a subject that starts
// with an encoded word (most spam's), the space after the tag went between
// two encoded words, where it is no text (RFC 2047 6.2): the subject read
// "[СПАМ]quarterly report".
func TestNonASCIISubjectTagStaysSevenBit(t *testing.T) {
	for _, subject := range []string{"quarterly report", "=?utf-8?q?quarterly?= report", "=?UTF-8?B?cXVhcnRlcmx5IHJlcG9ydA==?=",
		"=?utf-8?q?quarterly?=\r\n =?utf-8?q?_report?="} {
		t.Run(subject, func(t *testing.T) {
			sink := startRawSink(t)
			sink.withhold8BitMIME()
			cfg := testConfig(t)
			d := smtptest.Domain("example.org", sink.Addr)
			d.SubjectTag = ptr("[СПАМ]")
			cfg.Domains = append(cfg.Domains, d)
			n := startConfigured(t, cfg, []scanner.Stage{{Check: scoreCheck{score: 8}}})
			c := dial(t, n.SMTPAddr())
			c.cmd(250, "MAIL FROM:<a@sender.test>")
			c.cmd(250, "RCPT TO:<bob@example.org>")
			c.data(250, strings.Replace(testMessage, "Subject: quarterly report", "Subject: "+subject, 1))
			got := sink.messages()
			if len(got) != 1 {
				t.Fatalf("customer server got %d messages, want the tagged one", len(got))
			}
			for _, b := range got[0] {
				if b >= 0x80 {
					t.Fatalf("tagged message is 8-bit:\n%s", got[0])
				}
			}
			h, err := textproto.ReadHeader(bufio.NewReader(bytes.NewReader(got[0])))
			if err != nil {
				t.Fatal(err)
			}
			subj, err := new(mime.WordDecoder).DecodeHeader(h.Get("Subject"))
			if err != nil || subj != "[СПАМ] quarterly report" {
				t.Errorf("Subject %q reads %q (%v), want %q", h.Get("Subject"), subj, err, "[СПАМ] quarterly report")
			}
		})
	}
}

// A sender on a domain's block list hears one refusal for every recipient,
// known or not: checked after the mailbox lookup, "user unknown" for the
// others told a blocked sender which mailboxes exist, and spent none of its
// unknown-recipient budgets doing so.
func TestBlockedSenderLearnsNoMailboxes(t *testing.T) {
	n, _ := startWithScore(t, scoreCheck{}, func(c *config.Config) {
		d := &c.Domains[0]
		d.Recipients = []string{"bob"}
		d.SenderBlock = []string{"bad@sender.test"}
	})
	c := dial(t, n.SMTPAddr())
	c.cmd(250, "MAIL FROM:<bad@sender.test>")
	known := c.cmd(550, "RCPT TO:<bob@example.org>")
	unknown := c.cmd(550, "RCPT TO:<nobody@example.org>")
	if known != unknown || !strings.Contains(known, "blocked") {
		t.Errorf("known mailbox: %q, unknown one: %q; want the same block refusal", known, unknown)
	}
	c.cmd(250, "RSET")
	c.cmd(250, "MAIL FROM:<alice@sender.test>")
	if msg := c.cmd(550, "RCPT TO:<nobody@example.org>"); !strings.HasPrefix(msg, "5.1.1") {
		t.Errorf("unknown mailbox for another sender: %q, want 5.1.1", msg)
	}
}

// A sender list names a domain in one spelling, and a sender may write it
// in another: its A-label, its U-label, other case or full-width letters.
// Compared as written, a sender blocked as bücher.example passed as
// xn--bcher-kva.example, and one blocked by its A-label passed in UTF-8.
func TestBlockedSenderWhateverItsSpelling(t *testing.T) {
	n, _ := startWithScore(t, scoreCheck{}, func(c *config.Config) {
		c.Domains[0].SenderBlock = []string{"bücher.example", "boss@xn--strae-oqa.example"}
	})
	for _, tc := range []struct {
		mail    string
		blocked bool
	}{
		{"<a@bücher.example> SMTPUTF8", true},
		{"<a@xn--bcher-kva.example>", true},
		{"<a@XN--BCHER-KVA.example>", true},
		{"<a@BÜCHER.example> SMTPUTF8", true},
		{"<a@ｂücher.example> SMTPUTF8", true},
		{"<a@news.xn--bcher-kva.example>", true},
		{"<boss@straße.example> SMTPUTF8", true},
		{"<Boss@xn--strae-oqa.example>", true},
		{"<clerk@straße.example> SMTPUTF8", false},
		{"<a@bucher.example>", false},
	} {
		c := dial(t, n.SMTPAddr())
		c.cmd(250, "MAIL FROM:%s", tc.mail)
		want := 250
		if tc.blocked {
			want = 550
		}
		c.c.PrintfLine("RCPT TO:<bob@example.org>")
		if code, msg, _ := c.c.ReadResponse(0); code != want {
			t.Errorf("MAIL FROM:%s: RCPT got %d %s, want %d", tc.mail, code, msg, want)
		}
	}
}

// A recipient list compares local parts without case, but a character
// outside ASCII never stands for an ASCII one: "Kate" with a Kelvin sign
// (U+212A), which lower-cases to k, and "poſtmaſter" with the long s,
// which folds to s, are other mailboxes. They passed kate's entry and the
// postmaster exception and reached the customer's server as guesses the
// list was there to stop.
func TestRecipientListFoldsASCIIOnly(t *testing.T) {
	n, sink := startWithScore(t, scoreCheck{}, func(c *config.Config) {
		c.Domains[0].Recipients = []string{"kate", "józef"}
	})
	for _, tc := range []struct {
		rcpt string
		want int
	}{
		{"<kate@example.org>", 250},
		{"<KATE@example.org>", 250},
		{"<\u212Aate@example.org>", 550},
		{"<\u0130nfo@example.org>", 550},
		{"<JÓZEF@example.org>", 250},
		{"<PostMaster@example.org>", 250},
		{"<po\u017Ftma\u017Fter@example.org>", 550},
	} {
		c := dial(t, n.SMTPAddr())
		c.cmd(250, "MAIL FROM:<alice@sender.test> SMTPUTF8")
		if msg := c.cmd(tc.want, "RCPT TO:%s", tc.rcpt); tc.want == 550 && !strings.HasPrefix(msg, "5.1.1") {
			t.Errorf("RCPT TO:%s: %q, want 5.1.1", tc.rcpt, msg)
		}
	}
	if got := sink.Messages(); len(got) != 0 {
		t.Errorf("the customer server got %d messages", len(got))
	}
}

// A Subject that already starts with the domain's tag is not tagged again
// (a message forwarded from one customer to another comes back in
// tagged). The encoded word of a non-ASCII tag is written two ways, its
// space outside the word or, before a subject starting with an encoded
// word, inside it; each is the tag, and the first, before a plain
// subject, read as an encoded subject and was tagged again: "[СПАМ]
// [СПАМ] quarterly report".
func TestTaggedSubjectIsNotTaggedAgain(t *testing.T) {
	for _, tag := range []string{"[SPAM]", "[СПАМ]"} {
		for _, subject := range []string{"quarterly report", "=?utf-8?q?quarterly?= report"} {
			t.Run(tag+" "+subject, func(t *testing.T) {
				sink := startRawSink(t)
				cfg := testConfig(t)
				d := smtptest.Domain("example.org", sink.Addr)
				d.SubjectTag = ptr(tag)
				cfg.Domains = append(cfg.Domains, d)
				n := startConfigured(t, cfg, []scanner.Stage{{Check: scoreCheck{score: 8}}})
				c := dial(t, n.SMTPAddr())
				for range 2 {
					c.cmd(250, "MAIL FROM:<a@sender.test>")
					c.cmd(250, "RCPT TO:<bob@example.org>")
					c.data(250, strings.Replace(testMessage, "Subject: quarterly report", "Subject: "+subject, 1))
					got := sink.messages()
					h, err := textproto.ReadHeader(bufio.NewReader(bytes.NewReader(got[len(got)-1])))
					if err != nil {
						t.Fatal(err)
					}
					// The second message is the first as it left us.
					subject = h.Get("Subject")
				}
				decoded, err := new(mime.WordDecoder).DecodeHeader(subject)
				if want := tag + " quarterly report"; err != nil || decoded != want {
					t.Errorf("tagged twice over: Subject %q reads %q (%v), want %q", subject, decoded, err, want)
				}
			})
		}
	}
}

// TestTaggedSubjectKeepsTheSendersField: tagging puts the tag at the
// start of the sender's own Subject field, where the field stands, its
// lines kept byte for byte, folding after the tag when the first line
// would pass 78 characters. The field was set anew: moved to the top of
// the header and folded again by go-message, which broke a run of blanks
// into continuation lines of nothing but blanks (a line some readers take
// for the end of the header), broke an encoded word longer than a line in
// two, and undid the sender's folding.
func TestTaggedSubjectKeepsTheSendersField(t *testing.T) {
	sink := startRawSink(t)
	cfg := testConfig(t)
	cfg.Domains = append(cfg.Domains, smtptest.Domain("example.org", sink.Addr))
	n := startConfigured(t, cfg, []scanner.Stage{{Check: scoreCheck{score: 8}}})
	long := "=?utf-8?B?" + strings.Repeat("R3LDvMOfZSBhdXMgS8O2bG4g", 3) + "?="
	for _, tt := range []struct {
		name, field, want string
	}{
		{"one line", "Subject: quarterly report\r\n", "Subject: [SPAM] quarterly report\r\n"},
		{"no blank after the colon", "Subject:quarterly report\r\n", "Subject: [SPAM] quarterly report\r\n"},
		{"name in lower case", "subject: quarterly report\r\n", "subject: [SPAM] quarterly report\r\n"},
		{"raw Latin-1", "Subject: Gr\xfc\xdfe aus K\xf6ln\r\n", "Subject: [SPAM] Gr\xfc\xdfe aus K\xf6ln\r\n"},
		{"folded by the sender", "Subject: quarterly report\r\n\tfor the second half\r\n", "Subject: [SPAM] quarterly report\r\n\tfor the second half\r\n"},
		{"first line long with the tag", "Subject: " + strings.Repeat("report ", 9) + "end\r\n\tmore\r\n",
			"Subject: [SPAM]\r\n " + strings.Repeat("report ", 9) + "end\r\n\tmore\r\n"},
		{"a run of blanks past a line", "Subject: a" + strings.Repeat("\t", 100) + "b\r\n", "Subject: [SPAM]\r\n a" + strings.Repeat("\t", 100) + "b\r\n"},
		{"encoded words", "Subject: " + long + "\r\n " + long + "\r\n", "Subject: [SPAM]\r\n " + long + "\r\n " + long + "\r\n"},
		{"value on a continuation line", "Subject:\r\n quarterly report\r\n", "Subject: [SPAM]\r\n quarterly report\r\n"},
		{"blank value", "Subject:   \r\n", "Subject: [SPAM]   \r\n"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			orig := strings.Replace(testMessage, "Subject: quarterly report\r\n", tt.field, 1)
			// The customer's server is shown the message dot-stuffed.
			want := strings.ReplaceAll(strings.Replace(testMessage, "Subject: quarterly report\r\n", tt.want, 1), "\r\n.", "\r\n..")
			got := string(relayOne(t, n, sink, "", orig))
			ours, rest, ok := strings.Cut(got, "From: Alice")
			if !ok || "From: Alice"+rest != want || strings.Contains(strings.ToLower(ours), "subject") {
				t.Errorf("relayed\n%q\nwant our fields, then\n%q", got, want)
			}
		})
	}
	t.Run("a second Subject", func(t *testing.T) {
		orig := strings.Replace(testMessage, "Date:", "Subject: other\r\nDate:", 1)
		want := strings.ReplaceAll(strings.Replace(testMessage, "Subject: quarterly", "Subject: [SPAM] quarterly", 1), "\r\n.", "\r\n..")
		if got := string(relayOne(t, n, sink, "", orig)); !strings.HasSuffix(got, "\r\n"+want) {
			t.Errorf("relayed\n%q\nwant the first Subject tagged where it stands, the second gone:\n%q", got, want)
		}
	})
}
