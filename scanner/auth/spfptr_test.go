package auth

import (
	"context"
	"net/netip"
	"runtime"
	"strings"
	"testing"

	"github.com/mxgrid/mxgrid/scanner"
)

// TestSPFLongMacroIsRefused: blitiri.com.ar/go/spf builds a macro's body
// one character at a time by string concatenation, in time and garbage
// quadratic in its length, and without looking at the deadline. A body
// of valid delimiters ("%{d+++...}") expands, so a record that includes
// itself through one spends it ten times: 20,000 '+' cost 2 GB of
// garbage and a second of CPU per identity, on every message from a
// domain whose DNS the sender runs.
func TestSPFLongMacroIsRefused(t *testing.T) {
	long := strings.Repeat("+", 20000)
	tests := []struct {
		name, record string
	}{
		{"include loop", "v=spf1 include:%{d" + long + "} -all"},
		{"redirect loop", "v=spf1 redirect=%{d" + long + "}"},
		{"exists", "v=spf1 exists:%{l" + long + "}.x.%{d} -all"},
		{"a", "v=spf1 a:%{d" + long + "} -all"},
		{"invalid body", "v=spf1 include:%{" + strings.Repeat("a", 20000) + "} -all"},
		{"upper-case version", "V=SPF1 mx:%{d" + long + "} -all"},
	}
	w := newWorld(t)
	c := w.check(t, nil)
	// Not an SPF record, so not expanded: no reason to refuse it.
	w.srv.AddTXT("other.longmacro.example", "v=spf10 a:%{d"+long+"}")
	w.srv.AddTXT("other.longmacro.example", "v=spf1 -all")
	other := scanner.Envelope{ClientIP: netip.MustParseAddr("203.0.113.1"), HELO: "[203.0.113.1]", MailFrom: "x@other.longmacro.example"}
	if r := c.checkSPF(context.Background(), &other, other.MailFrom, "smtp.mailfrom", "SPF_"); r.result != "fail" {
		t.Errorf("a long macro in a TXT string that is no SPF record: %s (%s), want the record's fail", r.result, r.reason)
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			domain := string(rune('a'+i)) + ".longmacro.example"
			w.srv.AddTXT(domain, tt.record)
			env := scanner.Envelope{ClientIP: netip.MustParseAddr("203.0.113.1"), HELO: "[203.0.113.1]", MailFrom: "x@" + domain}
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			r := c.checkSPF(context.Background(), &env, env.MailFrom, "smtp.mailfrom", "SPF_")
			runtime.ReadMemStats(&after)
			if r.result != "permerror" || !strings.Contains(r.reason, "macro") {
				t.Errorf("result %s (%s), want permerror for the macro", r.result, r.reason)
			}
			if garbage := after.TotalAlloc - before.TotalAlloc; garbage > 16<<20 {
				t.Errorf("one check allocated %d MB", garbage>>20)
			}
		})
	}
}

// TestSPFManyMacrosAreRefused: every macro the library expands costs a
// regexp match and a few allocations, however short its body. One whose
// value is all delimiters (%{l-+} of the local part "-+-+") expands to
// nothing, so a term of 10,000 of them before %{d} names the domain
// itself and is looked up, never void, and a record including itself ran
// it five times: 100 ms of CPU and 20 MB of garbage per identity, twice a
// message (MAIL FROM and HELO), from a domain whose DNS the sender runs.
func TestSPFManyMacrosAreRefused(t *testing.T) {
	w := newWorld(t)
	c := w.check(t, nil)
	const domain = "manymacros.example"
	w.srv.AddA(domain, "198.51.100.1")
	w.srv.AddTXT(domain, "v=spf1 a:"+strings.Repeat("%{l-+}", 10000)+"%{d} include:%{d} -all")
	env := scanner.Envelope{ClientIP: netip.MustParseAddr("203.0.113.1"), HELO: "[203.0.113.1]",
		MailFrom: strings.Repeat("-+", 32) + "@" + domain}
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	r := c.checkSPF(context.Background(), &env, env.MailFrom, "smtp.mailfrom", "SPF_")
	runtime.ReadMemStats(&after)
	if r.result != "permerror" || !strings.Contains(r.reason, "macros") {
		t.Errorf("result %s (%s), want permerror for the macros", r.result, r.reason)
	}
	if garbage := after.TotalAlloc - before.TotalAlloc; garbage > 8<<20 {
		t.Errorf("one check allocated %d MB", garbage>>20)
	}
	// A record of maxMacros macros is read.
	w.srv.AddTXT("fewmacros.example", "v=spf1 exists:"+strings.Repeat("%{l-+}", maxMacros-1)+"%{d} -all")
	w.srv.AddA("fewmacros.example", "198.51.100.1")
	env.MailFrom = "-+@fewmacros.example"
	if r := c.checkSPF(context.Background(), &env, env.MailFrom, "smtp.mailfrom", "SPF_"); r.result != "pass" {
		t.Errorf("a record of %d macros: %s (%s), want pass", maxMacros, r.result, r.reason)
	}
}

