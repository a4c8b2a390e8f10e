// Package config loads the node's YAML file. Every key has a default, so an
// empty or absent file gives a working loopback node; an unknown key or a
// bad value is an error that names the key, and the node does not start.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"net/netip"
	"net/url"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/mxgrid/mxgrid/clientip"
	"github.com/mxgrid/mxgrid/cluster"
	"github.com/mxgrid/mxgrid/dnsresolver"
	"github.com/mxgrid/mxgrid/events"
	"github.com/mxgrid/mxgrid/fsperm"
	"github.com/mxgrid/mxgrid/geo"
	"github.com/mxgrid/mxgrid/netguard"
	"github.com/mxgrid/mxgrid/notify"
	"github.com/mxgrid/mxgrid/panel"
	"github.com/mxgrid/mxgrid/quarantine"
	"github.com/mxgrid/mxgrid/relay"
	"github.com/mxgrid/mxgrid/scanner"
	"github.com/mxgrid/mxgrid/scanner/antivirus"
	"github.com/mxgrid/mxgrid/scanner/auth"
	"github.com/mxgrid/mxgrid/scanner/dnsbl"
	"github.com/mxgrid/mxgrid/scanner/model"
	"github.com/mxgrid/mxgrid/scanner/rules"
	"github.com/mxgrid/mxgrid/smtpd"
	"github.com/mxgrid/mxgrid/spammap"
	"github.com/mxgrid/mxgrid/store"
	"github.com/mxgrid/mxgrid/tenant"
	"github.com/mxgrid/mxgrid/tracking"
	"github.com/mxgrid/mxgrid/web"
	"gopkg.in/yaml.v3"
)

// Config is the whole file. Each section belongs to the package it
// configures; this struct only gathers them.
type Config struct {
	Node    Node                  `yaml:"node"`
	SMTP    smtpd.Config          `yaml:"smtp"`
	HTTP    HTTP                  `yaml:"http"`
	DataDir string                `yaml:"data_dir"`
	Log     Log                   `yaml:"log"`
	Domains []tenant.StaticDomain `yaml:"domains"`
	Relay   relay.Config          `yaml:"relay"`
	Scanner scanner.Config        `yaml:"scanner"`
	Store   store.Config          `yaml:"store"`
	Cluster cluster.Config        `yaml:"cluster"`
	Map     spammap.Config        `yaml:"map"`
	Geo     geo.Config            `yaml:"geo"`
	Events  events.Config         `yaml:"events"`
	// Tracking is message tracking: one record per recipient outcome.
	Tracking tracking.Config `yaml:"tracking"`
	// Quarantine keeps tag-band mail of domains with tag_action: quarantine.
	Quarantine quarantine.Config `yaml:"quarantine"`
	// Notify sends the quarantine digests through a smarthost.
	Notify  notify.Config     `yaml:"notify"`
	Admin   Admin             `yaml:"admin"`
	Tenants tenant.SyncConfig `yaml:"tenants"`
	Panel   panel.Config      `yaml:"panel"`
	// DNS is the one resolver every DNS-using check shares.
	DNS       dnsresolver.Config `yaml:"dns"`
	Auth      auth.Config        `yaml:"auth"`
	DNSBL     dnsbl.Config       `yaml:"dnsbl"`
	Antivirus antivirus.Config   `yaml:"antivirus"`
}

// Admin configures the admin API.
type Admin struct {
	// OperatorTokenFile holds a bearer token with operator rights that works
	// without the database (so the operator can read the API during an
	// outage). Tokens made with `mxgrid token create` live in the store.
	OperatorTokenFile string `yaml:"operator_token_file"`
}

// Node identifies this node in the cluster, in events and in metrics.
type Node struct {
	Name     string `yaml:"name"`
	Provider string `yaml:"provider"`
	Region   string `yaml:"region"`
}

