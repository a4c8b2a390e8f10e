package main

import (
	"context"
	"fmt"
	"io"
	"time"
)

// runMap rebuilds the spam map's rollup from the stored events. Events
// written around the rollup (by nodes of an older version during a
// rolling upgrade, or by a bulk load) are otherwise missing from the map
// until they leave its window.
func runMap(ctx context.Context, args []string, stdout io.Writer) error {
	usage := fmt.Errorf("%w: mxgrid map rebuild [-config FILE]", errUsage)
	if len(args) > 0 && isHelp(args[0]) {
		return printUsage(usage)
	}
	if len(args) == 0 || args[0] != "rebuild" {
		return usage
	}
	fs := newFlagSet("map rebuild")
	path := fs.String("config", "", "YAML configuration `file` (its store section is used)")
	if err := parseFlags(fs, args[1:]); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: mxgrid map rebuild [-config FILE]", errUsage)
	}
	st, err := openStore(*path)
	if err != nil {
		return err
	}
	defer st.Close()
	if err := st.MigrateEvents(ctx); err != nil {
		return err
	}
	start := time.Now()
	if err := st.RebuildMapRollup(ctx); err != nil {
		return err
	}
	n, err := st.CountEvents(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "map rollup rebuilt from %d events in %s\n", n, time.Since(start).Round(time.Millisecond))
	return nil
}
