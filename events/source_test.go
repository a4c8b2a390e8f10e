package events

import (
	"bufio"
	"bytes"
	"net/netip"
	"net/textproto"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/mxgrid/mxgrid/internal/testenv"
)

func TestReceivedFrom(t *testing.T) {
	tests := []struct {
		name, value, want string // want "" = no address
	}{
		{"postfix", "from mx.example.net (mx.example.net [81.2.69.142])\r\n\tby mx.mxgrid.test (Postfix) with ESMTPS id 4F1; Mon, 1 Dec 2026 10:00:00 +0000", "81.2.69.142"},
		{"sendmail forged", "from helo.example (rdns.example [81.2.69.142] (may be forged)) by x (8.9.3/8.9.3) with ESMTP id NAA04623", "81.2.69.142"},
		{"bracket ip in helo position loses to comment", "from [10.9.9.9] (rdns.example [81.2.69.142]) by x", "81.2.69.142"},
		{"exim with port", "from mx.example.net ([81.2.69.142]:54321 helo=mx.example.net) by mx with esmtps (Exim 4.96)", "81.2.69.142"},
		{"exim without rdns", "from [81.2.69.142] (helo=[10.0.0.1]) by mx with esmtp (Exim 4.96)", "81.2.69.142"},
		{"exim helo literal only", "from [81.2.69.142] (port=4711 helo=[1.1.1.1]) by mx", "81.2.69.142"},
		{"qmail helo literal", "from unknown (HELO [1.1.1.1]) (81.2.69.142) by mx with SMTP; 1 Dec 2026", "81.2.69.142"},
		{"qmail helo name", "from unknown (HELO mail) (81.2.69.142)\n  by mx with SMTP", "81.2.69.142"},
		{"exchange", "from EX01.corp.example (81.2.69.142) by EX02.corp.example (10.1.1.2) with Microsoft SMTP Server", "81.2.69.142"},
		{"ipv6 literal", "from mx.example.net (mx.example.net [IPv6:2a02:ff0::25]) by mx (Postfix) with ESMTPS", "2a02:ff0::25"},
		{"bare ipv6 in comment", "from NAM.outbound.protection.outlook.com (2a01:111:f400:7e8a::200) by mx", "2a01:111:f400:7e8a::200"},
		{"ipv4-mapped", "from x (x [IPv6:::ffff:81.2.69.142]) by y", "81.2.69.142"},
		{"gmail trailing dot", "from mail-sor-f41.google.com (mail-sor-f41.google.com. [209.85.220.41])\r\n        by mx.google.com with SMTPS id a1sor", "209.85.220.41"},
		{"fetchmail", "from mail.webnote.net [193.120.211.219]\n\tby localhost with POP3 (fetchmail-5.9.0)\n\tfor zzzz@localhost (single-drop)", "193.120.211.219"},
		{"bare after dash", "from r-smtp.korea.com - 203.122.2.197 by dd_it7  with Microsoft SMTPSVC(5.5.1775.675.6);", "203.122.2.197"},
		{"by comment ignored", "from mx.example.net (mx.example.net) by relay (81.2.69.142) with SMTP", ""},
		{"ip after for ignored", "from local by mx with local for <a@[81.2.69.142]>", ""},
		{"no from clause", "by mx.mxgrid.test (Postfix, from userid 0) id 1; Mon", ""},
		{"from as prefix of word", "fromage (x [81.2.69.142]) by y", ""},
		{"unterminated bracket", "from x ([81.2.69.142 by y", ""},
		{"zone rejected", "from x (fe80::1%eth0) by y", ""},
		{"empty", "", ""},
		{"sendmail ident", "from yahoo.com (IDENT:squid@[211.57.23.142]) by dogma.slashnull.org (8.11.6/8.11.6) with SMTP", "211.57.23.142"},
		{"no space before literal", "from login.example (mx.service.net[206.232.231.77] (may be forged)) by [192.201.131.147]", "206.232.231.77"},
		{"literal only after by", "from hdc1 by [63.111.238.7] via smtpd (for [193.120.211.219]) with SMTP", ""},
		{"empty literal", "from ([]) by mail.example (Merak 4.4.2) with SMTP", ""},
		{"case insensitive", "FROM X (Y [81.2.69.142]) BY Z", "81.2.69.142"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := ReceivedFrom(tt.value)
			if tt.want == "" {
				if ok {
					t.Fatalf("ReceivedFrom = %s, want none", got)
				}
				return
			}
			if !ok || got != netip.MustParseAddr(tt.want) {
				t.Fatalf("ReceivedFrom = %v, %v; want %s", got, ok, tt.want)
			}
		})
	}
}