// HTTP is the public listener (map, panel, API, health) and the
// management listener (metrics, cluster status).
type HTTP struct {
	Listen string `yaml:"listen"`
	// ManagementListen serves /metrics, /cluster and /api/v1/cluster*;
	// loopback by default, as they map the cluster for an attacker.
	ManagementListen string `yaml:"management_listen"`
	// TrustedProxies are the networks whose X-Forwarded-For is believed
	// for the client address (login and API token limits, logs).
	TrustedProxies []string `yaml:"trusted_proxies"`
	// MaxConnections caps each listener's concurrent connections.
	MaxConnections int `yaml:"max_connections"`
	// MaxConnectionsPerIP caps those of one client (an IPv4 address, an
	// IPv6 /64); trusted proxies are exempt.
	MaxConnectionsPerIP int `yaml:"max_connections_per_ip"`
	// Pprof serves Go's profiler at /debug/pprof/ on the management
	// listener: off by default, as a profile shows code paths and memory
	// and costs CPU while it runs.
	Pprof bool `yaml:"pprof"`
	// PublicURL is how senders reach this cluster's public listener
	// (https://filter.example.net): when set, every refusal's reply
	// points at <public_url>/why/<ref>, a page that explains it.
	PublicURL string `yaml:"public_url"`
}

// maxPublicURL keeps the link, quoted in SMTP replies, well inside RFC
// 5321's 512-octet reply line.
const maxPublicURL = 200

// WhyURL is the prefix of the "why was I refused" links, "" when
// public_url is not set.
func (h HTTP) WhyURL() string {
	if h.PublicURL == "" {
		return ""
	}
	return strings.TrimRight(h.PublicURL, "/") + "/why/"
}

// checkPublicURL: an absolute http(s) URL of printable ASCII (it goes into
// SMTP replies verbatim), without query or fragment.
func checkPublicURL(s string) error {
	if s == "" {
		return nil
	}
	if len(s) > maxPublicURL {
		return fmt.Errorf("at most %d characters", maxPublicURL)
	}
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] >= 0x7f {
			return errors.New("printable ASCII only (punycode for international names)")
		}
	}
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return fmt.Errorf("%q is not an absolute http(s) URL without query, fragment or user", s)
	}
	return nil
}

// checkLabel: node.name, provider and region label every event and
// tracking record, gossip and metrics. A NUL made PostgreSQL refuse each
// record the node wrote (SQLSTATE 22021), and other control characters
// reached the API, the panel and the map as they were.
func checkLabel(s string) error {
	if len(s) > 64 {
		return errors.New("at most 64 characters")
	}
	if i := strings.IndexFunc(s, unicode.IsControl); i >= 0 {
		return fmt.Errorf("%q holds a control character", s)
	}
	return nil
}

// Log selects the log format and level.
type Log struct {
	Format string `yaml:"format"` // text or json
	Level  string `yaml:"level"`  // debug, info, warn, error
}

// Default is the configuration of `mxgrid serve` without a file.
func Default() Config {
	smtp := smtpd.DefaultConfig()
	httpLimits := web.DefaultLimits()
	return Config{
		Node: Node{Name: smtp.Hostname, Provider: "local", Region: "local"},
		SMTP: smtp,
		HTTP: HTTP{Listen: "127.0.0.1:8025", ManagementListen: "127.0.0.1:8026",
			MaxConnections: httpLimits.MaxConns, MaxConnectionsPerIP: httpLimits.MaxConnsPerClient},
		DataDir:    "./data",
		Log:        Log{Format: "text", Level: "info"},
		Relay:      relay.DefaultConfig(),
		Scanner:    scanner.DefaultConfig(),
		Store:      store.DefaultConfig(),
		Cluster:    cluster.DefaultConfig(),
		Map:        spammap.DefaultConfig(),
		Geo:        geo.DefaultConfig(),
		Events:     events.DefaultConfig(),
		Tracking:   tracking.DefaultConfig(),
		Quarantine: quarantine.DefaultConfig(),
		Notify:     notify.DefaultConfig(),
		Tenants:    tenant.DefaultSyncConfig(),
		Panel:      panel.DefaultConfig(),

		DNS:       dnsresolver.DefaultConfig(),
		Auth:      auth.DefaultConfig(),
		DNSBL:     dnsbl.DefaultConfig(),
		Antivirus: antivirus.DefaultConfig(),
	}
}

// Load reads path over the defaults. An empty path means defaults only.
func Load(path string) (Config, error) {
	cfg := Default()
	if path == "" {
		return cfg, cfg.Validate()
	}
	data, err := fsperm.ReadLimited(path, maxFileBytes, "a config file")
	if err != nil {
		return cfg, fmt.Errorf("config: %w", err)
	}
	if err := Parse(data, &cfg); err != nil {
		return cfg, fmt.Errorf("config %s: %w", path, err)
	}
	if err := cfg.Validate(); err != nil {
		return cfg, fmt.Errorf("config %s: %w", path, err)
	}
	return cfg, nil
}

