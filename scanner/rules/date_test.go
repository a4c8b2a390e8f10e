package rules

import (
	"net/mail"
	"testing"
)

var dateSeeds = []string{
	"Tue, 27 Aug 2002 13:41:46 -1600", "Tue, 27 Aug 2002 13:41:46 -2500", "Tue, 27 Aug 2002 13:41:46 +0060",
	"27 Aug 2002 13:41 +0200", "Tue, 27 Aug 02 13:41:46 +0200", "Tue, 27 Aug 2002 13:41:46 GMT",
	"Tue, 27 Aug 2002 13:41:46 +0200 (CEST)", "Tue,  7 Aug 2002 13:41:46 EST", "Wed, 31 Feb 2002 13:41:46 +0000",
	"Tue, 27 Aug 2002 25:41:46 +0000", "Xyz, 27 Aug 2002 13:41:46 +0000", "  Mon, 2 Dec 2026 09:00:00 -0000  ",
	"Mon, 2 Dec 2026 09:00:00 +0000 (UTC) trailing", "Mon,2 Dec 2026 09:00:00 +0000", "",
}

// TestParseDateAgreesWithNetMail: the hand-written path gives what
// net/mail gives, for every date it accepts.
func TestParseDateAgreesWithNetMail(t *testing.T) {
	for _, s := range dateSeeds {
		checkDateAgrees(t, s)
	}
	if _, _, ok := parseCommonDate("Tue, 27 Aug 2002 13:41:46 +0200 (CEST)"); !ok {
		t.Error("the common shape was not read by hand")
	}
}

func checkDateAgrees(t *testing.T, s string) {
	got, off, ok := parseCommonDate(s)
	if !ok {
		return
	}
	want, err := mail.ParseDate(s)
	if err != nil {
		t.Fatalf("%q: read by hand as %v, net/mail refuses it: %v", s, got, err)
	}
	if _, wantOff := want.Zone(); !got.Equal(want) || off != wantOff {
		t.Fatalf("%q: by hand %v offset %d, net/mail %v offset %d", s, got, off, want, wantOff)
	}
}

func FuzzParseDate(f *testing.F) {
	for _, s := range dateSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) { checkDateAgrees(t, s) })
}
