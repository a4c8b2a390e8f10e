package config

import (
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/mxgrid/mxgrid/scanner"
	"gopkg.in/yaml.v3"
)

func TestDefaultIsValidLoopbackNode(t *testing.T) {
	cfg, err := Load("")
	if err != nil {
		t.Fatalf("defaults invalid: %v", err)
	}
	if cfg.SMTP.Listen != "127.0.0.1:2525" || cfg.HTTP.Listen != "127.0.0.1:8025" || cfg.DataDir != "./data" {
		t.Fatalf("defaults = %s %s %s, want loopback 2525/8025 and ./data", cfg.SMTP.Listen, cfg.HTTP.Listen, cfg.DataDir)
	}
}

func TestLoadFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "mxgrid.yaml")
	os.WriteFile(path, []byte(`
node: {name: node-a, provider: hetzner, region: fsn1}
smtp:
  listen: 127.0.0.1:2626
  max_message_bytes: 1.048576e6
  trusted_proxies: [10.0.0.0/8]
  command_timeout: 30s
log: {format: json}
relay:
  cache: {enabled: false, max_reuse: 10}
cluster: {mx_hosts: [MX1.Filter.Example., mx2.filter.example]}
tenants: {reserved_domains: [Brand.Example., exämple.net]}
domains:
  - name: Example.ORG
    route: 127.0.0.1:2500
    recipients: [alice, bob@example.org]
    tls: none
    reject_score: 15
`), 0o600)
	cfg, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	doms, _ := cfg.StaticDomains()
	if len(doms) != 1 || doms[0].Name != "example.org" || !doms[0].AcceptsRecipient("Bob") || doms[0].AcceptsRecipient("carol") {
		t.Fatalf("domains = %+v", doms[0])
	}
	if *doms[0].Policy.RejectScore != 15 || cfg.SMTP.CommandTimeout.Seconds() != 30 || cfg.Node.Provider != "hetzner" || cfg.SMTP.MaxMessageBytes != 1048576 {
		t.Fatalf("values not applied: %+v", cfg)
	}
	// A key set in a section leaves the section's other defaults alone.
	if c := cfg.Relay.Cache; c.Enabled || c.MaxReuse != 10 || c.MaxIdlePerRoute != 50 || c.IdleTimeout != 5*time.Second {
		t.Fatalf("relay.cache = %+v, want off, max_reuse 10, other defaults", c)
	}
}

// TestAliasesAreCheckedWhereUsed: a YAML alias loads as the value it
// stands for, checked as the key it is used at expects.
func TestAliasesAreCheckedWhereUsed(t *testing.T) {
	cfg := Default()
	err := Parse([]byte(`
smtp: {hostname: &h mx.example.org}
auth: {authserv_id: *h}
domains:
  - &d {name: a.org, route: "h:25", recipients: &r [alice, bob]}
  - {name: b.org, route: "h:25", recipients: *r}
`), &cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	if cfg.Auth.AuthservID != "mx.example.org" || len(cfg.Domains) != 2 || len(cfg.Domains[1].Recipients) != 2 {
		t.Fatalf("aliases not applied: %+v, %+v", cfg.Auth, cfg.Domains)
	}
	cfg = Default()
	if err := Parse([]byte("domains:\n  - &d {name: a.org, route: 'h:25'}\n  - *d\n"), &cfg); err != nil {
		t.Fatal(err)
	}
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "domains[1].name: a.org is listed twice") {
		t.Fatalf("Validate() = %v, want the aliased domain listed twice", err)
	}
}

// aliasBomb is 17 kB of YAML that, expanded, is a thousand domains of a
// thousand routes of a thousand recipients each.
func aliasBomb() string {
	var b strings.Builder
	b.WriteString("domains:\n  - &d {name: a.org, route: 'h:25', recipients: &r [")
	for i := range 1000 {
		fmt.Fprintf(&b, "u%d,", i)
	}
	b.WriteString("], routes: [&ro {route: 'h:25', recipients: *r}" + strings.Repeat(", *ro", 999) + "]}\n")
	b.WriteString(strings.Repeat("  - *d\n", 999))
	return b.String()
}

// manyWeights is a flow mapping body of n made-up symbols.
func manyWeights(n int) string {
	w := make([]string, n)
	for i := range w {
		w[i] = fmt.Sprintf("S%d: 1", i)
	}
	return strings.Join(w, ", ")
}