// maxFileBytes bounds the file read: a hand-written config is a few
// kilobytes, and a path mistaken for it (--config /dev/zero, a log) was
// read whole, until the node died out of memory; a 100 MB file took 2 GB
// and 11 seconds to refuse.
const maxFileBytes = 4 << 20

// Parse decodes YAML data over cfg, refusing unknown keys with their full
// dotted path (yaml.v3's KnownFields names only the Go type).
func Parse(data []byte, cfg *Config) error {
	var root yaml.Node
	docs := yaml.NewDecoder(bytes.NewReader(data))
	if err := docs.Decode(&root); err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("invalid YAML: %w", err)
	}
	// Decoding reads the first document only: a file of two (a template's
	// output, or files joined with "---") had the second's keys dropped
	// without a word. An empty document after the first is harmless.
	var next yaml.Node
	if err := docs.Decode(&next); err == nil && len(next.Content) > 0 && next.Content[0].Tag != "!!null" {
		return fmt.Errorf("line %d: a second YAML document; the config is one document", next.Content[0].Line)
	} else if err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("invalid YAML: %w", err)
	}
	if len(root.Content) == 0 || root.Content[0].ShortTag() == "!!null" {
		return nil // an empty file, or one of "~": all defaults
	}
	if err := (&keyChecker{}).check(root.Content[0], reflect.TypeOf(*cfg), "", false); err != nil {
		return err
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(cfg); err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("invalid value: %s", decodeError(err))
	}
	return nil
}

// maxAliased bounds the values checked through aliases. An alias is
// checked where it is used, as the type there expects, and an alias bomb
// (a list of aliases of lists of aliases) multiplies with each level.
const maxAliased = 100_000

// maxMappingKeys bounds the keys of any mapping. yaml.v3 compares each key
// of a mapping with every other when it decodes one, into whatever type:
// a 3.4 MB file of 300,000 weights (or of one mapping given for
// smtp.hostname) took over ten minutes to be refused (80,000: 51 s). No
// mapping has more than a few hundred legitimate keys: a section's fields,
// or the symbols of all checks together.
const maxMappingKeys = 1000

// keyChecker walks a YAML node against a type, counting the values it
// checks through aliases.
type keyChecker struct{ aliased int }

// check walks n against t; aliased tells a node reached through an alias.
func (kc *keyChecker) check(n *yaml.Node, t reflect.Type, path string, aliased bool) error {
	if n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null" {
		if !nullable(t) {
			// yaml.v3 leaves such a field as it was: "subject_tag:", meant
			// to turn the tag off, kept the default "[SPAM]" without a word.
			return fmt.Errorf("line %d: %s: no value (leave the key out for its default)", n.Line, path)
		}
		return nil
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if n.Kind == yaml.AliasNode {
		// Unfollowed, an alias of a mapping was refused as "must be a
		// mapping", and one of a scalar skipped the checks here.
		n, aliased = n.Alias, true
	}
	if aliased {
		if kc.aliased++; kc.aliased > maxAliased {
			return fmt.Errorf("line %d: %s: aliases expand to over %d values", n.Line, path, maxAliased)
		}
	}
	if n.Kind == yaml.MappingNode {
		if keys := len(n.Content) / 2; keys > maxMappingKeys {
			what := path
			if what == "" {
				what = "the file"
			}
			return fmt.Errorf("line %d: %s: %d keys, at most %d", n.Line, what, keys, maxMappingKeys)
		}
		if err := checkDuplicates(n, path); err != nil {
			return err
		}
	}
	switch {
	case t.Kind() == reflect.Struct && n.Kind == yaml.MappingNode:
		fields := yamlFields(t)
		for i := 0; i+1 < len(n.Content); i += 2 {
			key := n.Content[i].Value
			ft, ok := fields[key]
			if !ok {
				return fmt.Errorf("line %d: unknown key %q", n.Content[i].Line, join(path, key))
			}
			if err := kc.check(n.Content[i+1], ft, join(path, key), aliased); err != nil {
				return err
			}
		}
	case t.Kind() == reflect.Map && n.Kind == yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			if err := kc.check(n.Content[i+1], t.Elem(), join(path, n.Content[i].Value), aliased); err != nil {
				return err
			}
		}
	case t.Kind() == reflect.Slice && n.Kind == yaml.SequenceNode:
		for i, c := range n.Content {
			if err := kc.check(c, t.Elem(), fmt.Sprintf("%s[%d]", path, i), aliased); err != nil {
				return err
			}
		}
	case t.Kind() == reflect.Struct && n.Kind != yaml.MappingNode && !isScalarStruct(t):
		if path == "" {
			return fmt.Errorf("line %d: the file must be a mapping of sections (smtp:, http:, ...)", n.Line)
		}
		return fmt.Errorf("line %d: %s must be a mapping", n.Line, path)
	case isInteger(t) && n.Kind == yaml.ScalarNode && n.ShortTag() == "!!float":
		// yaml.v3 truncates a float into an integer field: max_recipients:
		// 1.5 loaded as 1. A whole number written as one (1e9) is fine.
		if f, err := strconv.ParseFloat(strings.ReplaceAll(n.Value, "_", ""), 64); err != nil || f != math.Trunc(f) {
			return fmt.Errorf("line %d: %s: %s is not a whole number", n.Line, path, n.Value)
		}
	default:
		// Decoding the whole file names only a line, over two lines of
		// output ("unmarshal errors:\n  line 2: cannot unmarshal !!str
		// `lots` into int"); decoding the value alone lets the error name
		// its key.
		if err := n.Decode(reflect.New(t).Interface()); err != nil {
			return fmt.Errorf("line %d: %s: %s", n.Line, path, decodeError(err))
		}
	}
	return nil
}

