package cluster

import (
	"log/slog"
	"reflect"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/hashicorp/memberlist"
)

func TestMetaEncodeStaysUnderLimit(t *testing.T) {
	started := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	long := strings.Repeat("x", 1000)
	multibyte := strings.Repeat("é€😀", 200) // 2-, 3- and 4-byte runes, cut anywhere
	many := make([]string, 40)
	for i := range many {
		many[i] = "component" + strings.Repeat("z", i) + ": " + strings.Repeat("reason ", 20)
	}
	tests := []struct {
		name         string
		in           meta
		wantReasons  int // reasons kept
		wantOmitted  int
		wantProvider string
	}{
		{"small", meta{Provider: "hetzner", Region: "fsn1", Version: "v1.2.3", Started: started, Ready: true,
			Reasons: []string{"clamd: connection refused"}, Load: 12.34, ConfigVersion: 42}, 1, 0, "hetzner"},
		{"long labels", meta{Provider: long, Region: long, Version: long, Started: started}, 0, 0, strings.Repeat("x", maxLabelLen-3) + "…"},
		{"multibyte labels", meta{Provider: multibyte, Region: multibyte, Version: multibyte}, 0, 0, ""},
		{"many long reasons", meta{Provider: long, Region: long, Version: long, Reasons: many, Draining: true}, 2, 38, ""},
		{"huge load", meta{Load: 1e300, ConfigVersion: ^uint64(0)}, 0, 0, ""},
		{"every field at its cap", meta{Provider: long, Region: long, Version: long, Started: started, Load: 1e300, ConfigVersion: ^uint64(0),
			HTTPAddr: strings.Repeat("h", maxAddrLen), SMTPHostname: strings.Repeat("h", maxHostLen), Reasons: many}, 0, 40, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := tt.in.encode(memberlist.MetaMaxSize)
			if len(b) > memberlist.MetaMaxSize {
				t.Fatalf("encoded %d bytes, limit %d", len(b), memberlist.MetaMaxSize)
			}
			got, err := decodeMeta(b)
			if err != nil {
				t.Fatalf("decodeMeta: %v", err)
			}
			for _, s := range append([]string{got.Provider, got.Region, got.Version}, got.Reasons...) {
				if !utf8.ValidString(s) {
					t.Errorf("truncation split a rune: %q", s)
				}
			}
			if len(got.Reasons) != tt.wantReasons || got.OmittedReason != tt.wantOmitted {
				t.Errorf("kept %d reasons, omitted %d; want %d and %d", len(got.Reasons), got.OmittedReason, tt.wantReasons, tt.wantOmitted)
			}
			if tt.wantProvider != "" && got.Provider != tt.wantProvider {
				t.Errorf("provider = %q, want %q", got.Provider, tt.wantProvider)
			}
			if got.Ready != tt.in.Ready || got.Draining != tt.in.Draining || got.ConfigVersion != tt.in.ConfigVersion {
				t.Errorf("flags or version changed: got %+v", got)
			}
		})
	}
}

func TestMetaRoundTrip(t *testing.T) {
	in := meta{Provider: "ovh", Region: "gra", Version: "v0.3.0", Started: time.Unix(1795000000, 0).UTC(),
		Ready: false, Draining: true, Leaving: true, Reasons: []string{"cluster: draining", "smtp: not listening"},
		Load: 3.5, ConfigVersion: 7, HTTPAddr: "[2001:db8::1]:8025", SMTPHostname: "mx1.example.net"}
	got, err := decodeMeta(in.encode(memberlist.MetaMaxSize))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, in) {
		t.Fatalf("round trip:\n got %+v\nwant %+v", got, in)
	}
}

func TestMetaDecodeRejects(t *testing.T) {
	valid := meta{Provider: "p", Reasons: []string{"a: b"}, SMTPHostname: "mx1.example.net"}.encode(memberlist.MetaMaxSize)
	tests := []struct {
		name string
		in   []byte
		want string
	}{
		{"empty", nil, "truncated"},
		{"unknown version", []byte{9, 0}, "unknown version 9"},
		{"cut in the middle", valid[:len(valid)-2], "truncated"},
		{"reason count beyond input", []byte{1, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0x03}, "reasons in"},
		// memberlist checks only the meta it sends: a peer's push/pull
		// carried up to the stream cap, here 60,000 empty reasons (16
		// bytes each once decoded, listed for an hour after it goes).
		{"over memberlist's limit", append([]byte{1, 0, 0, 0, 0, 0, 0, 0, 0xe0, 0xd4, 0x03}, make([]byte, 60000)...), "over"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := decodeMeta(tt.in); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("decodeMeta error = %v, want %q", err, tt.want)
			}
		})
	}
	// Fields appended by a newer version are ignored, not an error.
	if _, err := decodeMeta(append(valid, 1, 2, 3)); err != nil {
		t.Fatalf("trailing bytes: %v", err)
	}
}

