package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"runtime"
	"runtime/debug"
)

// version is set at build time with -ldflags "-X main.version=v1.2.3";
// left unset, buildVersion reads the one Go recorded.
var version = "dev"

// buildVersion is the version this binary reports: mxgrid version, and
// the one a node gossips to the cluster page and Prometheus
// (__meta_mxgrid_version).
func buildVersion() string {
	info, _ := debug.ReadBuildInfo()
	return versionOf(version, info)
}

// versionOf is set when -ldflags gave one, else the main module's version
// in info: the tag `go install ...@v1.4.0` built, or the pseudo-version
// `go build` in a checkout writes (commit time and hash, +dirty with
// uncommitted changes). Without it every node built from source read
// "dev" on the cluster page, old and new alike, midway through a rolling
// upgrade.
func versionOf(set string, info *debug.BuildInfo) string {
	if set != "dev" || info == nil {
		return set
	}
	if v := info.Main.Version; v != "" && v != "(devel)" {
		return v
	}
	return set
}

// runVersion takes no flags or arguments, and refuses them as every
// command does: "mxgrid version --json" printed the text line and exited
// 0, which a script reads as the JSON it asked for.
func runVersion(_ context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("mxgrid version", flag.ContinueOnError)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: mxgrid version takes no arguments, got %q", errUsage, fs.Arg(0))
	}
	fmt.Fprintf(stdout, "mxgrid %s (%s, %s/%s)\n", buildVersion(), runtime.Version(), runtime.GOOS, runtime.GOARCH)
	return nil
}
