package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"

	"github.com/mxgrid/mxgrid/cluster"
)

// runKeygen prints a new gossip key, or with -out writes one to a file that
// does not exist yet: the compose stack's first start makes its key that
// way, and later starts keep it.
func runKeygen(_ context.Context, args []string, stdout io.Writer) error {
	fset := newFlagSet("keygen")
	out := fset.String("out", "", "write the key to this `file` (mode 0600) unless it exists, instead of printing it")
	if err := parseFlags(fset, args); err != nil {
		return err
	}
	if fset.NArg() > 0 {
		return fmt.Errorf("%w: mxgrid keygen [-out file]", errUsage)
	}
	key, err := cluster.NewKey()
	if err != nil {
		return err
	}
	if *out == "" {
		_, err := fmt.Fprintln(stdout, key)
		return err
	}
	f, err := os.OpenFile(*out, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		if fi, serr := os.Stat(*out); serr == nil && !fi.Mode().IsRegular() {
			return fmt.Errorf("%s exists and is not a regular file, so it holds no key", *out)
		}
		fmt.Fprintf(stdout, "%s exists; kept\n", *out)
		return nil
	}
	if err != nil {
		return err
	}
	if _, err := fmt.Fprintln(f, key); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "wrote a new key to %s\n", *out)
	return nil
}
