package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mxgrid/mxgrid/cluster"
	"github.com/mxgrid/mxgrid/internal/keycheck"
)

func TestKeygen(t *testing.T) {
	seen := map[string]bool{}
	for range 3 {
		var out bytes.Buffer
		if err := runKeygen(context.Background(), nil, &out); err != nil {
			t.Fatal(err)
		}
		key := strings.TrimSpace(out.String())
		raw, err := base64.StdEncoding.DecodeString(key)
		if err != nil || len(raw) != 32 {
			t.Fatalf("keygen printed %q: not base64 of 32 bytes (%v)", key, err)
		}
		if err := keycheck.KeyProblem(raw); err != nil {
			t.Errorf("a generated key is refused: %v", err)
		}
		if seen[key] {
			t.Errorf("keygen repeated %s", key)
		}
		seen[key] = true
	}

	t.Run("out writes once, private", func(t *testing.T) {
		p := filepath.Join(t.TempDir(), "gossip.key")
		var out bytes.Buffer
		if err := runKeygen(context.Background(), []string{"-out", p}, &out); err != nil {
			t.Fatal(err)
		}
		first, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		fi, _ := os.Stat(p)
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("key file mode %v, want 0600", fi.Mode().Perm())
		}
		if err := runKeygen(context.Background(), []string{"-out", p}, &out); err != nil {
			t.Fatal(err)
		}
		again, _ := os.ReadFile(p)
		if !bytes.Equal(first, again) {
			t.Error("a second keygen -out replaced the existing key")
		}
		c := cluster.Config{Bind: "0.0.0.0:7946", SecretKeyFile: p}
		if err := c.Validate(); err != nil {
			t.Errorf("config with the generated file: %v", err)
		}
	})
	// A bind mount of a host path that did not exist makes a directory
	// there: "exists; kept" and exit 0 left the node to fail at start.
	t.Run("out refuses a directory", func(t *testing.T) {
		p := t.TempDir()
		var out bytes.Buffer
		err := runKeygen(context.Background(), []string{"-out", p}, &out)
		if err == nil || !strings.Contains(err.Error(), "not a regular file") {
			t.Fatalf("keygen -out DIR: %v (%q), want an error saying it is not a regular file", err, out.String())
		}
	})
}
