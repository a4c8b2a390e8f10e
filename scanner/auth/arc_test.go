package auth

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"maps"
	"net/netip"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mxgrid/mxgrid/scanner"
)

// arcSeal adds ARC set i (AAR, AMS, AS) on top of raw, signed by
// ed._domainkey.<domain>, as a forwarder or list would. It follows RFC
// 8617 independently of the verifier's ordering code: AMS over the given
// header fields and the body, AS over every set up to i.
func (w *world) arcSeal(t *testing.T, raw, domain string, i int, cv string) string {
	t.Helper()
	return w.arcSealPadded(t, raw, domain, i, cv, "")
}

// arcSealPadded is arcSeal with pad added to the AAR's results.
func (w *world) arcSealPadded(t *testing.T, raw, domain string, i int, cv, pad string) string {
	t.Helper()
	sign := func(data string) string {
		sum := sha256.Sum256([]byte(data))
		sig, err := w.edKey.Sign(rand.Reader, sum[:], crypto.Hash(0))
		if err != nil {
			t.Fatal(err)
		}
		return base64.StdEncoding.EncodeToString(sig)
	}
	head, body, _ := strings.Cut(raw, "\r\n\r\n")
	bh := sha256.Sum256(referenceCanonicalBody([]byte(body), true))
	aar := fmt.Sprintf(" i=%d; %s; spf=pass smtp.mailfrom=alice@example.org%s", i, domain, pad)
	amsTags := fmt.Sprintf(" i=%d; a=ed25519-sha256; c=relaxed/relaxed; d=%s; s=ed; h=from:subject:date; bh=%s; b=",
		i, domain, base64.StdEncoding.EncodeToString(bh[:]))
	var in strings.Builder
	for _, name := range []string{"From", "Subject", "Date"} {
		for _, f := range headerFields([]byte(head + "\r\n\r\n")) {
			if strings.EqualFold(f.name, name) {
				in.WriteString(canonicalHeader(f.name, f.value, true))
			}
		}
	}
	in.WriteString(strings.TrimSuffix(canonicalHeader("ARC-Message-Signature", amsTags, true), "\r\n"))
	ams := amsTags + sign(in.String())

	// The seal covers the earlier sets, oldest first, then this one.
	var seal strings.Builder
	var earlier []*rawField
	for _, f := range headerFields([]byte(head + "\r\n\r\n")) {
		if strings.HasPrefix(strings.ToLower(f.name), "arc-") {
			earlier = append(earlier, f)
		}
	}
	for k := 1; k < i; k++ {
		for _, name := range []string{"ARC-Authentication-Results", "ARC-Message-Signature", "ARC-Seal"} {
			for _, f := range earlier {
				if strings.EqualFold(f.name, name) && strings.Contains(f.value, fmt.Sprintf("i=%d;", k)) {
					seal.WriteString(canonicalHeader(f.name, f.value, true))
				}
			}
		}
	}
	asTags := fmt.Sprintf(" i=%d; a=ed25519-sha256; cv=%s; d=%s; s=ed; b=", i, cv, domain)
	seal.WriteString(canonicalHeader("ARC-Authentication-Results", aar, true))
	seal.WriteString(canonicalHeader("ARC-Message-Signature", ams, true))
	seal.WriteString(strings.TrimSuffix(canonicalHeader("ARC-Seal", asTags, true), "\r\n"))
	as := asTags + sign(seal.String())
	return "ARC-Seal:" + as + "\r\nARC-Message-Signature:" + ams + "\r\nARC-Authentication-Results:" + aar + "\r\n" + raw
}

// arcChain is testMessage sealed by sets hops, hop i by domain(i), each
// AAR padded with pad.
func (w *world) arcChain(t *testing.T, sets int, domain func(i int) string, pad string) string {
	t.Helper()
	raw := string(testMessage("alice@example.org"))
	for i := 1; i <= sets; i++ {
		cv := "pass"
		if i == 1 {
			cv = "none"
		}
		raw = w.arcSealPadded(t, raw, domain(i), i, cv, pad)
	}
	return raw
}

