package admin

import (
	"bytes"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestReadTokenFile: the operator token file holds the token alone; what
// surrounds it (the trailing newline an editor or echo adds) is ignored,
// but whitespace or a control character inside the token, which no
// request could present, is refused when the file is read, with an error
// naming the file and the character and never showing the token.
func TestReadTokenFile(t *testing.T) {
	const tok = "9f2c41d07be35a8e6c10f4b92d7a3e58"
	const half = "9f2c41d07be35a8e"
	tests := []struct {
		name, content string
		want          string // substring of the error, "" for none
	}{
		{"bare", tok, ""},
		{"trailing newline", tok + "\n", ""},
		{"trailing newlines", tok + "\n\n\n", ""},
		{"CRLF", tok + "\r\n", ""},
		{"surrounding blanks", "  " + tok + " \t\n", ""},
		{"newline inside", half + "\n" + half + "\n", "a line break (U+000A) at byte 16"},
		{"CR inside", half + "\r" + half, "a line break (U+000D)"},
		{"two tokens", tok + "\n" + tok + "\n", "a line break"},
		{"space inside", half + " " + half, "whitespace (U+0020)"},
		{"tab inside", half + "\t" + half, "whitespace (U+0009)"},
		{"no-break space inside", half + "\u00a0" + half, "whitespace (U+00A0)"},
		{"NUL inside", half + "\x00" + half, "a control character (U+0000)"},
		{"escape inside", half + "\x1b" + half, "a control character (U+001B)"},
		{"DEL inside", half + "\x7f" + half, "a control character (U+007F)"},
		{"short", "0123456789\n", "holds 10 characters"},
		{"one character", strings.Repeat("a", 40) + "\n", "weak key: only 1 different characters in 40"},
		{"a word repeated", strings.Repeat("operators-", 4), "weak key: repeats every 10 characters"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "operator.token")
			if err := os.WriteFile(path, []byte(tt.content), 0o600); err != nil {
				t.Fatal(err)
			}
			got, err := ReadTokenFile(path, nil)
			if tt.want == "" {
				if err != nil || got != strings.TrimSpace(tt.content) {
					t.Fatalf("ReadTokenFile = %q, %v; want the token", got, err)
				}
				return
			}
			if err == nil {
				t.Fatalf("ReadTokenFile = %q; want an error holding %q", got, tt.want)
			}
			if msg := err.Error(); !strings.Contains(msg, tt.want) || !strings.Contains(msg, path) || strings.Contains(msg, half) {
				t.Fatalf("error %q: want it to name %s and hold %q, without the token", msg, path, tt.want)
			}
		})
	}
	if got, err := ReadTokenFile("", nil); got != "" || err != nil {
		t.Fatalf("no file: %q, %v", got, err)
	}
	if _, err := ReadTokenFile(filepath.Join(t.TempDir(), "missing"), nil); err == nil || !strings.Contains(err.Error(), "admin.operator_token_file") {
		t.Fatalf("missing file: %v", err)
	}
}

// TestReadTokenFileWarnsOfItsMode: whoever can read the file has operator
// rights, so a file group or others may read is logged, as the cluster's
// key file is; it was read without a word.
func TestReadTokenFileWarnsOfItsMode(t *testing.T) {
	for _, tt := range []struct {
		mode os.FileMode
		warn bool
	}{
		{0o600, false},
		{0o400, false},
		{0o640, true},
		{0o644, true},
		{0o604, true},
	} {
		t.Run(tt.mode.String(), func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "operator.token")
			if err := os.WriteFile(path, []byte("9f2c41d07be35a8e6c10f4b92d7a3e58\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(path, tt.mode); err != nil {
				t.Fatal(err)
			}
			var logged bytes.Buffer
			if _, err := ReadTokenFile(path, slog.New(slog.NewTextHandler(&logged, nil))); err != nil {
				t.Fatal(err)
			}
			if got := strings.Contains(logged.String(), "readable by group or others"); got != tt.warn {
				t.Fatalf("mode %v: warned %v, want %v (log: %q)", tt.mode, got, tt.warn, logged.String())
			}
		})
	}
}