// checkDuplicates refuses a key given twice in one mapping: yaml.v3 says
// so only when decoding the whole file, naming the line but not the key's
// path, over two lines of output.
func checkDuplicates(n *yaml.Node, path string) error {
	seen := make(map[string]int, len(n.Content)/2)
	for i := 0; i+1 < len(n.Content); i += 2 {
		k := n.Content[i]
		if first, ok := seen[k.Value]; ok {
			return fmt.Errorf("line %d: %s: given twice (first at line %d)", k.Line, join(path, k.Value), first)
		}
		seen[k.Value] = k.Line
	}
	return nil
}

// decodeError is a yaml.v3 decoding error on one line, without the
// "yaml: " and "line N: " prefixes its caller replaces with its own.
func decodeError(err error) string {
	var te *yaml.TypeError
	if !errors.As(err, &te) {
		return strings.TrimPrefix(err.Error(), "yaml: ")
	}
	msgs := make([]string, len(te.Errors))
	for i, m := range te.Errors {
		if rest, ok := strings.CutPrefix(m, "line "); ok {
			if _, after, ok := strings.Cut(rest, ": "); ok {
				m = after
			}
		}
		msgs[i] = m
	}
	return strings.Join(msgs, "; ")
}

// nullable reports the kinds a null may stand for: an empty list or map,
// an unset pointer (a domain's threshold inherited), and a section all of
// whose keys are left out or commented out, which yaml.v3 leaves at its
// defaults as a missing section.
func nullable(t reflect.Type) bool {
	switch t.Kind() {
	case reflect.Pointer, reflect.Map, reflect.Slice, reflect.Interface:
		return true
	case reflect.Struct:
		return !isScalarStruct(t)
	}
	return false
}

// isInteger reports the integer kinds but time.Duration's, which yaml.v3
// decodes from a string only.
func isInteger(t reflect.Type) bool {
	switch t.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return t != reflect.TypeOf(time.Duration(0))
	}
	return false
}

// isScalarStruct reports struct types that decode from a scalar.
func isScalarStruct(t reflect.Type) bool {
	return t.Implements(reflect.TypeOf((*yaml.Unmarshaler)(nil)).Elem()) ||
		reflect.PointerTo(t).Implements(reflect.TypeOf((*yaml.Unmarshaler)(nil)).Elem())
}