func TestARC(t *testing.T) {
	w := newWorld(t)
	pub := base64.StdEncoding.EncodeToString(w.edKey.Public().(ed25519.PublicKey))
	w.srv.AddTXT("ed._domainkey.lists.example", "v=DKIM1; k=ed25519; p="+pub)
	w.srv.AddTXT("ed._domainkey.fwd.example", "v=DKIM1; k=ed25519; p="+pub)
	// The key record's own tags (RFC 6376 3.6.1) bind it: the key type,
	// the hashes it may be used with, the record's version.
	w.srv.AddTXT("ed._domainkey.rsa-only.example", "v=DKIM1; k=rsa; p="+pub)
	w.srv.AddTXT("ed._domainkey.no-type.example", "v=DKIM1; p="+pub)
	w.srv.AddTXT("ed._domainkey.sha1-only.example", "v=DKIM1; k=ed25519; h=sha1; p="+pub)
	w.srv.AddTXT("ed._domainkey.hashes.example", "v=DKIM1; k=ed25519; h=sha1 : SHA256; p="+pub)
	w.srv.AddTXT("ed._domainkey.version.example", "v=DKIM2; k=ed25519; p="+pub)
	// A key being rolled over: the selector publishes the new key beside
	// the old; the two are separate keys, never one record.
	_, stale, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	w.srv.AddTXT("ed._domainkey.rollover.example", "v=DKIM1; k=ed25519; p="+pub)
	w.srv.AddTXT("ed._domainkey.rollover.example", "v=DKIM1; k=ed25519; p="+base64.StdEncoding.EncodeToString(stale.Public().(ed25519.PublicKey)))
	// Keys DNS cannot give now: a seal is neither verified nor failed.
	w.srv.ServFail("ed._domainkey.servfail-key.example")
	w.srv.Refuse("ed._domainkey.refused-key.example")
	c := w.check(t, func(c *Config) { c.ARC = true })
	orig := string(testMessage("alice@example.org"))
	one := w.arcSeal(t, orig, "lists.example", 1, "none")
	two := w.arcSeal(t, one, "fwd.example", 2, "pass")
	unavailable := w.arcSeal(t, one, "servfail-key.example", 2, "pass")
	tests := []struct {
		name, raw, want string
	}{
		{"no chain", orig, "none"},
		{"one hop", one, "pass"},
		{"two hops", two, "pass"},
		{"body changed after the seal", strings.Replace(one, "Hello Bob.", "Hello Bob, pay this.", 1), "fail"},
		{"subject changed after the seal", strings.Replace(one, "Subject: hello", "Subject: urgent", 1), "fail"},
		{"first instance claims cv=pass", w.arcSeal(t, orig, "lists.example", 1, "pass"), "fail"},
		{"instance 1 missing", strings.Replace(two, "i=1;", "i=3;", -1), "fail"},
		{"seal of an earlier hop altered", strings.Replace(two, "spf=pass smtp.mailfrom=alice@example.org\r\nFrom", "spf=fail smtp.mailfrom=alice@example.org\r\nFrom", 1), "fail"},
		{"unknown key", w.arcSeal(t, orig, "nokey.example", 1, "none"), "fail"},
		{"key published for RSA", w.arcSeal(t, orig, "rsa-only.example", 1, "none"), "fail"},
		{"key without k= (RSA by default)", w.arcSeal(t, orig, "no-type.example", 1, "none"), "fail"},
		{"key for SHA-1 only", w.arcSeal(t, orig, "sha1-only.example", 1, "none"), "fail"},
		{"key for SHA-1 and SHA-256", w.arcSeal(t, orig, "hashes.example", 1, "none"), "pass"},
		{"key record of another version", w.arcSeal(t, orig, "version.example", 1, "none"), "fail"},
		{"selector with two keys", w.arcSeal(t, orig, "rollover.example", 1, "none"), "pass"},
		{"instance out of range", "ARC-Seal: i=99; cv=none\r\n" + orig, "fail"},
		{"sealer's key lookup fails (SERVFAIL)", w.arcSeal(t, orig, "servfail-key.example", 1, "none"), "temperror"},
		{"sealer's key lookup refused", w.arcSeal(t, orig, "refused-key.example", 1, "none"), "temperror"},
		{"newest key unavailable, older hops intact", unavailable, "temperror"},
		{"newest key unavailable, an older seal broken", strings.Replace(unavailable, "spf=pass smtp.mailfrom=alice@example.org\r\nFrom", "spf=fail smtp.mailfrom=alice@example.org\r\nFrom", 1), "fail"},
		{"key unavailable, body changed", strings.Replace(w.arcSeal(t, orig, "servfail-key.example", 1, "none"), "Hello Bob.", "Hello Bob, pay this.", 1), "fail"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// Held in memory and spooled (read back through Reader): the
			// same verdict.
			for _, msg := range []*scanner.Message{
				scanner.Parse([]byte(tt.raw)),
				scanner.NewParser(nil).ParseReaderAt(strings.NewReader(tt.raw), int64(len(tt.raw))),
			} {
				got, reason := c.verifyARC(context.Background(), msg)
				if got != tt.want {
					t.Errorf("arc=%s (%s), want %s (spooled: %v)", got, reason, tt.want, msg.Raw == nil)
				}
			}
		})
	}
	// The result reaches our Authentication-Results and the symbols.
	res, err := c.Check(context.Background(), &scanner.Envelope{MailFrom: "alice@example.org"}, scanner.Parse([]byte(two)))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(strings.Join(res.AuthResults, "; "), "arc=pass") {
		t.Errorf("Authentication-Results %q lack arc=pass", res.AuthResults)
	}
}

