package cluster

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const testKey = "7hD0kqjrD2tmCUmXO4AdJC/I0g9reiS9X1/fUDQGy4Y=" // 32 random bytes
// publishedKey is keycheck's published key: deploy/config/gossip.key once.
const publishedKey = "wFO+Ih3ttZ+Gjy1i346B073bJ6CPdKsA68DZrXMYluM="
const otherTestKey = "OwwwJnM8GOxV6drM4ts0OE6pc/Vqzj2+sOj6bC8PWRQ=" // 32 random bytes too, for rotations

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name    string
		modify  func(*Config)
		wantErr string // substring; "" means valid
	}{
		{"default is valid", func(*Config) {}, ""},
		{"loopback needs no key", func(c *Config) { c.Bind = "127.0.0.1:0" }, ""},
		{"ipv6 loopback needs no key", func(c *Config) { c.Bind = "[::1]:7946" }, ""},
		{"public bind without key", func(c *Config) { c.Bind = "0.0.0.0:7946" },
			"secret_key: required when bind is not loopback (0.0.0.0:7946)"},
		{"public bind with key", func(c *Config) { c.Bind = "0.0.0.0:7946"; c.SecretKey = testKey }, ""},
		{"public bind with key file", func(c *Config) { c.Bind = "10.0.0.1:7946"; c.SecretKeyFile = "/etc/mxgrid/gossip.key" }, ""},
		{"key and key file", func(c *Config) { c.SecretKey = testKey; c.SecretKeyFile = "/k" },
			"secret_key and secret_key_file: set only one"},
		{"key not base64", func(c *Config) { c.SecretKey = "not-base64!" }, "secret_key: not base64"},
		{"key wrong length", func(c *Config) { c.SecretKey = "c2hvcnQ=" }, "secret_key: decodes to 5 bytes, want 16, 24 or 32"},
		{"bind hostname", func(c *Config) { c.Bind = "localhost:7946" }, "bind: \"localhost:7946\": host must be an IP address"},
		{"bind no port", func(c *Config) { c.Bind = "127.0.0.1" }, "bind: \"127.0.0.1\": want ip:port"},
		{"advertise unspecified", func(c *Config) { c.Advertise = "0.0.0.0:7946" }, "advertise: 0.0.0.0:7946 is not an address"},
		{"advertise public", func(c *Config) { c.Advertise = "203.0.113.7:7946" }, ""},
		// memberlist cannot gossip a zone, and the node failed at start
		// with its message, naming no key.
		{"advertise with a zone", func(c *Config) { c.Advertise = "[fe80::1%eth0]:7946" }, "advertise: [fe80::1%eth0]:7946 is not an address other nodes can reach"},
		{"join dns names", func(c *Config) { c.Join = []string{"mx1.example.net:7946", "10.0.0.2:7946"}; c.SecretKey = testKey }, ""},
		{"join without key", func(c *Config) { c.Join = []string{"10.0.0.2:7946"} }, "secret_key: required when join lists nodes"},
		{"join without key on loopback, insecure_no_key", func(c *Config) { c.Join = []string{"127.0.0.1:7947"}; c.InsecureNoKey = true }, ""},
		{"insecure_no_key beyond loopback", func(c *Config) { c.Bind = "0.0.0.0:7946"; c.SecretKey = testKey; c.InsecureNoKey = true },
			"insecure_no_key: only allowed with a loopback bind"},
		{"all-A key beyond loopback", func(c *Config) { c.Bind = "0.0.0.0:7946"; c.SecretKey = strings.Repeat("A", 43) + "=" },
			"secret_key: weak key: only 1 different bytes"},
		{"published demo key beyond loopback", func(c *Config) { c.Bind = "10.0.0.1:7946"; c.SecretKey = publishedKey },
			"secret_key: weak key: this key is published"},
		{"weak key on loopback is tolerated", func(c *Config) { c.SecretKey = strings.Repeat("A", 43) + "=" }, ""},
		{"join without port", func(c *Config) { c.Join = []string{"ok:1", "mx2.example.net"} }, "join[1]: \"mx2.example.net\": want host:port"},
		{"join bad port", func(c *Config) { c.Join = []string{"mx2:http"} }, "join[0]: \"mx2:http\": want host:port: bad port"},
		{"wan profile", func(c *Config) { c.Profile = "wan" }, ""},
		{"unknown profile", func(c *Config) { c.Profile = "local" }, "profile: \"local\": want lan or wan"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := DefaultConfig()
			tt.modify(&c)
			err := c.Validate()
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("Validate() = %v, want nil", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("Validate() = %v, want error containing %q", err, tt.wantErr)
			}
		})
	}
}

func TestConfigKey(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	tests := []struct {
		name    string
		cfg     Config
		wantLen int
		wantErr string
	}{
		{"none", Config{}, 0, ""},
		{"inline", Config{SecretKey: testKey}, 32, ""},
		{"file with newline", Config{SecretKeyFile: write("k", testKey+"\n")}, 32, ""},
		{"missing file", Config{SecretKeyFile: filepath.Join(dir, "nope")}, 0, "secret_key_file: open"},
		{"bad file", Config{SecretKeyFile: write("bad", "abc")}, 0, "secret_key_file: " + filepath.Join(dir, "bad") + ": not base64"},
		{"empty file", Config{SecretKeyFile: write("empty", "\n")}, 0, "secret_key_file: " + filepath.Join(dir, "empty") + ": empty"},
		{"rotation file", Config{SecretKeyFile: write("two", testKey+"\n"+otherTestKey+"\n")}, 32, ""},
		{"rotation inline", Config{SecretKey: testKey + " " + otherTestKey}, 32, ""},
		{"rotation with a bad key", Config{SecretKeyFile: write("badtwo", testKey+"\nabc\n")}, 0, ": key 2: not base64"},
		{"too many keys", Config{SecretKey: strings.Repeat(testKey+" ", maxKeys+1)}, 0, "secret_key: 5 keys, at most 4"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			keys, err := tt.cfg.keys()
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("keys() error = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || (tt.wantLen == 0) != (len(keys) == 0) || len(keys) > 0 && len(keys[0]) != tt.wantLen {
				t.Fatalf("keys() = %d keys, %v; want a first of %d bytes", len(keys), err, tt.wantLen)
			}
		})
	}
}

func TestKeyFileRefusedBeyondLoopback(t *testing.T) {
	dir := t.TempDir()
	weak := filepath.Join(dir, "weak.key")
	if err := os.WriteFile(weak, []byte(publishedKey+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c := Config{Bind: "0.0.0.0:7946", SecretKeyFile: weak}
	if _, err := c.keys(); err == nil || !strings.Contains(err.Error(), "published") {
		t.Errorf("published key file beyond loopback: %v", err)
	}
	c.Bind = "127.0.0.1:7946"
	if _, err := c.keys(); err != nil {
		t.Errorf("on loopback: %v", err)
	}
}