// HTTPAddr, then SMTPHostname, were appended to version 1: a meta from a
// node that predates either (ending before it) still decodes, and a value
// too long to fit its cap is dropped rather than cut into another address
// or name.
func TestMetaAppendedFields(t *testing.T) {
	const addr, host = "10.0.0.5:8025", "mx1.example.net"
	full := meta{Provider: "p", Reasons: []string{"a: b"}, HTTPAddr: addr, SMTPHostname: host}.encode(memberlist.MetaMaxSize)
	withoutHost := full[:len(full)-1-len(host)]
	tests := []struct {
		name           string
		in             []byte
		wantAddr, want string
	}{
		{"present", full, addr, host},
		{"older node without the host name", withoutHost, addr, ""},
		{"older node without either", withoutHost[:len(withoutHost)-1-len(addr)], "", ""},
		{"address too long", meta{Provider: "p", HTTPAddr: strings.Repeat("h", maxAddrLen) + ":80", SMTPHostname: host}.encode(memberlist.MetaMaxSize), "", host},
		{"host name too long", meta{Provider: "p", HTTPAddr: addr, SMTPHostname: strings.Repeat("h", maxHostLen) + ".test"}.encode(memberlist.MetaMaxSize), addr, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := decodeMeta(tt.in)
			if err != nil {
				t.Fatalf("decodeMeta: %v", err)
			}
			if got.HTTPAddr != tt.wantAddr || got.SMTPHostname != tt.want || got.Provider != "p" {
				t.Fatalf("HTTPAddr %q, SMTPHostname %q (provider %q), want %q and %q", got.HTTPAddr, got.SMTPHostname, got.Provider, tt.wantAddr, tt.want)
			}
		})
	}
}

func TestReachableHTTP(t *testing.T) {
	tests := []struct{ listen, gossip, want string }{
		{"127.0.0.1:8025", "127.0.0.1:7946", "127.0.0.1:8025"},
		{"0.0.0.0:8025", "172.18.0.3:7946", "172.18.0.3:8025"},
		{"[::]:8025", "[2001:db8::7]:7946", "[2001:db8::7]:8025"},
		{":8025", "10.1.2.3:7946", "10.1.2.3:8025"},
		{"mx1.example.net:8025", "10.1.2.3:7946", "mx1.example.net:8025"},
		{"", "10.1.2.3:7946", ""},
		{"0.0.0.0:8025", "", ""},
	}
	for _, tt := range tests {
		if got := reachableHTTP(tt.listen, tt.gossip); got != tt.want {
			t.Errorf("reachableHTTP(%q, %q) = %q, want %q", tt.listen, tt.gossip, got, tt.want)
		}
	}
}

// Meta comes from the network: decoding must never panic, and what decodes
// must encode again within the limit.
func FuzzDecodeMeta(f *testing.F) {
	f.Add(meta{Provider: "p", Region: "r", Version: "v", Reasons: []string{"x: y"}}.encode(memberlist.MetaMaxSize))
	f.Add([]byte{1, 7, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01})
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := decodeMeta(b)
		if err != nil {
			return
		}
		if n := len(m.encode(memberlist.MetaMaxSize)); n > memberlist.MetaMaxSize {
			t.Fatalf("re-encoded to %d bytes", n)
		}
	})
}

func TestTruncate(t *testing.T) {
	tests := []struct {
		in   string
		n    int
		want string
	}{
		{"short", 10, "short"},
		{"exactly10!", 10, "exactly10!"},
		{"abcdefghijk", 10, "abcdefg…"},
		{"ééééééé", 10, "ééé…"}, // 14 bytes; a cut at 7 would split the 4th é
	}
	for _, tt := range tests {
		if got := truncate(tt.in, tt.n); got != tt.want || len(got) > tt.n {
			t.Errorf("truncate(%q, %d) = %q, want %q", tt.in, tt.n, got, tt.want)
		}
	}
}

func TestParseMemberlistLine(t *testing.T) {
	tests := []struct {
		line      string
		wantLevel slog.Level
		wantMsg   string
	}{
		{"[DEBUG] memberlist: Stream connection from=127.0.0.1:5555\n", slog.LevelDebug, "Stream connection from=127.0.0.1:5555"},
		{"[INFO] memberlist: Suspect b has failed, no acks received", slog.LevelInfo, "Suspect b has failed, no acks received"},
		{"[WARN] memberlist: Refuting a suspect message (from: c)", slog.LevelWarn, "Refuting a suspect message (from: c)"},
		{"[ERR] memberlist: failed to receive: no installed keys could decrypt the message", slog.LevelError, "failed to receive: no installed keys could decrypt the message"},
		{"[ERR] Failed to shutdown transport: x", slog.LevelError, "Failed to shutdown transport: x"},
		{"no prefix at all", slog.LevelInfo, "no prefix at all"},
	}
	for _, tt := range tests {
		level, msg := parseMemberlistLine(tt.line)
		if level != tt.wantLevel || msg != tt.wantMsg {
			t.Errorf("parse(%q) = %v %q, want %v %q", tt.line, level, msg, tt.wantLevel, tt.wantMsg)
		}
	}
	if name, ok := probeFailedNode("Suspect node-b.example has failed, no acks received"); !ok || name != "node-b.example" {
		t.Errorf("probeFailedNode = %q, %v", name, ok)
	}
	if _, ok := probeFailedNode("Marking b as failed, suspect timeout reached (0 peer confirmations)"); ok {
		t.Error("probeFailedNode matched a dead-node line")
	}
}