func FuzzVerifyARC(f *testing.F) {
	f.Add("ARC-Seal: i=1; cv=none; a=ed25519-sha256; d=x; s=y; b=AAAA\r\nARC-Message-Signature: i=1; h=from; bh=; b=\r\nARC-Authentication-Results: i=1; x\r\n\r\nbody")
	f.Add("ARC-Seal: i=1\r\n ; b=;;=\r\n\r\n")
	f.Fuzz(func(t *testing.T, raw string) {
		c := &Check{res: noDNS{}}
		got, _ := c.verifyARC(context.Background(), scanner.Parse([]byte(raw)))
		if got != "none" && got != "pass" && got != "fail" {
			t.Fatalf("result %q", got)
		}
	})
}

// noDNS answers every lookup with an error, for fuzzing without a server.
type noDNS struct{ Resolver }

func (noDNS) LookupTXT(context.Context, string) ([]string, error) {
	return nil, fmt.Errorf("no DNS in this test")
}

// hasARCField, which lets verifyARC skip splitting the header of most
// mail, says yes exactly when headerFields finds a field isARCName names.
func FuzzHasARCFieldMatchesHeaderFields(f *testing.F) {
	f.Add("From: a@example.org\r\nARC-Seal: i=1\r\n\r\nbody")
	f.Add("From: a@example.org\r\n arc-seal: i=1\r\n\r\nARC-Seal: i=1\r\n")
	f.Add("X: y\r\nArc-Message-S\u0130gnature: i=1\r\n\r\n")
	f.Add("ARC-Authentication-Results:")
	f.Add(" ARC-Seal: i=1\r\nARC-Seal\r\n: i=1\r\n")
	f.Fuzz(func(t *testing.T, head string) {
		want := false
		for _, field := range headerFields([]byte(head)) {
			want = want || isARCName(strings.ToLower(field.name))
		}
		if got := hasARCField([]byte(head)); got != want {
			t.Fatalf("hasARCField(%q) = %v, want %v", head, got, want)
		}
	})
}

// headerFieldsReference is headerFields as first written, a concatenation
// per continuation line.
func headerFieldsReference(raw []byte) []*rawField {
	end := bytes.Index(raw, []byte("\r\n\r\n"))
	if end < 0 {
		end = len(raw)
	}
	var out []*rawField
	for _, line := range strings.SplitAfter(string(raw[:end]), "\r\n") {
		if line == "" {
			continue
		}
		if (line[0] == ' ' || line[0] == '\t') && len(out) > 0 {
			out[len(out)-1].value += line
			continue
		}
		name, value, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		out = append(out, &rawField{name: name, value: value})
	}
	for _, f := range out {
		f.value = strings.TrimSuffix(f.value, "\r\n")
	}
	return out
}

