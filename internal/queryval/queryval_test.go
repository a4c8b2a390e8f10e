package queryval

import (
	"net/url"
	"testing"
)

func TestPositiveInt(t *testing.T) {
	for _, tt := range []struct {
		raw     string
		want    int64
		wantErr bool
	}{
		{"", 0, false},
		{"id=7", 7, false},
		{"id=9223372036854775807", 9223372036854775807, false},
		{"id=0", 0, true},
		{"id=-3", 0, true},
		{"id=7x", 0, true},
		{"id=9223372036854775808", 0, true},
	} {
		q, _ := url.ParseQuery(tt.raw)
		errs := map[string]string{}
		got := PositiveInt(q, "id", errs)
		if got != tt.want || (errs["id"] != "") != tt.wantErr {
			t.Errorf("%q: %d, %v; want %d, error %v", tt.raw, got, errs, tt.want, tt.wantErr)
		}
	}
}
