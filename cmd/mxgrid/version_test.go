package main

import (
	"runtime/debug"
	"testing"
)

// TestVersionOfReadsTheBuild: a node gossips its version to the cluster
// page, where an operator follows a rolling upgrade. Built without
// -ldflags, every node read "dev", old and new alike; the module version
// Go records (a tag, or a pseudo-version naming the commit) tells them
// apart.
func TestVersionOfReadsTheBuild(t *testing.T) {
	info := func(v string) *debug.BuildInfo {
		return &debug.BuildInfo{Main: debug.Module{Path: "github.com/mxgrid/mxgrid", Version: v}}
	}
	for _, tc := range []struct {
		name string
		set  string
		info *debug.BuildInfo
		want string
	}{
		{"ldflags win", "v1.2.3", info("v0.0.0-20261207184417-a04545938f18"), "v1.2.3"},
		{"go install at a tag", "dev", info("v1.4.0"), "v1.4.0"},
		{"go build in a checkout", "dev", info("v0.0.0-20261207184417-a04545938f18+dirty"), "v0.0.0-20261207184417-a04545938f18+dirty"},
		{"no VCS information", "dev", info("(devel)"), "dev"},
		{"empty module version", "dev", info(""), "dev"},
		{"no build information", "dev", nil, "dev"},
	} {
		if got := versionOf(tc.set, tc.info); got != tc.want {
			t.Errorf("%s: versionOf(%q) = %q, want %q", tc.name, tc.set, got, tc.want)
		}
	}
}