func FuzzHeaderFieldsMatchesReference(f *testing.F) {
	f.Add("ARC-Seal: i=1;\r\n cv=none\r\n\tb=x\r\nFrom: a\r\n\r\nbody")
	f.Add(" lead: x\r\nA: x\r\nno colon\r\n y\r\n z\r\nB:\r\n\r\n")
	f.Add("A: x\r\n\r\nB: y")
	f.Add("A:x\r\nB\r\n\t:y\r\n")
	f.Fuzz(func(t *testing.T, head string) {
		got, want := headerFields([]byte(head)), headerFieldsReference([]byte(head))
		if len(got) != len(want) {
			t.Fatalf("%d fields, want %d", len(got), len(want))
		}
		for i := range got {
			if got[i].name != want[i].name || got[i].value != want[i].value {
				t.Fatalf("field %d = %q: %q, want %q: %q", i, got[i].name, got[i].value, want[i].name, want[i].value)
			}
		}
	})
}

// A header folded into many lines costs headerFields no allocation per
// line, where a concatenation per line made it quadratic.
func TestHeaderFieldsFoldedHeader(t *testing.T) {
	const lines = 10000
	raw := []byte("ARC-Seal: i=1\r\n" + strings.Repeat(" b\r\n", lines) + "\r\nbody")
	var fields []*rawField
	allocs := testing.AllocsPerRun(1, func() { fields = headerFields(raw) })
	if len(fields) != 1 || len(fields[0].value) != len(" i=1")+lines*len("\r\n b") {
		t.Fatalf("%d fields, value of %d bytes", len(fields), len(fields[0].value))
	}
	if allocs > 10 {
		t.Errorf("%v allocations for %d continuation lines", allocs, lines)
	}
}

// arcFieldListCases are ARC-Message-Signatures whose h= lists a name over
// and over, over a header of many fields: a sender reaches the field list
// with no DNS lookup (a matching bh= is enough).
var arcFieldListCases = []struct {
	name          string
	listed        string // the name h= repeats
	names, fields int
}{
	{"a name no field has", "z", 200_000, 990},
	{"a name every field has", "x-filler", 100_000, 990},
}

// arcFieldListMessage is one of arcFieldListCases as a parsed message.
func arcFieldListMessage(listed string, names, fields int) *scanner.Message {
	body := "Hello.\r\n"
	bh := sha256.Sum256([]byte(body))
	var b strings.Builder
	b.WriteString("ARC-Seal: i=1; cv=none; a=ed25519-sha256; d=x.example; s=s; b=AAAA\r\n")
	b.WriteString("ARC-Message-Signature: i=1; a=ed25519-sha256; d=x.example; s=s; c=simple/simple; h=from" +
		strings.Repeat(":"+listed, names) + "; bh=" + base64.StdEncoding.EncodeToString(bh[:]) + "; b=AAAA\r\n")
	b.WriteString("ARC-Authentication-Results: i=1; x.example; spf=pass\r\n")
	b.WriteString(strings.Repeat("X-Filler: y\r\n", fields))
	b.WriteString("From: a@x.example\r\n\r\n" + body)
	return scanner.Parse([]byte(b.String()))
}

// TestARCSignedFieldListIsLinear: an h= listing a name far more often than
// the header has it is read to its end (the key lookup is reached). How
// long that takes is BenchmarkARCSignedFieldList's: the fields are found
// by name, not by searching the header once per name, which took 1.6 s of
// CPU per message for a 400 KB h= over 990 fields.
func TestARCSignedFieldListIsLinear(t *testing.T) {
	for _, tt := range arcFieldListCases {
		t.Run(tt.name, func(t *testing.T) {
			c := &Check{res: noDNS{}}
			got, reason := c.verifyARC(context.Background(), arcFieldListMessage(tt.listed, tt.names, tt.fields))
			// It gets as far as the key lookup: the field list was read.
			if got != "fail" || !strings.Contains(reason, "no DNS in this test") {
				t.Fatalf("arc=%s (%s), want a failed key lookup", got, reason)
			}
		})
	}
}