func TestBadConfigNamesTheKey(t *testing.T) {
	tests := []struct {
		name, yaml, want string
	}{
		{"unknown top-level key", "smtpp: {}\n", `unknown key "smtpp"`},
		{"unknown nested key", "smtp:\n  lisen: 1.2.3.4:25\n", `unknown key "smtp.lisen"`},
		{"unknown key in a domain", "domains:\n  - name: a.org\n    route: h:25\n    rout: x\n", `unknown key "domains[0].rout"`},
		{"bad listen address", "smtp:\n  listen: nonsense\n", "smtp.listen:"},
		{"bad http listen", "http:\n  listen: 8025\n", "http.listen:"},
		{"listen port out of range", "smtp:\n  listen: 127.0.0.1:99999\n", "smtp.listen:"},
		{"listen port by name", "smtp:\n  listen: 127.0.0.1:smtp\n", "smtp.listen:"},
		{"no http connections", "http:\n  max_connections: 0\n", "http.max_connections:"},
		{"no http connections per client", "http:\n  max_connections_per_ip: 0\n", "http.max_connections_per_ip:"},
		{"management listen port out of range", "http:\n  management_listen: 127.0.0.1:80800\n", "http.management_listen:"},
		{"negative cache memcached without port", "smtp:\n  negative_cache_memcached: ['memcached:0']\n", "smtp.negative_cache_memcached[0]:"},
		{"geo memcached port out of range", "geo:\n  memcached: ['m:70000']\n", "geo.memcached[0]:"},
		{"dns server port by name", "dns:\n  server: 127.0.0.1:domain\n", "dns.server:"},
		{"clamd port out of range", "antivirus:\n  clamd: tcp://127.0.0.1:66000\n", "antivirus.clamd"},
		{"digest sender without a domain", "notify:\n  from: quarantine\n", "notify.from:"},
		// Anyone who has or guesses the key signs release links.
		{"digest link key of one byte", "notify:\n  link_keys: [AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=]\n", "notify.link_keys[0]: weak key"},
		{"digest link key of text", "notify:\n  link_keys: [" + base64.StdEncoding.EncodeToString([]byte("our digest links key, keep it safe")) + "]\n", "notify.link_keys[0]: weak key"},
		{"digest sender with CR LF", "notify:\n  from: \"q@example.org\\r\\nRCPT TO:<x@example.org>\"\n", "notify.from:"},
		{"digest sender not ASCII", "notify:\n  from: quarantäne@example.org\n", "notify.from:"},
		{"smarthost user without a password", "notify:\n  username: digests\n", "notify.username, password_file:"},
		{"smarthost password without a user", "notify:\n  password_file: /etc/mxgrid/smarthost.pw\n", "notify.username, password_file:"},
		{"smarthost port out of range", "notify:\n  smarthost: smtp.example.org:2500000\n", "notify.smarthost:"},
		{"memory budget below four messages", "smtp:\n  memory_budget: 1048576\n", "smtp.memory_budget:"},
		// 3 x 2^62 and 3 x (2^63-1) overflow int64: the check once passed them.
		{"max message bytes whose budget overflows", "smtp:\n  max_message_bytes: 4611686018427387904\n", "smtp.memory_budget:"},
		{"max message bytes just past a third of int64", "smtp:\n  max_message_bytes: 3074457345618258603\n", "smtp.memory_budget:"},
		{"everything at the int64 maximum", "smtp:\n  max_message_bytes: 9223372036854775807\n  spool_threshold: 9223372036854775807\n  memory_budget: 9223372036854775807\n", "smtp.memory_budget:"},
		{"reserved domain with a space", "tenants:\n  reserved_domains: [brand.example, 'our brand.example']\n", "tenants.reserved_domains[1]:"},
		{"reserved domain as a wildcard", "tenants:\n  reserved_domains: ['*.brand.example']\n", "tenants.reserved_domains[0]:"},
		{"reserved domain empty", "tenants:\n  reserved_domains: ['']\n", "tenants.reserved_domains[0]:"},
		{"data dir under ~", "data_dir: ~/mxgrid\n", "data_dir:"},
		{"model file under ~", "scanner:\n  model_file: ~/model.bin\n", "scanner.model_file:"},
		{"gossip key file under ~", "cluster:\n  secret_key_file: ~mxgrid/gossip.key\n", "cluster.secret_key_file:"},
		{"MX host with a space", "cluster:\n  mx_hosts: [mx1.filter.example, 'mx2 filter.example']\n", "cluster.mx_hosts[1]:"},
		{"MX host not fully qualified", "cluster:\n  mx_hosts: [mx1]\n", "cluster.mx_hosts[0]:"},
		{"staleness past a duration", "tenants:\n  stale_after: 1000000000\n", "tenants.stale_after: 1000000000 reload intervals of 30s overflow a duration"},
		{"node name with a NUL", "node:\n  name: \"mx\\0a\"\n", `node.name: "mx\x00a" holds a control character`},
		{"node name with CR LF", "node:\n  name: \"mx\\r\\nb\"\n", "node.name:"},
		{"node name over 64 bytes", "node:\n  name: " + strings.Repeat("n", 65) + "\n", "node.name: at most 64 characters"},
		{"provider with an escape", "node:\n  provider: \"\\e[31mhetzner\"\n", "node.provider:"},
		{"region with a C1 control", "node:\n  region: \"fsn\\x9b1\"\n", "node.region:"},
		{"region over 64 bytes", "node:\n  region: " + strings.Repeat("r", 65) + "\n", "node.region: at most 64 characters"},
		{"claims that lapse at once", "tenants:\n  pending_claim_ttl: 1s\n", "tenants.pending_claim_ttl:"},
		{"negative client budget", "smtp:\n  client_unknown_recipients: -1\n", "smtp.client_unknown_recipients:"},
		{"client budget without a window", "smtp:\n  client_unknown_window: 0s\n", "smtp.client_unknown_window:"},
		{"no junk commands", "smtp:\n  max_junk_commands: 0\n", "smtp.max_junk_commands:"},
		{"no stress timeout", "smtp:\n  stress_command_timeout: 0s\n", "smtp.stress_command_timeout:"},
		{"postmaster without a domain", "smtp:\n  postmaster: postmaster\n", "smtp.postmaster:"},
		{"source-routed postmaster", "smtp:\n  postmaster: a%b@example.org\n", "smtp.postmaster:"},
		{"relative public url", "http:\n  public_url: filter.example\n", "http.public_url:"},
		{"public url with query", "http:\n  public_url: https://filter.example/?a=b\n", "http.public_url:"},
		{"public url not ASCII", "http:\n  public_url: https://filtré.example\n", "http.public_url:"},
		{"public url with a space", "http:\n  public_url: \"https://f.example/a b\"\n", "http.public_url:"},
		{"events buffer past memory", "events:\n  buffer: 4000000000\n", "events.buffer: between 1 and 1000000"},
		{"events buffer past makeslice", "events:\n  buffer: 100000000000000\n", "events.buffer:"},
		{"tracking buffer past memory", "tracking:\n  buffer: 1000001\n", "tracking.buffer:"},
		{"tracking deferral window", "tracking:\n  deferral_window: 1s\n", "tracking.deferral_window:"},
		{"tracking retention", "tracking:\n  retention: 1m\n", "tracking.retention:"},
		{"bad route", "domains:\n  - name: a.org\n    route: mail.a.org\n", "domains[0].route:"},
		{"bad port in route", "domains:\n  - name: a.org\n    route: mail.a.org:99999\n", "domains[0].route:"},
		{"space in route host", "domains:\n  - name: a.org\n    route: 'mail a.org:25'\n", "domains[0].route:"},
		{"CR LF in route host", "domains:\n  - name: a.org\n    route: \"mail.a.org\\r\\n:25\"\n", "domains[0].route:"},
		{"signed route port", "domains:\n  - name: a.org\n    route: 'mail.a.org:+25'\n", "domains[0].route:"},
		{"route host an address in disguise", "domains:\n  - name: a.org\n    route: '10.1:25'\n", "domains[0].route:"},
		{"route with an IPv6 zone", "domains:\n  - name: a.org\n    route: '[fe80::1%eth0]:25'\n", "domains[0].route:"},
		{"route rule not dialable", "domains:\n  - name: a.org\n    route: h:25\n    routes:\n      - {route: 'old mx:25', recipients: [bob]}\n", "domains[0].routes[0].route:"},
		{"bad tls mode", "domains:\n  - name: a.org\n    route: h:25\n    tls: maybe\n", "domains[0].tls:"},
		{"bad domain name", "domains:\n  - name: nodot\n    route: h:25\n", "domains[0].name:"},
		{"empty label in a domain name", "domains:\n  - name: a..org\n    route: h:25\n", "domains[0].name:"},
		{"domain label over 63 octets", "domains:\n  - name: " + strings.Repeat("a", 64) + ".org\n    route: h:25\n", "domains[0].name:"},
		{"domain name over 253 octets", "domains:\n  - name: " + strings.Repeat("abcdefghi.", 26) + "org\n    route: h:25\n", "domains[0].name:"},
		{"domain name an IPv4 address", "domains:\n  - name: 192.0.2.1\n    route: h:25\n", "domains[0].name:"},
		{"domain name of dots", "domains:\n  - name: '..'\n    route: h:25\n", "domains[0].name:"},
		{"duplicate domain", "domains:\n  - {name: a.org, route: 'h:25'}\n  - {name: A.org, route: 'h:26'}\n", "domains[1].name:"},
		{"bad proxy cidr", "smtp:\n  trusted_proxies: [10.0.0.0/33]\n", "smtp.trusted_proxies[0]"},
		// Masked without a word: 10.1.2.3/8 trusted or allowed all of 10/8.
		{"proxy cidr with host bits", "smtp:\n  trusted_proxies: [10.1.2.3/8]\n", `smtp.trusted_proxies[0]: "10.1.2.3/8" has host bits set: write 10.0.0.0/8 for the network or 10.1.2.3 for the address`},
		{"http proxy cidr with host bits", "http:\n  trusted_proxies: [192.0.2.0/24, '2001:db8::1/32']\n", "http.trusted_proxies[1]: \"2001:db8::1/32\" has host bits set"},
		{"trusted relay cidr with host bits", "events:\n  trusted_relays: [192.0.2.9/24]\n", "events.trusted_relays[0]: \"192.0.2.9/24\" has host bits set"},
		{"allowed route network with host bits", "relay:\n  allowed_route_networks: [172.16.5.5/12]\n", "relay.allowed_route_networks[0]: \"172.16.5.5/12\" has host bits set"},
		{"zoned proxy address", "smtp:\n  trusted_proxies: ['fe80::1%eth0']\n", "smtp.trusted_proxies[0]:"},
		{"bad http proxy", "http:\n  trusted_proxies: [proxy.example]\n", "http.trusted_proxies[0]:"},
		{"bad allowed route network", "relay:\n  allowed_route_networks: [10.0.0.0/8, lan]\n", "relay.allowed_route_networks[1]"},
		{"no idle sessions per route", "relay:\n  cache: {max_idle_per_route: 0}\n", "relay.cache.max_idle_per_route:"},
		{"zero idle timeout", "relay:\n  cache: {idle_timeout: 0s}\n", "relay.cache.idle_timeout:"},
		// A loop of 1ns ran back to back, a core busy for good; relay's
		// sweep of half of it, a ticker of 0, panicked at start.
		{"idle timeout of a nanosecond", "relay:\n  cache: {idle_timeout: 1ns}\n", "relay.cache.idle_timeout: between 200ms and 5m"},
		{"events flushed back to back", "events:\n  flush_interval: 999us\n", "events.flush_interval: at least 1ms"},
		{"events pruned back to back", "events:\n  prune_interval: 1ns\n", "events.prune_interval: at least 100ms"},
		{"tracking pruned back to back", "tracking:\n  prune_interval: 99ms\n", "tracking.prune_interval: at least 100ms"},
		{"deferral view read back to back", "tracking:\n  deferral_interval: 1ns\n", "tracking.deferral_interval: at least 100ms"},
		{"quarantine pruned back to back", "quarantine:\n  prune_interval: 1ns\n", "quarantine.prune_interval: at least 100ms"},
		{"digests checked back to back", "notify:\n  check_interval: 1ns\n", "notify.check_interval: at least 100ms"},
		{"clamd pinged back to back", "antivirus:\n  probe_interval: 1ns\n", "antivirus.probe_interval: at least 100ms"},
		{"idle timeout past RFC 5321's", "relay:\n  cache: {idle_timeout: 10m}\n", "relay.cache.idle_timeout:"},
		{"zero reuse", "relay:\n  cache: {max_reuse: 0}\n", "relay.cache.max_reuse:"},
		{"no idle sessions at all", "relay:\n  cache: {max_idle: 0}\n", "relay.cache.max_idle:"},
		{"unknown cache key", "relay:\n  cache: {max_idle_sessions: 3}\n", `unknown key "relay.cache.max_idle_sessions"`},
		{"bad route test burst", "panel:\n  route_test_burst: 0\n", "panel.route_test_burst"},
		{"fraction in an integer key", "smtp:\n  max_recipients: 1.5\n", "line 2: smtp.max_recipients: 1.5 is not a whole number"},
		{"fraction in a nested integer key", "relay:\n  cache: {max_reuse: 2.9}\n", "relay.cache.max_reuse: 2.9 is not a whole number"},
		{"fraction in a domain's integer key", "domains:\n  - {name: a.org, route: 'h:25', max_message_size: 1048576.5}\n", "domains[0].max_message_size: 1048576.5 is not a whole number"},
		{"wrong type", "smtp:\n  max_recipients: lots\n", "line 2: smtp.max_recipients: cannot unmarshal !!str `lots` into int"},
		{"bad duration", "smtp:\n  data_timeout: soon\n", "line 2: smtp.data_timeout: cannot unmarshal"},
		{"duration past int64", "smtp:\n  command_timeout: 9999999999h\n", "line 2: smtp.command_timeout: cannot unmarshal"},
		{"list for a string", "smtp:\n  hostname: [mx.example.org]\n", "line 2: smtp.hostname: cannot unmarshal !!seq"},
		{"string for a list", "smtp:\n  trusted_proxies: 10.0.0.0/8\n", "line 2: smtp.trusted_proxies: cannot unmarshal !!str"},
		{"wrong type in a list", "tenants:\n  reserved_domains: [a.example, [b.example]]\n", "line 2: tenants.reserved_domains[1]: cannot unmarshal !!seq"},
		{"wrong type in a weight", "scanner:\n  weights: {BAYES_SPAM: high}\n", "line 2: scanner.weights.BAYES_SPAM: cannot unmarshal"},
		// yaml.v3 refuses these only on decoding the whole file, naming a
		// line but no key, over two lines of output.
		{"key given twice", "smtp:\n  listen: 127.0.0.1:25\n  listen: 127.0.0.1:26\n", "line 3: smtp.listen: given twice (first at line 2)"},
		{"section given twice", "http: {listen: '127.0.0.1:80'}\nsmtp: {}\nhttp: {trusted_proxies: [10.0.0.0/8]}\n", "line 3: http: given twice (first at line 1)"},
		{"key given twice in a domain", "domains:\n  - {name: a.org, route: 'h:25', route: 'evil:25'}\n", "line 2: domains[0].route: given twice"},
		{"weight given twice", "scanner:\n  weights:\n    BAYES_SPAM: 1\n    BAYES_SPAM: 9\n", "line 4: scanner.weights.BAYES_SPAM: given twice (first at line 3)"},
		{"bad log format", "log:\n  format: xml\n", "log.format:"},
		// The sender gives up after 10 minutes and sends again while the
		// customer's server may still take the first copy.
		{"relay data timeout past the sender's wait", "relay:\n  data_timeout: 15m\n", "smtp.spool_wait + scanner.timeout + relay.command_timeout + relay.data_timeout: 2m0s + 20s + 1m0s + 15m0s outlast the 10m0s a sender waits"},
		{"scan and delivery past the sender's wait", "scanner:\n  timeout: 5m\nrelay:\n  data_timeout: 5m\n", "2m0s + 5m0s + 1m0s + 5m0s outlast"},
		{"a final-reply chain that wraps int64", "smtp:\n  spool_wait: 2562047h\nscanner:\n  timeout: 2562047h\nrelay:\n  command_timeout: 2562047h\n  data_timeout: 2562047h\n", "2562047h0m0s + 2562047h0m0s + 2562047h0m0s + 2562047h0m0s outlast"},
		// An alias is checked where it is used: it skipped the checks (a
		// fraction reached an integer key truncated), or, of a mapping,
		// was refused as "must be a mapping".
		{"alias sneaking a fraction into an integer", "scanner: {reject_score: &f 15.5}\nsmtp: {max_recipients: *f}\n", "smtp.max_recipients: 15.5 is not a whole number"},
		{"alias of a mapping with a key the use site lacks", "node: &n {name: a, provider: b}\nlog: *n\n", `unknown key "log.name"`},
		{"alias bomb", aliasBomb(), "aliases expand to over 100000 values"},
		{"weights of more keys than symbols", "scanner:\n  weights: {" + manyWeights(1001) + "}\n", "line 2: scanner.weights: 1001 keys, at most 1000"},
		{"a file of many keys", strings.ReplaceAll(manyWeights(1001), ", ", "\n") + "\n", "line 1: the file: 1001 keys, at most 1000"},
		{"a mapping of many keys for a string", "smtp:\n  hostname: {" + manyWeights(1001) + "}\n", "line 2: smtp.hostname: 1001 keys, at most 1000"},
		{"zone weights of more keys than codes", "dnsbl:\n  ip_zones:\n    - {zone: zen.example.org, weights: {" + manyWeights(1001) + "}}\n", "dnsbl.ip_zones[0].weights: 1001 keys, at most 1000"},
		{"merge key", "x: &x {colour: blue}\nsmtp:\n  <<: *x\n", `unknown key "x"`},
		{"merge key in a known section", "log: &l {format: json}\nnode:\n  <<: *l\n", `unknown key "node.<<"`},
		{"two documents", "smtp: {}\n---\nsmtp: {listen: '127.0.0.1:2626'}\n", "line 3: a second YAML document"},
		{"a second document after a leading marker", "---\nlog: {format: json}\n---\nlog: {level: debug}\n", "line 4: a second YAML document"},
		{"a bad second document", "smtp: {}\n---\nsmtp: [\n", "invalid YAML"},
		{"not yaml", "smtp: [\n", "invalid YAML"},
		{"section not a mapping", "smtp: 5\n", "smtp must be a mapping"},
		{"file a list", "- smtp: {}\n", "line 1: the file must be a mapping of sections (smtp:, http:, ...)"},
		{"file a string", "smtp.listen 127.0.0.1:25\n", "line 1: the file must be a mapping of sections"},
		// yaml.v3 leaves a field as it was for a key without a value:
		// "subject_tag:", meant as off, kept "[SPAM]".
		{"key without a value", "scanner:\n  subject_tag:\n", "line 2: scanner.subject_tag: no value"},
		{"key given null", "smtp: {max_hops: ~}\n", "line 1: smtp.max_hops: no value"},
		{"domain key without a value", "domains:\n  - name: a.org\n    route: 'h:25'\n    tls:\n", "line 4: domains[0].tls: no value"},
		{"bad auth on_error", "auth:\n  on_error: reject\n", "auth.on_error:"},
		{"bad dnsbl on_error", "dnsbl:\n  on_error: \"\"\n", "dnsbl.on_error:"},
		{"bad clamd on_error", "antivirus:\n  on_error: maybe\n", "antivirus.on_error:"},
		{"bad built-in antivirus on_error", "antivirus:\n  builtin: {on_error: maybe}\n", "antivirus.builtin.on_error:"},
		{"subject tag with CR LF", "scanner:\n  subject_tag: \"[SPAM]\\r\\nBcc: x@example.org\"\n", "scanner.subject_tag:"},
		{"subject tag with a NUL", "scanner:\n  subject_tag: \"[SPAM]\\0\"\n", "scanner.subject_tag:"},
		{"subject tag over 64 bytes", "scanner:\n  subject_tag: '" + strings.Repeat("x", 65) + "'\n", "scanner.subject_tag:"},
		// The file has no policy: section; the error named one.
		{"domain subject tag with CR LF", "domains:\n  - {name: a.org, route: 'h:25', subject_tag: \"[SPAM]\\r\\nBcc: x@a.org\"}\n", "domains[0].subject_tag: must not contain control characters"},
		{"negative model timeout", "scanner:\n  model: {timeout: -1s}\n", "scanner.model.timeout:"},
		{"bad rules on_error", "scanner:\n  rules: {on_error: drop}\n", "scanner.rules.on_error:"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "bad.yaml")
			os.WriteFile(path, []byte(tt.yaml), 0o600)
			_, err := Load(path)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Load() error = %v, want it to contain %q", err, tt.want)
			}
		})
	}
}

