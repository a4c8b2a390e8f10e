package tracking

import (
	"encoding/base64"
	"testing"
	"time"
)

func TestCursorRoundTrip(t *testing.T) {
	for _, c := range []Cursor{
		{},
		{Time: time.Date(2026, 12, 3, 10, 0, 0, 123456789, time.UTC), ID: 1},
		{Time: time.Unix(1, 0).UTC(), ID: 1<<63 - 1},
	} {
		got, err := ParseCursor(c.String())
		if err != nil || !got.Time.Equal(c.Time) || got.ID != c.ID {
			t.Errorf("ParseCursor(%q) = %+v, %v; want %+v", c.String(), got, err, c)
		}
	}
}

func TestParseCursorRefuses(t *testing.T) {
	for _, s := range []string{
		"x", "c1.", "c1.!!!", "c1.MTIz", // "123": no id
		"c1." + b64("0.1"), "c1." + b64("5.0"), "c1." + b64("5.-1"), "c1." + b64("a.b"),
		"c1." + b64("1.2.3"), "c2." + b64("1.2"),
	} {
		if c, err := ParseCursor(s); err == nil {
			t.Errorf("ParseCursor(%q) = %+v, want an error", s, c)
		}
	}
}

func b64(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }

// FuzzParseCursor: any input is refused or is a cursor that encodes back
// to an input ParseCursor reads as the same cursor.
func FuzzParseCursor(f *testing.F) {
	f.Add("")
	f.Add(Cursor{Time: time.Unix(1700000000, 5), ID: 42}.String())
	f.Add("c1.MTIzLjQ1")
	f.Fuzz(func(t *testing.T, s string) {
		c, err := ParseCursor(s)
		if err != nil {
			return
		}
		again, err := ParseCursor(c.String())
		if err != nil || !again.Time.Equal(c.Time) || again.ID != c.ID {
			t.Fatalf("%q -> %+v -> %q -> %+v, %v", s, c, c.String(), again, err)
		}
	})
}