// BenchmarkARCSignedFieldList: 5 ms for each of arcFieldListCases after
// the fields were found by name; 0.8-1.6 s before.
func BenchmarkARCSignedFieldList(b *testing.B) {
	for _, tt := range arcFieldListCases {
		msg := arcFieldListMessage(tt.listed, tt.names, tt.fields)
		c := &Check{res: noDNS{}}
		b.Run(tt.name, func(b *testing.B) {
			for b.Loop() {
				c.verifyARC(context.Background(), msg)
			}
		})
	}
}

// TestARCLongChainIsCanonicalisedOnce: each seal covers every set below
// it, but each set is canonicalised once, without splitting it into words.
// A chain of 50 sets padded to 317 KB, which any sender can sign, cost a
// copy of every set below each seal and 16 bytes per word: 320 MB
// allocated per message.
func TestARCLongChainIsCanonicalisedOnce(t *testing.T) {
	w := newWorld(t)
	pub := base64.StdEncoding.EncodeToString(w.edKey.Public().(ed25519.PublicKey))
	w.srv.AddTXT("ed._domainkey.lists.example", "v=DKIM1; k=ed25519; p="+pub)
	c := w.check(t, func(c *Config) { c.ARC = true })
	pad := " x=" + strings.Repeat("y ", 3000)
	tests := []struct {
		name string
		sets int
		want string
	}{
		{"one set", 1, "pass"},
		{"the longest chain", maxARCSets, "pass"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			raw := w.arcChain(t, tt.sets, func(int) string { return "lists.example" }, pad)
			msg := scanner.Parse([]byte(raw))
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			got, reason := c.verifyARC(context.Background(), msg)
			runtime.ReadMemStats(&after)
			if got != tt.want {
				t.Fatalf("arc=%s (%s), want %s", got, reason, tt.want)
			}
			// Past a fixed part (the body hash's buffer, the lookups), a
			// few copies of the header.
			if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 256<<10+8*uint64(msg.BodyOffset) {
				t.Errorf("verifying a %d KB header allocated %d KB, want under 256 KB and 8 times the header", msg.BodyOffset>>10, alloc>>10)
			}
		})
	}
}

// countingResolver counts the key lookups that reach res.
type countingResolver struct {
	Resolver
	lookups atomic.Int64
}

func (r *countingResolver) LookupTXT(ctx context.Context, name string) ([]string, error) {
	r.lookups.Add(1)
	return r.Resolver.LookupTXT(ctx, name)
}

// TestARCChainLengthIsBounded: a chain longer than maxARCSets fails
// before any key is looked up or signature verified; one at the bound
// costs a lookup per seal and one for the newest message signature. Up to
// RFC 8617's 50 sets, any sender could make each message cost 51 lookups
// and 150 verifications.
func TestARCChainLengthIsBounded(t *testing.T) {
	w := newWorld(t)
	pub := base64.StdEncoding.EncodeToString(w.edKey.Public().(ed25519.PublicKey))
	// A domain per sealer, as a sender would have them: no lookup is
	// answered from the cache.
	for i := 1; i <= maxARCSets+1; i++ {
		w.srv.AddTXT(fmt.Sprintf("ed._domainkey.sealer%d.example", i), "v=DKIM1; k=ed25519; p="+pub)
	}
	tests := []struct {
		name        string
		sets        int
		want        string
		wantLookups int64
		wantReason  string
	}{
		{"at the bound", maxARCSets, "pass", maxARCSets + 1, ""},
		{"past the bound", maxARCSets + 1, "fail", 0, fmt.Sprintf("chains of more than %d ARC sets are not verified", maxARCSets)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			raw := w.arcChain(t, tt.sets, func(i int) string { return fmt.Sprintf("sealer%d.example", i) }, "")
			res := &countingResolver{Resolver: w.res}
			c := &Check{res: res}
			got, reason := c.verifyARC(context.Background(), scanner.Parse([]byte(raw)))
			if got != tt.want || !strings.Contains(reason, tt.wantReason) {
				t.Errorf("arc=%s (%s), want %s (%s)", got, reason, tt.want, tt.wantReason)
			}
			if n := res.lookups.Load(); n != tt.wantLookups {
				t.Errorf("%d key lookups, want %d", n, tt.wantLookups)
			}
		})
	}
}