// TestScannerWeightsNames: scanner.weights takes the symbols of the checks
// it reaches (MIME parser, model, rules) and refuses any other name, which
// it used to accept and ignore; another check's symbol is pointed to that
// check's own weights key.
func TestScannerWeightsNames(t *testing.T) {
	for _, tt := range []struct {
		name, weights, want string // want: substring of the error; "" loads
		extra               string // more of the config file
	}{
		{"parser, model and rules symbols", "{MIME_TOO_COMPLEX: 3, MODEL_SPAM: 0.5, MODEL_HAM: -1, HTML_FORM: 0, URL_SHORTENER: 1}", "", ""},
		{"auth symbol", "{DMARC_FAIL_REJECT: 0}", "scanner.weights: DMARC_FAIL_REJECT is an auth symbol: set it in auth.weights", ""},
		{"antivirus symbol", "{AV_NAME_TYPE_MISMATCH: 6}", "scanner.weights: AV_NAME_TYPE_MISMATCH is an antivirus symbol: set it in antivirus.weights", ""},
		{"typo", "{HTML_HIDEN_TEXT: 0}", `scanner.weights: unknown symbol "HTML_HIDEN_TEXT"`, ""},
		{"first bad name in order", "{ZZZ: 1, SPF_FAIL: 0, HTML_FORM: 0}", "scanner.weights: SPF_FAIL is an auth symbol", ""},
		{"a content symbol in auth.weights", "{}", "auth.weights: HTML_FORM is a content symbol: set it in scanner.weights", "auth:\n  weights: {HTML_FORM: 0}\n"},
		{"an auth symbol in antivirus.weights", "{}", "antivirus.weights: SPF_FAIL is an auth symbol: set it in auth.weights", "antivirus:\n  weights: {SPF_FAIL: 0}\n"},
		{"a configured blocklist's symbol", "{RBL_ZEN_SPAMHAUS_ORG: 2}", "scanner.weights: RBL_ZEN_SPAMHAUS_ORG is a DNS blocklist symbol: set it in its dnsbl zone's weights",
			"dnsbl:\n  ip_zones:\n    - {zone: zen.spamhaus.org, weights: {127.0.0.2: 3}}\n"},
		{"a blocklist's own symbol name", "{URIBL_MINE: 2}", "URIBL_MINE is a DNS blocklist symbol",
			"dnsbl:\n  domain_zones:\n    - {zone: uribl.example, symbol: URIBL_MINE, weights: {127.0.0.2: 3}}\n"},
	} {
		t.Run(tt.name, func(t *testing.T) { loadWants(t, "scanner:\n  weights: "+tt.weights+"\n"+tt.extra, tt.want) })
	}
}