// TestSPFLongRecordIsRefused: the library runs every term of a record
// through a series of regular expressions, deaf to the deadline; a 60 KB
// record of modifiers that includes itself cost 83 ms of CPU and 19 MB
// of garbage per identity, twice a message.
func TestSPFLongRecordIsRefused(t *testing.T) {
	w := newWorld(t)
	c := w.check(t, nil)
	terms := func(n int) string { return strings.Repeat(" x=y", n) }
	w.srv.AddTXT("long.example", "v=spf1"+terms(15000)+" include:long.example -all")
	env := scanner.Envelope{ClientIP: netip.MustParseAddr("203.0.113.1"), HELO: "[203.0.113.1]", MailFrom: "x@long.example"}
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	r := c.checkSPF(context.Background(), &env, env.MailFrom, "smtp.mailfrom", "SPF_")
	runtime.ReadMemStats(&after)
	if r.result != "permerror" || !strings.Contains(r.reason, "bytes") {
		t.Errorf("result %s (%s), want permerror for the record's size", r.result, r.reason)
	}
	if garbage := after.TotalAlloc - before.TotalAlloc; garbage > 4<<20 {
		t.Errorf("one check allocated %d MB", garbage>>20)
	}
	// A record of maxSPFRecord bytes is read; longer TXT strings that
	// are no SPF record do not count.
	record := "v=spf1 ip4:203.0.113.1 -all"
	record += terms((maxSPFRecord - len(record)) / 4)
	w.srv.AddTXT("fits.example", record+strings.Repeat(" ", maxSPFRecord-len(record)))
	w.srv.AddTXT("fits.example", "google-site-verification="+strings.Repeat("a", 2*maxSPFRecord))
	env.MailFrom = "x@fits.example"
	if r := c.checkSPF(context.Background(), &env, env.MailFrom, "smtp.mailfrom", "SPF_"); r.result != "pass" {
		t.Errorf("a record of %d bytes: %s (%s), want pass", maxSPFRecord, r.result, r.reason)
	}
}

func TestLongestMacro(t *testing.T) {
	tests := []struct {
		record string
		want   int
	}{
		{"v=spf1 -all", 0},
		{"v=spf1 exists:%{ir}.%{l1r+-}._spf.%{d} -all", 5},
		{"v=spf1 include:%%{" + strings.Repeat("a", 100) + "} -all", 0}, // "%%" is a literal '%'
		{"v=spf1 include:%{" + strings.Repeat("a", 100), 100},           // unterminated: to the end
		{"v=spf1 a:%{" + strings.Repeat("a", 100) + " -all", 100},       // or to the field's end
		{"v=spf1 a:%_%-%{d}", 1},
		{"v=spf1 a:%", 0},
	}
	for _, tt := range tests {
		if got := longestMacro(tt.record); got != tt.want {
			t.Errorf("longestMacro(%.40q) = %d, want %d", tt.record, got, tt.want)
		}
	}
}

// FuzzLongestMacro: the library adds to no macro body more times (once a
// rune) than longestMacro's bytes.
func FuzzLongestMacro(f *testing.F) {
	for _, s := range []string{"v=spf1 exists:%{ir}.%{l1r+-}._spf.%{d} -all", "%%{aaa}", "%{a b}", "%{%{}", "%"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, record string) {
		got := longestMacro(record)
		for _, field := range strings.Split(record, " ") {
			if n := libraryLongestMacro(field); n > got {
				t.Fatalf("longestMacro(%q) = %d, the library builds a body of %d bytes", record, got, n)
			}
		}
	})
}

// libraryLongestMacro follows the library's expandMacros over one field:
// the most runes it appends to one body.
func libraryLongestMacro(field string) int {
	most, body, afterPercent, in := 0, 0, false, false
	for _, c := range field {
		switch {
		case afterPercent:
			afterPercent = false
			in = c == '{'
		case in && c == '}':
			in, body = false, 0
		case in:
			body++
			most = max(most, body)
		case c == '%':
			afterPercent = true
		}
	}
	return most
}