// canonicalHeaderReference is RFC 6376 3.4.2 as the words say it.
func canonicalHeaderReference(name, value string) string {
	v := strings.ReplaceAll(value, "\r\n", "")
	v = strings.Join(strings.FieldsFunc(v, func(r rune) bool { return r == ' ' || r == '\t' }), " ")
	return strings.ToLower(strings.TrimSpace(name)) + ":" + v + "\r\n"
}

func FuzzCanonicalHeaderMatchesReference(f *testing.F) {
	f.Add("Subject", " hello \t world\r\n  again ")
	f.Add(" X-A \t", "\r\r\n\n a\r\n\tb\r")
	f.Add("ARC-Seal", "\r\n")
	f.Fuzz(func(t *testing.T, name, value string) {
		if got, want := canonicalHeader(name, value, true), canonicalHeaderReference(name, value); got != want {
			t.Fatalf("canonicalHeader(%q, %q) = %q, want %q", name, value, got, want)
		}
	})
}

// parseTagsReference is parseTags as first written, a split into tags
// and of each value into words, less the tags no caller reads.
func parseTagsReference(v string) map[string]string {
	m := map[string]string{}
	for _, part := range strings.Split(v, ";") {
		k, val, ok := strings.Cut(part, "=")
		if !ok {
			continue
		}
		m[strings.TrimSpace(k)] = strings.Join(strings.Fields(val), "")
	}
	maps.DeleteFunc(m, func(k, _ string) bool { return !slices.Contains(tagNames[:], k) })
	return m
}

func FuzzParseTagsMatchesReference(f *testing.F) {
	f.Add(" i=1; a=ed25519-sha256; b=ab\r\n cd\t==; x=y; b = last ;")
	f.Add("=;;=; h\u00a0= from\u2028:to ;v=\xff \x85")
	f.Add(" bh")
	f.Fuzz(func(t *testing.T, v string) {
		if got, want := parseTags(v), parseTagsReference(v); !maps.Equal(got, want) {
			t.Fatalf("parseTags(%q) = %q, want %q", v, got, want)
		}
	})
}

// TestParseTagsOfALargeField: a tag list of 0.9 MB, which an ARC field
// may be, costs at most its own size in copies (a value's white space
// removed) past a fixed part. Split into tags and words it cost 8-15 MB.
func TestParseTagsOfALargeField(t *testing.T) {
	const size = 900_000
	var distinct strings.Builder
	for i := 0; distinct.Len() < size; i++ {
		fmt.Fprintf(&distinct, "t%d=x; ", i)
	}
	tests := []struct {
		name, list string
		want       map[string]string
	}{
		{"tags no caller reads", distinct.String(), map[string]string{}},
		{"a tag over and over, folded", strings.Repeat("b= x\r\n y; ", size/10), map[string]string{"b": "xy"}},
		{"one folded value", "i=1; b=" + strings.Repeat("QUJD\r\n ", size/7), map[string]string{"i": "1", "b": strings.Repeat("QUJD", size/7)}},
		{"one-letter words", "h=" + strings.Repeat("a ", size/2), map[string]string{"h": strings.Repeat("a", size/2)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			got := parseTags(tt.list)
			runtime.ReadMemStats(&after)
			if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 64<<10+uint64(len(tt.list)) {
				t.Errorf("a %d KB tag list allocated %d KB, want under its size and 64 KB", len(tt.list)>>10, alloc>>10)
			}
			if !maps.Equal(got, tt.want) {
				t.Errorf("parseTags read %d tags, want %d", len(got), len(tt.want))
			}
		})
	}
}