// TestSMTPHostname: smtp.hostname is written verbatim into the greeting,
// the EHLO reply and Received, so only a host name loads; a CR LF in it
// used to load and split the 220 greeting into a forged second line.
func TestSMTPHostname(t *testing.T) {
	for _, tt := range []struct {
		name, host, want string // want: substring of the error; "" loads
	}{
		{"host name", "mx1.example.net", ""},
		{"upper case", "MX1.Example.NET", ""},
		{"single label", "mx", ""},
		{"CR LF", "mx.example\r\n250-INJECTED", "smtp.hostname:"},
		{"bare LF", "mx.example\nX: y", "smtp.hostname:"},
		{"space", "mx example", "smtp.hostname:"},
		{"parenthesis", "mx(.example", "smtp.hostname:"},
		{"trailing dot", "mx.example.", "smtp.hostname:"},
		{"empty label", "mx..example", "smtp.hostname:"},
		{"leading hyphen", "-mx.example", "smtp.hostname:"},
		{"not ASCII", "mx.exämple.org", "smtp.hostname:"},
		{"label over 63", strings.Repeat("a", 64) + ".org", "smtp.hostname:"},
		{"over 253", strings.Repeat("a.", 127) + "org", "smtp.hostname:"},
		{"empty", "", "smtp.hostname:"},
	} {
		t.Run(tt.name, func(t *testing.T) { loadWants(t, fmt.Sprintf("smtp:\n  hostname: \"%s\"\n", tt.host), tt.want) })
	}
}

