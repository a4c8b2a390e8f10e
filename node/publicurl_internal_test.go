package node

import "testing"

func TestLinksInClear(t *testing.T) {
	for _, tt := range []struct {
		url  string
		want bool
	}{
		{"https://filter.example.net", false},
		{"http://filter.example.net", true},
		{"HTTP://filter.example.net:8080/", true},
		{"http://192.0.2.7", true},
		{"http://[2001:db8::7]:8025", true},
		{"http://127.0.0.1:8025", false},
		{"http://[::1]:8025", false},
		{"http://LocalHost:8025", false},
		{"", false},
	} {
		if got := linksInClear(tt.url); got != tt.want {
			t.Errorf("linksInClear(%q) = %v, want %v", tt.url, got, tt.want)
		}
	}
}
