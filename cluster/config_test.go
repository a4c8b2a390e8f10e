package cluster

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const testKey = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=" // 32 bytes

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
		{"key not base64", func(c *Config) { c.SecretKey = "not base64!" }, "secret_key: not base64"},
		{"key wrong length", func(c *Config) { c.SecretKey = "c2hvcnQ=" }, "secret_key: decodes to 5 bytes, want 16, 24 or 32"},
		{"bind hostname", func(c *Config) { c.Bind = "localhost:7946" }, "bind: \"localhost:7946\": host must be an IP address"},
		{"bind no port", func(c *Config) { c.Bind = "127.0.0.1" }, "bind: \"127.0.0.1\": want ip:port"},
		{"advertise unspecified", func(c *Config) { c.Advertise = "0.0.0.0:7946" }, "advertise: 0.0.0.0:7946 is not an address"},
		{"advertise public", func(c *Config) { c.Advertise = "203.0.113.7:7946" }, ""},
		{"join dns names", func(c *Config) { c.Join = []string{"mx1.example.net:7946", "10.0.0.2:7946"} }, ""},
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
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k, err := tt.cfg.key()
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("key() error = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || len(k) != tt.wantLen {
				t.Fatalf("key() = %d bytes, %v; want %d bytes", len(k), err, tt.wantLen)
			}
		})
	}
}