// TestDomainThresholdsWithTheGlobalOnes: a domain setting one threshold
// takes the other from scanner:, and the pair it ends with must be in
// order; a tag_score above the inherited reject_score used to load and
// refuse the whole tag band.
func TestDomainThresholdsWithTheGlobalOnes(t *testing.T) {
	for _, tt := range []struct {
		name, yaml, want string // want: substring of the error; "" loads
	}{
		{"lower tag score", "domains:\n  - {name: a.org, route: 'h:25', tag_score: 4}\n", ""},
		{"tag score at the inherited reject score", "domains:\n  - {name: a.org, route: 'h:25', tag_score: 10}\n", ""},
		{"higher reject score", "domains:\n  - {name: a.org, route: 'h:25', reject_score: 20}\n", ""},
		{"both raised", "domains:\n  - {name: a.org, route: 'h:25', tag_score: 15, reject_score: 20}\n", ""},
		{"tag score above the inherited reject score", "domains:\n  - {name: a.org, route: 'h:25', tag_score: 15}\n", "domains[0].tag_score: 15 is above scanner.reject_score (10)"},
		{"reject score below the inherited tag score", "domains:\n  - {name: a.org, route: 'h:25', reject_score: 3}\n", "domains[0].reject_score: 3 is below scanner.tag_score (6)"},
		{"tag score above a configured reject score", "scanner: {tag_score: 2, reject_score: 4}\ndomains:\n  - {name: a.org, route: 'h:25', tag_score: 5}\n", "domains[0].tag_score: 5 is above scanner.reject_score (4)"},
		{"second domain", "domains:\n  - {name: a.org, route: 'h:25'}\n  - {name: b.org, route: 'h:25', tag_score: 11}\n", "domains[1].tag_score:"},
	} {
		t.Run(tt.name, func(t *testing.T) { loadWants(t, tt.yaml, tt.want) })
	}
}

