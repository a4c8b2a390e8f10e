package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"unicode"

	"github.com/mxgrid/mxgrid/config"
)

// TestTableShowsOnlyVisibleText: text a sender wrote (a subject, a quoted
// sender) reaches the table as visible characters, one row per item. An
// ESC in a quarantined message's subject used to reach the terminal of
// whoever ran `mxgrid quarantine list` (colours, the window title, OSC 52
// clipboard writes), and a CR or LF faked a row of its own.
func TestTableShowsOnlyVisibleText(t *testing.T) {
	cols := []column{{header: "ID", key: "id"}, {header: "SUBJECT", key: "subject"}}
	for _, tt := range []struct{ name, subject, want string }{
		{"plain", "Invoice 7", "Invoice 7"},
		{"quotes and backslashes of plain text", `a "b" \c`, `a "b" \c`},
		{"ANSI colour", "\x1b[31mRED\x1b[0m", `\x1b[31mRED\x1b[0m`},
		{"window title and bell", "\x1b]0;pwned\a", `\x1b]0;pwned\a`},
		{"a row of its own", "hi\r\n7   held   forged", `hi\r\n7   held   forged`},
		{"backspaces", "safe\b\b\b\bevil", `safe\b\b\b\bevil`},
		{"tab", "a\tb", `a\tb`},
		{"C1 control", "a\u009bb", `a\u009bb`},
		{"right-to-left override", "abc\u202efdp.exe", `abc\u202efdp.exe`},
		{"letters of any script", "Rechnung für März ✓", "Rechnung für März ✓"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			item, err := json.Marshal(map[string]any{"id": 7, "subject": tt.subject})
			if err != nil {
				t.Fatal(err)
			}
			var out bytes.Buffer
			if err := printItems(&out, false, cols, []json.RawMessage{item}); err != nil {
				t.Fatal(err)
			}
			lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
			if len(lines) != 2 {
				t.Fatalf("%d lines, want a header and one row:\n%s", len(lines), out.String())
			}
			row := lines[1]
			if strings.ContainsFunc(row, func(r rune) bool { return !unicode.IsGraphic(r) && r != ' ' }) {
				t.Errorf("row %q holds an invisible character", row)
			}
			if got := strings.TrimSpace(strings.TrimPrefix(row, "7")); got != tt.want {
				t.Errorf("subject shown as %q, want %q", got, tt.want)
			}
		})
	}
}

// TestJSONLogShowsOnlyVisibleText: log values quote senders (a HELO name,
// an address, a subject). The JSON log escaped the C0 controls but wrote
// DEL, the C1 controls and the bidi overrides raw, for a terminal tailing
// the log or a log viewer to act on. Each record stays one JSON object
// whose values decode to what was logged.
func TestJSONLogShowsOnlyVisibleText(t *testing.T) {
	for _, value := range []string{
		"mail.example.com",
		"a\x7fb",
		"a\u009b2Jb",
		"abc\u202efdp.exe",
		"\u2066isolate\u2069",
		"Rechnung für März ✓",
		"\U0001F600 and \x1b[31m",
	} {
		var out bytes.Buffer
		newLogger(config.Log{Level: "info", Format: "json"}, &out).Info("session", "helo", value)
		line := strings.TrimSuffix(out.String(), "\n")
		if strings.Contains(line, "\n") {
			t.Fatalf("%q logged on more than one line: %q", value, line)
		}
		if strings.ContainsFunc(line, func(r rune) bool { return !unicode.IsGraphic(r) }) {
			t.Errorf("%q logged with an invisible character: %q", value, line)
		}
		var rec struct{ Helo string }
		if err := json.Unmarshal([]byte(line), &rec); err != nil || rec.Helo != value {
			t.Errorf("%q logged as %q: decodes to %q, %v", value, line, rec.Helo, err)
		}
	}
}

// TestTableCellsButTheLastAreOneField: a blank of any kind in a cell
// before the last (a sender's quoted local part) is spelled out, so the
// columns after it stay where scripts read them; the last keeps its own.
func TestTableCellsButTheLastAreOneField(t *testing.T) {
	cols := []column{{header: "SENDER", key: "sender"}, {header: "SCORE", key: "score"}, {header: "SUBJECT", key: "subject"}}
	for _, tt := range []struct{ name, sender, want string }{
		{"plain address", "a@b.example", "a@b.example"},
		{"spaces", `"x 1 0.10"@b.example`, `"x\x201\x200.10"@b.example`},
		{"no-break and ideographic spaces", "\"x\u00a01\u30000.10\"@b.example", `"x\u00a01\u30000.10"@b.example`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			item, err := json.Marshal(map[string]any{"sender": tt.sender, "score": 8.5, "subject": "Invoice 7 now"})
			if err != nil {
				t.Fatal(err)
			}
			var out bytes.Buffer
			if err := printItems(&out, false, cols, []json.RawMessage{item}); err != nil {
				t.Fatal(err)
			}
			row := strings.Fields(strings.Split(out.String(), "\n")[1])
			if want := []string{tt.want, "8.5", "Invoice", "7", "now"}; strings.Join(row, "|") != strings.Join(want, "|") {
				t.Errorf("row fields %q, want %q", row, want)
			}
		})
	}
}