// yamlFields maps YAML keys to field types, flattening ",inline" fields.
func yamlFields(t reflect.Type) map[string]reflect.Type {
	out := make(map[string]reflect.Type)
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		tag := f.Tag.Get("yaml")
		name, opts, _ := strings.Cut(tag, ",")
		if strings.Contains(opts, "inline") {
			for k, v := range yamlFields(f.Type) {
				out[k] = v
			}
			continue
		}
		if name == "-" {
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		out[name] = f.Type
	}
	return out
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// Validate checks every section; the first error names its key.
func (c *Config) Validate() error {
	check := func(section string, err error) error {
		if err != nil {
			return fmt.Errorf("%s.%w", section, err)
		}
		return nil
	}
	if c.Node.Name == "" {
		return errors.New("node.name: must not be empty")
	}
	for _, f := range []struct{ key, v string }{{"node.name", c.Node.Name}, {"node.provider", c.Node.Provider}, {"node.region", c.Node.Region}} {
		if err := checkLabel(f.v); err != nil {
			return fmt.Errorf("%s: %w", f.key, err)
		}
	}
	if err := check("smtp", c.SMTP.Validate()); err != nil {
		return err
	}
	if _, err := netguard.ParseListen(c.HTTP.Listen); err != nil {
		return fmt.Errorf("http.listen: %w", err)
	}
	if _, err := netguard.ParseListen(c.HTTP.ManagementListen); err != nil {
		return fmt.Errorf("http.management_listen: %w", err)
	}
	if _, err := clientip.ParseTrusted(c.HTTP.TrustedProxies); err != nil {
		return fmt.Errorf("http.trusted_proxies%w", err)
	}
	if c.HTTP.MaxConnections < 1 {
		return errors.New("http.max_connections: must be at least 1")
	}
	if c.HTTP.MaxConnectionsPerIP < 1 {
		return errors.New("http.max_connections_per_ip: must be at least 1")
	}
	if err := checkPublicURL(c.HTTP.PublicURL); err != nil {
		return fmt.Errorf("http.public_url: %w", err)
	}
	if c.DataDir == "" {
		return errors.New("data_dir: must not be empty")
	}
	if err := c.checkPaths(); err != nil {
		return err
	}
	switch c.Log.Format {
	case "text", "json":
	default:
		return fmt.Errorf("log.format: %q is not text or json", c.Log.Format)
	}
	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		return fmt.Errorf("log.level: %q is not debug, info, warn or error", c.Log.Level)
	}
	if _, err := c.StaticDomains(); err != nil {
		return err
	}
	if err := check("relay", c.Relay.Validate()); err != nil {
		return err
	}
	if err := check("scanner", c.Scanner.Validate()); err != nil {
		return err
	}
	for _, w := range c.weightsSections() {
		if err := check(w.section, w.check()); err != nil {
			return err
		}
	}
	if err := check("store", c.Store.Validate()); err != nil {
		return err
	}
	if err := check("cluster", c.Cluster.Validate()); err != nil {
		return err
	}
	// As tenants.reserved_domains: the ownership check skips a name it
	// cannot normalise, and a domain whose MX names only such a host is
	// never proven.
	for i, h := range c.Cluster.MXHosts {
		if _, err := tenant.NormalizeDomain(h); err != nil {
			return fmt.Errorf("cluster.mx_hosts[%d]: %w", i, err)
		}
	}
	if err := check("geo", c.Geo.Validate()); err != nil {
		return err
	}
	if err := check("quarantine", c.Quarantine.Validate()); err != nil {
		return err
	}
	if err := check("notify", c.Notify.Validate()); err != nil {
		return err
	}
	if c.Notify.Smarthost != "" && c.HTTP.PublicURL == "" {
		return errors.New("notify.smarthost: digests need http.public_url, where their release links point")
	}
	if err := check("tracking", c.Tracking.Validate()); err != nil {
		return err
	}
	if err := check("events", c.Events.Validate()); err != nil {
		return err
	}
	if err := check("tenants", c.Tenants.Validate()); err != nil {
		return err
	}
	if err := check("panel", c.Panel.Validate()); err != nil {
		return err
	}
	if err := check("dns", c.DNS.Validate()); err != nil {
		return err
	}
	if err := check("auth", c.Auth.Validate()); err != nil {
		return err
	}
	if err := check("dnsbl", c.DNSBL.Validate()); err != nil {
		return err
	}
	if err := check("antivirus", c.Antivirus.Validate()); err != nil {
		return err
	}
	if err := check("map", c.Map.Validate()); err != nil {
		return err
	}
	if err := c.checkFinalReply(); err != nil {
		return err
	}
	return c.checkListeners()
}