// TestOneYAMLDocument: what marks or ends the one document loads; a
// second document is refused (TestBadConfigNamesTheKey), as it was
// dropped.
func TestOneYAMLDocument(t *testing.T) {
	for _, data := range []string{
		"---\nlog: {format: json}\n",
		"log: {format: json}\n...\n",
		"log: {format: json}\n---\n",
		"log: {format: json}\n---\n# nothing more\n",
		"log: {format: json}\n--- ~\n",
	} {
		cfg := Default()
		if err := Parse([]byte(data), &cfg); err != nil || cfg.Log.Format != "json" {
			t.Errorf("Parse(%q) = %v, format %q; want it to load", data, err, cfg.Log.Format)
		}
	}
}

// TestListenersDoNotShareAnAddress: two listeners on one address used
// to load and fail at the second bind, naming neither key.
func TestListenersDoNotShareAnAddress(t *testing.T) {
	for _, tt := range []struct {
		name, yaml, want string // want: substring of the error; "" loads
	}{
		{"defaults", "", ""},
		{"different ports", "smtp: {listen: '0.0.0.0:25'}\nhttp: {listen: '0.0.0.0:80'}\n", ""},
		{"ports the kernel picks", "smtp: {listen: '127.0.0.1:0'}\nhttp: {listen: '127.0.0.1:0', management_listen: '127.0.0.1:0'}\n", ""},
		{"IPv4 wildcard and IPv6 loopback", "smtp: {listen: '0.0.0.0:8025'}\nhttp: {listen: '[::1]:8025'}\n", ""},
		{"different addresses", "http: {listen: '192.0.2.1:8025', management_listen: '127.0.0.1:8025'}\n", ""},
		{"SMTP and HTTP", "smtp: {listen: '127.0.0.1:8025'}\n", "http.listen: 127.0.0.1:8025 and smtp.listen (127.0.0.1:8025)"},
		{"HTTP and management", "http: {management_listen: '127.0.0.1:8025'}\n", "http.management_listen: 127.0.0.1:8025 and http.listen"},
		{"cluster and SMTP", "cluster: {bind: '127.0.0.1:2525'}\n", "cluster.bind: 127.0.0.1:2525 and smtp.listen"},
		{"every address and loopback", "smtp: {listen: ':8025'}\n", "http.listen: 127.0.0.1:8025 and smtp.listen"},
		{"IPv6 wildcard and IPv4", "smtp: {listen: '[::]:8025'}\n", "http.listen:"},
		{"IPv4 wildcard and loopback", "http: {listen: '0.0.0.0:8026'}\n", "http.management_listen: 127.0.0.1:8026 and http.listen"},
		{"same host name", "smtp: {listen: 'localhost:9000'}\nhttp: {listen: 'localhost:9000'}\n", "http.listen: localhost:9000 and smtp.listen"},
	} {
		t.Run(tt.name, func(t *testing.T) { loadWants(t, tt.yaml, tt.want) })
	}
}

