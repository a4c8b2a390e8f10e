package notify

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestNewReadsThePasswordFile: the smarthost password is read at each
// send, but a missing or empty file used to pass the start and fail every
// digest; New now refuses it, naming the key.
func TestNewReadsThePasswordFile(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good")
	os.WriteFile(good, []byte("s3cret\n"), 0o600)
	empty := filepath.Join(dir, "empty")
	os.WriteFile(empty, []byte(" \n"), 0o600)
	for _, tt := range []struct {
		name, file string
		wantErr    bool
	}{
		{"readable", good, false},
		{"missing", filepath.Join(dir, "absent"), true},
		{"empty", empty, true},
		{"a directory", dir, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cfg := DefaultConfig()
			cfg.Smarthost, cfg.Username, cfg.PasswordFile = "smtp.example.org:587", "digests", tt.file
			_, err := New(cfg, Options{Hostname: "mx.test", Domains: domains{}})
			if got := err != nil && strings.Contains(err.Error(), "notify.password_file"); got != tt.wantErr {
				t.Fatalf("New() = %v; want a notify.password_file error: %v", err, tt.wantErr)
			}
		})
	}
}