// senderFinalReplyWait is how long a sender waits for the reply to its
// final dot (RFC 5321 §4.5.3.2.6).
const senderFinalReplyWait = 10 * time.Minute

// checkFinalReply refuses timeouts whose chain after the sender's final
// dot (room in the memory budget, the scan, the downstream DATA command,
// the body and its final reply) outlasts the sender's wait: it gives up
// and sends again while the customer's server may still take the first
// copy, so the customer gets it twice. Each section's own check passed
// relay.data_timeout: 15m, or a scanner.timeout of 10m.
func (c *Config) checkFinalReply() error {
	chain := []struct {
		key string
		d   time.Duration
	}{
		{"smtp.spool_wait", c.SMTP.SpoolWait}, {"scanner.timeout", c.Scanner.Timeout},
		{"relay.command_timeout", c.Relay.CommandTimeout}, {"relay.data_timeout", c.Relay.DataTimeout},
	}
	var total time.Duration
	over := false
	keys, values := make([]string, len(chain)), make([]string, len(chain))
	for i, l := range chain {
		keys[i], values[i] = l.key, l.d.String()
		// Compared by subtraction: a sum of durations near int64's
		// limit wraps negative and would pass.
		over = over || l.d > senderFinalReplyWait-total
		total += l.d
	}
	if over {
		return fmt.Errorf("%s: %s outlast the %s a sender waits for the reply to its message (RFC 5321 §4.5.3.2.6): it would send the message again while the customer's server may take it",
			strings.Join(keys, " + "), strings.Join(values, " + "), senderFinalReplyWait)
	}
	return nil
}

// checkPaths refuses a path starting with "~": no shell reads this file,
// so it is not expanded, and data_dir: ~/mxgrid made the node keep its
// database, snapshot and keys in a directory named "~" under whatever its
// working directory was, without a word.
func (c *Config) checkPaths() error {
	for _, p := range []struct{ key, v string }{
		{"data_dir", c.DataDir},
		{"smtp.tls_cert", c.SMTP.TLSCert}, {"smtp.tls_key", c.SMTP.TLSKey},
		{"scanner.model_file", c.Scanner.ModelFile},
		{"geo.database", c.Geo.Database}, {"geo.asn_database", c.Geo.ASNDatabase},
		{"antivirus.hash_blocklist", c.Antivirus.HashBlocklist},
		{"admin.operator_token_file", c.Admin.OperatorTokenFile},
		{"cluster.secret_key_file", c.Cluster.SecretKeyFile},
		{"panel.session_key_file", c.Panel.SessionKeyFile},
		{"notify.password_file", c.Notify.PasswordFile},
	} {
		if strings.HasPrefix(p.v, "~") {
			return fmt.Errorf("%s: %q: ~ is not expanded here; give the full path", p.key, p.v)
		}
	}
	return nil
}

// checkListeners refuses two listeners on one address. Each section's own
// check passes them, and the second bind failed only after the store,
// tenants and scanner were built, naming the address but not the keys
// ("http listen 127.0.0.1:8025" for http.management_listen too).
func (c *Config) checkListeners() error {
	type listener struct {
		key string
		t   netguard.Target
	}
	var ls []listener
	for _, l := range []struct{ key, addr string }{
		{"smtp.listen", c.SMTP.Listen}, {"http.listen", c.HTTP.Listen},
		{"http.management_listen", c.HTTP.ManagementListen}, {"cluster.bind", c.Cluster.Bind},
	} {
		t, err := netguard.ParseListen(l.addr)
		if err != nil || t.Port == 0 {
			continue // a port the kernel picks never clashes; errors are the sections'
		}
		for _, o := range ls {
			if o.t.Port == t.Port && sameListenAddr(o.t, t) {
				return fmt.Errorf("%s: %s and %s (%s) cannot both listen there", l.key, l.addr, o.key, o.t)
			}
		}
		ls = append(ls, listener{l.key, t})
	}
	return nil
}

