package scanner

import (
	"bytes"
	"testing"
)

// textFilesCase is one text and the files a decoder of files embedded in
// text (uuencode, yEnc) must find in it within budget bytes.
type textFilesCase struct {
	name   string
	text   string
	budget int
	want   []embeddedFile
}

func testTextFiles(t *testing.T, decode func([]byte, int) []embeddedFile, tests []textFilesCase) {
	t.Helper()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := decode([]byte(tt.text), tt.budget)
			if len(got) != len(tt.want) {
				t.Fatalf("got %d files, want %d", len(got), len(tt.want))
			}
			for i := range got {
				if got[i].name != tt.want[i].name || !bytes.Equal(got[i].data, tt.want[i].data) {
					t.Errorf("file %d: %q %x, want %q %x", i, got[i].name, got[i].data, tt.want[i].name, tt.want[i].data)
				}
			}
		})
	}
}

// fuzzTextFiles: any text decodes within the budget, never more files
// than the bound and the one that tells there are more, and what encode
// wrote round-trips.
func fuzzTextFiles(f *testing.F, decode func([]byte, int) []embeddedFile, encode func(name string, data []byte) string) {
	f.Fuzz(func(t *testing.T, text, payload []byte, budget int) {
		budget = 1 + (budget%4096+4096)%4096
		total := 0
		files := decode(text, budget)
		for _, file := range files {
			total += len(file.data)
		}
		if total > budget || len(files) > maxTextFiles+1 {
			t.Fatalf("%d files, %d bytes from a budget of %d", len(files), total, budget)
		}
		if got := decode([]byte(encode("f.bin", payload)), len(payload)+1); len(payload) > 0 && (len(got) != 1 || !bytes.Equal(got[0].data, payload)) {
			t.Fatalf("round trip of %x: %+v", payload, got)
		}
	})
}