// TestARCBadInstanceIsQuotedCut: an instance number the sender made
// 0.9 MB long is quoted in the reason only as far as publicReason keeps,
// where it was quoted whole (up to four bytes a byte) and cut after.
func TestARCBadInstanceIsQuotedCut(t *testing.T) {
	for _, tt := range []struct{ name, i string }{
		{"printable", strings.Repeat("x", 900_000)},
		{"control characters", strings.Repeat("\x01", 900_000)},
	} {
		t.Run(tt.name, func(t *testing.T) {
			msg := scanner.Parse([]byte("ARC-Seal: i=" + tt.i + "\r\n\r\nbody"))
			c := &Check{res: noDNS{}}
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			got, reason := c.verifyARC(context.Background(), msg)
			runtime.ReadMemStats(&after)
			if got != "fail" || !strings.HasPrefix(reason, "bad instance") || len(reason) > 4*maxReason+len(`bad instance ""`) {
				t.Errorf("arc=%s, reason of %d bytes %.40q, want a failure whose reason quotes at most %d bytes", got, len(reason), reason, maxReason)
			}
			// headerFields' copy of the header, and a fixed part.
			if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 64<<10+uint64(msg.BodyOffset) {
				t.Errorf("a %d KB header allocated %d KB, want under its size and 64 KB", msg.BodyOffset>>10, alloc>>10)
			}
		})
	}
}

// rendezvousResolver makes the TXT lookup of spfName and that of a name
// ending in keySuffix each wait, for at most wait, until the other has
// started: without delay only when they run alongside.
type rendezvousResolver struct {
	Resolver
	spfName, keySuffix string
	wait               time.Duration
	spfAsked, keyAsked chan struct{}
	spfOnce, keyOnce   sync.Once
	waitedOut          atomic.Bool
}

func (r *rendezvousResolver) LookupTXT(ctx context.Context, name string) ([]string, error) {
	bare := strings.TrimSuffix(name, ".")
	mine, other, once := r.spfAsked, r.keyAsked, &r.spfOnce
	switch {
	case strings.HasSuffix(bare, r.keySuffix):
		mine, other, once = r.keyAsked, r.spfAsked, &r.keyOnce
	case bare != r.spfName:
		return r.Resolver.LookupTXT(ctx, name)
	}
	once.Do(func() { close(mine) })
	select {
	case <-other:
	case <-time.After(r.wait):
		r.waitedOut.Store(true)
	}
	return r.Resolver.LookupTXT(ctx, name)
}

// The MAIL FROM check runs on the goroutine that verifies ARC when there
// is no ARC field; with ARC fields the two must still run alongside, or
// one's DNS round trips would wait for the other's. Either way the
// results are the same.
func TestSPFBesideARC(t *testing.T) {
	w := newWorld(t)
	pub := base64.StdEncoding.EncodeToString(w.edKey.Public().(ed25519.PublicKey))
	w.srv.AddTXT("ed._domainkey.lists.example", "v=DKIM1; k=ed25519; p="+pub)
	orig := string(testMessage("alice@example.org"))
	for _, tt := range []struct {
		name, raw, arc string
		wait           time.Duration // for the other lookup; none without ARC fields
	}{
		{"no ARC fields", orig, "arc=none", 0},
		{"ARC fields", w.arcSeal(t, orig, "lists.example", 1, "none"), "arc=pass", 5 * time.Second},
	} {
		t.Run(tt.name, func(t *testing.T) {
			res := &rendezvousResolver{Resolver: w.res, spfName: "example.org", keySuffix: "._domainkey.lists.example",
				wait: tt.wait, spfAsked: make(chan struct{}), keyAsked: make(chan struct{})}
			cfg := DefaultConfig()
			cfg.SPF, cfg.DKIM, cfg.DMARC, cfg.ARC = true, false, false, true
			cfg.AuthservID = "mx.mxgrid.test"
			c, err := New(cfg, res, w.discard, prometheus.NewRegistry())
			if err != nil {
				t.Fatal(err)
			}
			env := &scanner.Envelope{ClientIP: netip.MustParseAddr("192.0.2.10"), MailFrom: "alice@example.org"}
			r, err := c.Check(context.Background(), env, scanner.Parse([]byte(tt.raw)))
			if err != nil {
				t.Fatal(err)
			}
			got := strings.Join(r.AuthResults, "; ")
			if !strings.Contains(got, "spf=pass smtp.mailfrom=alice@example.org") || !strings.Contains(got, tt.arc) {
				t.Errorf("Authentication-Results %q, want spf=pass for alice@example.org and %s", got, tt.arc)
			}
			if tt.wait > 0 && res.waitedOut.Load() {
				t.Error("the MAIL FROM and ARC key lookups ran one after the other")
			}
		})
	}
}