func TestSourceIP(t *testing.T) {
	trusted := []netip.Prefix{netip.MustParsePrefix("198.18.0.0/15"), netip.MustParsePrefix("81.2.69.0/28")}
	forwarder := netip.MustParseAddr("81.2.69.5")
	chain := []string{
		"from relay2.fwd.example (relay2.fwd.example [81.2.69.6]) by relay1.fwd.example",
		"from internal (internal [10.0.0.7]) by relay2.fwd.example",
		"from spammer.example (spammer.example [89.160.20.112]) by internal.fwd.example",
		"from forged.example (forged [1.2.3.4]) by spammer.example", // written by the spammer: not believed
	}
	tests := []struct {
		name     string
		client   string
		received []string
		want     string
	}{
		{"untrusted client is the source", "89.160.20.1", chain, "89.160.20.1"},
		{"mapped client unmapped", "::ffff:89.160.20.1", chain, "89.160.20.1"},
		{"first untrusted hop behind trusted and internal hops", forwarder.String(), chain, "89.160.20.112"},
		{"no trusted prefixes", forwarder.String(), nil, forwarder.String()},
		{"chain exhausted", forwarder.String(), chain[:2], forwarder.String()},
		{"unparsable hop stops the walk", forwarder.String(), []string{"by relay1 with local", chain[2]}, forwarder.String()},
		{"internal IPv6 hops skipped", forwarder.String(), []string{
			"from internal (internal [IPv6:fec0::7]) by relay1.fwd.example",
			"from internal (internal [IPv6:2002:a00:7::1]) by internal.fwd.example",
			chain[2],
		}, "89.160.20.112"},
		// Taken for an internal hop, the header its sender wrote was believed.
		{"a Teredo client is the source", forwarder.String(), []string{
			"from teredo (teredo [IPv6:2001:0:4136:e378:8000:63bf:3fff:fdd2]) by relay1.fwd.example",
			chain[3],
		}, "2001:0:4136:e378:8000:63bf:3fff:fdd2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr := trusted
			if tt.name == "no trusted prefixes" {
				tr = nil
			}
			got := SourceIP(netip.MustParseAddr(tt.client), tt.received, tr)
			if got != netip.MustParseAddr(tt.want) {
				t.Fatalf("SourceIP = %s, want %s", got, tt.want)
			}
		})
	}
}

// TestReceivedFromCorpus: on real 2002-era mail, every Received header that
// names the sender with an address literal yields an address.
func TestReceivedFromCorpus(t *testing.T) {
	literal := regexp.MustCompile(`\[(IPv6:)?[0-9a-fA-F:.]+\]`)
	dir := testenv.SharedCorpus(t)
	files, err := filepath.Glob(filepath.Join(dir, "spam", "*.eml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no corpus files in %s: %v", dir, err)
	}
	var headers, withLiteral, parsed int
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		// The corpus keeps each message's mbox "From " separator line.
		if bytes.HasPrefix(raw, []byte("From ")) {
			if i := bytes.IndexByte(raw, '\n'); i >= 0 {
				raw = raw[i+1:]
			}
		}
		h, err := textproto.NewReader(bufio.NewReader(bytes.NewReader(raw))).ReadMIMEHeader()
		if err != nil && len(h) == 0 {
			continue
		}
		for _, v := range h.Values("Received") {
			headers++
			from, _, _ := strings.Cut(strings.Join(strings.Fields(v), " "), " by ")
			if !strings.HasPrefix(from, "from ") || !literal.MatchString(from) {
				continue
			}
			withLiteral++
			if _, ok := ReceivedFrom(v); ok {
				parsed++
			} else {
				t.Errorf("%s: no address in %q", filepath.Base(f), v)
			}
		}
	}
	t.Logf("%d Received headers, %d from-clauses with an address literal, %d parsed", headers, withLiteral, parsed)
}

func FuzzReceivedFrom(f *testing.F) {
	for _, s := range []string{
		"from mx.example.net (mx.example.net [81.2.69.142]) by mx",
		"from [IPv6:2a02:ff0::25] (helo=x) by y",
		"from unknown (HELO [1.1.1.1]) (81.2.69.142) by mx",
		"from ((((([",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		ip, ok := ReceivedFrom(s)
		if ok != ip.IsValid() || ip.Is4In6() {
			t.Fatalf("ReceivedFrom(%q) = %v, %v", s, ip, ok)
		}
	})
}