// sameListenAddr reports addresses whose binds at one port clash: equal
// ones, every address ("" or ::, dual-stack in Go) with any, 0.0.0.0 with
// any IPv4 address. A host name may resolve to anything: only the same
// name is known to clash.
func sameListenAddr(a, b netguard.Target) bool {
	all := func(t netguard.Target) bool {
		return t.Host == "" && (!t.IP.IsValid() || t.IP == netip.IPv6Unspecified())
	}
	any4 := func(t netguard.Target) bool { return t.IP == netip.IPv4Unspecified() }
	v4 := func(t netguard.Target) bool { return t.IP.Unmap().Is4() }
	switch {
	case all(a) || all(b):
		return true
	case any4(a) && v4(b), any4(b) && v4(a):
		return true
	case a.IP.IsValid() && b.IP.IsValid():
		return a.IP.Unmap() == b.IP.Unmap()
	}
	return a.Host != "" && a.Host == b.Host
}

// weightsSection is one section's weights key and the symbols it sets.
type weightsSection struct {
	section string
	weights map[string]float64
	owners  []scanner.SymbolOwner
	own     int // the index in owners of the section's own symbols
}

// weightsSections are the weights keys with the symbols each sets:
// scanner.weights the MIME parser's, the model's and the rules'
// (node/pipeline.go hands it to those three), auth.weights and
// antivirus.weights their checks'. A name one key refuses because another
// key sets it is named with that key, and a configured blocklist's symbol
// with its zone, whose weights are set per return code.
func (c *Config) weightsSections() []weightsSection {
	content := scanner.ParserWeights()
	maps.Copy(content, model.DefaultWeights())
	maps.Copy(content, rules.DefaultWeights())
	owners := []scanner.SymbolOwner{
		{Kind: "a content", Key: "scanner.weights", Weights: content},
		{Kind: "an auth", Key: "auth.weights", Weights: auth.Weights()},
		{Kind: "an antivirus", Key: "antivirus.weights", Weights: antivirus.Weights()},
		{Kind: "a DNS blocklist", Key: "its dnsbl zone's weights (per return code)", Weights: c.DNSBL.Symbols()},
	}
	return []weightsSection{
		{"scanner", c.Scanner.Weights, owners, 0},
		{"auth", c.Auth.Weights, owners, 1},
		{"antivirus", c.Antivirus.Weights, owners, 2},
	}
}

func (w weightsSection) check() error {
	others := append(slices.Clone(w.owners[:w.own]), w.owners[w.own+1:]...)
	return scanner.ValidateWeights(w.weights, w.owners[w.own].Weights, others...)
}

// StaticDomains builds the `domains:` list; errors name the entry and key.
func (c *Config) StaticDomains() ([]*tenant.Domain, error) {
	out := make([]*tenant.Domain, 0, len(c.Domains))
	seen := make(map[string]bool)
	for i, sd := range c.Domains {
		d, err := sd.Build()
		if err != nil {
			return nil, fmt.Errorf("domains[%d].%w", i, err)
		}
		if seen[d.Name] {
			return nil, fmt.Errorf("domains[%d].name: %s is listed twice", i, d.Name)
		}
		// A domain that sets one threshold takes the other from scanner:
		// (smtpd's policy). Build checks the pair only when both are set,
		// so tag_score: 15 under the default reject_score of 10 loaded and
		// refused everything from 10 up, tagging nothing.
		tag, reject := c.Scanner.TagScore, c.Scanner.RejectScore
		if sd.TagScore != nil {
			tag = *sd.TagScore
		}
		if sd.RejectScore != nil {
			reject = *sd.RejectScore
		}
		switch {
		case reject >= tag:
		case sd.RejectScore == nil:
			return nil, fmt.Errorf("domains[%d].tag_score: %v is above scanner.reject_score (%v), which the domain takes: set its reject_score too", i, tag, reject)
		default:
			return nil, fmt.Errorf("domains[%d].reject_score: %v is below scanner.tag_score (%v), which the domain takes: set its tag_score too", i, reject, tag)
		}
		seen[d.Name] = true
		out = append(out, d)
	}
	return out, nil
}

// AuthServID is the name we sign Authentication-Results with (RFC 8601
// §2.5): auth.authserv_id, or the SMTP hostname.
func (c *Config) AuthServID() string {
	if c.Auth.AuthservID != "" {
		return c.Auth.AuthservID
	}
	return c.SMTP.Hostname
}
