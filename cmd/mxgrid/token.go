package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/mxgrid/mxgrid/admin"
	"github.com/mxgrid/mxgrid/config"
	"github.com/mxgrid/mxgrid/store"
	"github.com/mxgrid/mxgrid/tenant"
)

// openStore opens the store the configuration at path names.
func openStore(path string) (*store.Store, error) {
	cfg, err := config.Load(path)
	if err != nil {
		return nil, err
	}
	return store.Open(cfg.Store, cfg.DataDir)
}

// runToken creates admin API tokens straight in the store, which is how
// the first operator token comes to exist (the API needs a token already).
func runToken(ctx context.Context, args []string, stdout io.Writer) error {
	usage := fmt.Errorf("%w: mxgrid token create [-config file] (-operator | -reseller ID) [-name NAME] [-expires-in DURATION]", errUsage)
	if len(args) > 0 && isHelp(args[0]) {
		return printUsage(usage)
	}
	if len(args) == 0 || args[0] != "create" {
		return usage
	}
	fs := newFlagSet("token create")
	path := fs.String("config", "", "YAML configuration `file` (its store section is used)")
	operator := fs.Bool("operator", false, "create an operator token (sees and changes everything)")
	reseller := fs.Int64("reseller", 0, "create a token scoped to this reseller `id`")
	name := fs.String("name", "cli", "a `name` for the token, shown in lists and the audit log")
	expiresIn := fs.Duration("expires-in", 0, "the token stops working after this `duration` (e.g. 720h); 0: never")
	if err := parseFlags(fs, args[1:]); err != nil {
		return err
	}
	if *operator == (*reseller > 0) {
		return fmt.Errorf("%w: give exactly one of -operator and -reseller ID", errUsage)
	}
	if *expiresIn < 0 {
		return fmt.Errorf("%w: -expires-in must not be negative", errUsage)
	}
	st, err := openStore(*path)
	if err != nil {
		return err
	}
	defer st.Close()
	host, _ := os.Hostname()
	svc := admin.NewService(store.NewTenants(st), admin.ServiceOptions{})
	tk := admin.Token{Name: *name, ResellerID: *reseller}
	if *expiresIn > 0 {
		tk.Expires = time.Now().Add(*expiresIn)
	}
	tok, err := svc.CreateToken(ctx, admin.Operator("mxgrid token create on "+host), tk)
	var fe tenant.FieldErrors
	if errors.As(err, &fe) {
		return fmt.Errorf("%w: %v", errUsage, fe)
	}
	if err != nil {
		return err
	}
	// The secret only exists here: it is stored hashed.
	fmt.Fprintln(stdout, tok.Secret)
	return nil
}