// loadWants loads yaml as a config file and wants it to load (want "")
// or to fail with an error containing want.
func loadWants(t *testing.T, yaml, want string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "c.yaml")
	os.WriteFile(path, []byte(yaml), 0o600)
	_, err := Load(path)
	if want == "" {
		if err != nil {
			t.Fatalf("Load() = %v, want it to load", err)
		}
		return
	}
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("Load() error = %v, want it to contain %q", err, want)
	}
}

func TestMissingFile(t *testing.T) {
	_, err := Load(filepath.Join(t.TempDir(), "absent.yaml"))
	if err == nil || !strings.Contains(err.Error(), "no such file") {
		t.Fatalf("err = %v", err)
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte("smtp:\n  listen: 127.0.0.1:25\ndomains:\n  - {name: a.org, route: 'h:25'}\n"))
	f.Add([]byte("node: {name: x}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg := Default()
		if Parse(data, &cfg) == nil {
			_ = cfg.Validate()
		}
	})
}

// Every check has on_error and timeout; the defaults are what the checks
// did before the keys existed, and set values reach the stages' configs.
func TestCheckStageKeys(t *testing.T) {
	def := Default()
	got := map[string]scanner.StageConfig{
		"auth": def.Auth.StageConfig, "dnsbl": def.DNSBL.StageConfig, "clamd": def.Antivirus.Clamd.StageConfig,
		"builtin": def.Antivirus.Builtin, "model": def.Scanner.Model, "rules": def.Scanner.Rules,
	}
	want := map[string]scanner.StageConfig{
		"auth":    {OnError: scanner.OnErrorAccept, Timeout: 5 * time.Second},
		"dnsbl":   {OnError: scanner.OnErrorAccept, Timeout: 2 * time.Second},
		"clamd":   {OnError: scanner.OnErrorAccept, Timeout: 10 * time.Second},
		"builtin": {OnError: scanner.OnErrorAccept},
		"model":   {OnError: scanner.OnErrorAccept},
		"rules":   {OnError: scanner.OnErrorAccept},
	}
	for name, w := range want {
		if got[name] != w {
			t.Errorf("default %s = %+v, want %+v", name, got[name], w)
		}
	}

	path := filepath.Join(t.TempDir(), "mxgrid.yaml")
	os.WriteFile(path, []byte(`
scanner:
  model: {on_error: tempfail, timeout: 3s}
  rules: {on_error: tempfail}
antivirus:
  on_error: tempfail
  timeout: 7s
  builtin: {on_error: tempfail, timeout: 4s}
auth: {on_error: tempfail, timeout: 6s}
dnsbl: {on_error: tempfail, timeout: 1s}
`), 0o600)
	cfg, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	tf := scanner.OnErrorTempfail
	set := map[string]scanner.StageConfig{
		"auth": cfg.Auth.StageConfig, "dnsbl": cfg.DNSBL.StageConfig, "clamd": cfg.Antivirus.Clamd.StageConfig,
		"builtin": cfg.Antivirus.Builtin, "model": cfg.Scanner.Model, "rules": cfg.Scanner.Rules,
	}
	wantSet := map[string]scanner.StageConfig{
		"auth": {OnError: tf, Timeout: 6 * time.Second}, "dnsbl": {OnError: tf, Timeout: time.Second},
		"clamd": {OnError: tf, Timeout: 7 * time.Second}, "builtin": {OnError: tf, Timeout: 4 * time.Second},
		"model": {OnError: tf, Timeout: 3 * time.Second}, "rules": {OnError: tf},
	}
	for name, w := range wantSet {
		if set[name] != w {
			t.Errorf("%s = %+v, want %+v", name, set[name], w)
		}
	}
}

