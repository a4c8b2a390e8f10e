package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"runtime"
)

// version is set at build time with -ldflags "-X main.version=v1.2.3".
var version = "dev"

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
	fmt.Fprintf(stdout, "mxgrid %s (%s, %s/%s)\n", version, runtime.Version(), runtime.GOOS, runtime.GOARCH)
	return nil
}