// TestDocsConfigurationLoads keeps the configuration shown in README.md
// and docs/*.md, and the compose cluster's deploy/config/*.yaml, true,
// since operators copy it. Every block opened with ```yaml, and every
// *.yaml a shell block writes, is a node's file and must load as `mxgrid
// serve --config` loads it (every key known, every value of its type and
// valid). A block opened with ```yaml defaults also claims to show the
// defaults, so each value it sets must be the code's default, unless its
// comment begins with "e.g.". YAML read by other programs is opened with
// ```yaml NAME (```yaml prometheus) and skipped.
func TestDocsConfigurationLoads(t *testing.T) {
	docs, err := filepath.Glob("../docs/*.md")
	if err != nil {
		t.Fatal(err)
	}
	docs = append([]string{"../README.md"}, docs...)
	var nodeBlocks, defaultBlocks int
	for _, path := range docs {
		text, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		for _, b := range yamlBlocks(string(text)) {
			name := fmt.Sprintf("%s:%d", filepath.Base(path), b.line)
			if b.info != "yaml" && b.info != "yaml defaults" {
				continue
			}
			nodeBlocks++
			cfg := Default()
			if err := Parse([]byte(b.body), &cfg); err != nil {
				t.Errorf("%s: %v", name, err)
				continue
			}
			if err := cfg.Validate(); err != nil {
				t.Errorf("%s: %v", name, err)
			}
			if b.info == "yaml defaults" {
				defaultBlocks++
				for _, d := range notDefaults(t, b.body, cfg) {
					t.Errorf("%s: %s", name, d)
				}
			}
		}
	}
	// The compose cluster's node files are examples operators copy too.
	files, err := filepath.Glob("../deploy/config/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("deploy/config/*.yaml: %v, %d files", err, len(files))
	}
	for _, f := range files {
		if _, err := Load(f); err != nil {
			t.Error(err)
		}
	}
	// So that a fence changed by mistake cannot skip the checks: the
	// README's quick start and its reference of two blocks of defaults,
	// docs/cluster.md's and deploy.md's examples, docs/panel.md's defaults,
	// docs/benchmarks.md's here-document.
	if nodeBlocks < 7 || defaultBlocks < 3 {
		t.Fatalf("found %d node configuration blocks (%d of defaults), want at least 7 (3)", nodeBlocks, defaultBlocks)
	}
}

// mdBlock is a fenced code block of a Markdown file.
type mdBlock struct {
	info, body string
	line       int // of the opening fence
}

// yamlBlocks returns the fenced blocks whose info string begins with yaml,
// and, as node configuration, the YAML files a shell block writes with a
// here-document (cat > /tmp/node.yaml <<'EOF' ... EOF).
func yamlBlocks(text string) []mdBlock {
	var out []mdBlock
	var cur, heredoc *mdBlock
	var body, doc strings.Builder
	for i, line := range strings.Split(text, "\n") {
		switch {
		case cur == nil && strings.HasPrefix(line, "```"):
			cur = &mdBlock{info: strings.TrimSpace(strings.TrimPrefix(line, "```")), line: i + 1}
			body.Reset()
		case cur != nil && strings.TrimSpace(line) == "```":
			if cur.info == "yaml" || strings.HasPrefix(cur.info, "yaml ") {
				cur.body = body.String()
				out = append(out, *cur)
			}
			cur = nil
		case heredoc != nil && line == "EOF":
			heredoc.body = doc.String()
			out = append(out, *heredoc)
			heredoc = nil
		case heredoc != nil:
			doc.WriteString(line + "\n")
		case cur != nil && strings.HasPrefix(line, "cat > ") && strings.HasSuffix(line, ".yaml <<'EOF'"):
			heredoc = &mdBlock{info: "yaml", line: i + 1}
			doc.Reset()
		case cur != nil:
			body.WriteString(line + "\n")
		}
	}
	return out
}

// notDefaults lists the keys a defaults block sets to something other than
// the default (both sides compared as YAML, so [] and an absent list agree).
func notDefaults(t *testing.T, block string, cfg Config) []string {
	t.Helper()
	var doc yaml.Node
	if err := yaml.Unmarshal([]byte(block), &doc); err != nil || len(doc.Content) == 0 {
		t.Fatalf("defaults block: %v", err)
	}
	generic := func(c Config) map[string]any {
		out, err := yaml.Marshal(c)
		if err != nil {
			t.Fatal(err)
		}
		var m map[string]any
		if err := yaml.Unmarshal(out, &m); err != nil {
			t.Fatal(err)
		}
		return m
	}
	got, def := generic(cfg), generic(Default())
	var diffs []string
	var walk func(n *yaml.Node, path []string)
	walk = func(n *yaml.Node, path []string) {
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			p := append(path[:len(path):len(path)], k.Value)
			if strings.HasPrefix(k.LineComment, "# e.g.") || strings.HasPrefix(v.LineComment, "# e.g.") {
				continue
			}
			if v.Kind == yaml.MappingNode {
				walk(v, p)
				continue
			}
			if g, d := lookup(got, p), lookup(def, p); !reflect.DeepEqual(g, d) {
				diffs = append(diffs, fmt.Sprintf("%s: %v, the default is %v", strings.Join(p, "."), g, d))
			}
		}
	}
	walk(doc.Content[0], nil)
	return diffs
}

func lookup(m map[string]any, path []string) any {
	var v any = m
	for _, k := range path {
		mm, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = mm[k]
	}
	return v
}

// TestEmptyFileIsDefaults: a file with no settings (empty, comments only,
// a null document, or sections whose keys are all commented out) gives the
// defaults, as no file does.
func TestEmptyFileIsDefaults(t *testing.T) {
	for _, body := range []string{"", "# nothing set yet\n", "~\n", "null\n",
		"quarantine:\n  # max_bytes_per_domain: 2147483648\n", "relay: {cache: ~}\n"} {
		path := filepath.Join(t.TempDir(), "mxgrid.yaml")
		os.WriteFile(path, []byte(body), 0o600)
		cfg, err := Load(path)
		if err != nil {
			t.Errorf("%q: %v", body, err)
			continue
		}
		if !reflect.DeepEqual(cfg, Default()) {
			t.Errorf("%q: not the defaults", body)
		}
	}
}
